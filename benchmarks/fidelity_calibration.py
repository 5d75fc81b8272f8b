"""Calibration of the fill parameters against the replayed bars (issue 14): when does a resting limit fill?

For a resting buy (sell) limit at the touch and one and two ticks behind it, by size,
within 1, 5 and 20 bars, the table puts side by side:

- **data, through**: the share of decision bars whose next ``h`` bars trade through
  the price (a low below a buy's price, a high above a sell's): the level was
  cleared, a true market fills an order there whatever its queue;
- **data, volume**: the share whose next ``h`` bars trade at least the order's size
  *beyond* the price, each bar's volume spread evenly over its range (a bar from
  ``low`` to ``high`` trades ``volume x (price - low) / (high - low)`` below a buy's
  price): with no queue information in one-minute bars, the most a size could
  fill against prints past it;
- **sim, any / full**: the simulator's probability that the order (placed at the
  first step, GTC, faults off, zero latency, default fills) fills at all / whole
  within ``h`` bars.

Decision bars and quotes are those of the same lanes' windows, from the market log
(the book model's touch around each replayed bar), so both sides see the same
bars. Public APIs only, like ``benchmarks/fidelity.py``, which prints this table.
"""

from __future__ import annotations

import numpy as np
import polars as pl

import orderbook as ob
from benchmarks.fidelity_setup import Market, cum_fills_by_step, orders, put, quotes, start
from orderbook.spec import codes as c

SIZES_LOTS = (10, 100, 1_000)  # 0.001, 0.01, 0.1 BTC at a lot of 0.0001 BTC
HORIZONS = (1, 5, 20)
BEHIND = (0, 1, 2)


def data_frequencies(price: np.ndarray, low: np.ndarray, high: np.ndarray, volume: np.ndarray, side: int,
                     horizon: int, sizes: tuple[int, ...]) -> tuple[float, list[float], int]:
    """(through share, [share with volume beyond the price >= size, per size], decision bars) over ``(N, T)`` arrays.

    ``price[:, t]`` is the order's price at decision bar ``t``; the next ``horizon``
    bars decide. A bar that traded nothing (``volume == 0``) crosses no price.
    """
    n_bars = price.shape[1]
    through_hits, size_hits, count = 0, np.zeros(len(sizes), dtype=np.int64), 0
    span = np.maximum(high - low, 1).astype(np.float64)
    for t in range(n_bars - horizon):
        p = price[:, t : t + 1].astype(np.float64)
        lo, hi, vol, sp = (a[:, t + 1 : t + 1 + horizon] for a in (low, high, volume, span))
        traded = vol > 0
        past = (p - lo) if side == c.BUY else (hi - p)
        crossed = (past > 0) & traded
        beyond = np.where(crossed, vol * np.minimum(past / sp, 1.0), 0.0).sum(axis=1)
        through_hits += int(crossed.any(axis=1).sum())
        size_hits += np.array([(beyond >= q).sum() for q in sizes], dtype=np.int64)
        count += price.shape[0]
    return through_hits / count, list(size_hits / count), count


def calibration_table(m: Market, lanes_per_group: int, seed: int, sizes=SIZES_LOTS, horizons=HORIZONS, behind=BEHIND,
                      fills: ob.FillSpec | None = None) -> pl.DataFrame:
    """One row per (side, ticks behind the touch, size, horizon): data through / volume shares, simulator any / full
    (with the default fills, or ``fills``: how the parameters move the simulator's columns)."""
    cfg = m.config(fills=fills)
    inst = m.instrument(cfg)
    groups = [(s, k, q) for s in (c.BUY, c.SELL) for k in behind for q in sizes]
    n = lanes_per_group * len(groups)
    ex = start(cfg, n, seed)
    bid, ask = quotes(ex, inst)
    g_of = np.arange(n) // lanes_per_group
    s_of, k_of, q_of = (np.array([groups[g][j] for g in g_of]) for j in range(3))
    intents = orders(n, cfg.max_new_orders)
    put(intents, 0, inst, s_of, c.LIMIT, q_of, np.where(s_of == c.BUY, bid - k_of, ask + k_of))
    ex.step(intents)
    h_max = max(horizons)
    for _ in range(h_max - 1):
        ex.step()
    cum = cum_fills_by_step(ex.history.events_frame(), np.arange(n), h_max)
    mk = ex.history.market_frame().filter(pl.col("instrument") == inst).sort("lane", "step")
    col = {name: mk[name].to_numpy().reshape(n, h_max + 1) for name in ("bid_ticks", "ask_ticks", "low_ticks", "high_ticks", "volume_lots")}
    out = []
    for s in (c.BUY, c.SELL):
        for k in behind:
            price = col["bid_ticks"] - k if s == c.BUY else col["ask_ticks"] + k
            for h in horizons:
                through, by_size, n_dec = data_frequencies(price, col["low_ticks"], col["high_ticks"], col["volume_lots"], s, h, sizes)
                for q, vol_share in zip(sizes, by_size):
                    sel = (s_of == s) & (k_of == k) & (q_of == q)
                    out.append(dict(side="buy" if s == c.BUY else "sell", behind_ticks=k, size_btc=q * 1e-4, bars=h,
                                    data_through=through, data_volume=vol_share, sim_any=float((cum[sel, h] > 0).mean()),
                                    sim_full=float((cum[sel, h] >= q).mean()), orders=int(sel.sum()), decision_bars=n_dec))
    return pl.DataFrame(out)


def markdown(table: pl.DataFrame) -> str:
    cols = ["side", "behind", "size BTC", "bars", "data: through", "data: volume beyond >= size", "sim: any fill", "sim: full fill"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.iter_rows(named=True):
        lines.append(f"| {r['side']} | {r['behind_ticks']} | {r['size_btc']:g} | {r['bars']} | {r['data_through']:.3f} | "
                     f"{r['data_volume']:.3f} | {r['sim_any']:.3f} | {r['sim_full']:.3f} |")
    return "\n".join(lines)
