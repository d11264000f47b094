"""Every field of the calibrated battery on a null of nine hand-made draws (issue 16: the
calibration file kept 2 of 6 mutants of sample seed 17 alive).

References written out here: the rank p-value 2 min(#{null >= obs} + 1, #{null <= obs} + 1) /
(B + 1) (Davison & Hinkley 1997, eq. 4.11, two-sided), the Student t prediction p-value of
Hahn & Meeker (1991, ch. 4) with scipy's t distribution, Holm's step-down adjustment from
statsmodels, quantiles from numpy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from crm_lib import loyalty
from crm_lib.exceptions import ParamsError

DRAWS = np.array([-0.04, -0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04])  # mean 0, B = 9
OBSERVED = pd.Series({"rho": 0.5, "slope": 0.015, "price_auc": -0.2, "cost_share_auc": 0.02, "phi": 0.045,
                      "mean_period_profit": -3.0, "customers_used": 1234, "censored_share": 0.25})


def _null() -> pd.DataFrame:
    # every statistic: the same nine draws shifted to its own centre, one missing draw for M
    centres = {"rho": 0.1, "slope": 0.0, "price_auc": 0.0, "cost_share_auc": 0.0, "phi": 0.0}
    frame = pd.DataFrame({k: DRAWS + c for k, c in centres.items()})
    frame.loc[9] = [np.nan] * 4 + [np.nan]
    return frame


def rank_p(obs: float, null: np.ndarray) -> float:
    return min(1.0, 2 * min(1 + np.sum(null >= obs), 1 + np.sum(null <= obs)) / (len(null) + 1))


def test_every_field_of_the_rank_calibrated_battery_by_hand():
    tests = {t.hypothesis: t for t in loyalty.calibrate(OBSERVED, _null(), alpha=0.5, practical_effect=0.01,
                                                         tenure_period_days=30, price_per="unit")}
    assert list(tests) == ["H1", "H2", "H3", "H4", "M"]
    centres = {"H1": 0.1, "H2": 0.0, "H3": 0.0, "H4": 0.0, "M": 0.0}
    columns = {"H1": "rho", "H2": "slope", "H3": "price_auc", "H4": "cost_share_auc", "M": "phi"}
    p = {h: rank_p(OBSERVED[c], DRAWS + centres[h]) for h, c in columns.items()}
    # H1 0.5 and H3 -0.2 lie beyond every draw: 2 / 10; H2 0.015 has 3 draws above: 2 x 4 / 10;
    # H4 0.02 has 3 at or above: 0.8; M 0.045 beyond all: 0.2.
    assert p == pytest.approx({"H1": 0.2, "H2": 0.8, "H3": 0.2, "H4": 0.8, "M": 0.2})
    holm = dict(zip(p, multipletests(list(p.values()), method="holm")[1]))
    for h, t in tests.items():
        values = DRAWS + centres[h]
        assert (t.observed, t.null_draws, t.n, t.censored_share) == (OBSERVED[columns[h]], 9, 1234, 0.25)
        assert t.null_mean == pytest.approx(values.mean())
        assert (t.null_low, t.null_high) == pytest.approx((np.quantile(values, 0.025), np.quantile(values, 0.975)))
        assert t.p_value == pytest.approx(p[h]) and t.p_holm == pytest.approx(holm[h])
    # effects: excess over the null mean; H2 per year of 30-day periods over |mean profit per period|
    assert tests["H1"].effect == pytest.approx(0.4) and tests["H1"].effect_name == "excess rho over the null"
    assert tests["H2"].effect == pytest.approx(0.015 * 365.25 / 30 / 3.0)
    assert tests["H2"].effect_name == "excess change per year, share of mean profit per period"
    assert tests["H3"].effect_name == "excess P(long > short) - 0.5 over the null"
    assert tests["M"].effect_name == "excess phi over the null"
    assert tests["H3"].statistic_name == "P(price per unit of a long-lived > a short-lived customer) - 0.5"
    assert tests["H4"].expected_sign == -1 and tests["H1"].expected_sign == 1
    # Holm p 1.0 (0.2 x 5) is not below alpha = 0.5 for any: no verdict anywhere
    assert {t.verdict for t in tests.values()} == {"no evidence either way"}
    # 2.5% quantile of 0.06, 0.07, ..., 0.14: position 0.025 x 8 = 0.2, so 0.06 + 0.2 x 0.01 = 0.062
    assert tests["H1"].explanation == (
        "Spearman rho of duration and profit is 0.5; a base with no loyalty effect would give 0.1 (95% range 0.062 to "
        "0.138, 9 draws), calibrated p 0.200, Holm p 1.000, n = 1,234.")
    assert tests["H4"].note.startswith("not separate evidence from H3: with one assumed cost per order")
    assert tests["H1"].note == ""


def test_normal_theory_p_values_and_verdicts_by_hand():
    tests = {t.hypothesis: t for t in loyalty.calibrate(OBSERVED, _null(), alpha=0.05, practical_effect=0.05,
                                                         p_method="normal", cost_source="cost column")}
    sd = DRAWS.std(ddof=1)

    def t_p(obs, centre):
        return 2 * stats.t.sf(abs(obs - centre) / (sd * np.sqrt(1 + 1 / 9)), 8)

    p = {"H1": t_p(0.5, 0.1), "H2": t_p(0.015, 0.0), "H3": t_p(-0.2, 0.0), "H4": t_p(0.02, 0.0), "M": t_p(0.045, 0.0)}
    holm = dict(zip(p, multipletests(list(p.values()), method="holm")[1]))
    for h, t in tests.items():
        assert t.p_value == pytest.approx(p[h], rel=1e-9) and t.p_holm == pytest.approx(holm[h], rel=1e-9)
    assert holm["H1"] < 0.05 and holm["H3"] < 0.05
    assert tests["H1"].verdict == "supported"      # far above the null, as the claim says
    assert tests["H3"].verdict == "contradicted"   # far below: long-lived pay less
    assert tests["H4"].note == ""                  # a real cost column is separate evidence
    # M: phi 0.045 above the null, significant or not, is smaller than the practical effect 0.05
    assert tests["M"].verdict == "no evidence either way"
    if holm["M"] < 0.05:
        assert tests["M"].explanation.endswith("smaller than the practical effect (0.045 < 0.05).")
    with pytest.raises(ParamsError, match=r"p_method='exact' is not known; use 'rank' or 'normal'\."):
        loyalty.calibrate(OBSERVED, _null(), p_method="exact")


def test_untestable_statistics_say_why():
    observed = OBSERVED.copy()
    observed["price_auc"] = np.nan
    tests = {t.hypothesis: t for t in loyalty.calibrate(observed, _null(), cost_source="none")}
    assert tests["H3"].verdict == "not testable" and np.isnan(tests["H3"].p_value)
    assert tests["H3"].explanation == "the statistic could not be computed (too few customers in a group)."
    assert np.isnan(tests["H3"].null_mean) and tests["H3"].effect_name == ""
    assert tests["H4"].verdict == "not testable"
    assert tests["H4"].explanation == "no cost column and no cost_per_order in params: the cost to serve is unknown."
    # the other three are adjusted among themselves: Holm over 3 p-values
    assert tests["H1"].p_holm == pytest.approx(min(1.0, 3 * 0.2))


def test_a_holm_p_equal_to_alpha_is_not_significant():
    # Only H1 testable (the rest NaN, no cost): a family of one, Holm p = p = 2 / 10 = 0.2.
    observed = OBSERVED.copy()
    observed[["slope", "price_auc", "cost_share_auc", "phi"]] = np.nan
    tests = {t.hypothesis: t for t in loyalty.calibrate(observed, _null(), alpha=0.2, practical_effect=0.0,
                                                         cost_source="none")}
    assert tests["H1"].p_holm == 0.2
    assert tests["H1"].verdict == "no evidence either way"  # p < alpha is needed, as in the classical tests
    below = {t.hypothesis: t for t in loyalty.calibrate(observed, _null(), alpha=0.21, practical_effect=0.0,
                                                        cost_source="none")}
    assert below["H1"].verdict == "supported"
