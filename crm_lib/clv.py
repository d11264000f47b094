"""Customer lifetime value: buy-till-you-die (BTYD) models, holdout validation, CLV and equity.

One interface for every model, fitted on the per-customer summary of
:func:`crm_lib.summary.rfm_summary` (``frequency``, ``recency``, ``T``; lifetimes' and
Fader-Hardie's x, t_x, T):

>>> fit = fit_model(summary, "bg_nbd")                 # doctest: +SKIP
>>> fit.summary()                                      # doctest: +SKIP
>>> fit.conditional_probability_alive(x, t_x, T)       # doctest: +SKIP

Models (``model=``):

- ``"bg_nbd"``: BG/NBD, Fader, Hardie & Lee (2005a), "Counting your customers the easy way";
- ``"mbg_nbd"``: MBG/NBD, Batislam, Denizel & Filiztekin (2007);
- ``"pareto_nbd"``: Pareto/NBD, Schmittlein, Morrison & Colombo (1987), likelihood as in
  Fader & Hardie's note 009 ("A note on deriving the Pareto/NBD model");
- ``"bg_bb"``: BG/BB for discrete-time data, Fader, Hardie & Shang (2010); its summary has
  ``frequency``, ``recency`` and ``n_periods``;
- Gamma-Gamma spend model (:func:`fit_spend_model`), Fader, Hardie & Lee (2005b), "RFM
  and CLV", and Hardie's note 025.

The likelihoods and predictions are those of the ``lifetimes`` package (same formulas,
same time scaling, same penalizer), re-implemented in vectorised numpy so that a base of a
million customers fits in seconds: customers that share (frequency, recency, T) are
collapsed to one row with a weight, the BG/NBD, MBG/NBD and Gamma-Gamma log-likelihoods
have analytic gradients, and CLV is computed once per distinct history instead of
lifetimes' month-by-month Python loop. ``tests/test_clv.py`` checks the parameters and
predictions against lifetimes.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, logsumexp

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.summary import period_numbers, rfm_summary

logger = logging.getLogger(__name__)

__all__ = [
    "BTYDFit",
    "BetaGeoFit",
    "ModifiedBetaGeoFit",
    "ParetoNBDFit",
    "BetaGeoBetaBinomFit",
    "GammaGammaFit",
    "MODELS",
    "fit_model",
    "fit_spend_model",
    "collapse_histories",
    "spend_frequency_correlation",
    "holdout_validation",
    "holdout_by_calibration_frequency",
    "repeat_transactions_tracking",
    "repeat_purchase_counts",
    "discounted_expected_purchases",
    "customer_lifetime_value",
    "customer_value_table",
    "monthly_discount_rate",
    "predict_customer_value",
    "customer_equity",
    "value_concentration",
    "p_alive_grid",
    "p_alive_history",
    "write_customer_table",
]

#: Months per time unit, as in lifetimes.utils._customer_lifetime_value (4.345 weeks a month).
PERIODS_PER_MONTH = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24, "h": 30.0 * 24}

#: Display names of the models.
MODEL_LABELS = {
    "bg_nbd": "BG/NBD",
    "mbg_nbd": "MBG/NBD",
    "pareto_nbd": "Pareto/NBD",
    "bg_bb": "BG/BB",
    "gamma_gamma": "Gamma-Gamma",
}


# ---------------------------------------------------------------------------------------
# Input checks and collapsing of identical histories
# ---------------------------------------------------------------------------------------


def _as_array(values) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _like_input(result: np.ndarray, *inputs):
    """Return a Series with the index of the first Series input (as lifetimes does)."""
    for item in inputs:
        if isinstance(item, pd.Series):
            return pd.Series(np.asarray(result, dtype=float), index=item.index)
    return result


def _check_histories(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, what: str) -> None:
    n = len(frequency)
    if n == 0:
        raise DataValidationError(f"{what}: the summary has no customers; check the data and calibration_end.")
    checks = [
        (~np.isfinite(frequency) | ~np.isfinite(recency) | ~np.isfinite(T), "have missing or infinite values",
         "drop them before fitting"),
        (frequency < 0, "have a negative frequency", "frequency counts repeat purchases and must be >= 0"),
        (np.abs(frequency - np.round(frequency)) > 1e-9, "have a non-integer frequency",
         "frequency counts repeat purchases; build the summary with crm_lib.summary.rfm_summary"),
        (recency < 0, "have a negative recency", "recency is the age at the last purchase"),
        (recency > T + 1e-9, "have recency larger than T", "recency is at most the age T; check observation_end"),
        ((frequency == 0) & (recency != 0), "have recency > 0 with frequency 0",
         "customers without repeat purchase have recency 0"),
    ]
    for mask, problem, advice in checks:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise DataValidationError(
                f"{what}: {int(mask.sum()):,} of {n:,} customers {problem} (e.g. row {i}: frequency="
                f"{frequency[i]}, recency={recency[i]}, T={T[i]}); {advice}."
            )


def collapse_histories(*columns: np.ndarray | pd.Series, weights=None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Collapse customers with identical values in all ``columns`` to one row each.

    Many customers share a history once time is counted in whole weeks or days, and the
    likelihood of a history does not depend on who has it, so a model can be fitted on
    the distinct rows with their counts as weights (Fader & Hardie do this in their
    spreadsheets; lifetimes' fitters accept ``weights``).

    Parameters
    ----------
    *columns : array-like
        Equal-length columns (for example frequency, recency, T).
    weights : array-like, optional
        Weight of each input row (default 1).

    Returns
    -------
    unique_columns : list of ndarray
        The distinct rows, column by column.
    counts : ndarray
        Summed weight of each distinct row.
    inverse : ndarray
        For every input row, the position of its distinct row.

    Examples
    --------
    >>> (f, r), w, inv = collapse_histories(np.array([1., 1., 0.]), np.array([2., 2., 0.]))
    >>> f.tolist(), w.tolist(), inv.tolist()
    ([1.0, 0.0], [2.0, 1.0], [0, 0, 1])
    """
    arrays = [_as_array(c) for c in columns]
    code = np.zeros(len(arrays[0]), dtype=np.int64)
    for array in arrays:
        # Hash-based factorize per column, then combine the codes: no sort of the floats.
        codes, uniques = pd.factorize(array)
        code = code * len(uniques) + codes
    inverse, distinct = pd.factorize(code)
    first = np.full(len(distinct), -1, dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]
    w = np.ones(len(inverse)) if weights is None else _as_array(weights)
    counts = np.bincount(inverse, weights=w, minlength=len(distinct))
    return [a[first] for a in arrays], counts, inverse


# ---------------------------------------------------------------------------------------
# Maximum-likelihood machinery shared by all models
# ---------------------------------------------------------------------------------------


def _numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.empty_like(x)
    for i in range(len(x)):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


def _numeric_hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    k = len(x)
    hess = np.empty((k, k))
    f0 = f(x)
    eye = np.eye(k) * h
    for i in range(k):
        hess[i, i] = (f(x + eye[i]) - 2 * f0 + f(x - eye[i])) / h**2
        for j in range(i + 1, k):
            hess[i, j] = hess[j, i] = (
                f(x + eye[i] + eye[j]) - f(x + eye[i] - eye[j]) - f(x - eye[i] + eye[j]) + f(x - eye[i] - eye[j])
            ) / (4 * h**2)
    return hess


