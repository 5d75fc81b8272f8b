"""Throughput of a plain native vector loop: ``gym.make_vec`` and ``step``, nothing else (no clearing).

    python benchmarks/plain_vector.py --env-id orderbook/Execution-v0 --lanes 4096 --steps 300
    python benchmarks/plain_vector.py --single --steps 20000   # a plain gym.make loop, reset when done

Uses only the public API, so the same file measures any checkout of the package
(put that checkout first on ``PYTHONPATH``). Random valid actions are drawn before
timing; ``--warmup`` steps run untimed after the reset. Prints one line of
``key=value`` pairs: env-steps/s over the timed steps, the history's rows and
resident memory at the end. ``benchmarks/RESULTS.md`` alternates two checkouts,
one process per round, and takes medians.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the ids)

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def single(args) -> None:
    env = gym.make(args.env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, env.action_space.nvec) for _ in range(32)]
    start = None
    for t in range(args.warmup + args.steps):
        if t == args.warmup:
            start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(actions[t % 32])
        if terminated or truncated:
            env.reset()
    secs = time.perf_counter() - start
    rows = sum(env.unwrapped.exchange.history.sizes())
    print(f"label={args.label} env={args.env_id.split('/')[-1]} lanes=1 steps={args.steps} "
          f"env_steps_per_s={args.steps / secs:.0f} us_per_step={secs / args.steps * 1e6:.0f} "
          f"history_rows={rows} rss_mib={rss_mib():.0f} load={os.getloadavg()[0]:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-id", default="orderbook/Execution-v0")
    parser.add_argument("--lanes", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--label", default="")
    parser.add_argument("--single", action="store_true", help="a plain gym.make loop instead (one lane)")
    args = parser.parse_args()
    if args.single:
        single(args)
        return
    env = gym.make_vec(args.env_id, num_envs=args.lanes, vectorization_mode="vector_entry_point", exchange={"slots": 64})
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    nvec = env.single_action_space.nvec
    actions = [rng.integers(0, nvec, size=(args.lanes, len(nvec))) for _ in range(32)]
    for t in range(args.warmup):
        env.step(actions[t % 32])
    start = time.perf_counter()
    for t in range(args.steps):
        env.step(actions[t % 32])
    secs = time.perf_counter() - start
    rows = sum(env.unwrapped.exchange.history.sizes())
    print(f"label={args.label} env={args.env_id.split('/')[-1]} lanes={args.lanes} steps={args.steps} "
          f"env_steps_per_s={args.lanes * args.steps / secs:.0f} us_per_step={secs / args.steps * 1e6:.0f} "
          f"history_rows={rows} rss_mib={rss_mib():.0f} load={os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
