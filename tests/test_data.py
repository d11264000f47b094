"""Loading and validating transaction logs: counts, rules and actionable errors."""
from __future__ import annotations

import pandas as pd
import pytest

from crm_lib.data import load_transactions
from crm_lib.exceptions import DataValidationError

HEADER = "cust,when,value\n"


def test_cdnow_counts_and_window(cdnow_log):
    # Issue 2: the full CDNOW log has 23,570 customers and 69,659 transactions, 1997-01-01 to 1998-06-30.
    assert cdnow_log.n_customers == 23_570
    assert cdnow_log.n_transactions == 69_659
    assert cdnow_log.observation_start == pd.Timestamp("1997-01-01")
    assert cdnow_log.observation_end == pd.Timestamp("1998-06-30")
    assert cdnow_log.transactions["amount"].sum() == pytest.approx(2_500_315.63, abs=0.01)
    # customer ids keep their leading zeros
    assert cdnow_log.transactions["customer_id"].iloc[0] == "00001"
    quality = cdnow_log.quality.set_index("check")["rows"]
    assert quality["exact duplicate rows"] == 255
    assert quality["zero amounts"] == 80
    assert quality["negative amounts (returns)"] == 0
    # the example names the data row, never the customer id (reports show no real ids)
    examples = cdnow_log.quality.set_index("check")["example"]
    assert examples["exact duplicate rows"] == "data row 1,382: 1998-05-18, amount 12.99"


MAP = {"customer_id": "cust", "date": "when", "amount": "value"}


def test_rules_are_counted_and_applied(write_csv):
    path = write_csv(
        HEADER
        + "1,2020-01-01,10\n"
        + "1,2020-01-01,10\n"  # exact duplicate
        + "2,2020-01-02,-5\n"  # return
        + "2,2020-01-03,0\n"  # free order
        + "3,2020-03-01,7\n"  # after observation end
        + "3,2020-01-04,7.5\n"
    )
    log = load_transactions(path, column_map=MAP, observation_end="2020-02-01")
    rows = log.quality.set_index("check")["rows"]
    assert rows["rows read"] == 6
    assert rows["exact duplicate rows"] == 1
    assert rows["negative amounts (returns)"] == 1
    assert rows["zero amounts"] == 1
    assert rows["after observation end (2020-02-01)"] == 1
    # defaults: keep duplicates, drop negatives, keep zeros, drop late rows
    assert rows["rows used"] == 4
    assert sorted(log.transactions["amount"]) == [0.0, 7.5, 10.0, 10.0]

    strict = load_transactions(
        path, column_map=MAP, observation_end="2020-02-01", duplicate_rows="drop", zero_amounts="drop",
        negative_amounts="keep",
    )
    assert sorted(strict.transactions["amount"]) == [-5.0, 7.5, 10.0]


def test_observation_end_date_includes_whole_day(write_csv):
    path = write_csv(HEADER + "1,2020-01-31 18:30:00,5\n1,2020-02-01 00:00:00,5\n")
    log = load_transactions(path, column_map=MAP, observation_end="2020-01-31")
    assert log.n_transactions == 1


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame(
        {"id": ["x", "y"], "ts": pd.to_datetime(["2021-05-01", "2021-05-03"]), "eur": [3.5, 4.0], "ch": ["web", "shop"]}
    )
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    log = load_transactions(
        path, column_map={"customer_id": "id", "date": "ts", "amount": "eur", "channel": "ch"}
    )
    assert list(log.transactions.columns) == ["customer_id", "date", "amount", "channel"]
    assert log.transactions["channel"].tolist() == ["web", "shop"]


def test_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match=r"nope\.csv: file not found .*data_path"):
        load_transactions(tmp_path / "nope.csv")


def test_empty_file(write_csv):
    with pytest.raises(DataValidationError, match=r"transactions\.csv: the file is empty \(0 bytes\)"):
        load_transactions(write_csv(""))


