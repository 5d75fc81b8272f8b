"""Fidelity facts of when and at what price an order fills: a passive limit never fills as taker (fact 2),
the probability a resting limit fills against the bars' own (fact 3), Almgren-Chriss impact (fact 4),
market orders are immediate-or-cancel (fact 5).

Rows of ``benchmarks/fidelity.py``'s table (see its docstring for the table's columns and
the markets); public APIs only, through :mod:`benchmarks.fidelity_setup`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from benchmarks.fidelity_setup import (
    AC_EPSILON,
    AC_ETA,
    AC_GAMMA,
    AC_N,
    AC_TAU_S,
    AC_X_BTC,
    TOL,
    Market,
    Row,
    ac_config,
    ci,
    cum_fills_by_step,
    fills_by_order,
    orders,
    put,
    quotes,
    rest_buy_at_bid,
    rest_limits,
    row,
    start,
)
from benchmarks.fidelity_targets import ac_twap_shortfall, mean_se, share_se, wilson_interval
from orderbook.analytics import queries
from orderbook.spec import codes as c

HORIZONS = (1, 5, 20)  # fact 3: bars a resting limit is given
TICKS_BEHIND = (0, 1, 2)  # fact 3: offsets of the resting buy behind the bid, in ticks


def passive_taker_share(m: Market, n_lanes: int, seed: int, n_steps: int = 10) -> list[Row]:
    """Fact 2. Share of the filled quantity of a buy limit resting at the bid (zero latency) that executed as taker.

    A limit at the bid is not marketable when it arrives at the quotes it was
    priced on, so in a true market every fill of it is a maker fill: target 0.
    """
    ex = rest_buy_at_bid(m, m.config(), n_lanes, seed, n_steps)
    f = fills_by_order(ex.history.events_frame())
    total, taker = int(f["lots"].sum()), int(f["taker_lots"].sum())
    lane_share = (f["taker_lots"] / f["lots"]).to_numpy()
    share, se = (taker / total if total else float("nan")), mean_se(lane_share)[1]
    return [row("2 passive fills: taker share of filled qty", m.name, f"buy limit at the bid, {n_steps} bars, {len(f)} filled orders",
                ci(share, se, 3), "0", "0 exactly", total > 0 and taker == 0)]


def own_bars_cross(price_ticks: np.ndarray, low_ticks: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per lane: do its own bars ``1 .. horizon`` after the decision bar 0 trade through / touch its buy price?

    ``price_ticks`` is ``(N,)`` (the buy limit placed at bar 0), ``low_ticks`` ``(N, T)``
    (each bar's low, ``inf`` for a bar that traded nothing: it crosses no price). Returns
    ``(through, touch)``, boolean ``(N,)``: the lowest low of those bars is below the price
    (the level cleared: a true market fills the buy whatever its queue) or at most the price
    (the most it could ever fill). Only the bars are read, never the decision bar itself.
    """
    price, low = np.asarray(price_ticks, dtype=np.float64), np.asarray(low_ticks, dtype=np.float64)
    if low.ndim != 2 or price.shape != low.shape[:1]:
        raise ValueError(f"price_ticks must be (N,) and low_ticks (N, T), got {price.shape} and {low.shape}")
    if not 1 <= horizon < low.shape[1]:
        raise ValueError(f"horizon must be in [1, {low.shape[1] - 1}] for {low.shape[1]} bars, got {horizon}")
    lowest = low[:, 1:1 + horizon].min(axis=1)
    return lowest < price, lowest <= price


