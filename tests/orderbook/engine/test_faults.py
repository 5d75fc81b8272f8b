"""Each fault switch does what it says, and only that."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

import orderbook as ob
from orderbook.spec import codes as c
from tests.orderbook.helpers import random_intents, small_config

FAST = ob.LatencySpec(kind="constant", constant_ms=20.0)


def run(config, n_steps=80, n_lanes=4, seed=0, orders_per_step=2):
    ex = ob.Exchange(config, n_lanes=n_lanes)
    ex.reset(seed=seed)
    rng = np.random.default_rng(seed)
    locked_after_each_step = []
    for _ in range(n_steps):
        ex.step(random_intents(rng, ex, orders_per_step))
        locked_after_each_step.append(int(ex.accounts.locked_atoms.sum()))
    return ex, locked_after_each_step


def test_reject_probability_one_fills_nothing_and_locks_nothing():
    faults = dataclasses.replace(ob.FaultSpec.none(), broker_error_prob=1.0)
    ex, locked = run(small_config(faults=faults, latency=FAST))
    events = ex.history.events_frame()
    assert events.filter(pl.col("event") == "FILL").height == 0
    assert events.filter(pl.col("reason") == "BROKER_ERROR").height > 50
    assert max(locked) == 0
    assert (ex.accounts.free_atoms == ex.compiled.initial_free_atoms[None]).all()


def test_outage_refuses_every_order_on_that_venue_and_no_other():
    cfg = small_config(faults=ob.FaultSpec.none(), latency=FAST)
    down = dataclasses.replace(ob.FaultSpec.none(), outage_start_prob=1.0, outage_mean_steps=1e9)
    cfg = dataclasses.replace(cfg, venues=(cfg.venues[0].replace(faults=down), cfg.venues[1]))
    ex, _ = run(cfg)
    events = ex.history.events_frame().filter(pl.col("event").is_in(["SUBMIT", "REJECT"]) & (pl.col("step") > 0))
    alpha = events.filter(pl.col("venue") == "alpha")
    beta = events.filter(pl.col("venue") == "beta")
    assert alpha.height > 20 and beta.height > 20
    assert (alpha["reason"] == "VENUE_DOWN").all()
    assert (beta["reason"] != "VENUE_DOWN").all()
    assert beta.filter(pl.col("event") == "SUBMIT").height > 0


def test_zero_latency_no_faults_marketable_orders_fill_within_their_step():
    cfg = small_config(faults=ob.FaultSpec.none(), latency=ob.LatencySpec.zero(), market=ob.SyntheticMarket(zero_volume_prob=0.0, volume_mean={"BTC": 50.0}))
    ex = ob.Exchange(cfg, n_lanes=2)
    ex.reset(seed=3)
    for _ in range(20):
        ex.step([ob.Order("alpha", "BTC/USD", "buy", "0.01", lane=0), ob.Order("beta", "BTC/USDT", "sell", "0.02", lane=1)])
    events = ex.history.events_frame()
    submits = events.filter(pl.col("event") == "SUBMIT").select("lane", "order_id", "step")
    fills = events.filter(pl.col("status") == "FILLED").select("lane", "order_id", pl.col("step").alias("fill_step"), "time_ns")
    joined = submits.join(fills, on=["lane", "order_id"], how="left")
    assert joined.height == 40
    assert (joined["fill_step"] == joined["step"]).all()


def test_rate_limit_refuses_orders_past_the_limit_per_step_and_venue():
    limited = dataclasses.replace(ob.FaultSpec.none(), rate_limit_per_step=1)
    ex = ob.Exchange(small_config(faults=limited, latency=FAST))
    ex.reset(seed=0)
    ex.step([ob.Order("alpha", "BTC/USD", "buy", "0.01", price="1"), ob.Order("alpha", "BTC/USDT", "buy", "0.01"), ob.Order("beta", "BTC/USD", "buy", "0.01")])
    ev = ex.history.events_frame().filter(pl.col("event").is_in(["SUBMIT", "REJECT"]))
    reasons = dict(zip(ev["order_id"].to_list(), ev["reason"].cast(pl.String).to_list()))
    # order 1 is a limit far from the mid: refused by the band before it counts against the limit
    assert reasons == {1: "BAD_TICK", 2: "NONE", 3: "NONE"}
    ex.step([ob.Order("alpha", "BTC/USD", "buy", "0.01"), ob.Order("alpha", "BTC/USD", "buy", "0.01")])
    ev = ex.history.events_frame().filter(pl.col("step") == 2, pl.col("event").is_in(["SUBMIT", "REJECT"]))
    assert ev["reason"].cast(pl.String).to_list() == ["NONE", "RATE_LIMITED"]


def test_lost_acks_time_out_and_release_their_funds():
    lost = dataclasses.replace(ob.FaultSpec.none(), lost_ack_prob=1.0, ack_timeout_ms=90_000.0)
    ex = ob.Exchange(small_config(faults=lost, latency=FAST))
    ex.reset(seed=0)
    ex.step([ob.Order("alpha", "BTC/USD", "buy", "0.1")])
    assert ex.accounts.locked_atoms.sum() > 0
    ex.step()
    ev = ex.history.events_frame().filter(pl.col("order_id") == 1)
    assert ev["event"].cast(pl.String).to_list() == ["SUBMIT", "EXPIRE"]
    assert ev["reason"].cast(pl.String).to_list()[-1] == "ACK_TIMEOUT"
    assert ex.accounts.locked_atoms.sum() == 0


def test_unsolicited_cancels_hit_resting_orders_only():
    venue_cancels = dataclasses.replace(ob.FaultSpec.none(), unsolicited_cancel_prob=1.0)
    ex = ob.Exchange(small_config(faults=venue_cancels, latency=FAST))
    ex.reset(seed=0)
    bid = int(ex.bars.bid_ticks[0, 0])
    ex.step(ob.OrderIntents(*(np.array([[x, -1, -1]]) for x in (0, c.BUY, c.LIMIT, bid * 98 // 100, 10, 0))))
    assert ex.orders.status[0, 0] == c.OPEN  # acked, resting, not yet exposed a full step
    ex.step()
    ev = ex.history.events_frame().filter(pl.col("order_id") == 1)
    assert ev["event"].cast(pl.String).to_list()[-1] == "VENUE_CANCEL"
    assert ev["reason"].cast(pl.String).to_list()[-1] == "UNSOLICITED"
    assert ex.accounts.locked_atoms.sum() == 0


def test_cancel_race_lost_lets_the_fill_through():
    """With the race always lost, a cancel sent with a marketable order never prevents its fill."""
    race = dataclasses.replace(ob.FaultSpec.none(), cancel_race_prob=1.0)
    market = ob.SyntheticMarket(zero_volume_prob=0.0, volume_mean={"BTC": 500.0})
    ex = ob.Exchange(small_config(faults=race, latency=FAST, market=market))
    ex.reset(seed=1)
    ex.step([ob.Order("alpha", "BTC/USD", "buy", "0.01")])  # market order, fills this step
    ex.step()
    status = ex.history.events_frame().filter(pl.col("order_id") == 1)["status"].cast(pl.String).to_list()
    assert status[-1] == "FILLED"
