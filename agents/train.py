"""Train an SB3 agent on an orderbook env: ``python -m agents.train --help``.

    python -m agents.train --env-id orderbook/Execution-v0 --algo PPO --total-timesteps 100000

One :class:`agents.vec_env.OrderbookVecEnv` of ``n_envs`` lanes (the native
batched task, same-step reset), under ``VecMonitor`` (raw episode returns: for
Execution, minus the shortfall in bps), with ``--drift-control`` then
:class:`agents.rewards.DriftControl` (Execution: the price's drift taken out of the
training reward, ``--holding-bps`` an urgency charge on the remainder), and
``VecNormalize`` (observations and rewards). Lane ``b`` is seeded ``seed + b``; the policy's weights and sampling
with ``seed`` (SB3 ``set_random_seed``). With ``--imitate NAME`` the policy and its value head
first clone that baseline on ``--imitate-steps`` of its demonstrations in this same wrapped env
(:mod:`agents.imitation`; PPO then trains ``--total-timesteps`` more, 0 for the clone alone). Writes to ``out_dir``:

- ``model.zip`` and ``vecnormalize.pkl`` (load them together; see ``agents.evaluate``),
  ``args.json`` (these arguments: the env is rebuilt from them), ``summary.json``;
- ``progress.csv`` (SB3's logger, with ``time/steps_per_s`` and, for Execution, ``rollout/shortfall_bps``:
  the mean shortfall of the episodes each rollout finished, the learning curve ``agents.evaluate`` draws);
- ``history/``: the core's episode history as an :class:`orderbook.analytics.store.EpisodeStore`
  (run = the folder's name): the env keeps each lane's current episode in memory and
  writes older ones to the store as it drops them (:mod:`orderbook.analytics.retention`), the
  rest at the end, so memory stays flat; ``EpisodeStore(out_dir / "history").scan("events")``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from agents.cli import as_dict, parse, require
from agents.common import Algo, EnvId, FaultLevel, Market, Reward, Split, algorithm, env_kwargs, make_env, set_threads
from agents.history import history_kwargs, replace_store
from agents.imitation import IMITATE_CHOICES, Imitate, baseline_names, warm_start
from agents.rewards import DriftControl
from orderbook.compile import compile_notice


@dataclass
class Args:
    env_id: EnvId = "orderbook/Execution-v0"
    """registered env id: orderbook/Execution-v0 or orderbook/Trading-v0"""
    algo: Algo = "PPO"
    """algorithm: PPO, A2C (stable-baselines3) or MaskablePPO (sb3-contrib, uses the env's action masks)"""
    n_envs: int = 16
    """lanes of the batched env (one SB3 VecEnv over the native task)"""
    total_timesteps: int = 100_000
    """env steps to train for (summed over lanes)"""
    seed: int = 0
    """seed of the policy and of the lanes (lane b gets seed + b)"""
    out_dir: str = ""
    """output folder (default: runs/<env>-<algo>-s<seed>)"""
    faults: FaultLevel = "default"
    """broker faults: none, default (FaultSpec()) or high (FaultSpec.high())"""
    market: Market = "synthetic"
    """market data: synthetic (built-in) or binance_us (1-minute bars replayed from the packaged Binance.US sample)"""
    split: Split = ""
    """binance_us period every episode stays inside: train (2023-03-01..14) or test (03-15..21), UTC; empty: every bar"""
    reward: Reward = "shortfall"
    """Execution-v0 reward: shortfall, arrival or marked (see envs.ExecutionEnv, Rewards)"""
    drift_control: bool = False
    """Execution-v0: add the price-drift control variate to the training reward (agents.rewards.DriftControl; mean zero, lower variance)"""
    holding_bps: float = 0.0
    """with --drift-control: charge this many bps of the parent notional per step on the unfilled remainder (urgency)"""
    horizon: int = 0
    """Execution-v0 parent horizon in steps (0: the env's default, 60)"""
    quantity: str = ""
    """Execution-v0 parent in BTC (empty: the registered 30 BTC); above it the market's default account is scaled to hold it"""
    max_episode_steps: int = 0
    """truncation in steps (0: the registered value, or the horizon when one is given)"""
    learning_rate: float = 3e-4
    """optimizer learning rate"""
    n_steps: int = 0
    """rollout steps per lane per update (0: 128 for PPO/MaskablePPO, 8 for A2C)"""
    batch_size: int = 256
    """PPO minibatch size"""
    n_epochs: int = 5
    """PPO epochs per update"""
    gamma: float = 0.99
    """discount factor (episodes are at most a few hundred steps)"""
    gae_lambda: float = 0.95
    """GAE lambda"""
    clip_range: float = 0.2
    """PPO clip range"""
    ent_coef: float = 0.01
    """entropy bonus (keeps the MultiDiscrete policy exploring early on)"""
    net_arch: str = "64,64"
    """hidden layer sizes of the policy and value MLPs, comma-separated"""
    threads: int = 1
    """torch threads (1 is fastest for this small MLP on the 2-core box; see agents.common.set_threads)"""
    progress_bar: bool = True
    """show SB3's progress bar (tqdm + rich)"""
    save_history: bool = True
    """write the episode history as Parquet (else the env records none)"""
    log_every: int = 5
    """print a line every this many rollouts"""
    imitate: Imitate = "none"
    """warm start: behaviour-clone this baseline (policy and value head) before PPO (agents.imitation); none: from scratch"""
    imitate_steps: int = 65_536
    """with --imitate: env steps (summed over lanes) of the baseline's demonstrations"""
    imitate_epochs: int = 30
    """with --imitate: passes of the behaviour-cloning fit over the demonstrations"""

    def __post_init__(self) -> None:
        for name in ("n_envs", "batch_size", "n_epochs", "threads", "log_every", "imitate_steps", "imitate_epochs"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        require(self.imitate in IMITATE_CHOICES, f"--imitate must be one of {IMITATE_CHOICES}, got {self.imitate!r}")
        require(self.imitate == "none" or self.imitate in baseline_names(self.env_id),
                f"--imitate must name a baseline of {self.env_id}: one of {('none', *baseline_names(self.env_id))}, got {self.imitate!r}")
        require(self.total_timesteps >= 1 or (self.total_timesteps == 0 and self.imitate != "none"),
                f"--total-timesteps must be >= 1 (0 only with --imitate: the cloned policy alone), got {self.total_timesteps}")
        for name in ("horizon", "max_episode_steps", "n_steps"):
            require(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must be >= 0 (0: the default), got {getattr(self, name)}")
        require(self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}")
        arch = [x for x in self.net_arch.split(",") if x.strip()]  # empty: no hidden layer
        require(all(x.strip().isdigit() and int(x) > 0 for x in arch),
                f"--net-arch must be comma-separated layer sizes > 0 such as 64,64, got {self.net_arch!r}")
        env_kwargs(self.env_id, self.faults, self.market, self.horizon, self.max_episode_steps, self.split, self.reward, self.quantity)
        require(np.isfinite(self.holding_bps) and self.holding_bps >= 0, f"--holding-bps must be a finite number >= 0, got {self.holding_bps}")
        require(self.holding_bps == 0 or self.drift_control, f"--holding-bps applies with --drift-control, got {self.holding_bps} without it")
        require(not self.drift_control or self.env_id.endswith("Execution-v0"),
                f"--drift-control applies to orderbook/Execution-v0 only, got env {self.env_id}")


def default_out_dir(args: Args) -> Path:
    short = args.env_id.split("/")[-1].split("-")[0].lower()
    return Path("runs") / f"{short}-{args.algo.lower()}-s{args.seed}"


def hyperparameters(args: Args) -> dict:
    arch = [int(x) for x in args.net_arch.split(",") if x.strip()]
    common = dict(learning_rate=args.learning_rate, gamma=args.gamma, gae_lambda=args.gae_lambda, ent_coef=args.ent_coef,
                  policy_kwargs=dict(net_arch=arch))
    if args.algo == "A2C":
        return dict(common, n_steps=args.n_steps or 8)
    return dict(common, n_steps=args.n_steps or 128, batch_size=args.batch_size, n_epochs=args.n_epochs, clip_range=args.clip_range)


class RunCallback(BaseCallback):
    """Logs steps per second, episode returns and (Execution) the shortfall of the episodes each rollout
    finished (``rollout/shortfall_bps``, the learning curve's metric); writes the history left in memory at the end."""

    def __init__(self, keeper, log_every: int, raw=None):
        super().__init__()
        self.keeper, self.log_every, self.raw = keeper, max(log_every, 1), raw
        self.rollouts = 0
        self.t0 = self.compile0 = 0.0
        self.shortfalls: list[np.ndarray] = []

    def _on_training_start(self) -> None:
        self.t0, self.compile0 = time.perf_counter(), compile_notice.compile_seconds()

    def _on_step(self) -> bool:
        info = self.raw.step_info if self.raw is not None else {}
        if "shortfall_bps" in info:
            done = np.asarray(self.locals["dones"], dtype=bool)
            if done.any():
                self.shortfalls.append(np.asarray(info["shortfall_bps"])[done])
        return True

    def compile_s(self) -> float:
        """Seconds of kernel compiling (first run only) since training started: not stepping time."""
        return compile_notice.compile_seconds() - self.compile0

    def steps_per_s(self) -> float:
        return self.num_timesteps / max(time.perf_counter() - self.t0 - self.compile_s(), 1e-9)

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        if self.rollouts == 1:
            compile_notice.finish()  # "compiled N kernels in X s" on stderr, when this run compiled any
        sps = self.steps_per_s()
        self.logger.record("time/steps_per_s", sps)
        shortfall = np.concatenate(self.shortfalls) if self.shortfalls else np.zeros(0)
        self.shortfalls = []
        if len(shortfall):
            self.logger.record("rollout/shortfall_bps", float(shortfall.mean()))
            self.logger.record("rollout/episodes", len(shortfall))
        if self.rollouts % self.log_every == 0:
            returns = [ep["r"] for ep in self.model.ep_info_buffer]
            ret = f"episode return {np.mean(returns):+.2f} over the last {len(returns)}" if returns else "no episode yet"
            cost = f", shortfall {shortfall.mean():.2f} bps over this rollout's {len(shortfall)}" if len(shortfall) else ""
            print(f"[train] {self.num_timesteps:,} steps  {sps:,.0f} steps/s  {ret}{cost}", flush=True)

    def _on_training_end(self) -> None:
        self.keeper.flush()


def progress_bar_available() -> bool:
    """SB3's progress bar needs tqdm and rich (the ``train`` extra installs both)."""
    try:
        import rich  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def train(args: Args) -> Path:
    """Train, save model + normalisation + arguments + history into the output folder; return it."""
    algo_cls = algorithm(args.algo)  # choices checked before anything is created
    kwargs = env_kwargs(args.env_id, args.faults, args.market, args.horizon, args.max_episode_steps, args.split, args.reward,
                        args.quantity)
    out = Path(args.out_dir) if args.out_dir else default_out_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    threads = set_threads(args.threads)
    compile_notice.install()
    t_start = time.perf_counter()
    compile_start = compile_notice.compile_seconds()
    if args.save_history:
        replace_store(out / "history")  # a rerun into this folder replaces its history, as it does the model
    raw = make_env(args.env_id, args.n_envs, **kwargs, **history_kwargs(out / "history", out.name, args.save_history))
    raw.seed(args.seed)
    monitored = VecMonitor(raw)  # episode returns as the env pays them (the learning curve), before any control variate
    venv = VecNormalize(DriftControl(monitored, args.holding_bps) if args.drift_control else monitored, norm_obs=True, norm_reward=True, gamma=args.gamma)
    model = algo_cls("MlpPolicy", venv, seed=args.seed, verbose=0, device="cpu", **hyperparameters(args))
    model.set_logger(configure(str(out), ["csv"]))
    keeper = raw.task.keeper
    callback = RunCallback(keeper, args.log_every, raw)
    print(f"[train] {args.algo} on {args.env_id}: {args.n_envs} lanes, {args.total_timesteps:,} steps, seed {args.seed}, "
          f"faults {args.faults}, market {args.market}{f' ({args.split} split)' if args.split else ''}, reward {args.reward}"
          f"{' + drift control' if args.drift_control else ''}{f' + holding {args.holding_bps:g} bps/step' if args.holding_bps else ''}, "
          f"torch threads {threads} -> {out}", flush=True)
    imitation = None
    if args.imitate != "none":
        imitation = warm_start(model, venv, args.imitate, args.imitate_steps, args.gamma, epochs=args.imitate_epochs, seed=args.seed)
        print(f"[train] imitated {args.imitate}: {imitation['steps']:,} steps ({imitation['episodes']:,} episodes) recorded in "
              f"{imitation['record_seconds']:.1f} s, fitted in {imitation['fit_seconds']:.1f} s; action NLL "
              f"{imitation['policy_nll'][0]:.3f} -> {imitation['policy_nll'][-1]:.3f}, value MSE {imitation['value_mse'][0]:.3f} -> "
              f"{imitation['value_mse'][-1]:.3f}, greedy agreement on held-out steps {imitation['held_out_agreement']:.3f}", flush=True)
    bar = args.progress_bar and progress_bar_available()
    if args.progress_bar and not bar:
        print("[train] tqdm and rich are not installed: no progress bar (pip install tqdm rich); progress lines below", flush=True)
    model.learn(total_timesteps=args.total_timesteps, callback=callback, progress_bar=bar)
    seconds = time.perf_counter() - t_start
    compile_s = compile_notice.compile_seconds() - compile_start
    model.save(out / "model.zip")
    venv.save(str(out / "vecnormalize.pkl"))
    (out / "args.json").write_text(json.dumps(as_dict(args), indent=2) + "\n")
    returns = [float(ep["r"]) for ep in model.ep_info_buffer]
    summary = {"timesteps": int(model.num_timesteps), "seconds": round(seconds, 2), "compile_seconds": round(compile_s, 2),
               "steps_per_s": round(callback.steps_per_s(), 1), "recent_episode_return_mean": float(np.mean(returns)) if returns else None,
               "history_rows": keeper.rows_written, "history_files": keeper.files_written, "imitation": imitation}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    compiled = f", of which {compile_s:.1f} s compiling kernels (first run only)" if compile_s >= 0.05 else ""
    print(f"[train] done: {model.num_timesteps:,} steps in {seconds:.1f} s{compiled} ({summary['steps_per_s']:,.0f} steps/s while learning); "
          f"saved model.zip, vecnormalize.pkl, args.json, history/ in {out}", flush=True)
    venv.close()
    return out


def run(argv: list[str] | None = None) -> Path:
    """Parse ``argv`` (bad values: one line on stderr, exit 2, nothing created), train; the output folder."""
    return train(parse(Args, argv, description=__doc__))


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.train`` and the ``orderbook-train`` console script."""
    run(argv)


if __name__ == "__main__":
    main()
