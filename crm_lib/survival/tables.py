"""Calendar-period retention and attrition rates per acquisition cohort."""
from __future__ import annotations

import logging

import pandas as pd

from crm_lib.exceptions import DataValidationError

from crm_lib.survival._common import _require_columns

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# Calendar-period retention per cohort (the rates themselves are crm_lib.kpi's)
# ---------------------------------------------------------------------------------------


def retention_rates_by_cohort(
    transactions: pd.DataFrame, *, period: str = "Q", cohort_period: str = "M", min_cohort_size: int = 20
) -> pd.DataFrame:
    """Period-on-period retention and attrition rates of each acquisition cohort.

    The definitions are those of :func:`crm_lib.kpi.activity_by_period` (retention rate
    of period p: the share of the customers active in p - 1 who are active again in p;
    attrition = 1 - retention), applied to each cohort's customers separately.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase.
    period : {"W", "M", "Q", "Y"}
        Calendar period of the rates.
    cohort_period : {"W", "M", "Q", "Y"}
        Period of the first purchase that defines a cohort.
    min_cohort_size : int
        Smaller cohorts are left out (their rates are noise).

    Returns
    -------
    DataFrame
        Long format: ``cohort``, ``period`` (str), ``cohort_customers``,
        ``active_customers``, ``retained_customers``, ``retention_rate``,
        ``attrition_rate``; periods before a cohort's second period are left out.
    """
    from crm_lib.kpi import activity_by_period, period_ordinals

    _require_columns(transactions, ["customer_id", "date"], "transactions", "column_map")
    first = pd.to_datetime(transactions.groupby("customer_id")["date"].transform("min"))
    # Integer period ordinals, named once per cohort: no Period object or string per row.
    cohort = period_ordinals(first, cohort_period)
    frames = []
    for ordinal, part in transactions.groupby(cohort, sort=True):
        name = str(pd.PeriodIndex.from_ordinals([int(ordinal)], freq=cohort_period)[0])
        size = part["customer_id"].nunique()
        if size < min_cohort_size:
            continue
        activity = activity_by_period(part, period)
        rates = activity[["active_customers", "retained_customers", "retention_rate", "attrition_rate"]].dropna()
        frames.append(rates.reset_index().assign(cohort=name, cohort_customers=size))
    if not frames:
        raise DataValidationError(
            f"no acquisition cohort ({cohort_period}) has {min_cohort_size} customers and two {period} periods; "
            "use a coarser cohort_period or lower min_group_size."
        )
    out = pd.concat(frames, ignore_index=True)
    out["period"] = out["period"].astype(str)
    return out[["cohort", "period", "cohort_customers", "active_customers", "retained_customers",
                "retention_rate", "attrition_rate"]]

