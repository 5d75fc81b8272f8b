"""One transition of the order system, as named phases over the arrays.

:func:`step_orders` runs, per lane, the order of DESIGN.md after the market has
advanced to this step's bar (:mod:`orderbook.market.synthetic` ran first and kept the
quotes the agent decided on in ``ref_bid/ref_ask``):

1. ``inject_outages``   venues go down or come back, broker errors enter or leave a burst (fault seed)
2. ``request_cancels``  the agent's cancels: in flight, or refused
3. ``submit``           validate, reject with a reason, or lock and send (PENDING)
4. ``venue_cancels``    the venue cancels some resting orders on its own
5. ``acknowledge``      acks arrive: live (OPEN) at the path's quotes of their arrival, or rejected by the broker;
                        then self-trade prevention at each arrival (:mod:`orderbook.engine.stp`)
6. ``match``            fills along the bar's path: takers walk the book at their arrival, makers
                        fill from the path after it, before their expiry and before their cancel lands
7. ``land_cancels``     cancels land on what is still resting (a fill earlier on the path won the race)
8. ``expire``           time to live passed, or the ack never came
9. ``close_step``       value the portfolio, record the market, advance the clock

Every status change goes through :func:`transit` and the transition table; every
balance change through :func:`orderbook.engine.portfolio.move`; every change writes its
history row as it happens. The kernel never allocates.

Bounds kept (:mod:`orderbook.spec.bounds`): a limit price outside the instrument's range
is refused (``PRICE_OUT_OF_RANGE``) and a market order's price, its protection band
(:func:`orderbook.engine.tif.band_price_ticks`), is clamped into it before any product
of price and quantity is formed; an order that would credit a
balance already above ``BALANCE_CAP_ATOMS`` is refused (``BALANCE_LIMIT``). Every
time sum saturates at ``NEVER_NS``. Times in force: GTC expires at ``NEVER_NS``;
GTD and post-only at their ttl (or the venue's default); IOC, FOK and market orders
end in their arrival step (:mod:`orderbook.engine.tif`); a post-only limit marketable
on arrival is rejected at its ack. An order that reaches the venue at or
after its expiry is never acknowledged, and a cancel landing at or after it never
lands: the expiry comes first, so each order's event times never decrease.
"""

from __future__ import annotations

from orderbook.compile.jit import kernel
from orderbook.engine import broker
from orderbook.engine import state as st
from orderbook.engine.book import arrival_quotes, initial_queue_lots, remember_volume
from orderbook.engine.lifecycle import is_awaiting_ack, is_fillable, is_live
from orderbook.engine.matching import match
from orderbook.engine.portfolio import lock_reservation, value_lane
from orderbook.engine.records import StepContext, finish, record, transit
from orderbook.engine.state import NEVER_NS
from orderbook.engine.stats import count, count_reject, observe
from orderbook.engine.stp import prevent_self_trades
from orderbook.engine.tif import band_price_ticks, post_only_would_take
from orderbook.history.event_log import append_event_fields
from orderbook.history.logs import append_market
from orderbook.spec import codes as c
from orderbook.spec import rng
from orderbook.spec.bounds import BALANCE_CAP_ATOMS, sat_add_ns


@kernel(inline=True)
def inject_outages(ctx, b):
    cc, lanes = ctx.cc, ctx.lanes
    broker.update_outages(cc, lanes, b, lanes.fault_seed[b], lanes.rng_episode[b], lanes.step[b])
    broker.update_error_bursts(cc, lanes, b, lanes.fault_seed[b], lanes.rng_episode[b], lanes.step[b])


