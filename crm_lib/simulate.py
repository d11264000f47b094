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
    T: float | np.ndarray | pd.Series,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    n_customers: int | None = None,
    seed: int = 0,
    whole_periods: bool = False,
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
    T: float | np.ndarray | pd.Series,
    r: float,
    alpha: float,
    a: float,
    b: float,
    *,
    n_customers: int | None = None,
    seed: int = 0,
    whole_periods: bool = False,
) -> pd.DataFrame:
    """Customers whose purchases follow the MBG/NBD model.

    Batislam, Denizel & Filiztekin (2007): as BG/NBD, but the customer may also drop
    out right after the first purchase, so the number of repeat purchases before drop-out
    is Geometric(p) on {0, 1, ...}. Parameters and output as :func:`simulate_bg_nbd`.
    """
    return _simulate_beta_geometric(T, r, alpha, a, b, n_customers, seed, whole_periods, dropout_at_start=True)


def simulate_pareto_nbd(
    T: float | np.ndarray | pd.Series,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    *,
    n_customers: int | None = None,
    seed: int = 0,
    whole_periods: bool = False,
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
