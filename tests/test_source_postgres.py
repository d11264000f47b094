"""A PostgreSQL table or query as data_path, against a real server.

The server is the one .ci/run installs and starts (Debian's postgresql package) with a
role and database ``crm_test``; point ``CRM_TEST_PG_DSN`` elsewhere to use another. Without
a reachable server the tests skip locally, and fail in CI (``CI=true``), where the server
must be there.
"""
from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crm_lib.cli import main as cli_main
from crm_lib.data import load_transactions
from crm_lib.datasets import CDNOW_COLUMN_MAP, cdnow_master_path
from crm_lib.engines import duckdb as engine
from crm_lib.exceptions import DataValidationError
from crm_lib.summary import rfm_summary

psycopg = pytest.importorskip("psycopg")

REPO = Path(__file__).resolve().parents[1]
DSN = os.environ.get("CRM_TEST_PG_DSN", "postgresql://crm_test:crm_test@localhost:5432/crm_test")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """CDNOW's master file loaded as it stands (text ids and YYYYMMDD dates) into a fresh schema."""
    try:
        connection = psycopg.connect(DSN, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as error:
        reason = f"no PostgreSQL server reachable at {DSN.split('@')[-1]} ({str(error).strip().splitlines()[0]})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: .ci/run must start it")
        pytest.skip(f"{reason}; run .ci/run or set CRM_TEST_PG_DSN")
    schema = f"crm_test_{uuid.uuid4().hex[:8]}"
    raw = pd.read_csv(cdnow_master_path(), sep=r"\s+", dtype=str)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        cursor.execute(f"CREATE TABLE {schema}.cdnow (customer_id text, date text, number_of_cds integer, "
                       "dollar_value double precision)")
        buffer = io.StringIO()
        raw.to_csv(buffer, index=False, header=False)
        with cursor.copy(f"COPY {schema}.cdnow FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(buffer.getvalue())
    old = {k: os.environ.get(k) for k in ("CRM_WAREHOUSE_DSN", "CRM_WAREHOUSE_EXTRACT_DIR")}
    os.environ["CRM_WAREHOUSE_DSN"] = DSN
    os.environ["CRM_WAREHOUSE_EXTRACT_DIR"] = str(tmp_path_factory.mktemp("extracts"))
    yield schema
    for key, value in old.items():
        os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")
    connection.close()


def test_table_loads_exactly_as_the_file(warehouse, cdnow_log):
    log = load_transactions(f"postgresql:{warehouse}.cdnow", column_map=CDNOW_COLUMN_MAP, date_format="%Y%m%d")
    pd.testing.assert_frame_equal(log.transactions, cdnow_log.transactions)
    pd.testing.assert_frame_equal(log.quality, cdnow_log.quality)
    assert (log.n_customers, log.n_transactions) == (23570, 69659)
    assert log.path.name == f"PostgreSQL table {warehouse}.cdnow"
    assert os.path.getsize(log.path) > 1_000_000  # the extract the report hashes


def test_query_summary_equals_the_files(warehouse, cdnow_log):
    query = (f"postgresql:SELECT customer_id, to_date(date, 'YYYYMMDD') AS date, dollar_value AS amount "
             f"FROM {warehouse}.cdnow")
    log = load_transactions(query)
    expected = rfm_summary(cdnow_log, time_unit="W")
    pd.testing.assert_frame_equal(rfm_summary(log, time_unit="W"), expected)
    # The same extract read out of core by DuckDB.
    duck = engine.open_log(query)
    pd.testing.assert_frame_equal(engine.rfm_summary(duck, time_unit="W"), expected, rtol=1e-12, atol=1e-12)


def test_dsn_variable_named_in_data_path(warehouse, monkeypatch):
    monkeypatch.delenv("CRM_WAREHOUSE_DSN")
    monkeypatch.setenv("SHOP_DSN", DSN)
    log = load_transactions(f"postgresql[SHOP_DSN]:SELECT customer_id, date, dollar_value AS amount FROM "
                            f"{warehouse}.cdnow WHERE customer_id = '00001'", date_format="%Y%m%d")
    assert log.n_transactions == 1


def test_failures_are_data_validation_errors(warehouse, monkeypatch):
    with pytest.raises(DataValidationError, match=rf"PostgreSQL table {warehouse}.missing: relation .* does not exist"):
        load_transactions(f"postgresql:{warehouse}.missing")
    with pytest.raises(DataValidationError, match=r"column 'amount' \(amount\) not found in 69,659 rows"):
        load_transactions(f"postgresql:{warehouse}.cdnow", date_format="%Y%m%d")
    with pytest.raises(DataValidationError, match="PostgreSQL refused the query"):
        load_transactions(f"postgresql:SELECT nonsense FROM {warehouse}.cdnow")
    with pytest.raises(DataValidationError, match="credentials must not be in the params file"):
        load_transactions("postgresql://crm_test:secret@localhost/crm_test")
    monkeypatch.setenv("CRM_WAREHOUSE_DSN", "postgresql://crm_test:wrong-password@localhost:5432/crm_test")
    with pytest.raises(DataValidationError, match=r"cannot connect to PostgreSQL with \$CRM_WAREHOUSE_DSN"):
        load_transactions(f"postgresql:{warehouse}.cdnow")
    monkeypatch.setenv("CRM_WAREHOUSE_DSN", "not a dsn at all")
    with pytest.raises(DataValidationError, match="cannot connect"):
        load_transactions(f"postgresql:{warehouse}.cdnow")


@pytest.mark.slow
def test_cli_check_reads_the_warehouse_and_exits_2_on_a_missing_table(warehouse, tmp_path, capsys):
    params = yaml.safe_load((REPO / "params" / "cdnow.yaml").read_text())
    params["parameters"]["data_path"] = f"postgresql:{warehouse}.cdnow"
    path = tmp_path / "warehouse.yaml"
    path.write_text(yaml.safe_dump(params))
    notebooks = str(REPO / "notebooks")
    assert cli_main(["check", str(path), "--notebooks-dir", notebooks]) == 0
    assert "customers    23,570" in capsys.readouterr().out
    params["parameters"]["data_path"] = f"postgresql:{warehouse}.nope"
    path.write_text(yaml.safe_dump(params))
    assert cli_main(["check", str(path), "--notebooks-dir", notebooks]) == 2
    assert f"PostgreSQL table {warehouse}.nope: relation" in capsys.readouterr().err


def _outputs(notebook_path, *replace: str) -> list[str]:
    """Every output shown, with each of ``replace`` (the source's names, longest first) as ``<source>``."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    shown = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            for mime in ("text/markdown", "text/html", "text/plain", "image/png"):
                if mime in output.get("data", {}):
                    text = f"{mime}: {output['data'][mime]}"
                    for name in replace:
                        text = text.replace(name, "<source>")
                    shown.append(text)
    return shown


@pytest.mark.slow
def test_report_from_postgresql_equals_report_from_file(warehouse, tmp_path):
    """The data-overview report rendered from the warehouse shows what the file's shows (but the source's name)."""
    params = yaml.safe_load((REPO / "params" / "cdnow.yaml").read_text())
    file_params, pg_params = tmp_path / "file.yaml", tmp_path / "pg.yaml"
    params["parameters"]["data_path"] = str(cdnow_master_path())
    file_params.write_text(yaml.safe_dump({**params, "run_name": "from_file"}))
    params["parameters"]["data_path"] = f"postgresql:{warehouse}.cdnow"
    pg_params.write_text(yaml.safe_dump({**params, "run_name": "from_pg"}))
    for path in (file_params, pg_params):
        assert cli_main(["run", str(path), "--notebooks-dir", str(REPO / "notebooks"), "--only", "01_data_overview",
                         "--output-dir", str(tmp_path / "reports")]) == 0
    # Executed notebooks stay in the private folder (crm_lib.report.runner); conftest points CRM_PRIVATE_ROOT there.
    runs = Path(os.environ["CRM_PRIVATE_ROOT"]) / "runs"
    # The closing settings table names data_path as set; the sentences name the file or the table.
    from_file = _outputs(runs / "from_file" / "01_data_overview.ipynb", str(cdnow_master_path()), "CDNOW_master.txt")
    from_pg = _outputs(runs / "from_pg" / "01_data_overview.ipynb", f"postgresql:{warehouse}.cdnow",
                       f"PostgreSQL table {warehouse}.cdnow")
    assert len(from_file) > 10
    assert from_pg == from_file