@kernel(inline=True)
def request_cancels(ctx, b, t0, bars, cancels):
    """The agent's cancel requests: sent (PENDING_CANCEL) or refused with a reason."""
    cc, orders, lanes, acct, stats, events, ledger, error = ctx
    seed, ep, step = lanes.fault_seed[b], lanes.rng_episode[b], lanes.step[b]
    for k in range(orders.status.shape[1]):
        if not cancels[b, k]:
            continue
        s = orders.status[b, k]
        if s == c.EMPTY or s == c.PENDING_CANCEL:
            continue  # nothing to cancel, or already in flight
        if not is_live(s):
            record(ctx, b, k, t0, c.EV_CANCEL_REJECT, s, c.R_CANCEL_TOO_LATE)
            continue
        v = cc.inst_venue[orders.instrument[b, k]]
        if broker.venue_down(lanes, b, v):
            transit(orders, b, k, c.EV_CANCEL_REJECT, error)
            record(ctx, b, k, t0, c.EV_CANCEL_REJECT, s, c.R_VENUE_DOWN)
            continue
        i = orders.instrument[b, k]
        latency = broker.draw_latency_ns(cc, v, seed, ep, step, orders.order_id[b, k], rng.P_CANCEL_LATENCY, broker.volatility_scale(cc, bars, b, i))
        lands = max(sat_add_ns(t0, latency), orders.ack_ns[b, k])
        if broker.cancel_loses_race(cc, v, seed, ep, step, orders.order_id[b, k]):
            lands = broker.end_of_bar_ns(t0, cc.step_ns, lands)  # the venue's cancel queue lags its matching
        orders.cancel_ack_ns[b, k] = lands
        status = transit(orders, b, k, c.EV_CANCEL_REQUEST, error)
        record(ctx, b, k, t0, c.EV_CANCEL_REQUEST, status, c.R_NONE)


@kernel
def _free_slot(orders, b):
    for k in range(orders.status.shape[1]):
        if not is_live(orders.status[b, k]):
            return k
    return -1


@kernel
def _refusal(cc, lanes, bars, acct, b, i, side, kind, price, qty):
    """Reason a new order is refused before sending, or R_NONE (funds checked later).

    The quantity and price range are checked before the notional is formed, so it
    is at most ``max_price x max_qty_lots x quote_atoms_per_tick_lot`` (orderbook.spec.bounds).
    """
    v = cc.inst_venue[i]
    if broker.venue_down(lanes, b, v):
        return c.R_VENUE_DOWN
    limit = cc.rate_limit_per_step[v]
    if limit > 0 and lanes.sent_this_step[b, v] >= limit:
        return c.R_RATE_LIMITED
    if qty > cc.max_qty_lots[i]:
        return c.R_BAD_LOT
    if price < cc.min_price_ticks[i] or price > cc.max_price_ticks[i]:
        return c.R_PRICE_OUT_OF_RANGE
    mid = 0.5 * (bars.ref_bid_ticks[b, i] + bars.ref_ask_ticks[b, i])
    if kind == c.LIMIT and abs(price - mid) > cc.band_bps[v] * 1e-4 * mid:
        return c.R_BAD_TICK
    if price * qty * cc.quote_atoms_per_tick_lot[i] < cc.min_notional_atoms[i]:
        return c.R_BELOW_MIN_NOTIONAL
    credited = cc.inst_base[i] if side == c.BUY else cc.inst_quote[i]
    if acct.free_atoms[b, v, credited] + acct.locked_atoms[b, v, credited] > BALANCE_CAP_ATOMS:
        return c.R_BALANCE_LIMIT
    return c.R_NONE


@kernel(inline=True)
def submit(ctx, b, t0, bars, intents):
    """New orders: refused with a reason, or locked and sent with a drawn ack time."""
    cc, orders, lanes, acct, stats, events, ledger, error = ctx
    seed, ep, step = lanes.fault_seed[b], lanes.rng_episode[b], lanes.step[b]
    for m in range(intents.instrument.shape[1]):
        i = intents.instrument[b, m]
        if i < 0:
            continue
        side, kind, qty = intents.side[b, m], intents.kind[b, m], intents.qty_lots[b, m]
        v = cc.inst_venue[i]
        ref_bid, ref_ask = bars.ref_bid_ticks[b, i], bars.ref_ask_ticks[b, i]
        if kind == c.MARKET:  # a market order's price is its protection band, inside the price range
            price = band_price_ticks(ref_bid, ref_ask, cc.collar_bps[v], cc.min_price_ticks[i], cc.max_price_ticks[i], side)
        else:
            price = intents.price_ticks[b, m]
        oid = lanes.next_order_id[b]
        lanes.next_order_id[b] = oid + 1
        count(stats, b, st.CNT_ORDERS)
        k = _free_slot(orders, b)
        reason = c.R_NO_FREE_SLOT if k < 0 else _refusal(cc, lanes, bars, acct, b, i, side, kind, price, qty)
        if reason == c.R_NONE:
            tif, ttl = intents.tif[b, m], intents.ttl_ns[b, m]
            expiry = NEVER_NS if tif == c.TIF_GTC else sat_add_ns(t0, ttl if ttl > 0 else cc.default_ttl_ns[v])
            _write_order(orders, b, k, oid, i, side, kind, tif, price, qty, t0, expiry, ref_bid + ref_ask)
            if not lock_reservation(cc, orders, acct, ledger, lanes, b, k, t0):
                reason = c.R_INSUFFICIENT_FUNDS
                orders.status[b, k] = c.EMPTY
        if reason != c.R_NONE:
            append_event_fields(events, b, lanes.episode[b], step, t0, oid, i, side, kind, price, qty, c.EV_REJECT, c.REJECTED, reason, 0, 0, 0, 0, 0, ref_bid + ref_ask, intents.tif[b, m])
            count_reject(stats, b, reason)
            continue
        count(stats, b, st.CNT_ORDERED_LOTS, qty)
        lanes.sent_this_step[b, v] += 1
        orders.ack_ns[b, k] = broker.ack_time_ns(cc, v, seed, ep, step, oid, t0, broker.volatility_scale(cc, bars, b, i))
        status = transit(orders, b, k, c.EV_SUBMIT, error)
        record(ctx, b, k, t0, c.EV_SUBMIT, status, c.R_NONE)


