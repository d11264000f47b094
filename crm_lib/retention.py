"""Contractual retention: the shifted-beta-geometric (sBG) model.

In a contractual setting (subscriptions, contracts) churn is observed: each period a
customer renews or cancels. Fader & Hardie (2007), "How to project customer retention",
*Journal of Interactive Marketing* 21(1), assume that

- each customer renews at the end of every period with a constant probability 1 - θ
  (so the lifetime T in periods is shifted-geometric: P(T = t | θ) = θ (1 - θ)^(t-1));
- θ varies across customers as a beta(α, β) distribution.

Then the survival function and the retention rates have closed forms (their eq. 5-8),
the model is fitted by maximum likelihood on cohort survivor counts (eq. 9), and the
aggregate retention rate *rises* over time although nobody's renewal probability
changes: the customers with a high θ leave first (heterogeneity, not loyalty).

Value figures follow Fader & Hardie (2010), "Customer-base valuation in a contractual
setting: the perils of ignoring heterogeneity", *Marketing Science* 29(1): the
discounted expected lifetime of a new customer and the discounted expected residual
lifetime (DERL) of a customer who has renewed n - 1 times, and CLV = margin x DEL.

Survivor counts come from the params file (one list per cohort, starting with the cohort
size) or from a log of contracts with start and cancellation dates
(:func:`survivors_from_contracts`).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError

logger = logging.getLogger(__name__)

#: Contract period lengths accepted by :func:`survivors_from_contracts`.
PERIOD_OFFSETS = {"Y": pd.DateOffset(years=1), "Q": pd.DateOffset(months=3), "M": pd.DateOffset(months=1)}


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


def _negative_log_likelihood(log_params: np.ndarray, counts: list[np.ndarray]) -> float:
    alpha, beta = np.exp(log_params)
    total = 0.0
    for n in counts:
        t = np.arange(1, len(n))
        lost = n[:-1] - n[1:]
        # Fader & Hardie (2007), eq. 9: those who cancelled in period t contribute
        # ln P(T = t); those still active after the last period contribute ln S(t_max).
        total += lost @ np.log(sbg_churn_probability(t, alpha, beta)) + n[-1] * np.log(
            sbg_survival(len(n) - 1, alpha, beta)
        )
    return -float(total)


class ShiftedBetaGeometricFitter:
    """Shifted-beta-geometric model of contractual retention (Fader & Hardie 2007).

    Attributes (after :meth:`fit`)
    ------------------------------
    params_ : Series
        ``alpha``, ``beta``.
    standard_errors_ : Series
        Asymptotic standard errors of ``alpha`` and ``beta`` (inverse Hessian of the
        negative log-likelihood in (log α, log β), delta method).
    covariance_ : DataFrame
        Their covariance matrix.
    log_likelihood_ : float
    survivors_ : DataFrame
        The survivor counts fitted, cohorts x periods.

    Examples
    --------
    >>> fitter = ShiftedBetaGeometricFitter().fit([1000, 869, 743, 653, 593, 551, 517, 491])
    >>> fitter.params_.round(3).tolist()
    [0.668, 3.806]
    """

    def __init__(self) -> None:
        self.params_: pd.Series | None = None

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
        result = optimize.minimize(
            _negative_log_likelihood, x0=np.zeros(2), args=(counts,), method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-10, "maxiter": 5000},
        )
        if not result.success:
            raise ModelFitError(f"the sBG fit did not converge ({result.message}); check the survivor counts.")
        # Polish with BFGS from the simplex optimum (gradient-based, tight tolerance).
        polished = optimize.minimize(_negative_log_likelihood, x0=result.x, args=(counts,), method="BFGS")
        x = polished.x if polished.fun <= result.fun else result.x
        hessian = _numerical_hessian(lambda p: _negative_log_likelihood(p, counts), x)
        try:
            cov_log = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            cov_log = np.full((2, 2), np.nan)
        alpha, beta = np.exp(x)
        # Delta method: d(exp(u))/du = exp(u).
        jac = np.diag([alpha, beta])
        cov = jac @ cov_log @ jac
        se = np.sqrt(np.diag(cov))
        if not np.all(np.isfinite(se)) or np.any(np.diag(cov) <= 0):
            raise ModelFitError(
                f"the sBG fit gives alpha={alpha:.3g}, beta={beta:.3g} but their standard errors are not finite: "
                "the counts do not identify the model (too few periods or cancellations)."
            )
        names = ["alpha", "beta"]
        self.params_ = pd.Series([alpha, beta], index=names, name="estimate")
        self.standard_errors_ = pd.Series(se, index=names, name="standard_error")
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        self.log_likelihood_ = -_negative_log_likelihood(x, counts)
        self.survivors_ = frame
        return self

    def _check_fitted(self) -> tuple[float, float]:
        if self.params_ is None:
            raise ModelFitError("the sBG model is not fitted yet; call fit(survivors) first.")
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
                    "customer": f"after {k} renewal{'s' if k != 1 else ''}",
                    "renewals": k,
                    "discounted_expected_lifetime": self.discounted_expected_residual_lifetime(discount_rate, k),
                    "retention_next_period": float(sbg_retention_rate(k + 1, alpha, beta)),
                }
            )
        out = pd.DataFrame(rows).set_index("customer")
        out["expected_value"] = margin_per_period * out["discounted_expected_lifetime"]
        return out

    def to_frame(self) -> pd.DataFrame:
        """α and β with standard errors."""
        self._check_fitted()
        return pd.DataFrame({"estimate": self.params_, "standard_error": self.standard_errors_})

    def summary(self) -> str:
        """α, β, standard errors, log-likelihood and what they mean."""
        alpha, beta = self._check_fitted()
        se = self.standard_errors_
        mean_theta = alpha / (alpha + beta)
        return "\n".join(
            [
                f"Shifted-beta-geometric fit (Fader & Hardie 2007) on {len(self.survivors_)} cohort(s)",
                f"  alpha {alpha:.3f} (s.e. {se['alpha']:.3f}), beta {beta:.3f} (s.e. {se['beta']:.3f}), "
                f"log-likelihood {self.log_likelihood_:,.1f}",
                f"  mean churn probability per period {mean_theta:.1%}; first-period retention "
                f"{1 - mean_theta:.1%}, rising to {sbg_retention_rate(10, alpha, beta):.1%} by period 10",
            ]
        )


def _numerical_hessian(func, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function (for the standard errors)."""
    k = len(x)
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei = np.eye(k)[i] * step
            ej = np.eye(k)[j] * step
            hess[i, j] = (func(x + ei + ej) - func(x + ei - ej) - func(x - ei + ej) + func(x - ei - ej)) / (4 * step**2)
    return hess