class _MaximumLikelihoodFit:
    """Fitting in log-parameters with scipy, standard errors from the observed information."""

    name: str = ""
    param_names: tuple[str, ...] = ()

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        if penalizer_coef < 0:
            raise ParamsError(f"penalizer_coef must be >= 0; got {penalizer_coef}.")
        self.penalizer_coef = float(penalizer_coef)

    # -- fitting ------------------------------------------------------------------------
    def _minimize(
        self,
        objective: Callable[[np.ndarray], float],
        value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]] | None,
        x0: np.ndarray,
        n_customers: float,
    ) -> np.ndarray:
        """Minimise the mean negative log-likelihood over log-parameters; set convergence
        attributes and the covariance of the log-parameters."""
        if value_and_gradient is not None:
            gradient = lambda th: value_and_gradient(th)[1]  # noqa: E731
            result = optimize.minimize(value_and_gradient, x0, jac=True, method="BFGS",
                                       options={"gtol": 1e-9, "maxiter": 2000})
        else:
            gradient = None
            # Central-difference gradients are accurate to ~1e-10; asking BFGS for more only
            # burns evaluations in "precision loss" line searches.
            result = optimize.minimize(objective, x0, jac=lambda th: _numeric_gradient(objective, th), method="BFGS",
                                       options={"gtol": 1e-7, "maxiter": 2000})
        jac = gradient if gradient is not None else (lambda th: _numeric_gradient(objective, th))
        theta = result.x
        grad_norm = float(np.max(np.abs(jac(theta)))) if np.all(np.isfinite(theta)) else np.inf
        # BFGS often ends with "precision loss" at the optimum; what matters is a finite
        # objective and a vanishing gradient.
        converged = bool(np.isfinite(result.fun) and grad_norm < 1e-5)
        reason = f"the optimiser stopped with max |gradient| {grad_norm:.1e} ({result.message})"
        hessian = None
        if converged:
            if gradient is not None:
                # Central differences of the analytic gradient.
                h = 1e-5
                hessian = np.column_stack(
                    [(gradient(theta + h * e) - gradient(theta - h * e)) / (2 * h) for e in np.eye(len(theta))]
                )
                hessian = (hessian + hessian.T) / 2
            else:
                hessian = _numeric_hessian(objective, theta)
            eigen = np.linalg.eigvalsh(hessian) if np.all(np.isfinite(hessian)) else np.array([-1.0])
            converged = bool(eigen.min() > 0)
            reason = "the information matrix is singular (a parameter runs off to 0 or infinity)"
        self.converged_ = converged
        self.optimizer_message_ = f"{result.message} (iterations {result.nit}, max |gradient| {grad_norm:.1e})"
        if not converged:
            last = ", ".join(f"{n}={float(v):.4g}" for n, v in zip(self.param_names, np.exp(theta)))
            raise ModelFitError(
                f"{MODEL_LABELS.get(self.name, self.name)} did not converge on {n_customers:,.0f} customers: "
                f"{reason}; last parameters {last}. The data do not identify the model; try "
                "penalizer_coef=0.001 in params, a longer calibration period, or another model."
            )
        # Observed information of the total (not mean) log-likelihood, in log-parameters.
        self.log_params_covariance_ = np.linalg.inv(hessian * n_customers)
        return theta

    def _set_params(self, params: np.ndarray, n_customers: float, log_likelihood: float) -> None:
        self.params_ = pd.Series(params, index=list(self.param_names), name="estimate")
        # Delta method from the log-parameters: Var(exp(u)) ~ exp(u)^2 Var(u).
        cov = self.log_params_covariance_ * np.outer(params, params)
        self.covariance_ = pd.DataFrame(cov, index=self.params_.index, columns=self.params_.index)
        self.standard_errors_ = pd.Series(np.sqrt(np.diag(cov)), index=self.params_.index, name="standard_error")
        self.n_customers_ = float(n_customers)
        self.log_likelihood_ = float(log_likelihood)
        k = len(params)
        self.aic_ = 2 * k - 2 * self.log_likelihood_
        self.bic_ = k * np.log(n_customers) - 2 * self.log_likelihood_
        logger.info(
            "%s fitted on %s customers: %s, log-likelihood %.2f",
            MODEL_LABELS.get(self.name, self.name),
            f"{n_customers:,.0f}",
            ", ".join(f"{n}={v:.4g}" for n, v in self.params_.items()),
            self.log_likelihood_,
        )

    def _require_fit(self) -> None:
        if not hasattr(self, "params_"):
            raise ModelFitError(f"{MODEL_LABELS.get(self.name, self.name)} is not fitted yet; call fit() first.")

    def with_params(self, params: Sequence[float] | pd.Series):
        """A copy of the fitted model with other parameter values (for parametric draws)."""
        self._require_fit()
        other = copy.copy(self)
        other.params_ = pd.Series(np.asarray(params, dtype=float), index=self.params_.index, name="estimate")
        return other

    def draw_params(self, n_draws: int, rng: np.random.Generator) -> np.ndarray:
        """Parameter draws from the asymptotic normal distribution of the log-parameters."""
        self._require_fit()
        draws = rng.multivariate_normal(np.log(self.params_.to_numpy()), self.log_params_covariance_, size=n_draws)
        return np.exp(draws)

    # -- reporting ----------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Parameters with standard errors and 95% Wald intervals, one row per parameter.

        Fit statistics (log-likelihood, AIC, BIC, converged, n) are in ``frame.attrs``.
        """
        self._require_fit()
        frame = pd.DataFrame(
            {
                "estimate": self.params_,
                "standard_error": self.standard_errors_,
                "lower_95": self.params_ - 1.96 * self.standard_errors_,
                "upper_95": self.params_ + 1.96 * self.standard_errors_,
            }
        )
        frame.index.name = "parameter"
        frame.attrs.update(self.fit_statistics())
        return frame

    def fit_statistics(self) -> dict:
        """Model name, n, log-likelihood, AIC, BIC and convergence as a dict."""
        self._require_fit()
        return {
            "model": self.name,
            "n_customers": self.n_customers_,
            "log_likelihood": self.log_likelihood_,
            "aic": self.aic_,
            "bic": self.bic_,
            "converged": self.converged_,
        }

    def summary(self) -> str:
        """Parameters, standard errors, 95% intervals and fit statistics as text."""
        frame = self.to_frame()
        lines = [
            f"{MODEL_LABELS.get(self.name, self.name)} fitted on {self.n_customers_:,.0f} customers "
            f"({'converged' if self.converged_ else 'NOT converged'})",
            frame.to_string(float_format=lambda v: f"{v:.4f}"),
            f"log-likelihood {self.log_likelihood_:,.2f}   AIC {self.aic_:,.2f}   BIC {self.bic_:,.2f}",
        ]
        if self.penalizer_coef:
            lines.append(f"penalizer_coef {self.penalizer_coef}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"<{type(self).__name__} (not fitted)>"
        return f"<{type(self).__name__}: " + ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items()) + ">"


class _Histories:
    """Distinct histories with weights, plus the distinct values of each column and of the
    (frequency, recency) and (frequency, T) pairs, so that special functions (gammaln,
    digamma, log, hyp2f1) are evaluated once per distinct argument, not once per row."""

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
        self.x, self.tx, self.T, self.w = x, tx, T, w
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.utx, self.itx = np.unique(tx, return_inverse=True)
        self.uT, self.iT = np.unique(T, return_inverse=True)
        self.wx = np.bincount(self.ix, weights=w, minlength=len(self.ux))  # weight per distinct x
        self.repeat = x > 0

    @staticmethod
    def _pairs(i: np.ndarray, j: np.ndarray, n_j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        inverse, codes = pd.factorize(i.astype(np.int64) * n_j + j)
        return codes // n_j, codes % n_j, inverse

    def x_tx_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (x, t_x) values and the row -> pair index."""
        if not hasattr(self, "_x_tx"):
            a, b, inv = self._pairs(self.ix, self.itx, len(self.utx))
            self._x_tx = (self.ux[a], self.utx[b], inv)
        return self._x_tx

    def x_T_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distinct (x, T) values and the row -> pair index."""
        if not hasattr(self, "_x_T"):
            a, b, inv = self._pairs(self.ix, self.iT, len(self.uT))
            self._x_T = (self.ux[a], self.uT[b], inv)
        return self._x_T


class BTYDFit(_MaximumLikelihoodFit):
    """A buy-till-you-die model of repeat purchases fitted on (frequency, recency, T).

    Subclasses give the per-history log-likelihood and the predictions. Fitting mirrors
    lifetimes exactly (time rescaled so that max T = 1, log-parameters, mean negative
    log-likelihood plus ``penalizer_coef * sum(params**2)`` on the rescaled parameters),
    but on the distinct histories with weights.

    Attributes (after ``fit``)
    --------------------------
    params_, standard_errors_, covariance_ : Series / DataFrame
    log_likelihood_, aic_, bic_ : float
        On the original time unit, without the penalizer.
    converged_ : bool
    n_customers_, n_repeat_buyers_ : float
    """

    #: Parameters measured in time units (rescaled with the data).
    time_params: tuple[str, ...] = ("alpha",)
    #: Whether ``_log_likelihood_rows`` can return the gradient.
    has_gradient = False
    min_repeat_buyers_default = 20

    def __init__(self, penalizer_coef: float = 0.0, min_repeat_buyers: int | None = None) -> None:
        super().__init__(penalizer_coef)
        self.min_repeat_buyers = self.min_repeat_buyers_default if min_repeat_buyers is None else int(min_repeat_buyers)

    # Per-history log-likelihood (and, with gradient=True, its gradient w.r.t. the natural
    # parameters as a (rows, k) array).
    def _log_likelihood_rows(self, params, x, tx, T, gradient=False):  # pragma: no cover - abstract
        raise NotImplementedError

    def _weighted_log_likelihood(self, params, h: "_Histories", gradient=False):
        """Weighted sum of the per-history log-likelihoods (and of their gradients)."""
        if not gradient:
            return h.w @ self._log_likelihood_rows(params, h.x, h.tx, h.T)
        ll, grad_rows = self._log_likelihood_rows(params, h.x, h.tx, h.T, gradient=True)
        return h.w @ ll, h.w @ grad_rows

    def _scaled(self, params: np.ndarray, scale: float) -> np.ndarray:
        """Natural parameters -> parameters for data whose time was multiplied by scale."""
        out = np.array(params, dtype=float)
        for name in self.time_params:
            out[self.param_names.index(name)] /= scale
        return out

    def fit(self, frequency, recency, T, weights=None, initial_params: Sequence[float] | None = None):
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T : array-like
            Per-customer (or per distinct history) x, t_x and T.
        weights : array-like, optional
            Number of customers with each history (default 1 each).
        initial_params : sequence of float, optional
            Starting values on the rescaled time (default 1 for every parameter).

        Returns
        -------
        self

        Raises
        ------
        DataValidationError
            Impossible histories (recency > T, negative values, ...).
        ModelFitError
            Fewer than ``min_repeat_buyers`` repeat buyers, or no convergence.
        """
        x, tx, age = _as_array(frequency), _as_array(recency), _as_array(T)
        w = np.ones(len(x)) if weights is None else _as_array(weights)
        label = MODEL_LABELS.get(self.name, self.name)
        _check_histories(x, tx, age, label)
        (x, tx, age), w, _ = collapse_histories(x, tx, age, weights=w)
        n_customers = float(w.sum())
        n_repeat = float(w[x > 0].sum())
        self.n_repeat_buyers_ = n_repeat
        if n_repeat < self.min_repeat_buyers:
            raise ModelFitError(
                f"{label}: only {n_repeat:,.0f} of {n_customers:,.0f} customers made a repeat purchase; at least "
                f"{self.min_repeat_buyers} are needed to identify purchase and drop-out rates. Use a longer "
                "calibration period (calibration_end later) or more customers."
            )
        scale = 1.0 / age.max()
        xs, txs, Ts = x, tx * scale, age * scale
        total_w = w.sum()
        pen = self.penalizer_coef

        histories = _Histories(xs, txs, Ts, w)

        def objective(theta: np.ndarray) -> float:
            params = np.exp(theta)
            with np.errstate(all="ignore"):
                total = self._weighted_log_likelihood(params, histories)
            value = -total / total_w + pen * np.sum(params**2)
            return float(value) if np.isfinite(value) else 1e10

        value_and_gradient = None
        if self.has_gradient:

            def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
                params = np.exp(theta)
                with np.errstate(all="ignore"):
                    total, grad = self._weighted_log_likelihood(params, histories, gradient=True)
                value = -total / total_w + pen * np.sum(params**2)
                grad = (-grad / total_w + 2 * pen * params) * params  # chain rule to log-parameters
                if not (np.isfinite(value) and np.all(np.isfinite(grad))):
                    return 1e10, np.zeros_like(theta)
                return float(value), grad

        x0 = np.zeros(len(self.param_names)) if initial_params is None else np.log(np.asarray(initial_params, float))
        theta = self._minimize(objective, value_and_gradient, x0, n_customers)
        params = np.exp(theta)
        for name in self.time_params:
            params[self.param_names.index(name)] /= scale  # back to the original time unit
        log_likelihood = float(w @ self._log_likelihood_rows(params, x, tx, age))
        self._set_params(params, n_customers, log_likelihood)
        self.n_histories_ = len(x)
        return self

    # Predictions every transaction model offers.
    def conditional_probability_alive(self, frequency, recency, T):
        """Probability that a customer with history (frequency, recency, T) is still active."""
        raise NotImplementedError  # pragma: no cover

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """Expected number of repeat purchases in the next ``t`` time units, given the history."""
        raise NotImplementedError  # pragma: no cover

    def expected_number_of_purchases_up_to_time(self, t):
        """Expected repeat purchases of a new customer in her first ``t`` time units."""
        raise NotImplementedError  # pragma: no cover

    def simulate(self, T, *, seed: int = 0, whole_periods: bool = False) -> pd.DataFrame:
        """Simulate customers of ages T from the fitted model (see :mod:`crm_lib.simulate`)."""
        raise NotImplementedError  # pragma: no cover

    def _discounted_purchases(self, t_grid, discount, x, tx, age):
        """Sum over k >= 1 of (E(t_k) - E(t_(k-1))) / discount_(k-1) for distinct histories (t_grid[0] = 0)."""
        expected = np.asarray(self.conditional_expected_number_of_purchases_up_to_time(
            t_grid[None, :], x[:, None], tx[:, None], age[:, None]), dtype=float)
        expected[:, 0] = 0.0
        return (np.diff(expected, axis=1) / discount).sum(axis=1)

    #: lifetimes' name for the conditional expectation.
    def predict(self, t, frequency, recency, T):
        """Alias of :meth:`conditional_expected_number_of_purchases_up_to_time` (lifetimes' name)."""
        return self.conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)


