"""The order system's questions as Polars queries over the history frames.

Every function takes the events, ledger or market frame of a
:class:`~orderbook.history.logs.History` (``History.to_polars()``), or a lazy scan of
many episodes from :class:`~orderbook.analytics.store.EpisodeStore` (which adds a ``run``
column), and returns the same kind: a ``DataFrame`` for a ``DataFrame``, a
``LazyFrame`` for a ``LazyFrame``. Nothing loops over rows in Python.

"Latest row per key" is the common shape. Keys always start with ``run`` (when
the frame has it), ``lane`` and ``episode``, then the entity: ``order_id`` for
orders, ``(venue, asset)`` for balances, ``instrument`` (one venue's pair) for
prices. The latest row is the one whose ordering column is the key's maximum::

    frame.filter(pl.col("seq") == pl.col("seq").max().over(key))

chosen over ``sort + group_by().last()`` because it needs no sort (the order
comes from ``seq``, so a shuffled frame or a scan of many files gives the same
answer), it gathers whole rows (``group_by().agg(pl.all().last())`` aggregates
every column: 10-20x slower on the 33-column event frame), and window
expressions over the same key in one ``with_columns`` share their groups. Events
and ledger rows are ordered by ``seq`` (the row's position in its log; the store
keeps it increasing across a run's writes); market rows by ``step``, unique per
(lane, episode, instrument).

The order queries (:func:`open_orders`, :func:`latest_order_state`,
:func:`latest_events`) have an eager fast path: for a ``DataFrame`` that fits,
compiled passes over a flat table of orders (:mod:`orderbook.analytics.queries_fast`, which has
the measurements) instead of windows over the key. A ``LazyFrame``, or a
frame the table does not fit, takes the windowed expressions here, which are the
reference: the tests hold the two equal on arbitrary frames of the schema.

Invariants the answers rely on (kept by the core, asserted by its audit):
- an order is live if and only if its latest event's status is PENDING, OPEN,
  PARTIAL or PENDING_CANCEL: terminal statuses absorb (only CANCEL_REJECT rows
  that keep the status may follow them);
- a ledger row carries the balance after it (``free_after``/``locked_after``).

Known limits: an episode cut short by ``reset`` leaves its live orders live in
the history (the reset writes no event), so ``open_orders`` over past episodes
answers "open when the episode ended". Row order of an answer is not part of it:
sort by the key to compare. The fast path's memory while it runs: see
:mod:`orderbook.analytics.queries_fast`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TypeVar

import numpy as np
import polars as pl

from orderbook.analytics import queries_fast as fast
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


@_lazily
def latest_episode(frame: Frame) -> Frame:
    """Rows of each lane's latest episode (per run): the episode the live state holds."""
    by = ["run", "lane"] if "run" in names(frame) else ["lane"]
    return frame.filter(pl.col("episode") == pl.col("episode").max().over(by))


# ------------------------------------------------------------------- orders
def latest_events(events: Frame) -> Frame:
    """The latest event row of every order, all event columns."""
    if isinstance(events, pl.DataFrame) and (placed := _place_orders(events)) is not None:
        return events[_picked(placed, STATUS.categories.to_list())[1]]
    return _windowed_latest_events(events)


def latest_order_state(events: Frame) -> Frame:
    """One row per order: its latest status, what it filled and paid so far (``ORDER_SCHEMA``).

    ``reason`` is why the order ended: the reason of the event that made it
    terminal (a later CANCEL_REJECT does not change it); NONE while live or filled.
    """
    if isinstance(events, pl.DataFrame) and (placed := _place_orders(events)) is not None:
        return _order_rows(events, placed, STATUS.categories.to_list())
    return _windowed_latest_order_state(events)


def open_orders(events: Frame) -> Frame:
    """Orders whose LATEST event leaves them live (PENDING, OPEN, PARTIAL, PENDING_CANCEL).

    An order that was OPEN and then FILLED is not open; its OPEN row is history,
    never an answer.
    """
    if isinstance(events, pl.DataFrame) and (placed := _place_orders(events)) is not None:
        return _order_rows(events, placed, LIVE)
    return _windowed_open_orders(events)


@_lazily
def _windowed_latest_events(events: Frame) -> Frame:
    return events.filter(_latest("seq", key_columns(events) + ["order_id"]))


