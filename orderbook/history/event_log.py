"""The event log, kept normalised: event rows, a row per order and a row per fill.

A 20-byte event row (time, step, event, status, reason, flags, the row of its
order), a 55-byte row per order (and again after a flush, for an order that lives
on) and a 25-byte row per fill, instead of 98 bytes of one wide row;
``EventLog.columns()`` (and so ``History.events_frame()``) gives the same columns,
values and dtypes as the wide row did (schema unchanged). Measured per event, order
and fill rows included: 41-42 bytes over high-fault fuzz runs (2.7 events per
order), 42.5 over the default config (3.2), 44.5 over ``benchmarks/history.py``'s
synthetic log (4 events per order, 44% fills): ``20 + 54 / events per order + 25 x
fill share``, so an order refused at once costs 74 bytes. The room reserved before
a step (one step's worst case, not rows written) is 99 bytes a row, as the wide
row's 97 was.

Each of the three is a :class:`~orderbook.history.column_log.ColumnLog`: append-only, no row
rewritten, except that an order row's arrival mid goes once from 0 to its value,
which no earlier event row reads (see :class:`EventLog`), so no event column of a
written row ever changes. The kernels here (:func:`append_event`,
:func:`append_event_fields`) append an event with its order's and fill's rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.history.column_log import ColumnLog, next_row

# The event log's columns as frames see them (``EventLog.columns()``, ``History.events_frame()``).
EV_I64 = ("time_ns", "order_id", "price_ticks", "qty_lots", "fill_lots", "fill_notional_atoms", "fee_atoms", "arrival_mid_x2", "decision_mid_x2")
EV_I32 = ("lane", "episode", "step", "instrument", "side")
EV_U8 = ("kind", "event", "status", "reason", "liquidity", "tif")

# How the event log keeps them: an event row, its order's row, and its fill's row.
ROW_I64 = ("time_ns",)
ROW_I32 = ("order_row", "step")  # order_row: the row of the order log, since the last clear
ROW_U8 = ("event", "status", "reason", "flags")
E_TIME = 0
E_ORDER_ROW, E_STEP = range(2)
E_EVENT, E_STATUS, E_REASON, E_FLAGS = range(4)
ARRIVED, HAS_FILL = 1, 2  # flags: the order had reached the venue (arrival mid known); the row has a fill row

ORD_I64 = ("order_id", "price_ticks", "qty_lots", "decision_mid_x2", "arrival_mid_x2")
ORD_I32 = ("lane", "episode", "instrument")
ORD_U8 = ("kind", "side", "tif")  # side as int8 bits (+1 / -1); tif: TimeInForce
O_ID, O_PRICE, O_QTY, O_DECISION_MID, O_ARRIVAL_MID = range(5)
O_LANE, O_EPISODE, O_INSTRUMENT = range(3)
O_KIND, O_SIDE, O_TIF = range(3)

FILL_I64 = ("fill_lots", "fill_notional_atoms", "fee_atoms")
FILL_U8 = ("liquidity",)
F_LOTS, F_NOTIONAL, F_FEE = range(3)
F_LIQUIDITY = 0


class EventArrays(NamedTuple):
    """What the event kernels append to: the event rows, the order log and the fill log."""

    i64: np.ndarray  # (1, capacity) int64 ROW_I64
    i32: np.ndarray  # (2, capacity) int32 ROW_I32
    u8: np.ndarray  # (4, capacity) uint8 ROW_U8
    size: np.ndarray  # (1,) int64 event rows written
    o_i64: np.ndarray  # (5, capacity) int64 ORD_I64
    o_i32: np.ndarray  # (3, capacity) int32 ORD_I32
    o_u8: np.ndarray  # (3, capacity) uint8 ORD_U8
    o_size: np.ndarray  # (1,) int64 order rows written
    o_base: np.ndarray  # (1,) int64 order rows dropped by clears before row 0 (order rows count across clears)
    f_i64: np.ndarray  # (3, capacity) int64 FILL_I64
    f_u8: np.ndarray  # (1, capacity) uint8 FILL_U8
    f_size: np.ndarray  # (1,) int64 fill rows written


class EventLog:
    """The event log, normalised: what is constant for an order is kept once per order.

    Three append-only logs: **event rows** (time, step, event, status, reason, flags
    and the row of the order log), **order rows** (lane, episode, order id,
    instrument, side, kind, time in force, limit price, quantity, decision and arrival mids) and
    **fill rows** (lots, notional, fee, liquidity; only for rows that carry a fill,
    in event order, so the k-th flagged event row owns the k-th fill row).
    :meth:`columns` joins them back into the event columns ``EV_I64/EV_I32/EV_U8``,
    the same values and dtypes as one row per event would hold.

    - An order's row is appended with its first event. Each slot of the order
      table remembers the row (``Orders.history_row``, counted across clears); a
      later event of the slot's order reuses it when its key (lane, episode, order
      id) and constants match, else appends a new row. So :meth:`clear` (a flush)
      drops every order row, and an order that lives on writes its row again with
      its next event: every event row is complete whatever was flushed.
    - The arrival mid is 0 until the ack. An event row records whether the order
      had arrived (``ARRIVED``); the order row's arrival is written once, by the
      first event after the ack (from 0 to the mid; a different mid would append a
      new order row). Rows before the ack read 0 through their flag, so no event
      column of any written row ever changes.
    """

    def __init__(self, capacity: int = 1024):
        self.names = (EV_I64, EV_I32, EV_U8)
        self.rows = ColumnLog(ROW_I64, ROW_I32, ROW_U8, capacity)
        self.orders = ColumnLog(ORD_I64, ORD_I32, ORD_U8, capacity)
        self.fills = ColumnLog(FILL_I64, (), FILL_U8, capacity)
        self._base = np.zeros(1, dtype=np.int64)
        self._arrays = self._gather_arrays()

    def _gather_arrays(self) -> EventArrays:
        r, o, f = self.rows.arrays, self.orders.arrays, self.fills.arrays
        return EventArrays(r.i64, r.i32, r.u8, r.size, o.i64, o.i32, o.u8, o.size, self._base, f.i64, f.u8, f.size)

    @property
    def arrays(self) -> EventArrays:
        """The same object until a :meth:`reserve` grows a log (callers may cache it until then)."""
        return self._arrays

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def capacity(self) -> int:
        return self.rows.capacity

    @property
    def nbytes_per_row(self) -> int:
        """Bytes of one event row; orders and fills add theirs once per order and per fill (:meth:`nbytes`)."""
        return self.rows.nbytes_per_row

    def nbytes(self) -> int:
        """Bytes of the rows written: event rows, order rows and fill rows."""
        return sum(len(log) * log.nbytes_per_row for log in (self.rows, self.orders, self.fills))

    def reserve(self, extra_rows: int) -> None:
        """Room for ``extra_rows`` more events (each may bring an order row and a fill row)."""
        if len(self.orders) + extra_rows > 2**31 - 1:  # event rows point at order rows with int32
            raise ValueError(f"the event log holds at most 2**31 - 1 order rows between clears, a step could make it "
                             f"{len(self.orders) + extra_rows}; flush (clear) the history more often")
        before = (self.rows.arrays, self.orders.arrays, self.fills.arrays)
        for log in (self.rows, self.orders, self.fills):
            log.reserve(extra_rows)
        if any(a is not b for a, b in zip(before, (self.rows.arrays, self.orders.arrays, self.fills.arrays))):
            self._arrays = self._gather_arrays()

    def truncate(self, size: int) -> None:
        """Forget event rows at and after ``size``, and the order and fill rows only they used."""
        if not 0 <= size <= len(self):
            raise ValueError(f"truncate size must be in [0, {len(self)}], got {size}")
        a = self._arrays
        self.fills.truncate(int(np.count_nonzero(a.u8[E_FLAGS, :size] & HAS_FILL)))
        # order rows are appended just before their first event: the ones kept are those the kept events use
        self.orders.truncate(int(a.i32[E_ORDER_ROW, :size].max()) + 1 if size else 0)
        self.rows.truncate(size)

    def clear(self) -> None:
        """Drop every row (after the rows were flushed elsewhere); live orders write their row again."""
        self._base[0] += len(self.orders)
        for log in (self.rows, self.orders, self.fills):
            log.clear()

    def drop_orders(self, keep_orders: np.ndarray, history_row: np.ndarray) -> int:
        """Drop the order rows where ``keep_orders`` is False with every event and fill row of theirs;
        the rest keep their order, at the front of the same arrays. Returns the event rows kept.

        ``history_row`` (``Orders.history_row``, ``(B, K)``) is updated in place: a slot whose row was
        kept points at its new place, a slot whose row was dropped at none (its order, if it lives on,
        writes its row again with its next event, as after :meth:`clear`). Event rows keep their
        values (an order is dropped with all its events: ``keep_orders`` is decided per order row).
        """
        a, n, n_orders = self._arrays, len(self), len(self.orders)
        if keep_orders.shape != (n_orders,) or keep_orders.dtype != np.bool_:
            raise ValueError(f"keep_orders must be a bool array of shape ({n_orders},), got {keep_orders.dtype} {keep_orders.shape}")
        order_of = a.i32[E_ORDER_ROW, :n]
        keep_rows = keep_orders[order_of]
        has_fill = (a.u8[E_FLAGS, :n] & HAS_FILL) != 0
        new_index = np.cumsum(keep_orders, dtype=np.int64) - 1
        a.i32[E_ORDER_ROW, :n] = new_index[order_of]  # dropped rows get garbage here, and go
        self.fills.compact(keep_rows[has_fill])  # the k-th flagged event row owns the k-th fill row
        self.orders.compact(keep_orders)
        kept = self.rows.compact(keep_rows)
        # order rows count across clears and drops: the kept ones are renumbered after every old one
        old_base, new_base = int(self._base[0]), int(self._base[0]) + n_orders
        r = history_row - old_base
        moved = (r >= 0) & (r < n_orders)
        moved[moved] = keep_orders[r[moved]]
        history_row[moved] = new_index[r[moved]] + new_base
        self._base[0] = new_base
        return kept

    def columns(self) -> dict[str, np.ndarray]:
        """The written events as the columns ``EV_I64 + EV_I32 + EV_U8`` (fresh arrays, their dtypes)."""
        n, a = len(self), self._arrays
        order = a.i32[E_ORDER_ROW, :n]
        flags = a.u8[E_FLAGS, :n]
        has_fill = (flags & HAS_FILL) != 0
        fill = np.cumsum(has_fill) - 1
        arrived = (flags & ARRIVED) != 0

        def per_fill(block: np.ndarray, j: int) -> np.ndarray:
            return np.where(has_fill, block[j, :len(self.fills)][np.maximum(fill, 0)] if len(self.fills) else 0, 0).astype(block.dtype)

        cols = {
            "time_ns": a.i64[E_TIME, :n].copy(),
            "order_id": a.o_i64[O_ID].take(order),
            "price_ticks": a.o_i64[O_PRICE].take(order),
            "qty_lots": a.o_i64[O_QTY].take(order),
            "fill_lots": per_fill(a.f_i64, F_LOTS),
            "fill_notional_atoms": per_fill(a.f_i64, F_NOTIONAL),
            "fee_atoms": per_fill(a.f_i64, F_FEE),
            "arrival_mid_x2": np.where(arrived, a.o_i64[O_ARRIVAL_MID].take(order), 0),
            "decision_mid_x2": a.o_i64[O_DECISION_MID].take(order),
            "lane": a.o_i32[O_LANE].take(order),
            "episode": a.o_i32[O_EPISODE].take(order),
            "step": a.i32[E_STEP, :n].copy(),
            "instrument": a.o_i32[O_INSTRUMENT].take(order),
            "side": a.o_u8[O_SIDE].view(np.int8).take(order).astype(np.int32),
            "kind": a.o_u8[O_KIND].take(order),
            "event": a.u8[E_EVENT, :n].copy(),
            "status": a.u8[E_STATUS, :n].copy(),
            "reason": a.u8[E_REASON, :n].copy(),
            "liquidity": per_fill(a.f_u8, F_LIQUIDITY),
            "tif": a.o_u8[O_TIF].take(order),
        }
        return {name: cols[name] for names in self.names for name in names}

    def extend(self, columns: dict[str, np.ndarray]) -> None:
        """Append events given as the columns of :meth:`columns` (missing columns are 0), with the
        kernels' rule for order rows: reuse the order's row while its constants match (an arrival
        mid of 0 matches any, and fills the row's 0 once), else append one. For tests and tools;
        a Python loop over the rows."""
        n = len(next(iter(columns.values()))) if columns else 0
        if n == 0:
            return
        col = {name: np.asarray(columns.get(name, np.zeros(n, dtype=np.int64))) for names in self.names for name in names}
        bad = np.flatnonzero((col["side"] < -128) | (col["side"] > 127))
        if len(bad):
            raise ValueError(f"events: side is kept in 8 bits, expected -128..127 (+1 buy, -1 sell), row {bad[0]} has {col['side'][bad[0]]}")
        const = ("price_ticks", "qty_lots", "decision_mid_x2", "instrument", "side", "kind", "tif")
        self.reserve(n)
        o0 = len(self.orders)
        current: dict[tuple, int] = {}
        rows: list[list[int]] = []  # new order rows: ORD_I64 + ORD_I32 + (kind, side, tif)
        order_row = np.empty(n, dtype=np.int64)
        keys = zip(*(col[k].tolist() for k in ("lane", "episode", "order_id")), zip(*(col[k].tolist() for k in const)), col["arrival_mid_x2"].tolist())
        for i, (lane, episode, oid, values, arrival) in enumerate(keys):
            r = current.get((lane, episode, oid))
            row = rows[r - o0] if r is not None and r >= o0 else None
            if row is None or tuple(row[j] for j in (1, 2, 3, 7, 9, 8, 10)) != values or arrival not in (0, row[4]) and row[4] != 0:
                r = o0 + len(rows)
                price, qty, decision, instrument, side, kind, tif = values
                row = [oid, price, qty, decision, arrival, lane, episode, instrument, kind, side, tif]
                rows.append(row)
                current[(lane, episode, oid)] = r
            elif arrival != 0 and row[4] == 0:
                row[4] = arrival
            order_row[i] = r
        has_fill = (col["fill_lots"] != 0) | (col["fill_notional_atoms"] != 0) | (col["fee_atoms"] != 0) | (col["liquidity"] != 0)
        a = self._arrays
        r0, f0, nf, no = len(self), len(self.fills), int(has_fill.sum()), len(rows)
        a.i64[E_TIME, r0:r0 + n] = col["time_ns"]
        a.i32[E_ORDER_ROW, r0:r0 + n] = order_row
        a.i32[E_STEP, r0:r0 + n] = col["step"]
        for j, name in enumerate(("event", "status", "reason")):
            a.u8[j, r0:r0 + n] = col[name]
        a.u8[E_FLAGS, r0:r0 + n] = np.where(col["arrival_mid_x2"] != 0, ARRIVED, 0) | np.where(has_fill, HAS_FILL, 0)
        table = np.array(rows, dtype=np.int64).T
        a.o_i64[:, o0:o0 + no] = table[:5]
        a.o_i32[:, o0:o0 + no] = table[5:8]
        a.o_u8[O_KIND, o0:o0 + no] = table[8]
        a.o_u8[O_SIDE, o0:o0 + no] = table[9].astype(np.int8).view(np.uint8)
        a.o_u8[O_TIF, o0:o0 + no] = table[10]
        for j, name in enumerate(FILL_I64):
            a.f_i64[j, f0:f0 + nf] = col[name][has_fill]
        a.f_u8[F_LIQUIDITY, f0:f0 + nf] = col["liquidity"][has_fill]
        a.size[0], a.o_size[0], a.f_size[0] = r0 + n, o0 + no, f0 + nf


@kernel(inline=True)
def _next(size):
    n = size[0]
    size[0] = n + 1
    return n


@kernel
def _append_order(log, lane, episode, order_id, instrument, side, kind, tif, price_ticks, qty_lots, decision_mid_x2, arrival_mid_x2):
    """A row of the order log; returns its index (since the last clear)."""
    n = _next(log.o_size)
    log.o_i64[O_ID, n] = order_id
    log.o_i64[O_PRICE, n] = price_ticks
    log.o_i64[O_QTY, n] = qty_lots
    log.o_i64[O_DECISION_MID, n] = decision_mid_x2
    log.o_i64[O_ARRIVAL_MID, n] = arrival_mid_x2
    log.o_i32[O_LANE, n] = lane
    log.o_i32[O_EPISODE, n] = episode
    log.o_i32[O_INSTRUMENT, n] = instrument
    log.o_u8[O_KIND, n] = kind
    log.o_u8[O_SIDE, n] = np.uint8(side & 0xFF)  # int8 bits
    log.o_u8[O_TIF, n] = tif
    return n


@kernel
def _append_row(log, order_row, step, time_ns, event, status, reason, fill_lots, fill_notional, fee, liquidity, arrived):
    n = next_row(log)
    log.i64[E_TIME, n] = time_ns
    log.i32[E_ORDER_ROW, n] = order_row
    log.i32[E_STEP, n] = step
    log.u8[E_EVENT, n] = event
    log.u8[E_STATUS, n] = status
    log.u8[E_REASON, n] = reason
    flags = ARRIVED if arrived else 0
    if fill_lots != 0 or fill_notional != 0 or fee != 0 or liquidity != 0:
        f = _next(log.f_size)
        log.f_i64[F_LOTS, f] = fill_lots
        log.f_i64[F_NOTIONAL, f] = fill_notional
        log.f_i64[F_FEE, f] = fee
        log.f_u8[F_LIQUIDITY, f] = liquidity
        flags |= HAS_FILL
    log.u8[E_FLAGS, n] = flags


@kernel
def append_event_fields(log, lane, episode, step, time_ns, order_id, instrument, side, kind, price_ticks, qty_lots,
                        event, status, reason, fill_lots, fill_notional, fee, liquidity, arrival_mid_x2, decision_mid_x2, tif):
    """One event row from explicit fields (orders refused before they had a slot), with its order's row."""
    r = _append_order(log, lane, episode, order_id, instrument, side, kind, tif, price_ticks, qty_lots, decision_mid_x2, arrival_mid_x2)
    _append_row(log, r, step, time_ns, event, status, reason, fill_lots, fill_notional, fee, liquidity, arrival_mid_x2 != 0)


@kernel
def _order_row(log, lane, episode, orders, k):
    """The order log row of slot ``k``'s order: the one it wrote before if it still holds, else a new one."""
    r = orders.history_row[lane, k] - log.o_base[0]
    arrival = orders.arrival_mid_x2[lane, k]
    if (
        0 <= r < log.o_size[0]
        and log.o_i64[O_ID, r] == orders.order_id[lane, k]
        and log.o_i32[O_LANE, r] == lane
        and log.o_i32[O_EPISODE, r] == episode
        and log.o_i32[O_INSTRUMENT, r] == orders.instrument[lane, k]
        and log.o_i64[O_PRICE, r] == orders.price_ticks[lane, k]
        and log.o_i64[O_QTY, r] == orders.qty_lots[lane, k]
        and log.o_i64[O_DECISION_MID, r] == orders.decision_mid_x2[lane, k]
        and log.o_u8[O_KIND, r] == orders.kind[lane, k]
        and log.o_u8[O_SIDE, r] == np.uint8(orders.side[lane, k] & 0xFF)
        and log.o_u8[O_TIF, r] == orders.tif[lane, k]
        and (log.o_i64[O_ARRIVAL_MID, r] == arrival or log.o_i64[O_ARRIVAL_MID, r] == 0 or arrival == 0)
    ):
        if arrival != 0 and log.o_i64[O_ARRIVAL_MID, r] == 0:
            log.o_i64[O_ARRIVAL_MID, r] = arrival  # written once: 0 until the ack (see EventLog)
        return r
    r = _append_order(log, lane, episode, orders.order_id[lane, k], orders.instrument[lane, k], orders.side[lane, k],
                      orders.kind[lane, k], orders.tif[lane, k], orders.price_ticks[lane, k], orders.qty_lots[lane, k],
                      orders.decision_mid_x2[lane, k], arrival)
    orders.history_row[lane, k] = r + log.o_base[0]
    return r


@kernel
def append_event(log, lane, episode, step, time_ns, orders, k, event, status, reason, fill_lots, fill_notional, fee, liquidity):
    """One event row for slot ``k`` of ``lane``; order fields are read from the table."""
    r = _order_row(log, lane, episode, orders, k)
    arrived = orders.arrival_mid_x2[lane, k] != 0
    _append_row(log, r, step, time_ns, event, status, reason, fill_lots, fill_notional, fee, liquidity, arrived)
