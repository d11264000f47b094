"""Loyalty versus profit: are the long-lived customers the profitable ones?

Reinartz & Kumar (2000), "On the profitability of long-life customers in a
noncontractual setting", Journal of Marketing 64(4), 17-35, tested four beliefs behind
loyalty programmes on company data; Reinartz & Kumar (2002), "The mismanagement of
customer loyalty", Harvard Business Review 80(7), named the four cells of the
loyalty-profit matrix. This package runs the same battery on any transaction log:

- :mod:`~crm_lib.loyalty.lifetime`: lifetime from the first purchase until P(alive) (from a
  fitted Pareto/NBD or MBG/NBD model) falls below a threshold; lifetime profit; the
  tenure panel of H2;
- :mod:`~crm_lib.loyalty.hypotheses`: the classical tests of H1-H4 (descriptive: they
  ignore the mechanical ties of a P(alive) lifetime), Holm adjustment, verdict words;
- :mod:`~crm_lib.loyalty.matrix`: strangers, butterflies, true friends and barnacles;
- :mod:`~crm_lib.loyalty.null` and :mod:`~crm_lib.loyalty.calibration`: the statistics
  of H1-H4 and the matrix computed on the log and on many bases simulated from the
  fitted models with no loyalty effect (the stationary null); the verdicts rest on
  these calibrated p-values;
- :mod:`~crm_lib.loyalty.analysis`: everything in one call, and the robustness table;
- :mod:`~crm_lib.loyalty.report`: tables and sentences for people.

The lifetime model is any fitted object with a vectorised, lifetimes-compatible
``conditional_probability_alive(frequency, recency, T)``, fitted in the same
``time_unit`` as the one given here; a model that keeps every one-time buyer alive for
ever (BG/NBD) is refused.
"""
from crm_lib.loyalty.analysis import LoyaltyAnalysis, loyalty_analysis, robustness_table
from crm_lib.loyalty.calibration import CalibratedTest, CalibratedTests, calibrate, calibrated_from_bases, calibrated_tests, monte_carlo_p_value
from crm_lib.loyalty.hypotheses import (
    HypothesisResult,
    HypothesisTests,
    TestResult,
    VERDICTS,
    bootstrap_correlation_ci,
    customer_slopes,
    fixed_effects_slope,
    holm_adjust,
    long_lived,
    test_cost_share,
    test_duration_profit,
    test_hypotheses,
    test_price,
    test_profit_tenure,
)
from crm_lib.loyalty.lifetime import (
    CROSSING_RULES,
    DAYS_PER_UNIT,
    PANEL_ENDS,
    check_lifetime_model,
    lifetime_durations,
    lifetime_profit,
    p_alive_path,
    tenure_panel,
)
from crm_lib.loyalty.matrix import SEGMENT_ORDER, SEGMENTS, LoyaltyMatrix, loyalty_profit_matrix, profit_by_tenure, segment_examples
from crm_lib.loyalty.null import NullBase, base_statistics, crossing_cache, null_base, observed_base
from crm_lib.loyalty.report import (
    conclusion,
    format_calibration,
    format_customers,
    format_matrix_shares,
    format_matrix,
    format_robustness,
    format_tests,
    verdict_stability,
)
from crm_lib.simulate import simulate_loyalty_log

__all__ = [name for name in dir() if not name.startswith("_")]
