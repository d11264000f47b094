"""Paths taken at millions of customers to save memory give the results of the plain pandas ones."""
from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crm_lib.plots.theme import draw_points  # noqa: E402


def test_n_customers_counts_runs_like_nunique(cdnow_log):
    assert cdnow_log.n_customers == cdnow_log.transactions["customer_id"].nunique() == 23_570
    rng = np.random.default_rng(5)
    ids = pd.Series(rng.choice(["", "é", "a,b", "0001", "1", "z"], 200), dtype="str")
    for frame in (pd.DataFrame({"customer_id": ids}),  # not sorted: pandas counts
                  pd.DataFrame({"customer_id": ids.sort_values(ignore_index=True)}),  # sorted: runs
                  pd.DataFrame({"customer_id": pd.Series(["a", None, "b", "b"], dtype="str")})):
        log = dataclasses.replace(cdnow_log, transactions=frame)
        assert log.n_customers == frame["customer_id"].nunique()


def _drawn(groups, n_points: int, max_points: int):
    rng = np.random.default_rng(1)
    fig, ax = plt.subplots()
    x, y = rng.gamma(2, 1, n_points), rng.random(n_points)
    density = draw_points(ax, x, y, groups=groups, labels={"b": "bee"}, max_points=max_points)
    drawn = [np.asarray(c.get_offsets()).round(12).tolist() for c in ax.collections] if not density else \
        [np.ma.filled(c.get_array(), 0).tolist() for c in ax.collections]
    legend = ax.get_legend_handles_labels()[1]
    plt.close(fig)
    return density, drawn, legend


def test_draw_points_groups_by_codes_as_by_values():
    groups = np.random.default_rng(2).choice(["b", "a", "c"], 300)
    for max_points in (1_000, 100):  # scatter, then density
        as_text = _drawn(pd.Series(groups, dtype="str"), 300, max_points)
        as_objects = _drawn(list(groups), 300, max_points)
        assert as_text == as_objects and as_text[2] == ["bee"]
        # each group drawn once, in order of appearance, with the points of that group
        if max_points == 1_000:
            order = list(dict.fromkeys(groups.tolist()))
            assert [len(points) for points in as_text[1]] == [int((groups == g).sum()) for g in order]


def test_context_frees_the_per_customer_inputs_once_the_values_are_made(tmp_path, monkeypatch):
    from crm_lib.context import session

    monkeypatch.setenv("CRM_PRIVATE_ROOT", str(tmp_path / "private"))
    ctx = session(value_model="bg_nbd")  # CDNOW
    summary = ctx.summary.copy()
    values = ctx.customer_values
    assert "summary" not in ctx._memo and "cal_holdout" not in ctx._memo and len(values) == 23_570
    pd.testing.assert_frame_equal(ctx.summary, summary)  # read back from the disk cache
    assert ctx.customer_values is values  # the table itself stays