@kernel
def _write_order(orders, b, k, oid, i, side, kind, tif, price, qty, t0, expiry, decision_mid_x2):
    orders.order_id[b, k] = oid
    orders.instrument[b, k] = i
    orders.side[b, k] = side
    orders.kind[b, k] = kind
    orders.tif[b, k] = tif
    orders.status[b, k] = c.EMPTY
    orders.reason[b, k] = c.R_NONE
    orders.price_ticks[b, k] = price
    orders.qty_lots[b, k] = qty
    orders.filled_lots[b, k] = 0
    orders.filled_notional_atoms[b, k] = 0
    orders.fee_atoms[b, k] = 0
    orders.fee_acc_whole[b, k] = 0
    orders.fee_acc_frac[b, k] = 0
    orders.reserved_atoms[b, k] = 0
    orders.submit_ns[b, k] = t0
    orders.ack_ns[b, k] = NEVER_NS
    orders.expiry_ns[b, k] = expiry
    orders.cancel_ack_ns[b, k] = NEVER_NS
    orders.decision_mid_x2[b, k] = decision_mid_x2
    orders.arrival_mid_x2[b, k] = 0
    orders.queue_ahead_lots[b, k] = 0
    orders.acked_step[b, k] = -1
    orders.last_make_ns[b, k] = 0


@kernel(inline=True)
def venue_cancels(ctx, b, t0):
    """Resting orders the venue cancels on its own (UNSOLICITED)."""
    cc, orders, lanes = ctx.cc, ctx.orders, ctx.lanes
    for k in range(orders.status.shape[1]):
        s = orders.status[b, k]
        if is_fillable(s) and orders.ack_ns[b, k] <= t0:
            v = cc.inst_venue[orders.instrument[b, k]]
            if broker.venue_cancels(cc, v, lanes.fault_seed[b], lanes.rng_episode[b], lanes.step[b], orders.order_id[b, k]):
                count(ctx.stats, b, st.CNT_VENUE_CANCELS)
                finish(ctx, b, k, t0, c.EV_VENUE_CANCEL, c.R_UNSOLICITED)


@kernel(inline=True)
def acknowledge(ctx, b, t0, t1, bars, key):
    """Acks that arrive by the end of the bar: live at the path's quotes of their arrival, or the broker's reject."""
    cc, orders, lanes, acct, stats, events, ledger, error = ctx
    for k in range(orders.status.shape[1]):
        s = orders.status[b, k]
        if not is_awaiting_ack(s) or orders.arrival_mid_x2[b, k] != 0:
            continue
        ack = orders.ack_ns[b, k]
        i = orders.instrument[b, k]
        v = cc.inst_venue[i]
        if ack > t1 or ack > sat_add_ns(orders.submit_ns[b, k], cc.ack_timeout_ns[v]) or ack >= orders.expiry_ns[b, k]:
            continue  # not yet, too late (ACK_TIMEOUT), or after its expiry (TIMEOUT): expire() ends it
        bid, ask = arrival_quotes(cc, bars, b, i, t0, ack, key)
        orders.arrival_mid_x2[b, k] = bid + ask
        if broker.broker_errs(cc, lanes, b, v, lanes.fault_seed[b], lanes.rng_episode[b], lanes.step[b], orders.order_id[b, k]):
            finish(ctx, b, k, ack, c.EV_REJECT, c.R_BROKER_ERROR)
            continue
        if post_only_would_take(orders, b, k, bid, ask):
            finish(ctx, b, k, ack, c.EV_REJECT, c.R_POST_ONLY_WOULD_TAKE)
            continue
        observe(stats, b, st.STAT_ACK_LATENCY_MS, (ack - orders.submit_ns[b, k]) * 1e-6)
        if orders.kind[b, k] == c.LIMIT:
            frac = cc.queue_fraction[v]
            orders.queue_ahead_lots[b, k] = initial_queue_lots(cc, bars, b, i, orders.side[b, k], orders.price_ticks[b, k], frac, bid, ask)
        orders.acked_step[b, k] = lanes.step[b]
        status = transit(orders, b, k, c.EV_ACK, error)
        record(ctx, b, k, ack, c.EV_ACK, status, c.R_NONE)


