"""The eager fast path of the order queries: every order of a frame placed in a flat table.

Hashing three-column keys (lane, episode, order_id) in windows is most of a
windowed order query, so for a ``DataFrame`` :mod:`orderbook.analytics.queries` calls two compiled
passes here instead: they place every row's order in a flat table (order ids are
dense within a lane's episode: a (run, episode) cell's id range times the lanes,
lanes innermost so the orders live at one time sit together; no hashing, no sort),
chain each order's rows and keep its largest ``seq`` (:func:`place_orders`). The
sums then walk only the chains of the orders answered (5% of them for open orders,
:func:`pick`, :func:`order_sums`) and one gather takes their latest rows; for the
latest state of every order the gather of the whole answer and the chains' sums
bound it. Timings against the windows: ``benchmarks/history.py``,
``benchmarks/RESULTS.md`` ("History queries").

What it keeps true: an answer from here equals the windowed expressions of
:mod:`orderbook.analytics.queries`, the reference (the tests hold the two equal on arbitrary
frames of the schema). A frame the table does not fit (other dtypes, nulls, ids or
episodes too sparse for a table at most ~2x the rows, two rows of one order with
its largest ``seq``) gets None from :func:`place_orders` and takes the windows.
It works on physical codes only: the caller gives the dtypes and the status codes
it wants. Known limits: it holds the whole frame's key columns and a table of about
4 bytes per row and per slot in memory while it runs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from orderbook.compile.jit import kernel


class OrderTable(NamedTuple):
    """Where each order of an eager events frame sits in a flat table, and its latest row."""

    head: np.ndarray  # (slots,) int32 (int64 past 2**31 rows) the last row of each slot's order, -1 for a hole
    prev: np.ndarray  # (rows,) the order's row before this one (-1: none): each order's rows as a chain
    latest: np.ndarray  # (slots,) row of each order's latest event (largest seq)
    status: np.ndarray  # (rows,) physical status codes
    columns: dict[str, np.ndarray]  # (rows,) the physical columns the sums read


_NO_RUN = np.zeros(0, dtype=np.int64)


@kernel(inline=True)
def _cell(i, run, episode, episode0, n_episodes):
    r = run[i] if run.shape[0] > 0 else 0
    return r * n_episodes + episode[i] - episode0


@kernel(inline=True)
def _slot(i, run, lane, episode, order_id, episode0, n_episodes, lane0, n_lanes, offset, id_lo):
    # lanes innermost: lanes step together, so the orders live at one time sit close in the table
    g = _cell(i, run, episode, episode0, n_episodes)
    return offset[g] + (order_id[i] - id_lo[g]) * n_lanes + lane[i] - lane0


@kernel
def _bounds(lane, episode, order_id, out):
    """Smallest and largest lane, episode and order id in one pass (local accumulators: it vectorizes)."""
    l0, l1, e0, e1, o0, o1 = out[0, 0], out[0, 1], out[1, 0], out[1, 1], out[2, 0], out[2, 1]
    for i in range(lane.shape[0]):
        l0, l1 = min(l0, np.int64(lane[i])), max(l1, np.int64(lane[i]))
        e0, e1 = min(e0, np.int64(episode[i])), max(e1, np.int64(episode[i]))
        o0, o1 = min(o0, order_id[i]), max(o1, order_id[i])
    out[0, 0], out[0, 1], out[1, 0], out[1, 1], out[2, 0], out[2, 1] = l0, l1, e0, e1, o0, o1


@kernel
def _id_ranges(run, episode, order_id, episode0, n_episodes, id_lo, id_hi):
    for i in range(episode.shape[0]):
        g = _cell(i, run, episode, episode0, n_episodes)
        id_lo[g] = min(id_lo[g], order_id[i])
        id_hi[g] = max(id_hi[g], order_id[i])


@kernel
def _chain_rows(run, lane, episode, order_id, episode0, n_episodes, lane0, n_lanes, offset, id_lo, seq, seq_sorted, head, prev, latest):
    """Chain each order's rows (``head[slot]`` its last row, ``prev[row]`` the one before, -1 ends) and
    find its latest row (largest seq; ``latest`` is ``head`` when rows are in seq order). False if two
    rows of an order share a seq (then the windows decide, as they keep both)."""
    for i in range(lane.shape[0]):
        o = _slot(i, run, lane, episode, order_id, episode0, n_episodes, lane0, n_lanes, offset, id_lo)
        j = head[o]
        prev[i] = j
        head[o] = i
        if seq_sorted:
            if i > 0 and seq[i] == seq[i - 1] and j >= 0 and seq[j] == seq[i]:
                return False
            continue
        j = latest[o]
        if j < 0 or seq[i] > seq[j]:
            latest[o] = i
        elif seq[i] == seq[j]:
            return False
    return True


@kernel
def _pick(head, latest, status, wanted, out_head, out_latest):
    """The orders whose latest status is ``wanted`` (by physical code): their chains' heads and latest rows."""
    m = 0
    for o in range(head.shape[0]):
        if head[o] >= 0 and wanted[status[latest[o]]]:
            out_head[m], out_latest[m] = head[o], latest[o]
            m += 1
    return m


