"""Cox partial likelihood from risk-set sums per distinct event time: sized for millions of customers.

The Cox log partial likelihood, its score and information depend on the data only through,
at each distinct event time t, the risk-set sums S0 = Σ w, S1 = Σ w x, S2 = Σ w x xᵀ over
the customers still at risk (time ≥ t, w = exp(x β)) and the same sums D0, D1, D2 over the
d customers who churn at t. A lapse-rule churn table counts time in whole days, so a base of
millions of customers has only a few hundred distinct event times: the sums are built with
one pass over the rows per Newton step (one matrix product per time interval), never with
an n x p x p array, and the tied deaths enter through scalar sums over l = 0..d-1.

Efron (1977) ties, as R's ``coxph`` and statsmodels' ``PHReg``: the l-th of d tied deaths
sees the risk set with the tied deaths' weight reduced by f_l = l/d; with
c_l = 1 / (S0 - f_l D0),

    log L_t = Σ_dead x β - Σ_l log(S0 - f_l D0)
    U_t     = Σ_dead x - (S1 Σ c_l - D1 Σ f_l c_l)
    I_t     = S2 Σ c_l - D2 Σ f_l c_l
              - (S1 S1ᵀ Σ c_l² - (S1 D1ᵀ + D1 S1ᵀ) Σ f_l c_l² + D1 D1ᵀ Σ f_l² c_l²)

(Breslow: f_l = 0). The Grambsch-Therneau test (:mod:`crm_lib.survival.ph_test`) uses the
same per-time score and information: each death's Schoenfeld residual is x_j minus the
Efron mean U-free part (S1 Σ c_l - D1 Σ f_l c_l) / d, and its information I_t / d.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Above this many time intervals the p x p sums are built by chunked outer products
#: instead of one matrix product per interval (continuous, untied times).
MAX_INTERVAL_PRODUCTS = 2_000
_CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class EventTerms:
    """Per distinct event time: deaths, log-likelihood, score, information and the Efron mean.

    Attributes
    ----------
    times : array (T,)
        Distinct event times, ascending.
    deaths : array (T,)
        Number of deaths at each time.
    loglik : float
        Log partial likelihood at beta.
    score, mean : arrays (T, p)
        Score contribution U_t; the mean each death's residual is taken from.
    info : array (T, p, p)
        Information contribution I_t (d deaths share I_t / d each).
    """

    times: np.ndarray
    deaths: np.ndarray
    loglik: float
    score: np.ndarray
    mean: np.ndarray
    info: np.ndarray


def _sums_by_outer_products(x, w, group, n_groups):
    """Σ w, Σ w x, Σ w x xᵀ per group by chunks of outer products (many small groups)."""
    p = x.shape[1]
    a0, a1, a2 = np.zeros(n_groups), np.zeros((n_groups, p)), np.zeros((n_groups, p, p))
    for lo in range(0, len(w), _CHUNK_ROWS):  # bounded memory: _CHUNK_ROWS x p x p at a time
        hi = min(lo + _CHUNK_ROWS, len(w))
        wx = x[lo:hi] * w[lo:hi, None]
        bounds = _starts(group[lo:hi])
        ids = group[lo + bounds]
        np.add.at(a0, ids, np.add.reduceat(w[lo:hi], bounds))
        np.add.at(a1, ids, np.add.reduceat(wx, bounds, axis=0))
        np.add.at(a2, ids, np.add.reduceat(x[lo:hi, :, None] * wx[:, None, :], bounds, axis=0))
    return a0, a1, a2


def _starts(sorted_values: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]]) if len(sorted_values) else \
        np.zeros(0, dtype=np.int64)


def _interval_sums(x, w, dead, group, n_groups):
    """Risk-set parts (all rows) and tied-death parts (dead rows) of each interval's sums.

    Rows are sorted by ``group``; the deaths of interval k are those at its event time.
    Returns a0, a1, a2, d0, d1, d2 and the unweighted Σ x of the deaths.
    """
    p = x.shape[1]
    if n_groups > MAX_INTERVAL_PRODUCTS:
        a = _sums_by_outer_products(x, w, group, n_groups)
        d = _sums_by_outer_products(x, w * dead, group, n_groups)
        x_dead = _sums_by_outer_products(x, dead.astype(float), group, n_groups)[1]
        return (*a, *d, x_dead)
    a0, d0 = np.zeros(n_groups), np.zeros(n_groups)
    a1, d1, x_dead = np.zeros((n_groups, p)), np.zeros((n_groups, p)), np.zeros((n_groups, p))
    a2, d2 = np.zeros((n_groups, p, p)), np.zeros((n_groups, p, p))
    bounds = np.searchsorted(group, np.arange(n_groups + 1))
    for k in range(n_groups):
        # Large intervals (day 0 of a churn table) in slices: memory stays _CHUNK_ROWS x p.
        for lo in range(bounds[k], bounds[k + 1], _CHUNK_ROWS):
            hi = min(lo + _CHUNK_ROWS, bounds[k + 1])
            xs, ws = x[lo:hi], w[lo:hi]
            wx = xs * ws[:, None]
            a0[k] += ws.sum()
            a1[k] += wx.sum(axis=0)
            a2[k] += xs.T @ wx
            mask = dead[lo:hi]
            if mask.any():
                xd, wxd = xs[mask], wx[mask]
                d0[k] += ws[mask].sum()
                d1[k] += wxd.sum(axis=0)
                d2[k] += xd.T @ wxd
                x_dead[k] += xd.sum(axis=0)
    return a0, a1, a2, d0, d1, d2, x_dead


def sort_by_time(time: np.ndarray, status: np.ndarray, x: np.ndarray):
    """The data sorted by time (stable), as :func:`event_terms` takes it; no copy when already sorted."""
    if len(time) < 2 or (time[1:] >= time[:-1]).all():
        return time, status, x
    order = np.argsort(time, kind="stable")
    return time[order], status[order], x[order]


def event_terms(time: np.ndarray, status: np.ndarray, x: np.ndarray, beta: np.ndarray,
                ties: str = "efron") -> EventTerms:
    """Log partial likelihood, score, information and Efron means at ``beta``, per event time.

    Parameters
    ----------
    time, status : arrays (n,)
        Follow-up time and event indicator (1 = event), sorted by time
        (:func:`sort_by_time`; unsorted data are sorted here, at the cost of a copy).
    x : array (n, p)
        Covariates (centred columns give better conditioned sums).
    beta : array (p,)
    ties : {"efron", "breslow"}

    Returns
    -------
    EventTerms
    """
    time, status, x = sort_by_time(time, status, x)
    eta = x @ beta
    shift = float(eta.max()) if len(eta) else 0.0
    w = np.exp(eta - shift)
    dead = status == 1
    times, deaths = np.unique(time[dead], return_counts=True)
    n_t = len(times)
    # Interval k holds the rows with times[k] <= time < times[k+1]: at risk at times[0..k].
    interval = np.searchsorted(times, time, side="right") - 1
    skip = int(np.searchsorted(interval, 0))  # rows before the first event are in no risk set
    a0, a1, a2, d0, d1, d2, x_dead = _interval_sums(x[skip:], w[skip:], dead[skip:], interval[skip:], n_t)
    s0 = np.cumsum(a0[::-1])[::-1]
    s1 = np.cumsum(a1[::-1], axis=0)[::-1]
    s2 = np.cumsum(a2[::-1], axis=0)[::-1]
    # Scalar sums over l = 0..d-1 of every event time, all deaths at once.
    first = np.r_[0, np.cumsum(deaths)[:-1]].astype(np.int64)
    rank = np.arange(int(deaths.sum())) - np.repeat(first, deaths)
    frac = rank / np.repeat(deaths, deaths) if ties == "efron" else np.zeros(len(rank))
    denominator = np.repeat(s0, deaths) - frac * np.repeat(d0, deaths)
    c = 1.0 / denominator

    def per_time(values):
        return np.add.reduceat(values, first) if n_t else np.zeros(0)

    c0, c1 = per_time(c), per_time(frac * c)
    e0, e1, e2 = per_time(c * c), per_time(frac * c * c), per_time(frac * frac * c * c)
    loglik = float(x_dead.sum(axis=0) @ beta - per_time(np.log(denominator)).sum() - shift * deaths.sum())
    mean_sum = s1 * c0[:, None] - d1 * c1[:, None]
    cross = np.einsum("tj,tk->tjk", s1, d1)
    info = (s2 * c0[:, None, None] - d2 * c1[:, None, None]
            - (np.einsum("tj,tk->tjk", s1, s1) * e0[:, None, None] - (cross + cross.transpose(0, 2, 1))
               * e1[:, None, None] + np.einsum("tj,tk->tjk", d1, d1) * e2[:, None, None]))
    return EventTerms(times=times, deaths=deaths, loglik=loglik, score=x_dead - mean_sum,
                      mean=mean_sum / deaths[:, None], info=info)


@dataclass(frozen=True)
class CoxFit:
    """Newton fit of the Cox partial likelihood: estimate, covariance, log-likelihood, convergence."""

    params: np.ndarray
    cov: np.ndarray
    loglik: float
    iterations: int
    converged: bool

    @property
    def bse(self) -> np.ndarray:
        """Standard errors: square roots of the inverse information's diagonal."""
        return np.sqrt(np.diag(self.cov))


