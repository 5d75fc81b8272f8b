"""The normalised event log: event rows, order rows and fill rows give back the wide event columns.

``EventLog.columns()`` must hold exactly what one wide row per event held (the frames,
the store and the notebooks read those columns), whatever was flushed in between:
an order that lives across ``History.clear()`` writes its order row again with its
next event. Checked here against an unflushed run of the same seed, against the
Orders table at record time, and as a lossless round trip of arbitrary columns.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import orderbook as ob
from orderbook.engine.state import new_orders
from orderbook.history import logs as h
from orderbook.spec import codes as c
from tests.orderbook.helpers import random_cancels, random_intents, small_config

SLOW = small_config(
    faults=dataclasses.replace(ob.FaultSpec.high(), ack_timeout_ms=600_000.0),
    latency=ob.LatencySpec(kind="uniform", low_ms=10.0, high_ms=150_000.0),  # acks and cancels in flight across steps
)
WIDE_BYTES = 8 * len(h.EV_I64) + 4 * len(h.EV_I32) + len(h.EV_U8)  # one wide row per event, as before


def run(seed: int, n_steps: int, flush_every: int = 0, capacity: int = 4096, n_lanes: int = 3) -> tuple[ob.Exchange, list[pl.DataFrame]]:
    """Random orders and cancels; with ``flush_every``, the events frame is taken and the history cleared every so many steps."""
    ex = ob.Exchange(SLOW, n_lanes=n_lanes, history_capacity=capacity)
    ex.reset(seed=seed)
    rng = np.random.default_rng(seed)
    parts = []
    for t in range(n_steps):
        intents = random_intents(rng, ex)
        intents.qty_lots[:] = np.minimum(intents.qty_lots, 60)
        ex.step(intents, random_cancels(rng, ex, 0.1))
        if t == n_steps // 2:
            ex.reset(mask=rng.random(n_lanes) < 0.5)
        if flush_every and t % flush_every == flush_every - 1:
            parts.append(ex.history.events_frame())
            ex.history.clear()
    parts.append(ex.history.events_frame())
    return ex, parts


@settings(max_examples=12)
@given(seed=st.integers(0, 2**16), flush_every=st.integers(1, 9), capacity=st.sampled_from([16, 4096]))
def test_flushing_mid_episode_changes_no_event_column(seed, flush_every, capacity):
    _, (whole,) = run(seed, 40)
    _, parts = run(seed, 40, flush_every, capacity)
    flushed = pl.concat(parts)
    assert_frame_equal(flushed.drop("seq"), whole.drop("seq"))
    # the case that needs the order rows written again: orders whose first event was flushed earlier
    first = pl.col("event").is_in(["SUBMIT", "REJECT"])
    carried = sum(p.group_by("lane", "episode", "order_id").agg(first.any().alias("f")).filter(~pl.col("f")).height for p in parts[1:])
    assert carried > 0


def test_a_flush_keeps_order_rows_of_live_orders_only_as_they_write_again():
    ex, _ = run(5, 30)
    events = ex.history.events
    assert len(events.orders) > 0
    ex.history.clear()
    assert (len(events), len(events.orders), len(events.fills)) == (0, 0, 0)
    ex.step(ob.empty_intents(ex.n_lanes, SLOW.max_new_orders), np.ones((ex.n_lanes, SLOW.slots), dtype=bool))
    frame = ex.history.events_frame()
    # every cancel request (or refusal) of a slot wrote one order row for its order, not one per event
    assert len(events.orders) == frame.select(pl.struct("lane", "episode", "order_id").n_unique()).item() > 0
    table = ex.orders
    for r in frame.filter(pl.col("event") == "CANCEL_REQUEST").iter_rows(named=True):
        k = int(np.flatnonzero(table.order_id[r["lane"]] == r["order_id"])[0])
        assert (r["price_ticks"], r["qty_lots"], r["decision_mid_x2"]) == (
            table.price_ticks[r["lane"], k], table.qty_lots[r["lane"], k], table.decision_mid_x2[r["lane"], k])  # (an ack may land later in the step)


def test_arrival_mid_is_zero_until_the_order_reached_the_venue_then_one_value():
    _, (events,) = run(2, 60)
    per_order = (
        events.sort("seq")
        .group_by("lane", "episode", "order_id", maintain_order=True)
        .agg(
            pl.col("arrival_mid_x2").filter(pl.col("arrival_mid_x2") != 0).n_unique().alias("values"),
            (pl.col("arrival_mid_x2") != 0).arg_max().alias("first_arrived"),
            (pl.col("arrival_mid_x2") != 0).cast(pl.Int8).diff().min().alias("drops"),
            pl.col("event").first().alias("first_event"),
        )
    )
    assert per_order["values"].max() == 1
    assert (per_order["drops"].fill_null(0) >= 0).all()  # never back to 0 once arrived
    assert per_order.filter(pl.col("values") == 1)["first_arrived"].min() >= 1  # the SUBMIT row is before the ack


def test_event_rows_take_at_most_64_bytes_with_their_order_and_fill_rows():
    ex, _ = run(0, 80, n_lanes=4)
    events = ex.history.events
    assert events.nbytes_per_row == 20 and WIDE_BYTES == 98  # 97 before the tif column (schema 2)
    per_event = events.nbytes() / len(events)
    assert per_event <= 64, per_event
    n_orders = ex.history.events_frame().select(pl.struct("lane", "episode", "order_id").n_unique()).item()
    assert len(events.orders) == n_orders  # no flush: one order row per order


def test_truncate_forgets_the_order_and_fill_rows_of_the_forgotten_events():
    ex, _ = run(1, 20)
    events = ex.history.events
    before = (len(events), len(events.orders), len(events.fills))
    prefix = events.columns()
    ex.step(random_intents(np.random.default_rng(9), ex, n_orders=3), random_cancels(np.random.default_rng(9), ex, 0.3))
    assert len(events.orders) > before[1] and len(events.fills) >= before[2]
    ex.history.truncate((before[0], len(ex.history.ledger), len(ex.history.market)))
    assert (len(events), len(events.orders), len(events.fills)) == before
    for name, col in events.columns().items():
        np.testing.assert_array_equal(col, prefix[name], err_msg=name)


def test_a_slot_whose_constants_differ_from_its_order_row_writes_a_new_row():
    log = h.EventLog(16)
    log.reserve(8)
    orders = new_orders(1, 2)
    orders.order_id[0, 1], orders.instrument[0, 1], orders.side[0, 1], orders.kind[0, 1] = 7, 2, -1, c.LIMIT
    orders.price_ticks[0, 1], orders.qty_lots[0, 1], orders.decision_mid_x2[0, 1] = 3_000_000, 5, 6_000_002
    a = log.arrays

    def event(t, fill=0):
        h.append_event(a, 0, 4, t, t * 10, orders, 1, c.EV_FILL if fill else c.EV_ACK, c.OPEN, c.R_NONE, fill, fill * 3, 0, c.LIQ_MAKER if fill else 0)

    event(1)
    event(2)
    assert len(log.orders) == 1  # the slot's order row is reused
    orders.arrival_mid_x2[0, 1] = 6_000_010
    event(3, fill=2)
    assert len(log.orders) == 1 and a.o_i64[h.O_ARRIVAL_MID, 0] == 6_000_010  # the arrival, written once
    orders.arrival_mid_x2[0, 1] = 6_000_020  # a different arrival would rewrite what rows 3.. read: a new row
    event(4)
    orders.price_ticks[0, 1] = 3_000_001
    event(5)
    assert len(log.orders) == 3 and len(log.fills) == 1
    cols = log.columns()
    assert cols["arrival_mid_x2"].tolist() == [0, 0, 6_000_010, 6_000_020, 6_000_020]
    assert cols["price_ticks"].tolist() == [3_000_000] * 4 + [3_000_001]
    assert cols["fill_lots"].tolist() == [0, 0, 2, 0, 0] and cols["liquidity"].tolist() == [0, 0, c.LIQ_MAKER, 0, 0]
    assert cols["side"].tolist() == [-1] * 5 and cols["episode"].tolist() == [4] * 5 and cols["order_id"].tolist() == [7] * 5


def _wide(rng: np.random.Generator, n: int, n_orders: int) -> dict[str, np.ndarray]:
    who = rng.integers(0, n_orders, n)
    per_order = lambda lo, hi, dtype: rng.integers(lo, hi, n_orders).astype(dtype)[who]  # noqa: E731
    maybe = lambda x, p: np.where(rng.random(n) < p, x, 0).astype(x.dtype)  # noqa: E731
    cols = {
        "time_ns": rng.integers(0, 2**62, n), "order_id": per_order(-2**40, 2**40, np.int64),
        "price_ticks": np.where(rng.random(n) < 0.1, rng.integers(1, 2**40, n), per_order(1, 2**40, np.int64)),
        "qty_lots": per_order(1, 2**40, np.int64), "fill_lots": maybe(rng.integers(-2**40, 2**40, n), 0.3),
        "fill_notional_atoms": maybe(rng.integers(-2**62, 2**62, n), 0.3), "fee_atoms": maybe(rng.integers(0, 2**40, n), 0.3),
        "arrival_mid_x2": maybe(np.where(rng.random(n) < 0.2, rng.integers(1, 2**41, n), per_order(1, 2**41, np.int64)), 0.6),
        "decision_mid_x2": per_order(0, 2**41, np.int64), "lane": per_order(0, 2**31, np.int32),
        "episode": per_order(-2**31, 2**31, np.int32), "step": rng.integers(-2**31, 2**31, n).astype(np.int32),
        "instrument": per_order(0, 2**31, np.int32), "side": per_order(-128, 128, np.int32), "kind": per_order(0, 256, np.uint8),
    }
    for name in h.EV_U8[1:]:
        cols[name] = maybe(rng.integers(0, 256, n).astype(np.uint8), 0.5)
    return cols


@settings(max_examples=30)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), n_orders=st.integers(1, 40), split=st.integers(0, 300))
def test_any_wide_columns_round_trip_through_the_normalised_log(seed, n, n_orders, split):
    """Lossless for any values the wide row could hold (constants that change within an order included)."""
    cols = _wide(np.random.default_rng(seed), n, n_orders)
    log = h.EventLog(16)
    split = min(split, n)
    log.extend({k: v[:split] for k, v in cols.items()})
    log.extend({k: v[split:] for k, v in cols.items()})
    got = log.columns()
    assert list(got) == [*h.EV_I64, *h.EV_I32, *h.EV_U8]
    for name, want in cols.items():
        assert got[name].dtype == np.dtype(np.int64 if name in h.EV_I64 else np.int32 if name in h.EV_I32 else np.uint8), name
        np.testing.assert_array_equal(got[name], want, err_msg=name)


def test_the_order_log_refuses_a_step_that_could_overflow_its_int32_rows():
    log = h.EventLog(16)
    with pytest.raises(ValueError, match=r"at most 2\*\*31 - 1 order rows between clears.*flush"):
        log.reserve(2**31)
    assert log.capacity == 16 and len(log) == 0


def test_a_step_that_could_overflow_the_order_rows_raises_and_changes_nothing():
    from orderbook.engine.state import copy_state

    ex, _ = run(6, 5)
    orders_log = ex.history.events.orders
    written = len(orders_log)
    orders_log.arrays.size[0] = 2**31 - 8  # as if a run had not flushed for two billion orders
    state = [copy_state(x) for x in (ex.orders, ex.lanes, ex.bars, ex.accounts, ex.stats)]
    sizes = ex.history.sizes()
    with pytest.raises(ValueError, match=r"order rows between clears, a step could make it \d+; flush"):
        ex.step(random_intents(np.random.default_rng(0), ex, n_orders=2))
    assert ex.history.sizes() == sizes
    for before, now in zip(state, (ex.orders, ex.lanes, ex.bars, ex.accounts, ex.stats)):
        for field, x, y in zip(before._fields, before, now):
            np.testing.assert_array_equal(x, y, err_msg=field)
    orders_log.arrays.size[0] = written
    ex.step(random_intents(np.random.default_rng(0), ex, n_orders=2))  # and the exchange goes on


def test_each_steps_rows_carry_the_order_table_values_of_their_orders():
    """Rows against the slots they were recorded from, step by step, under high faults and flushes."""
    ex = ob.Exchange(SLOW, n_lanes=3, history_capacity=16)
    ex.reset(seed=8)
    rng = np.random.default_rng(8)
    checked = 0
    for t in range(40):
        if t % 6 == 5:
            ex.history.clear()  # a flush: orders in the slots write their order rows again
        start = len(ex.history.events)
        ex.step(random_intents(rng, ex), random_cancels(rng, ex, 0.2))
        rows = ex.history.events_frame().slice(start)
        o = ex.orders
        lane, slot = np.nonzero(o.order_id > 0)
        table = pl.DataFrame({
            "lane": lane.astype(np.int32), "order_id": o.order_id[lane, slot],
            **{f"t_{k}": getattr(o, k)[lane, slot] for k in ("instrument", "price_ticks", "qty_lots", "decision_mid_x2", "arrival_mid_x2")},
            "t_side": np.where(o.side[lane, slot] > 0, "BUY", "SELL"),
        })
        joined = rows.join(table, on=["lane", "order_id"], how="inner")
        for k in ("instrument", "price_ticks", "qty_lots", "decision_mid_x2"):
            assert (joined[k].cast(pl.Int64) == joined[f"t_{k}"]).all(), (t, k)
        assert (joined["side"].cast(pl.String) == joined["t_side"]).all()
        arrived = joined["arrival_mid_x2"] != 0
        assert (joined.filter(arrived)["arrival_mid_x2"] == joined.filter(arrived)["t_arrival_mid_x2"]).all()
        assert (joined.filter(pl.col("status").is_in(["OPEN", "PARTIAL"]))["arrival_mid_x2"] > 0).all()
        assert (joined.filter(pl.col("event") == "SUBMIT")["arrival_mid_x2"] == 0).all()
        checked += joined.height
    assert checked > 200


def test_extend_refuses_a_side_its_8_bits_cannot_hold_and_appends_nothing():
    log = h.EventLog(16)
    cols = _wide(np.random.default_rng(0), 5, 2)
    cols["side"] = cols["side"].copy()
    cols["side"][3] = 200
    with pytest.raises(ValueError, match=r"side is kept in 8 bits, expected -128..127 .* row 3 has 200"):
        log.extend(cols)
    assert (len(log), len(log.orders), len(log.fills)) == (0, 0, 0)
