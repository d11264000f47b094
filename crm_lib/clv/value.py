"""Customer lifetime value from a fitted transaction model and the Gamma-Gamma spend model:
discounted expected purchases, CLV per customer, the per-customer value table, customer
equity with a parametric-bootstrap interval, and how concentrated value is."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_lib import format as fmt
from crm_lib.columns import require_columns
from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.export import write_customer_table  # noqa: F401  (re-exported: the one writer)
from crm_lib.models import MODEL_LABELS, SUMMARY_HINT, BTYDFit, GammaGammaFit, collapse_histories, fit_model, fit_spend_model
from crm_lib.summary import rfm_summary

logger = logging.getLogger(__name__)

__all__ = [
    "PERIODS_PER_MONTH",
    "CustomerEquity",
    "ValueConcentration",
    "discounted_expected_purchases",
    "customer_lifetime_value",
    "customer_value_table",
    "monthly_discount_rate",
    "predict_customer_value",
    "customer_equity",
    "value_concentration",
    "write_customer_table",
]

#: Months per time unit, as in lifetimes.utils._customer_lifetime_value (4.345 weeks a month).
PERIODS_PER_MONTH = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24, "h": 30.0 * 24}


def _periods_per_month(time_unit: str) -> float:
    if time_unit not in PERIODS_PER_MONTH:
        raise ParamsError(f"time_unit={time_unit!r} for CLV: use one of {', '.join(PERIODS_PER_MONTH)}.")
    return PERIODS_PER_MONTH[time_unit]


def discounted_expected_purchases(
    model: BTYDFit,
    frequency,
    recency,
    T,
    *,
    horizon_months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit: str = "W",
) -> np.ndarray:
    """Sum over months k = 1..horizon of the expected purchases in month k, discounted.

    The formula of ``lifetimes.utils._customer_lifetime_value``: month k contributes
    (E[X(k m)] - E[X((k - 1) m)]) / (1 + d)^k with m periods per month (4.345 weeks, 30
    days) and E the conditional expectation (FHL 2005a, eq. 10). Computed once per
    distinct (frequency, recency, T) and for all months at once.

    Returns
    -------
    ndarray
        One value per customer.
    """
    factor = _periods_per_month(time_unit)
    if horizon_months < 1 or int(horizon_months) != horizon_months:
        raise ParamsError(f"horizon_months must be a whole number >= 1; got {horizon_months}.")
    if discount_rate_monthly <= -1:
        raise ParamsError(f"discount_rate_monthly must be > -1; got {discount_rate_monthly}.")
    (x, tx, age), _, inverse = collapse_histories(frequency, recency, T)
    months = np.arange(1, int(horizon_months) + 1)
    t = np.concatenate([[0.0], months * factor])
    model._require_fit()
    discount = (1 + discount_rate_monthly) ** ((months * factor) / factor)
    return model._discounted_purchases(t, discount, x, tx, age)[inverse]


def customer_lifetime_value(
    transaction_model: BTYDFit,
    spend_model: GammaGammaFit,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit: str = "W",
    gross_margin: float = 1.0,
) -> pd.Series:
    """Discounted CLV of every customer over ``horizon_months``.

    gross_margin x E[spend per purchase | x, m] (Gamma-Gamma, note 025 eq. 5) x discounted
    expected purchases (:func:`discounted_expected_purchases`). With ``gross_margin=1`` it
    equals ``lifetimes.GammaGammaFitter.customer_lifetime_value`` (time=horizon_months,
    discount_rate=discount_rate_monthly, freq=time_unit).

    Parameters
    ----------
    transaction_model : BTYDFit
        Fitted BG/NBD, MBG/NBD or Pareto/NBD.
    spend_model : GammaGammaFit
    summary : DataFrame
        frequency, recency, T, monetary_value (same time unit as the fit).
    horizon_months : int
    discount_rate_monthly : float
        Monthly discount rate (annual rate r: (1 + r) ** (1 / 12) - 1).
    time_unit : {"W", "D", "h", "M"}
        Unit of recency and T.
    gross_margin : float
        Share of spend that is profit (1 = revenue CLV).

    Returns
    -------
    Series
        CLV per customer, indexed like ``summary``, named ``clv``.
    """
    require_columns(summary, ["frequency", "recency", "T", "monetary_value"], "CLV", SUMMARY_HINT)
    if not 0 < gross_margin <= 1:
        raise ParamsError(f"gross_margin must be in (0, 1]; got {gross_margin}.")
    spend = np.asarray(spend_model.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"]),
                       dtype=float)
    purchases = discounted_expected_purchases(
        transaction_model, summary["frequency"], summary["recency"], summary["T"],
        horizon_months=horizon_months, discount_rate_monthly=discount_rate_monthly, time_unit=time_unit)
    return pd.Series(gross_margin * spend * purchases, index=summary.index, name="clv")


def customer_value_table(
    summary: pd.DataFrame,
    transaction_model: BTYDFit,
    spend_model: GammaGammaFit,
    *,
    horizon_periods: float = 52,
    horizon_months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit: str = "W",
    gross_margin: float = 1.0,
) -> pd.DataFrame:
    """Per-customer outputs for the teams that act on them.

    Returns
    -------
    DataFrame
        Indexed like ``summary``: frequency, recency, T, monetary_value, p_alive,
        expected_purchases (next ``horizon_periods``), expected_spend_per_purchase, clv
        (discounted, ``horizon_months``, after gross margin), sorted as the input.
        ``attrs`` record the horizon, discount rate, margin and models.
    """
    require_columns(summary, ["frequency", "recency", "T", "monetary_value"], "customer table", SUMMARY_HINT)
    out = summary[["frequency", "recency", "T", "monetary_value"]].copy()
    (x, tx, age), _, inverse = collapse_histories(out["frequency"], out["recency"], out["T"])
    out["p_alive"] = np.asarray(transaction_model.conditional_probability_alive(x, tx, age))[inverse]
    out["expected_purchases"] = np.asarray(
        transaction_model.conditional_expected_number_of_purchases_up_to_time(horizon_periods, x, tx, age))[inverse]
    out["expected_spend_per_purchase"] = np.asarray(
        spend_model.conditional_expected_average_profit(out["frequency"], out["monetary_value"]))
    out["clv"] = customer_lifetime_value(
        transaction_model, spend_model, summary, horizon_months=horizon_months,
        discount_rate_monthly=discount_rate_monthly, time_unit=time_unit, gross_margin=gross_margin)
    out.attrs.update(horizon_periods=horizon_periods, time_unit=time_unit, horizon_months=horizon_months,
                     discount_rate_monthly=discount_rate_monthly, gross_margin=gross_margin,
                     transaction_model=transaction_model.name, spend_model=spend_model.name)
    return out


def monthly_discount_rate(discount_rate_annual: float) -> float:
    """The monthly rate that compounds to ``discount_rate_annual`` over twelve months.

    ``(1 + r) ** (1 / 12) - 1``, so that discounting month by month for a year equals
    discounting once at the annual rate.

    Raises
    ------
    ParamsError
        A rate of -100% or below.

    Examples
    --------
    >>> round(monthly_discount_rate(0.10), 6)
    0.007974
    """
    if discount_rate_annual <= -1:
        raise ParamsError(f"discount_rate_annual must be > -1 (e.g. 0.10 for 10%); got {discount_rate_annual}.")
    return (1 + discount_rate_annual) ** (1 / 12) - 1


def predict_customer_value(
    transactions: pd.DataFrame,
    *,
    model: str = "bg_nbd",
    time_unit: str = "W",
    horizon_months: int = 12,
    horizon_periods: float = 52,
    discount_rate_annual: float = 0.10,
    gross_margin: float = 1.0,
    observation_end: str | pd.Timestamp | None = None,
    penalizer_coef: float = 0.0,
) -> pd.DataFrame:
    """Predicted CLV, P(alive) and expected purchases of every customer, from a transaction log.

    The whole chain of the lifetime-value report in one call, for reports that only need
    its result: :func:`crm_lib.summary.rfm_summary` -> :func:`fit_model` (``model``) and
    :func:`fit_spend_model` (Gamma-Gamma; repeat buyers whose repeat purchases were all
    free are left out of the fit) -> :func:`customer_value_table`, with the annual
    discount rate converted by :func:`monthly_discount_rate`. The models are fitted on
    the whole window up to ``observation_end``.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase with ``customer_id``, ``date`` and ``amount``
        (``TransactionLog.transactions``).
    model : {"bg_nbd", "mbg_nbd", "pareto_nbd"}
        Buy-till-you-die model of repeat purchasing and drop-out. Under BG/NBD customers
        without a repeat purchase have P(alive) = 1 by construction; Pareto/NBD does not
        have that property.
    time_unit : {"W", "D"}
        Unit of frequency, recency and T (purchases in one period count once).
    horizon_months : int
        CLV horizon in months.
    horizon_periods : float
        Horizon of ``expected_purchases``, in ``time_unit``.
    discount_rate_annual : float
        Annual discount rate of future cash flows.
    gross_margin : float
        Share of spend kept as gross profit; 1.0 gives CLV in revenue.
    observation_end : str or Timestamp, optional
        End of observation; defaults to the last transaction date.
    penalizer_coef : float
        L2 penalty on the parameters of both models; 0 is plain maximum likelihood.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (every customer of the log): ``frequency``,
        ``recency``, ``T``, ``monetary_value``, ``p_alive``, ``expected_purchases``,
        ``expected_spend_per_purchase`` and ``clv``; ``attrs`` record the models,
        horizons, discount rates, margin and ``spend_fit_excluded`` (repeat buyers
        left out of the Gamma-Gamma fit).

    Raises
    ------
    ParamsError
        Unknown model, bad horizon, discount rate or margin.
    ModelFitError
        Too few repeat buyers, or a model that does not converge.

    Examples
    --------
    >>> value = predict_customer_value(log.transactions, model="pareto_nbd")  # doctest: +SKIP
    >>> value[["clv", "p_alive"]].describe()                                  # doctest: +SKIP
    """
    summary = rfm_summary(transactions, observation_end=observation_end, time_unit=time_unit)
    transaction_model = fit_model(summary, model, penalizer_coef=penalizer_coef)
    spend_model = fit_spend_model(summary, penalizer_coef=penalizer_coef, nonpositive_spend="exclude")
    table = customer_value_table(
        summary, transaction_model, spend_model, horizon_periods=horizon_periods, horizon_months=horizon_months,
        discount_rate_monthly=monthly_discount_rate(discount_rate_annual), time_unit=time_unit,
        gross_margin=gross_margin,
    )
    # Surfaced, not swallowed: the report says how many repeat buyers the spend model left out.
    table.attrs.update(discount_rate_annual=discount_rate_annual, spend_fit_excluded=int(spend_model.n_excluded_))
    logger.info("predicted CLV of %s customers with %s and Gamma-Gamma", f"{len(table):,}", MODEL_LABELS[model])
    return table


@dataclass(frozen=True)
class CustomerEquity:
    """Sum of CLV over the base with a parametric-bootstrap interval."""

    estimate: float
    lower: float
    upper: float
    level: float
    n_customers: int
    n_draws: int
    seed: int
    horizon_months: int
    method: str = "parametric bootstrap of the model parameters (asymptotic normal log-parameters)"
    draws: np.ndarray = field(default=None, repr=False, compare=False)

    def summary(self) -> str:
        return (f"Customer equity over {fmt.count(self.horizon_months, 'month')}: {fmt.number(self.estimate)} "
                f"({fmt.percent(self.level, 0)} interval {fmt.number(self.lower)} to {fmt.number(self.upper)}; "
                f"{fmt.count(self.n_customers, 'customer')}, {fmt.count(self.n_draws, 'draw')}, seed {self.seed}).")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"estimate": self.estimate, "lower": self.lower, "upper": self.upper, "level": self.level,
                              "n_customers": self.n_customers, "n_draws": self.n_draws, "seed": self.seed,
                              "horizon_months": self.horizon_months, "method": self.method}])


def customer_equity(
    transaction_model: BTYDFit,
    spend_model: GammaGammaFit,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit: str = "W",
    gross_margin: float = 1.0,
    n_draws: int = 200,
    level: float = 0.95,
    seed: int = 0,
) -> CustomerEquity:
    """Customer equity (sum of CLV) with an uncertainty interval.

    The interval reflects the estimation uncertainty of both models: parameters are drawn
    ``n_draws`` times from the asymptotic normal distribution of the log-parameters
    (inverse observed information), equity is recomputed for each draw, and the interval
    is the central ``level`` percentile range of the draws (seeded).

    Returns
    -------
    CustomerEquity
    """
    if not 0 < level < 1:
        raise ParamsError(f"level must be between 0 and 1; got {level}.")
    kwargs = dict(horizon_months=horizon_months, discount_rate_monthly=discount_rate_monthly, time_unit=time_unit,
                  gross_margin=gross_margin)
    estimate = float(customer_lifetime_value(transaction_model, spend_model, summary, **kwargs).sum())
    rng = np.random.default_rng(seed)
    transaction_draws = transaction_model.draw_params(n_draws, rng)
    spend_draws = spend_model.draw_params(n_draws, rng)
    draws = np.empty(n_draws)
    for i in range(n_draws):
        draws[i] = customer_lifetime_value(transaction_model.with_params(transaction_draws[i]),
                                           spend_model.with_params(spend_draws[i]), summary, **kwargs).sum()
    finite = draws[np.isfinite(draws)]
    if len(finite) < n_draws:
        logger.warning("customer equity: %d of %d parameter draws gave a non-finite equity and were left out",
                       n_draws - len(finite), n_draws)
    lower, upper = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return CustomerEquity(estimate, float(lower), float(upper), level, len(summary), n_draws, seed, horizon_months,
                          draws=draws)


@dataclass(frozen=True)
class ValueConcentration:
    """How concentrated value is: top shares, Gini coefficient and the Lorenz curve."""

    top_shares: pd.Series
    gini: float
    lorenz: pd.DataFrame = field(repr=False)
    n_customers: int
    total: float

    def summary(self) -> str:
        parts = ", ".join(f"top {fmt.percent(p, 0)} hold {fmt.percent(s)}" for p, s in self.top_shares.items())
        return (f"Of a total value of {fmt.number(self.total)} over {fmt.count(self.n_customers, 'customer')}: "
                f"{parts}; Gini {fmt.number(self.gini, 3)}.")

    def to_frame(self) -> pd.DataFrame:
        frame = self.top_shares.rename("value_share").to_frame()
        frame.index.name = "top_customer_share"
        return frame


def value_concentration(values: pd.Series, *, top=(0.01, 0.10, 0.20), n_points: int = 201) -> ValueConcentration:
    """Share of total value held by the most valuable customers, and the Lorenz curve.

    Parameters
    ----------
    values : Series
        One non-negative value per customer (CLV).
    top : sequence of float
        Customer shares to report (0.01 = top 1%); the top k = ceil(share * n).
    n_points : int
        Points of the Lorenz curve.

    Returns
    -------
    ValueConcentration
        ``lorenz`` has columns customer_share (poorest first) and value_share.
    """
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or not np.isfinite(v).all():
        raise DataValidationError(f"value concentration: need finite values; got {len(v)} values, "
                                  f"{int((~np.isfinite(v)).sum())} not finite.")
    if (v < 0).any():
        raise DataValidationError(f"value concentration: {int((v < 0).sum())} negative values (e.g. {v[v < 0][0]}); "
                                  "concentration shares need non-negative values.")
    total = v.sum()
    if total <= 0:
        raise DataValidationError("value concentration: all values are zero.")
    descending = np.sort(v)[::-1]
    cum = np.cumsum(descending) / total
    n = len(v)
    shares = pd.Series({p: float(cum[max(int(np.ceil(p * n)), 1) - 1]) for p in top}, name="value_share")
    ascending_cum = np.concatenate([[0.0], np.cumsum(np.sort(v)) / total])
    customer_share = np.linspace(0, 1, n_points)
    lorenz = pd.DataFrame({"customer_share": customer_share,
                           "value_share": np.interp(customer_share * n, np.arange(n + 1), ascending_cum)})
    # Gini = 1 - 2 * area under the Lorenz curve (trapezoids over all customers).
    gini = float(1 - (ascending_cum[1:] + ascending_cum[:-1]).sum() / n)
    return ValueConcentration(shares, gini, lorenz, n, float(total))