def test_header_only(write_csv):
    with pytest.raises(DataValidationError, match=r"has a header \(cust, when, value\) but no rows"):
        load_transactions(write_csv(HEADER), column_map=MAP)


def test_missing_column_names_file_columns_and_fix(write_csv):
    path = write_csv(HEADER + "1,2020-01-01,3\n")
    with pytest.raises(DataValidationError) as info:
        load_transactions(path, column_map={"customer_id": "cust", "date": "when", "amount": "price"})
    message = str(info.value)
    assert "transactions.csv: column 'price' (amount) not found in 1 rows" in message
    assert "['cust', 'when', 'value']" in message
    assert "column_map" in message


#: Rows with bad values -> what the message must say: the column, how many rows, an example, the fix.
BAD_VALUES = [
    pytest.param("1,2020-01-01,3\n2,1997-13-01,4\n3,yesterday,5\n",
                 ["column 'when' has 2 of 3 values that are not dates (e.g. '1997-13-01')", "date_format"],
                 id="unparseable dates"),
    pytest.param("1,2020-01-01,3\n,2020-01-02,4\n   ,2020-01-03,4\n",
                 ["column 'cust' (customer_id) is empty in 2 of 3 rows (e.g. data row 2)"],
                 id="missing customer ids"),
    pytest.param("1,2020-01-01,3\n2,2020-01-02,$4.00\n3,2020-01-03,\n",
                 ["column 'value' (amount) has 2 of 3 values that are not numbers (1 of them empty) (e.g. '$4.00')",
                  "currency symbols"],
                 id="non-numeric amounts"),
]


@pytest.mark.parametrize("rows, expected", BAD_VALUES)
def test_bad_values_are_named_with_count_example_and_fix(write_csv, rows, expected):
    with pytest.raises(DataValidationError) as info:
        load_transactions(write_csv(HEADER + rows), column_map=MAP)
    for text in expected:
        assert text in str(info.value)


def test_dates_with_explicit_format(write_csv):
    path = write_csv(HEADER + "1,31/01/2020,3\n")
    log = load_transactions(path, column_map=MAP, date_format="%d/%m/%Y")
    assert log.transactions["date"].iloc[0] == pd.Timestamp("2020-01-31")
    with pytest.raises(DataValidationError, match=r"expected format is date_format='%Y%m%d'"):
        load_transactions(path, column_map=MAP, date_format="%Y%m%d")


def test_wrong_separator_hint(write_csv):
    path = write_csv("cust;when;value\n1;2020-01-01;3\n")
    with pytest.raises(DataValidationError, match=r"check sep"):
        load_transactions(path, column_map=MAP)


def test_unknown_rule():
    with pytest.raises(DataValidationError, match=r"duplicate_rows='delete' is not a rule; use one of keep, drop"):
        load_transactions("embedded:CDNOW_master.txt", duplicate_rows="delete")


def test_everything_filtered_out(write_csv):
    path = write_csv(HEADER + "1,2020-03-01,3\n")
    with pytest.raises(DataValidationError, match=r"no rows are left after the data rules"):
        load_transactions(path, column_map=MAP, observation_end="2020-01-01")


# --- encodings, spreadsheets, decimal marks, time zones, ids (issue 11 item 5) -------------------

TZ_LOG = "customer,day,spend\n1,2021-01-31T23:30:00+02:00,10\n2,2021-01-31T20:00:00-05:00,5\n1,2021-02-01 10:00:00Z,3\n"
CMAP = {"customer_id": "customer", "date": "day", "amount": "spend"}
PLAIN = "customer,day,spend\n1,2021-01-04,10.5\n2,2021-01-10,30\n\u00e9mile,2021-02-01,5\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1"])
def test_encodings_are_detected(tmp_path, encoding):
    path = tmp_path / "t.csv"
    path.write_bytes(PLAIN.encode(encoding))
    log = load_transactions(path, column_map=CMAP)
    assert sorted(log.transactions["customer_id"].unique()) == ["1", "2", "\u00e9mile"]
    assert log.transactions["amount"].sum() == pytest.approx(45.5)


