"""Bad input raises with what was expected and what came, and leaves state and history unchanged."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction, ResetNeeded

import envs
from tests.envs.helpers import EXEC, TRADE, assert_same, make_vec, snapshot

GOOD = {EXEC: [0, 3, 1, 0], TRADE: [0, 0, 3, 1, 1, 1, 3, 1, 0]}


def bad_actions(env_id: str):
    good = GOOD[env_id]
    n = len(good)
    out_of_range = list(good)
    out_of_range[1] = 99
    # the level dimension carries the time in force (4: IOC, 5: post-only, then the passive GTD levels):
    # one past the last level, or a negative one, is refused by name
    at = 1 if env_id == EXEC else 2
    past_last, negative = list(good), list(good)
    past_last[at], negative[at] = 8, -4
    return [
        ("level past the last", np.array(past_last), InvalidAction, rf"action\[{at}\] \(order0\.level\) must be in \[0, 8\), got 8"),
        ("negative level", np.array(negative), InvalidAction, rf"action\[{at}\] \(order0\.level\) must be in \[0, 8\), got -4"),
        ("nan", np.array([np.nan] + good[1:], dtype=np.float64), InvalidAction, r"non-finite values"),
        ("float dtype", np.array(good, dtype=np.float32), InvalidAction, r"got dtype float32"),
        ("bool dtype", np.ones(n, dtype=bool), InvalidAction, r"got dtype bool"),
        ("strings", np.array(["0"] * n), InvalidAction, r"got dtype <U1"),
        ("None", None, InvalidAction, r"got None"),
        ("too short", np.array(good[:-1]), InvalidAction, rf"shape \({n},\).*got shape \({n - 1},\)"),
        ("batched", np.array([good]), InvalidAction, rf"got shape \(1, {n}\)"),
        ("too large", np.array(out_of_range), InvalidAction, r"action\[1\] \(order0\.\w+\) must be in \[0, \d+\), got 99"),
        ("negative", np.array([-1] + good[1:]), InvalidAction, r"action\[0\] .* got -1"),
        ("ragged", [[0], [1, 2]], InvalidAction, r"must be an integer array"),
    ]


CASES = [(env_id, *case) for env_id in envs.ENV_IDS for case in bad_actions(env_id)]


@pytest.mark.parametrize("env_id, name, action, error, match", CASES, ids=[f"{c[0].split('/')[1]}-{c[1]}" for c in CASES])
def test_bad_action_raises_and_changes_nothing(env_id, name, action, error, match):
    env = gym.make(env_id)
    env.reset(seed=0)
    env.step(np.array(GOOD[env_id]))  # some live orders and history
    before = snapshot(env)
    with pytest.raises(error, match=match):
        env.unwrapped.step(action)  # the raw env: no wrapper gets to look first
    assert_same(before, snapshot(env))
    env.unwrapped.step(np.array(GOOD[env_id]))  # and the env still works


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_step_before_reset_raises_reset_needed(env_id):
    env = gym.make(env_id).unwrapped
    before = snapshot(env)
    with pytest.raises(ResetNeeded, match="call reset"):
        env.step(np.array(GOOD[env_id]))
    assert_same(before, snapshot(env))


def test_step_after_termination_raises_reset_needed():
    env = gym.make(EXEC, horizon=2).unwrapped
    env.reset(seed=0)
    env.step(np.array(GOOD[EXEC]))
    _, _, terminated, _, _ = env.step(np.array(GOOD[EXEC]))
    assert terminated
    before = snapshot(env)
    with pytest.raises(ResetNeeded, match="terminated at step 2"):
        env.step(np.array(GOOD[EXEC]))
    assert_same(before, snapshot(env))
    env.reset()
    env.step(np.array(GOOD[EXEC]))


@pytest.mark.parametrize(
    "env_id, options, match",
    [
        (EXEC, {"colour": "red"}, r"unknown reset options \['colour'\]; known options: \['side', 'quantity', 'horizon'\]"),
        (EXEC, {"horizon": 0}, r"horizon must be an int in \[1, 76861433\] \(steps; .*\), got 0"),
        (EXEC, {"horizon": 2.5}, r"horizon must be an int in \[1, \d+\] \(steps; .*\), got 2.5"),
        (EXEC, {"horizon": 2**70}, r"horizon must be an int in \[1, 76861433\] .*got 1180591620717411303424"),
        (EXEC, {"quantity": "1e30"}, r"quantity must be at most 90071992.54740992 BTC \(2\*\*53 atoms.*got '1e30'"),
        (EXEC, {"quantity": "1000000"}, r"lane 0: the account must hold enough USD for the parent order"),
        (EXEC, {"side": ["buy"]}, r"side must be 'buy', 'sell', 'random', \+1 or -1, got \['buy'\]"),
        (EXEC, {"side": 2}, r"side must be 'buy', 'sell', 'random', \+1 or -1, got 2"),
        (EXEC, {"side": "up"}, r"side must be 'buy', 'sell', 'random', \+1 or -1, got 'up'"),
        (EXEC, {"quantity": "0.00005"}, r"quantity must be > 0 and a multiple of the lot sizes"),
        (EXEC, {"quantity": float("nan")}, r"quantity must be finite"),
        (EXEC, ["horizon"], r"options must be a dict or None, got list"),
        (TRADE, {"horizon": 5}, r"unknown reset options \['horizon'\]; known options: \[\]"),
    ],
)
def test_bad_reset_options_raise_and_change_nothing(env_id, options, match):
    env = gym.make(env_id)
    env.reset(seed=0)
    env.step(np.array(GOOD[env_id]))
    before = snapshot(env)
    with pytest.raises(ValueError, match=match):
        env.reset(seed=1, options=options)
    assert_same(before, snapshot(env))
    env.step(np.array(GOOD[env_id]))  # the episode goes on


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_vector_bad_actions_raise_and_change_nothing(env_id):
    venv = make_vec(env_id, 4)
    good = np.tile(GOOD[env_id], (4, 1))
    with pytest.raises(ResetNeeded, match="call reset"):
        venv.step(good)
    venv.reset(seed=0)
    venv.step(good)
    before = snapshot(venv)
    one_bad = good.copy()
    one_bad[2, 0] = 50
    nan = good.astype(np.float64)
    nan[3, 1] = np.nan
    for action, match in ((good[0], r"shape \(4, \d+\).*got shape \(\d+,\)"), (one_bad, r"action\[2, 0\]"), (nan, "non-finite")):
        with pytest.raises(InvalidAction, match=match):
            venv.step(action)
        assert_same(before, snapshot(venv))
    with pytest.raises(ValueError, match="unknown reset options"):
        venv.reset(options={"nope": 1})
    assert_same(before, snapshot(venv))
    for seed, match in ((2**64, r"seed must be None or an int in \[0, \d+\]"), (2**63 - 2, r"\(lane b gets seed \+ b, 4 lanes\)")):
        with pytest.raises(ValueError, match=match):
            venv.reset(seed=seed)
        assert_same(before, snapshot(venv))


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("seed", [2**64, 2**63, -1, True, 1.5])
def test_bad_seed_raises_and_changes_nothing(env_id, seed):
    env = gym.make(env_id)
    env.reset(seed=0)
    env.step(np.array(GOOD[env_id]))
    before = snapshot(env)
    with pytest.raises(ValueError, match=rf"seed must be None or an int in \[0, 9223372036854775807\], got .*{seed!r}"):
        env.reset(seed=seed)
    assert_same(before, snapshot(env))
    env.step(np.array(GOOD[env_id]))


@pytest.mark.parametrize(
    "env_id, kwargs, match",
    [
        (EXEC, dict(reward="pnl"), r"reward must be one of \('shortfall', 'arrival', 'marked'\), got 'pnl'"),
        (EXEC, dict(reward=1), r"reward must be one of \('shortfall', 'arrival', 'marked'\), got 1"),
        (EXEC, dict(reward=None), r"reward must be one of .*, got None"),
        (EXEC, dict(reward="Shortfall"), r"reward must be one of .*, got 'Shortfall'"),
        (EXEC, dict(split="validation", market="binance_us"), r"split must be one of \('train', 'test'\) .*got 'validation'"),
        (EXEC, dict(split="train"), r"split='train' picks a period of the replayed Binance.US data: .*got the synthetic market"),
        (EXEC, dict(split="test", market="synthetic"), r"split='test' picks .*got \{'market': 'synthetic'\}"),
        (TRADE, dict(split=["train"], market="binance_us"), r"split must be one of \('train', 'test'\) .*got \['train'\]"),
    ],
)
def test_bad_constructor_arguments_raise_saying_what_was_expected(env_id, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(env_id, **kwargs)
