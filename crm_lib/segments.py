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
  ``HMAC-SHA256(key, customer_id)`` (:mod:`crm_lib.keys`): stable for a given secret key,
  not reversible without it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from crm_lib.exceptions import DataValidationError, ParamsError

logger = logging.getLogger(__name__)

SCORE_NAMES = ("r", "f", "m")
RULE_KEYS = ("name", "r", "f", "m", "action")
MONETARY_BASES = ("revenue", "average_order_value")

#: The default segment rules for ``n_bins=5``, best segment first. Every (R, F, M)
#: combination of scores 1..5 falls in exactly one rule. A CRM team edits the copy of
#: this table in the params file (``rfm_segment_rules``), not this constant.
DEFAULT_SEGMENT_RULES: tuple[dict[str, Any], ...] = (
    {"name": "champions", "r": [4, 5], "f": [4, 5], "m": [1, 5],
     "action": "reward; ask for reviews and referrals; early access to new products"},
    {"name": "loyal", "r": [3, 3], "f": [4, 5], "m": [1, 5],
     "action": "upsell higher-value products; loyalty programme"},
    {"name": "potential loyalists", "r": [4, 5], "f": [2, 3], "m": [1, 5],
     "action": "membership or loyalty offer; recommend related products"},
    {"name": "new", "r": [5, 5], "f": [1, 1], "m": [1, 5],
     "action": "onboarding; make the second purchase easy"},
    {"name": "promising", "r": [4, 4], "f": [1, 1], "m": [1, 5],
     "action": "build relationship; limited-time offer on a second purchase"},
    {"name": "need attention", "r": [3, 3], "f": [1, 3], "m": [1, 5],
     "action": "reactivate with a personalised, time-limited offer"},
    {"name": "cannot lose", "r": [1, 2], "f": [3, 5], "m": [5, 5],
     "action": "win back personally (call, best offer); find out why they stopped"},
    {"name": "at risk", "r": [1, 2], "f": [3, 5], "m": [1, 4],
     "action": "win-back campaign with personalised offers"},
    {"name": "hibernating", "r": [2, 2], "f": [1, 2], "m": [1, 5],
     "action": "low-cost reactivation only (newsletter)"},
    {"name": "lost", "r": [1, 1], "f": [1, 2], "m": [1, 5],
     "action": "no spend; remove from paid campaigns"},
)

#: Portfolio cells (value, loyalty) -> (cell name, action). Business potential
#: against degree of loyalty; the four simultaneous actions of portfolio management.
PORTFOLIO_CELLS: dict[tuple[bool, bool], tuple[str, str]] = {
    (True, True): ("high value, high loyalty", "retain"),
    (True, False): ("high value, low loyalty", "develop"),
    (False, True): ("low value, high loyalty", "maintain at lower cost to serve"),
    (False, False): ("low value, low loyalty", "let go / win back"),
}

LOYALTY_STATUSES = ("active", "passive", "short relationship")


# --------------------------------------------------------------------------- customers


