"""Customer lifetime value: buy-till-you-die (BTYD) models, holdout validation, CLV and equity.

The analyses are split by the question they answer; the models live in
:mod:`crm_lib.models` (one file per family on one maximum-likelihood base):

- :mod:`crm_lib.clv.validation`: which model predicts the holdout best, tracking plots;
- :mod:`crm_lib.clv.value`: CLV, the customer value table, discounting, equity, concentration;
- :mod:`crm_lib.clv.p_alive`: P(alive) over the grid and along one customer's history.

Every name is importable from ``crm_lib.clv`` as before.

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

from crm_lib.clv.p_alive import p_alive_grid, p_alive_history
from crm_lib.clv.validation import (  # noqa: F401
    ModelComparison,
    _calibration_view,
    _period_start,
    holdout_by_calibration_frequency,
    holdout_validation,
    repeat_purchase_counts,
    repeat_transactions_tracking,
)
from crm_lib.clv.value import (  # noqa: F401
    PERIODS_PER_MONTH,
    CustomerEquity,
    ValueConcentration,
    _periods_per_month,
    customer_equity,
    customer_lifetime_value,
    customer_value_table,
    discounted_expected_purchases,
    monthly_discount_rate,
    predict_customer_value,
    simulate_future_purchases,
    simulate_realised_equity,
    value_concentration,
    write_customer_table,
)
from crm_lib.models import (
    MODEL_LABELS,
    MODELS,
    BetaGeoBetaBinomFit,
    BetaGeoFit,
    BTYDFit,
    CorrelationCheck,
    GammaGammaFit,
    ModifiedBetaGeoFit,
    ParetoNBDFit,
    fit_model,
    fit_spend_model,
    spend_frequency_correlation,
)
from crm_lib.models.base import (  # noqa: F401  (private names kept for old imports)
    MaximumLikelihoodFit,
    _as_array,
    _check_histories,
    _Histories,
    _like_input,
    _MaximumLikelihoodFit,
    _numeric_gradient,
    _numeric_hessian,
    collapse_histories,
)

from crm_lib import models as _models
from crm_lib.clv import p_alive as _p_alive
from crm_lib.clv import validation as _validation
from crm_lib.clv import value as _value

#: Every public name of the former single module: the models' and the three analyses'.
__all__ = [
    *(name for name in _models.__all__ if name != "ShiftedBetaGeometricFitter"),
    *_validation.__all__,
    *_value.__all__,
    *_p_alive.__all__,
]
