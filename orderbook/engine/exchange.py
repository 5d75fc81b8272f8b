"""The Exchange: a batch of lanes (accounts) stepped through the order system.

``Exchange(config, n_lanes)`` owns the state arrays, the market source and the
:class:`~orderbook.history.logs.History`. ``reset`` starts episodes, ``step`` takes
one transition for every lane; both are a handful of compiled calls over the
whole batch (no Python loop over lanes or orders).

Invariants kept:
- bad input (wrong shapes, dtypes, NaN, unknown instruments, a time to live
  below 0 or above 2**60 ns or on a GTC order, an unknown time in force,
  off-lot quantities) raises ``ValueError`` before anything changes: state
  and history stay as they were;
- a lane's episode depends only on its seeds and its own intents (keyed
  randomness), so lane ``b`` of any batch equals a batch of one with its seeds.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.compile.packed import Call, PackedCall
from orderbook.engine import state as st
from orderbook.engine.config import ExchangeConfig
from orderbook.engine.intents import (
    Order,
    OrderIntents,
    empty_intents,
    intents_from_orders,
    validate_cancels,
    validate_intents,
)
from orderbook.engine.lifecycle import IllegalTransition
from orderbook.engine.portfolio import deposit_initial, value_lane
from orderbook.engine.stats import reset_lane
from orderbook.engine.step import step_orders
from orderbook.history.logs import History, append_market
from orderbook.market.sources import make_source
from orderbook.spec import rng


@kernel
def reset_lanes(cc, orders, lanes, bars, acct, stats, ledger, mask):
    """Clear the orders, clock, outages, error bursts and statistics of masked lanes; deposit balances."""
    for b in range(mask.shape[0]):
        if not mask[b]:
            continue
        orders.status[b, :] = 0
        orders.order_id[b, :] = 0
        orders.reserved_atoms[b, :] = 0
        lanes.step[b] = 0
        lanes.next_order_id[b] = 1
        lanes.outage_steps_left[b, :] = 0
        lanes.error_burst[b, :] = False
        lanes.sent_this_step[b, :] = 0
        bars.impact_ticks[b, :] = 0.0
        bars.typical_volume_lots[b, :] = 0.0
        reset_lane(stats, b)
        deposit_initial(cc, acct, ledger, lanes, b, lanes.time_ns[b])


@kernel
def finish_reset(cc, lanes, bars, acct, market_log, mask, record_market):
    for b in range(mask.shape[0]):
        if not mask[b]:
            continue
        acct.value_numeraire[b] = value_lane(cc, bars, acct, b)
        if record_market:
            for i in range(bars.open_ticks.shape[1]):
                append_market(market_log, b, lanes.episode[b], 0, lanes.time_ns[b], bars, i)


class Exchange:
    """A batch of ``n_lanes`` accounts trading on the configured venues.

    Args:
        config: the frozen :class:`~orderbook.engine.config.ExchangeConfig`.
        n_lanes: B, the number of independent lanes (accounts, environments).
        history_capacity: initial rows of each history log (it grows by doubling).
    """

    def __init__(self, config: ExchangeConfig, n_lanes: int = 1, history_capacity: int = 4096):
        if not (isinstance(n_lanes, (int, np.integer)) and n_lanes >= 1):
            raise ValueError(f"n_lanes must be an int >= 1, got {n_lanes!r}")
        self.config = config
        self.compiled = config.compile()
        cc = self.compiled
        self.n_lanes = int(n_lanes)
        n_v, n_a, n_i = len(config.venues), len(config.assets), len(config.instruments)
        self.orders = st.new_orders(self.n_lanes, config.slots)
        self.lanes = st.new_lanes(self.n_lanes, n_v)
        self.bars = st.new_bars(self.n_lanes, n_i, cc.depth_fractions.shape[1], cc.path_points)
        self.accounts = st.new_accounts(self.n_lanes, n_v, n_a)
        self.stats = st.new_stats(self.n_lanes)
        self.history = History(config, cc, history_capacity)
        self.source = make_source(config, cc, self.n_lanes)
        self.lane_seed = np.zeros(self.n_lanes, dtype=np.int64)
        self._seeded = np.zeros(self.n_lanes, dtype=bool)
        self._started = np.zeros(self.n_lanes, dtype=bool)
        self._error = np.zeros(5, dtype=np.int64)
        self._no_intents = empty_intents(self.n_lanes, config.max_new_orders)
        self._no_cancels = np.zeros((self.n_lanes, config.slots), dtype=np.bool_)
        self.intent_buffer = empty_intents(self.n_lanes, config.max_new_orders)  # what the next step submits
        self.cancel_buffer = np.zeros((self.n_lanes, config.slots), dtype=np.bool_)  # what it cancels
        self._packed: PackedCall | None = None
        self._calls: tuple[Call, Call] | None = None
        self._calls_logs: tuple = ()
        self._reset_mask = np.zeros(self.n_lanes, dtype=np.bool_)
        self._reset_packed: PackedCall | None = None
        self._reset_call_list: tuple[Call, Call, Call] | None = None
        self._reset_logs: tuple = ()

    # ---------------------------------------------------------------- reset
    def reset(
        self,
        seed: int | Sequence[int] | None = None,
        mask: np.ndarray | None = None,
        *,
        fault_seed: int | Sequence[int] | None = None,
    ) -> None:
        """Start a new episode in the masked lanes (all lanes by default).

        ``seed``: an int gives lane ``b`` the seed ``seed + b`` (Gymnasium's vector
        convention); a sequence gives one seed per lane. With a seed the episode
        counter restarts at 0; without one the lane's next episode is drawn.
        ``fault_seed`` sets the broker's seed apart from the market's (common
        markets, different faults); by default both derive from ``seed``.
        """
        mask = self._mask(mask)
        seeds = self._lane_values("seed", seed, mask)
        faults = self._lane_values("fault_seed", fault_seed, mask)
        unseeded = mask & ~self._seeded & (seeds is None)
        if unseeded.any():
            entropy = np.random.SeedSequence().generate_state(int(unseeded.sum()), dtype=np.uint64)
            self.lane_seed[unseeded] = (entropy >> np.uint64(1)).astype(np.int64)
            self._reseed(unseeded, None)
        if seeds is not None:
            self.lane_seed[mask] = seeds[mask]
            self._reseed(mask, faults)
        else:
            again = mask & self._started & ~unseeded
            self.lanes.rng_episode[again] += 1
            if faults is not None:
                self.lanes.fault_seed[mask] = np.array([rng.derive_seed(int(s), rng.P_FAULT_SEED) for s in faults[mask]], dtype=np.uint64)
        self._seeded |= mask
        self._started |= mask
        self.lanes.episode[mask] += 1
        self.lanes.time_ns[mask] = 0
        self.history.ledger.reserve(self.n_lanes * self.accounts.free_atoms[0].size)
        self.history.market.reserve(self.n_lanes * len(self.config.instruments))
        np.copyto(self._reset_mask, mask)
        self._packed_reset(self._reset_calls())

    def _reset_calls(self) -> tuple[Call, Call, Call]:
        """The source's reset (first: it sets the lanes' start time), the lanes' and the valuation, over ``_reset_mask``."""
        h = self.history
        logs = (h.ledger.arrays, h.market.arrays)
        if self._reset_call_list is None or any(a is not b for a, b in zip(logs, self._reset_logs)):
            cc, mask = self.compiled, self._reset_mask
            self._reset_logs = logs
            self._reset_call_list = (
                self.source.reset_call(self.lanes, self.bars, mask),
                Call(reset_lanes, (cc, self.orders, self.lanes, self.bars, self.accounts, self.stats, logs[0], mask)),
                Call(finish_reset, (cc, self.lanes, self.bars, self.accounts, logs[1], mask, self.config.record_market)),
            )
        return self._reset_call_list

    @property
    def _packed_reset(self) -> PackedCall:
        if self._reset_packed is None:
            self._reset_packed = PackedCall(self._reset_calls())
        return self._reset_packed

    def _mask(self, mask: np.ndarray | None) -> np.ndarray:
        if mask is None:
            return np.ones(self.n_lanes, dtype=bool)
        arr = np.asarray(mask)
        if arr.shape != (self.n_lanes,) or arr.dtype != np.bool_:
            raise ValueError(f"mask must be a bool array of shape ({self.n_lanes},), got {arr.dtype} {arr.shape}")
        return arr

    def _lane_values(self, name: str, value, mask: np.ndarray) -> np.ndarray | None:
        if value is None:
            return None
        top = 2**63 - 1  # seeds are int64; lane b of an int seed gets seed + b, which must not wrap
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            if not 0 <= int(value) <= top - (self.n_lanes - 1):
                raise ValueError(f"{name} must be an int in [0, {top - (self.n_lanes - 1)}] (lane b gets {name} + b), got {value!r}")
            return int(value) + np.arange(self.n_lanes, dtype=np.int64)
        arr = np.asarray(value)
        if arr.shape != (self.n_lanes,) or arr.dtype.kind not in "iu" or (arr < 0).any() or (arr.size and int(arr.max()) > top):
            raise ValueError(f"{name} must be an int >= 0 or {self.n_lanes} ints in [0, {top}], got {value!r}")
        return arr.astype(np.int64)

    def _reseed(self, mask: np.ndarray, faults: np.ndarray | None) -> None:
        seeds = self.lane_seed[mask]
        fault_src = seeds if faults is None else faults[mask]
        self.lanes.market_seed[mask] = np.array([rng.derive_seed(int(s), rng.P_MARKET_SEED) for s in seeds], dtype=np.uint64)
        self.lanes.fault_seed[mask] = np.array([rng.derive_seed(int(s), rng.P_FAULT_SEED) for s in fault_src], dtype=np.uint64)
        self.lanes.rng_episode[mask] = 0

    # ----------------------------------------------------------------- step
    def step(
        self,
        intents: OrderIntents | Iterable[Order] | None = None,
        cancels: np.ndarray | None = None,
        active: np.ndarray | None = None,
    ) -> None:
        """One transition of every lane: orders, faults, the next bar, fills, expiries.

        ``active`` (a ``(B,)`` bool mask, all lanes by default) lets some lanes sit
        this step out entirely: no clock, no orders, no history rows (a vector env
        resetting them instead). Their intents and cancels are ignored.
        """
        if not self._started.all():
            raise RuntimeError(f"call reset() before step(): lanes {np.flatnonzero(~self._started).tolist()} were never reset")
        cfg = self.config
        if intents is None:
            intents = self._no_intents
        elif isinstance(intents, (list, tuple)) and not isinstance(intents, OrderIntents) and all(isinstance(o, Order) for o in intents):
            intents = intents_from_orders(cfg, self.n_lanes, intents)
        intents = validate_intents(intents, self.n_lanes, cfg.max_new_orders, len(cfg.instruments))
        cancels = self._no_cancels if cancels is None else validate_cancels(cancels, self.n_lanes, cfg.slots)
        self.step_validated(intents, cancels, None if active is None else self._mask(active))

    def step_validated(self, intents: OrderIntents, cancels: np.ndarray, active: np.ndarray | None = None) -> None:
        """The step after validation: ``intents`` and ``cancels`` must already be what :meth:`step` checks
        (callers that built them from checked choices skip the checks).

        The market advance and the order step run as one packed compiled call
        (:mod:`orderbook.compile.packed`): the intents and cancels are copied into the
        exchange's own buffers (:attr:`intent_buffer`, :attr:`cancel_buffer`;
        writing there directly skips the copy).
        """
        self.prepare_step(active)
        if intents is not self.intent_buffer:
            for dst, src in zip(self.intent_buffer, intents):
                np.copyto(dst, src)
        if cancels is not self.cancel_buffer:
            np.copyto(self.cancel_buffer, cancels)
        self._packed_step(self.step_calls())
        self.raise_if_error()

    def prepare_step(self, active: np.ndarray | None) -> None:
        """Mark the active lanes, refuse a step the market source cannot take, reserve history rows.

        Nothing else changes, so a refusal leaves state and history as they were. A caller that runs
        :meth:`step_calls` in its own packed call (the env tasks) calls this first and
        :meth:`raise_if_error` after.
        """
        cfg, h = self.config, self.history
        if active is None:
            self.lanes.active[:] = True
        else:
            self.lanes.active[:] = active
        self.source.check_advance(self.lanes)
        k, m = cfg.slots, cfg.max_new_orders
        h.events.reserve(self.n_lanes * (6 * k + m))
        h.ledger.reserve(self.n_lanes * (12 * k + 2 * m))
        h.market.reserve(self.n_lanes * len(cfg.instruments))

    def raise_if_error(self) -> None:
        """Raise the :class:`IllegalTransition` a compiled step reported (and clear it); nothing otherwise."""
        if self._error[0]:
            err = self._error.copy()
            self._error[:] = 0
            raise IllegalTransition(int(err[1]), int(err[2]), int(err[3]), int(err[4]))

    def step_calls(self) -> tuple[Call, Call]:
        """The market advance and the order step over the current arrays, for a packed call (a new tuple
        when a history log grew and holds new arrays, the same tuple otherwise)."""
        h = self.history
        logs = (h.events.arrays, h.ledger.arrays, h.market.arrays)
        if self._calls is None or any(a is not b for a, b in zip(logs, self._calls_logs)):
            self._calls_logs = logs
            self._calls = (
                self.source.advance_call(self.lanes, self.bars),
                Call(step_orders, (self.compiled, self.orders, self.lanes, self.bars, self.accounts, self.stats, *logs,
                                   self.intent_buffer, self.cancel_buffer, self.config.record_market, self._error)),
            )
        return self._calls

    @property
    def _packed_step(self) -> PackedCall:
        if self._packed is None:
            self._packed = PackedCall(self.step_calls())
        return self._packed

    @property
    def reset_flags(self) -> tuple[np.ndarray, np.ndarray]:
        """``(seeded, started)``: the ``(B,)`` bool arrays a reset writes besides the state tables
        (a lane was given a seed; a lane began an episode). The arrays themselves: a caller that
        undoes a reset puts them back in place."""
        return self._seeded, self._started

    # ------------------------------------------------------------- queries
    def balances(self, lane: int = 0) -> dict[tuple[str, str], tuple[int, int]]:
        """``{(venue, asset): (free_atoms, locked_atoms)}`` of one lane, nonzero entries."""
        out = {}
        for v, venue in enumerate(self.config.venues):
            for a, asset in enumerate(self.config.assets):
                free, locked = int(self.accounts.free_atoms[lane, v, a]), int(self.accounts.locked_atoms[lane, v, a])
                if free or locked:
                    out[(venue.name, asset.name)] = (free, locked)
        return out

    def portfolio_value(self) -> np.ndarray:
        """Value of every lane in the numeraire (free plus locked), a fresh array."""
        return self.accounts.value_numeraire.copy()
