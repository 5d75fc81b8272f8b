"""Action decoding: exact ticks and lots, reservations equal to the core's, sizes within the parent."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from envs import spaces as sp
from tests.envs.helpers import EXEC, TRADE


def submitted(env) -> pl.DataFrame:
    ev = env.unwrapped.exchange.history.to_polars()["events"]
    return ev.filter(pl.col("event") == "SUBMIT")


def test_levels_map_to_exact_ticks_of_the_decision_quotes_and_their_time_in_force():
    """Levels 2, 3 and 6.. are GTD limits, 4 an IOC at the far touch, 5 a post-only at the near touch, 1 a
    market order (IOC, at its band); the history's tif column says what was sent."""
    env = gym.make(EXEC, faults=ob.FaultSpec.none(), passive_bps=(2.0, 5.0))
    env.reset(seed=0)
    bars = env.unwrapped.exchange.bars
    assert sp.level_names((2.0, 5.0)) == ["none", "market", "limit@far", "limit@near", "ioc@far", "post-only@near",
                                          "limit@near-2bps", "limit@near-5bps"]
    for level, venue in ((2, 0), (3, 1), (4, 0), (5, 1), (6, 0), (7, 1), (1, 0)):
        i = int(env.unwrapped.task.listing[venue])
        bid, ask = int(bars.bid_ticks[0, i]), int(bars.ask_ticks[0, i])
        env.step(np.array([venue, level, 0, 0]))
        row = submitted(env).row(-1, named=True)
        expect = {2: ask, 3: bid, 4: ask, 5: bid, 6: bid - int(np.ceil(bid * 2e-4)), 7: bid - int(np.ceil(bid * 5e-4))}
        if level != 1:
            assert row["price_ticks"] == expect[level], f"level {level}"
        tif = {1: "GTD", 2: "GTD", 3: "GTD", 4: "IOC", 5: "POST_ONLY", 6: "GTD", 7: "GTD"}[level]
        assert (str(row["kind"]), str(row["tif"])) == ("MARKET" if level == 1 else "LIMIT", tif), f"level {level}"


def test_sizes_are_slices_of_the_parent_and_never_exceed_it():
    env = gym.make(EXEC, faults=ob.FaultSpec.none(), quantity="1", horizon=10, passive_bps=(50.0,), ttl_ms=3_600_000)
    env.reset(seed=0)
    rest = sp.LEVEL_PASSIVE0  # 50 bps behind the touch: rests, keeps working
    for size, lots in ((0, 500), (1, 1000), (2, 2000), (3, 4000), (4, 2500), (4, 0)):
        n = submitted(env).height
        env.step(np.array([0, rest, size, 0]))
        got = submitted(env)["qty_lots"][n:].to_list()
        assert got == ([lots] if lots else []), f"size {size}"


def test_lots_within_gives_the_largest_order_the_core_accepts():
    env = gym.make(TRADE, faults=ob.FaultSpec.none())
    env.reset(seed=0)
    task, ex = env.unwrapped.task, env.unwrapped.exchange
    cc = task.cc
    inst, side = np.array([0]), np.array([ob.Side.BUY])
    price = ex.bars.ask_ticks[:, 0]
    budget = np.array([1_234_567_891])
    lots = sp.lots_within(cc, inst, side, price, budget)
    assert sp.reservation_atoms(cc, inst, side, price, lots) <= budget < sp.reservation_atoms(cc, inst, side, price, lots + 1)
    ask = int(ex.bars.ask_ticks[0, 0])
    env.step(np.array([0, 0, 2, 4, 0, 0, 0, 0, 0]))  # buy at the far touch with 100% of the free quote
    row = submitted(env).row(-1, named=True)
    assert row["status"] == "PENDING"  # accepted: the reservation fit exactly
    lock = ex.history.to_polars()["ledger"].filter((pl.col("order_id") == row["order_id"]) & (pl.col("cause") == "LOCK"))
    assert lock["free_after"][0] >= 0
    assert lock["free_after"][0] < ask * cc.quote_atoms_per_tick_lot[0] * 1.001  # less than one more lot was left free


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), picks=st.lists(st.integers(0, 2**31), min_size=1, max_size=40))
def test_any_action_sequence_gives_observations_inside_the_box(seed, picks):
    env = gym.make(TRADE, faults=ob.FaultSpec.high())
    env.reset(seed=seed)
    for p in picks:
        env.action_space.seed(p)
        obs, rew, term, trunc, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(rew)
        assert all(np.isscalar(v) for v in info.values())
        if term or trunc:
            env.reset()


