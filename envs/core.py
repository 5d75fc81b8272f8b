"""The batched core shared by every front-end: one :class:`BatchTask` per env.

A task owns an :class:`orderbook.Exchange` of ``B`` lanes and does, over ``(B, ...)``
arrays and for all lanes at once: reset (with validated options), action decoding
into :class:`~orderbook.OrderIntents` and a cancel mask, the core's step,
reward and termination, the observation, the info figures and the action masks.
The single env is a task with ``B = 1``; the native vector env is the same task
with ``B = num_envs``. Subclasses (:mod:`envs.execution`, :mod:`envs.trading`)
fill in the task-specific hooks.

Invariants kept:
- nothing changes before the input is validated: a bad action or unknown option
  raises and leaves the exchange's state and history as they were;
- a reset is atomic: seeds and options are checked first, and a reset refused
  after it began (an account that cannot hold the parent order, a replay window
  that does not fit) puts back every state array, the history's sizes and the
  task's arrays, so no phantom episode is left (``reset(..., atomic=True)``, what
  the front-ends' ``reset()`` does; autoresets of masked lanes are not undone);
- the history is bounded by default: :class:`orderbook.retention.HistoryKeeper`
  applies the ``history`` argument after every step and reset (each lane's current
  episode by default, see :mod:`orderbook.retention`);
- a lane's observations, rewards and terminations depend only on its own seed and
  actions, bit for bit, whatever ``B`` is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import orderbook as ob
from envs import features as ft
from envs import spaces as sp
from envs.kernels import COMMON_INFO, begin_episode, begin_step, common_features, common_info, finish_observation
from orderbook import state as st
from orderbook.intents import OrderIntents, empty_intents
from orderbook.packed import Call, PackedCall
from orderbook.retention import HistoryKeeper

TTL_MS_MAX = 2**62 / 1e6  # a child's time to live, in ms, that the int64 ns clock can add to any time
SEED_MAX = 2**63 - 1  # seeds are int64 in the core (lane b of a batch gets seed + b)


def check_seed(seed: Any, n_lanes: int) -> Any:
    """``seed`` checked for ``n_lanes`` lanes: ``None``, an int with ``seed + n_lanes - 1 <= 2**63 - 1`` (lane
    ``b`` gets ``seed + b``), or a sequence of ``n_lanes`` ints in ``[0, 2**63 - 1]``; raises ValueError naming
    what came, never OverflowError."""
    if seed is None:
        return None
    top = SEED_MAX - (n_lanes - 1)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        if not 0 <= int(seed) <= top:
            lanes = f" (lane b gets seed + b, {n_lanes} lanes)" if n_lanes > 1 else ""
            raise ValueError(f"seed must be None or an int in [0, {top}]{lanes}, got {seed!r}")
        return int(seed)
    if isinstance(seed, (list, tuple, np.ndarray)):
        values = list(np.asarray(seed, dtype=object).ravel()) if isinstance(seed, np.ndarray) else list(seed)
        ok = len(values) == n_lanes and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and 0 <= int(v) <= SEED_MAX for v in values)
        if not ok:
            raise ValueError(f"seeds must be {n_lanes} ints in [0, {SEED_MAX}] (one per lane), got {seed!r}")
        return np.asarray([int(v) for v in values], dtype=np.int64)
    raise ValueError(f"seed must be None or an int in [0, {top}], got {type(seed).__name__} {seed!r}")


INFO_COUNTERS = (("orders", st.CNT_ORDERS), ("fills", st.CNT_FILLS), ("filled_lots", st.CNT_FILLED_LOTS),
                 ("expiries", st.CNT_EXPIRED), ("cancels", st.CNT_CANCELLED))


class BatchTask:
    """Base of the batched tasks; see the module docstring. ``n_orders`` child orders per step."""

    name = "task"
    option_keys: tuple[str, ...] = ()

    def __init__(self, config: ob.ExchangeConfig, n_lanes: int, *, n_orders: int, passive_bps, ttl_ms: float, record_trace: bool,
                 compiled_step: bool = False, history: Any = "episode", history_store: Any = None, history_run: str = "env"):
        if not (isinstance(n_orders, int) and 1 <= n_orders <= config.max_new_orders):
            raise ValueError(f"orders_per_step must be an int in [1, {config.max_new_orders}] (the config's max_new_orders), got {n_orders!r}")
        passive = np.asarray(tuple(passive_bps), dtype=np.float64)
        if passive.ndim != 1 or not (np.isfinite(passive).all() and (passive > 0).all() and (passive < 1e4).all()):
            raise ValueError(f"passive_bps must be a tuple of numbers in (0, 10000) (bps behind the touch), got {passive_bps!r}")
        if not (isinstance(ttl_ms, (int, float)) and not isinstance(ttl_ms, bool) and np.isfinite(ttl_ms) and 0 <= ttl_ms <= TTL_MS_MAX):
            raise ValueError(f"ttl_ms must be a number in [0, {TTL_MS_MAX:g}] (0 = the venue's default; the int64 ns clock), got {ttl_ms!r}")
        self.config = config
        self.exchange = ob.Exchange(config, n_lanes)
        self.keeper = HistoryKeeper(self.exchange, history, history_store, history_run)  # what the history keeps
        self.cc = self.exchange.compiled
        self.n_lanes = n_lanes
        self.n_orders = n_orders
        self.passive_bps = passive
        self.ttl_ns = int(ttl_ms * 1_000_000)
        self.n_levels = sp.LEVEL_PASSIVE0 + len(passive)
        # A replayed market has windows of episode_steps bars: episodes truncate at the window's end.
        window = getattr(config.market, "episode_steps", None)
        self.window_steps = None if window is None else int(window)
        n_inst = len(config.instruments)
        self.prev_mid = np.ones((n_lanes, n_inst))
        self.start_mid = np.ones((n_lanes, n_inst))
        # the statistics counters when the step began (per-step deltas for info and observation)
        self.prev_counters = self.exchange.stats.counters.copy()  # (B, C) int64
        self.prev_rejects = np.zeros(n_lanes, dtype=np.int64)  # (B,) int64
        self.record_trace = record_trace
        self.trace: list[np.ndarray] = []  # one (B,) array per step, when rendering
        self.trace_start = np.zeros(n_lanes, dtype=np.int64)
        self.layout = self._action_layout()
        self.obs_layout = self._obs_layout()
        # The compiled step (tasks with kernels): one packed call for decode, core step, evaluate, the
        # observation and the info figures, over buffers owned here; one each to observe or report
        # after a reset, and one for the reset. Built when first used (subclasses add arrays first).
        self.compiled_step = bool(compiled_step)
        self._step_packed: PackedCall | None = None
        self._obs_packed: PackedCall | None = None
        self._info_packed: PackedCall | None = None
        self._reset_packed: PackedCall | None = None
        self._obs_call_list: tuple | None = None
        self._info_call_list: tuple | None = None
        self._core_calls: tuple | None = None
        self._step_calls: tuple = ()
        self._obs_fresh = self._info_fresh = False  # buffers written by the last compiled step, until a reset

    # ------------------------------------------------------------ hooks
    def _action_layout(self) -> sp.ActionLayout:
        raise NotImplementedError

    def _obs_layout(self) -> ft.ObsLayout:
        raise NotImplementedError

    def parse_options(self, options: dict[str, Any] | None) -> dict[str, Any]:
        """Checked reset options; unknown keys raise ValueError naming the known ones."""
        if options is None:
            return {}
        if not isinstance(options, dict):
            raise ValueError(f"options must be a dict or None, got {type(options).__name__}")
        unknown = sorted(set(options) - set(self.option_keys))
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; known options: {list(self.option_keys)}")
        return self._check_options(options)

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return dict(options)

    def _reset_task(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        """Task state of the masked lanes after the exchange reset them (``options=None``: keep the lane's)."""
        raise NotImplementedError

    def _decode(self, actions: np.ndarray, active: np.ndarray) -> tuple[OrderIntents, np.ndarray]:
        raise NotImplementedError

    def _evaluate(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(reward, terminated, task info) of every lane after a step."""
        raise NotImplementedError

    def _task_features(self) -> list[np.ndarray]:
        raise NotImplementedError

    def _task_info(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _trace_value(self) -> np.ndarray:
        raise NotImplementedError

    def action_masks(self) -> np.ndarray:
        raise NotImplementedError

    # ---------------------------------------------------------- reset/step
    def check_seed(self, seed: Any) -> Any:
        """``seed`` for this batch (see :func:`check_seed`): front-ends call it before anything changes."""
        return check_seed(seed, self.n_lanes)

    def reset(self, seed: int | None, mask: np.ndarray | None, options: dict[str, Any] | None, atomic: bool = False) -> None:
        """Start new episodes in the masked lanes (all by default); ``options`` come from parse_options.

        ``atomic``: a reset that raises after it began (the account cannot hold the parent, a replay
        window does not fit) leaves state, task arrays and history as they were (a copy of the state
        is taken first: the front-ends' ``reset()`` pass True, autoresets of masked lanes do not).
        """
        seed = self.check_seed(seed)
        undo = self._snapshot() if atomic else None
        try:
            self._reset(seed, mask, options)
        except BaseException:
            if undo is not None:
                self._restore(undo)
            raise
        self.keeper.after_step()

    _RESET_ORDER_FIELDS = ("status", "order_id", "reserved_atoms")  # what a reset writes in the order table
    _STEP_BUFFERS = ("_raw_obs", "_obs", "_info_ints", "_info_floats", "_actions", "_active", "_reward", "_terminated")

    def _snapshot(self) -> tuple:
        """Copies of what a reset may change: the core's lanes, bars, balances, statistics, market source and
        seeds, the order table's status, ids and reservations, the task's per-lane arrays (not the step's
        output buffers, which a reset never writes), the history's sizes. ~55 arrays, ~20 us at one lane."""
        ex = self.exchange
        arrays = [ex.lane_seed, ex._seeded, ex._started, *(getattr(ex.orders, f) for f in self._RESET_ORDER_FIELDS)]
        for state in (ex.lanes, ex.bars, ex.accounts, ex.stats, getattr(ex.source, "state", ())):
            arrays.extend(x for x in state if isinstance(x, np.ndarray))
        lanes = (self.n_lanes,)
        arrays.extend(v for v in vars(ex.source).values() if isinstance(v, np.ndarray) and v.shape[:1] == lanes)
        buffers = {id(getattr(self, name, None)) for name in self._STEP_BUFFERS}
        arrays.extend(v for v in vars(self).values() if isinstance(v, np.ndarray) and v.shape[:1] == lanes and id(v) not in buffers)
        return [(a, a.copy()) for a in arrays], ex.history.sizes(), (self._obs_fresh, self._info_fresh), len(self.trace)

    def _restore(self, undo: tuple) -> None:
        """Put back what :meth:`_snapshot` copied, in place (compiled calls hold these very arrays)."""
        arrays, sizes, fresh, n_trace = undo
        for a, copy in arrays:
            np.copyto(a, copy)
        self.exchange.history.truncate(sizes)
        self._obs_fresh, self._info_fresh = fresh
        del self.trace[n_trace:]

    def _reset(self, seed: Any, mask: np.ndarray | None, options: dict[str, Any] | None) -> None:
        full = mask is None
        mask = np.ones(self.n_lanes, dtype=bool) if full else mask
        self._obs_fresh = self._info_fresh = False  # the observation and info buffers describe the last step
        self.exchange.reset(seed=seed, mask=None if full else mask)
        if self.compiled_step and type(self)._reset_call is not BatchTask._reset_call:
            self._reset_compiled(mask, options)
        else:
            mid = ft.mids(self.cc, self.exchange.bars)
            self.prev_mid[mask] = mid[mask]
            self.start_mid[mask] = mid[mask]
            self.prev_counters[mask] = self.exchange.stats.counters[mask]
            self.prev_rejects[mask] = self.exchange.stats.rejects_by_reason.sum(axis=1)[mask]
            self._reset_task(mask, options)
        if self.record_trace:
            if full:
                self.trace.clear()
            self.trace_start[mask] = len(self.trace)
            self.trace.append(self._trace_value())
            first = int(self.trace_start.min())
            if first > len(self.trace) - first:  # most of the trace is of finished episodes: drop it (bounded)
                del self.trace[:first]
                self.trace_start -= first

    def step(self, actions: np.ndarray, active: np.ndarray | None = None, with_info: bool = True):
        """One transition of every lane for validated ``(B, n)`` actions; inactive lanes send nothing.

        Returns ``(reward, terminated, truncated, info)``, ``(B,)`` arrays and a dict of them
        (``None`` with ``with_info=False``: the single env asks :meth:`info_of_lane` instead);
        ``truncated`` is the end of a replayed market's window (``max_episode_steps`` is the
        front-end's). Inactive lanes (about to be reset) are not stepped: no clock, orders or history.
        """
        active = np.ones(self.n_lanes, dtype=bool) if active is None else active
        if self.compiled_step:
            reward, terminated, extra = self._step_compiled(actions, active)
        else:
            stats = self.exchange.stats
            self.prev_mid[:] = ft.mids(self.cc, self.exchange.bars)
            self.prev_counters[:] = stats.counters
            self.prev_rejects[:] = stats.rejects_by_reason.sum(axis=1)
            if active.any():
                intents, cancels = self._decode(actions, active)
                self.exchange._step_validated(intents, cancels, active)
            reward, terminated, extra = self._evaluate()
        info = None
        if with_info:
            info = self.info()
            info.update(extra)
        if self.record_trace:
            self.trace.append(self._trace_value())
        if self.window_steps is None:
            truncated = np.zeros(self.n_lanes, dtype=bool)
        else:
            truncated = self.exchange.lanes.step >= self.window_steps
        self.keeper.after_step()
        return reward, terminated, truncated, info

    # ------------------------------------------------------- compiled step
    def _decode_call(self) -> Call:
        """The kernel call writing ``exchange.intent_buffer`` and ``cancel_buffer`` from ``self._actions``."""
        raise NotImplementedError

    def _evaluate_call(self) -> Call:
        """The kernel call writing ``self._reward`` and ``self._terminated``."""
        raise NotImplementedError

    def _features_call(self, raw: np.ndarray, start: int) -> Call:
        """The kernel call writing the task's features into ``raw[:, start:]``."""
        raise NotImplementedError

    task_info_keys: tuple[tuple[str, bool], ...] = ()  # (name, is_int) of the compiled task info

    def _info_call(self, ints: np.ndarray, floats: np.ndarray, int_start: int, float_start: int) -> Call:
        """The kernel call writing the task's info figures (``task_info_keys``) from those columns on."""
        raise NotImplementedError

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

    def info_of_lane(self, lane: int) -> dict[str, Any]:
        """The info figures of one lane as Python scalars (what the single env returns)."""
        if not self.compiled_step:
            return {k: v[lane].item() for k, v in self.info().items()}
        ints, floats = self._info_compiled()
        values = (floats[lane].tolist(), ints[lane].tolist())
        return {name: values[is_int][col] for name, is_int, col in self._info_columns}

    def _reset_call(self, mask: np.ndarray) -> Call:
        """The kernel call starting the task's episodes in ``mask`` (optional: tasks without one reset with numpy)."""
        raise NotImplementedError

    def _reset_compiled(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        """What the numpy reset does after the exchange's, as one packed call (the task's options first)."""
        if self._reset_packed is None:
            ex = self.exchange
            self._reset_mask = np.zeros(self.n_lanes, dtype=bool)
            self._reset_packed = PackedCall([
                Call(begin_episode, (self.cc, ex.bars, ex.stats, self._reset_mask, self.prev_mid, self.start_mid,
                                     self.prev_counters, self.prev_rejects)),
                self._reset_call(self._reset_mask),
            ])
        self._apply_options(mask, options)
        np.copyto(self._reset_mask, mask)
        self._reset_packed()
        self._after_reset(mask)

    def _apply_options(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        """Set the masked lanes' task parameters from checked ``options`` (``None``: keep them)."""

    def _after_reset(self, mask: np.ndarray) -> None:
        """Checks after a compiled reset (raise ValueError on an episode that cannot be played)."""

    def _step_compiled(self, actions: np.ndarray, active: np.ndarray):
        ex = self.exchange
        if self._step_packed is None:
            self._actions = np.zeros((self.n_lanes, len(self.layout.nvec)), dtype=np.int64)
            self._active = np.ones(self.n_lanes, dtype=bool)
            self._reward = np.zeros(self.n_lanes)
            self._terminated = np.zeros(self.n_lanes, dtype=bool)
        np.copyto(self._actions, actions)
        np.copyto(self._active, active)
        ex._prepare_step(self._active)  # may refuse (replay window): nothing changed yet
        core = ex._step_calls()
        if core is not self._core_calls:  # first step, or a history log grew (new arrays)
            self._core_calls = core
            self._step_calls = (  # the step, then its observation and info figures (fresh until a reset)
                Call(begin_step, (self.cc, ex.bars, ex.stats, self.prev_mid, self.prev_counters, self.prev_rejects)),
                self._decode_call(),
                *core,
                self._evaluate_call(),
                *self._obs_calls(),
                *self._info_calls(),
            )
        if self._step_packed is None:
            self._step_packed = PackedCall(self._step_calls)
        self._obs_fresh = self._info_fresh = False
        self._step_packed(self._step_calls)
        ex._raise_if_error()
        self._obs_fresh = self._info_fresh = True
        return self._reward.copy(), self._terminated.copy(), {}

    def _observe_compiled(self) -> np.ndarray:
        if self._obs_packed is None:
            self._obs_packed = PackedCall(self._obs_calls())
        if not self._obs_fresh:
            self._obs_packed()
        return self._obs.copy()

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

    # ------------------------------------------------------------- outputs
    def info(self) -> dict[str, np.ndarray]:
        """Execution-quality figures of the last step per lane (``(B,)`` arrays)."""
        if self.compiled_step:
            ints, floats = self._info_compiled()
            blocks = (floats, ints)
            return {name: blocks[is_int][:, col].copy() for name, is_int, col in self._info_columns}
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

    def observe(self) -> np.ndarray:
        """A fresh ``(B, D)`` float32 observation inside the Box (see the env docstrings)."""
        if self.compiled_step:
            return self._observe_compiled()
        return self.obs_layout.assemble(self._common_features() + self._task_features())

    def _common_features(self) -> list[np.ndarray]:
        ex = self.exchange
        out = np.empty((self.n_lanes, self.n_common))
        common_features(out, self.cc, ex.bars, ex.lanes, ex.accounts, ex.orders, ex.stats, self.prev_counters, self.prev_rejects,
                        self.obs_instruments, self.obs_venues, self.obs_assets, self.prev_mid, self.start_mid)
        return [out]

    def _common_obs_layout(self) -> ft.ObsLayout:
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
        intents.ttl_ns[:, m] = self.ttl_ns

    def _cancels(self, actions: np.ndarray, active: np.ndarray, down: np.ndarray) -> np.ndarray:
        can = sp.cancellable(self.exchange.orders, self.cc, down)
        return sp.cancel_mask_from_choice(self.layout.cancel(actions), self.exchange.orders, can) & active[:, None]
