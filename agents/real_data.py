"""Learning on real data, out of sample: train on the Binance.US train split, evaluate on the test split.

    python -m agents.real_data            # or: python -m agents.real_data --help

1. ``agents.train``: PPO on ``orderbook/Execution-v0`` (buy 30 BTC over 60 one-minute
   steps, the registered env, default broker faults) on 1-minute Binance.US BTC/USD
   bars replayed from the train split (2023-03-01..14, UTC);
2. ``agents.evaluate``: the model and every baseline on the test split
   (2023-03-15..21) with the same lanes and seeds (common random numbers);
3. the checks an out-of-sample claim needs: every evaluated episode's window
   (:func:`episode_windows`) lies inside the test split (:func:`check_inside`, else
   ``ValueError``), how many episodes share bars with another (windows drawn at
   random from a week overlap), and the paired differences again with episodes
   clustered by the time block their window starts in (:func:`clustered_paired`),
   since overlapping windows are not independent draws.

The defaults are the main job's synthetic configuration, measured on the replay at the
registered 30 BTC in ``benchmarks/RESULTS.md`` ("Issue 15: the registered parent becomes 30
BTC"): the shortfall reward with the drift control variate and 0.1 bps per step of urgency
(:mod:`agents.rewards`), ``gamma`` 0.999, GAE lambda 0.95, no entropy bonus, 256 lanes x 32
steps per update, minibatch 2048, 5 epochs at learning rate 3e-4, 2M steps (about four
minutes on one core; the evaluation of 6 policies x 1,024 episodes 10-20 s). At the old 1 BTC
parent the ``marked`` reward with ``gamma`` 1 was the one that learned ("Issue 15: out of
sample on the Binance.US replay"); at 30 BTC it left 3-4% of the parent unfilled and tied
Almgren-Chriss and all at once.
Writes ``out_dir`` as ``agents.train`` does, and ``eval/`` as ``agents.evaluate`` does plus
``windows.parquet`` (lane, episode, first bar of its window) and ``clustered.csv``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from agents import evaluate as ev
from agents import train as tr
from agents.cli import parse, require
from agents.common import Algo, FaultLevel, Reward, make_env
from agents.imitation import Imitate
from agents.stats import fmt, t_quantile
from orderbook.presets import BINANCE_US_SPLITS

ENV_ID = "orderbook/Execution-v0"
HORIZON_STEPS = 60  # the registered Execution-v0 horizon (the env's default)
STEP_NS = 60 * 10**9  # the replay's one-minute bars


@dataclass
class Args:
    algo: Algo = "PPO"
    """algorithm: PPO, A2C or MaskablePPO (uses the env's action masks)"""
    total_timesteps: int = 2_000_000
    """training steps on the train split (summed over lanes)"""
    n_envs: int = 256
    """training lanes"""
    n_steps: int = 32
    """rollout steps per lane per update"""
    batch_size: int = 2048
    """PPO minibatch size"""
    n_epochs: int = 5
    """PPO epochs per update"""
    learning_rate: float = 3e-4
    """optimizer learning rate"""
    gamma: float = 0.999
    """discount factor (the parent's horizon is 60 steps)"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    ent_coef: float = 0.0
    """entropy bonus"""
    net_arch: str = "64,64"
    """hidden layer sizes of the policy and value MLPs, comma-separated"""
    reward: Reward = "shortfall"
    """Execution-v0 reward: shortfall, arrival or marked (see envs.ExecutionEnv, Rewards)"""
    drift_control: bool = True
    """add the price-drift control variate to the training reward (agents.rewards.DriftControl)"""
    holding_bps: float = 0.1
    """urgency: bps of the parent notional charged per step on the unfilled remainder (with drift control)"""
    faults: FaultLevel = "default"
    """broker faults: none, default or high"""
    quantity: str = ""
    """parent in BTC (empty: the registered 30 BTC); above it the account is scaled to hold it (agents.common.parent_account)"""
    seed: int = 0
    """training seed (lane b gets seed + b)"""
    eval_envs: int = 128
    """evaluation lanes on the test split"""
    eval_episodes: int = 8
    """evaluation episodes per lane and policy"""
    eval_seed: int = 10_000
    """evaluation lane b is seeded eval_seed + b for every policy"""
    block_hours: int = 6
    """clustered intervals: episodes whose windows start in the same block of this many hours form one cluster"""
    out_dir: str = "runs/real"
    """output folder"""
    save_history: bool = True
    """write the training run's episode history (the evaluation writes none)"""
    progress_bar: bool = False
    """show the training progress bar"""
    imitate: Imitate = "none"
    """warm start: behaviour-clone this baseline before PPO (agents.imitation); none: from scratch"""
    imitate_steps: int = 65_536
    """with --imitate: env steps of the baseline's demonstrations (on the train split)"""
    imitate_epochs: int = 30
    """with --imitate: passes of the behaviour-cloning fit"""

    def __post_init__(self) -> None:
        require(self.total_timesteps >= 1 or (self.total_timesteps == 0 and self.imitate != "none"),
                f"--total-timesteps must be >= 1 (0 only with --imitate: the cloned policy alone), got {self.total_timesteps}")
        for name in ("n_envs", "n_steps", "batch_size", "n_epochs", "eval_envs", "eval_episodes", "block_hours"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        require(self.eval_seed >= 0, f"--eval-seed must be >= 0, got {self.eval_seed}")
        train_args(self)  # the training arguments' own checks (learning rate, net arch), before anything is created


def episode_windows(kwargs: dict[str, Any], n_envs: int, episodes: int, seed: int, env_id: str = ENV_ID) -> np.ndarray:
    """``(n_envs, episodes)`` open time (UTC epoch ns) of the first bar of the window that episode ``k`` of lane
    ``b`` replays when lane ``b`` is seeded ``seed + b`` (as :func:`agents.evaluate.rollout` seeds it).

    A lane's window is drawn from (its market seed, its episode number) only, so these are the windows of
    every policy's episode ``k`` of lane ``b``, whatever the policy did."""
    raw = make_env(env_id, n_envs, **{**kwargs, "history": "none"})
    try:
        raw.seed(seed)
        raw.reset()
        source = raw.task.exchange.source
        starts = [source.window_start_ns()]
        for _ in range(episodes - 1):
            raw.task.reset(seed=None, mask=np.ones(n_envs, dtype=bool), options=None)
            starts.append(source.window_start_ns())
    finally:
        raw.close()
    return np.stack(starts, axis=1)


def split_bounds_ns(split: str) -> tuple[int, int]:
    """The half-open period ``[start, end)`` of a Binance.US split in UTC epoch ns."""
    if split not in BINANCE_US_SPLITS:
        raise ValueError(f"split must be one of {tuple(BINANCE_US_SPLITS)}, got {split!r}")
    lo, hi = BINANCE_US_SPLITS[split]
    return int(np.datetime64(lo, "ns").astype(np.int64)), int(np.datetime64(hi, "ns").astype(np.int64))


def check_inside(windows_ns: np.ndarray, split: str, steps: int = HORIZON_STEPS) -> None:
    """Every episode (its first bar and the ``steps`` bars it trades, each one ``STEP_NS`` long) lies inside
    ``split``; ``ValueError`` naming the first (lane, episode) whose bars leave it otherwise."""
    lo, hi = split_bounds_ns(split)
    first = np.asarray(windows_ns, dtype=np.int64)
    outside = (first < lo) | (first + (steps + 1) * STEP_NS > hi)
    if outside.any():
        lane, episode = (int(x) for x in np.argwhere(outside)[0])
        start = np.datetime64(int(first[lane, episode]), "ns").astype("datetime64[s]")
        raise ValueError(f"lane {lane} episode {episode}: expected its {steps + 1} bars inside the {split} split "
                         f"{BINANCE_US_SPLITS[split]}, found a window starting {start}")


def overlap_counts(windows_ns: np.ndarray, steps: int = HORIZON_STEPS) -> tuple[int, int]:
    """(distinct first bars, episodes that share at least one bar with another episode) among the windows."""
    first = np.sort(np.asarray(windows_ns, dtype=np.int64).ravel())
    near = np.diff(first) <= steps * STEP_NS  # neighbours in time whose ``steps + 1`` bars meet
    shares = np.zeros(first.size, dtype=bool)
    shares[:-1] |= near
    shares[1:] |= near
    return int(np.unique(first).size), int(shares.sum())


def clustered_paired(episodes: pl.DataFrame, windows: pl.DataFrame, metric: str, reference: str, block_ns: int) -> pl.DataFrame:
    """``policy - reference`` of ``metric`` per (lane, episode), as :func:`agents.stats.paired`, but with the
    standard error of the mean from cluster sums: episodes whose window starts in the same ``block_ns`` block
    of time form a cluster (``se = sqrt(G / (G - 1) sum_g S_g^2) / n``, ``S_g`` the sum of the centred
    differences in cluster ``g``), and the interval is Student t with ``G - 1`` degrees of freedom.

    With one episode per cluster this is the plain paired interval exactly; episodes that replay overlapping
    bars land in one cluster, so their correlation widens the interval instead of passing for evidence.
    ``windows``: lane, episode, ``first_bar_ns``. Columns: policy, n, clusters, mean, se, ci_low, ci_high, t."""
    keyed = windows.select("lane", "episode", (pl.col("first_bar_ns") // block_ns).alias("_block"))
    ref = episodes.filter(pl.col("policy") == reference).select("lane", "episode", pl.col(metric).alias("_ref"))
    diffs = (episodes.filter(pl.col("policy") != reference).join(ref, on=["lane", "episode"], how="inner")
             .join(keyed, on=["lane", "episode"], how="inner")
             .select("policy", "_block", (pl.col(metric) - pl.col("_ref")).alias("diff")))
    rows = []
    for policy in diffs["policy"].unique(maintain_order=True).to_list():
        d = diffs.filter(pl.col("policy") == policy)
        n, mean = d.height, float(d["diff"].mean())
        sums = d.group_by("_block").agg((pl.col("diff") - mean).sum().alias("s"))["s"].to_numpy()
        g = sums.size
        se = float(np.sqrt(g / (g - 1) * np.sum(sums**2)) / n) if g >= 2 else float("nan")
        half = t_quantile(0.975, g - 1) * se if g >= 2 else float("nan")
        rows.append(dict(policy=policy, n=n, clusters=g, mean=mean, se=se, ci_low=mean - half, ci_high=mean + half,
                         t=mean / se if se > 0 else float("nan")))
    schema = dict(policy=pl.String, n=pl.Int64, clusters=pl.Int64, mean=pl.Float64, se=pl.Float64, ci_low=pl.Float64,
                  ci_high=pl.Float64, t=pl.Float64)
    return pl.DataFrame(rows, schema=schema)


def windows_frame(windows_ns: np.ndarray) -> pl.DataFrame:
    lanes, episodes = np.indices(windows_ns.shape)
    return pl.DataFrame({"lane": lanes.ravel(), "episode": episodes.ravel(), "first_bar_ns": windows_ns.ravel().astype(np.int64)})


def train_args(args: Args) -> tr.Args:
    """The training run of ``args``: the registered Execution-v0 on the Binance.US train split."""
    return tr.Args(env_id=ENV_ID, algo=args.algo, n_envs=args.n_envs, total_timesteps=args.total_timesteps, seed=args.seed,
                   out_dir=args.out_dir, faults=args.faults, market="binance_us", split="train", reward=args.reward,
                   learning_rate=args.learning_rate, n_steps=args.n_steps, batch_size=args.batch_size, gamma=args.gamma,
                   gae_lambda=args.gae_lambda, ent_coef=args.ent_coef, n_epochs=args.n_epochs, net_arch=args.net_arch, threads=1, progress_bar=args.progress_bar,
                   save_history=args.save_history, log_every=10, imitate=args.imitate, imitate_steps=args.imitate_steps,
                   imitate_epochs=args.imitate_epochs, quantity=args.quantity, drift_control=args.drift_control,
                   holding_bps=args.holding_bps)


def out_of_sample_notes(eval_dir: Path, kwargs: dict[str, Any], args: Args) -> str:
    """Check the evaluated windows against the test split, write them and the clustered intervals; the lines to print."""
    windows_ns = episode_windows(kwargs, args.eval_envs, args.eval_episodes, args.eval_seed)
    check_inside(windows_ns, "test")
    windows = windows_frame(windows_ns)
    windows.write_parquet(eval_dir / "windows.parquet")
    distinct, shared = overlap_counts(windows_ns)
    episodes = pl.read_parquet(eval_dir / "episodes.parquet")
    reference = episodes["policy"][0]
    clustered = clustered_paired(episodes, windows, "shortfall_bps", reference, args.block_hours * 3600 * 10**9)
    clustered.write_csv(eval_dir / "clustered.csv")
    first, last = (np.datetime64(int(x), "ns").astype("datetime64[m]") for x in (windows_ns.min(), windows_ns.max()))
    lines = [f"Out of sample: all {windows_ns.size} test windows lie inside {BINANCE_US_SPLITS['test']} (first bars {first} .. {last}); "
             f"{distinct} distinct starts; {shared} episodes share bars with another (the t intervals treat them as independent)."]
    lines.append(f"Paired shortfall differences vs {reference}, episodes clustered by {args.block_hours}-hour block of their start:")
    for r in clustered.iter_rows(named=True):
        lines.append(f"  {r['policy']}: {fmt(r['mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] "
                     f"(t {fmt(r['t'], 1)}; {r['clusters']} clusters, n {r['n']})")
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> dict[str, Path]:
    """Parse ``argv`` (bad values: one line on stderr, exit 2, nothing created), then :func:`real`."""
    return real(parse(Args, argv, description=__doc__))


def real(args: Args) -> dict[str, Path]:
    """Train on the train split, evaluate on the test split, check and print the out-of-sample figures; the
    paths written (the main job calls this with its own ``Args(out_dir=..., seed=...)``)."""
    t0 = time.perf_counter()
    run_dir = tr.train(train_args(args))
    t1 = time.perf_counter()
    eval_args = ev.Args(run_dir=str(run_dir), split="test", n_envs=args.eval_envs, episodes=args.eval_episodes,
                        seed=args.eval_seed, save_history=False)
    paths = ev.evaluate(eval_args)
    notes = out_of_sample_notes(paths["table"].parent, ev.resolve(eval_args)["kwargs"], args)
    t2 = time.perf_counter()
    print(f"[real] {notes}", flush=True)
    print(f"[real] trained in {t1 - t0:.0f} s, evaluated and checked in {t2 - t1:.0f} s (total {t2 - t0:.0f} s)", flush=True)
    return {**paths, "windows": paths["table"].parent / "windows.parquet", "clustered": paths["table"].parent / "clustered.csv"}


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.real_data``."""
    run(argv)


if __name__ == "__main__":
    main()
