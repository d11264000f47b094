"""One run context: the data, the summary and the models that every report of a run shares.

A report that needs the transaction log, the per-customer summary, the holdout
comparison, the chosen transaction model, the Gamma-Gamma spend model or the customer
values asks the run context for them instead of computing its own, so the same quantity
shows the same number on every page::

    from crm_lib import session
    ctx = session("params/cdnow.yaml")           # in JupyterLab, a script or a notebook
    ctx.log, ctx.summary, ctx.comparison, ctx.transaction_model, ctx.customer_values

Each object is computed once, on first use, and cached on disk in the project's private
folder (``.crm_private/cache/<key>/``, git-ignored; ``CRM_PRIVATE_ROOT`` moves it, see
:func:`crm_lib.paths.cache_root`), keyed by the SHA-256 of the data file, the knobs that
change the objects and the source of crm_lib. The runner's notebooks and a researcher in
JupyterLab therefore get the very same objects with one call. Each object is written to a
temporary folder and renamed into place, so two processes filling the same key at once
(a scheduled run and a Lab session) never leave a half-written file behind.

Knob precedence, lowest first: the registry defaults (``CONTEXT_DEFAULTS`` and each
notebook's ``parameters`` cell, which agree), the params file, then the values given to
:func:`session` (keywords, or the notebook's ``namespace`` where a value differs from its
default). A relative ``data_path`` is read from the params file's folder (without a params
file: the project's ``params/`` folder), the same rule as the runner's.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, MutableMapping

import pandas as pd

from crm_lib.data import ObservationWindow, TransactionLog, load_transactions, observation_end_day
from crm_lib.exceptions import ParamsError
from crm_lib.paths import cache_root, project_root  # project_root re-exported: the one rule is in crm_lib.paths
from crm_lib.readers import sha256_of
from crm_lib.relative_dates import is_relative_date, observation_end_knob, resolve_relative_date
from crm_lib.report.knobs import RUN_LEVEL_KEYS, check_values, periods_in_weeks, registry, rename_old_knobs

logger = logging.getLogger(__name__)

#: Knob -> keyword of :func:`crm_lib.data.load_transactions`: the knob's own name, except
#: ``csv_separator`` (the keyword is ``sep``, as in pandas).
DATA_KNOBS = {
    **{name: name for name in ("column_map", "date_format", "observation_end", "duplicate_rows", "negative_amounts",
                               "zero_amounts", "time_unit", "encoding", "decimal", "timezone", "max_input_bytes")},
    "csv_separator": "sep",
}

#: The knobs the context objects depend on, with their defaults (equal to the notebooks'
#: parameters cells and to params/cdnow.yaml; tests/test_knobs.py checks both).
CONTEXT_DEFAULTS: dict[str, Any] = {
    "data_path": "embedded:CDNOW_master.txt",
    "column_map": {"customer_id": "customer_id", "date": "date", "amount": "dollar_value", "quantity": "number_of_cds"},
    "csv_separator": r"\s+",
    "date_format": "%Y%m%d",
    "observation_end": None,
    "duplicate_rows": "keep",
    "negative_amounts": "drop",
    "zero_amounts": "keep",
    "time_unit": "W",
    "encoding": "auto",
    "decimal": ".",
    "timezone": "",
    "max_input_bytes": None,
    "calibration_end": None,
    "value_model": "auto",
    "candidate_models": ["bg_nbd", "mbg_nbd", "pareto_nbd"],
    "penalizer_coef": 0.0,
    "forecast_horizon_weeks": 52,
    "clv_horizon_months": 12,
    "discount_rate_annual": 0.10,
    "gross_margin": 0.3,
    "equity_draws": 200,
    "seed": 42,
}

#: The knobs the cache key covers: every loader knob and every context knob (one list, so a
#: knob added to ``DATA_KNOBS`` cannot be left out of the key; ``data_path`` enters as the
#: data file's hash). A knob a notebook does not set takes its default here, so every page of
#: a run shares one key.
CACHE_KEY_KNOBS: tuple[str, ...] = tuple(sorted((set(DATA_KNOBS) | set(CONTEXT_DEFAULTS)) - {"data_path"}))

#: P(alive) at or above this counts a customer as alive in the share stated on every page.
ALIVE_THRESHOLD = 0.5


def _code_version() -> str:
    """Hash of crm_lib's source: a cache made by other code is never reused."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        # The console script, the report machinery and the figures do not change the objects.
        if path.name == "cli.py" or path.relative_to(package).parts[0] in {"report", "plots"}:
            continue
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def resolve_data_path(value: str, params_path: Path | None) -> str:
    """The one rule for a relative ``data_path``: read from the params file's folder.

    Without a params file, from the project's ``params/`` folder, as if the knob were
    set in a params file there. ``embedded:<name>`` is left as it is.
    """
    from crm_lib.datasets import EMBEDDED_PREFIX
    from crm_lib.datasets import resolve_data_path as _resolve

    if str(value).startswith(EMBEDDED_PREFIX):
        return str(value)
    base = params_path.parent.resolve() if params_path is not None else project_root() / "params"
    return str(_resolve(value, base_dir=base))


