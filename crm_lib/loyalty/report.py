"""Tables and sentences for people: the loyalty results formatted for the report."""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.loyalty.analysis import LoyaltyAnalysis
from crm_lib.loyalty.hypotheses import HypothesisTests, _fmt, _fmt_p
from crm_lib.loyalty.matrix import LoyaltyMatrix

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# Tables for people
# ---------------------------------------------------------------------------------------


def verdict_stability(robustness: pd.DataFrame) -> pd.DataFrame:
    """Whether each hypothesis' verdict survives the changes of the robustness table.

    Parameters
    ----------
    robustness : DataFrame
        Output of :func:`robustness_table` (first row: the baseline).

    Returns
    -------
    DataFrame
        One row per hypothesis: ``baseline verdict``, ``variants agreeing`` (as "k of
        n"), ``share agreeing`` and ``differs under`` (the variants that change it, with
        their verdict).
    """
    columns = [c for c in robustness.columns if c.endswith(" verdict")]
    if not columns or "baseline" not in robustness.index:
        raise DataValidationError("robustness: expected robustness_table output with a 'baseline' row and verdict columns.")
    others = robustness.drop(index="baseline")
    rows = []
    for column in columns:
        base = robustness.loc["baseline", column]
        differ = others[others[column] != base]
        rows.append(
            {
                "hypothesis": column.removesuffix(" verdict"),
                "baseline verdict": base,
                "variants agreeing": f"{len(others) - len(differ)} of {len(others)}",
                "share agreeing": (len(others) - len(differ)) / len(others) if len(others) else float("nan"),
                "differs under": "; ".join(f"{name}: {verdict}" for name, verdict in differ[column].items()) or "none",
            }
        )
    return pd.DataFrame(rows).set_index("hypothesis")


def format_tests(tests: HypothesisTests) -> pd.DataFrame:
    """:meth:`HypothesisTests.to_frame` for reading: rounded numbers, p-values as text.

    Parameters
    ----------
    tests : HypothesisTests

    Returns
    -------
    DataFrame
        One row per test: hypothesis, test (``*`` marks the primary one), estimate with
        its 95% interval, statistic, p, Holm-adjusted p, n and the verdict.
    """
    frame = tests.to_frame()
    out = pd.DataFrame(
        {
            "hypothesis": frame["hypothesis"],
            "test": np.where(frame["primary"].fillna(False).astype(bool), "* ", "  ") + frame["method"].astype(str),
            "estimate": [
                "" if pd.isna(v) else f"{name} = {_fmt(v)}" for name, v in zip(frame["estimate_name"], frame["estimate"])
            ],
            "95% CI": [
                "" if pd.isna(lo) else f"{_fmt(lo)} to {_fmt(hi)}" for lo, hi in zip(frame["ci_low"], frame["ci_high"])
            ],
            "statistic": [
                "" if pd.isna(v) else f"{name} = {_fmt(v)}" for name, v in zip(frame["statistic_name"], frame["statistic"])
            ],
            "p": [_fmt_p(p) if pd.notna(p) else "" for p in frame["p_value"]],
            "Holm p": [_fmt_p(p) if pd.notna(p) else "" for p in frame["p_holm"]],
            "n": ["" if pd.isna(n) else f"{int(n):,}" for n in frame["n"]],
            "verdict": frame["verdict"],
        }
    )
    return out.set_index(["hypothesis", "test"])


