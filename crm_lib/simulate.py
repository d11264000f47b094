"""Seeded simulators of customer bases under the buy-till-you-die models.

Used for parameter-recovery tests, for the benchmark, and for the model-implied
"count of customers by number of repeat purchases" check of the holdout validation.
Every simulator is vectorised (no loop over customers) and draws from
``numpy.random.default_rng(seed)``, so a given seed always gives the same base.

The output of the transaction simulators is a per-customer summary with the columns of
:func:`crm_lib.summary.rfm_summary` (``frequency``, ``recency``, ``T``) plus the latent
draws (``purchase_rate`` and ``dropout_probability`` or ``dropout_rate``) so that a test
can look at them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crm_lib.exceptions import ParamsError

__all__ = [
    "simulate_bg_nbd",
    "simulate_mbg_nbd",
    "simulate_pareto_nbd",
    "simulate_bg_bb",
    "simulate_gamma_gamma_spend",
    "simulate_base",
    "simulate_loyalty_log",
    "simulate_loyalty_orders",
    "simulate_stationary_log",
]


def _ages(T: float | np.ndarray | pd.Series, n_customers: int | None) -> np.ndarray:
    ages = np.asarray(T, dtype=float)
    if ages.ndim == 0:
        if n_customers is None:
            raise ParamsError("simulate: give n_customers when T is a single age.")
        ages = np.full(int(n_customers), float(ages))
    if (ages < 0).any():
        raise ParamsError(f"simulate: T must be >= 0; got {int((ages < 0).sum())} negative ages (e.g. {ages[ages < 0][0]}).")
    return ages


def _check_positive(**params: float) -> None:
    bad = {k: v for k, v in params.items() if not (np.isfinite(v) and v > 0)}
    if bad:
        raise ParamsError(f"simulate: parameters must be positive and finite; got {bad}.")


def _summary_from_counts(
    observed: np.ndarray, window: np.ndarray, ages: np.ndarray, rng: np.random.Generator, n_poisson: np.ndarray,
    whole_periods: bool,
) -> pd.DataFrame:
    """Recency from the counts: given N Poisson arrivals in [0, window], the x-th arrival
    time is window * Beta(x, N - x + 1) (uniform order statistics)."""
    recency = np.zeros_like(ages)
    buyers = observed > 0
    recency[buyers] = window[buyers] * rng.beta(observed[buyers], n_poisson[buyers] - observed[buyers] + 1)
    if whole_periods:
        recency = np.floor(recency)
    return pd.DataFrame(
        {"frequency": observed.astype(float), "recency": recency, "T": ages},
        index=pd.RangeIndex(len(ages), name="customer_id"),
    )


def _simulate_beta_geometric(
    T, r: float, alpha: float, a: float, b: float, n_customers: int | None, seed: int, whole_periods: bool,
    *, dropout_at_start: bool,
) -> pd.DataFrame:
    """BG/NBD (``dropout_at_start=False``) or MBG/NBD (``True``) customers."""
    _check_positive(r=r, alpha=alpha, a=a, b=b)
    ages = _ages(T, n_customers)
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1.0 / alpha, size=len(ages))
    p = rng.beta(a, b, size=len(ages))
    # Number of repeat purchases before drop-out if time were unlimited: the customer
    # survives each purchase with probability 1 - p, so it is Geometric(p) on {1, 2, ...};
    # MBG/NBD can also drop out right after the first purchase: {0, 1, ...}.
    max_purchases = rng.geometric(np.clip(p, 1e-12, 1.0)) - int(dropout_at_start)
    n_poisson = rng.poisson(rate * ages)
    observed = np.minimum(n_poisson, max_purchases)
    out = _summary_from_counts(observed, ages, ages, rng, n_poisson, whole_periods)
    out["purchase_rate"] = rate
    out["dropout_probability"] = p
    return out


def simulate_bg_nbd(
    T: float | np.ndarray | pd.Series, r: float, alpha: float, a: float, b: float,
    *, n_customers: int | None = None, seed: int = 0, whole_periods: bool = False,
) -> pd.DataFrame:
    """Customers whose purchases follow the BG/NBD model.

    Fader, Hardie & Lee (2005), section 3: while active, purchases arrive as a Poisson
    process with rate lambda ~ Gamma(r, alpha); after each repeat purchase the customer
    drops out with probability p ~ Beta(a, b).

    Parameters
    ----------
    T : float or array
        Age of each customer at the end of observation (a single value with
        ``n_customers``).
    r, alpha, a, b : float
        Model parameters (alpha in the time unit of T).
    n_customers : int, optional
        Number of customers when T is a single value.
    seed : int
        Seed of the random generator.
    whole_periods : bool
        Round recency down to whole periods, as a summary in weeks or days does.

    Returns
    -------
    DataFrame
        ``frequency``, ``recency``, ``T``, ``purchase_rate``, ``dropout_probability``.

    Examples
    --------
    >>> simulate_bg_nbd(39.0, 0.24, 4.4, 0.79, 2.4, n_customers=3, seed=1).columns.tolist()[:3]
    ['frequency', 'recency', 'T']
    """
    return _simulate_beta_geometric(T, r, alpha, a, b, n_customers, seed, whole_periods, dropout_at_start=False)


def simulate_mbg_nbd(
    T: float | np.ndarray | pd.Series, r: float, alpha: float, a: float, b: float,
    *, n_customers: int | None = None, seed: int = 0, whole_periods: bool = False,
) -> pd.DataFrame:
    """Customers whose purchases follow the MBG/NBD model.

    Batislam, Denizel & Filiztekin (2007): as BG/NBD, but the customer may also drop
    out right after the first purchase, so the number of repeat purchases before drop-out
    is Geometric(p) on {0, 1, ...}. Parameters and output as :func:`simulate_bg_nbd`.
    """
    return _simulate_beta_geometric(T, r, alpha, a, b, n_customers, seed, whole_periods, dropout_at_start=True)


def simulate_pareto_nbd(
    T: float | np.ndarray | pd.Series, r: float, alpha: float, s: float, beta: float,
    *, n_customers: int | None = None, seed: int = 0, whole_periods: bool = False,
) -> pd.DataFrame:
    """Customers whose purchases follow the Pareto/NBD model.

    Schmittlein, Morrison & Colombo (1987): purchases arrive at rate lambda ~ Gamma(r,
    alpha) during an exponential lifetime with rate mu ~ Gamma(s, beta).

    Returns
    -------
    DataFrame
        ``frequency``, ``recency``, ``T``, ``purchase_rate``, ``dropout_rate``.
    """
    _check_positive(r=r, alpha=alpha, s=s, beta=beta)
    ages = _ages(T, n_customers)
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1.0 / alpha, size=len(ages))
    mu = rng.gamma(s, 1.0 / beta, size=len(ages))
    lifetime = rng.exponential(1.0 / mu)
    window = np.minimum(lifetime, ages)
    n_poisson = rng.poisson(rate * window)
    out = _summary_from_counts(n_poisson, window, ages, rng, n_poisson, whole_periods)
    out["purchase_rate"] = rate
    out["dropout_rate"] = mu
    return out


def simulate_bg_bb(
    n_periods: int,
    alpha: float,
    beta: float,
    gamma: float,
    delta: float,
    *,
    n_customers: int,
    seed: int = 0,
) -> pd.DataFrame:
    """Discrete-time customers (one yes/no purchase opportunity per period) under BG/BB.

    Fader, Hardie & Shang (2010): while alive a customer buys in each period with
    probability p ~ Beta(alpha, beta); at the start of each period after the first she
    drops out with probability theta ~ Beta(gamma, delta).

    Returns
    -------
    DataFrame
        ``frequency`` (number of periods with a purchase), ``recency`` (last period with
        a purchase, 0 if none), ``n_periods``.
    """
    _check_positive(alpha=alpha, beta=beta, gamma=gamma, delta=delta)
    rng = np.random.default_rng(seed)
    p = rng.beta(alpha, beta, size=n_customers)
    theta = rng.beta(gamma, delta, size=n_customers)
    # Number of periods alive: Geometric(theta) on {0, 1, ...} survivals, capped by n.
    alive_periods = np.minimum(rng.geometric(np.clip(theta, 1e-12, 1.0)) - 1, n_periods)
    period = np.arange(1, n_periods + 1)
    buys = (rng.random((n_customers, n_periods)) < p[:, None]) & (period[None, :] <= alive_periods[:, None])
    frequency = buys.sum(axis=1)
    recency = np.where(frequency > 0, n_periods - np.argmax(buys[:, ::-1], axis=1), 0)
    return pd.DataFrame(
        {"frequency": frequency.astype(float), "recency": recency.astype(float), "n_periods": float(n_periods)},
        index=pd.RangeIndex(n_customers, name="customer_id"),
    )


def simulate_gamma_gamma_spend(
    frequency: np.ndarray | pd.Series,
    p: float,
    q: float,
    v: float,
    *,
    seed: int = 0,
) -> pd.Series:
    """Mean spend per repeat purchase under the Gamma-Gamma model.

    Fader, Hardie & Lee (2005b, "RFM and CLV"), and Hardie's note 025: each purchase
    amount is Gamma(p, nu) with nu ~ Gamma(q, v) per customer, so the mean of x purchases
    is Gamma(p x, nu x). Customers with frequency 0 get 0.
    """
    _check_positive(p=p, q=q, v=v)
    x = np.asarray(frequency, dtype=float)
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / v, size=len(x))
    mean_spend = np.zeros(len(x))
    buyers = x > 0
    mean_spend[buyers] = rng.gamma(p * x[buyers], 1.0 / (nu[buyers] * x[buyers]))
    index = frequency.index if isinstance(frequency, pd.Series) else pd.RangeIndex(len(x), name="customer_id")
    return pd.Series(mean_spend, index=index, name="monetary_value")


def simulate_base(
    n_customers: int,
    *,
    max_age: int = 78,
    params: tuple[float, float, float, float] = (0.243, 4.414, 0.793, 2.426),
    spend_params: tuple[float, float, float] = (6.25, 3.74, 15.44),
    model: str = "bg_nbd",
    seed: int = 0,
) -> pd.DataFrame:
    """A customer base for benchmarks: ages in whole periods (1..max_age), recency rounded
    down to whole periods (as a weekly summary has), and Gamma-Gamma spend.

    Defaults are the published CDNOW estimates (FHL 2005 BG/NBD; Gamma-Gamma p, q, gamma).
    """
    rng = np.random.default_rng(seed)
    ages = rng.integers(1, max_age + 1, size=n_customers).astype(float)
    simulator = {"bg_nbd": simulate_bg_nbd, "mbg_nbd": simulate_mbg_nbd, "pareto_nbd": simulate_pareto_nbd}[model]
    base = simulator(ages, *params, seed=seed + 1, whole_periods=True)
    base["monetary_value"] = simulate_gamma_gamma_spend(base["frequency"], *spend_params, seed=seed + 2).to_numpy()
    return base

def simulate_loyalty_log(
    n_customers: int = 500,
    *,
    seed: int = 0,
    observation_days: int = 540,
    acquisition_days: int = 90,
    r: float = 0.8,
    alpha: float = 25.0,
    s: float = 0.6,
    beta: float = 120.0,
    mean_order_value: float = 40.0,
    order_value_cv: float = 0.5,
    within_customer_cv: float = 0.1,
    price_lift_per_year: float = 0.0,
    start: str = "2020-01-01",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A transaction log from the Pareto/NBD process with a known link of price and lifetime.

    Each customer arrives uniformly in the first ``acquisition_days``, buys at once and
    then as a Poisson process with rate lambda ~ Gamma(r, alpha) per day until an
    exponential dropout time with rate mu ~ Gamma(s, beta) per day (Schmittlein,
    Morrison & Colombo 1987; gamma shape and rate as in Fader, Hardie & Lee 2005, so
    ``ParetoNBDFitter`` with ``params_ = (r, alpha, s, beta)`` is the true model in
    days). Each customer has a gamma-distributed
    typical order value (mean ``mean_order_value``, coefficient of variation
    ``order_value_cv``); orders vary around it by ``within_customer_cv``.

    With ``price_lift_per_year = 0`` order values are independent of the lifetime: H3
    (price) and H4 (cost share under a constant cost per order) are then true nulls.
    A positive ``price_lift_per_year`` plants the loyalty effect: a customer's typical
    order value is multiplied by ``1 + lift * years alive inside the window``.

    Parameters
    ----------
    n_customers : int
    seed : int
    observation_days, acquisition_days : int
    r, alpha, s, beta : float
        Pareto/NBD parameters (rates per day).
    mean_order_value, order_value_cv, within_customer_cv : float
    price_lift_per_year : float
    start : str
        First day of the window.

    Returns
    -------
    transactions : DataFrame
        Canonical columns ``customer_id``, ``date``, ``amount``, ``quantity`` (1).
    truth : DataFrame
        Per customer: ``true_lifetime_days`` (uncensored), ``days_alive_in_window``,
        ``typical_order_value``.
    """
    rng = np.random.default_rng(seed)
    arrival = rng.integers(0, acquisition_days, n_customers)
    purchase_rate = rng.gamma(r, 1 / alpha, n_customers)
    lifetime = rng.exponential(1 / rng.gamma(s, 1 / beta, n_customers))
    shape = 1 / order_value_cv**2
    # Purchases after the first: Poisson counts over the active part of the window,
    # uniform times within it (the order statistics of a Poisson process).
    active = np.minimum(lifetime, observation_days - 1 - arrival)
    value = rng.gamma(shape, mean_order_value / shape, n_customers) * (1 + price_lift_per_year * active / 365.25)
    counts = rng.poisson(purchase_rate * active)
    who = np.repeat(np.arange(n_customers), counts)
    offsets = rng.uniform(0, 1, counts.sum()) * active[who]
    customer = np.r_[np.arange(n_customers), who]
    day = np.r_[arrival, arrival[who] + np.floor(offsets).astype(int)]
    noise_shape = 1 / within_customer_cv**2
    amount = value[customer] * rng.gamma(noise_shape, 1 / noise_shape, len(customer))
    ids = np.char.add("c", np.char.zfill(customer.astype(str), 5))
    transactions = (
        pd.DataFrame(
            {
                "customer_id": ids,
                "date": pd.Timestamp(start) + pd.to_timedelta(day, unit="D"),
                "amount": np.round(amount, 2),
                "quantity": 1.0,
            }
        )
        .sort_values(["customer_id", "date"], kind="stable")
        .reset_index(drop=True)
    )
    truth = pd.DataFrame(
        {"true_lifetime_days": lifetime, "days_alive_in_window": active, "typical_order_value": value},
        index=pd.Index(np.char.add("c", np.char.zfill(np.arange(n_customers).astype(str), 5)), name="customer_id"),
    )
    return transactions, truth


