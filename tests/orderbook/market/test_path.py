"""The path inside a bar (orderbook.market.path): where it starts, ends and goes, its volume, its keys."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.market.bars import load_bars
from orderbook.market.path import interval_volume_lots, point_time_ns, price_at_ns
from orderbook.presets import binance_us_sources, replay_config
from orderbook.spec import rng
from tests.orderbook.helpers import random_intents, small_config


@functools.cache
def _bars():
    return load_bars(binance_us_sources())


def market_config(market: str, **overrides) -> ob.ExchangeConfig:
    if market == "synthetic":
        return small_config(**overrides)
    return replay_config(_bars(), episode_steps=12, **overrides)


def test_the_synthetic_path_starts_at_the_open_ends_at_the_close_and_stays_in_the_bars_range():
    """The bar's high and low are the continuous path's (the interval extremes, tests/orderbook/market/
    test_path_extremes.py), so its points lie inside them without reaching them in every bar."""
    ex = ob.Exchange(market_config("synthetic"), n_lanes=64)
    ex.reset(seed=5)
    gen = np.random.default_rng(0)
    for _ in range(6):
        ex.step(random_intents(gen, ex))
        bars = ex.bars
        path = bars.path_ticks
        assert path.shape[2] == ex.config.path_points + 1
        assert (path[:, :, 0] == bars.open_ticks).all()
        assert (path[:, :, -1] == bars.close_ticks).all()
        assert (path.max(axis=2) <= bars.high_ticks).all()
        assert (path.min(axis=2) >= bars.low_ticks).all()
    assert (bars.high_ticks > bars.low_ticks).mean() > 0.5  # the bars move: the checks above bind


def test_the_replayed_path_starts_at_the_decision_mid_and_runs_through_the_bars_extremes_to_its_close():
    """Point 0 is the previous close as the market showed it (the centre of the quotes the agent decided on); the
    other points lie in [low, high] and reach the high, the low and the close; a gap leaves only point 0 outside."""
    ex = ob.Exchange(market_config("replay"), n_lanes=64)
    ex.reset(seed=5)
    gen = np.random.default_rng(0)
    gaps = 0
    for _ in range(6):
        shown = ex.bars.close_ticks.copy()
        decided = ex.bars.bid_ticks + ex.bars.ask_ticks
        ex.step(random_intents(gen, ex))
        bars = ex.bars
        path = bars.path_ticks
        assert (path[:, :, 0] == shown).all()
        assert (np.abs(2 * path[:, :, 0] - decided) <= 1).all()  # the decision mid, to the half tick of an odd spread
        assert (path[:, :, -1] == bars.close_ticks).all()
        inner = path[:, :, 1:]
        assert ((inner >= bars.low_ticks[:, :, None]) & (inner <= bars.high_ticks[:, :, None])).all()
        assert (path.max(axis=2) == np.maximum(bars.high_ticks, shown)).all()
        assert (path.min(axis=2) == np.minimum(bars.low_ticks, shown)).all()
        assert ((path == bars.high_ticks[:, :, None]).any(axis=2)).all()  # the high and the low are on the path
        assert ((path == bars.low_ticks[:, :, None]).any(axis=2)).all()
        gaps += int(((shown > bars.high_ticks) | (shown < bars.low_ticks)).sum())
    assert (bars.high_ticks > bars.low_ticks).mean() > 0.5  # the bars move: the checks above bind
    assert gaps > 0  # and some bars gap from the decision mid


@pytest.mark.parametrize("market", ["synthetic", "replay"])
def test_prices_between_points_stay_in_the_bar_and_meet_the_points(market):
    """Refined prices (an arrival between two points) lie in [low, high] (in the first interval, the range widened to
    the path's start), equal the point at a point's time, and the same time always gives the same price."""
    ex = ob.Exchange(market_config(market), n_lanes=16)
    ex.reset(seed=2)
    ex.step()
    bars, cc, lanes = ex.bars, ex.compiled, ex.lanes
    n, step_ns = cc.path_points, cc.step_ns
    gen = np.random.default_rng(1)
    for b in range(16):
        t0 = int(lanes.time_ns[b]) - step_ns
        key = np.uint64(rng.step_key(lanes.market_seed[b], lanes.rng_episode[b], lanes.step[b]))
        for i in range(bars.open_ticks.shape[1]):
            start = bars.path_ticks[b, i, 0]  # a replayed bar's path may start off its range (a gap)
            first_ns = point_time_ns(t0, step_ns, n, 1)
            for t in np.concatenate([t0 + gen.integers(0, step_ns, 20), t0 + gen.integers(0, first_ns - t0, 10)]):
                p = price_at_ns(bars, b, i, n, t0, step_ns, int(t), key)
                if t < first_ns:
                    assert min(bars.low_ticks[b, i], start) <= p <= max(bars.high_ticks[b, i], start)
                else:
                    assert bars.low_ticks[b, i] <= p <= bars.high_ticks[b, i]
                assert p == price_at_ns(bars, b, i, n, t0, step_ns, int(t), key)
            for j in range(n + 1):
                assert price_at_ns(bars, b, i, n, t0, step_ns, point_time_ns(t0, step_ns, n, j), key) == bars.path_ticks[b, i, j]


@given(volume=st.integers(0, 2**53), n=st.integers(4, 4096))
@settings(max_examples=200, deadline=None)
def test_the_volume_along_the_path_sums_to_the_bars_volume(volume, n):
    parts = [interval_volume_lots(volume, n, j) for j in range(n + 1)]
    assert parts[0] == 0  # nothing trades at the open's instant
    assert sum(parts) == volume
    assert set(parts[1:]) <= {volume // n, volume // n + 1}


@pytest.mark.parametrize("market", ["synthetic", "replay"])
def test_same_seed_same_path_at_batch_sizes_1_and_64(market):
    cfg = market_config(market)
    big = ob.Exchange(cfg, n_lanes=64)
    big.reset(seed=100)
    singles = {b: ob.Exchange(cfg, n_lanes=1) for b in (0, 17, 63)}
    for b, ex in singles.items():
        ex.reset(seed=100 + b)
    gen = np.random.default_rng(3)
    for _ in range(4):
        big.step(random_intents(gen, big))  # the batch trades, the singles do not: the market is the same
        for b, ex in singles.items():
            ex.step()
            assert np.array_equal(big.bars.path_ticks[b], ex.bars.path_ticks[0])
            assert np.array_equal(big.bars.path_sigma_ticks[b], ex.bars.path_sigma_ticks[0])
            assert np.array_equal(big.bars.path_low_ticks[b], ex.bars.path_low_ticks[0])  # the intervals' extremes
            assert np.array_equal(big.bars.path_high_ticks[b], ex.bars.path_high_ticks[0])
            assert np.array_equal(big.bars.high_ticks[b], ex.bars.high_ticks[0])
            assert np.array_equal(big.bars.low_ticks[b], ex.bars.low_ticks[0])


def test_a_finer_path_is_a_config_choice_and_out_of_range_is_refused():
    ex = ob.Exchange(small_config(path_points=60), n_lanes=2)
    ex.reset(seed=0)
    ex.step()
    assert ex.bars.path_ticks.shape == (2, 4, 61)
    for bad in (3, 4097, 16.0, True):
        with pytest.raises(ValueError, match=r"path_points must be an int in \[4, 4096\], got"):
            small_config(path_points=bad)


@functools.cache
def _one_replay_lane() -> ob.Exchange:
    ex = ob.Exchange(market_config("replay"), n_lanes=1)
    ex.reset(seed=0)
    return ex


@given(low=st.integers(1_000, 10_000_000), span=st.integers(0, 5_000), o=st.floats(0, 1), c=st.floats(0, 1),
       start=st.integers(-3_000, 8_000), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_a_replayed_path_from_any_start_keeps_the_bars_extremes_and_close_and_joins_a_gap_in_its_first_interval(low, span, o, c, start, seed):
    """Whatever the start (inside the bar, on an extreme, or a gap on either side): point 0 is the start, points
    1..n lie in [low, high] and hold the high, the low (unless the start is that extreme) and the close, and refined
    prices of the first interval lie between [min(low, start), max(high, start)], of the others in [low, high]."""
    from orderbook.market.path import bridge_through_extremes

    ex = _one_replay_lane()
    bars, n, step_ns = ex.bars, ex.compiled.path_points, ex.compiled.step_ns
    high = low + span
    start = max(low + start - 1_500, 1)
    bars.open_ticks[0, 0], bars.close_ticks[0, 0] = low + round(o * span), low + round(c * span)
    bars.high_ticks[0, 0], bars.low_ticks[0, 0] = high, low
    key = np.uint64(rng.step_key(np.uint64(seed), 0, 1))
    bridge_through_extremes(bars, 0, 0, key, n, start)
    path = bars.path_ticks[0, 0]
    assert path[0] == start and path[n] == bars.close_ticks[0, 0]
    assert low <= path[1:].min() and path[1:].max() <= high
    for extreme in (low, high):
        assert extreme in path[1:] or extreme == start
    first_ns = point_time_ns(0, step_ns, n, 1)
    for t in np.linspace(0, step_ns - 1, 97).astype(np.int64):
        p = price_at_ns(bars, 0, 0, n, 0, step_ns, int(t), key)
        if t < first_ns:
            assert min(low, start) <= p <= max(high, start)
        else:
            assert low <= p <= high
