"""The order system's questions answered from the live state of an Exchange.

The same frames (columns and dtypes) as :mod:`orderbook.analytics.queries` asked of the
history, for each lane's current episode, computed with numpy over the state
arrays (``ex.orders``: (B, K), ``ex.accounts``: (B, V, A), ``ex.bars``: (B, I)),
so an agent or a risk check can ask without building the history frames, and
tests can assert ``queries.X(history) == live.X(exchange)``.

Limits: the live table only knows orders still in a slot (a finished order
stays until its slot is reused; orders refused before sending never had one),
so :func:`latest_order_state` answers for those, and ``queries`` for all. Row
order is lane then slot (the queries' order is the log's): sort to compare.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import polars as pl

from orderbook.analytics import queries as q
from orderbook.engine import state as st
from orderbook.engine.lifecycle import LIVE_TABLE
from orderbook.spec import codes as c


@cache
def _enum_values(dtype: pl.Enum) -> pl.Series:
    return pl.Series(dtype.categories, dtype=dtype)


def _decode(codes: np.ndarray, dtype: pl.Enum) -> pl.Series:
    """Enum values of small integer codes (the category index), gathered with a uint8 Series (faster than a
    uint32 numpy array: ``benchmarks/RESULTS.md``, "History queries")."""
    return _enum_values(dtype).gather(pl.Series(codes.astype(np.uint8, copy=False)))


@lru_cache(maxsize=64)
def _instrument_names(instruments: tuple) -> dict[str, pl.Series]:
    return {
        "venue": pl.Series([i.venue for i in instruments], dtype=pl.String),
        "symbol": pl.Series([i.symbol for i in instruments], dtype=pl.String),
    }


def _instrument_lookup(ex) -> dict[str, pl.Series]:
    return _instrument_names(ex.config.instruments)


def _orders_frame(ex, flat: np.ndarray, columns: list[str] | None = None) -> pl.DataFrame:
    """Rows of the order table at flat (lane * K + slot) indices, in ``ORDER_SCHEMA``
    (or its ``columns``: each column costs a gather, so fewer columns answer sooner)."""
    o, cc = ex.orders, ex.compiled
    names = list(q.ORDER_SCHEMA) if columns is None else list(columns)
    unknown = [n for n in names if n not in q.ORDER_SCHEMA]
    if unknown:
        raise ValueError(f"columns must be among {list(q.ORDER_SCHEMA)}, got unknown {unknown}")
    lane = flat // o.status.shape[1]
    memo: dict[str, np.ndarray] = {}

    def take(field: str) -> np.ndarray:
        if field not in memo:
            memo[field] = getattr(o, field).reshape(-1)[flat]
        return memo[field]

    inst = lambda: take("instrument")  # noqa: E731
    lookup = _instrument_lookup(ex)
    make = {
        "lane": lambda: lane.astype(np.int32),
        "episode": lambda: ex.lanes.episode[lane].astype(np.int32),
        "venue": lambda: lookup["venue"].gather(pl.Series(inst())),
        "symbol": lambda: lookup["symbol"].gather(pl.Series(inst())),
        "instrument": lambda: inst().astype(np.int32),
        "side": lambda: _decode(take("side") < 0, q.SIDE),  # BUY = 1 -> 0, SELL = -1 -> 1
        "kind": lambda: _decode(take("kind"), q.KIND),
        "status": lambda: _decode(take("status"), q.STATUS),
        "reason": lambda: _decode(take("reason"), q.REASON),
        "price": lambda: take("price_ticks") * cc.tick_size[inst()],
        "quantity": lambda: take("qty_lots") * cc.lot_size[inst()],
        "filled_quantity": lambda: take("filled_lots") * cc.lot_size[inst()],
    }
    data = {n: make[n]() if n in make else take(n) for n in names}
    return pl.DataFrame(data, schema={n: q.ORDER_SCHEMA[n] for n in names})


def open_order_slots(ex) -> np.ndarray:
    """Flat indices (lane * K + slot) of live orders: the numpy core of :func:`open_orders`."""
    s = ex.orders.status.reshape(-1)
    return np.flatnonzero(LIVE_TABLE[s])


def open_orders(ex, columns: list[str] | None = None) -> pl.DataFrame:
    """Live orders (PENDING, OPEN, PARTIAL, PENDING_CANCEL) of every lane, ``ORDER_SCHEMA``
    (``columns``: a subset of it, faster when few are needed)."""
    return _orders_frame(ex, open_order_slots(ex), columns)


def latest_order_state(ex, columns: list[str] | None = None) -> pl.DataFrame:
    """Every order still in the table (live or finished), ``ORDER_SCHEMA``."""
    return _orders_frame(ex, np.flatnonzero(ex.orders.status.reshape(-1) != c.EMPTY), columns)


def _lanes(ex, lane: int | None) -> np.ndarray:
    return np.arange(ex.n_lanes) if lane is None else np.array([lane])


def latest_prices(ex, lane: int | None = None) -> pl.DataFrame:
    """Bid, ask, mid and last (close) per instrument of the current bar, ``PRICE_SCHEMA``."""
    bars, cc, lookup = ex.bars, ex.compiled, _instrument_lookup(ex)
    lanes = _lanes(ex, lane)
    n_i = bars.bid_ticks.shape[1]
    b = np.repeat(lanes, n_i)
    i = np.tile(np.arange(n_i), len(lanes))
    bid, ask, close = bars.bid_ticks[b, i], bars.ask_ticks[b, i], bars.close_ticks[b, i]
    tick = cc.tick_size[i]
    data = {
        "lane": b.astype(np.int32),
        "episode": ex.lanes.episode[b].astype(np.int32),
        "venue": lookup["venue"].gather(i),
        "symbol": lookup["symbol"].gather(i),
        "instrument": i.astype(np.int32),
        "step": ex.lanes.step[b].astype(np.int32),
        "time_ns": ex.lanes.time_ns[b],
        "bid_ticks": bid,
        "ask_ticks": ask,
        "close_ticks": close,
        "bid": bid * tick,
        "ask": ask * tick,
        "mid": (bid + ask) * tick / 2.0,
        "last": close * tick,
    }
    return pl.DataFrame(data, schema=q.PRICE_SCHEMA)


def _names_enum(items) -> pl.Enum:
    return pl.Enum([x.name for x in items])


def latest_balances(ex, lane: int | None = None) -> pl.DataFrame:
    """Free and locked atoms per venue and asset, nonzero ones (as ``queries.latest_balances``)."""
    acct, cfg = ex.accounts, ex.config
    lanes = _lanes(ex, lane)
    free, locked = acct.free_atoms[lanes], acct.locked_atoms[lanes]
    nz = np.nonzero((free != 0) | (locked != 0))
    b = lanes[nz[0]]
    v, a = nz[1], nz[2]
    data = {
        "lane": b.astype(np.int32),
        "episode": ex.lanes.episode[b].astype(np.int32),
        "venue": v.astype(np.int32),
        "asset": a.astype(np.int32),
        "free_atoms": free[nz],
        "locked_atoms": locked[nz],
    }
    frame = pl.DataFrame(data, schema=q.BALANCE_SCHEMA)
    venues, assets = _names_enum(cfg.venues), _names_enum(cfg.assets)
    return frame.with_columns(
        venue_name=_enum_values(venues).gather(v.astype(np.uint32)),
        asset_name=_enum_values(assets).gather(a.astype(np.uint32)),
    )


def locked_balances(ex, venue: str | int, lane: int | None = None) -> pl.DataFrame:
    """Balances with locked atoms on ``venue`` (name or index)."""
    v = ex.config.venue_index(venue) if isinstance(venue, str) else venue
    frame = latest_balances(ex, lane)
    return frame.filter((pl.col("venue") == v) & (pl.col("locked_atoms") != 0))


def total_by_venue(ex, numeraire: str | None = None, lane: int | None = None) -> pl.DataFrame:
    """Free plus locked per venue valued at the current mids, as the step kernel values it.

    Summed over venues this is ``Exchange.portfolio_value()`` (to rounding).
    """
    plan = q.valuation_frame(ex.config, numeraire)
    n_v, n_a = ex.accounts.free_atoms.shape[1:]
    inst = np.stack([plan["inst0"].to_numpy(), plan["inst1"].to_numpy()], -1).reshape(n_v, n_a, 2)
    power = np.stack([plan["pow0"].to_numpy(), plan["pow1"].to_numpy()], -1).reshape(n_v, n_a, 2)
    per_unit = plan["atoms_per_unit"].to_numpy().reshape(n_v, n_a)
    lanes = _lanes(ex, lane)
    bars, tick = ex.bars, ex.compiled.tick_size
    mid = (bars.bid_ticks[lanes] + bars.ask_ticks[lanes]) * tick / 2.0  # (B', I)
    unit = np.ones((len(lanes), n_v, n_a))
    for t in range(2):  # the kernel's order: value *= mid or value /= mid
        i = np.maximum(inst[:, :, t], 0)
        m = mid[:, i]
        unit = np.where(power[:, :, t] > 0, unit * m, np.where(power[:, :, t] < 0, unit / m, unit))
    atoms = ex.accounts.free_atoms[lanes] + ex.accounts.locked_atoms[lanes]
    held = atoms != 0
    value = np.where(held, atoms / per_unit * unit, 0.0).sum(axis=2)
    b, v = np.nonzero(held.any(axis=2))
    frame = pl.DataFrame(
        {
            "lane": lanes[b].astype(np.int32),
            "episode": ex.lanes.episode[lanes[b]].astype(np.int32),
            "venue": v.astype(np.int32),
            "value": value[b, v],
        },
        schema=q.TOTAL_SCHEMA,
    )
    return frame.with_columns(venue_name=_enum_values(_names_enum(ex.config.venues)).gather(v.astype(np.uint32)))


def execution_summary(ex) -> pl.DataFrame:
    """Per lane, the current episode's online statistics under the names of
    ``queries.execution_quality(events, by=["lane", "episode"])["summary"]``
    (counts and means only: the online state keeps no quantiles)."""
    s, n = ex.stats, ex.n_lanes
    cnt = s.counters
    w = s.welford
    mean = lambda j: np.where(w[:, j, 0] > 0, w[:, j, 1], np.nan)  # noqa: E731
    return pl.DataFrame(
        {
            "lane": np.arange(n, dtype=np.int32),
            "episode": ex.lanes.episode.astype(np.int32),
            "orders": cnt[:, st.CNT_ORDERS],
            "fills": cnt[:, st.CNT_FILLS],
            "filled_orders": cnt[:, st.CNT_FILLED_ORDERS],
            "expired": cnt[:, st.CNT_EXPIRED],
            "rejected": s.rejects_by_reason.sum(axis=1),
            "cancels_lost_race": cnt[:, st.CNT_CANCEL_LOST_RACE],
            "filled_lots": cnt[:, st.CNT_FILLED_LOTS],
            "ordered_lots": cnt[:, st.CNT_ORDERED_LOTS],
            "slippage_arrival_bps_mean": mean(st.STAT_SLIPPAGE_ARRIVAL_BPS),
            "slippage_decision_bps_mean": mean(st.STAT_SLIPPAGE_DECISION_BPS),
            "time_to_ack_ms_mean": mean(st.STAT_ACK_LATENCY_MS),
            "time_to_fill_ms_mean": mean(st.STAT_TIME_TO_FILL_MS),
        }
    )