def customer_value_table(
    transactions: pd.DataFrame,
    *,
    observation_end: str | pd.Timestamp | None = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """One row per customer with what segmentation needs: recency, frequency, spend.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase (canonical columns of :func:`crm_lib.data.load_transactions`).
    observation_end : str or Timestamp, optional
        Last day of observation (inclusive); later purchases are ignored. Defaults to
        the last purchase day.
    customer_col, date_col, amount_col : str
        Column names.

    Returns
    -------
    DataFrame
        Indexed by customer id (sorted): ``first_purchase``, ``last_purchase`` (days),
        ``purchase_days``, ``transactions``, ``revenue``, ``average_order_value``
        (revenue / transactions), ``days_since_last_purchase``, ``relationship_days``
        (observation end - first purchase), ``mean_interpurchase_days`` (NaN with a
        single purchase day).

    Raises
    ------
    DataValidationError
        A missing column, or no purchase on or before ``observation_end``.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 5.0, 7.0],
    ...                     "date": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-01-05"])})
    >>> customer_value_table(log)[["purchase_days", "revenue", "days_since_last_purchase"]]
                 purchase_days  revenue  days_since_last_purchase
    customer_id
    a                        2     15.0                         0
    b                        1      7.0                         6
    """
    missing = [c for c in (customer_col, date_col, amount_col) if c not in transactions.columns]
    if missing:
        raise DataValidationError(
            f"transactions: column(s) {missing} not found (columns are {list(transactions.columns)}); "
            "pass the log returned by load_transactions or name the columns."
        )
    days = pd.to_datetime(transactions[date_col]).dt.normalize()
    end = days.max() if observation_end is None else pd.Timestamp(observation_end).normalize()
    inside = days <= end
    if not inside.any():
        raise DataValidationError(
            f"transactions: no purchase on or before {end:%Y-%m-%d} (first purchase {days.min():%Y-%m-%d}); "
            "move observation_end or calibration_end later in params."
        )
    frame = pd.DataFrame(
        {
            "customer_id": transactions[customer_col].astype(str).to_numpy()[inside.to_numpy()],
            "day": days[inside].to_numpy(),
            "amount": transactions[amount_col].to_numpy(dtype=float)[inside.to_numpy()],
        }
    )
    by_customer = frame.groupby("customer_id", sort=True)
    table = pd.DataFrame(
        {
            "first_purchase": by_customer["day"].min(),
            "last_purchase": by_customer["day"].max(),
            "purchase_days": by_customer["day"].nunique().astype(int),
            "transactions": by_customer.size().astype(int),
            "revenue": by_customer["amount"].sum().astype(float),
        }
    )
    table.index.name = "customer_id"
    table["average_order_value"] = table["revenue"] / table["transactions"]
    table["days_since_last_purchase"] = (end - table["last_purchase"]).dt.days.astype(int)
    table["relationship_days"] = (end - table["first_purchase"]).dt.days.astype(int)
    span = (table["last_purchase"] - table["first_purchase"]).dt.days.astype(float)
    repeat_gaps = (table["purchase_days"] - 1).astype(float)
    table["mean_interpurchase_days"] = (span / repeat_gaps).where(repeat_gaps > 0)
    table.attrs["observation_end"] = end
    return table


# -------------------------------------------------------------------------- RFM scores


def quantile_scores(values: pd.Series, n_bins: int = 5, *, higher_is_better: bool = True) -> pd.Series:
    """Score values in quantile bins 1..n_bins without ever splitting ties.

    Score = ``1 + floor(n_bins * (rank - 1) / n)`` with ``rank`` the 1-based rank of the
    value, ties at their lowest rank. Equal values get equal scores; a tie group that
    spans several bins gets the bin where it starts, so some scores may be empty.

    Parameters
    ----------
    values : Series
        One value per customer; no missing values.
    n_bins : int
        Number of bins (5 gives quintiles).
    higher_is_better : bool
        If False (recency in days), the smallest value gets the score ``n_bins``.

    Returns
    -------
    Series of int
        Same index as ``values``.

    Raises
    ------
    ParamsError
        ``n_bins`` is not an integer of at least 2.
    DataValidationError
        ``values`` has missing values.

    Examples
    --------
    >>> quantile_scores(pd.Series([1, 1, 1, 2, 5, 9]), n_bins=3).tolist()
    [1, 1, 1, 2, 3, 3]
    """
    _check_n_bins(n_bins)
    if values.isna().any():
        raise DataValidationError(
            f"{values.name or 'values'}: {int(values.isna().sum()):,} of {len(values):,} values are missing "
            f"(e.g. customer {values.index[values.isna()][0]!r}); scores need a value for every customer."
        )
    n = len(values)
    if n == 0:
        return pd.Series([], index=values.index, dtype=int, name=values.name)
    oriented = values if higher_is_better else -values
    rank = oriented.rank(method="min").to_numpy().astype(np.int64)
    # Integer arithmetic: no float rounding at the bin edges.
    scores = 1 + (n_bins * (rank - 1)) // n
    return pd.Series(scores.astype(int), index=values.index, name=values.name)


def rfm_scores(customers: pd.DataFrame, n_bins: int = 5, *, monetary: str = "revenue") -> pd.DataFrame:
    """Recency, frequency and monetary scores of every customer.

    Parameters
    ----------
    customers : DataFrame
        From :func:`customer_value_table`.
    n_bins : int
        Number of quantile bins per score.
    monetary : {"revenue", "average_order_value"}
        What the M score ranks: total spend (default) or spend per transaction.

    Returns
    -------
    DataFrame
        Indexed like ``customers``: ``r_score``, ``f_score``, ``m_score`` (ints
        1..n_bins, n_bins best) and ``rfm_cell`` (e.g. ``"5-4-3"``).

    Raises
    ------
    ParamsError
        ``monetary`` is not one of the bases, or ``n_bins`` is not valid.
    """
    if monetary not in MONETARY_BASES:
        raise ParamsError(f"monetary={monetary!r} is not a basis of the M score; use one of {', '.join(MONETARY_BASES)}.")
    scores = pd.DataFrame(
        {
            "r_score": quantile_scores(customers["days_since_last_purchase"], n_bins, higher_is_better=False),
            "f_score": quantile_scores(customers["purchase_days"], n_bins),
            "m_score": quantile_scores(customers[monetary], n_bins),
        },
        index=customers.index,
    )
    scores["rfm_cell"] = (
        scores["r_score"].astype(str) + "-" + scores["f_score"].astype(str) + "-" + scores["m_score"].astype(str)
    )
    return scores


# -------------------------------------------------------------------------- rule table


@dataclass(frozen=True)
class SegmentRule:
    """One named segment: inclusive score ranges and the action for its customers."""

    name: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]
    action: str = ""

    def matches(self, r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Boolean mask of the score combinations that fall in this rule."""
        return (
            (r >= self.r[0]) & (r <= self.r[1])
            & (f >= self.f[0]) & (f <= self.f[1])
            & (m >= self.m[0]) & (m <= self.m[1])
        )

    def to_dict(self) -> dict[str, Any]:
        """The rule as it is written in a params file."""
        return {"name": self.name, "r": list(self.r), "f": list(self.f), "m": list(self.m), "action": self.action}


def _check_n_bins(n_bins: Any) -> None:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ParamsError(f"rfm_bins={n_bins!r} must be a whole number of at least 2 (5 gives quintiles).")


def _score_range(rule_name: str, key: str, value: Any, n_bins: int, source: str) -> tuple[int, int]:
    if value is None:
        return (1, n_bins)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value
    ):
        raise ParamsError(
            f"{source}: rule {rule_name!r} has {key}: {value!r}; write a range of two whole scores "
            f"[lo, hi] between 1 and {n_bins}, e.g. {key}: [4, {n_bins}]."
        )
    lo, hi = int(value[0]), int(value[1])
    if not 1 <= lo <= hi <= n_bins:
        raise ParamsError(
            f"{source}: rule {rule_name!r} has {key}: [{lo}, {hi}]; scores run from 1 to rfm_bins={n_bins} "
            f"and lo must not exceed hi. Fix the range (or change rfm_bins to match the rules)."
        )
    return lo, hi


def load_segment_rules(
    rules: Iterable[Mapping[str, Any] | SegmentRule] | None = None,
    n_bins: int = 5,
    *,
    source: str = "rfm_segment_rules",
) -> tuple[SegmentRule, ...]:
    """Check a rule table (as written in a params file) and turn it into rules.

    Every combination of R, F and M scores 1..n_bins must fall in exactly one rule.

    Parameters
    ----------
    rules : list of dict, optional
        ``[{name, r: [lo, hi], f: [lo, hi], m: [lo, hi], action}, ...]``, best segment
        first; an omitted score covers its whole range, a single number means
        ``[n, n]``. Defaults to :data:`DEFAULT_SEGMENT_RULES`.
    n_bins : int
        Number of score bins the rules are written for.
    source : str
        Where the rules come from, for the error messages.

    Returns
    -------
    tuple of SegmentRule

    Raises
    ------
    ParamsError
        A rule without a name, an unknown key, a repeated name, a range outside
        1..n_bins, two rules matching the same score combination (names both and the
        combination) or combinations no rule matches (gives how many and an example).

    Examples
    --------
    >>> rules = load_segment_rules([{"name": "recent", "r": [2, 2]}, {"name": "lapsed", "r": [1, 1]}], n_bins=2)
    >>> [rule.name for rule in rules]
    ['recent', 'lapsed']
    """
    _check_n_bins(n_bins)
    rules = DEFAULT_SEGMENT_RULES if rules is None else rules
    if isinstance(rules, (str, bytes, Mapping)) or not isinstance(rules, Iterable):
        raise ParamsError(
            f"{source} must be a list of rules like {{name: champions, r: [4, 5], f: [4, 5], m: [1, 5], "
            f"action: reward}}; got {type(rules).__name__}."
        )
    parsed: list[SegmentRule] = []
    for position, rule in enumerate(rules, start=1):
        if isinstance(rule, SegmentRule):
            rule = rule.to_dict()
        if not isinstance(rule, Mapping):
            raise ParamsError(f"{source}: entry {position} is {rule!r}, not a rule; write {{name: ..., r: [lo, hi], ...}}.")
        name = rule.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ParamsError(f"{source}: entry {position} has no name; give every rule a name (e.g. name: champions).")
        unknown = sorted(set(rule) - set(RULE_KEYS))
        if unknown:
            raise ParamsError(
                f"{source}: rule {name!r} has unknown key(s) {unknown}; a rule has {', '.join(RULE_KEYS)}."
            )
        ranges = {key: _score_range(name, key, rule.get(key), n_bins, source) for key in SCORE_NAMES}
        parsed.append(SegmentRule(name=name.strip(), action=str(rule.get("action") or ""), **ranges))
    if not parsed:
        raise ParamsError(f"{source} is empty; list at least one rule (the defaults are in crm_lib.segments).")
    names = [rule.name for rule in parsed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ParamsError(f"{source}: rule name(s) {repeated} appear more than once; merge them or rename one.")

    grid = np.arange(1, n_bins + 1)
    r, f, m = (a.ravel() for a in np.meshgrid(grid, grid, grid, indexing="ij"))
    masks = np.array([rule.matches(r, f, m) for rule in parsed])
    covered = masks.sum(axis=0)
    if (covered > 1).any():
        first = int(np.flatnonzero(covered > 1)[0])
        both = [parsed[i].name for i in np.flatnonzero(masks[:, first])]
        a, b = both[0], both[1]
        shared = int((masks[names.index(a)] & masks[names.index(b)]).sum())
        raise ParamsError(
            f"{source}: rules {a!r} and {b!r} overlap: both match r={r[first]}, f={f[first]}, m={m[first]} "
            f"({shared} score combination(s) in common); narrow one of their ranges so each combination "
            "has exactly one segment."
        )
    if (covered == 0).any():
        gaps = np.flatnonzero(covered == 0)
        first = int(gaps[0])
        raise ParamsError(
            f"{source}: {len(gaps)} of {len(covered)} score combinations match no rule "
            f"(e.g. r={r[first]}, f={f[first]}, m={m[first]}), so those customers would have no segment; "
            f"widen a rule or add one, e.g. {{name: other, r: [{r[first]}, {r[first]}], f: [{f[first]}, {f[first]}], "
            f"m: [1, {n_bins}], action: ...}}."
        )
    return tuple(parsed)


def read_segment_rules(path: str | Path, n_bins: int | None = None, *, key: str = "rfm_segment_rules") -> tuple[SegmentRule, ...]:
    """Read and check the segment rules of a params YAML file.

    The rules are looked up under ``key`` at the top of the file or in its
    ``parameters:`` section; so is ``rfm_bins`` when ``n_bins`` is not given
    (default 5).

    Parameters
    ----------
    path : str or Path
        A params file such as ``params/cdnow.yaml``.
    n_bins : int, optional
        Number of score bins; read from the file (``rfm_bins``) when omitted.
    key : str
        Name of the rule table in the file.

    Returns
    -------
    tuple of SegmentRule

    Raises
    ------
    ParamsError
        The file is missing, not YAML, has no rule table, or the rules do not check.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found; check the path.")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ParamsError(f"{path.name}: not valid YAML ({error}); fix the indentation or quoting.") from None
    sections = [content, content.get("parameters") or {}] if isinstance(content, dict) else []
    found = next((s for s in sections if isinstance(s, dict) and key in s), None)
    if found is None:
        raise ParamsError(f"{path.name}: no {key} table (top level or under parameters:); add one or omit it to use the defaults.")
    if n_bins is None:
        n_bins = next((s["rfm_bins"] for s in sections if isinstance(s, dict) and "rfm_bins" in s), 5)
    return load_segment_rules(found[key], n_bins, source=f"{path.name}: {key}")


def assign_segments(scores: pd.DataFrame, rules: Sequence[SegmentRule]) -> pd.DataFrame:
    """Name the segment and action of every customer from their scores.

    Parameters
    ----------
    scores : DataFrame
        From :func:`rfm_scores` (``r_score``, ``f_score``, ``m_score``).
    rules : sequence of SegmentRule
        From :func:`load_segment_rules` (checked: exactly one rule per combination).

    Returns
    -------
    DataFrame
        Indexed like ``scores``: ``segment``, ``segment_action``.
    """
    r, f, m = (scores[c].to_numpy() for c in ("r_score", "f_score", "m_score"))
    which = np.full(len(scores), -1)
    for position, rule in enumerate(rules):
        which[rule.matches(r, f, m) & (which < 0)] = position
    if (which < 0).any():
        first = int(np.flatnonzero(which < 0)[0])
        raise ParamsError(
            f"segment rules: {int((which < 0).sum()):,} customers match no rule (e.g. scores r={r[first]}, "
            f"f={f[first]}, m={m[first]}); check the rules with load_segment_rules for the same rfm_bins."
        )
    names = np.array([rule.name for rule in rules], dtype=object)
    actions = np.array([rule.action for rule in rules], dtype=object)
    return pd.DataFrame({"segment": names[which], "segment_action": actions[which]}, index=scores.index)


@dataclass(frozen=True)
class RFMSegmentation:
    """RFM scores and named segments of every customer.

    Attributes
    ----------
    customers : DataFrame
        :func:`customer_value_table` columns plus ``r_score``, ``f_score``, ``m_score``,
        ``rfm_cell``, ``segment``, ``segment_action``; indexed by (real) customer id.
    rules : tuple of SegmentRule
        Best segment first.
    n_bins : int
    monetary : str
        What the M score ranks.
    observation_end : Timestamp
    """

    customers: pd.DataFrame
    rules: tuple[SegmentRule, ...]
    n_bins: int
    monetary: str
    observation_end: pd.Timestamp

    @property
    def segment_order(self) -> list[str]:
        """Segment names, best first (the order of the rule table)."""
        return [rule.name for rule in self.rules]

    def to_frame(self) -> pd.DataFrame:
        """The per-customer table."""
        return self.customers.copy()

    def score_distribution(self) -> pd.DataFrame:
        """Customers per score value (rows 1..n_bins) for R, F and M; shows empty bins."""
        index = pd.Index(range(1, self.n_bins + 1), name="score")
        return pd.DataFrame(
            {
                name: self.customers[f"{name.lower()}_score"].value_counts().reindex(index, fill_value=0)
                for name in ("R", "F", "M")
            }
        )

    def summary(self) -> str:
        """A few lines for people: customers, bins and the size of each segment."""
        counts = self.customers["segment"].value_counts().reindex(self.segment_order, fill_value=0)
        n = len(self.customers)
        lines = [
            f"RFM segmentation of {n:,} customers at {self.observation_end:%Y-%m-%d} "
            f"({self.n_bins} quantile bins, M = {self.monetary})"
        ]
        lines += [f"  {name:<22} {count:>8,}  {count / n:6.1%}" for name, count in counts.items()]
        return "\n".join(lines)


def rfm_segmentation(
    transactions: pd.DataFrame,
    rules: Iterable[Mapping[str, Any] | SegmentRule] | None = None,
    *,
    n_bins: int = 5,
    monetary: str = "revenue",
    observation_end: str | pd.Timestamp | None = None,
) -> RFMSegmentation:
    """Score every customer on recency, frequency and monetary value and name the segment.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transaction log.
    rules : list of dict, optional
        The rule table (``rfm_segment_rules`` in params); defaults to
        :data:`DEFAULT_SEGMENT_RULES`.
    n_bins : int
        Quantile bins per score (``rfm_bins``).
    monetary : {"revenue", "average_order_value"}
        What the M score ranks.
    observation_end : str or Timestamp, optional
        End of observation (inclusive); defaults to the last purchase day.

    Returns
    -------
    RFMSegmentation

    Raises
    ------
    ParamsError
        Rules that overlap or leave score combinations without a segment.

    Examples
    --------
    >>> from crm_lib.data import load_transactions
    >>> from crm_lib.datasets import CDNOW_COLUMN_MAP
    >>> log = load_transactions("embedded:CDNOW_master.txt", column_map=CDNOW_COLUMN_MAP,
    ...                         sep=r"\\s+", date_format="%Y%m%d")
    >>> seg = rfm_segmentation(log.transactions)            # doctest: +SKIP
    >>> seg.customers["segment"].value_counts()             # doctest: +SKIP
    """
    checked = load_segment_rules(rules, n_bins)
    customers = customer_value_table(transactions, observation_end=observation_end)
    scores = rfm_scores(customers, n_bins, monetary=monetary)
    table = customers.join(scores).join(assign_segments(scores, checked))
    end = customers.attrs["observation_end"]
    table.attrs["observation_end"] = end
    return RFMSegmentation(customers=table, rules=checked, n_bins=n_bins, monetary=monetary, observation_end=end)


# ----------------------------------------------------------------------------- profile


def _aligned_predictions(customers: pd.DataFrame, predictions: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    """The prediction columns that exist, aligned on the customers; every customer needs a row."""
    if predictions is None:
        return pd.DataFrame(index=customers.index)
    present = [c for c in columns if c in predictions.columns]
    if not present:
        raise DataValidationError(
            f"predictions: none of the columns {list(columns)} found (columns are {list(predictions.columns)}); "
            "pass the per-customer frame from crm_lib.clv with clv and/or p_alive, or None for historical value."
        )
    index = predictions.index.astype(str)
    aligned = predictions[present].set_axis(index).reindex(customers.index)
    missing = aligned.isna().any(axis=1)
    if missing.any():
        raise DataValidationError(
            f"predictions: {int(missing.sum()):,} of {len(customers):,} customers have no {'/'.join(present)} "
            f"(e.g. customer {customers.index[missing.to_numpy()][0]!r}); predict for the same customers and "
            "observation end as the segmentation (index = customer_id)."
        )
    return aligned.astype(float)


def _clv_basis(predictions: pd.DataFrame | None) -> str:
    """How to name predicted CLV: with its horizon when the frame records it (crm_lib.clv attrs)."""
    months = predictions.attrs.get("horizon_months") if predictions is not None else None
    return f"predicted {months:g}-month CLV" if months else "predicted CLV"


def segment_profile(
    segmentation: RFMSegmentation,
    predictions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Size, share of customers and of revenue, recency, frequency and spend per segment.

    Parameters
    ----------
    segmentation : RFMSegmentation
    predictions : DataFrame, optional
        Indexed by customer id with ``clv`` and/or ``p_alive`` (from
        :mod:`crm_lib.clv`); adds mean and total predicted CLV and mean P(alive).

    Returns
    -------
    DataFrame
        One row per segment, best first (empty segments kept, with 0 customers):
        ``customers``, ``share_of_customers``, ``revenue``, ``share_of_revenue``,
        ``mean_days_since_last_purchase``, ``mean_purchase_days``,
        ``average_order_value`` (segment revenue / segment transactions),
        [``mean_clv``, ``total_clv``, ``share_of_clv``] [``mean_p_alive``], ``action``.

    Raises
    ------
    DataValidationError
        Predictions that miss some customers.
    """
    table = segmentation.customers
    extra = _aligned_predictions(table, predictions, ("clv", "p_alive"))
    data = table[["segment", "revenue", "transactions", "days_since_last_purchase", "purchase_days"]].join(extra)
    grouped = data.groupby("segment", sort=False)
    profile = pd.DataFrame(
        {
            "customers": grouped.size(),
            "revenue": grouped["revenue"].sum(),
            "transactions": grouped["transactions"].sum(),
            "mean_days_since_last_purchase": grouped["days_since_last_purchase"].mean(),
            "mean_purchase_days": grouped["purchase_days"].mean(),
        }
    )
    if "clv" in extra:
        profile["mean_clv"] = grouped["clv"].mean()
        profile["total_clv"] = grouped["clv"].sum()
    if "p_alive" in extra:
        profile["mean_p_alive"] = grouped["p_alive"].mean()
    profile = profile.reindex(segmentation.segment_order)
    profile.index.name = "segment"
    profile[["customers", "revenue", "transactions"]] = profile[["customers", "revenue", "transactions"]].fillna(0)
    profile["customers"] = profile["customers"].astype(int)
    profile.insert(1, "share_of_customers", profile["customers"] / len(table))
    total_revenue = table["revenue"].sum()
    profile.insert(3, "share_of_revenue", profile["revenue"] / total_revenue if total_revenue else np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile.insert(
            6, "average_order_value", (profile["revenue"] / profile["transactions"]).where(profile["transactions"] > 0)
        )
    profile = profile.drop(columns="transactions")
    if "total_clv" in profile:
        total_clv = profile["total_clv"].sum()
        profile.insert(profile.columns.get_loc("total_clv") + 1, "share_of_clv", profile["total_clv"] / total_clv if total_clv else np.nan)
    profile["action"] = [rule.action for rule in segmentation.rules]
    return profile


# --------------------------------------------------------------------------- portfolio


@dataclass(frozen=True)
class ValueLoyaltyPortfolio:
    """Customers split on business potential and loyalty into four cells with an action.

    Attributes
    ----------
    customers : DataFrame
        Indexed by customer id: ``value``, ``loyalty``, ``high_value``, ``high_loyalty``,
        ``portfolio_cell``, ``portfolio_action``.
    cells : DataFrame
        One row per cell: ``action``, ``customers``, ``share_of_customers``, ``value``,
        ``share_of_value``, ``value_at_stake`` (sum of value x (1 - loyalty): the part of
        the cell's value exposed to defection), ``share_of_value_at_stake``.
    value_threshold : float
        Customers with value above it are high value.
    loyalty_split : float
        Customers with loyalty at or above it are highly loyal.
    value_basis, loyalty_basis : str
        What value and loyalty are ("predicted CLV", "predicted 12-month CLV" when the
        predictions record ``attrs["horizon_months"]``, or "historical revenue";
        "P(alive)" / "recency ratio t_x/T").
    """

    customers: pd.DataFrame
    cells: pd.DataFrame
    value_threshold: float
    loyalty_split: float
    value_basis: str
    loyalty_basis: str

    def to_frame(self) -> pd.DataFrame:
        """The cell table."""
        return self.cells.copy()

    def summary(self) -> str:
        """A few lines for people: the splits and each cell's size and value share."""
        lines = [
            f"Value x loyalty portfolio: value = {self.value_basis} (high above {self.value_threshold:,.2f}), "
            f"loyalty = {self.loyalty_basis} (high at or above {self.loyalty_split:g})"
        ]
        for name, row in self.cells.iterrows():
            lines.append(
                f"  {name:<26} {row['action']:<32} {int(row['customers']):>8,} customers "
                f"{row['share_of_customers']:6.1%}  value {row['share_of_value']:6.1%}"
            )
        return "\n".join(lines)


def recency_ratio(customers: pd.DataFrame) -> pd.Series:
    """Model-free loyalty: (last - first purchase day) / (observation end - first purchase day).

    The share of the relationship's age at which the customer last bought, ``t_x / T``
    in the notation of Fader, Hardie & Lee (2005); 1 for a customer who bought on the
    last day (also when the first purchase is on the last day), 0 for one who never came
    back. A ranking heuristic for when no P(alive) model is fitted, not a probability.
    """
    span = (customers["relationship_days"] - customers["days_since_last_purchase"]).astype(float)
    relationship = customers["relationship_days"].astype(float)
    return (span / relationship).where(relationship > 0, 1.0).rename("loyalty")


def value_loyalty_portfolio(
    customers: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    value_split_quantile: float = 0.8,
    value_split: float | None = None,
    loyalty_split: float = 0.5,
) -> ValueLoyaltyPortfolio:
    """Split customers on business potential and loyalty; name the cells and their action.

    Parameters
    ----------
    customers : DataFrame
        From :func:`customer_value_table` (or ``RFMSegmentation.customers``).
    predictions : DataFrame, optional
        Indexed by customer id with ``clv`` (business potential) and/or ``p_alive``
        (loyalty) from :mod:`crm_lib.clv`. Without them value is historical revenue and
        loyalty the recency ratio (:func:`recency_ratio`).
    value_split_quantile : float
        High value means value above this quantile of all customers' values (0.8: the
        top fifth, where most of the value usually is). Ignored if ``value_split`` is set.
    value_split : float, optional
        An absolute value threshold (currency) instead of the quantile.
    loyalty_split : float
        High loyalty means loyalty at or above this (P(alive) or ratio, both in 0..1).

    Returns
    -------
    ValueLoyaltyPortfolio

    Raises
    ------
    ParamsError
        A split outside its range.
    DataValidationError
        Predictions that miss some customers.
    """
    if not 0 < value_split_quantile < 1:
        raise ParamsError(f"portfolio_value_split_quantile={value_split_quantile!r} must be between 0 and 1 (e.g. 0.8).")
    if not 0 < loyalty_split < 1:
        raise ParamsError(f"portfolio_loyalty_split={loyalty_split!r} must be between 0 and 1 (e.g. 0.5).")
    extra = _aligned_predictions(customers, predictions, ("clv", "p_alive"))
    if "clv" in extra:
        value, value_basis = extra["clv"], _clv_basis(predictions)
    else:
        value, value_basis = customers["revenue"].astype(float), "historical revenue"
    if "p_alive" in extra:
        loyalty, loyalty_basis = extra["p_alive"], "P(alive)"
    else:
        loyalty, loyalty_basis = recency_ratio(customers), "recency ratio t_x/T"
    threshold = float(value.quantile(value_split_quantile)) if value_split is None else float(value_split)
    high_value = value > threshold
    high_loyalty = loyalty >= loyalty_split
    table = pd.DataFrame(
        {"value": value.to_numpy(), "loyalty": loyalty.to_numpy(),
         "high_value": high_value.to_numpy(), "high_loyalty": high_loyalty.to_numpy()},
        index=customers.index,
    )
    keys = list(zip(table["high_value"], table["high_loyalty"]))
    table["portfolio_cell"] = [PORTFOLIO_CELLS[k][0] for k in keys]
    table["portfolio_action"] = [PORTFOLIO_CELLS[k][1] for k in keys]
    # Value exposed to defection: each customer's value weighted by the chance (or, for
    # the ratio, the heuristic score) that they are no longer a customer.
    at_stake = table["value"] * (1.0 - table["loyalty"].clip(0, 1))
    grouped = table.assign(at_stake=at_stake).groupby("portfolio_cell")
    order = [PORTFOLIO_CELLS[k][0] for k in ((True, True), (True, False), (False, True), (False, False))]
    cells = pd.DataFrame(
        {
            "action": [PORTFOLIO_CELLS[k][1] for k in ((True, True), (True, False), (False, True), (False, False))],
            "customers": grouped.size().reindex(order, fill_value=0).astype(int).to_numpy(),
            "value": grouped["value"].sum().reindex(order, fill_value=0.0).to_numpy(),
            "value_at_stake": grouped["at_stake"].sum().reindex(order, fill_value=0.0).to_numpy(),
        },
        index=pd.Index(order, name="portfolio_cell"),
    )
    n = len(table)
    total_value = table["value"].sum()
    total_stake = at_stake.sum()
    cells.insert(2, "share_of_customers", cells["customers"] / n)
    cells.insert(4, "share_of_value", cells["value"] / total_value if total_value else np.nan)
    cells["share_of_value_at_stake"] = cells["value_at_stake"] / total_stake if total_stake else np.nan
    return ValueLoyaltyPortfolio(
        customers=table, cells=cells, value_threshold=threshold, loyalty_split=float(loyalty_split),
        value_basis=value_basis, loyalty_basis=loyalty_basis,
    )


# ------------------------------------------------------------ active / passive loyalty


def resolve_salt(salt: str | None = None) -> bytes:
    """The secret pseudonym key (the salt is replaced by it; see :mod:`crm_lib.keys`).

    A ``salt`` argument is ignored: a salt from params was published with the executed
    notebooks and its public default made every pseudonym reversible.
    """
    from crm_lib.keys import load_key

    return load_key()


def pseudonymize(customer_ids: Iterable[Any], salt: str | None = None, *, length: int = 16) -> pd.Series:
    """Stable pseudonymous ids: HMAC-SHA256 of each id under the secret key (:mod:`crm_lib.keys`).

    Parameters
    ----------
    customer_ids : iterable
        Real customer ids (converted to str).
    salt : str, optional
        Ignored (kept so that old calls still work): the key replaces the salt.
    length : int
        Hex characters kept, 16..64 (64 bits or more; collisions are checked).

    Returns
    -------
    Series of str
        Indexed by the real ids, named ``pseudonymous_id``.

    Raises
    ------
    ParamsError
        No pseudonym key (the message says how to set one), a length outside 16..64,
        or two ids with the same pseudonym.
    """
    from crm_lib.keys import keyed_pseudonyms

    ids = [str(c) for c in customer_ids]
    hashed = keyed_pseudonyms(ids, length=length).to_numpy()
    series = pd.Series(hashed, index=pd.Index(ids, name="customer_id"), name="pseudonymous_id", dtype=object)
    if series.duplicated().any() and not series.index.duplicated().any():
        first = series[series.duplicated(keep=False)]
        raise ParamsError(
            f"{int(series.duplicated().sum())} pseudonymous ids collide (e.g. {first.iloc[0]!r}); "
            f"use a longer length than {length}."
        )
    return series


def hide_customer_ids(
    data: pd.DataFrame | pd.Series, salt: str, *, column: str | None = None, values: bool = False
) -> pd.DataFrame | pd.Series:
    """A copy of ``data`` for a report: real customer ids replaced by their pseudonyms.

    Parameters
    ----------
    data : DataFrame or Series
        Holds real customer ids in its index (the default), in ``column``, or in its
        values (a Series with ``values=True``).
    salt : str
        As in :func:`pseudonymize`.
    column : str, optional
        Column of ``data`` that holds the ids.
    values : bool
        The ids are the values of the Series ``data``.

    Returns
    -------
    DataFrame or Series
        The same data with pseudonymous ids; an index of ids is renamed ``pseudonymous_id``.

    Examples
    --------
    >>> table = pd.DataFrame({"clv": [3.0]}, index=pd.Index(["00042"], name="customer_id"))
    >>> hide_customer_ids(table, "s").index.name
    'pseudonymous_id'
    """
    if column is not None:
        ids = data[column]
        return data.assign(**{column: ids.map(pseudonymize(ids.unique(), salt))})
    if values:
        return data.map(pseudonymize(data.unique(), salt))
    hidden = data.copy()
    hidden.index = pd.Index(pseudonymize(data.index, salt).to_numpy(), name="pseudonymous_id")
    return hidden


@dataclass(frozen=True)
class LoyaltyStatus:
    """Active versus passive loyalty among customers with a long relationship.

    Attributes
    ----------
    customers : DataFrame
        Indexed by customer id: ``loyalty_status`` (active / passive / short
        relationship), ``silence_ratio`` (days since last purchase / mean
        inter-purchase days), ``value`` and the columns it was computed from.
    counts : DataFrame
        One row per status: ``customers``, ``share_of_customers``,
        ``share_of_long_lived`` (NaN for short relationships), ``value``, ``share_of_value``.
    min_relationship_days, min_orders : int
    silence_ratio : float
        Threshold: passive when the silence exceeds this many usual inter-purchase times
    min_silence_days : int
        ...and lasts at least this many days.
    value_basis : str
    """

    customers: pd.DataFrame
    counts: pd.DataFrame
    min_relationship_days: int
    min_orders: int
    silence_ratio: float
    min_silence_days: int
    value_basis: str

    def to_frame(self) -> pd.DataFrame:
        """The count table."""
        return self.counts.copy()

    def winback_list(self, salt: str, n: int = 10) -> pd.DataFrame:
        """The ``n`` most valuable passive customers, under pseudonymous ids only.

        Parameters
        ----------
        salt : str
            ``pseudonym_salt`` from the params.
        n : int
            How many to list.

        Returns
        -------
        DataFrame
            Indexed by ``pseudonymous_id`` (no real id anywhere): ``value``,
            ``purchase_days``, ``revenue``, ``mean_interpurchase_days``,
            ``days_since_last_purchase``, ``silence_ratio``; highest value first.
        """
        passive = self.customers[self.customers["loyalty_status"] == "passive"]
        top = passive.sort_values(["value", "silence_ratio"], ascending=[False, False], kind="stable").head(n)
        columns = ["value", "purchase_days", "revenue", "mean_interpurchase_days", "days_since_last_purchase", "silence_ratio"]
        listed = top[columns].copy()
        listed.index = pd.Index(pseudonymize(top.index, salt).to_numpy(), name="pseudonymous_id")
        return listed

    def summary(self) -> str:
        """A few lines for people: the definition and the counts."""
        lines = [
            f"Active vs passive loyalty: long relationship = first purchase >= {self.min_relationship_days} days "
            f"before the end and >= {self.min_orders} purchase days; passive = silence > {self.silence_ratio:g} x "
            f"own mean inter-purchase time and >= {self.min_silence_days} days"
        ]
        for name, row in self.counts.iterrows():
            lines.append(
                f"  {name:<20} {int(row['customers']):>8,}  {row['share_of_customers']:6.1%}  value {row['share_of_value']:6.1%}"
            )
        return "\n".join(lines)


def active_passive_loyalty(
    customers: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    min_relationship_days: int = 365,
    min_orders: int = 3,
    silence_ratio: float = 2.0,
    min_silence_days: int = 90,
) -> LoyaltyStatus:
    """Separate long-lived customers still buying at their rhythm from silent ones.

    Parameters
    ----------
    customers : DataFrame
        From :func:`customer_value_table`.
    predictions : DataFrame, optional
        With a ``clv`` column: the value used to rank win-back candidates; historical
        revenue otherwise.
    min_relationship_days : int
        A long relationship started at least this many days before the end.
    min_orders : int
        ...and has at least this many purchase days (2 or more, so that an own
        inter-purchase time exists; 3 means it is a mean of at least two gaps).
    silence_ratio : float
        Passive when days since the last purchase exceed this multiple of the
        customer's mean inter-purchase time...
    min_silence_days : int
        ...and at least this many days (a heavy buyer silent for two weeks is not yet
        lapsed, whatever their usual gap).

    Returns
    -------
    LoyaltyStatus

    Raises
    ------
    ParamsError
        ``min_orders`` below 2 or a non-positive ``silence_ratio``.
    """
    if min_orders < 2:
        raise ParamsError(f"loyalty_min_orders={min_orders!r} must be at least 2: an inter-purchase time needs two purchase days.")
    if min_silence_days < 0:
        raise ParamsError(f"loyalty_min_silence_days={min_silence_days!r} must be zero or more days.")
    if not silence_ratio > 0:
        raise ParamsError(f"loyalty_silence_ratio={silence_ratio!r} must be positive (e.g. 2: twice the usual gap).")
    extra = _aligned_predictions(customers, predictions, ("clv",))
    value = extra["clv"] if "clv" in extra else customers["revenue"].astype(float)
    long_lived = (customers["relationship_days"] >= min_relationship_days) & (customers["purchase_days"] >= min_orders)
    # Same-day repeat purchases merge, so a long-lived customer has a positive gap.
    ratio = customers["days_since_last_purchase"] / customers["mean_interpurchase_days"]
    silent = (ratio > silence_ratio) & (customers["days_since_last_purchase"] >= min_silence_days)
    status = np.where(~long_lived, "short relationship", np.where(silent, "passive", "active"))
    table = customers[["purchase_days", "revenue", "mean_interpurchase_days", "days_since_last_purchase", "relationship_days"]].copy()
    table["silence_ratio"] = ratio.where(long_lived)
    table["value"] = value.to_numpy()
    table["loyalty_status"] = status
    grouped = table.groupby("loyalty_status")
    counts = pd.DataFrame(
        {
            "customers": grouped.size().reindex(LOYALTY_STATUSES, fill_value=0).astype(int),
            "value": grouped["value"].sum().reindex(LOYALTY_STATUSES, fill_value=0.0),
        }
    )
    counts.index.name = "loyalty_status"
    n_long = int(long_lived.sum())
    counts.insert(1, "share_of_customers", counts["customers"] / len(table))
    counts.insert(2, "share_of_long_lived", (counts["customers"] / n_long if n_long else np.nan))
    counts.loc["short relationship", "share_of_long_lived"] = np.nan
    total = table["value"].sum()
    counts["share_of_value"] = counts["value"] / total if total else np.nan
    return LoyaltyStatus(
        customers=table, counts=counts, min_relationship_days=int(min_relationship_days), min_orders=int(min_orders),
        silence_ratio=float(silence_ratio), min_silence_days=int(min_silence_days), value_basis=_clv_basis(predictions) if "clv" in extra else "historical revenue",
    )


# --------------------------------------------------------------------------- migration


@dataclass(frozen=True)
class SegmentMigration:
    """Moves between RFM segments from the calibration end to the observation end.

    Attributes
    ----------
    counts : DataFrame
        Customers by segment at ``calibration_end`` (rows) and at ``observation_end``
        (columns), both in rule order (best first); customers first seen after the
        calibration end are not in it.
    shares : DataFrame
        ``counts`` divided by its row totals (each row sums to 1; empty rows are NaN).
    moved_up, stayed, moved_down : float
        Shares of the customers who went to a better segment (listed earlier in the
        rules), stayed, or went to a worse one.
    calibration_end, observation_end : Timestamp
    """

    counts: pd.DataFrame
    shares: pd.DataFrame
    moved_up: float
    stayed: float
    moved_down: float
    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp

    def to_frame(self) -> pd.DataFrame:
        """The transition shares (rows: segment at calibration end)."""
        return self.shares.copy()

    def movement(self) -> pd.DataFrame:
        """Customers and shares that moved up, stayed, moved down."""
        n = int(self.counts.to_numpy().sum())
        shares = [self.moved_up, self.stayed, self.moved_down]
        return pd.DataFrame(
            {"customers": [round(s * n) for s in shares], "share": shares},
            index=pd.Index(["moved up", "stayed", "moved down"], name="movement"),
        )

    def summary(self) -> str:
        """One line for people."""
        return (
            f"Segment migration {self.calibration_end:%Y-%m-%d} -> {self.observation_end:%Y-%m-%d} "
            f"({int(self.counts.to_numpy().sum()):,} customers): {self.moved_up:.1%} moved up, "
            f"{self.stayed:.1%} stayed, {self.moved_down:.1%} moved down"
        )


def segment_migration(
    transactions: pd.DataFrame,
    rules: Iterable[Mapping[str, Any] | SegmentRule] | None = None,
    *,
    calibration_end: str | pd.Timestamp | None = None,
    observation_end: str | pd.Timestamp | None = None,
    n_bins: int = 5,
    monetary: str = "revenue",
) -> SegmentMigration:
    """Transition matrix between RFM segments from the calibration end to the end.

    Each date is segmented on its own (scores are quantiles of the customers known at
    that date, as the team would have seen them then); the matrix follows the customers
    known at the calibration end.

    Parameters
    ----------
    transactions : DataFrame
    rules : list of dict, optional
        The rule table, best segment first.
    calibration_end : str or Timestamp, optional
        Date of the first segmentation (inclusive); defaults to the day halfway between
        the first purchase and the observation end.
    observation_end : str or Timestamp, optional
        Date of the second; defaults to the last purchase day.
    n_bins, monetary
        As in :func:`rfm_segmentation`.

    Returns
    -------
    SegmentMigration

    Raises
    ------
    DataValidationError
        ``calibration_end`` not before ``observation_end``, or no purchase by then.
    """
    after = rfm_segmentation(transactions, rules, n_bins=n_bins, monetary=monetary, observation_end=observation_end)
    if calibration_end is None:
        first = pd.to_datetime(transactions["date"]).min().normalize()
        calibration_end = first + (after.observation_end - first) / 2
    before = rfm_segmentation(transactions, rules, n_bins=n_bins, monetary=monetary, observation_end=calibration_end)
    if before.observation_end >= after.observation_end:
        raise DataValidationError(
            f"calibration_end ({before.observation_end:%Y-%m-%d}) must be before observation_end "
            f"({after.observation_end:%Y-%m-%d}); move calibration_end earlier in params."
        )
    order = before.segment_order
    start = before.customers["segment"]
    end = after.customers["segment"].reindex(start.index)
    counts = pd.crosstab(
        pd.Categorical(start, categories=order), pd.Categorical(end, categories=order), dropna=False
    ).astype(int)
    counts.index = pd.Index(order, name=f"segment at {before.observation_end:%Y-%m-%d}")
    counts.columns = pd.Index(order, name=f"segment at {after.observation_end:%Y-%m-%d}")
    row_totals = counts.sum(axis=1)
    shares = counts.div(row_totals.where(row_totals > 0), axis=0)
    rank = {name: i for i, name in enumerate(order)}
    start_rank = start.map(rank).to_numpy()
    end_rank = end.map(rank).to_numpy()
    n = len(start)
    return SegmentMigration(
        counts=counts,
        shares=shares,
        moved_up=float((end_rank < start_rank).sum() / n),
        stayed=float((end_rank == start_rank).sum() / n),
        moved_down=float((end_rank > start_rank).sum() / n),
        calibration_end=before.observation_end,
        observation_end=after.observation_end,
    )


# ---------------------------------------------------------------------- customer actions


def customer_actions(
    segmentation: RFMSegmentation,
    portfolio: ValueLoyaltyPortfolio,
    loyalty: LoyaltyStatus,
    salt: str,
) -> pd.DataFrame:
    """One row per customer with segment, portfolio cell and the recommended action.

    ``recommended_action`` is the portfolio action, except for passive long-lived
    customers of high value, whose action is ``"win back"``.

    Parameters
    ----------
    segmentation, portfolio, loyalty
        Results for the same customers.
    salt : str
        ``pseudonym_salt``: the export carries the pseudonymous id next to the real one
        so that a row of the report can be found in the file.

    Returns
    -------
    DataFrame
        Indexed by the real ``customer_id``: ``pseudonymous_id``, ``segment``,
        ``segment_action``, ``r_score``, ``f_score``, ``m_score``, ``portfolio_cell``,
        ``portfolio_action``, ``loyalty_status``, ``recommended_action``, ``value``,
        ``loyalty``, ``revenue``, ``purchase_days``, ``days_since_last_purchase``.

    Raises
    ------
    DataValidationError
        Results for different customers.
    """
    seg = segmentation.customers
    for name, other in (("portfolio", portfolio.customers), ("loyalty", loyalty.customers)):
        if not other.index.equals(seg.index):
            raise DataValidationError(
                f"customer_actions: the {name} result has {len(other):,} customers, the segmentation {len(seg):,}; "
                "compute all three on the same transactions and observation end."
            )
    table = pd.DataFrame(index=seg.index)
    table["pseudonymous_id"] = pseudonymize(seg.index, salt).to_numpy()
    table[["segment", "segment_action", "r_score", "f_score", "m_score"]] = seg[
        ["segment", "segment_action", "r_score", "f_score", "m_score"]
    ]
    table[["portfolio_cell", "portfolio_action", "value", "loyalty"]] = portfolio.customers[
        ["portfolio_cell", "portfolio_action", "value", "loyalty"]
    ]
    table["loyalty_status"] = loyalty.customers["loyalty_status"]
    win_back = (table["loyalty_status"] == "passive") & portfolio.customers["high_value"]
    table["recommended_action"] = table["portfolio_action"].where(~win_back, "win back")
    table[["revenue", "purchase_days", "days_since_last_purchase"]] = seg[
        ["revenue", "purchase_days", "days_since_last_purchase"]
    ]
    # One text dtype for every label column, so the table survives a CSV or Parquet round trip.
    text = ["pseudonymous_id", "segment", "segment_action", "portfolio_cell", "portfolio_action",
            "loyalty_status", "recommended_action"]
    table[text] = table[text].astype(str)
    table.index = table.index.astype(str)
    return table


# ------------------------------------------------------------------------ for people

#: Columns holding amounts of money; formatted with the currency in their name.
MONEY_COLUMNS = ("revenue", "value", "value_at_stake", "average_order_value", "mean_clv", "total_clv")


def format_for_report(table: pd.DataFrame, currency: str = "USD") -> pd.DataFrame:
    """A results table with readable column names, thousands separators and percentages.

    ``share_*`` columns become percentages, money columns get the currency in their
    name and two decimals, counts thousands separators, other numbers two decimals;
    missing values (an empty segment) show as empty cells.

    Parameters
    ----------
    table : DataFrame
        A table of this module (segment profile, portfolio cells, loyalty counts, ...).
    currency : str
        Currency of the amounts.

    Returns
    -------
    DataFrame of str
    """
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        values = table[column]
        name = column.replace("_", " ")
        if column.startswith("share"):
            text = values.map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
        elif column in MONEY_COLUMNS:
            name = f"{name} ({currency})"
            text = values.map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
        elif pd.api.types.is_integer_dtype(values):
            text = values.map("{:,}".format)
        elif pd.api.types.is_float_dtype(values):
            text = values.map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
        else:
            text = values.astype(str)
        out[name] = text
    out.index.name = table.index.name.replace("_", " ") if table.index.name else None
    return out