def resting_buys(m: Market, n_lanes: int, seed: int, sizes: tuple[int, ...], horizons=HORIZONS, behind=TICKS_BEHIND) -> pl.DataFrame:
    """Fact 3's lanes: ``n_lanes`` per (offset, size) group, each placing one GTC buy limit ``ticks_behind`` under the
    bid it sees at the first step, then resting ``max(horizons)`` bars.

    One row per lane and horizon ``h``: ``lane``, ``ticks_behind``, ``lots``, ``horizon``, ``filled_lots`` (by the
    end of bar ``h``) and ``through``/``touch`` (:func:`own_bars_cross`: that lane's own bars ``1 .. h``, the bars
    its order rested through, against its price). A fill and its target are read on the same lane.
    """
    cfg = m.config()
    inst = m.instrument(cfg)
    groups = [(k, q) for k in behind for q in sizes]
    n = n_lanes * len(groups)
    g_of = np.arange(n) // n_lanes
    k_of = np.array([groups[g][0] for g in g_of])
    q_of = np.array([groups[g][1] for g in g_of])
    h_max = max(horizons)
    ex, price = rest_limits(cfg, inst, n, seed, h_max, c.BUY, q_of, k_of)
    cum = cum_fills_by_step(ex.history.events_frame(), np.arange(n), h_max)
    mk = ex.history.market_frame().filter(pl.col("instrument") == inst).sort("lane", "step")
    low = np.where(mk["volume_lots"].to_numpy() > 0, mk["low_ticks"].to_numpy(), np.inf).reshape(n, h_max + 1)
    frames = []
    for h in horizons:
        through, touch = own_bars_cross(price, low, h)
        frames.append(pl.DataFrame({"lane": np.arange(n), "ticks_behind": k_of, "lots": q_of, "horizon": np.full(n, h),
                                    "filled_lots": cum[:, h], "through": through, "touch": touch}))
    return pl.concat(frames)


def fill_probability(m: Market, n_lanes: int, seed: int, sizes: tuple[int, ...], horizons=HORIZONS, behind=TICKS_BEHIND) -> list[Row]:
    """Fact 3. Probability that a buy limit at the bid, one or two ticks behind, fills (any part) within h bars, by size.

    Target: the share of the same group's lanes whose own bars (the ``h`` bars after the
    order was placed, from the market log alone) trade through the order's price (the level
    cleared: a true market fills it whatever its queue) and touch it (the most it could ever
    fill). Holds when the simulator's probability lies in ``[(1 - 30%) x trade-through, touch]``
    (its 95% Wilson interval meets it). Each (offset, size) group of lanes places one GTC
    order at the first step (:func:`resting_buys`). The comparison is paired: fills and
    target come from the same bars, so the group's sample of bars is not a source of misses
    (against every decision bar of every lane, a 512-lane group's share could fall outside
    by sampling alone).
    """
    lanes = resting_buys(m, n_lanes, seed, sizes, horizons, behind)
    rows = []
    for h in horizons:
        for k in behind:
            for q in sizes:
                g = lanes.filter((pl.col("horizon") == h) & (pl.col("ticks_behind") == k) & (pl.col("lots") == q))
                filled = g["filled_lots"].to_numpy()
                hits, count = int((filled > 0).sum()), g.height
                through, touch = float(g["through"].mean()), float(g["touch"].mean())
                lo, hi = wilson_interval(hits, count)
                full = float((filled >= q).mean())
                holds = lo <= touch and hi >= (1 - TOL) * through
                rows.append(row("3 fill prob. of a resting buy", m.name, f"bid-{k} ticks, {q * 1e-4:g} BTC, {h} bars (full fill {full:.2f})",
                                f"{hits / count:.3f} [{lo:.3f}, {hi:.3f}]", f"through {through:.3f}, touch {touch:.3f} ({count} bars)", "[0.7 x through, touch]", holds))
    return rows


