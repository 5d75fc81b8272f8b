"""Trading: a multi-venue, multi-asset account trading for profit.

:class:`TradingTask` is the batched task; :class:`TradingEnv` and
:class:`TradingVectorEnv` are its single and vector front-ends
(``orderbook/Trading-v0``). The reward is the change of the portfolio's value in
the numeraire (``Exchange.accounts.value_numeraire``: free plus locked on every
venue, valued at the latest mids), so fees and slippage are in it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import orderbook as ob
from envs import features as ft
from envs import spaces as sp
from envs import trading_kernels as tk
from envs.config import build_config
from envs.core import BatchTask
from envs.single import OrderbookEnv
from envs.vector import OrderbookVectorEnv
from orderbook.compile.packed import Call
from orderbook.engine import lifecycle


class TradingTask(BatchTask):
    """Batched trading account (see :class:`TradingEnv` for the full description)."""

    name = "Trading-v0"
    trace_label = "portfolio value"
    option_keys = ()

    def __init__(self, n_lanes: int = 1, *, config: ob.ExchangeConfig | None = None, venues=None, quotes=None, faults=None,
                 fills=None, latency=None, market=None, exchange: dict | None = None,
                 size_fractions=(0.05, 0.1, 0.25, 0.5, 1.0), passive_bps=(2.0, 5.0), orders_per_step: int = 2,
                 ttl_ms: float = 0.0, ruin_fraction: float = 0.5, record_trace: bool = False, data=None,
                 history: Any = "episode", history_store: Any = None, history_run: str = "env", split: str | None = None):
        cfg = build_config(config, venues=venues, quotes=quotes, faults=faults, fills=fills, latency=latency, market=market,
                           exchange=exchange, data=data, episode_steps=240, split=split)
        frac = np.asarray(tuple(size_fractions), dtype=np.float64)
        if frac.ndim != 1 or len(frac) == 0 or not (np.isfinite(frac).all() and (frac > 0).all() and (frac <= 1).all()):
            raise ValueError(f"size_fractions must be a non-empty tuple of numbers in (0, 1], got {size_fractions!r}")
        if not (isinstance(ruin_fraction, (int, float)) and 0 <= ruin_fraction < 1):
            raise ValueError(f"ruin_fraction must be in [0, 1), got {ruin_fraction!r}")
        self.size_fractions, self.ruin_fraction = frac, float(ruin_fraction)
        self.obs_instruments = np.arange(len(cfg.instruments), dtype=np.int64)
        self.obs_venues = np.arange(len(cfg.venues), dtype=np.int64)
        self.obs_assets = np.arange(len(cfg.assets), dtype=np.int64)
        symbols = [x.symbol for x in cfg.instruments]
        self.symbol_groups = [np.asarray([i for i, s in enumerate(symbols) if s == sym], dtype=np.int64) for sym in dict.fromkeys(symbols)]
        self.base_assets = np.asarray(sorted({cfg.asset_index(x.base) for x in cfg.instruments}), dtype=np.int64)
        super().__init__(cfg, n_lanes, n_orders=orders_per_step, passive_bps=passive_bps, ttl_ms=ttl_ms, record_trace=record_trace,
                         history=history, history_store=history_store, history_run=history_run)
        self.initial_value = np.ones(n_lanes)
        self.prev_value = np.ones(n_lanes)
        self._arrays: tk.TradingArrays | None = None
        n_balances = len(cfg.venues) * len(cfg.assets)
        if n_balances > tk.PAIRWISE_MAX:
            raise ValueError(f"the compiled step sums at most {tk.PAIRWISE_MAX} balances per lane (venues x assets), "
                             f"the config has {n_balances}")

    # ----------------------------------------------------------- layout
    def _action_layout(self) -> sp.ActionLayout:
        dims = (("instrument", len(self.config.instruments)), ("side", 2), ("level", self.n_levels), ("size", len(self.size_fractions)))
        return sp.ActionLayout(dims, self.n_orders)

    def _obs_layout(self) -> ft.ObsLayout:
        layout = self._common_obs_layout()
        layout.add("basis", [f"{x.venue}:{x.symbol}:basis_bps" for x in self.config.instruments], -10.0, 10.0)
        layout.add("portfolio", ["return_100bps"], -10.0, 10.0)
        layout.add("exposure", ["base_value_fraction"], 0.0, 1.0)
        return layout

    # ------------------------------------------------------------ state
    def _after_reset(self, mask: np.ndarray) -> None:
        """The masked lanes' episodes start at the portfolio's value after the exchange's reset."""
        value = self.exchange.accounts.value_numeraire
        self.initial_value[mask] = value[mask]
        self.prev_value[mask] = value[mask]

    # ------------------------------------------------- compiled step
    @property
    def arrays(self) -> tk.TradingArrays:
        """The task's parameters and state as the kernels see them (the same arrays, not copies), and their scratch."""
        if self._arrays is None:
            n_v, n_a = self.exchange.accounts.free_atoms.shape[1:]
            groups = self.symbol_groups
            self._arrays = tk.TradingArrays(
                self.size_fractions, self.passive_bps, np.concatenate(groups).astype(np.int64),
                np.cumsum([0] + [len(g) for g in groups]).astype(np.int64), self.base_assets, self.initial_value, self.prev_value,
                np.zeros((n_v, n_a), dtype=np.int64), np.zeros(n_v * n_a + n_v * len(self.base_assets) + len(self.config.instruments)),
                int(self.ttl_ns), float(self.ruin_fraction),
            )
        return self._arrays

    def _decode_call(self) -> Call:
        ex = self.exchange
        return Call(tk.trading_decode, (self.cc, ex.orders, ex.lanes, ex.bars, ex.accounts, self.arrays, self.n_orders, self._actions,
                                        self._active, ex.intent_buffer, ex.cancel_buffer))

    def _evaluate_call(self) -> Call:
        return Call(tk.trading_evaluate, (self.exchange.accounts, self.arrays, self._reward, self._terminated))

    task_info_keys = tk.TRADING_INFO

    def _info_call(self, ints: np.ndarray, floats: np.ndarray, int_start: int, float_start: int) -> Call:
        return Call(tk.trading_info, (self.exchange.accounts, self.arrays, ints, floats, int_start, float_start))

    def _features_call(self, raw: np.ndarray, start: int) -> Call:
        ex = self.exchange
        return Call(tk.trading_features, (raw, start, self.cc, ex.bars, ex.accounts, self.arrays))

    # ---------------------------------------------------------- outputs
    def _trace_value(self) -> np.ndarray:
        return self.exchange.accounts.value_numeraire.copy()

    def action_masks(self) -> np.ndarray:
        ex, cc = self.exchange, self.cc
        down = sp.venue_down_next(ex.lanes)
        n_i = len(self.config.instruments)
        # choices broadcast as (B, instrument, side, size)
        inst = np.arange(n_i)[None, :, None, None]
        side = np.asarray([ob.Side.BUY, ob.Side.SELL], dtype=np.int64)[None, None, :, None]
        bid, ask = ex.bars.bid_ticks[:, :, None, None], ex.bars.ask_ticks[:, :, None, None]
        worst = sp.collar_ticks(cc, inst, side, bid, ask)
        asset = np.where(side[0, :, :, 0] == ob.Side.BUY, cc.inst_quote[:, None], cc.inst_base[:, None])  # (I, 2)
        free = ex.accounts.free_atoms[:, cc.inst_venue[:, None], asset][..., None]
        budget = np.floor(free * self.size_fractions[None, None, None, :]).astype(np.int64)
        lots = np.minimum(sp.lots_within(cc, inst, side, worst, budget), cc.max_qty_lots[inst])
        up = ~down[:, cc.inst_venue]  # (B, I)
        valid = sp.order_ok(cc, inst, worst, lots) & up[:, :, None, None]
        free_slot = ~lifecycle.LIVE_TABLE[ex.orders.status].all(axis=1)
        can = free_slot & valid.any(axis=(1, 2, 3))
        level = np.concatenate([np.ones((self.n_lanes, 1), dtype=bool), np.repeat(can[:, None], self.n_levels - 1, axis=1)], axis=1)
        masks = {
            "instrument": sp.ensure_choice(valid.any(axis=(2, 3))),
            "side": sp.ensure_choice(valid.any(axis=(1, 3))),
            "level": level,
            "size": sp.ensure_choice(valid.any(axis=(1, 2))),
        }
        return self.layout.flat_mask(masks, sp.cancel_choice_mask(sp.cancellable(ex.orders, cc, down)))