@dataclass(frozen=True)
class LifetimeIdentification:
    """Whether the sBG expected lifetime E[T] = (α + β - 1) / (α - 1) is finite and identified.

    Attributes
    ----------
    status : {"finite", "unbounded", "not identified"}
        ``"unbounded"``: α ≤ 1, the mean is infinite (Fader & Hardie 2007: the beta
        density of the churn probability piles up near 0, some customers almost never
        cancel). ``"not identified"``: α > 1 but its interval reaches 1, so the data
        cannot tell a finite mean from an infinite one.
    expected_lifetime : float
        E[T] in periods when ``status == "finite"``, else NaN (never a huge number).
    alpha, beta : float
    alpha_lower, alpha_upper : float
        Interval of α at ``level`` (Wald on log α, as the fit's standard errors).
    level : float
    """

    status: str
    expected_lifetime: float
    alpha: float
    beta: float
    alpha_lower: float
    alpha_upper: float
    level: float = 0.95

    def sentence(self, period_label: str = "period") -> str:
        """The expected lifetime, or why there is none, in words."""
        # Enough digits to show how close to 1 an estimate is (1.0000004, not 1.00).
        a = f"{self.alpha:.7f}" if abs(self.alpha - 1) < 5e-4 else f"{self.alpha:.3f}"
        interval = f"{self.level:.0%} interval of α {self.alpha_lower:.2f} to {self.alpha_upper:.2f}"
        if self.status == "finite":
            return f"expected lifetime {self.expected_lifetime:,.1f} {period_label}s (α = {a}, {interval})"
        if self.status == "unbounded":
            return (f"expected lifetime unbounded: α = {a} ≤ 1, so a group of customers almost never "
                    "cancels and the mean number of periods is infinite")
        return (f"expected lifetime not identified: α = {a} but its {interval} includes 1, where the mean "
                "becomes infinite, so the data cannot bound it")

    def to_frame(self) -> pd.DataFrame:
        """One row with every field."""
        return pd.DataFrame([self.__dict__])


