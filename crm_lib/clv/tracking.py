"""Yesterday's predictions scored today: store every run's per-customer predictions, score them later.

A scheduled run (``crm-workbench run ... --keep-runs N``) stores the predictions of its
value model in the private folder, never next to the reports::

    .crm_private/predictions/<run>/<observation_end>.parquet   one row per customer (real ids)
    .crm_private/predictions/<run>/<observation_end>.json      the models' parameters, horizon, equity

A later run over a longer window scores each stored set against the transactions that
arrived since its observation end. Only the elapsed part of the horizon is scored: the
prediction for ``t`` elapsed periods is the model's conditional expectation
E[X(T, T + t) | x, t_x, T] (Fader, Hardie & Lee 2005a, eq. 10; Fader & Hardie note 009,
eq. 41, for Pareto/NBD), recomputed from the stored parameters and histories, not the
stored 52-week figure scaled down. Purchases are counted as the models count them: one per
customer and period (:func:`crm_lib.summary.calibration_holdout_summary`).

The scores (:class:`PredictionScore`) are aggregates only (no ids): total predicted and
actual repeat purchases with a predictive interval, mean absolute error per customer
(with a naive "past rate" benchmark), calibration by decile of the prediction, a weekly
tracking curve, and predicted vs actual revenue.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_lib.exceptions import DataValidationError, ParamsError

logger = logging.getLogger(__name__)

__all__ = [
    "PredictionSet",
    "PredictionScore",
    "prediction_folder",
    "store_prediction_set",
    "load_prediction_sets",
    "score_prediction_set",
    "score_stored_predictions",
    "prune_prediction_sets",
    "track_run_predictions",
]

#: Columns of a stored prediction set (one row per customer, indexed by the real id).
PREDICTION_COLUMNS = ("frequency", "recency", "T", "monetary_value", "p_alive", "expected_purchases",
                      "expected_spend_per_purchase", "clv")
#: Where prediction sets live under the private root.
PREDICTIONS_FOLDER = "predictions"
#: The file the scores of a run are written to in its (public) report folder: aggregates only.
TRACKING_FILE = "tracking.json"


@dataclass
class PredictionSet:
    """One run's per-customer predictions and what is needed to recompute them for any elapsed time.

    Attributes
    ----------
    observation_end : str
        Last day of the data the predictions were made from (``YYYY-MM-DD``).
    customers : DataFrame
        Indexed by customer id: :data:`PREDICTION_COLUMNS`.
    meta : dict
        ``time_unit``, ``horizon_periods``, ``transaction_model`` (``name``, ``params``,
        ``log_params_covariance``), ``spend_model`` (``name``, ``params``), ``equity`` (or None).
    """

    observation_end: str
    customers: pd.DataFrame
    meta: dict[str, Any]

    def transaction_model(self):
        """The fitted transaction model, rebuilt from the stored parameters (no refit)."""
        from crm_lib.models import MODELS

        spec = self.meta["transaction_model"]
        model = MODELS[spec["name"]]()
        model.params_ = pd.Series([spec["params"][name] for name in model.param_names],
                                  index=list(model.param_names), name="estimate")
        model.log_params_covariance_ = np.asarray(spec["log_params_covariance"], dtype=float)
        return model

    def expected_purchases(self, elapsed_periods: float, model=None) -> np.ndarray:
        """E[X(T, T + t) | history] per customer for ``t = elapsed_periods`` (FHL 2005a, eq. 10)."""
        from crm_lib.models.base import collapse_histories

        model = model or self.transaction_model()
        c = self.customers
        (x, tx, age), _, inverse = collapse_histories(c["frequency"], c["recency"], c["T"])
        if elapsed_periods <= 0:
            return np.zeros(len(c))
        values = model.conditional_expected_number_of_purchases_up_to_time(float(elapsed_periods), x, tx, age)
        return np.asarray(values, dtype=float)[inverse]


def prediction_folder(private_root: str | Path, run_name: str) -> Path:
    """``<private root>/predictions/<run>/`` (owner-only; real customer ids)."""
    return Path(private_root) / PREDICTIONS_FOLDER / run_name


def store_prediction_set(values: pd.DataFrame, transaction_model, spend_model, folder: str | Path, *,
                         observation_end: str, time_unit: str, horizon_periods: float,
                         equity=None) -> Path:
    """Write one run's predictions: ``<folder>/<observation_end>.parquet`` and ``.json``.

    Parameters
    ----------
    values : DataFrame
        The customer value table (:func:`crm_lib.clv.customer_value_table`), indexed by
        the real customer id.
    transaction_model, spend_model
        The fitted models the table came from.
    folder : str or Path
        A folder under the private root (:func:`prediction_folder`); created owner-only.
    observation_end : str
        ``YYYY-MM-DD``; the file name, so a rerun of the same end replaces its set.
    time_unit : str
    horizon_periods : float
    equity : CustomerEquity, optional
        Its estimate and intervals are kept for a later comparison with the realised value.

    Returns
    -------
    Path
        The parquet file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    table = values[list(PREDICTION_COLUMNS)].copy()
    table.index = table.index.astype(str)
    table.index.name = "customer_id"
    meta = {
        "observation_end": observation_end,
        "time_unit": time_unit,
        "horizon_periods": float(horizon_periods),
        "transaction_model": {
            "name": transaction_model.name,
            "params": {k: float(v) for k, v in transaction_model.params_.items()},
            "log_params_covariance": np.asarray(transaction_model.log_params_covariance_, dtype=float).tolist(),
        },
        "spend_model": {"name": spend_model.name, "params": {k: float(v) for k, v in spend_model.params_.items()}},
        # The CLV terms of customer_value_table, to value the purchases that happen the same way.
        "clv": {key: values.attrs[key] for key in ("horizon_months", "discount_rate_monthly", "gross_margin")
                if key in values.attrs},
        "equity": None if equity is None else {
            key: float(getattr(equity, key)) for key in
            ("estimate", "expected_lower", "expected_upper", "predictive_lower", "predictive_upper", "level")
        } | {"horizon_months": int(equity.horizon_months)},
    }
    path = folder / f"{observation_end}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    table.to_parquet(tmp)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps(meta, sort_keys=True, indent=1), encoding="utf-8")
    return path