@_lazily
def _windowed_latest_order_state(events: Frame) -> Frame:
    """The reference (and the lazy path) of :func:`latest_order_state`: windows over the key."""
    keys = key_columns(events)
    key = keys + ["order_id"]
    ended = pl.col("status").is_in(TERMINAL) & (pl.col("event") != "CANCEL_REJECT")
    return (
        events.with_columns(
            pl.col("fill_lots").sum().over(key).alias("filled_lots"),
            pl.col("fill_notional_atoms").sum().over(key).alias("filled_notional_atoms"),
            pl.col("fee_atoms").sum().over(key),
            pl.col("time_ns").min().over(key).alias("submit_ns"),
            # the ending reason as an integer max over the order (NONE = 0 elsewhere), decoded
            # after the filter: 20x faster than pl.col("reason").filter(ended).first().over(key)
            pl.when(ended).then(pl.col("reason").to_physical()).otherwise(0).max().over(key).alias("_reason"),
            _latest("seq", key).alias("_latest"),
        )
        .filter(pl.col("_latest"))
        .with_columns(
            pl.lit(_REASONS).gather(pl.col("_reason")).alias("reason"),
            (pl.col("filled_lots") * pl.col("lot_size")).alias("filled_quantity"),
        )
        .select(*keys[:-2], *ORDER_SCHEMA)
    )


@_lazily
def _windowed_open_orders(events: Frame) -> Frame:
    """The reference (and the lazy path) of :func:`open_orders`: the latest rows are found
    first (one window), so the sums run over the open orders' rows only."""
    key = key_columns(events) + ["order_id"]
    live_now = events.filter(_latest("seq", key) & pl.col("status").is_in(LIVE)).select(key)
    return _windowed_latest_order_state(events.join(live_now, on=key, how="semi"))


# The eager fast path of the order queries (``orderbook.analytics.queries_fast``): compiled passes over
# these columns, which a frame must have with these dtypes, instead of windows over the key.
_FOLD_SCHEMA = {"lane": pl.Int32, "episode": pl.Int32, "order_id": pl.Int64, "time_ns": pl.Int64, "fill_lots": pl.Int64,
                "fill_notional_atoms": pl.Int64, "fee_atoms": pl.Int64, "status": STATUS, "event": _enum(c.Event), "reason": REASON}


def _codes(dtype: pl.Enum, names: list[str]) -> np.ndarray:
    """A lookup over an Enum's physical codes: True for ``names``."""
    return np.isin(np.array(dtype.categories.to_list()), names)


def _place_orders(events: pl.DataFrame) -> fast.OrderTable | None:
    """Each order's slot and latest row in an eager events frame, or None when the frame does not fit."""
    return fast.place_orders(events, _FOLD_SCHEMA)


def _picked(orders: fast.OrderTable, statuses: list[str]) -> tuple[np.ndarray, pl.Series]:
    """Heads of the chains of the orders whose latest status is in ``statuses``, and their latest rows."""
    return fast.pick(orders, _codes(STATUS, statuses))


def _order_rows(events: pl.DataFrame, orders: fast.OrderTable, statuses: list[str]) -> pl.DataFrame:
    """``ORDER_SCHEMA`` rows of the orders whose latest status is in ``statuses``: their sums, then one
    gather of their latest rows."""
    keys = key_columns(events)
    head, latest = _picked(orders, statuses)
    sums = fast.order_sums(orders, head, _codes(STATUS, TERMINAL), _enum(c.Event).categories.to_list().index("CANCEL_REJECT"))
    computed = {"filled_lots": sums[0], "filled_notional_atoms": sums[1], "fee_atoms": sums[2], "submit_ns": sums[3]}
    taken = [k for k in ORDER_SCHEMA if k not in computed and k not in ("reason", "filled_quantity")]
    rows = events.select(*keys[:-2], *taken, "lot_size")[latest]
    return rows.with_columns(
        *(pl.Series(name, values) for name, values in computed.items()),
        _REASONS.gather(pl.Series(sums[4])).alias("reason"),
        (pl.Series(sums[0]) * rows["lot_size"]).alias("filled_quantity"),
    ).select(*keys[:-2], *ORDER_SCHEMA)


# ------------------------------------------------------------------- market
@_lazily
def latest_prices(market: Frame, lane: int | None = None) -> Frame:
    """Latest bid, ask, mid and last (close) per venue and instrument (``PRICE_SCHEMA``)."""
    market = _for_lane(market, lane)
    keys = key_columns(market)
    return (
        market.filter(_latest("step", keys + ["instrument"]))
        .with_columns(pl.col("close").alias("last"))
        .select(*keys[:-2], *PRICE_SCHEMA)
    )


