"""Segments and the customer portfolio: RFM scores, named segments, value x loyalty,
active versus passive loyalty, migration between segments, pseudonymous ids.

Segmentation divides customers into homogeneous, distinct, profitable and reachable
groups so that each gets a tailored message; portfolio thinking sums the base up on
business potential and loyalty and derives one action per cell (retain, develop,
maintain at lower cost to serve, let go / win back). Loyalty is *active* (repeat
purchases over a long time) or *passive* (still on the books but no longer buying).

Definitions (stated in the report too)
--------------------------------------
- A *purchase day* is a day on which a customer bought at least once; ``purchase_days``
  counts them (same-day rows merge, as in :mod:`crm_lib.summary`). ``transactions``
  counts rows of the log, and the average order value is revenue / transactions (as in
  :mod:`crm_lib.kpi`).
- *Recency* is ``days_since_last_purchase``: observation end minus the last purchase
  day. *Frequency* is ``purchase_days``. *Monetary* is ``revenue``, the customer's total
  spend (``monetary="average_order_value"`` scores the spend per transaction instead).
- *Scores* are quantile bins 1..``n_bins`` (``n_bins`` is best: most recent, most
  frequent, highest spend). A customer's score is ``1 + floor(n_bins * (r - 1) / n)``
  where ``r`` is the rank of the value with ties at their lowest rank
  (``rank(method="min")``) and ``n`` the number of customers. **Ties are never split**:
  customers with the same value get the same score, the score of the bin where their
  tie group starts. So when one value is very common some scores stay empty: every
  single-purchase customer has the lowest frequency, gets F = 1, and when they are half
  the base the next frequency starts in bin 3 of 5 (on CDNOW, F = 2 is empty).
- *Segments* come from a rule table (``rfm_segment_rules`` in the params file): a list
  of ``{name, r: [lo, hi], f: [lo, hi], m: [lo, hi], action}``, bounds inclusive, an
  omitted score meaning its whole range. The rules must cover every score combination
  exactly once (checked by :func:`load_segment_rules`), so the order of the rules does
  not change who is in which segment. It does carry a meaning: list rules from the best
  segment to the worst; a migration to a rule listed earlier is a move *up*.
- *Value x loyalty*: business potential is predicted CLV when a per-customer frame
  with a ``clv`` column is passed, historical revenue otherwise; loyalty is P(alive)
  (column ``p_alive``) when passed, otherwise the model-free ratio
  ``t_x / T`` = (last - first purchase day) / (observation end - first purchase day),
  the share of the relationship's age at which the customer last bought (1: bought
  recently, 0: never came back). This ratio is a heuristic ranking, not a probability.
- *Active versus passive loyalty*: among customers with a long relationship (first
  purchase at least ``min_relationship_days`` before the end, at least ``min_orders``
  purchase days), a customer is *passive* when the current silence
  (``days_since_last_purchase``) exceeds ``silence_ratio`` times their own mean
  inter-purchase time (last - first purchase day) / (purchase days - 1) and is at least
  ``min_silence_days`` long, and *active* otherwise.
- *Pseudonymous ids* are the first ``length`` hex characters of
  ``HMAC-SHA256(key, customer_id)`` (:mod:`crm_lib.keys`): stable for a given secret key, not reversible without it
  (:mod:`crm_lib.privacy`).

Modules: :mod:`~crm_lib.segments.rfm` (customer table, scores, rules, segmentation),
:mod:`~crm_lib.segments.portfolio` (profile, value x loyalty, active/passive loyalty,
customer actions), :mod:`~crm_lib.segments.migration`; every name is importable from
``crm_lib.segments``.
"""
from __future__ import annotations

from crm_lib.privacy import hide_customer_ids, pseudonymize, resolve_salt
from crm_lib.segments.migration import SegmentMigration, segment_migration
from crm_lib.segments.portfolio import (
    LOYALTY_STATUSES,
    MONEY_COLUMNS,
    PORTFOLIO_CELLS,
    LoyaltyStatus,
    ValueLoyaltyPortfolio,
    active_passive_loyalty,
    customer_actions,
    format_for_report,
    recency_ratio,
    segment_profile,
    value_loyalty_portfolio,
)
from crm_lib.segments.rfm import (
    DEFAULT_SEGMENT_RULES,
    MONETARY_BASES,
    RULE_KEYS,
    SCORE_NAMES,
    RFMSegmentation,
    SegmentRule,
    assign_segments,
    customer_value_table,
    load_segment_rules,
    quantile_scores,
    read_segment_rules,
    rfm_scores,
    rfm_segmentation,
)

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "LOYALTY_STATUSES",
    "MONETARY_BASES",
    "MONEY_COLUMNS",
    "PORTFOLIO_CELLS",
    "RULE_KEYS",
    "SCORE_NAMES",
    "LoyaltyStatus",
    "RFMSegmentation",
    "SegmentMigration",
    "SegmentRule",
    "ValueLoyaltyPortfolio",
    "active_passive_loyalty",
    "assign_segments",
    "customer_actions",
    "customer_value_table",
    "format_for_report",
    "hide_customer_ids",
    "load_segment_rules",
    "pseudonymize",
    "quantile_scores",
    "read_segment_rules",
    "recency_ratio",
    "resolve_salt",
    "rfm_scores",
    "rfm_segmentation",
    "segment_migration",
    "segment_profile",
    "value_loyalty_portfolio",
]
