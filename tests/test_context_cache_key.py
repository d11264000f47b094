"""The run context's cache key covers every knob that changes a cached object.

A loader knob left out of the key (``timezone``, ``decimal``, ``encoding``,
``max_input_bytes`` were) made a second session reuse the first one's log, and every
model built on it, although its knobs read the file differently.
"""
from __future__ import annotations

import pandas as pd
import pytest

from crm_lib.context import CACHE_KEY_KNOBS, CONTEXT_DEFAULTS, DATA_KNOBS, RunContext, session

TINY_CSV = "customer_id,date,amount\n1,2021-01-04,10\n1,2021-02-01,12\n2,2021-01-10,5\n2,2021-03-30,8\n3,2021-03-01,4\n"

#: A value other than the default for each loader knob (a knob added to DATA_KNOBS must be added here).
OTHER_VALUE = {
    "column_map": {"customer_id": "customer_id", "date": "date", "amount": "amount", "quantity": "qty"},
    "csv_separator": ";",
    "date_format": "%d.%m.%Y",
    "observation_end": "2021-06-30",
    "duplicate_rows": "drop",
    "negative_amounts": "keep",
    "zero_amounts": "drop",
    "time_unit": "D",
    "encoding": "latin-1",
    "decimal": ",",
    "timezone": "UTC",
    "max_input_bytes": 10_000_000,
}


def _params(tmp_path, csv: str, extra: str = "") -> object:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "tiny.csv").write_text(csv)
    path = tmp_path / "tiny.yaml"
    path.write_text("run_name: tiny\nparameters:\n  data_path: data/tiny.csv\n"
                    "  column_map: {customer_id: customer_id, date: date, amount: amount}\n"
                    "  csv_separator: ','\n  date_format: null\n" + extra)
    return path


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_PRIVATE_ROOT", str(tmp_path / "private"))
    return _params(tmp_path, TINY_CSV)


def test_every_loader_knob_has_a_default_and_a_test_value():
    assert set(DATA_KNOBS) <= set(CONTEXT_DEFAULTS)  # its default is checked against the notebooks in test_knobs
    assert set(OTHER_VALUE) == set(DATA_KNOBS)
    assert set(DATA_KNOBS) <= set(CACHE_KEY_KNOBS) and "data_path" not in CACHE_KEY_KNOBS


@pytest.mark.parametrize("knob", sorted(set(DATA_KNOBS) | set(CONTEXT_DEFAULTS) - {"data_path"}))
def test_each_knob_changes_the_cache_key(tiny_run, knob):
    other = OTHER_VALUE.get(knob)
    if other is None:  # a model knob: any other valid value
        other = {"calibration_end": "2021-02-15", "value_model": "bg_nbd", "candidate_models": ["bg_nbd"],
                 "penalizer_coef": 0.01, "forecast_horizon_weeks": 26, "clv_horizon_months": 6,
                 "discount_rate_annual": 0.05, "gross_margin": 0.5, "equity_draws": 100, "seed": 7}[knob]
    assert other != CONTEXT_DEFAULTS[knob]
    assert session(tiny_run, **{knob: other}).cache_key != session(tiny_run).cache_key


def test_knobs_left_at_their_default_or_undeclared_share_one_key(tiny_run):
    """Notebooks that set only some knobs (01 has no time_unit, 04 has no kpi_period) share the run's key."""
    base = session(tiny_run)
    assert session(tiny_run, encoding="auto", timezone="", decimal=".", kpi_period="Q").cache_key == base.cache_key
    loader_only = ("encoding", "timezone", "decimal", "max_input_bytes")
    undeclared = {k: v for k, v in base.knobs.items() if k not in loader_only}
    assert RunContext(undeclared, tiny_run).cache_key == base.cache_key


def test_a_session_with_another_timezone_does_not_reuse_the_cached_log(tmp_path, monkeypatch):
    # 23:30 at UTC-5 is the next calendar day in UTC: the timezone moves the purchase dates.
    monkeypatch.setenv("CRM_PRIVATE_ROOT", str(tmp_path / "private"))
    csv = ("customer_id,date,amount\n1,2021-01-04T23:30:00-05:00,10\n1,2021-02-01T23:30:00-05:00,12\n"
           "2,2021-01-10T10:00:00-05:00,5\n")
    path = _params(tmp_path, csv)
    local = session(path).log.transactions["date"]
    in_utc = session(path, timezone="UTC").log.transactions["date"]
    assert list(local.dt.normalize()) == list(pd.to_datetime(["2021-01-04", "2021-02-01", "2021-01-10"]))
    assert list(in_utc.dt.normalize()) == list(pd.to_datetime(["2021-01-05", "2021-02-02", "2021-01-10"]))


def test_a_session_with_another_decimal_mark_does_not_reuse_the_cached_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_PRIVATE_ROOT", str(tmp_path / "private"))
    path = _params(tmp_path, "customer_id;date;amount\n1;2021-01-04;10,5\n1;2021-02-01;1,25\n2;2021-01-10;5\n")
    path.write_text(path.read_text().replace("csv_separator: ','", "csv_separator: ';'"))
    amounts = session(path, decimal=",").log.transactions["amount"]
    assert sorted(amounts) == [1.25, 5.0, 10.5]
    with pytest.raises(Exception, match="amount"):  # "10,5" is not a number with the decimal point '.'
        session(path, decimal=".").log
