"""Customer lifetime value from a fitted transaction model and the Gamma-Gamma spend model:
discounted expected purchases, CLV per customer, the per-customer value table, customer
equity with a parameter-uncertainty interval (expected equity) and a predictive interval
(realised equity, adding customer-level purchase and spend noise), and how concentrated
value is."""
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
    "NOISE_SAMPLE_CUSTOMERS",
    "PERIODS_PER_MONTH",
    "CustomerEquity",
    "ValueConcentration",
    "discounted_expected_purchases",
    "customer_lifetime_value",
    "customer_value_table",
    "monthly_discount_rate",
    "predict_customer_value",
    "customer_equity",
    "simulate_future_purchases",
    "simulate_realised_equity",
    "value_concentration",
    "write_customer_table",
]

#: Months per time unit, as in lifetimes.utils._customer_lifetime_value (4.345 weeks a month).
PERIODS_PER_MONTH = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24, "h": 30.0 * 24}


def _check_horizon(horizon_months: int, discount_rate_monthly: float) -> None:
    """The one check of the CLV horizon and the monthly discount rate."""
    if horizon_months < 1 or int(horizon_months) != horizon_months:
        raise ParamsError(f"horizon_months must be a whole number >= 1; got {horizon_months}.")
    if discount_rate_monthly <= -1:
        raise ParamsError(f"discount_rate_monthly must be > -1; got {discount_rate_monthly}.")


def _check_margin(gross_margin: float) -> None:
    """The one check of ``gross_margin``: the share of spend that is profit, in (0, 1]."""
    if not 0 < gross_margin <= 1:
        raise ParamsError(f"gross_margin must be in (0, 1]; got {gross_margin}.")


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
    _check_horizon(horizon_months, discount_rate_monthly)
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
    _check_margin(gross_margin)
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


#: What the two equity intervals are, in words (``{n}`` is the number of draws).
EXPECTED_METHOD = ("parameter-uncertainty interval: normal approximation to the maximum-likelihood estimates of both "
                   "models' log-parameters, {n} draws")
PREDICTIVE_METHOD = ("predictive interval: the same {n} parameter draws, each with every customer's purchases and "
                     "spend over the horizon simulated from the fitted models given the customer's history")

#: Models whose future purchases :func:`simulate_realised_equity` can simulate.
_PREDICTIVE_MODELS = ("bg_nbd", "mbg_nbd", "pareto_nbd")


