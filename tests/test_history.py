"""The history page of kept runs (crm_lib.report.history) from hand-made headline.json and tracking.json files."""
from __future__ import annotations

import json

import pytest

from crm_lib.report.history import HISTORY_PAGE, change_sentences, render_history, write_history_page
from crm_lib.report.index import write_runs_index
from crm_lib.report.publish import publish_dated
from crm_lib.report.render import remote_references


def _figure(key, value, unit, lower=None, upper=None, page="04_lifetime_value.html"):
    return {"key": key, "text": f"{key} is {value}", "value": value, "unit": unit, "lower": lower, "upper": upper,
            "anchor": "", "notebook": page.removesuffix(".html"), "page": f"{page}#{key}"}


def _headline(end, equity, lower, upper, alive, champions, lost, h1):
    figures = [
        _figure("customers", 23570, "customers", page="01_data_overview.html"),
        _figure("customer_equity", equity, "USD", lower, upper),
        _figure("share_alive", alive, "share"),
        _figure("segment_share_champions", champions, "share", page="02_segmentation.html"),
        _figure("segment_share_lost", lost, "share", page="02_segmentation.html"),
        _figure("segment_share_new", 0.05, "share", page="02_segmentation.html"),
        _figure("loyalty_H1", h1, "verdict", page="05_loyalty_profit.html"),
    ]
    return {"run": "shop", "observation_end": end, "calibration_end": None, "figures": {f["key"]: f for f in figures}}


MAY = _headline("1998-05-31", 241000.0, 230000.0, 252000.0, 0.438, 0.12, 0.30, "supported")
JUNE = _headline("1998-06-30", 231000.0, 220000.0, 243000.0, 0.45, 0.109, 0.308, "not supported")


def test_change_sentences_state_each_move_with_numbers_worked_out_by_hand():
    sentences = change_sentences(MAY, JUNE)
    # (231,000 - 241,000) / 241,000 = -4.149%
    assert ("Customer equity fell 4.1% to 231,000 USD (interval 220,000 USD to 243,000 USD), "
            "from 241,000 USD on 1998-05-31.") in sentences
    assert "Customers unchanged at 23,570 customers." in sentences
    # 45.0% - 43.8% = 1.2 points
    assert "Share of customers alive rose 1.2 percentage points to 45.0% (from 43.8% on 1998-05-31)." in sentences
    assert "Loyalty H1 changed from supported to not supported." in sentences
    assert ("Segment shares moved most in champions (-1.1 points, to 10.9%) and lost (+0.8 points, to 30.8%)."
            in sentences)
    assert len(sentences) == 5  # one per figure, the three segment shares in one sentence


def test_new_and_dropped_figures_are_said():
    before = {"observation_end": "2021-01-31", "figures": {"revenue": _figure("revenue", 10.0, "USD")}}
    now = {"observation_end": "2021-02-28", "figures": {"customers": _figure("customers", 5, "customers")}}
    assert change_sentences(before, now) == ["Customers is new in this run: 5 customers.",
                                             "Revenue is not in this run (it was on 2021-01-31)."]


def _score(end, predicted, actual):
    return {"observation_end": end, "scored_to": "1998-06-30", "elapsed_periods": 4.3, "horizon_periods": 52.0,
            "time_unit": "W", "model": "bg_nbd", "n_customers": 23570, "predicted_purchases": predicted,
            "actual_purchases": actual, "interval_lower": predicted - 100, "interval_upper": predicted + 100,
            "level": 0.9, "inside": abs(predicted - actual) <= 100, "mae": 0.31, "mae_naive": 0.34,
            "predicted_revenue": 1000.0, "actual_revenue": 1100.0,
            "deciles": [{"decile": d, "customers": 10, "predicted": d / 10, "actual": d / 9} for d in range(1, 11)],
            "curve": [{"period": 1.0, "predicted": predicted / 2, "actual": actual / 2},
                      {"period": 4.3, "predicted": predicted, "actual": actual}], "equity": None}


@pytest.fixture
def run_dir(tmp_path):
    run_dir = tmp_path / "reports" / "shop"
    for headline in (MAY, JUNE):
        staging = tmp_path / f"staging-{headline['observation_end']}"
        staging.mkdir()
        (staging / "index.html").write_text("run", encoding="utf-8")
        (staging / "manifest.json").write_text(json.dumps({"title": "Shop", "status": "ok", "data": None}))
        (staging / "headline.json").write_text(json.dumps(headline), encoding="utf-8")
        if headline is JUNE:
            tracking = {"run": "shop", "observation_end": "1998-06-30", "scores": [_score("1998-05-31", 1900.0, 2237.0)]}
            (staging / "tracking.json").write_text(json.dumps(tracking), encoding="utf-8")
        publish_dated(staging, run_dir, headline["observation_end"], keep_runs=5)
    return run_dir


def test_history_page_is_static_self_contained_and_byte_identical(run_dir):
    page = write_history_page(run_dir, title="Shop").read_bytes()
    assert write_history_page(run_dir, title="Shop").read_bytes() == page
    text = page.decode("utf-8")
    assert remote_references(text) == [] and "<script" not in text
    assert text.count("data:image/png;base64,") == 3  # headline trends, segment shares, predictions
    assert "1998-05-31, 1998-06-30" in text
    assert "Customer equity fell 4.1% to 231,000 USD" in text
    # each table value links to the page of its run that states it
    assert 'href="1998-05-31/04_lifetime_value.html#customer_equity"' in text
    assert "The predictions of 1998-05-31 expected 1,900 repeat purchases" in text
    assert "2,237 were made (-15.1% off), outside the 90% predictive interval 1,800 to 2,000." in text
    assert (run_dir / HISTORY_PAGE).is_file()
    runs = write_runs_index(run_dir.parent).read_text(encoding="utf-8")
    assert '<a href="shop/latest/index.html">' in runs and '<a href="shop/history.html">history</a>' in runs


