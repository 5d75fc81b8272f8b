"""Queues and liquidity (orderbook.engine.queues): a lane's orders meet the bar's liquidity once, in arrival order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.engine.intents import empty_intents
from orderbook.market.path import interval_volume_lots, share_at_or_through
from orderbook.spec import codes as c

LANES = 256


def venue_config(fills: ob.FillSpec, latency: ob.LatencySpec | None = None, slots: int = 4, tick: str = "0.01") -> ob.ExchangeConfig:
    venue = ob.Venue("sim", latency=latency or ob.LatencySpec(kind="constant", constant_ms=0.0), faults=ob.FaultSpec.none(), fills=fills)
    return ob.ExchangeConfig(
        assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6)), venues=(venue,),
        instruments=(ob.Instrument("sim", "BTC", "USD", min_notional="0", tick_size=tick),),
        initial_balances={("sim", "USD"): "100000000", ("sim", "BTC"): "1000"},
        market=ob.SyntheticMarket(), slots=slots,
    )


def start(cfg: ob.ExchangeConfig, n_lanes: int = LANES, seed: int = 3) -> ob.Exchange:
    ex = ob.Exchange(cfg, n_lanes=n_lanes)
    ex.reset(seed=seed)
    return ex


def place(ex: ob.Exchange, rows: list[tuple[int, int, int]], offset_ticks: int = 0) -> None:
    """One step in which every lane sends ``rows`` of (side, kind, qty_lots): limits at the touch minus ``offset_ticks``."""
    it = empty_intents(ex.n_lanes, ex.config.max_new_orders)
    for m, (side, kind, qty) in enumerate(rows):
        touch = ex.bars.bid_ticks[:, 0] if side == c.BUY else ex.bars.ask_ticks[:, 0]
        it.instrument[:, m], it.side[:, m], it.kind[:, m], it.qty_lots[:, m] = 0, side, kind, qty
        it.tif[:, m] = c.TIF_GTC
        it.price_ticks[:, m] = touch - side * offset_ticks if kind == c.LIMIT else 0
    ex.step(it)


def typical_lots(cfg: ob.ExchangeConfig) -> int:
    ex = start(cfg, 64)
    ex.step(empty_intents(64, cfg.max_new_orders))
    return max(int(np.median(ex.bars.volume_lots[:, 0])), 4)


def cum_fills(ex: ob.Exchange, rows, steps: int, offset_ticks: int = 0) -> np.ndarray:
    """(lanes, steps, orders) cumulative lots filled after each step for orders sent in the first step."""
    out = np.zeros((ex.n_lanes, steps, len(rows)), dtype=np.int64)
    place(ex, rows, offset_ticks)
    for s in range(steps):
        if s:
            ex.step(empty_intents(ex.n_lanes, ex.config.max_new_orders))
        out[:, s, :] = ex.orders.filled_lots[:, : len(rows)]
    return out


@given(frac=st.sampled_from([0.25, 0.5, 1.0, 3.0]), offset=st.integers(0, 2), participation=st.sampled_from([0.1, 1.0]))
@settings(max_examples=8, deadline=None)
def test_splitting_an_order_never_fills_more_than_the_whole(frac, offset, participation):
    cfg = venue_config(ob.FillSpec(participation=participation))
    q = max(int(frac * typical_lots(cfg)) // 2 * 2, 2)
    whole = cum_fills(start(cfg), [(c.BUY, c.LIMIT, q)], 4, offset).sum(axis=2)
    halves = cum_fills(start(cfg), [(c.BUY, c.LIMIT, q // 2), (c.BUY, c.LIMIT, q // 2)], 4, offset).sum(axis=2)
    assert (halves <= whole).all(), np.argwhere(halves > whole)[:5]


def toward(ex: ob.Exchange, side: int) -> np.ndarray:
    """(lanes, N + 1): each interval's extreme toward a limit of ``side`` (its min for a buy, its max for a sell)."""
    if side == c.BUY:
        return np.maximum(ex.bars.path_low_ticks[:, 0, :], ex.bars.low_ticks[:, :1])
    return np.minimum(ex.bars.path_high_ticks[:, 0, :], ex.bars.high_ticks[:, :1])