@kernel(inline=True)
def land_cancels(ctx, b, t1):
    """Cancels whose ack lands by the end of the bar, after the fills the path gave before it (match stops there)."""
    orders = ctx.orders
    for k in range(orders.status.shape[1]):
        if orders.status[b, k] != c.PENDING_CANCEL or orders.cancel_ack_ns[b, k] > t1 or orders.arrival_mid_x2[b, k] == 0:
            continue
        if orders.cancel_ack_ns[b, k] >= orders.expiry_ns[b, k]:
            continue  # the order expires before the cancel lands: expire() ends it
        finish(ctx, b, k, orders.cancel_ack_ns[b, k], c.EV_CANCEL_ACK, c.R_USER_CANCEL)


@kernel(inline=True)
def expire(ctx, b, t1):
    """Orders whose time to live passed, and pending orders whose ack never came."""
    cc, orders = ctx.cc, ctx.orders
    for k in range(orders.status.shape[1]):
        s = orders.status[b, k]
        if not is_live(s):
            continue
        v = cc.inst_venue[orders.instrument[b, k]]
        ack_deadline = sat_add_ns(orders.submit_ns[b, k], cc.ack_timeout_ns[v])
        unacked = orders.arrival_mid_x2[b, k] == 0
        if unacked and ack_deadline <= t1 and ack_deadline < orders.expiry_ns[b, k]:
            finish(ctx, b, k, ack_deadline, c.EV_EXPIRE, c.R_ACK_TIMEOUT)
        elif orders.expiry_ns[b, k] <= t1:
            finish(ctx, b, k, orders.expiry_ns[b, k], c.EV_EXPIRE, c.R_TIMEOUT)


@kernel(inline=True)
def close_step(ctx, b, t1, bars, market_log, record_market):
    cc, lanes, acct = ctx.cc, ctx.lanes, ctx.acct
    acct.value_numeraire[b] = value_lane(cc, bars, acct, b)
    if record_market:
        for i in range(bars.open_ticks.shape[1]):
            append_market(market_log, b, lanes.episode[b], lanes.step[b], t1, bars, i)
    lanes.time_ns[b] = t1


@kernel
def step_orders(cc, orders, lanes, bars, acct, stats, events, ledger, market_log, intents, cancels, record_market, error):
    """One transition of every lane after the market advanced (phases in the module doc)."""
    ctx = StepContext(cc, orders, lanes, acct, stats, events, ledger, error)
    for b in range(orders.status.shape[0]):
        if not lanes.active[b]:
            continue
        t0 = lanes.time_ns[b]
        t1 = sat_add_ns(t0, cc.step_ns)
        lanes.sent_this_step[b, :] = 0
        bars.depth_used_lots[b, :, :, :] = 0
        bars.volume_used_lots[b, :] = 0
        bars.flow_lots[b, :] = 0
        bars.point_used_lots[b, :, :] = 0
        bars.depth_used_ns[b, :] = t0
        remember_volume(bars, b)
        inject_outages(ctx, b)
        request_cancels(ctx, b, t0, bars, cancels)
        submit(ctx, b, t0, bars, intents)
        venue_cancels(ctx, b, t0)
        key = rng.step_key(lanes.market_seed[b], lanes.rng_episode[b], lanes.step[b])  # the bar's path
        acknowledge(ctx, b, t0, t1, bars, key)
        prevent_self_trades(ctx, b)
        match(ctx, b, t0, bars, key)
        land_cancels(ctx, b, t1)
        expire(ctx, b, t1)
        close_step(ctx, b, t1, bars, market_log, record_market)
