"""The package's main job: train an agent, then compare it with the classical strategies.

    python -m agents.main            # or: python -m agents.main --help

1. ``agents.train``: PPO on ``orderbook/Execution-v0`` as registered (buy 30 BTC, a
   tenth of the market's mean volume, within 60 one-minute steps on two venues of the synthetic market, every broker
   fault on), on one batched env of ``n_envs`` lanes, ``total_timesteps`` steps,
   starting from a behaviour clone of passive repricing (``--imitate``, :mod:`agents.imitation`:
   65,536 demonstration steps, ~10-20 s);
2. ``agents.evaluate``: the trained model and every baseline (TWAP, Almgren-Chriss,
   passive limit with repricing, all at once, random) on the same held-out seeds
   (common random numbers): a table of shortfall, fill ratio, rejects, expiries and
   time to fill with 95% intervals and paired differences (4,096 paired episodes), the training's wall time
   and steps per second, a comparison PNG and the learning curve;
3. ``agents.real_data`` (unless ``--no-real-data``): the same task on real bars, out of
   sample: PPO trained on the Binance.US BTC/USD replay's train split (2023-03-01..14)
   with that module's measured configuration, from the same clone of passive repricing
   (``--real-imitate``), then it and every baseline evaluated on
   the test split (03-15..21), with the checks an out-of-sample claim needs (every
   window inside the test split, intervals clustered by time block). Into
   ``out_dir/real``.

Both tables are printed again at the end, one under the other.

The training configuration uses the batched core: 256 lanes x 32 steps = 8,192-step
rollouts, minibatches of 2,048, 5 epochs, ``gamma`` 0.999 (the parent's horizon is
60 steps), no entropy bonus, and the shortfall reward with two training-side terms
(:mod:`agents.rewards`): a control variate that takes the price's drift out of the
reward (mean zero; on 60 steps the drift, ~8 bps per step, drowns the few bps a policy
controls) and an urgency charge of ``holding_bps`` per step on the unfilled remainder
(without the drift the agent is risk-neutral and would finish late, which widens
every paired interval). Why these: ``benchmarks/RESULTS.md``, "Issue 15: the main
job learns the registered Execution-v0", with every run tried. Why the behaviour-cloning
start (synthetic only): "Issue 15: PPO from imitation of passive": from scratch PPO lands
0.2-0.3 bps behind passive repricing; from the clone it ties it and PPO does not move it. Everything lands in
``out_dir`` (``model.zip``, ``vecnormalize.pkl``, ``args.json``, ``progress.csv``,
``summary.json``, ``history/``, ``eval/table.md``, ``eval/comparison.png``,
``eval/learning_curve.png``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from agents import evaluate as ev
from agents import real_data as rd
from agents import train as tr
from agents.cli import parse, require
from agents.common import FaultLevel, Reward
from agents.imitation import Imitate


@dataclass
class Args:
    total_timesteps: int = 2_000_000
    """PPO training steps (summed over lanes)"""
    n_envs: int = 256
    """training lanes (one batched env)"""
    horizon: int = 0
    """parent horizon in one-minute steps (0: the registered task's, 60)"""
    faults: FaultLevel = "default"
    """broker faults: none, default or high"""
    quantity: str = ""
    """parent in BTC on both markets (empty: the registered task's 30 BTC); above it each market's default account
    is scaled to hold it (agents.common.parent_account)"""
    reward: Reward = "shortfall"
    """the env's reward option: shortfall, arrival or marked (envs.ExecutionEnv, Rewards)"""
    drift_control: bool = True
    """add the price-drift control variate to the training reward (agents.rewards.DriftControl)"""
    holding_bps: float = 0.1
    """urgency: bps of the parent notional charged per step on the unfilled remainder (with drift control)"""
    n_steps: int = 32
    """rollout steps per lane per update (a rollout is n_envs x n_steps)"""
    batch_size: int = 2048
    """PPO minibatch size"""
    n_epochs: int = 5
    """PPO epochs per update"""
    learning_rate: float = 3e-4
    """optimizer learning rate"""
    gamma: float = 0.999
    """discount factor (the parent's horizon is 60 steps)"""
    ent_coef: float = 0.0
    """entropy bonus"""
    seed: int = 0
    """training seed (evaluation uses seeds 10000 + lane)"""
    eval_envs: int = 256
    """evaluation lanes"""
    eval_episodes: int = 16
    """evaluation episodes per lane and policy (256 lanes x 16 = 4,096 paired episodes per policy)"""
    out_dir: str = "runs/main"
    """output folder"""
    progress_bar: bool = False
    """show the training progress bar (else a progress line every 10 rollouts)"""
    save_history: bool = True
    """write the training's and the evaluation's episode histories to history/ (~0.5 GB for 2M training steps)"""
    real_data: bool = True
    """also train on the Binance.US replay's train split and evaluate on its test split (agents.real_data)"""
    real_timesteps: int = 2_000_000
    """PPO training steps on the replay's train split"""
    imitate: Imitate = "passive"
    """synthetic training's warm start: behaviour-clone this baseline before PPO (agents.imitation); none: from scratch"""
    real_imitate: Imitate = "passive"
    """the real-data training's warm start (none: from scratch; from scratch the replay's PPO lost to passive and
    tied random after the maker-fill change, from the clone it ties passive: benchmarks/RESULTS.md, issue 15)"""
    imitate_steps: int = 65_536
    """with --imitate / --real-imitate: env steps of the baseline's demonstrations"""

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "n_envs", "eval_envs", "eval_episodes", "n_steps", "batch_size", "n_epochs", "real_timesteps"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        require(self.horizon >= 0, f"--horizon must be >= 0 (0: the env's default, 60), got {self.horizon}")
        require(self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}")
        require(0 < self.gamma <= 1, f"--gamma must be in (0, 1], got {self.gamma}")
        train_args(self)  # the training run's own checks (--holding-bps without --drift-control, ...), before anything is created
        real_args(self)


def real_args(args: Args) -> rd.Args:
    """The real-data part: ``agents.real_data``'s measured configuration, the main job's seed, steps and folder."""
    return rd.Args(total_timesteps=args.real_timesteps, seed=args.seed, out_dir=str(Path(args.out_dir) / "real"),
                   progress_bar=args.progress_bar, save_history=args.save_history, imitate=args.real_imitate,
                   imitate_steps=args.imitate_steps, quantity=args.quantity)


def train_args(args: Args) -> tr.Args:
    """The training run the main job asks for (the ``train``-marker test trains the same configuration)."""
    return tr.Args(env_id="orderbook/Execution-v0", algo="PPO", n_envs=args.n_envs, total_timesteps=args.total_timesteps,
                   seed=args.seed, out_dir=args.out_dir, faults=args.faults, market="synthetic", horizon=args.horizon,
                   reward=args.reward, drift_control=args.drift_control, holding_bps=args.holding_bps, n_steps=args.n_steps, batch_size=args.batch_size,
                   n_epochs=args.n_epochs, learning_rate=args.learning_rate, gamma=args.gamma, ent_coef=args.ent_coef,
                   progress_bar=args.progress_bar, save_history=args.save_history, log_every=10, imitate=args.imitate,
                   imitate_steps=args.imitate_steps, quantity=args.quantity)


def run(argv: list[str] | None = None) -> dict[str, Path]:
    """Parse ``argv`` (bad values: one line on stderr, exit 2, nothing created), train, evaluate; the paths written
    (the real-data part's under ``real_*`` keys)."""
    args = parse(Args, argv, description=__doc__)
    t0 = time.perf_counter()
    run = tr.train(train_args(args))
    t1 = time.perf_counter()
    paths = ev.evaluate(ev.Args(run_dir=str(run), n_envs=args.eval_envs, episodes=args.eval_episodes, save_history=args.save_history))
    t2 = time.perf_counter()
    summary = json.loads((run / "summary.json").read_text())
    lines = [f"[main] synthetic: trained {summary['timesteps']:,} steps in {t1 - t0:.0f} s ({summary['steps_per_s']:,.0f} steps/s "
             f"while learning), evaluated in {t2 - t1:.0f} s"]
    parent = f", parent {args.quantity} BTC" if args.quantity else ""
    tables = [(f"Synthetic market (the registered Execution-v0{parent})", paths["table"])]
    if args.real_data:
        real = rd.real(real_args(args))
        paths.update({f"real_{k}": v for k, v in real.items()})
        tables.append(("Binance.US BTC/USD replay, out of sample (trained on the train split, evaluated on the test split)", real["table"]))
    t3 = time.perf_counter()
    if args.real_data:
        real_summary = json.loads((Path(real_args(args).out_dir) / "summary.json").read_text())
        lines.append(f"[main] real data: trained {real_summary['timesteps']:,} steps ({real_summary['steps_per_s']:,.0f} steps/s while "
                     f"learning), trained and evaluated in {t3 - t2:.0f} s")
    for title, table in tables:
        print(f"\n## {title}\n\n{table.read_text().strip()}\n", flush=True)
    print("\n".join(lines) + f"\n[main] total {t3 - t0:.0f} s", flush=True)
    for key, label in (("table", "table"), ("plot", "plot"), ("learning_curve", "learning curve"),
                       ("real_table", "real-data table"), ("real_plot", "real-data plot"), ("real_learning_curve", "real-data learning curve")):
        if key in paths:
            print(f"[main] {label}: {paths[key]}")
    return paths


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.main``."""
    run(argv)


if __name__ == "__main__":
    main()
