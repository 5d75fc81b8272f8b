"""The append-only history: event, ledger and market logs, columnar, grown by doubling.

Each log keeps its columns grouped by dtype in 2-D arrays (``(n_columns, capacity)``,
one contiguous row per column), so kernels append with a cursor and ``to_polars``
hands Polars contiguous column slices. Rows are never rewritten: a log's prefix is
the same after any later step (the property tests check it). Before each step the
caller reserves room for the most rows a step can write (:meth:`ColumnLog.reserve`),
so kernels never run out of space and never allocate.

Schemas (``HISTORY_SCHEMA_VERSION``):

- events: lane, episode, step, time_ns, seq, order_id, venue, instrument, side,
  kind, event, status (after), reason, limit price, quantity, fill quantity, fill
  notional and price, fee, liquidity, arrival and decision mids, slippage (bps)
  against both, latency.
- ledger: lane, episode, step, time_ns, seq, venue, asset, delta_free,
  delta_locked, free_after, locked_after, cause, order_id.
- market: lane, episode, step, time_ns, venue, instrument, open/high/low/close,
  bid, ask, volume (ticks and lots, and as floats in quote and base units).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from orderbook import codes as c
from orderbook.jit import kernel

HISTORY_SCHEMA_VERSION = 1

# Event log columns.
EV_I64 = ("time_ns", "order_id", "price_ticks", "qty_lots", "fill_lots", "fill_notional_atoms", "fee_atoms", "arrival_mid_x2", "decision_mid_x2")
EV_I32 = ("lane", "episode", "step", "instrument", "side")
EV_U8 = ("kind", "event", "status", "reason", "liquidity")
E_TIME, E_ORDER, E_PRICE, E_QTY, E_FILL_LOTS, E_FILL_NOTIONAL, E_FEE, E_ARRIVAL_MID, E_DECISION_MID = range(9)
E_LANE, E_EPISODE, E_STEP, E_INSTRUMENT, E_SIDE = range(5)
E_KIND, E_EVENT, E_STATUS, E_REASON, E_LIQUIDITY = range(5)

# Ledger columns.
LG_I64 = ("time_ns", "delta_free", "delta_locked", "free_after", "locked_after", "order_id")
LG_I32 = ("lane", "episode", "step", "venue", "asset")
LG_U8 = ("cause",)
G_TIME, G_DFREE, G_DLOCKED, G_FREE, G_LOCKED, G_ORDER = range(6)
G_LANE, G_EPISODE, G_STEP, G_VENUE, G_ASSET = range(5)
G_CAUSE = 0

# Market log columns.
MK_I64 = ("time_ns", "open_ticks", "high_ticks", "low_ticks", "close_ticks", "bid_ticks", "ask_ticks", "volume_lots")
MK_I32 = ("lane", "episode", "step", "instrument")
MK_U8: tuple[str, ...] = ()


class LogArrays(NamedTuple):
    """The arrays a kernel appends to: one 2-D block per dtype and the row count."""

    i64: np.ndarray  # (n_i64_columns, capacity) int64
    i32: np.ndarray  # (n_i32_columns, capacity) int32
    u8: np.ndarray  # (n_u8_columns, capacity) uint8
    size: np.ndarray  # (1,) int64 rows written


class ColumnLog:
    """An append-only columnar log with doubling growth."""

    def __init__(self, i64: tuple[str, ...], i32: tuple[str, ...], u8: tuple[str, ...], capacity: int = 1024):
        self.names = (i64, i32, u8)
        self._arrays = self._allocate(max(capacity, 16))

    def _allocate(self, capacity: int) -> LogArrays:
        i64, i32, u8 = self.names
        return LogArrays(
            np.zeros((len(i64), capacity), dtype=np.int64),
            np.zeros((len(i32), capacity), dtype=np.int32),
            np.zeros((max(len(u8), 1), capacity), dtype=np.uint8),
            np.zeros(1, dtype=np.int64),
        )

    @property
    def arrays(self) -> LogArrays:
        return self._arrays

    def __len__(self) -> int:
        return int(self._arrays.size[0])

    @property
    def capacity(self) -> int:
        return self._arrays.i64.shape[1]

    @property
    def nbytes_per_row(self) -> int:
        i64, i32, u8 = self.names
        return 8 * len(i64) + 4 * len(i32) + len(u8)

    def reserve(self, extra_rows: int) -> None:
        """Make room for ``extra_rows`` more rows (doubling, copying the prefix once)."""
        need = len(self) + extra_rows
        if need <= self.capacity:
            return
        cap = self.capacity
        while cap < need:
            cap *= 2
        new = self._allocate(cap)
        n = len(self)
        for old_block, new_block in zip(self._arrays[:3], new[:3]):
            new_block[:, :n] = old_block[:, :n]
        new.size[0] = n
        self._arrays = new

    def truncate(self, size: int) -> None:
        """Forget rows at and after ``size`` (only to undo a step that raised)."""
        if not 0 <= size <= len(self):
            raise ValueError(f"truncate size must be in [0, {len(self)}], got {size}")
        self._arrays.size[0] = size

    def clear(self) -> None:
        """Drop every row (after the rows were flushed elsewhere)."""
        self._arrays.size[0] = 0

    def columns(self) -> dict[str, np.ndarray]:
        """Copies of the written rows of every column."""
        n = len(self)
        out: dict[str, np.ndarray] = {}
        for names, block in zip(self.names, self._arrays[:3]):
            for j, name in enumerate(names):
                out[name] = block[j, :n].copy()
        return out


@kernel(inline=True)
def _next_row(log):
    n = log.size[0]
    log.size[0] = n + 1
    return n


@kernel
def append_event_fields(log, lane, episode, step, time_ns, order_id, instrument, side, kind, price_ticks, qty_lots,
                        event, status, reason, fill_lots, fill_notional, fee, liquidity, arrival_mid_x2, decision_mid_x2):
    """One event row from explicit fields (orders refused before they had a slot)."""
    n = _next_row(log)
    log.i64[E_TIME, n] = time_ns
    log.i64[E_ORDER, n] = order_id
    log.i64[E_PRICE, n] = price_ticks
    log.i64[E_QTY, n] = qty_lots
    log.i64[E_FILL_LOTS, n] = fill_lots
    log.i64[E_FILL_NOTIONAL, n] = fill_notional
    log.i64[E_FEE, n] = fee
    log.i64[E_ARRIVAL_MID, n] = arrival_mid_x2
    log.i64[E_DECISION_MID, n] = decision_mid_x2
    log.i32[E_LANE, n] = lane
    log.i32[E_EPISODE, n] = episode
    log.i32[E_STEP, n] = step
    log.i32[E_INSTRUMENT, n] = instrument
    log.i32[E_SIDE, n] = side
    log.u8[E_KIND, n] = kind
    log.u8[E_EVENT, n] = event
    log.u8[E_STATUS, n] = status
    log.u8[E_REASON, n] = reason
    log.u8[E_LIQUIDITY, n] = liquidity


@kernel
def append_event(log, lane, episode, step, time_ns, orders, k, event, status, reason, fill_lots, fill_notional, fee, liquidity):
    """One event row for slot ``k`` of ``lane``; order fields are read from the table."""
    append_event_fields(
        log, lane, episode, step, time_ns, orders.order_id[lane, k], orders.instrument[lane, k], orders.side[lane, k],
        orders.kind[lane, k], orders.price_ticks[lane, k], orders.qty_lots[lane, k], event, status, reason,
        fill_lots, fill_notional, fee, liquidity, orders.arrival_mid_x2[lane, k], orders.decision_mid_x2[lane, k],
    )


@kernel
def append_ledger(log, lane, episode, step, time_ns, venue, asset, delta_free, delta_locked, free_after, locked_after, cause, order_id):
    n = _next_row(log)
    log.i64[G_TIME, n] = time_ns
    log.i64[G_DFREE, n] = delta_free
    log.i64[G_DLOCKED, n] = delta_locked
    log.i64[G_FREE, n] = free_after
    log.i64[G_LOCKED, n] = locked_after
    log.i64[G_ORDER, n] = order_id
    log.i32[G_LANE, n] = lane
    log.i32[G_EPISODE, n] = episode
    log.i32[G_STEP, n] = step
    log.i32[G_VENUE, n] = venue
    log.i32[G_ASSET, n] = asset
    log.u8[G_CAUSE, n] = cause


@kernel
def append_market(log, lane, episode, step, time_ns, bars, i):
    n = _next_row(log)
    log.i64[0, n] = time_ns
    log.i64[1, n] = bars.open_ticks[lane, i]
    log.i64[2, n] = bars.high_ticks[lane, i]
    log.i64[3, n] = bars.low_ticks[lane, i]
    log.i64[4, n] = bars.close_ticks[lane, i]
    log.i64[5, n] = bars.bid_ticks[lane, i]
    log.i64[6, n] = bars.ask_ticks[lane, i]
    log.i64[7, n] = bars.volume_lots[lane, i]
    log.i32[0, n] = lane
    log.i32[1, n] = episode
    log.i32[2, n] = step
    log.i32[3, n] = i


class History:
    """The three logs of an exchange, and their Polars frames."""

    def __init__(self, config, compiled, capacity: int = 4096):
        self.config = config
        self.compiled = compiled
        self.events = ColumnLog(EV_I64, EV_I32, EV_U8, capacity)
        self.ledger = ColumnLog(LG_I64, LG_I32, LG_U8, capacity)
        self.market = ColumnLog(MK_I64, MK_I32, MK_U8, capacity)

    def sizes(self) -> tuple[int, int, int]:
        return len(self.events), len(self.ledger), len(self.market)

    def truncate(self, sizes: tuple[int, int, int]) -> None:
        for log, n in zip((self.events, self.ledger, self.market), sizes):
            log.truncate(n)

    def clear(self) -> None:
        for log in (self.events, self.ledger, self.market):
            log.clear()

    def _lookups(self) -> dict[str, pl.DataFrame]:
        cfg, cc = self.config, self.compiled
        instruments = pl.DataFrame(
            {
                "instrument": np.arange(len(cfg.instruments), dtype=np.int32),
                "venue": [i.venue for i in cfg.instruments],
                "symbol": [i.symbol for i in cfg.instruments],
                "tick_size": cc.tick_size,
                "lot_size": cc.lot_size,
                "quote_atoms_per_tick_lot": cc.quote_atoms_per_tick_lot,
                "quote_atoms_per_unit": cc.atoms_per_unit[cc.inst_quote],
            }
        )
        return {"instruments": instruments}

    def events_frame(self) -> pl.DataFrame:
        """The event log with names, prices in quote units, slippage and latency."""
        cols = self.events.columns()
        frame = pl.DataFrame(cols).with_row_index("seq")
        inst = self._lookups()["instruments"]
        enum = lambda e: pl.Enum([m.name for m in e])  # noqa: E731
        kinds = [m.name for m in c.OrderKind]
        half_ticks = pl.col("tick_size") / 2.0
        fill_price = pl.col("fill_notional_atoms") / (pl.col("fill_lots") * pl.col("quote_atoms_per_tick_lot")) * pl.col("tick_size")
        arrival = pl.col("arrival_mid_x2") * half_ticks
        decision = pl.col("decision_mid_x2") * half_ticks
        side = pl.col("side").cast(pl.Float64)
        return (
            frame.join(inst, on="instrument", how="left")
            .with_columns(
                pl.col("kind").replace_strict(list(range(len(kinds))), kinds, return_dtype=pl.Enum(kinds)),
                pl.col("event").replace_strict([int(m) for m in c.Event], [m.name for m in c.Event], return_dtype=enum(c.Event)),
                pl.col("status").replace_strict([int(m) for m in c.Status], [m.name for m in c.Status], return_dtype=enum(c.Status)),
                pl.col("reason").replace_strict([int(m) for m in c.Reason], [m.name for m in c.Reason], return_dtype=enum(c.Reason)),
                pl.col("liquidity").replace_strict([int(m) for m in c.Liquidity], [m.name for m in c.Liquidity], return_dtype=enum(c.Liquidity)),
                (pl.col("price_ticks") * pl.col("tick_size")).alias("price"),
                (pl.col("qty_lots") * pl.col("lot_size")).alias("quantity"),
                (pl.col("fill_lots") * pl.col("lot_size")).alias("fill_quantity"),
                pl.when(pl.col("fill_lots") > 0).then(fill_price).alias("fill_price"),
                (pl.col("fee_atoms") / pl.col("quote_atoms_per_unit")).alias("fee"),
                pl.when(pl.col("arrival_mid_x2") > 0).then(arrival).alias("arrival_mid"),
                pl.when(pl.col("decision_mid_x2") > 0).then(decision).alias("decision_mid"),
                pl.when((pl.col("fill_lots") > 0) & (pl.col("arrival_mid_x2") > 0))
                .then(side * (fill_price - arrival) / arrival * 1e4)
                .alias("slippage_arrival_bps"),
                pl.when((pl.col("fill_lots") > 0) & (pl.col("decision_mid_x2") > 0))
                .then(side * (fill_price - decision) / decision * 1e4)
                .alias("slippage_decision_bps"),
            )
            .with_columns(pl.col("side").replace_strict([1, -1], ["BUY", "SELL"], return_dtype=pl.Enum(["BUY", "SELL"])))
            .drop("quote_atoms_per_tick_lot", "quote_atoms_per_unit")
        )

    def ledger_frame(self) -> pl.DataFrame:
        cfg = self.config
        frame = pl.DataFrame(self.ledger.columns()).with_row_index("seq")
        venues = [v.name for v in cfg.venues]
        assets = [a.name for a in cfg.assets]
        return frame.with_columns(
            pl.col("venue").replace_strict(list(range(len(venues))), venues, return_dtype=pl.Enum(venues)).alias("venue_name"),
            pl.col("asset").replace_strict(list(range(len(assets))), assets, return_dtype=pl.Enum(assets)).alias("asset_name"),
            pl.col("cause").replace_strict([int(m) for m in c.LedgerCause], [m.name for m in c.LedgerCause], return_dtype=pl.Enum([m.name for m in c.LedgerCause])),
        )

    def market_frame(self) -> pl.DataFrame:
        frame = pl.DataFrame(self.market.columns())
        inst = self._lookups()["instruments"]
        tick = pl.col("tick_size")
        return frame.join(inst, on="instrument", how="left").with_columns(
            (pl.col("open_ticks") * tick).alias("open"),
            (pl.col("high_ticks") * tick).alias("high"),
            (pl.col("low_ticks") * tick).alias("low"),
            (pl.col("close_ticks") * tick).alias("close"),
            (pl.col("bid_ticks") * tick).alias("bid"),
            (pl.col("ask_ticks") * tick).alias("ask"),
            ((pl.col("bid_ticks") + pl.col("ask_ticks")) * tick / 2.0).alias("mid"),
            (pl.col("volume_lots") * pl.col("lot_size")).alias("volume"),
        ).drop("quote_atoms_per_tick_lot", "quote_atoms_per_unit")

    def to_polars(self) -> dict[str, pl.DataFrame]:
        """``{"events": ..., "ledger": ..., "market": ...}`` as Polars frames."""
        return {"events": self.events_frame(), "ledger": self.ledger_frame(), "market": self.market_frame()}
