"""Helpers shared by the survival modules: error modes, column checks and text for people."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from crm_lib.exceptions import DataValidationError, ParamsError

logger = logging.getLogger(__name__)

EVENT_TIMES = ("last_purchase", "lapse_recognised")
#: Where a customer not (yet) lapsed is censored (see :func:`crm_lib.survival.time_to_churn`).
CENSORING_RULES = ("recognisable", "last_purchase")
ERROR_MODES = ("raise", "report")

#: Columns of :func:`time_to_churn` that are known at acquisition (candidate Cox covariates
#: and grouping columns).
ACQUISITION_COLUMNS = ("cohort", "first_order_amount", "first_order_quantity", "first_order_band", "channel")
#: Below this absolute correlation of scaled Schoenfeld residuals with time, a significant
#: proportional-hazards test is called a small drift in the verdict.
SMALL_PH_CORRELATION = 0.1
#: Acquisition columns that exist only when the log has a quantity / channel column.
OPTIONAL_LOG_COLUMNS = ("first_order_quantity", "channel")


def _check_errors_mode(errors: str) -> None:
    if errors not in ERROR_MODES:
        raise ParamsError(f"errors={errors!r} is not supported; use 'raise' or 'report'.")


def _require_columns(frame: pd.DataFrame, columns, what: str, knob: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ParamsError(
            f"{what}: column(s) {missing} not found; the table has {list(frame.columns)}. "
            f"Set {knob} in params to one of those."
        )


def _error_table(error: str) -> pd.DataFrame:
    """A one-cell table saying why a result is missing (its first clause; the full message
    is in the result's summary and verdict)."""
    return pd.DataFrame({"not available": [error.split(";")[0]]}, index=pd.Index(["reason"], name=""))


def _interval_text(lower: float, upper: float) -> str:
    if np.isnan(lower) and np.isnan(upper):
        return "n/a (the curve drops past 50% at once)"
    return f"{format_days(lower, 'not estimable')} to {format_days(upper, 'not estimable')}"


def format_days(days: float, missing: str = "not reached") -> str:
    """``"123 days"``; ``missing`` for NaN (``"not reached"``), ``"beyond the data"`` for inf."""
    if days is None or np.isnan(days):
        return missing
    if np.isinf(days):
        return "beyond the data"
    return f"{days:,.0f} days"

def format_p(p: float) -> str:
    """A p-value for a table: ``"<0.001"`` below one in a thousand."""
    if p is None or np.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p: float) -> str:
    """A p-value for a sentence: ``"p < 0.001"`` or ``"p = 0.042"``."""
    text = format_p(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"



def _followed(churn: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The customers with a follow-up time, and a note on those without one.

    :func:`~crm_lib.survival.time_to_churn` gives a NaN ``duration_days`` to customers
    acquired so late that no churn of theirs could be recognised yet.
    """
    missing = churn["duration_days"].isna()
    if not missing.any():
        return churn, []
    lapse = churn.attrs.get("lapse_days")
    within = f"the last {lapse} days" if lapse is not None else "the end of the data"
    note = (
        f"{int(missing.sum()):,} of {len(churn):,} customers left out: acquired within {within}, so no churn of "
        "theirs could be recognised yet."
    )
    if missing.all():
        raise DataValidationError(
            f"no customer can show a churn yet: all {len(churn):,} were acquired within {within}; lower lapse_days "
            "or use a longer log."
        )
    return churn[~missing], [note]
