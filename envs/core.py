"""The batched core shared by every front-end: one :class:`BatchTask` per env.

A task owns an :class:`orderbook.Exchange` of ``B`` lanes and does, over ``(B, ...)``
arrays and for all lanes at once: reset (with validated options), action decoding
into :class:`~orderbook.OrderIntents` and a cancel mask, the core's step,
reward and termination, the observation, the info figures and the action masks
(the observation and info buffers and their kernels: :mod:`envs.core_outputs`).
The single env is a task with ``B = 1``; the native vector env is the same task
with ``B = num_envs``. Subclasses (:mod:`envs.execution`, :mod:`envs.trading`)
fill in the task-specific hooks.

The base owns what every task shares: seeds, atomic resets, the episode and step
bookkeeping, truncation at a replayed market's window, the history's bounds, the
render trace, and the buffers of the compiled step. A step is one packed compiled
call (:mod:`orderbook.compile.packed`): begin-step bookkeeping, the task's decode into the
exchange's intent and cancel buffers, the market advance and the order step, the
task's evaluate, the observation and the info figures. A task implements:

- ``_action_layout()``, ``_obs_layout()`` (its blocks after ``_common_obs_layout()``);
- ``_decode_call()``, ``_evaluate_call()``, ``_features_call(raw, start)``,
  ``_info_call(ints, floats, int_start, float_start)`` with ``task_info_keys``: the
  kernel calls of its step, observation and info figures;
- ``_trace_value()`` and ``action_masks()``;
- optionally ``option_keys`` with ``_check_options`` and ``_apply_options``, and
  ``_reset_call(mask)`` / ``_after_reset(mask)`` to start its episodes.

The numpy reference of each task's step (the readable specification the kernels
are checked against bit for bit) lives with the tests, in ``tests/envs/oracle/``.

Invariants kept:
- nothing changes before the input is validated: a bad action or unknown option
  raises and leaves the exchange's state and history as they were;
- a reset is atomic: seeds and options are checked first, and a reset refused
  after it began (an account that cannot hold the parent order, a replay window
  that does not fit) puts back every state array, the history's sizes and the
  task's arrays, so no phantom episode is left (``reset(..., atomic=True)``, what
  the front-ends' ``reset()`` does; autoresets of masked lanes are not undone);
- the history is bounded by default: :class:`orderbook.analytics.retention.HistoryKeeper`
  applies the ``history`` argument after every step and reset (each lane's current
  episode by default, see :mod:`orderbook.analytics.retention`);
- a lane's observations, rewards and terminations depend only on its own seed and
  actions, bit for bit, whatever ``B`` is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import orderbook as ob
from envs import features as ft
from envs import spaces as sp
from envs.core_outputs import TaskOutputs
from envs.kernels import begin_episode, begin_step
from orderbook.analytics.retention import HistoryKeeper
from orderbook.compile.packed import Call, PackedCall

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


class BatchTask(TaskOutputs):
    """Base of the batched tasks; see the module docstring for the hooks. ``n_orders`` child orders per step."""

    name = "task"
    option_keys: tuple[str, ...] = ()
    task_info_keys: tuple[tuple[str, bool], ...] = ()  # (name, is_int) of the task's info figures, after COMMON_INFO

    def __init__(self, config: ob.ExchangeConfig, n_lanes: int, *, n_orders: int, passive_bps, ttl_ms: float, record_trace: bool,
                 history: Any = "episode", history_store: Any = None, history_run: str = "env"):
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
        # The compiled step: one packed call for decode, core step, evaluate, the observation and the info
        # figures, over buffers owned here; one each to observe or report after a reset, and one for the
        # reset. Built when first used (subclasses add arrays first).
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
        """The task's MultiDiscrete layout (made once, in ``__init__``)."""
        raise NotImplementedError

    def _obs_layout(self) -> ft.ObsLayout:
        """The task's observation layout: ``_common_obs_layout()`` and the task's blocks after it."""
        raise NotImplementedError

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Checked values of the known reset options (ValueError naming what came otherwise)."""
        return dict(options)

    def _apply_options(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        """Set the masked lanes' task parameters from checked ``options`` (``None``: keep them)."""

    def _reset_call(self, mask: np.ndarray) -> Call | None:
        """The kernel call starting the task's episodes in ``mask`` after the common bookkeeping (None: none)."""
        return None

    def _after_reset(self, mask: np.ndarray) -> None:
        """The task's work after its reset call (raise ValueError on an episode that cannot be played)."""

    def _decode_call(self) -> Call:
        """The kernel call writing ``exchange.intent_buffer`` and ``cancel_buffer`` from ``self._actions``."""
        raise NotImplementedError

    def _evaluate_call(self) -> Call:
        """The kernel call writing ``self._reward`` and ``self._terminated``."""
        raise NotImplementedError

    def _features_call(self, raw: np.ndarray, start: int) -> Call:
        """The kernel call writing the task's features into ``raw[:, start:]``."""
        raise NotImplementedError

    def _info_call(self, ints: np.ndarray, floats: np.ndarray, int_start: int, float_start: int) -> Call:
        """The kernel call writing the task's info figures (``task_info_keys``) from those columns on."""
        raise NotImplementedError

    def _trace_value(self) -> np.ndarray:
        """``(B,)`` the figure ``render`` plots per step (``trace_label``)."""
        raise NotImplementedError

    def action_masks(self) -> np.ndarray:
        """``(B, sum(nvec))`` bool: the flat per-dimension masks (MaskablePPO)."""
        raise NotImplementedError

    # ---------------------------------------------------------- reset/step
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
        output buffers, which a reset never writes), the history's sizes (~55 arrays)."""
        ex = self.exchange
        arrays = [ex.lane_seed, *ex.reset_flags, *(getattr(ex.orders, f) for f in self._RESET_ORDER_FIELDS)]
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
        self._begin_episodes(mask, options)
        if self.record_trace:
            if full:
                self.trace.clear()
            self.trace_start[mask] = len(self.trace)
            self.trace.append(self._trace_value())
            first = int(self.trace_start.min())
            if first > len(self.trace) - first:  # most of the trace is of finished episodes: drop it (bounded)
                del self.trace[:first]
                self.trace_start -= first

    def _begin_episodes(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        """After the exchange's reset: the task's options, then one packed call of the common episode
        bookkeeping (mids, counters) and the task's reset call, then the task's checks."""
        if self._reset_packed is None:
            ex = self.exchange
            self._reset_mask = np.zeros(self.n_lanes, dtype=bool)
            calls = [Call(begin_episode, (self.cc, ex.bars, ex.stats, self._reset_mask, self.prev_mid, self.start_mid,
                                          self.prev_counters, self.prev_rejects))]
            task_call = self._reset_call(self._reset_mask)
            self._reset_packed = PackedCall(calls if task_call is None else [*calls, task_call])
        self._apply_options(mask, options)
        np.copyto(self._reset_mask, mask)
        self._reset_packed()
        self._after_reset(mask)

    def step(self, actions: np.ndarray, active: np.ndarray | None = None, with_info: bool = True):
        """One transition of every lane for validated ``(B, n)`` actions; inactive lanes send nothing.

        Returns ``(reward, terminated, truncated, info)``, ``(B,)`` arrays and a dict of them
        (``None`` with ``with_info=False``: the single env asks :meth:`info_of_lane` instead);
        ``truncated`` is the end of a replayed market's window (``max_episode_steps`` is the
        front-end's). Inactive lanes (about to be reset) are not stepped: no clock, orders or history.
        """
        active = np.ones(self.n_lanes, dtype=bool) if active is None else active
        reward, terminated = self._advance(actions, active)
        info = self.info() if with_info else None
        if self.record_trace:
            self.trace.append(self._trace_value())
        if self.window_steps is None:
            truncated = np.zeros(self.n_lanes, dtype=bool)
        else:
            truncated = self.exchange.lanes.step >= self.window_steps
        self.keeper.after_step()
        return reward, terminated, truncated, info

    def _advance(self, actions: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The step as one packed compiled call; ``(reward, terminated)`` copies. Refused before anything
        changes when the market source cannot take it (a replay window at its end)."""
        ex = self.exchange
        if self._step_packed is None:
            self._actions = np.zeros((self.n_lanes, len(self.layout.nvec)), dtype=np.int64)
            self._active = np.ones(self.n_lanes, dtype=bool)
            self._reward = np.zeros(self.n_lanes)
            self._terminated = np.zeros(self.n_lanes, dtype=bool)
        np.copyto(self._actions, actions)
        np.copyto(self._active, active)
        ex.prepare_step(self._active)  # may refuse (replay window): nothing changed yet
        core = ex.step_calls()
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
        ex.raise_if_error()
        self._obs_fresh = self._info_fresh = True
        return self._reward.copy(), self._terminated.copy()
