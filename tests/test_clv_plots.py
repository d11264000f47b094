"""crm_lib.plots.clv draws computed results: every figure is titled, its axes are labelled
with units, it draws on the Axes given and it returns them."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from lifetimes.datasets import load_dataset  # noqa: E402

from crm_lib import clv  # noqa: E402
from crm_lib.plots import clv as clv_plots  # noqa: E402


@pytest.fixture(scope="module")
def results():
    data = load_dataset("cdnow_customers_summary_with_transactions.csv").rename(
        columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"}).set_index("ID")
    bg, gg = clv.fit_model(data, "bg_nbd"), clv.fit_spend_model(data)
    cal = data.rename(columns={"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal"}).assign(
        frequency_holdout=np.random.default_rng(0).poisson(1.0, len(data)).astype(float), duration_holdout=39.0)
    table = clv.customer_value_table(data, bg, gg)
    tracking = pd.DataFrame(
        {"actual": [0.0, 3, 5], "expected": [0.0, 2.5, 4.5], "actual_cumulative": [0.0, 3, 8],
         "expected_cumulative": [0.0, 2.5, 7.0], "holdout": [False, False, True]},
        index=pd.date_range("1997-01-06", periods=3, freq="W-MON"))
    tracking.attrs["time_unit"] = "W"
    history = pd.DataFrame({"p_alive": [1.0, 0.8, 0.9], "purchase": [True, False, True]},
                           index=pd.date_range("1997-01-06", periods=3, freq="W-MON"))
    history.attrs.update(customer_id="42", time_unit="W")
    return {
        "by_frequency": clv.holdout_by_calibration_frequency(cal, bg),
        "tracking": tracking,
        "counts": clv.repeat_purchase_counts(data, bg, n_simulations=2),
        "summary": data,
        "concentration": clv.value_concentration(table["clv"]),
        "equity": clv.customer_equity(bg, gg, data, n_draws=20, seed=1),
        "grid": clv.p_alive_grid(bg, max_frequency=10, max_T=39),
        "history": history,
    }


def _calls(r):
    return [
        ("holdout", lambda ax: clv_plots.plot_holdout_by_frequency(r["by_frequency"], model_label="BG/NBD",
                                                                   duration=39, ax=ax), "(per customer)"),
        ("tracking", lambda ax: clv_plots.plot_tracking(r["tracking"], ax=ax), "(count)"),
        ("cumulative", lambda ax: clv_plots.plot_tracking(r["tracking"], cumulative=True, ax=ax), "(count)"),
        ("counts", lambda ax: clv_plots.plot_repeat_purchase_counts(r["counts"], ax=ax), "(count)"),
        ("spend", lambda ax: clv_plots.plot_spend_vs_frequency(r["summary"], correlation=0.11, ax=ax), "(USD"),
        ("lorenz", lambda ax: clv_plots.plot_lorenz(r["concentration"], ax=ax), "(cumulative %)"),
        ("equity", lambda ax: clv_plots.plot_equity_draws(r["equity"], ax=ax), "(count)"),
        ("grid", lambda ax: clv_plots.plot_p_alive_grid(r["grid"], ax=ax), "(weeks)"),
        ("history", lambda ax: clv_plots.plot_p_alive_history(r["history"], ax=ax), "(%)"),
    ]


def test_every_figure_is_titled_labelled_and_drawn_on_the_given_axes(results):
    for name, draw, unit in _calls(results):
        fig, ax = plt.subplots()
        returned = draw(ax)
        assert returned is ax, name
        assert ax.get_title(), name
        assert ax.get_xlabel() and ax.get_ylabel(), name
        assert unit in ax.get_ylabel(), (name, ax.get_ylabel())
        assert ax.has_data() or ax.images, name
        plt.close(fig)


def test_lorenz_and_equity_draw_the_computed_values(results):
    fig, ax = plt.subplots()
    clv_plots.plot_lorenz(results["concentration"], ax=ax)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), results["concentration"].lorenz["value_share"])
    plt.close(fig)
    fig, ax = plt.subplots()
    clv_plots.plot_equity_draws(results["equity"], ax=ax)
    assert ax.lines[0].get_xdata()[0] == pytest.approx(results["equity"].estimate)
    plt.close(fig)


def test_p_alive_history_title_shows_the_label_never_the_real_id(results):
    # The history keeps the real id in attrs; a report must show only the pseudonym it passes.
    fig, ax = plt.subplots()
    clv_plots.plot_p_alive_history(results["history"], customer_label="3f2a9c01de", ax=ax)
    assert ax.get_title() == "P(alive) history of customer 3f2a9c01de"
    ax.clear()
    clv_plots.plot_p_alive_history(results["history"], ax=ax)
    assert "42" not in ax.get_title()
    plt.close(fig)


def test_equity_chart_marks_both_intervals(results):
    equity = results["equity"]
    fig, ax = plt.subplots()
    clv_plots.plot_equity_draws(equity, ax=ax)
    marked = [line.get_xdata()[0] for line in ax.lines]
    np.testing.assert_allclose(marked, [equity.estimate, equity.expected_lower, equity.expected_upper,
                                        equity.predictive_lower, equity.predictive_upper])
    # Two histograms (realised and expected equity), every draw counted once in each.
    heights = [sum(p.get_height() for p in container) for container in ax.containers]
    assert heights == [equity.n_draws, equity.n_draws]
    labels = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "predictive interval" in labels and "parameter-uncertainty interval" in labels
    plt.close(fig)
