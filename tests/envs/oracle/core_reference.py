"""The numpy reference of :class:`envs.core.BatchTask`'s compiled step, observation, info and reset."""

from __future__ import annotations

from typing import Any

import numpy as np

import orderbook as ob
from envs import features as ft
from envs import spaces as sp
from envs.kernels import common_features
from orderbook.engine import state as st
from orderbook.engine.intents import OrderIntents, empty_intents

INFO_COUNTERS = (("orders", st.CNT_ORDERS), ("fills", st.CNT_FILLS), ("filled_lots", st.CNT_FILLED_LOTS),
                 ("expiries", st.CNT_EXPIRED), ("cancels", st.CNT_CANCELLED))


class NumpyStep:
    """Mixin before a task class: every compiled part replaced by numpy over ``(B, ...)`` arrays.

    A task subclass adds ``_reset_task(mask, options)``, ``_decode(actions, active)`` (intents and a
    cancel mask), ``_evaluate()`` (reward, terminated), ``_task_features()`` and ``_task_info()``.
    """

    def _begin_episodes(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        mid = ft.mids(self.cc, self.exchange.bars)
        self.prev_mid[mask] = mid[mask]
        self.start_mid[mask] = mid[mask]
        self.prev_counters[mask] = self.exchange.stats.counters[mask]
        self.prev_rejects[mask] = self.exchange.stats.rejects_by_reason.sum(axis=1)[mask]
        self._reset_task(mask, options)

    def _advance(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        stats = self.exchange.stats
        self.prev_mid[:] = ft.mids(self.cc, self.exchange.bars)
        self.prev_counters[:] = stats.counters
        self.prev_rejects[:] = stats.rejects_by_reason.sum(axis=1)
        if active.any():
            intents, cancels = self._decode(actions, active)
            self.exchange.step_validated(intents, cancels, active)
        return self._evaluate()

    def info(self) -> dict[str, np.ndarray]:
        stats = self.exchange.stats
        delta = stats.counters - self.prev_counters
        out = {name: delta[:, col] for name, col in INFO_COUNTERS}
        out["rejects"] = stats.rejects_by_reason.sum(axis=1) - self.prev_rejects
        mean = np.where(stats.welford[:, :, 0] > 0, stats.welford[:, :, 1], 0.0)
        out["slippage_mean_bps"] = mean[:, st.STAT_SLIPPAGE_ARRIVAL_BPS]
        out["ack_latency_mean_ms"] = mean[:, st.STAT_ACK_LATENCY_MS]
        out["step"] = self.exchange.lanes.step.copy()
        out["portfolio_value"] = self.exchange.accounts.value_numeraire.copy()
        out.update(self._task_info())
        return out

    def info_of_lane(self, lane: int) -> dict[str, Any]:
        return {k: v[lane].item() for k, v in self.info().items()}

    def observe(self) -> np.ndarray:
        return self.obs_layout.assemble(self._common_features() + self._task_features())

    def _common_features(self) -> list[np.ndarray]:
        ex = self.exchange
        out = np.empty((self.n_lanes, self.n_common))
        common_features(out, self.cc, ex.bars, ex.lanes, ex.accounts, ex.orders, ex.stats, self.prev_counters, self.prev_rejects,
                        self.obs_instruments, self.obs_venues, self.obs_assets, self.prev_mid, self.start_mid)
        return [out]

    # ------------------------------------------------------------- helpers
    def _new_intents(self) -> OrderIntents:
        return empty_intents(self.n_lanes, self.config.max_new_orders)

    def _fill_intent(self, intents: OrderIntents, m: int, inst, side, level, price, lots, send) -> None:
        """Write order column ``m``: instrument ``-1`` where ``send`` is False or ``lots`` is 0."""
        send = send & (lots > 0) & (level != sp.LEVEL_NONE)
        intents.instrument[:, m] = np.where(send, inst, -1)
        intents.side[:, m] = side
        intents.kind[:, m] = np.where(level == sp.LEVEL_MARKET, ob.OrderKind.MARKET, ob.OrderKind.LIMIT)
        intents.price_ticks[:, m] = np.where(level == sp.LEVEL_MARKET, 0, price)
        intents.qty_lots[:, m] = np.where(send, lots, 0)
        tif = sp.level_tif(level)
        intents.tif[:, m] = tif
        intents.ttl_ns[:, m] = np.where(tif == ob.TimeInForce.IOC, 0, self.ttl_ns)

    def _cancels(self, actions: np.ndarray, active: np.ndarray, down: np.ndarray) -> np.ndarray:
        can = sp.cancellable(self.exchange.orders, self.cc, down)
        return sp.cancel_mask_from_choice(self.layout.cancel(actions), self.exchange.orders, can) & active[:, None]
