"""Figures of the segmentation analysis draw what the results say, titled and labelled."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from crm_lib.plots.segments import plot_loyalty_status, plot_migration, plot_portfolio, plot_segment_profile
from crm_lib.segments import (
    active_passive_loyalty,
    rfm_segmentation,
    segment_migration,
    segment_profile,
    value_loyalty_portfolio,
)
from tests.test_segments import END, ROWS, RULES_3


@pytest.fixture()
def log() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_profile_bars_match_shares(log):
    profile = segment_profile(rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END))
    ax = plot_segment_profile(profile)
    widths = sorted(round(p.get_width(), 6) for p in ax.patches if p.get_height() > 0 and p.get_width() > 0)
    expected = sorted(round(v * 100, 6) for v in pd.concat([profile["share_of_customers"], profile["share_of_revenue"]]) if v > 0)
    assert widths == expected
    assert "(%)" in ax.get_xlabel() and ax.get_title()


def test_portfolio_marks_the_splits_and_names_the_cells(log):
    seg = rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END)
    portfolio = value_loyalty_portfolio(seg.customers, value_split=75)
    ax = plot_portfolio(portfolio, currency="EUR")
    lines = [(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.lines]
    assert ((75, 75), (0, 1)) in lines  # vertical split at the value threshold
    assert ((0, 1), (0.5, 0.5)) in lines  # horizontal split at the loyalty split
    # The cells are named in the legend under the chart (on the chart they hid customers).
    texts = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert not ax.texts
    for action in ("RETAIN", "DEVELOP", "MAINTAIN AT LOWER COST TO SERVE", "LET GO / WIN BACK"):
        assert action in texts
    assert "2 customers, 79% of value" in texts  # retain: B and F, 900 of 1,140
    assert "EUR" in ax.get_xlabel() and "0 to 1" in ax.get_ylabel()


def test_loyalty_status_and_migration_figures(log):
    seg = rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END)
    loyalty = active_passive_loyalty(seg.customers, min_relationship_days=300)
    ax = plot_loyalty_status(loyalty)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "active (2)" in labels and "passive (1)" in labels
    assert "(days)" in ax.get_xlabel() and "(days)" in ax.get_ylabel()

    migration = segment_migration(log, RULES_3, calibration_end="2020-06-30", observation_end=END, n_bins=3)
    ax = plot_migration(migration)
    assert ax.get_title() == "Segment migration: 17% moved up, 33% stayed, 50% moved down"
    annotations = [t.get_text() for t in ax.texts]
    # Rows champions (-> champions, -> middle) and lapsed (-> middle, -> lapsed) split 50/50;
    # middle -> lapsed is 100%; the empty rows (recent, lapsed valuable) carry no number.
    assert annotations.count("50") == 4 and annotations.count("100") == 1
    numbers = [a for a in annotations if a.isdigit()]
    assert len(numbers) == 3 * 5
    # The two empty rows are labelled as such and draw no gridlines.
    assert sum("no customers" in a for a in annotations) == 2
    assert not any(line.get_visible() for line in ax.get_xgridlines() + ax.get_ygridlines())
    assert "2020-06-30" in ax.get_ylabel() and "2020-12-31" in ax.get_xlabel()
