"""The whole loyalty analysis in one call, and its robustness table."""
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
from crm_lib.loyalty.calibration import CalibratedTests, calibrated_from_bases, calibrated_tests, null_bases
from crm_lib.loyalty.hypotheses import HypothesisTests, test_hypotheses
from crm_lib.loyalty.lifetime import DAYS_PER_UNIT, check_lifetime_model
from crm_lib.loyalty.null import crossing_cache, observed_base
from crm_lib.loyalty.lifetime import lifetime_durations, lifetime_profit, tenure_panel
from crm_lib.loyalty.matrix import loyalty_profit_matrix

logger = logging.getLogger(__name__)

#: Above this many customers the loyalty analysis runs on a seeded random sample of them
#: (issue 17, item 2): every step (lifetimes, the bootstrap, the H2 panel, the null draws)
#: grows with the number of customers, so the sample bounds report 05's time
#: (benchmarks/bench_loyalty.py --scale). It is larger than CDNOW's 23,570 customers and
#: than the bases of validation/loyalty_size_power.py, which are used whole.
MAX_CUSTOMERS = 50_000


def sample_customers(
    transactions: pd.DataFrame, max_customers: int | None = MAX_CUSTOMERS, seed: int = 0,
    observation_end: str | pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, pd.Timestamp, str]:
    """All orders of a seeded random sample of ``max_customers`` customers, when there are more.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    max_customers : int or None
        Largest base analysed whole; None: always the whole base.
    seed : int
        Seed of ``numpy.random.default_rng`` that picks the customers (without replacement).
    observation_end : str or Timestamp, optional
        End of observation; the last transaction date of the whole log by default (fixed
        before sampling, so the sample keeps the log's window).

    Returns
    -------
    (DataFrame, Timestamp, str)
        The orders used, the observation end and a sentence for the report saying what
        was done ("" when the whole base is used).
    """
    end = pd.to_datetime(transactions["date"]).max() if observation_end is None else pd.Timestamp(observation_end)
    if max_customers is not None and int(max_customers) < 100:
        raise ParamsError(f"loyalty max_customers={max_customers!r}: use at least 100 customers, or None for the whole base.")
    ids = pd.unique(transactions["customer_id"])
    if max_customers is None or len(ids) <= int(max_customers):
        return transactions, end, ""
    chosen = np.random.default_rng(seed).choice(len(ids), int(max_customers), replace=False)
    sample = transactions.loc[transactions["customer_id"].isin(ids[chosen])]
    note = (
        f"The loyalty analysis uses a random sample of {int(max_customers):,} of the {len(ids):,} customers "
        f"(seed {seed}; {len(sample):,} of {len(transactions):,} transactions), and the bases with no loyalty effect "
        "are simulated for the same customers: every statistic, interval and share here carries the sampling error "
        f"of {int(max_customers):,} customers, and the verdicts are those of the sample."
    )
    logger.info(note)
    return sample, end, note


# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoyaltyAnalysis:
    """Everything the loyalty-versus-profit report shows, for one set of choices.

    Attributes
    ----------
    customers : DataFrame
        Per-customer lifetime, revenue, cost, profit, price, cost share and segment.
    panel : DataFrame
        Profit per customer and tenure period while alive.
    tests : HypothesisTests
        H1 to H4 with verdicts.
    matrix : LoyaltyMatrix
        The loyalty-profit matrix.
    settings : dict
        The choices: threshold, crossing rule, splits, margin, cost, model name.
    calibration : CalibratedTests or None
        H1-H4 and the matrix against bases with no loyalty effect: the verdicts rest on
        it (None when no spend model or ``null_draws=0`` was given; ``tests`` then only
        describe).
    sample_note : str
        A sentence for the report when the base was larger than ``max_customers`` and a
        random sample of customers was analysed (see :func:`sample_customers`); "" when
        every customer was used.
    """

    customers: pd.DataFrame
    panel: pd.DataFrame
    tests: HypothesisTests
    matrix: LoyaltyMatrix
    settings: dict
    calibration: CalibratedTests | None = None
    sample_note: str = ""

    def verdicts(self) -> pd.DataFrame:
        """The verdicts: calibrated when available, else those of the classical tests."""
        return (self.calibration or self.tests).verdicts()

    def summary(self) -> str:
        """Settings, lifetimes, verdicts and the matrix."""
        censored = self.customers["censored"].mean()
        head = (
            f"Loyalty versus profit: {len(self.customers):,} customers, model {self.settings.get('model', '?')}, "
            f"P(alive) threshold {self.settings['p_alive_threshold']}, {censored:.0%} of lifetimes censored"
        )
        parts = [head + (f"\n{self.sample_note}" if self.sample_note else ""), self.tests.summary(), self.matrix.summary()]
        if self.calibration is not None:
            parts.insert(1, self.calibration.summary())
        return "\n\n".join(parts)

    def to_frame(self) -> pd.DataFrame:
        """The per-customer table."""
        return self.customers.copy()