def test_decimal_comma_knob(write_csv):
    path = write_csv("customer;day;spend\n1;2021-01-04;1.234,50\n2;2021-01-05;12,5\n")
    log = load_transactions(path, column_map=CMAP, sep=";", decimal=",")
    assert log.transactions["amount"].tolist() == [1234.5, 12.5]


def test_excel_workbook_is_read(tmp_path):
    frame = pd.DataFrame({"customer": ["007", "8"], "day": ["2021-01-04", "2021-02-01"], "spend": ["1.5", "2"]})
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    log = load_transactions(tmp_path / "t.xlsx", column_map=CMAP)
    assert log.transactions["customer_id"].tolist() == ["007", "8"]  # leading zeros kept
    assert log.transactions["amount"].sum() == pytest.approx(3.5)


def test_offsets_keep_the_local_calendar_date_by_default(write_csv):
    log = load_transactions(write_csv(TZ_LOG), column_map=CMAP)
    # 23:30 at +02:00 on 31 January is 21:30 UTC the same day; 20:00 at -05:00 is 01:00 UTC on
    # 1 February: UTC would move that purchase to the next day (and past an end of 31 January).
    assert log.transactions.sort_values("amount")["date"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2021-02-01 10:00", "2021-01-31 20:00", "2021-01-31 23:30"]
    kept = load_transactions(write_csv(TZ_LOG), column_map=CMAP, observation_end="2021-01-31")
    assert kept.n_transactions == 2


def test_offsets_converted_to_a_timezone_knob(write_csv):
    log = load_transactions(write_csv(TZ_LOG), column_map=CMAP, timezone="UTC")
    assert log.transactions.sort_values("amount")["date"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2021-02-01 10:00", "2021-02-01 01:00", "2021-01-31 21:30"]


def test_ids_written_as_decimals_are_one_customer(write_csv):
    path = write_csv("customer,day,spend\n1,2021-01-04,1\n1.0,2021-01-05,2\n2.00,2021-01-06,3\n007,2021-01-07,4\n1.5,2021-01-08,5\n")
    log = load_transactions(path, column_map=CMAP)
    assert sorted(log.transactions["customer_id"].unique()) == ["007", "1", "1.5", "2"]
    row = log.quality.set_index("check").loc["customer ids written as decimals (1.0)"]
    assert row["rows"] == 2 and "data row 2" in row["example"]


def test_float_ids_from_parquet_are_whole_numbers(tmp_path):
    frame = pd.DataFrame({"customer": [1.0, 2.0, 1.0], "day": pd.to_datetime(["2021-01-01", "2021-01-02", "2021-02-01"]),
                          "spend": [1.0, 2.0, 3.0]})
    frame.to_parquet(tmp_path / "t.parquet")
    log = load_transactions(tmp_path / "t.parquet", column_map=CMAP)
    assert log.n_customers == 2 and sorted(log.transactions["customer_id"].unique()) == ["1", "2"]


def test_epoch_seconds(write_csv):
    log = load_transactions(write_csv("customer,day,spend\n1,1609459200,1\n2,1609545600,2\n"), column_map=CMAP,
                            date_format="%s")
    assert log.transactions["date"].dt.strftime("%Y-%m-%d").tolist() == ["2021-01-01", "2021-01-02"]


def test_size_guard_uses_available_memory(write_csv, monkeypatch):
    import crm_lib.readers as readers

    monkeypatch.setattr(readers, "available_memory_bytes", lambda: 100)
    with pytest.raises(MemoryError, match=r"t.csv: the file is 0.00 GB; reading it needs about 0.0 GB of memory"):
        load_transactions(write_csv(PLAIN, "t.csv"), column_map=CMAP)
