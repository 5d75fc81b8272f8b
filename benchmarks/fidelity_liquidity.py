"""Fidelity facts of queues and shared liquidity (fact 6): the place in the queue (6a), liquidity consumed
once by split orders (6b) and within a bar's volume (6c), and self-trade prevention (6d).

Rows of ``benchmarks/fidelity.py``'s table (see its docstring for the table's columns and
the markets); public APIs only, through :mod:`benchmarks.fidelity_setup`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

import orderbook as ob
from benchmarks.fidelity_setup import (
    Market,
    Row,
    ci,
    cum_fills_by_step,
    fills_by_order,
    orders,
    put,
    quotes,
    rest_buy_at_bid,
    row,
    start,
)
from benchmarks.fidelity_targets import cross_frequency, mean_se, share_se
from orderbook.spec import codes as c


def queue_position(m: Market, n_lanes: int, seed: int, horizon: int = 5, must_show: bool = False) -> list[Row]:
    """Fact 6a. A buy limit at the bid at the front of its level (queue fraction 0) vs the back (1), same seeds.

    A trade through the price clears the level and fills front and back alike, so
    the place in the queue decides whether the order fills at all only in windows
    whose price reaches the order's price and never passes it; elsewhere it
    changes how much fills and when. Measured: P(any fill within ``horizon``
    bars), front minus back, with its 95% interval; beside it the share of the
    order filled after one bar and the mean bar of the first fill (``horizon + 1``
    when none), front vs back. Target: ``[0, touch not through]``, the share of the
    same lanes' windows (the market log alone) whose next ``horizon`` bars reach
    the bid and never pass it: in any real queue the front never fills less than
    the back, and it can fill when the back does not only in those windows (what
    one-minute bars can say about queues at all). Holds when the difference's 95%
    interval meets that range. With ``must_show`` (a large-tick market: the tick
    comparable to the price's move in one interval of the path, as on assets where
    queues matter) a second row: the share of the order filled after one bar, front
    minus back, must be above 0 beyond its 95% interval (the front fills more).
    """
    cum, mk = {}, None
    q = max(m.big_lots // 10, 1)
    for qf in (0.0, 1.0):
        cfg = m.config(fills=ob.FillSpec(queue_fraction=qf))
        ex = rest_buy_at_bid(m, cfg, n_lanes, seed, horizon)
        cum[qf] = cum_fills_by_step(ex.history.events_frame(), np.arange(n_lanes), horizon)
        mk = ex.history.market_frame().filter(pl.col("instrument") == m.instrument(cfg)).sort("lane", "step")
    bid = mk["bid_ticks"].to_numpy().reshape(n_lanes, horizon + 1).astype(np.float64)
    low = np.where(mk["volume_lots"].to_numpy() > 0, mk["low_ticks"].to_numpy(), np.inf).reshape(n_lanes, horizon + 1)
    through, _ = cross_frequency(bid, low, horizon, strict=True)
    touch, _ = cross_frequency(bid, low, horizon, strict=False)
    bound = touch - through
    filled = {qf: x[:, horizon] > 0 for qf, x in cum.items()}
    share_1 = {qf: np.minimum(x[:, 1], q) / q for qf, x in cum.items()}
    first = {qf: np.where(x[:, 1:] > 0, np.arange(1, horizon + 1), horizon + 1).min(axis=1).astype(float) for qf, x in cum.items()}
    diff, se = mean_se(filled[0.0].astype(float) - filled[1.0].astype(float))
    d_share, se_share = mean_se(share_1[0.0] - share_1[1.0])
    d_first, se_first = mean_se(first[1.0] - first[0.0])
    setting = (f"bid, {q * 1e-4:g} BTC, {horizon} bars: P(fill) {filled[0.0].mean():.3f} vs {filled[1.0].mean():.3f}; "
               f"first fill bar {first[0.0].mean():.2f} vs {first[1.0].mean():.2f} (front earlier by {ci(d_first, se_first, 3)})")
    rows = [row("6a queue: P(fill) front minus back", m.name, setting, ci(diff, se, 3),
                f"[0, {bound:.3f}] (touch, not through: {touch:.3f} - {through:.3f})", "95% interval meets it",
                bool(diff + 1.96 * se >= 0 and diff - 1.96 * se <= bound))]
    if must_show:
        rows.append(row("6a queue: filled after 1 bar, front minus back", m.name,
                        f"bid, {q * 1e-4:g} BTC: share of the order filled {share_1[0.0].mean():.3f} vs {share_1[1.0].mean():.3f}",
                        ci(d_share, se_share, 3), "> 0", "95% interval above 0", bool(d_share - 1.96 * se_share > 0)))
    return rows


def split_orders(m: Market, n_lanes: int, seed: int) -> list[Row]:
    """Fact 6b. Participation 1.0: two half-size buys at the bid vs one full-size buy, same seeds, first bar.

    Liquidity is consumed once: the halves share the volume traded at their price
    and can never outfill the whole (target: share of lanes 0).
    """
    size = 2 * m.big_lots
    fills = ob.FillSpec(participation=1.0)
    filled = []
    for halves in (False, True):
        cfg = m.config(fills=fills)
        inst = m.instrument(cfg)
        ex = start(cfg, n_lanes, seed)
        bid, _ = quotes(ex, inst)
        intents = orders(n_lanes, cfg.max_new_orders)
        put(intents, 0, inst, c.BUY, c.LIMIT, size // 2 if halves else size, bid)
        if halves:
            put(intents, 1, inst, c.BUY, c.LIMIT, size // 2, bid)
        ex.step(intents)
        filled.append(cum_fills_by_step(ex.history.events_frame(), np.arange(n_lanes), 1)[:, 1])
    excess = filled[1] - filled[0]
    share, se = share_se(int((excess > 0).sum()), n_lanes)
    return [row("6b split: halves outfill the whole", m.name, f"2 x {size // 2 * 1e-4:g} vs {size * 1e-4:g} BTC at the bid, part. 1.0; max excess {excess.max() * 1e-4:g} BTC",
                ci(share, se, 3), "0", "0 exactly", int((excess > 0).sum()) == 0)]


def volume_share(m: Market, n_lanes: int, seed: int) -> list[Row]:
    """Fact 6c. A lane's fills in its first bar against the bar's volume.

    (i) participation 1.0, one buy limit at the bid of twice a typical bar: a lane
    never fills more than the bar traded (share of lanes above: target 0).
    (ii) defaults (participation 0.3): a market buy and a buy limit at the bid, each
    a typical bar: the lane's maker fills stay within participation x volume
    (target 0). The market order's fills are left out: a taker takes the displayed
    depth it walks (``depth_fractions`` of the volume, depleted for the rest of the
    bar), which participation does not bound.
    """
    rows = []
    for label, fills, market_too, cap in (("part. 1.0, limit 2x bar", ob.FillSpec(participation=1.0), False, 1.0),
                                          ("defaults, market + limit", ob.FillSpec(), True, ob.FillSpec().participation)):
        cfg = m.config(fills=fills)
        inst = m.instrument(cfg)
        ex = start(cfg, n_lanes, seed)
        bid, _ = quotes(ex, inst)
        intents = orders(n_lanes, cfg.max_new_orders)
        put(intents, 0, inst, c.BUY, c.LIMIT, (1 if market_too else 2) * m.big_lots, bid)
        if market_too:
            put(intents, 1, inst, c.BUY, c.MARKET, m.big_lots, tif=c.TIF_GTD)
        ex.step(intents)
        ev = ex.history.events_frame()
        if market_too:  # the market order takes displayed depth, not the bar's traded volume: the cap binds the maker fills
            ev = ev.filter(pl.col("liquidity").cast(pl.Utf8) != "TAKER")
        lots = cum_fills_by_step(ev, np.arange(n_lanes), 1)[:, 1]
        vol = ex.history.market_frame().filter((pl.col("step") == 1) & (pl.col("instrument") == inst)).sort("lane")["volume_lots"].to_numpy()
        traded = vol > 0
        ratio = lots[traded] / vol[traded]
        over = int((ratio > cap + 1e-12).sum())
        share, se = share_se(over, int(traded.sum()))
        rows.append(row("6c lane fills / bar volume", m.name, f"{label}: share above {cap:g} x volume; max ratio {ratio.max():.2f}, mean {ratio.mean():.2f}",
                        ci(share, se, 3), "0", "0 exactly", over == 0))
    return rows


def self_trade(m: Market, n_lanes: int, seed: int) -> list[Row]:
    """Fact 6d. A buy and a sell limit of one lane at one price inside the spread: lanes where both fill in the first bar.

    Under self-trade prevention (what venues offer) the two never trade each
    other, and one bar's prints cannot fill both sides at one price against
    others in a model without a path: target 0. The venue's default mode
    (``expire_taker``, :mod:`orderbook.engine.stp`) cancels the sell, which
    arrives second, at its ack (issue 14: 0.75 of replay lanes before).
    """
    cfg = m.config()
    inst = m.instrument(cfg)
    ex = start(cfg, n_lanes, seed)
    bid, ask = quotes(ex, inst)
    inside = ask - bid >= 2
    price = (bid + ask) // 2
    intents = orders(n_lanes, cfg.max_new_orders)
    q = max(m.big_lots // 100, 1)
    put(intents, 0, inst, c.BUY, c.LIMIT, q, price, lanes=inside)
    put(intents, 1, inst, c.SELL, c.LIMIT, q, price, lanes=inside)
    ex.step(intents)
    f = fills_by_order(ex.history.events_frame()).filter(pl.col("first_fill_step") == 1)
    both = f.group_by("lane").agg(pl.col("sgn").n_unique().alias("sides")).filter(pl.col("sides") == 2).height
    share, se = share_se(both, int(inside.sum()))
    return [row("6d self-trade: buy and sell both fill", m.name, f"limits at the mid, {q * 1e-4:g} BTC, first bar",
                ci(share, se, 3), "0", "0 exactly", both == 0)]
