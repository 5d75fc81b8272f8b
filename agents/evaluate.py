"""Evaluate a trained model against the classical baselines: ``python -m agents.evaluate --help``.

    python -m agents.evaluate --run-dir runs/execution-ppo-s0

Every policy (the model, loaded with its ``VecNormalize`` statistics frozen and
rewards unnormalised, then each baseline of :mod:`agents.baselines`) runs on a
fresh :class:`~agents.vec_env.OrderbookVecEnv` with the same ``n_envs`` lanes and
seeds (lane ``b`` seeded ``seed + b``) until every lane has finished ``episodes``
episodes. The core's randomness is keyed by (seed, episode, step, ...), so episode
``k`` of lane ``b`` sees the same market for every policy (common random numbers;
broker faults are keyed by order id too, so they coincide as far as the policies'
orders do). Extra episodes of fast lanes are ignored.

Writes to ``out_dir``: ``episodes.parquet`` (one row per policy, lane and episode),
``summary.csv`` (mean, sd, 95% CI per policy and metric), ``paired.csv`` (paired
differences against the model, or the first policy without one), ``table.md``
(printed too), ``levels.csv`` (the share of each policy's order decisions at each level:
market, post-only at the near touch, 2 bps behind it, ...; also one line under the table),
``comparison.png``, for a run ``learning_curve.png`` (the shortfall of the episodes each
training rollout finished and the mean episode return against training steps,
from the run's ``progress.csv``), and with ``save_history`` each policy's episode
history in ``history/`` (an :class:`orderbook.analytics.store.EpisodeStore`, one run per policy).
Intervals are Student t 95% intervals (:mod:`agents.stats`); the printed output gives
the number of episodes per policy, the evaluation's wall time and, for a run, its
training steps and steps per second (from its ``summary.json``).

Out of sample on real data: a run trained with ``--market binance_us --split train``
is evaluated on ``--split test`` (2023-03-15..21) unless ``--split`` says otherwise;
no episode of one split uses a bar of the other.

Execution-v0 metrics: shortfall (bps of the parent notional, horizon penalty
included; lower is better), fill ratio of the parent, rejects and expiries per
episode, time to fill (steps until the parent was filled, the episode's length
when it never was). Trading-v0: return (bps of the initial value), fills, rejects,
expiries, steps.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from stable_baselines3.common.vec_env import VecNormalize

from agents.baselines import baselines_for
from agents.cli import parse, require
from agents.common import EnvId, Split, algorithm, env_kwargs, make_env, set_threads
from agents.history import history_kwargs, replace_store
from agents.plots import comparison_png, learning_curve_png
from agents.stats import markdown_table, paired, summarize
from agents.vec_env import OrderbookVecEnv
from envs.spaces import level_names as space_level_names


def level_names(task: Any) -> list[str]:
    """The names of a task's level choices (``none``, ``market``, ..., ``limit@near-2bps``, ...)."""
    return space_level_names(tuple(float(x) for x in task.passive_bps))