# ---------------------------------------------------------------------------------------
# The stationary null of the loyalty battery, and planted loyalty effects
# ---------------------------------------------------------------------------------------


def _arrival_times(rate: np.ndarray, window: np.ndarray, lift_per_day: float, rng: np.random.Generator):
    """Repeat-purchase times in (0, window) of a Poisson process with intensity
    ``rate * (1 + lift_per_day * t)``: the count is Poisson with the integrated intensity
    ``Lambda = rate * (w + lift w^2 / 2)`` and, given the count, the times are independent
    with density proportional to the intensity (inverse of the integrated intensity)."""
    b = lift_per_day / 2.0
    integrated = window + b * window**2
    counts = rng.poisson(rate * integrated)
    who = np.repeat(np.arange(len(window)), counts)
    y = rng.uniform(0.0, 1.0, counts.sum()) * integrated[who]
    times = y if b == 0 else (np.sqrt(1.0 + 4.0 * b * y) - 1.0) / (2.0 * b)
    return who, times


def simulate_loyalty_orders(
    window_days: np.ndarray,
    purchase_params: tuple[float, float, float, float],
    spend_params: tuple[float, float, float],
    *,
    n_draws: int = 1,
    seed: int = 0,
    spend_lift_per_year: float = 0.0,
    cost_drop_per_year: float = 0.0,
    rate_lift_per_year: float = 0.0,
    butterfly_share: float = 0.0,
    butterfly_rate_factor: float = 6.0,
    butterfly_lifetime_factor: float = 0.15,
) -> pd.DataFrame:
    """Orders of customers whose first purchase is known, under the Pareto/NBD and Gamma-Gamma.

    The stationary null of the loyalty battery (issue 15): customer ``i`` made a first
    purchase at day 0 and is observed for ``window_days[i]`` days (to the end of the
    observation window). Repeat purchases arrive as a Poisson process with rate
    lambda ~ Gamma(r, alpha) per day until an exponential lifetime with rate
    mu ~ Gamma(s, beta) (Schmittlein, Morrison & Colombo 1987); every order, the first
    included, has a Gamma(p, nu) amount with nu ~ Gamma(q, v) per customer (Fader, Hardie
    & Lee 2005b; the parameterisation of :func:`simulate_gamma_gamma_spend`). Nothing
    changes with tenure, and spend is independent of the purchase process.

    The planted-effect variants break exactly one of these:
    ``spend_lift_per_year`` multiplies an order's amount by ``1 + lift * tenure_years``;
    ``cost_drop_per_year`` gives each order a cost factor ``max(0, 1 - drop * tenure_years)``
    (multiply by the cost per order); ``rate_lift_per_year`` lets the purchase rate grow
    as ``lambda (1 + lift * tenure_years)``; ``butterfly_share`` of the customers are
    butterflies, heavy and short-lived buyers (rate times ``butterfly_rate_factor``,
    mean lifetime times ``butterfly_lifetime_factor``).

    Parameters
    ----------
    window_days : array
        Days from each customer's first purchase to the end of observation, inclusive
        (>= 1).
    purchase_params : tuple
        Pareto/NBD ``(r, alpha, s, beta)`` with rates per day.
    spend_params : tuple
        Gamma-Gamma ``(p, q, v)``.
    n_draws : int
        Independent bases of the same customers, stacked (column ``draw``).
    seed : int
        Seed of ``numpy.random.default_rng``.
    spend_lift_per_year, cost_drop_per_year, rate_lift_per_year, butterfly_share : float
        Planted effects (0: the stationary null).
    butterfly_rate_factor, butterfly_lifetime_factor : float
        How heavy and how short-lived the butterflies are.

    Returns
    -------
    DataFrame
        One row per order, sorted by draw, customer and day: ``draw``, ``customer``
        (position in ``window_days``), ``day`` (whole days since the first purchase, 0 for
        the first order), ``amount`` and ``cost_factor`` (1 without a cost effect).

    Examples
    --------
    >>> orders = simulate_loyalty_orders(np.array([30, 200]), (0.6, 95.0, 0.3, 43.0), (5.1, 4.0, 21.3), seed=1)
    >>> orders.groupby("customer")["day"].min().tolist()
    [0, 0]
    """
    return pd.DataFrame(
        _loyalty_order_arrays(
            window_days, purchase_params, spend_params, n_draws=n_draws, seed=seed,
            spend_lift_per_year=spend_lift_per_year, cost_drop_per_year=cost_drop_per_year,
            rate_lift_per_year=rate_lift_per_year, butterfly_share=butterfly_share,
            butterfly_rate_factor=butterfly_rate_factor, butterfly_lifetime_factor=butterfly_lifetime_factor,
        )
    )


