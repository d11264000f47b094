"""Holdout validation of the BTYD models: which model predicts the holdout best, and how
well it tracks repeat purchases over time and across customers.

Figures follow Fader, Hardie & Lee (2005a), "Counting your customers the easy way":
holdout purchases by calibration frequency (figure 4), weekly and cumulative repeat
transactions (figures 2-3) and the histogram of repeat purchases (figure 1).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from crm_lib import format as fmt
from crm_lib.columns import require_columns
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.models import MODEL_LABELS, SUMMARY_HINT, BTYDFit, fit_model
from crm_lib.summary import period_numbers, sorted_id_runs

logger = logging.getLogger(__name__)

__all__ = [
    "ModelComparison",
    "holdout_validation",
    "holdout_by_calibration_frequency",
    "repeat_transactions_tracking",
    "repeat_purchase_counts",
]


def _calibration_view(cal_holdout: pd.DataFrame) -> pd.DataFrame:
    require_columns(cal_holdout, ["frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout"],
                    "holdout validation", "Build it with crm_lib.summary.calibration_holdout_summary.")
    return cal_holdout.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"})


@dataclass(frozen=True)
class ModelComparison:
    """Fit and holdout error of each model; the winner has the lowest holdout RMSE.

    Attributes
    ----------
    table : DataFrame
        One row per model: n_params, log_likelihood, aic, bic, converged, holdout_mae,
        holdout_rmse, predicted_holdout_total, actual_holdout_total, aggregate_error_pct,
        error (message of a failed fit).
    winner : str
        Model with the lowest per-customer holdout RMSE (or the one requested).
    runner_up : str or None
    margin_pct : float
        How much lower the winner's RMSE is than the runner-up's, in percent.
    fits : dict
        The fitted calibration models by name.
    criterion : str
    """

    table: pd.DataFrame
    winner: str
    runner_up: str | None
    margin_pct: float
    fits: dict = field(repr=False)
    criterion: str = "holdout_rmse"

    def summary(self) -> str:
        best = self.table.loc[self.winner]
        text = (f"{MODEL_LABELS[self.winner]} has the lowest holdout RMSE ({fmt.number(best['holdout_rmse'], 4)} "
                f"repeat purchases per customer")
        if self.runner_up is not None:
            text += (f", {fmt.number(self.margin_pct, 1)}% below {MODEL_LABELS[self.runner_up]} at "
                     f"{fmt.number(self.table.loc[self.runner_up, 'holdout_rmse'], 4)}")
        return text + ")."

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def formatted(self) -> pd.DataFrame:
        """The comparison table for people: model names, rounded figures, readable headers."""
        t = self.table
        out = pd.DataFrame(index=[MODEL_LABELS.get(m, m) for m in t.index])
        out.index.name = "model"
        column = lambda name: t.get(name, pd.Series(np.nan, t.index))  # noqa: E731
        out["log-likelihood"] = [fmt.number(v, 1) for v in column("log_likelihood")]
        out["AIC"] = [fmt.number(v, 1) for v in column("aic")]
        out["BIC"] = [fmt.number(v, 1) for v in column("bic")]
        out["converged"] = [fmt.yes_no(bool(c)) for c in t["converged"]]
        out["holdout MAE"] = [fmt.number(v, 4) for v in column("holdout_mae")]
        out["holdout RMSE"] = [fmt.number(v, 4) for v in column("holdout_rmse")]
        out["predicted total"] = [fmt.number(v) for v in column("predicted_holdout_total")]
        out["actual total"] = [fmt.number(v) for v in column("actual_holdout_total")]
        # aggregate_error_pct is already in percent.
        out["aggregate error"] = [fmt.number(v, 1, signed=True) + ("" if fmt.is_missing(v) else "%")
                                  for v in column("aggregate_error_pct")]
        out["chosen"] = ["✓" if m == self.winner else "" for m in t.index]
        if (t["error"].fillna("") != "").any():
            out["error"] = t["error"].fillna("").to_numpy()
        return out


def holdout_validation(
    cal_holdout: pd.DataFrame,
    models: Sequence[str] = ("bg_nbd", "mbg_nbd", "pareto_nbd"),
    *,
    choose: str = "auto",
    penalizer_coef: float = 0.0,
) -> ModelComparison:
    """Fit each model on the calibration period and score its holdout predictions.

    Parameters
    ----------
    cal_holdout : DataFrame
        From :func:`crm_lib.summary.calibration_holdout_summary`.
    models : sequence of str
        Models to compare.
    choose : str
        ``"auto"`` picks the lowest per-customer holdout RMSE; a model name forces it
        (the table still shows all).
    penalizer_coef : float
        Passed to every fit.

    Returns
    -------
    ModelComparison

    Raises
    ------
    ModelFitError
        When no model could be fitted (each failure is also in ``table.error``).
    """
    if choose != "auto" and choose not in models:
        raise ParamsError(f"model={choose!r}: use 'auto' or one of {', '.join(models)}.")
    calib = _calibration_view(cal_holdout)
    actual = calib["frequency_holdout"].to_numpy(dtype=float)
    duration = calib["duration_holdout"].to_numpy(dtype=float)
    n = len(calib)
    rows, fits = {}, {}
    for name in models:
        try:
            fit = fit_model(calib, name, penalizer_coef=penalizer_coef)
        except ModelFitError as error:
            logger.warning("holdout validation: %s", error)
            rows[name] = {"converged": False, "error": str(error)}
            continue
        predicted = np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(
            duration, calib["frequency"], calib["recency"], calib["T"]), dtype=float)
        residual = predicted - actual
        fits[name] = fit
        rows[name] = {
            "n_params": len(fit.params_),
            "log_likelihood": fit.log_likelihood_,
            "aic": fit.aic_,
            "bic": fit.bic_,
            "converged": fit.converged_,
            "holdout_mae": float(np.mean(np.abs(residual))),
            "holdout_rmse": float(np.sqrt(np.mean(residual**2))),
            "predicted_holdout_total": float(predicted.sum()),
            "actual_holdout_total": float(actual.sum()),
            "aggregate_error_pct": float(100 * (predicted.sum() - actual.sum()) / actual.sum()) if actual.sum() else np.nan,
            "error": "",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    if not fits:
        raise ModelFitError(
            f"holdout validation: none of {', '.join(models)} could be fitted on {n:,} customers; "
            + " | ".join(table["error"])
        )
    ranked = table.loc[list(fits)].sort_values("holdout_rmse")
    if choose == "auto":
        winner = ranked.index[0]
    elif choose in fits:
        winner = choose
    else:
        raise ModelFitError(f"model={choose!r} was requested but could not be fitted: {table.loc[choose, 'error']}")
    others = [m for m in ranked.index if m != winner]
    runner_up = others[0] if others else None
    margin = (float(100 * (table.loc[runner_up, "holdout_rmse"] - table.loc[winner, "holdout_rmse"])
                    / table.loc[runner_up, "holdout_rmse"]) if runner_up else np.nan)
    return ModelComparison(table, winner, runner_up, margin, fits)


def holdout_by_calibration_frequency(cal_holdout: pd.DataFrame, fit: BTYDFit, *, max_frequency: int = 7) -> pd.DataFrame:
    """Mean actual and predicted holdout repeat purchases per calibration-frequency group.

    FHL (2005a), figure 4. Customers with ``max_frequency`` or more calibration repeat
    purchases are pooled into the last group.

    Returns
    -------
    DataFrame
        Indexed by ``frequency_cal`` group (0..max_frequency): n_customers, actual, predicted.
    """
    calib = _calibration_view(cal_holdout)
    predicted = np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(
        calib["duration_holdout"], calib["frequency"], calib["recency"], calib["T"]), dtype=float)
    group = np.minimum(calib["frequency"].to_numpy(), max_frequency).astype(int)
    frame = pd.DataFrame({"group": group, "actual": calib["frequency_holdout"].to_numpy(), "predicted": predicted})
    out = frame.groupby("group").agg(n_customers=("actual", "size"), actual=("actual", "mean"),
                                     predicted=("predicted", "mean"))
    out.index.name = "frequency_cal"
    out.attrs["max_frequency"] = max_frequency
    return out


def _period_start(periods: np.ndarray, time_unit: str) -> pd.DatetimeIndex:
    """Inverse of crm_lib.summary.period_numbers: start of each period."""
    periods = np.asarray(periods, dtype=np.int64)
    if time_unit == "D":
        return pd.DatetimeIndex(periods.astype("datetime64[D]"))
    if time_unit == "h":
        return pd.DatetimeIndex(periods.astype("datetime64[h]"))
    return pd.DatetimeIndex((periods * 7 - 3).astype("datetime64[D]"))


def repeat_transactions_tracking(
    transactions: pd.DataFrame,
    fit: BTYDFit,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str = "W",
    customer_col: str = "customer_id",
    date_col: str = "date",
) -> pd.DataFrame:
    """Repeat transactions per period, actual vs model, across calibration and holdout.

    FHL (2005a), figures 2 and 3: the cohort is every customer whose first purchase is on
    or before ``calibration_end``; the model's expectation for a customer first seen in
    period f is E[X(p - f)] (eq. 9) at the end of period p, summed over the cohort.
    Purchases in the same period are merged, as in the summary.

    Returns
    -------
    DataFrame
        Indexed by period start date: actual, expected, actual_cumulative,
        expected_cumulative, holdout (bool).
    """
    dates = pd.to_datetime(transactions[date_col])
    observation_end = dates.max() if observation_end is None else pd.Timestamp(observation_end)
    periods = period_numbers(dates, time_unit)
    cal_end_period = int(period_numbers(pd.Series([pd.Timestamp(calibration_end)]), time_unit)[0])
    end_period = int(period_numbers(pd.Series([observation_end]), time_unit)[0])
    # Integer customer codes (Arrow text is encoded without one Python string per row), then
    # sorted integer keys instead of grouping millions of rows: the same counts.
    runs = sorted_id_runs(transactions[customer_col])  # a loaded log: ids in order, numbered by their runs
    codes = runs[0] if runs is not None else np.asarray(
        pd.factorize(transactions[customer_col], use_na_sentinel=False)[0], dtype=np.int64)
    date_values = dates.to_numpy()
    inside = date_values <= np.datetime64(observation_end)
    codes, periods, date_values = codes[inside], periods[inside], date_values[inside]
    in_cohort = np.zeros(int(codes.max()) + 1 if len(codes) else 0, dtype=bool)
    in_cohort[codes[date_values <= np.datetime64(pd.Timestamp(calibration_end))]] = True
    if not in_cohort.any():
        raise DataValidationError(f"tracking: no customer made a first purchase on or before {calibration_end}.")
    keep = in_cohort[codes]
    low = int(periods[keep].min())
    span = int(periods[keep].max()) - low + 1
    pairs = codes[keep] * span + (periods[keep] - low)
    if not (pairs[1:] >= pairs[:-1]).all():  # a loaded log is in this order already
        pairs.sort()
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]  # distinct (customer, period), sorted
    pair_customer, pair_period = pairs // span, pairs % span + low
    first = np.r_[True, pair_customer[1:] != pair_customer[:-1]]
    cohort = pair_period[first]  # each cohort customer's first period
    start_period = int(cohort.min())
    all_periods = np.arange(start_period, end_period + 1)
    # Repeat purchases: every later period with a purchase (the pairs after each customer's first).
    actual = np.bincount(pair_period[~first] - start_period, minlength=len(all_periods))[: len(all_periods)].astype(float)
    # Expected cumulative repeat purchases: sum over first-purchase periods f of n_f * E[X(p - f)].
    n_first = np.bincount(cohort - start_period, minlength=len(all_periods))[: len(all_periods)].astype(float)
    ages = np.arange(len(all_periods), dtype=float)
    curve = np.asarray(fit.expected_number_of_purchases_up_to_time(ages), dtype=float)
    curve[0] = 0.0
    expected_cum = np.convolve(n_first, curve)[: len(all_periods)]
    expected = np.diff(expected_cum, prepend=0.0)
    out = pd.DataFrame(
        {
            "actual": actual,
            "expected": expected,
            "actual_cumulative": actual.cumsum(),
            "expected_cumulative": expected_cum,
            "holdout": all_periods > cal_end_period,
        },
        index=pd.Index(_period_start(all_periods, time_unit), name="period_start"),
    )
    out.attrs.update(time_unit=time_unit, calibration_end=str(pd.Timestamp(calibration_end).date()),
                     n_customers=int(len(cohort)))
    return out


def repeat_purchase_counts(
    summary: pd.DataFrame, fit: BTYDFit, *, max_frequency: int = 7, n_simulations: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Actual vs model-expected number of customers by number of repeat purchases.

    The expected counts are the mean of ``n_simulations`` seeded simulations from the
    fitted model with each customer's own age T (as lifetimes' ``plot_period_transactions``
    does, with one simulation). The last group pools ``max_frequency`` and more.

    Returns
    -------
    DataFrame
        Indexed by ``frequency`` (0..max_frequency): actual, expected.
    """
    require_columns(summary, ["frequency", "T"], "repeat purchase counts", SUMMARY_HINT)
    groups = np.arange(max_frequency + 1)
    actual = np.bincount(np.minimum(summary["frequency"].to_numpy(int), max_frequency), minlength=max_frequency + 1)
    expected = np.zeros(max_frequency + 1)
    for i in range(n_simulations):
        simulated = fit.simulate(summary["T"].to_numpy(), seed=seed + i)
        expected += np.bincount(np.minimum(simulated["frequency"].to_numpy(int), max_frequency),
                                minlength=max_frequency + 1)
    return pd.DataFrame({"actual": actual.astype(float), "expected": expected / n_simulations},
                        index=pd.Index(groups, name="frequency"))


# ---------------------------------------------------------------------------------------
# CLV, equity, concentration
# ---------------------------------------------------------------------------------------
