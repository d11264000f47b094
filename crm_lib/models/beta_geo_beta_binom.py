"""BG/BB for discrete-time data (one purchase opportunity a period), Fader, Hardie &
Shang (2010), "Customer-base analysis in a discrete-time noncontractual setting"."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, logsumexp

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.models.base import BTYDFit, _as_array, _check_histories, _like_input, collapse_histories

__all__ = ["BetaGeoBetaBinomFit"]


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
        x0 = np.zeros(4) if initial_params is None else np.log(np.asarray(initial_params, float))
        theta = self._fit_log_params(lambda p: w @ self._log_likelihood_rows(p, x, tx, n), x0, n_customers, float(w.sum()))
        params = np.exp(theta)
        self._set_params(params, n_customers, float(w @ self._log_likelihood_rows(params, x, tx, n)))
        self.n_histories_ = len(x)
        return self

    def conditional_probability_alive(self, frequency, recency, n_periods, m_periods_in_future=0):
        """P(alive at opportunity n + 1 + m | x, t_x, n), Fader, Hardie & Shang (2010), eq. 11.

        A customer alive at opportunity t has survived t drop-out chances, one at the
        start of each of opportunities 1..t, so P(alive at t | theta) = (1 - theta)^t.
        Eq. 11 gives the probability of being alive at the NEXT opportunity, n + 1, the
        first one not yet observed; ``m_periods_in_future`` looks m opportunities further
        (n + 1 + m). lifetimes' ``BetaGeoBetaBinomFitter.conditional_probability_alive(m,
        ...)`` counts from n instead: its m = 1 is this method's m = 0.

        Parameters
        ----------
        frequency, recency, n_periods : array-like
            x (opportunities with a purchase), t_x (last opportunity with a purchase,
            0 if none) and n (opportunities observed).
        m_periods_in_future : int
            Opportunities after n + 1 (0 gives eq. 11 itself).

        Returns
        -------
        ndarray or Series
            One probability per history.
        """
        self._require_fit()
        alpha, beta, gamma, delta = params = self.params_.to_numpy()
        x, tx, n = np.broadcast_arrays(*(np.atleast_1d(_as_array(v)) for v in (frequency, recency, n_periods)))
        # FHS (2010), eq. 11: B(alpha + x, beta + n - x) / B(alpha, beta) x
        # B(gamma, delta + n + 1) / B(gamma, delta) / L(alpha, beta, gamma, delta | x, t_x, n).
        p1 = betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
        p2 = betaln(gamma, delta + n + 1 + m_periods_in_future) - betaln(gamma, delta)
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

    def _discounted_purchases(self, t_grid, discount, x, tx, age):
        """Not defined: the model counts purchase opportunities, not calendar time (no monthly CLV)."""
        raise ParamsError("BG/BB is a discrete-time model (purchase opportunities, not calendar time): it has no "
                          "monthly discounted purchases; value customers with BG/NBD, MBG/NBD or Pareto/NBD.")

    def simulate(self, n_periods, *, seed: int = 0, n_customers: int = 1000) -> pd.DataFrame:
        from crm_lib.simulate import simulate_bg_bb

        self._require_fit()
        return simulate_bg_bb(int(n_periods), *self.params_.to_numpy(), n_customers=n_customers, seed=seed)