def almgren_chriss(n_lanes: int, seed: int) -> list[Row]:
    """Fact 4. Mean implementation shortfall of a TWAP buy under linear impact vs the closed form.

    With the default protection band (50 bps) and a wide one (5,000 bps), at the
    core test's ``eta`` (a 1.7 bps temporary shift per child: the band never binds)
    and at 100 x that ``eta`` (167 bps per child: past the default band). A true
    market never clips impact: the band may stop a walk, never move its price. Where
    every child fills whole, the mean shortfall must match
    :func:`~benchmarks.fidelity_targets.ac_twap_shortfall` (within 4 standard errors,
    as the core's test). Where the band binds (children fill in part), the closed
    form does not apply; the row checks instead that no fill is priced beyond the
    band (impact included) and that every child's unfilled part ended CANCELLED
    with ``PRICE_PROTECTION`` in its own step. Synthetic ABM only: the closed form
    needs its arithmetic price.
    """
    lots = int(AC_X_BTC / AC_N / 0.0001)
    rows = []
    for eta, band in ((AC_ETA, 50.0), (AC_ETA, 5_000.0), (100 * AC_ETA, 50.0), (100 * AC_ETA, 5_000.0)):
        target = ac_twap_shortfall(AC_X_BTC, AC_N, AC_TAU_S, AC_GAMMA, eta, AC_EPSILON)
        cfg = ac_config(band, eta)
        ex = start(cfg, n_lanes, seed)
        bid, ask = quotes(ex, 0)
        s0 = (bid + ask) / 2 * 0.01
        intents = orders(n_lanes, cfg.max_new_orders)
        put(intents, 0, 0, c.BUY, c.MARKET, lots, tif=c.TIF_GTD)
        for _ in range(AC_N):
            ex.step(intents)
        ev = ex.history.events_frame()
        f = ev.filter(pl.col("event") == "FILL")
        paid = f.group_by("lane").agg((pl.col("fill_notional_atoms").sum() / 1e6).alias("paid"), pl.col("fill_lots").sum().alias("lots")).sort("lane")
        done = paid["lots"].to_numpy() / (lots * AC_N)
        setting = f"eta {eta:g}, band {band:g} bps, filled {done.mean():.3f} of 10 BTC"
        if done.min() == 1.0:
            shortfall = paid["paid"].to_numpy() - paid["lots"].to_numpy() * 1e-4 * s0[paid["lane"].to_numpy()]
            mean, se = mean_se(shortfall)
            rows.append(row("4 Almgren-Chriss TWAP shortfall (USD)", "synthetic abm", f"{setting} ({(mean / target - 1) * 100:+.0f}%)",
                            ci(mean, se), f"{target:.2f} (closed form)", "4 se", abs(mean - target) < 4 * se))
            continue
        beyond = int((f["fill_price"] > f["price"] * (1 + 1e-12)).sum())  # a buy's price is its band
        last = ev.group_by("lane", "order_id").agg(pl.col("event").last(), pl.col("reason").last(), pl.col("step").first().alias("sent"), pl.col("step").last())
        short = last.filter(pl.col("event") != "FILL")
        protected = short.filter((pl.col("event") == "TIF_CANCEL") & (pl.col("reason") == "PRICE_PROTECTION") & (pl.col("step") == pl.col("sent"))).height
        share, se = share_se(protected, short.height)
        rows.append(row("4 Almgren-Chriss: the band binds", "synthetic abm",
                        f"{setting}; {beyond} fills beyond the band; closed form {target:.2f} applies to whole fills only",
                        ci(share, se, 3) + " cancelled for protection in their step", "1, no fill beyond the band", "exactly",
                        beyond == 0 and protected == short.height))
    return rows


def market_orders_rest(m: Market, n_lanes: int, seed: int, quiet: bool) -> list[Row]:
    """Fact 5. Share of market orders still live after their arrival step.

    A real venue's market order is immediate-or-cancel: it fills against the book
    or its remainder is cancelled at once, so none is live after the step it
    arrives in (target 0), also on quiet bars. ``quiet`` (synthetic) makes every
    bar zero-volume and the order small; otherwise the order is a typical bar's
    volume, so the quiet minutes leave it short of displayed depth.
    """
    cfg = m.config(zero_volume_prob=1.0) if quiet else m.config()
    inst = m.instrument(cfg)
    ex = start(cfg, n_lanes, seed)
    intents = orders(n_lanes, cfg.max_new_orders)
    put(intents, 0, inst, c.BUY, c.MARKET, m.big_lots if not quiet else max(m.big_lots // 100, 1), tif=c.TIF_GTD)
    ex.step(intents)
    ev = ex.history.events_frame()
    sent = ev.filter(pl.col("event") != "REJECT").select("lane", "order_id").n_unique() if len(ev) else 0
    live = queries.open_orders(ev)
    vol = ex.history.market_frame().filter((pl.col("step") == 1) & (pl.col("instrument") == inst)).select("lane", "volume_lots")
    live_quiet = live.join(vol, on="lane").filter(pl.col("volume_lots") == 0).height
    n_quiet = vol.filter(pl.col("volume_lots") == 0).height
    share, se = share_se(live.height, sent)
    setting = "every bar zero-volume" if quiet else f"buy {m.big_lots * 1e-4:g} BTC (median bar volume)"
    return [row("5 market orders live after arrival step", m.name, f"{setting}; {live_quiet} of {n_quiet} on zero-volume bars",
                ci(share, se, 3), "0", "0 exactly", live.height == 0)]
