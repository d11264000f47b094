"""Cox proportional hazards on covariates known at acquisition, and its proportional-hazards check."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.format import column_label

from crm_lib.survival._common import (
    OPTIONAL_LOG_COLUMNS,
    SMALL_PH_CORRELATION,
    _check_errors_mode,
    _error_table,
    _followed,
    _require_columns,
    format_p,
    p_text,
)

from crm_lib.survival.ph_test import proportional_hazards_test
from crm_lib.survival.risk_sets import fit_cox, sort_by_time

logger = logging.getLogger(__name__)

#: Followed customers above which the Cox model is fitted on a stated random sample.
DEFAULT_MAX_CUSTOMERS = 250_000

# ---------------------------------------------------------------------------------------
# Cox proportional hazards
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoxResult:
    """A Cox proportional-hazards fit: hazard ratios and the proportional-hazards check.

    Attributes
    ----------
    hazard_ratios : DataFrame
        Indexed by term: ``meaning`` (what one unit is), ``hazard_ratio``, ``lower``,
        ``upper`` (interval at 1 - alpha), ``p_value``, ``coef``, ``se``.
    ph_test : DataFrame
        Grambsch & Therneau (1994) score test per term and ``GLOBAL`` (as R survival
        >= 3.0 ``cox.zph``, residuals of the fit's tie handling; see
        :mod:`crm_lib.survival.ph_test`): ``rho`` (correlation of the scaled Schoenfeld
        residuals with g(t)), ``chi2``, ``df``, ``p_value``.
    scaled_schoenfeld : DataFrame
        ``time`` and one column per term: scaled Schoenfeld residuals at each churn
        (their trend over time is the hazard ratio's drift, in log units).
    n, events : int
        Customers and churn events used.
    covariates : tuple of str
    alpha : float
    error : str or None
        Why the model could not be fitted (``errors="report"``).
    notes : tuple of str
        Covariates left out because the log lacks them; the sample note when sampled.
    sampled_from : int
        Followed customers the sample was drawn from (0: every customer was used).
    sample_note : str
        The sampling stated in words with its figures ("" when every customer was used).
    """

    hazard_ratios: pd.DataFrame
    ph_test: pd.DataFrame
    scaled_schoenfeld: pd.DataFrame
    n: int
    events: int
    covariates: tuple[str, ...]
    alpha: float = 0.05
    log_likelihood: float = np.nan
    error: str | None = None
    notes: tuple[str, ...] = ()
    method: str = "Cox proportional hazards (Newton on risk-set sums per churn day, Efron ties)"
    ph_method: str = "Grambsch-Therneau score test (as R survival >= 3.0 cox.zph), Efron residuals, time scale km"
    sampled_from: int = 0
    sample_note: str = ""

    @classmethod
    def failed(cls, message: str, covariates=()) -> CoxResult:
        """A result that carries only the reason the model is missing."""
        return cls(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), 0, 0, tuple(covariates), error=message)

    @property
    def ph_verdict(self) -> str:
        """The proportional-hazards check as a sentence."""
        if self.error:
            return f"The proportional-hazards check could not be run: {self.error}"
        terms = self.ph_test.drop(index="GLOBAL")
        violated = terms[terms["p_value"] < self.alpha]
        glob = self.ph_test.loc["GLOBAL"]
        head = f"global test χ² = {glob['chi2']:,.1f} on {int(glob['df'])} df, {p_text(glob['p_value'])}"
        if violated.empty:
            return (
                f"No evidence against proportional hazards ({head}; smallest per-term "
                f"{p_text(terms['p_value'].min())}): the hazard ratios can be read as constant over time."
            )
        listed = ", ".join(f"{t} (ρ = {r['rho']:+.2f}, {p_text(r['p_value'])})" for t, r in violated.iterrows())
        largest = float(np.nanmax(np.abs(violated["rho"])))
        size = (
            f" The drift is small (|ρ| ≤ {largest:.2f}) and detectable mainly because of the {self.events:,} churn "
            "events, so the hazard ratios remain fair averages."
            if largest < SMALL_PH_CORRELATION
            else ""
        )
        return (
            f"Proportional hazards is doubtful for {listed} ({head}): their effect changes with time "
            f"since acquisition, so read those hazard ratios as averages over the observed lifetimes.{size}"
        )

    @property
    def verdict(self) -> str:
        """The strongest effect as a sentence."""
        if self.error:
            return f"The Cox model could not be fitted: {self.error}"
        hr = self.hazard_ratios
        significant = hr[(hr["lower"] > 1) | (hr["upper"] < 1)]
        level = f"{1 - self.alpha:.0%}"
        if significant.empty:
            return f"No covariate changes the churn hazard clearly ({level} intervals all include 1; {self.n:,} customers)."
        top = significant.assign(strength=np.abs(np.log(significant["hazard_ratio"]))).sort_values("strength").iloc[-1]
        direction = "higher" if top["hazard_ratio"] > 1 else "lower"
        return (
            f"{len(significant)} of {len(hr)} terms change the churn hazard ({level} interval excludes 1). "
            f"The largest: {top.name} ({top['meaning']}) has a hazard ratio of {top['hazard_ratio']:.2f} "
            f"[{top['lower']:.2f}, {top['upper']:.2f}], a {abs(top['hazard_ratio'] - 1):.0%} {direction} churn hazard."
        )

    def to_frame(self) -> pd.DataFrame:
        """The hazard-ratio table."""
        return self.hazard_ratios.copy()

    def table(self) -> pd.DataFrame:
        """The hazard ratios for people: meaning, ratio, interval and p-value as text."""
        if self.error:
            return _error_table(self.error)
        hr = self.hazard_ratios
        level = f"{1 - self.alpha:.0%}"
        return pd.DataFrame(
            {
                "meaning": hr["meaning"],
                "hazard ratio": hr["hazard_ratio"].map("{:.3f}".format),
                f"{level} interval": [f"{lo:.3f} to {hi:.3f}" for lo, hi in zip(hr["lower"], hr["upper"])],
                "p-value": hr["p_value"].map(format_p),
                "churn hazard": [
                    "higher" if lo > 1 else "lower" if hi < 1 else "no clear difference"
                    for lo, hi in zip(hr["lower"], hr["upper"])
                ],
            },
            index=hr.index,
        )

    def ph_table(self) -> pd.DataFrame:
        """The proportional-hazards test for people: correlation with time, chi-square, p-value, reading."""
        if self.error:
            return _error_table(self.error)
        test = self.ph_test
        return pd.DataFrame(
            {
                "correlation with time (ρ)": test["rho"].map(lambda r: "" if np.isnan(r) else f"{r:+.3f}"),
                "χ²": test["chi2"].map("{:.2f}".format),
                "df": test["df"],
                "p-value": test["p_value"].map(format_p),
                "proportional hazards": np.where(test["p_value"] < self.alpha, "doubtful", "no evidence against"),
            },
            index=test.index,
        )

    def summary(self) -> str:
        """Hazard ratios and the proportional-hazards verdict."""
        if self.error:
            return self.verdict
        lines = [f"{self.method}: {self.n:,} customers, {self.events:,} churned"]
        for term, row in self.hazard_ratios.iterrows():
            lines.append(
                f"  {term:<30} HR {row['hazard_ratio']:.3f} [{row['lower']:.3f}, {row['upper']:.3f}] "
                f"p {format_p(row['p_value'])}"
            )
        lines.append(self.ph_verdict)
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _sample_customers(churn: pd.DataFrame, max_customers: int | None, seed: int) -> tuple[pd.DataFrame, int, str]:
    """A simple random sample of ``max_customers`` rows (in their order), the base size and the note in words."""
    n_all = len(churn)
    if max_customers is None or n_all <= max_customers:
        return churn, 0, ""
    if max_customers < 1_000:
        raise ParamsError(f"max_customers={max_customers!r} is too small for a Cox fit; use at least 1,000 or None.")
    rows = np.sort(np.random.default_rng(seed).choice(n_all, size=max_customers, replace=False))
    widening = np.sqrt(n_all / max_customers)
    shrink = np.sqrt(1 - max_customers / n_all)
    note = (
        f"The Cox model and its check were fitted on a simple random sample of {max_customers:,} of the "
        f"{n_all:,} customers (seed {seed}), to keep the fit to seconds: the hazard ratios, intervals and "
        f"p-values are the sample's. The intervals keep their stated coverage but are about {widening:.1f} times "
        f"wider than a fit on every customer would give, and each log hazard ratio differs from the "
        f"every-customer fit by a sampling error of about {shrink:.2f} times its standard error."
    )
    return churn.iloc[rows], n_all, note


def _plain(value) -> str:
    """A value as a reader writes it: ``10.0`` or ``'web'``, not ``np.float64(10.0)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _design_rank(x: np.ndarray) -> int:
    """Rank of [1, x]: by SVD of the rows, or of their (p+1) x (p+1) cross-product for millions of rows.

    The cross-product squares the condition number, so its tolerance flags terms whose
    singular value is below about 1e-7 of the largest: those are not estimable anyway.
    """
    if len(x) <= 200_000:
        return int(np.linalg.matrix_rank(np.column_stack([np.ones(len(x)), x])))
    centred = x - x.mean(axis=0)
    gram = np.zeros((x.shape[1] + 1, x.shape[1] + 1))
    gram[0, 0] = len(x)
    gram[1:, 1:] = centred.T @ centred
    return int(np.linalg.matrix_rank(gram, hermitian=True))


def cox_design(
    churn: pd.DataFrame,
    covariates: tuple[str, ...] | list[str],
    *,
    log2_covariates: tuple[str, ...] | list[str] = ("first_order_amount", "first_order_quantity"),
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Design matrix of a Cox model: numeric columns (log2 where asked) and dummy-coded labels.

    A categorical covariate gets one column per level except the reference, its most
    frequent level. A covariate in ``log2_covariates`` enters as ``log2(1 + x)``, so its
    hazard ratio is per doubling of ``1 + x``.

    Returns
    -------
    design : DataFrame
        One float column per term, indexed like ``churn``.
    meanings : dict
        Term -> what one unit of it is, for the hazard-ratio table.

    Raises
    ------
    ParamsError
        A covariate is not a column of ``churn``.
    DataValidationError
        Missing values, or a negative value in a log2 covariate.
    ModelFitError
        A covariate takes one value for every customer.
    """
    covariates = list(covariates)
    if not covariates:
        raise ParamsError("cox_covariates is empty; name at least one column known at acquisition.")
    _require_columns(churn, covariates, "Cox covariates", "cox_covariates")
    columns, meanings = {}, {}
    n = len(churn)
    for name in covariates:
        values = churn[name]
        missing = values.isna()
        if missing.any():
            raise DataValidationError(
                f"Cox covariate '{name}' is missing for {int(missing.sum()):,} of {n:,} customers "
                f"(e.g. customer {values.index[missing.to_numpy()][0]!r}); fill it in or leave it out of cox_covariates."
            )
        if values.nunique() < 2:
            raise ModelFitError(
                f"Cox covariate '{name}' has the same value ({_plain(values.iloc[0])}) for all {n:,} customers, so its "
                "effect cannot be estimated; remove it from cox_covariates."
            )
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            x = values.astype(float)
            if name in log2_covariates:
                if (x < 0).any():
                    raise DataValidationError(
                        f"Cox covariate '{name}' has {int((x < 0).sum()):,} negative values (e.g. {x[x < 0].iloc[0]!r}); "
                        "a log2 term needs values >= 0: drop it from log2_covariates or fix the rows."
                    )
                columns[name] = np.log2(1 + x)
                meanings[name] = f"per doubling of (1 + {column_label(name)})"
            else:
                columns[name] = x
                meanings[name] = f"per unit of {column_label(name)}"
        else:
            # Factorize once, then name the levels: no per-row str() over millions of customers.
            codes, uniques = pd.factorize(values)
            label_codes, levels = pd.factorize(pd.Index(uniques).astype(str))
            codes = label_codes[codes]
            counts = np.bincount(codes, minlength=len(levels))
            order = sorted(range(len(levels)), key=lambda k: (-counts[k], levels[k]))
            reference = levels[order[0]]
            for k in sorted(order[1:], key=lambda k: levels[k]):
                term = f"{name}[{levels[k]}]"
                columns[term] = (codes == k).astype(float)
                meanings[term] = f"{name} {levels[k]} vs {reference}"
    design = pd.DataFrame(columns, index=churn.index)
    rank = _design_rank(design.to_numpy())
    if rank < design.shape[1] + 1:
        raise ModelFitError(
            f"the Cox covariates {covariates} are collinear ({design.shape[1]} terms, rank {rank - 1} after the "
            "baseline): one is a function of the others; remove one of them from cox_covariates."
        )
    return design, meanings


def cox_proportional_hazards(
    churn: pd.DataFrame,
    *,
    covariates: tuple[str, ...] | list[str] = ("first_order_amount", "first_order_quantity", "cohort"),
    log2_covariates: tuple[str, ...] | list[str] = ("first_order_amount", "first_order_quantity"),
    ties: str = "efron",
    ph_transform: str = "km",
    alpha: float = 0.05,
    max_iterations: int = 100,
    skip_absent: bool = False,
    errors: str = "raise",
    max_customers: int | None = DEFAULT_MAX_CUSTOMERS,
    seed: int = 0,
) -> CoxResult:
    """Fit a Cox model of the churn hazard on covariates known at acquisition.

    Parameters
    ----------
    churn : DataFrame
        Output of :func:`time_to_churn`.
    covariates : sequence of str
        Columns of ``churn``; covariates the table does not have (``first_order_quantity``,
        ``channel`` in a log without them) must be left out.
    log2_covariates : sequence of str
        Numeric covariates entered as ``log2(1 + x)`` (hazard ratio per doubling).
    ties : {"efron", "breslow"}
        Tie handling of the fit; the proportional-hazards check uses the same, so its
        Schoenfeld residuals sum to zero at the estimate.
    ph_transform : {"km", "rank", "identity", "log"}
        Time scale of the proportional-hazards check (R's default ``"km"``).
    alpha : float
        1 - confidence level of the hazard-ratio intervals; also the level of the
        proportional-hazards verdict.
    max_iterations : int
        Newton iterations allowed before the fit counts as not converged.
    skip_absent : bool
        Leave out ``first_order_quantity`` and ``channel`` when the log has no quantity
        or channel column (named in ``notes``); other unknown names still raise.
    errors : {"raise", "report"}
        ``"report"`` returns a result carrying the message instead of raising.
    max_customers : int or None
        Above this many followed customers, fit on a simple random sample of this size
        (``seed``), stated in ``sample_note`` (also the last of ``notes``) with the
        figures: the estimates, intervals and p-values are then the sample's (valid, but
        wider than a fit on every customer by about sqrt(N / n)). None: every customer
        (memory and time linear in the customers: a few seconds per 100,000 on one core).
    seed : int
        Seed of the sample.

    Returns
    -------
    CoxResult

    Raises
    ------
    ParamsError
        A covariate is not a column.
    ModelFitError
        A constant or collinear covariate, or the fit did not converge.
    DataValidationError
        Missing covariate values, or no churn event.
    """
    _check_errors_mode(errors)
    notes = []
    if skip_absent:
        absent = [c for c in covariates if c in OPTIONAL_LOG_COLUMNS and c not in churn.columns]
        if absent:
            notes.append(
                f"Left out {', '.join(absent)}: the transaction log has no such column "
                "(map a column of the file to it in the params file to use it)."
            )
            covariates = [c for c in covariates if c not in absent]
    try:
        _require_columns(churn, ["duration_days", "churned"], "time to churn", "the churn table")
        churn, unfollowed = _followed(churn)
        notes.extend(unfollowed)
        churn, sampled_from, sample_note = _sample_customers(churn, max_customers, seed)
        design, meanings = cox_design(churn, covariates, log2_covariates=log2_covariates)
        time = churn["duration_days"].to_numpy(dtype=float)
        status = churn["churned"].to_numpy(dtype=bool).astype(int)
        if status.sum() == 0:
            raise DataValidationError(
                f"no churn event among {len(churn):,} customers (all censored); lower lapse_days or use a longer log."
            )
        # Centre the columns: same hazard ratios, better conditioned Newton steps. The fit
        # works on risk-set sums per distinct churn day (crm_lib.survival.risk_sets): every
        # customer is used, in memory and time linear in the customers (equal to statsmodels'
        # PHReg, tests/test_survival_cox_scale.py).
        terms = list(design.columns)
        x = (design - design.mean()).to_numpy(dtype=float)
        del design
        time, status, x = sort_by_time(time, status, x)
        result = fit_cox(time, status, x, ties=ties, max_iterations=max_iterations)
        params, bse = result.params, result.bse
        if not result.converged or not (np.all(np.isfinite(params)) and np.all(np.isfinite(bse))):
            reason = "singular information" if result.converged else "no convergence"
            raise ModelFitError(
                f"the Cox model with covariates {list(covariates)} did not converge after {max_iterations} "
                f"iterations ({reason}); check for a covariate that separates churners from non-churners, "
                "or remove covariates from cox_covariates."
            )
    except (ParamsError, DataValidationError, ModelFitError) as exc:
        if errors == "raise":
            raise
        logger.info("Cox model not fitted: %s", exc)
        return CoxResult.failed(" ".join([str(exc), *notes]), covariates)

    z = stats.norm.ppf(1 - alpha / 2)
    hazard = pd.DataFrame(
        {
            "meaning": [meanings[t] for t in terms],
            "hazard_ratio": np.exp(params),
            "lower": np.exp(params - z * bse),
            "upper": np.exp(params + z * bse),
            "p_value": 2 * stats.norm.sf(np.abs(params / bse)),
            "coef": params,
            "se": bse,
        },
        index=pd.Index(terms, name="term"),
    )
    ph_test, scaled = proportional_hazards_test(time, status, x, params, terms=terms, ties=ties,
                                                transform=ph_transform)
    return CoxResult(
        hazard_ratios=hazard, ph_test=ph_test, scaled_schoenfeld=scaled, n=len(churn), events=int(status.sum()),
        covariates=tuple(covariates), alpha=alpha, log_likelihood=float(result.loglik),
        notes=tuple(notes + ([sample_note] if sample_note else [])), sampled_from=sampled_from,
        sample_note=sample_note,
        method=f"Cox proportional hazards (Newton on risk-set sums per churn day, {ties.capitalize()} ties)",
        ph_method=f"Grambsch-Therneau score test (as R survival >= 3.0 cox.zph), {ties.capitalize()} residuals, "
                  f"time scale {ph_transform}",
    )


