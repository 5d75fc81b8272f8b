"""Time orderbook.market.bars.load_bars on the three binance_us 1-minute BTC files.

Run from anywhere: ``python benchmarks/load_bars.py [--repeats N]``. The data is found
at ``<repo>/../shared/data/binance_us`` unless ORDERBOOK_SHARED names another shared
directory. Prints sources, bars per source, and median and min seconds per load
(each load reads, validates and aligns all sources from disk).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orderbook.market.bars import BarSource, load_bars  # noqa: E402

QUOTES = ("USD", "USDT", "USDC")


def shared_dir() -> Path:
    return Path(os.environ.get("ORDERBOOK_SHARED", REPO.parent / "shared"))


def sources() -> list[BarSource]:
    data = shared_dir() / "data" / "binance_us"
    files = [data / f"BTC{q}_1m_20230301_20230321.csv" for q in QUOTES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(
            f"expected the binance_us CSVs (set ORDERBOOK_SHARED to the shared directory), missing: {missing}"
        )
    return [BarSource("binance_us", f"BTC/{q}", f) for q, f in zip(QUOTES, files, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="number of timed loads")
    args = parser.parse_args()
    srcs = sources()
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        bars = load_bars(srcs)
        seconds.append(time.perf_counter() - start)
    n_time, n_src = bars.close.shape
    print(f"{'sources':>8} {'bars':>8} {'filled':>7} {'repeats':>8} {'median s':>9} {'min s':>7}")
    print(
        f"{n_src:>8} {n_time:>8} {int((~bars.present).sum()):>7} {args.repeats:>8} "
        f"{statistics.median(seconds):>9.4f} {min(seconds):>7.4f}"
    )


if __name__ == "__main__":
    main()
