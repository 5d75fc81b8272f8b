"""Train PPO with RLlib on an orderbook env, on N env runners: ``python -m agents.rllib --help``.

    pip install "orderbook-gym[rllib]"
    python -m agents.rllib --env-id orderbook/Execution-v0 --env-runners 2 --iterations 3

RLlib's new API stack (``EnvRunner``, ``RLModule``, ``Learner``) runs the native
batched env on each runner (``gym_env_vectorize_mode="vector_entry_point"``:
``envs_per_runner`` lanes in one compiled task, no Python loop over lanes). The
env reaches the runners through :func:`make_env`, registered in ray's registry
(which every worker reads) as ``"orderbook-rllib"``; it imports ``envs`` itself (the plain
``gym.make_vec`` route needs the id ``"envs:orderbook/Execution-v0"``, which
imports ``envs`` in the worker; ``"orderbook/Execution-v0"`` fails there with
``NamespaceNotFound``).

Keeps true:

- **Lanes replay.** Lane ``b`` of runner ``w`` is seeded ``lane_seed(seed, w, b)``
  (a hash of the three, through numpy's ``SeedSequence``: distinct across
  runners, unlike RLlib's ``seed + worker_index`` which the env would spread
  to ``seed + worker_index + b``), and its later episodes are the lane's next
  episodes, so ``gym.make(env_id)`` reset with that seed, then reset once per
  earlier episode, replays any sampled episode under its actions. Each info
  carries ``lane_seed`` and ``lane_episode`` (episodes since seeded) to say which.
  Runner 0 is the local one (it does not sample when there are remote runners).
- **Memory stays flat on every runner.** Each runner's env keeps a bounded
  history (``history="episode"``: each lane's current episode) and, given a
  ``history_dir``, writes every row to ``EpisodeStore(history_dir)`` before it
  drops it, as its own run ``<run>-w<worker>`` (described in the runs table with
  the env id, its keyword arguments and the lanes' seeds); closing the runner
  (``algo.stop()``) writes the rest. One writer per run: two trainings into one
  store need different ``run`` names.
- **Masks as RLlib models want them.** ``action_mask=True`` wraps the env in
  :class:`ActionMaskObservation`: a Dict observation ``{"observations": ...,
  "action_mask": ...}``, the mask flat over the MultiDiscrete dimensions (the
  layout of RLlib's MultiDiscrete logits), for RLlib's action-masking RLModule.

Limits: the pin (``ray[rllib]==2.60.0``, the ``rllib`` extra) brings
``gymnasium==1.2.2``; RLlib's config names move between releases.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

ENV_IDS = ("orderbook/Execution-v0", "orderbook/Trading-v0")
FAULTS = ("none", "default", "high")
RLLIB_ENV = "orderbook-rllib"  # the name make_env is registered under in ray's registry


def lane_seed(seed: int, worker_index: int, vector_index: int) -> int:
    """The seed of lane ``vector_index`` of runner ``worker_index`` in a run seeded ``seed`` (a uint32)."""
    return int(np.random.SeedSequence([int(seed), int(worker_index), int(vector_index)]).generate_state(1, np.uint32)[0])


class RunnerLanes(gym.vector.VectorWrapper):
    """A runner's lanes: seeded from (seed, worker index, lane), their history in the runner's own store run, infos that say
    which lane and episode a step belongs to."""

    def __init__(self, env: gym.vector.VectorEnv, seed: int | None, worker_index: int = 0, *, run: str = "rllib",
                 env_id: str = "", env_kwargs: dict | None = None):
        super().__init__(env)
        self.seed, self.run, self.env_id, self.env_kwargs = seed, run, env_id, env_kwargs or {}
        self.lane_seeds: list[int] | None = None
        self.lane_episode = np.zeros(self.num_envs, dtype=np.int64)
        self._done = np.zeros(self.num_envs, dtype=bool)
        self.attach(worker_index)

    @property
    def keeper(self):
        """The env's :class:`orderbook.analytics.retention.HistoryKeeper` (its bounded history and store)."""
        return self.env.unwrapped.task.keeper

    def attach(self, worker_index: int) -> None:
        """Set the runner's index, and so its lanes' seeds and store run (RLlib hands the index to a callback,
        not to the env creator), before the first reset."""
        if self.lane_seeds is not None:
            raise RuntimeError(f"attach(worker_index={worker_index}) after the lanes were seeded for runner {self.worker_index}")
        self.worker_index = int(worker_index)
        self.keeper.run = self.store_run  # nothing is written before the first reset

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """The first reset seeds the lanes (``seed`` here only triggers it: the lanes' seeds come from the run's seed);
        a later reset starts every lane's next episode."""
        if self.lane_seeds is None and (seed is not None or self.seed is not None):
            base = self.seed if self.seed is not None else seed
            self.lane_seeds = [lane_seed(base, self.worker_index, b) for b in range(self.num_envs)]
            obs, info = self.env.reset(seed=self.lane_seeds, options=options)
            self.lane_episode[:] = 0
            self._describe()
        else:
            obs, info = self.env.reset(options=options)
            self.lane_episode += 1
        self._done[:] = False
        return obs, self._tagged(info)

    def step(self, actions):
        self.lane_episode += self._done  # NEXT_STEP autoreset: these lanes start their next episode now
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self._done = terminated | truncated
        return obs, reward, terminated, truncated, self._tagged(info)

    def _tagged(self, info: dict) -> dict:
        info = dict(info)
        seeds = self.lane_seeds if self.lane_seeds is not None else [-1] * self.num_envs
        info["lane_seed"], info["_lane_seed"] = np.array(seeds, dtype=np.int64), np.ones(self.num_envs, dtype=bool)
        info["lane_episode"], info["_lane_episode"] = self.lane_episode.copy(), np.ones(self.num_envs, dtype=bool)
        return info

    # ------------------------------------------------------------ history
    @property
    def store_run(self) -> str:
        return f"{self.run}-w{self.worker_index}"

    def _describe(self) -> None:
        store = self.keeper.store
        if store is not None:
            store.describe_run(self.keeper.run, env_id=self.env_id, config=self.env_kwargs, seeds=self.lane_seeds)


