"""RFM scores and named segments: the per-customer table, quantile scores that never split
ties, the checked rule table, and the segmentation result. Definitions are in
:mod:`crm_lib.segments`."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from crm_lib.columns import require_columns
from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.summary import sorted_id_runs

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SEGMENT_RULES",
    "MONETARY_BASES",
    "RFMSegmentation",
    "SegmentRule",
    "assign_segments",
    "customer_value_table",
    "load_segment_rules",
    "quantile_scores",
    "read_segment_rules",
    "rfm_scores",
    "rfm_segmentation",
]

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
    require_columns(transactions, (customer_col, date_col, amount_col), "transactions",
                    "Pass the log returned by load_transactions or name the columns.")
    days = pd.to_datetime(transactions[date_col]).dt.normalize()
    end = days.max() if observation_end is None else pd.Timestamp(observation_end).normalize()
    inside = days <= end
    if not inside.any():
        raise DataValidationError(
            f"transactions: no purchase on or before {end:%Y-%m-%d} (first purchase {days.min():%Y-%m-%d}); "
            "move observation_end or calibration_end later in params."
        )
    keep = inside.to_numpy()
    ids = transactions[customer_col].astype(str)
    ids = ids if keep.all() else ids[keep]
    # Integer codes in the sorted order of the ids (from their runs when the log is sorted by
    # customer, as a loaded log is), then integer-keyed groupbys: no Python string per row.
    runs = sorted_id_runs(ids)
    codes, uniques = runs if runs is not None else pd.factorize(ids, sort=True)
    day = days.to_numpy()[keep]
    frame = pd.DataFrame({"code": codes, "day": day,
                          "amount": transactions[amount_col].to_numpy(dtype=float)[keep]})
    by_customer = frame.groupby("code", sort=True)
    table = pd.DataFrame(
        {
            "first_purchase": by_customer["day"].min().to_numpy(),
            "last_purchase": by_customer["day"].max().to_numpy(),
            "purchase_days": _distinct_days_per_code(codes, day, len(uniques)),
            "transactions": by_customer.size().to_numpy().astype(int),
            "revenue": by_customer["amount"].sum().to_numpy().astype(float),
        },
        index=pd.Index(uniques),
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


def _distinct_days_per_code(codes: np.ndarray, day: np.ndarray, n_codes: int) -> np.ndarray:
    """Distinct purchase days of each customer code 0..n_codes-1 (``groupby(code)["day"].nunique()``)."""
    day_number = day.astype("datetime64[D]").astype(np.int64)
    low = int(day_number.min())
    span = int(day_number.max()) - low + 1
    key = codes.astype(np.int64) * span + (day_number - low)  # one int64 per (customer, day)
    if len(key) > 1 and not (key[1:] >= key[:-1]).all():
        key = np.sort(key)
    first = np.empty(len(key), dtype=bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    return np.bincount(key[first] // span, minlength=n_codes).astype(int)


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
    # "r-f-m" taken from the n_bins**3 labels (one text per cell, not three per customer).
    cells = [f"{r}-{f}-{m}" for r in range(1, n_bins + 1) for f in range(1, n_bins + 1) for m in range(1, n_bins + 1)]
    cell = ((scores["r_score"].to_numpy() - 1) * n_bins + scores["f_score"].to_numpy() - 1) * n_bins \
        + scores["m_score"].to_numpy() - 1
    scores["rfm_cell"] = pd.Series(cells, dtype=str).take(cell).array
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


def _parse_rule(position: int, rule: Mapping[str, Any] | SegmentRule, n_bins: int, source: str) -> SegmentRule:
    """One entry of a rule table -> a SegmentRule (a name, known keys, valid ranges)."""
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
    return SegmentRule(name=name.strip(), action=str(rule.get("action") or ""), **ranges)


def _check_coverage(parsed: Sequence[SegmentRule], n_bins: int, source: str) -> None:
    """Every (R, F, M) combination must match exactly one rule."""
    names = [rule.name for rule in parsed]
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
    parsed = [_parse_rule(position, rule, n_bins, source) for position, rule in enumerate(rules, start=1)]
    if not parsed:
        raise ParamsError(f"{source} is empty; list at least one rule (the defaults are in crm_lib.segments).")
    names = [rule.name for rule in parsed]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ParamsError(f"{source}: rule name(s) {repeated} appear more than once; merge them or rename one.")

    _check_coverage(parsed, n_bins, source)
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
    names = pd.Series([rule.name for rule in rules], dtype=str)
    actions = pd.Series([rule.action for rule in rules], dtype=str)
    return pd.DataFrame({"segment": names.take(which).array, "segment_action": actions.take(which).array},
                        index=scores.index)


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
    table = customers.copy(deep=False)
    # Same index (object) throughout: the columns are set without aligning millions of ids.
    for part in (scores, assign_segments(scores, checked)):
        for column in part.columns:
            table[column] = part[column].array
    end = customers.attrs["observation_end"]
    table.attrs["observation_end"] = end
    return RFMSegmentation(customers=table, rules=checked, n_bins=n_bins, monetary=monetary, observation_end=end)
