"""Scoring the distinct histories: the step the DuckDB and Spark engines share.

An engine reduces its base to the distinct ``(frequency, recency, T)`` histories and the
distinct ``(frequency, monetary_value)`` pairs, scores them here in numpy, and joins the
scores back to every customer; the values equal :func:`crm_lib.clv.customer_value_table`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def score_histories(
    histories: pd.DataFrame,
    transaction_model: Any,
    *,
    horizon_periods: float,
    horizon_months: int,
    discount_rate_monthly: float,
    time_unit: str,
) -> pd.DataFrame:
    """Add ``p_alive``, ``expected_purchases`` and ``discounted_purchases`` to distinct histories.

    Parameters
    ----------
    histories : DataFrame
        Distinct ``frequency``, ``recency``, ``T`` rows; changed in place and returned.
    transaction_model : BTYDFit
        Fitted BG/NBD, MBG/NBD or Pareto/NBD.
    horizon_periods, horizon_months, discount_rate_monthly, time_unit
        As in :func:`crm_lib.clv.customer_value_table`.

    Returns
    -------
    DataFrame
        ``histories`` with the three columns added.
    """
    from crm_lib.clv import discounted_expected_purchases

    x, tx, age = (histories[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    histories["p_alive"] = np.asarray(transaction_model.conditional_probability_alive(x, tx, age), dtype=float)
    histories["expected_purchases"] = np.asarray(
        transaction_model.conditional_expected_number_of_purchases_up_to_time(horizon_periods, x, tx, age), dtype=float)
    histories["discounted_purchases"] = np.asarray(discounted_expected_purchases(
        transaction_model, x, tx, age, horizon_months=horizon_months, discount_rate_monthly=discount_rate_monthly,
        time_unit=time_unit), dtype=float)
    return histories


def score_spend(spend: pd.DataFrame, spend_model: Any) -> pd.DataFrame:
    """Add ``expected_spend_per_purchase`` (Gamma-Gamma) to distinct ``frequency``, ``monetary_value`` pairs.

    ``spend`` is changed in place and returned.
    """
    spend["expected_spend_per_purchase"] = np.asarray(spend_model.conditional_expected_average_profit(
        spend["frequency"].to_numpy(dtype=float), spend["monetary_value"].to_numpy(dtype=float)), dtype=float)
    return spend
