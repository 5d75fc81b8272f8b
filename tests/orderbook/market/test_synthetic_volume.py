"""The synthetic market's volume (orderbook.market.synthetic): lognormal bars around a level drawn once per episode."""

from __future__ import annotations

import dataclasses
import functools
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.compile.jit import kernel
from orderbook.market.synthetic import synthetic_volume, synthetic_volume_level
from orderbook.spec import rng
from orderbook.spec.bounds import MAX_VOLUME_LOTS
from tests.orderbook.helpers import small_config

BARS = 60  # an episode: an hour of one-minute bars
u63 = st.integers(0, 2**63 - 1)
small = st.integers(0, 2**31 - 1)


def market(level: float, **spec) -> ob.SyntheticMarket:
    return ob.SyntheticMarket(volume_level_sigma=level, **spec)


def exchange(level: float, n_lanes: int = 1, **spec) -> ob.Exchange:
    return ob.Exchange(small_config(faults=ob.FaultSpec.none(), market=market(level, **spec)), n_lanes=n_lanes)


def step_key(seed, episode, step) -> np.uint64:
    """``rng.step_key`` called from Python, as the kernels hold it (a uint64: the int it returns may not fit an int64)."""
    return np.uint64(rng.step_key(seed, episode, step))


@functools.cache
def params(level: float):
    """The compiled market of ``small_config`` (four BTC instruments) at this level."""
    return exchange(level).source.params


@kernel
def _volume_before_the_level(p, i, key):
    """``synthetic_volume`` as it was before the episode's level, verbatim: the reference of level 0."""
    if rng.uniform_at(key, i, rng.P_VOLUME_ZERO) < p.zero_volume_prob:
        return np.int64(0)
    z = rng.normal_at(key, i, rng.P_VOLUME)
    vol = p.volume_mean_lots[i] * np.exp(p.volume_sigma * z - 0.5 * p.volume_sigma * p.volume_sigma)
    return np.int64(min(vol, MAX_VOLUME_LOTS))


@kernel
def _episodes(p, inst_base, seeds, episode, out):
    """``out[e, t, i]``: the volume of instrument ``i``'s bar ``t + 1`` in episode ``episode`` of seed ``seeds[e]``,
    as the market's advance draws it (step keys from 1)."""
    for e in range(out.shape[0]):
        for t in range(out.shape[1]):
            key = rng.step_key(seeds[e], episode, t + 1)
            for i in range(out.shape[2]):
                out[e, t, i] = synthetic_volume(p, i, key, synthetic_volume_level(p, seeds[e], episode, inst_base[i]))


def draw_episodes(level: float, n_episodes: int, sigma: float = 0.5) -> tuple[np.ndarray, ob.Exchange]:
    """``(n_episodes, BARS, instruments)`` volumes of the first episode of market seeds 0, 1, ... and the exchange of that spec."""
    ex = exchange(level, volume_sigma=sigma)
    out = np.zeros((n_episodes, BARS, len(ex.config.instruments)), dtype=np.int64)
    _episodes(ex.source.params, ex.compiled.inst_base, np.arange(n_episodes, dtype=np.uint64), 0, out)
    return out, ex


def pooled_lag_correlation(volume: np.ndarray, lag: int) -> float:
    """Pearson correlation of the log volumes of two traded bars ``lag`` apart in one episode (and instrument), pooled."""
    a, b = volume[:, :-lag], volume[:, lag:]
    ok = (a > 0) & (b > 0)
    return float(np.corrcoef(np.log(a[ok]), np.log(b[ok]))[0, 1])


