"""Applying an edge of the lifecycle to a slot, and recording it.

``ctx`` is the tuple ``(compiled, orders, lanes, accounts, stats, events, ledger,
error)`` that every phase of a step shares. :func:`transit` is the only place a
status changes; it looks the edge up in the transition table and, on an illegal
edge, records lane, order, status and edge in ``error`` (the caller raises).
"""

from __future__ import annotations

from orderbook import codes as c
from orderbook import state as st
from orderbook.event_log import append_event
from orderbook.jit import kernel
from orderbook.lifecycle import FILL_FULL, INVALID, TRANSITIONS
from orderbook.portfolio import release_all
from orderbook.stats import count, count_reject


@kernel(inline=True)
def is_live(status):
    return status >= c.PENDING and status <= c.PENDING_CANCEL


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
    orders, lanes, events = ctx[1], ctx[2], ctx[5]
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


