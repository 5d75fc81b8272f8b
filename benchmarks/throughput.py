"""Throughput by batch size, all faults on, history recording: the core, then the native vector envs.

    python benchmarks/throughput.py [--steps 200] [--rounds 5] [--clear-every 50] [--envs-only | --core-only]

Core: each lane sends a TWAP market child order and a passive limit every step
(the demo's baseline) on the default two-venue, three-quote config with 64 slots.
Envs: ``gym.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point",
exchange={"slots": 64})`` with random valid actions drawn before timing, so a step
includes decoding, the core, reward, observation, info and the NEXT_STEP autoreset
of finished lanes.

The history is cleared every ``--clear-every`` steps inside the timed loop, as a
training loop that flushes its episodes does (the flush's Parquet write is
measured by ``benchmarks/soak.py``): without it the logs grow by doubling and the
first touch of fresh pages, not the step, dominates at thousands of lanes. The
envs now bound their history themselves (each lane's current episode by default,
``envs/README.md``): with ``--clear-every 0`` the envs run as a plain loop does,
while the core (``Exchange``) still keeps everything. ``benchmarks/plain_vector.py``
measures a plain loop through the public API alone (for comparing checkouts).
Batch sizes (and envs) run interleaved in each round; medians over rounds. The
history's events/s is events appended per second of stepping.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import gymnasium as gym
import numba
import numpy as np

import orderbook as ob
from orderbook.demo import baseline_intents


def one_round(ex: ob.Exchange, n_steps: int, actions, clear_every: int) -> tuple[float, int]:
    ex.reset(seed=0)
    ex.history.clear()
    events = 0
    start = time.perf_counter()
    for step in range(n_steps):
        ex.step(*actions[step % len(actions)])
        if clear_every and (step + 1) % clear_every == 0:
            events += len(ex.history.events)
            ex.history.clear()
    elapsed = time.perf_counter() - start
    return elapsed, events + len(ex.history.events)


def env_round(env, n_steps: int, actions: list[np.ndarray], clear_every: int) -> tuple[float, int]:
    history = env.unwrapped.exchange.history if hasattr(env, "unwrapped") else env.exchange.history
    history.clear()
    events = 0
    start = time.perf_counter()
    for step in range(n_steps):
        env.step(actions[step % len(actions)])
        if clear_every and (step + 1) % clear_every == 0:
            events += len(history.events)
            history.clear()
    elapsed = time.perf_counter() - start
    return elapsed, events + len(history.events)


def machine_line() -> str:
    return (f"machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()} load={os.getloadavg()[0]:.1f} "
            f"python {platform.python_version()} numpy {np.__version__} numba {numba.__version__} gymnasium {gym.__version__}")


def print_table(results: dict, n_steps: int) -> None:
    print(f"{'':<24} {'lanes':>6} {'env-steps/s':>14} {'us/step':>10} {'events/s':>14} {'events/step':>12}")
    for (name, b), rows in results.items():
        secs = statistics.median(r[0] for r in rows)
        events = statistics.median(r[1] for r in rows)
        print(f"{name:<24} {b:>6} {b * n_steps / secs:>14,.0f} {secs / n_steps * 1e6:>10,.1f} "
              f"{events / secs:>14,.0f} {events / n_steps:>12,.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    parser.add_argument("--clear-every", type=int, default=50, help="clear the history every N steps (0: never)")
    parser.add_argument("--envs-only", action="store_true")
    parser.add_argument("--core-only", action="store_true")
    args = parser.parse_args()
    print(machine_line())
    if not args.envs_only:
        cfg = ob.default_config(slots=64)
        exchanges = {b: ob.Exchange(cfg, n_lanes=b, history_capacity=1 << 16) for b in args.lanes}
        actions = {}
        for b, ex in exchanges.items():
            ex.reset(seed=0)
            actions[b] = [baseline_intents(ex, s, twap_lots=20, quote_lots=50) for s in range(5)]
            one_round(ex, 3, actions[b], args.clear_every)  # warm up (compile cache, page faults)
        results: dict = {("core", b): [] for b in args.lanes}
        for _ in range(args.rounds):
            for b, ex in exchanges.items():
                results[("core", b)].append(one_round(ex, args.steps, actions[b], args.clear_every))
        print(f"core: default_config(slots=64), {len(cfg.instruments)} instruments, all faults on, history on "
              f"(cleared every {args.clear_every} steps); {args.steps} steps x {args.rounds} rounds, medians")
        print_table(results, args.steps)
    if not args.core_only:
        import envs  # noqa: F401  (registers the ids)

        results = {}
        contenders = {}
        for env_id in ("orderbook/Execution-v0", "orderbook/Trading-v0"):
            for b in args.lanes:
                env = gym.make_vec(env_id, num_envs=b, vectorization_mode="vector_entry_point", exchange={"slots": 64})
                env.reset(seed=0)
                rng = np.random.default_rng(0)
                nvec = env.single_action_space.nvec
                acts = [rng.integers(0, nvec, size=(b, len(nvec))) for _ in range(32)]
                env_round(env, 5, acts, args.clear_every)  # warm up
                contenders[(env_id.split("/")[1], b)] = (env, acts)
                results[(env_id.split("/")[1], b)] = []
        for _ in range(args.rounds):
            for key, (env, acts) in contenders.items():
                results[key].append(env_round(env, args.steps, acts, args.clear_every))
        print(f"native vector envs: exchange={{'slots': 64}}, default faults, random valid actions, NEXT_STEP autoreset, "
              f"history on (cleared every {args.clear_every} steps); {args.steps} steps x {args.rounds} rounds, medians")
        print_table(results, args.steps)


if __name__ == "__main__":
    main()