class RunContext:
    """The shared objects of one run, computed once and cached on disk.

    Attributes
    ----------
    knobs : dict
        Every knob's value for this run (defaults, params file, overrides).
    params_path : Path or None
        The params file, when one was given.
    """

    def __init__(self, knobs: dict[str, Any], params_path: Path | None = None) -> None:
        self.knobs = dict(knobs)
        self.params_path = params_path
        self.data_path = resolve_data_path(self.knobs["data_path"], params_path)
        self._memo: dict[str, Any] = {}

    # -- cache ---------------------------------------------------------------------------
    @cached_property
    def data_file(self) -> Path:
        from crm_lib.datasets import resolve_data_path as _resolve
        from crm_lib.sources import parse_source

        source = parse_source(self.data_path)
        if source is not None:
            # A warehouse table or query: its extract (the rows as they are now) is what the cache key hashes.
            return source.extract()
        return _resolve(self.data_path)

    @cached_property
    def cache_key(self) -> str:
        """SHA-256 (16 hex digits) of the data, the knobs in :data:`CACHE_KEY_KNOBS` and crm_lib's source."""
        relevant = {k: self.knobs.get(k, CONTEXT_DEFAULTS.get(k)) for k in CACHE_KEY_KNOBS}
        text = json.dumps({"data": sha256_of(self.data_file), "knobs": relevant, "code": _code_version()},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def cache_dir(self) -> Path:
        """``<private folder>/cache/<key>/``, the same for the runner's notebooks and JupyterLab."""
        return cache_root() / self.cache_key

    def _cached(self, name: str, compute: Callable[[], Any]) -> Any:
        if name not in self._memo:
            path = self.cache_dir / f"{name}.pkl"
            value = _read_cache(path)
            if value is None:
                with _computing(path):  # kernels of one run at once (--jobs): the first computes, the others wait
                    value = _read_cache(path)
                    if value is None:
                        value = compute()
                        _write_cache(path, value)
            self._memo[name] = value
        return self._memo[name]

    # -- data ----------------------------------------------------------------------------
    @property
    def log(self) -> TransactionLog:
        """The validated transaction log, with its window and time unit."""
        kwargs = {kw: self.knobs[k] for k, kw in DATA_KNOBS.items() if k in self.knobs}
        return self._cached("log", lambda: load_transactions(self.data_path, **kwargs))

    @property
    def window(self) -> ObservationWindow:
        """The observation window of the log."""
        return self.log.window

    @property
    def calibration_end(self) -> pd.Timestamp:
        """Last day of the calibration period: the knob, or the window's midpoint when None."""
        return calibration_end_for(self.knobs.get("calibration_end"), self.window)

    @property
    def summary(self) -> pd.DataFrame:
        """Per-customer frequency, recency, T, monetary value over the whole window."""
        from crm_lib.summary import rfm_summary

        return self._cached("summary", lambda: rfm_summary(self.log))

    @property
    def cal_holdout(self) -> pd.DataFrame:
        """The calibration / holdout split at :attr:`calibration_end`."""
        from crm_lib.summary import calibration_holdout_summary

        return self._cached("cal_holdout",
                            lambda: calibration_holdout_summary(self.log, calibration_end=self.calibration_end))

    # -- models --------------------------------------------------------------------------
    @property
    def comparison(self):
        """Holdout comparison of the candidate models (``crm_lib.clv.holdout_validation``)."""
        from crm_lib.clv import holdout_validation

        choose = self.knobs.get("value_model") or "auto"
        return self._cached("comparison", lambda: holdout_validation(
            self.cal_holdout, list(self.knobs["candidate_models"]), choose=choose,
            penalizer_coef=self.knobs["penalizer_coef"]))

    @property
    def value_model(self) -> str | None:
        """The transaction model used for value and P(alive): the knob, or the holdout winner for "auto"."""
        chosen = self.knobs.get("value_model")
        if chosen is None or chosen != "auto":
            return chosen  # a model named in the params needs no holdout comparison
        return self.comparison.winner

    @property
    def transaction_model(self):
        """The chosen model fitted on the whole window (None when value_model is None)."""
        from crm_lib.clv import fit_model

        if self.value_model is None:
            return None
        return self._cached("transaction_model", lambda: fit_model(
            self.summary, self.value_model, penalizer_coef=self.knobs["penalizer_coef"]))

    @property
    def spend_model(self):
        """Gamma-Gamma fitted on the whole window (repeat buyers with only free repeat purchases left out)."""
        from crm_lib.clv import fit_spend_model

        return self._cached("spend_model", lambda: fit_spend_model(
            self.summary, penalizer_coef=self.knobs["penalizer_coef"], nonpositive_spend="exclude"))

    @property
    def horizon_periods(self) -> float:
        """``forecast_horizon_weeks`` in periods of the time unit."""
        return periods_in_weeks(self.knobs["forecast_horizon_weeks"], self.log.time_unit)

    @property
    def customer_values(self) -> pd.DataFrame | None:
        """Per-customer P(alive), expected purchases, expected spend and CLV (None without a value model)."""
        if self.value_model is None:
            return None
        return self._cached("customer_values", self._customer_values)

    def _customer_values(self) -> pd.DataFrame:
        from crm_lib.clv import customer_value_table, monthly_discount_rate

        table = customer_value_table(
            self.summary, self.transaction_model, self.spend_model, horizon_periods=self.horizon_periods,
            horizon_months=self.knobs["clv_horizon_months"],
            discount_rate_monthly=monthly_discount_rate(self.knobs["discount_rate_annual"]),
            time_unit=self.log.time_unit, gross_margin=self.knobs["gross_margin"])
        table.attrs.update(discount_rate_annual=self.knobs["discount_rate_annual"],
                           spend_fit_excluded=int(self.spend_model.n_excluded_), model=self.value_model)
        # The per-customer inputs (millions of rows each) are cached on disk now: a report that asks
        # for them again reads them back, instead of every report that computed the table keeping them.
        for name in ("summary", "cal_holdout"):
            self._memo.pop(name, None)
        return table

    @property
    def equity(self):
        """Customer equity with its parameter-uncertainty and predictive intervals (``crm_lib.clv.customer_equity``)."""
        from crm_lib.clv import customer_equity, monthly_discount_rate

        if self.value_model is None:
            return None
        return self._cached("equity", lambda: customer_equity(
            self.transaction_model, self.spend_model, self.summary,
            horizon_months=self.knobs["clv_horizon_months"],
            discount_rate_monthly=monthly_discount_rate(self.knobs["discount_rate_annual"]),
            time_unit=self.log.time_unit, gross_margin=self.knobs["gross_margin"],
            n_draws=self.knobs["equity_draws"], seed=self.knobs["seed"]))

    @property
    def share_alive(self) -> float | None:
        """Share of all customers with P(alive) of at least :data:`ALIVE_THRESHOLD`."""
        values = self.customer_values
        return None if values is None else float((values["p_alive"] >= ALIVE_THRESHOLD).mean())

    def tracking(self, fit) -> pd.DataFrame:
        """Repeat transactions per period against ``fit`` over this run's window (``clv.repeat_transactions_tracking``)."""
        from crm_lib.clv import repeat_transactions_tracking

        log = self.log
        return repeat_transactions_tracking(log.transactions, fit, calibration_end=self.calibration_end,
                                            observation_end=log.observation_end, time_unit=log.time_unit)

    def p_alive_history(self, customer_id: Any) -> pd.DataFrame:
        """P(alive) of one customer, period by period to the window's end, under the run's model."""
        from crm_lib.clv import p_alive_history

        log = self.log
        return p_alive_history(self.transaction_model, log.transactions, customer_id, time_unit=log.time_unit,
                               observation_end=log.observation_end)

    def headline(self) -> dict[str, Any]:
        """The figures every page states the same way: chosen model, customer equity, share alive."""
        values = self.customer_values
        return {
            "value_model": self.value_model,
            "customer_equity": None if values is None else float(values["clv"].sum()),
            "share_alive": self.share_alive,
        }

    def summary_text(self) -> str:
        """A few lines for people: params file, data, window, cache folder."""
        return (f"Run context: {self.params_path or '(no params file)'}; data {self.data_path}; "
                f"window {self.log.observation_start:%Y-%m-%d} to {self.log.observation_end:%Y-%m-%d}, "
                f"time unit {self.log.time_unit}; cache {self.cache_dir}")

    def __repr__(self) -> str:
        return f"RunContext(params={self.params_path}, data={self.data_path!r}, key={self.cache_key})"


def _read_cache(path: Path) -> Any:
    """The object pickled at ``path``, or None when there is none or it cannot be read (then recomputed)."""
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            value = pickle.load(handle)
    except Exception as error:  # noqa: BLE001 - an unreadable cache is recomputed, and said so
        logger.warning("run context: cache %s unreadable (%s); recomputing", path, error)
        return None
    logger.info("run context: %s read from %s", path.stem, path)
    return value


@contextlib.contextmanager
def _computing(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (POSIX ``flock``; released by the system if the
    process dies). Objects depend on one another in one direction only (the equity on the fits,
    the fits on the summary, the summary on the log), so nested locks cannot deadlock."""
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent kernels may compute the same object twice (the same value)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_cache(path: Path, value: Any) -> None:
    """Pickle ``value`` to ``path`` atomically: written in a fresh temporary folder beside it,
    then renamed into place, so a reader sees the whole file or none (a crash leaves only a
    ``.tmp-*`` folder, which no reader looks at). The key's folder is owner-only: the log holds real ids."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{path.stem}-", dir=path.parent))
    try:
        written = staging / path.name
        with open(written, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(written, path)  # atomic within one file system; the last writer's equal object wins
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def calibration_end_for(value: Any, window: ObservationWindow) -> pd.Timestamp:
    """The calibration end of a run: the knob (checked against the window) or the window's midpoint.

    A relative value (``-26w``, ``-6m``, ``-90d``) counts back from the window's end by
    :func:`crm_lib.relative_dates.resolve_relative_date`.

    Raises
    ------
    ParamsError
        A calibration end outside the window (it must leave a calibration and a holdout period).
    """
    if value is None:
        return window.midpoint()
    end = resolve_relative_date(value, window.end) if is_relative_date(value) else observation_end_day(value)
    if not window.start.normalize() <= end < window.end:
        raise ParamsError(
            f"calibration_end={value!r} is outside the observation window {window.start:%Y-%m-%d} to "
            f"{window.end:%Y-%m-%d}; set it inside (or None for the midpoint, {window.midpoint():%Y-%m-%d})."
        )
    return end


def _find_params(params: str | Path) -> Path:
    path = Path(params)
    if not path.is_file() and not path.is_absolute() and (project_root() / path).is_file():
        path = project_root() / path
    if not path.is_file():
        raise ParamsError(f"{params}: params file not found (looked in {Path.cwd()} and {project_root()}); "
                          "pass a path such as params/cdnow.yaml.")
    return path.resolve()


def session(
    params: str | Path | None = None,
    *,
    namespace: MutableMapping[str, Any] | None = None,
    **overrides: Any,
) -> RunContext:
    """The run context for a params file and knob overrides: one call in a notebook or in Lab.

    Parameters
    ----------
    params : str or Path, optional
        A params file (``params/cdnow.yaml``; a relative path is tried from the working
        directory, then from the project folder). Its ``parameters`` replace the defaults.
    namespace : mapping, optional
        A notebook's ``globals()``: its knobs override the params file where they differ
        from their default, and every knob in it is then set to this run's value, so the
        cells below use the params file's settings.
    **overrides
        Knob values that win over everything else.

    Returns
    -------
    RunContext

    Raises
    ------
    ParamsError
        Run-level keys (``run_name``, ``parameters``) in the namespace (a whole params
        file was passed to papermill), an unknown params file, or a knob of the wrong
        type or out of range.

    Examples
    --------
    >>> ctx = session("params/cdnow.yaml", gross_margin=0.25)  # doctest: +SKIP
    >>> ctx.comparison.winner, ctx.customer_values["clv"].sum()  # doctest: +SKIP
    """
    if namespace is not None:
        given = [key for key in RUN_LEVEL_KEYS if key in namespace]
        if given:
            raise ParamsError(
                f"this notebook was given the run-level key(s) {', '.join(given)}: a whole params file was passed "
                "as notebook parameters (papermill -f params/X.yaml). Write the notebook's own parameters with "
                "`crm-workbench params params/X.yaml --notebook NAME > nb_params.yaml` and pass `-f nb_params.yaml`, "
                "or pass `-p params_file params/X.yaml`, or run `crm-workbench run params/X.yaml`."
            )
    notebooks_dir = project_root() / "notebooks"
    declared = registry(notebooks_dir) if notebooks_dir.is_dir() else {}
    defaults = {name: knob.default for name, knob in declared.items()}
    defaults.update(CONTEXT_DEFAULTS)
    knobs = dict(defaults)
    params_path = _find_params(params) if params else None
    from_file: dict[str, Any] = {}
    if params_path is not None:
        from crm_lib.report.params import read_parameters

        from_file = read_parameters(params_path)
        unknown = sorted(set(from_file) - set(defaults))
        if unknown and declared:
            logger.warning("%s: %s not a knob of the project's notebooks (ignored here)", params_path,
                           ", ".join(unknown))
        knobs.update(from_file)
    if namespace is not None:
        for name in [k for k in namespace if k in defaults and k != "params_file"]:
            value = namespace[name]
            if not (name in from_file and _same(value, defaults.get(name))):
                knobs[name] = value
    knobs.update(rename_old_knobs(overrides, "session()"))
    knobs.pop("params_file", None)
    check_values(knobs, declared, str(params_path or "session()"))
    if "observation_end" in knobs:
        knobs["observation_end"] = observation_end_knob(knobs["observation_end"], str(params_path or "session()"))
    if namespace is not None:
        for name in [k for k in namespace if k in knobs]:
            namespace[name] = knobs[name]
    return RunContext(knobs, params_path)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
