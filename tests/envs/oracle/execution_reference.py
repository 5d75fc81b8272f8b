"""The numpy reference of :class:`envs.execution.ExecutionTask`'s compiled kernels (the oracle).

Accounting. Only the parent's pair trades, so over the venues that list it the
base balance moves by exactly the filled quantity and the quote balance by the
notional and the fees. The step's shortfall against the arrival price ``P0`` is
``-(d_quote + P0 x d_base)`` in quote units (both sides), exact up to the final
float conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import orderbook as ob
from envs import execution_kernels as ek
from envs import features as ft
from envs import spaces as sp
from envs.execution import ExecutionEnv, ExecutionTask, ExecutionVectorEnv
from orderbook.spec.rng import uniform_per_lane
from tests.envs.oracle.core_reference import NumpyStep


def keyed_coin(seed: np.ndarray, episode: np.ndarray, purpose: int) -> np.ndarray:
    """A fair coin per lane keyed by (seed, episode, purpose): batch-size invariant, replayable."""
    u = np.empty(seed.shape[0])
    uniform_per_lane(seed, episode, 0, 0, purpose, u)
    return u < 0.5


class ExecutionReference(NumpyStep, ExecutionTask):
    """:class:`ExecutionTask` with its step, reset, features and info in numpy."""

    def _totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Base and quote atoms (free + locked) over the venues that list the pair."""
        acct = self.exchange.accounts
        held = (acct.free_atoms + acct.locked_atoms)[:, self.obs_venues]
        return held[:, :, self.base_a].sum(axis=1), held[:, :, self.quote_a].sum(axis=1)

    def _mid(self) -> np.ndarray:
        return ft.mids(self.cc, self.exchange.bars)[:, self.listing].mean(axis=1)

    def _reset_task(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        self._apply_options(mask, options)
        lanes = self.exchange.lanes
        coin = keyed_coin(lanes.market_seed, lanes.rng_episode, ek.P_ENV_SIDE)
        drawn = np.where(coin, ob.Side.BUY, ob.Side.SELL)
        self.side[mask] = np.where(self.side_choice == 0, drawn, self.side_choice)[mask]
        base, quote = self._totals()
        self.arrival[mask] = self._mid()[mask]
        self.notional[mask] = (self.parent_atoms / self.apu_base * self.arrival)[mask]
        self.base_start[mask], self.prev_base[mask], self.prev_quote[mask] = base[mask], base[mask], quote[mask]
        self.filled[mask] = 0
        self.shortfall_bps[mask], self.penalty_step_bps[mask], self.step_filled[mask] = 0.0, 0.0, 0
        self._check_funds(mask)

    def _decode(self, actions: np.ndarray, active: np.ndarray):
        intents, bars = self._new_intents(), self.exchange.bars
        open_atoms = self.open_atoms()
        for g in range(self.n_orders):
            ch = self.layout.group(actions, g)
            inst = self.listing[ch["venue"]]
            price = sp.limit_price_ticks(ch["level"], self.side, sp.at(bars.bid_ticks, inst), sp.at(bars.ask_ticks, inst), self.passive_bps)
            lots = self.size_lots(ch["size"], inst, open_atoms)
            self._fill_intent(intents, g, inst, self.side, ch["level"], price, lots, active)
            open_atoms = open_atoms - np.where(intents.instrument[:, g] >= 0, lots * self.cc.base_atoms_per_lot[inst], 0)
        return intents, self._cancels(actions, active, sp.venue_down_next(self.exchange.lanes))

    def _evaluate(self):
        base, quote = self._totals()
        d_base, d_quote = base - self.prev_base, quote - self.prev_quote
        self.prev_base[:], self.prev_quote[:], self.step_filled[:] = base, quote, self.side * d_base
        self.filled[:] = self.side * (base - self.base_start)
        reward = (d_quote / self.apu_quote + self.arrival * d_base / self.apu_base) / self.notional * 1e4
        remaining = self.parent_atoms - self.filled
        at_horizon = self.exchange.lanes.step >= self.horizon
        move = self.side * (self._mid() - self.arrival)
        cost = remaining / self.apu_base * (self.arrival * self.penalty_bps * 1e-4 + move)
        charged = at_horizon & (remaining > 0)
        self.penalty_step_bps[:] = np.where(charged, cost / self.notional * 1e4, 0.0)
        booked = reward - self.penalty_step_bps  # minus the shortfall's increment, whatever the reward option
        self.shortfall_bps[:] = self.shortfall_bps - booked
        if self.reward_code == ek.REWARD_ARRIVAL:  # fills against P0; the remainder pays the penalty at P0, no drift
            reward = reward - np.where(charged, remaining / self.parent_atoms * self.penalty_bps, 0.0)
        elif self.reward_code == ek.REWARD_MARKED:  # the remainder marked at P0 with its penalty: fills earn it back
            reward = reward + self.penalty_bps * self.step_filled / self.parent_atoms
        else:
            reward = booked
        return reward, (remaining <= 0) | at_horizon

    def _task_features(self) -> list[np.ndarray]:
        parent = self.parent_atoms.astype(np.float64)
        working = self.working_atoms()
        venue = self.cc.inst_venue[self.exchange.orders.instrument]
        per_venue = np.stack([np.where(venue == v, working, 0).sum(axis=1) for v in self.obs_venues], axis=1)
        left = np.maximum(self.horizon - self.exchange.lanes.step, 0) / self.horizon
        fractions = np.stack([(self.parent_atoms - self.filled_atoms()) / parent, working.sum(axis=1) / parent, left], axis=1)
        return [per_venue / parent[:, None], self.side[:, None].astype(np.float64), fractions, self.shortfall_bps[:, None] / 100.0]

    def _task_info(self) -> dict[str, np.ndarray]:
        filled = self.filled_atoms()
        return {
            "filled_qty": self.step_filled / self.apu_base,
            "parent_side": self.side.copy(),
            "parent_filled_qty": filled / self.apu_base,
            "parent_remaining_qty": (self.parent_atoms - filled) / self.apu_base,
            "arrival_price": self.arrival.copy(),
            "shortfall_bps": self.shortfall_bps.copy(),
            "horizon_penalty_bps": self.penalty_step_bps.copy(),
        }


class ExecutionReferenceEnv(ExecutionEnv):
    """The single env over the reference task."""

    task_cls = ExecutionReference


class ExecutionReferenceVectorEnv(ExecutionVectorEnv):
    """The native vector env over the reference task."""

    task_cls = ExecutionReference
