"""Tests of crm_lib.segments and crm_lib.export: exact scores and segments on a hand-made
log (ties, single purchases), the rule table loaded from YAML with clear errors, the
portfolio, active/passive loyalty, migration, pseudonyms and the export round trip."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.export import export_customer_actions, private_dir, read_customer_actions
from crm_lib.segments import (
    DEFAULT_SEGMENT_RULES,
    active_passive_loyalty,
    customer_actions,
    customer_value_table,
    load_segment_rules,
    pseudonymize,
    quantile_scores,
    read_segment_rules,
    recency_ratio,
    rfm_segmentation,
    segment_migration,
    segment_profile,
    value_loyalty_portfolio,
)

END = "2020-12-31"

# Hand-made log, ids with leading zeros (they must survive the CSV export):
# A=0001 three purchases, B=0002 one purchase on the last day, C=0003 and D=0004
# identical single purchases (a tie in every score), E=0005 two rows on one day then
# one more (2 purchase days, 3 transactions), F=0006 four regular big purchases,
# G=0007 three purchases ten days apart in January then silence (passive).
ROWS = [
    ("0001", "2020-01-01", 10.0), ("0001", "2020-06-01", 20.0), ("0001", "2020-12-01", 30.0),
    ("0002", "2020-12-31", 100.0),
    ("0003", "2020-03-01", 50.0),
    ("0004", "2020-03-01", 50.0),
    ("0005", "2020-02-01", 5.0), ("0005", "2020-02-01", 5.0), ("0005", "2020-11-01", 40.0),
    ("0006", "2020-01-15", 200.0), ("0006", "2020-04-15", 200.0), ("0006", "2020-07-15", 200.0),
    ("0006", "2020-10-15", 200.0),
    ("0007", "2020-01-01", 10.0), ("0007", "2020-01-11", 10.0), ("0007", "2020-01-21", 10.0),
]
IDS = {name: f"{i:04d}" for i, name in enumerate("ABCDEFG", start=1)}

# Rules for 3 bins, best first; they cover the 27 combinations exactly once.
RULES_3 = [
    {"name": "champions", "r": [3, 3], "f": [2, 3], "action": "reward"},
    {"name": "recent", "r": [3, 3], "f": [1, 1], "action": "second purchase offer"},
    {"name": "middle", "r": [2, 2], "action": "nurture"},
    {"name": "lapsed valuable", "r": [1, 1], "m": [3, 3], "action": "call"},
    {"name": "lapsed", "r": [1, 1], "m": [1, 2], "action": "no spend"},
]


@pytest.fixture()
def log() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["customer_id", "date", "amount"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def by_name(series: pd.Series) -> dict[str, object]:
    return {name: series.loc[cid] for name, cid in IDS.items() if cid in series.index}


# ----------------------------------------------------------------- customers and scores


def test_customer_value_table_exact(log):
    table = customer_value_table(log, observation_end=END)
    assert by_name(table["purchase_days"]) == {"A": 3, "B": 1, "C": 1, "D": 1, "E": 2, "F": 4, "G": 3}
    assert by_name(table["transactions"]) == {"A": 3, "B": 1, "C": 1, "D": 1, "E": 3, "F": 4, "G": 3}
    assert by_name(table["revenue"]) == {"A": 60, "B": 100, "C": 50, "D": 50, "E": 50, "F": 800, "G": 30}
    assert by_name(table["days_since_last_purchase"]) == {"A": 30, "B": 0, "C": 305, "D": 305, "E": 60, "F": 77, "G": 345}
    # E: revenue 50 over 3 rows; A: 335 days between first and last over 2 gaps.
    assert table.loc[IDS["E"], "average_order_value"] == pytest.approx(50 / 3)
    assert table.loc[IDS["A"], "mean_interpurchase_days"] == pytest.approx(167.5)
    assert table.loc[IDS["E"], "mean_interpurchase_days"] == pytest.approx(274.0)
    assert np.isnan(table.loc[IDS["B"], "mean_interpurchase_days"])  # single purchase day


def test_rfm_scores_exact_with_ties_and_single_purchases(log):
    # n = 7, 3 bins: score = 1 + (3 * (rank_min - 1)) // 7.
    seg = rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END)
    c = seg.customers
    # Recency ranks (most days first): G 1, C=D 2, F 4, E 5, A 6, B 7.
    assert by_name(c["r_score"]) == {"A": 3, "B": 3, "C": 1, "D": 1, "E": 2, "F": 2, "G": 1}
    # The three single-purchase customers tie at the lowest frequency: all F = 1.
    assert by_name(c["f_score"]) == {"A": 2, "B": 1, "C": 1, "D": 1, "E": 2, "F": 3, "G": 2}
    # C, D, E tie at revenue 50 (ranks 2..4, spanning bins 1 and 2): all get bin 1.
    assert by_name(c["m_score"]) == {"A": 2, "B": 3, "C": 1, "D": 1, "E": 1, "F": 3, "G": 1}
    assert c.loc[IDS["F"], "rfm_cell"] == "2-3-3"
    assert by_name(c["segment"]) == {
        "A": "champions", "B": "recent", "C": "lapsed", "D": "lapsed",
        "E": "middle", "F": "middle", "G": "lapsed",
    }
    assert c.loc[IDS["B"], "segment_action"] == "second purchase offer"
    # M score 2 holds A only: the tie group never splits across bins.
    assert seg.score_distribution()["M"].tolist() == [4, 1, 2]


def test_monetary_basis_average_order_value(log):
    seg = rfm_segmentation(log, RULES_3, n_bins=3, monetary="average_order_value", observation_end=END)
    # AOV: A 20, B 100, C 50, D 50, E 16.67, F 200, G 10 -> ranks G1 E2 A3 C=D4 B6 F7.
    assert by_name(seg.customers["m_score"]) == {"A": 1, "B": 3, "C": 2, "D": 2, "E": 1, "F": 3, "G": 1}
    with pytest.raises(ParamsError, match="monetary='margin' is not a basis of the M score; use one of revenue"):
        rfm_segmentation(log, RULES_3, n_bins=3, monetary="margin")


def test_quantile_scores_examples_and_errors():
    assert quantile_scores(pd.Series([1, 1, 1, 2, 5, 9]), n_bins=3).tolist() == [1, 1, 1, 2, 3, 3]
    assert quantile_scores(pd.Series([3, 2, 1, 0]), n_bins=2, higher_is_better=False).tolist() == [1, 1, 2, 2]
    assert quantile_scores(pd.Series([7.0] * 4), n_bins=5).tolist() == [1, 1, 1, 1]
    with pytest.raises(DataValidationError, match=r"revenue: 1 of 3 values are missing \(e.g. customer 'b'\)"):
        quantile_scores(pd.Series([1.0, np.nan, 2.0], index=["a", "b", "c"], name="revenue"))
    with pytest.raises(ParamsError, match="rfm_bins=1 must be a whole number of at least 2"):
        quantile_scores(pd.Series([1, 2]), n_bins=1)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=80),
    n_bins=st.integers(min_value=2, max_value=10),
)
def test_quantile_scores_properties(values, n_bins):
    series = pd.Series(values, dtype=float)
    scores = quantile_scores(series, n_bins)
    assert scores.between(1, n_bins).all()
    order = np.argsort(values, kind="stable")
    sorted_values, sorted_scores = np.asarray(values)[order], scores.to_numpy()[order]
    assert (np.diff(sorted_scores) >= 0).all()  # monotone in the value
    for value in set(values):  # ties share a score
        assert scores[series == value].nunique() == 1
    # Quantile bin: the share of customers with a strictly lower value lies in
    # [(s - 1) / n_bins, s / n_bins) for a customer of score s (counted without ranks).
    n = len(values)
    for value, score in zip(values, scores):
        below = sum(v < value for v in values)
        assert (score - 1) * n <= below * n_bins < score * n
    assert sorted_scores[0] == 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=1, max_value=200), n_bins=st.integers(min_value=2, max_value=10))
def test_quantile_scores_distinct_values_fill_equal_bins(n, n_bins):
    scores = quantile_scores(pd.Series(np.arange(n) * 1.5), n_bins)
    sizes = scores.value_counts().reindex(range(1, n_bins + 1), fill_value=0)
    assert sizes.max() - sizes.min() <= 1
    assert sizes.sum() == n


# ------------------------------------------------------------------------- rule table


def test_default_rules_cover_every_combination_once():
    rules = load_segment_rules(None, 5)
    assert [r.name for r in rules][:3] == ["champions", "loyal", "potential loyalists"]
    assert len(rules) == len(DEFAULT_SEGMENT_RULES) == 10


def test_rules_from_params_yaml(tmp_path):
    params = tmp_path / "shop.yaml"
    params.write_text(yaml.safe_dump({"run_name": "shop", "parameters": {"rfm_bins": 3, "rfm_segment_rules": RULES_3}}))
    rules = read_segment_rules(params)
    assert [r.name for r in rules] == ["champions", "recent", "middle", "lapsed valuable", "lapsed"]
    assert rules[2].f == (1, 3) and rules[2].m == (1, 3)  # omitted score = whole range
    assert rules[3].m == (3, 3)
    # The default table written to YAML by a team reads back unchanged.
    params.write_text(yaml.safe_dump({"rfm_segment_rules": list(DEFAULT_SEGMENT_RULES)}))
    assert [r.to_dict() for r in read_segment_rules(params)] == list(DEFAULT_SEGMENT_RULES)


def test_overlapping_rules_name_both_rules_and_a_combination(tmp_path):
    rules = [dict(r) for r in DEFAULT_SEGMENT_RULES]
    rules[1]["r"] = [3, 4]  # 'loyal' now reaches into 'champions'
    params = tmp_path / "overlap.yaml"
    params.write_text(yaml.safe_dump({"rfm_segment_rules": rules}))
    with pytest.raises(ParamsError) as error:
        read_segment_rules(params)
    assert str(error.value) == (
        "overlap.yaml: rfm_segment_rules: rules 'champions' and 'loyal' overlap: both match r=4, f=4, m=1 "
        "(10 score combination(s) in common); narrow one of their ranges so each combination has exactly one segment."
    )


def test_rules_leaving_customers_unassigned_give_count_and_example():
    rules = [r for r in DEFAULT_SEGMENT_RULES if r["name"] != "lost"]
    with pytest.raises(ParamsError) as error:
        load_segment_rules(rules, 5)
    message = str(error.value)
    assert "rfm_segment_rules: 10 of 125 score combinations match no rule (e.g. r=1, f=1, m=1)" in message
    assert "{name: other, r: [1, 1], f: [1, 1], m: [1, 5], action: ...}" in message


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"name": "all", "r": [0, 5]}], "rule 'all' has r: [0, 5]; scores run from 1 to rfm_bins=5"),
        ([{"name": "all", "r": [4, 2]}], "rule 'all' has r: [4, 2]; scores run from 1 to rfm_bins=5 and lo must not exceed hi"),
        ([{"name": "all", "f": "high"}], "rule 'all' has f: 'high'; write a range of two whole scores"),
        ([{"name": "all", "recency": [1, 5]}], "rule 'all' has unknown key(s) ['recency']"),
        ([{"r": [1, 5]}], "entry 1 has no name"),
        ([{"name": "a", "r": [1, 2]}, {"name": "a", "r": [3, 5]}], "rule name(s) ['a'] appear more than once"),
        ([], "rfm_segment_rules is empty"),
        ({"name": "all"}, "rfm_segment_rules must be a list of rules"),
    ],
)
def test_malformed_rules(rules, message):
    with pytest.raises(ParamsError) as error:
        load_segment_rules(rules, 5)
    assert message in str(error.value)


def test_rules_for_other_bins_are_rejected_with_advice():
    with pytest.raises(ParamsError, match=r"rule 'champions' has r: \[4, 5\]; scores run from 1 to rfm_bins=3"):
        load_segment_rules(DEFAULT_SEGMENT_RULES, 3)


def test_single_number_means_one_score():
    rules = load_segment_rules([{"name": "top", "r": 2}, {"name": "rest", "r": 1}], 2)
    assert rules[0].r == (2, 2) and rules[0].f == (1, 2)


# ---------------------------------------------------------------------- profile, cells


def test_segment_profile_exact(log):
    seg = rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END)
    profile = segment_profile(seg)
    assert profile.index.tolist() == ["champions", "recent", "middle", "lapsed valuable", "lapsed"]
    assert profile["customers"].tolist() == [1, 1, 2, 0, 3]
    assert profile["share_of_customers"].tolist() == pytest.approx([1 / 7, 1 / 7, 2 / 7, 0, 3 / 7])
    assert profile["revenue"].tolist() == pytest.approx([60, 100, 850, 0, 130])
    assert profile["share_of_revenue"].tolist() == pytest.approx(np.array([60, 100, 850, 0, 130]) / 1140)
    # middle: E and F, 850 over 3 + 4 transactions; lapsed: C, D, G.
    assert profile.loc["middle", "average_order_value"] == pytest.approx(850 / 7)
    assert profile.loc["middle", "mean_purchase_days"] == pytest.approx(3.0)
    assert profile.loc["lapsed", "mean_days_since_last_purchase"] == pytest.approx((305 + 305 + 345) / 3)
    assert np.isnan(profile.loc["lapsed valuable", "average_order_value"])
    assert profile["action"].tolist() == [r["action"] for r in RULES_3]


def test_segment_profile_with_predictions(log):
    seg = rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END)
    predictions = pd.DataFrame(
        {"clv": [10.0, 20, 30, 40, 50, 60, 70], "p_alive": [0.9, 0.8, 0.1, 0.1, 0.5, 0.7, 0.2]},
        index=[IDS[n] for n in "ABCDEFG"],
    )
    profile = segment_profile(seg, predictions)
    assert profile.loc["middle", "mean_clv"] == pytest.approx(55)  # E 50, F 60
    assert profile.loc["lapsed", "total_clv"] == pytest.approx(30 + 40 + 70)
    assert profile.loc["lapsed", "share_of_clv"] == pytest.approx(140 / 280)
    assert profile.loc["champions", "mean_p_alive"] == pytest.approx(0.9)
    with pytest.raises(DataValidationError) as error:
        segment_profile(seg, predictions.drop(index=IDS["G"]))
    assert str(error.value).startswith("predictions: 1 of 7 customers have no clv/p_alive (e.g. customer '0007')")


def test_portfolio_historical_value_exact(log):
    customers = customer_value_table(log, observation_end=END)
    portfolio = value_loyalty_portfolio(customers, value_split=75, loyalty_split=0.5)
    assert portfolio.value_basis == "historical revenue"
    assert portfolio.loyalty_basis == "recency ratio t_x/T"
    ratio = by_name(recency_ratio(customers))
    # t_x / T: A 335/365, B first purchase on the last day -> 1, C 0, E 274/334, F 274/351, G 20/365.
    assert ratio == pytest.approx({"A": 335 / 365, "B": 1.0, "C": 0.0, "D": 0.0, "E": 274 / 334, "F": 274 / 351, "G": 20 / 365})
    assert by_name(portfolio.customers["portfolio_action"]) == {
        "A": "maintain at lower cost to serve", "B": "retain", "C": "let go / win back", "D": "let go / win back",
        "E": "maintain at lower cost to serve", "F": "retain", "G": "let go / win back",
    }
    cells = portfolio.cells
    assert cells["customers"].tolist() == [2, 0, 2, 3]
    assert cells["value"].tolist() == pytest.approx([900, 0, 110, 130])
    assert cells["share_of_value"].tolist() == pytest.approx(np.array([900, 0, 110, 130]) / 1140)
    assert cells.loc["high value, high loyalty", "value_at_stake"] == pytest.approx(800 * 77 / 351)
    assert cells.loc["low value, low loyalty", "value_at_stake"] == pytest.approx(50 + 50 + 30 * 345 / 365)


def test_portfolio_quantile_split_and_predictions(log):
    customers = customer_value_table(log, observation_end=END)
    predictions = pd.DataFrame(
        {"clv": [1.0, 2, 3, 4, 5, 6, 7], "p_alive": [0.9, 0.2, 0.6, 0.4, 0.5, 0.1, 0.8]},
        index=[IDS[n] for n in "ABCDEFG"],
    )
    portfolio = value_loyalty_portfolio(customers, predictions, value_split_quantile=0.5, loyalty_split=0.5)
    assert portfolio.value_basis == "predicted CLV" and portfolio.loyalty_basis == "P(alive)"
    assert portfolio.value_threshold == pytest.approx(4.0)  # median of 1..7; high value is above it
    assert by_name(portfolio.customers["portfolio_action"]) == {
        "A": "maintain at lower cost to serve", "B": "let go / win back", "C": "maintain at lower cost to serve",
        "D": "let go / win back", "E": "retain", "F": "develop", "G": "retain",
    }
    assert portfolio.cells.loc["high value, low loyalty", "value_at_stake"] == pytest.approx(6 * 0.9)
    with pytest.raises(ParamsError, match="portfolio_loyalty_split=1.5 must be between 0 and 1"):
        value_loyalty_portfolio(customers, loyalty_split=1.5)


# --------------------------------------------------------------- active versus passive


def test_active_passive_exact_and_winback_list(log):
    customers = customer_value_table(log, observation_end=END)
    loyalty = active_passive_loyalty(customers, min_relationship_days=300, min_orders=3, silence_ratio=2.0)
    # Long-lived: A (365 days, 3 purchase days), F (351, 4), G (365, 3); E has 2 purchase days.
    assert by_name(loyalty.customers["loyalty_status"]) == {
        "A": "active", "B": "short relationship", "C": "short relationship", "D": "short relationship",
        "E": "short relationship", "F": "active", "G": "passive",
    }
    assert loyalty.customers.loc[IDS["G"], "silence_ratio"] == pytest.approx(345 / 10)
    assert loyalty.counts.loc["passive", "customers"] == 1
    assert loyalty.counts.loc["passive", "share_of_long_lived"] == pytest.approx(1 / 3)
    assert loyalty.counts.loc["active", "value"] == pytest.approx(860)
    listed = loyalty.winback_list(salt="pepper")
    expected_id = pseudonymize(["0007"]).iloc[0]
    assert listed.index.tolist() == [expected_id]
    assert "0007" not in listed.to_string()
    # A long silence that is short in absolute days is not yet passive.
    strict = active_passive_loyalty(customers, min_relationship_days=300, silence_ratio=0.1, min_silence_days=60)
    assert by_name(strict.customers["loyalty_status"])["A"] == "active"  # silent 30 days < 60
    assert by_name(strict.customers["loyalty_status"])["F"] == "passive"  # 77 days > 0.1 x 91.3 and >= 60
    with pytest.raises(ParamsError, match="loyalty_min_orders=1 must be at least 2"):
        active_passive_loyalty(customers, min_orders=1)


def test_active_passive_recovers_simulated_lapsers():
    # Seeded simulation: 300 customers buy every g days (g uniform 10..60, +-20% jitter)
    # from a start in the first 60 days; a known third stop buying 250 days before the end.
    rng = np.random.default_rng(6)
    end = pd.Timestamp("2021-12-31")
    start = pd.Timestamp("2020-01-01")
    rows, truth = [], {}
    for i in range(300):
        gap = rng.uniform(10, 60)
        day = rng.uniform(0, 60)
        stop = (end - start).days - (250 if i % 3 == 0 else 0)
        while day <= stop:
            rows.append((f"c{i}", start + pd.Timedelta(days=int(day)), 10.0))
            day += gap * rng.uniform(0.8, 1.2)
        truth[f"c{i}"] = "passive" if i % 3 == 0 else "active"
    log = pd.DataFrame(rows, columns=["customer_id", "date", "amount"])
    loyalty = active_passive_loyalty(customer_value_table(log, observation_end=end))
    status = loyalty.customers["loyalty_status"]
    assert (status != "short relationship").all()
    assert (status == pd.Series(truth).reindex(status.index)).mean() == 1.0


# -------------------------------------------------------------------------- migration


def test_segment_migration_exact(log):
    migration = segment_migration(log, RULES_3, calibration_end="2020-06-30", observation_end=END, n_bins=3)
    # At 2020-06-30 (B not yet a customer): A, F champions; C, D middle; E, G lapsed.
    # At the end: A champions, F middle; C, D lapsed; E middle, G lapsed.
    counts = migration.counts
    assert int(counts.to_numpy().sum()) == 6
    assert counts.loc["champions", "champions"] == 1 and counts.loc["champions", "middle"] == 1
    assert counts.loc["middle", "lapsed"] == 2
    assert counts.loc["lapsed", "middle"] == 1 and counts.loc["lapsed", "lapsed"] == 1
    assert migration.shares.loc["lapsed"].tolist() == pytest.approx([0, 0, 0.5, 0, 0.5])
    assert migration.shares.loc["recent"].isna().all()
    assert (migration.moved_up, migration.stayed, migration.moved_down) == pytest.approx((1 / 6, 2 / 6, 3 / 6))
    assert migration.movement()["customers"].tolist() == [1, 2, 3]
    with pytest.raises(DataValidationError, match="calibration_end .2020-12-31. must be before observation_end"):
        segment_migration(log, RULES_3, calibration_end=END, observation_end=END, n_bins=3)


# --------------------------------------------------------------- pseudonyms and export


def test_pseudonyms_are_keyed_hmac_sha256(monkeypatch):
    # RFC 2104 HMAC computed by the standard library, independently of crm_lib.keys.
    import hmac

    expected = hmac.new(b"test-key-0123456789abcdef", b"0001", hashlib.sha256).hexdigest()[:16]
    first = pseudonymize(["0001", "0002"])
    assert first.iloc[0] == expected
    assert first.equals(pseudonymize(["0001", "0002"], salt="ignored: the key replaces the salt"))
    assert pseudonymize([1]).iloc[0] == pseudonymize(["1"]).iloc[0]
    monkeypatch.setenv("CRM_PSEUDONYM_KEY", "another-key-0123456789")
    assert not (first.to_numpy() == pseudonymize(["0001", "0002"]).to_numpy()).any()


def test_export_round_trip_csv_and_parquet(log, tmp_path):
    seg = rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END)
    portfolio = value_loyalty_portfolio(seg.customers, value_split=75)
    loyalty = active_passive_loyalty(seg.customers, min_relationship_days=300)
    actions = customer_actions(seg, portfolio, loyalty, salt="pepper")
    # G is passive but of low value: no win-back; F: high value, active -> retain.
    assert actions.loc[IDS["G"], "recommended_action"] == "let go / win back"
    assert actions.loc[IDS["F"], "recommended_action"] == "retain"
    paths = export_customer_actions(actions, "exports")  # under the private folder
    assert paths["csv"].parent == private_dir() / "exports"
    assert sorted(paths) == ["csv", "parquet"]
    for path in paths.values():
        back = read_customer_actions(path)
        pd.testing.assert_frame_equal(back, actions, check_dtype=path.suffix == ".parquet")
        assert back.index.tolist()[:2] == ["0001", "0002"]  # leading zeros kept
        assert back.loc["0007", "pseudonymous_id"] == pseudonymize(["0007"]).iloc[0]


def test_export_errors(log, tmp_path):
    blocker = private_dir() / "file.txt"
    blocker.write_text("x")
    table = pd.DataFrame({"segment": ["a"]}, index=pd.Index(["1"], name="customer_id"))
    with pytest.raises(ParamsError, match="is a file, not a folder; set export_dir in params"):
        export_customer_actions(table, "file.txt")
    with pytest.raises(ParamsError, match="leaves the private folder"):
        export_customer_actions(table, tmp_path)
    with pytest.raises(ParamsError, match="leaves the private folder"):
        export_customer_actions(table, "../../escape")
    with pytest.raises(ParamsError, match=r"export formats \['xlsx'\] not supported"):
        export_customer_actions(table, "", formats=["xlsx"])
    with pytest.raises(DataValidationError, match="the index is named None, not 'customer_id'"):
        export_customer_actions(table.reset_index(drop=True), "")


def test_win_back_recommended_for_passive_high_value(log):
    seg = rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END)
    portfolio = value_loyalty_portfolio(seg.customers, value_split=20)  # G (30) is now high value
    loyalty = active_passive_loyalty(seg.customers, min_relationship_days=300)
    actions = customer_actions(seg, portfolio, loyalty, salt="pepper")
    assert actions.loc[IDS["G"], "recommended_action"] == "win back"
    assert (actions["recommended_action"] == "win back").sum() == 1


# ------------------------------------------------------------------------------ CDNOW


def test_cdnow_single_purchasers_all_score_f1():
    from crm_lib.data import load_transactions
    from crm_lib.datasets import CDNOW_COLUMN_MAP
    from crm_lib.summary import rfm_summary

    log = load_transactions("embedded:CDNOW_master.txt", column_map=CDNOW_COLUMN_MAP, sep=r"\s+", date_format="%Y%m%d")
    seg = rfm_segmentation(log.transactions)
    one_timers = int((rfm_summary(log, time_unit="D")["frequency"] == 0).sum())
    distribution = seg.score_distribution()
    assert distribution["F"].loc[1] == one_timers  # frequency 0 in lifetimes' terms
    assert distribution["F"].loc[2] == 0  # the tie group covers bin 2 too: documented empty bin
    assert distribution.sum().tolist() == [23570] * 3
    assert segment_profile(seg)["customers"].sum() == 23570
    assert segment_profile(seg)["share_of_revenue"].sum() == pytest.approx(1.0)


def test_migration_default_calibration_end_is_mid_window(log):
    # First purchase 2020-01-01, end 2020-12-31: halfway is 2020-07-01 12:00, i.e. day 2020-07-01.
    migration = segment_migration(log, RULES_3, observation_end=END, n_bins=3)
    assert migration.calibration_end == pd.Timestamp("2020-07-01")


def test_format_for_report(log):
    from crm_lib.segments import format_for_report

    profile = segment_profile(rfm_segmentation(log, RULES_3, n_bins=3, observation_end=END))
    shown = format_for_report(profile, "EUR")
    assert shown.loc["middle", "share of customers"] == "28.6%"
    assert shown.loc["middle", "revenue (EUR)"] == "850.00"
    assert shown.loc["lapsed valuable", "average order value (EUR)"] == ""
    assert shown.loc["lapsed", "customers"] == "3"


def test_hide_customer_ids_in_index_column_and_values():
    from crm_lib.segments import hide_customer_ids, pseudonymize

    real = ["00001", "00002"]
    expected = pseudonymize(real, "salt").tolist()
    table = pd.DataFrame({"clv": [1.0, 2.0]}, index=pd.Index(real, name="customer_id"))
    assert hide_customer_ids(table, "salt").index.tolist() == expected
    paths = pd.DataFrame({"customer_id": ["00002", "00001", "00002"], "age": [0, 0, 1]})
    assert hide_customer_ids(paths, "salt", column="customer_id")["customer_id"].tolist() == [
        expected[1], expected[0], expected[1]
    ]
    examples = pd.Series(real, index=["strangers", "true friends"])
    hidden = hide_customer_ids(examples, "salt", values=True)
    assert hidden.tolist() == expected and hidden.index.tolist() == ["strangers", "true friends"]
    assert not set(real) & set(hidden)


def test_value_basis_names_the_clv_horizon_recorded_by_crm_lib_clv(log):
    # crm_lib.clv.customer_value_table records horizon_months in attrs; the report's
    # sentences then say which CLV the value is.
    customers = customer_value_table(log, observation_end=END)
    predictions = pd.DataFrame({"clv": np.arange(1.0, 8.0), "p_alive": np.full(7, 0.5)},
                               index=[IDS[n] for n in "ABCDEFG"])
    predictions.attrs["horizon_months"] = 12
    assert value_loyalty_portfolio(customers, predictions).value_basis == "predicted 12-month CLV"
    assert active_passive_loyalty(customers, predictions).value_basis == "predicted 12-month CLV"
    assert active_passive_loyalty(customers, None).value_basis == "historical revenue"
