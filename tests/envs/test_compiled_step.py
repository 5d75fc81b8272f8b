"""The compiled Execution step equals its numpy specification, bit for bit.

:class:`envs.execution.ExecutionTask` runs decode, the core step, evaluate, the
observation and the info figures as packed compiled calls; the numpy reference
(:class:`tests.envs.oracle.execution_reference.ExecutionReference`) is the
readable specification. Same seeds and actions, faults high, several
child orders per step, random sides, each reward option (short horizons, so
remainders are charged), some lanes sitting steps out: every reward,
termination, observation, info figure, state array and history row is equal.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
import orderbook as ob
from envs.execution import ExecutionTask
from tests.envs.oracle.execution_reference import ExecutionReference
from tests.envs.oracle.make import make_reference
from tests.orderbook.compile.test_packed import _state


def _twins(n_lanes: int, **kwargs) -> tuple[ExecutionTask, ExecutionReference]:
    fast, spec = ExecutionTask(n_lanes, **kwargs), ExecutionReference(n_lanes, **kwargs)
    for task in (fast, spec):
        task.reset(seed=5, mask=None, options=task.parse_options(None))
    return fast, spec


@pytest.mark.parametrize(
    ("n_lanes", "kwargs"),
    [
        (1, dict(faults=ob.FaultSpec.high(), side="random")),
        (6, dict(faults=ob.FaultSpec.high(), side="random", orders_per_step=2, passive_bps=(1.0, 3.0, 8.0))),
        (3, dict(side="sell", size_multiples=(0.25, 8.0), horizon=15, ttl_ms=20_000.0)),
        (6, dict(faults=ob.FaultSpec.high(), side="random", horizon=12, reward="arrival")),
        (6, dict(faults=ob.FaultSpec.high(), side="random", horizon=12, reward="marked")),
    ],
    ids=["one-lane", "six-lanes-two-orders", "sell-short-horizon", "reward-arrival", "reward-marked"],
)
def test_compiled_step_equals_numpy_specification(n_lanes, kwargs):
    fast, spec = _twins(n_lanes, **kwargs)
    rng = np.random.default_rng(n_lanes)
    nvec = fast.layout.nvec
    resets = 0
    for t in range(250):
        actions = rng.integers(0, nvec, size=(n_lanes, len(nvec)))
        active = rng.random(n_lanes) < 0.9
        out_fast, out_spec = fast.step(actions, active), spec.step(actions, active)
        for name, a, b in zip(("reward", "terminated", "truncated"), out_fast[:3], out_spec[:3]):
            np.testing.assert_array_equal(a, b, err_msg=f"step {t}: {name}")
        assert out_fast[3].keys() == out_spec[3].keys()
        for key in out_fast[3]:
            np.testing.assert_array_equal(out_fast[3][key], out_spec[3][key], err_msg=f"step {t}: info[{key!r}]")
            assert out_fast[3][key].dtype == out_spec[3][key].dtype, key
        np.testing.assert_array_equal(fast.observe(), spec.observe(), err_msg=f"step {t}: observation")
        done = out_fast[1] | out_fast[2]
        if done.any():
            resets += int(done.sum())
            for task in (fast, spec):
                task.reset(seed=None, mask=done, options=None)
            np.testing.assert_array_equal(fast.observe(), spec.observe(), err_msg=f"step {t}: observation after reset")
            assert fast.info_of_lane(0) == spec.info_of_lane(0)
    assert resets >= 3  # episodes ended and restarted along the way
    assert len(fast.exchange.history.events) > 200  # the current episodes' rows (history='episode'): the run was busy
    a, b = _state(fast.exchange), _state(spec.exchange)
    del a["lanes.active"], b["lanes.active"]  # the step's input mask (the numpy path skips a step with no lane active)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_single_env_info_has_python_scalars_of_the_specification_types():
    fast = gym.make("orderbook/Execution-v0", quantity="1")  # a parent one market order fills
    spec = make_reference("orderbook/Execution-v0", quantity="1")
    _, info_fast = fast.reset(seed=3)
    _, info_spec = spec.reset(seed=3)
    assert info_fast == info_spec
    action = np.array([1, 1, 4, 0])  # market order, everything open, on the second venue
    for _ in range(5):
        out_fast, out_spec = fast.step(action), spec.step(action)
        assert out_fast[1:4] == out_spec[1:4]
        assert out_fast[4] == out_spec[4]
        assert [type(v) for v in out_fast[4].values()] == [type(v) for v in out_spec[4].values()]
        np.testing.assert_array_equal(out_fast[0], out_spec[0])
        if out_fast[2]:
            break
    assert out_fast[4]["parent_remaining_qty"] == 0.0  # the market order filled the parent
