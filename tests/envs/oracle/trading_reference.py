"""The numpy reference of :class:`envs.trading.TradingTask`'s compiled kernels (the oracle)."""

from __future__ import annotations

from typing import Any

import numpy as np

import orderbook as ob
from envs import features as ft
from envs import spaces as sp
from envs.trading import TradingEnv, TradingTask, TradingVectorEnv
from tests.envs.oracle.core_reference import NumpyStep


class TradingReference(NumpyStep, TradingTask):
    """:class:`TradingTask` with its step, reset, features and info in numpy."""

    def _reset_task(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        value = self.exchange.accounts.value_numeraire
        self.initial_value[mask] = value[mask]
        self.prev_value[mask] = value[mask]

    def _decode(self, actions: np.ndarray, active: np.ndarray):
        ex, cc = self.exchange, self.cc
        intents = self._new_intents()
        free = ex.accounts.free_atoms.copy()  # funds left for this step's later orders
        lanes = np.arange(self.n_lanes)
        for g in range(self.n_orders):
            ch = self.layout.group(actions, g)
            inst, level = ch["instrument"], ch["level"]
            side = np.where(ch["side"] == 0, ob.Side.BUY, ob.Side.SELL).astype(np.int64)
            bid, ask = sp.at(ex.bars.bid_ticks, inst), sp.at(ex.bars.ask_ticks, inst)
            price = sp.limit_price_ticks(level, side, bid, ask, self.passive_bps)
            reserve_at = np.where(level == sp.LEVEL_MARKET, sp.collar_ticks(cc, inst, side, bid, ask), price)
            venue, asset = cc.inst_venue[inst], np.where(side == ob.Side.BUY, cc.inst_quote[inst], cc.inst_base[inst])
            budget = np.floor(free[lanes, venue, asset] * self.size_fractions[ch["size"]]).astype(np.int64)
            lots = np.minimum(sp.lots_within(cc, inst, side, reserve_at, budget), cc.max_qty_lots[inst])
            self._fill_intent(intents, g, inst, side, level, price, lots, active)
            sent = intents.instrument[:, g] >= 0
            free[lanes, venue, asset] -= np.where(sent, sp.reservation_atoms(cc, inst, side, reserve_at, lots), 0)
        return intents, self._cancels(actions, active, sp.venue_down_next(ex.lanes))

    def _evaluate(self):
        value = self.exchange.accounts.value_numeraire.copy()
        reward = (value - self.prev_value) / self.initial_value * 1e4
        self.prev_value[:] = value
        return reward, value < self.ruin_fraction * self.initial_value

    def _task_features(self) -> list[np.ndarray]:
        ex = self.exchange
        mid = ft.mids(self.cc, ex.bars)
        basis = np.zeros_like(mid)
        for group in self.symbol_groups:
            ref = mid[:, group].mean(axis=1, keepdims=True)
            basis[:, group] = (mid[:, group] / ref - 1.0) * 1e4
        value = ex.accounts.value_numeraire
        ret = (value / self.initial_value - 1.0) * 1e2
        free, locked, total = ft.balance_values(self.cc, ex.accounts, ex.bars)
        base = (free + locked)[:, :, self.base_assets].reshape(self.n_lanes, -1).sum(axis=1)
        exposure = base / np.where(total > 0, total, 1.0)
        return [basis, ret[:, None], exposure[:, None]]

    def _task_info(self) -> dict[str, np.ndarray]:
        value = self.exchange.accounts.value_numeraire
        return {"initial_value": self.initial_value.copy(), "return_bps": (value / self.initial_value - 1.0) * 1e4}


class TradingReferenceEnv(TradingEnv):
    """The single env over the reference task."""

    task_cls = TradingReference


class TradingReferenceVectorEnv(TradingVectorEnv):
    """The native vector env over the reference task."""

    task_cls = TradingReference
