"""Gymnasium's vector wrappers on the native env, and the rgb_array pictures."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers.vector import NormalizeObservation, RecordEpisodeStatistics

import envs
from tests.envs.helpers import EXEC, TRADE, make_vec


def test_record_episode_statistics_reports_each_finished_episode():
    venv = RecordEpisodeStatistics(make_vec(EXEC, 4, horizon=5))
    venv.reset(seed=0)
    venv.action_space.seed(0)
    returns, seen = np.zeros(4), []
    for _ in range(16):
        _, rew, term, trunc, info = venv.step(venv.action_space.sample())
        returns += rew
        done = term | trunc
        if done.any():
            assert info["_episode"].tolist() == done.tolist()
            for b in np.flatnonzero(done):
                assert info["episode"]["l"][b] <= 5
                assert np.isclose(info["episode"]["r"][b], returns[b])
                seen.append(b)
            returns[done] = 0.0
    assert len(seen) >= 8


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_normalize_observation_runs_on_the_native_env(env_id):
    venv = NormalizeObservation(make_vec(env_id, 8))
    obs, _ = venv.reset(seed=0)
    venv.action_space.seed(0)
    for _ in range(20):
        obs, *_ = venv.step(venv.action_space.sample())
    assert obs.shape == (8,) + venv.single_observation_space.shape and np.isfinite(obs).all()
    assert venv.obs_rms.count > 20 * 8 and venv.obs_rms.mean.shape == venv.single_observation_space.shape


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_rgb_array_is_a_picture_of_the_episode(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    env.action_space.seed(0)
    for _ in range(8):
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            break
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.shape == first.shape
    assert frame.std() > 0 and not np.array_equal(frame, first)  # orders and prices were drawn


def test_render_without_a_mode_warns_and_returns_none():
    env = gym.make(TRADE).unwrapped
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_vector_render_gives_one_picture_per_lane():
    venv = make_vec(EXEC, 2, render_mode="rgb_array")
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    frames = venv.render()
    assert len(frames) == 2 and all(f.dtype == np.uint8 and f.shape[2] == 3 for f in frames)
