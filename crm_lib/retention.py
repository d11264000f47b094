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
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from crm_lib.exceptions import DataValidationError, ParamsError

# The model (formulas, likelihood, fitter) lives in the model layer; its names stay importable here.
from crm_lib.models.shifted_beta_geo import (
    ShiftedBetaGeometricFitter,
    _as_cohorts,
    _validate_survivors,
    sbg_churn_probability,
    sbg_retention_rate,
    sbg_survival,
)

logger = logging.getLogger(__name__)

#: Contract period lengths accepted by :func:`survivors_from_contracts`.
PERIOD_OFFSETS = {"Y": pd.DateOffset(years=1), "Q": pd.DateOffset(months=3), "M": pd.DateOffset(months=1)}


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