def format_customers(customers: pd.DataFrame, currency: str = "USD", time_unit: str = "D") -> pd.DataFrame:
    """The per-customer table with readable names, units and rounding.

    Parameters
    ----------
    customers : DataFrame
        ``LoyaltyAnalysis.customers``.
    currency : str
    time_unit : {"D", "W", "h"}

    Returns
    -------
    DataFrame
        First purchase, lifetime end, duration, censored, orders, revenue, cost, profit,
        price, cost share and cell, as text.
    """
    unit = {"D": "days", "W": "weeks", "h": "hours"}[time_unit]
    out = pd.DataFrame(index=customers.index)
    out["first purchase"] = customers["first_purchase"].dt.strftime("%Y-%m-%d")
    out["lifetime end"] = customers["lifetime_end"].dt.strftime("%Y-%m-%d")
    out[f"duration ({unit})"] = customers["duration"].map("{:,.0f}".format)
    out["censored"] = np.where(customers["censored"], "yes", "")
    out["orders"] = customers["orders"].map("{:,}".format)
    for column in ("revenue", "cost", "profit", "price"):
        out[f"{column} ({currency})"] = customers[column].map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
    out["cost share"] = customers["cost_share"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    if "segment" in customers.columns:
        # Running (censored) lifetimes are not placed in the matrix by default.
        out["cell"] = customers["segment"].astype(object).where(customers["segment"].notna(), "(lifetime running)")
    return out


def format_calibration(calibration) -> pd.DataFrame:
    """:class:`~crm_lib.loyalty.calibration.CalibratedTests` for reading: both numbers side by side.

    Returns
    -------
    DataFrame
        One row per hypothesis: claim, statistic, observed, "no loyalty effect" mean and
        95% range, calibrated p, Holm p, effect, verdict and note.
    """
    rows = []
    for t in calibration.tests:
        rows.append({
            "hypothesis": t.hypothesis,
            "claim": t.claim,
            "statistic": t.statistic_name,
            "observed": _fmt(t.observed),
            "no loyalty effect": _fmt(t.null_mean),
            "95% range without effect": f"{_fmt(t.null_low)} to {_fmt(t.null_high)}",
            "calibrated p": _fmt_p(t.p_value),
            "Holm p": _fmt_p(t.p_holm),
            "effect": "" if not np.isfinite(t.effect) else f"{t.effect:+.3f}",
            "n": f"{t.n:,}",
            "verdict": t.verdict,
            "note": t.note,
        })
    return pd.DataFrame(rows).set_index("hypothesis")


def format_matrix_shares(calibration) -> pd.DataFrame:
    """Observed cell shares of the matrix beside the shares a base with no loyalty effect gives."""
    frame = calibration.matrix_shares()
    return pd.DataFrame(
        {
            "observed": frame["observed"].map("{:.1%}".format),
            "no loyalty effect": frame["no loyalty effect (mean)"].map("{:.1%}".format),
            "95% range without effect": [f"{lo:.1%} to {hi:.1%}" for lo, hi in zip(frame["null 2.5%"], frame["null 97.5%"])],
        },
        index=frame.index,
    )


def format_matrix(matrix: LoyaltyMatrix, currency: str = "USD") -> pd.DataFrame:
    """The cells of the loyalty-profit matrix with percentages and the treatment."""
    table = matrix.table
    return pd.DataFrame(
        {
            "lifetime": table["duration"],
            "profit": table["profit"],
            "customers": table["customers"].map("{:,}".format),
            "share of customers": table["share_of_customers"].map("{:.1%}".format),
            "share of revenue": table["revenue_share"].map("{:.1%}".format),
            "share of profit": table["profit_share"].map("{:.1%}".format),
            f"mean profit ({currency})": table["mean_profit"].map("{:,.2f}".format),
            "recommended treatment": table["treatment"],
        },
        index=table.index,
    )


def format_robustness(robustness: pd.DataFrame) -> pd.DataFrame:
    """:func:`robustness_table` for reading: shares as percentages, estimates rounded."""
    out = robustness.copy()
    for column in out.columns:
        if column in ("long-lived with low profit", "high-profit that are short-lived", "censored lifetimes"):
            out[column] = robustness[column].map("{:.0%}".format)
        elif column.startswith(("H1 rho", "H2 slope", "H3 price difference", "phi")):
            out[column] = robustness[column].map("{:+.3f}".format)
        elif column == "Cramer's V":
            out[column] = robustness[column].map("{:.2f}".format)
        elif column == "customers used":
            out[column] = robustness[column].map("{:,}".format)
        elif column == "median duration":
            out[column] = robustness[column].map("{:,.0f}".format)
    return out


def conclusion(analysis: LoyaltyAnalysis, stability: pd.DataFrame | None = None) -> str:
    """The answer in words: which beliefs hold, the two shares of the matrix, what is fragile.

    Parameters
    ----------
    analysis : LoyaltyAnalysis
        The baseline analysis.
    stability : DataFrame, optional
        Output of :func:`verdict_stability`, to name the verdicts that depend on a choice.

    Returns
    -------
    str
        A short paragraph (Markdown).
    """
    verdicts = analysis.verdicts()["verdict"]
    held = [h for h, v in verdicts.items() if v == "supported"]
    against = [h for h, v in verdicts.items() if v == "contradicted"]
    silent = [h for h, v in verdicts.items() if v == "no evidence either way"]
    untested = [h for h, v in verdicts.items() if v == "not testable"]
    m = analysis.matrix
    versus = (
        "compared with a base with no loyalty effect fitted to the same data"
        if analysis.calibration is not None
        else "on classical tests that ignore the mechanical ties of P(alive) lifetimes (no calibration was run)"
    )
    text = (
        f"On this log, {versus}, **{len(held)} of {len(verdicts) - len(untested)} testable statements are supported** "
        f"({', '.join(held) or 'none'})"
        + (f"; **contradicted**: {', '.join(against)}" if against else "")
        + (f"; **no evidence either way**: {', '.join(silent)}" if silent else "")
        + ". "
        + (f"{', '.join(untested)} could not be tested. " if untested else "")
        + f"Not all loyal customers are profitable: **{m.share_long_low_profit:.0%}** of the long-lived customers are "
        f"in the low-profit group; and not all profitable customers are loyal: **{m.share_high_profit_short:.0%}** of "
        "the high-profit customers are short-lived."
    )
    if stability is not None:
        fragile = [h for h, row in stability.iterrows() if row["differs under"] != "none"]
        text += (
            f" The verdicts of {', '.join(fragile)} change with at least one analysis choice (robustness table): "
            "read them with care."
            if fragile
            else " No verdict changes with the analysis choices of the robustness table."
        )
    return text