def stored_ends(folder: str | Path, *, before: str | None = None) -> list[str]:
    """Observation ends of the sets stored in ``folder`` (both files present), oldest first, before ``before``."""
    folder = Path(folder)
    ends = sorted(p.stem for p in folder.glob("*.parquet") if p.with_suffix(".json").is_file()) \
        if folder.is_dir() else []
    return [end for end in ends if before is None or end < before]


def load_prediction_sets(folder: str | Path, *, before: str | None = None) -> list[PredictionSet]:
    """The prediction sets stored in ``folder``, oldest first (only those ending before ``before``)."""
    folder = Path(folder)
    return [PredictionSet(end, pd.read_parquet(folder / f"{end}.parquet"),
                          json.loads((folder / f"{end}.json").read_text(encoding="utf-8")))
            for end in stored_ends(folder, before=before)]


@dataclass
class PredictionScore:
    """How one stored prediction set did against the transactions that arrived after it.

    Attributes
    ----------
    observation_end : str
        End of the data the predictions were made from.
    scored_to : str
        End of the data they are scored against.
    elapsed_periods, horizon_periods : float
        The part of the horizon that has passed, and the whole horizon (time units).
    time_unit : str
    model : str
    n_customers : int
    predicted_purchases, actual_purchases : float
        Total repeat purchases (one per customer and period) over the elapsed part.
    interval_lower, interval_upper : float
        Central ``level`` predictive interval of the total (parameter draws and each
        customer's simulated future); ``inside`` says whether the actual total is in it.
    mae, mae_naive : float
        Mean absolute error per customer of the model and of the naive prediction
        ``frequency / T * t`` (each customer keeps buying at their past rate).
    predicted_revenue, actual_revenue : float
        Expected purchases times the Gamma-Gamma expected spend, and the actual spend of
        these customers after ``observation_end``.
    deciles : list of dict
        Customers in ten equal groups by predicted purchases: ``decile``, ``customers``,
        ``predicted`` and ``actual`` mean purchases per customer.
    curve : list of dict
        ``period`` (1..elapsed), cumulative ``predicted`` and ``actual`` repeat purchases.
    equity : dict or None
        The stored equity interval and, once the whole horizon has passed, whether the
        realised value fell inside it; None when no equity was stored.
    """

    observation_end: str
    scored_to: str
    elapsed_periods: float
    horizon_periods: float
    time_unit: str
    model: str
    n_customers: int
    predicted_purchases: float
    actual_purchases: float
    interval_lower: float
    interval_upper: float
    level: float
    mae: float
    mae_naive: float
    predicted_revenue: float
    actual_revenue: float
    deciles: list[dict[str, float]] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)
    equity: dict[str, Any] | None = None

    @property
    def inside(self) -> bool:
        """Whether the actual total fell inside the predictive interval."""
        return bool(self.interval_lower <= self.actual_purchases <= self.interval_upper)

    @property
    def error_pct(self) -> float:
        """(predicted - actual) / actual of the total, in percent (NaN without purchases)."""
        return 100 * (self.predicted_purchases - self.actual_purchases) / self.actual_purchases \
            if self.actual_purchases else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (aggregates only)."""
        return {**asdict(self), "inside": self.inside}

    def summary(self) -> str:
        """One line for people."""
        from crm_lib.format import number

        return (f"predictions of {self.observation_end} scored to {self.scored_to} ({number(self.elapsed_periods, 1)} of "
                f"{number(self.horizon_periods)} {self.time_unit}): predicted {number(self.predicted_purchases)} "
                f"repeat purchases ({self.level:.0%} interval {number(self.interval_lower)} to "
                f"{number(self.interval_upper)}), actual {number(self.actual_purchases)}; MAE {self.mae:.3f} "
                f"per customer (naive {self.mae_naive:.3f})")


def _predictive_interval(pset: PredictionSet, model, elapsed: float, *, n_draws: int, level: float,
                         seed: int) -> tuple[float, float]:
    """Central ``level`` interval of total purchases in the elapsed periods: a parameter draw, then
    every customer's future simulated from the posterior given the history (as in customer_equity)."""
    from crm_lib.clv.value import simulate_future_purchases

    rng = np.random.default_rng(seed)
    c = pset.customers
    draws = model.draw_params(n_draws, rng)
    totals = np.empty(n_draws)
    for i, params in enumerate(draws):
        counts = simulate_future_purchases(model.with_params(params), c["frequency"].to_numpy(),
                                           c["recency"].to_numpy(), c["T"].to_numpy(),
                                           horizon_periods=elapsed, seed=seed + 1 + i)
        totals[i] = counts.sum()
    tail = (1 - level) / 2
    return float(np.quantile(totals, tail)), float(np.quantile(totals, 1 - tail))


