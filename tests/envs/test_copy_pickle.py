"""Envs copy and pickle into independent clones (issue 11): deepcopy, pickle 5 and cloudpickle.

A clone of a stepped env carries its state and its history (the part written so far);
from there the two are independent: the same actions give the same results bit for
bit, stepping one never touches the other, and a clone outlives its original.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from tests.envs.helpers import EXEC, TRADE, assert_same, make_vec, snapshot
from tests.orderbook.copies import COPIES, assert_packs_only_its_own_arrays, clobber_freed_memory, run_in_subprocess

N_STEPS, WARMUP = 100, 20
FAULTS = dict(faults=ob.FaultSpec.high())
FRONTS = {
    "single-execution": lambda: gym.make(EXEC, horizon=12, **FAULTS),
    "single-trading": lambda: gym.make(TRADE, max_episode_steps=15, **FAULTS),
    "vector-execution": lambda: make_vec(EXEC, 4, horizon=12, max_episode_steps=10, **FAULTS),
    "vector-trading": lambda: make_vec(TRADE, 3, max_episode_steps=15, **FAULTS),
}


def actions_for(env, n: int, seed: int) -> list:
    space = env.action_space
    space.seed(seed)
    return [space.sample() for _ in range(n)]


def run(env, actions: list) -> list[tuple]:
    """Step ``env`` through ``actions`` (a single env resets when its episode ends); what each step returned."""
    out = []
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs, reward, terminated, truncated, info))
        if not isinstance(env, gym.vector.VectorEnv) and (terminated or truncated):
            obs, info = env.reset()
            out.append((obs, info))
    return out


def assert_same_results(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b), f"{len(a)} results vs {len(b)}"
    for k, (x, y) in enumerate(zip(a, b)):
        assert len(x) == len(y), k
        for u, v in zip(x, y):
            if isinstance(u, dict):
                assert u.keys() == v.keys(), k
                for key in u:
                    assert np.array_equal(u[key], v[key]) and type(u[key]) is type(v[key]), (k, key)
            else:
                assert np.array_equal(u, v) and type(u) is type(v), (k, u, v)


def history(env) -> dict[str, dict[str, np.ndarray]]:
    h = env.unwrapped.exchange.history
    return {name: getattr(h, name).columns() for name in ("events", "ledger", "market")}


def assert_same_history(a: dict, b: dict) -> None:
    for log in a:
        assert a[log].keys() == b[log].keys(), log
        for col in a[log]:
            assert np.array_equal(a[log][col], b[log][col]), f"{log}.{col}"


def started(front: str, seed: int = 3):
    """An env of ``front`` reset with ``seed`` and stepped ``WARMUP`` times (a partly filled history)."""
    env = FRONTS[front]()
    env.reset(seed=seed)
    run(env, actions_for(env, WARMUP, seed=100 + seed))
    return env


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("front", FRONTS)
def test_clone_and_original_step_alike_bit_for_bit(front, how):
    """Same actions after the copy: the same observations, rewards, flags, infos, state and history."""
    env = started(front)
    clone = COPIES[how](env)
    assert_same(snapshot(env), snapshot(clone))
    assert_same_history(history(env), history(clone))  # the copy carries the history written so far
    actions = actions_for(env, N_STEPS, seed=9)
    assert_same_results(run(env, actions), run(clone, actions))
    assert_same(snapshot(env), snapshot(clone))
    assert_same_history(history(env), history(clone))
    assert len(env.unwrapped.exchange.history.events) > 50  # orders were sent, filled and rejected


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("front", FRONTS)
def test_stepping_the_clone_leaves_the_original_untouched(front, how):
    env = started(front)
    before, before_history = snapshot(env), history(env)
    clone = COPIES[how](env)
    assert_packs_only_its_own_arrays(clone, env)
    run(clone, actions_for(clone, N_STEPS, seed=9))
    assert snapshot(clone)["history"] != before["history"]  # the clone did step
    assert_packs_only_its_own_arrays(clone, env)  # also after its logs grew and it repacked
    assert_same(before, snapshot(env))
    assert_same_history(before_history, history(env))


@settings(max_examples=12)
@given(copy_at=st.integers(0, 70), how=st.sampled_from(sorted(COPIES)))
def test_a_copy_taken_at_any_step_replays_the_rest_of_the_run(copy_at, how):
    """Across episode ends and autoresets: a copy after ``copy_at`` steps, stepped on, equals the original."""
    env = make_vec(EXEC, 2, horizon=6, max_episode_steps=5, **FAULTS)
    env.reset(seed=1)
    actions = actions_for(env, copy_at + 15, seed=2)
    run(env, actions[:copy_at])
    clone = COPIES[how](env)
    assert_same_results(run(env, actions[copy_at:]), run(clone, actions[copy_at:]))
    assert_same_history(history(env), history(clone))


@pytest.mark.parametrize("how", COPIES)
def test_a_copy_of_an_env_never_reset_needs_a_reset_then_matches(how):
    env = gym.make(EXEC)
    clone = COPIES[how](env)
    with pytest.raises(ResetNeeded):
        clone.step(clone.action_space.sample())
    assert_same_results([env.reset(seed=5)], [clone.reset(seed=5)])
    actions = actions_for(env, 10, seed=1)
    assert_same_results(run(env, actions), run(clone, actions))


def clone_outlives_original() -> None:
    """(Run in a subprocess.) Clone every front-end each way, free the original, overwrite freed memory:
    the clone steps on and equals a fresh env replaying the same seed and actions."""
    for front in FRONTS:
        for how, copy_fn in COPIES.items():
            env = started(front)
            clone = copy_fn(env)
            del env
            junk = clobber_freed_memory()
            actions = actions_for(clone, N_STEPS, seed=9)
            got = run(clone, actions)
            reference = started(front)
            assert_same_results(got, run(reference, actions))
            assert_same_history(history(clone), history(reference))
            del junk
            print(front, how, "ok", flush=True)


def test_a_clone_outlives_its_original():
    out = run_in_subprocess("tests.envs.test_copy_pickle:clone_outlives_original")
    assert out.count(" ok") == len(FRONTS) * len(COPIES), out
