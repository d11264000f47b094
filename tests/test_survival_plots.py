"""Figures of crm_lib.plots.survival: titled, labelled with units, drawn from results only."""
from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from crm_lib.plots import survival as plots  # noqa: E402
from crm_lib.plots.theme import caption_of  # noqa: E402
from crm_lib.retention import ShiftedBetaGeometricFitter  # noqa: E402
from crm_lib.survival import cox_proportional_hazards, kaplan_meier, lapse_sensitivity  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def churn():
    rng = np.random.default_rng(0)
    n = 400
    return pd.DataFrame(
        {
            "duration_days": np.round(rng.exponential(120, n)),
            "churned": rng.random(n) < 0.7,
            "first_order_amount": rng.lognormal(3, 0.5, n),
            "cohort": rng.choice(["2020-01", "2020-02"], n),
        }
    )


def _labels(ax):
    return ax.get_title(), ax.get_xlabel(), ax.get_ylabel()


def test_kaplan_meier_plot(churn):
    km = kaplan_meier(churn, group_col="cohort")
    ax = plots.plot_kaplan_meier(km)
    title, xlabel, ylabel = _labels(ax)
    assert title == "Retention by cohort (95% bands; | = end of the data)"
    assert xlabel == "days since first purchase" and ylabel == "customers not yet churned (%)"
    # One step line per group, and a "|" where each curve stops above 0 (the end of the data).
    steps = [line for line in ax.get_lines() if line.get_marker() in ("None", None, "")]
    ends = [line for line in ax.get_lines() if line.get_marker() == "|"]
    assert len(steps) == 2 and len(ends) == int((km.curves.groupby("group")["survival"].last() > 0).sum())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"{g} (n={int(km.medians.loc[g, 'customers']):,})" for g in km.groups
    ]
    # Each curve starts at 100% on day 0.
    assert all(line.get_ydata()[0] == 1.0 for line in steps)


def test_failed_results_draw_their_message(churn):
    km = kaplan_meier(churn, group_col="segment", errors="report")
    ax = plots.plot_kaplan_meier(km)
    assert "segment" in ax.get_title()
    assert ax.texts[0].get_text().startswith("Not available: grouping column: column(s) ['segment'] not found")
    cox = cox_proportional_hazards(churn.assign(cohort="x"), covariates=["cohort"], errors="report")
    for draw in (plots.plot_hazard_ratios, plots.plot_schoenfeld):
        ax = draw(cox)
        assert "Cox covariate 'cohort' has the same value" in ax.texts[0].get_text().replace("\n", " ")


def test_cox_plots(churn):
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "cohort"])
    ax = plots.plot_hazard_ratios(cox)
    assert ax.get_title() == "Churn hazard ratios (Cox model)"
    assert ax.get_xscale() == "log" and "hazard ratio" in ax.get_xlabel()
    assert len(ax.get_yticklabels()) == 2
    ax = plots.plot_schoenfeld(cox, bins=5)
    assert ax.get_xlabel() == "days since first purchase at churn (bin means)"
    assert len(ax.get_lines()) == 3  # two terms and the zero line


def test_sensitivity_and_sbg_plots():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "c", "c"],
            "date": pd.to_datetime(["2020-01-01", "2020-03-01", "2020-01-10", "2020-01-05", "2020-02-01", "2020-06-01"]),
            "amount": 1.0,
        }
    )
    table = lapse_sensitivity(tx, lapse_days=[30, 60], horizon_days=30, observation_end="2020-06-30")
    ax = plots.plot_lapse_sensitivity(table, horizon_days=30)
    assert ax.get_ylabel() == "retention at 30 days (%)" and "lapse threshold" in ax.get_xlabel()
    projection = ShiftedBetaGeometricFitter().fit([1000, 869, 743, 653, 593, 551, 517, 491]).projection(12)
    ax = plots.plot_sbg_survival(projection)
    assert ax.get_xlabel() == "years since acquisition" and ax.get_ylabel() == "customers still active (% of cohort)"
    assert ax.get_lines()[0].get_ydata()[-1] == pytest.approx(projection["survival_expected"].iloc[-1])
    ax = plots.plot_sbg_retention(projection, period_label="month")
    assert ax.get_xlabel() == "month (renewal decision)"
    assert ax.get_title() == "Retention rates rise as the likely churners leave"


def test_captions_and_labels_name_groups_and_terms_in_words(churn):
    """No column name of the churn table (first_order_band, first_order_amount, ...) reaches a reader."""
    code_name = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
    churn = churn.assign(first_order_band=np.where(churn["first_order_amount"] > 20, "high", "low"))
    km = kaplan_meier(churn, group_col="first_order_band")
    ax = plots.plot_kaplan_meier(km)
    assert ax.get_title().startswith("Retention by first-day spend band")
    assert ax.get_legend().get_title().get_text() == "first-day spend band"
    assert "one curve per first-day spend band" in caption_of(ax)
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "cohort"])
    ax = plots.plot_hazard_ratios(cox)
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert any(t.startswith("first-day spend") for t in ticks)
    schoenfeld = plots.plot_schoenfeld(cox, bins=5)
    legend = [t.get_text() for t in schoenfeld.get_legend().get_texts()]
    assert "first-day spend" in legend
    for text in (caption_of(ax), caption_of(schoenfeld), *ticks, *legend, caption_of(plots.plot_kaplan_meier(km))):
        assert not code_name.search(text), text
