"""Matching live orders along the step's path, and the impact of the lane's own flow.

Every order meets the market when it arrives (its ack, or the bar's start for an
order acknowledged in an earlier bar): the quotes are those around the bar's path
there (:mod:`orderbook.market.path`, :func:`orderbook.engine.book.arrival_quotes`).

- A market order (and a limit that is marketable at the quotes of its arrival)
  takes liquidity unless post-only: it walks the book around those quotes
  (:func:`orderbook.engine.book.walk`) as far as its protection band or limit price
  allows with impact included (:func:`takeable_lots`) and pays the taker fee,
  stamped at its arrival. What a market, IOC or FOK order does not fill in its
  arrival step is cancelled at once (:mod:`orderbook.engine.tif`); the rest of a
  GTC, GTD limit that crossed rests, and meets later bars at their open.
- A resting limit fills only from the path after its arrival: the points after it,
  up to its expiry (exclusive) and up to its cancel's landing (inclusive: a fill
  at the cancel's time wins the race), behind its queue and the lane's earlier
  orders at its price (:mod:`orderbook.engine.queues`: the queue ahead thins by
  cancellations and pays first on a touch, a trade through clears it; each point's
  volume is taken once per lane), at most ``participation`` of the bar volume per
  lane and instrument (less the lots the lane's takers took in the bar: their
  trades are part of its volume), at its limit price; stamped at the point where
  its turn came; it pays the maker fee.
- Impact (linear, Almgren-Chriss): each taker fill moves its own price by
  ``epsilon + eta x (lots traded this step)`` ticks, rounded up against the trader
  and never clipped: protection takes fewer lots instead, so the fill's average
  price (impact included) stays within the order's band or limit; permanent impact
  adds ``gamma x lots`` to the lane's price of that instrument from the next bar on.
  Square-root: ``sqrt_coef x price x sqrt(lots this step / book volume)``.

Orders match in arrival order (ack time, then order id), so the earlier of two
orders meets the depth and the volume first; takers deplete the levels they walk
for the rest of the bar, recovering with the venue's resilience half-life. A bar without
trades still shows a book (the lane's typical volume, :mod:`orderbook.engine.book`):
takers fill against it, makers do not.

Bounds (:mod:`orderbook.spec.bounds`): a temporary impact shift is at most the
instrument's ``max_price_ticks`` a lot and the lane's permanent impact stays in
``[-max_price_ticks, max_price_ticks]``, so no product of price and lots leaves
int64; a taker's fill is priced within its band or limit, itself in the price
range. Times: a taker fill is stamped at its arrival (or the bar's start), a maker
fill at a path point after its arrival, before its expiry and not after its
cancel, so an order's event times never decrease.
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.engine import state as st
from orderbook.engine.book import arrival_quotes, book_volume_lots, crosses, walk
from orderbook.engine.lifecycle import FILL_FULL, is_fillable
from orderbook.engine.portfolio import settle_fill
from orderbook.engine.queues import NO_ORDER, arrival_count, make, next_by_arrival, queue_turn, replenish
from orderbook.engine.records import record, transit
from orderbook.engine.stats import count, observe
from orderbook.engine.tif import cancel_at_arrival, ends_at_arrival, may_take
from orderbook.spec import codes as c

IMPACT_LINEAR = 1
IMPACT_SQRT = 2


@kernel
def _impact_shift_ticks(cc, bars, b, i, lots_this_step):
    v = cc.inst_venue[i]
    model = cc.impact_model[v]
    if model == IMPACT_LINEAR:
        x = cc.impact_epsilon_ticks[i] + cc.impact_eta_ticks_per_lot[i] * lots_this_step
    elif model == IMPACT_SQRT:
        x = cc.impact_sqrt_coef[v] * bars.open_ticks[b, i] * np.sqrt(lots_this_step / max(book_volume_lots(bars, b, i), 1))
    else:
        return np.int64(0)
    return np.int64(np.ceil(min(x, float(cc.max_price_ticks[i])) - 1e-9))


@kernel
def _within(side, cap, lots, px_lots):
    """Whether ``lots`` priced at ``px_lots`` (ticks x lots) average no worse than ``cap`` (and at least a tick)."""
    if side == c.BUY:
        return px_lots <= cap * lots
    return px_lots >= cap * lots and px_lots >= lots


@kernel
def _priced_lots(cc, bars, b, i, side, cap, want, bid, ask):
    """``(lots, ticks x lots)`` a walk for ``want`` would give now, temporary impact included, without taking."""
    lots, px_lots = walk(cc, bars, b, i, side, cap, want, bid, ask, False)
    if lots == 0:
        return lots, px_lots
    shift = _impact_shift_ticks(cc, bars, b, i, bars.flow_lots[b, i] + lots)
    return lots, px_lots + side * lots * shift


@kernel
def takeable_lots(cc, bars, b, i, side, cap, want, bid, ask):
    """The most lots (at most ``want``) a taker gets now with its average price, impact included, within ``cap``.

    The walk's average price and the impact shift both grow with the lots taken, so
    the lots that fit are ``0..n``: a binary search finds ``n`` (about 40 looks at
    the book for 2**40 lots) when the whole walk does not fit. Takes nothing.
    """
    lots, px_lots = _priced_lots(cc, bars, b, i, side, cap, want, bid, ask)
    if _within(side, cap, lots, px_lots):
        return lots
    lo, hi = np.int64(0), lots  # lo fits, hi does not
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        n, px = _priced_lots(cc, bars, b, i, side, cap, mid, bid, ask)
        if _within(side, cap, n, px):
            lo = mid
        else:
            hi = mid
    return lo


@kernel
def _take(cc, bars, b, i, side, cap, want, bid, ask):
    """Taker fill: walk the book around ``bid, ask`` as far as :func:`takeable_lots` allows, add the
    temporary impact (never clipped); (lots, notional in ticks x lots)."""
    lots, px_lots = walk(cc, bars, b, i, side, cap, takeable_lots(cc, bars, b, i, side, cap, want, bid, ask), bid, ask)
    if lots == 0:
        return lots, px_lots
    bars.flow_lots[b, i] += lots
    shift = _impact_shift_ticks(cc, bars, b, i, bars.flow_lots[b, i])
    px_lots = px_lots + side * lots * shift
    bound = float(cc.max_price_ticks[i])
    bars.impact_ticks[b, i] = min(max(bars.impact_ticks[b, i] + side * cc.impact_gamma_ticks_per_lot[i] * lots, -bound), bound)
    return lots, px_lots


@kernel
def _apply_fill(ctx, b, k, t_ns, lots, px_lots, liquidity):
    cc, orders, lanes, acct, stats, events, ledger, error = ctx
    i = orders.instrument[b, k]
    was = orders.status[b, k]
    remaining = orders.qty_lots[b, k] - orders.filled_lots[b, k]
    edge = FILL_FULL if lots == remaining else c.EV_FILL
    notional = px_lots * cc.quote_atoms_per_tick_lot[i]
    rate = cc.taker_fee_e8[i] if liquidity == c.LIQ_TAKER else cc.maker_fee_e8[i]
    fee = settle_fill(cc, orders, acct, ledger, lanes, b, k, t_ns, lots, notional, rate)
    status = transit(orders, b, k, edge, error)
    record(ctx, b, k, t_ns, c.EV_FILL, status, c.R_NONE, lots, notional, fee, liquidity)
    side = orders.side[b, k]
    fill_px_x2 = 2.0 * px_lots / lots
    arrival, decision = orders.arrival_mid_x2[b, k], orders.decision_mid_x2[b, k]
    observe(stats, b, st.STAT_SLIPPAGE_ARRIVAL_BPS, side * (fill_px_x2 - arrival) / arrival * 1e4)
    observe(stats, b, st.STAT_SLIPPAGE_DECISION_BPS, side * (fill_px_x2 - decision) / decision * 1e4)
    count(stats, b, st.CNT_FILLS)
    count(stats, b, st.CNT_FILLED_LOTS, lots)
    if status == c.FILLED:
        count(stats, b, st.CNT_FILLED_ORDERS)
        observe(stats, b, st.STAT_TIME_TO_FILL_MS, (t_ns - orders.submit_ns[b, k]) * 1e-6)
        if was == c.PENDING_CANCEL:  # the fill got there before the cancel
            count(stats, b, st.CNT_CANCEL_LOST_RACE)
            record(ctx, b, k, t_ns, c.EV_CANCEL_REJECT, status, c.R_CANCEL_TOO_LATE)


@kernel(inline=True)
def _meet(ctx, b, k, t0, bars, key, alone):
    """Order ``k`` of lane ``b`` meets this step's path: takes at its arrival, then makes from its queue.

    ``alone``: no other live order in the lane (its place behind them needs no look).
    """
    cc, orders, lanes = ctx.cc, ctx.orders, ctx.lanes
    i = orders.instrument[b, k]
    side, price = orders.side[b, k], orders.price_ticks[b, k]
    remaining = orders.qty_lots[b, k] - orders.filled_lots[b, k]
    ack = orders.ack_ns[b, k]
    fresh = orders.acked_step[b, k] == lanes.step[b]
    meets = ack if fresh else t0  # when the order meets this bar's path
    bid, ask = arrival_quotes(cc, bars, b, i, t0, meets, key)
    kind, tif = orders.kind[b, k], orders.tif[b, k]
    if kind == c.MARKET or (fresh and may_take(tif) and crosses(side, price, bid, ask)):
        replenish(cc, bars, b, i, max(t0, ack))
        want = remaining
        if tif == c.TIF_FOK and takeable_lots(cc, bars, b, i, side, price, remaining, bid, ask) < remaining:
            want = 0  # fill or kill: the whole order now, or nothing
        lots, px_lots = _take(cc, bars, b, i, side, price, want, bid, ask)
        if lots > 0:
            bars.volume_used_lots[b, i] += lots  # the lane's own trade is part of the bar's volume: not for its limits
            _apply_fill(ctx, b, k, max(t0, ack), lots, px_lots, c.LIQ_TAKER)
            remaining -= lots
    if remaining > 0 and ends_at_arrival(kind, tif):  # always its arrival step: it never rests
        cancel_at_arrival(ctx, b, k, max(t0, ack), bars, bid, ask)
    if remaining == 0 or ends_at_arrival(kind, tif):
        return
    blocked, behind = False, t0 - 1
    if not alone:
        blocked, behind = queue_turn(orders, b, k, t0)  # blocked: an earlier order of the lane rests at this price
    until = min(orders.cancel_ack_ns[b, k], orders.expiry_ns[b, k] - 1)  # a fill at the cancel's time wins
    room = 0 if blocked else remaining  # a blocked order's queue still moves; it fills nothing
    lots, px_lots, stamp = make(cc, orders, lanes, bars, b, k, i, side, price, room, t0, max(meets, behind), until)
    if lots > 0:
        _apply_fill(ctx, b, k, max(ack, stamp), lots, px_lots, c.LIQ_MAKER)


@kernel(inline=True)
def match(ctx, b, t0, bars, key):
    """Fill every live, acknowledged order of lane ``b`` along this step's path (``key``: its market step key).

    Orders meet the bar in arrival order (:mod:`orderbook.engine.queues`): in slot
    order when that already is arrival order (one scan), else one by one.
    """
    orders = ctx.orders
    n, in_order = arrival_count(orders, b)
    if n == 0:
        return
    if in_order:
        for k in range(orders.status.shape[1]):
            if is_fillable(orders.status[b, k]) and orders.arrival_mid_x2[b, k] != 0:
                _meet(ctx, b, k, t0, bars, key, n == 1)
        return
    last_ack, last_oid = np.int64(-1), np.int64(-1)
    while True:
        k = next_by_arrival(orders, b, last_ack, last_oid)
        if k == NO_ORDER:
            break
        last_ack, last_oid = orders.ack_ns[b, k], orders.order_id[b, k]
        _meet(ctx, b, k, t0, bars, key, False)
