"""Customer equity at scale: per-history sums for the expected equity and a sampled
customer-level noise for the predictive interval above ``noise_sample_customers``.

References are independent of the fast path: the per-customer CLV table summed customer by
customer, and the full simulation of every customer (whose mean is checked against the
closed form in test_value_intervals.py) on a base simulated from the papers' stories.
"""
from __future__ import annotations

import numpy as np
import pytest

from crm_lib import clv
from crm_lib.exceptions import ParamsError
from tests.test_value_intervals import MARGIN, MONTHLY_RATE, MONTHS, simulate_story

KWARGS = dict(horizon_months=MONTHS, discount_rate_monthly=MONTHLY_RATE, gross_margin=MARGIN)


@pytest.fixture(scope="module")
def story_base():
    """8,000 customers simulated from the BG/NBD and Gamma-Gamma stories, and both fits."""
    summary = simulate_story(8000, seed=21)[0]
    return (summary, *(fit(summary) for fit in (lambda s: clv.fit_model(s, "bg_nbd"), clv.fit_spend_model)))


def test_expected_equity_from_history_sums_equals_the_per_customer_sum(story_base):
    per_customer = clv.customer_lifetime_value(story_base[1], story_base[2], story_base[0], **KWARGS)
    equity = clv.customer_equity(*story_base[1:], story_base[0], n_draws=2, seed=1, **KWARGS)
    assert equity.estimate == pytest.approx(float(np.sum(per_customer.to_numpy())), rel=1e-12)


def test_sampled_noise_keeps_the_mean_and_spread_of_every_customer_simulated(story_base):
    summary, bg, gg = story_base
    full = clv.customer_equity(bg, gg, summary, n_draws=300, seed=9, noise_sample_customers=None, **KWARGS)
    sampled = clv.customer_equity(bg, gg, summary, n_draws=300, seed=9, noise_sample_customers=1000, **KWARGS)
    # The parameter draws and the expected equity use every customer either way.
    np.testing.assert_array_equal(sampled.draws, full.draws)
    assert (sampled.expected_lower, sampled.expected_upper) == (full.expected_lower, full.expected_upper)
    # Noise about the expected equity: mean 0 and the full simulation's standard deviation
    # (an sd from 300 draws is within about 4% of the truth; unscaled, the sample's would be
    # sqrt(1000 / 8000) = 0.35 of it).
    noise = sampled.predictive_draws - sampled.draws
    assert abs(noise.mean()) < 4 * noise.std(ddof=1) / np.sqrt(len(noise))
    assert sampled.noise_sd == pytest.approx(full.noise_sd, rel=0.15)
    assert "1,000 of the 8,000 customers" in sampled.sample_note and sampled.sample_note in sampled.summary()
    assert full.sample_note == "" and "random" not in full.method


def test_noise_sample_too_small_is_refused(story_base):
    summary, bg, gg = story_base
    with pytest.raises(ParamsError, match="noise_sample_customers"):
        clv.customer_equity(bg, gg, summary, n_draws=2, noise_sample_customers=10, **KWARGS)