@dataclass(frozen=True)
class CustomerEquity:
    """Customer equity (sum of CLV over the base) with two intervals that answer two questions.

    ``estimate`` is the EXPECTED equity at the fitted parameters. The
    parameter-uncertainty interval (``expected_lower``, ``expected_upper``) says where the
    expected equity lies given the estimation uncertainty of both models. The predictive
    interval (``predictive_lower``, ``predictive_upper``) says where the equity the base
    will actually yield lies: it adds the customer-level noise of who stays, how often
    they buy and how much they spend. ``lower``/``upper`` are the former names of the
    parameter-uncertainty interval.
    """

    estimate: float
    expected_lower: float
    expected_upper: float
    predictive_lower: float
    predictive_upper: float
    level: float
    n_customers: int
    n_draws: int
    seed: int
    horizon_months: int
    expected_method: str
    predictive_method: str
    draws: np.ndarray = field(default=None, repr=False, compare=False)
    predictive_draws: np.ndarray = field(default=None, repr=False, compare=False)
    sample_note: str = ""

    @property
    def lower(self) -> float:
        """Lower end of the parameter-uncertainty interval (former name)."""
        return self.expected_lower

    @property
    def upper(self) -> float:
        """Upper end of the parameter-uncertainty interval (former name)."""
        return self.expected_upper

    @property
    def method(self) -> str:
        """Both methods, in words."""
        return f"{self.expected_method}; {self.predictive_method}"

    @property
    def parameter_sd(self) -> float:
        """Standard deviation of the expected equity over the parameter draws."""
        return float(np.nanstd(self.draws, ddof=1))

    @property
    def noise_sd(self) -> float:
        """Standard deviation of realised minus expected equity at the same parameter draw:
        the customer-level purchase and spend noise alone."""
        return float(np.nanstd(self.predictive_draws - self.draws, ddof=1))

    def summary(self) -> str:
        level = fmt.percent(self.level, 0)
        return (
            f"Expected customer equity over {fmt.count(self.horizon_months, 'month')}: {fmt.number(self.estimate)} "
            f"({fmt.count(self.n_customers, 'customer')}). {level} parameter-uncertainty interval of the expected "
            f"equity: {fmt.number(self.expected_lower)} to {fmt.number(self.expected_upper)} (normal approximation "
            f"to the maximum-likelihood estimates of both models, {fmt.count(self.n_draws, 'draw')}). {level} "
            f"predictive interval of the equity the base will realise: {fmt.number(self.predictive_lower)} to "
            f"{fmt.number(self.predictive_upper)} (the same draws plus each customer's purchases and spend simulated "
            f"from the fitted models). Standard deviations: {fmt.number(self.parameter_sd)} from the parameters, "
            f"{fmt.number(self.noise_sd)} from customer-level noise; seed {self.seed}."
            + (f" {self.sample_note}" if self.sample_note else "")
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per interval: estimate, lower, upper, level, sd, draws, seed, horizon, method."""
        common = {"estimate": self.estimate, "level": self.level, "n_customers": self.n_customers,
                  "n_draws": self.n_draws, "seed": self.seed, "horizon_months": self.horizon_months}
        rows = [
            {"interval": "expected equity (parameter uncertainty)", "lower": self.expected_lower,
             "upper": self.expected_upper, "sd": self.parameter_sd, **common, "method": self.expected_method},
            {"interval": "realised equity (predictive)", "lower": self.predictive_lower,
             "upper": self.predictive_upper, "sd": float(np.nanstd(self.predictive_draws, ddof=1)), **common,
             "method": self.predictive_method},
        ]
        return pd.DataFrame(rows).set_index("interval")


#: Customers above which :func:`customer_equity` simulates the customer-level noise of each
#: draw on a random sample of this many customers (see :meth:`_Base.realised_equity`).
NOISE_SAMPLE_CUSTOMERS = 100_000


class _Base:
    """The customers' histories and spend, checked once and collapsed to distinct histories.

    The expected equity needs per distinct history only its customers and their average mean
    spend (the expected spend is linear in it): a draw is one pass over the distinct histories.
    """

    def __init__(self, summary: pd.DataFrame, horizon_months: int, discount_rate_monthly: float, time_unit: str,
                 gross_margin: float, noise_sample: int | None = None) -> None:
        require_columns(summary, ["frequency", "recency", "T", "monetary_value"], "customer equity", SUMMARY_HINT)
        _check_margin(gross_margin)
        _check_horizon(horizon_months, discount_rate_monthly)
        self.x, self.m = (summary[c].to_numpy(dtype=float) for c in ("frequency", "monetary_value"))
        bad = ~np.isfinite(self.m) | (self.m < 0)
        if bad.any():
            raise DataValidationError(
                f"customer equity: column 'monetary_value' has {int(bad.sum()):,} of {len(bad):,} values that are "
                f"missing or negative (e.g. {self.m[bad][0]}); build the summary with crm_lib.summary.rfm_summary "
                "from a log without returns (negative_amounts='drop').")
        (self.hx, self.htx, self.hT), self.n_per_history, self.inverse = collapse_histories(
            summary["frequency"], summary["recency"], summary["T"])
        self.mean_spend_per_history = np.bincount(self.inverse, weights=self.m) / self.n_per_history
        self.factor = _periods_per_month(time_unit)
        self.horizon_months, self.gross_margin = int(horizon_months), float(gross_margin)
        months = np.arange(1, self.horizon_months + 1)
        self.t_grid = np.concatenate([[0.0], months * self.factor])
        self.discount = (1 + discount_rate_monthly) ** months  # month k is discounted by (1 + d)^k
        self.noise_sample = noise_sample if noise_sample is not None and noise_sample < len(self.x) else None
        self.T = self.hT[self.inverse] if self.noise_sample is None else None

    def purchases_per_history(self, transaction_model: BTYDFit) -> np.ndarray:
        """Discounted expected purchases over the horizon, one value per distinct history."""
        transaction_model._require_fit()
        return transaction_model._discounted_purchases(self.t_grid, self.discount, self.hx, self.htx, self.hT)

    def expected_equity(self, transaction_model: BTYDFit, spend_model: GammaGammaFit,
                        purchases: np.ndarray | None = None) -> float:
        """Sum of CLV (as :func:`customer_lifetime_value`), computed per distinct history.

        The conditional expected spend (Fader, Hardie & Lee 2005b; Hardie, note 025, eq. 5)
        is linear in the customer's mean spend m, so its sum over the n customers of one
        history is n times its value at their average m.
        """
        if purchases is None:
            purchases = self.purchases_per_history(transaction_model)
        spend = np.asarray(spend_model.conditional_expected_average_profit(self.hx, self.mean_spend_per_history),
                           dtype=float)
        return float(self.gross_margin * np.sum(purchases * spend * self.n_per_history))

    def realised_equity(self, transaction_model: BTYDFit, spend_model: GammaGammaFit, rng: np.random.Generator,
                        expected: float | None = None, purchases: np.ndarray | None = None) -> float:
        """One simulated realisation of the discounted gross profit of the base over the horizon.

        Who is alive at T: Bernoulli(P(alive | history)). The alive customers' purchase
        (and drop-out) parameters come from their posterior given the history, their
        purchases over the horizon from the model's story, the spend per purchase from
        Gamma(p, nu) with nu from its Gamma-Gamma posterior; each purchase is discounted
        by (1 + d)^k in its month k, as the expected CLV is.

        With ``noise_sample`` = k below the N customers, only k customers drawn at random
        (with replacement) are simulated: the realised equity is the expected equity E plus
        sqrt(N / k) times the sample's sum of realised minus expected CLV. Customers are
        independent given the parameters, so this noise has mean 0 and variance
        N E_i[Var(CLV_i)], the variance of the base's own noise, and is close to normal
        like it (a sum of k independent terms).
        """
        if self.noise_sample is None:
            return self._simulated_profit(transaction_model, spend_model, self.inverse, self.x, self.T, self.m, rng)
        if purchases is None:
            purchases = self.purchases_per_history(transaction_model)
        if expected is None:
            expected = self.expected_equity(transaction_model, spend_model, purchases)
        chosen = np.sort(rng.integers(0, len(self.x), self.noise_sample))
        inverse, x, m = self.inverse[chosen], self.x[chosen], self.m[chosen]
        simulated = self._simulated_profit(transaction_model, spend_model, inverse, x, self.hT[inverse], m, rng)
        spend = np.asarray(spend_model.conditional_expected_average_profit(x, m), dtype=float)
        sample_expected = self.gross_margin * np.sum(purchases[inverse] * spend)
        return float(expected + np.sqrt(len(self.x) / self.noise_sample) * (simulated - sample_expected))

    def _simulated_profit(self, transaction_model: BTYDFit, spend_model: GammaGammaFit, inverse: np.ndarray,
                          x: np.ndarray, age: np.ndarray, m: np.ndarray, rng: np.random.Generator) -> float:
        """Simulated discounted gross profit of customers (their history ``inverse``, x, T and mean spend m)."""
        horizon = self.horizon_months * self.factor
        customer, times = _simulate_purchases(transaction_model, (self.hx, self.htx, self.hT), inverse, x, age,
                                              horizon, rng)
        p, q, v = spend_model.params_.to_numpy()
        buyers, owner = _sorted_unique(customer)  # customer is sorted: alive customers in order
        x, m = x[buyers], m[buyers]
        # Gamma-Gamma posterior of the spend rate nu given x repeat purchases of mean m:
        # Gamma(q + p x, v + x m) (Fader, Hardie & Lee 2005b, section 4; Hardie, note 025, from which
        # its eq. 5, the conditional expected spend, follows).
        nu = rng.gamma(q + p * x, 1.0 / (v + x * m))
        amounts = rng.gamma(p, 1.0, size=len(owner)) / nu[owner]
        month = np.clip(np.ceil(times / self.factor), 1, self.horizon_months).astype(int)
        return float(self.gross_margin * np.sum(amounts / self.discount[month - 1]))


def _sorted_unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for sorted ``values``, from the runs (no sort)."""
    starts = np.empty(len(values), dtype=bool)
    starts[:1] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return values[starts], np.cumsum(starts) - 1


def _require_predictive(model: BTYDFit) -> None:
    if model.name not in _PREDICTIVE_MODELS:
        raise ParamsError(f"customer equity: no predictive simulation for {model.label} (a discrete-time model has "
                          f"no monthly CLV here); use one of {', '.join(MODEL_LABELS[k] for k in _PREDICTIVE_MODELS)}.")
    model._require_fit()


def _future_purchase_times(model: BTYDFit, x: np.ndarray, age: np.ndarray, horizon: float,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Purchases in (T, T + horizon] of customers known to be alive at T, from the posterior.

    Given alive at T with x repeat purchases, the purchase rate is Gamma(r + x, alpha + T)
    in all three models; the drop-out probability is Beta(a, b + x) under BG/NBD (x
    survived purchases), Beta(a, b + x + 1) under MBG/NBD (also the first purchase), and
    the drop-out rate Gamma(s, beta + T) under Pareto/NBD. BG/NBD and MBG/NBD drop out
    right after the G-th future purchase, G ~ Geometric(p); with N ~ Poisson(lambda h)
    purchases in the horizon h, min(N, G) are made, and when G < N the last of them is the
    G-th of N uniform order statistics, h Beta(G, N - G + 1), the others uniform before
    it. Pareto/NBD buys at rate lambda until an exponential lifetime ends.

    Returns
    -------
    owner, times : ndarray
        For every simulated purchase, the position of its customer in ``x`` and its time
        after T.
    """
    n = len(x)
    params = model.params_.to_numpy()
    r, alpha = params[0], params[1]
    rate = rng.gamma(r + x, 1.0 / (alpha + age))
    truncated = np.zeros(n, dtype=bool)
    end = np.full(n, float(horizon))
    if model.name == "pareto_nbd":
        s, beta = params[2], params[3]
        mu = rng.gamma(s, 1.0 / (beta + age))
        with np.errstate(divide="ignore"):
            end = np.minimum(rng.standard_exponential(n) / mu, horizon)
        count = rng.poisson(rate * end)
    elif model.name in ("bg_nbd", "mbg_nbd"):
        a, b = params[2], params[3]
        p = np.clip(rng.beta(a, b + x + (model.name == "mbg_nbd")), 1e-12, 1.0)
        n_poisson = rng.poisson(rate * horizon)
        last = rng.geometric(p)
        truncated = n_poisson > last
        count = np.minimum(n_poisson, last)
        end[truncated] = horizon * rng.beta(last[truncated], n_poisson[truncated] - last[truncated] + 1)
    else:
        _require_predictive(model)
    owner = np.repeat(np.arange(n), count)
    times = rng.random(len(owner)) * end[owner]
    # A customer who drops out within the horizon makes her last purchase at `end`.
    times[(np.cumsum(count) - count)[truncated]] = end[truncated]
    return owner, times


def _simulate_purchases(model: BTYDFit, histories: tuple[np.ndarray, np.ndarray, np.ndarray], inverse: np.ndarray,
                        x: np.ndarray, age: np.ndarray, horizon: float,
                        rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Who is alive at T (Bernoulli(P(alive)) per customer, P(alive) per distinct history),
    then each alive customer's purchases over the horizon: (customer position, time after T)."""
    p_alive = np.asarray(model.conditional_probability_alive(*histories), dtype=float)
    alive = np.flatnonzero(rng.random(len(x)) < p_alive[inverse])
    owner, times = _future_purchase_times(model, x[alive], age[alive], horizon, rng)
    return alive[owner], times


def simulate_future_purchases(
    transaction_model: BTYDFit,
    frequency,
    recency,
    T,
    *,
    horizon_periods: float,
    seed: int = 0,
) -> np.ndarray:
    """One simulated future of every customer: repeat purchases in (T, T + horizon], given the history.

    Alive or not from P(alive | history); an alive customer's purchase and drop-out
    parameters from their posterior given the history, then purchases from the model's
    story (see :func:`customer_equity`). Over many simulations the mean of a customer's
    count is the model's conditional expectation
    (``conditional_expected_number_of_purchases_up_to_time``).

    Parameters
    ----------
    transaction_model : BTYDFit
        Fitted BG/NBD, MBG/NBD or Pareto/NBD.
    frequency, recency, T : array-like
        Histories, in the time unit of the fit.
    horizon_periods : float
        Length of the future, in the time unit of the fit.
    seed : int

    Returns
    -------
    ndarray
        Simulated number of purchases per customer (int).

    Examples
    --------
    >>> counts = simulate_future_purchases(bg, [2, 0], [30.4, 0], [38.9, 38.9],  # doctest: +SKIP
    ...                                    horizon_periods=52, seed=1)
    """
    _require_predictive(transaction_model)
    (hx, htx, hT), _, inverse = collapse_histories(frequency, recency, T)
    rng = np.random.default_rng(seed)
    customer, _ = _simulate_purchases(transaction_model, (hx, htx, hT), inverse, hx[inverse], hT[inverse],
                                      float(horizon_periods), rng)
    return np.bincount(customer, minlength=len(inverse))


def simulate_realised_equity(
    transaction_model: BTYDFit,
    spend_model: GammaGammaFit,
    summary: pd.DataFrame,
    *,
    n_simulations: int = 100,
    horizon_months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit: str = "W",
    gross_margin: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Simulated realised equity of the base at the fitted parameters (customer-level noise only).

    Each simulation draws who is alive, each alive customer's purchases over the horizon
    and the spend of each purchase from the fitted models given the customer's history
    (see :func:`customer_equity`), discounts month by month and sums over the base. The
    mean over simulations estimates the expected equity, ``customer_lifetime_value(...)
    .sum()``; the spread is the customer-level noise.

    Returns
    -------
    ndarray
        ``n_simulations`` realised equities.

    Examples
    --------
    >>> sims = simulate_realised_equity(bg, gg, summary, n_simulations=200, seed=1)  # doctest: +SKIP
    >>> sims.mean(), sims.std()                                                      # doctest: +SKIP
    """
    _require_predictive(transaction_model)
    base = _Base(summary, horizon_months, discount_rate_monthly, time_unit, gross_margin)
    rng = np.random.default_rng(seed)
    return np.array([base.realised_equity(transaction_model, spend_model, rng) for _ in range(int(n_simulations))])


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
    noise_sample_customers: int | None = NOISE_SAMPLE_CUSTOMERS,
) -> CustomerEquity:
    """Customer equity (sum of CLV) with a parameter-uncertainty and a predictive interval.

    Both intervals use the same ``n_draws`` draws of the two models' parameters from the
    normal approximation to their maximum-likelihood estimates (log-parameters, inverse
    observed information); nothing is refitted, so this is not a bootstrap.

    - Parameter-uncertainty interval of the EXPECTED equity: the expected equity is
      recomputed at each draw; the interval is the central ``level`` range of the draws.
    - Predictive interval of the REALISED equity: at each draw, every customer's future is
      simulated given the history: alive or not from P(alive), purchases over the horizon
      from the posterior of the purchase and drop-out parameters, spend per purchase from
      the Gamma-Gamma posterior, discounted by month; the interval is the central
      ``level`` range of the simulated sums. It is wider because who stays, how often
      they buy and how much they spend vary even at known parameters. Above
      ``noise_sample_customers`` customers, a draw simulates that many random customers and
      scales their noise to the base (same mean and variance; ``sample_note`` says so).

    Parameters
    ----------
    transaction_model : BTYDFit
        Fitted BG/NBD, MBG/NBD or Pareto/NBD.
    spend_model : GammaGammaFit
    summary : DataFrame
        frequency, recency, T, monetary_value (same time unit as the fit).
    horizon_months, discount_rate_monthly, time_unit, gross_margin
        As :func:`customer_lifetime_value`.
    n_draws : int
        Parameter draws (one simulated future of the base per draw).
    level : float
        Coverage of both intervals.
    seed : int
        Seed of the draws and simulations.
    noise_sample_customers : int or None
        Customers simulated per draw for the predictive interval when the base is larger;
        None simulates every customer.

    Returns
    -------
    CustomerEquity

    Raises
    ------
    ParamsError
        A bad level, horizon, margin or discount rate, or BG/BB (no continuous-time CLV).
    DataValidationError
        Missing or negative ``monetary_value``.

    Examples
    --------
    >>> equity = customer_equity(bg, gg, summary, gross_margin=0.3, n_draws=200, seed=42)  # doctest: +SKIP
    >>> print(equity.summary())                                                            # doctest: +SKIP
    """
    if not 0 < level < 1:
        raise ParamsError(f"level must be between 0 and 1; got {level}.")
    if n_draws < 2:
        raise ParamsError(f"n_draws must be at least 2; got {n_draws}.")
    if noise_sample_customers is not None and noise_sample_customers < 1000:
        raise ParamsError(f"noise_sample_customers must be at least 1,000 or None; got {noise_sample_customers}.")
    _require_predictive(transaction_model)
    base = _Base(summary, horizon_months, discount_rate_monthly, time_unit, gross_margin, noise_sample_customers)
    estimate = base.expected_equity(transaction_model, spend_model)
    rng = np.random.default_rng(seed)
    transaction_draws = transaction_model.draw_params(n_draws, rng)
    spend_draws = spend_model.draw_params(n_draws, rng)
    draws, realised = np.empty(n_draws), np.empty(n_draws)
    for i in range(n_draws):
        model_i, spend_i = transaction_model.with_params(transaction_draws[i]), spend_model.with_params(spend_draws[i])
        purchases = base.purchases_per_history(model_i)
        draws[i] = base.expected_equity(model_i, spend_i, purchases)
        # A draw with q <= 1 has no finite mean spend; its expected equity is not finite either.
        realised[i] = (base.realised_equity(model_i, spend_i, rng, draws[i], purchases) if np.isfinite(draws[i])
                       else np.nan)
    finite = np.isfinite(draws) & np.isfinite(realised)
    if not finite.all():
        logger.warning("customer equity: %d of %d parameter draws gave a non-finite equity and were left out",
                       int((~finite).sum()), n_draws)
        draws[~finite] = realised[~finite] = np.nan
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    expected_lower, expected_upper = np.quantile(draws[finite], quantiles)
    predictive_lower, predictive_upper = np.quantile(realised[finite], quantiles)
    sample_note = "" if base.noise_sample is None else (
        f"The predictive interval of customer equity simulates, at each of the {n_draws:,} parameter draws, "
        f"{base.noise_sample:,} of the {len(summary):,} customers drawn at random and scales their deviation from the "
        f"expected equity by the square root of {len(summary):,} / {base.noise_sample:,}: the customer-level noise "
        "keeps its mean (0) and variance, and the expected equity and its interval use every customer.")
    if sample_note:
        logger.warning(sample_note)
    return CustomerEquity(
        estimate, float(expected_lower), float(expected_upper), float(predictive_lower), float(predictive_upper),
        level, len(summary), n_draws, seed, int(horizon_months), EXPECTED_METHOD.format(n=n_draws),
        PREDICTIVE_METHOD.format(n=n_draws) + (f" (a random {base.noise_sample:,} of them per draw, noise scaled to "
                                               "the base)" if sample_note else ""),
        draws=draws, predictive_draws=realised, sample_note=sample_note)


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