class BetaGeoFit(BTYDFit):
    """BG/NBD model, Fader, Hardie & Lee (2005a)."""

    name = "bg_nbd"
    param_names = ("r", "alpha", "a", "b")
    has_gradient = True

    def _log_likelihood_rows(self, params, x, tx, T, gradient=False):
        r, alpha, a, b = params
        repeat = x > 0
        # FHL (2005a), eq. 6, written as in lifetimes: A1 + A2 + log(exp(A3) + [x>0] exp(A4)).
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        A2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        A3 = -(r + x) * np.log(alpha + T)
        A4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(tx + alpha)
        A4 = np.where(repeat, A4, -np.inf)
        top = np.maximum(A3, A4)
        mix = np.log(np.exp(A3 - top) + np.exp(A4 - top)) + top
        ll = A1 + A2 + mix
        if not gradient:
            return ll
        w3, w4 = np.exp(A3 - mix), np.exp(A4 - mix)
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + tx)
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + tx)
        common = digamma(a + b) - digamma(a + b + x)
        d_a = common + w4 / a
        d_b = common + digamma(b + x) - digamma(b) - np.where(repeat, w4 / (b + np.maximum(x, 1) - 1), 0.0)
        return ll, np.column_stack([d_r, d_alpha, d_a, d_b])

    def _weighted_log_likelihood(self, params, h: _Histories, gradient=False):
        # The same eq. 6 as _log_likelihood_rows, with every term that depends on x only
        # summed over the distinct x with their total weight, logs of alpha + T and
        # alpha + t_x taken once per distinct value, and customers without repeat purchase
        # (where the likelihood is A1 + A2 + A3) summed per distinct T.
        r, alpha, a, b = params
        ux, wx = h.ux, h.wx
        x_terms = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + ux)
                   - gammaln(b) - gammaln(a + b + ux))
        log_T = np.log(alpha + h.uT)
        log_tx = np.log(alpha + h.utx)
        zero = ~h.repeat
        w0_T = np.bincount(h.iT[zero], weights=h.w[zero], minlength=len(h.uT))
        rep = h.repeat
        w1, ix1, iT1, itx1 = h.w[rep], h.ix[rep], h.iT[rep], h.itx[rep]
        rx1 = r + h.x[rep]
        log_T1, log_tx1 = log_T[iT1], log_tx[itx1]
        # log(exp(A3) + exp(A4)) = A3 + softplus(A4 - A3), A3 = -(r + x) log(alpha + T).
        gap = (np.log(a) - np.log(b + np.maximum(ux, 1) - 1))[ix1] + rx1 * (log_T1 - log_tx1)
        total = wx @ x_terms - r * (w0_T @ log_T) + w1 @ (np.logaddexp(0.0, gap) - rx1 * log_T1)
        if not gradient:
            return total
        p4 = expit(gap)  # share of the "dropped out after the last purchase" term
        inv_T, inv_tx = 1 / (alpha + h.uT), 1 / (alpha + h.utx)
        inv_T1 = inv_T[iT1]
        common = digamma(a + b) - digamma(a + b + ux)
        d_r = (wx @ (digamma(r + ux) - digamma(r) + np.log(alpha)) - w0_T @ log_T
               - w1 @ (log_T1 - p4 * (log_T1 - log_tx1)))
        d_alpha = (wx.sum() * r / alpha - r * (w0_T @ inv_T)
                   - w1 @ (rx1 * (inv_T1 + p4 * (inv_tx[itx1] - inv_T1))))
        w1p4 = w1 * p4
        d_a = wx @ common + w1p4.sum() / a
        d_b = wx @ (common + digamma(b + ux) - digamma(b)) - w1p4 @ (1 / (b + np.maximum(ux, 1) - 1))[ix1]
        return total, np.array([d_r, d_alpha, d_a, d_b])

    def conditional_probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T), Fader, Hardie & Lee, note 021 ("Computing P(alive) using the BG/NBD model")."""
        self._require_fit()
        r, alpha, a, b = self.params_.to_numpy()
        x, tx, age = _as_array(frequency), _as_array(recency), _as_array(T)
        log_div = (r + x) * np.log((alpha + age) / (alpha + tx)) + np.log(a / (b + np.maximum(x, 1) - 1))
        return _like_input(np.atleast_1d(np.where(x == 0, 1.0, expit(-log_div))), frequency, recency, T)

    def _numerator(self, t, x, age):
        # FHL (2005a), eq. 10, numerator (depends on x and T only), with lifetimes'
        # fallback formula where 2F1 overflows.
        r, alpha, a, b = self.params_.to_numpy()
        _a, _b, _c = r + x, b + x, a + b + x - 1
        z = t / (alpha + age + t)
        log_power = (r + x) * np.log((alpha + age) / (alpha + t + age))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            hyp = hyp2f1(_a, _b, _c, z)
            ln_hyp_alt = np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log(1 - z)
            # 2F1 is negative when a + b + x - 1 < 0 (x = 0, a + b < 1): keep its sign rather
            # than take its log (lifetimes' log form returns NaN there).
            term = np.where(np.isfinite(hyp) & (hyp != 0), hyp * np.exp(log_power), np.exp(ln_hyp_alt + log_power))
        return (a + b + x - 1) / (a - 1) * (1 - term)

    def _denominator(self, x, tx, age):
        # FHL (2005a), eq. 10, denominator: 1 / P(alive) (note 021).
        r, alpha, a, b = self.params_.to_numpy()
        return 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + age) / (alpha + tx)) ** (r + x)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[X(T, T+t) | x, t_x, T], FHL (2005a), eq. 10 (with lifetimes' fallback for 2F1 overflow)."""
        self._require_fit()
        t, x, tx, age = _as_array(t), _as_array(frequency), _as_array(recency), _as_array(T)
        return _like_input(self._numerator(t, x, age) / self._denominator(x, tx, age), frequency, recency, T, t)

    def _discounted_purchases(self, t_grid, discount, x, tx, age):
        # The numerator of eq. 10 depends on (x, T) only: evaluate it per distinct pair.
        (px, pT), _, inverse = collapse_histories(x, age)
        numerator = self._numerator(t_grid[None, :], px[:, None], pT[:, None])
        numerator[:, 0] = 0.0
        return (np.diff(numerator, axis=1) / discount).sum(axis=1)[inverse] / self._denominator(x, tx, age)

    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] of a new customer, FHL (2005a), eq. 9."""
        self._require_fit()
        r, alpha, a, b = self.params_.to_numpy()
        t = _as_array(t)
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - hyp * (alpha / (alpha + t)) ** r)

    def simulate(self, T, *, seed: int = 0, whole_periods: bool = False) -> pd.DataFrame:
        from crm_lib.simulate import simulate_bg_nbd

        self._require_fit()
        return simulate_bg_nbd(T, *self.params_.to_numpy(), seed=seed, whole_periods=whole_periods)


class ModifiedBetaGeoFit(BTYDFit):
    """MBG/NBD model, Batislam, Denizel & Filiztekin (2007): drop-out also possible at time 0."""

    name = "mbg_nbd"
    param_names = ("r", "alpha", "a", "b")
    has_gradient = True

    def _log_likelihood_rows(self, params, x, tx, T, gradient=False):
        r, alpha, a, b = params
        # Batislam et al. (2007), eq. 5, as in lifetimes' ModifiedBetaGeoFitter.
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        A2 = gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
        A3 = -(r + x) * np.log(alpha + T)
        A4 = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        soft = np.logaddexp(A4, 0.0)
        ll = A1 + A2 + A3 + soft
        if not gradient:
            return ll
        w4 = expit(A4)  # d logaddexp(A4, 0) / d A4
        d_r = (digamma(r + x) - digamma(r) + np.log(alpha) - np.log(alpha + T)
               + w4 * (np.log(alpha + T) - np.log(alpha + tx)))
        d_alpha = r / alpha - (r + x) / (alpha + T) + w4 * (r + x) * (1 / (alpha + T) - 1 / (alpha + tx))
        common = digamma(a + b) - digamma(a + b + x + 1)
        d_a = common + w4 / a
        d_b = common + digamma(b + x + 1) - digamma(b) - w4 / (b + x)
        return ll, np.column_stack([d_r, d_alpha, d_a, d_b])

    def _weighted_log_likelihood(self, params, h: _Histories, gradient=False):
        # Eq. 5 of Batislam et al. with x-only terms summed per distinct x and logs taken
        # once per distinct T and t_x (see BetaGeoFit._weighted_log_likelihood).
        r, alpha, a, b = params
        ux, wx, w = h.ux, h.wx, h.w
        x_terms = (gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + ux + 1)
                   - gammaln(b) - gammaln(a + b + ux + 1))
        log_T = np.log(alpha + h.uT)[h.iT]
        log_tx = np.log(alpha + h.utx)[h.itx]
        rx = r + h.x
        A4 = (np.log(a) - np.log(b + ux))[h.ix] + rx * (log_T - log_tx)
        total = wx @ x_terms + w @ (np.logaddexp(A4, 0.0) - rx * log_T)
        if not gradient:
            return total
        p4 = expit(A4)
        inv_T, inv_tx = (1 / (alpha + h.uT))[h.iT], (1 / (alpha + h.utx))[h.itx]
        common = digamma(a + b) - digamma(a + b + ux + 1)
        d_r = wx @ (digamma(r + ux) - digamma(r) + np.log(alpha)) + w @ (p4 * (log_T - log_tx) - log_T)
        d_alpha = wx.sum() * r / alpha + w @ (rx * (p4 * (inv_T - inv_tx) - inv_T))
        d_a = wx @ common + (w @ p4) / a
        d_b = wx @ (common + digamma(b + ux + 1) - digamma(b)) - w @ (p4 / (b + ux)[h.ix])
        return total, np.array([d_r, d_alpha, d_a, d_b])

    def conditional_probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T), Batislam et al. (2007), appendix A, eq. 5."""
        self._require_fit()
        r, alpha, a, b = self.params_.to_numpy()
        x, tx, age = _as_array(frequency), _as_array(recency), _as_array(T)
        out = 1.0 / (1 + (a / (b + x)) * ((alpha + age) / (alpha + tx)) ** (r + x))
        return _like_input(np.atleast_1d(out), frequency, recency, T)

    def _numerator(self, t, x, age):
        # Batislam et al. (2007), eq. 6, numerator (depends on x and T only).
        r, alpha, a, b = self.params_.to_numpy()
        hyp_term = hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + age + t))
        return (a + b + x) / (a - 1) * (1 - hyp_term * ((alpha + age) / (alpha + t + age)) ** (r + x))

    def _denominator(self, x, tx, age):
        r, alpha, a, b = self.params_.to_numpy()
        return 1 + (a / (b + x)) * ((alpha + age) / (alpha + tx)) ** (r + x)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[X(T, T+t) | x, t_x, T], Batislam et al. (2007), eq. 6."""
        self._require_fit()
        t, x, tx, age = _as_array(t), _as_array(frequency), _as_array(recency), _as_array(T)
        return _like_input(self._numerator(t, x, age) / self._denominator(x, tx, age), frequency, recency, T, t)

    _discounted_purchases = BetaGeoFit._discounted_purchases

    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] of a new customer, Batislam et al. (2007), eq. 4."""
        self._require_fit()
        r, alpha, a, b = self.params_.to_numpy()
        t = _as_array(t)
        return b / (a - 1) * (1 - hyp2f1(r, b + 1, a + b, t / (alpha + t)) * (alpha / (alpha + t)) ** r)

    def simulate(self, T, *, seed: int = 0, whole_periods: bool = False) -> pd.DataFrame:
        from crm_lib.simulate import simulate_mbg_nbd

        self._require_fit()
        return simulate_mbg_nbd(T, *self.params_.to_numpy(), seed=seed, whole_periods=whole_periods)


