"""Fills, fees and reservations: exact to the atom, inside the bar, never more than locked."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import strategies as st

import orderbook as ob
from orderbook.analytics.audit import audit
from orderbook.engine.portfolio import E8, add_e8, ceil_e8, mul_rate
from tests.orderbook.helpers import random_cancels, random_intents, small_config


@given(st.integers(0, 2**62), st.integers(0, E8))
def test_mul_rate_is_exact(notional, rate):
    whole, frac = mul_rate(notional, rate)
    assert whole * E8 + frac == notional * rate
    assert 0 <= frac < E8


@given(st.lists(st.tuples(st.integers(1, 10**13), st.integers(0, 10**6)), min_size=1, max_size=20))
def test_fees_paid_piecewise_sum_to_the_ceiling_of_the_exact_total(fills):
    """Cumulative rounding: however an order fills, it pays ceil(sum notional x rate)."""
    w, f, paid = 0, 0, 0
    for notional, rate in fills:
        w, f = add_e8(w, f, *mul_rate(notional, rate))
        fee = ceil_e8(w, f) - paid
        assert 0 <= fee <= notional
        paid += fee
    exact = sum(n * r for n, r in fills)
    assert paid == -(-exact // E8)


def run(seed, n_steps=120, n_lanes=8, faults=None, market=None):
    cfg = small_config(faults=faults or ob.FaultSpec.high(), market=market or ob.SyntheticMarket())
    ex = ob.Exchange(cfg, n_lanes=n_lanes)
    ex.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(n_steps):
        ex.step(random_intents(rng, ex), random_cancels(rng, ex))
    return ex


def test_fills_happen_inside_the_bar_range_and_only_takers_fill_in_zero_volume_bars():
    """A quiet bar still shows a book (the lane's typical volume): takers fill against it, makers need trades."""
    ex = run(11, market=ob.SyntheticMarket(zero_volume_prob=0.3))
    f = ex.history.to_polars()
    fills = f["events"].filter(pl.col("event") == "FILL")
    assert fills.height > 100
    bars = f["market"].select("lane", "episode", "step", "instrument", "low_ticks", "high_ticks", "volume_lots")
    joined = fills.join(bars, on=["lane", "episode", "step", "instrument"], how="left")
    assert joined["low_ticks"].null_count() == 0
    px = joined["fill_notional_atoms"] / (joined["fill_lots"] * 1)  # 1 quote atom per tick x lot in this config
    assert ((px >= joined["low_ticks"]) & (px <= joined["high_ticks"])).all()
    quiet = joined.filter(pl.col("volume_lots") == 0)
    assert quiet.height > 0  # takers did fill on quiet bars
    assert (quiet["liquidity"] == "TAKER").all()  # and no maker did
    zero = bars.filter(pl.col("volume_lots") == 0, pl.col("step") > 0)
    assert zero.height > 50  # the test has zero-volume bars


def test_buy_fills_never_cost_more_than_their_limit_and_sells_never_get_less():
    ex = run(5)
    fills = ex.history.events_frame().filter(pl.col("event") == "FILL")
    per_lot = fills["fill_notional_atoms"] / fills["fill_lots"]
    buys = (fills["side"] == "BUY").to_numpy()
    limit = fills["price_ticks"].to_numpy().astype(float)
    assert (per_lot.to_numpy()[buys] <= limit[buys]).all()
    assert (per_lot.to_numpy()[~buys] >= limit[~buys]).all()


def test_fees_are_charged_at_the_liquidity_rate_rounded_up():
    ex = run(9, faults=ob.FaultSpec.none())
    ev = ex.history.events_frame().filter(pl.col("event") == "FILL")
    order_fees = ev.group_by("lane", "order_id").agg(
        pl.col("fee_atoms").sum(),
        (pl.col("fill_notional_atoms") * pl.when(pl.col("liquidity") == "TAKER").then(50_000).otherwise(10_000)).sum().alias("exact_e8"),
    )
    expected = (order_fees["exact_e8"] + E8 - 1) // E8
    assert order_fees.height > 20
    assert (order_fees["fee_atoms"] == expected).all()


def test_a_market_buy_larger_than_the_book_fills_what_it_shows_and_its_remainder_is_cancelled_at_once():
    """Market orders are IOC: the part the book cannot give in the arrival step is cancelled in that step
    (it used to rest until filled or expired, which no venue does)."""
    cfg = small_config(faults=ob.FaultSpec.none(), latency=ob.LatencySpec.zero(), market=ob.SyntheticMarket(zero_volume_prob=0.0, volume_mean={"BTC": 1.0}))
    ex = ob.Exchange(cfg)
    ex.reset(seed=2)
    ex.step([ob.Order("alpha", "BTC/USD", "buy", "1.5", ttl_ms=600_000)])
    assert 0 < ex.orders.filled_lots[0, 0] < ex.orders.qty_lots[0, 0]
    assert ex.orders.status[0, 0] == ob.Status.CANCELLED
    ev = ex.history.events_frame().filter(pl.col("order_id") == 1)
    last = ev.row(-1, named=True)
    assert (str(last["event"]), str(last["reason"]), last["step"]) == ("TIF_CANCEL", "IOC_REMAINDER", 1)
    assert ev.filter(pl.col("event") == "FILL").height == 1
    assert ex.accounts.locked_atoms.sum() == 0  # the cancel released the whole reservation
    assert audit(ex) == []


def test_portfolio_value_counts_locked_funds():
    cfg = small_config(faults=ob.FaultSpec.none(), latency=ob.LatencySpec(kind="constant", constant_ms=0.0))
    ex = ob.Exchange(cfg)
    ex.reset(seed=0)
    far_bid = int(ex.bars.bid_ticks[0, 0]) * 95 // 100
    ex.step([ob.Order("alpha", "BTC/USD", "buy", "1", price=str(far_bid / 100))])
    assert ex.accounts.locked_atoms.sum() > 0
    free_only = sum(
        ex.accounts.free_atoms[0, v, a] / ex.compiled.atoms_per_unit[a]
        * (1.0 if a == 1 else 1.0)
        for v in range(2) for a in (1,)
    )
    usd_total = (ex.accounts.free_atoms[0, :, 1] + ex.accounts.locked_atoms[0, :, 1]).sum() / 1e6
    assert usd_total == 200_000  # nothing spent, part of it locked
    assert free_only < usd_total
    value = ex.portfolio_value()[0]
    assert value > free_only + 50_000  # the locked dollars are in the value
