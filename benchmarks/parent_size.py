"""Where does a trained agent beat passive repricing? The main job's synthetic part by parent size:
``python -m benchmarks.parent_size``.

The registered Execution-v0 buys 1 BTC in 60 one-minute steps, a third of one bar's
participation cap: passive repricing fills it in a few steps at about the maker fee, and
the main job's PPO ties it. This benchmark trains the main job's configuration (the
behaviour clone of passive, then PPO; :func:`agents.main.train_args`) at larger parents
(``agents.main --quantity``: the market's default account scaled to hold the parent) and
evaluates it against every baseline on common random numbers, like the main job.

A baseline that fails to finish a large parent is a straw man: passive repricing sweeps
what is left with one market order in its last step, and one bar cannot take a large
remainder (what is left is charged ``penalty_bps``). So the table also gives passive
repricing with its sweep spread over the last ``k`` steps (``PassiveReprice(market_steps=k)``)
for several ``k``, paired with the trained agent on the same lanes and seeds; the best of
them is the baseline a reviewer would hold the agent to.

Columns: the parent, the agent's mean shortfall (bps) and fill ratio, and each policy minus
the agent, mean [Student t 95% interval] (t): positive means the agent is cheaper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from agents import evaluate as ev
from agents import main as am
from agents import train as tr
from agents.baselines import PassiveReprice
from agents.cli import parse, require
from agents.common import make_env
from agents.evaluate import rollout
from agents.stats import paired, paired_cell
from envs import spaces as sp


class PassiveWithFloor(PassiveReprice):
    """Passive repricing that keeps up with a straight-line schedule: when the filled share falls more than
    ``band`` behind the share of the horizon elapsed, it cancels its working children and, once none works,
    takes the deficit with a market order; otherwise it is :class:`PassiveReprice` (with ``market_steps``).

    A rule a trader would write ("post, but never fall far behind TWAP"), blind to the market's state: if the
    agent beats it, it learned more than when to finish.
    """

    def __init__(self, env=None, band: float = 0.1, market_steps: int = 1):
        require(0.0 <= band < 1.0, f"band must be in [0, 1), got {band}")
        self.band = float(band)
        super().__init__(env, market_steps=market_steps)

    def act(self, task) -> np.ndarray:
        acts = super().act(task)
        step = task.exchange.lanes.step
        filled = task.filled_atoms() / task.parent_atoms
        deficit = (step / task.horizon - self.band - filled) * task.parent_atoms
        behind = (deficit > 0) & (task.horizon - step > self.market_steps + 1)
        working = task.working_atoms().sum(axis=1) > 0
        venue = self._venue(task)
        size, send = self._size_for(task, venue, np.maximum(deficit, 0.0).astype(np.int64))
        take = behind & ~working & send
        acts[:, 0] = np.where(take, venue, acts[:, 0])
        acts[:, 1] = np.where(behind, np.where(take, sp.LEVEL_MARKET, sp.LEVEL_NONE), acts[:, 1])
        acts[:, 2] = np.where(take, size, acts[:, 2])
        acts[:, -1] = np.where(behind & working, sp.CANCEL_ALL, acts[:, -1])
        return acts


@dataclass
class Args:
    quantities: str = "1,20,30,60"
    """comma-separated parents in BTC"""
    total_timesteps: int = 1_000_000
    """PPO steps per parent (after the clone of passive)"""
    sweep_steps: str = "1,2,4,8"
    """comma-separated k of PassiveReprice(market_steps=k), each paired with the agent"""
    floor_bands: str = "0.05,0.1,0.2"
    """comma-separated bands of PassiveWithFloor (passive that takes when it falls this far behind a straight line)"""
    n_envs: int = 256
    """training lanes (the main job's)"""
    batch_size: int = 2048
    """PPO minibatch size (the main job's)"""
    imitate_steps: int = 65_536
    """demonstration steps of the clone of passive (the main job's)"""
    eval_envs: int = 256
    """evaluation lanes (seeds 10000 + lane)"""
    eval_episodes: int = 8
    """evaluation episodes per lane and policy"""
    seed: int = 0
    """training seed"""
    out_dir: str = "runs/parent_size"
    """one training run per parent in out_dir/q<quantity>"""

    def __post_init__(self) -> None:
        require(all(_number(q) > 0 for q in self.quantities.split(",")),
                f"--quantities must be comma-separated numbers of BTC > 0, got {self.quantities!r}")
        require(all(k.strip().isdigit() and int(k) >= 1 for k in self.sweep_steps.split(",")),
                f"--sweep-steps must be comma-separated ints >= 1, got {self.sweep_steps!r}")
        require(all(0 <= _number(x) < 1 for x in self.floor_bands.split(",")),
                f"--floor-bands must be comma-separated numbers in [0, 1), got {self.floor_bands!r}")
        for name in ("total_timesteps", "n_envs", "batch_size", "imitate_steps", "eval_envs", "eval_episodes"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


def _number(text: str) -> float:
    """``text`` as a float, NaN if it is not a number."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def one_parent(args: Args, quantity: str) -> pl.DataFrame:
    """Train at ``quantity``, evaluate with every baseline, add passive with a ``k``-step sweep; the paired table."""
    main_args = am.Args(quantity=quantity, total_timesteps=args.total_timesteps, seed=args.seed, real_data=False,
                        n_envs=args.n_envs, batch_size=args.batch_size, imitate_steps=args.imitate_steps,
                        save_history=False, eval_envs=args.eval_envs, eval_episodes=args.eval_episodes,
                        out_dir=str(Path(args.out_dir) / f"q{quantity}"))
    run = tr.train(am.train_args(main_args))
    eval_args = ev.Args(run_dir=str(run), n_envs=args.eval_envs, episodes=args.eval_episodes, save_history=False)
    paths = ev.evaluate(eval_args)
    episodes = pl.read_parquet(paths["table"].parent / "episodes.parquet")
    kwargs = ev.resolve(eval_args)["kwargs"]
    variants = [(f"passive, {k}-step sweep", PassiveReprice, {"market_steps": int(k)}) for k in args.sweep_steps.split(",")]
    variants += [(f"passive, {float(x):g} floor", PassiveWithFloor, {"band": float(x)}) for x in args.floor_bands.split(",")]
    for name, cls, options in variants:
        raw = make_env("orderbook/Execution-v0", args.eval_envs, **kwargs)
        policy = cls(raw, **options)
        frame = rollout(name, raw, raw, lambda obs, p=policy: p.predict(obs)[0], args.eval_episodes, eval_args.seed)
        episodes = pl.concat([episodes, frame], how="diagonal_relaxed")
    agent = episodes["policy"][0]
    means = episodes.group_by("policy", maintain_order=True).agg(pl.col("shortfall_bps").mean(), pl.col("fill_ratio").mean())
    diffs = paired(episodes, "shortfall_bps", agent).select("policy", "mean", "ci_low", "ci_high", "t")
    return means.join(diffs, on="policy", how="left").with_columns(pl.lit(quantity).alias("quantity"))


def markdown(table: pl.DataFrame) -> str:
    lines = ["| parent (BTC) | policy | shortfall (bps) | fill ratio | minus the agent (bps) [95% CI] (t) |", "|---:|---|---:|---:|---|"]
    for r in table.iter_rows(named=True):
        lines.append(f"| {r['quantity']} | {r['policy']} | {r['shortfall_bps']:.2f} | {r['fill_ratio']:.3f} | {paired_cell(r)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse(Args, argv, description=__doc__)
    t0 = time.perf_counter()
    table = pl.concat([one_parent(args, q.strip()) for q in args.quantities.split(",")])
    print(f"\norderbook/Execution-v0, synthetic market, the main job's training for {args.total_timesteps:,} steps per parent, "
          f"{args.eval_envs} lanes x {args.eval_episodes} episodes per policy, {time.perf_counter() - t0:.0f} s\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