def lifetime_identification(
    alpha: float,
    beta: float,
    *,
    alpha_se: float | None = None,
    alpha_interval: tuple[float, float] | None = None,
    level: float = 0.95,
) -> LifetimeIdentification:
    """Is the sBG expected lifetime finite, and do the data identify it?

    E[T] = (α + β - 1) / (α - 1) for α > 1 and infinite for α ≤ 1 (the mean of 1/θ
    under a beta(α, β)). Near α = 1 the estimate explodes (α = 1.0000004 gives 7 million
    periods), so it is reported only when the whole interval of α lies above 1.

    Parameters
    ----------
    alpha, beta : float
        Fitted sBG parameters.
    alpha_se : float, optional
        Standard error of α (delta method); the interval is α·exp(±z·se/α), a Wald
        interval on log α, the scale the model is fitted on.
    alpha_interval : (float, float), optional
        An interval of α computed elsewhere (profile likelihood, bootstrap); used
        instead of ``alpha_se``.
    level : float
        Confidence level of the interval.

    Returns
    -------
    LifetimeIdentification

    Raises
    ------
    ParamsError
        α or β not positive, or neither ``alpha_se`` nor ``alpha_interval`` given.

    Examples
    --------
    >>> lifetime_identification(1.0000004, 2.0, alpha_se=0.95).status
    'not identified'
    """
    if not (alpha > 0 and beta > 0):
        raise ParamsError(f"alpha={alpha!r} and beta={beta!r} must be positive sBG parameters.")
    if alpha_interval is not None:
        lower, upper = (float(v) for v in alpha_interval)
    elif alpha_se is not None and np.isfinite(alpha_se):
        z = special.ndtri(0.5 + level / 2)
        spread = np.exp(z * float(alpha_se) / alpha)
        lower, upper = alpha / spread, alpha * spread
    else:
        raise ParamsError("give alpha_se or alpha_interval: the expected lifetime cannot be judged without them.")
    if alpha <= 1:
        status = "unbounded"
    elif lower <= 1:
        status = "not identified"
    else:
        status = "finite"
    value = (alpha + beta - 1) / (alpha - 1) if status == "finite" else np.nan
    return LifetimeIdentification(status, float(value), float(alpha), float(beta), lower, upper, level)


def fit_cohort_models(survivors: dict | pd.DataFrame) -> dict[str, ShiftedBetaGeometricFitter]:
    """One fitted sBG model per cohort (each cohort gets its own α and β).

    Parameters
    ----------
    survivors : dict or DataFrame
        ``{cohort: [n_0, n_1, ...]}`` or one row per cohort (NaN after the last period).

    Returns
    -------
    dict
        Cohort name -> fitted :class:`ShiftedBetaGeometricFitter`, in the input order.
    """
    frame = _as_cohorts(survivors)
    _validate_survivors(frame)
    return {str(cohort): ShiftedBetaGeometricFitter().fit(row.dropna().rename(cohort)) for cohort, row in frame.iterrows()}


def project_cohorts(models: dict[str, ShiftedBetaGeometricFitter], periods: int) -> pd.DataFrame:
    """The projections of :meth:`ShiftedBetaGeometricFitter.projection` for every cohort, stacked."""
    return pd.concat([model.projection(periods) for model in models.values()], ignore_index=True)


