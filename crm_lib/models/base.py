"""The maximum-likelihood base of every model, and the buy-till-you-die (BTYD) base.

:class:`MaximumLikelihoodFit` holds what all fitters share, as lifelines' fitters do:
the optimiser on log-parameters (BFGS, analytic gradient when the model has one),
the observed information (Hessian) and the covariance of the parameters by the delta
method, ``to_frame()``/``summary()``, fit statistics (log-likelihood, AIC, BIC) and
parameter draws from the normal approximation to the MLE (parameter-uncertainty
intervals; nothing is refitted). A model file only supplies its
log-likelihood and predictions.

:class:`BTYDFit` adds the fitting on (frequency, recency, T) histories, collapsed to
distinct rows with weights (:func:`collapse_histories`).
"""
from __future__ import annotations

import copy
import logging
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize

from crm_lib import format as fmt
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError

logger = logging.getLogger(__name__)

__all__ = [
    "MODEL_LABELS",
    "MaximumLikelihoodFit",
    "BTYDFit",
    "collapse_histories",
]

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


class MaximumLikelihoodFit:
    """Fitting in log-parameters with scipy, standard errors from the observed information.

    A subclass sets ``name`` and ``param_names`` and, in its ``fit``, calls
    :meth:`_fit_log_params` with its weighted log-likelihood, then :meth:`_set_params`.
    """

    name: str = ""
    param_names: tuple[str, ...] = ()
    #: What to try when the data do not identify the model (the end of the non-convergence error).
    identification_hint: str = "try penalizer_coef=0.001 in params, a longer calibration period, or another model."

    @property
    def label(self) -> str:
        """The model's display name (``MODEL_LABELS``)."""
        return MODEL_LABELS.get(self.name, self.name)

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        if penalizer_coef < 0:
            raise ParamsError(f"penalizer_coef must be >= 0; got {penalizer_coef}.")
        self.penalizer_coef = float(penalizer_coef)

    # -- fitting ------------------------------------------------------------------------
    def _fit_log_params(
        self,
        log_likelihood: Callable[[np.ndarray], float],
        x0: np.ndarray,
        n_customers: float,
        total_weight: float,
        log_likelihood_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Maximise a log-likelihood over log-parameters; return the log-parameters.

        The objective is the mean negative log-likelihood per unit of ``total_weight``
        plus ``penalizer_coef * sum(params**2)``, as in lifetimes; a non-finite value
        counts as 1e10 so that the line search steps back.

        Parameters
        ----------
        log_likelihood : callable
            Natural parameters -> total (weighted) log-likelihood.
        x0 : ndarray
            Starting log-parameters.
        n_customers : float
            Number of customers behind the data (scales the information matrix).
        total_weight : float
            Divisor of the log-likelihood in the objective.
        log_likelihood_and_gradient : callable, optional
            Natural parameters -> (total log-likelihood, its gradient w.r.t. them).
        """
        pen = self.penalizer_coef

        def objective(theta: np.ndarray) -> float:
            params = np.exp(theta)
            with np.errstate(all="ignore"):
                value = -log_likelihood(params) / total_weight + pen * np.sum(params**2)
            return float(value) if np.isfinite(value) else 1e10

        value_and_gradient = None
        if log_likelihood_and_gradient is not None:

            def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
                params = np.exp(theta)
                with np.errstate(all="ignore"):
                    total, grad = log_likelihood_and_gradient(params)
                value = -total / total_weight + pen * np.sum(params**2)
                grad = (-grad / total_weight + 2 * pen * params) * params  # chain rule to log-parameters
                if not (np.isfinite(value) and np.all(np.isfinite(grad))):
                    return 1e10, np.zeros_like(theta)
                return float(value), grad

        return self._minimize(objective, value_and_gradient, np.asarray(x0, dtype=float), n_customers)

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
                f"{self.label} did not converge on {n_customers:,.0f} customers: "
                f"{reason}; last parameters {last}. The data do not identify the model; {self.identification_hint}"
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
            self.label,
            f"{n_customers:,.0f}",
            ", ".join(f"{n}={v:.4g}" for n, v in self.params_.items()),
            self.log_likelihood_,
        )

    def _require_fit(self) -> None:
        if not hasattr(self, "params_"):
            raise ModelFitError(f"{self.label} is not fitted yet; call fit() first.")

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
            f"{self.label} fitted on {fmt.count(self.n_customers_, 'customer')} "
            f"({'converged' if self.converged_ else 'NOT converged'})",
            frame.to_string(float_format=lambda v: f"{v:.4f}"),
            f"log-likelihood {fmt.number(self.log_likelihood_, 2)}   AIC {fmt.number(self.aic_, 2)}   "
            f"BIC {fmt.number(self.bic_, 2)}",
        ]
        if self.penalizer_coef:
            lines.append(f"penalizer_coef {self.penalizer_coef}")
        return "\n".join(lines + self._summary_notes())

    def _summary_notes(self) -> list[str]:
        """Extra lines for :meth:`summary` (what the parameters mean); none by default."""
        return []

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


class BTYDFit(MaximumLikelihoodFit):
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
    #: Name of the model's simulator in crm_lib.simulate.
    _simulator: str = ""

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
        label = self.label
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
        histories = _Histories(x, tx * scale, age * scale, w)
        gradient = None
        if self.has_gradient:
            gradient = lambda p: self._weighted_log_likelihood(p, histories, gradient=True)  # noqa: E731
        x0 = np.zeros(len(self.param_names)) if initial_params is None else np.log(np.asarray(initial_params, float))
        theta = self._fit_log_params(lambda p: self._weighted_log_likelihood(p, histories), x0, n_customers,
                                     float(w.sum()), gradient)
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
        from crm_lib import simulate

        self._require_fit()
        simulator = getattr(simulate, self._simulator)
        return simulator(T, *self.params_.to_numpy(), seed=seed, whole_periods=whole_periods)

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



#: The former private name, kept for code that imported it from crm_lib.clv.
_MaximumLikelihoodFit = MaximumLikelihoodFit
