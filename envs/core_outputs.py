"""The observation and info figures of a :class:`envs.core.BatchTask`: their buffers, kernels and fresh copies.

:class:`TaskOutputs` is the half of :class:`~envs.core.BatchTask` that reads what a
step left: the ``(B, D)`` float32 observation (the common blocks, then the task's,
clipped into the Box) and the info figures (the common ones, then the task's
``task_info_keys``). Keeps true: the buffers are made once, at the first call,
and the compiled step writes them; a reset marks them stale and the next read
recomputes them; every array returned is a fresh copy, never a view of a buffer
(Gymnasium's checker tests this).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs import features as ft
from envs.kernels import COMMON_INFO, common_features, common_info, finish_observation
from orderbook.compile.packed import Call, PackedCall


class TaskOutputs:
    """Observation and info of a batched task (``BatchTask`` sets the fields read here in its ``__init__``)."""

    def info(self) -> dict[str, np.ndarray]:
        """Execution-quality figures of the last step per lane (``(B,)`` arrays)."""
        ints, floats = self._info_compiled()
        blocks = (floats, ints)
        return {name: blocks[is_int][:, col].copy() for name, is_int, col in self._info_columns}

    def info_of_lane(self, lane: int) -> dict[str, Any]:
        """The info figures of one lane as Python scalars (what the single env returns)."""
        ints, floats = self._info_compiled()
        values = (floats[lane].tolist(), ints[lane].tolist())
        return {name: values[is_int][col] for name, is_int, col in self._info_columns}

    def observe(self) -> np.ndarray:
        """A fresh ``(B, D)`` float32 observation inside the Box (see the env docstrings)."""
        if self._obs_packed is None:
            self._obs_packed = PackedCall(self._obs_calls())
        if not self._obs_fresh:
            self._obs_packed()
        return self._obs.copy()

    def _info_compiled(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ints, floats)``: the ``(B, n)`` blocks of the info figures (views of buffers, refreshed)."""
        if self._info_packed is None:
            self._info_packed = PackedCall(self._info_calls())
        if not self._info_fresh:
            self._info_packed()
        return self._info_ints, self._info_floats

    def _info_calls(self) -> tuple[Call, Call]:
        """The info kernels over their buffers (made at the first call)."""
        if self._info_call_list is None:
            ex = self.exchange
            keys = COMMON_INFO + self.task_info_keys
            n_int = sum(is_int for _, is_int in keys)
            self._info_ints = np.zeros((self.n_lanes, n_int), dtype=np.int64)
            self._info_floats = np.zeros((self.n_lanes, len(keys) - n_int))
            columns, counts = [], [0, 0]
            for name, is_int in keys:
                columns.append((name, is_int, counts[is_int]))
                counts[is_int] += 1
            self._info_columns = columns
            c_int = sum(is_int for _, is_int in COMMON_INFO)
            self._info_call_list = (
                Call(common_info, (ex.stats, ex.lanes, ex.accounts, self.prev_counters, self.prev_rejects, self._info_ints, self._info_floats)),
                self._info_call(self._info_ints, self._info_floats, c_int, len(COMMON_INFO) - c_int),
            )
        return self._info_call_list

    def _obs_calls(self) -> tuple[Call, Call, Call]:
        """The observation kernels over their buffers (made at the first call)."""
        if self._obs_call_list is None:
            ex = self.exchange
            width = len(self.obs_layout.labels)
            self._raw_obs = np.zeros((self.n_lanes, width))
            self._obs = np.zeros((self.n_lanes, width), dtype=np.float32)
            self._obs_low, self._obs_high = self.obs_layout.bounds()
            self._obs_call_list = (
                Call(common_features, (self._raw_obs, self.cc, ex.bars, ex.lanes, ex.accounts, ex.orders, ex.stats, self.prev_counters,
                                       self.prev_rejects, self.obs_instruments, self.obs_venues, self.obs_assets, self.prev_mid, self.start_mid)),
                self._features_call(self._raw_obs, self.n_common),
                Call(finish_observation, (self._raw_obs, self._obs_low, self._obs_high, self._obs)),
            )
        return self._obs_call_list

    def _common_obs_layout(self) -> ft.ObsLayout:
        """The blocks every task observes first (market, outage, balance, orders, stats, slippage)."""
        cfg = self.config
        layout = ft.ObsLayout()
        inst_names = [f"{cfg.instruments[i].venue}:{cfg.instruments[i].symbol}" for i in self.obs_instruments]
        venue_names = [cfg.venues[v].name for v in self.obs_venues]
        layout.add("market", ft.market_labels(inst_names), -10.0, 10.0)
        layout.add("outage", [f"{v}:steps_left_10" for v in venue_names], 0.0, 1.0)
        layout.add("balance", ft.balance_labels(venue_names, [cfg.assets[a].name for a in self.obs_assets]), 0.0, 1.0)
        layout.add("orders", ft.ORDER_LABELS, 0.0, 1.0)
        layout.add("stats", ft.STAT_LABELS[:-1], 0.0, 1.0)
        layout.add("slippage", ft.STAT_LABELS[-1:], -10.0, 10.0)
        self.n_common = len(layout.labels)
        return layout