#: Discrete-time models (one purchase opportunity a period): their predictions are not scored here,
#: their expectation takes whole opportunities and there is no predictive simulation for them.
DISCRETE_MODELS = frozenset({"bg_bb"})

#: Days in one period of each time unit.
DAYS_PER_PERIOD = {"D": 1.0, "W": 7.0, "h": 1.0 / 24}


def _after(pset: PredictionSet, transactions: pd.DataFrame, elapsed: float, time_unit: str) -> pd.DataFrame:
    """Purchases of the set's customers in the ``elapsed`` periods after its end: one row per customer and
    period (the first purchase of the period, its date, the period's spend), as the models count them."""
    from crm_lib.summary import period_numbers

    start = pd.Timestamp(pset.observation_end) + pd.Timedelta(days=1)
    until = start + pd.Timedelta(days=elapsed * DAYS_PER_PERIOD[time_unit])
    ids = transactions["customer_id"].astype(str)
    keep = ((transactions["date"] >= start) & (transactions["date"] < until)
            & ids.isin(pset.customers.index)).to_numpy()
    tx = pd.DataFrame({"customer_id": ids[keep].to_numpy(), "date": transactions["date"][keep].to_numpy(),
                       "amount": transactions["amount"][keep].to_numpy(dtype=float)})
    tx["period"] = period_numbers(tx["date"], time_unit)
    return (tx.sort_values(["customer_id", "date"], kind="stable")
            .groupby(["customer_id", "period"], sort=True).agg(date=("date", "first"), amount=("amount", "sum"))
            .reset_index())


def _realised_equity(pset: PredictionSet, transactions: pd.DataFrame) -> float:
    """The discounted gross profit the set's customers yielded over its CLV horizon: each purchase's
    amount x gross margin / (1 + d)^k in its month k after the set's end (as the expected CLV and
    its simulated realisations in :func:`crm_lib.clv.customer_equity` count them)."""
    from crm_lib.clv.value import PERIODS_PER_MONTH

    terms, time_unit = pset.meta["clv"], pset.meta["time_unit"]
    start = pd.Timestamp(pset.observation_end) + pd.Timedelta(days=1)
    days_per_month = PERIODS_PER_MONTH[time_unit] * DAYS_PER_PERIOD[time_unit]
    known = transactions["customer_id"].astype(str).isin(pset.customers.index).to_numpy()
    days = ((transactions["date"] - start) / pd.Timedelta(days=1)).to_numpy() + 1  # the first day is day 1
    month = np.ceil(days / days_per_month)
    inside = known & (month >= 1) & (month <= terms["horizon_months"])
    amounts = transactions["amount"].to_numpy(dtype=float)[inside]
    return float(terms["gross_margin"] * np.sum(amounts / (1 + terms["discount_rate_monthly"]) ** month[inside]))


