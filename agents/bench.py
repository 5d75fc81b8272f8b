"""Cost of the SB3 adapter against the native Gymnasium vector env: ``python -m agents.bench``.

Both step the same task with the same pre-drawn random actions; the adapter adds
same-step resets (a second observation when some lane finished) and the list of
per-lane info dicts SB3 requires (SB3's keys by default; "all-info": ``info_keys=None``,
every figure in every lane's dict). Medians of ``rounds`` interleaved rounds of ``steps``
steps after a warm-up, and the median of the within-round ratios to the native env.
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


def _round(env, actions: list[np.ndarray]) -> float:
    """Seconds per step over ``actions``, from a cleared history (steady state: the logs'
    doubling growth is the core's cost, not the front-end's)."""
    find_task(env).exchange.history.clear()
    t = time.perf_counter()
    for a in actions:
        env.step(a)
    return (time.perf_counter() - t) / len(actions)


def main(argv: list[str] | None = None) -> None:
    args = parse(Args, argv, description=__doc__)
    print(f"{args.env_id}, random actions, {args.steps} steps x {args.rounds} interleaved rounds, medians; "
          "ratio = adapter / native within each round")
    print(f"{'lanes':>6} {'native us/step':>15} {'sb3 us/step':>12} {'ratio':>6} {'sb3 all-info us':>16} {'ratio':>6} "
          f"{'native steps/s':>15} {'sb3 steps/s':>12}")
    for n in (int(x) for x in args.lanes.split(",")):
        envs = {
            "native": gym.make_vec(args.env_id, num_envs=n, vectorization_mode="vector_entry_point"),
            "sb3": OrderbookVecEnv(args.env_id, n),  # SB3's keys in the per-lane infos (the default)
            "all": OrderbookVecEnv(args.env_id, n, info_keys=None),  # every figure copied into every lane's dict
        }
        rng = np.random.default_rng(0)
        nvec = envs["sb3"].action_space.nvec
        actions = [rng.integers(0, nvec, size=(n, len(nvec))) for _ in range(args.steps)]
        envs["native"].reset(seed=0)
        for name in ("sb3", "all"):
            envs[name].seed(0)
            envs[name].reset()
        for env in envs.values():  # warm up (compile, first growth of the logs)
            for a in actions[:10]:
                env.step(a)
        times: dict[str, list[float]] = {k: [] for k in envs}
        for r in range(args.rounds):
            order = list(envs)[r % 3:] + list(envs)[: r % 3]  # rotate who goes first
            for name in order:
                times[name].append(_round(envs[name], actions))
        med = {k: float(np.median(v)) for k, v in times.items()}
        ratio = {k: float(np.median(np.array(times[k]) / np.array(times["native"]))) for k in ("sb3", "all")}
        print(f"{n:>6} {med['native'] * 1e6:>15,.0f} {med['sb3'] * 1e6:>12,.0f} {ratio['sb3']:>6.2f} {med['all'] * 1e6:>16,.0f} "
              f"{ratio['all']:>6.2f} {n / med['native']:>15,.0f} {n / med['sb3']:>12,.0f}")


if __name__ == "__main__":
    main()