@dataclass
class Args:
    run_dir: str = ""
    """training run folder (model.zip, vecnormalize.pkl, args.json); empty: baselines only"""
    env_id: EnvId = "orderbook/Execution-v0"
    """env when there is no run (a run's args.json names its own)"""
    faults: Literal["", "none", "default", "high"] = ""
    """broker faults: none, default or high (empty: as trained, else default)"""
    market: Literal["", "synthetic", "binance_us"] = ""
    """market: synthetic or binance_us (empty: as trained, else synthetic)"""
    split: Split = ""
    """binance_us period: train or test (empty: test for a run trained on train, else as trained, else every bar)"""
    horizon: int = 0
    """Execution-v0 horizon in steps (0: as trained, else the env's default)"""
    quantity: str = ""
    """Execution-v0 parent in BTC (empty: as trained, else the registered 30 BTC)"""
    max_episode_steps: int = 0
    """truncation in steps (0: as trained, else the registered value)"""
    n_envs: int = 32
    """lanes evaluated side by side"""
    episodes: int = 8
    """episodes per lane and policy (n = n_envs x episodes per policy)"""
    seed: int = 10_000
    """lane b is seeded seed + b for every policy (away from the training seeds: held-out markets)"""
    baselines: str = "all"
    """comma-separated baseline names, 'all' or 'none'"""
    out_dir: str = ""
    """output folder (default: <run_dir>/eval, or runs/eval-<env>)"""
    deterministic: bool = True
    """the model acts greedily"""
    save_history: bool = True
    """write each policy's episode history to the Parquet episode store in history/ (run = policy)"""
    threads: int = 1
    """torch threads"""

    def __post_init__(self) -> None:
        for name in ("n_envs", "episodes", "threads"):
            require(getattr(self, name) >= 1, f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("horizon", "max_episode_steps"):
            require(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must be >= 0 (0: as trained), got {getattr(self, name)}")


METRICS = {
    "execution": (["shortfall_bps", "fill_ratio", "rejects", "expiries", "time_to_fill"], "shortfall_bps", "fill_ratio"),
    "trading": (["return_bps", "fills", "rejects", "expiries", "steps"], "return_bps", "fills"),
}
LABELS = {"shortfall_bps": "shortfall (bps)", "fill_ratio": "fill ratio", "rejects": "rejects / episode",
          "expiries": "expiries / episode", "time_to_fill": "time to fill (steps)", "return_bps": "return (bps)",
          "fills": "fills / episode", "steps": "steps"}


def task_kind(env_id: str) -> str:
    return "execution" if env_id.endswith("Execution-v0") else "trading"


def level_dims(raw: OrderbookVecEnv) -> np.ndarray:
    """Indices of the action dimensions that choose an order's level (one per order group)."""
    return np.asarray([d for d, name in enumerate(raw.task.layout.names) if name.split(".")[-1] == "level"], dtype=np.int64)


def rollout(name: str, env: Any, raw: OrderbookVecEnv, act: Callable[[np.ndarray], np.ndarray], episodes: int,
            seed: int, level_counts: np.ndarray | None = None) -> pl.DataFrame:
    """Run ``act`` until every lane finished ``episodes`` episodes; one row per (lane, episode). The env's
    history (bounded by its ``history`` argument) is written to its store, if it has one, at the end.
    ``level_counts`` (one slot per level choice), if given, gains the level every order group chose on every
    step of the counted episodes (as the policy asked, before the env's masks)."""
    kind = task_kind(raw.env_id)
    n = raw.num_envs
    levels = level_dims(raw)
    raw.seed(seed)
    obs = env.reset()
    count, steps = np.zeros(n, np.int64), np.zeros(n, np.int64)
    acc = {k: np.zeros(n, np.int64) for k in ("rejects", "expiries", "fills")}
    out: dict[str, list[np.ndarray]] = {}
    limit = episodes * (raw.max_episode_steps or 100_000) + 10
    for _ in range(limit):
        if not (count < episodes).any():
            break
        action = act(obs)
        if level_counts is not None and len(levels):
            np.add.at(level_counts, np.asarray(action)[count < episodes][:, levels].ravel(), 1)
        obs, _, done, _ = env.step(action)
        info = raw.step_info
        steps += 1
        for k in acc:
            acc[k] += info[k]
        take = done & (count < episodes)
        if take.any():
            cols = {"lane": np.flatnonzero(take), "episode": count[take], "rejects": acc["rejects"][take],
                    "expiries": acc["expiries"][take]}
            if kind == "execution":
                filled, left = info["parent_filled_qty"][take], info["parent_remaining_qty"][take]
                cols.update(shortfall_bps=info["shortfall_bps"][take], fill_ratio=filled / (filled + left),
                            time_to_fill=steps[take])
            else:
                cols.update(return_bps=info["return_bps"][take], fills=acc["fills"][take], steps=steps[take])
            for k, v in cols.items():
                out.setdefault(k, []).append(np.asarray(v))
        count += done
        steps[done] = 0
        for k in acc:
            acc[k][done] = 0
    else:
        raise RuntimeError(f"{name}: lanes did not finish {episodes} episodes within {limit} steps")
    raw.task.keeper.close()  # the rest of the history to its store, if any, and the run let go
    frame = pl.DataFrame({k: np.concatenate(v) for k, v in out.items()})
    return frame.with_columns(pl.lit(name).alias("policy")).sort("lane", "episode")


def load_run(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "args.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a training run: no args.json (expected model.zip, vecnormalize.pkl, args.json)")
    return json.loads(path.read_text())


def check_layout(run_dir: Path, env: OrderbookVecEnv) -> None:
    """The run's model observes and acts in the spaces of ``env``; ``ValueError`` saying both otherwise (a model
    trained on the synthetic market's two venues does not fit the replay's one venue, and SB3 would only assert)."""
    path = run_dir / "vecnormalize.pkl"
    if not path.is_file():
        return  # loading the model says which file is missing
    with path.open("rb") as f:
        saved = pickle.load(f)
    obs, act = getattr(saved, "observation_space", None), getattr(saved, "action_space", None)
    if obs is None or act is None:
        return
    nvec = lambda space: getattr(space, "nvec", np.array([])).tolist()  # noqa: E731
    if obs.shape != env.observation_space.shape or nvec(act) != nvec(env.action_space):
        raise ValueError(f"{run_dir}: the model observes {obs.shape[0]} features and acts in {nvec(act)}, but the env evaluated "
                         f"observes {env.observation_space.shape[0]} and acts in {nvec(env.action_space)}: evaluate a model on "
                         f"an env with the venues and pairs it was trained on")


def chosen_baselines(spec: str, env_id: str, kwargs: dict[str, Any], run_dir: Path | None = None) -> list[str]:
    """Baseline names from ``all``, ``none`` or a comma-separated list, checked against the env's (and, given
    ``run_dir``, the run's model against the env's spaces: :func:`check_layout`)."""
    env = make_env(env_id, 1, **kwargs)
    if run_dir is not None:
        check_layout(run_dir, env)
    names = list(baselines_for(env))
    if spec in ("all", "none"):
        return names if spec == "all" else []
    wanted = [b.strip() for b in spec.split(",") if b.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ValueError(f"unknown baselines {unknown} for {env_id}; known: {names}")
    return wanted


def model_episodes(args: Args, run_dir: Path, algo: str, env_id: str, kwargs: dict[str, Any],
                   level_counts: np.ndarray | None = None) -> pl.DataFrame:
    """The trained model's episodes: VecNormalize statistics frozen, rewards unnormalised."""
    raw = make_env(env_id, args.n_envs, **kwargs)
    env = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), raw)
    env.training, env.norm_reward = False, False
    model = algorithm(algo).load(str(run_dir / "model.zip"), device="cpu")

    def act(obs: np.ndarray) -> np.ndarray:
        extra = {"action_masks": raw.action_masks()} if algo == "MaskablePPO" else {}
        return model.predict(obs, deterministic=args.deterministic, **extra)[0]

    return rollout(f"{algo.lower()} (trained)", env, raw, act, args.episodes, args.seed, level_counts)


def level_frame(counts: dict[str, np.ndarray], names: list[str]) -> pl.DataFrame:
    """Long table: policy, level (its name), steps, share of the policy's order decisions."""
    rows = [dict(policy=p, level=names[k], steps=int(c[k]), share=float(c[k] / max(c.sum(), 1)))
            for p, c in counts.items() for k in range(len(names))]
    return pl.DataFrame(rows, schema=dict(policy=pl.String, level=pl.String, steps=pl.Int64, share=pl.Float64))


def level_line(levels: pl.DataFrame, policy: str) -> str:
    """``policy: name share, ...`` for the levels a policy chose at least once (largest share first)."""
    rows = levels.filter((pl.col("policy") == policy) & (pl.col("steps") > 0)).sort("share", descending=True)
    return f"{policy}: " + ", ".join(f"{r['level']} {r['share']:.3f}" for r in rows.iter_rows(named=True))


def write_results(out: Path, episodes: pl.DataFrame, kind: str, title: str, notes: str = "") -> dict[str, Path]:
    """Summary, paired differences against the first policy, table, plot; printed and written (``notes``:
    lines printed and written under the table)."""
    metrics, key_metric, bar_metric = METRICS[kind]
    summary = summarize(episodes, metrics)
    diffs = paired(episodes, key_metric, episodes["policy"][0])
    table = markdown_table(summary, diffs, metrics, LABELS, key_metric)
    paths = {
        "episodes": out / "episodes.parquet", "summary": out / "summary.csv", "paired": out / "paired.csv",
        "table": out / "table.md", "plot": out / "comparison.png",
    }
    episodes.write_parquet(paths["episodes"])
    summary.write_csv(paths["summary"])
    diffs.write_csv(paths["paired"])
    table = f"{table}\n{notes}" if notes else table
    paths["table"].write_text(f"# {title}\n\n{table}\n")
    comparison_png(paths["plot"], episodes, summary, diffs, key_metric, LABELS, bar_metric, title)
    print(f"[evaluate] {title}\n\n{table}\n", flush=True)
    print(f"[evaluate] table: {paths['table']} (and {paths['summary'].name}, {paths['paired'].name}, {paths['episodes'].name}); "
          f"plot: {paths['plot']}", flush=True)
    return paths


def resolve(args: Args) -> dict[str, Any]:
    """What ``args`` ask for, checked before anything is created: the run's arguments, env, kwargs
    and baselines. Raises ``ValueError`` (the CLI: one line, exit 2) for a folder that is not a
    run, unknown baselines, or nothing to evaluate."""
    run_dir = Path(args.run_dir) if args.run_dir else None
    trained = load_run(run_dir) if run_dir else {}
    env_id = trained.get("env_id", args.env_id)
    faults = args.faults or trained.get("faults", "default")
    market = args.market or trained.get("market", "synthetic")
    trained_split = trained.get("split", "") if market == trained.get("market", "synthetic") else ""
    split = args.split or ("test" if trained_split == "train" else trained_split)  # out of sample by default
    kwargs = env_kwargs(env_id, faults, market, args.horizon or trained.get("horizon", 0),
                        args.max_episode_steps or trained.get("max_episode_steps", 0), split,
                        quantity=args.quantity or trained.get("quantity", ""))
    wanted = chosen_baselines(args.baselines, env_id, kwargs, run_dir)
    if run_dir is None and not wanted:
        raise ValueError("nothing to evaluate: give --run-dir or some --baselines")
    return dict(run_dir=run_dir, trained=trained, env_id=env_id, faults=faults, kwargs=kwargs, wanted=wanted, market=market, split=split)


def evaluate(args: Args) -> dict[str, Path]:
    """Evaluate the model and the baselines; write the table and the plot; return the paths written."""
    t0 = time.perf_counter()
    what = resolve(args)
    run_dir, trained, env_id, faults, kwargs, wanted = (what[k] for k in ("run_dir", "trained", "env_id", "faults", "kwargs", "wanted"))
    set_threads(args.threads)
    kind = task_kind(env_id)
    out = Path(args.out_dir) if args.out_dir else (run_dir / "eval" if run_dir else Path("runs") / f"eval-{kind}")
    out.mkdir(parents=True, exist_ok=True)
    if args.save_history:
        replace_store(out / "history")  # a rerun replaces the policies' histories, as it does the table

    def with_history(name: str) -> dict[str, Any]:  # each policy's history is a run of the store in history/
        return {**kwargs, **history_kwargs(out / "history", name, args.save_history)}

    algo = trained.get("algo", "PPO")
    probe = make_env(env_id, 1, **kwargs)
    names = level_names(probe.task)
    probe.close()
    counts: dict[str, np.ndarray] = {}
    frames = []
    if run_dir:
        counts[f"{algo.lower()} (trained)"] = np.zeros(len(names), np.int64)
        frames.append(model_episodes(args, run_dir, algo, env_id, with_history(algo.lower()), counts[f"{algo.lower()} (trained)"]))
    for name in wanted:
        raw = make_env(env_id, args.n_envs, **with_history(name))
        policy = baselines_for(raw, seed=args.seed)[name]
        counts[name] = np.zeros(len(names), np.int64)
        frames.append(rollout(name, raw, raw, lambda obs, p=policy: p.predict(obs)[0], args.episodes, args.seed, counts[name]))
    episodes = pl.concat(frames, how="diagonal_relaxed").select("policy", "lane", "episode", *METRICS[kind][0])
    market = what["market"] + (f" ({what['split']} split)" if what["split"] else "")
    title = (f"{env_id}, faults {faults}, market {market}, {args.n_envs} lanes x {args.episodes} episodes, "
             f"seeds {args.seed}..{args.seed + args.n_envs - 1}")
    notes = [f"Episodes: {args.n_envs * args.episodes} per policy, {episodes['policy'].n_unique()} policies; "
             f"evaluation wall time {time.perf_counter() - t0:.1f} s."]
    trained_summary = run_dir / "summary.json" if run_dir else None
    if trained_summary is not None and trained_summary.is_file():
        s = json.loads(trained_summary.read_text())
        notes.append(f"Training: {s.get('timesteps', 0):,} steps in {s.get('seconds', 0.0):.1f} s wall time "
                     f"({s.get('steps_per_s', 0.0):,.0f} steps/s while learning).")
    levels = level_frame(counts, names)
    notes.append(f"Levels chosen (share of order decisions on every step of the counted episodes; the model {'greedy' if args.deterministic else 'sampled'}): "
                 + "; ".join(level_line(levels, p) for p in counts))
    paths = write_results(out, episodes, kind, title, "\n".join(notes))
    levels.write_csv(out / "levels.csv")
    paths["levels"] = out / "levels.csv"
    progress = run_dir / "progress.csv" if run_dir else None
    if progress is not None and progress.is_file():
        curve = learning_curve_png(out / "learning_curve.png", progress, f"training: {run_dir.name} ({trained.get('algo', 'PPO')} on {env_id})")
        if curve is not None:
            paths["learning_curve"] = curve
            print(f"[evaluate] learning curve: {curve}", flush=True)
    return paths


def run(argv: list[str] | None = None) -> dict[str, Path]:
    """Parse ``argv`` (bad values, a folder that is not a run, unknown baselines: one line on stderr,
    exit 2, nothing created), evaluate; the paths written."""
    return evaluate(parse(Args, argv, description=__doc__, check=resolve))


def main(argv: list[str] | None = None) -> None:
    """``python -m agents.evaluate`` and the ``orderbook-evaluate`` console script."""
    run(argv)


if __name__ == "__main__":
    main()
