"""The book model: prices and depth of a bar, the walk of a taker, the queue of a maker.

One model for synthetic and replayed bars (see :class:`~orderbook.spec.specs.BookSpec`):
the touch is ``spread`` ticks wide around the price of the bar's path where an
order arrives (:mod:`orderbook.market.path`; :func:`arrival_quotes`), level ``l`` is
``l x level_step`` ticks behind it with ``depth_fractions[l] x book volume`` lots,
and within a bar every price is clamped into ``[low, high]``: nothing prints
outside the bar's range. One exception: a replayed bar's path starts at the
decision's mid, which a gap leaves outside the range; there the quotes are the
decision's (unclamped), so an order arriving then meets the quotes it was priced
on, and a walk prices its levels in the range widened to them (the levels past it
at its edge, as everywhere).

Quiet bars. The book volume is the bar's volume, or, on a bar without trades, the
lane's running typical volume of the episode (:func:`remember_volume`: the first
traded bar's volume, then an average over the last ``TYPICAL_VOLUME_BARS`` traded
bars, weight 1/8 each step; 0 until a bar of the episode traded). So a quiet bar
still shows a book and takers fill against it; makers fill only against trades
(:func:`orderbook.engine.matching._make` reads the bar's own volume).

Depth taken by one order is gone for the lane's later orders on the same side in the
same step (``depth_used_lots``, kept per side: a buy takes the asks, a sell the bids, so a
sell after a buy meets the bids whole), coming back with the venue's resilience half-life
(:func:`orderbook.engine.queues.replenish`); limit fills share
``participation x volume`` per lane and instrument (``volume_used_lots``) and
each path point's volume once (``point_used_lots``, :mod:`orderbook.engine.queues`).
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.market.path import price_at_ns
from orderbook.spec import codes as c

TYPICAL_VOLUME_BARS = 8  # the running typical volume weighs a new traded bar 1/8


@kernel(inline=True)
def spread_ticks(cc, v, price_ticks):
    return max(cc.min_spread_ticks[v], np.int64(np.ceil(price_ticks * cc.spread_bps[v] * 1e-4)))


@kernel(inline=True)
def quotes_around(cc, v, center_ticks):
    """(bid, ask) in ticks around ``center_ticks`` for venue ``v``."""
    s = spread_ticks(cc, v, center_ticks)
    bid = max(center_ticks - s // 2, 1)
    return bid, bid + s


@kernel(inline=True)
def level_step_ticks(cc, v, price_ticks):
    return max(np.int64(1), np.int64(np.round(price_ticks * cc.level_step_bps[v] * 1e-4)))


@kernel
def quotes_at(cc, bars, b, i, price_ticks):
    """(bid, ask) around ``price_ticks`` (a price of the bar's path), clamped into the bar's range.

    The path lies in ``[low, high]`` but where a replayed bar starts off its range
    (a gap from the decision's mid, :func:`orderbook.market.path.bridge_through_extremes`):
    there the quotes are the ones around it unclamped, the decision's own, not
    quotes pushed inside a range the market has not reached yet.
    """
    v = cc.inst_venue[i]
    bid, ask = quotes_around(cc, v, price_ticks)
    lo, hi = bars.low_ticks[b, i], bars.high_ticks[b, i]
    if price_ticks < lo or price_ticks > hi:
        return bid, ask
    return min(max(bid, lo), hi), min(max(ask, lo), hi)


@kernel
def arrival_quotes(cc, bars, b, i, t0, t_ns, key):
    """(bid, ask) where the bar's path is at ``t_ns`` (``key``: the lane's market step key)."""
    price = price_at_ns(bars, b, i, cc.path_points, t0, cc.step_ns, t_ns, key)
    return quotes_at(cc, bars, b, i, price)


@kernel(inline=True)
def level_depth_lots(cc, v, volume_lots, level):
    return np.int64(cc.depth_fractions[v, level] * volume_lots)


@kernel
def remember_volume(bars, b):
    """Fold this bar's volume into lane ``b``'s running typical volume (bars with trades only)."""
    for i in range(bars.volume_lots.shape[1]):
        volume = bars.volume_lots[b, i]
        if volume <= 0:
            continue
        typical = bars.typical_volume_lots[b, i]
        if typical <= 0.0:
            bars.typical_volume_lots[b, i] = float(volume)
        else:
            bars.typical_volume_lots[b, i] = typical + (volume - typical) / TYPICAL_VOLUME_BARS


@kernel(inline=True)
def book_volume_lots(bars, b, i):
    """The volume the book's depth is drawn from: the bar's, or the typical one on a bar without trades."""
    volume = bars.volume_lots[b, i]
    if volume > 0:
        return volume
    return np.int64(bars.typical_volume_lots[b, i])


@kernel(inline=True)
def side_of_depth(side):
    """Which of ``depth_used_lots``' two sides a taker of ``side`` consumes: 0 the asks (a buy), 1 the bids (a sell)."""
    return 0 if side == c.BUY else 1


@kernel
def walk(cc, bars, b, i, side, cap_ticks, want_lots, bid, ask, consume=True):
    """Take up to ``want_lots`` from the book around the quotes ``bid, ask`` at prices no worse than ``cap_ticks``.

    The quotes are the path's when the order arrives (:func:`arrival_quotes`).
    Returns ``(lots, price_x_lots)``: lots taken and the sum of level price x lots
    (ticks x lots). Consumes the lane's depth for this step, unless ``consume`` is
    False (a look at what the walk would give, for price protection and FOK).
    """
    v = cc.inst_venue[i]
    volume = book_volume_lots(bars, b, i)
    if volume <= 0 or want_lots <= 0:
        return np.int64(0), np.int64(0)
    lo, hi = min(bars.low_ticks[b, i], bid), max(bars.high_ticks[b, i], ask)  # the range, widened to a gap's quotes
    step = level_step_ticks(cc, v, bars.open_ticks[b, i])
    taken = np.int64(0)
    px_lots = np.int64(0)
    s = side_of_depth(side)
    for level in range(cc.depth_fractions.shape[1]):
        if side == c.BUY:
            px = min(ask + level * step, hi)
            if px > cap_ticks:
                break
        else:
            px = max(bid - level * step, lo, 1)
            if px < cap_ticks:
                break
        avail = level_depth_lots(cc, v, volume, level) - bars.depth_used_lots[b, i, s, level]
        if avail <= 0:
            continue
        take = min(avail, want_lots - taken)
        if consume:
            bars.depth_used_lots[b, i, s, level] += take
        taken += take
        px_lots += take * px
        if taken == want_lots:
            break
    return taken, px_lots


@kernel
def initial_queue_lots(cc, bars, b, i, side, price_ticks, queue_fraction, bid, ask):
    """Volume ahead of a limit order joining the book at ``price_ticks`` when the quotes are ``bid, ask`` (its arrival).

    Inside the spread nothing is ahead; at or behind the touch, ``queue_fraction``
    of the depth the book displays at equal or better prices (1: the back of the
    level). :func:`orderbook.engine.queues.make` thins and consumes it along the path.
    """
    v = cc.inst_venue[i]
    touch = bid if side == c.BUY else ask
    if (side == c.BUY and price_ticks > touch) or (side == c.SELL and price_ticks < touch):
        return np.int64(0)
    step = level_step_ticks(cc, v, bars.open_ticks[b, i])
    ahead = 0.0
    for level in range(cc.depth_fractions.shape[1]):
        px = touch - level * step if side == c.BUY else touch + level * step
        if (side == c.BUY and px < price_ticks) or (side == c.SELL and px > price_ticks):
            break
        ahead += cc.depth_fractions[v, level] * book_volume_lots(bars, b, i)
    return np.int64(queue_fraction * ahead)


@kernel(inline=True)
def crosses(side, price_ticks, bid, ask):
    """True if a limit at ``price_ticks`` is marketable against the quotes ``bid, ask``."""
    return price_ticks >= ask if side == c.BUY else price_ticks <= bid
