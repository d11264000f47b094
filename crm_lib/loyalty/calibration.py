"""Calibrated verdicts: each statistic against its distribution in bases with no loyalty effect.

A P(alive) lifetime ties duration and profit mechanically (the lifetime lasts at least
to the last purchase, and profit is summed over the same purchases), its last periods
are quiet by construction, and the first period always holds the first order. A
classical test compares with "no association at all", which such a base never shows.
Here each statistic is compared with its distribution in bases simulated from the
fitted Pareto/NBD and Gamma-Gamma (same customers, first-purchase dates and window,
nothing changing with tenure) and run through the identical pipeline
(:mod:`crm_lib.loyalty.null`). The p-value is the two-sided Monte-Carlo p-value
``min(1, 2 min(1 + #{null >= observed}, 1 + #{null <= observed}) / (B + 1))``
(Davison & Hinkley 1997, eq. 4.11, doubled for two sides), Holm-adjusted over the
family H1-H4 and the matrix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import ParamsError
from crm_lib.loyalty.hypotheses import _fmt, _fmt_p, holm_adjust
from crm_lib.loyalty.null import (
    CELL_COLUMNS,
    STATISTICS,
    CrossingCache,
    base_statistics,
    crossing_cache,
    null_base,
    observed_base,
)

#: The claims, the statistic in words and the sign the loyalty belief predicts.
CLAIMS = {
    "H1": ("longer lifetimes bring more lifetime profit", "Spearman rho of duration and profit", +1),
    "H2": ("profit per period rises with tenure", "profit change per tenure period", +1),
    "H3": ("long-lived customers pay higher prices", "P(price of a long-lived > a short-lived customer) - 0.5", +1),
    "H4": ("long-lived customers cost less to serve, as a share of revenue",
           "P(cost share of a long-lived > a short-lived customer) - 0.5", -1),
    "M": ("long-lived customers are the high-profit ones (loyalty-profit matrix)", "phi of long-lived x high-profit", +1),
}
#: Plain-words verdicts (issue 15, item 6).
CALIBRATED_VERDICTS = ("supported", "contradicted", "no evidence either way", "not testable")


def monte_carlo_p_value(observed: float, null: np.ndarray) -> float:
    """Two-sided Monte-Carlo p-value of ``observed`` among the ``null`` draws, with the +1 correction.

    Examples
    --------
    >>> monte_carlo_p_value(5.0, np.arange(99.0))   # 6 of 99 draws at or below 5: 2 * 7 / 100
    0.14
    >>> monte_carlo_p_value(200.0, np.arange(99.0))  # beyond every draw: 2 / 100
    0.02
    """
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or len(null) == 0:
        return float("nan")
    above = 1 + int((null >= observed).sum())
    below = 1 + int((null <= observed).sum())
    return float(min(1.0, 2 * min(above, below) / (len(null) + 1)))


def normal_theory_p_value(observed: float, null: np.ndarray) -> float:
    """Two-sided p-value of ``observed`` as a new draw from a normal fitted to the ``null`` draws.

    With B draws of mean m and standard deviation s (ddof 1), a new draw from the same
    normal satisfies (observed - m) / (s sqrt(1 + 1/B)) ~ Student t with B - 1 degrees
    of freedom (the normal prediction interval for one future observation; Hahn &
    Meeker 1991, "Statistical Intervals", ch. 4). Plugging s in as if it were the true deviation
    (a plain normal) rejects too often with few draws: about 6.4% at a nominal 5% with
    29 draws, 1.7% at 1%. Unlike the rank p-value, it can go below 2 / (B + 1), so the
    robustness table can reach a verdict with few draws; its size under the stationary
    null is measured in validation/loyalty_size_power.py (``--scenario robustness``).

    Examples
    --------
    >>> round(normal_theory_p_value(2.0, np.array([-1.0, 0.0, 1.0])), 3)   # t = 2 / sqrt(4/3), 2 df
    0.225
    """
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or len(null) < 2:
        return float("nan")
    sd = float(np.std(null, ddof=1))
    if sd <= 0:
        return float("nan")
    t = abs(observed - float(np.mean(null))) / (sd * np.sqrt(1.0 + 1.0 / len(null)))
    return float(2 * stats.t.sf(t, len(null) - 1))


def _p_value(observed: float, null: np.ndarray, method: str) -> float:
    if method == "rank":
        return monte_carlo_p_value(observed, null)
    if method == "normal":
        return normal_theory_p_value(observed, null)
    raise ParamsError(f"p_method={method!r} is not known; use 'rank' or 'normal'.")


@dataclass(frozen=True)
class CalibratedTest:
    """One statistic of the loyalty battery against its null distribution.

    Attributes
    ----------
    hypothesis, claim : str
        ``"H1"``-``"H4"`` or ``"M"`` (the matrix) and the loyalty belief.
    statistic_name : str
    observed : float
        The statistic on the log.
    null_mean, null_low, null_high : float
        Mean and 2.5% / 97.5% quantiles of the statistic in the null draws.
    null_draws : int
    p_value, p_holm : float
        Two-sided Monte-Carlo p-value and its Holm adjustment over the family.
    effect : float
        Observed minus null mean, on a scale common to all (see ``effect_name``).
    effect_name : str
    expected_sign : int
        +1 when the belief predicts a statistic above the null, -1 below.
    verdict : str
        ``"supported"``, ``"contradicted"``, ``"no evidence either way"`` or ``"not testable"``.
    explanation : str
        One sentence with both numbers.
    n : int
        Customers used (completed lifetimes by default).
    censored_share : float
        Share of lifetimes still running at the observation end.
    note : str
        A caveat (H4 not separate from H3, ...) or "".
    """

    hypothesis: str
    claim: str
    statistic_name: str
    observed: float
    null_mean: float
    null_low: float
    null_high: float
    null_draws: int
    p_value: float
    p_holm: float
    effect: float
    effect_name: str
    expected_sign: int
    verdict: str
    explanation: str
    n: int
    censored_share: float
    note: str = ""

    def summary(self) -> str:
        """Claim, verdict and the sentence with both numbers."""
        return f"{self.hypothesis}: {self.claim}\n  {self.verdict}: {self.explanation}" + (f"\n  note: {self.note}" if self.note else "")


@dataclass(frozen=True)
class CalibratedTests:
    """H1-H4 and the matrix, each against a base with no loyalty effect.

    Attributes
    ----------
    tests : tuple of CalibratedTest
    observed : Series
        Every statistic of :func:`crm_lib.loyalty.null.base_statistics` on the log.
    null : DataFrame
        The same, one row per null draw.
    alpha, practical_effect : float
    settings : dict
    """

    tests: tuple[CalibratedTest, ...]
    observed: pd.Series
    null: pd.DataFrame
    alpha: float
    practical_effect: float
    settings: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> CalibratedTest:
        return next(t for t in self.tests if t.hypothesis == name)

    def verdicts(self) -> pd.DataFrame:
        """One row per hypothesis: claim, verdict, the sentence and the note."""
        return pd.DataFrame(
            [{"hypothesis": t.hypothesis, "claim": t.claim, "verdict": t.verdict, "explanation": t.explanation, "note": t.note}
             for t in self.tests]
        ).set_index("hypothesis")

    def to_frame(self) -> pd.DataFrame:
        """Every number of every test, one row per hypothesis."""
        return pd.DataFrame([asdict(t) for t in self.tests]).set_index("hypothesis")

    def matrix_shares(self) -> pd.DataFrame:
        """Observed share of each matrix cell beside its null mean and 95% range."""
        rows = []
        labels = {"share_long_low_profit": "long-lived with low profit", "share_high_profit_short": "high-profit that are short-lived"}
        for column in CELL_COLUMNS + list(labels):
            null = self.null[column].dropna()
            rows.append({
                "share": labels.get(column, column.removeprefix("share ")),
                "observed": float(self.observed[column]),
                "no loyalty effect (mean)": float(null.mean()),
                "null 2.5%": float(null.quantile(0.025)),
                "null 97.5%": float(null.quantile(0.975)),
            })
        return pd.DataFrame(rows).set_index("share")

    def summary(self) -> str:
        """Every hypothesis with its verdict and both numbers."""
        return "\n".join(t.summary() for t in self.tests)


def _effect(hypothesis: str, observed: pd.Series, null_mean: float, period_days: int) -> tuple[float, str]:
    """Observed minus null mean on a common scale: rho, phi and P(long > short) - 0.5 as
    they are, H2 per year of tenure relative to the mean profit per period."""
    excess = float(observed[STATISTICS[hypothesis]]) - null_mean
    if hypothesis != "H2":
        return excess, f"excess {({'H1': 'rho', 'M': 'phi'}).get(hypothesis, 'P(long > short) - 0.5')} over the null"
    level = float(observed["mean_period_profit"])
    return excess * 365.25 / period_days / abs(level) if level else np.nan, "excess change per year, share of mean profit per period"


def _verdict(sign: int, p_holm: float, effect: float, alpha: float, practical: float) -> str:
    if not np.isfinite(p_holm) or not np.isfinite(effect) or p_holm >= alpha or abs(effect) < practical:
        return "no evidence either way"
    return "supported" if np.sign(effect) == sign else "contradicted"


def _sentence(test: dict, alpha: float, practical: float) -> str:
    name = test["statistic_name"]
    numbers = (
        f"{name} is {_fmt(test['observed'])}; a base with no loyalty effect would give {_fmt(test['null_mean'])} "
        f"(95% range {_fmt(test['null_low'])} to {_fmt(test['null_high'])}, {test['null_draws']} draws), "
        f"calibrated p {_fmt_p(test['p_value'])}, Holm p {_fmt_p(test['p_holm'])}, n = {test['n']:,}"
    )
    if test["verdict"] == "no evidence either way" and np.isfinite(test["p_holm"]) and test["p_holm"] < alpha:
        numbers += f"; the difference is significant but smaller than the practical effect ({abs(test['effect']):.3f} < {practical:g})"
    return numbers + "."


def calibrate(
    observed: pd.Series, null: pd.DataFrame, *, alpha: float = 0.05, practical_effect: float = 0.05,
    tenure_period_days: int = 30, cost_source: str = "cost per order", price_per: str = "order", p_method: str = "rank",
) -> tuple[CalibratedTest, ...]:
    """Null mean, range, calibrated and Holm p-values, effect and verdict of each statistic.

    Parameters
    ----------
    observed : Series
        One row of :func:`crm_lib.loyalty.null.base_statistics` (the log).
    null : DataFrame
        The null draws.
    alpha : float
        Significance level, on Holm-adjusted p-values.
    practical_effect : float
        Smallest effect that counts, as an excess over the null mean: rho (H1), phi (M),
        P(long > short) - 0.5 (H3, H4); for H2 the excess change per year as a share of the
        mean profit per period (:func:`_effect`).
    tenure_period_days : int
    cost_source : {"cost column", "cost per order", "none"}
        With one assumed cost per order, H4 is the same spend data as H3 cut another way.
    price_per : {"unit", "order"}

    Returns
    -------
    tuple of CalibratedTest
    """
    rows = []
    for hypothesis, (claim, statistic_name, sign) in CLAIMS.items():
        column = STATISTICS[hypothesis]
        values = null[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        obs = float(observed[column])
        if hypothesis == "H3":
            statistic_name = f"P(price per {price_per} of a long-lived > a short-lived customer) - 0.5"
        testable = np.isfinite(obs) and len(values) > 0 and not (hypothesis == "H4" and cost_source == "none")
        mean = float(values.mean()) if testable else np.nan
        effect, effect_name = _effect(hypothesis, observed, mean, tenure_period_days) if testable else (np.nan, "")
        rows.append({
            "hypothesis": hypothesis, "claim": claim, "statistic_name": statistic_name, "observed": obs,
            "null_mean": mean,
            "null_low": float(np.quantile(values, 0.025)) if testable else np.nan,
            "null_high": float(np.quantile(values, 0.975)) if testable else np.nan,
            "null_draws": int(len(values)), "p_value": _p_value(obs, values, p_method) if testable else np.nan,
            "effect": effect, "effect_name": effect_name, "expected_sign": sign,
            "n": int(observed["customers_used"]), "censored_share": float(observed["censored_share"]),
        })
    for row, p in zip(rows, holm_adjust(np.array([r["p_value"] for r in rows]))):
        row["p_holm"] = float(p)
        testable = np.isfinite(row["p_value"])
        row["verdict"] = _verdict(row["expected_sign"], p, row["effect"], alpha, practical_effect) if testable else "not testable"
        row["note"] = ""
        if row["hypothesis"] == "H4" and cost_source == "cost per order":
            row["note"] = (
                "not separate evidence from H3: with one assumed cost per order, the cost share is cost_per_order / "
                "mean order value, the same spend data cut another way."
            )
        if row["hypothesis"] == "H4" and cost_source == "none":
            row["explanation"] = "no cost column and no cost_per_order in params: the cost to serve is unknown."
        elif testable:
            row["explanation"] = _sentence(row, alpha, practical_effect)
        else:
            row["explanation"] = "the statistic could not be computed (too few customers in a group)."
    return tuple(CalibratedTest(**row) for row in rows)


def calibrated_tests(
    transactions: pd.DataFrame, model: Any, spend_model: Any, *, null_draws: int = 249, seed: int = 0,
    observation_end: str | pd.Timestamp | None = None, time_unit: str = "D",
    alpha: float = 0.05, practical_effect: float = 0.05, **pipeline: Any,
) -> CalibratedTests:
    """H1-H4 and the matrix on the log, each against ``null_draws`` bases with no loyalty effect.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    model : fitted Pareto/NBD
        The lifetime model; its ``params_`` (r, alpha, s, beta) also drive the null.
    spend_model : fitted Gamma-Gamma
        ``params_`` (p, q, v) of the spend per order in the null.
    null_draws : int
        Simulated bases (the smallest two-sided p-value is 2 / (null_draws + 1); with
        Holm over 5 statistics at 5%, 199 or more are needed for any verdict).
    seed : int
    observation_end, time_unit
        As in :func:`crm_lib.loyalty.lifetime.lifetime_durations` (``time_unit`` "D" or "W").
    alpha : float
        Significance level of the verdicts, on Holm-adjusted p-values.
    practical_effect : float
        Smallest effect that makes a verdict: excess rho, phi or P(long > short) - 0.5 over
        the null mean; for H2 the excess change per year as a share of the mean profit per period.
    **pipeline
        Passed to :func:`crm_lib.loyalty.null.base_statistics` (threshold, splits, margin, ...).

    Returns
    -------
    CalibratedTests

    Raises
    ------
    ParamsError
        The lifetime model is not a Pareto/NBD (the null simulates one).
    ModelFitError
        The lifetime model keeps one-time buyers alive for ever.
    """
    observed_log = observed_base(transactions, observation_end=observation_end, time_unit=time_unit)
    bases = null_bases(observed_log, model, spend_model, time_unit=time_unit, n_draws=null_draws, seed=seed)
    return calibrated_from_bases(observed_log, bases, model, time_unit=time_unit, alpha=alpha,
                                 practical_effect=practical_effect, **pipeline)


#: Draws simulated and summarised at once (bounds the memory: about 70,000 orders a draw on CDNOW).
CHUNK_DRAWS = 25


def null_bases(observed_log, model: Any, spend_model: Any, *, time_unit: str = "D", n_draws: int = 199, seed: int = 0):
    """The null draws as a lazy sequence of chunks of :func:`crm_lib.loyalty.null.null_base` (seeded per chunk)."""
    params = getattr(model, "params_", None)
    if params is None or list(getattr(params, "index", [])) != ["r", "alpha", "s", "beta"]:
        raise ParamsError(
            f"{type(model).__name__}: the calibrated loyalty tests simulate the null from a fitted Pareto/NBD "
            "(params r, alpha, s, beta); set lifetime_model: pareto_nbd in params."
        )
    if int(n_draws) < 1:
        raise ParamsError(f"null_draws={n_draws!r} must be at least 1 (249 or more for a verdict); fix it in params.")
    spend = getattr(spend_model, "params_", None)
    if spend is None or list(getattr(spend, "index", [])) != ["p", "q", "v"]:
        raise ParamsError(f"{type(spend_model).__name__}: pass a fitted Gamma-Gamma spend model (crm_lib.clv.fit_spend_model).")
    purchase, spend = tuple(params.to_numpy()), tuple(spend.to_numpy())
    sizes = [min(CHUNK_DRAWS, n_draws - start) for start in range(0, int(n_draws), CHUNK_DRAWS)]
    return _Chunks(observed_log, purchase, spend, time_unit, sizes, seed)


class _Chunks:
    """Re-iterable chunks of null draws: each iteration simulates them again (same seeds, same draws)."""

    def __init__(self, observed_log, purchase, spend, time_unit, sizes, seed):
        self.args = (observed_log, purchase, spend, time_unit, sizes, seed)

    def __iter__(self):
        observed_log, purchase, spend, time_unit, sizes, seed = self.args
        for i, size in enumerate(sizes):
            yield null_base(observed_log, purchase, spend, time_unit=time_unit, n_draws=size, seed=seed * 7919 + i)


def calibrated_from_bases(
    observed_log, bases, model: Any, *, time_unit: str = "D", alpha: float = 0.05, practical_effect: float = 0.05,
    cache: CrossingCache | None = None, p_method: str = "rank", **pipeline: Any,
) -> CalibratedTests:
    """:func:`calibrated_tests` on null bases already built (an iterable of :class:`NullBase` chunks).

    ``p_method="normal"`` reads the p-value off a normal fitted to the null draws
    (:func:`normal_theory_p_value`, a Student t prediction p-value) instead of their
    ranks: the robustness table uses it with few draws, where the rank cannot go below
    2 / (draws + 1).
    """
    if not 0 < alpha < 1 or practical_effect < 0:
        raise ParamsError(f"significance_level={alpha!r} must be in (0, 1) and practical_effect={practical_effect!r} >= 0.")
    if cache is None:
        cache = crossing_cache(observed_log, model, pipeline.get("p_alive_threshold", 0.5), time_unit)
    observed = base_statistics(observed_log, model, time_unit=time_unit, cache=cache, **pipeline).iloc[0]
    null = pd.concat([base_statistics(b, model, time_unit=time_unit, cache=cache, **pipeline) for b in bases],
                     ignore_index=True)
    if observed_log.cost is not None:
        cost_source = "cost column"
    else:
        cost_source = "cost per order" if pipeline.get("cost_per_order") is not None else "none"
    tests = calibrate(observed, null, alpha=alpha, practical_effect=practical_effect,
                      tenure_period_days=int(pipeline.get("tenure_period_days", 30)), cost_source=cost_source,
                      price_per="unit" if observed_log.units is not None else "order", p_method=p_method)
    return CalibratedTests(tests, observed, null, alpha, practical_effect, {"time_unit": time_unit, **pipeline})
