"""The model layer: one maximum-likelihood base and one file per model family.

=====================  ==============================================================
``base.py``            :class:`MaximumLikelihoodFit` (optimiser on log-parameters,
                       Hessian, covariance, ``to_frame``/``summary``, AIC/BIC, draws),
                       :class:`BTYDFit`, :func:`collapse_histories`
``beta_geo.py``        BG/NBD (Fader, Hardie & Lee 2005a) and MBG/NBD (Batislam et al. 2007)
``pareto_nbd.py``      Pareto/NBD (Schmittlein, Morrison & Colombo 1987)
``beta_geo_beta_binom.py``  BG/BB (Fader, Hardie & Shang 2010)
``gamma_gamma.py``     Gamma-Gamma spend model (Fader, Hardie & Lee 2005b)
``shifted_beta_geo.py``  sBG contractual retention (Fader & Hardie 2007)
=====================  ==============================================================

The BTYD likelihoods and predictions are those of the ``lifetimes`` package (same
formulas, time scaling and penalizer), vectorised so that a base of a million customers
fits in seconds; ``tests/test_clv.py`` checks them against lifetimes and the papers.

>>> fit = fit_model(summary, "bg_nbd")                 # doctest: +SKIP
>>> fit.summary()                                      # doctest: +SKIP
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from crm_lib.columns import require_columns
from crm_lib.exceptions import ParamsError
from crm_lib.models.base import MODEL_LABELS, BTYDFit, MaximumLikelihoodFit, collapse_histories
from crm_lib.models.beta_geo import BetaGeoFit, ModifiedBetaGeoFit
from crm_lib.models.beta_geo_beta_binom import BetaGeoBetaBinomFit
from crm_lib.models.gamma_gamma import CorrelationCheck, GammaGammaFit, spend_frequency_correlation
from crm_lib.models.pareto_nbd import ParetoNBDFit
from crm_lib.models.shifted_beta_geo import ShiftedBetaGeometricFitter

__all__ = [
    "MODEL_LABELS",
    "MODELS",
    "MaximumLikelihoodFit",
    "BTYDFit",
    "BetaGeoFit",
    "ModifiedBetaGeoFit",
    "ParetoNBDFit",
    "BetaGeoBetaBinomFit",
    "GammaGammaFit",
    "ShiftedBetaGeometricFitter",
    "CorrelationCheck",
    "collapse_histories",
    "fit_model",
    "fit_spend_model",
    "spend_frequency_correlation",
]

#: What to do when a summary lacks the model's columns.
SUMMARY_HINT = ("Build it with crm_lib.summary.rfm_summary (or calibration_holdout_summary and rename the "
                "*_cal columns).")


MODELS: dict[str, type[BTYDFit]] = {
    "bg_nbd": BetaGeoFit,
    "mbg_nbd": ModifiedBetaGeoFit,
    "pareto_nbd": ParetoNBDFit,
    "bg_bb": BetaGeoBetaBinomFit,
}



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
    require_columns(summary, ["frequency", "recency", third], MODEL_LABELS[model], SUMMARY_HINT)
    fitter = MODELS[model](penalizer_coef=penalizer_coef, min_repeat_buyers=min_repeat_buyers)
    return fitter.fit(summary["frequency"], summary["recency"], summary[third], weights=weights,
                      initial_params=initial_params)



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
    require_columns(summary, ["frequency", "monetary_value"], "Gamma-Gamma", SUMMARY_HINT)
    return GammaGammaFit(penalizer_coef).fit(summary["frequency"], summary["monetary_value"],
                                             min_repeat_buyers=min_repeat_buyers, nonpositive_spend=nonpositive_spend)
