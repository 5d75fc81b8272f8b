"""Soak: resident memory over a long run, the core flushing to Parquet or a plain env loop (issues 7 and 11).

    python benchmarks/soak.py --lanes 1024 --steps 20000 --flush-every 500
    python benchmarks/soak.py --loop gym --steps 1000000            # plain gym.make loop
    python benchmarks/soak.py --loop vector --lanes 1024 --steps 9800  # plain native vector loop

``--loop gym`` / ``--loop vector`` (issue 11): a plain ``gym.make`` loop (reset when
an episode ends) or a plain ``gym.make_vec(..., vectorization_mode="vector_entry_point")``
loop (autoreset), with random valid actions drawn before the loop and nothing
else: no clearing, no store. The env's default history keeps each lane's current
episode (``--history`` passes another mode, e.g. ``all`` to see the growth it
replaces). RSS is sampled every ``--sample-every`` steps; the summary compares the
first and last tenth of the samples after a warm-up of a fifth of the run, fits a
trend, and prints the history's rows, capacity and drops.

``--loop core`` (the default, issue 7):
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
from orderbook.analytics.store import EpisodeStore
from orderbook.demo import baseline_intents

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def summarize(name: str, series: list[tuple[int, float]]) -> None:
    """First and last tenth (medians) and trend of ``(env_steps, rss)`` samples after a warm-up of a fifth."""
    warm = np.array(series[len(series) // 5 :])
    if len(warm) < 4:
        return
    tenth = max(len(warm) // 10, 1)
    first, last = np.median(warm[:tenth, 1]), np.median(warm[-tenth:, 1])
    slope = np.polyfit(warm[:, 0] / 1e7, warm[:, 1], 1)[0]
    print(f"RSS {name}: first tenth median {first:.1f} MiB, last tenth {last:.1f} MiB ({(last - first) / first * 100:+.1f}%), "
          f"trend {slope:+.2f} MiB per 10M env-steps over {len(warm)} samples")


def env_loop(args) -> None:
    """A plain gym.make or native vector loop: step, reset when done, nothing else."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    kwargs = {} if args.history is None else {"history": int(args.history) if args.history.isdigit() else args.history}
    vector = args.loop == "vector"
    lanes = args.lanes if vector else 1
    if vector:
        env = gym.make_vec(args.env_id, num_envs=lanes, vectorization_mode="vector_entry_point", **kwargs)
    else:
        env = gym.make(args.env_id, **kwargs)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    space = env.single_action_space if vector else env.action_space
    nvec = space.nvec
    actions = [rng.integers(0, nvec, size=(lanes, len(nvec)) if vector else len(nvec)) for _ in range(64)]
    history = env.unwrapped.exchange.history
    every = max(args.steps // args.points, 1)
    sample = max(args.sample_every, 1)
    rows, series = [], []
    episodes = 0
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        if vector:
            env.step(actions[step % 64])
        else:
            _, _, terminated, truncated, _ = env.step(actions[step % 64])
            if terminated or truncated:
                env.reset()
                episodes += 1
        if step % sample == 0:
            series.append((step * lanes, rss_mib()))
        if step % every == 0:
            rows.append((step, step * lanes, rss_mib(), time.perf_counter() - start, sum(history.sizes()), history.events.capacity))
    keeper = env.unwrapped.task.keeper if hasattr(env.unwrapped.task, "keeper") else None
    what = f"gym.make_vec({args.env_id}, num_envs={lanes})" if vector else f"gym.make({args.env_id}), {episodes:,} episodes"
    print(f"soak ({args.loop} loop): {what}, {lanes * args.steps:,} env-steps, history={args.history or 'the default'}, "
          f"no clearing")
    print(f"{'step':>9} {'env-steps':>14} {'rss MiB':>9} {'seconds':>9} {'history rows':>13} {'event capacity':>15}")
    for step, env_steps, rss, secs, n_rows, cap in rows:
        print(f"{step:>9} {env_steps:>14,} {rss:>9.1f} {secs:>9.1f} {n_rows:>13,} {cap:>15,}")
    summarize(f"sampled every {sample} steps", series)
    if keeper is not None:
        print(f"history: keep={keeper.keep!r}, {keeper.drops} drops, limit {keeper.limit:,} rows")
    print(f"throughput: {lanes * args.steps / rows[-1][3]:,.0f} env-steps/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=("core", "gym", "vector"), default="core")
    parser.add_argument("--env-id", default="orderbook/Trading-v0")
    parser.add_argument("--history", default=None, help="the env's history argument (gym/vector loops; default: the env's)")
    parser.add_argument("--sample-every", type=int, default=100, help="steps between RSS samples (gym/vector loops)")
    parser.add_argument("--lanes", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--episode", type=int, default=240)
    parser.add_argument("--flush-every", type=int, default=500)
    parser.add_argument("--points", type=int, default=10)
    args = parser.parse_args()
    if args.loop != "core":
        env_loop(args)
        return
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
        summarize(name, series)
    print(f"throughput including flushes: {args.lanes * args.steps / rows[-1][3]:,.0f} env-steps/s")

if __name__ == "__main__":
    main()
