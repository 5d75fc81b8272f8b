"""Fidelity: the stylised facts of a true market, measured on the simulator (issues 13 and 14).

    python benchmarks/fidelity.py [--lanes 4096] [--quick] [--market synthetic|binance_us|both] [--seed 0]
                                  [--ticks-behind 0,1,2] [--out table.md]

One table: fact, market, setting, the value measured on the simulator (with a 95%
interval), the target a true market gives (from the bars themselves, from the
market's own sigma or from a closed form: ``benchmarks/fidelity_targets.py``), the
tolerance, and whether it holds. Faults are off everywhere (``FaultSpec.none()``)
but in fact 7 (faults tied to the market, on the replay), latency is zero unless the
row says otherwise, fees are the instrument's.

Everything goes through public APIs only (``Exchange``, ``OrderIntents``, the
specs, the history frames and ``orderbook.analytics.queries``), so when the fill path
changes (the path inside the bar, queues, self-trade prevention) the same script
measures it: only the numbers change (issue 13's path inside the bar changed facts
1, 2 and added 8, the cancel race). What later code adds is a parameter here:
:func:`latency_spec` is the one place a row's latency becomes a spec (today a
constant per venue, arriving at ``latency_s`` into the bar).

Where the facts live, by concept: ``benchmarks/fidelity_fills.py`` (facts 2-5: when
and at what price an order fills), ``fidelity_liquidity.py`` (fact 6: queues and
shared liquidity), ``fidelity_latency.py`` (facts 1, 7 and 8: latency and faults),
``fidelity_volume.py`` (fact 9: volume clustering, synthetic against the data);
the markets, orders and lane seeds in ``fidelity_setup.py``, the targets in
``fidelity_targets.py``; this module runs them and prints the table.

Markets: ``synthetic`` is the default :class:`~orderbook.SyntheticMarket` (GBM,
8 bps per one-minute bar) on one venue ``sim`` with the default book and fills;
``binance_us`` replays the packaged Binance.US BTC/USD one-minute bars of March
2023 (random windows per lane) with the same book and fill defaults.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root holds the benchmarks package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import fidelity_calibration
from benchmarks.fidelity_fills import (
    TICKS_BEHIND,
    almgren_chriss,
    fill_probability,
    market_orders_rest,
    passive_taker_share,
)
from benchmarks.fidelity_latency import cancel_race, latency_vs_slippage, market_faults
from benchmarks.fidelity_liquidity import queue_position, self_trade, split_orders, volume_share
from benchmarks.fidelity_setup import SEED_MAX, Market, Row, binance_us_market, synthetic_market
from benchmarks.fidelity_volume import volume_clustering

LARGE_TICK_USD = "5"  # fact 6a: the synthetic market's one-interval sd is about $6 (8 bps of $30,000 over 16 intervals)


# ------------------------------------------------------------------ table
def measure(market: Market, lanes: int, seed: int, quick: bool, behind: tuple[int, ...] = TICKS_BEHIND) -> list[Row]:
    """Every fact on one market (Almgren-Chriss is measured once, with the synthetic market)."""
    sizes = (max(market.big_lots // 100, 1), market.big_lots) if quick else (max(market.big_lots // 100, 1), max(market.big_lots // 10, 1), market.big_lots)
    rows = latency_vs_slippage(market, lanes, seed)
    rows += passive_taker_share(market, lanes, seed)
    rows += fill_probability(market, lanes // (2 if quick else 1), seed, sizes, behind=behind)
    if market.name == "synthetic":
        rows += almgren_chriss(lanes, seed)
        rows += market_orders_rest(market, lanes, seed, quiet=True)
    rows += market_orders_rest(market, lanes, seed, quiet=False)
    rows += queue_position(market, lanes, seed)
    if market.name == "synthetic":  # where queues matter: a tick comparable to the price's move in one interval of the path
        rows += queue_position(synthetic_market(tick_size=LARGE_TICK_USD), lanes, seed, must_show=True)
    rows += split_orders(market, lanes, seed)
    rows += volume_share(market, lanes, seed)
    rows += self_trade(market, lanes, seed)
    rows += cancel_race(market, lanes, seed)
    if market.name == "binance_us":
        rows += market_faults(market, lanes, seed)
    if market.name == "synthetic":  # the replay's volume is the data's own
        rows += volume_clustering(market, lanes, seed)
    return rows


def markdown(rows: list[Row]) -> str:
    cols = ["fact", "market", "setting", "measured", "target", "tolerance", "holds"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[k]) for k in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lanes", type=int, default=None, help="lanes per setting (default 4096, 1024 with --quick)")
    p.add_argument("--quick", action="store_true", help="fewer lanes and sizes: a fast pass")
    p.add_argument("--market", choices=("synthetic", "binance_us", "both"), default="both")
    p.add_argument("--seed", type=int, default=0,
                   help=f"run seed, an int in [0, {SEED_MAX}]: lane b of every setting gets the seed seed x 2**32 + b, so runs of "
                        "different seeds share no lane (independent replications; seed 0 keeps the lanes 0, 1, ... it always had)")
    p.add_argument("--ticks-behind", default="0,1,2", help="fact 3: offsets of the resting buy behind the bid, in ticks (comma-separated)")
    p.add_argument("--out", default=None, help="write the table as Markdown to this file")
    args = p.parse_args()
    lanes = args.lanes or (1024 if args.quick else 4096)
    if not 0 <= args.seed <= SEED_MAX:
        p.error(f"--seed must be an int in [0, {SEED_MAX}], got {args.seed}")
    if lanes < 8:
        p.error(f"--lanes must be at least 8 (a standard error needs a sample), got {lanes}")
    try:
        behind = tuple(int(x) for x in args.ticks_behind.split(","))
    except ValueError:
        p.error(f"--ticks-behind must be comma-separated ints >= 0, got {args.ticks_behind!r}")
    if any(k < 0 for k in behind):
        p.error(f"--ticks-behind must be ints >= 0, got {args.ticks_behind!r}")
    t0 = time.perf_counter()
    markets = []
    if args.market in ("synthetic", "both"):
        markets.append(synthetic_market())
    if args.market in ("binance_us", "both"):
        markets.append(binance_us_market())
    rows, calibration = [], ""
    for m in markets:
        rows += measure(m, lanes, args.seed, args.quick, behind)
        if m.name == "binance_us":  # the calibration table reads the replayed bars
            cal = fidelity_calibration.calibration_table(m, lanes // (8 if args.quick else 4), args.seed)
            calibration = "Calibration (resting limits vs the replayed bars):\n\n" + fidelity_calibration.markdown(cal)
        print(f"{m.name}: done at {time.perf_counter() - t0:.0f} s", flush=True)
    table = markdown(rows)
    held = sum(r["holds"] == "yes" for r in rows)
    head = (f"`python -m benchmarks.fidelity --lanes {lanes}{' --quick' if args.quick else ''} --market {args.market} --seed {args.seed} --ticks-behind {args.ticks_behind}`, "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores; {held} of {sum(r['holds'] != 'n/a' for r in rows)} facts hold.")
    print(head)
    print(table)
    if calibration:
        print("\n" + calibration)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(head + "\n\n" + table + "\n" + ("\n" + calibration + "\n" if calibration else ""))


if __name__ == "__main__":
    main()
