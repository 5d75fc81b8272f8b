"""The stable-baselines3 ``VecEnv`` over the native batched task.

:class:`OrderbookVecEnv` drives the same :class:`envs.core.BatchTask` the native
Gymnasium vector env (:mod:`envs.vector`) drives, with ``num_envs`` lanes, but
with SB3's conventions instead of Gymnasium's:

- **same-step reset**: when a lane terminates or truncates, ``step_wait`` resets it
  right after the step and returns the new episode's first observation; the
  finished episode's last observation is in ``infos[i]["terminal_observation"]``
  (Gymnasium's ``NEXT_STEP`` env returns it as the step's observation and the
  reset observation one step later, ignoring that step's action);
- ``infos[i]["TimeLimit.truncated"]`` is ``truncated and not terminated`` (as
  SB3's ``DummyVecEnv``), so a horizon that both terminates and truncates is
  treated as terminal (no bootstrap);
- infos are a list of ``num_envs`` dicts holding SB3's own keys by default;
  every figure of the task (shortfall, fills, rejects, ...) is in
  :attr:`OrderbookVecEnv.step_info` as ``(num_envs,)`` arrays, the cheap way to
  log them. ``info_keys=None`` also copies every figure into each lane's dict
  (Python scalars built with ``tolist`` and ``zip``), a cost per lane and step
  (``python -m agents.bench``, ``benchmarks/RESULTS.md``);
- ``seed(s)`` gives lane ``b`` the seed ``s + b`` at the next ``reset()``, like
  ``gym.make_vec(...).reset(seed=s)``, so lane ``b`` replays ``gym.make`` seeded
  with ``s + b``;
- ``env_method(name)`` returns one row per lane when the method returns a
  ``(num_envs, ...)`` array (``action_masks`` -> MaskablePPO's
  ``get_action_masks``), otherwise the result repeated per lane.

Every lane is active every step (no lane sits a step out: finished lanes were
already reset), so ``task.step(actions)`` runs for all lanes and
``task.reset(mask=done)`` follows for the finished ones. The per-step cost is the
task's step, one observation (two when some lane finished) and the info list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import envs  # noqa: F401  (registers the ids)
from envs.core import BatchTask
from envs.vector import OrderbookVectorEnv


def task_class(env_id: str) -> tuple[type[BatchTask], int | None]:
    """The batched task class of a registered ``orderbook/*`` id and its ``max_episode_steps``."""
    spec = gym.spec(env_id)
    entry = spec.vector_entry_point
    vec_cls = load_env_creator(entry) if isinstance(entry, str) else entry
    if not (isinstance(vec_cls, type) and issubclass(vec_cls, OrderbookVectorEnv)):
        raise ValueError(f"{env_id} has no native orderbook vector entry point (got {entry!r}); ids: {envs.ENV_IDS}")
    return vec_cls.task_cls, spec.max_episode_steps


class OrderbookVecEnv(VecEnv):
    """SB3 ``VecEnv`` of ``num_envs`` lanes of a registered orderbook task (see the module docstring).

    Args:
        env_id: a registered id, ``orderbook/Execution-v0`` or ``orderbook/Trading-v0``.
        num_envs: lanes (accounts) in the batch.
        max_episode_steps: truncation in steps; ``None`` takes the registered value, ``0`` none.
        render_mode: ``None`` or ``"rgb_array"`` (one picture per lane, tiled by ``render()``).
        info_keys: the task's info figures copied into each lane's info dict (default ``()``: only
            SB3's own keys; ``None``: all of them, paid per lane and step). :attr:`step_info`
            always holds every figure as ``(num_envs,)`` arrays.
        **kwargs: the env's arguments (``config``, ``faults``, ``horizon``, ``history``, ``history_store``,
            ``history_run``, ...; see the env docstrings). The history keeps each lane's current episode by
            default; with SB3's same-step reset a finished episode is no longer current when ``step_wait``
            returns, so keep ``history=2`` (or a store) to query it afterwards.
    """

    def __init__(self, env_id: str = "orderbook/Execution-v0", num_envs: int = 8, *, max_episode_steps: int | None = None,
                 render_mode: str | None = None, info_keys: Sequence[str] | None = (), **kwargs: Any):
        if not (isinstance(num_envs, (int, np.integer)) and num_envs >= 1):
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        cls, registered_steps = task_class(env_id)
        self.env_id = env_id
        self.render_mode = render_mode
        self.max_episode_steps = registered_steps if max_episode_steps is None else (max_episode_steps or None)
        self.task: BatchTask = cls(n_lanes=int(num_envs), record_trace=render_mode is not None, **kwargs)
        self.single_action_space = self.task.layout.space()
        super().__init__(int(num_envs), self.task.obs_layout.space(), self.single_action_space)
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)  # (B,) steps into the lane's episode
        self.step_info: dict[str, np.ndarray] = {}  # (B,) arrays of the last step (before any reset)
        self.info_keys = None if info_keys is None else tuple(info_keys)
        if self.info_keys:
            known = list(self.task.info())
            unknown = sorted(set(self.info_keys) - set(known))
            if unknown:
                raise ValueError(f"unknown info_keys {unknown}; the task reports {known}")
        self._actions: np.ndarray | None = None
        self._started = False

    @property
    def exchange(self):
        """The core :class:`orderbook.Exchange` (``num_envs`` lanes)."""
        return self.task.exchange

    # --------------------------------------------------------------- reset/step
    def reset(self) -> np.ndarray:
        """Reset every lane, with the seeds of :meth:`seed` (used once) and the options of ``set_options``."""
        seeds = None
        if all(s is not None for s in self._seeds):
            seeds = self.task.check_seed(list(self._seeds))  # ints in [0, 2**63 - 1], before anything changes
        elif any(s is not None for s in self._seeds):
            raise ValueError(f"seed every lane or none, got {self._seeds}")
        opts = self._options[0] if self._options else {}
        if any(o != opts for o in self._options):
            raise ValueError("reset options apply to every lane: set_options(dict), not a list of different dicts")
        parsed = self.task.parse_options(opts or None)
        self.task.reset(seed=seeds, mask=None, options=parsed, atomic=True)
        self._reset_seeds()
        self._reset_options()
        self._started = True
        self.elapsed[:] = 0
        self.reset_infos = self._info_list(self.task.info())
        return self.task.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        if not self._started:
            raise RuntimeError("cannot step: call reset() before step()")
        acts = self.task.layout.validate(self._actions, self.num_envs)
        reward, terminated, truncated, info = self.task.step(acts)
        self.elapsed += 1
        if self.max_episode_steps:
            truncated = truncated | (self.elapsed >= self.max_episode_steps)
        done = terminated | truncated
        obs = self.task.observe()
        info["TimeLimit.truncated"] = truncated & ~terminated
        self.step_info = info
        infos = self._info_list(info)
        if done.any():
            lanes = np.flatnonzero(done)
            for b, row in zip(lanes.tolist(), obs[lanes]):
                infos[b]["terminal_observation"] = row
            self.task.reset(seed=None, mask=done, options=None)
            self.elapsed[done] = 0
            obs = self.task.observe()
        return obs, reward.astype(np.float32), done, infos

    def _info_list(self, info: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        keys = list(info) if self.info_keys is None else [*self.info_keys, *(k for k in ("TimeLimit.truncated",) if k in info)]
        if not keys:
            return [{} for _ in range(self.num_envs)]
        columns = [np.asarray(info[k]).tolist() for k in keys]
        return [dict(zip(keys, row)) for row in zip(*columns)]

    # ------------------------------------------------------------- the rest of VecEnv
    def close(self) -> None:
        """Write what the history holds to its ``history_store`` (if one was given) and let go of the store's run."""
        self.step_info = {}
        self.task.keeper.close()

    def _target(self, name: str) -> Any:
        for owner in (self, self.task):
            if hasattr(owner, name):
                return getattr(owner, name)
        raise AttributeError(f"neither OrderbookVecEnv nor {type(self.task).__name__} has an attribute {name!r}")

    def _rows(self, value: Any, indices: Iterable[int]) -> list[Any]:
        idx = list(indices)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == self.num_envs:
            return [value[i] for i in idx]
        return [value for _ in idx]

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        """The attribute of the adapter (or else of the task), one entry per lane: rows of a ``(B, ...)`` array."""
        return self._rows(self._target(attr_name), self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        """Set an attribute of the adapter (or of the task, where it lives); a ``(B, ...)`` array is set per lane."""
        owner = self if hasattr(self, attr_name) or not hasattr(self.task, attr_name) else self.task
        current = getattr(owner, attr_name, None)
        if isinstance(current, np.ndarray) and current.ndim >= 1 and current.shape[0] == self.num_envs:
            current[list(self._get_indices(indices))] = value
        else:
            setattr(owner, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        """Call a method of the adapter or the task once for the batch; one row (or the result) per lane."""
        result = self._target(method_name)(*method_args, **method_kwargs)
        return self._rows(result, self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices=None) -> list[bool]:
        """No Gymnasium wrappers sit inside the batch: ``False`` for every lane."""
        return [False for _ in self._get_indices(indices)]

    def action_masks(self) -> np.ndarray:
        """``(num_envs, sum(nvec))`` bool masks, one row per lane (MaskablePPO)."""
        return self.task.action_masks()

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None for _ in range(self.num_envs)]
        from envs.render import render_lane

        return [render_lane(self.task, b) for b in range(self.num_envs)]


def unwrap(env: Any) -> Any:
    """The innermost env of SB3 ``VecEnvWrapper`` chains and Gymnasium wrappers."""
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    return getattr(env, "unwrapped", env) if not isinstance(env, VecEnv) else env


def find_task(env: Any) -> BatchTask:
    """The :class:`~envs.core.BatchTask` behind an adapter, its SB3 wrappers, or a Gymnasium (vector) env."""
    inner = unwrap(env)
    task = getattr(inner, "task", None)
    if not isinstance(task, BatchTask):
        raise ValueError(f"expected an orderbook env (OrderbookVecEnv, a gym.make_vec or gym.make orderbook env), got {type(env).__name__}")
    return task
