"""Gamma-Gamma model of the spend per repeat purchase, Fader, Hardie & Lee (2005b), "RFM
and CLV: using iso-value curves", and Hardie's note 025, with the check of its
assumption that spend does not depend on purchase frequency."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import digamma, gammaln

from crm_lib import format as fmt
from crm_lib.columns import require_columns
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.models.base import MaximumLikelihoodFit, _as_array, _like_input, collapse_histories

logger = logging.getLogger(__name__)

__all__ = ["GammaGammaFit", "CorrelationCheck", "spend_frequency_correlation"]

_SUMMARY_HINT = "Build the summary with crm_lib.summary.rfm_summary (it has frequency and monetary_value)."


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of products without BLAS: on a shared machine a threaded BLAS ``ddot`` waiting
    for busy cores was measured 10x slower than numpy's single-threaded loop."""
    return float(np.einsum("i,i->", a, b))


class _SpendLikelihood:
    """Total weighted Gamma-Gamma log-likelihood (Hardie, note 025, eq. 1a) from sufficient sums.

    Summed over customers, eq. 1a splits into terms of the frequency x alone
    (``gammaln(p x + q) - gammaln(p x)``: evaluated once per distinct x, a few hundred
    values), parameter-free sums (of ``w log m``, ``w x log m``, ``w x log x``, computed
    once), and ``(p x + q) log(x m + v)``, the only term that needs every (x, m) row. So a
    call costs one ``log`` (and, with the gradient, one division) over the rows instead of
    four ``gammaln``/``digamma`` and four ``log`` passes; continuous spend barely collapses,
    so the rows stay many. The sum is the same as ``w @ _log_likelihood_rows`` up to
    rounding (tests compare at 1e-10).
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray) -> None:
        self.distinct_x, inverse = np.unique(x, return_inverse=True)
        self.weight_x = np.bincount(inverse, weights=w)
        self.xm, self.w, self.wx = x * m, w, w * x
        self.total_weight = float(w.sum())
        log_m = np.log(m)
        self.sum_w_log_m, self.sum_wx_log_m = float(w @ log_m), float(self.wx @ log_m)
        self.sum_wx_log_x = float(self.wx @ np.log(x))

    def __call__(self, params, gradient: bool = False):
        p, q, v = params
        px = p * self.distinct_x
        log_xmv = np.log(self.xm + v)
        wx_log_xmv, w_log_xmv = _dot(self.wx, log_xmv), _dot(self.w, log_xmv)
        W = self.total_weight
        ll = (self.weight_x @ (gammaln(px + q) - gammaln(px)) - W * gammaln(q) + W * q * np.log(v)
              + p * self.sum_wx_log_m - self.sum_w_log_m + p * self.sum_wx_log_x - p * wx_log_xmv - q * w_log_xmv)
        if not gradient:
            return ll
        digamma_pxq = digamma(px + q)
        inverse = 1.0 / (self.xm + v)
        d_p = ((self.weight_x * self.distinct_x) @ (digamma_pxq - digamma(px)) + self.sum_wx_log_m
               + self.sum_wx_log_x - wx_log_xmv)
        d_q = self.weight_x @ digamma_pxq - W * digamma(q) + W * np.log(v) - w_log_xmv
        d_v = W * q / v - p * _dot(self.wx, inverse) - q * _dot(self.w, inverse)
        return ll, np.array([d_p, d_q, d_v])


class GammaGammaFit(MaximumLikelihoodFit):
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
        # The likelihood of a customer depends on (x, m) only: fit on the distinct pairs
        # with their counts as weights, as the BTYD models fit on distinct histories.
        (x, m), w, _ = collapse_histories(x, m, weights=w)
        n_buyers = float(w.sum())
        # Start from lifetimes' default (log-parameters 0.1) shifted to the spend scale.
        x0 = np.array([0.1, 0.1, np.log(np.average(m, weights=w))])
        total = _SpendLikelihood(x, m, w)
        theta = self._fit_log_params(total, x0, n_buyers, n_buyers, lambda p: total(p, gradient=True))
        params = np.exp(theta)
        self._set_params(params, n_buyers, float(w @ self._log_likelihood_rows(params, x, m)))
        self.n_distinct_ = len(x)
        return self

    def conditional_expected_average_profit(self, frequency, monetary_value):
        """E[mean spend | x, m]: a weighted mean of the customer's and the population's, note 025 eq. 5.

        Computed as p (v + x m) / (p x + q - 1), the same weighted mean written as the mean of p / nu
        under nu's Gamma(p x + q, v + x m) posterior; it is infinite when p x + q <= 1 (a one-time
        buyer when q <= 1), returned as inf.
        """
        self._require_fit()
        p, q, v = self.params_.to_numpy()
        x, m = _as_array(frequency), _as_array(monetary_value)
        shape = p * x + q  # of nu's posterior; its rate is v + x m
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(shape > 1, p * (v + x * m) / (shape - 1), np.inf)
        return _like_input(out, frequency, monetary_value)

    def population_mean_spend(self) -> float:
        """E[Z] = p v / (q - 1), the mean spend per purchase across customers (inf when q <= 1)."""
        self._require_fit()
        p, q, v = self.params_.to_numpy()
        return float(p * v / (q - 1)) if q > 1 else np.inf


@dataclass(frozen=True)
class CorrelationCheck:
    """Pearson correlation of mean spend and frequency among repeat buyers."""

    correlation: float
    p_value: float
    n_customers: int
    threshold: float
    verdict: str

    def summary(self) -> str:
        return (f"Spend vs frequency (repeat buyers, n={fmt.number(self.n_customers)}): Pearson r = "
                f"{fmt.number(self.correlation, 3)} ({fmt.p_text(self.p_value)}). {self.verdict}")

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
    require_columns(summary, ["frequency", "monetary_value"], "spend/frequency check", _SUMMARY_HINT)
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
