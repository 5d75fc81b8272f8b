"""Gymnasium's AsyncVectorEnv forks workers after the parent stepped a 1,024-lane native vector env (issue 11).

The parent's step ran the market advance in numba's threads; the forked workers must
work (two of them step 1,024 lanes themselves: a parallel region in a forked child,
what kills it under GNU OpenMP) and give what Gymnasium's SyncVectorEnv gives in the
parent. Runs in a fresh
interpreter with two numba threads (the parallel path on any machine), so a dying
worker cannot hang or take down pytest.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np

import orderbook as ob
from tests.envs.helpers import EXEC, TRADE, make_vec
from tests.orderbook.copies import run_in_subprocess

FAULTS = dict(faults=ob.FaultSpec.high())


def _execution_after_a_parallel_step() -> gym.Env:
    """An Execution env, made where 1,024 lanes were just stepped: in a forked worker, a parallel region in the child."""
    ex = ob.Exchange(ob.default_config(slots=8), 1024)
    ex.reset(seed=1)
    ex.step()
    assert ex._calls[0].func.__name__ == "synthetic_advance_parallel"
    return gym.make(EXEC, horizon=10, **FAULTS)


ENV_FNS = {EXEC: [_execution_after_a_parallel_step] * 2 + [lambda: gym.make(EXEC, horizon=10, **FAULTS)],
           TRADE: [lambda: gym.make(TRADE, max_episode_steps=12, **FAULTS)] * 2}


def _rollout(venv, seed: int, n_steps: int) -> list:
    venv.action_space.seed(seed)
    out = [venv.reset(seed=seed)]
    for _ in range(n_steps):
        out.append(venv.step(venv.action_space.sample()))
    return out


def async_after_parallel_step() -> None:
    """(Run in a subprocess.) Step 1,024 lanes, then fork an AsyncVectorEnv; equal to a SyncVectorEnv."""
    big = make_vec(EXEC, 1024)
    big.reset(seed=0)
    for _ in range(2):
        big.step(big.action_space.sample())
    advance = big.unwrapped.exchange._calls[0].func.__name__
    assert advance == "synthetic_advance_parallel", f"the parent's market advance ran in {advance}"
    for env_id, fns in ENV_FNS.items():
        want = _rollout(gym.vector.SyncVectorEnv(fns), seed=4, n_steps=40)  # first: the workers inherit its compiled kernels
        forked = gym.vector.AsyncVectorEnv(fns, context="fork")
        try:
            got = _rollout(forked, seed=4, n_steps=40)
        finally:
            forked.close()
        assert len(got) == len(want)
        for k, (g, w) in enumerate(zip(got, want)):
            for a, b in zip(g, w):
                if isinstance(a, dict):
                    assert a.keys() == b.keys(), k
                    for key in a:
                        np.testing.assert_array_equal(a[key], b[key], err_msg=f"{env_id} step {k} info {key}")
                else:
                    np.testing.assert_array_equal(a, b, err_msg=f"{env_id} step {k}")
        assert any((w[2] | w[3]).any() for w in want[1:]), f"{env_id}: no episode ended, the autoreset path did not run"
    big.step(big.action_space.sample())  # the parent's threads still work
    print("ok", flush=True)


def test_async_vector_env_forked_after_a_parallel_step_equals_sync():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    env["NUMBA_NUM_THREADS"] = "2"
    assert "ok" in run_in_subprocess("tests.envs.test_fork_vector:async_after_parallel_step", env=env, timeout=300)
