"""Execution's reward options: what an episode's rewards sum to, and a metric that does not depend on them.

``reward="shortfall"`` (the default), ``"arrival"`` and ``"marked"`` pay different
steps (``envs.execution.ExecutionEnv``, Rewards); on the same seeds and actions the
market, the fills and ``info["shortfall_bps"]`` are the same for all three, and the
sums relate to the shortfall ``S`` as documented: ``-S``, ``-(S - D)`` and
``penalty_bps - (S - D)`` (``penalty_bps x F - (S - D)`` when truncated before the
horizon), ``D`` being the unfilled remainder's drift at the horizon.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.execution import REWARDS
from tests.envs.helpers import EXEC

PENALTY_BPS = 50.0


def _episode(reward: str, seed: int, horizon: int, max_steps: int | None = None) -> dict:
    """One episode under random (seeded) actions: per-step rewards, shortfalls and the last info."""
    kwargs = dict(reward=reward, horizon=horizon, side="random", faults="high", size_multiples=(0.25, 0.5), quantity="1")
    env = gym.make(EXEC, max_episode_steps=max_steps or horizon, **kwargs)
    _, info = env.reset(seed=seed)
    actions = np.random.default_rng(seed)
    rewards, shortfalls, done = [], [], False
    while not done:
        action = actions.integers(0, env.action_space.nvec)
        _, r, terminated, truncated, info = env.step(action)
        rewards.append(r)
        shortfalls.append(info["shortfall_bps"])
        done = terminated or truncated
    return {"rewards": np.array(rewards), "shortfall": np.array(shortfalls), "info": info, "terminated": terminated}


def _drift_bps(info: dict) -> float:
    """``D``: the horizon charge less its penalty part (0 when nothing was charged)."""
    remaining = info["parent_remaining_qty"] / (info["parent_filled_qty"] + info["parent_remaining_qty"])
    return info["horizon_penalty_bps"] - remaining * PENALTY_BPS if info["horizon_penalty_bps"] else 0.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_reward_sums_relate_to_the_same_shortfall_as_documented(seed):
    runs = {name: _episode(name, seed, horizon=10) for name in REWARDS}
    base = runs["shortfall"]
    for name, run in runs.items():  # same actions and seeds: the same episode, whatever pays the steps
        np.testing.assert_array_equal(run["shortfall"], base["shortfall"], err_msg=name)
        assert run["info"] == base["info"], name
    info = base["info"]
    s, d, filled = info["shortfall_bps"], _drift_bps(info), info["parent_filled_qty"]
    assert runs["shortfall"]["rewards"].sum() == pytest.approx(-s, abs=1e-9)
    assert runs["arrival"]["rewards"].sum() == pytest.approx(-(s - d), abs=1e-9)
    assert runs["marked"]["rewards"].sum() == pytest.approx(PENALTY_BPS - (s - d), abs=1e-9)
    assert base["terminated"]
    # the options differ step by step: marked credits fills as they come, arrival never sees the drift
    if filled > 0:
        assert not np.array_equal(runs["marked"]["rewards"], runs["arrival"]["rewards"])


def test_some_seeds_end_with_a_remainder_whose_drift_separates_the_options():
    drifts = [_drift_bps(_episode("shortfall", seed, horizon=10)["info"]) for seed in range(6)]
    assert sum(abs(d) > 1e-6 for d in drifts) >= 2  # the sums above were checked with D != 0, not only D = 0


def test_marked_sum_when_cut_off_before_the_horizon():
    ends = set()
    for seed in range(8):  # some seeds fill the parent within the 5 steps, some do not: both cases are checked
        run = _episode("marked", seed, horizon=30, max_steps=5)
        arrival = _episode("arrival", seed, horizon=30, max_steps=5)
        info = run["info"]
        assert info["horizon_penalty_bps"] == 0.0  # 5 steps of a 30-step horizon: no charge
        assert run["terminated"] == (info["parent_remaining_qty"] == 0)
        ends.add(bool(run["terminated"]))
        f = info["parent_filled_qty"] / (info["parent_filled_qty"] + info["parent_remaining_qty"])
        assert run["rewards"].sum() == pytest.approx(PENALTY_BPS * f - info["shortfall_bps"], abs=1e-9)
        assert arrival["rewards"].sum() == pytest.approx(-info["shortfall_bps"], abs=1e-9)
    assert ends == {True, False}


def test_default_reward_is_shortfall_and_the_spec_round_trips_as_json():
    env = gym.make(EXEC, reward="marked")
    assert env.unwrapped.task.reward_name == "marked"
    again = gym.make(gym.envs.registration.EnvSpec.from_json(env.spec.to_json()))
    assert again.unwrapped.task.reward_name == "marked"
    assert gym.make(EXEC).unwrapped.task.reward_name == "shortfall"
