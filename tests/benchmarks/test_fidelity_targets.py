"""The targets of ``benchmarks/fidelity.py``: what a true market gives, checked by hand.

The fidelity table is only as good as its targets, so each pure target function is
checked on inputs small enough to work out on paper, and against a brute-force
reference where a property fits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.fidelity_targets import (
    ac_twap_shortfall,
    cross_frequency,
    latency_slippage_sd_bps,
    log_return_sd_bps,
    mean_se,
    sd_se,
    share_se,
    synthetic_sigma_bar_bps,
    wilson_interval,
)

INF = np.inf


def test_cross_frequency_on_a_hand_made_series():
    """Buy at 10 each bar; next lows 10 (a touch), 9 (a trade through), no trade (crosses nothing)."""
    price = np.array([[10.0, 10.0, 10.0, 10.0]])
    low = np.array([[11.0, 10.0, 9.0, INF]])
    assert cross_frequency(price, low, 1, strict=True) == (1 / 3, 3)  # only t=1 (next low 9)
    assert cross_frequency(price, low, 1, strict=False) == (2 / 3, 3)  # t=0 touches 10, t=1 goes through
    assert cross_frequency(price, low, 2, strict=True) == (1.0, 2)  # both windows reach 9
    assert cross_frequency(price, low, 3, strict=False) == (1.0, 1)


def test_cross_frequency_pools_series_and_never_reads_the_decision_bar():
    price = np.array([[10.0, 5.0], [10.0, 5.0]])
    low = np.array([[0.0, 9.0], [0.0, 11.0]])  # the decision bar's own low (0) must not count
    assert cross_frequency(price, low, 1, strict=True) == (0.5, 2)


@pytest.mark.parametrize("horizon", [0, 4, -1])
def test_cross_frequency_refuses_a_horizon_outside_the_series(horizon):
    with pytest.raises(ValueError, match="horizon must be in"):
        cross_frequency(np.ones((1, 4)), np.ones((1, 4)), horizon, strict=True)


@given(
    st.lists(st.lists(st.sampled_from([8.0, 9.0, 10.0, 11.0, INF]), min_size=6, max_size=6), min_size=1, max_size=4),
    st.integers(1, 5),
)
def test_cross_frequency_equals_brute_force_and_touch_bounds_through(lows, horizon):
    low = np.array(lows)
    price = np.full(low.shape, 10.0)
    for strict in (True, False):
        hits = count = 0
        for s in range(low.shape[0]):
            for t in range(low.shape[1] - horizon):
                nxt = [low[s, u] for u in range(t + 1, t + 1 + horizon)]
                hits += any((x < 10.0) if strict else (x <= 10.0) for x in nxt)
                count += 1
        assert cross_frequency(price, low, horizon, strict) == (hits / count, count)
    assert cross_frequency(price, low, horizon, False)[0] >= cross_frequency(price, low, horizon, True)[0]


def test_almgren_chriss_closed_form_of_the_core_test_setting():
    """X = 10, N = 10, tau = 60 s, gamma 0.5, epsilon 1, eta 300: 22.5 + 10 + 50 = 82.5."""
    assert ac_twap_shortfall(10.0, 10, 60.0, 0.5, 300.0, 1.0) == pytest.approx(82.5)


@given(st.floats(0.1, 100), st.integers(1, 50), st.floats(1, 600), st.floats(0, 5), st.floats(0, 1000), st.floats(0, 5))
def test_almgren_chriss_twap_equals_the_general_schedule_formula(x, n, tau, gamma, eta, epsilon):
    """E[IS] = gamma/2 (X^2 - sum n_k^2) + epsilon X + eta/tau sum n_k^2 with n_k = X/N."""
    sum_sq = n * (x / n) ** 2
    general = gamma / 2 * (x**2 - sum_sq) + epsilon * x + eta / tau * sum_sq
    assert ac_twap_shortfall(x, n, tau, gamma, eta, epsilon) == pytest.approx(general, rel=1e-9, abs=1e-9)


def test_almgren_chriss_refuses_no_children():
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        ac_twap_shortfall(1.0, 0, 60.0, 0.1, 1.0, 0.0)


def test_latency_slippage_adds_variances():
    assert latency_slippage_sd_bps(1.5, 8.8, 0.0) == 1.5
    assert latency_slippage_sd_bps(3.0, 4.0, 60.0) == pytest.approx(5.0)  # a whole bar: 3-4-5
    assert latency_slippage_sd_bps(0.0, 8.0, 15.0) == pytest.approx(4.0)  # a quarter bar: half the sd
    # the figures: 8.8 bps per minute adds ~3.6 bps of sd at 10 s and ~6.2 at 30 s
    assert math.sqrt(latency_slippage_sd_bps(1.55, 8.8, 10.0) ** 2 - 1.55**2) == pytest.approx(3.59, abs=0.01)
    assert math.sqrt(latency_slippage_sd_bps(1.55, 8.8, 30.0) ** 2 - 1.55**2) == pytest.approx(6.22, abs=0.01)
    with pytest.raises(ValueError, match="latency_s must be >= 0"):
        latency_slippage_sd_bps(1.0, 1.0, -1.0)


def test_log_return_sd_skips_returns_that_touch_a_missing_bar():
    r = 0.001
    close = 100 * np.exp(np.array([0, r, 0, r, r, 0]))
    valid = np.array([True, True, True, True, False, True])  # bar 4 was missing (carried close)
    # returns: r, -r, r, [0 from a carried close], [-r into it]: only r, -r, r count
    expected = np.std([r, -r, r], ddof=1) * 1e4
    assert log_return_sd_bps(close, valid) == pytest.approx(expected)
    assert log_return_sd_bps(close[:4]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least 2 returns"):
        log_return_sd_bps(close[:2])


def test_synthetic_sigma_from_the_spec():
    assert synthetic_sigma_bar_bps(0.0008, 0.0, 0.01) == pytest.approx(8.0)
    assert synthetic_sigma_bar_bps(0.0, 0.01, 0.01) == pytest.approx(10.0)  # jumps alone: sqrt(0.01 x 1e-4)


def test_statistics_helpers():
    assert share_se(1, 4) == (0.25, pytest.approx(math.sqrt(0.25 * 0.75 / 4)))
    assert share_se(0, 10) == (0.0, 0.0)
    assert math.isnan(share_se(0, 0)[0])
    m, se = mean_se(np.array([1.0, 3.0]))
    assert (m, se) == (2.0, pytest.approx(1.0))
    sd, se = sd_se(np.array([1.0, 2.0, 3.0]))
    assert (sd, se) == (pytest.approx(1.0), pytest.approx(0.5))


def test_wilson_interval_stays_open_at_the_edges_and_covers_the_share():
    lo, hi = wilson_interval(32, 32)
    assert hi == 1.0 and 0.85 < lo < 0.9  # 32 of 32 does not prove a share of 1 (lower bound 0.893)
    lo, hi = wilson_interval(0, 32)
    assert lo == 0.0 and 0.1 < hi < 0.11
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - 0.5 == pytest.approx(0.5 - lo)
