"""The continuous path between two points (orderbook.market.path.interval_extremes): each interval's min and max."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.engine.state import new_bars
from orderbook.market.bars import load_bars
from orderbook.market.path import interval_extremes
from orderbook.presets import binance_us_sources, replay_config
from orderbook.spec import rng
from tests.orderbook.helpers import random_intents, small_config


@functools.cache
def _replay_config() -> ob.ExchangeConfig:
    return replay_config(load_bars(binance_us_sources()), episode_steps=12)


def market_config(market: str) -> ob.ExchangeConfig:
    return small_config() if market == "synthetic" else _replay_config()


def check_extremes_hold_the_points(bars) -> None:
    """Every interval's min is an int64 at most both its points, its max at least both; entry 0 is point 0."""
    path, low, high = bars.path_ticks, bars.path_low_ticks, bars.path_high_ticks
    assert low.dtype == np.int64 and high.dtype == np.int64
    assert (low[:, :, 0] == path[:, :, 0]).all() and (high[:, :, 0] == path[:, :, 0]).all()
    ends = np.stack([path[:, :, :-1], path[:, :, 1:]])
    assert (low[:, :, 1:] <= ends.min(axis=0)).all()
    assert (high[:, :, 1:] >= ends.max(axis=0)).all()


def test_the_synthetic_bars_range_is_the_continuous_paths_min_and_max():
    """The bar's high and low are the largest and smallest interval extremes; every point lies inside, and the
    extremes go beyond the points in most moving bars (the range the points alone would give is too short)."""
    ex = ob.Exchange(market_config("synthetic"), n_lanes=64)
    ex.reset(seed=5)
    gen = np.random.default_rng(0)
    wider = moving = 0
    for _ in range(6):
        ex.step(random_intents(gen, ex))
        bars = ex.bars
        check_extremes_hold_the_points(bars)
        assert (bars.path_high_ticks[:, :, 1:].max(axis=2) == bars.high_ticks).all()
        assert (bars.path_low_ticks[:, :, 1:].min(axis=2) == bars.low_ticks).all()
        assert (bars.path_ticks.max(axis=2) <= bars.high_ticks).all() and (bars.path_ticks.min(axis=2) >= bars.low_ticks).all()
        points_range = bars.path_ticks.max(axis=2) - bars.path_ticks.min(axis=2)
        moving += int((points_range > 0).sum())
        wider += int((bars.high_ticks - bars.low_ticks > points_range).sum())
    assert wider > moving // 2 > 0


def test_replayed_extremes_stay_in_the_bars_range_and_the_first_interval_joins_a_gap():
    ex = ob.Exchange(market_config("replay"), n_lanes=64)
    ex.reset(seed=5)
    gen = np.random.default_rng(0)
    beyond = 0
    for _ in range(6):
        ex.step(random_intents(gen, ex))
        bars = ex.bars
        check_extremes_hold_the_points(bars)
        lo, hi, start = bars.low_ticks[:, :, None], bars.high_ticks[:, :, None], bars.path_ticks[:, :, :1]
        assert ((bars.path_low_ticks[:, :, 2:] >= lo) & (bars.path_high_ticks[:, :, 2:] <= hi)).all()
        first_lo, first_hi = np.minimum(lo, start)[:, :, 0], np.maximum(hi, start)[:, :, 0]
        assert ((bars.path_low_ticks[:, :, 1] >= first_lo) & (bars.path_high_ticks[:, :, 1] <= first_hi)).all()
        ends = np.stack([bars.path_ticks[:, :, :-1], bars.path_ticks[:, :, 1:]])
        beyond += int((bars.path_low_ticks[:, :, 1:] < ends.min(axis=0)).sum())
    assert beyond > 0  # the interiors do reach past the points


@functools.cache
def _scratch(n: int):
    return new_bars(1, 1, 1, n)


@given(points=st.lists(st.integers(-2_000, 2_000), min_size=5, max_size=5), sigma=st.floats(0.0, 3_000.0),
       base=st.integers(1_000, 10**9), span=st.integers(0, 4_000), start_off=st.integers(-1_000, 1_000),
       seed=st.integers(0, 2**63 - 1))
