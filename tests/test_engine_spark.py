"""The PySpark summary and scoring against the pandas path on CDNOW, in Spark local mode.

One quiet local session for the module (JVM start-up is most of the time). Marked slow:
CI runs it (.ci/run installs Java 17 when it is missing).
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None:  # pragma: no cover - CI installs Java in .ci/run
    pytest.skip("no java on PATH: Spark needs Java 17 (apt-get install openjdk-17-jre-headless)",
                allow_module_level=True)

from crm_lib.clv import customer_value_table, fit_model, fit_spend_model  # noqa: E402
from crm_lib.engines import spark as engine  # noqa: E402
from crm_lib.summary import rfm_summary  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # PySpark 4.x warns that it "does not yet fully support pandas >= 3"; the comparisons below are the check.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
]
TOL = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def spark():
    session = engine.local_session("crm-workbench-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def cdnow_spark(spark, cdnow_log):
    return spark.createDataFrame(cdnow_log.transactions[["customer_id", "date", "amount"]]).cache()


def _as_pandas(frame) -> pd.DataFrame:
    out = frame.toPandas().set_index("customer_id").sort_index()
    out.index = pd.Index(out.index.astype(str), name="customer_id")
    return out


@pytest.mark.parametrize("time_unit", ["D", "W", "h"])
def test_summary_equals_pandas_on_cdnow(cdnow_log, cdnow_spark, time_unit):
    expected = rfm_summary(cdnow_log, time_unit=time_unit)
    got = _as_pandas(engine.rfm_summary(cdnow_spark, time_unit=time_unit, observation_end=cdnow_log.observation_end))
    pd.testing.assert_frame_equal(got[expected.columns], expected, **TOL)


def test_collapsed_fit_and_scores_equal_the_pandas_path(cdnow_log, cdnow_spark):
    per_customer = rfm_summary(cdnow_log, time_unit="W", observation_end="1998-06-30")
    summary = engine.rfm_summary(cdnow_spark, time_unit="W", observation_end="1998-06-30").cache()
    rows = engine.collapsed_histories(summary)
    assert rows["weight"].sum() == 23570 and len(rows) < 23570 / 5
    fit = fit_model(rows, "bg_nbd", weights=rows["weight"])
    reference = fit_model(per_customer, "bg_nbd")
    np.testing.assert_allclose(fit.params_, reference.params_, rtol=1e-6)
    assert engine.collapsed_spend(summary)["weight"].sum() == (per_customer["frequency"] > 0).sum()
    spend = fit_spend_model(per_customer, nonpositive_spend="exclude")
    expected = customer_value_table(per_customer, reference, spend, discount_rate_monthly=0.01)
    got = _as_pandas(engine.score_customers(summary, reference, spend, time_unit="W"))
    columns = ["frequency", "recency", "T", "monetary_value", "p_alive", "expected_purchases",
               "expected_spend_per_purchase", "clv"]
    pd.testing.assert_frame_equal(got[columns], expected[columns], rtol=1e-10, atol=1e-12)
