"""The SB3 adapter copies and pickles into independent clones, and SB3's SubprocVecEnv runs captured envs (issue 11).

``SubprocVecEnv([lambda: env])`` hands a stepped env to its workers: inherited by
``fork``, cloudpickled (state, history and all) by ``spawn`` and ``forkserver``.
Either way a worker steps its own copy, as an in-process ``deepcopy`` would.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents.vec_env import OrderbookVecEnv
from tests.agents.helpers import EXEC, SHORT, TRADE
from tests.envs import helpers as env_helpers
from tests.envs.helpers import assert_same
from tests.orderbook.copies import COPIES, assert_packs_only_its_own_arrays, clobber_freed_memory, run_in_subprocess

N_STEPS, WARMUP = 100, 20


def started_vec_env(env_id: str, seed: int = 3) -> OrderbookVecEnv:
    venv = OrderbookVecEnv(env_id, 4, info_keys=None, **SHORT[env_id])
    venv.seed(seed)
    venv.reset()
    run(venv, actions_for(venv, WARMUP, seed=100 + seed))
    return venv


def actions_for(venv, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    nvec = venv.action_space.nvec
    return [rng.integers(0, nvec, size=(venv.num_envs, len(nvec))) for _ in range(n)]


def run(venv, actions: list) -> list[tuple]:
    return [venv.step(a) for a in actions]


def assert_same_results(a: list[tuple], b: list[tuple]) -> None:
    assert len(a) == len(b)
    for k, ((obs_a, rew_a, done_a, infos_a), (obs_b, rew_b, done_b, infos_b)) in enumerate(zip(a, b)):
        assert np.array_equal(obs_a, obs_b) and np.array_equal(done_a, done_b), k
        assert np.array_equal(np.float32(rew_a), np.float32(rew_b)), k  # SubprocVecEnv stacks float64, the others float32
        assert len(infos_a) == len(infos_b), k
        for i, j in zip(infos_a, infos_b):
            assert i.keys() == j.keys(), k
            for key in i:
                assert np.array_equal(i[key], j[key]), (k, key)


def inner(env):
    """The object holding the task: a Gymnasium env's ``unwrapped``, or the SB3 adapter itself."""
    return env.unwrapped if isinstance(env, gym.Env) else env


def snapshot(env) -> dict:
    return env_helpers.snapshot(SimpleNamespace(unwrapped=inner(env)))


def history(venv) -> dict:
    h = inner(venv).exchange.history
    return {name: getattr(h, name).columns() for name in ("events", "ledger", "market")}


def assert_same_history(a: dict, b: dict) -> None:
    for log in a:
        for col in a[log]:
            assert np.array_equal(a[log][col], b[log][col]), f"{log}.{col}"


@pytest.mark.parametrize("how", COPIES)
@pytest.mark.parametrize("env_id", [EXEC, TRADE])
def test_vec_env_clone_steps_alike_and_apart(env_id, how):
    venv = started_vec_env(env_id)
    clone = COPIES[how](venv)
    assert_packs_only_its_own_arrays(clone, venv)
    before, before_history = snapshot(venv), history(venv)
    actions = actions_for(venv, N_STEPS, seed=9)
    stepped = run(clone, actions)  # only the clone
    assert_same(before, snapshot(venv))
    assert_same_history(before_history, history(venv))
    assert_same_results(run(venv, actions), stepped)  # then the original, the same actions: the same results
    assert_same(snapshot(venv), snapshot(clone))
    assert_same_history(history(venv), history(clone))
    assert any(d.any() for _, _, d, _ in stepped)  # episodes ended: same-step resets ran in both


def vec_env_clone_outlives_original() -> None:
    """(Run in a subprocess.) Free the original, overwrite freed memory: the clone equals a fresh replay."""
    for how, copy_fn in COPIES.items():
        venv = started_vec_env(EXEC)
        clone = copy_fn(venv)
        del venv
        junk = clobber_freed_memory()
        actions = actions_for(clone, N_STEPS, seed=9)
        got = run(clone, actions)
        reference = started_vec_env(EXEC)
        assert_same_results(got, run(reference, actions))
        assert_same_history(history(clone), history(reference))
        del junk
        print(how, "ok", flush=True)


def test_a_vec_env_clone_outlives_its_original():
    out = run_in_subprocess("tests.agents.test_subproc:vec_env_clone_outlives_original")
    assert out.count(" ok") == len(COPIES), out


def _rollout(venv, actions: list) -> list[tuple]:
    return [(venv.reset(), None, None, [{}] * venv.num_envs)] + run(venv, actions)


@pytest.mark.parametrize("start_method", ["fork", pytest.param("forkserver", marks=pytest.mark.slow), "spawn"])
def test_subproc_vec_env_over_a_captured_stepped_env(start_method):
    """Workers get the env as it was captured (its episode, history and seeds) and step their own copies."""
    env = gym.make(EXEC, horizon=8, faults=SHORT[EXEC]["faults"])
    env.reset(seed=4)
    env.action_space.seed(0)
    for _ in range(10):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    before, before_history = snapshot(env), history(env)
    actions = [np.stack([env.action_space.sample() for _ in range(2)]) for _ in range(30)]
    reference = DummyVecEnv([lambda: copy.deepcopy(env), lambda: copy.deepcopy(env)])
    venv = SubprocVecEnv([lambda: env, lambda: env], start_method=start_method)
    try:
        for ex in venv.get_attr("exchange"):  # pickled back from each worker: the captured state
            assert ex.lanes.step[0] == env.unwrapped.exchange.lanes.step[0]
            assert ex.history.sizes() == env.unwrapped.exchange.history.sizes()
        got = _rollout(venv, actions)
    finally:
        venv.close()
    want = _rollout(reference, actions)
    assert np.array_equal(got[0][0], want[0][0])
    assert_same_results(got[1:], want[1:])
    assert any(d.any() for _, _, d, _ in want[1:])  # workers reset episodes on their own
    assert_same(before, snapshot(env))  # the parent's env is as it was, and steps on
    assert_same_history(before_history, history(env))
    env.step(env.action_space.sample())