def value_by_cohort(
    models: dict[str, ShiftedBetaGeometricFitter],
    *,
    margin_per_period: float,
    discount_rate: float,
    horizon: int = 10,
    period_label: str = "period",
) -> pd.DataFrame:
    """Lifetime and value of a new customer in each cohort.

    Returns
    -------
    DataFrame
        Indexed by cohort: ``alpha``, ``beta``, ``retention_first_period``,
        ``expected_lifetime`` (periods; inf when α <= 1), ``lifetime_status`` and
        ``lifetime_text`` (:func:`lifetime_identification`: say "unbounded" or "not
        identified" instead of the number when α's interval reaches 1),
        ``expected_periods_within_horizon``,
        ``discounted_expected_lifetime`` (DEL, payments), ``clv`` (margin x DEL),
        ``derl_after_first_renewal`` (DERL of a customer with one renewal).
    """
    rows = {}
    for cohort, model in models.items():
        alpha, beta = model.params_
        lifetime = lifetime_identification(alpha, beta, alpha_se=model.standard_errors_["alpha"])
        rows[cohort] = {
            "alpha": alpha,
            "beta": beta,
            "retention_first_period": float(sbg_retention_rate(1, alpha, beta)),
            "expected_lifetime": model.expected_lifetime(),
            "lifetime_status": lifetime.status,
            "lifetime_text": lifetime.sentence(period_label),
            "expected_periods_within_horizon": model.expected_lifetime(horizon),
            "discounted_expected_lifetime": model.discounted_expected_lifetime(discount_rate),
            "clv": model.customer_lifetime_value(margin_per_period, discount_rate),
            "derl_after_first_renewal": model.discounted_expected_residual_lifetime(discount_rate, renewals=1),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "cohort"
    return out


def load_survivors(
    survivors: dict | None = None,
    *,
    contracts_path: str | None = None,
    start_col: str = "start_date",
    cancel_col: str = "cancel_date",
    contract_period: str = "Y",
    observation_end: str | None = None,
) -> pd.DataFrame:
    """Survivor counts from the params (``survivors``) or from a CSV of contracts.

    Parameters
    ----------
    survivors : dict, optional
        ``{cohort name: [n_0, n_1, ...]}``; used when ``contracts_path`` is None.
    contracts_path : str, optional
        CSV file with one row per contract, a start-date and a cancellation-date column
        (empty for active contracts); see :func:`survivors_from_contracts`.
    start_col, cancel_col, contract_period, observation_end
        As in :func:`survivors_from_contracts`.

    Returns
    -------
    DataFrame
        Cohorts x periods survivor counts.

    Raises
    ------
    ParamsError
        Neither or both sources given, or a contracts file that does not exist.
    """
    if (survivors is None) == (contracts_path is None):
        raise ParamsError(
            "give either survivors (counts per cohort) or contracts_path (a CSV of contracts) in params, not "
            f"{'both' if survivors is not None else 'neither'}."
        )
    if contracts_path is None:
        return survivors_from_params(survivors)
    from pathlib import Path

    path = Path(contracts_path)
    if not path.is_file():
        raise ParamsError(f"contracts_path: file not found ({path}); check the path in params.")
    contracts = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    return survivors_from_contracts(
        contracts, start_col=start_col, cancel_col=cancel_col, period=contract_period, observation_end=observation_end
    )


def fit_cohorts(survivors: dict | pd.DataFrame) -> pd.DataFrame:
    """Fit one sBG model per cohort and tabulate α, β, their standard errors and the log-likelihood.

    Parameters
    ----------
    survivors : dict or DataFrame
        ``{cohort: [n_0, n_1, ...]}`` or one row per cohort.

    Returns
    -------
    DataFrame
        Indexed by cohort: ``alpha``, ``alpha_se``, ``beta``, ``beta_se``,
        ``log_likelihood``, ``periods_observed``, ``cohort_size``.
    """
    frame = _as_cohorts(survivors)
    rows = {}
    for (cohort, row), fitter in zip(frame.iterrows(), fit_cohort_models(frame).values()):
        rows[cohort] = {
            "alpha": fitter.params_["alpha"],
            "alpha_se": fitter.standard_errors_["alpha"],
            "beta": fitter.params_["beta"],
            "beta_se": fitter.standard_errors_["beta"],
            "log_likelihood": fitter.log_likelihood_,
            "periods_observed": int(row.notna().sum() - 1),
            "cohort_size": int(row.iloc[0]),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "cohort"
    return out


def survivors_from_params(cohorts: dict) -> pd.DataFrame:
    """Survivor counts from the params file: ``{cohort name: [n_0, n_1, ...]}``.

    Raises
    ------
    ParamsError
        Not a mapping of names to lists of numbers.
    """
    if not isinstance(cohorts, dict) or not cohorts:
        raise ParamsError(
            f"survivors must map each cohort name to its survivor counts, e.g. {{'high end': [1000, 869, 743]}}; "
            f"got {type(cohorts).__name__} {cohorts!r:.80}."
        )
    for name, counts in cohorts.items():
        if not isinstance(counts, (list, tuple)) or not all(isinstance(c, (int, float)) for c in counts):
            raise ParamsError(
                f"survivors['{name}'] must be a list of counts starting with the cohort size, e.g. [1000, 869, 743]; "
                f"got {counts!r:.80}."
            )
    frame = _as_cohorts(cohorts)
    _validate_survivors(frame)
    return frame


def survivors_from_contracts(
    contracts: pd.DataFrame,
    *,
    start_col: str = "start_date",
    cancel_col: str = "cancel_date",
    period: str = "Y",
    observation_end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Survivor counts per start cohort from a log of contracts with cancellation dates.

    Contracts are grouped by the calendar period of their start (the cohort); a contract
    survives period k when it is not cancelled before its k-th anniversary (k periods
    after its own start). Period k of a cohort is counted only when every contract of the
    cohort has reached its k-th anniversary by the observation end.

    Parameters
    ----------
    contracts : DataFrame
        One row per contract: start date and cancellation date (empty: still active).
    start_col, cancel_col : str
    period : str
        Pandas period alias of a contract period (``"Y"`` years, ``"M"`` months).
    observation_end : str or Timestamp, optional
        Defaults to the latest start or cancellation date.

    Returns
    -------
    DataFrame
        One row per start cohort (str), columns 0, 1, ... survivors; NaN where not observed.

    Raises
    ------
    ParamsError
        Missing column.
    DataValidationError
        Dates that do not parse or cancellations before the start.
    """
    for column in (start_col, cancel_col):
        if column not in contracts.columns:
            raise ParamsError(
                f"contracts: column '{column}' not found; the table has {list(contracts.columns)}. "
                "Name the start and cancellation columns."
            )
    start = pd.to_datetime(contracts[start_col], errors="coerce")
    cancel = pd.to_datetime(contracts[cancel_col], errors="coerce")
    bad_start = start.isna()
    if bad_start.any():
        raise DataValidationError(
            f"contracts: column '{start_col}' has {int(bad_start.sum()):,} of {len(start):,} values that are not dates "
            f"(e.g. {contracts[start_col][bad_start].iloc[0]!r}); fix the rows."
        )
    bad_cancel = cancel.isna() & contracts[cancel_col].notna() & (contracts[cancel_col].astype(str).str.strip() != "")
    if bad_cancel.any():
        raise DataValidationError(
            f"contracts: column '{cancel_col}' has {int(bad_cancel.sum()):,} values that are not dates "
            f"(e.g. {contracts[cancel_col][bad_cancel].iloc[0]!r}); leave it empty for active contracts."
        )
    before = cancel < start
    if before.any():
        raise DataValidationError(
            f"contracts: {int(before.sum()):,} contracts are cancelled before they start "
            f"(e.g. row {int(np.flatnonzero(before.to_numpy())[0])}); fix the dates."
        )
    if period not in PERIOD_OFFSETS:
        raise ParamsError(f"period={period!r} is not supported; use one of {', '.join(PERIOD_OFFSETS)}.")
    offset = PERIOD_OFFSETS[period]
    end = pd.Timestamp(observation_end) if observation_end is not None else max(start.max(), cancel.max())
    cohort = start.dt.to_period(period)
    rows = {}
    for c in sorted(cohort.unique()):
        members = (cohort == c).to_numpy()
        starts, cancels = start[members], cancel[members]
        counts = [int(members.sum())]
        k = 1
        # Period k of a contract ends on its k-th anniversary; count k only when every
        # contract of the cohort has reached it by the observation end.
        while (starts.max() + k * offset) <= end:
            anniversary = starts + k * offset
            counts.append(int((cancels.isna() | (cancels >= anniversary)).sum()))
            k += 1
        rows[str(c)] = counts
    return _as_cohorts(rows)


__all__ = [
    "LifetimeIdentification",
    "ShiftedBetaGeometricFitter",
    "lifetime_identification",
    "fit_cohort_models",
    "fit_cohorts",
    "load_survivors",
    "project_cohorts",
    "value_by_cohort",
    "sbg_churn_probability",
    "sbg_retention_rate",
    "sbg_survival",
    "survivors_from_contracts",
    "survivors_from_params",
]
