"""Calibration of the fill parameters against the replayed bars (issue 14): when does a resting limit fill?

For a resting buy (sell) limit at the touch and one and two ticks behind it, by size,
within 1, 5 and 20 bars, the table puts side by side:

- **data, through**: the share of decision bars whose next ``h`` bars trade through
  the price (a low below a buy's price, a high above a sell's): the level was
  cleared, a true market fills an order there whatever its queue;
- **data, touch not through**: the share whose next ``h`` bars reach the price but
  never pass it (the lowest low equals a buy's price, the highest high a sell's):
  the only windows in which the order's place in its queue can decide whether it
  fills at all, so an upper bound of what front against back of the level can
  change in the fill probability (fact 6a of ``benchmarks/fidelity.py``);
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

:func:`score` is how far the simulator's columns sit from the data's (the number
``FillSpec``'s defaults were chosen by); ``python -m benchmarks.fidelity_calibration
[--lanes 128] [--participation 0.1,0.2,...]`` scores a grid of fill parameters on the replayed market.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import polars as pl

import orderbook as ob
from benchmarks.fidelity_setup import Market, cum_fills_by_step, rest_limits
from orderbook.spec import codes as c

SIZES_LOTS = (10, 100, 1_000)  # 0.001, 0.01, 0.1 BTC at a lot of 0.0001 BTC
HORIZONS = (1, 5, 20)
BEHIND = (0, 1, 2)


def data_frequencies(price: np.ndarray, low: np.ndarray, high: np.ndarray, volume: np.ndarray, side: int,
                     horizon: int, sizes: tuple[int, ...]) -> tuple[float, float, list[float], int]:
    """(through share, touch-not-through share, [share with volume beyond the price >= size, per size], decision bars)
    over ``(N, T)`` arrays.

    ``price[:, t]`` is the order's price at decision bar ``t``; the next ``horizon``
    bars decide. A bar that traded nothing (``volume == 0``) crosses no price and
    touches none. Touch not through: some bar reaches the price (a buy's low at it),
    none passes it.
    """
    n_bars = price.shape[1]
    through_hits, touch_only_hits, size_hits, count = 0, 0, np.zeros(len(sizes), dtype=np.int64), 0
    span = np.maximum(high - low, 1).astype(np.float64)
    for t in range(n_bars - horizon):
        p = price[:, t : t + 1].astype(np.float64)
        lo, hi, vol, sp = (a[:, t + 1 : t + 1 + horizon] for a in (low, high, volume, span))
        traded = vol > 0
        past = (p - lo) if side == c.BUY else (hi - p)
        crossed = (past > 0) & traded
        beyond = np.where(crossed, vol * np.minimum(past / sp, 1.0), 0.0).sum(axis=1)
        through_hits += int(crossed.any(axis=1).sum())
        touch_only_hits += int((((past == 0) & traded).any(axis=1) & ~crossed.any(axis=1)).sum())
        size_hits += np.array([(beyond >= q).sum() for q in sizes], dtype=np.int64)
        count += price.shape[0]
    return through_hits / count, touch_only_hits / count, list(size_hits / count), count


def calibration_table(m: Market, lanes_per_group: int, seed: int, sizes=SIZES_LOTS, horizons=HORIZONS, behind=BEHIND,
                      fills: ob.FillSpec | None = None) -> pl.DataFrame:
    """One row per (side, ticks behind the touch, size, horizon): data through / touch-not-through / volume shares,
    simulator any / full (with the default fills, or ``fills``: how the parameters move the simulator's columns)."""
    cfg = m.config(fills=fills)
    inst = m.instrument(cfg)
    groups = [(s, k, q) for s in (c.BUY, c.SELL) for k in behind for q in sizes]
    n = lanes_per_group * len(groups)
    g_of = np.arange(n) // lanes_per_group
    s_of, k_of, q_of = (np.array([groups[g][j] for g in g_of]) for j in range(3))
    h_max = max(horizons)
    ex, _ = rest_limits(cfg, inst, n, seed, h_max, s_of, q_of, k_of)
    cum = cum_fills_by_step(ex.history.events_frame(), np.arange(n), h_max)
    mk = ex.history.market_frame().filter(pl.col("instrument") == inst).sort("lane", "step")
    col = {name: mk[name].to_numpy().reshape(n, h_max + 1) for name in ("bid_ticks", "ask_ticks", "low_ticks", "high_ticks", "volume_lots")}
    out = []
    for s in (c.BUY, c.SELL):
        for k in behind:
            price = col["bid_ticks"] - k if s == c.BUY else col["ask_ticks"] + k
            for h in horizons:
                through, touch_only, by_size, n_dec = data_frequencies(price, col["low_ticks"], col["high_ticks"], col["volume_lots"], s, h, sizes)
                for q, vol_share in zip(sizes, by_size):
                    sel = (s_of == s) & (k_of == k) & (q_of == q)
                    out.append(dict(side="buy" if s == c.BUY else "sell", behind_ticks=k, size_btc=q * 1e-4, bars=h,
                                    data_through=through, data_touch_only=touch_only, data_volume=vol_share, sim_any=float((cum[sel, h] > 0).mean()),
                                    sim_full=float((cum[sel, h] >= q).mean()), orders=int(sel.sum()), decision_bars=n_dec))
    return pl.DataFrame(out)


def markdown(table: pl.DataFrame) -> str:
    cols = ["side", "behind", "size BTC", "bars", "data: through", "data: touch, not through", "data: volume beyond >= size",
            "sim: any fill", "sim: full fill"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.iter_rows(named=True):
        lines.append(f"| {r['side']} | {r['behind_ticks']} | {r['size_btc']:g} | {r['bars']} | {r['data_through']:.3f} | "
                     f"{r['data_touch_only']:.3f} | {r['data_volume']:.3f} | {r['sim_any']:.3f} | {r['sim_full']:.3f} |")
    return "\n".join(lines)


def score(table: pl.DataFrame) -> dict[str, float]:
    """How far the simulator's columns sit from the data's, over every cell of a calibration table (lower is closer).

    ``any``: the root mean square of ``sim_any - data_through``: a true market
    fills a resting order whenever its level is traded through (and may on a
    touch, which ``data_touch_only`` bounds), so its fill probability sits at the
    trade-through share, a little above. ``full``: the root mean square of
    ``sim_full - data_volume``: the share of windows whose prints past the price
    cover the size, the most a queue-less order could fill whole. ``total``: the
    root mean square over both columns' cells (each cell weighs the same).
    """
    d_any = (table["sim_any"] - table["data_through"]).to_numpy()
    d_full = (table["sim_full"] - table["data_volume"]).to_numpy()
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))  # noqa: E731
    return dict(any=rms(d_any), full=rms(d_full), total=rms(np.concatenate([d_any, d_full])),
                any_bias=float(d_any.mean()), full_bias=float(d_full.mean()))


GRID = dict(participation=(0.1, 0.2, 0.3, 0.5), queue_fraction=(0.5, 1.0), touch_fill_prob=(0.2,))


def grid(m: Market, lanes_per_group: int, seed: int, params: dict[str, tuple[float, ...]] = GRID, verbose: bool = False) -> pl.DataFrame:
    """One row per combination of ``params``' fill parameters (the rest at ``FillSpec``'s defaults): its :func:`score`."""
    names = list(params)
    out = []
    for values in itertools.product(*(params[k] for k in names)):
        kw = dict(zip(names, values))
        out.append(dict(**kw, **score(calibration_table(m, lanes_per_group, seed, fills=ob.FillSpec(**kw)))))
        if verbose:
            print(out[-1], flush=True)
    return pl.DataFrame(out)


def main() -> None:
    p = argparse.ArgumentParser(description="Score fill parameters against the replayed bars (issue 14).")
    p.add_argument("--lanes", type=int, default=128, help="orders per cell of the calibration table")
    p.add_argument("--seed", type=int, default=0, help="run seed: lane b gets seed x 2**32 + b (fidelity_setup.lane_seeds), "
                   "so different seeds share no lane")
    p.add_argument("--participation", default=",".join(map(str, GRID["participation"])))
    p.add_argument("--queue-fraction", default=",".join(map(str, GRID["queue_fraction"])))
    p.add_argument("--touch-fill-prob", default=",".join(map(str, GRID["touch_fill_prob"])))
    args = p.parse_args()
    from benchmarks.fidelity_setup import binance_us_market

    g = {k: tuple(float(x) for x in getattr(args, k).split(",")) for k in GRID}
    t0 = time.perf_counter()
    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=4):
        print(grid(binance_us_market(), args.lanes, args.seed, g, verbose=True))
    print(f"{args.lanes} orders per cell, seed {args.seed}, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