def traded_at_or_through(ex: ob.Exchange, side: int, price: np.ndarray) -> np.ndarray:
    """Per lane: the volume this step's path offered a limit at ``price``: of every interval that reached it (its
    extreme at or through the price), the share of its time spent at or through it (``share_at_or_through``)."""
    n = ex.compiled.path_points
    path, extreme, vol = ex.bars.path_ticks[:, 0, :], toward(ex, side), ex.bars.volume_lots[:, 0]
    var = ex.bars.path_sigma_ticks[:, 0] ** 2 / n
    out = np.zeros(ex.n_lanes, dtype=np.int64)
    for b in range(ex.n_lanes):
        for j in range(1, n + 1):
            if side * (price[b] - extreme[b, j]) >= 0:
                share = share_at_or_through(path[b, j - 1], path[b, j], var[b], price[b], float(side))
                out[b] += int(np.round(interval_volume_lots(vol[b], n, j) * share))
    return out


def test_a_lanes_maker_fills_per_bar_and_price_never_exceed_the_volume_traded_there():
    cfg = venue_config(ob.FillSpec(participation=1.0, touch_fill_prob=1.0, queue_fraction=0.0))
    q = 2 * typical_lots(cfg)
    ex = start(cfg)
    rows = [(c.BUY, c.LIMIT, q)] * 3
    before = np.zeros((ex.n_lanes, 3), dtype=np.int64)
    place(ex, rows, 1)
    bound_hit = 0
    for s in range(4):
        if s:
            ex.step(empty_intents(ex.n_lanes, cfg.max_new_orders))
        filled = ex.orders.filled_lots[:, :3]
        got = (filled - before).sum(axis=1)
        cap = traded_at_or_through(ex, c.BUY, ex.orders.price_ticks[:, 0])
        assert (got <= cap).all(), np.argwhere(got > cap)[:5]
        bound_hit += int(((got == cap) & (cap > 0)).sum())
        before = filled.copy()
    assert bound_hit > 0  # the cap is reached: three deep orders at one price take all the lane may