class TradingEnv(OrderbookEnv):
    """Trade a multi-venue, multi-asset account for profit, under latency and broker faults.

    ## Description

    One account holds balances on several venues (default ``alpha`` and ``beta``
    of ``orderbook.default_config()``: BTC against USD, USDT and USDC on each, 1 BTC,
    100k USD, 50k USDT and 50k USDC per venue). Each step the agent may send child
    orders on any instrument and cancel working ones; orders lock funds, wait for
    acks, fill in pieces, slip, get rejected, expire. All the core's faults are on
    by default (``orderbook.FaultSpec()``).

    ## Action Space

    ``MultiDiscrete`` of ``orders_per_step`` groups ``[instrument, side, level,
    size]`` and one ``cancel`` choice; the default is
    ``MultiDiscrete([6, 2, 8, 5, 6, 2, 8, 5, 3])``. Discrete for the reasons given
    in :class:`envs.execution.ExecutionEnv` (exact ticks and lots, MaskablePPO).

    - ``instrument``: index into ``config.instruments``.
    - ``side``: 0 buy, 1 sell.
    - ``level``: 0 no order, 1 market (IOC within the venue's protection band), 2
      limit at the far touch, 3 at the near touch, 4 IOC limit at the far touch, 5
      post-only limit at the near touch, 6.. ``passive_bps[j]`` behind it (default 2
      and 5 bps); the levels of :mod:`envs.spaces`.
    - ``size``: ``size_fractions[j]`` (default 5%, 10%, 25%, 50%, 100%) of the free
      balance the order locks (quote for a buy, base for a sell) on that venue, in
      whole lots, fees included; later orders of the same step size against what
      earlier ones left.
    - ``cancel``: 0 none, 1 the oldest cancellable order, 2 every cancellable order.

    ``action_masks()`` (flat, length ``sum(nvec)``) masks venues known to be down
    next step, (instrument, side, size) choices that give no valid order (zero
    lots, below the minimum notional), every order level when no slot is free,
    cancels with nothing to cancel; each dimension on its own.

    ## Observation Space

    ``Box(float32)`` of 62 features in the default config, each clipped to its bounds:

    | index  | block     | features                                                                      | bounds    |
    |--------|-----------|-------------------------------------------------------------------------------|-----------|
    | 0-23   | market    | per instrument: last-step return /10 bps, return since start /100 bps, spread /10 bps, log(1+volume) | [-10, 10] |
    | 24-25  | outage    | outage steps left /10, per venue                                              | [0, 1]    |
    | 26-41  | balance   | free and locked value per (venue, asset), fraction of the portfolio           | [0, 1]    |
    | 42-46  | orders    | share of slots pending, open, partial, pending cancel, free                   | [0, 1]    |
    | 47-52  | stats     | fills, rejects, expiries of the last step /10; reject, expiry, fill rates     | [0, 1]    |
    | 53     | slippage  | episode mean slippage against arrival /10 bps                                | [-10, 10] |
    | 54-59  | basis     | mid against the mean mid of the same symbol on all venues, bps               | [-10, 10] |
    | 60     | portfolio | return since the episode began /100 bps                                      | [-10, 10] |
    | 61     | exposure  | value held in base assets, fraction of the portfolio                          | [0, 1]    |

    ``env.unwrapped.task.obs_layout.labels`` names every feature for any config.

    ## Rewards

    ``1e4 x (V_t - V_{t-1}) / V_0``: the step's change of the portfolio value in the
    numeraire (free plus locked on every venue at the latest mids), in bps of the
    episode's initial value ``V_0``. Fees and slippage are in it; so is the
    market's move of what the account holds.

    ## Starting State

    The configured balances, no orders, the market at its initial prices (seeded).

    ## Episode End

    - Termination: the portfolio value falls below ``ruin_fraction`` (0.5) of ``V_0``.
    - Truncation: ``max_episode_steps`` (registered 240, four hours of one-minute steps).
      With a replayed market (``market=orderbook.ReplayMarket(...)``, or
      ``config=orderbook.binance_us_config()``) also at the end of its window,
      after ``episode_steps`` steps.

    ## Arguments

    ``gym.make("orderbook/Trading-v0", **kwargs)``: ``config``, ``venues``,
    ``quotes``, ``faults``, ``fills``, ``latency``, ``market``, ``exchange``, ``data``,
    ``split`` (``"train"`` or ``"test"`` period of the Binance.US data; see
    :mod:`envs.config`); ``size_fractions``, ``passive_bps``, ``orders_per_step``
    (2), ``ttl_ms`` (0 = the venue's default), ``ruin_fraction`` (0.5),
    ``render_mode`` ("rgb_array"). ``reset`` takes no options (any key raises); a seed must be an int in
    ``[0, 2**63 - 1]``, and a refused reset leaves the env as it was.

    ``history`` (``"episode"``), ``history_store``, ``history_run``: what
    ``env.unwrapped.exchange.history`` keeps (by default every row of the current
    episode, whole; older episodes are dropped whole as the logs fill, so memory
    stays flat) and where dropped rows go first; as in :class:`envs.execution.ExecutionEnv`.

    ``info``: ``orders, fills, filled_lots, rejects, expiries, cancels`` of the
    step; ``slippage_mean_bps``, ``ack_latency_mean_ms`` of the episode; ``step``,
    ``portfolio_value``, ``initial_value``, ``return_bps``.

    ## Version History

    - v0: initial version. Later within v0: market orders are IOC within the
      protection band; levels 4 (IOC) and 5 (post-only) were inserted before the
      passive levels (which moved from 4.. to 6..). Self-trade prevention: an
      order that would cross the lane's own resting order on the other side is
      cancelled at its arrival (``TIF_CANCEL``, reason ``SELF_TRADE``; the venue's
      ``fills={"self_trade": ...}`` chooses which side).
    """

    task_cls = TradingTask


class TradingVectorEnv(OrderbookVectorEnv):
    """The native vector version of :class:`TradingEnv` (``gym.make_vec``, autoreset NEXT_STEP);
    the same arguments plus ``num_envs`` and ``max_episode_steps``."""

    task_cls = TradingTask