@settings(max_examples=300, deadline=None)
def test_an_intervals_extremes_bound_its_points_are_integers_in_the_clamp_and_reproducible(points, sigma, base, span, start_off, seed):
    """Any points in [lo, hi] (point 0 may lie off it, a gap): the min is at most both points and the max at least
    both, integers, inside [lo, hi] (the first interval inside the range widened to point 0), and the same key
    gives the same extremes."""
    n = 4
    bars = _scratch(n)
    lo, hi = base, base + span
    path = [min(max(base + span // 2 + p, lo), hi) for p in points]
    path[0] = max(path[0] + start_off, 1)
    bars.path_ticks[0, 0, :] = path
    bars.path_sigma_ticks[0, 0] = sigma
    key = np.uint64(rng.step_key(np.uint64(seed), 0, 1))
    first_lo, first_hi = min(lo, path[0]), max(hi, path[0])
    interval_extremes(bars, 0, 0, key, n, lo, hi, first_lo, first_hi)
    low, high = bars.path_low_ticks[0, 0].copy(), bars.path_high_ticks[0, 0].copy()
    for j in range(1, n + 1):
        a, b = path[j - 1], path[j]
        assert low[j] <= min(a, b) and high[j] >= max(a, b)
        clamp = (first_lo, first_hi) if j == 1 else (lo, hi)
        assert clamp[0] <= low[j] and high[j] <= clamp[1]
    interval_extremes(bars, 0, 0, key, n, lo, hi, first_lo, first_hi)
    assert np.array_equal(bars.path_low_ticks[0, 0], low) and np.array_equal(bars.path_high_ticks[0, 0], high)


@pytest.mark.parametrize("d0, d1, var", [(3, 3, 40.0), (2, 9, 120.0), (10, 1, 15.0)])
def test_the_share_of_intervals_whose_min_passes_a_level_is_the_brownian_bridges(d0, d1, var):
    """A Brownian bridge from x0 to x1 with variance v goes below a level d0 and d1 under its ends with probability
    exp(-2 d0 d1 / v). The min is rounded to the nearest tick, so it lies below the tick ``level`` exactly when the
    continuous min lies below ``level - 0.5``: the distances are to that half tick. The max is checked the same way
    above the points. 4096 intervals x 12 keys, within 4 binomial sd."""
    n = 4096
    bars = _scratch(n)
    level, x = 1_000_000, np.empty(n + 1, dtype=np.int64)
    x[0::2], x[1::2] = level + d0, level + d1  # every interval joins a point d0 and a point d1 above the level
    bars.path_ticks[0, 0, :] = x
    bars.path_sigma_ticks[0, 0] = np.sqrt(var * n)  # the interval's variance is path_sigma**2 / n
    mirror = 2 * level - x  # the same journeys reflected: the max above the level
    below = above = draws = 0
    for seed in range(12):
        key = np.uint64(rng.step_key(np.uint64(seed), 3, 7))
        bars.path_ticks[0, 0, :] = x
        interval_extremes(bars, 0, 0, key, n, 1, 10**9, 1, 10**9)
        below += int((bars.path_low_ticks[0, 0, 1:] < level).sum())
        bars.path_ticks[0, 0, :] = mirror
        interval_extremes(bars, 0, 0, key, n, 1, 10**9, 1, 10**9)
        above += int((bars.path_high_ticks[0, 0, 1:] > level).sum())
        draws += n
    p = np.exp(-2.0 * (d0 + 0.5) * (d1 + 0.5) / var)
    sd = np.sqrt(p * (1 - p) / draws)
    assert abs(below / draws - p) < 4 * sd, (below / draws, p, sd)
    assert abs(above / draws - p) < 4 * sd, (above / draws, p, sd)


@pytest.mark.parametrize("x0, x1, var, price", [(5, 5, 40.0, 0), (2, 12, 90.0, 0), (8, -3, 60.0, 0), (0, 0, 10.0, 0)])
def test_the_share_an_interval_offers_is_its_expected_time_at_or_through_given_that_it_reached_the_price(x0, x1, var, price):
    """Brownian bridges simulated finely (2,000 paths x 2,000 steps): among those whose min reaches the price's tick
    (below price + 0.5), the mean share of time below price - 0.5 plus half the time in the tick's band is
    share_at_or_through's (to 0.03: the simulation's own min and time are off by a fraction of a step, and the share
    counts the band to first order)."""
    from orderbook.market.path import share_at_or_through

    gen = np.random.default_rng(7)
    m, paths = 2_000, 2_000
    s = np.arange(1, m) / m
    walk = np.cumsum(gen.normal(0.0, np.sqrt(var / m), (paths, m)), axis=1)
    bridge = x0 + s * (x1 - x0) + walk[:, :-1] - s * walk[:, -1:]
    reached = bridge.min(axis=1) < price + 0.5
    share = 0.5 * ((bridge < price - 0.5).mean(axis=1) + (bridge < price + 0.5).mean(axis=1))
    assert reached.sum() > 200
    want = share_at_or_through(x0, x1, var, price, 1.0)
    assert abs(share[reached].mean() - want) < 0.03, (share[reached].mean(), want)
    assert share_at_or_through(-x0, -x1, var, -price, -1.0) == pytest.approx(want)  # a sell is the mirror


def test_the_share_is_half_on_a_flat_touch_all_when_far_through_and_grows_as_the_price_moves_in():
    from orderbook.market.path import share_at_or_through

    assert share_at_or_through(100, 100, 0.0, 100, 1.0) == pytest.approx(0.5)  # the price sits at the limit all along: a touch
    assert share_at_or_through(100, 100, 4.0, 200, 1.0) == pytest.approx(1.0)  # far below a buy all along
    assert share_at_or_through(100, 100, 0.0, 99, 1.0) == 0.0  # never reached
    shares = [share_at_or_through(10, 14, 30.0, p, 1.0) for p in range(-5, 20)]
    assert all(0.0 <= x <= 1.0 for x in shares)
    assert all(a <= b + 1e-12 for a, b in zip(shares, shares[1:]))


# The share as it was computed before it skipped saturated nodes and took its per-variance constants once
# (orderbook.market.path.bridge_scales): the speed-up must give the same float, bit for bit.
_GL_X = (0.019855071751231912, 0.10166676129318664, 0.2372337950418355, 0.4082826787521751,
         0.5917173212478248, 0.7627662049581645, 0.8983332387068134, 0.9801449282487681)
_GL_W = (0.05061426814518853, 0.11119051722668721, 0.15685332293894344, 0.18134189168918083,
         0.18134189168918083, 0.15685332293894344, 0.11119051722668721, 0.05061426814518853)


@functools.cache
def _reference_share():
    import math

    from numba import njit

    @njit
    def time_below(x0, x1, var, level):
        if max(x0, x1) < level - 6.0 * 0.5 * np.sqrt(var):
            return 1.0
        total = 0.0
        for k in range(8):
            s = _GL_X[k]
            mean = x0 + s * (x1 - x0)
            sd = np.sqrt(var * s * (1.0 - s))
            if sd > 0.0:
                total += _GL_W[k] * 0.5 * math.erfc((mean - level) / (sd * 1.4142135623730951))
            elif mean < level:
                total += _GL_W[k]
            elif mean == level:
                total += 0.5 * _GL_W[k]
        return total

    @njit
    def share(x0, x1, var, price, sign):
        a, b, p = sign * float(x0), sign * float(x1), sign * float(price)
        occupied = time_below(a, b, var, p)
        if min(a, b) < p + 0.5:
            reach = 1.0
        elif var > 0.0:
            reach = np.exp(-2.0 * (a - p - 0.5) * (b - p - 0.5) / var)
        else:
            reach = 0.0
        if occupied >= reach:
            return 1.0 if reach > 0.0 else 0.0
        return occupied / reach

    return share


@settings(max_examples=400, deadline=None)
@given(x0=st.integers(-400, 400), x1=st.integers(-400, 400), price=st.integers(-400, 400), sign=st.sampled_from([1.0, -1.0]),
       var=st.one_of(st.just(0.0), st.floats(1e-6, 1e5), st.floats(1e-300, 1e-6)))
def test_the_share_is_bit_for_bit_the_plain_quadratures(x0, x1, price, sign, var):
    """share_at_or_through skips the erfc of nodes where it is exactly 2 or 0 and takes the variance's square roots once:
    the same float as the plain 8-node quadrature (a reference copy of it), for points near, through and far from the price."""
    from orderbook.market.path import share_at_or_through

    got, want = share_at_or_through(x0, x1, var, price, sign), _reference_share()(x0, x1, var, price, sign)
    assert got == want or (np.isnan(got) and np.isnan(want)), (got, want)


def test_erfc_is_exactly_two_and_zero_where_the_share_skips_it():
    """The compiled erfc the share calls is exactly 2.0 at and below path._ERFC_TWO_AT_OR_BELOW and exactly 0.0 at and above
    path._ERFC_ZERO_AT_OR_ABOVE (so skipping it there adds the node's whole weight or nothing, as the call would)."""
    import math

    from numba import njit

    from orderbook.market import path

    @njit
    def erfc_all(xs, out):
        for k in range(xs.shape[0]):
            out[k] = math.erfc(xs[k])

    lo, hi = path._ERFC_TWO_AT_OR_BELOW, path._ERFC_ZERO_AT_OR_ABOVE
    below = np.concatenate([[lo, np.nextafter(lo, -np.inf), -np.inf], lo - np.geomspace(1e-12, 1e300, 200_000)])
    above = np.concatenate([[hi, np.nextafter(hi, np.inf), np.inf], hi + np.geomspace(1e-12, 1e300, 200_000)])
    out = np.empty_like(below)
    erfc_all(below, out)
    assert (out == 2.0).all(), below[out != 2.0][:5]
    erfc_all(above, out)
    assert (out == 0.0).all(), above[out != 0.0][:5]
