"""Self-trade prevention: a lane's orders never trade with each other.

A venue does not let one account's buy and sell meet: when an arriving order would
cross one of the same account's resting orders on the other side of the same
instrument, the venue's self-trade prevention mode decides which of them it
cancels (``FillSpec.self_trade``, compiled to ``cc.self_trade_mode`` per venue):

- ``expire_taker`` (the default): the arriving order is cancelled whole;
- ``expire_maker``: the resting orders it would cross are cancelled, it goes on;
- ``expire_both``: both;
- ``none``: nothing is cancelled (it must be asked for).

Each cancel is the ``TIF_CANCEL`` edge with reason ``SELF_TRADE``, stamped at the
arriving order's ack and made by :func:`~orderbook.engine.records.finish` (transition
table, release of the whole reservation, event row), like the other rules decided
at an order's arrival (:mod:`orderbook.engine.tif`).

:func:`prevent_self_trades` runs in every step between ``acknowledge`` and ``match``
and takes the orders acknowledged in this step in the order they arrived (ack time,
then order id), so a later arrival meets the outcome of an earlier one. An order
*rests* at a time ``t`` when it is an acknowledged limit that may rest (not IOC,
FOK or market: those end in their arrival step), arrived before ``t`` (earlier
ack, or the same ack and a smaller order id), and neither its expiry nor its
cancel's landing came before ``t``. An arriving buy at ``p`` *crosses* a resting
sell at ``q`` when ``p >= q`` (a sell at ``p``: a resting buy at ``q >= p``; a market
order's price is its protection band).

Invariant kept (modes other than ``none``): no two orders of a lane on opposite
sides of one instrument rest at the same time with the buy's price at or above the
sell's. So they never both fill from the same trade of the path at one price, nor
pay fees on both sides of it.

Known limits: any crossing counts, even when the market's own liquidity in front
of the resting order would have filled the arriving one first (venues cancel only
when the match would reach the own order); the resting order is judged before
``match`` runs, so it is cancelled (``expire_maker``) without the maker fills the
path would have given it earlier in the same bar, before the arrival. With
``none`` two crossing orders rest side by side and each fills from the path on its
own (a venue would match them with each other).
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.engine.lifecycle import is_fillable
from orderbook.engine.records import finish
from orderbook.engine.tif import ends_at_arrival
from orderbook.spec import codes as c

STP_NONE = 0  # the codes of orderbook.engine.config.SELF_TRADE_CODE
STP_EXPIRE_TAKER = 1
STP_EXPIRE_MAKER = 2
STP_EXPIRE_BOTH = 3


@kernel(inline=True)
def _before(ack_a, oid_a, ack_b, oid_b):
    """Whether arrival ``a`` (ack time, order id) comes before arrival ``b``."""
    return ack_a < ack_b or (ack_a == ack_b and oid_a < oid_b)


@kernel
def rests_at(orders, b, j, t_ns, oid):
    """Whether slot ``j`` rests when order ``oid`` arrives at ``t_ns`` (module doc: acked before it, may rest, not yet ended)."""
    if not is_fillable(orders.status[b, j]) or orders.arrival_mid_x2[b, j] == 0:
        return False
    if ends_at_arrival(orders.kind[b, j], orders.tif[b, j]):
        return False
    if not _before(orders.ack_ns[b, j], orders.order_id[b, j], t_ns, oid):
        return False
    return orders.expiry_ns[b, j] > t_ns and orders.cancel_ack_ns[b, j] >= t_ns


@kernel(inline=True)
def would_cross(side, price_ticks, resting_side, resting_price_ticks):
    """Whether an arriving order (``side``, ``price_ticks``) would trade with a resting one of the other side."""
    if side == resting_side:
        return False
    if side == c.BUY:
        return price_ticks >= resting_price_ticks
    return price_ticks <= resting_price_ticks


@kernel
def arrive(ctx, b, k, mode):
    """Apply ``mode`` to the arrival of slot ``k``; returns how many orders it cancelled (the arriving one included)."""
    orders = ctx.orders
    t_ns, oid = orders.ack_ns[b, k], orders.order_id[b, k]
    i, side, price = orders.instrument[b, k], orders.side[b, k], orders.price_ticks[b, k]
    crossed, cancelled = False, 0
    for j in range(orders.status.shape[1]):
        if j == k or orders.instrument[b, j] != i or not rests_at(orders, b, j, t_ns, oid):
            continue
        if not would_cross(side, price, orders.side[b, j], orders.price_ticks[b, j]):
            continue
        crossed = True
        if mode == STP_EXPIRE_MAKER or mode == STP_EXPIRE_BOTH:
            finish(ctx, b, j, t_ns, c.EV_TIF_CANCEL, c.R_SELF_TRADE)
            cancelled += 1
    if crossed and (mode == STP_EXPIRE_TAKER or mode == STP_EXPIRE_BOTH):
        finish(ctx, b, k, t_ns, c.EV_TIF_CANCEL, c.R_SELF_TRADE)
        cancelled += 1
    return cancelled


@kernel
def _next_arrival(orders, b, step, after_ack, after_oid):
    """The slot acknowledged in ``step`` that arrived first after (``after_ack``, ``after_oid``), or -1."""
    best = -1
    for k in range(orders.status.shape[1]):
        if orders.acked_step[b, k] != step or orders.arrival_mid_x2[b, k] == 0:
            continue
        ack, oid = orders.ack_ns[b, k], orders.order_id[b, k]
        if not _before(after_ack, after_oid, ack, oid):
            continue
        if best < 0 or _before(ack, oid, orders.ack_ns[b, best], orders.order_id[b, best]):
            best = k
    return best


@kernel(inline=True)
def prevent_self_trades(ctx, b):
    """Self-trade prevention for the orders of lane ``b`` acknowledged in this step, in the order they arrived."""
    cc, orders = ctx.cc, ctx.orders
    step = ctx.lanes.step[b]
    after_ack, after_oid = np.int64(-(2**62)), np.int64(-1)
    while True:
        k = _next_arrival(orders, b, step, after_ack, after_oid)
        if k < 0:
            return
        after_ack, after_oid = orders.ack_ns[b, k], orders.order_id[b, k]
        if not is_fillable(orders.status[b, k]):
            continue  # rejected at its ack (broker error, post-only), or cancelled already
        mode = cc.self_trade_mode[cc.inst_venue[orders.instrument[b, k]]]
        if mode != STP_NONE:
            arrive(ctx, b, k, mode)