@kernel
def _order_sums(head, prev, time_ns, fill_lots, notional, fee, status, event, reason, terminal, cancel_reject, out):
    """Per order (``head[w]`` the last row of its chain): filled lots, notional, fee, first time and the
    largest reason of the rows that ended it (terminal status, not a CANCEL_REJECT)."""
    for w in range(head.shape[0]):
        i = head[w]
        lots, paid, fees, first, why = 0, 0, 0, time_ns[i], 0
        while i >= 0:
            lots += fill_lots[i]
            paid += notional[i]
            fees += fee[i]
            first = min(first, time_ns[i])
            if terminal[status[i]] and event[i] != cancel_reject:
                why = max(why, reason[i])
            i = prev[i]
        out[0, w], out[1, w], out[2, w], out[3, w], out[4, w] = lots, paid, fees, first, why


def place_orders(events: pl.DataFrame, columns: dict[str, pl.DataType]) -> OrderTable | None:
    """Each order's slot and latest row in an eager events frame, or None when the frame does not fit.

    ``columns``: the columns the passes and the sums read (lane, episode, order_id, status and the
    summed ones) with the dtypes the frame must have; ``seq`` must be an integer column.
    """
    schema = events.schema
    if events.height == 0 or any(schema.get(k) != v for k, v in columns.items()) or not schema.get("seq", pl.Null).is_integer():
        return None
    has_run = "run" in schema
    cols = events.select(*columns, "seq", *(["run"] if has_run else []))
    if any(cols.null_count().row(0)):
        return None
    arr = {k: cols[k].to_physical().to_numpy() for k in (*columns, "seq")}
    run = (cols["run"].rank("dense").cast(pl.Int64) - 1).to_numpy() if has_run else _NO_RUN
    bounds = np.array([[np.iinfo(np.int64).max, np.iinfo(np.int64).min]] * 3)
    _bounds(arr["lane"], arr["episode"], arr["order_id"], bounds)
    (lane0, lane1), (episode0, episode1), (id0, id1) = bounds.tolist()
    n_lanes, n_episodes = lane1 - lane0 + 1, episode1 - episode0 + 1
    n_cells = (int(run.max()) + 1 if has_run else 1) * n_episodes
    if n_cells > events.height + 1024:
        return None
    id_lo, id_hi = np.full(n_cells, id0), np.full(n_cells, id1)
    if float(id1 - id0 + 1) * n_lanes * n_cells > 2 * events.height + 1024:  # one id range for all cells is too sparse
        id_lo, id_hi = np.full(n_cells, np.iinfo(np.int64).max), np.full(n_cells, np.iinfo(np.int64).min)
        _id_ranges(run, arr["episode"], arr["order_id"], episode0, n_episodes, id_lo, id_hi)
    used = id_hi >= id_lo
    if ((id_hi[used].astype(np.float64) - id_lo[used] + 1) * n_lanes).sum() > 2 * events.height + 1024:
        return None  # sparse keys: a flat table would be mostly holes
    span = np.zeros(n_cells, dtype=np.int64)
    span[used] = (id_hi[used] - id_lo[used] + 1) * n_lanes
    offset = np.cumsum(span) - span
    keys = (run, arr["lane"], arr["episode"], arr["order_id"], episode0, n_episodes, lane0, n_lanes, offset, id_lo)
    row = np.int32 if events.height < 2**31 else np.int64  # row numbers: half the memory traffic when they fit
    head = np.full(int(span.sum()), -1, dtype=row)
    prev = np.empty(events.height, dtype=row)
    seq_sorted = bool(cols["seq"].is_sorted())
    latest = head if seq_sorted else np.full(len(head), -1, dtype=row)
    if not _chain_rows(*keys, arr["seq"], seq_sorted, head, prev, latest):
        return None
    return OrderTable(head, prev, latest, arr["status"], arr)


def pick(orders: OrderTable, wanted: np.ndarray) -> tuple[np.ndarray, pl.Series]:
    """The orders whose latest status is ``wanted`` (a lookup over physical status codes): heads of
    their chains, and latest rows as a Series Polars gathers with (int32 rows: as UInt32, no copy)."""
    out_head, out_latest = np.empty_like(orders.head), np.empty_like(orders.latest)
    m = _pick(orders.head, orders.latest, orders.status, wanted, out_head, out_latest)
    latest = out_latest[:m]
    return out_head[:m], pl.Series(latest.view(np.uint32) if latest.dtype == np.int32 else latest)


def order_sums(orders: OrderTable, head: np.ndarray, terminal: np.ndarray, cancel_reject: int) -> np.ndarray:
    """``(5, len(head))`` int64, per order picked: filled lots, filled notional, fee, submit time and the
    physical code of the reason that ended it (``terminal``: a lookup over status codes; rows of the
    event ``cancel_reject`` do not end an order)."""
    sums = np.empty((5, len(head)), dtype=np.int64)  # a row per column: Polars takes each without a copy
    a = orders.columns
    _order_sums(head, orders.prev, a["time_ns"], a["fill_lots"], a["fill_notional_atoms"], a["fee_atoms"], a["status"], a["event"],
                a["reason"], terminal, cancel_reject, sums)
    return sums