def test_tracking_sentence_compares_a_complete_horizon_with_its_interval():
    from crm_lib.report.history import tracking_sentence

    equity = {"estimate": 250000.0, "level": 0.95, "predictive_lower": 230000.0, "predictive_upper": 270000.0,
              "horizon_months": 12}
    done = tracking_sentence({**_score("1997-06-30", 1900.0, 1950.0), "equity": {
        **equity, "complete": True, "realised": 262000.0, "inside": True}})
    assert done.endswith("Its customer equity, 250,000 (95% predictive interval 230,000 to 270,000), was realised at "
                         "262,000, inside that interval.")
    waiting = tracking_sentence({**_score("1998-05-31", 1900.0, 1950.0), "equity": {**equity, "complete": False}})
    assert waiting.endswith("can be checked once its 12-month horizon has passed.")


def test_a_first_run_has_nothing_to_compare_or_score(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "headline.json").write_text(json.dumps(MAY), encoding="utf-8")
    publish_dated(staging, tmp_path / "shop", "1998-05-31", keep_runs=2)
    text = render_history(tmp_path / "shop", title="Shop", packages={}, version="test")
    assert "nothing to compare yet" in text and "No earlier predictions could be scored yet" in text
    assert write_history_page(tmp_path / "nothing", title="Shop") is None


def test_retention_at_another_age_is_not_compared_and_the_trend_line_breaks():
    from crm_lib.report.history import _stretches

    def run(end, value, unit):
        return {"observation_end": end, "figures": {"retention_lapse": _figure("retention_lapse", value, unit)}}

    may, june = run("1998-05-31", 0.50, "share at 334 days"), run("1998-06-30", 0.45, "share at 364 days")
    assert change_sentences(may, june) == [
        "Retention (lapse rule) is 45.0% at 364 days; not compared with 50.0% at 334 days on 1998-05-31, "
        "which measured something else."]
    # the same age is compared: 45.0% - 50.0% = -5.0 points
    july = run("1998-07-31", 0.40, "share at 364 days")
    assert change_sentences(june, july) == [
        "Retention (lapse rule) fell 5.0 percentage points to 40.0% at 364 days (from 45.0% at 364 days on 1998-06-30)."]
    assert _stretches([may, june, july], "retention_lapse") == [[0], [1, 2]]
    # the run index shows such a share as a percentage too
    from crm_lib.report.index import _shown_value

    assert _shown_value({"value": 0.45, "unit": "share at 364 days", "lower": 0.44, "upper": 0.46}) == \
        "45.0% at 364 days (44.0% to 46.0%)"


def test_carried_over_figures_are_neither_compared_nor_plotted():
    from crm_lib.report.history import _series, figures_table
    from crm_lib.report.runner import mark_carried

    june = json.loads(json.dumps(JUNE))
    mark_carried(june, {"05_loyalty_profit"})
    assert june["figures"]["loyalty_H1"]["carried_over"] is True
    assert "carried_over" not in june["figures"]["customer_equity"]
    mark_carried(june, {"04_lifetime_value"})  # as if 04 had not been rerun either
    sentences = change_sentences(MAY, june)
    assert "Not recomputed in this run (pages carried over from an earlier run): Customer equity, Loyalty H1, " \
           "Share of customers alive." in sentences
    assert not any(s.startswith(("Customer equity", "Share of customers alive", "Loyalty H1")) for s in sentences)
    values = _series([MAY, june], "customer_equity")
    assert values[0] == 241000.0 and values[1] != values[1]  # NaN: not this run's figure
    _, rows = figures_table([{**MAY, "entry": "1998-05-31"}, {**june, "entry": "1998-06-30"}])
    assert "231,000 USD (interval 220,000 USD to 243,000 USD) (carried over)" in " ".join(rows[1])


def test_unexpected_errors_in_the_history_extras_are_logged_not_raised(tmp_path, monkeypatch, caplog):
    from types import SimpleNamespace

    import crm_lib.context
    import crm_lib.report.runner as runner
    from crm_lib.report.history import record_run

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(crm_lib.context, "session", broken)
    params = SimpleNamespace(path=tmp_path / "shop.yaml", parameters={}, run_name="shop")
    with caplog.at_level("WARNING"):
        record_run(params, tmp_path / "private", tmp_path / "private-staging", tmp_path)
    assert "unexpected error" in caplog.text and "run shop" in caplog.text
    caplog.clear()
    monkeypatch.setattr(runner, "write_history_page", broken)
    with caplog.at_level("WARNING"):
        runner._write_history(tmp_path / "shop", "Shop")
    assert "history page of the run shop" in caplog.text


def test_tracking_sentences_of_hourly_data_without_purchases_and_over_the_whole_horizon():
    from crm_lib.report.history import tracking_sentence

    hourly = {**_score("2021-01-31", 12.0, 0.0), "time_unit": "h", "elapsed_periods": 720.0,
              "horizon_periods": 8760.0}
    sentence = tracking_sentence(hourly)
    assert "customers in the 720.0 hours since (of the 8,760-hour horizon); no purchases arrived, inside" in sentence
    assert "% off" not in sentence
    whole = tracking_sentence({**_score("1997-06-30", 1900.0, 1950.0), "elapsed_periods": 52.0})
    assert "customers over its whole 52-week horizon; 1,950 were made (-2.6% off), inside" in whole
