"""Applying an edge of the lifecycle to a slot, and recording it.

``ctx`` is the :class:`StepContext` every phase of a step shares: the state's
arrays by name, built once per call by :func:`orderbook.engine.step.step_orders` (numba
compiles a named tuple like the anonymous tuple it replaced: no allocation, the
same code). :func:`transit` is the only place a status changes; it looks the edge
up in the transition table and, on an illegal edge, records lane, order, status
and edge in ``error`` (the caller raises).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from orderbook.compile.jit import kernel
from orderbook.engine import state as st
from orderbook.engine.lifecycle import FILL_FULL, INVALID, TRANSITIONS
from orderbook.engine.portfolio import release_all
from orderbook.engine.stats import count, count_reject
from orderbook.history.event_log import append_event
from orderbook.spec import codes as c


class StepContext(NamedTuple):
    """What every phase of a step reads and writes, by name (fields in ``step_orders``' argument order)."""

    cc: Any  # orderbook.engine.config.Compiled: the frozen venues, assets and instruments
    orders: Any  # state.Orders (B, K): the order slots
    lanes: Any  # state.Lanes (B, ...): clock, seeds, outages, next order id
    acct: Any  # state.Accounts (B, V, A): free and locked balances, value
    stats: Any  # state.Stats (B, ...): counters and running moments
    events: Any  # event_log.EventArrays: the order-event log's columns
    ledger: Any  # column_log.LogArrays: the ledger's columns, one row per balance move
    error: Any  # (5,) int64: flag, lane, order id, status, edge of the first illegal edge


@kernel
def transit(orders, b, k, edge, error):
    """Move slot ``k`` along ``edge``; on an illegal edge record it in ``error`` and return -1."""
    s = orders.status[b, k]
    t = TRANSITIONS[s, edge]
    if t == INVALID:
        if error[0] == 0:
            error[0], error[1], error[2], error[3], error[4] = 1, b, orders.order_id[b, k], s, edge
        return -1
    orders.status[b, k] = t
    return t


@kernel
def record(ctx, b, k, t_ns, event, status, reason, fill_lots=0, notional=0, fee=0, liquidity=0):
    orders, lanes, events = ctx.orders, ctx.lanes, ctx.events
    append_event(events, b, lanes.episode[b], lanes.step[b], t_ns, orders, k, event, status, reason, fill_lots, notional, fee, liquidity)


@kernel
def finish(ctx, b, k, t_ns, edge, reason):
    """Take slot ``k`` to a terminal status along ``edge``, release its funds, record it."""
    cc, orders, lanes, acct, stats, events, ledger, error = ctx
    status = transit(orders, b, k, edge, error)
    if status < 0:
        return
    orders.reason[b, k] = reason
    release_all(cc, orders, acct, ledger, lanes, b, k, t_ns)
    event = edge if edge != FILL_FULL else c.EV_FILL
    record(ctx, b, k, t_ns, event, status, reason)
    if status == c.EXPIRED:
        count(stats, b, st.CNT_EXPIRED)
    elif status == c.CANCELLED:
        count(stats, b, st.CNT_CANCELLED)
    elif status == c.REJECTED:
        count_reject(stats, b, reason)