def fit_cox(time: np.ndarray, status: np.ndarray, x: np.ndarray, *, ties: str = "efron",
            max_iterations: int = 100, tolerance: float = 1e-9) -> CoxFit:
    """Maximise the Cox log partial likelihood by Newton-Raphson with step halving.

    Starts at beta = 0, as R's ``coxph`` and statsmodels' ``PHReg``; stops when no
    coefficient moves by more than ``tolerance`` (Newton converges quadratically, so this
    costs one step more than a likelihood criterion). Not converged (or a singular
    information) is reported, not raised.
    """
    time, status, x = sort_by_time(time, status, x)
    p = x.shape[1]
    beta = np.zeros(p)
    terms = event_terms(time, status, x, beta, ties)
    for iteration in range(1, max_iterations + 1):
        information = terms.info.sum(axis=0)
        try:
            step = np.linalg.solve(information, terms.score.sum(axis=0))
        except np.linalg.LinAlgError:
            return CoxFit(beta, np.full((p, p), np.nan), terms.loglik, iteration, False)
        for _ in range(30):  # halve the step until the likelihood does not fall
            trial = event_terms(time, status, x, beta + step, ties)
            if np.isfinite(trial.loglik) and trial.loglik >= terms.loglik - 1e-12 * abs(terms.loglik):
                break
            step = step / 2
        beta, terms = beta + step, trial
        if np.max(np.abs(step)) <= tolerance * (1 + np.max(np.abs(beta))):
            break
    else:
        iteration = max_iterations + 1
    information = terms.info.sum(axis=0)
    try:
        cov = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        cov = np.full((p, p), np.nan)
    return CoxFit(beta, cov, terms.loglik, iteration, iteration <= max_iterations)
