"""Loyalty at scale (issue 17, item 2): bases above ``MAX_CUSTOMERS`` are analysed on a stated sample.

A customer's lifetime, profit and price depend only on that customer's orders, the
fitted model and the observation end; the sample must therefore leave them unchanged,
keep the whole log's window, and say what was done. Bases at or below the limit (CDNOW's
23,570 customers, the 2,000 and 20,000 of the size study) are used whole.
benchmarks/bench_loyalty.py --scale 1000000 times the report's loyalty step at scale.
"""
from __future__ import annotations

import pandas as pd
import pytest
from lifetimes import ParetoNBDFitter

from crm_lib import loyalty
from crm_lib.exceptions import ParamsError
from crm_lib.loyalty.analysis import MAX_CUSTOMERS, sample_customers
from crm_lib.simulate import simulate_stationary_log


@pytest.fixture(scope="module")
def tx() -> pd.DataFrame:
    return simulate_stationary_log(400, seed=3, observation_days=300, acquisition_days=60)


def pnbd() -> ParetoNBDFitter:
    model = ParetoNBDFitter()
    model.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "s": 0.6, "beta": 120.0})  # rates per day
    return model


def test_sample_keeps_every_order_of_the_chosen_customers_and_the_window(tx):
    sample, end, note = sample_customers(tx, 150, seed=5)
    assert sample["customer_id"].nunique() == 150
    chosen = tx[tx["customer_id"].isin(sample["customer_id"].unique())]
    pd.testing.assert_frame_equal(sample, chosen)
    assert end == tx["date"].max()
    assert note.startswith(f"The loyalty analysis uses a random sample of 150 of the 400 customers (seed 5; {len(sample):,} of")
    again, _, _ = sample_customers(tx, 150, seed=5)
    assert again.equals(sample)
    whole, end_whole, none = sample_customers(tx, 400, seed=5)
    assert whole is tx and none == "" and end_whole == end
    with pytest.raises(ParamsError, match="at least 100 customers"):
        sample_customers(tx, 50)
    assert MAX_CUSTOMERS > 23_570  # CDNOW and the size study's bases are used whole


def test_sampled_analysis_leaves_each_customer_unchanged_and_says_so(tx):
    settings = dict(gross_margin=0.3, cost_per_order=2.0, n_bootstrap=0, seed=5)
    whole = loyalty.loyalty_analysis(tx, pnbd(), max_customers=None, **settings)
    default = loyalty.loyalty_analysis(tx, pnbd(), **settings)
    sampled = loyalty.loyalty_analysis(tx, pnbd(), max_customers=150, **settings)
    assert whole.sample_note == default.sample_note == ""
    pd.testing.assert_frame_equal(default.customers, whole.customers)
    assert len(sampled.customers) == 150 and "150 of the 400 customers" in sampled.sample_note
    assert sampled.sample_note in sampled.summary()
    # Lifetimes run to the whole log's end even if the sample's last order is earlier.
    columns = [c for c in sampled.customers.columns if c != "segment"]
    pd.testing.assert_frame_equal(sampled.customers[columns], whole.customers.loc[sampled.customers.index, columns])
    table = loyalty.robustness_table(tx, {"Pareto/NBD": pnbd()}, thresholds=(), split_quantiles=(), crossings=(),
                                     panel_ends=(), max_customers=150, **{k: settings[k] for k in ("gross_margin", "cost_per_order", "seed")})
    assert table.attrs["sample_note"] == sampled.sample_note
    assert table.loc["baseline", "H1 rho"] == pytest.approx(sampled.tests["H1"].primary.estimate)
