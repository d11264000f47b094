"""BG/BB P(alive): the period convention of Fader, Hardie & Shang (2010), eq. 11, checked
against a simulation of the model's story and against lifetimes."""
from __future__ import annotations

import lifetimes
import numpy as np
import pandas as pd
import pytest

from crm_lib.models import BetaGeoBetaBinomFit

# Fader, Hardie & Shang (2010), table 2: the donations data set (6 opportunities).
FHS_PARAMS = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
N_PERIODS = 6


def _model() -> BetaGeoBetaBinomFit:
    model = BetaGeoBetaBinomFit()
    model.params_ = pd.Series(FHS_PARAMS)
    return model


@pytest.fixture(scope="module")
def simulated_groups() -> pd.DataFrame:
    """300,000 BG/BB customers simulated from the paper's story, independently of crm_lib:
    p ~ Beta(alpha, beta), theta ~ Beta(gamma, delta); at the start of every opportunity
    t = 1, 2, ... a living customer dies with probability theta, so she is alive at t
    while the first death chance D ~ Geometric(theta) is later than t; alive, she buys at
    t with probability p. Grouped by history (x, t_x) over n = 6 opportunities, with the
    share alive at opportunity 7 (eq. 11) and 8 (m = 1), and at 6 (the former convention)."""
    alpha, beta, gamma, delta = FHS_PARAMS.values()
    n = 300_000
    rng = np.random.default_rng(2010)
    p = rng.beta(alpha, beta, n)
    death = rng.geometric(rng.beta(gamma, delta, n))
    t = np.arange(1, N_PERIODS + 1)
    buys = (rng.random((n, N_PERIODS)) < p[:, None]) & (t[None, :] < death[:, None])
    x = buys.sum(axis=1)
    tx = np.where(x > 0, N_PERIODS - np.argmax(buys[:, ::-1], axis=1), 0)
    frame = pd.DataFrame({"x": x, "tx": tx, "alive_n": death > N_PERIODS, "alive_next": death > N_PERIODS + 1,
                          "alive_after_next": death > N_PERIODS + 2})
    groups = frame.groupby(["x", "tx"]).agg(customers=("x", "size"), alive_n=("alive_n", "mean"),
                                            alive_next=("alive_next", "mean"),
                                            alive_after_next=("alive_after_next", "mean")).reset_index()
    return groups[groups["customers"] >= 2000].reset_index(drop=True)


def test_p_alive_is_alive_at_the_next_opportunity_as_simulated(simulated_groups):
    g = simulated_groups
    assert len(g) >= 15
    model = _model()
    for m, column in [(0, "alive_next"), (1, "alive_after_next")]:
        formula = model.conditional_probability_alive(g["x"], g["tx"], N_PERIODS, m_periods_in_future=m).to_numpy()
        z = (g[column] - formula) / np.sqrt(formula * (1 - formula) / g["customers"])
        # Every group within 4 binomial standard errors of the simulated share.
        assert np.abs(z).max() < 4, pd.DataFrame({"x": g["x"], "tx": g["tx"], "formula": formula, "z": z})
    # The check has power: the former convention (alive at opportunity n, which is 1 for
    # t_x = n) is many standard errors off the simulated share alive at n + 1.
    former = model.conditional_probability_alive(g["x"], g["tx"], N_PERIODS, m_periods_in_future=-1).to_numpy()
    z_former = (g["alive_next"] - former) / np.sqrt(np.maximum(g["alive_next"] * (1 - g["alive_next"]), 1e-6)
                                                    / g["customers"])
    assert np.abs(z_former).max() > 10
    # ... and matches the share alive at opportunity n instead.
    z_n = (g["alive_n"] - former) / np.sqrt(np.maximum(former * (1 - former), 1e-6) / g["customers"])
    assert np.abs(z_n[former < 1]).max() < 4


def test_p_alive_equals_lifetimes_one_opportunity_later():
    # lifetimes' BetaGeoBetaBinomFitter.conditional_probability_alive(m, x, t_x, n) is alive
    # at opportunity n + m (its docstring), so its m = 1 is eq. 11 and crm_lib's m = 0.
    reference = lifetimes.BetaGeoBetaBinomFitter()
    reference.params_ = pd.Series(FHS_PARAMS)
    x = np.array([0, 1, 1, 3, 4, 6, 2])
    tx = np.array([0, 1, 6, 4, 5, 6, 3])
    model = _model()
    for m in (0, 1, 3):
        np.testing.assert_allclose(model.conditional_probability_alive(x, tx, N_PERIODS, m_periods_in_future=m),
                                   reference.conditional_probability_alive(m + 1, x, tx, N_PERIODS), rtol=1e-10)
    # A customer who bought in the last opportunity was alive in it, but may die before the next.
    assert model.conditional_probability_alive(6, 6, N_PERIODS)[0] < 1
