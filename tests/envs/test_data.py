"""gym.make(..., data=...): both envs trade real bars without a hand-written config."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
import orderbook as ob
from orderbook.market.bars import load_bars
from orderbook.presets import binance_us_sources


@pytest.fixture(scope="module")
def bars():
    return load_bars(binance_us_sources())


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("form", ["name", "aligned", "sources", "replay_market"])
def test_data_source_drives_both_envs(env_id, form, bars):
    data = {
        "name": "binance_us",
        "aligned": bars,
        "sources": binance_us_sources(),
        "replay_market": ob.ReplayMarket(bars, episode_steps=240),
    }[form]
    env = gym.make(env_id, data=data)
    task = env.unwrapped.task
    assert {i.key for i in task.config.instruments} == {("binance_us", s) for s in ("BTC/USD", "BTC/USDT", "BTC/USDC")}
    obs, _ = env.reset(seed=3)
    start_ns = task.exchange.lanes.time_ns[0]
    assert 1677628800 * 10**9 <= start_ns <= 1679443200 * 10**9  # inside March 1-21, 2023
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(obs).all() and np.isfinite(reward)
        if terminated or truncated:
            env.reset()
    mids = (task.exchange.bars.bid_ticks + task.exchange.bars.ask_ticks)[0] / 2 * 0.01
    assert ((mids > 15_000) & (mids < 35_000)).all()  # BTC prices of March 2023, not the synthetic 30,000 start


def test_bad_data_is_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="data must be 'binance_us', an AlignedBars, a list of BarSource or a ReplayMarket, got int"):
        gym.make(envs.ENV_IDS[0], data=5)
    with pytest.raises(ValueError, match="without config, market, venues or quotes"):
        gym.make(envs.ENV_IDS[0], data="binance_us", config=ob.default_config())
