"""The compiled Trading step equals its numpy specification, bit for bit.

:class:`envs.trading.TradingTask` runs decode, the core step, evaluate, the
observation and the info figures as packed compiled calls; the numpy reference
(:class:`tests.envs.oracle.trading_reference.TradingReference`) is the readable
specification. Same seeds and actions, faults high, one to
three orders per step sizing against the funds earlier ones left, some lanes
sitting steps out, episodes ending (ruin, a replayed market's window, or a step
limit as the front-ends' ``max_episode_steps``) and resetting by mask: every
reward, termination, observation, info figure, state array and history row is
equal.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import envs  # noqa: F401  (registers the ids)
import orderbook as ob
from envs.trading import TradingTask
from orderbook.engine import state as ob_state
from tests.envs.oracle.make import make_reference, make_vec_reference
from tests.envs.oracle.trading_reference import TradingReference
from tests.orderbook.compile.test_packed import _state


def _twins(n_lanes: int, **kwargs) -> tuple[TradingTask, TradingReference]:
    fast, spec = TradingTask(n_lanes, **kwargs), TradingReference(n_lanes, **kwargs)
    for task in (fast, spec):
        task.reset(seed=5, mask=None, options=task.parse_options(None))
    return fast, spec


def _replay_config():
    try:
        return ob.binance_us_config(second_venue=True, episode_steps=12)
    except ValueError:  # the shared data folder is missing
        return None


CASES = [
    ("one-lane", 1, dict(faults=ob.FaultSpec.high(), orders_per_step=1)),
    ("six-lanes-three-orders", 6, dict(faults=ob.FaultSpec.high(), orders_per_step=3, passive_bps=(1.0, 3.0, 8.0))),
    ("ruin", 3, dict(orders_per_step=2, size_fractions=(0.5, 1.0), ruin_fraction=0.999, ttl_ms=20_000.0)),
    ("replay", 4, dict(orders_per_step=2)),
]


@pytest.mark.parametrize(("case", "n_lanes", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_compiled_trading_step_equals_numpy_specification(case, n_lanes, kwargs):
    if case == "replay":
        config = _replay_config()
        if config is None:
            pytest.skip("no shared Binance.US data")
        kwargs = dict(kwargs, config=config)
    fast, spec = _twins(n_lanes, **kwargs)
    rng = np.random.default_rng(n_lanes)
    nvec = fast.layout.nvec
    ends = {"terminated": 0, "truncated": 0, "limit": 0}
    for t in range(240):
        actions = rng.integers(0, nvec, size=(n_lanes, len(nvec)))
        actions[rng.random(n_lanes) < 0.3, -1] = 0  # let orders rest sometimes
        active = rng.random(n_lanes) < 0.9
        out_fast, out_spec = fast.step(actions, active), spec.step(actions, active)
        for name, a, b in zip(("reward", "terminated", "truncated"), out_fast[:3], out_spec[:3]):
            np.testing.assert_array_equal(a, b, err_msg=f"step {t}: {name}")
            assert a.dtype == b.dtype, name
        assert out_fast[3].keys() == out_spec[3].keys()
        for key in out_fast[3]:
            np.testing.assert_array_equal(out_fast[3][key], out_spec[3][key], err_msg=f"step {t}: info[{key!r}]")
            assert out_fast[3][key].dtype == out_spec[3][key].dtype, key
        np.testing.assert_array_equal(fast.observe(), spec.observe(), err_msg=f"step {t}: observation")
        for name in ("initial_value", "prev_value"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(spec, name), err_msg=f"step {t}: {name}")
        limit = fast.exchange.lanes.step >= 60  # the front-ends' max_episode_steps, shortened
        done = out_fast[1] | out_fast[2] | limit
        if done.any():
            ends["terminated"] += int(out_fast[1].sum())
            ends["truncated"] += int(out_fast[2].sum())
            ends["limit"] += int(limit.sum())
            for task in (fast, spec):
                task.reset(seed=None, mask=done, options=None)
            np.testing.assert_array_equal(fast.observe(), spec.observe(), err_msg=f"step {t}: observation after reset")
            assert fast.info_of_lane(0) == spec.info_of_lane(0)
    assert sum(ends.values()) >= 3, ends  # episodes ended and restarted along the way
    if case == "ruin":
        assert ends["terminated"] >= 3, ends
    if case == "replay":
        assert ends["truncated"] >= 3, ends
    assert fast.exchange.stats.counters[:, ob_state.CNT_FILLS].sum() > 0
    a, b = _state(fast.exchange), _state(spec.exchange)
    del a["lanes.active"], b["lanes.active"]  # the step's input mask (the numpy path skips a step with no lane active)
    assert len(fast.exchange.history.events) > 300
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_single_env_info_has_python_scalars_of_the_specification_types():
    fast = gym.make("orderbook/Trading-v0")
    spec = make_reference("orderbook/Trading-v0")
    assert not isinstance(fast.unwrapped.task, TradingReference) and isinstance(spec.unwrapped.task, TradingReference)
    obs_fast, info_fast = fast.reset(seed=3)
    obs_spec, info_spec = spec.reset(seed=3)
    assert info_fast == info_spec
    assert [type(v) for v in info_fast.values()] == [type(v) for v in info_spec.values()]
    np.testing.assert_array_equal(obs_fast, obs_spec)
    fast.action_space.seed(7)
    for _ in range(30):
        action = fast.action_space.sample()
        out_fast, out_spec = fast.step(action), spec.step(action)
        assert out_fast[1:4] == out_spec[1:4]
        assert out_fast[4] == out_spec[4]
        assert [type(v) for v in out_fast[4].values()] == [type(v) for v in out_spec[4].values()]
        np.testing.assert_array_equal(out_fast[0], out_spec[0])
    assert isinstance(out_fast[4]["initial_value"], float) and isinstance(out_fast[4]["return_bps"], float)
    assert out_fast[4]["return_bps"] != 0.0  # the account traded


def test_native_vector_env_equals_its_numpy_specification():
    fast = gym.make_vec("orderbook/Trading-v0", num_envs=5, vectorization_mode="vector_entry_point", max_episode_steps=25)
    spec = make_vec_reference("orderbook/Trading-v0", 5, max_episode_steps=25)
    assert data_equivalence(fast.reset(seed=9), spec.reset(seed=9), exact=True)
    fast.action_space.seed(2)
    for _ in range(60):  # two autoresets of every lane
        action = fast.action_space.sample()
        out_fast, out_spec = fast.step(action), spec.step(action)
        assert data_equivalence(out_fast, out_spec, exact=True)


def test_pairwise_sum_adds_in_numpys_order():
    from envs.trading_kernels import PAIRWISE_MAX, pairwise_sum

    rng = np.random.default_rng(0)
    for n in [*range(1, 40), 64, 127, 128, 129, 200, 255, 256, 300, 777, PAIRWISE_MAX]:
        rows = rng.random((3, n)) * 10.0 ** rng.integers(-3, 9, size=(3, n))
        sums = rows.sum(axis=1)
        for row, total in zip(rows, sums):
            assert pairwise_sum(row, 0, n) == total, n
        padded = np.concatenate([[1e9, 1e9], rows[0]])
        assert pairwise_sum(padded, 2, n) == sums[0], n
