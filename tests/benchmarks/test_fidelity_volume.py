"""Fact 9 of ``benchmarks/fidelity.py`` (``benchmarks/fidelity_volume.py``): the estimator by hand and against brute force,
its standard error against replications, the data's values, and a row that tells a market with a volume level from one without."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmarks.fidelity_setup import synthetic_market
from benchmarks.fidelity_volume import binance_us_hours, volume_clustering, window_autocorrelation


def brute_force(x: np.ndarray, ok: np.ndarray, lag: int) -> float:
    a, b = [], []
    for w in range(x.shape[0]):
        for t in range(x.shape[1] - lag):
            if ok[w, t] and ok[w, t + lag]:
                a.append(x[w, t])
                b.append(x[w, t + lag])
    return float(np.corrcoef(a, b)[0, 1])


def test_window_autocorrelation_on_a_hand_made_pair_of_windows():
    """Two windows, each flat at its own level: the pairs (1, 1), (1, 1), (3, 3), (3, 3) correlate 1; never across windows."""
    x = np.array([[1.0, 1.0, 1.0], [3.0, 3.0, 3.0]])
    r, se, n = window_autocorrelation(x, np.ones_like(x, dtype=bool), 1)
    assert (r, n) == (pytest.approx(1.0), 4)
    assert se == pytest.approx(0.0, abs=1e-12)
    r, _, n = window_autocorrelation(np.array([[1.0, 2.0, 1.0, 2.0]]), np.array([[True, True, False, True]]), 1)
    assert n == 1 and np.isnan(r)  # one pair: no correlation


@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(3, 8)), elements=st.floats(-5, 5, allow_subnormal=False)),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_window_autocorrelation_equals_brute_force(x, data):
    ok = data.draw(hnp.arrays(bool, x.shape))
    lag = data.draw(st.integers(1, x.shape[1] - 1))
    r, se, n = window_autocorrelation(x, ok, lag)
    assert n == int((ok[:, :-lag] & ok[:, lag:]).sum())
    a, b = x[:, :-lag][ok[:, :-lag] & ok[:, lag:]], x[:, lag:][ok[:, :-lag] & ok[:, lag:]]
    if n < 2:
        assert np.isnan(r) and np.isnan(se)
        return
    assume(np.ptp(a) > 1e-6 and np.ptp(b) > 1e-6)  # a side that does not vary has no correlation
    assert r == pytest.approx(brute_force(x, ok, lag), abs=1e-9)
    assert r == pytest.approx(window_autocorrelation(x[::-1], ok[::-1], lag)[0], abs=1e-9)  # the windows' order is no matter


def test_the_standard_error_matches_the_spread_over_replications():
    """Windows with a level of sd 0.5 and bars of sd 0.5 (correlation 0.5): the mean error within 20% of the spread of 300 estimates."""
    gen = np.random.default_rng(0)
    estimates, errors = [], []
    for _ in range(300):
        x = 0.5 * gen.standard_normal((200, 1)) + 0.5 * gen.standard_normal((200, 60))
        r, se, _ = window_autocorrelation(x, gen.random((200, 60)) > 0.02, 10)
        estimates.append(r)
        errors.append(se)
    assert np.mean(estimates) == pytest.approx(0.5, abs=0.01)
    assert np.std(estimates, ddof=1) / np.mean(errors) == pytest.approx(1.0, abs=0.2)


def test_clusters_of_windows_widen_the_error_when_the_windows_of_a_cluster_share_their_level():
    """Days of 24 hours sharing a day's level: by window the error is too small, by day it is not."""
    gen = np.random.default_rng(1)
    x = (0.5 * np.repeat(gen.standard_normal((21, 1)), 24, axis=0) + 0.2 * gen.standard_normal((504, 1))
         + 0.5 * gen.standard_normal((504, 60)))
    ok = np.ones(x.shape, dtype=bool)
    by_window = window_autocorrelation(x, ok, 10)
    by_day = window_autocorrelation(x, ok, 10, cluster=np.arange(504) // 24)
    assert by_day[0] == by_window[0]
    assert by_day[1] > 2 * by_window[1]


@pytest.mark.parametrize("lag,shape,cluster,message", [
    (0, (2, 5), None, r"lag must be an int in \[1, 4\] for windows of 5 bars, got 0"),
    (5, (2, 5), None, r"lag must be an int in \[1, 4\] for windows of 5 bars, got 5"),
    (1.0, (2, 5), None, r"lag must be an int in \[1, 4\] for windows of 5 bars, got 1.0"),
    (1, (2, 5), np.zeros(3), r"cluster must label each of the 2 windows, got shape \(3,\)"),
])
def test_window_autocorrelation_refuses_what_it_cannot_measure(lag, shape, cluster, message):
    with pytest.raises(ValueError, match=message):
        window_autocorrelation(np.zeros(shape), np.ones(shape, dtype=bool), lag, cluster)
    with pytest.raises(ValueError, match=r"log_volume and valid must have one shape \(W, T\), got \(2, 5\) and \(5,\)"):
        window_autocorrelation(np.zeros((2, 5)), np.ones(5, dtype=bool), 1)


def test_the_data_keeps_busy_hours_busy():
    """The packaged Binance.US hours: 0.65 at lag 1, 0.52 at lag 10, 0.47 at lag 30 (the calibration's figures)."""
    x, ok, day = binance_us_hours()
    assert x.shape == (504, 60) and day.max() == 20
    got = [window_autocorrelation(x, ok, k, cluster=day)[0] for k in (1, 10, 30)]
    assert got == pytest.approx([0.646, 0.519, 0.465], abs=0.0005)


def test_the_row_holds_with_the_default_level_and_fails_without_one():
    """The fact's rows on 256 episodes: the default market near 0.5 and holding; a market without a level near 0 and failing."""
    m = synthetic_market()
    with_level = volume_clustering(m, 256, 0)
    without = volume_clustering(m, 256, 0, volume_level_sigma=0.0)
    assert [r["holds"] for r in with_level] == ["yes"] * 3
    assert [r["holds"] for r in without] == ["no"] * 3
    for r in with_level:
        assert abs(float(r["measured"].split(" ± ")[0]) - 0.5) < 0.1
    for r in without:
        assert abs(float(r["measured"].split(" ± ")[0])) < 0.1