def _loyalty_order_arrays(
    window_days, purchase_params, spend_params, *, n_draws, seed, spend_lift_per_year, cost_drop_per_year,
    rate_lift_per_year, butterfly_share, butterfly_rate_factor, butterfly_lifetime_factor,
) -> dict[str, np.ndarray]:
    """:func:`simulate_loyalty_orders` as a dict of arrays (no copy into a DataFrame)."""
    r, alpha, s, beta = purchase_params
    _check_positive(r=r, alpha=alpha, s=s, beta=beta, **dict(zip("pqv", spend_params)))
    window = np.asarray(window_days, dtype=float)
    if window.ndim != 1 or (window < 1).any():
        raise ParamsError("simulate_loyalty_orders: window_days must be a 1-d array of days >= 1.")
    if not 0.0 <= butterfly_share <= 1.0:
        raise ParamsError(f"simulate_loyalty_orders: butterfly_share={butterfly_share!r} must be in [0, 1].")
    rng = np.random.default_rng(seed)
    n = len(window)
    p, q, v = spend_params
    parts: dict[str, list[np.ndarray]] = {"draw": [], "customer": [], "day": [], "amount": [], "cost_factor": []}
    for draw in range(int(n_draws)):
        rate = rng.gamma(r, 1.0 / alpha, n)
        mu = rng.gamma(s, 1.0 / beta, n)
        if butterfly_share > 0:
            butterfly = rng.random(n) < butterfly_share
            rate = np.where(butterfly, rate * butterfly_rate_factor, rate)
            mu = np.where(butterfly, mu / butterfly_lifetime_factor, mu)
        active = np.minimum(rng.exponential(1.0 / mu), window)
        who, times = _arrival_times(rate, active, rate_lift_per_year / 365.25, rng)
        # Orders of customer i sit at start_i (the first order), then its repeats by time.
        counts = np.bincount(who, minlength=n)
        start = np.arange(n) + np.r_[0, np.cumsum(counts)[:-1]]
        rank = np.arange(len(who)) - np.repeat(np.cumsum(counts) - counts, counts)
        times = np.sort(times + who * (2.0 * window.max() + 2.0)) - who * (2.0 * window.max() + 2.0)
        customer = np.repeat(np.arange(n), counts + 1)
        tenure = np.zeros(n + len(who))
        tenure[start[who] + 1 + rank] = times
        nu = rng.gamma(q, 1.0 / v, n)
        parts["amount"].append(rng.gamma(p, 1.0 / nu[customer]) * (1.0 + spend_lift_per_year * tenure / 365.25))
        parts["day"].append(np.minimum(np.floor(tenure).astype(np.int64), window[customer].astype(np.int64) - 1))
        parts["cost_factor"].append(np.maximum(0.0, 1.0 - cost_drop_per_year * tenure / 365.25))
        parts["customer"].append(customer.astype(np.int32))
        parts["draw"].append(np.full(len(customer), draw, dtype=np.int32))
    return {name: np.concatenate(values) for name, values in parts.items()}


