"""sBG expected lifetime: said in words when it is unbounded or not identified (issue 10, item 4)."""
from __future__ import annotations

import numpy as np
import pytest

from crm_lib.exceptions import ParamsError
from crm_lib.retention import fit_cohort_models, lifetime_identification, sbg_survival, value_by_cohort


def test_alpha_near_one_is_not_identified_and_prints_no_number():
    # Issue 10: alpha 1.0000004 with s.e. 0.95 printed "expected lifetime 7,380,973.6 years".
    result = lifetime_identification(1.0000004, 2.0, alpha_se=0.95)
    assert result.status == "not identified" and np.isnan(result.expected_lifetime)
    text = result.sentence("year")
    assert text.startswith("expected lifetime not identified: α = 1.0000004 but its 95% interval of α 0.16 to 6.44")
    assert "7,380" not in text and "years" not in text
    # Wald interval on log alpha: exp(log(1.0000004) +- 1.959964 * 0.95 / 1.0000004).
    assert result.alpha_lower == pytest.approx(np.exp(-1.959964 * 0.95), rel=1e-5)
    assert result.alpha_upper == pytest.approx(np.exp(1.959964 * 0.95), rel=1e-5)


def test_alpha_at_or_below_one_is_unbounded():
    result = lifetime_identification(0.668, 3.806, alpha_se=0.1)
    assert result.status == "unbounded" and np.isnan(result.expected_lifetime)
    assert "unbounded: α = 0.668 ≤ 1" in result.sentence()
    assert lifetime_identification(1.0, 3.0, alpha_interval=(1.2, 1.5)).status == "unbounded"


def test_finite_lifetime_matches_the_sum_of_the_survival_curve():
    result = lifetime_identification(3.0, 2.0, alpha_se=0.2)
    assert result.status == "finite"
    # E[T] = sum over t >= 0 of S(t) (Fader & Hardie 2007, eq. 7), summed far out.
    brute = float(sbg_survival(np.arange(200_000), 3.0, 2.0).sum())
    assert result.expected_lifetime == pytest.approx(brute, rel=1e-4)
    assert result.sentence("year").startswith(f"expected lifetime {brute:,.1f} years (α = 3.000")
    # An interval computed elsewhere that reaches 1 overrides the standard error.
    assert lifetime_identification(3.0, 2.0, alpha_interval=(0.9, 5.0)).status == "not identified"
    with pytest.raises(ParamsError, match="give alpha_se or alpha_interval"):
        lifetime_identification(3.0, 2.0)


def test_value_table_uses_the_words():
    # Fader & Hardie (2007): both published cohorts have alpha < 1 (0.668 and 0.704).
    models = fit_cohort_models({"high end": [1000, 869, 743, 653, 593, 551, 517, 491],
                                "regular": [1000, 631, 468, 382, 326, 289, 262, 241]})
    values = value_by_cohort(models, margin_per_period=100.0, discount_rate=0.1, period_label="year")
    assert values["lifetime_status"].tolist() == ["unbounded", "unbounded"]
    assert values.loc["high end", "lifetime_text"].startswith("expected lifetime unbounded: α = 0.668 ≤ 1")
