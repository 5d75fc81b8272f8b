"""The envs on replayed Binance.US bars (shared/data): episodes end with their window, and lanes
of the vector env still equal single envs across autoresets (waiting lanes sit the step out)."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import data_equivalence

import envs
import orderbook as ob
from tests.envs.helpers import check_accounting, make_vec


@pytest.fixture(scope="module")
def replay_config():
    try:
        return ob.binance_us_config(second_venue=True, episode_steps=12)
    except ValueError as exc:  # the shared data folder is missing
        pytest.skip(str(exc))


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_replayed_market_truncates_at_the_window_and_lanes_equal_single_envs(env_id, replay_config):
    parent = {"quantity": "1"} if env_id.endswith("Execution-v0") else {}  # what replay_config's account (1 BTC, 100k USD) holds
    venv = make_vec(env_id, 6, config=replay_config, **parent)
    venv.reset(seed=20)
    venv.action_space.seed(1)
    actions = [venv.action_space.sample() for _ in range(40)]
    batch = [venv.step(a) for a in actions]  # the core would raise if a lane stepped past its window
    for _, _, _, trunc, info in batch:
        assert (info["step"] <= 12).all() and (info["step"][trunc] == 12).all()
    assert sum(int(x[3].sum()) for x in batch) > 0, "some episodes must reach the end of their window"
    check_accounting(venv.unwrapped.exchange)
    env = gym.make(env_id, config=replay_config, **parent)
    obs, _ = env.reset(seed=22)
    done = False
    for t, a in enumerate(actions):
        if done:
            step = (env.reset()[0], 0.0, False, False)
        else:
            step = env.step(a[2])[:4]
        done = step[2] or step[3]
        assert data_equivalence(step[0], batch[t][0][2], exact=True), f"step {t}"
        assert step[1:] == (batch[t][1][2], batch[t][2][2], batch[t][3][2]), f"step {t}"


def test_a_one_bar_window_truncates_after_one_step(replay_config):
    import dataclasses

    cfg = dataclasses.replace(replay_config, market=dataclasses.replace(replay_config.market, episode_steps=1))
    env = gym.make(envs.ENV_IDS[1], config=cfg)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and not terminated and info["step"] == 1
