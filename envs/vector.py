"""The native vector env: a :class:`~envs.core.BatchTask` with ``num_envs`` lanes.

Autoreset is ``NEXT_STEP``, as Gymnasium's own vector envs: the step after a lane
terminated or truncated resets that lane (its action is ignored) and returns the
new episode's first observation with reward 0 and both flags False. Infos are
dicts of ``(num_envs,)`` arrays, each with its ``_key`` mask (all True: every lane
reports every figure). ``reset(seed=s)`` gives lane ``b`` the seed ``s + b``, so lane
``b`` equals ``gym.make`` seeded with ``s + b`` under the same actions.

Lanes waiting for their autoreset sit the core's step out
(``Exchange.step(active=...)``): their finished episode's history ends at its
last step, and a replayed market's window is used to its last bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.config import JsonCheckedSpecMixin
from envs.core import BatchTask
from envs.single import RENDER_MODES


class OrderbookVectorEnv(JsonCheckedSpecMixin, VectorEnv):
    """Base of the native vector envs; subclasses set ``task_cls``."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}
    task_cls: type[BatchTask] = BatchTask

    def __init__(self, num_envs: int = 1, max_episode_steps: int | None = None, render_mode: str | None = None, **kwargs: Any):
        if not (isinstance(num_envs, (int, np.integer)) and num_envs >= 1):
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if max_episode_steps is not None and not (isinstance(max_episode_steps, (int, np.integer)) and max_episode_steps >= 1):
            raise ValueError(f"max_episode_steps must be None or an int >= 1, got {max_episode_steps!r}")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.task = self.task_cls(n_lanes=self.num_envs, record_trace=render_mode is not None, **kwargs)
        self.single_action_space = self.task.layout.space()
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = self.task.obs_layout.space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._started = False
        self._prev_done = np.zeros(self.num_envs, dtype=bool)
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)

    @property
    def exchange(self):
        """The core :class:`orderbook.Exchange` (``num_envs`` lanes)."""
        return self.task.exchange

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every lane; ``seed`` gives lane ``b`` the seed ``seed + b`` (a list: one seed per lane, as
        Gymnasium's ``SyncVectorEnv``); ``options`` apply to all lanes (lanes that autoreset later keep them)."""
        opts = self.task.parse_options(options)
        seed = self.task.check_seed(seed)
        before = (self._np_random, self._np_random_seed)
        try:  # atomic: a reset refused after it began leaves the env as it was
            # one seed per lane: the env's own generator (Gymnasium's np_random) takes lane 0's
            super().reset(seed=seed if seed is None or isinstance(seed, int) else int(seed[0]))
            self.task.reset(seed=seed, mask=None, options=opts, atomic=True)
        except BaseException:
            self._np_random, self._np_random_seed = before
            raise
        self._started = True
        self._prev_done[:] = False
        self._elapsed[:] = 0
        return self.task.observe(), self._with_masks(self.task.info())

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise ResetNeeded("cannot step: call reset() before step()")
        acts = self.task.layout.validate(actions, self.num_envs)
        again = self._prev_done.copy()
        reward, terminated, truncated, info = self.task.step(acts, active=~again)
        self._elapsed += 1
        if self.max_episode_steps:
            truncated = truncated | (self._elapsed >= self.max_episode_steps)
        if again.any():
            self.task.reset(seed=None, mask=again, options=None)
            fresh = self.task.info()
            info = {k: np.where(again, fresh[k], v) for k, v in info.items()}
            reward = np.where(again, 0.0, reward)
            terminated = terminated & ~again
            truncated = truncated & ~again
            self._elapsed[again] = 0
        self._prev_done = terminated | truncated
        return self.task.observe(), reward.astype(np.float64), terminated, truncated, self._with_masks(info)

    def close_extras(self, **kwargs: Any) -> None:
        """Write what the history holds to its ``history_store`` (if one was given) and let go of the store's run.

        Nothing for an env whose construction failed (Gymnasium 1.2's ``VectorEnv.__del__`` closes it too)."""
        task = getattr(self, "task", None)
        if task is not None:
            task.keeper.close()

    def _with_masks(self, info: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k, v in info.items():
            out[k] = np.array(v, copy=True)
            out[f"_{k}"] = np.ones(self.num_envs, dtype=bool)
        return out

    def action_masks(self) -> np.ndarray:
        """``(num_envs, sum(nvec))`` bool masks, one row per lane."""
        return self.task.action_masks()

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One ``rgb_array`` picture per lane (its current episode)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; create the env with render_mode='rgb_array'")
            return None
        from envs.render import render_lane

        return tuple(render_lane(self.task, b) for b in range(self.num_envs))