def loyalty_analysis(
    transactions: pd.DataFrame, model: Any, *, model_name: str = "Pareto/NBD",
    p_alive_threshold: float = 0.5, time_unit: str = "D", observation_end: str | pd.Timestamp | None = None,
    crossing: str = "last", gross_margin: float = 1.0, cost_per_order: float | None = None,
    duration_split: float | None = None, duration_quantile: float = 0.5,
    profit_split: float | None = None, profit_quantile: float = 0.5,
    tenure_period_days: int = 30, panel_end: str = "lifetime_end", cohort_freq: str = "M", currency: str = "USD",
    n_bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05, censored_lifetimes: str = "exclude",
    spend_model: Any = None, null_draws: int = 0, practical_effect: float = 0.05,
    max_customers: int | None = MAX_CUSTOMERS,
) -> LoyaltyAnalysis:
    """Lifetimes, profits, H1-H4 and the loyalty-profit matrix in one call.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    model : fitted model
        With ``conditional_probability_alive`` (see :func:`lifetime_durations`).
    model_name : str
        Shown in the settings and the robustness table.
    p_alive_threshold, time_unit, observation_end, crossing, cohort_freq
        See :func:`lifetime_durations`.
    gross_margin, cost_per_order
        See :func:`lifetime_profit`.
    duration_split, duration_quantile, profit_split, profit_quantile
        See :func:`loyalty_profit_matrix`; the duration split also defines long- and
        short-lived customers in H3 and H4.
    tenure_period_days : int
        Period length of the H2 panel.
    panel_end : {"lifetime_end", "last_purchase"}
        Where each customer's H2 panel stops (see :func:`tenure_panel`).
    currency : str
        Currency of the amounts.
    n_bootstrap, seed, alpha
        See :func:`test_hypotheses`.
    censored_lifetimes : {"exclude", "include"}
        ``"exclude"`` (default): the tests, the H2 panel and the matrix use only the
        customers whose lifetime ended before the observation end (see
        :func:`crm_lib.loyalty.null.base_statistics` for the bias this brings and why the
        calibration is still like with like). The per-customer table keeps everyone.
    spend_model : fitted Gamma-Gamma, optional
        With ``null_draws > 0``: the spend of the null bases (calibrated verdicts).
    null_draws : int
        Bases with no loyalty effect simulated for the calibrated verdicts (0: none; 249
        or more for a verdict at 5% after Holm over five statistics).
    practical_effect : float
        Smallest effect that makes a calibrated verdict (see
        :func:`crm_lib.loyalty.calibration.calibrate`).
    max_customers : int or None
        A larger base is analysed on a seeded random sample of this many customers
        (:func:`sample_customers`; ``result.sample_note`` says so); None: always the whole base.

    Returns
    -------
    LoyaltyAnalysis
    """
    if censored_lifetimes not in ("exclude", "include"):
        raise ParamsError(f"censored_lifetimes={censored_lifetimes!r} is not known; use 'exclude' or 'include'.")
    transactions, observation_end, sample_note = sample_customers(transactions, max_customers, seed, observation_end)
    durations = lifetime_durations(transactions, model, p_alive_threshold=p_alive_threshold, time_unit=time_unit,
                                   observation_end=observation_end, crossing=crossing, cohort_freq=cohort_freq)
    customers = lifetime_profit(transactions, durations, gross_margin=gross_margin, cost_per_order=cost_per_order)
    used = customers.loc[~customers["censored"]] if censored_lifetimes == "exclude" else customers
    panel = tenure_panel(transactions, used, gross_margin=gross_margin, cost_per_order=cost_per_order,
                         period_days=tenure_period_days, panel_end=panel_end, skip_first_period=True)
    tests = test_hypotheses(used, panel, duration_split=duration_split, duration_quantile=duration_quantile,
                            currency=currency, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha)
    matrix = loyalty_profit_matrix(used, duration_split=duration_split, duration_quantile=duration_quantile,
                                   profit_split=profit_split, profit_quantile=profit_quantile)
    customers = customers.assign(segment=matrix.segment)
    settings = {
        "model": model_name, "p_alive_threshold": p_alive_threshold, "crossing": crossing, "time_unit": time_unit,
        "duration_cut": matrix.duration_cut, "profit_cut": matrix.profit_cut, "gross_margin": gross_margin,
        "cost_per_order": cost_per_order, "cost_source": customers["cost_source"].iloc[0],
        "tenure_period_days": tenure_period_days, "panel_end": panel_end, "censored_lifetimes": censored_lifetimes,
        "null_draws": null_draws, "max_customers": max_customers,
    }
    calibration = None
    if spend_model is not None and null_draws > 0:
        calibration = calibrated_tests(
            transactions, model, spend_model, null_draws=null_draws, seed=seed, observation_end=observation_end,
            time_unit=time_unit, alpha=alpha, practical_effect=practical_effect,
            **_pipeline(settings, duration_split, profit_split, duration_quantile, profit_quantile),
        )
    return LoyaltyAnalysis(customers, panel, tests, matrix, settings, calibration, sample_note)