def _curve(pset: PredictionSet, model, purchases: pd.DataFrame, elapsed: float, time_unit: str) -> list[dict]:
    """Cumulative predicted and actual repeat purchases after each whole period since the set's end
    (and at the end of the data)."""
    start = pd.Timestamp(pset.observation_end) + pd.Timedelta(days=1)
    steps = [float(k) for k in range(1, int(np.floor(elapsed)) + 1)]
    if not steps or steps[-1] < elapsed:
        steps.append(float(elapsed))
    days_since = ((purchases["date"] - start) / pd.Timedelta(days=1)).to_numpy() + 1  # the end day counts whole
    return [{"period": k, "predicted": float(pset.expected_purchases(k, model).sum()),
             "actual": float((days_since <= k * DAYS_PER_PERIOD[time_unit] + 1e-9).sum())} for k in steps]


def score_prediction_set(pset: PredictionSet, transactions: pd.DataFrame, scored_to: str | pd.Timestamp, *,
                         n_draws: int = 100, level: float = 0.9, seed: int = 0) -> PredictionScore:
    """Score one stored prediction set against the transactions up to ``scored_to``.

    Parameters
    ----------
    pset : PredictionSet
    transactions : DataFrame
        ``customer_id``, ``date``, ``amount``: the current log (it may start before the set's end).
    scored_to : str or Timestamp
        Last day of the current data (included).
    n_draws : int
        Simulated futures for the predictive interval of the total.
    level : float
        Coverage of that interval.
    seed : int

    Returns
    -------
    PredictionScore

    Raises
    ------
    DataValidationError
        ``scored_to`` is not after the set's end.
    ParamsError
        The set's model is a discrete-time one (:data:`DISCRETE_MODELS`): not scored.
    """
    scored_to = pd.Timestamp(scored_to).normalize()
    if scored_to <= pd.Timestamp(pset.observation_end):
        raise DataValidationError(f"predictions of {pset.observation_end}: nothing to score them against, the data "
                                  f"end on {scored_to:%Y-%m-%d}; score them in a run over a later window.")
    name = pset.meta["transaction_model"]["name"]
    if name in DISCRETE_MODELS:
        raise ParamsError(f"predictions of {pset.observation_end}: {name} is a discrete-time model (whole purchase "
                          "opportunities, no predictive simulation); its predictions are not scored. Use bg_nbd, "
                          "mbg_nbd or pareto_nbd as the value model to have them tracked.")
    time_unit = pset.meta["time_unit"]
    model = pset.transaction_model()
    horizon = pset.meta["horizon_periods"]
    # The elapsed time exactly (days since the set's last day), not whole periods: a run at the end of
    # each month is 4.3 to 4.4 weeks after the last. Scored over the horizon at most.
    since = (scored_to - pd.Timestamp(pset.observation_end)).days / DAYS_PER_PERIOD[time_unit]
    elapsed = min(since, float(horizon))
    purchases = _after(pset, transactions, elapsed, time_unit)
    c = pset.customers
    actual = pd.DataFrame({
        "purchases": purchases.groupby("customer_id").size().reindex(c.index, fill_value=0).astype(float),
        "spend": purchases.groupby("customer_id")["amount"].sum().reindex(c.index, fill_value=0.0),
    })
    predicted = pset.expected_purchases(elapsed, model)
    naive = np.where(c["T"] > 0, c["frequency"] / c["T"].where(c["T"] > 0, 1.0), 0.0) * elapsed
    order = pd.Series(predicted).rank(method="first")
    decile = pd.qcut(order, min(10, len(order)), labels=False) + 1  # ten groups (fewer for a tiny base)
    by_decile = pd.DataFrame({"d": decile.to_numpy(), "p": predicted, "a": actual["purchases"].to_numpy()}).groupby("d")
    deciles = [{"decile": int(d), "customers": int(len(g)), "predicted": float(g["p"].mean()),
                "actual": float(g["a"].mean())} for d, g in by_decile]
    lower, upper = _predictive_interval(pset, model, elapsed, n_draws=n_draws, level=level, seed=seed)
    equity = pset.meta.get("equity")
    if equity is not None:
        from crm_lib.clv.value import PERIODS_PER_MONTH

        months = since / PERIODS_PER_MONTH[time_unit]
        complete = bool(months >= equity["horizon_months"] and "clv" in pset.meta)
        realised = _realised_equity(pset, transactions) if complete else None
        equity = {**equity, "complete": complete, "realised": realised,
                  "inside": None if realised is None else
                  bool(equity["predictive_lower"] <= realised <= equity["predictive_upper"])}
    return PredictionScore(
        observation_end=pset.observation_end, scored_to=f"{scored_to:%Y-%m-%d}", elapsed_periods=elapsed,
        horizon_periods=horizon, time_unit=time_unit, model=pset.meta["transaction_model"]["name"],
        n_customers=int(len(c)), predicted_purchases=float(predicted.sum()),
        actual_purchases=float(actual["purchases"].sum()), interval_lower=lower, interval_upper=upper, level=level,
        mae=float(np.abs(predicted - actual["purchases"].to_numpy()).mean()),
        mae_naive=float(np.abs(naive - actual["purchases"].to_numpy()).mean()),
        predicted_revenue=float((predicted * c["expected_spend_per_purchase"].to_numpy()).sum()),
        actual_revenue=float(actual["spend"].sum()), deciles=deciles,
        curve=_curve(pset, model, purchases, elapsed, time_unit), equity=equity,
    )