class ActionMaskObservation(gym.vector.VectorObservationWrapper):
    """Observations as ``{"observations": obs, "action_mask": mask}`` (RLlib's action-masking convention).

    ``action_mask`` is ``(num_envs, sum(nvec))`` float32 of 0/1: for each
    MultiDiscrete dimension in turn, which of its choices are allowed (the env's
    ``action_masks()``, the layout of RLlib's concatenated MultiDiscrete logits).
    """

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        n = int(np.sum(env.single_action_space.nvec))
        mask = gym.spaces.Box(0.0, 1.0, (n,), np.float32)
        self.single_observation_space = gym.spaces.Dict({"observations": env.single_observation_space, "action_mask": mask})
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)

    def observations(self, observations: np.ndarray) -> dict[str, np.ndarray]:
        return {"observations": observations, "action_mask": self.env.unwrapped.action_masks().astype(np.float32)}


def make_env(config: dict) -> gym.vector.VectorEnv:
    """The env of one runner, from RLlib's env config: ``env_id``, ``num_envs``, ``seed``, ``faults``, ``horizon``,
    ``action_mask``, ``history_dir``, ``run`` (the runner's index is set later, by :func:`attach_runner`)."""
    import envs  # noqa: F401  (registers the ids in this worker)
    import orderbook as ob

    cfg = dict(config)
    env_id = cfg.get("env_id", ENV_IDS[0])
    if env_id not in ENV_IDS:
        raise ValueError(f"env_id must be one of {ENV_IDS}, got {env_id!r}")
    faults = cfg.get("faults", "default")
    if faults not in FAULTS:
        raise ValueError(f"faults must be one of {FAULTS}, got {faults!r}")
    kwargs: dict[str, Any] = {"faults": {"none": ob.FaultSpec.none, "default": ob.FaultSpec, "high": ob.FaultSpec.high}[faults]()}
    if cfg.get("horizon"):
        kwargs["horizon"] = int(cfg["horizon"])
    max_steps = int(cfg.get("max_episode_steps") or cfg.get("horizon") or gym.spec(env_id).max_episode_steps)
    from agents.history import run_name

    run = run_name(str(cfg.get("run") or "rllib"))[:120]  # a valid store run name, with room for "-w<runner>"
    if cfg.get("history_dir"):  # the run is renamed <run>-w<worker> once the runner is known
        kwargs.update(history_store=str(cfg["history_dir"]), history_run=f"{run}-w0")
    env = gym.make_vec(env_id, num_envs=int(cfg.get("num_envs", 1)), vectorization_mode="vector_entry_point",
                       max_episode_steps=max_steps, history="episode", **kwargs)
    env = RunnerLanes(env, cfg.get("seed"), getattr(config, "worker_index", 0) or 0, run=run, env_id=env_id,
                      env_kwargs={"faults": faults, "horizon": cfg.get("horizon"), "max_episode_steps": max_steps,
                                  "num_envs": int(cfg.get("num_envs", 1)), "action_mask": bool(cfg.get("action_mask"))})
    return ActionMaskObservation(env) if cfg.get("action_mask") else env


def runner_lanes(env: gym.Env) -> RunnerLanes | None:
    """The :class:`RunnerLanes` in ``env``'s wrapper chain."""
    while env is not None:
        if isinstance(env, RunnerLanes):
            return env
        env = getattr(env, "env", None)
    return None


def attach_runner(env_runner, **_: Any) -> None:
    """RLlib's ``on_environment_created`` callback: tell the runner's lanes which runner they are on."""
    lanes = runner_lanes(env_runner.env)
    if lanes is not None:
        lanes.attach(env_runner.worker_index)


