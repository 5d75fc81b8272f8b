"""The single Gymnasium env: a :class:`~envs.core.BatchTask` with one lane.

The env adds only what Gymnasium asks of a single env: spaces without the batch
axis, ``reset(*, seed, options)`` calling ``super().reset(seed=seed)``, step
results as Python scalars, ``ResetNeeded`` before the first reset and after the
episode terminated, and ``render``. Truncation comes from ``max_episode_steps``
(the ``TimeLimit`` wrapper ``gym.make`` adds), and with a replayed market also
from the end of its window (``episode_steps`` steps).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.error import ResetNeeded

from envs.config import JsonCheckedSpecMixin
from envs.core import BatchTask

RENDER_MODES = ["rgb_array"]


class OrderbookEnv(JsonCheckedSpecMixin, gym.Env):
    """Base of the single envs; subclasses set ``task_cls`` and document themselves."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4}
    task_cls: type[BatchTask] = BatchTask

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode must be None or one of {RENDER_MODES}, got {render_mode!r}")
        self.render_mode = render_mode
        self.task = self.task_cls(n_lanes=1, record_trace=render_mode is not None, **kwargs)
        self.action_space = self.task.layout.space()
        self.observation_space = self.task.obs_layout.space()
        self._episode_over: str | None = "call reset() before step()"

    @property
    def exchange(self):
        """The core :class:`orderbook.Exchange` (one lane): state, statistics and history."""
        return self.task.exchange

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        opts = self.task.parse_options(options)  # raises before anything changes
        seed = self.task.check_seed(seed)
        before = (self._episode_over, self._np_random, self._np_random_seed)
        try:  # atomic: a reset refused after it began leaves the env as it was
            super().reset(seed=seed)
            self.task.reset(seed=seed, mask=None, options=opts, atomic=True)
        except BaseException:
            self._episode_over, self._np_random, self._np_random_seed = before
            raise
        self._episode_over = None
        return self.task.observe()[0], self.task.info_of_lane(0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._episode_over is not None:
            raise ResetNeeded(f"cannot step: {self._episode_over}")
        actions = self.task.layout.validate(action, None)
        reward, terminated, truncated, _ = self.task.step(actions, with_info=False)
        if terminated[0] or truncated[0]:
            how = "terminated" if terminated[0] else "was truncated (end of the replay window)"
            self._episode_over = f"the episode {how} at step {int(self.exchange.lanes.step[0])}; call reset()"
        obs = self.task.observe()[0]
        return obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), self.task.info_of_lane(0)

    def action_masks(self) -> np.ndarray:
        """Flat bool mask of length ``sum(action_space.nvec)`` (sb3-contrib's MaskablePPO)."""
        return self.task.action_masks()[0]

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; create the env with render_mode='rgb_array'")
            return None
        from envs.render import render_lane

        return render_lane(self.task, 0)

    def close(self) -> None:
        """Write what the history holds to its ``history_store`` (if one was given) and let go of the store's run."""
        self.task.keeper.close()
