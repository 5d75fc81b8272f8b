"""Times in force and price protection: IOC, FOK, post-only, market orders that never rest, quiet bars.

Every order here arrives in the step it is sent (zero latency, no faults), so "its
arrival step" is step 1 of the episode unless a test says otherwise.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.analytics.audit import audit
from orderbook.engine.intents import empty_intents
from orderbook.spec import codes as c
from tests.orderbook.helpers import random_cancels, random_intents, small_config

QUIET_FREE = dict(faults=ob.FaultSpec.none(), latency=ob.LatencySpec.zero())


def exchange(n_lanes: int = 1, seed: int = 0, **overrides) -> ob.Exchange:
    market = overrides.pop("market", ob.SyntheticMarket(zero_volume_prob=0.0, volume_mean={"BTC": 1.0}))
    ex = ob.Exchange(small_config(market=market, **QUIET_FREE, **overrides), n_lanes=n_lanes)
    ex.reset(seed=seed)
    return ex


def one_order(ex: ob.Exchange, side: int, kind: int, qty_lots: int, price_ticks: int = 0, tif: int = c.TIF_GTD, lanes=None):
    """Intents with one order on instrument 0 (alpha BTC/USD) in every lane (or the given lanes)."""
    it = empty_intents(ex.n_lanes, ex.config.max_new_orders)
    lanes = np.arange(ex.n_lanes) if lanes is None else np.asarray(lanes)
    it.instrument[lanes, 0] = 0
    it.side[lanes, 0], it.kind[lanes, 0], it.qty_lots[lanes, 0] = side, kind, qty_lots
    it.price_ticks[lanes, 0], it.tif[lanes, 0] = price_ticks, tif
    return it


def order_events(ex: ob.Exchange, lane: int = 0, order_id: int = 1) -> pl.DataFrame:
    ev = ex.history.events_frame()
    return ev.filter((pl.col("lane") == lane) & (pl.col("order_id") == order_id))


def last(ev: pl.DataFrame) -> tuple[str, str, str, int]:
    row = ev.row(-1, named=True)
    return str(row["event"]), str(row["status"]), str(row["reason"]), row["step"]


# ------------------------------------------------------------------ IOC
def test_an_ioc_limit_fills_what_the_book_shows_at_arrival_and_its_remainder_is_cancelled_in_that_step():
    ex = exchange()
    ask = int(ex.bars.ask_ticks[0, 0])
    ex.step(one_order(ex, c.BUY, c.LIMIT, 20_000, ask + 5, c.TIF_IOC))  # 2 BTC against a ~1 BTC bar
    ev = order_events(ex)
    fills = ev.filter(pl.col("event") == "FILL")
    assert fills.height == 1 and (fills["liquidity"] == "TAKER").all()
    assert 0 < ex.orders.filled_lots[0, 0] < 20_000
    assert last(ev) == ("TIF_CANCEL", "CANCELLED", "IOC_REMAINDER", 1)
    assert ex.accounts.locked_atoms.sum() == 0
    assert audit(ex) == []


def test_an_ioc_limit_that_is_not_marketable_is_cancelled_at_arrival_with_nothing_filled():
    ex = exchange()
    bid = int(ex.bars.bid_ticks[0, 0])
    ex.step(one_order(ex, c.BUY, c.LIMIT, 10, bid - 50, c.TIF_IOC))
    ev = order_events(ex)
    assert ev.filter(pl.col("event") == "FILL").height == 0
    assert last(ev) == ("TIF_CANCEL", "CANCELLED", "IOC_REMAINDER", 1)
    assert ex.accounts.locked_atoms.sum() == 0


# ------------------------------------------------------------------ FOK
@settings(max_examples=30, deadline=None)
@given(qty=st.integers(1, 40_000), offset=st.integers(-20, 60), side=st.sampled_from([c.BUY, c.SELL]), seed=st.integers(0, 50))
def test_fok_fills_whole_at_arrival_or_nothing(qty, offset, side, seed):
    ex = exchange(seed=seed)
    touch = int(ex.bars.ask_ticks[0, 0] if side == c.BUY else ex.bars.bid_ticks[0, 0])
    price = touch + side * offset  # offset > 0: marketable and beyond the touch; < 0: away from it
    ex.step(one_order(ex, side, c.LIMIT, qty, price, c.TIF_FOK))
    ev = order_events(ex)
    filled = int(ex.orders.filled_lots[0, 0])
    if ev.filter(pl.col("event") == "SUBMIT").height == 0:
        return  # refused before sending (funds): nothing to check
    assert filled in (0, qty)
    if filled == qty:
        assert last(ev)[:2] == ("FILL", "FILLED")
    else:
        assert last(ev) == ("TIF_CANCEL", "CANCELLED", "FOK_NOT_FILLABLE", 1)
        assert ev.filter(pl.col("event") == "FILL").height == 0
    assert ex.accounts.locked_atoms.sum() == 0  # ended in its arrival step, reservation released
    assert audit(ex) == []


def test_fok_that_the_book_can_fill_fills_and_one_it_cannot_is_killed():
    ex = exchange(n_lanes=2)
    it = one_order(ex, c.BUY, c.LIMIT, 10, 0, c.TIF_FOK)
    it.price_ticks[:, 0] = ex.bars.ask_ticks[:, 0] + 5
    it.qty_lots[1, 0] = 25_000  # 2.5 BTC against a book of ~0.6 BTC
    ex.step(it)
    assert ex.orders.status[0, 0] == ob.Status.FILLED
    assert ex.orders.status[1, 0] == ob.Status.CANCELLED and ex.orders.filled_lots[1, 0] == 0
    assert last(order_events(ex, lane=1)) == ("TIF_CANCEL", "CANCELLED", "FOK_NOT_FILLABLE", 1)


# ------------------------------------------------------------------ post-only
@settings(max_examples=30, deadline=None)
@given(offset=st.integers(-30, 30), side=st.sampled_from([c.BUY, c.SELL]), seed=st.integers(0, 50), steps=st.integers(1, 6))
def test_post_only_is_rejected_if_marketable_on_arrival_and_never_fills_as_taker(offset, side, seed, steps):
    ex = exchange(seed=seed, market=ob.SyntheticMarket(zero_volume_prob=0.0, volume_mean={"BTC": 50.0}))
    bid, ask = int(ex.bars.bid_ticks[0, 0]), int(ex.bars.ask_ticks[0, 0])
    far = ask if side == c.BUY else bid
    price = far + side * offset  # offset >= 0 crosses the book at the decision quotes
    ex.step(one_order(ex, side, c.LIMIT, 10, price, c.TIF_POST_ONLY))
    for _ in range(steps - 1):
        ex.step()
    ev = order_events(ex)
    if ev.filter(pl.col("event") == "SUBMIT").height == 0:
        return
    assert (ev.filter(pl.col("event") == "FILL")["liquidity"] != "TAKER").all()
    rejected = ev.filter(pl.col("reason") == "POST_ONLY_WOULD_TAKE")
    if rejected.height:
        assert last(ev) == ("REJECT", "REJECTED", "POST_ONLY_WOULD_TAKE", 1)
        assert ev.filter(pl.col("event") == "FILL").height == 0
    assert audit(ex) == []


def test_post_only_crossing_the_book_is_rejected_and_one_behind_the_touch_rests():
    ex = exchange(n_lanes=2)
    it = one_order(ex, c.BUY, c.LIMIT, 10, int(ex.bars.ask_ticks[0, 0]) + 20, c.TIF_POST_ONLY)
    it.price_ticks[1, 0] = ex.bars.bid_ticks[1, 0] - 20
    ex.step(it)
    assert last(order_events(ex, lane=0)) == ("REJECT", "REJECTED", "POST_ONLY_WOULD_TAKE", 1)
    rested = order_events(ex, lane=1)
    assert rested.filter(pl.col("event") == "ACK").height == 1 and rested.filter(pl.col("event") == "REJECT").height == 0
    assert (rested.filter(pl.col("event") == "FILL")["liquidity"] == "MAKER").all()  # it rests (and may fill) as a maker
    assert ex.accounts.locked_atoms[0].sum() == 0


# ------------------------------------------------------------------ market orders and protection
def test_no_market_order_is_live_after_its_arrival_step_under_high_faults():
    """Random orders of every kind and time in force, faults high, latency seconds: after every step, a
    live market order has not arrived yet (no arrival mid); IOC and FOK likewise."""
    cfg = small_config(faults=ob.FaultSpec.high(), latency=ob.LatencySpec(median_ms=2_000.0, sigma=1.5, tail_prob=0.1, tail_multiplier=50.0))
    ex = ob.Exchange(cfg, n_lanes=6)
    ex.reset(seed=3)
    rng = np.random.default_rng(3)
    arrived_market = 0
    for _ in range(120):
        ex.step(random_intents(rng, ex, tifs=True), random_cancels(rng, ex, 0.2))
        o = ex.orders
        live = np.isin(o.status, [ob.Status.PENDING, ob.Status.OPEN, ob.Status.PARTIAL, ob.Status.PENDING_CANCEL])
        ends = (o.kind == c.MARKET) | np.isin(o.tif, [c.TIF_IOC, c.TIF_FOK])
        assert not (live & ends & (o.arrival_mid_x2 != 0)).any()
        arrived_market += int(((o.kind == c.MARKET) & (o.arrival_mid_x2 != 0)).sum())
    assert arrived_market > 50  # market orders did arrive (and ended in their step)
    seen = set(ex.history.events_frame()["reason"].cast(pl.String).unique())
    assert {"IOC_REMAINDER", "FOK_NOT_FILLABLE", "POST_ONLY_WOULD_TAKE"} <= seen
    assert audit(ex) == []


def impact_config(band_bps: float, eta: float, **market):
    venue_fills = ob.FillSpec(market_collar_bps=band_bps, impact=ob.ImpactSpec(model="linear", eta=eta, epsilon=0.5, gamma=0.1))
    venues = tuple(ob.Venue(n, faults=ob.FaultSpec.none(), latency=ob.LatencySpec.zero(), fills=venue_fills) for n in ("alpha", "beta"))
    return small_config(venues=venues, market=ob.SyntheticMarket(zero_volume_prob=0.0, **market))


def test_with_the_default_band_a_child_walking_past_it_fills_in_part_and_the_rest_is_cancelled_for_protection():
    """A 0.5 BTC market buy whose impact (eta) would carry it ~280 bps past the touch: with the 50 bps band it
    fills part, within the band, and the rest ends CANCELLED (PRICE_PROTECTION) in the same step."""
    ex = ob.Exchange(impact_config(50.0, eta=100_000.0, volume_mean={"BTC": 50.0}), n_lanes=4)
    ex.reset(seed=1)
    ex.step(one_order(ex, c.BUY, c.MARKET, 5_000))
    ev = ex.history.events_frame()
    for b in range(4):
        mine = ev.filter(pl.col("lane") == b, pl.col("order_id") == 1)
        assert 0 < ex.orders.filled_lots[b, 0] < 5_000
        assert last(mine) == ("TIF_CANCEL", "CANCELLED", "PRICE_PROTECTION", 1)
        fills = mine.filter(pl.col("event") == "FILL")
        assert (fills["fill_notional_atoms"] <= fills["price_ticks"] * fills["fill_lots"]).all()  # 1 atom per tick x lot
    assert ex.accounts.locked_atoms.sum() == 0
    assert audit(ex) == []


@settings(max_examples=25, deadline=None)
@given(band=st.sampled_from([5.0, 20.0, 50.0, 200.0]), eta=st.floats(0.0, 50_000.0), qty=st.integers(1, 20_000),
       side=st.sampled_from([c.BUY, c.SELL]), seed=st.integers(0, 20))
def test_no_taker_fill_of_a_market_order_is_ever_priced_beyond_its_band(band, eta, qty, side, seed):
    ex = ob.Exchange(impact_config(band, eta=eta, volume_mean={"BTC": 5.0}), n_lanes=2)
    ex.reset(seed=seed)
    it = one_order(ex, side, c.MARKET, qty)
    it.instrument[:, 1], it.side[:, 1], it.kind[:, 1], it.qty_lots[:, 1] = 0, side, c.MARKET, qty  # a second walks on
    for _ in range(3):
        ex.step(it)
    fills = ex.history.events_frame().filter(pl.col("event") == "FILL")
    px_lots, band_lots = fills["fill_notional_atoms"].to_numpy(), (fills["price_ticks"] * fills["fill_lots"]).to_numpy()
    assert ((px_lots <= band_lots) if side == c.BUY else (px_lots >= band_lots)).all()
    assert ex.accounts.locked_atoms.sum() == 0  # every market order ended in its step
    assert (ex.accounts.free_atoms >= 0).all()
    assert audit(ex) == []


# ------------------------------------------------------------------ quiet bars
def test_on_a_quiet_bar_a_taker_fills_against_the_book_and_a_maker_does_not():
    ex = exchange(n_lanes=64, market=ob.SyntheticMarket(zero_volume_prob=0.5, volume_mean={"BTC": 5.0}))
    taker_on_quiet, maker_on_quiet = 0, 0
    for _ in range(8):
        typical = ex.bars.typical_volume_lots[:, 0].copy()
        bid = ex.bars.bid_ticks[:, 0].copy()
        it = one_order(ex, c.BUY, c.MARKET, 10)
        it.instrument[:, 1], it.side[:, 1], it.kind[:, 1], it.qty_lots[:, 1], it.price_ticks[:, 1] = 0, c.BUY, c.LIMIT, 10, bid + 1
        ex.step(it)
        step = int(ex.lanes.step[0])
        vol = ex.bars.volume_lots[:, 0]
        fills = ex.history.events_frame().filter(pl.col("event") == "FILL", pl.col("step") == step, pl.col("instrument") == 0)
        for b in np.flatnonzero((vol == 0) & (typical > 1_000)):
            mine = fills.filter(pl.col("lane") == int(b))
            takers = mine.filter(pl.col("liquidity") == "TAKER")
            assert takers["fill_lots"].sum() >= 10  # the market order filled whole against the quiet book
            maker_on_quiet += mine.filter(pl.col("liquidity") == "MAKER").height
            taker_on_quiet += 1
    assert taker_on_quiet > 10  # the test met quiet bars with a book
    assert maker_on_quiet == 0


def test_an_episode_that_never_traded_shows_no_book_and_its_market_order_is_cancelled_at_once():
    ex = exchange(market=ob.SyntheticMarket(zero_volume_prob=1.0))
    ex.step(one_order(ex, c.BUY, c.MARKET, 10))
    assert last(order_events(ex)) == ("TIF_CANCEL", "CANCELLED", "IOC_REMAINDER", 1)
    assert ex.orders.filled_lots[0, 0] == 0


@pytest.mark.parametrize("tif", [c.TIF_GTD, c.TIF_GTC, c.TIF_IOC])
def test_a_market_order_is_ioc_whatever_its_time_in_force(tif):
    ex = exchange()
    ex.step(one_order(ex, c.BUY, c.MARKET, 25_000, tif=tif))  # 2.5 BTC against a book of ~0.6 BTC
    assert ex.orders.status[0, 0] == ob.Status.CANCELLED
    assert last(order_events(ex))[3] == 1
