"""Cox proportional hazards on covariates known at acquisition, and its proportional-hazards check."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError

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

logger = logging.getLogger(__name__)

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
        Covariates left out because the log lacks them.
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
    method: str = "Cox proportional hazards (statsmodels PHReg, Efron ties)"
    ph_method: str = "Grambsch-Therneau score test (as R survival >= 3.0 cox.zph), Efron residuals, time scale km"

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
                f"Cox covariate '{name}' has the same value ({values.iloc[0]!r}) for all {n:,} customers, so its "
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
                meanings[name] = f"per doubling of (1 + {name.replace('_', ' ')})"
            else:
                columns[name] = x
                meanings[name] = f"per unit of {name.replace('_', ' ')}"
        else:
            labels = values.astype(str)
            counts = labels.value_counts()
            order = sorted(counts.index, key=lambda level: (-counts[level], level))
            reference = order[0]
            for level in sorted(order[1:]):
                term = f"{name}[{level}]"
                columns[term] = (labels == level).astype(float)
                meanings[term] = f"{name} {level} vs {reference}"
    design = pd.DataFrame(columns, index=churn.index)
    rank = np.linalg.matrix_rank(np.column_stack([np.ones(n), design.to_numpy()]))
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
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning

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
        design, meanings = cox_design(churn, covariates, log2_covariates=log2_covariates)
        time = churn["duration_days"].to_numpy(dtype=float)
        status = churn["churned"].to_numpy(dtype=bool).astype(int)
        if status.sum() == 0:
            raise DataValidationError(
                f"no churn event among {len(churn):,} customers (all censored); lower lapse_days or use a longer log."
            )
        # Centre the columns: same hazard ratios, better conditioned Newton steps.
        x = design - design.mean()
        model = PHReg(time, x.to_numpy(), status=status, ties=ties)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = model.fit(method="newton", maxiter=max_iterations)
        trouble = [w for w in caught if issubclass(w.category, (ConvergenceWarning, HessianInversionWarning))]
        params = np.asarray(result.params)
        bse = np.asarray(result.bse)
        if trouble or not (np.all(np.isfinite(params)) and np.all(np.isfinite(bse))):
            reason = str(trouble[0].message).splitlines()[0] if trouble else "non-finite estimates"
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

    terms = list(design.columns)
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
    ph_test, scaled = proportional_hazards_test(time, status, x.to_numpy(), params, terms=terms, ties=ties,
                                                transform=ph_transform)
    return CoxResult(
        hazard_ratios=hazard, ph_test=ph_test, scaled_schoenfeld=scaled, n=len(churn), events=int(status.sum()),
        covariates=tuple(covariates), alpha=alpha, log_likelihood=float(result.llf), notes=tuple(notes),
        method=f"Cox proportional hazards (statsmodels PHReg, {ties.capitalize()} ties)",
        ph_method=f"Grambsch-Therneau score test (as R survival >= 3.0 cox.zph), {ties.capitalize()} residuals, "
                  f"time scale {ph_transform}",
    )


