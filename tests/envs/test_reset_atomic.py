"""A refused reset changes nothing: options and seeds are checked first, and a reset refused after it
began (the account cannot hold the parent) puts back state, task arrays and history bit for bit."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import orderbook as ob
from tests.envs.helpers import EXEC, TRADE, assert_same, make_vec, snapshot
from tests.envs.test_bad_input import GOOD


def frames(env) -> dict:
    return env.unwrapped.exchange.history.to_polars()


def assert_frames_equal(a: dict, b: dict) -> None:
    for kind in a:
        assert a[kind].equals(b[kind]), f"history {kind} changed"


def started(env_id: str, n: int | None = None, **kwargs):
    """An env (vector with ``n`` lanes) reset and stepped twice: live orders and history rows."""
    env = gym.make(env_id, **kwargs) if n is None else make_vec(env_id, n, **kwargs)
    env.reset(seed=0)
    good = np.array(GOOD[env_id]) if n is None else np.tile(GOOD[env_id], (n, 1))
    env.step(good)
    env.step(good)
    return env, good


@pytest.mark.parametrize("n", [None, 3])
def test_reset_refused_for_funds_leaves_no_phantom_episode(n):
    env, good = started(EXEC, n)
    before, history = snapshot(env), frames(env)
    episode = env.unwrapped.exchange.lanes.episode.copy()
    with pytest.raises(ValueError, match=r"lane 0: the account must hold enough USD for the parent order: needs .*holds"):
        env.reset(seed=5, options={"quantity": "1000000"})
    assert_same(before, snapshot(env))
    assert_frames_equal(history, frames(env))
    assert (env.unwrapped.exchange.lanes.episode == episode).all()  # no phantom episode
    env.step(good)  # the episode goes on
    after = frames(env)["events"]
    assert after.height >= history["events"].height and after["episode"].max() == int(episode.max())


def test_refused_first_reset_leaves_the_env_unstarted():
    env = gym.make(EXEC, quantity="1000000").unwrapped  # (Gymnasium's passive checker wrapper breaks on a first reset that raised)
    before = snapshot(env)
    with pytest.raises(ValueError, match="must hold enough USD"):
        env.reset(seed=0)
    assert_same(before, snapshot(env))
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.array(GOOD[EXEC]))
    env.reset(seed=0, options={"quantity": "1"})  # and a good reset works
    env.step(np.array(GOOD[EXEC]))


def test_refused_reset_restores_the_env_random_generator():
    env, _ = started(TRADE)
    state = env.unwrapped.np_random.bit_generator.state
    with pytest.raises(ValueError, match=r"seed must be None or an int in \[0, 9223372036854775807\], got 18446744073709551616"):
        env.reset(seed=2**64)
    assert env.unwrapped.np_random.bit_generator.state == state


SEEDS = [
    (2**64, r"seed must be None or an int in \[0, 9223372036854775807\], got 18446744073709551616"),
    (2**63, r"seed must be None or an int in \[0, 9223372036854775807\], got 9223372036854775808"),
    (-1, r"seed must be None or an int in \[0, \d+\], got -1"),
    (True, r"seed must be None or an int .*got bool True"),
    (2.0, r"seed must be None or an int .*got float 2.0"),
    ("3", r"seed must be None or an int .*got str '3'"),
]


@pytest.mark.parametrize("seed, match", SEEDS)
def test_bad_seed_raises_and_changes_nothing(seed, match):
    env, good = started(TRADE)
    before = snapshot(env)
    with pytest.raises(ValueError, match=match):
        env.reset(seed=seed)
    assert_same(before, snapshot(env))
    env.step(good)


def test_vector_lane_seeds_must_not_wrap():
    env, good = started(TRADE, 4)
    before = snapshot(env)
    top = 2**63 - 1 - 3
    with pytest.raises(ValueError, match=rf"seed must be None or an int in \[0, {top}\] \(lane b gets seed \+ b, 4 lanes\), got {top + 1}"):
        env.reset(seed=top + 1)
    assert_same(before, snapshot(env))
    env.reset(seed=top)  # the largest seed whose lanes fit
    assert env.unwrapped.exchange.lane_seed.tolist() == [top, top + 1, top + 2, 2**63 - 1]
    env.step(good)


def test_core_refuses_seeds_that_would_wrap():
    ex = ob.Exchange(ob.default_config(), n_lanes=2)
    for seed in (2**64, 2**63 - 1, -1):
        with pytest.raises(ValueError, match=r"seed must be an int in \[0, 9223372036854775806\] \(lane b gets seed \+ b\)"):
            ex.reset(seed=seed)
    with pytest.raises(ValueError, match=r"seed must be an int >= 0 or 2 ints in \[0, 9223372036854775807\]"):
        ex.reset(seed=np.array([1, 2**63], dtype=np.uint64))
    assert not ex._started.any()  # nothing began
    ex.reset(seed=np.array([0, 2**63 - 1], dtype=np.uint64))
    assert ex.lane_seed.tolist() == [0, 2**63 - 1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"horizon": 2**70}, r"horizon must be an int in \[1, 2147483647\] \(steps\), got 1180591620717411303424"),
        ({"horizon": 10**8}, r"horizon must be an int in \[1, 76861433\] \(steps; 76861433 steps of 60000 ms fit the int64 ns clock\)"),
        ({"quantity": "1e30"}, r"quantity must be at most 90071992.54740992 BTC \(2\*\*53 atoms.*got '1e30'"),
        ({"side": ["buy"]}, r"side must be 'buy', 'sell', 'random', \+1 or -1, got \['buy'\]"),
        ({"ttl_ms": 1e300}, r"ttl_ms must be a number in \[0, 4.61169e\+12\]"),
        ({"passive_bps": (2.0, 1e4)}, r"passive_bps must be a tuple of numbers in \(0, 10000\)"),
    ],
)
def test_bad_make_arguments_raise_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(EXEC, **kwargs)


OPTION_VALUES = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1", "0.5", "1e30", "-1", "buy", "sell", "random", "1000000000", "1000000", "0.00005", "nan", "", "x"]),
    st.none(), st.booleans(), st.lists(st.integers(), max_size=2),
)
_ENV: dict = {}


@given(options=st.dictionaries(st.sampled_from(["side", "quantity", "horizon"]), OPTION_VALUES, max_size=3),
       seed=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70)))
def test_any_reset_either_works_or_raises_value_error_and_changes_nothing(options, seed):
    """Property: whatever the options and seed, a reset works, or raises ValueError (never OverflowError
    or TypeError) with state, task arrays and history as they were."""
    if "env" not in _ENV:
        _ENV["env"] = started(EXEC, 2)
    env, good = _ENV["env"]
    before, history = snapshot(env), frames(env)
    try:
        env.reset(seed=seed, options=options)
    except ValueError:
        assert_same(before, snapshot(env))
        assert_frames_equal(history, frames(env))
    else:
        env.reset(seed=0)  # back to a known start for the next example
    env.step(good)
