"""Latest-state queries over a large history: Polars against pandas, and the live table.

    python benchmarks/history.py [--events 10000000] [--rounds 5]

A synthetic event log is generated with numpy straight into the core's event
log (:class:`orderbook.history.logs.EventLog`: event rows, one row per order, one per
fill), then derived by ``events_frame()``,
so the frame has exactly the schema the queries see in a run: lanes of orders
with 2-6 events each (submit, ack, partial fills, a terminal event; about 5% of
orders stay live), interleaved in time as a real log is. Timed, interleaved in
each round, medians over rounds:

- open orders and latest order state with :mod:`orderbook.analytics.queries` (Polars): the eager
  fast path, and the windowed expressions a LazyFrame runs (checked equal first);
- the same answers in pandas (``sort_values`` + ``drop_duplicates(keep="last")``
  for the latest row, ``groupby().sum()`` for the cumulative fills);
- ``orderbook.analytics.live.open_orders`` (and its numpy mask alone) on a 4,096 x 64
  Exchange whose table is full of orders in every status.

The episode store at scale (``--store-steps 100000``; ``--only store`` skips the
above): a run of an Exchange (``--store-lanes`` lanes quoting passive limits,
episodes of ``--episode-steps``) flushed to an :class:`~orderbook.analytics.store.EpisodeStore`
every ``--flush-steps`` steps, as a training loop does, then the same questions
(open orders, latest balances, execution quality) asked of the store through
Polars (a lazy scan) and DuckDB (``EpisodeStore.sql()``), before and after
``compact()``, answers checked equal, medians over rounds::

    python benchmarks/history.py --only store --store-steps 100000
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from polars.testing import assert_frame_equal

import orderbook as ob
from orderbook.analytics import live, queries
from orderbook.analytics.store import EpisodeStore
from orderbook.history import logs as h
from orderbook.spec import codes as c

ORDERS_PER_EPISODE = 200


def _paths(n_events: np.ndarray, stays_open: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(event, status, reason) codes of every event, orders concatenated."""
    total = int(n_events.sum())
    start = np.cumsum(n_events) - n_events
    pos = np.arange(total) - np.repeat(start, n_events)
    last = pos == np.repeat(n_events - 1, n_events)
    event = np.where(pos == 0, c.EV_SUBMIT, np.where(pos == 1, c.EV_ACK, c.EV_FILL)).astype(np.uint8)
    status = np.where(pos == 0, c.PENDING, np.where(pos == 1, c.OPEN, c.PARTIAL)).astype(np.uint8)
    reason = np.zeros(total, dtype=np.uint8)
    # the last event of a finished order: filled, cancelled, expired (or rejected / expired unacked)
    end = rng.choice(4, len(n_events), p=[0.55, 0.25, 0.15, 0.05])
    end_ev = np.array([c.EV_FILL, c.EV_CANCEL_ACK, c.EV_EXPIRE, c.EV_REJECT], dtype=np.uint8)[end]
    end_st = np.array([c.FILLED, c.CANCELLED, c.EXPIRED, c.REJECTED], dtype=np.uint8)[end]
    end_rs = np.array([c.R_NONE, c.R_USER_CANCEL, c.R_TIMEOUT, c.R_BROKER_ERROR], dtype=np.uint8)[end]
    closing = last & ~np.repeat(stays_open, n_events)
    order_of = np.repeat(np.arange(len(n_events)), n_events)
    event[closing] = end_ev[order_of[closing]]
    status[closing] = end_st[order_of[closing]]
    reason[closing] = end_rs[order_of[closing]]
    return event, status, reason


