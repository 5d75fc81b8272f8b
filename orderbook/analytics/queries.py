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
every column, slower by the frame's width: ``benchmarks/RESULTS.md``, "History
queries"), and window
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

This module holds the order questions and execution quality; the balance and
price questions are :mod:`orderbook.analytics.queries_balances`, the schemas, enums
and keys they share :mod:`orderbook.analytics.queries_base`. Every name is
importable from here.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from orderbook.analytics import queries_fast as fast
from orderbook.analytics.queries_balances import (  # noqa: F401 (re-exported: the ledger and market questions)
    latest_balances,
    latest_prices,
    locked_balances,
    total_by_venue,
    valuation_frame,
)
from orderbook.analytics.queries_base import (  # noqa: F401 (re-exported: the schemas and enums of the answers)
    _REASONS,
    BALANCE_SCHEMA,
    KIND,
    LIVE,
    ORDER_SCHEMA,
    PRICE_SCHEMA,
    REASON,
    SIDE,
    STATUS,
    TERMINAL,
    TOTAL_SCHEMA,
    Frame,
    _enum,
    _latest,
    _lazily,
    key_columns,
    names,
)
from orderbook.spec import codes as c


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
            # after the filter: no per-group filter as pl.col("reason").filter(ended).first().over(key) would
            # need (benchmarks/RESULTS.md, "History queries")
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
    counts = _counts(events, by)
    submits = events.filter(ev == "SUBMIT").select(*key, pl.col("time_ns").alias("submit_ns"))
    acks = events.filter(ev == "ACK").join(submits, on=key).group_by(by).agg(
        *_stats((pl.col("time_ns") - pl.col("submit_ns")) * 1e-6, "time_to_ack_ms")
    )
    filled = events.filter((ev == "FILL") & (pl.col("status") == "FILLED"))
    fill_times = filled.join(submits, on=key).group_by(by).agg(
        *_stats((pl.col("time_ns") - pl.col("submit_ns")) * 1e-6, "time_to_fill_ms")
    )
    summary = (
        counts.join(acks, on=by, how="left", nulls_equal=True)
        .join(fill_times, on=by, how="left", nulls_equal=True)
        .join(_lost_races(events, filled, by, key), on=by, how="left", nulls_equal=True)
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


def _counts(events: Frame, by: list[str]) -> Frame:
    """Per group: orders (sent, or refused before sending: a reject learned at the ack is not a second order), sent, fills, filled orders and
    lots, ordered lots, expiries, rejects, and the slippage statistics of the fills."""
    ev = pl.col("event")
    # a REJECT after the SUBMIT (learned at the ack) is not a second order
    is_order = (ev == "SUBMIT") | ((ev == "REJECT") & ~pl.col("reason").cast(pl.String).is_in(REJECTED_AFTER_SENDING))
    return events.group_by(by).agg(
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


def _lost_races(events: Frame, filled: Frame, by: list[str], key: list[str]) -> Frame:
    """Per group: cancels that lost the race, a CANCEL_REJECT / CANCEL_TOO_LATE row right after (``seq + 1``, same
    step) the FILL that filled the order."""
    winning_fill = filled.select(*key, "step", (pl.col("seq") + 1).alias("seq"))
    return (
        events.filter((pl.col("event") == "CANCEL_REJECT") & (pl.col("reason") == "CANCEL_TOO_LATE"))
        .join(winning_fill, on=[*key, "step", "seq"], how="semi")
        .group_by(by)
        .agg(pl.len().cast(pl.UInt32).alias("cancels_lost_race"))
    )
