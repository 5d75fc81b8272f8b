"""Throughput of the core: env-steps/s by batch size, all faults on, history recording.

    python benchmarks/throughput.py [--steps 200] [--rounds 5]

Each lane sends a TWAP market child order and a passive limit every step (the
demo's baseline) on the default two-venue, three-quote config with 64 slots.
Batch sizes run interleaved in each round; the table shows medians over rounds.
The history's events/s is events appended per second of stepping.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numba
import numpy as np

import orderbook as ob
from orderbook.demo import baseline_intents


def one_round(ex: ob.Exchange, n_steps: int, actions) -> tuple[float, int]:
    ex.reset(seed=0)
    ex.history.clear()
    start = time.perf_counter()
    for step in range(n_steps):
        ex.step(*actions[step % len(actions)])
    elapsed = time.perf_counter() - start
    return elapsed, len(ex.history.events)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    args = parser.parse_args()
    cfg = ob.default_config(slots=64)
    exchanges = {b: ob.Exchange(cfg, n_lanes=b, history_capacity=1 << 16) for b in args.lanes}
    actions = {}
    for b, ex in exchanges.items():
        ex.reset(seed=0)
        actions[b] = [baseline_intents(ex, s, twap_lots=20, quote_lots=50) for s in range(5)]
        one_round(ex, 3, actions[b])  # warm up (compile cache, page faults)
    results: dict[int, list[tuple[float, int]]] = {b: [] for b in args.lanes}
    for _ in range(args.rounds):
        for b, ex in exchanges.items():
            results[b].append(one_round(ex, args.steps, actions[b]))
    print(f"machine: {platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()} "
          f"python {platform.python_version()} numpy {np.__version__} numba {numba.__version__}")
    print(f"config: default_config(slots=64), {len(cfg.instruments)} instruments, all faults on, history on; "
          f"{args.steps} steps x {args.rounds} rounds, medians")
    print(f"{'lanes':>6} {'env-steps/s':>14} {'us/step':>10} {'events/s':>14} {'events/step':>12}")
    for b in args.lanes:
        secs = statistics.median(r[0] for r in results[b])
        events = statistics.median(r[1] for r in results[b])
        print(f"{b:>6} {b * args.steps / secs:>14,.0f} {secs / args.steps * 1e6:>10,.1f} "
              f"{events / secs:>14,.0f} {events / args.steps:>12,.1f}")


if __name__ == "__main__":
    main()
