"""Time in force and price protection: what an order may do in the step it arrives.

Each rule is decided in one place, at the order's arrival (its ack, in the bar it
lands in), by the small kernels here that :func:`~orderbook.engine.step.acknowledge`
and :func:`~orderbook.engine.matching.match` call:

- **post-only** (:func:`post_only_would_take`): a post-only limit that is marketable
  at its arrival quotes is rejected there (``REJECT``, ``POST_ONLY_WOULD_TAKE``); one
  that is not rests as a maker and never takes (``match`` skips its taker phase).
- **FOK**: the taker phase at arrival takes the whole order or nothing
  (:func:`~orderbook.engine.matching.takeable_lots` looks without consuming);
  nothing taken, the order is cancelled whole (``FOK_NOT_FILLABLE``).
- **IOC, FOK and market orders** (:func:`ends_at_arrival`): whatever the taker phase
  at arrival did not fill is cancelled at once (``TIF_CANCEL``, in the same step):
  ``PRICE_PROTECTION`` for a market order whose book still offered more beyond its
  band (:func:`remainder_reason`), ``IOC_REMAINDER`` otherwise (the book ran out, a
  limit IOC's own price stopped it, or it was not marketable). So no market order
  is live after its arrival step.
- **GTC, GTD and post-only** rest; they end by fill, cancel or expiry (step.py).

Price protection limits how far a market order walks, never the price it pays:
the order's price is its band (:func:`band_price_ticks`, the one definition the
core and the envs share), every lot it takes is priced with the impact models
unclipped, and the walk stops where the average price with impact would pass the
band (:func:`~orderbook.engine.matching.takeable_lots`). So no fill of a market order
is ever priced beyond its band, and the reservation at the band price covers the
worst it can pay, impact included (``docs/core.md``, "Price protection").

Invariants kept: every order that ends here ends through
:func:`~orderbook.engine.records.finish` (transition table, release of its whole
reservation, event row); nothing here allocates.
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.engine.book import crosses, walk
from orderbook.engine.records import finish
from orderbook.spec import codes as c

BUY_CEILING_TICKS = np.int64(2**62)  # a cap no book price reaches: "walk the whole book"


@kernel(inline=True)
def band_price_ticks(ref_bid_ticks, ref_ask_ticks, band_bps, min_price_ticks, max_price_ticks, side):
    """The price of a market order: ``band_bps`` beyond the far touch, rounded away from it to the
    tick and clamped into the instrument's price range. The one definition of the band: the core's
    submit, the envs' compiled kernels and, through :func:`band_prices_ticks`, their numpy code call it."""
    if side == c.BUY:
        return min(np.int64(np.ceil(min(ref_ask_ticks * (1.0 + band_bps * 1e-4), 4e18))), max_price_ticks)
    return max(np.int64(np.floor(ref_bid_ticks * (1.0 - band_bps * 1e-4))), min_price_ticks)


@kernel
def band_prices_ticks(ref_bid_ticks, ref_ask_ticks, band_bps, min_price_ticks, max_price_ticks, side, out):
    """``out[n] = band_price_ticks(...[n])`` over 1-d arrays of equal length (the envs' masks and sizing)."""
    for n in range(out.shape[0]):
        out[n] = band_price_ticks(ref_bid_ticks[n], ref_ask_ticks[n], band_bps[n], min_price_ticks[n], max_price_ticks[n], side[n])


@kernel(inline=True)
def ends_at_arrival(kind, tif):
    """Whether an order's unfilled part is cancelled at the end of its arrival step (IOC, FOK, market)."""
    return kind == c.MARKET or tif == c.TIF_IOC or tif == c.TIF_FOK


@kernel(inline=True)
def may_take(tif):
    """Whether an order may ever fill as a taker (all but post-only)."""
    return tif != c.TIF_POST_ONLY


@kernel
def post_only_would_take(orders, b, k, bid, ask):
    """True for a post-only limit that is marketable at its arrival quotes ``bid, ask`` (it is rejected there)."""
    if orders.tif[b, k] != c.TIF_POST_ONLY or orders.kind[b, k] != c.LIMIT:
        return False
    return crosses(orders.side[b, k], orders.price_ticks[b, k], bid, ask)


@kernel
def remainder_reason(cc, bars, orders, b, k, bid, ask):
    """Why the unfilled part of an order that ends at arrival is cancelled (after its taker phase)."""
    if orders.tif[b, k] == c.TIF_FOK:
        return c.R_FOK_NOT_FILLABLE
    if orders.kind[b, k] != c.MARKET:
        return c.R_IOC_REMAINDER
    side = orders.side[b, k]
    beyond = BUY_CEILING_TICKS if side == c.BUY else np.int64(0)
    more, _ = walk(cc, bars, b, orders.instrument[b, k], side, beyond, np.int64(1), bid, ask, False)
    return c.R_PRICE_PROTECTION if more > 0 else c.R_IOC_REMAINDER


@kernel
def cancel_at_arrival(ctx, b, k, t_ns, bars, bid, ask):
    """Cancel at once what an IOC, FOK or market order did not fill in its arrival step (quotes ``bid, ask``)."""
    reason = remainder_reason(ctx.cc, bars, ctx.orders, b, k, bid, ask)
    finish(ctx, b, k, t_ns, c.EV_TIF_CANCEL, reason)