def _pipeline(settings: dict, duration_split, profit_split, duration_quantile, profit_quantile) -> dict:
    """The choices of :func:`crm_lib.loyalty.null.base_statistics`, from an analysis' settings."""
    return {
        "p_alive_threshold": settings["p_alive_threshold"],
        "crossing": settings["crossing"],
        "gross_margin": settings["gross_margin"],
        "cost_per_order": settings["cost_per_order"],
        "duration_split": duration_split,
        "duration_quantile": duration_quantile,
        "profit_split": profit_split,
        "profit_quantile": profit_quantile,
        "tenure_period_days": settings["tenure_period_days"],
        "panel_end": settings["panel_end"],
        "censored": settings["censored_lifetimes"],
    }


def robustness_table(
    transactions: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    spend_model: Any = None,
    null_draws: int = 29,
    baseline_model: str | None = None,
    thresholds: tuple[float, ...] = (0.3, 0.7),
    split_quantiles: tuple[float, ...] = (1 / 3, 2 / 3),
    crossings: tuple[str, ...] = ("first",),
    panel_ends: tuple[str, ...] = ("last_purchase",),
    p_alive_threshold: float = 0.5,
    duration_quantile: float = 0.5,
    profit_quantile: float = 0.5,
    crossing: str = "last",
    panel_end: str = "lifetime_end",
    n_bootstrap: int = 0,
    max_customers: int | None = MAX_CUSTOMERS,
    **settings: Any,
) -> pd.DataFrame:
    """The verdicts again with one choice changed at a time, valid lifetime models only.

    Rows: the baseline (first model in ``models``, the given threshold, split quantiles,
    crossing rule and H2 panel end), then each other threshold, each other split
    quantile (applied to both duration and profit), each other crossing rule, each other
    H2 panel end, and each other model. A model that keeps one-time buyers alive for
    ever (BG/NBD) is left out, and named in ``table.attrs["left_out"]``: comparing it
    with a valid one would be comparing a method with a mistake.

    With a ``spend_model``, the verdicts are calibrated against ``null_draws`` bases
    with no loyalty effect, simulated once from the baseline Pareto/NBD and shared by
    every row; with so few draws the p-value is read off a normal distribution fitted
    to the draws (``p_method="normal"`` of
    :func:`crm_lib.loyalty.calibration.calibrated_from_bases`), not their ranks; the
    p-values (raw, then Holm) are in ``table.attrs["p_values"]`` (one row per variant).
    On 139 stationary logs of 2,000 customers with 29 draws, every row's raw p-values
    rejected at 1.4-4.3% at a nominal 5%, and each row reached a false verdict in at
    most 2.2% of the logs (validation/results/loyalty_size_power.md). The mean cost-share
    difference once used for H4 rejected at up to 13%; H4 now compares ranks.
    Without one, the rows carry the classical verdicts.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    models : mapping of str to fitted model
        E.g. ``{"Pareto/NBD": pnbd, "MBG/NBD": mbgnbd}``; the first (or
        ``baseline_model``) is the baseline.
    spend_model : fitted Gamma-Gamma, optional
    null_draws : int
        Null bases of the calibrated rows.
    thresholds, split_quantiles, crossings, panel_ends : tuples
        The alternatives tried.
    p_alive_threshold, duration_quantile, profit_quantile, crossing, panel_end
        The baseline choices.
    n_bootstrap : int
        Bootstrap resamples for H1 intervals of the classical rows.
    max_customers : int or None
        As in :func:`loyalty_analysis` (the same seed picks the same sample); the
        sentence is in ``table.attrs["sample_note"]``.
    **settings
        ``time_unit``, ``gross_margin``, ``cost_per_order``, ``observation_end``,
        ``tenure_period_days``, ``censored_lifetimes``, ``alpha``, ``practical_effect``,
        ``seed``, ... (as in :func:`loyalty_analysis`).

    Returns
    -------
    DataFrame
        One row per variant: ``variant``, ``changed``, the verdicts of H1-H4 and of the
        matrix (M), the observed statistics (``H1 rho``, ``H2 slope``, ``H3 price
        difference``, ``phi``) with, when calibrated, their null means, the matrix
        shares, the censored share and the median duration.
    """
    if not models:
        raise ParamsError("robustness_table needs at least one fitted model, e.g. {'Pareto/NBD': model}.")
    transactions, end, sample_note = sample_customers(
        transactions, max_customers, int(settings.get("seed", 0)), settings.get("observation_end"))
    settings = {**settings, "observation_end": end}
    horizon = _horizon(transactions, settings)
    valid, left_out = {}, {}
    for name, model in models.items():
        try:
            check_lifetime_model(model, horizon)
            valid[name] = model
        except ModelFitError as error:
            left_out[name] = str(error)
    base_name = baseline_model or next(iter(models))
    if base_name not in valid:
        raise ModelFitError(f"robustness_table: the baseline model {base_name} is not a valid lifetime model: {left_out[base_name]}")
    base = {
        "model": base_name,
        "p_alive_threshold": p_alive_threshold,
        "duration_quantile": duration_quantile,
        "profit_quantile": profit_quantile,
        "crossing": crossing,
        "panel_end": panel_end,
    }
    variants = [("baseline", "none", base)]
    variants += [(f"P(alive) threshold {t:g}", "threshold", {**base, "p_alive_threshold": t}) for t in thresholds if t != p_alive_threshold]
    variants += [
        (f"splits at the {q:.0%} quantile", "split point", {**base, "duration_quantile": q, "profit_quantile": q})
        for q in split_quantiles
        if q != duration_quantile
    ]
    variants += [(f"crossing rule '{c}'", "crossing rule", {**base, "crossing": c}) for c in crossings if c != crossing]
    variants += [
        (f"H2 panel up to the {e.replace('_', ' ')}", "H2 panel end", {**base, "panel_end": e})
        for e in panel_ends
        if e != panel_end
    ]
    variants += [(f"model {m}", "model", {**base, "model": m}) for m in valid if m != base_name]
    row = _calibrated_rows(transactions, valid, spend_model, null_draws, base_name, settings) if spend_model is not None else None
    rows, p_values = [], {}
    for label, changed, choice in variants:
        values = row(choice) if row is not None else _classical_row(transactions, valid, choice, n_bootstrap, settings)
        p_values[label] = values.pop("p values", None)
        rows.append({"variant": label, "changed": changed, **values})
    table = pd.DataFrame(rows).set_index("variant")
    table.attrs["left_out"] = left_out
    table.attrs["null_draws"] = null_draws if spend_model is not None else 0
    table.attrs["sample_note"] = sample_note
    if row is not None:
        table.attrs["p_values"] = pd.DataFrame(p_values).T.rename_axis("variant")
    return table


