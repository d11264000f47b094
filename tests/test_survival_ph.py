"""The Grambsch-Therneau proportional-hazards check (crm_lib.survival.ph_test) against R's
survival::cox.zph, and its size where proportional hazards hold."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg

from crm_lib.exceptions import ParamsError
from crm_lib.survival import cox_proportional_hazards
from crm_lib.survival.ph_test import proportional_hazards_test

DATA = Path(__file__).resolve().parent / "data"

# R survival, tests/zph.R (github.com/therneau/survival): a 6-row data set whose Cox MLE,
# per-death scores U and informations are known in closed form; the R test asserts that
# cox.zph(fit)$table equals the score test solve(i2, u2) %*% u2 built from them.
TEST1_TIME = np.array([9, 1, 1, 6, 6, 8.0])  # the row with status NA is dropped, as R does
TEST1_STATUS = np.array([1, 1, 0, 1, 1, 0])
TEST1_X = np.array([[0], [1], [1], [1], [0], [0.0]])
TEST1_DEATH_TIMES = np.array([1, 6, 6, 9.0])


def _closed_form_zph(ties: str, g: np.ndarray) -> tuple[float, float]:
    """(log r, score test) transcribed from R survival tests/zph.R."""
    if ties == "breslow":
        r = (3 + np.sqrt(33)) / 2
        U = np.array([1 / (r + 1), 3 / (r + 3), -r / (r + 3), 0])
        imat = np.array([r / (r + 1) ** 2, 3 * r / (r + 3) ** 2, 3 * r / (r + 3) ** 2, 0])
    else:
        phi = np.arccos((45 / 23) * np.sqrt(3 / 23))
        r = 2 * np.sqrt(23 / 3) * np.cos(phi / 3)
        U = np.array([1 / (r + 1), 3 / (r + 3), -r / (r + 5), 0])
        imat = np.array([r / (r + 1) ** 2, 3 * r / (r + 3) ** 2, 5 * r / (r + 5) ** 2, 0])
    u2 = np.array([U.sum(), (g * U).sum()])
    i2 = np.array([[imat.sum(), (g * imat).sum()], [(g * imat).sum(), (g**2 * imat).sum()]])
    return float(np.log(r)), float(np.linalg.solve(i2, u2) @ u2)


@pytest.mark.parametrize(
    "ties, transform, g",
    [
        ("breslow", "identity", TEST1_DEATH_TIMES),
        ("breslow", "log", np.log(TEST1_DEATH_TIMES) - np.log(TEST1_DEATH_TIMES).mean()),
        ("efron", "log", np.log(TEST1_DEATH_TIMES) - np.log(TEST1_DEATH_TIMES).mean()),
    ],
)
def test_score_test_matches_r_survival_closed_forms(ties, transform, g):
    log_r, expected = _closed_form_zph(ties, g)
    beta = PHReg(TEST1_TIME, TEST1_X, status=TEST1_STATUS, ties=ties).fit().params
    assert beta[0] == pytest.approx(log_r, rel=1e-6)
    table, scaled = proportional_hazards_test(TEST1_TIME, TEST1_STATUS, TEST1_X, beta, ties=ties, transform=transform)
    assert table.loc["x0", "chi2"] == pytest.approx(expected, rel=1e-6)
    assert scaled["time"].tolist() == TEST1_DEATH_TIMES.tolist()


def test_score_test_matches_r_cox_zph_on_ovarian():
    # R: fit <- coxph(Surv(futime, fustat) ~ age + ecog.ps, data=ovarian); cox.zph(fit)
    # (Efron ties, transform "km"), as printed in the cox.zph help example of R survival,
    # tests/Examples/survival-Ex.Rout.save (github.com/therneau/survival):
    #   age 0.698 (1 df, p 0.40), ecog.ps 2.371 (p 0.12), GLOBAL 3.633 (2 df, p 0.16).
    ovarian = pd.read_csv(DATA / "ovarian.csv", comment="#")
    x = ovarian[["age", "ecog.ps"]].to_numpy(float)
    time, status = ovarian["futime"].to_numpy(float), ovarian["fustat"].to_numpy()
    beta = PHReg(time, x, status=status, ties="efron").fit().params
    table, _ = proportional_hazards_test(time, status, x, beta, terms=["age", "ecog.ps"])
    np.testing.assert_allclose(table["chi2"], [0.698, 2.371, 3.633], atol=6e-4)
    assert table["df"].tolist() == [1, 1, 2]
    np.testing.assert_allclose(table["p_value"], [0.40, 0.12, 0.16], atol=6e-3)


def _tied_ph_data(n: int, seed: int, beta=(0.5, -0.15)) -> pd.DataFrame:
    """Proportional hazards by construction, with the ties of a lapse-rule churn table.

    Continuous-time lifetimes with hazard exp(lp) h0(t), h0 = 0.9 per day on the first day
    (about half the customers leave then) and 0.004 per day after it, cut to whole days
    and censored after 280 to 365 days: a mass of lifetimes tied at day 0, as in CDNOW.
    """
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 0.8, n)
    web = rng.random(n) < 0.4
    lp = beta[0] * web + beta[1] * np.log2(1 + amount)
    exposure = rng.exponential(1, n) / np.exp(lp)  # cumulative baseline hazard at death
    time = np.floor(np.where(exposure < 0.9, exposure / 0.9, 1 + (exposure - 0.9) / 0.004))
    censor = np.floor(rng.uniform(280, 365, n))
    return pd.DataFrame({"duration_days": np.minimum(time, censor), "churned": time <= censor,
                         "first_order_amount": amount, "channel": np.where(web, "web", "store")})


def test_residuals_match_the_estimator_with_ties():
    churn = _tied_ph_data(2_000, seed=5)
    for ties in ("efron", "breslow"):
        cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"], ties=ties)
        terms = list(cox.hazard_ratios.index)
        # At the estimate the scores of the same tie handling sum to zero: the scaled
        # residuals average to the coefficients.
        np.testing.assert_allclose(cox.scaled_schoenfeld[terms].mean(), cox.hazard_ratios["coef"], atol=1e-6)
        assert f"{ties.capitalize()} residuals" in cox.ph_method
    with pytest.raises(ParamsError, match="transform='days' is not supported"):
        proportional_hazards_test(TEST1_TIME, TEST1_STATUS, TEST1_X, np.zeros(1), transform="days")


@pytest.mark.slow
def test_ph_check_holds_its_size_where_hazards_are_proportional():
    # 150 data sets of 1,000 customers with proportional hazards and about half the
    # lifetimes tied at day 0 (the null that ties could fake); at the 5% level the global
    # test (Efron fit, Efron residuals) must reject in about 5% of them (binomial s.d.
    # 1.8 points: accept 1.5% to 10%).
    rejections = []
    for seed in range(150):
        churn = _tied_ph_data(1_000, seed=100 + seed)
        cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"])
        rejections.append(cox.ph_test.loc["GLOBAL", "p_value"] < 0.05)
    rate = float(np.mean(rejections))
    assert 0.015 <= rate <= 0.10, rate
