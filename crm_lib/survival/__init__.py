"""Retention and survival in a non-contractual log: time to churn, Kaplan-Meier, log-rank, Cox.

Churn is not observed when customers can leave without telling anyone, so it is
*defined* (:func:`time_to_churn`):

- a customer has **lapsed** after a gap of more than ``lapse_days`` days without a
  purchase, or when more than ``lapse_days`` days separate the last purchase from the
  observation end;
- the lifetime studied is the customer's **first spell**: from the first purchase to the
  purchase before the first such gap. A customer who buys again after a gap is counted
  as churned at the gap (what was knowable then) and flagged ``reactivated``;
- the **event time** is, by default, the last purchase of the spell
  (``event_time="last_purchase"``: a one-time buyer who never returns has a lifetime of
  0 days). With ``event_time="lapse_recognised"`` it is the last purchase plus
  ``lapse_days``, the day the lapse becomes visible; every lifetime is then at least
  ``lapse_days`` long, so read curves from that point on;
- customers whose window is still open at the observation end (last purchase at most
  ``lapse_days`` days earlier) are **censored** at the last day whose churn the data
  could still show, ``observation_end - lapse_days - 1`` (plus ``lapse_days`` with
  ``"lapse_recognised"``). Every customer is then followed exactly as long as a churn
  of theirs would be visible, and the Kaplan-Meier estimate is unbiased; censoring at
  the last purchase (``censoring="last_purchase"``, the older rule) keeps at risk
  customers whose churn cannot be seen yet and overstates retention (issue 10:
  S(180) 0.164 against 0.128 in a CDNOW backtest, see :func:`lapse_backtest`).
  Customers acquired after that day get no follow-up (NaN), and the curves end where
  the data stop identifying them (:func:`curve_cut_note`).

Modules: :mod:`~crm_lib.survival.lapse` (the churn table, lapse sensitivity, backtest),
:mod:`~crm_lib.survival.kaplan_meier` (curves, log-rank), :mod:`~crm_lib.survival.cox`
(Cox model), :mod:`~crm_lib.survival.ph_test` (Grambsch-Therneau check as R's
``cox.zph``), :mod:`~crm_lib.survival.tables` (calendar-period rates per cohort).

Estimation uses statsmodels' duration module: :class:`~statsmodels.duration.survfunc.SurvfuncRight`
(Kaplan-Meier, Greenwood variance), :func:`~statsmodels.duration.survfunc.survdiff`
(log-rank); the Cox fit is a Newton fit on risk-set sums per churn day (:mod:`crm_lib.survival.risk_sets`). Functions
that the report calls take ``errors="report"`` to turn a specific, expected failure
(unknown column, groups too small, a Cox model that cannot be fitted) into a result that
carries the message, so the rest of the report still renders.

Calendar-period retention and attrition rates (active customers who buy again in the
next period) are KPIs of :mod:`crm_lib.kpi` (``activity_by_period``,
``cohort_retention``); :func:`retention_rates_by_cohort` applies them per acquisition
cohort.
"""
from __future__ import annotations

from crm_lib.survival._common import ACQUISITION_COLUMNS, CENSORING_RULES, EVENT_TIMES, format_days, format_p, p_text
from crm_lib.survival.cox import CoxResult, cox_design, cox_proportional_hazards
from crm_lib.survival.kaplan_meier import KaplanMeierResult, LogRankResult, kaplan_meier, log_rank_test
from crm_lib.survival.lapse import (
    LapseBacktest,
    curve_cut_note,
    format_lapse_sensitivity,
    lapse_backtest,
    lapse_sensitivity,
    lapse_vs_p_alive,
    time_to_churn,
    value_band_labels,
)
from crm_lib.survival.tables import retention_rates_by_cohort

__all__ = [
    "ACQUISITION_COLUMNS",
    "CENSORING_RULES",
    "EVENT_TIMES",
    "LapseBacktest",
    "curve_cut_note",
    "lapse_backtest",
    "CoxResult",
    "KaplanMeierResult",
    "LogRankResult",
    "cox_design",
    "cox_proportional_hazards",
    "format_days",
    "format_lapse_sensitivity",
    "format_p",
    "p_text",
    "kaplan_meier",
    "lapse_sensitivity",
    "lapse_vs_p_alive",
    "log_rank_test",
    "retention_rates_by_cohort",
    "time_to_churn",
    "value_band_labels",
]