def _horizon(transactions: pd.DataFrame, settings: dict) -> float:
    dates = pd.to_datetime(transactions["date"])
    end = dates.max() if settings.get("observation_end") is None else pd.Timestamp(settings["observation_end"])
    return (end - dates.min()).days / DAYS_PER_UNIT[settings.get("time_unit", "D")]


def _classical_row(transactions, models, choice, n_bootstrap, settings) -> dict:
    keep = {k: v for k, v in settings.items() if k not in ("null_draws", "practical_effect", "spend_model")}
    analysis = loyalty_analysis(
        transactions,
        models[choice["model"]],
        model_name=choice["model"],
        p_alive_threshold=choice["p_alive_threshold"],
        duration_quantile=choice["duration_quantile"],
        profit_quantile=choice["profit_quantile"],
        crossing=choice["crossing"],
        panel_end=choice["panel_end"],
        n_bootstrap=n_bootstrap,
        **keep,
    )
    m = analysis.matrix
    return {
        **{f"{h.hypothesis} verdict": h.verdict for h in analysis.tests.hypotheses},
        "H1 rho": analysis.tests["H1"].primary.estimate,
        "H2 slope": analysis.tests["H2"].primary.estimate,
        "H3 price difference": analysis.tests["H3"].primary.estimate,
        "long-lived with low profit": m.share_long_low_profit,
        "high-profit that are short-lived": m.share_high_profit_short,
        "Cramer's V": m.cramers_v,
        "censored lifetimes": float(analysis.customers["censored"].mean()),
        "median duration": float(analysis.customers["duration"].median()),
    }


