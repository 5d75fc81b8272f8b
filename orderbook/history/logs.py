"""The append-only history of an exchange: event, ledger and market logs, and their frames.

The three logs are :class:`~orderbook.history.column_log.ColumnLog` s (columnar, grown by
doubling, reserved before each step, no row ever rewritten); the event log is kept
normalised, a row per event, per order and per fill
(:class:`~orderbook.history.event_log.EventLog`). This module holds the ledger and market
columns and their append kernels (:func:`append_ledger`, :func:`append_market`),
and :class:`History`, which turns the logs into Polars frames with names, units and
the prices of the config. The names of ``orderbook.history.column_log`` and
``orderbook.history.event_log`` are importable from here too.

Schemas (``HISTORY_SCHEMA_VERSION``, of the frames; the in-memory layout is internal):

- events: lane, episode, step, time_ns, seq, order_id, venue, instrument, side,
  kind, event, status (after), reason, limit price, quantity, fill quantity, fill
  notional and price, fee, liquidity, time in force (``tif``), arrival and decision
  mids, slippage (bps) against both, latency.

Versions: 1, then 2 (the ``tif`` column; events ``TIF_CANCEL`` and reasons
``IOC_REMAINDER``, ``PRICE_PROTECTION``, ``POST_ONLY_WOULD_TAKE``,
``FOK_NOT_FILLABLE`` join the enums; later the reason ``SELF_TRADE``, appended). An episode store of version 1 stays readable
(:data:`READABLE_SCHEMA_VERSIONS`); new episodes are written with version 2 only.
- ledger: lane, episode, step, time_ns, seq, venue, asset, delta_free,
  delta_locked, free_after, locked_after, cause, order_id.
- market: lane, episode, step, time_ns, venue, instrument, open/high/low/close,
  bid, ask, volume (ticks and lots, and as floats in quote and base units).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from orderbook.compile.jit import kernel
from orderbook.history.column_log import ColumnLog, LogArrays, next_row  # noqa: F401 (LogArrays re-exported)
from orderbook.history.event_log import (  # noqa: F401 (re-exported: `from orderbook.history.logs import X` keeps working)
    ARRIVED,
    E_EVENT,
    E_FLAGS,
    E_ORDER_ROW,
    E_REASON,
    E_STATUS,
    E_STEP,
    E_TIME,
    EV_I32,
    EV_I64,
    EV_U8,
    F_FEE,
    F_LIQUIDITY,
    F_LOTS,
    F_NOTIONAL,
    FILL_I64,
    FILL_U8,
    HAS_FILL,
    O_ARRIVAL_MID,
    O_DECISION_MID,
    O_EPISODE,
    O_ID,
    O_INSTRUMENT,
    O_KIND,
    O_LANE,
    O_PRICE,
    O_QTY,
    O_SIDE,
    ORD_I32,
    ORD_I64,
    ORD_U8,
    ROW_I32,
    ROW_I64,
    ROW_U8,
    EventArrays,
    EventLog,
    append_event,
    append_event_fields,
)
from orderbook.spec import codes as c

HISTORY_SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)  # stores of these versions can be read; only HISTORY_SCHEMA_VERSION is written

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


@kernel
def append_ledger(log, lane, episode, step, time_ns, venue, asset, delta_free, delta_locked, free_after, locked_after, cause, order_id):
    n = next_row(log)
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
    n = next_row(log)
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
        self.events = EventLog(capacity)
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

    def drop_episodes(self, first_kept: np.ndarray, history_row: np.ndarray) -> tuple[int, int, int]:
        """Drop every row of lane ``b``'s episodes before ``first_kept[b]`` (``(B,)`` ints), in place;
        the rows kept stay in their order and the logs keep their capacity. Returns the rows kept per
        log. Whole episodes go, so every episode the history holds is complete from its first row (or
        from the last :meth:`clear`). ``history_row``: the order table's ``history_row``, renumbered
        (:meth:`EventLog.drop_orders`)."""
        first = np.asarray(first_kept, dtype=np.int64)
        a = self.events.arrays
        n_orders = len(self.events.orders)
        keep_orders = a.o_i32[O_EPISODE, :n_orders] >= first[a.o_i32[O_LANE, :n_orders]]
        kept = [self.events.drop_orders(keep_orders, history_row)]
        for log, lane, episode in ((self.ledger, G_LANE, G_EPISODE), (self.market, 0, 1)):
            n = len(log)
            i32 = log.arrays.i32
            kept.append(log.compact(i32[episode, :n] >= first[i32[lane, :n]]))
        return tuple(kept)

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
                pl.col("tif").replace_strict([int(m) for m in c.TimeInForce], [m.name for m in c.TimeInForce], return_dtype=enum(c.TimeInForce)),
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
