"""Per-step reward variance of Execution's reward options under the random and TWAP policies (issue 15).

    python benchmarks/reward_variance.py [--n-envs 32] [--episodes 8] [--horizon 20] [--faults default]

For each reward option (``shortfall``, ``arrival``, ``marked``; see
``envs.ExecutionEnv``, Rewards) and each policy (``random``, ``twap`` of
:mod:`agents.baselines`), the same lanes and seeds (lane ``b`` seeded ``seed + b``:
common random numbers, so every option sees the same markets and, the actions being
the same, the same fills) run ``episodes`` episodes per lane. Printed per row: the
variance and standard deviation of the per-step reward over every step of every
episode, the same without each episode's last step (where the horizon charge
lands), the standard deviation of the episode's return (sum of rewards), and the
mean and sd of the reported shortfall (``info["shortfall_bps"]``: the same for every
option, a check that the options change only what pays the steps). Only the reward
differs between rows of one policy, so the variance figures compare the options
directly. ``--json`` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from agents.baselines import baselines_for
from agents.vec_env import OrderbookVecEnv
from envs.execution import REWARDS

POLICIES = ("random", "twap")


def measure(reward: str, policy: str, n_envs: int, episodes: int, horizon: int, faults: str, seed: int) -> dict:
    """One option under one policy: per-step and per-episode reward figures and the shortfall."""
    env = OrderbookVecEnv("orderbook/Execution-v0", n_envs, reward=reward, horizon=horizon, max_episode_steps=horizon,
                          faults=faults, history="none")
    act = baselines_for(env, seed=seed)[policy]
    env.seed(seed)
    obs = env.reset()
    count = np.zeros(n_envs, np.int64)
    steps: list[float] = []
    inner: list[float] = []  # every step but an episode's last
    returns: list[float] = []
    shortfalls: list[float] = []
    current: list[list[float]] = [[] for _ in range(n_envs)]
    while (count < episodes).any():
        obs, rewards, dones, _ = env.step(act.predict(obs)[0])
        info = env.step_info
        for b in np.flatnonzero(count < episodes):
            current[b].append(float(rewards[b]))
            if dones[b]:
                steps.extend(current[b])
                inner.extend(current[b][:-1])
                returns.append(sum(current[b]))
                shortfalls.append(float(info["shortfall_bps"][b]))
                current[b] = []
        count += dones
    env.close()
    r, i = np.asarray(steps), np.asarray(inner)
    return {"reward": reward, "policy": policy, "episodes": len(returns), "steps": r.size,
            "step_var": float(r.var(ddof=1)), "step_sd": float(r.std(ddof=1)), "inner_step_sd": float(i.std(ddof=1)) if i.size > 1 else 0.0,
            "return_sd": float(np.std(returns, ddof=1)), "return_mean": float(np.mean(returns)),
            "shortfall_mean": float(np.mean(shortfalls)), "shortfall_sd": float(np.std(shortfalls, ddof=1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=8, help="episodes per lane")
    parser.add_argument("--horizon", type=int, default=20, help="parent horizon in steps (20: the table in benchmarks/RESULTS.md; the registered task and the main job take 60)")
    parser.add_argument("--faults", default="default", choices=("none", "default", "high"))
    parser.add_argument("--seed", type=int, default=10_000)
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = [measure(reward, policy, args.n_envs, args.episodes, args.horizon, args.faults, args.seed)
            for policy in POLICIES for reward in REWARDS]
    print(f"Execution-v0, horizon {args.horizon}, faults {args.faults}, {args.n_envs} lanes x {args.episodes} episodes, "
          f"seeds {args.seed}..{args.seed + args.n_envs - 1} ({time.perf_counter() - t0:.0f} s)\n")
    print("| policy | reward | per-step var (bps^2) | per-step sd | sd without the last step | return mean | return sd | shortfall mean (sd) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['policy']} | {row['reward']} | {row['step_var']:.2f} | {row['step_sd']:.2f} | {row['inner_step_sd']:.2f} | "
              f"{row['return_mean']:.2f} | {row['return_sd']:.2f} | {row['shortfall_mean']:.2f} ({row['shortfall_sd']:.2f}) |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
