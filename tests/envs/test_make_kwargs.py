"""``gym.make`` takes the command line's plain values, and env specs round-trip through JSON."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec
from hypothesis import given
from hypothesis import strategies as st

import orderbook as ob
from agents.common import FAULT_LEVELS, MARKETS, env_kwargs
from envs.config import FAULTS, build_config
from orderbook.spec.specs import to_decimal
from tests.envs.helpers import EXEC, TRADE, make_vec


def venue_parts(env, part: str) -> set:
    return {getattr(v, part) for v in env.unwrapped.task.exchange.config.venues}


@pytest.mark.parametrize("level", FAULT_LEVELS)
def test_faults_by_name_are_the_specs_the_cli_means(level):
    env = gym.make(EXEC, faults=level)
    assert venue_parts(env, "faults") == {FAULTS[level]()}
    assert env.spec.kwargs == {"faults": level}


def test_latency_and_fills_by_name():
    env = gym.make(TRADE, latency="zero", fills="default")
    assert venue_parts(env, "latency") == {ob.LatencySpec.zero()}
    assert venue_parts(env, "fills") == {ob.FillSpec()}


@pytest.mark.parametrize("market", MARKETS)
def test_every_cli_market_and_fault_level_builds_the_cli_env(market):
    kwargs = env_kwargs(EXEC, "high", market, horizon=6)
    direct = build_config(**{k: v for k, v in kwargs.items() if k in ("faults", "market")})
    expected = ob.binance_us_config(faults=ob.FaultSpec.high()) if market == "binance_us" else ob.default_config(faults=ob.FaultSpec.high())
    assert {v.faults for v in direct.venues} == {ob.FaultSpec.high()}
    assert [(i.venue, i.symbol) for i in direct.instruments] == [(i.venue, i.symbol) for i in expected.instruments]
    assert type(direct.market) is type(expected.market)


@pytest.mark.parametrize("named", [{"market": "binance_us"}, {"config": "binance_us"}, {"data": "binance_us"}])
def test_the_binance_us_replay_by_any_name_has_windows_of_the_horizon_and_ends_there(named):
    # market= and config= used a 240-bar window whatever the horizon: a 300-step parent was truncated at
    # step 240 with its remainder never charged, and the last 180 bars of a split were never replayed at 60
    env = gym.make(EXEC, horizon=300, max_episode_steps=300, split="test", faults="none", **named)
    assert env.unwrapped.task.config.market.episode_steps == 300
    env.reset(seed=1)
    no_order = np.zeros(env.action_space.shape, dtype=np.int64)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated) and steps < 300:  # at most 300 steps: the first end stops it
        _, _, terminated, truncated, info = env.step(no_order)
        steps += 1
    assert (steps, terminated, truncated) == (300, True, True)
    assert info["horizon_penalty_bps"] != 0.0 and info["shortfall_bps"] == info["horizon_penalty_bps"]
    assert gym.make(TRADE, split="test", **named).unwrapped.task.config.market.episode_steps == 240  # Trading's window


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"faults": "extreme"}, r"faults as a name must be one of \('none', 'default', 'high'\), got 'extreme'"),
    ({"latency": "slow"}, r"latency as a name must be one of \('default', 'zero'\), got 'slow'"),
    ({"faults": 3}, r"faults must be an orderbook.FaultSpec, one of the names .* or a dict of its fields, got int"),
    ({"faults": {"broker_error": 0.1}}, r"faults as a dict takes FaultSpec fields .* got unknown \['broker_error'\]"),
    ({"market": "nasdaq"}, r"market as a name must be one of \('synthetic', 'binance_us'\), got 'nasdaq'"),
    ({"config": "mine"}, r"config as a name must be one of \('default', 'binance_us'\), got 'mine'"),
    ({"config": {"slots": 8}}, r"an ExchangeConfig does not survive JSON; pass config by name"),
    ({"market": {"windows": 3}}, r"replayed data does not survive JSON"),
])
def test_bad_names_and_dicts_say_what_was_expected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(EXEC, **kwargs)


def roundtrip(env) -> gym.Env:
    return gym.make(EnvSpec.from_json(env.spec.to_json()))


def rollout(env, seed: int, steps: int) -> list:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        out += [obs, reward, terminated, truncated]
        if terminated or truncated:
            break
    return out


@pytest.mark.parametrize("kwargs", [
    {},
    {"faults": "high", "horizon": 8, "max_episode_steps": 8},
    {"faults": ob.FaultSpec.high(), "latency": ob.LatencySpec(median_ms=300.0), "fills": ob.FillSpec(impact=ob.ImpactSpec("linear", eta=1e-4))},
    {"market": ob.SyntheticMarket(depeg={"USDC": ob.DepegSpec(start_prob=0.1)}), "quotes": ("USD", "USDC"), "exchange": {"slots": 16}},
])
def test_env_spec_json_round_trip_gives_an_equal_env(kwargs):
    env = gym.make(EXEC, **kwargs)
    again = roundtrip(env)
    assert again.spec.to_json() == env.spec.to_json()
    assert again.unwrapped.task.exchange.config == env.unwrapped.task.exchange.config
    for x, y in zip(rollout(env, 3, 5), rollout(again, 3, 5)):
        assert np.array_equal(x, y)


def test_trading_spec_round_trips_too():
    env = gym.make(TRADE, faults="none", latency="zero")
    again = roundtrip(env)
    assert again.unwrapped.task.exchange.config == env.unwrapped.task.exchange.config
    assert again.spec.max_episode_steps == env.spec.max_episode_steps


def test_a_whole_config_is_not_json_and_the_error_names_the_argument_and_what_to_pass():
    env = gym.make(EXEC, config=ob.default_config(slots=16))
    with pytest.raises(TypeError, match=r"config=ExchangeConfig cannot be written as JSON .* pass config by name \('default', 'binance_us'\)"):
        env.spec.to_json()
    vec = make_vec(EXEC, 2, config=ob.default_config(slots=16))
    with pytest.raises(TypeError, match="config=ExchangeConfig cannot be written as JSON"):
        vec.spec.to_json()


def test_make_vec_takes_names_too():
    venv = make_vec(EXEC, 2, faults="high", market="synthetic")
    assert {v.faults for v in venv.unwrapped.task.exchange.config.venues} == {ob.FaultSpec.high()}


@given(st.fixed_dictionaries({}, optional={
    "broker_error_prob": st.floats(0, 1), "lost_ack_prob": st.floats(0, 1), "ack_timeout_ms": st.floats(1, 1e6),
    "rate_limit_per_step": st.integers(0, 100), "outage_mean_steps": st.floats(1, 50),
    "latency_vol_slope": st.floats(0, 10), "latency_vol_ref_bps": st.floats(0.5, 100), "latency_vol_cap": st.floats(1, 50),
    "error_burst_start_prob": st.floats(0, 1), "error_burst_mean_steps": st.floats(1, 50), "burst_error_prob": st.floats(0, 1),
}))
def test_fault_specs_as_dicts_are_the_inverse_of_asdict(fields):
    spec = ob.FaultSpec(**fields)
    cfg = build_config(faults=dataclasses.asdict(spec))
    assert {v.faults for v in cfg.venues} == {spec}


# --------------------------------------------------- a larger parent, from plain values
def test_initial_balances_take_json_keys_and_mean_the_same_account_as_pairs():
    pairs = gym.make(EXEC, exchange={"initial_balances": {("alpha", "BTC"): "3", ("alpha", "USD"): "250000"}}).unwrapped
    json_keys = gym.make(EXEC, exchange={"initial_balances": {"alpha:BTC": "3", "alpha:USD": "250000"}}).unwrapped
    assert json_keys.task.exchange.config == pairs.task.exchange.config
    assert json_keys.task.exchange.config.initial_balances == {("alpha", "BTC"): "3", ("alpha", "USD"): "250000"}
    env = gym.make(EXEC, quantity="2", exchange={"initial_balances": {"alpha:BTC": "3", "alpha:USD": "250000"}})
    assert roundtrip(env).unwrapped.task.exchange.config == env.unwrapped.task.exchange.config  # and the spec is JSON


@pytest.mark.parametrize("key", ["alphaBTC", ":BTC", "alpha:", "alpha:BTC:x"])
def test_a_balance_key_that_is_not_venue_colon_asset_is_refused_by_name(key):
    with pytest.raises(ValueError, match=rf"initial_balances keys must be \(venue, asset\) pairs or 'venue:asset' strings, got '{key}'"):
        gym.make(EXEC, exchange={"initial_balances": {key: "1"}})


@pytest.mark.parametrize("market", MARKETS)
def test_the_default_account_holds_the_default_parent_and_the_cli_scales_it_for_a_larger_one(market):
    """Without an account of the user's, Execution-v0's is the config's default times ACCOUNT_SCALE, and
    ``agents.common.DEFAULT_ACCOUNTS`` says exactly that (so the two cannot drift apart); ``env_kwargs(quantity=...)``
    writes no account up to the default parent and that account times ``quantity / 30`` above it, as plain JSON;
    the env then holds, resets and reports the parent."""
    import json

    from agents.common import DEFAULT_ACCOUNTS
    from envs.execution_options import ACCOUNT_SCALE, DEFAULT_QUANTITY

    plain = gym.make(EXEC, **env_kwargs("orderbook/Execution-v0", market=market)).unwrapped.task
    held = {k: to_decimal(v, "x") for k, v in plain.exchange.config.initial_balances.items()}
    assert held == {(v, a): to_decimal(x, "x") for v, assets in DEFAULT_ACCOUNTS[market].items() for a, x in assets.items()}
    core = build_config(market if market != "synthetic" else None, default_quotes=("USD",), episode_steps=60).initial_balances
    assert held == {k: to_decimal(v, "x") * ACCOUNT_SCALE for k, v in core.items()}
    assert plain.defaults["parent_atoms"] == int(to_decimal(DEFAULT_QUANTITY, "x") * 10**8)
    assert "exchange" not in env_kwargs("orderbook/Execution-v0", market=market, quantity="30")
    kwargs = env_kwargs("orderbook/Execution-v0", market=market, quantity="60")
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert {(k.split(":")[0], k.split(":")[1]): to_decimal(v, "x") for k, v in kwargs["exchange"]["initial_balances"].items()} == \
        {k: 2 * v for k, v in held.items()}
    env = gym.make(EXEC, **kwargs)
    env.reset(seed=1)
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, dtype=np.int64))
    assert info["parent_filled_qty"] + info["parent_remaining_qty"] == 60.0


def test_an_account_of_the_users_is_not_scaled():
    cfg = ob.default_config(quotes=("USD",))
    assert gym.make(EXEC, config=cfg).unwrapped.task.exchange.config.initial_balances == cfg.initial_balances
    mine = {("alpha", "BTC"): "3", ("alpha", "USD"): "250000"}
    assert gym.make(EXEC, exchange={"initial_balances": mine}).unwrapped.task.exchange.config.initial_balances == mine


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", "nan", "inf"])
def test_a_cli_quantity_that_is_not_a_positive_number_says_so(quantity):
    with pytest.raises(ValueError, match=rf"quantity must be a number of BTC > 0, got '{quantity}'"):
        env_kwargs("orderbook/Execution-v0", quantity=quantity)


def test_a_cli_quantity_applies_to_execution_only():
    with pytest.raises(ValueError, match="quantity applies to orderbook/Execution-v0 only, got env orderbook/Trading-v0"):
        env_kwargs("orderbook/Trading-v0", quantity="2")