# ------------------------------------------------------------------ the CLI
@dataclass
class Args:
    env_id: str = "orderbook/Execution-v0"
    """registered env id: orderbook/Execution-v0 or orderbook/Trading-v0"""
    env_runners: int = 2
    """remote env runners (ray actors) sampling in parallel"""
    envs_per_runner: int = 8
    """lanes of the native batched env on each runner"""
    iterations: int = 3
    """PPO training iterations (algo.train() calls)"""
    seed: int = 0
    """seed of the run: lane b of runner w is seeded lane_seed(seed, w, b); also the policy's"""
    faults: str = "default"
    """broker faults: none, default or high"""
    horizon: int = 0
    """Execution-v0 parent horizon in steps (0: the env's default)"""
    action_mask: bool = False
    """Dict observations with an action_mask key, and RLlib's action-masking RLModule"""
    train_batch_size: int = 2048
    """env steps per training iteration (train_batch_size_per_learner)"""
    minibatch_size: int = 256
    """SGD minibatch size"""
    epochs: int = 4
    """SGD passes over each batch"""
    rollout_fragment_length: int = 64
    """vector steps a runner samples per request"""
    sample_timeout_s: float = 600.0
    """how long a runner may take to sample (its first sample compiles the env's kernels when numba's cache is cold)"""
    learning_rate: float = 3e-4
    """optimizer learning rate"""
    hidden: int = 64
    """width of the two hidden layers of the policy and value networks"""
    out_dir: str = ""
    """output folder (default: runs/rllib-<env>-s<seed>): history/ (the episode store), summary.json"""
    save_history: bool = True
    """write the runners' histories to out_dir/history (else each keeps only its lanes' current episodes)"""
    num_cpus: int = 0
    """CPUs of the local ray cluster (0: all)"""
    object_store_mb: int = 0
    """ray object store size in MB (0: ray's default)"""


def env_config(args: Args, out: Path | None) -> dict[str, Any]:
    return {"env_id": args.env_id, "num_envs": args.envs_per_runner, "seed": args.seed, "faults": args.faults,
            "horizon": args.horizon, "action_mask": args.action_mask,
            "history_dir": str(out / "history") if out is not None and args.save_history else None,
            "run": out.name if out is not None else "rllib"}


def build_config(args: Args, out: Path | None = None):
    """RLlib's ``PPOConfig`` for ``args`` (new API stack; env runners use the native batched env)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.tune.registry import register_env

    register_env(RLLIB_ENV, make_env)  # ray's registry reaches the remote runners
    config = (
        PPOConfig()
        .environment(env=RLLIB_ENV, env_config=env_config(args, out))
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=args.envs_per_runner,
                     gym_env_vectorize_mode="vector_entry_point", rollout_fragment_length=args.rollout_fragment_length,
                     sample_timeout_s=args.sample_timeout_s)
        .callbacks(on_environment_created=attach_runner)
        .training(train_batch_size_per_learner=args.train_batch_size, minibatch_size=args.minibatch_size,
                  num_epochs=args.epochs, lr=args.learning_rate)
        .learners(num_learners=0)
        .debugging(seed=args.seed)
    )
    model = DefaultModelConfig(fcnet_hiddens=[args.hidden, args.hidden])
    if args.action_mask:
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec
        from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

        return config.rl_module(rl_module_spec=RLModuleSpec(module_class=ActionMaskingTorchRLModule, model_config=model))
    return config.rl_module(model_config=model)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import ray

    from agents.cli import as_dict, parse

    args = parse(Args, argv, description=__doc__.split("\n")[0])
    if args.env_id not in ENV_IDS:
        raise SystemExit(f"--env-id must be one of {ENV_IDS}, got {args.env_id!r}")
    out = Path(args.out_dir or f"runs/rllib-{args.env_id.split('/')[-1].lower()}-s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(as_dict(args), indent=2))
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(num_cpus=args.num_cpus or None, object_store_memory=args.object_store_mb * 2**20 or None,
                 include_dashboard=False)
    try:
        algo = build_config(args, out).build_algo()
        start, rows = time.perf_counter(), []
        for i in range(args.iterations):
            result = algo.train()
            runners = result.get("env_runners", {})
            rows.append({"iteration": i + 1, "env_steps": int(runners.get("num_env_steps_sampled_lifetime", 0)),
                         "episode_return_mean": runners.get("episode_return_mean")})
            sps = rows[-1]["env_steps"] / (time.perf_counter() - start)
            print(f"iteration {i + 1}/{args.iterations}: env steps {rows[-1]['env_steps']:,} "
                  f"({sps:,.0f}/s), episode return mean {rows[-1]['episode_return_mean']}", flush=True)
        algo.stop()  # closes the runners' envs: their last history flush
    finally:
        if started_ray:
            ray.shutdown()
    summary = {"iterations": rows, "history": str(out / "history") if args.save_history else None}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


if __name__ == "__main__":
    main()
