"""Shifted-beta-geometric (sBG) model of contractual retention, Fader & Hardie (2007),
"How to project customer retention", *Journal of Interactive Marketing* 21(1).

Each customer renews at the end of every period with a constant probability 1 - θ;
θ varies across customers as a beta(α, β). The survival function and retention rates
have closed forms (eq. 5-8), the model is fitted by maximum likelihood on cohort survivor
counts (eq. 9) on the shared base (:class:`~crm_lib.models.base.MaximumLikelihoodFit`),
and the value figures follow Fader & Hardie (2010), "Customer-base valuation in a
contractual setting: the perils of ignoring heterogeneity", *Marketing Science* 29(1).
Data sources and tables per cohort are in :mod:`crm_lib.retention`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from crm_lib import format as fmt
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.models.base import MaximumLikelihoodFit

__all__ = [
    "ShiftedBetaGeometricFitter",
    "sbg_churn_probability",
    "sbg_retention_rate",
    "sbg_survival",
]


def _as_cohorts(survivors) -> pd.DataFrame:
    """Survivor counts as a cohorts x periods frame (NaN after a cohort's last period)."""
    if isinstance(survivors, pd.DataFrame):
        frame = survivors.astype(float)
    elif isinstance(survivors, pd.Series):
        frame = survivors.astype(float).to_frame().T
        frame.index = [survivors.name if survivors.name is not None else "cohort"]
    elif isinstance(survivors, dict):
        frame = pd.DataFrame({k: pd.Series(v, dtype=float) for k, v in survivors.items()}).T
    else:
        frame = pd.DataFrame([np.asarray(survivors, dtype=float)], index=["cohort"])
    frame.columns = range(frame.shape[1])
    return frame


def _validate_survivors(frame: pd.DataFrame) -> None:
    for cohort, row in frame.iterrows():
        values = row.dropna().to_numpy()
        observed = row.notna().to_numpy()
        if len(values) < 2:
            raise DataValidationError(
                f"cohort {cohort!r} has {len(values)} survivor count(s); give the cohort size and at least one "
                "later count (e.g. [1000, 869, 743])."
            )
        if not observed[: len(values)].all():
            raise DataValidationError(
                f"cohort {cohort!r} has a gap in its survivor counts {row.tolist()}; counts must be consecutive "
                "periods from period 0."
            )
        if (values < 0).any() or not np.allclose(values, np.round(values)):
            raise DataValidationError(
                f"cohort {cohort!r}: survivor counts must be whole numbers >= 0, got {values.tolist()}."
            )
        increases = np.flatnonzero(np.diff(values) > 0)
        if len(increases):
            k = int(increases[0])
            raise DataValidationError(
                f"cohort {cohort!r}: survivors rise from {values[k]:,.0f} in period {k} to {values[k + 1]:,.0f} in "
                f"period {k + 1}; counts of one cohort can only fall. Check the params (new customers belong to a "
                "new cohort)."
            )
        if values[0] == 0:
            raise DataValidationError(f"cohort {cohort!r} starts with 0 customers; drop it.")


def sbg_survival(periods, alpha: float, beta: float) -> np.ndarray:
    """S(t) = P(T > t) of the sBG model.

    Fader & Hardie (2007), eq. 7: S(t) = B(α, β + t) / B(α, β).
    """
    t = np.asarray(periods, dtype=float)
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


def sbg_churn_probability(periods, alpha: float, beta: float) -> np.ndarray:
    """P(T = t), t >= 1: the share of a cohort that cancels at the end of period t.

    Fader & Hardie (2007), eq. 5: P(T = t) = B(α + 1, β + t - 1) / B(α, β).
    """
    t = np.asarray(periods, dtype=float)
    return np.exp(special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta))


def sbg_retention_rate(periods, alpha: float, beta: float) -> np.ndarray:
    """r_t = S(t) / S(t - 1), t >= 1, the share of period t-1's customers who renew.

    Fader & Hardie (2007), eq. 8: r_t = (β + t - 1) / (α + β + t - 1), increasing in t.
    """
    t = np.asarray(periods, dtype=float)
    return (beta + t - 1) / (alpha + beta + t - 1)


def _log_likelihood(params: np.ndarray, counts: list[np.ndarray]) -> float:
    """Total log-likelihood of survivor counts, Fader & Hardie (2007), eq. 9."""
    alpha, beta = params
    total = 0.0
    for n in counts:
        t = np.arange(1, len(n))
        lost = n[:-1] - n[1:]
        # Those who cancelled in period t contribute ln P(T = t); those still active after
        # the last period contribute ln S(t_max).
        total += lost @ np.log(sbg_churn_probability(t, alpha, beta)) + n[-1] * np.log(
            sbg_survival(len(n) - 1, alpha, beta)
        )
    return float(total)