def score_stored_predictions(folder: str | Path, transactions: pd.DataFrame, scored_to: str | pd.Timestamp,
                             **options: Any) -> list[PredictionScore]:
    """Score every prediction set in ``folder`` that ends before ``scored_to`` (oldest first)."""
    scored_to = pd.Timestamp(scored_to)
    scores = []
    for pset in load_prediction_sets(folder, before=f"{scored_to:%Y-%m-%d}"):
        if pset.meta["transaction_model"]["name"] in DISCRETE_MODELS:
            logger.warning("predictions of %s not scored: %s is a discrete-time model (whole purchase opportunities, "
                           "no predictive simulation)", pset.observation_end, pset.meta["transaction_model"]["name"])
            continue
        scores.append(score_prediction_set(pset, transactions, scored_to, **options))
    return scores


def prune_prediction_sets(folder: str | Path, *, keep: int, before: str) -> list[str]:
    """Delete all but the newest ``keep`` sets ending before ``before``; return the ends deleted."""
    ends = stored_ends(folder, before=before)
    dropped = ends[: max(0, len(ends) - keep)]
    for end in dropped:
        for suffix in (".parquet", ".json"):
            Path(folder, f"{end}{suffix}").unlink(missing_ok=True)
        logger.info("predictions of %s deleted (keeping the last %d runs)", end, keep + 1)
    return dropped


def track_run_predictions(ctx, private_root: str | Path, run_name: str, report_dir: str | Path, *,
                          keep_runs: int | None = None) -> list[PredictionScore]:
    """The runner's hook: score earlier prediction sets, store this run's, write ``tracking.json``.

    Uses the run context's cached objects only: when no notebook of the run computed the
    customer values (the value model), no prediction set is stored, so nothing is refitted.

    Parameters
    ----------
    ctx : RunContext
        This run's context (same knobs and cache as its notebooks).
    private_root : str or Path
        The private folder; sets go to :func:`prediction_folder`.
    run_name : str
    report_dir : str or Path
        The report being built (staging); ``tracking.json`` holds the scores (no ids).
    keep_runs : int, optional
        The history's retention: the sets of the ``keep_runs - 1`` runs before this one are
        scored, older ones deleted (None: all are kept and scored).

    Returns
    -------
    list of PredictionScore
    """
    folder = prediction_folder(private_root, run_name)
    log = ctx.log
    end = f"{log.observation_end:%Y-%m-%d}"
    if keep_runs is not None:
        prune_prediction_sets(folder, keep=keep_runs - 1, before=end)
    seed = int(ctx.knobs.get("seed", 0))
    scores = score_stored_predictions(folder, log.transactions, log.observation_end, seed=seed)
    if (ctx.cache_dir / "customer_values.pkl").is_file():
        equity = ctx.equity if (ctx.cache_dir / "equity.pkl").is_file() else None
        store_prediction_set(ctx.customer_values, ctx.transaction_model, ctx.spend_model, folder,
                             observation_end=end, time_unit=log.time_unit, horizon_periods=ctx.horizon_periods,
                             equity=equity)
    else:
        logger.info("no prediction set stored for %s: no notebook of this run computed the customer values", end)
    payload = {"run": run_name, "observation_end": end, "scores": [s.to_dict() for s in scores]}
    Path(report_dir, TRACKING_FILE).write_text(json.dumps(payload, sort_keys=True, indent=1) + "\n",
                                               encoding="utf-8")
    return scores