# ------------------------------------------------------------------- ledger
@_lazily
def latest_balances(ledger: Frame, lane: int | None = None) -> Frame:
    """Latest free and locked atoms per venue and asset (``BALANCE_SCHEMA`` + names).

    From ``free_after``/``locked_after`` of each (venue, asset)'s latest ledger
    row. Balances that are zero (free and locked) are left out, as in
    ``Exchange.balances``: an asset never held and one spent to zero read the same.
    """
    ledger = _for_lane(ledger, lane)
    keys = key_columns(ledger)
    return (
        ledger.filter(_latest("seq", keys + ["venue", "asset"]))
        .rename({"free_after": "free_atoms", "locked_after": "locked_atoms"})
        .filter((pl.col("free_atoms") != 0) | (pl.col("locked_atoms") != 0))
        .select(*keys[:-2], *BALANCE_SCHEMA, "venue_name", "asset_name")
    )


@_lazily
def locked_balances(ledger: Frame, venue: str | int, lane: int | None = None) -> Frame:
    """Open (locked) balances on ``venue`` (its name or index): rows with locked atoms."""
    on_venue = pl.col("venue_name").cast(pl.String) == venue if isinstance(venue, str) else pl.col("venue") == venue
    return latest_balances(ledger.filter(on_venue), lane).filter(pl.col("locked_atoms") != 0)


def valuation_frame(config, numeraire: str | None = None) -> pl.DataFrame:
    """How one unit of each (venue, asset) is valued in ``numeraire``: the core's plan.

    Columns venue, asset, atoms_per_unit, inst0, pow0, inst1, pow1: the value is
    ``mid(inst0) ** pow0 * mid(inst1) ** pow1`` (missing factors are 1), taken
    from ``Compiled.valuation_inst/valuation_power`` so totals agree with
    ``Exchange.portfolio_value()``.
    """
    if numeraire is not None and numeraire != config.numeraire:
        config = dataclasses.replace(config, numeraire=numeraire)
    cc = config.compile()
    n_v, n_a = cc.valuation_inst.shape[:2]
    v, a = np.meshgrid(np.arange(n_v), np.arange(n_a), indexing="ij")
    return pl.DataFrame(
        {
            "venue": v.ravel().astype(np.int32),
            "asset": a.ravel().astype(np.int32),
            "atoms_per_unit": cc.atoms_per_unit[a.ravel()],
            "inst0": cc.valuation_inst[:, :, 0].ravel().astype(np.int32),
            "pow0": cc.valuation_power[:, :, 0].ravel(),
            "inst1": cc.valuation_inst[:, :, 1].ravel().astype(np.int32),
            "pow1": cc.valuation_power[:, :, 1].ravel(),
        }
    )


def _apply_factor(value: pl.Expr, mid: str, power: str) -> pl.Expr:
    # the kernel's order of operations (value *= mid or value /= mid), so floats agree bit for bit
    return pl.when(pl.col(power) > 0).then(value * pl.col(mid)).when(pl.col(power) < 0).then(value / pl.col(mid)).otherwise(value)


@_lazily
def total_by_venue(ledger: Frame, market: Frame, numeraire: str | None = None, *, config, lane: int | None = None) -> Frame:
    """Free plus locked balances per venue, valued in ``numeraire`` at the latest mids.

    Each asset is valued as ``orderbook.engine.config`` plans it (a quote asset through
    a shared base: USDC in USD is mid(BTC/USD) / mid(BTC/USDC) on that venue);
    ``numeraire`` defaults to the config's. ``value`` is null for a venue holding
    an asset with no recorded price (a history without market rows).
    """
    balances = latest_balances(ledger, lane)
    keys = key_columns(balances)
    plan = valuation_frame(config, numeraire)
    if isinstance(balances, pl.LazyFrame):
        plan = plan.lazy()
    mids = latest_prices(market, lane).select(*keys, pl.col("instrument"), pl.col("mid"))
    with_mid = lambda frame, t: frame.join(  # noqa: E731
        mids.rename({"instrument": f"inst{t}", "mid": f"mid{t}"}), on=[*keys, f"inst{t}"], how="left"
    )
    valued = with_mid(with_mid(balances.join(plan, on=["venue", "asset"], how="left"), 0), 1)
    unit_value = _apply_factor(_apply_factor(pl.lit(1.0), "mid0", "pow0"), "mid1", "pow1")
    atoms = (pl.col("free_atoms") + pl.col("locked_atoms")).cast(pl.Float64)
    value = atoms / pl.col("atoms_per_unit") * unit_value
    return (
        valued.with_columns(value.alias("value"))
        .group_by(*keys, "venue", "venue_name")
        .agg(pl.when(pl.col("value").is_null().any()).then(None).otherwise(pl.col("value").sum()).alias("value"))
        .select(*keys[:-2], *TOTAL_SCHEMA, "venue_name")
    )


# --------------------------------------------------------- execution quality
def _stats(expr: pl.Expr, name: str) -> list[pl.Expr]:
    return [
        expr.mean().alias(f"{name}_mean"),
        expr.quantile(0.5, "linear").alias(f"{name}_p50"),
        expr.quantile(0.95, "linear").alias(f"{name}_p95"),
    ]


