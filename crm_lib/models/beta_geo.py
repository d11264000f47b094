"""BG/NBD, Fader, Hardie & Lee (2005a), "Counting your customers the easy way", and
MBG/NBD, Batislam, Denizel & Filiztekin (2007), where drop-out is also possible at the
first purchase.

The likelihoods and predictions are those of lifetimes' ``BetaGeoFitter`` and
``ModifiedBetaGeoFitter``, vectorised, with analytic gradients and a log-likelihood
evaluated once per distinct value of each special-function argument.
"""
from __future__ import annotations

import numpy as np
from scipy.special import digamma, expit, gammaln, hyp2f1

from crm_lib.models.base import BTYDFit, _as_array, _Histories, _like_input, collapse_histories

__all__ = ["BetaGeoFit", "ModifiedBetaGeoFit"]


def _scaled_hyp2f1(a_: np.ndarray, b_: np.ndarray, c_: np.ndarray, z: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    """2F1(a_, b_; c_; z) * exp(log_ratio), the term of the BG/NBD and MBG/NBD conditional expectations.

    For a frequent buyer over a long horizon 2F1 overflows (and exp(log_ratio) underflows);
    there it is taken through Euler's transformation 2F1(a, b; c; z) = (1 - z)^(c - a - b)
    2F1(c - a, c - b; c; z) (Abramowitz & Stegun 15.3.3) in logs, as lifetimes does for BG/NBD.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hyp = hyp2f1(a_, b_, c_, z)
        # 2F1 is negative when c_ < 0 (x = 0 and a + b < 1, as parameter draws of a small base
        # give): multiply by it rather than take its log (which is NaN).
        term = np.asarray(hyp * np.exp(log_ratio), dtype=float)
        overflow = np.isinf(hyp) | (hyp == 0)
        if overflow.any():
            a_, b_, c_, z, log_ratio = (np.broadcast_to(v, hyp.shape)[overflow] for v in (a_, b_, c_, z, log_ratio))
            ln_hyp_alt = np.log(hyp2f1(c_ - a_, c_ - b_, c_, z)) + (c_ - a_ - b_) * np.log(1 - z)
            term[overflow] = np.exp(ln_hyp_alt + log_ratio)
    return term


class BetaGeoFit(BTYDFit):
    """BG/NBD model, Fader, Hardie & Lee (2005a)."""

    name = "bg_nbd"
    param_names = ("r", "alpha", "a", "b")
    has_gradient = True
    _simulator = "simulate_bg_nbd"

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
        term = _scaled_hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t),
                              (r + x) * np.log((alpha + age) / (alpha + t + age)))
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


class ModifiedBetaGeoFit(BetaGeoFit):
    """MBG/NBD model, Batislam, Denizel & Filiztekin (2007): drop-out also possible at time 0.

    The BG/NBD with one more chance to drop out, at the first purchase; it keeps the
    BG/NBD's parameters and its per-(x, T) discounting of expected purchases (as
    lifetimes' ModifiedBetaGeoFitter subclasses BetaGeoFitter).
    """

    name = "mbg_nbd"
    _simulator = "simulate_mbg_nbd"

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
        term = _scaled_hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + age + t),
                              (r + x) * np.log((alpha + age) / (alpha + t + age)))
        return (a + b + x) / (a - 1) * (1 - term)

    def _denominator(self, x, tx, age):
        r, alpha, a, b = self.params_.to_numpy()
        return 1 + (a / (b + x)) * ((alpha + age) / (alpha + tx)) ** (r + x)

    def conditional_expected_number_of_purchases_up_to_time(self, t, frequency, recency, T):
        """E[X(T, T+t) | x, t_x, T], Batislam et al. (2007), eq. 6 (2F1 overflow handled as for BG/NBD)."""
        self._require_fit()
        t, x, tx, age = _as_array(t), _as_array(frequency), _as_array(recency), _as_array(T)
        return _like_input(self._numerator(t, x, age) / self._denominator(x, tx, age), frequency, recency, T, t)


    def expected_number_of_purchases_up_to_time(self, t):
        """E[X(t)] of a new customer, Batislam et al. (2007), eq. 4."""
        self._require_fit()
        r, alpha, a, b = self.params_.to_numpy()
        t = _as_array(t)
        return b / (a - 1) * (1 - hyp2f1(r, b + 1, a + b, t / (alpha + t)) * (alpha / (alpha + t)) ** r)
