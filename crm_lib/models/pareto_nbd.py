"""Pareto/NBD, Schmittlein, Morrison & Colombo (1987), with the likelihood of Fader &
Hardie's note 009 ("A note on deriving the Pareto/NBD model")."""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln, hyp2f1, logsumexp

from crm_lib.models.base import BTYDFit, _as_array, _Histories, _like_input

__all__ = ["ParetoNBDFit"]


class ParetoNBDFit(BTYDFit):
    """Pareto/NBD model, Schmittlein, Morrison & Colombo (1987)."""

    name = "pareto_nbd"
    param_names = ("r", "alpha", "s", "beta")
    time_params = ("alpha", "beta")
    _simulator = "simulate_pareto_nbd"

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
