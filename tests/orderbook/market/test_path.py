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


@pytest.mark.parametrize("market", ["synthetic", "replay"])
def test_the_path_starts_at_the_open_ends_at_the_close_and_touches_the_high_and_the_low(market):
    ex = ob.Exchange(market_config(market), n_lanes=64)
    ex.reset(seed=5)
    gen = np.random.default_rng(0)
    for _ in range(6):
        ex.step(random_intents(gen, ex))
        bars = ex.bars
        path = bars.path_ticks
        assert path.shape[2] == ex.config.path_points + 1
        assert (path[:, :, 0] == bars.open_ticks).all()
        assert (path[:, :, -1] == bars.close_ticks).all()
        assert (path.max(axis=2) == bars.high_ticks).all()  # touches the high and never passes it
        assert (path.min(axis=2) == bars.low_ticks).all()
    assert (bars.high_ticks > bars.low_ticks).mean() > 0.5  # the bars move: the checks above bind


@pytest.mark.parametrize("market", ["synthetic", "replay"])
def test_prices_between_points_stay_in_the_bar_and_meet_the_points(market):
    """Refined prices (an arrival between two points) lie in [low, high], equal the point at a point's time, and
    the same time always gives the same price."""
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
            for t in t0 + gen.integers(0, step_ns, 20):
                p = price_at_ns(bars, b, i, n, t0, step_ns, int(t), key)
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


def test_a_finer_path_is_a_config_choice_and_out_of_range_is_refused():
    ex = ob.Exchange(small_config(path_points=60), n_lanes=2)
    ex.reset(seed=0)
    ex.step()
    assert ex.bars.path_ticks.shape == (2, 4, 61)
    for bad in (3, 4097, 16.0, True):
        with pytest.raises(ValueError, match=r"path_points must be an int in \[4, 4096\], got"):
            small_config(path_points=bad)
