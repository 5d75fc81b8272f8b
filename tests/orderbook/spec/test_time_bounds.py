"""Times are exact integers that never wrap: durations are validated, GTC is a time in
force rather than a huge TTL, and an order's event times never decrease (issue 11, item 6)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.analytics.audit import audit
from orderbook.engine.intents import empty_intents
from orderbook.engine.state import NEVER_NS
from orderbook.spec import bounds
from orderbook.spec import codes as c
from tests.orderbook.engine.test_bad_input import assert_unchanged, snapshot
from tests.orderbook.helpers import random_cancels, random_intents, small_config

RANGE = r"and <= 1152921504607 ms \(2\*\*60 ns, 36.5 years\)"

BAD_DURATIONS = [
    (lambda: ob.FaultSpec(ack_timeout_ms=float("inf")), rf"FaultSpec.ack_timeout_ms must be a finite duration > 0 {RANGE}, got inf"),
    (lambda: ob.FaultSpec(ack_timeout_ms=0.0), r"FaultSpec.ack_timeout_ms must be a finite duration > 0"),
    (lambda: ob.FaultSpec(ack_timeout_ms=float("nan")), r"FaultSpec.ack_timeout_ms must be a finite duration > 0 .*got nan"),
    (lambda: ob.Venue("alpha", default_ttl_ms=1e13), rf"Venue alpha: default_ttl_ms must be a finite duration > 0 {RANGE}, got 10000000000000.0"),
    (lambda: ob.Venue("alpha", default_ttl_ms=float("inf")), r"default_ttl_ms must be a finite duration > 0 .*got inf"),
    (lambda: ob.LatencySpec(median_ms=float("inf")), rf"LatencySpec.median_ms must be a finite duration >= 0 {RANGE}, got inf"),
    (lambda: ob.LatencySpec(constant_ms=2e12), r"LatencySpec.constant_ms must be a finite duration >= 0 .*got 2000000000000.0"),
    (lambda: ob.LatencySpec(low_ms=-1.0), r"LatencySpec.low_ms must be a finite duration >= 0 .*got -1.0"),
    (lambda: ob.LatencySpec(high_ms=float("nan")), r"LatencySpec.high_ms must be a finite duration >= 0 .*got nan"),
    (lambda: ob.LatencySpec(tail_multiplier=float("inf")), r"LatencySpec.tail_multiplier must be a finite number >= 0, got inf"),
    (lambda: ob.FaultSpec(outage_mean_steps=float("inf")), r"FaultSpec.outage_mean_steps must be a finite number of steps in \[1, 1e\+12\], got inf"),
    (lambda: small_config(step_ms=2**60), r"ExchangeConfig.step_ms must be an int in \[1, 1152921504606\] \(2\*\*60 ns\), got 1152921504606846976"),
    (lambda: ob.BookSpec(spread_bps=float("inf")), r"BookSpec.spread_bps must be a finite number in \[0, 10000\], got inf"),
    (lambda: ob.BookSpec(min_spread_ticks=2**62), r"BookSpec.min_spread_ticks must be an int in \[0, 2\*\*40\]"),
    (lambda: ob.BookSpec(depth_fractions=(60.0, 50.0)), r"BookSpec.depth_fractions must be a non-empty tuple of numbers > 0 summing to at most 100, got \(60.0, 50.0\)"),
]


@pytest.mark.parametrize("make,message", BAD_DURATIONS, ids=[m.split(" must")[0][:40] for _, m in BAD_DURATIONS])
def test_huge_or_infinite_durations_are_refused_with_their_range(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_largest_durations_are_accepted_and_stay_below_never():
    big = bounds.MAX_DURATION_NS / 1e6
    venue = ob.Venue("alpha", default_ttl_ms=big, faults=ob.FaultSpec(ack_timeout_ms=big), latency=ob.LatencySpec(kind="constant", constant_ms=big))
    cc = small_config(venues=(venue, ob.Venue("beta"))).compile()
    assert int(cc.default_ttl_ns[0]) <= bounds.MAX_DURATION_NS and int(cc.ack_timeout_ns[0]) <= bounds.MAX_DURATION_NS
    assert bounds.MAX_TIME_NS + bounds.MAX_DURATION_NS == int(NEVER_NS) < 2**63 - 1


def lone_config(**venue) -> ob.ExchangeConfig:
    quiet = dict(latency=ob.LatencySpec.zero(), faults=ob.FaultSpec.none(), default_ttl_ms=90_000.0)
    quiet.update(venue)
    return small_config(venues=(ob.Venue("alpha", **quiet), ob.Venue("beta", **quiet)))


def test_gtc_never_expires_by_time_while_gtd_and_the_venue_default_do():
    ex = ob.Exchange(lone_config())
    ex.reset(seed=0)
    far = int(ex.bars.bid_ticks[0, 0]) * 95 // 100 / 100  # a buy limit 5% below the market: rests
    orders = [
        ob.Order("alpha", "BTC/USD", "buy", "0.001", price=far, tif="GTC"),
        ob.Order("alpha", "BTC/USD", "buy", "0.001", price=far),  # GTD at the venue's default TTL (90 s)
        ob.Order("alpha", "BTC/USD", "buy", "0.001", price=far, ttl_ms=200_000.0),  # GTD at its own ttl
    ]
    ex.step(orders)
    t0 = 0
    assert ex.orders.tif[0, :3].tolist() == [c.TIF_GTC, c.TIF_GTD, c.TIF_GTD]
    assert ex.orders.expiry_ns[0, :3].tolist() == [int(NEVER_NS), t0 + 90 * 10**9, t0 + 200 * 10**9]
    for _ in range(200):
        ex.step()
    ev = ex.history.events_frame()
    ends = ev.filter(pl.col("event") == "EXPIRE").select("order_id", "time_ns", "reason").sort("order_id")
    assert ends.rows() == [(2, 90 * 10**9, "TIMEOUT"), (3, 200 * 10**9, "TIMEOUT")]
    assert ex.orders.status[0, 0] == c.OPEN  # 200 steps later, the GTC order still rests
    assert audit(ex) == []


def test_a_huge_ttl_is_refused_and_gtc_takes_its_place():
    ex = ob.Exchange(lone_config())
    ex.reset(seed=0)
    it = empty_intents(1, 3)
    it.instrument[0, 0], it.kind[0, 0], it.price_ticks[0, 0], it.qty_lots[0, 0] = 0, c.LIMIT, int(ex.bars.bid_ticks[0, 0]) * 95 // 100, 10  # rests
    before = snapshot(ex)
    it.ttl_ns[0, 0] = 2**63 - 1  # on main: accepted, then expired at once with a negative time in the history
    with pytest.raises(ValueError, match=r"ttl_ns\[0, 0\] must be a time to live <= 2\*\*60 ns"):
        ex.step(it)
    assert_unchanged(ex, before)
    it.ttl_ns[0, 0], it.tif[0, 0] = 0, c.TIF_GTC
    ex.step(it)
    it.ttl_ns[0, 0], it.tif[0, 0] = bounds.MAX_DURATION_NS, c.TIF_GTD  # the longest GTD
    ex.step(it)
    for _ in range(3):
        ex.step()
    ev = ex.history.events_frame()
    assert (ev["time_ns"] >= 0).all() and ev.filter(pl.col("event") == "EXPIRE").height == 0
    assert sorted(ex.orders.expiry_ns[0, :2].tolist()) == [60 * 10**9 + bounds.MAX_DURATION_NS, int(NEVER_NS)]


def test_a_ttl_shorter_than_the_latency_expires_before_the_ack():
    ex = ob.Exchange(lone_config(latency=ob.LatencySpec(kind="constant", constant_ms=500.0)))
    ex.reset(seed=0)
    ex.step([ob.Order("alpha", "BTC/USD", "buy", "0.001", ttl_ms=100.0)])
    ev = ex.history.events_frame().select("event", "time_ns", "reason").rows()
    assert ev == [("SUBMIT", 0, "NONE"), ("EXPIRE", 100_000_000, "TIMEOUT")]  # on main: ACK at 500 ms, then EXPIRE at 100 ms


def test_the_synthetic_clock_stops_before_it_could_wrap():
    step_ms = bounds.MAX_DURATION_NS // 1_000_000
    ex = ob.Exchange(small_config(step_ms=step_ms))
    ex.reset(seed=0)
    n = 0
    while True:
        before = snapshot(ex)
        try:
            ex.step([ob.Order("alpha", "BTC/USD", "buy", "0.001", price="20000", ttl_ms=float(step_ms))])
        except ValueError as err:
            assert "the end of the int64 clock" in str(err)
            break
        n += 1
        assert n < 10
    assert_unchanged(ex, before)
    assert int(ex.lanes.time_ns[0]) <= bounds.MAX_TIME_NS
    ev = ex.history.events_frame()
    assert (ev["time_ns"] >= 0).all() and (ev["time_ns"] <= bounds.MAX_TIME_NS).all()
    assert audit(ex) == []


def assert_times_never_decrease_per_order(ex):
    ev = ex.history.events_frame().select("lane", "episode", "order_id", "seq", "time_ns", "event")
    assert (ev["time_ns"] >= 0).all(), ev.filter(pl.col("time_ns") < 0)
    back = ev.sort("seq").with_columns(prev=pl.col("time_ns").shift(1).over("lane", "episode", "order_id")).filter(pl.col("time_ns") < pl.col("prev"))
    assert back.height == 0, back
    clock = int(ex.lanes.time_ns.max())
    assert (ev["time_ns"] <= clock).all()


FAULTY = small_config(
    faults=ob.FaultSpec(0.1, 0.1, 3_000.0, 0.05, 3.0, 3, 0.1, 0.5),
    latency=ob.LatencySpec(median_ms=20_000.0, sigma=1.5, tail_prob=0.2, tail_multiplier=1e9),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), ttls=st.lists(st.sampled_from([0, 1, 10**6, 10**9, 3 * 10**10, 10**11, bounds.MAX_DURATION_NS]), min_size=3, max_size=3),
       tifs=st.lists(st.sampled_from([c.TIF_GTD, c.TIF_GTC]), min_size=3, max_size=3))
def test_history_times_are_never_negative_and_never_decrease_per_order(seed, ttls, tifs):
    ex = ob.Exchange(FAULTY, n_lanes=2)
    ex.reset(seed=seed)
    rng = np.random.default_rng(seed)
    gtc_ids = []  # (lane, order id) of every GTC order sent: ids count up in row order
    for _ in range(12):
        it = random_intents(rng, ex)
        for m in range(3):
            it.tif[:, m] = tifs[m]
            it.ttl_ns[:, m] = 0 if tifs[m] == c.TIF_GTC else ttls[m]
        for b in range(ex.n_lanes):
            used = np.flatnonzero(it.instrument[b] >= 0)
            gtc_ids += [(b, int(ex.lanes.next_order_id[b]) + j) for j, m in enumerate(used) if it.tif[b, m] == c.TIF_GTC]
        ex.step(it, random_cancels(rng, ex, 0.3))
    assert_times_never_decrease_per_order(ex)
    live_gtc = (ex.orders.tif == c.TIF_GTC) & (ex.orders.status >= c.PENDING) & (ex.orders.status <= c.PENDING_CANCEL)
    assert (ex.orders.expiry_ns[live_gtc] == NEVER_NS).all()
    timeouts = ex.history.events_frame().filter(pl.col("event") == "EXPIRE", pl.col("reason") == "TIMEOUT")
    assert not set(zip(timeouts["lane"].to_list(), timeouts["order_id"].to_list())) & set(gtc_ids)
    assert audit(ex) == []


def test_a_maker_fill_inside_a_short_ttl_is_stamped_before_the_expiry():
    ex = ob.Exchange(lone_config(), n_lanes=16)
    ex.reset(seed=0)
    it = empty_intents(16, 3)
    it.instrument[:, 0], it.kind[:, 0], it.qty_lots[:, 0] = 0, c.LIMIT, 10
    it.price_ticks[:, 0] = ex.bars.bid_ticks[:, 0]  # rests at the touch; fills when the bar trades through
    it.ttl_ns[:, 0] = 20 * 10**9  # expires a third into the bar: only the path before it can fill the order
    ex.step(it)
    ev = ex.history.events_frame()
    fills = ev.filter(pl.col("event") == "FILL", pl.col("liquidity") == "MAKER")
    assert fills.height > 0
    point_ns = ex.config.step_ns // ex.config.path_points  # fills are stamped where the path reaches the price
    assert all(0 < t < 20 * 10**9 and t % point_ns == 0 for t in fills["time_ns"].to_list())
    assert_times_never_decrease_per_order(ex)


def test_a_fill_that_wins_the_race_against_a_cancel_is_stamped_before_it():
    cfg = lone_config(latency=ob.LatencySpec(kind="constant", constant_ms=10_000.0), faults=ob.FaultSpec(0.0, 0.0, 1e12, 0.0, 1.0, 0, 0.0, 1.0))
    ex = ob.Exchange(cfg, n_lanes=16)
    ex.reset(seed=0)
    it = empty_intents(16, 3)
    it.instrument[:, 0], it.kind[:, 0], it.qty_lots[:, 0], it.tif[:, 0] = 0, c.LIMIT, 20_000, c.TIF_GTC  # 2 BTC: fills in parts
    it.price_ticks[:, 0] = ex.bars.bid_ticks[:, 0]
    ex.step(it)
    ex.step(None, np.ones((16, cfg.slots), dtype=bool))  # every cancel would land at 70 s; the race fault (prob 1) delays it to the bar's end
    ev = ex.history.events_frame()
    raced = ev.filter(pl.col("step") == 2, pl.col("event") == "FILL")
    assert raced.height > 0
    assert all(60 * 10**9 < t <= 120 * 10**9 for t in raced["time_ns"].to_list())  # fills along the path, before the cancel
    assert ev.filter(pl.col("step") == 2, pl.col("event") == "CANCEL_ACK")["time_ns"].unique().to_list() == [120 * 10**9]
    assert_times_never_decrease_per_order(ex)