class ParetoNBDFit(BTYDFit):
    """Pareto/NBD model, Schmittlein, Morrison & Colombo (1987)."""

    name = "pareto_nbd"
    param_names = ("r", "alpha", "s", "beta")
    time_params = ("alpha", "beta")

    @staticmethod
    def _log_A_0(params, x, tx, T):
        # Fader & Hardie, note 009 ("A note on deriving the Pareto/NBD model"), eqs. 19-20.
        r, alpha, s, beta = params
        if alpha < beta:
            low, high, third = alpha, beta, r + x
        else:
            low, high, third = beta, alpha, s + 1
        gap = high - low
        rsx = r + s + x
        p1 = hyp2f1(rsx, third, rsx + 1.0, gap / (high + tx))
        q1 = high + tx
        p2 = hyp2f1(rsx, third, rsx + 1.0, gap / (high + T))
        q2 = high + T
        both = np.stack([np.log(p1) + rsx * np.log(q2), np.log(p2) + rsx * np.log(q1)])
        signs = np.stack([np.ones_like(rsx * q1), -np.ones_like(rsx * q1)])
        log_a0 = logsumexp(both, axis=0, b=signs) - rsx * np.log(q1 * q2)
        # A_0 is exactly 0 when the last purchase is at the end of observation (t_x = T); for a
        # very frequent buyer 2F1 overflows and the difference above would be inf - inf = NaN.
        return np.where(np.broadcast_to(tx == T, np.shape(log_a0)), -np.inf, log_a0)

    def _log_likelihood_rows(self, params, x, tx, T, gradient=False):
        r, alpha, s, beta = params
        # Fader & Hardie, note 009, eq. 18.
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        log_A0 = self._log_A_0(params, x, tx, T)
        A2 = np.logaddexp(-(r + x) * np.log(alpha + T) - s * np.log(beta + T), np.log(s) + log_A0 - np.log(r + s + x))
        return A1 + A2

    def _weighted_log_likelihood(self, params, h: _Histories, gradient=False):
        # Note 009, eq. 18, with the two 2F1 terms of eqs. 19-20 evaluated once per distinct
        # (x, t_x) and (x, T) pair instead of once per history.
        r, alpha, s, beta = params
        if alpha < beta:
            low, high = alpha, beta
        else:
            low, high = beta, alpha
        gap = high - low
        px, ptx, i1 = h.x_tx_pairs()
        qx, qT, i2 = h.x_T_pairs()
        third1 = r + px if alpha < beta else s + 1
        third2 = r + qx if alpha < beta else s + 1
        log_p1 = np.log(hyp2f1(r + s + px, third1, r + s + px + 1.0, gap / (high + ptx)))[i1]
        log_p2 = np.log(hyp2f1(r + s + qx, third2, r + s + qx + 1.0, gap / (high + qT)))[i2]
        log_q1 = np.log(high + h.utx)[h.itx]
        log_q2 = np.log(high + h.uT)[h.iT]
        rsx = r + s + h.x
        u, v = log_p1 + rsx * log_q2, log_p2 + rsx * log_q1
        top = np.maximum(u, v)
        log_A0 = np.log(np.exp(u - top) - np.exp(v - top)) + top - rsx * (log_q1 + log_q2)
        x_terms = gammaln(r + h.ux) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        A2 = np.logaddexp(-(r + h.x) * np.log(alpha + h.uT)[h.iT] - s * np.log(beta + h.uT)[h.iT],
                          np.log(s) + log_A0 - np.log(rsx))
        return h.wx @ x_terms + h.w @ A2

    def conditional_probability_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T), Fader & Hardie, note 009, eqs. 36-37."""
        self._require_fit()
        r, alpha, s, beta = params = self.params_.to_numpy()
        x, tx, age = _as_array(frequency), _as_array(recency), _as_array(T)
        with np.errstate(all="ignore"):
            A0 = self._log_A_0(params, x, tx, age)
            out = 1.0 / (1.0 + np.exp(np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + age)
                                      + s * np.log(beta + age) + A0))
        return _like_input(np.atleast_1d(out), frequency, recency, T)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[X(T, T+t) | x, t_x, T], Fader & Hardie, note 009, eq. 41."""
        self._require_fit()
        r, alpha, s, beta = params = self.params_.to_numpy()
        t, x, tx, age = _as_array(t), _as_array(frequency), _as_array(recency), _as_array(T)
        with np.errstate(all="ignore"):
            likelihood = self._log_likelihood_rows(params, x, tx, age)
            first = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                     - (r + x) * np.log(alpha + age) - s * np.log(beta + age))
            second = np.log(r + x) + np.log(beta + age) - np.log(alpha + age)
            third = np.log((1 - ((beta + age) / (beta + age + t)) ** (s - 1)) / (s - 1))
            out = np.exp(first + second + third - likelihood)
        return _like_input(np.where(t == 0, 0.0, out), frequency, recency, T, t)

    def _discounted_purchases(self, t_grid, discount, x, tx, age):
        # Eq. 41 is exp(first + second - LL) x exp(third), and only the third term depends
        # on t (and T alone): discount its month-by-month differences once per distinct T.
        r, alpha, s, beta = params = self.params_.to_numpy()
        with np.errstate(all="ignore"):
            likelihood = self._log_likelihood_rows(params, x, tx, age)
            first = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                     - (r + x) * np.log(alpha + age) - s * np.log(beta + age))
            second = np.log(r + x) + np.log(beta + age) - np.log(alpha + age)
            uT, iT = np.unique(age, return_inverse=True)
            base = (beta + uT[:, None]) / (beta + uT[:, None] + t_grid[None, :])
            third = (1 - base ** (s - 1)) / (s - 1)
        third[:, 0] = 0.0
        per_T = (np.diff(third, axis=1) / discount).sum(axis=1)
        return np.exp(first + second - likelihood) * per_T[iT]

    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] of a new customer, Fader & Hardie, note 009, eq. 27."""
        self._require_fit()
        r, alpha, s, beta = self.params_.to_numpy()
        t = _as_array(t)
        return r * beta / alpha / (s - 1) * (1 - (beta / (beta + t)) ** (s - 1))

    def simulate(self, T, *, seed: int = 0, whole_periods: bool = False) -> pd.DataFrame:
        from crm_lib.simulate import simulate_pareto_nbd

        self._require_fit()
        return simulate_pareto_nbd(T, *self.params_.to_numpy(), seed=seed, whole_periods=whole_periods)


class BetaGeoBetaBinomFit(BTYDFit):
    """BG/BB model for discrete-time data, Fader, Hardie & Shang (2010).

    The third history column is ``n_periods`` (number of purchase opportunities), not T;
    ``recency`` is the last period with a purchase.
    """

    name = "bg_bb"
    param_names = ("alpha", "beta", "gamma", "delta")
    time_params = ()

    def _log_likelihood_rows(self, params, x, tx, n, gradient=False):
        alpha, beta, gamma, delta = params
        # FHS (2010), eq. 5: alive through all n periods, or died after period tx + i.
        A = betaln(alpha + x, beta + n - x) - betaln(alpha, beta) + betaln(gamma, delta + n) - betaln(gamma, delta)
        gap = (n - tx - 1).astype(int)
        j = np.arange(max(int(gap.max()), 0) + 1)
        terms = (betaln(alpha + x[:, None], beta + tx[:, None] - x[:, None] + j) +
                 betaln(gamma + 1, delta + tx[:, None] + j))
        terms = np.where(j[None, :] <= gap[:, None], terms, -np.inf)
        B = logsumexp(terms, axis=1) - betaln(gamma, delta) - betaln(alpha, beta)
        return np.logaddexp(A, B)

    def _scaled(self, params, scale):
        return np.array(params, dtype=float)

    def fit(self, frequency, recency, n_periods, weights=None, initial_params=None):
        """Fit on (frequency, recency, n_periods); see :meth:`BTYDFit.fit`."""
        n = _as_array(n_periods)
        if not np.all(n == np.round(n)):
            raise DataValidationError("BG/BB: n_periods must be whole numbers of purchase opportunities.")
        x, tx, w = _as_array(frequency), _as_array(recency), None if weights is None else _as_array(weights)
        _check_histories(x, tx, n, "BG/BB")
        (x, tx, n), w, _ = collapse_histories(x, tx, n, weights=w)
        n_customers = float(w.sum())
        self.n_repeat_buyers_ = float(w[x > 0].sum())
        if self.n_repeat_buyers_ < self.min_repeat_buyers:
            raise ModelFitError(
                f"BG/BB: only {self.n_repeat_buyers_:,.0f} of {n_customers:,.0f} customers bought in any period; at "
                f"least {self.min_repeat_buyers} are needed. Use more periods or more customers."
            )
        total_w, pen = w.sum(), self.penalizer_coef

        def objective(theta):
            params = np.exp(theta)
            with np.errstate(all="ignore"):
                value = -(w @ self._log_likelihood_rows(params, x, tx, n)) / total_w + pen * np.sum(params**2)
            return float(value) if np.isfinite(value) else 1e10

        x0 = np.zeros(4) if initial_params is None else np.log(np.asarray(initial_params, float))
        theta = self._minimize(objective, None, x0, n_customers)
        params = np.exp(theta)
        self._set_params(params, n_customers, float(w @ self._log_likelihood_rows(params, x, tx, n)))
        self.n_histories_ = len(x)
        return self

    def conditional_probability_alive(self, frequency, recency, n_periods, m_periods_in_future=0):
        """P(alive at period n + m | x, t_x, n), FHS (2010), eq. 11."""
        self._require_fit()
        alpha, beta, gamma, delta = params = self.params_.to_numpy()
        x, tx, n = _as_array(frequency), _as_array(recency), _as_array(n_periods)
        p1 = betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
        p2 = betaln(gamma, delta + n + m_periods_in_future) - betaln(gamma, delta)
        out = np.exp(p1 + p2 - self._log_likelihood_rows(params, x, tx, n))
        return _like_input(np.atleast_1d(out), frequency, recency, n_periods)

    def conditional_expected_number_of_purchases_up_to_time(self, m_periods_in_future, frequency, recency, n_periods):
        """Expected purchases in the next m periods | x, t_x, n, FHS (2010), eq. 13."""
        self._require_fit()
        alpha, beta, gamma, delta = params = self.params_.to_numpy()
        m = _as_array(m_periods_in_future)
        x, tx, n = _as_array(frequency), _as_array(recency), _as_array(n_periods)
        p1 = np.exp(-self._log_likelihood_rows(params, x, tx, n))
        p2 = np.exp(betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta))
        p3 = delta / (gamma - 1) * np.exp(gammaln(gamma + delta) - gammaln(1 + delta))
        p4 = np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n))
        p5 = np.exp(gammaln(1 + delta + n + m) - gammaln(gamma + delta + n + m))
        return _like_input(p1 * p2 * p3 * (p4 - p5), frequency, recency, n_periods)

    def expected_number_of_purchases_up_to_time(self, n_periods):
        """E[X(n)] of a new customer, FHS (2010), eq. 9."""
        self._require_fit()
        alpha, beta, gamma, delta = self.params_.to_numpy()
        n = _as_array(n_periods)
        return alpha / (alpha + beta) * delta / (gamma - 1) * (
            1 - np.exp(gammaln(gamma + delta) - gammaln(1 + delta) + gammaln(1 + delta + n) - gammaln(gamma + delta + n))
        )

    def simulate(self, n_periods, *, seed: int = 0, n_customers: int = 1000) -> pd.DataFrame:
        from crm_lib.simulate import simulate_bg_bb

        self._require_fit()
        return simulate_bg_bb(int(n_periods), *self.params_.to_numpy(), n_customers=n_customers, seed=seed)


MODELS: dict[str, type[BTYDFit]] = {
    "bg_nbd": BetaGeoFit,
    "mbg_nbd": ModifiedBetaGeoFit,
    "pareto_nbd": ParetoNBDFit,
    "bg_bb": BetaGeoBetaBinomFit,
}


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{what}: column(s) {missing} not found; the summary has {list(frame.columns)}. Build it with "
            "crm_lib.summary.rfm_summary (or calibration_holdout_summary and rename the *_cal columns)."
        )


def fit_model(
    summary: pd.DataFrame,
    model: str = "bg_nbd",
    *,
    penalizer_coef: float = 0.0,
    weights: pd.Series | np.ndarray | None = None,
    min_repeat_buyers: int | None = None,
    initial_params: Sequence[float] | None = None,
) -> BTYDFit:
    """Fit a buy-till-you-die model on a per-customer summary.

    Parameters
    ----------
    summary : DataFrame
        One row per customer with ``frequency``, ``recency`` and ``T`` (for ``"bg_bb"``:
        ``frequency``, ``recency``, ``n_periods``), as made by
        :func:`crm_lib.summary.rfm_summary`.
    model : {"bg_nbd", "mbg_nbd", "pareto_nbd", "bg_bb"}
        Which model.
    penalizer_coef : float
        L2 penalty on the (time-rescaled) parameters, as in lifetimes; 0 is plain
        maximum likelihood.
    weights : array-like, optional
        Number of customers behind each row (for summaries already collapsed).
    min_repeat_buyers : int, optional
        Fewer repeat buyers than this raise ModelFitError (default 20).
    initial_params : sequence of float, optional
        Starting values for the optimiser.

    Returns
    -------
    BTYDFit
        Fitted model: ``params_``, ``standard_errors_``, ``log_likelihood_``, ``aic_``,
        ``bic_``, ``converged_``, prediction methods, ``summary()`` and ``to_frame()``.

    Raises
    ------
    ParamsError
        Unknown model name.
    DataValidationError
        Missing columns or impossible histories.
    ModelFitError
        Too few repeat buyers, or the optimiser did not converge.

    Examples
    --------
    >>> from lifetimes.datasets import load_cdnow_summary
    >>> fit = fit_model(load_cdnow_summary(index_col=[0]), "bg_nbd")
    >>> round(fit.params_["r"], 3)
    0.243
    """
    if model not in MODELS:
        raise ParamsError(f"model={model!r} is not known; use one of {', '.join(MODELS)} (or 'auto' in validation).")
    third = "n_periods" if model == "bg_bb" else "T"
    _require_columns(summary, ["frequency", "recency", third], MODEL_LABELS[model])
    fitter = MODELS[model](penalizer_coef=penalizer_coef, min_repeat_buyers=min_repeat_buyers)
    return fitter.fit(summary["frequency"], summary["recency"], summary[third], weights=weights,
                      initial_params=initial_params)


# ---------------------------------------------------------------------------------------
# Gamma-Gamma spend model
# ---------------------------------------------------------------------------------------


class GammaGammaFit(_MaximumLikelihoodFit):
    """Gamma-Gamma model of the mean spend per repeat purchase.

    Fader, Hardie & Lee (2005b), "RFM and CLV: using iso-value curves", section 4, and
    Hardie's note 025. Fitted on repeat buyers only (frequency > 0); assumes spend is
    independent of purchase frequency (see :func:`spend_frequency_correlation`).
    Parameters p, q and v (v is the paper's gamma).
    """

    name = "gamma_gamma"
    param_names = ("p", "q", "v")

    @staticmethod
    def _log_likelihood_rows(params, x, m, gradient=False):
        p, q, v = params
        # Hardie, note 025, eq. 1a.
        ll = (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + (p * x - 1) * np.log(m)
              + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))
        if not gradient:
            return ll
        log_ratio = np.log(m) + np.log(x) - np.log(x * m + v)
        d_p = x * (digamma(p * x + q) - digamma(p * x) + log_ratio)
        d_q = digamma(p * x + q) - digamma(q) + np.log(v) - np.log(x * m + v)
        d_v = q / v - (p * x + q) / (x * m + v)
        return ll, np.column_stack([d_p, d_q, d_v])

    def fit(self, frequency, monetary_value, weights=None, min_repeat_buyers: int = 20,
            nonpositive_spend: str = "raise"):
        """Fit on the repeat buyers' (frequency, mean repeat spend).

        Parameters
        ----------
        nonpositive_spend : {"raise", "exclude"}
            What to do with repeat buyers whose mean spend is 0 (free orders only): raise,
            or leave them out of the fit (their number is in ``n_excluded_`` and the log).

        Raises
        ------
        DataValidationError
            Non-positive spend among repeat buyers (with ``nonpositive_spend="raise"``).
        ModelFitError
            Fewer than ``min_repeat_buyers`` repeat buyers, or no convergence.
        """
        if nonpositive_spend not in ("raise", "exclude"):
            raise ParamsError(f"nonpositive_spend={nonpositive_spend!r}: use 'raise' or 'exclude'.")
        x_all, m_all = _as_array(frequency), _as_array(monetary_value)
        w_all = np.ones(len(x_all)) if weights is None else _as_array(weights)
        buyers = x_all > 0
        x, m, w = x_all[buyers], m_all[buyers], w_all[buyers]
        bad = ~(m > 0) | ~np.isfinite(m)
        self.n_excluded_ = float(w[bad].sum()) if nonpositive_spend == "exclude" else 0.0
        if bad.any() and nonpositive_spend == "exclude":
            logger.warning("Gamma-Gamma: %d of %d repeat buyers with a mean spend <= 0 are left out of the fit",
                           int(bad.sum()), len(m))
            x, m, w = x[~bad], m[~bad], w[~bad]
        elif bad.any():
            raise DataValidationError(
                f"Gamma-Gamma: {int(bad.sum()):,} of {len(m):,} repeat buyers have a mean spend that is not positive "
                f"(e.g. {m[bad][0]}); drop zero-amount purchases (zero_amounts='drop'), or pass "
                f"nonpositive_spend='exclude' to leave these customers out of the spend model."
            )
        if w.sum() < min_repeat_buyers:
            raise ModelFitError(
                f"Gamma-Gamma: only {w.sum():,.0f} repeat buyers; at least {min_repeat_buyers} are needed to fit the "
                "spend model. Use a longer period or more customers."
            )
        total_w, pen = w.sum(), self.penalizer_coef

        def objective(theta):
            params = np.exp(theta)
            with np.errstate(all="ignore"):
                value = -(w @ self._log_likelihood_rows(params, x, m)) / total_w + pen * np.sum(params**2)
            return float(value) if np.isfinite(value) else 1e10

        def value_and_gradient(theta):
            params = np.exp(theta)
            with np.errstate(all="ignore"):
                ll, rows = self._log_likelihood_rows(params, x, m, gradient=True)
            value = -(w @ ll) / total_w + pen * np.sum(params**2)
            grad = (-(w @ rows) / total_w + 2 * pen * params) * params
            if not (np.isfinite(value) and np.all(np.isfinite(grad))):
                return 1e10, np.zeros_like(theta)
            return float(value), grad

        # Start from lifetimes' default (log-parameters 0.1) shifted to the spend scale.
        x0 = np.array([0.1, 0.1, np.log(np.average(m, weights=w))])
        theta = self._minimize(objective, value_and_gradient, x0, float(total_w))
        params = np.exp(theta)
        self._set_params(params, float(total_w), float(w @ self._log_likelihood_rows(params, x, m)))
        return self

    def conditional_expected_average_profit(self, frequency, monetary_value):
        """E[mean spend | x, m]: a weighted mean of the customer's and the population's, note 025 eq. 5."""
        self._require_fit()
        p, q, v = self.params_.to_numpy()
        x, m = _as_array(frequency), _as_array(monetary_value)
        individual_weight = p * x / (p * x + q - 1)
        population_mean = v * p / (q - 1)
        out = (1 - individual_weight) * population_mean + individual_weight * m
        return _like_input(out, frequency, monetary_value)

    def population_mean_spend(self) -> float:
        """E[Z] = p v / (q - 1), the mean spend per purchase across customers."""
        self._require_fit()
        p, q, v = self.params_.to_numpy()
        return float(p * v / (q - 1))


def fit_spend_model(summary: pd.DataFrame, *, penalizer_coef: float = 0.0, min_repeat_buyers: int = 20,
                    nonpositive_spend: str = "raise") -> GammaGammaFit:
    """Fit the Gamma-Gamma spend model on a summary with ``frequency`` and ``monetary_value``.

    Customers without repeat purchase are left out, as the model requires.

    Examples
    --------
    >>> from lifetimes.datasets import load_dataset
    >>> df = load_dataset("cdnow_customers_summary_with_transactions.csv")
    >>> fit = fit_spend_model(df.rename(columns={"x": "frequency", "zbar": "monetary_value"}))
    >>> round(fit.params_["p"], 2)
    6.25
    """
    _require_columns(summary, ["frequency", "monetary_value"], "Gamma-Gamma")
    return GammaGammaFit(penalizer_coef).fit(summary["frequency"], summary["monetary_value"],
                                             min_repeat_buyers=min_repeat_buyers, nonpositive_spend=nonpositive_spend)


@dataclass(frozen=True)
class CorrelationCheck:
    """Pearson correlation of mean spend and frequency among repeat buyers."""

    correlation: float
    p_value: float
    n_customers: int
    threshold: float
    verdict: str

    def summary(self) -> str:
        return (f"Spend vs frequency (repeat buyers, n={self.n_customers:,}): Pearson r = {self.correlation:.3f} "
                f"(p = {self.p_value:.3g}). {self.verdict}")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"correlation": self.correlation, "p_value": self.p_value,
                              "n_customers": self.n_customers, "threshold": self.threshold, "verdict": self.verdict}])


def spend_frequency_correlation(summary: pd.DataFrame, *, threshold: float = 0.3) -> CorrelationCheck:
    """Check the Gamma-Gamma assumption that spend per purchase does not depend on frequency.

    Parameters
    ----------
    summary : DataFrame
        With ``frequency`` and ``monetary_value``; repeat buyers are used.
    threshold : float
        An absolute correlation below this is read as "weak enough".

    Returns
    -------
    CorrelationCheck
    """
    _require_columns(summary, ["frequency", "monetary_value"], "spend/frequency check")
    buyers = summary[summary["frequency"] > 0]
    if len(buyers) < 3:
        raise ModelFitError(f"spend/frequency check: only {len(buyers)} repeat buyers; need at least 3.")
    result = stats.pearsonr(buyers["frequency"], buyers["monetary_value"])
    r, p = float(result.statistic), float(result.pvalue)
    if abs(r) < threshold:
        verdict = (f"|r| < {threshold}: spend and frequency are close to independent, as the Gamma-Gamma model "
                   "assumes.")
    else:
        verdict = (f"|r| >= {threshold}: spend depends on frequency, which the Gamma-Gamma model assumes away; "
                   "read the spend and CLV figures with caution.")
    return CorrelationCheck(r, p, len(buyers), threshold, verdict)


# ---------------------------------------------------------------------------------------
# Holdout validation
# ---------------------------------------------------------------------------------------


def _calibration_view(cal_holdout: pd.DataFrame) -> pd.DataFrame:
    _require_columns(cal_holdout, ["frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout"],
                     "holdout validation")
    return cal_holdout.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"})


@dataclass(frozen=True)
class ModelComparison:
    """Fit and holdout error of each model; the winner has the lowest holdout RMSE.

    Attributes
    ----------
    table : DataFrame
        One row per model: n_params, log_likelihood, aic, bic, converged, holdout_mae,
        holdout_rmse, predicted_holdout_total, actual_holdout_total, aggregate_error_pct,
        error (message of a failed fit).
    winner : str
        Model with the lowest per-customer holdout RMSE (or the one requested).
    runner_up : str or None
    margin_pct : float
        How much lower the winner's RMSE is than the runner-up's, in percent.
    fits : dict
        The fitted calibration models by name.
    criterion : str
    """

    table: pd.DataFrame
    winner: str
    runner_up: str | None
    margin_pct: float
    fits: dict = field(repr=False)
    criterion: str = "holdout_rmse"

    def summary(self) -> str:
        best = self.table.loc[self.winner]
        text = (f"{MODEL_LABELS[self.winner]} has the lowest holdout RMSE ({best['holdout_rmse']:.4f} repeat "
                f"purchases per customer")
        if self.runner_up is not None:
            text += (f", {self.margin_pct:.1f}% below {MODEL_LABELS[self.runner_up]} at "
                     f"{self.table.loc[self.runner_up, 'holdout_rmse']:.4f}")
        return text + ")."

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def formatted(self) -> pd.DataFrame:
        """The comparison table for people: model names, rounded figures, readable headers."""
        t = self.table
        out = pd.DataFrame(index=[MODEL_LABELS.get(m, m) for m in t.index])
        out.index.name = "model"
        number = lambda v, fmt: "" if pd.isna(v) else format(v, fmt)  # noqa: E731
        out["log-likelihood"] = [number(v, ",.1f") for v in t.get("log_likelihood", pd.Series(np.nan, t.index))]
        out["AIC"] = [number(v, ",.1f") for v in t.get("aic", pd.Series(np.nan, t.index))]
        out["BIC"] = [number(v, ",.1f") for v in t.get("bic", pd.Series(np.nan, t.index))]
        out["converged"] = ["yes" if c else "no" for c in t["converged"]]
        out["holdout MAE"] = [number(v, ".4f") for v in t.get("holdout_mae", pd.Series(np.nan, t.index))]
        out["holdout RMSE"] = [number(v, ".4f") for v in t.get("holdout_rmse", pd.Series(np.nan, t.index))]
        out["predicted total"] = [number(v, ",.0f") for v in t.get("predicted_holdout_total", pd.Series(np.nan, t.index))]
        out["actual total"] = [number(v, ",.0f") for v in t.get("actual_holdout_total", pd.Series(np.nan, t.index))]
        out["aggregate error"] = [number(v, "+.1f") + ("%" if not pd.isna(v) else "")
                                  for v in t.get("aggregate_error_pct", pd.Series(np.nan, t.index))]
        out["chosen"] = ["✓" if m == self.winner else "" for m in t.index]
        if (t["error"].fillna("") != "").any():
            out["error"] = t["error"].fillna("").to_numpy()
        return out


def holdout_validation(
    cal_holdout: pd.DataFrame,
    models: Sequence[str] = ("bg_nbd", "mbg_nbd", "pareto_nbd"),
    *,
    choose: str = "auto",
    penalizer_coef: float = 0.0,
) -> ModelComparison:
    """Fit each model on the calibration period and score its holdout predictions.

    Parameters
    ----------
    cal_holdout : DataFrame
        From :func:`crm_lib.summary.calibration_holdout_summary`.
    models : sequence of str
        Models to compare.
    choose : str
        ``"auto"`` picks the lowest per-customer holdout RMSE; a model name forces it
        (the table still shows all).
    penalizer_coef : float
        Passed to every fit.

    Returns
    -------
    ModelComparison

    Raises
    ------
    ModelFitError
        When no model could be fitted (each failure is also in ``table.error``).
    """
    if choose != "auto" and choose not in models:
        raise ParamsError(f"model={choose!r}: use 'auto' or one of {', '.join(models)}.")
    calib = _calibration_view(cal_holdout)
    actual = calib["frequency_holdout"].to_numpy(dtype=float)
    duration = calib["duration_holdout"].to_numpy(dtype=float)
    n = len(calib)
    rows, fits = {}, {}
    for name in models:
        try:
            fit = fit_model(calib, name, penalizer_coef=penalizer_coef)
        except ModelFitError as error:
            logger.warning("holdout validation: %s", error)
            rows[name] = {"converged": False, "error": str(error)}
            continue
        predicted = np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(
            duration, calib["frequency"], calib["recency"], calib["T"]), dtype=float)
        residual = predicted - actual
        fits[name] = fit
        rows[name] = {
            "n_params": len(fit.params_),
            "log_likelihood": fit.log_likelihood_,
            "aic": fit.aic_,
            "bic": fit.bic_,
            "converged": fit.converged_,
            "holdout_mae": float(np.mean(np.abs(residual))),
            "holdout_rmse": float(np.sqrt(np.mean(residual**2))),
            "predicted_holdout_total": float(predicted.sum()),
            "actual_holdout_total": float(actual.sum()),
            "aggregate_error_pct": float(100 * (predicted.sum() - actual.sum()) / actual.sum()) if actual.sum() else np.nan,
            "error": "",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    if not fits:
        raise ModelFitError(
            f"holdout validation: none of {', '.join(models)} could be fitted on {n:,} customers; "
            + " | ".join(table["error"])
        )
    ranked = table.loc[list(fits)].sort_values("holdout_rmse")
    if choose == "auto":
        winner = ranked.index[0]
    elif choose in fits:
        winner = choose
    else:
        raise ModelFitError(f"model={choose!r} was requested but could not be fitted: {table.loc[choose, 'error']}")
    others = [m for m in ranked.index if m != winner]
    runner_up = others[0] if others else None
    margin = (float(100 * (table.loc[runner_up, "holdout_rmse"] - table.loc[winner, "holdout_rmse"])
                    / table.loc[runner_up, "holdout_rmse"]) if runner_up else np.nan)
    return ModelComparison(table, winner, runner_up, margin, fits)


def holdout_by_calibration_frequency(cal_holdout: pd.DataFrame, fit: BTYDFit, *, max_frequency: int = 7) -> pd.DataFrame:
    """Mean actual and predicted holdout repeat purchases per calibration-frequency group.

    FHL (2005a), figure 4. Customers with ``max_frequency`` or more calibration repeat
    purchases are pooled into the last group.

    Returns
    -------
    DataFrame
        Indexed by ``frequency_cal`` group (0..max_frequency): n_customers, actual, predicted.
    """
    calib = _calibration_view(cal_holdout)
    predicted = np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(
        calib["duration_holdout"], calib["frequency"], calib["recency"], calib["T"]), dtype=float)
    group = np.minimum(calib["frequency"].to_numpy(), max_frequency).astype(int)
    frame = pd.DataFrame({"group": group, "actual": calib["frequency_holdout"].to_numpy(), "predicted": predicted})
    out = frame.groupby("group").agg(n_customers=("actual", "size"), actual=("actual", "mean"),
                                     predicted=("predicted", "mean"))
    out.index.name = "frequency_cal"
    out.attrs["max_frequency"] = max_frequency
    return out


def _period_start(periods: np.ndarray, time_unit: str) -> pd.DatetimeIndex:
    """Inverse of crm_lib.summary.period_numbers: start of each period."""
    periods = np.asarray(periods, dtype=np.int64)
    if time_unit == "D":
        return pd.DatetimeIndex(periods.astype("datetime64[D]"))
    if time_unit == "h":
        return pd.DatetimeIndex(periods.astype("datetime64[h]"))
    return pd.DatetimeIndex((periods * 7 - 3).astype("datetime64[D]"))


def repeat_transactions_tracking(
    transactions: pd.DataFrame,
    fit: BTYDFit,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str = "W",
    customer_col: str = "customer_id",
    date_col: str = "date",
) -> pd.DataFrame:
    """Repeat transactions per period, actual vs model, across calibration and holdout.

    FHL (2005a), figures 2 and 3: the cohort is every customer whose first purchase is on
    or before ``calibration_end``; the model's expectation for a customer first seen in
    period f is E[X(p - f)] (eq. 9) at the end of period p, summed over the cohort.
    Purchases in the same period are merged, as in the summary.

    Returns
    -------
    DataFrame
        Indexed by period start date: actual, expected, actual_cumulative,
        expected_cumulative, holdout (bool).
    """
    dates = pd.to_datetime(transactions[date_col])
    observation_end = dates.max() if observation_end is None else pd.Timestamp(observation_end)
    periods = period_numbers(dates, time_unit)
    cal_end_period = int(period_numbers(pd.Series([pd.Timestamp(calibration_end)]), time_unit)[0])
    end_period = int(period_numbers(pd.Series([observation_end]), time_unit)[0])
    codes, _ = pd.factorize(transactions[customer_col].to_numpy())
    frame = pd.DataFrame({"c": codes, "p": periods, "d": dates.to_numpy()})
    frame = frame[frame["d"] <= observation_end]
    first_date = frame.groupby("c")["d"].min()
    cohort_codes = first_date.index[first_date <= pd.Timestamp(calibration_end)]
    if len(cohort_codes) == 0:
        raise DataValidationError(f"tracking: no customer made a first purchase on or before {calibration_end}.")
    frame = frame[frame["c"].isin(cohort_codes)][["c", "p"]].drop_duplicates()
    cohort = frame.groupby("c")["p"].min()
    start_period = int(cohort.min())
    frame = frame[frame["c"].isin(cohort.index)]
    repeat = frame[frame["p"] > frame["c"].map(cohort)]
    all_periods = np.arange(start_period, end_period + 1)
    actual = repeat.groupby("p").size().reindex(all_periods, fill_value=0).to_numpy(dtype=float)
    # Expected cumulative repeat purchases: sum over first-purchase periods f of n_f * E[X(p - f)].
    n_first = cohort.value_counts().reindex(all_periods, fill_value=0).to_numpy(dtype=float)
    ages = np.arange(len(all_periods), dtype=float)
    curve = np.asarray(fit.expected_number_of_purchases_up_to_time(ages), dtype=float)
    curve[0] = 0.0
    expected_cum = np.convolve(n_first, curve)[: len(all_periods)]
    expected = np.diff(expected_cum, prepend=0.0)
    out = pd.DataFrame(
        {
            "actual": actual,
            "expected": expected,
            "actual_cumulative": actual.cumsum(),
            "expected_cumulative": expected_cum,
            "holdout": all_periods > cal_end_period,
        },
        index=pd.Index(_period_start(all_periods, time_unit), name="period_start"),
    )
    out.attrs.update(time_unit=time_unit, calibration_end=str(pd.Timestamp(calibration_end).date()),
                     n_customers=int(len(cohort)))
    return out


def repeat_purchase_counts(
    summary: pd.DataFrame, fit: BTYDFit, *, max_frequency: int = 7, n_simulations: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Actual vs model-expected number of customers by number of repeat purchases.

    The expected counts are the mean of ``n_simulations`` seeded simulations from the
    fitted model with each customer's own age T (as lifetimes' ``plot_period_transactions``
    does, with one simulation). The last group pools ``max_frequency`` and more.

    Returns
    -------
    DataFrame
        Indexed by ``frequency`` (0..max_frequency): actual, expected.
    """
    _require_columns(summary, ["frequency", "T"], "repeat purchase counts")
    groups = np.arange(max_frequency + 1)
    actual = np.bincount(np.minimum(summary["frequency"].to_numpy(int), max_frequency), minlength=max_frequency + 1)
    expected = np.zeros(max_frequency + 1)
    for i in range(n_simulations):
        simulated = fit.simulate(summary["T"].to_numpy(), seed=seed + i)
        expected += np.bincount(np.minimum(simulated["frequency"].to_numpy(int), max_frequency),
                                minlength=max_frequency + 1)
    return pd.DataFrame({"actual": actual.astype(float), "expected": expected / n_simulations},
                        index=pd.Index(groups, name="frequency"))


# ---------------------------------------------------------------------------------------
# CLV, equity, concentration
# ---------------------------------------------------------------------------------------


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
    _require_columns(summary, ["frequency", "recency", "T", "monetary_value"], "CLV")
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
    _require_columns(summary, ["frequency", "recency", "T", "monetary_value"], "customer table")
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
        return (f"Customer equity over {self.horizon_months} months: {self.estimate:,.0f} "
                f"({self.level:.0%} interval {self.lower:,.0f} to {self.upper:,.0f}; {self.n_customers:,} customers, "
                f"{self.n_draws} draws, seed {self.seed}).")

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
        parts = ", ".join(f"top {p:.0%} hold {s:.1%}" for p, s in self.top_shares.items())
        return f"Of a total value of {self.total:,.0f} over {self.n_customers:,} customers: {parts}; Gini {self.gini:.3f}."

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


def p_alive_grid(fit: BTYDFit, *, max_frequency: int, max_T: float) -> pd.DataFrame:
    """P(alive) over the frequency-recency grid for customers of age ``max_T``.

    Returns
    -------
    DataFrame
        Index recency 0..max_T (whole periods), columns frequency 0..max_frequency; NaN
        where the history is impossible (frequency 0 with recency > 0).
    """
    recency = np.arange(int(max_T) + 1, dtype=float)
    frequency = np.arange(int(max_frequency) + 1, dtype=float)
    x, tx = np.meshgrid(frequency, recency)
    values = np.asarray(fit.conditional_probability_alive(x.ravel(), tx.ravel(), np.full(x.size, float(max_T))))
    grid = values.reshape(x.shape)
    grid[(x == 0) & (tx > 0)] = np.nan
    return pd.DataFrame(grid, index=pd.Index(recency.astype(int), name="recency"),
                        columns=pd.Index(frequency.astype(int), name="frequency"))


def p_alive_history(
    fit: BTYDFit,
    transactions: pd.DataFrame,
    customer_id,
    *,
    time_unit: str = "W",
    observation_end: str | pd.Timestamp | None = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
) -> pd.DataFrame:
    """P(alive) of one customer at the end of every period from her first purchase on.

    Returns
    -------
    DataFrame
        Indexed by period start date: age, frequency, recency, p_alive, purchase (bool:
        bought in that period).
    """
    mine = transactions[transactions[customer_col].astype(str) == str(customer_id)]
    if mine.empty:
        example = transactions[customer_col].iloc[0] if len(transactions) else None
        raise DataValidationError(f"p_alive_history: customer {customer_id!r} has no transactions "
                                  f"(ids look like {example!r}).")
    all_dates = pd.to_datetime(transactions[date_col])
    end = all_dates.max() if observation_end is None else pd.Timestamp(observation_end)
    periods = np.unique(period_numbers(pd.to_datetime(mine[date_col]), time_unit))
    end_period = int(period_numbers(pd.Series([end]), time_unit)[0])
    periods = periods[periods <= end_period]
    first = periods[0]
    grid = np.arange(first, end_period + 1)
    bought = np.isin(grid, periods)
    frequency = np.cumsum(bought) - 1
    last = np.maximum.accumulate(np.where(bought, grid, first))
    age = (grid - first).astype(float)
    recency = (last - first).astype(float)
    p_alive = np.asarray(fit.conditional_probability_alive(frequency.astype(float), recency, age), dtype=float)
    out = pd.DataFrame({"age": age, "frequency": frequency.astype(float), "recency": recency, "p_alive": p_alive,
                        "purchase": bought}, index=pd.Index(_period_start(grid, time_unit), name="period_start"))
    out.attrs.update(customer_id=str(customer_id), time_unit=time_unit)
    return out


def write_customer_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a per-customer table as CSV or Parquet, chosen by the file suffix.

    Parameters
    ----------
    table : DataFrame
    path : str or Path
        ``*.csv`` or ``*.parquet``; parent folders are created. A relative path is relative
        to the working directory (in a scheduled run: the report folder).

    Returns
    -------
    Path
        The absolute path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ParamsError(f"write_customer_table: {path.name!r} must end in .csv or .parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        table.to_csv(path, index=True)
    else:
        table.to_parquet(path, index=True)
    logger.info("wrote %s customers to %s", f"{len(table):,}", path)
    return path.resolve()