def _calibrated_rows(transactions, models, spend_model, null_draws, base_name, settings):
    """A function of one choice giving its calibrated row; the null is simulated once."""
    time_unit = settings.get("time_unit", "D")
    observed_log = observed_base(transactions, observation_end=settings.get("observation_end"), time_unit=time_unit)
    # Simulated once, kept in memory: shared by every row (few draws, so this stays small).
    bases = list(null_bases(observed_log, models[base_name], spend_model, time_unit=time_unit, n_draws=null_draws,
                            seed=int(settings.get("seed", 0))))
    caches: dict = {}

    def row(choice: dict) -> dict:
        model = models[choice["model"]]
        key = (choice["model"], choice["p_alive_threshold"])
        if key not in caches:
            caches[key] = crossing_cache(observed_log, model, choice["p_alive_threshold"], time_unit)
        result = calibrated_from_bases(
            observed_log, bases, model, time_unit=time_unit, alpha=settings.get("alpha", 0.05),
            practical_effect=settings.get("practical_effect", 0.05), cache=caches[key], p_method="normal",
            p_alive_threshold=choice["p_alive_threshold"], crossing=choice["crossing"],
            gross_margin=settings.get("gross_margin", 1.0), cost_per_order=settings.get("cost_per_order"),
            duration_split=settings.get("duration_split"), duration_quantile=choice["duration_quantile"],
            profit_split=settings.get("profit_split"), profit_quantile=choice["profit_quantile"],
            tenure_period_days=settings.get("tenure_period_days", 30), panel_end=choice["panel_end"],
            censored=settings.get("censored_lifetimes", "exclude"),
        )
        obs, null = result.observed, result.null.mean()
        frame = result.to_frame()
        return {
            "p values": pd.concat([frame["p_value"], frame["p_holm"].add_suffix(" Holm")]),
            **{f"{t.hypothesis} verdict": t.verdict for t in result.tests},
            "H1 rho": obs["rho"], "H1 rho, null": null["rho"],
            "H2 slope": obs["slope"], "H2 slope, null": null["slope"],
            "H3 price difference": obs["price_difference"], "H3 price difference, null": null["price_difference"],
            "phi": obs["phi"], "phi, null": null["phi"],
            "long-lived with low profit": obs["share_long_low_profit"],
            "high-profit that are short-lived": obs["share_high_profit_short"],
            "censored lifetimes": obs["censored_share"],
            "customers used": int(obs["customers_used"]),
        }

    return row
