"""Training steps/s of SB3 PPO through the batched adapter, by lane count: ``python -m benchmarks.sb3_training``.

For each lane count, PPO (one torch thread, the main job's hyperparameters unless
given) trains on the registered ``orderbook/Execution-v0`` (60 steps, default
faults, synthetic market) with rollouts of ``n_steps`` steps per lane,
with no history written (whole rollouts, at least ``min_steps`` steps). Steps/s is ``agents.train``'s own figure: environment
steps over the wall time of ``model.learn`` less any kernel compiling, so it
includes PPO's updates (the figure a user waits on). Lane counts run interleaved
for ``rounds`` rounds; the table gives medians and the range across rounds.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agents import train as tr
from agents.cli import parse, require


@dataclass
class Args:
    lanes: str = "16,64,256,1024"
    """comma-separated lane counts"""
    min_steps: int = 65_536
    """env steps per training run: whole rollouts of n_steps x lanes, at least this many and at least 3 rollouts"""
    rounds: int = 3
    """interleaved rounds (medians reported)"""
    n_steps: int = 0
    """rollout steps per lane (0: the main job's)"""
    batch_size: int = 0
    """PPO minibatch (0: the main job's)"""
    n_epochs: int = 0
    """PPO epochs (0: the main job's)"""
    run_dir: str = ""
    """a finished main job's folder: report when its training beat a baseline instead of timing"""
    policy: str = "twap"
    """with --run-dir: the baseline whose evaluated mean shortfall the training must beat"""

    def __post_init__(self) -> None:
        require(self.min_steps >= 1 and self.rounds >= 1, f"--min-steps and --rounds must be >= 1, got {self.min_steps}, {self.rounds}")
        require(all(x.strip().isdigit() and int(x) > 0 for x in self.lanes.split(",")),
                f"--lanes must be comma-separated counts > 0, got {self.lanes!r}")


def main_job_train_args() -> tr.Args:
    """The training arguments the main job uses on the synthetic market (``agents.main.train_args``)."""
    from agents import main as mj

    return mj.train_args(mj.Args(progress_bar=False))


def one_run(base: tr.Args, lanes: int, args: Args, out: Path) -> float:
    n_steps = args.n_steps or base.n_steps or 128
    rollout = lanes * n_steps
    rollouts = max(3, -(-args.min_steps // rollout))
    run = tr.Args(**{**base.__dict__, "n_envs": lanes, "n_steps": n_steps, "batch_size": min(args.batch_size or base.batch_size, rollout),
                     "n_epochs": args.n_epochs or base.n_epochs, "total_timesteps": rollouts * rollout,
                     "out_dir": str(out), "save_history": False, "progress_bar": False, "log_every": 10**9, "threads": 1})
    tr.train(run)
    return float(json.loads((out / "summary.json").read_text())["steps_per_s"])


def time_to_beat(run_dir: Path, policy: str = "twap", window: int = 5) -> dict[str, float] | None:
    """The first rollout whose mean training shortfall over the last ``window`` rollouts is below ``policy``'s evaluated mean.

    Training shortfall is the stochastic policy's on the training seeds, the
    baseline's the evaluation's (``eval/summary.csv``): a first crossing, not a
    paired test. Time is training steps over the run's steps/s (compiling excluded).
    None when it never crossed.
    """
    import polars as pl

    progress = pl.read_csv(run_dir / "progress.csv").filter(pl.col("rollout/shortfall_bps").is_not_null())
    summary = pl.read_csv(run_dir / "eval" / "summary.csv").filter(pl.col("metric") == "shortfall_bps")
    target = float(summary.filter(pl.col("policy") == policy)["mean"][0])
    rolling = progress["rollout/shortfall_bps"].rolling_mean(window)
    below = [k for k, x in enumerate(rolling.to_list()) if x is not None and x < target]
    if not below:
        return None
    row = progress.row(below[0], named=True)
    steps = float(row["time/total_timesteps"])
    return {"target_bps": target, "steps": steps, "seconds": steps / float(row["time/steps_per_s"]),
            "rolling_shortfall_bps": float(rolling[below[0]])}


def run(argv: list[str] | None = None) -> dict[int, list[float]]:
    args = parse(Args, argv, description=__doc__)
    if args.run_dir:
        got = time_to_beat(Path(args.run_dir), args.policy)
        print(f"{args.run_dir}: " + (f"never beat {args.policy} in training" if got is None else
              f"training shortfall (mean of 5 rollouts) {got['rolling_shortfall_bps']:.2f} bps < {args.policy}'s {got['target_bps']:.2f} "
              f"after {got['steps']:,.0f} steps, {got['seconds']:.0f} s of training"))
        return {}
    base = main_job_train_args()
    lanes = [int(x) for x in args.lanes.split(",")]
    got: dict[int, list[float]] = {n: [] for n in lanes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for n in lanes:
                got[n].append(one_run(base, n, args, Path(tmp) / f"l{n}-r{r}"))
    print(f"\nSB3 PPO on {base.env_id} (horizon {base.horizon or 'registered'}, faults {base.faults}, reward {base.reward}), "
          f"n_steps {args.n_steps or base.n_steps}, batch {args.batch_size or base.batch_size}, epochs {args.n_epochs or base.n_epochs}, "
          f"at least {args.min_steps:,} steps per run x {args.rounds} interleaved rounds")
    print("| lanes | training steps/s (median) | range |")
    print("|---:|---:|---|")
    for n in lanes:
        print(f"| {n} | {statistics.median(got[n]):,.0f} | {min(got[n]):,.0f} - {max(got[n]):,.0f} |")
    return got


if __name__ == "__main__":
    run()
