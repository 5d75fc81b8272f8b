"""Soak: resident memory over a long run with episodes flushed to Parquet (issue 7, target 5).

    python benchmarks/soak.py --lanes 1024 --steps 20000 --flush-every 500

Steps the core (default config, 64 slots, all faults on, history recording) with
the demo's baseline orders, resets every lane each ``--episode`` steps, and every
``--flush-every`` steps writes the history to an EpisodeStore in a temporary
folder and clears it. Prints resident memory (RSS from /proc/self/statm) at
regular points and the growth after warm-up: flat memory means the history's
preallocated blocks are reused and nothing else accumulates. RSS is also read just
before and just after every flush (the top and bottom of the sawtooth); the summary
compares the first and last tenth of those after warm-up and fits a trend.

Polars allocates through jemalloc, which keeps freed pages for ~10 s by default:
the frames built at each flush then leave up to ~1 GiB resident that later
flushes reuse. ``_RJEM_MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0`` in the
environment (set before Python starts) returns them at once, and RSS then stays at
the live size (see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import orderbook as ob
from orderbook.demo import baseline_intents
from orderbook.store import EpisodeStore

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lanes", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--episode", type=int, default=240)
    parser.add_argument("--flush-every", type=int, default=500)
    parser.add_argument("--points", type=int, default=10)
    args = parser.parse_args()
    ex = ob.Exchange(ob.default_config(slots=64), n_lanes=args.lanes, history_capacity=1 << 20)
    ex.reset(seed=0)
    actions = [baseline_intents(ex, s, twap_lots=20, quote_lots=50) for s in range(5)]
    every = max(args.steps // args.points, 1)
    rows = []
    peaks, troughs = [], []  # RSS just before and just after each flush: the sawtooth's top and bottom
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        store = EpisodeStore(root)
        for step in range(1, args.steps + 1):
            ex.step(*actions[step % 5])
            if step % args.episode == 0:
                ex.reset()
            if step % args.flush_every == 0:
                peaks.append((step * args.lanes, rss_mib()))
                store.write_history("soak", ex.history, clear=True)
                troughs.append((step * args.lanes, rss_mib()))
            if step % every == 0:
                rows.append((step, step * args.lanes, rss_mib(), time.perf_counter() - start))
        files = len(store.files())
    print(f"soak: {args.lanes} lanes x {args.steps} steps = {args.lanes * args.steps:,} env-steps, "
          f"flush every {args.flush_every} steps ({files} files), reset every {args.episode}")
    print(f"{'step':>8} {'env-steps':>14} {'rss MiB':>9} {'seconds':>9}")
    for step, env_steps, rss, secs in rows:
        print(f"{step:>8} {env_steps:>14,} {rss:>9.1f} {secs:>9.1f}")
    # The history fills between flushes (a sawtooth), so compare like with like: the RSS just
    # before every flush (peaks) and just after (troughs), after a warm-up of a fifth of the run.
    for name, series in (("before a flush (peak)", peaks), ("after a flush (trough)", troughs)):
        warm = np.array(series[len(series) // 5 :])
        if len(warm) < 4:
            continue
        tenth = max(len(warm) // 10, 1)
        first, last = np.median(warm[:tenth, 1]), np.median(warm[-tenth:, 1])
        slope = np.polyfit(warm[:, 0] / 1e7, warm[:, 1], 1)[0]
        print(f"RSS {name}: first tenth median {first:.1f} MiB, last tenth {last:.1f} MiB ({(last - first) / first * 100:+.1f}%), "
              f"trend {slope:+.2f} MiB per 10M env-steps over {len(warm)} flushes")
    print(f"throughput including flushes: {args.lanes * args.steps / rows[-1][3]:,.0f} env-steps/s")

if __name__ == "__main__":
    main()