def test_decoded_intents_always_pass_the_cores_validation():
    from orderbook.engine.intents import validate_cancels, validate_intents
    from tests.envs.oracle.make import make_vec_reference

    for env_id in (EXEC, TRADE):  # the reference decode (numpy), which the compiled one equals bit for bit
        venv = make_vec_reference(env_id, 8, faults=ob.FaultSpec.high())
        venv.reset(seed=0)
        venv.action_space.seed(0)
        task = venv.unwrapped.task
        cfg = task.config
        for _ in range(60):
            actions = venv.action_space.sample()
            intents, cancels = task._decode(task.layout.validate(actions, 8), np.ones(8, dtype=bool))
            checked = validate_intents(intents, 8, cfg.max_new_orders, len(cfg.instruments))
            assert all(np.array_equal(x, y) for x, y in zip(checked, intents))
            assert np.array_equal(validate_cancels(cancels, 8, cfg.slots), cancels)
            venv.step(actions)


def test_the_envs_collar_is_the_cores_clamped_into_the_price_range():
    """Market orders reserve at the collar clamped into [min_price, max_price]; the envs' copies (numpy and
    compiled) must give the price the core records, also where the band reaches past the range."""
    from envs import trading_kernels as tk

    venue = ob.Venue("alpha", latency=ob.LatencySpec.zero(), faults=ob.FaultSpec.none())
    cfg = ob.ExchangeConfig(
        assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6)),
        venues=(venue,),
        instruments=(ob.Instrument("alpha", "BTC", "USD", min_price="29950", max_price="30050"),),
        initial_balances={("alpha", "USD"): "1000000", ("alpha", "BTC"): "10"},
        market=ob.SyntheticMarket(vol_per_step=0.01, volume_mean={"BTC": 50.0}, zero_volume_prob=0.0),
    )
    n = 16
    ex = ob.Exchange(cfg, n_lanes=n)
    ex.reset(seed=5)
    cc = ex.compiled
    clamped = {"buy": 0, "sell": 0}
    for step in range(6):
        side = np.full(n, ob.Side.BUY if step % 2 == 0 else ob.Side.SELL)
        inst = np.zeros(n, dtype=np.int64)
        bid, ask = ex.bars.bid_ticks[:, 0].copy(), ex.bars.ask_ticks[:, 0].copy()
        expected = sp.collar_ticks(cc, inst, side, bid, ask)
        compiled = [tk.collar_ticks(cc, 0, side[b], bid[b], ask[b]) for b in range(n)]
        ex.step([ob.Order("alpha", "BTC/USD", "buy" if step % 2 == 0 else "sell", "0.001", lane=b) for b in range(n)])
        events = ex.history.events_frame().filter((pl.col("event") == "SUBMIT") & (pl.col("step") == ex.lanes.step[0]))
        recorded = events.sort("lane")["price_ticks"].to_numpy()
        assert recorded.tolist() == expected.tolist() == compiled
        assert ((cc.min_price_ticks[0] <= expected) & (expected <= cc.max_price_ticks[0])).all()
        clamped["buy" if step % 2 == 0 else "sell"] += int((expected == (cc.max_price_ticks[0] if step % 2 == 0 else cc.min_price_ticks[0])).sum())
    assert clamped["buy"] > 0 and clamped["sell"] > 0  # the band did reach past the range on both sides
