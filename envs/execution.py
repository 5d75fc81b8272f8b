"""Execution: work a parent order with child orders, rewarded by implementation shortfall.

:class:`ExecutionTask` is the batched task (any number of lanes);
:class:`ExecutionEnv` and :class:`ExecutionVectorEnv` are its single and vector
front-ends (``orderbook/Execution-v0``). What a parent may be (side, quantity,
horizon, reward) and the funds that must hold it are checked in
:mod:`envs.execution_options`.

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
from envs.config import build_config
from envs.core import BatchTask
from envs.execution_options import (  # noqa: F401  (HORIZON_MAX, PARENT_ATOMS_MAX: re-exported, users import them from here)
    ACCOUNT_SCALE,
    DEFAULT_QUANTITY,
    HORIZON_MAX,
    PARENT_ATOMS_MAX,
    REWARDS,
    check_funds,
    check_horizon,
    check_options,
    check_reward,
    default_account,
)
from envs.single import OrderbookEnv
from envs.vector import OrderbookVectorEnv
from orderbook.compile.packed import Call
from orderbook.engine import lifecycle

P_ENV_SIDE = ek.P_ENV_SIDE  # purpose of the keyed draw of a random parent side (beyond the core's purposes)


class ExecutionTask(BatchTask):
    """Batched parent-order execution (see :class:`ExecutionEnv` for the full description)."""

    name = "Execution-v0"
    trace_label = "filled fraction"
    option_keys = ("side", "quantity", "horizon")

    def __init__(self, n_lanes: int = 1, *, config: ob.ExchangeConfig | None = None, venues=None, quotes=None, faults=None,
                 fills=None, latency=None, market=None, exchange: dict | None = None, base: str = "BTC", quote: str = "USD",
                 side: str | int = "buy", quantity: Any = DEFAULT_QUANTITY, horizon: int = 60, penalty_bps: float = 50.0,
                 size_multiples=(0.5, 1.0, 2.0, 4.0), passive_bps=(2.0, 5.0), orders_per_step: int = 1,
                 ttl_ms: float = 0.0, record_trace: bool = False, data=None,
                 history: Any = "episode", history_store: Any = None, history_run: str = "env", reward: str = "shortfall",
                 split: str | None = None):
        check_horizon(horizon)  # before it sizes a replay window
        self.reward_code = check_reward(reward)
        self.reward_name = REWARDS[self.reward_code]
        cfg = build_config(config, venues=venues, quotes=quotes, faults=faults, fills=fills, latency=latency, market=market,
                           exchange=exchange, data=data, episode_steps=horizon, default_quotes=("USD",), split=split)
        if not isinstance(config, ob.ExchangeConfig) and "initial_balances" not in (exchange or {}):
            cfg = default_account(cfg)  # the account the user did not give holds the default parent
        self.listing = np.asarray([i for i, x in enumerate(cfg.instruments) if x.base == base and x.quote == quote], dtype=np.int64)
        if len(self.listing) == 0:
            raise ValueError(f"no venue lists {base}/{quote}; instruments: {[f'{x.venue}:{x.symbol}' for x in cfg.instruments]}")
        if not (isinstance(penalty_bps, (int, float)) and np.isfinite(penalty_bps) and penalty_bps >= 0):
            raise ValueError(f"penalty_bps must be a finite number >= 0, got {penalty_bps!r}")
        mult = np.asarray(tuple(size_multiples), dtype=np.float64)
        if mult.ndim != 1 or len(mult) == 0 or not (np.isfinite(mult).all() and (mult > 0).all()):
            raise ValueError(f"size_multiples must be a non-empty tuple of numbers > 0, got {size_multiples!r}")
        self.size_multiples, self.penalty_bps = mult, float(penalty_bps)
        self.base_a, self.quote_a = cfg.asset_index(base), cfg.asset_index(quote)
        self.obs_instruments = self.listing
        self.obs_venues = np.asarray([cfg.venue_index(cfg.instruments[i].venue) for i in self.listing], dtype=np.int64)
        self.obs_assets = np.asarray([self.base_a, self.quote_a], dtype=np.int64)
        self.apu_base = float(cfg.assets[self.base_a].atoms_per_unit)
        self.apu_quote = float(cfg.assets[self.quote_a].atoms_per_unit)
        super().__init__(cfg, n_lanes, n_orders=orders_per_step, passive_bps=passive_bps, ttl_ms=ttl_ms, record_trace=record_trace,
                         history=history, history_store=history_store, history_run=history_run)
        self.defaults = self._check_options({"side": side, "quantity": quantity, "horizon": horizon})
        z = lambda dtype: np.zeros(n_lanes, dtype=dtype)  # noqa: E731
        self.side_choice, self.side, self.parent_atoms, self.horizon = z(np.int64), z(np.int64), z(np.int64), z(np.int64)
        self.arrival, self.notional, self.shortfall_bps, self.penalty_step_bps = z(float), z(float), z(float), z(float)
        self.base_start, self.prev_base, self.prev_quote, self.step_filled = z(np.int64), z(np.int64), z(np.int64), z(np.int64)
        self.filled = z(np.int64)  # base atoms of the parent filled so far
        self._arrays: ek.ExecutionArrays | None = None

    # ----------------------------------------------------------- layout
    def _action_layout(self) -> sp.ActionLayout:
        return sp.ActionLayout((("venue", len(self.listing)), ("level", self.n_levels), ("size", len(self.size_multiples) + 1)), self.n_orders)

    def _obs_layout(self) -> ft.ObsLayout:
        layout = self._common_obs_layout()
        layout.add("working", [f"{self.config.venues[v].name}:working_fraction" for v in self.obs_venues], 0.0, 1.0)
        layout.add("side", ["side"], -1.0, 1.0)
        layout.add("parent", ["remaining_fraction", "working_fraction", "time_left_fraction"], 0.0, 1.0)
        layout.add("shortfall", ["shortfall_100bps"], -10.0, 10.0)
        return layout

    # ---------------------------------------------------------- options
    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return check_options(self, options)

    # ------------------------------------------------------------ state
    def working_atoms(self) -> np.ndarray:
        """``(B, K)`` base atoms still working in live child orders (0 in free slots)."""
        o = self.exchange.orders
        live = lifecycle.LIVE_TABLE[o.status]
        return np.where(live, (o.qty_lots - o.filled_lots) * self.cc.base_atoms_per_lot[o.instrument], 0)

    def filled_atoms(self) -> np.ndarray:
        """``(B,)`` base atoms of the parent filled so far (the task's array, kept by reset and the step)."""
        return self.filled

    def open_atoms(self) -> np.ndarray:
        """``(B,)`` base atoms of the parent neither filled nor working (what new children may still take)."""
        return self.parent_atoms - self.filled - self.working_atoms().sum(axis=1)

    def _apply_options(self, mask: np.ndarray, options: dict[str, Any] | None) -> None:
        if options is not None:
            params = {**self.defaults, **options}
            self.side_choice[mask], self.parent_atoms[mask], self.horizon[mask] = params["side"], params["parent_atoms"], params["horizon"]

    def _check_funds(self, mask: np.ndarray) -> None:
        """The account must hold the parent: its base (sell) or its notional at the collar plus fees (buy)."""
        check_funds(self, mask)

    # ------------------------------------------------------------- step
    def size_lots(self, size: np.ndarray, inst: np.ndarray, open_atoms: np.ndarray) -> np.ndarray:
        """Lots of a child for ``size`` choices on instruments ``inst`` with ``open_atoms`` of the parent open,
        broadcast against ``(B,)`` lane arrays: ``size_multiples[j]`` times the TWAP slice (at least one lot)
        or, for the last choice, everything open; never above what is open nor the instrument's maximum
        (what ``execution_decode`` sends and ``action_masks`` checks)."""
        lane = (-1,) + (1,) * (inst.ndim - 1)  # lane arrays broadcast against (B,) or (B, n) choices
        bapl = self.cc.base_atoms_per_lot[inst]
        mult = self.size_multiples[np.minimum(size, len(self.size_multiples) - 1)]
        parent, horizon = self.parent_atoms.reshape(lane), self.horizon.reshape(lane)
        slice_lots = np.maximum(np.floor(parent * mult / horizon / bapl + 1e-9).astype(np.int64), 1)
        cap = np.maximum(open_atoms, 0) // bapl
        lots = np.where(size == len(self.size_multiples), cap, np.minimum(slice_lots, cap))
        return np.minimum(lots, self.cc.max_qty_lots[inst])

    # ------------------------------------------------- compiled step
    @property
    def arrays(self) -> ek.ExecutionArrays:
        """The task's parameters and state as the kernels see them (the same arrays, not copies)."""
        if self._arrays is None:
            self._arrays = ek.ExecutionArrays(
                self.listing, self.obs_venues, self.size_multiples, self.passive_bps, self.side, self.parent_atoms, self.horizon,
                self.arrival, self.notional, self.shortfall_bps, self.penalty_step_bps, self.base_start, self.prev_base,
                self.prev_quote, self.step_filled, self.filled, int(self.base_a), int(self.quote_a), int(self.ttl_ns),
                float(self.apu_base), float(self.apu_quote), float(self.penalty_bps), int(self.reward_code),
            )
        return self._arrays

    def _reset_call(self, mask: np.ndarray) -> Call:
        ex = self.exchange
        self._short = np.zeros(self.n_lanes, dtype=bool)
        return Call(ek.execution_reset, (self.cc, ex.lanes, ex.bars, ex.accounts, self.arrays, self.side_choice, mask, self._short))

    def _after_reset(self, mask: np.ndarray) -> None:
        if self._short[mask].any():
            self._check_funds(mask)  # raises, saying which lane lacks what

    def _decode_call(self) -> Call:
        ex = self.exchange
        return Call(ek.execution_decode, (self.cc, ex.orders, ex.lanes, ex.bars, self.arrays, self.n_orders, self._actions,
                                          self._active, ex.intent_buffer, ex.cancel_buffer))

    def _evaluate_call(self) -> Call:
        ex = self.exchange
        return Call(ek.execution_evaluate, (self.cc, ex.lanes, ex.bars, ex.accounts, self.arrays, self._reward, self._terminated))

    task_info_keys = ek.EXECUTION_INFO

    def _info_call(self, ints: np.ndarray, floats: np.ndarray, int_start: int, float_start: int) -> Call:
        return Call(ek.execution_info, (self.arrays, ints, floats, int_start, float_start))

    def _features_call(self, raw: np.ndarray, start: int) -> Call:
        ex = self.exchange
        return Call(ek.execution_features, (raw, start, self.cc, ex.lanes, ex.orders, self.arrays))

    # ---------------------------------------------------------- outputs
    def _trace_value(self) -> np.ndarray:
        return self.filled_atoms() / self.parent_atoms

    def action_masks(self) -> np.ndarray:
        ex, cc = self.exchange, self.cc
        down = sp.venue_down_next(ex.lanes)
        up = ~down[:, self.obs_venues]  # (B, n) one venue per listed instrument
        free_slot = ~lifecycle.LIVE_TABLE[ex.orders.status].all(axis=1)
        open_atoms = self.open_atoms()
        n_b, n_l, n_s = self.n_lanes, len(self.listing), len(self.size_multiples) + 1
        inst = np.broadcast_to(self.listing, (n_b, n_l))
        side = np.broadcast_to(self.side[:, None], (n_b, n_l))
        worst = sp.collar_ticks(cc, inst, side, ex.bars.bid_ticks[:, self.listing], ex.bars.ask_ticks[:, self.listing])
        asset = np.where(side == ob.Side.BUY, self.quote_a, self.base_a)
        free = np.take_along_axis(ex.accounts.free_atoms[:, self.obs_venues], asset[:, :, None], axis=2)[:, :, 0]
        # choices broadcast as (B, venue, size)
        lots = self.size_lots(np.arange(n_s)[None, None, :], inst[:, :, None], open_atoms[:, None, None])
        i3, s3, w3 = inst[:, :, None], side[:, :, None], worst[:, :, None]
        ok = sp.order_ok(cc, i3, w3, lots) & (sp.reservation_atoms(cc, i3, s3, w3, lots) <= free[:, :, None])
        size_ok = (ok & up[:, :, None]).any(axis=1)
        venue_ok = up & ok.any(axis=2)
        can = free_slot & size_ok.any(axis=1) & venue_ok.any(axis=1)
        level = np.concatenate([np.ones((n_b, 1), dtype=bool), np.repeat(can[:, None], self.n_levels - 1, axis=1)], axis=1)
        cancel = sp.cancel_choice_mask(sp.cancellable(ex.orders, cc, down))
        return self.layout.flat_mask({"venue": sp.ensure_choice(venue_ok), "level": level, "size": sp.ensure_choice(size_ok)}, cancel)


class ExecutionEnv(OrderbookEnv):
    """Work a parent order across venues with child orders, under latency and broker faults.

    ## Description

    The agent must buy (or sell) a parent quantity of one base asset (default 30 BTC
    against USD, a tenth of the synthetic market's mean volume over the horizon, so
    that posting and taking must be blended: a 1 BTC parent fills passively in a few
    steps and leaves nothing to decide) within a horizon (default 60 steps of one minute) on every venue
    that lists the pair (default ``alpha`` and ``beta`` of
    ``orderbook.default_config(quotes=("USD",))``). Each step it may send child
    orders (market, or limit at a price level) and cancel working ones. Child
    orders wait for an acknowledgement, fill in pieces, slip, get rejected (broker
    errors, rate limits, venues down), time out, and race their own cancels: all
    the core's faults are on by default (``orderbook.FaultSpec()``).

    ## Action Space

    ``MultiDiscrete`` of ``orders_per_step`` groups ``[venue, level, size]`` and
    one ``cancel`` choice; the default is ``MultiDiscrete([2, 8, 5, 3])``.
    Discrete because every choice maps to exact integer ticks and lots (no rounding
    ambiguity between a float action and the venue's grid), because MaskablePPO
    needs a discrete space to mask what the account cannot do, and because PPO and
    A2C accept it as is.

    - ``venue``: index among the venues that list the pair (config order).
    - ``level``: 0 no order, 1 market (immediate or cancel: what the book does not
      give within the venue's protection band in its arrival step is cancelled), 2
      limit at the far touch, 3 limit at the near touch, 4 IOC limit at the far touch
      (takes what the touch shows on arrival, the rest is cancelled), 5 post-only limit
      at the near touch (only ever a maker; rejected if marketable on arrival), 6..
      limit ``passive_bps[j]`` behind the near touch (default 2 and 5 bps), in whole
      ticks rounded away from the touch (:mod:`envs.spaces`). Limits of levels 2, 3
      and 6.. are GTD (``ttl_ms``).
    - ``size``: ``size_multiples[j]`` times the TWAP slice ``quantity / horizon``
      (default 0.5, 1, 2, 4), or (last choice) everything still open; at least one
      lot, capped at what is neither filled nor working, so the children never
      exceed the parent.
    - ``cancel``: 0 none, 1 the oldest cancellable child, 2 every cancellable child.

    ``action_masks()`` gives the flat mask of length ``sum(nvec)`` (MaskablePPO):
    venues known to be down next step (``outage_steps_left > 1``), sizes that are
    zero, below the minimum notional or beyond the free funds at the market's
    protection band, every order level (IOC and post-only included) when no slot is
    free, cancels with nothing to cancel.
    Each dimension is masked on its own (as MaskablePPO does), so a combination of
    allowed choices can still be refused by the core; that is an event (a reject
    with a reason), visible in ``info`` and the observation.

    ## Observation Space

    ``Box(float32)`` of 37 features in the default config, each clipped to its bounds:

    | index  | block     | features (per listed instrument / venue)                                    | bounds    |
    |--------|-----------|------------------------------------------------------------------------------|-----------|
    | 0-7    | market    | last-step mid return /10 bps, return since start /100 bps, spread /10 bps, log(1+volume) | [-10, 10] |
    | 8-9    | outage    | outage steps left /10, per venue                                             | [0, 1]    |
    | 10-17  | balance   | free and locked value of base and quote per venue, fraction of the portfolio | [0, 1]    |
    | 18-22  | orders    | share of slots pending, open, partial, pending cancel, free                  | [0, 1]    |
    | 23-28  | stats     | fills, rejects, expiries of the last step /10; reject, expiry, fill rates    | [0, 1]    |
    | 29     | slippage  | episode mean slippage against arrival /10 bps                               | [-10, 10] |
    | 30-31  | working   | child quantity working per venue, fraction of the parent                     | [0, 1]    |
    | 32     | side      | +1 buy, -1 sell                                                              | [-1, 1]   |
    | 33-35  | parent    | remaining (unfilled) fraction, working fraction, time left fraction          | [0, 1]    |
    | 36     | shortfall | implementation shortfall so far /100 bps                                     | [-10, 10] |

    ``env.unwrapped.task.obs_layout.labels`` names every feature for any config.

    ## Rewards

    Everything in bps of the parent notional ``quantity x P0`` (``P0``: the
    arrival price, the mean mid of the listed instruments at reset). The reported
    metric is the implementation shortfall ``S`` (``info["shortfall_bps"]``, also
    observed): the cost of each step's fills against ``P0`` (``c_t``: fills above
    ``P0`` for a buy, and fees, cost; fills below earn), plus, when the horizon
    passes with a remainder ``R`` unfilled, the terminal charge
    ``H = R x (P0 x penalty_bps / 1e4 + side x (mid - P0))``
    (``info["horizon_penalty_bps"]``): the remainder valued at the current mid
    (its drift ``D = R x side x (mid - P0)``) plus a penalty (default 50 bps, above
    the cost of a market sweep at the default book). ``S`` is the same whatever
    the reward; ``reward=`` chooses what each step pays (``E = S - D``, the
    shortfall without the remainder's drift; ``F``: the filled fraction):

    | ``reward`` | step reward | sum over an episode | credits |
    |---|---|---|---|
    | ``"shortfall"`` (default) | ``-c_t``, and ``-H`` at the horizon | ``-S`` | exactly the metric, drift of the unfilled remainder included |
    | ``"arrival"`` | ``-c_t``, and ``-penalty_bps x R / quantity`` at the horizon | ``-E`` | execution prices against ``P0``; a fixed price for leaving quantity unfilled |
    | ``"marked"`` | ``-c_t + penalty_bps x (step fill / quantity)`` | ``penalty_bps - E`` (``penalty_bps x F - E`` if truncated before the horizon) | the change of the shortfall with the remainder marked at ``P0`` plus its penalty: each fill earns back the penalty it avoids, when it fills |

    Trade-offs. ``"shortfall"`` pays what is measured, but the terminal charge
    carries the market's drift over the whole episode on whatever is left (a
    variance the agent did not cause and that lands on the last step only).
    ``"arrival"`` drops that drift: lower variance, the same signal for every
    fill, still a sparse penalty at the end (a policy that waits learns late
    that waiting costs). ``"marked"`` is ``"arrival"`` with the penalty moved to
    the fills that avoid it (a potential-based shaping, ``Phi = -penalty_bps x
    remaining fraction``): dense credit for filling, no terminal jump, but a step
    that fills much earns much, so its per-step variance is the highest under
    lumpy policies (random actions: sd 8.6 bps against 3.1 for ``"arrival"``); the sums
    differ by the constant ``penalty_bps`` on every episode that terminates, so
    the best policy under ``"arrival"`` and ``"marked"`` is the same, and both
    differ from ``"shortfall"`` only by the remainder's drift, which has mean
    zero for a martingale mid only when the remainder does not depend on the
    path: a resting buy stays unfilled when the price rises, so a policy can
    earn under ``"arrival"`` and ``"marked"`` by leaving such remainders (PPO
    learned to; ``benchmarks/RESULTS.md``, issue 15: ``agents.rewards.DriftControl``
    takes the drift out of ``"shortfall"`` without that bias).
    ``benchmarks/reward_variance.py`` measures each option's per-step variance
    under the random and TWAP policies.

    ## Starting State

    The core's reset: the configured balances, no orders, the market at its
    initial prices (seeded: ``reset(seed=s)`` replays the same market and faults).
    Without a ``config`` object or ``exchange={"initial_balances": ...}`` the account
    is the config's default times ``ACCOUNT_SCALE`` (30): per venue 30 BTC and
    3,000,000 USD on the synthetic market (30 BTC, 3,000,000 USD and 1,500,000 USDT and
    USDC on Binance.US), so it holds the default parent; a larger parent needs its own
    balances (``agents.common.env_kwargs(quantity=...)`` writes them).

    ## Episode End

    - Termination: the parent is filled, or the horizon passed (the remainder is
      charged as above).
    - Truncation: ``max_episode_steps`` (registered 60, the default horizon; a
      default episode that reaches its horizon reports both flags).
      With a replayed market (``market=orderbook.ReplayMarket(...)``, or
      ``config=orderbook.binance_us_config()``) also at the end of its window,
      after ``episode_steps`` steps.

    ## Arguments

    ``gym.make("orderbook/Execution-v0", **kwargs)``: ``config``, ``venues``,
    ``quotes``, ``faults``, ``fills``, ``latency``, ``market``, ``exchange``, ``data`` (see
    :mod:`envs.config`); ``base`` ("BTC"), ``quote`` ("USD"), ``side`` ("buy",
    "sell" or "random", drawn per episode from the lane's seed), ``quantity``
    (base units, "30"), ``horizon`` (steps, 60), ``penalty_bps`` (50), ``reward``
    ("shortfall", "arrival" or "marked"; see Rewards), ``split`` ("train" or
    "test": the period of the Binance.US data every episode stays inside, with
    ``market="binance_us"``; see :mod:`envs.config`),
    ``size_multiples``, ``passive_bps``, ``orders_per_step`` (1), ``ttl_ms``
    (child time to live, 0 = the venue's default), ``render_mode`` ("rgb_array").
    ``reset(options={"side": ..., "quantity": ..., "horizon": ...})`` changes the
    parent for that episode; other keys raise ValueError. Options, seeds (ints in
    ``[0, 2**63 - 1]``) and the account's funds are checked as a whole: a refused
    reset raises ValueError and leaves the env, its state and its history as they
    were (no phantom episode).

    History (``env.unwrapped.exchange.history``, Polars frames by ``to_polars()``):
    ``history`` says what it keeps, ``"episode"`` by default: every row of the
    current episode (the one that just ended, until ``reset()``), whole, so
    ``render`` and notebooks see it; rows of earlier episodes are dropped whole
    once the logs hold twice what they kept at the last drop (at least ``4096 +
    256 x lanes`` rows; 16x that with a store), so memory stays flat in a plain
    loop. An int ``N``: the last ``N`` episodes; ``"all"``: everything (grows
    ~1-2 KB per step);
    ``"none"``: nothing (cleared every step). ``history_store`` (an
    ``orderbook.analytics.store.EpisodeStore`` or a folder) receives every row before it is
    dropped, as run ``history_run`` ("env"); ``close()`` writes the rest. See
    ``orderbook/analytics/retention.py``.

    ``info``: ``orders, fills, filled_lots, rejects, expiries, cancels`` of the
    step; ``slippage_mean_bps``, ``ack_latency_mean_ms`` of the episode; ``step``,
    ``portfolio_value`` (numeraire), ``filled_qty`` (step), ``parent_side``,
    ``parent_filled_qty``, ``parent_remaining_qty``, ``arrival_price``,
    ``shortfall_bps``, ``horizon_penalty_bps``.

    ## Version History

    - v0: initial version. Later within v0: market orders are IOC (never rest past
      their arrival step), protection cancels what lies beyond the band instead of
      clipping the impact, and levels 4 (IOC) and 5 (post-only) were inserted
      before the passive levels (which moved from 4.. to 6..).
    """

    task_cls = ExecutionTask


class ExecutionVectorEnv(OrderbookVectorEnv):
    """The native vector version of :class:`ExecutionEnv` (``gym.make_vec``, autoreset NEXT_STEP);
    the same arguments plus ``num_envs`` and ``max_episode_steps``."""

    task_cls = ExecutionTask
