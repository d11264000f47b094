"""Monthly runs on CDNOW, 1997-09-30 to 1998-06-30: a history page with every month and scored predictions.

Nine monthly runs are made in-process the way the runner's hook makes them (run context,
prediction set stored in the private folder, headline, dated publish); the tenth goes through
the real runner (notebook 04 only), which scores the nine stored sets and writes the page.
The scored actual purchases are recounted with plain pandas from the raw CDNOW file.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from crm_lib.clv.tracking import prediction_folder, store_prediction_set
from crm_lib.datasets import resolve_data_path
from crm_lib.report.history import HEADLINE_FILE, _kernel_environment, context_headline
from crm_lib.report.params import load_run_params
from crm_lib.report.publish import LATEST_LINK, history_entries, new_staging, publish_dated
from crm_lib.report.runner import run_report

REPO = Path(__file__).resolve().parents[1]
MONTH_ENDS = [f"{d:%Y-%m-%d}" for d in pd.date_range("1997-09-30", "1998-06-30", freq="ME")]
PARAMS = """run_name: cdnow_monthly
title: CDNOW monthly
notebooks:
  - 04_lifetime_value
parameters:
  data_path: embedded:CDNOW_master.txt
  calibration_end: -13w
  value_model: bg_nbd
  candidate_models: [bg_nbd]
  equity_draws: 50
  gross_margin: 0.3
"""


def _raw_cdnow() -> pd.DataFrame:
    raw = pd.read_csv(resolve_data_path("embedded:CDNOW_master.txt"), sep=r"\s+", header=0,
                      names=["customer_id", "date", "cds", "amount"], dtype={"customer_id": str, "date": str})
    return raw.assign(date=pd.to_datetime(raw["date"], format="%Y%m%d"))


def _pandas_repeat_purchases(raw: pd.DataFrame, start: str, end: str) -> int:
    """Customer-weeks (pandas' Monday-Sunday weeks) with a purchase after ``start`` up to ``end``, of
    customers seen by ``start``: how the BTYD models count repeat purchases."""
    known = set(raw.loc[raw["date"] <= start, "customer_id"])
    later = raw[(raw["date"] > start) & (raw["date"] <= end) & raw["customer_id"].isin(known)]
    return len(later.assign(week=later["date"].dt.to_period("W"))[["customer_id", "week"]].drop_duplicates())


def _month_in_process(params_path: Path, end: str, reports: Path, private: Path) -> None:
    """One month as the runner's hook records it, without executing the notebook (its model is fitted here)."""
    from crm_lib.context import session

    params = load_run_params(params_path, REPO / "notebooks", {"observation_end": end})
    staging = new_staging(reports, params.run_name)
    with _kernel_environment(private / "runs" / "scratch", private):
        ctx = session(params.path, **params.parameters)
        store_prediction_set(ctx.customer_values, ctx.transaction_model, ctx.spend_model,
                             prediction_folder(private, params.run_name), observation_end=end,
                             time_unit=ctx.log.time_unit, horizon_periods=ctx.horizon_periods)
        headline = context_headline(ctx, params.run_name)
    (staging / HEADLINE_FILE).write_text(json.dumps(headline, sort_keys=True, indent=1), encoding="utf-8")
    (staging / "index.html").write_text(end, encoding="utf-8")
    publish_dated(staging, reports / params.run_name, end, keep_runs=12)


@pytest.mark.slow
def test_monthly_cdnow_runs_make_a_history_with_scored_predictions(tmp_path, kernel_sees_checkout):
    params_path = tmp_path / "cdnow_monthly.yaml"
    params_path.write_text(PARAMS, encoding="utf-8")
    reports, private = tmp_path / "reports", tmp_path / "private"
    started = time.perf_counter()
    for end in MONTH_ENDS[:-1]:
        _month_in_process(params_path, end, reports, private)
    in_process = time.perf_counter() - started
    started = time.perf_counter()
    with kernel_sees_checkout():
        result = run_report(params_path, output_dir=reports, notebooks_dir=REPO / "notebooks", private_root=private,
                            overrides={"observation_end": MONTH_ENDS[-1]}, keep_runs=12)
    seconds = time.perf_counter() - started
    assert result.published, result.summary()
    run_dir = reports / "cdnow_monthly"
    assert history_entries(run_dir) == MONTH_ENDS
    page = (run_dir / "history.html").read_text(encoding="utf-8")
    assert all(end in page for end in MONTH_ENDS)
    assert 'href="../history.html"' in (run_dir / LATEST_LINK / "index.html").read_text(encoding="utf-8")
    scores = json.loads((run_dir / LATEST_LINK / "tracking.json").read_text(encoding="utf-8"))["scores"]
    assert [s["observation_end"] for s in scores] == MONTH_ENDS[:-1]
    raw = _raw_cdnow()
    for score in scores:
        assert score["actual_purchases"] == _pandas_repeat_purchases(raw, score["observation_end"], MONTH_ENDS[-1])
        days = (pd.Timestamp(MONTH_ENDS[-1]) - pd.Timestamp(score["observation_end"])).days
        assert score["elapsed_periods"] == pytest.approx(days / 7)
        # a sane model on CDNOW: within 25% of what happened, and better than the naive past-rate forecast
        assert 0.75 < score["predicted_purchases"] / score["actual_purchases"] < 1.25, score
        assert score["mae"] < score["mae_naive"]
        assert score["n_customers"] == raw.loc[raw["date"] <= score["observation_end"], "customer_id"].nunique()
    # the predictions are in the private folder only, with real ids; the reports hold aggregates
    assert sorted(p.stem for p in prediction_folder(private, "cdnow_monthly").glob("*.parquet")) == MONTH_ENDS
    assert not list(reports.rglob("*.parquet"))
    lines = "\n".join(f"  {s['observation_end']}: {s['elapsed_periods']:.1f} weeks, predicted "
                      f"{s['predicted_purchases']:,.0f} ({s['interval_lower']:,.0f}-{s['interval_upper']:,.0f}), "
                      f"actual {s['actual_purchases']:,.0f}, MAE {s['mae']:.3f} (naive {s['mae_naive']:.3f})"
                      for s in scores)
    print(f"\n9 months in process: {in_process:.0f} s; the runner's month 1998-06-30 (04 + scoring 9 sets): "
          f"{seconds:.0f} s ({result.notebooks[0].seconds:.0f} s in the notebook)\n{lines}")
