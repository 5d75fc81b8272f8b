"""Soak: resident memory over a long run with episodes flushed to Parquet (issue 7, target 5).

    python benchmarks/soak.py --lanes 1024 --steps 20000 --flush-every 500

Steps the core (default config, 64 slots, all faults on, history recording) with
the demo's baseline orders, resets every lane each ``--episode`` steps, and every
``--flush-every`` steps writes the history to an EpisodeStore in a temporary
folder and clears it. Prints resident memory (RSS from /proc/self/statm) at
regular points and the growth after warm-up: flat memory means the history's
preallocated blocks are reused and nothing else accumulates.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

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
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        store = EpisodeStore(root)
        for step in range(1, args.steps + 1):
            ex.step(*actions[step % 5])
            if step % args.episode == 0:
                ex.reset()
            if step % args.flush_every == 0:
                store.write_history("soak", ex.history, clear=True)
            if step % every == 0:
                rows.append((step, step * args.lanes, rss_mib(), time.perf_counter() - start))
        files = len(store.files())
    print(f"soak: {args.lanes} lanes x {args.steps} steps = {args.lanes * args.steps:,} env-steps, "
          f"flush every {args.flush_every} steps ({files} files), reset every {args.episode}")
    print(f"{'step':>8} {'env-steps':>14} {'rss MiB':>9} {'seconds':>9}")
    for step, env_steps, rss, secs in rows:
        print(f"{step:>8} {env_steps:>14,} {rss:>9.1f} {secs:>9.1f}")
    # the history fills between flushes (a sawtooth): compare the peaks of the two halves after warm-up
    warm = [r[2] for r in rows[len(rows) // 5 :]]
    first, second = max(warm[: len(warm) // 2]), max(warm[len(warm) // 2 :])
    print(f"peak RSS after warm-up: first half {first:.1f} MiB, second half {second:.1f} MiB "
          f"({(second - first) / first * 100:+.1f}%)")
    print(f"throughput including flushes: {args.lanes * args.steps / rows[-1][3]:,.0f} env-steps/s")



if __name__ == "__main__":
    main()
