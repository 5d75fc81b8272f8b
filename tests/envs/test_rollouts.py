"""Long rollouts with every fault on: a random policy and a TWAP baseline keep every accounting invariant,
children never exceed the parent, and the rewards add up to what the history says."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import polars as pl
import pytest

import orderbook as ob
from tests.envs.helpers import EXEC, TRADE, check_accounting, make_vec, twap_actions

FAULTS = [pytest.param(ob.FaultSpec(), id="default-faults"), pytest.param(ob.FaultSpec.high(), id="high-faults")]


def assert_children_within_parent(task) -> None:
    filled = task.filled_atoms()
    working = task.working_atoms().sum(axis=1)
    assert (filled >= 0).all() and (working >= 0).all()
    assert (filled + working <= task.parent_atoms).all(), "child orders exceed the parent"


@pytest.mark.parametrize("env_id", [EXEC, TRADE])
@pytest.mark.parametrize("faults", FAULTS)
def test_random_policy_keeps_every_invariant(env_id, faults):
    n, steps = 16, 250  # 4,000 env steps
    kwargs = dict(horizon=30) if env_id == EXEC else dict(max_episode_steps=60)
    venv = make_vec(env_id, n, faults=faults, **kwargs)
    venv.action_space.seed(11)
    venv.reset(seed=123)
    task = venv.unwrapped.task
    space = venv.single_observation_space
    totals = {"fills": 0, "rejects": 0, "expiries": 0, "cancels": 0, "episodes": 0}
    for t in range(steps):
        obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
        assert all(space.contains(o) for o in obs) and np.isfinite(rew).all()
        for k in ("fills", "rejects", "expiries", "cancels"):
            totals[k] += int(info[k].sum())
        totals["episodes"] += int((term | trunc).sum())
        if env_id == EXEC:
            assert_children_within_parent(task)
        if t % 50 == 49:
            check_accounting(task.exchange)
    check_accounting(task.exchange)
    assert all(v > 0 for v in totals.values()), f"the rollout must exercise fills, rejects, expiries, cancels: {totals}"


@pytest.mark.parametrize("faults", FAULTS)
def test_twap_baseline_keeps_every_invariant_and_mostly_completes(faults):
    n, horizon, steps = 16, 30, 240  # 8 episodes per lane, 3,840 env steps
    venv = make_vec(EXEC, n, faults=faults, horizon=horizon)
    _, info = venv.reset(seed=7)
    task = venv.unwrapped.task
    done_filled = []
    for t in range(steps):
        _, _, term, trunc, info = venv.step(twap_actions(info, horizon, 2))
        assert_children_within_parent(task)
        done = term | trunc
        done_filled.extend((info["parent_filled_qty"][done]).tolist())
        if t % 60 == 59:
            check_accounting(task.exchange)
    check_accounting(task.exchange)
    assert len(done_filled) >= n * 6
    floor = 0.9 if faults == ob.FaultSpec() else 0.5
    assert np.mean(done_filled) > floor, f"TWAP filled {np.mean(done_filled):.3f} of the parent on average"


def test_execution_rewards_add_up_to_the_shortfall_in_the_event_log():
    env = gym.make(EXEC, horizon=20, faults=ob.FaultSpec.high())
    env.action_space.seed(2)
    _, info = env.reset(seed=9)
    rewards, done = [], False
    while not done:
        _, r, term, trunc, info = env.step(env.action_space.sample())
        rewards.append(r)
        done = term or trunc
    task = env.unwrapped.task
    assert np.isclose(-sum(rewards), info["shortfall_bps"], rtol=1e-12, atol=1e-9)
    ev = task.exchange.history.to_polars()["events"].filter((pl.col("episode") == int(task.exchange.lanes.episode[0])) & (pl.col("step") <= 20))
    fills = ev.filter(pl.col("event") == "FILL")
    side = task.side[0]
    p0 = info["arrival_price"]
    cost = (side * (fills["fill_notional_atoms"].sum() / 1e6 - p0 * fills["fill_quantity"].sum()) + fills["fee"].sum())
    penalty = info["horizon_penalty_bps"]
    parent_qty = info["parent_filled_qty"] + info["parent_remaining_qty"]
    assert np.isclose(info["shortfall_bps"] - penalty, cost / (p0 * parent_qty) * 1e4, rtol=1e-9, atol=1e-7)
    assert np.isclose(info["parent_filled_qty"], fills["fill_quantity"].sum(), rtol=0, atol=1e-12)


def test_trading_rewards_add_up_to_the_value_change():
    env = gym.make(TRADE, max_episode_steps=50)
    env.action_space.seed(4)
    _, info0 = env.reset(seed=3)
    total, done = 0.0, False
    while not done:
        _, r, term, trunc, info = env.step(env.action_space.sample())
        total += r
        done = term or trunc
    v0 = info0["portfolio_value"]
    assert info["initial_value"] == v0
    assert np.isclose(total * v0 / 1e4, info["portfolio_value"] - v0, rtol=1e-9, atol=1e-6)
    assert np.isclose(info["return_bps"], total, rtol=1e-9, atol=1e-9)