def test_the_earlier_of_two_orders_at_one_price_is_never_behind_the_later():
    latency = ob.LatencySpec()  # drawn per order: the ack order differs from the slot order in some lanes
    cfg = venue_config(ob.FillSpec(participation=1.0, touch_fill_prob=1.0), latency=latency)
    q = max(typical_lots(cfg) // 4, 1)
    ex = start(cfg, 512)
    fills = cum_fills(ex, [(c.BUY, c.LIMIT, q), (c.BUY, c.LIMIT, q)], 5, 0)
    o = ex.orders
    first = np.where((o.ack_ns[:, 1] < o.ack_ns[:, 0]), 1, 0)  # equal acks: order id, so slot 0
    second = 1 - first
    lanes = np.arange(ex.n_lanes)
    early, late = fills[lanes, :, first], fills[lanes, :, second]
    assert (first == 1).any() and (first == 0).any()
    assert (early >= late).all()
    assert ((late > 0) <= (early == q)).all()  # the later fills only once the earlier is done
    assert (late[:, -1] > 0).any()


def first_fill_step(fills: np.ndarray) -> np.ndarray:
    any_fill = fills.sum(axis=2) > 0
    return np.where(any_fill.any(axis=1), any_fill.argmax(axis=1), fills.shape[1])


@pytest.mark.parametrize("shallow, deep", [
    (dict(queue_fraction=0.0), dict(queue_fraction=1.0)),  # an empty level vs the back of the displayed one
    (dict(queue_fraction=1.0, queue_cancel_rate=0.9), dict(queue_fraction=1.0, queue_cancel_rate=0.0)),
])
def test_a_limit_behind_a_deeper_queue_fills_later_with_the_same_seeds(shallow, deep):
    """A limit at the bid: lane by lane, never ahead. Only touches tell queues apart (a trade through clears the
    level), so the tick is coarse ($10): the path often sits exactly at the limit's price."""
    specs = [ob.FillSpec(touch_fill_prob=1.0, participation=1.0, **kw) for kw in (shallow, deep)]
    q = max(typical_lots(venue_config(specs[0], tick="10")) // 10, 1)
    got = [cum_fills(start(venue_config(f, tick="10")), [(c.BUY, c.LIMIT, q)], 6, 0) for f in specs]
    assert (got[1] <= got[0]).all()  # lane by lane, step by step: never ahead
    assert (first_fill_step(got[1]) >= first_fill_step(got[0])).all()
    assert got[1].sum() < got[0].sum()  # and behind somewhere


@given(tick=st.sampled_from(["0.01", "10"]), offset=st.integers(0, 3), side=st.sampled_from([c.BUY, c.SELL]), seed=st.integers(0, 2**16))
@settings(max_examples=8, deadline=None)
def test_only_a_trade_through_clears_the_queue_ahead(tick, offset, side, seed):
    """Lane by lane, bar by bar (no cancellations ahead): a bar whose path never reaches the price leaves the queue
    ahead as it was (the price moving away does not clear a level), a bar that trades through it clears it (at a
    point or between two: an interval's extreme), a bar that only touches it can only shorten it."""
    cfg = venue_config(ob.FillSpec(queue_fraction=1.0, queue_cancel_rate=0.0, touch_fill_prob=1.0), tick=tick)
    q = 10 * typical_lots(cfg)  # never filled whole in a few bars at the default participation: it keeps resting
    ex = start(cfg, 128, seed)
    place(ex, [(side, c.LIMIT, q)], offset)
    price = ex.orders.price_ticks[:, 0]
    checked = {"away": 0, "through": 0}
    for _ in range(4):
        before = ex.orders.queue_ahead_lots[:, 0].copy()
        live = (ex.orders.status[:, 0] == c.OPEN) | (ex.orders.status[:, 0] == c.PARTIAL)
        ex.step(empty_intents(ex.n_lanes, cfg.max_new_orders))
        after = ex.orders.queue_ahead_lots[:, 0]
        path = toward(ex, side)[:, 1:]  # the intervals a resting order meets: those ending after the bar's start
        through = (side * (price[:, None] - path) > 0).any(axis=1)
        reached = through | (path == price[:, None]).any(axis=1)
        away, cleared = live & ~reached & (before > 0), live & through
        assert (after[away] == before[away]).all(), np.flatnonzero(away & (after != before))[:5]
        assert (after[cleared] == 0).all(), np.flatnonzero(cleared & (after != 0))[:5]
        assert (after[live] <= before[live]).all()
        checked["away"] += int(away.sum())
        checked["through"] += int(cleared.sum())
    assert checked["away"] > 0  # the case a level's queue must survive was seen


@pytest.mark.parametrize("side", [c.BUY, c.SELL])
def test_a_resting_limit_fills_when_the_path_goes_through_its_price_between_two_points(side):
    """Lane by lane: a resting limit whose price no path point reaches, but the continuous path between two points
    goes through (an interval's extreme), fills in that bar, its queue ahead cleared (before, only a point at or
    beyond the price filled it: the fills a real maker gets on a brief dip were missed); a bar that no interval
    brings to the price fills nothing."""
    cfg = venue_config(ob.FillSpec(participation=1.0, touch_fill_prob=1.0, queue_fraction=1.0, queue_cancel_rate=0.0))
    q = 10 * typical_lots(cfg)  # keeps resting for several bars
    ex = start(cfg, 256, 11)
    place(ex, [(side, c.LIMIT, q)], 20)
    price, n = ex.orders.price_ticks[:, 0], ex.compiled.path_points
    seen = 0
    for _ in range(8):
        before = ex.orders.filled_lots[:, 0].copy()
        live = (ex.orders.status[:, 0] == c.OPEN) | (ex.orders.status[:, 0] == c.PARTIAL)
        ex.step(empty_intents(ex.n_lanes, cfg.max_new_orders))
        got = ex.orders.filled_lots[:, 0] - before
        points, extreme = ex.bars.path_ticks[:, 0, 1:], toward(ex, side)[:, 1:]
        room = (side * (points - price[:, None]) > 0).all(axis=1)  # every point stays on the limit's side
        between = live & room & (side * (price[:, None] - extreme) > 0).any(axis=1) & (ex.bars.volume_lots[:, 0] >= 2 * n)
        away = live & (side * (extreme - price[:, None]) > 0).all(axis=1)
        assert (got[between] > 0).all(), np.flatnonzero(between & (got == 0))[:5]
        assert (ex.orders.queue_ahead_lots[between, 0] == 0).all()
        assert (got[away] == 0).all()
        seen += int(between.sum())
    assert seen > 0  # the case was met


@pytest.mark.parametrize("half_life_s", [float("inf"), 1e-3])
def test_a_second_taker_in_one_bar_pays_more_than_the_first(half_life_s):
    cfg = venue_config(ob.FillSpec(resilience_half_life_s=half_life_s))
    q = max(typical_lots(cfg) // 20, 1)
    ex = start(cfg)
    place(ex, [(c.BUY, c.MARKET, q), (c.BUY, c.MARKET, q)])
    o = ex.orders
    done = (o.filled_lots[:, 0] == q) & (o.filled_lots[:, 1] == q)
    assert done.mean() > 0.9
    first, second = o.filled_notional_atoms[done, 0], o.filled_notional_atoms[done, 1]  # same arrival: order id first
    assert (second >= first).all()
    assert (second > first).mean() > 0.5


def test_fill_spec_refuses_bad_queue_and_resilience_settings():
    with pytest.raises(ValueError, match="queue_cancel_rate must be a probability"):
        ob.FillSpec(queue_cancel_rate=1.5)
    with pytest.raises(ValueError, match="resilience_half_life_s must be a number of seconds > 0"):
        ob.FillSpec(resilience_half_life_s=0.0)


def test_taken_depth_recovers_with_the_resilience_half_life():
    """Two market buys with drawn latencies (same seeds): the later one pays no more, and less somewhere, when the
    book recovers within a millisecond than when it never recovers inside the bar."""
    paid = {}
    for half_life_s in (float("inf"), 1e-3):
        cfg = venue_config(ob.FillSpec(resilience_half_life_s=half_life_s), latency=ob.LatencySpec())
        q = max(typical_lots(cfg) // 20, 1)
        ex = start(cfg)
        place(ex, [(c.BUY, c.MARKET, q), (c.BUY, c.MARKET, q)])
        o = ex.orders
        later = np.where(o.ack_ns[:, 1] >= o.ack_ns[:, 0], 1, 0)
        lanes = np.arange(ex.n_lanes)
        done = (o.filled_lots[:, 0] == q) & (o.filled_lots[:, 1] == q) & (o.ack_ns[:, 0] != o.ack_ns[:, 1])
        paid[half_life_s] = np.where(done, o.filled_notional_atoms[lanes, later], -1)
    both = (paid[1e-3] >= 0) & (paid[float("inf")] >= 0)
    assert both.mean() > 0.8
    assert (paid[1e-3][both] <= paid[float("inf")][both]).all()
    assert (paid[1e-3][both] < paid[float("inf")][both]).any()


def test_a_sell_after_a_buy_in_one_bar_meets_the_bids_whole():
    """Depth taken is kept per side: a buy takes the asks, so a sell later in the bar walks the bids as if alone
    (a buy then takes the asks it already took: the same side still pays more)."""
    from orderbook.engine.book import walk

    cfg = venue_config(ob.FillSpec(resilience_half_life_s=float("inf")))
    q = max(typical_lots(cfg) // 4, 1)
    ex = start(cfg)
    ex.step(empty_intents(ex.n_lanes, cfg.max_new_orders))
    cc, bars = ex.compiled, ex.bars
    fresh = lambda: type(bars)(*(np.array(a, copy=True) for a in bars))  # noqa: E731
    alone, after_buy = fresh(), fresh()
    deeper = 0
    for b in range(ex.n_lanes):
        bid, ask = int(bars.bid_ticks[b, 0]), int(bars.ask_ticks[b, 0])
        sold_alone = walk(cc, alone, b, 0, c.SELL, 1, q, bid, ask, True)
        bought = walk(cc, after_buy, b, 0, c.BUY, 2**62, q, bid, ask, True)
        sold_after = walk(cc, after_buy, b, 0, c.SELL, 1, q, bid, ask, True)
        assert (int(sold_after[0]), int(sold_after[1])) == (int(sold_alone[0]), int(sold_alone[1])), b
        again = walk(cc, after_buy, b, 0, c.BUY, 2**62, q, bid, ask, False)
        deeper += int(bought[0] == again[0] == q and again[1] > bought[1])
    assert deeper > ex.n_lanes // 4  # the buy did take depth: a second buy pays more (116 of 256 lanes at seed 3)