# Reasons of a REJECT that comes after the order was sent (at its ack): the order already counted with its SUBMIT.
REJECTED_AFTER_SENDING = ("BROKER_ERROR", "POST_ONLY_WOULD_TAKE")


@_lazily
def execution_quality(events: Frame, by: list[str] | None = None) -> dict[str, Frame]:
    """Slippage, latency, fill, expiry, reject and lost-race figures.

    ``by`` defaults to the keys plus ``venue`` and ``kind``. Returns two frames:

    - ``summary``, one row per group: ``orders`` (sent or refused), ``sent``,
      ``fills``, ``filled_orders``, ``filled_lots`` and ``ordered_lots`` (of sent
      orders) and ``fill_ratio`` (their ratio), ``expired`` and ``expiry_rate``
      (of sent), ``rejected`` and ``reject_rate`` (of orders), ``cancels_lost_race`` (a CANCEL_REJECT /
      CANCEL_TOO_LATE right after the FILL that filled a PENDING_CANCEL order),
      and mean / p50 / p95 of ``slippage_arrival_bps``, ``slippage_decision_bps``
      (per fill), ``time_to_ack_ms`` (per ack) and ``time_to_fill_ms`` (submit to
      the last fill, per filled order);
    - ``rejects``, one row per group and reason: ``rejects`` and ``reject_rate``
      (rejects for that reason / orders of the group).
    """
    keys = key_columns(events)
    by = keys + ["venue", "kind"] if by is None else list(by)
    key = keys + ["order_id"]
    ev = pl.col("event")
    # a REJECT after the SUBMIT (learned at the ack) is not a second order
    is_order = (ev == "SUBMIT") | ((ev == "REJECT") & ~pl.col("reason").cast(pl.String).is_in(REJECTED_AFTER_SENDING))
    counts = events.group_by(by).agg(
        is_order.sum().alias("orders"),
        (ev == "SUBMIT").sum().alias("sent"),
        (ev == "FILL").sum().alias("fills"),
        ((ev == "FILL") & (pl.col("status") == "FILLED")).sum().alias("filled_orders"),
        pl.col("fill_lots").sum().alias("filled_lots"),
        pl.col("qty_lots").filter(ev == "SUBMIT").sum().alias("ordered_lots"),
        (ev == "EXPIRE").sum().alias("expired"),
        (ev == "REJECT").sum().alias("rejected"),
        *_stats(pl.col("slippage_arrival_bps").filter(ev == "FILL"), "slippage_arrival_bps"),
        *_stats(pl.col("slippage_decision_bps").filter(ev == "FILL"), "slippage_decision_bps"),
    )
    submits = events.filter(ev == "SUBMIT").select(*key, pl.col("time_ns").alias("submit_ns"))
    acks = events.filter(ev == "ACK").join(submits, on=key).group_by(by).agg(
        *_stats((pl.col("time_ns") - pl.col("submit_ns")) * 1e-6, "time_to_ack_ms")
    )
    filled = events.filter((ev == "FILL") & (pl.col("status") == "FILLED"))
    fill_times = filled.join(submits, on=key).group_by(by).agg(
        *_stats((pl.col("time_ns") - pl.col("submit_ns")) * 1e-6, "time_to_fill_ms")
    )
    winning_fill = filled.select(*key, "step", (pl.col("seq") + 1).alias("seq"))
    lost = (
        events.filter((ev == "CANCEL_REJECT") & (pl.col("reason") == "CANCEL_TOO_LATE"))
        .join(winning_fill, on=[*key, "step", "seq"], how="semi")
        .group_by(by)
        .agg(pl.len().cast(pl.UInt32).alias("cancels_lost_race"))
    )
    summary = (
        counts.join(acks, on=by, how="left", nulls_equal=True)
        .join(fill_times, on=by, how="left", nulls_equal=True)
        .join(lost, on=by, how="left", nulls_equal=True)
        .with_columns(
            pl.col("cancels_lost_race").fill_null(0),
            (pl.col("filled_lots") / pl.col("ordered_lots")).alias("fill_ratio"),
            (pl.col("expired") / pl.col("sent")).alias("expiry_rate"),
            (pl.col("rejected") / pl.col("orders")).alias("reject_rate"),
        )
    )
    rejects = (
        events.filter(ev == "REJECT")
        .group_by(*by, "reason")
        .agg(pl.len().cast(pl.UInt32).alias("rejects"))
        .join(counts.select(*by, "orders"), on=by, how="left", nulls_equal=True)
        .with_columns((pl.col("rejects") / pl.col("orders")).alias("reject_rate"))
    )
    return {"summary": summary, "rejects": rejects}