# ------------------------------------------------------------------ the market before the level, bit for bit
@given(seed=u63, episode=small, step=small, i=st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_level_zero_draws_the_volumes_of_the_market_before_the_level(seed, episode, step, i):
    p = params(0.0)
    key = step_key(seed, episode, step)
    assert synthetic_volume_level(p, seed, episode, 0) == 0.0
    assert synthetic_volume(p, i, key, 0.0) == _volume_before_the_level(p, i, key)


def test_level_zero_exchange_bars_are_the_bars_of_before_across_episodes():
    """Four seeds, two episodes each: every bar's volume is the pre-level function's of its step key."""
    ex = exchange(0.0, n_lanes=4)
    ex.reset(seed=11)
    p, traded = ex.source.params, 0
    for episode in range(2):
        for _ in range(30):
            ex.step()
            for b in range(4):
                key = step_key(ex.lanes.market_seed[b], ex.lanes.rng_episode[b], ex.lanes.step[b])
                expected = [_volume_before_the_level(p, i, key) for i in range(ex.bars.volume_lots.shape[1])]
                assert ex.bars.volume_lots[b].tolist() == expected
                assert ex.lanes.rng_episode[b] == episode
                traded += sum(v > 0 for v in expected)
        ex.reset()
    assert traded > 400  # the bars traded: the comparison bound


# ------------------------------------------------------------------ the level
def implied_log_levels(ex: ob.Exchange, n_steps: int) -> np.ndarray:
    """Step lane 0 ``n_steps`` bars; per traded bar, ``log(volume / mean) - (sigma z - sigma^2 / 2)``: the log level it carries."""
    p, out = ex.source.params, []
    for _ in range(n_steps):
        ex.step()
        key = step_key(ex.lanes.market_seed[0], ex.lanes.rng_episode[0], ex.lanes.step[0])
        for i, vol in enumerate(ex.bars.volume_lots[0]):
            if vol > 0:
                z = rng.normal_at(key, i, rng.P_VOLUME)
                out.append(math.log(vol / p.volume_mean_lots[i]) - (p.volume_sigma * z - 0.5 * p.volume_sigma**2))
    return np.array(out)


def test_an_episode_keeps_one_level_and_the_next_episode_draws_another():
    """Every traded bar of an episode carries the level keyed by (seed, episode) (to the lot rounding), the next episode another."""
    ex = exchange(0.5)
    ex.reset(seed=3)
    levels = []
    for episode in range(3):
        implied = implied_log_levels(ex, 20)
        keyed = synthetic_volume_level(ex.source.params, ex.lanes.market_seed[0], episode, 0)
        assert len(implied) > 60
        assert np.abs(implied - keyed).max() < 1e-3  # rounding to a whole lot of ~50,000
        levels.append(keyed)
        ex.reset()
    assert min(abs(levels[0] - levels[1]), abs(levels[1] - levels[2])) > 0.05


@given(seed=u63, episode=st.integers(0, 2**31 - 2), level=st.sampled_from([0.25, 0.5, 1.0]))
@settings(max_examples=100, deadline=None)
def test_two_episodes_of_a_lane_draw_different_levels_and_every_instrument_of_a_base_shares_one(seed, episode, level):
    p = params(level)
    now = synthetic_volume_level(p, seed, episode, 0)
    assert now != synthetic_volume_level(p, seed, episode + 1, 0)
    assert now == synthetic_volume_level(p, seed, episode, 0)  # a pure function of its key
    z = rng.normal_at(step_key(seed, episode, 0), 0, rng.P_VOLUME_LEVEL)
    assert now == level * (z - 0.5 * level)


def test_the_same_seed_and_episode_give_the_same_volumes_at_any_batch_size():
    """Lanes 0, 17 and 63 of 64 against one lane each, over two episodes (an unseeded reset in between)."""
    big = exchange(0.5, n_lanes=64)
    big.reset(seed=100)
    singles = {b: exchange(0.5) for b in (0, 17, 63)}
    for b, one in singles.items():
        one.reset(seed=100 + b)
    for _ in range(2):
        for _ in range(8):
            big.step()
            for b, one in singles.items():
                one.step()
                assert np.array_equal(big.bars.volume_lots[b], one.bars.volume_lots[0])
        big.reset()
        for one in singles.values():
            one.reset()
    assert big.lanes.rng_episode.tolist() == [2] * 64


# ------------------------------------------------------------------ what the level does to the bars
@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_the_mean_bar_volume_does_not_depend_on_the_level(level):
    """Mean over 4,096 episodes of 60 bars = mean x (1 - zero_volume_prob), within 4 standard errors (episodes independent)."""
    vol, ex = draw_episodes(level, 4096)
    p = ex.source.params
    per_episode = vol.mean(axis=(1, 2))
    se = per_episode.std(ddof=1) / math.sqrt(per_episode.size)
    expected = (p.volume_mean_lots[0] - 0.5) * (1 - p.zero_volume_prob)  # a traded bar's volume rounds down to a whole lot
    assert np.all(p.volume_mean_lots == p.volume_mean_lots[0])
    assert abs(per_episode.mean() - expected) < 4 * se
    assert abs((vol == 0).mean() - p.zero_volume_prob) < 4 * math.sqrt(p.zero_volume_prob * (1 - p.zero_volume_prob) / vol.size)


@pytest.mark.parametrize("level,sigma", [(0.0, 0.5), (0.5, 0.5), (1.0, 0.5), (0.5, 1.0)])
def test_the_log_volume_autocorrelation_in_an_episode_is_level_sq_over_total(level, sigma):
    """``level^2 / (level^2 + sigma^2)`` at lags 1 and 10, within 4 standard errors of 16 batches of 256 episodes."""
    vol, _ = draw_episodes(level, 4096, sigma)
    vol = vol[:, :, 0]  # one instrument: the others share the level and would add cross pairs of their own
    target = level**2 / (level**2 + sigma**2)
    for lag in (1, 10):
        batches = np.array([pooled_lag_correlation(v, lag) for v in vol.reshape(16, 256, BARS)])
        se = batches.std(ddof=1) / math.sqrt(16)
        assert abs(pooled_lag_correlation(vol, lag) - target) < 4 * se, (lag, batches.mean(), target, se)
        assert se < 0.02  # tight enough that a market without the level (0) fails at level 0.5


@pytest.mark.parametrize("sigma,level", [(1e308, 0.0), (0.5, 1e308), (1e308, 1e308), (1e200, 3.0)])
def test_extreme_sigmas_give_volumes_in_range_never_a_negative_one(sigma, level):
    """``inf - inf`` in the exponent (a sigma near the largest float) is a volume of 0, not the int64 of a nan."""
    ex = exchange(level, n_lanes=256, volume_sigma=sigma)
    ex.reset(seed=0)
    for _ in range(4):
        ex.step()
        assert ((ex.bars.volume_lots >= 0) & (ex.bars.volume_lots <= MAX_VOLUME_LOTS)).all()
    p = ex.source.params
    keys = [step_key(s, 0, 1) for s in range(2000)]
    assert min(synthetic_volume(p, 0, k, synthetic_volume_level(p, s, 0, 0)) for s, k in enumerate(keys)) == 0


# ------------------------------------------------------------------ refused values
@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.5", None])
def test_bad_volume_level_sigma_is_refused_naming_what_came(bad):
    spec = ob.SyntheticMarket()
    with pytest.raises(ValueError, match=re.escape(f"SyntheticMarket.volume_level_sigma must be a finite number >= 0, got {bad!r}")):
        dataclasses.replace(spec, volume_level_sigma=bad)
    assert spec.volume_level_sigma == 0.5  # the spec it was made from is as it was