def synthetic_history(n_events: int, n_lanes: int = 4096, seed: int = 0) -> tuple[pl.DataFrame, ob.ExchangeConfig, tuple[int, float]]:
    """An events frame of about ``n_events`` rows, interleaved in time like a real log, the config, and
    the log's bytes per event row and per event with its order and fill rows."""
    rng = np.random.default_rng(seed)
    cfg = ob.default_config()
    n_orders = n_events // 4
    n_ev = rng.integers(2, 7, n_orders)
    stays_open = rng.random(n_orders) < 0.05
    o = np.arange(n_orders)
    per_lane = o // n_lanes
    total = int(n_ev.sum())
    event, status, reason = _paths(n_ev, stays_open, rng)
    start = np.cumsum(n_ev) - n_ev
    gaps = rng.integers(1, 20_000_000_000, total)
    gaps[start] = 0
    cum = np.cumsum(gaps)
    t_submit = (per_lane % ORDERS_PER_EPISODE) * 60_000_000_000 + rng.integers(0, 60_000_000_000, n_orders)
    time_ns = np.repeat(t_submit, n_ev) + cum - np.repeat(cum[start], n_ev)
    row = np.argsort(time_ns + np.repeat(per_lane // ORDERS_PER_EPISODE, n_ev) * 10**15, kind="stable")
    who = np.repeat(o, n_ev)[row]
    qty = rng.integers(1, 3_000, n_orders)
    inst = rng.integers(0, len(cfg.instruments), n_orders)
    price = rng.integers(2_900_000, 3_100_000, n_orders)
    fill = np.where(event[row] == c.EV_FILL, np.maximum(qty[who] // 4, 1), 0)
    hist = h.History(cfg, cfg.compile(), capacity=total)
    log = hist.events  # the normalised layout: event rows, one row per order, one row per fill
    a = log.arrays
    a.i64[h.E_TIME] = time_ns[row]
    a.i32[h.E_ORDER_ROW] = who
    a.i32[h.E_STEP] = time_ns[row] // 60_000_000_000
    a.u8[h.E_EVENT] = event[row]
    a.u8[h.E_STATUS] = status[row]
    a.u8[h.E_REASON] = reason[row]
    a.u8[h.E_FLAGS] = np.where(status[row] != c.PENDING, h.ARRIVED, 0) | np.where(fill > 0, h.HAS_FILL, 0)
    a.o_i64[h.O_ID, :n_orders] = per_lane % ORDERS_PER_EPISODE + 1
    a.o_i64[h.O_PRICE, :n_orders] = price
    a.o_i64[h.O_QTY, :n_orders] = qty
    a.o_i64[h.O_DECISION_MID, :n_orders] = 2 * price
    a.o_i64[h.O_ARRIVAL_MID, :n_orders] = 2 * price  # read only by rows flagged ARRIVED (not PENDING)
    a.o_i32[h.O_LANE, :n_orders] = o % n_lanes
    a.o_i32[h.O_EPISODE, :n_orders] = per_lane // ORDERS_PER_EPISODE
    a.o_i32[h.O_INSTRUMENT, :n_orders] = inst
    a.o_u8[h.O_SIDE, :n_orders] = np.where(o % 2 == 0, c.BUY, c.SELL).astype(np.int8).view(np.uint8)
    a.o_u8[h.O_KIND, :n_orders] = o % 3 == 0
    filled = fill > 0
    a.f_i64[h.F_LOTS, : filled.sum()] = fill[filled]
    a.f_i64[h.F_NOTIONAL, : filled.sum()] = (fill * price[who])[filled]
    a.f_i64[h.F_FEE, : filled.sum()] = (fill * price[who] // 1000)[filled]
    a.f_u8[h.F_LIQUIDITY, : filled.sum()] = c.LIQ_TAKER
    a.size[0], a.o_size[0], a.f_size[0] = total, n_orders, filled.sum()
    return hist.events_frame(), cfg, (log.nbytes_per_row, log.nbytes() / total)


# ------------------------------------------------------------------- pandas
KEY = ["lane", "episode", "order_id"]


def pandas_latest_events(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("seq", kind="stable").drop_duplicates(KEY, keep="last")


def pandas_latest_order_state(df: pd.DataFrame) -> pd.DataFrame:
    """What ``queries.latest_order_state`` answers, in pandas."""
    df = df.sort_values("seq", kind="stable")
    groups = df.groupby(KEY, sort=False)
    sums = groups[["fill_lots", "fill_notional_atoms", "fee_atoms"]].sum()
    sums.columns = ["filled_lots", "filled_notional_atoms", "fee_atoms"]
    submit = groups["time_ns"].min().rename("submit_ns")
    ended = df["status"].isin(queries.TERMINAL) & (df["event"] != "CANCEL_REJECT")
    reason = df[ended].groupby(KEY, sort=False)["reason"].first()
    latest = df.drop_duplicates(KEY, keep="last").set_index(KEY).drop(columns=["fee_atoms", "reason"])
    state = latest.join(sums).join(submit).join(reason)
    state["reason"] = state["reason"].fillna("NONE")
    return state


def pandas_open_orders(df: pd.DataFrame) -> pd.DataFrame:
    state = pandas_latest_order_state(df)
    return state[state["status"].isin(queries.LIVE)]


# --------------------------------------------------------------------- live
def full_exchange(n_lanes: int, slots: int, steps: int = 24) -> ob.Exchange:
    """Every lane quotes 4 passive limits a step, 20 bps off the touch with an hour to
    live, and cancels 5% of its slots: about half the table ends live, the rest
    filled, cancelled, expired or rejected (default faults)."""
    cfg = ob.default_config(slots=slots)
    ex = ob.Exchange(cfg, n_lanes=n_lanes, history_capacity=1 << 20)
    ex.reset(seed=0)
    rng = np.random.default_rng(0)
    n_i = len(cfg.instruments)
    for _ in range(steps):
        intents = ob.empty_intents(n_lanes, cfg.max_new_orders)
        for m in range(cfg.max_new_orders):
            inst = rng.integers(0, n_i, n_lanes)
            side = rng.choice([1, -1], n_lanes)
            bid, ask = ex.bars.bid_ticks[np.arange(n_lanes), inst], ex.bars.ask_ticks[np.arange(n_lanes), inst]
            intents.instrument[:, m] = inst
            intents.side[:, m] = side
            intents.kind[:, m] = c.LIMIT
            intents.price_ticks[:, m] = np.where(side > 0, bid - bid // 500, ask + ask // 500)  # 20 bps off the touch
            intents.qty_lots[:, m] = rng.integers(10, 100, n_lanes)
            intents.ttl_ns[:, m] = 3_600 * 10**9
        ex.step(intents, rng.random((n_lanes, slots)) < 0.05)
        ex.history.clear()
    return ex


# -------------------------------------------------------------------- store
def store_run(root: Path, steps: int, n_lanes: int, flush_steps: int, episode_steps: int) -> EpisodeStore:
    """An Exchange run of ``steps`` steps flushed to ``root`` (run "bench") every ``flush_steps`` steps."""
    cfg = ob.default_config()
    ex = ob.Exchange(cfg, n_lanes=n_lanes)
    ex.reset(seed=0)
    store = EpisodeStore(root)
    rng = np.random.default_rng(0)
    n_i, lanes = len(cfg.instruments), np.arange(n_lanes)
    for step in range(1, steps + 1):
        intents = ob.empty_intents(n_lanes, cfg.max_new_orders)
        inst, side = rng.integers(0, n_i, n_lanes), rng.choice([1, -1], n_lanes)
        bid, ask = ex.bars.bid_ticks[lanes, inst], ex.bars.ask_ticks[lanes, inst]
        intents.instrument[:, 0], intents.side[:, 0], intents.kind[:, 0] = inst, side, c.LIMIT
        intents.price_ticks[:, 0] = np.where(side > 0, bid - bid // 2000, ask + ask // 2000)  # 5 bps off the touch
        intents.qty_lots[:, 0] = rng.integers(1, 20, n_lanes)
        intents.ttl_ns[:, 0] = 600 * 10**9
        ex.step(intents, rng.random((n_lanes, cfg.slots)) < 0.02)
        if step % flush_steps == 0 or step == steps:
            store.write_history("bench", ex.history, clear=True)
        if step % episode_steps == 0:
            ex.reset()
    store.close()
    return store


def store_queries(store: EpisodeStore):
    """The questions, asked through Polars and DuckDB: {name: (polars fn, duckdb fn)}, answers sorted by key."""
    con = store.sql()
    key = ["run", "lane", "episode", "order_id"]
    bkey = ["run", "lane", "episode", "venue", "asset"]
    qkey = ["run", "lane", "episode", "venue", "kind"]
    return {
        "open orders": (lambda: queries.open_orders(store.scan("events")).select(key).collect().sort(key),
                        lambda: con.sql(f"SELECT {', '.join(key)} FROM open_orders").pl().sort(key)),
        "latest balances": (lambda: queries.latest_balances(store.scan("ledger")).select(*bkey, "free_atoms").collect().sort(bkey),
                            lambda: con.sql(f"SELECT {', '.join(bkey)}, free_atoms FROM latest_balances").pl().sort(bkey)),
        "execution quality": (
            lambda: queries.execution_quality(store.scan("events"))["summary"].select(*qkey, pl.col("fills").cast(pl.Int64)).collect().sort(qkey),
            lambda: con.sql(f"SELECT {', '.join(qkey)}, fills FROM execution_quality").pl().with_columns(pl.col("kind").cast(queries.KIND)).sort(qkey)),
    }


def store_benchmark(args) -> None:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="orderbook-store-bench-") as tmp:
        start = time.perf_counter()
        store = store_run(Path(tmp), args.store_steps, args.store_lanes, args.flush_steps, args.episode_steps)
        print(f"\nstore: {args.store_steps:,} steps x {args.store_lanes} lanes, flushed every {args.flush_steps} steps, "
              f"episodes of {args.episode_steps}; written in {time.perf_counter() - start:.0f} s; duckdb {duckdb.__version__}")
        rows = {kind: store.scan(kind).select(pl.len()).collect().item() for kind in ("events", "ledger", "market")}
        print("rows: " + ", ".join(f"{k} {n:,}" for k, n in rows.items()))
        table: dict[str, dict[str, tuple[float, float]]] = {}
        answers = {}
        for state in ("before", "after"):
            if state == "after":
                start = time.perf_counter()
                done = store.compact()
                print(f"compact(): {done.partitions} partitions, {done.files_before:,} -> {done.files_after} files, "
                      f"{time.perf_counter() - start:.1f} s")
            files = store.files()
            mb = sum(p.stat().st_size for p in files) / 2**20
            print(f"{state} compaction: {len(files):,} files, {mb:.1f} MB")
            cases = store_queries(store)
            for name, (polars_fn, duck_fn) in cases.items():  # the answers agree, and across compaction
                got = polars_fn()
                assert_frame_equal(got, duck_fn(), check_dtypes=False)
                assert name not in answers or got.equals(answers[name]), name
                answers[name] = got
            timings = {name: [] for name in cases}
            for _ in range(args.rounds):
                for name, fns in cases.items():
                    timings[name].append(tuple(timed(fn) for fn in fns))
            table[state] = {name: tuple(statistics.median(r[j] for r in rs) for j in range(2)) for name, rs in timings.items()}
        print(f"\n{args.rounds} interleaved rounds, medians (s)")
        print(f"{'query':<20} {'polars before':>14} {'polars after':>13} {'duckdb before':>14} {'duckdb after':>13}")
        for name in table["before"]:
            (pb, db), (pa_, da) = table["before"][name], table["after"][name]
            print(f"{name:<20} {pb:>14.3f} {pa_:>13.3f} {db:>14.3f} {da:>13.3f}")


# -------------------------------------------------------------------- timing
def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lanes", type=int, default=4096)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--only", choices=["all", "memory", "store"], default="all",
                        help="memory: the in-memory queries and the live table; store: the episode store")
    parser.add_argument("--store-steps", type=int, default=100_000)
    parser.add_argument("--store-lanes", type=int, default=4)
    parser.add_argument("--flush-steps", type=int, default=64)
    parser.add_argument("--episode-steps", type=int, default=1_000)
    args = parser.parse_args()
    if args.only == "store":
        return store_benchmark(args)
    print(f"machine: {platform.machine()} cores={os.cpu_count()} load={os.getloadavg()[0]:.1f} python {platform.python_version()} "
          f"polars {pl.__version__} pandas {pd.__version__} numpy {np.__version__} "
          f"(POLARS_MAX_THREADS={pl.thread_pool_size()})")
    start = time.perf_counter()
    events, _, (row_bytes, event_bytes) = synthetic_history(args.events)
    frame = events.to_pandas()
    print(f"events: {events.height:,} rows x {events.width} columns, {events.select(pl.struct(KEY).n_unique()).item():,} orders "
          f"({events.estimated_size() / 2**30:.1f} GiB in Polars); generated in {time.perf_counter() - start:.0f} s")
    wide = 8 * len(h.EV_I64) + 4 * len(h.EV_I32) + len(h.EV_U8)
    print(f"history in memory: {row_bytes} bytes per event row, {event_bytes:.1f} bytes per event with its order and fill rows "
          f"(one wide row: {wide})")
    ex = full_exchange(args.lanes, args.slots)
    n_live = len(live.open_order_slots(ex))
    print(f"live: {args.lanes} lanes x {args.slots} slots, {n_live:,} live orders ({n_live / (args.lanes * args.slots):.0%} of slots)")

    # the answers agree before anything is timed
    pl_open, pd_open = queries.open_orders(events), pandas_open_orders(frame)
    assert pl_open.height == len(pd_open), (pl_open.height, len(pd_open))
    assert int(pl_open["filled_lots"].sum()) == int(pd_open["filled_lots"].sum())
    for fast, windowed in ((queries.open_orders, queries._windowed_open_orders), (queries.latest_order_state, queries._windowed_latest_order_state)):
        assert_frame_equal(fast(events).sort(KEY), windowed(events).sort(KEY))  # the eager fast path == the windows (the lazy path)

    # (fast path: eager frames; windows: what a LazyFrame runs, and the eager answer before issue 7)
    cases = {
        "latest event per order": (lambda: queries.latest_events(events), lambda: queries._windowed_latest_events(events),
                                   lambda: pandas_latest_events(frame)),
        "latest order state": (lambda: queries.latest_order_state(events), lambda: queries._windowed_latest_order_state(events),
                               lambda: pandas_latest_order_state(frame)),
        "open orders": (lambda: queries.open_orders(events), lambda: queries._windowed_open_orders(events), lambda: pandas_open_orders(frame)),
    }
    live_cases = {
        "live open orders (frame)": lambda: live.open_orders(ex),
        "live open orders (4 columns)": lambda: live.open_orders(ex, columns=["lane", "episode", "order_id", "status"]),
        "live open slots (numpy mask)": lambda: live.open_order_slots(ex),
    }
    for fn in live_cases.values():
        fn()
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    live_results: dict[str, list[float]] = {name: [] for name in live_cases}
    for _ in range(args.rounds):
        for name, fns in cases.items():
            results[name].append(tuple(timed(fn) for fn in fns))
        for name, fn in live_cases.items():
            live_results[name].append(statistics.median(timed(fn) for _ in range(20)))
    print(f"\n{args.rounds} interleaved rounds, medians; {events.height / 1e6:.0f}M events")
    print(f"{'query':<30} {'polars s':>10} {'windows s':>10} {'pandas s':>10} {'pandas/polars':>14}")
    for name, rows in results.items():
        p, w, d = (statistics.median(r[j] for r in rows) for j in range(3))
        print(f"{name:<30} {p:>10.3f} {w:>10.3f} {d:>10.3f} {d / p:>14.1f}")
    for name, rows in live_results.items():
        print(f"{name:<30} {statistics.median(rows) * 1e3:>9.2f}ms")
    if args.only == "all":
        store_benchmark(args)


if __name__ == "__main__":
    main()
