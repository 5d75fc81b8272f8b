"""Training-side reward shaping for Execution-v0: a control variate for the price's drift.

Every Execution-v0 reward values fills against the arrival price ``P0``, so a fill's
reward carries the mid's move since the episode began, and the shortfall reward also
charges the unfilled remainder the mid's move at the horizon. Over a 60-step episode
that drift is ~8 bps per step (~60 over 60 steps; TWAP's shortfall: sd 36 bps) against a few bps of execution cost: the advantage
estimates are mostly noise the agent did not cause.

:class:`DriftControl` adds, to each step's reward, ``side x (M_t - M_{t-1}) x R_{t-1}``
(in bps of the parent notional): ``M`` the mean mid of the listed instruments (bps
from their episode start), ``R_{t-1}`` the parent's unfilled fraction before the step.
``R_{t-1}`` is known before the step's move, so for a martingale mid the term has
mean zero given the past: every policy's expected return is unchanged (so is the
best policy), only the variance drops. Summed over an episode (summation by parts),
the shortfall reward plus the term is minus (each step's fills valued against that
step's closing mid + fees + ``penalty_bps`` x the remainder at the horizon): the
execution cost without the drift. Fills that come with the bar's own move (a
resting buy filled as the price falls) are still charged, against the closing mid.

``holding_bps`` (default 0) also charges ``holding_bps x R_{t-1}`` every step: an urgency
cost on the unfilled remainder (Almgren-Chriss's risk term, linear in the remainder).
It changes the objective on purpose: the drift is gone from the reward, so a
risk-neutral agent has no reason to finish early, while the evaluation's paired
intervals widen with every step the remainder stays exposed to the price.

Everything is read from the raw observation (``ret_since_start_100bps`` of every
listed instrument, ``side``, ``remaining_fraction``), so the wrapper needs no state
of the task: for a lane that finished, the step's closing mid is its
``terminal_observation`` (the adapter resets it within the step).
"""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper

from agents.vec_env import find_task
from envs.execution import ExecutionTask


class DriftControl(VecEnvWrapper):
    """Adds ``side x (M_t - M_{t-1}) x R_{t-1} - holding_bps x R_{t-1}`` bps to each step's reward (see the module docstring).

    Wrap it outside ``VecMonitor`` (which then logs the env's own episode returns) and inside
    ``VecNormalize``. Raises ``ValueError`` on an env that is not Execution-v0.
    """

    def __init__(self, venv, holding_bps: float = 0.0):
        super().__init__(venv)
        if not (isinstance(holding_bps, (int, float)) and np.isfinite(holding_bps) and holding_bps >= 0):
            raise ValueError(f"holding_bps must be a finite number >= 0, got {holding_bps!r}")
        self.holding_bps = float(holding_bps)
        task = find_task(venv)
        if not isinstance(task, ExecutionTask):
            raise ValueError(f"DriftControl works on orderbook/Execution-v0, got {type(task).__name__}")
        labels = list(task.obs_layout.labels)
        self.ret_idx = np.asarray([i for i, name in enumerate(labels) if name.endswith(":ret_since_start_100bps")], dtype=np.int64)
        self.side_idx, self.remaining_idx = labels.index("side.side"), labels.index("parent.remaining_fraction")
        if len(self.ret_idx) != len(task.listing):
            raise ValueError(f"expected one ret_since_start feature per listed instrument ({len(task.listing)}), got {len(self.ret_idx)}")
        self.prev: np.ndarray | None = None

    def mid_bps(self, obs: np.ndarray) -> np.ndarray:
        """``(B,)`` mean mid of the listed instruments, bps from their episode start."""
        return obs[:, self.ret_idx].astype(np.float64).mean(axis=1) * 100.0

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self.prev = np.array(obs, dtype=np.float32)
        return obs

    def step_wait(self):
        obs, reward, done, infos = self.venv.step_wait()
        if self.prev is None:
            raise RuntimeError("DriftControl: call reset() before step()")
        closing = np.array(obs, dtype=np.float32)
        for b in np.flatnonzero(done):
            closing[b] = infos[b]["terminal_observation"]
        prev = self.prev
        left = prev[:, self.remaining_idx].astype(np.float64)
        term = prev[:, self.side_idx] * (self.mid_bps(closing) - self.mid_bps(prev)) * left - self.holding_bps * left
        self.prev = np.array(obs, dtype=np.float32)
        return obs, (reward + term).astype(np.float32), done, infos
