"""Queues and liquidity: a lane's orders meet the bar's liquidity once, in arrival order.

What this module keeps true (DESIGN.md "Queues and liquidity"):

- Arrival order. :func:`next_by_arrival` hands :func:`orderbook.engine.matching.match`
  a lane's live orders by ack time, then order id (not by slot), so the earlier of
  two orders meets the path's volume and the displayed depth first. One scan
  (:func:`arrival_count`) finds whether slot order already is arrival order (the
  common case); only otherwise does each order handed out cost a scan of the slots.
- The queue ahead. A resting limit's ``queue_ahead_lots`` (set on arrival by
  :func:`orderbook.engine.book.initial_queue_lots`: ``queue_fraction`` of the depth
  the book displays at its price and better) is thinned along the path by
  cancellations ahead (``queue_cancel_rate`` of it per bar, the same share in each
  of the bar's intervals) and consumed by the volume the path trades at its price
  (below); what is left after the queue fills the order (:func:`make`). A trade
  through the price clears the level: the queue ahead is gone and the order fills
  up to the volume traded there.
- The continuous path, not only its points. An interval (points ``j - 1, j``)
  touched or traded through a price when its extreme toward the limit
  (``bars.path_low_ticks`` for a buy, ``path_high_ticks`` for a sell:
  :func:`orderbook.market.path.interval_extremes`) lies at or through it, even if
  both points stay on the limit's side: a brief dip through a bid fills it, as it
  fills a real maker. An interval that reached the price offers the share of its
  volume the continuous path spent at or through it (in expectation given the
  reach: :func:`orderbook.market.path.share_at_or_through`). So a fill no longer
  waits for a point beyond the price (an overshoot of one interval's move that
  made the cost of posting depend on ``path_points``), and what it meets there
  does not grow with longer intervals either.
- Volume is consumed once. The volume of every path point the lane's limits take is
  kept for the step (``bars.point_used_lots``): a later order of the lane sees only
  what earlier ones left there, so a lane's maker fills at a point never exceed what
  traded there, and splitting an order never fills more than the whole. The lane's
  share per bar and instrument stays at most ``participation x volume``.
- Never behind. A later limit of the lane at the same instrument, side and price
  makes nothing while an earlier one rests unfilled there, and only from the path
  points at or after the earlier one's last maker fill (:func:`queue_turn`).
- Resilience. Takers deplete the displayed levels they walk, on their side of the
  book, for the rest of the bar (``bars.depth_used_lots``); before each taker, :func:`replenish` gives back
  the depth taken with the venue's half-life ``resilience_half_life_ns`` over the
  time since the last taker (``inf``: nothing before the next bar), rounded so the
  depth taken never grows by decay. A second taker in one bar therefore walks
  further and pays more unless the book had time to recover.
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.engine.lifecycle import is_fillable
from orderbook.market.path import (
    first_point_after,
    interval_lots,
    interval_variance_ticks2,
    point_time_ns,
    share_at_or_through,
)
from orderbook.spec import codes as c
from orderbook.spec import rng

NO_ORDER = -1


@kernel(inline=True)
def _before(ack_a, oid_a, ack_b, oid_b):
    return ack_a < ack_b or (ack_a == ack_b and oid_a < oid_b)


@kernel
def next_by_arrival(orders, b, last_ack, last_oid):
    """The slot of lane ``b``'s next fillable, acknowledged order after ``(last_ack, last_oid)`` in arrival order.

    Arrival order is ack time, then order id (ids are unique, so the order is
    total); ``NO_ORDER`` when none is left. Start with ``(-1, -1)``.
    """
    best = NO_ORDER
    best_ack, best_oid = np.int64(0), np.int64(0)
    for k in range(orders.status.shape[1]):
        if not is_fillable(orders.status[b, k]) or orders.arrival_mid_x2[b, k] == 0:
            continue
        ack, oid = orders.ack_ns[b, k], orders.order_id[b, k]
        if not _before(last_ack, last_oid, ack, oid):
            continue
        if best == NO_ORDER or _before(ack, oid, best_ack, best_oid):
            best, best_ack, best_oid = k, ack, oid
    return best


@kernel
def arrival_count(orders, b):
    """``(n, in_order)``: lane ``b``'s fillable, acknowledged orders, and whether slot order is already arrival order.

    One scan of the lane's slots; when ``in_order`` the caller visits slots in order
    and skips :func:`next_by_arrival`'s scan per order.
    """
    n, in_order = 0, True
    last_ack, last_oid = np.int64(-1), np.int64(-1)
    for k in range(orders.status.shape[1]):
        if not is_fillable(orders.status[b, k]) or orders.arrival_mid_x2[b, k] == 0:
            continue
        ack, oid = orders.ack_ns[b, k], orders.order_id[b, k]
        if not _before(last_ack, last_oid, ack, oid):
            in_order = False
        last_ack, last_oid = ack, oid
        n += 1
    return n, in_order


@kernel
def queue_turn(orders, b, k, t0):
    """``(blocked, after_ns)`` for the resting limit in slot ``k``: its place behind the lane's earlier orders at its price.

    ``blocked`` when an earlier order of the lane (arrival order) at the same
    instrument, side and price still rests; otherwise ``after_ns`` is the latest
    time this bar before which the earlier ones' last maker fills came (``t0 - 1``
    if none), so the order fills from points at or after them.
    """
    i, side, price = orders.instrument[b, k], orders.side[b, k], orders.price_ticks[b, k]
    ack, oid = orders.ack_ns[b, k], orders.order_id[b, k]
    after = t0 - 1
    for m in range(orders.status.shape[1]):
        if m == k or orders.order_id[b, m] == 0 or orders.arrival_mid_x2[b, m] == 0:
            continue
        if orders.instrument[b, m] != i or orders.side[b, m] != side or orders.price_ticks[b, m] != price or orders.kind[b, m] != c.LIMIT:
            continue
        if not _before(orders.ack_ns[b, m], orders.order_id[b, m], ack, oid):
            continue
        if is_fillable(orders.status[b, m]):
            return True, after
        after = max(after, orders.last_make_ns[b, m] - 1)
    return False, after


@kernel
def replenish(cc, bars, b, i, t_ns):
    """Give back the depth takers took from lane ``b``'s book of ``i`` this bar, by its half-life, up to ``t_ns``.

    Keeps ``depth_used_lots`` a non-increasing integer between takers (floor of the
    decayed amount, so the book never gets back less than the half-life gives);
    ``depth_used_ns`` is the time it decayed to. Called before every taker.
    """
    last = bars.depth_used_ns[b, i]
    if t_ns <= last:
        return
    bars.depth_used_ns[b, i] = t_ns
    half_life = cc.resilience_half_life_ns[cc.inst_venue[i]]
    if not np.isfinite(half_life):
        return
    keep = 0.5 ** ((t_ns - last) / half_life)
    for s in range(2):  # both sides of the book recover alike
        for level in range(bars.depth_used_lots.shape[3]):
            used = bars.depth_used_lots[b, i, s, level]
            if used > 0:
                bars.depth_used_lots[b, i, s, level] = np.int64(np.floor(used * keep))


@kernel(inline=True)
def _traded_through(side, price, p):
    """Whether a path price ``p`` lies through a limit at ``price`` (below a buy, above a sell)."""
    return (side == c.BUY and p < price) or (side == c.SELL and p > price)


@kernel(inline=True)
def _toward(bars, b, i, j, side):
    """The interval ending at point ``j``: its extreme toward a limit of ``side`` (the minimum for a buy, the maximum for a sell).

    Kept in the bar's ``[low, high]``: trades happen there. Only a replayed bar's
    first interval reaches outside, where its path joins a gap's start (a quote
    mid, not a trade) to the range; a limit beyond the range does not fill there.
    """
    if side == c.BUY:
        return max(bars.path_low_ticks[b, i, j], bars.low_ticks[b, i])
    return min(bars.path_high_ticks[b, i, j], bars.high_ticks[b, i])


@kernel(inline=True)
def _reached(side, price, extreme):
    """The interval's extreme toward the limit (``extreme``) is at or through the limit's ``price``."""
    return extreme == price or _traded_through(side, price, extreme)


@kernel(inline=True)
def _point_volume_lots(bars, b, i, side, price, traded_lots, n, j):
    """Volume the interval ending at point ``j``, which traded ``traded_lots`` and reached ``price``
    (:func:`_reached`), offers a limit there.

    The share of the interval's time the continuous path spent at or through
    the price, in expectation given that it reached it
    (:func:`orderbook.market.path.share_at_or_through`, a touch's band counted half),
    rounded to whole lots. So the volume a limit meets does not depend on how many
    points the path has: a brief dip between two points offers little, an interval
    spent through the price nearly all of its volume.
    """
    var = interval_variance_ticks2(bars, b, i, n)
    share = share_at_or_through(bars.path_ticks[b, i, j - 1], bars.path_ticks[b, i, j], var, price, float(side))
    return np.int64(np.round(traded_lots * share))


@kernel
def make(cc, orders, lanes, bars, b, k, i, side, price, remaining, t0, after_ns, until_ns):
    """Maker fill of a resting limit from the path after ``after_ns`` up to ``until_ns``; (lots, ticks x lots, time).

    Walks the bar's path points strictly after ``after_ns`` (its arrival, the bar's
    start, or its turn behind the lane's earlier orders) and at or before
    ``until_ns`` (the last time it rests: before its expiry, up to its cancel's
    landing). At every point the queue ahead is thinned by cancellations; the
    volume a touch offers (what the lane's earlier limits left of it) first pays
    the queue ahead, then fills the order; an interval whose extreme toward the
    limit lies through the price (the continuous path traded through it, at the
    point or between points) clears the queue and its volume there (the share of
    the interval it spent at or through the price) fills the order, at most the
    lane's remaining participation. The fill is stamped at the point ending the
    interval where its turn came; the order's ``last_make_ns`` at the last point it
    filled. A window whose intervals
    only touch the price fills with ``touch_fill_prob``; ``fill_prob`` gates the
    bar: a gated order fills nothing, but the queue ahead of it moves all the same.
    """
    v = cc.inst_venue[i]
    n, step_ns = cc.path_points, cc.step_ns
    lo, hi, volume = bars.low_ticks[b, i], bars.high_ticks[b, i], bars.volume_lots[b, i]
    first = first_point_after(t0, step_ns, n, after_ns)
    last = first - 1
    through, touched = False, False
    for j in range(first, n + 1):
        if point_time_ns(t0, step_ns, n, j) > until_ns:
            break
        last = j
        extreme = _toward(bars, b, i, j, side)  # at least as far toward the limit as the point itself
        if extreme == price:
            touched = True
        elif _traded_through(side, price, extreme):
            through = True
    if last < first:
        return np.int64(0), np.int64(0), np.int64(0)
    seed, ep, step, oid = lanes.fault_seed[b], lanes.rng_episode[b], lanes.step[b], orders.order_id[b, k]
    may_fill = through or touched
    if may_fill and not through and rng.uniform(seed, ep, step, oid, rng.P_TOUCH_FILL) >= cc.touch_fill_prob[v]:
        may_fill = False
    if may_fill and cc.fill_prob[v] < 1.0 and rng.uniform(seed, ep, step, oid, rng.P_FILL_PROB) >= cc.fill_prob[v]:
        may_fill = False
    want = remaining
    if may_fill:
        want = min(remaining, np.int64(cc.participation[v] * volume) - bars.volume_used_lots[b, i])
    else:
        want = np.int64(0)
    keep = (1.0 - cc.queue_cancel_rate[v]) ** (1.0 / n)  # the queue ahead left after one interval's cancels
    ahead = float(orders.queue_ahead_lots[b, k])
    lots, turn_j, last_j = np.int64(0), np.int64(-1), np.int64(-1)
    per_interval, extra_lots = volume // n, volume % n  # the bar's volume split once (interval_lots)
    for j in range(first, last + 1):
        ahead *= keep
        extreme = _toward(bars, b, i, j, side)
        if _traded_through(side, price, extreme):
            ahead = 0.0  # traded through (at the point or inside its interval): the level is cleared, whatever its queue
        if ahead <= 0.0 and lots >= want:
            continue  # no queue left to pay and nothing left to fill: what the interval offers changes nothing
        if j <= 0 or not _reached(side, price, extreme):
            continue  # the interval never reached the price: it offers nothing
        traded = interval_lots(per_interval, extra_lots, j)
        if traded <= bars.point_used_lots[b, i, j]:
            continue  # the lane's earlier limits took all it traded: its share, at most 1, leaves nothing
        offered = _point_volume_lots(bars, b, i, side, price, traded, n, j) - bars.point_used_lots[b, i, j]
        if offered <= 0:
            continue
        passed = min(ahead, float(offered))
        ahead -= passed
        take = min(offered - np.int64(np.ceil(passed)), want - lots)
        if take <= 0:
            continue
        bars.point_used_lots[b, i, j] += take
        lots += take
        last_j = j
        if turn_j < 0:
            turn_j = j
    orders.queue_ahead_lots[b, k] = np.int64(np.ceil(ahead - 1e-9)) if ahead > 0 else np.int64(0)
    if lots <= 0:
        return np.int64(0), np.int64(0), np.int64(0)
    bars.volume_used_lots[b, i] += lots
    orders.last_make_ns[b, k] = point_time_ns(t0, step_ns, n, last_j)
    fill_px = min(price, hi) if side == c.BUY else max(price, lo)
    return lots, lots * fill_px, point_time_ns(t0, step_ns, n, turn_j)