class ShiftedBetaGeometricFitter(MaximumLikelihoodFit):
    """Shifted-beta-geometric model of contractual retention (Fader & Hardie 2007).

    Attributes (after :meth:`fit`)
    ------------------------------
    params_ : Series
        ``alpha``, ``beta``.
    standard_errors_ : Series
        Asymptotic standard errors of ``alpha`` and ``beta`` (observed information in
        (log α, log β), delta method), as for every model on the base.
    covariance_ : DataFrame
        Their covariance matrix.
    log_likelihood_, aic_, bic_ : float
        BIC with n = the customers of all cohorts.
    n_customers_ : float
        Customers at period 0, all cohorts.
    survivors_ : DataFrame
        The survivor counts fitted, cohorts x periods.

    Examples
    --------
    >>> fitter = ShiftedBetaGeometricFitter().fit([1000, 869, 743, 653, 593, 551, 517, 491])
    >>> fitter.params_.round(3).tolist()
    [0.668, 3.806]
    """

    name = "sbg"
    param_names = ("alpha", "beta")
    identification_hint = ("α and β are told apart only by how churn falls over renewals: give cohorts at least "
                           "two renewal periods (one period fixes only the first-period churn α / (α + β)).")

    @property
    def label(self) -> str:
        return "sBG"

    def fit(self, survivors) -> ShiftedBetaGeometricFitter:
        """Fit α and β by maximum likelihood on survivor counts.

        Parameters
        ----------
        survivors : sequence, Series, dict or DataFrame
            One cohort: the number of customers at the start (period 0) and still active
            at the end of each later period, e.g. ``[1000, 869, 743]``. Several cohorts:
            a dict ``{name: counts}`` or a DataFrame with one row per cohort (NaN after a
            cohort's last observed period); they share α and β.

        Returns
        -------
        ShiftedBetaGeometricFitter
            ``self``, fitted.

        Raises
        ------
        DataValidationError
            Fewer than two counts, counts that rise, are negative or not whole.
        ModelFitError
            The optimiser does not converge or a standard error is not finite (e.g. no
            customer ever cancels).
        """
        frame = _as_cohorts(survivors)
        _validate_survivors(frame)
        counts = [row.dropna().to_numpy() for _, row in frame.iterrows()]
        if all(n[-1] == n[0] for n in counts):
            raise ModelFitError(
                f"no customer cancelled in any cohort ({', '.join(map(str, frame.index))}); the sBG model needs "
                "some cancellations to estimate the churn distribution."
            )
        n_customers = float(sum(n[0] for n in counts))
        theta = self._fit_log_params(lambda p: _log_likelihood(p, counts), np.zeros(2), n_customers, n_customers)
        params = np.exp(theta)
        self._set_params(params, n_customers, _log_likelihood(params, counts))
        self.survivors_ = frame
        return self

    def _check_fitted(self) -> tuple[float, float]:
        self._require_fit()
        return float(self.params_["alpha"]), float(self.params_["beta"])

    def survival_function(self, periods: int) -> pd.Series:
        """Expected share of a cohort still active at the end of periods 0..``periods``."""
        alpha, beta = self._check_fitted()
        t = np.arange(periods + 1)
        return pd.Series(sbg_survival(t, alpha, beta), index=pd.Index(t, name="period"), name="survival")

    def retention_rates(self, periods: int) -> pd.Series:
        """Expected retention rate r_t for periods 1..``periods`` (rising, eq. 8)."""
        alpha, beta = self._check_fitted()
        t = np.arange(1, periods + 1)
        return pd.Series(sbg_retention_rate(t, alpha, beta), index=pd.Index(t, name="period"), name="retention_rate")

    def projection(self, periods: int) -> pd.DataFrame:
        """Observed and expected survivors and retention rates, per cohort, to ``periods``.

        Parameters
        ----------
        periods : int
            Last period projected (beyond the data: the forecast).

        Returns
        -------
        DataFrame
            ``cohort``, ``period``, ``survivors_observed`` (NaN beyond the data),
            ``survivors_expected``, ``survival_expected``, ``retention_observed``,
            ``retention_expected``, ``observed`` (bool: period within the data).
        """
        alpha, beta = self._check_fitted()
        frames = []
        t = np.arange(periods + 1)
        s = sbg_survival(t, alpha, beta)
        r = np.r_[np.nan, sbg_retention_rate(t[1:], alpha, beta)]
        for cohort, row in self.survivors_.iterrows():
            observed = row.dropna()
            size = observed.iloc[0]
            obs = observed.reindex(t).to_numpy(dtype=float)
            frames.append(
                pd.DataFrame(
                    {
                        "cohort": str(cohort),
                        "period": t,
                        "survivors_observed": obs,
                        "survivors_expected": size * s,
                        "survival_expected": s,
                        "retention_observed": np.r_[np.nan, obs[1:] / obs[:-1]],
                        "retention_expected": r,
                        "observed": ~np.isnan(obs),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def expected_lifetime(self, horizon: int | None = None) -> float:
        """Expected number of periods a new customer pays for, E[T] = sum of S(t), t >= 0.

        Parameters
        ----------
        horizon : int, optional
            Count only the first ``horizon`` periods. Without it the closed form
            E[T] = (α + β - 1) / (α - 1) holds for α > 1 (mean of 1/θ under the beta);
            for α <= 1 the expectation is infinite (a group of near-permanent customers)
            and ``inf`` is returned: give a horizon.
        """
        alpha, beta = self._check_fitted()
        if horizon is None:
            return (alpha + beta - 1) / (alpha - 1) if alpha > 1 else float("inf")
        return float(sbg_survival(np.arange(horizon), alpha, beta).sum())

    def discounted_expected_residual_lifetime(self, discount_rate: float, renewals: int = 0) -> float:
        """DERL: discounted expected number of future payments of a customer who has renewed.

        Fader & Hardie (2010), eq. 6: for a customer who has made n - 1 renewals (been a
        customer for n periods), DERL = (β + n - 1) / (α + β + n - 1)
        · 2F1(1, β + n; α + β + n; 1 / (1 + d)); the next payment (renewal n) counts
        undiscounted.

        Parameters
        ----------
        discount_rate : float
            Per-period discount rate d (0.1 = 10%).
        renewals : int
            n - 1, the renewals made so far (0: a customer at the end of the first period).
        """
        alpha, beta = self._check_fitted()
        if not discount_rate > 0:
            raise ParamsError(f"discount_rate={discount_rate!r} must be positive (e.g. 0.1 for 10% per period).")
        n = renewals + 1
        return float((beta + n - 1) / (alpha + beta + n - 1) * special.hyp2f1(1, beta + n, alpha + beta + n, 1 / (1 + discount_rate)))

    def discounted_expected_lifetime(self, discount_rate: float) -> float:
        """DEL: discounted expected number of payments of a new customer, sum of S(t) / (1 + d)^t.

        The first payment (t = 0) is made at acquisition; the rest is the DERL of a
        customer with 0 renewals discounted one period (Fader & Hardie 2010, eq. 4 and 6).
        """
        return 1 + self.discounted_expected_residual_lifetime(discount_rate, renewals=0) / (1 + discount_rate)

    def customer_lifetime_value(self, margin_per_period: float, discount_rate: float) -> float:
        """Expected CLV of a new customer: margin per period x DEL (Fader & Hardie 2010, eq. 4)."""
        return margin_per_period * self.discounted_expected_lifetime(discount_rate)

    def value_table(self, margin_per_period: float, discount_rate: float, renewals: Sequence[int] = (0, 1, 2, 4, 7)) -> pd.DataFrame:
        """Lifetime and value figures for a new customer and for customers who have renewed.

        Returns
        -------
        DataFrame
            One row per customer status: ``renewals``, ``discounted_expected_lifetime``
            (payments), ``expected_value`` (margin x that), ``retention_next_period``.
        """
        alpha, beta = self._check_fitted()
        rows = [
            {
                "customer": "new (before the first payment)",
                "renewals": np.nan,
                "discounted_expected_lifetime": self.discounted_expected_lifetime(discount_rate),
                "retention_next_period": float(sbg_retention_rate(1, alpha, beta)),
            }
        ]
        for k in renewals:
            rows.append(
                {
                    "customer": f"after {fmt.count(k, 'renewal')}",
                    "renewals": k,
                    "discounted_expected_lifetime": self.discounted_expected_residual_lifetime(discount_rate, k),
                    "retention_next_period": float(sbg_retention_rate(k + 1, alpha, beta)),
                }
            )
        out = pd.DataFrame(rows).set_index("customer")
        out["expected_value"] = margin_per_period * out["discounted_expected_lifetime"]
        return out

    def _summary_notes(self) -> list[str]:
        """What α and β mean: the mean churn probability and the rising retention rate."""
        alpha, beta = self._check_fitted()
        mean_theta = alpha / (alpha + beta)
        return [
            f"Shifted-beta-geometric model (Fader & Hardie 2007) on {fmt.count(len(self.survivors_), 'cohort')}: "
            f"mean churn probability per period {fmt.percent(mean_theta)}; first-period retention "
            f"{fmt.percent(1 - mean_theta)}, rising to {fmt.percent(sbg_retention_rate(10, alpha, beta))} by period 10",
        ]