def simulate_stationary_log(
    n_customers: int = 2000,
    *,
    seed: int = 0,
    observation_days: int = 540,
    acquisition_days: int = 180,
    purchase_params: tuple[float, float, float, float] = (0.61, 95.3, 0.31, 43.0),
    spend_params: tuple[float, float, float] = (5.09, 4.0, 21.25),
    cost_per_order: float = 2.0,
    start: str = "2020-01-06",
    **effects: float,
) -> pd.DataFrame:
    """A transaction log from :func:`simulate_loyalty_orders`: the stationary null, or a planted effect.

    Customers arrive uniformly in the first ``acquisition_days`` and are observed to day
    ``observation_days - 1``. Defaults are the Pareto/NBD (rates per day) and Gamma-Gamma
    estimates on CDNOW (fitted by ``crm_lib.clv`` on the full log to 1998-06-30).

    Parameters
    ----------
    n_customers, seed, observation_days, acquisition_days : int
    purchase_params, spend_params : tuple
        As in :func:`simulate_loyalty_orders`.
    cost_per_order : float
        Cost to serve one order; the log's ``cost`` column is this times the cost factor.
    start : str
        First day of the window.
    **effects : float
        Planted effects of :func:`simulate_loyalty_orders` (``spend_lift_per_year``,
        ``cost_drop_per_year``, ``rate_lift_per_year``, ``butterfly_share``, ...).

    Returns
    -------
    DataFrame
        Canonical columns ``customer_id``, ``date``, ``amount``, ``quantity`` (1) and ``cost``.
    """
    if not 0 < acquisition_days < observation_days:
        raise ParamsError("simulate_stationary_log: need 0 < acquisition_days < observation_days.")
    rng = np.random.default_rng(seed)
    arrival = rng.integers(0, acquisition_days, n_customers)
    orders = simulate_loyalty_orders(
        observation_days - arrival, purchase_params, spend_params, seed=seed + 1, **effects
    )
    customer = orders["customer"].to_numpy()
    return pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.char.zfill(customer.astype(str), 6)),
            "date": pd.Timestamp(start) + pd.to_timedelta(arrival[customer] + orders["day"].to_numpy(), unit="D"),
            "amount": np.round(orders["amount"].to_numpy(), 2),
            "quantity": 1.0,
            "cost": cost_per_order * orders["cost_factor"].to_numpy(),
        }
    )
