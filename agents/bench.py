"""Cost of the SB3 adapter against the native Gymnasium vector env: ``python -m agents.bench``.

Both step the same task with the same pre-drawn random actions; the adapter adds
same-step resets (a second observation when some lane finished) and the list of
per-lane info dicts SB3 requires ("lean": ``info_keys=()``, SB3's keys only). Medians of
``rounds`` rounds of ``steps`` steps, after a warm-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from agents.cli import parse
from agents.vec_env import OrderbookVecEnv, find_task


@dataclass
class Args:
    env_id: str = "orderbook/Execution-v0"
    """registered env id"""
    lanes: str = "1,16,256,1024"
    """comma-separated batch sizes"""
    steps: int = 200
    """steps per round"""
    rounds: int = 5
    """rounds (the median is reported)"""


def time_steps(env, actions: list[np.ndarray], rounds: int) -> float:
    """Median seconds per step."""
    for a in actions[:10]:
        env.step(a)
    out = []
    history = find_task(env).exchange.history
    for _ in range(rounds):
        history.clear()  # steady state: the logs' doubling growth is the core's cost, not the front-end's
        t = time.perf_counter()
        for a in actions:
            env.step(a)
        out.append((time.perf_counter() - t) / len(actions))
    return float(np.median(out))


def main(argv: list[str] | None = None) -> None:
    args = parse(Args, argv, description=__doc__)
    print(f"{args.env_id}, random actions, {args.steps} steps x {args.rounds} rounds, medians")
    print(f"{'lanes':>6} {'native us/step':>15} {'sb3 us/step':>12} {'sb3 lean us/step':>17} {'native steps/s':>15} {'sb3 steps/s':>12}")
    for n in (int(x) for x in args.lanes.split(",")):
        native = gym.make_vec(args.env_id, num_envs=n, vectorization_mode="vector_entry_point")
        sb3 = OrderbookVecEnv(args.env_id, n)
        lean = OrderbookVecEnv(args.env_id, n, info_keys=())
        rng = np.random.default_rng(0)
        actions = [rng.integers(0, sb3.action_space.nvec, size=(n, len(sb3.action_space.nvec))) for _ in range(args.steps)]
        native.reset(seed=0)
        for env in (sb3, lean):
            env.seed(0)
            env.reset()
        t_native, t_sb3, t_lean = (time_steps(env, actions, args.rounds) for env in (native, sb3, lean))
        print(f"{n:>6} {t_native * 1e6:>15,.0f} {t_sb3 * 1e6:>12,.0f} {t_lean * 1e6:>17,.0f} {n / t_native:>15,.0f} {n / t_sb3:>12,.0f}")


if __name__ == "__main__":
    main()
