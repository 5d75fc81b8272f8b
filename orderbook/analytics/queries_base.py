"""What every history query shares: the answers' schemas, the enums of the event columns, the keys and "latest".

:mod:`orderbook.analytics.queries` holds the questions (and the choices behind
them); this module keeps true that every question names its key the same way
(``run`` when the frame has it, ``lane``, ``episode``, then the entity), picks
"latest" the same way (the maximum of the ordering column over the key), and
runs an eager frame through the same lazy plan as a lazy one (:func:`_lazily`).
"""

from __future__ import annotations

import functools
from typing import TypeVar

import polars as pl

from orderbook.engine.lifecycle import LIVE_STATUSES, TERMINAL_STATUSES
from orderbook.spec import codes as c

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

LIVE = [s.name for s in sorted(LIVE_STATUSES)]
TERMINAL = [s.name for s in sorted(TERMINAL_STATUSES)]


def _enum(e) -> pl.Enum:
    return pl.Enum([m.name for m in e])


SIDE = pl.Enum(["BUY", "SELL"])
KIND = _enum(c.OrderKind)
STATUS = _enum(c.Status)
REASON = _enum(c.Reason)
_REASONS = pl.Series(REASON.categories, dtype=REASON)

# One row per order: the same columns (and dtypes) from the history and from the live table.
ORDER_SCHEMA: dict[str, pl.DataType] = {
    "lane": pl.Int32,
    "episode": pl.Int32,
    "order_id": pl.Int64,
    "venue": pl.String,
    "symbol": pl.String,
    "instrument": pl.Int32,
    "side": SIDE,
    "kind": KIND,
    "status": STATUS,
    "reason": REASON,  # why the order ended (NONE while live or when filled)
    "price_ticks": pl.Int64,  # limit price, or the collar of a market order
    "qty_lots": pl.Int64,
    "filled_lots": pl.Int64,  # so far
    "filled_notional_atoms": pl.Int64,  # quote atoms so far
    "fee_atoms": pl.Int64,  # quote atoms paid so far
    "submit_ns": pl.Int64,
    "decision_mid_x2": pl.Int64,
    "arrival_mid_x2": pl.Int64,  # 0 until the order reached the venue
    "price": pl.Float64,
    "quantity": pl.Float64,
    "filled_quantity": pl.Float64,
}
PRICE_SCHEMA: dict[str, pl.DataType] = {
    "lane": pl.Int32,
    "episode": pl.Int32,
    "venue": pl.String,
    "symbol": pl.String,
    "instrument": pl.Int32,
    "step": pl.Int32,
    "time_ns": pl.Int64,
    "bid_ticks": pl.Int64,
    "ask_ticks": pl.Int64,
    "close_ticks": pl.Int64,
    "bid": pl.Float64,
    "ask": pl.Float64,
    "mid": pl.Float64,
    "last": pl.Float64,  # the close of the latest bar
}
BALANCE_SCHEMA: dict[str, pl.DataType] = {
    "lane": pl.Int32,
    "episode": pl.Int32,
    "venue": pl.Int32,
    "asset": pl.Int32,
    "free_atoms": pl.Int64,
    "locked_atoms": pl.Int64,
}
TOTAL_SCHEMA: dict[str, pl.DataType] = {"lane": pl.Int32, "episode": pl.Int32, "venue": pl.Int32, "value": pl.Float64}


def _lazily(query):
    """Run ``query`` on LazyFrames: an eager frame goes in lazy and comes out collected,
    so the optimizer prunes columns and merges filters (gathers only what is kept)."""

    @functools.wraps(query)
    def run(*args, **kwargs):
        frames = [a for a in args if isinstance(a, (pl.DataFrame, pl.LazyFrame))]
        if not frames or not isinstance(frames[0], pl.DataFrame):
            return query(*args, **kwargs)
        lazy = [a.lazy() if isinstance(a, pl.DataFrame) else a for a in args]
        out = query(*lazy, **kwargs)
        if isinstance(out, dict):
            return dict(zip(out, pl.collect_all(list(out.values()))))
        return out.collect()

    return run


def names(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    return frame.collect_schema().names()


def key_columns(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """``["run", "lane", "episode"]``, without ``run`` when the frame has none."""
    return (["run"] if "run" in names(frame) else []) + ["lane", "episode"]


def _latest(order_by: str, key: list[str]) -> pl.Expr:
    return pl.col(order_by) == pl.col(order_by).max().over(key)


def _for_lane(frame: Frame, lane: int | None) -> Frame:
    return frame if lane is None else frame.filter(pl.col("lane") == lane)
