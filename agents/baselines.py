"""Classical strategies as batched policies with SB3's ``predict`` interface.

Every baseline maps ``(n_envs, obs_dim)`` observations to ``(n_envs, n_dims)``
MultiDiscrete actions, ``predict(obs, state=None, episode_start=None,
deterministic=True) -> (actions, state)``, so evaluation code treats them like a
trained model. Rules need what the (normalised) observation hides or rounds
(the parent's exact remaining quantity, the touch in ticks, working orders), so a
baseline is attached to the env it acts on (``attach(env)`` or ``Baseline(env)``)
and reads the task's state; that state is the one the observation was made from
(SB3's same-step reset, or a Gymnasium vector env whose waiting lanes ignore their
action anyway). Every action is finally made legal against the task's per-dimension
action masks (a masked choice falls back to "no order", "no cancel", the nearest
allowed size, or the first allowed venue), so baselines never ask for what the
account cannot do; the core may still refuse an order (faults), as it would a model's.

Execution-v0 (``[venue, level, size] x n_orders + [cancel]``; sizes are multiples
of the TWAP slice ``quantity / horizon`` or "everything still open"):

- ``twap``: a market child each step that keeps the filled-plus-working quantity on
  the straight line ``X (j + 1) / N`` (the nearest size choice to the deficit); the
  last step sends everything open. The ``risk_aversion -> 0`` limit of Almgren-Chriss.
- ``almgren_chriss``: the same tracking of the optimal holdings of Almgren and Chriss
  (2000), "Optimal execution of portfolio transactions", J. Risk 3(2), eq. (18) and
  section 3: ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)`` with
  ``2 (cosh(kappa tau) - 1) = tau^2 lambda sigma^2 / eta~`` and
  ``eta~ = eta - gamma tau / 2`` (``lambda``: risk aversion per quote unit; ``sigma``:
  price volatility in quote per base unit per sqrt second; ``eta``, ``gamma``: the
  linear temporary and permanent impact; ``tau``: the step in seconds).
- ``passive``: a post-only limit for everything open at the near touch (it never
  takes: rejected if the book moved through it on arrival); when the touch moves
  away from a working child, cancel and re-post (the re-post goes out the step
  after the cancel, since a child's size is capped at what is neither filled nor
  working); ``market_steps`` before the horizon cancel everything, then sweep the
  rest with market orders. Options: ``level`` posts behind the touch (a passive level)
  instead, ``hysteresis_bps`` re-posts only when the target moved more than that.
- ``all_at_once``: a market order for everything open, every step until filled.
- ``random``: uniform over the allowed choices of each dimension (seeded).

Trading-v0: ``buy_and_hold`` (market buys of all free cash on every instrument
until the cash is spent, then nothing), ``hold_cash`` (never trades), ``random``.

Routing: orders go to the allowed venue with the best far touch (lowest ask for a
buy, highest bid for a sell).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

import orderbook as ob
from agents.vec_env import find_task
from envs import spaces as sp
from envs.core import BatchTask
from envs.execution import ExecutionTask
from envs.trading import TradingTask
from orderbook.engine import lifecycle

BIG = np.iinfo(np.int64).max // 4


class Baseline:
    """A rule policy over a task's lanes; subclasses implement :meth:`act`."""

    name = "baseline"
    task_types: tuple[type[BatchTask], ...] = (BatchTask,)

    def __init__(self, env: Any = None):
        self.task: BatchTask | None = None
        if env is not None:
            self.attach(env)

    def attach(self, env: Any) -> Baseline:
        """Act on the lanes of ``env`` (an OrderbookVecEnv, its SB3 wrappers, or a Gymnasium orderbook env)."""
        task = find_task(env)
        if not isinstance(task, self.task_types):
            raise ValueError(f"{self.name} works on {[t.name for t in self.task_types]}, got {task.name}")
        self.task = task
        return self

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """``(n_envs, n_dims)`` int64 actions for the attached task's current state."""
        if self.task is None:
            raise RuntimeError(f"{self.name}: call attach(env) before predict()")
        n = self.task.n_lanes
        if np.ndim(observation) != 2 or np.shape(observation)[0] != n:
            raise ValueError(f"{self.name}: observation must have shape ({n}, obs_dim), got {np.shape(observation)}")
        return legalize(self.task, self.act(self.task)), state

    def act(self, task: BatchTask) -> np.ndarray:
        raise NotImplementedError


def legalize(task: BatchTask, actions: np.ndarray) -> np.ndarray:
    """``actions`` with every masked choice replaced: level/cancel -> 0, size -> nearest allowed, others -> first allowed."""
    masks = task.action_masks()
    names = [name.split(".")[-1] for name in task.layout.names]
    out = actions.astype(np.int64).copy()
    lanes = np.arange(out.shape[0])
    start = 0
    for d, (name, n) in enumerate(zip(names, task.layout.nvec.tolist())):
        mask = masks[:, start:start + n]
        start += n
        a = out[:, d]
        ok = mask[lanes, a]
        if ok.all():
            continue
        if name in ("level", "cancel"):
            fallback = np.zeros_like(a)
        elif name == "size":
            dist = np.abs(np.arange(n)[None, :] - a[:, None]) + np.where(mask, 0, BIG)
            fallback = dist.argmin(axis=1)
        else:
            fallback = mask.argmax(axis=1)
        out[:, d] = np.where(ok, a, fallback)
    return out


# ------------------------------------------------------------------ Execution-v0
class ExecutionBaseline(Baseline):
    """Helpers over :class:`envs.execution.ExecutionTask` (one order group is used; others send nothing)."""

    task_types = (ExecutionTask,)

    def _blank(self, task: ExecutionTask) -> np.ndarray:
        return np.zeros((task.n_lanes, len(task.layout.nvec)), dtype=np.int64)

    def _venue(self, task: ExecutionTask) -> np.ndarray:
        """The allowed venue (index into the listing) with the best far touch, per lane."""
        bars, n_v = task.exchange.bars, len(task.listing)
        allowed = task.action_masks()[:, :n_v]
        buy = task.side[:, None] == ob.Side.BUY
        cost = np.where(buy, bars.ask_ticks[:, task.listing], -bars.bid_ticks[:, task.listing])
        return np.where(allowed, cost, BIG).argmin(axis=1)

    def _open_atoms(self, task: ExecutionTask) -> np.ndarray:
        return task.open_atoms()

    def _size_for(self, task: ExecutionTask, venue: np.ndarray, want_atoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(size choice, send) whose child is nearest to ``want_atoms``; no order when it is under half a lot."""
        inst = task.listing[venue]
        n_s = len(task.size_multiples) + 1
        open_atoms = self._open_atoms(task)
        lots = task.size_lots(np.arange(n_s)[None, :], inst[:, None], open_atoms[:, None])
        bapl = task.cc.base_atoms_per_lot[inst]
        atoms = lots * bapl[:, None]
        size_mask = task.action_masks()[:, len(task.listing) + task.n_levels:][:, :n_s]
        dist = np.where(size_mask & (lots > 0), np.abs(atoms - want_atoms[:, None]), BIG)
        size = dist.argmin(axis=1)
        send = (want_atoms * 2 >= bapl) & (open_atoms > 0)
        return size, send

    def _order(self, task: ExecutionTask, level: np.ndarray, size: np.ndarray, send: np.ndarray, cancel: np.ndarray) -> np.ndarray:
        acts = self._blank(task)
        acts[:, 0] = self._venue(task)
        acts[:, 1] = np.where(send, level, sp.LEVEL_NONE)
        acts[:, 2] = size
        acts[:, -1] = cancel
        return acts


def ac_kappa_tau(risk_aversion: np.ndarray, sigma: np.ndarray, eta: np.ndarray, gamma: np.ndarray, tau: float) -> np.ndarray:
    """``kappa tau`` of Almgren-Chriss (2000): ``cosh(kappa tau) = 1 + tau^2 lambda sigma^2 / (2 eta~)``."""
    eta_t = eta - gamma * tau / 2.0
    if np.any(eta_t <= 0):
        raise ValueError(f"Almgren-Chriss needs eta - gamma tau / 2 > 0, got eta={eta}, gamma={gamma}, tau={tau}")
    return np.arccosh(1.0 + tau**2 * risk_aversion * sigma**2 / (2.0 * eta_t))


def ac_holdings_fraction(kappa_tau: np.ndarray, n_steps: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``x_j / X = sinh(kappa tau (N - j)) / sinh(kappa tau N)`` (``(N - j) / N`` at ``kappa = 0``), overflow-free."""
    k, n, j = np.broadcast_arrays(np.asarray(kappa_tau, float), np.asarray(n_steps, float), np.asarray(j, float))
    j = np.clip(j, 0, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.exp(-k * j) * -np.expm1(-2 * k * (n - j)) / -np.expm1(-2 * k * n)
    return np.where(k > 1e-12, ratio, (n - j) / n)


class AlmgrenChriss(ExecutionBaseline):
    """Market children tracking the Almgren-Chriss optimal holdings (see the module docstring).

    Args:
        env: the env to attach to (or call :meth:`attach` later).
        risk_aversion: ``lambda`` per quote unit; 1e-4 per USD gives ``kappa T`` of about 2 for
            1 BTC over 20 one-minute steps of the default market (about 6 over 60), a first
            child of twice the TWAP slice; 0 is TWAP.
        sigma_per_step: price volatility per step in quote units; default from the synthetic
            market (``abm_sigma_per_step``, or ``vol_per_step`` x the arrival price), else 8 bps.
        eta, gamma: linear temporary (quote x s / base^2) and permanent (quote / base^2) impact;
            default the venue's linear ``ImpactSpec``, else ``eta`` estimated from the book
            (half the price step between levels per unit of touch depth, times the step).
    """

    name = "almgren_chriss"

    def __init__(self, env: Any = None, risk_aversion: float = 1e-4, sigma_per_step: float | None = None,
                 eta: float | None = None, gamma: float | None = None):
        if not (math.isfinite(risk_aversion) and risk_aversion >= 0):
            raise ValueError(f"risk_aversion must be a finite number >= 0, got {risk_aversion!r}")
        self.risk_aversion, self.sigma_per_step, self.eta, self.gamma = float(risk_aversion), sigma_per_step, eta, gamma
        super().__init__(env)

    def impact_params(self, task: ExecutionTask) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """(sigma per sqrt second, eta, gamma) per lane, and the step ``tau`` in seconds."""
        cfg = task.config
        tau = cfg.step_ms / 1000.0
        venue = cfg.venues[int(task.obs_venues[0])]
        base = cfg.instruments[int(task.listing[0])].base
        price = task.arrival
        market = cfg.market
        if self.sigma_per_step is not None:
            sigma_step = np.full_like(price, float(self.sigma_per_step))
        elif isinstance(market, ob.SyntheticMarket):
            sigma_step = np.full_like(price, market.abm_sigma_per_step) if market.process == "abm" else market.vol_per_step * price
        else:
            sigma_step = 8e-4 * price
        impact = venue.fills.impact
        if self.eta is not None:
            eta = np.full_like(price, float(self.eta))
        elif impact.model == "linear" and impact.eta > 0:
            eta = np.full_like(price, impact.eta)
        else:
            volume = market.volume_mean.get(base, 5.0) if isinstance(market, ob.SyntheticMarket) else 5.0
            touch_depth = max(venue.book.depth_fractions[0] * volume, 1e-9)
            eta = price * max(venue.book.level_step_bps, 1e-3) * 1e-4 * tau / (2.0 * touch_depth)
        gamma = float(self.gamma) if self.gamma is not None else (impact.gamma if impact.model == "linear" else 0.0)
        return sigma_step / math.sqrt(tau), eta, np.full_like(price, gamma), tau

    def target_fraction(self, task: ExecutionTask) -> np.ndarray:
        """Fraction of the parent to have filled or working after this step: ``1 - x_{j+1} / X``."""
        j = task.exchange.lanes.step
        if self.risk_aversion == 0.0:
            kt = np.zeros(task.n_lanes)
        else:
            sigma, eta, gamma, tau = self.impact_params(task)
            kt = ac_kappa_tau(self.risk_aversion, sigma, eta, gamma, tau)
        return 1.0 - ac_holdings_fraction(kt, task.horizon, j + 1)

    def act(self, task: ExecutionTask) -> np.ndarray:
        venue = self._venue(task)
        done = task.filled + task.working_atoms().sum(axis=1)
        want = np.maximum(np.ceil(self.target_fraction(task) * task.parent_atoms - done), 0)
        size, send = self._size_for(task, venue, want)
        return self._order(task, np.full(task.n_lanes, sp.LEVEL_MARKET), size, send, np.zeros(task.n_lanes, np.int64))


class TWAP(AlmgrenChriss):
    """Equal market children, ``X / N`` per step (Almgren-Chriss with ``risk_aversion = 0``)."""

    name = "twap"

    def __init__(self, env: Any = None):
        super().__init__(env, risk_aversion=0.0)


class AllAtOnce(ExecutionBaseline):
    """A market order for everything still open, every step until the parent is filled."""

    name = "all_at_once"

    def act(self, task: ExecutionTask) -> np.ndarray:
        n_s = len(task.size_multiples)
        send = self._open_atoms(task) > 0
        return self._order(task, np.full(task.n_lanes, sp.LEVEL_MARKET), np.full(task.n_lanes, n_s), send, np.zeros(task.n_lanes, np.int64))


class PassiveReprice(ExecutionBaseline):
    """Post-only limit at the near touch (or behind it) for everything open, re-posted when the touch moves;
    market sweep at the end.

    Args:
        market_steps: the last ``market_steps`` steps send market orders for what is open;
            the step before them cancels every working child.
        level: where children are posted: ``LEVEL_POST_NEAR`` (the near touch, post-only) or a
            passive level ``LEVEL_PASSIVE0 + j`` (``passive_bps[j]`` behind the near touch).
        hysteresis_bps: a working child is re-posted only when its price is more than this far
            (in bps of its target price, floored to whole ticks) from where ``level`` would post now;
            0 re-posts whenever the target moved by a tick.
    """

    name = "passive"

    def __init__(self, env: Any = None, market_steps: int = 1, level: int = sp.LEVEL_POST_NEAR, hysteresis_bps: float = 0.0):
        if not (isinstance(market_steps, int) and market_steps >= 1):
            raise ValueError(f"market_steps must be an int >= 1, got {market_steps!r}")
        if not (isinstance(level, numbers.Integral) and (level == sp.LEVEL_POST_NEAR or level >= sp.LEVEL_PASSIVE0)):
            raise ValueError(f"level must be post-only at the near touch ({sp.LEVEL_POST_NEAR}) or behind it "
                             f"(>= {sp.LEVEL_PASSIVE0}), got {level!r}")
        if not (isinstance(hysteresis_bps, numbers.Real) and math.isfinite(hysteresis_bps) and hysteresis_bps >= 0):
            raise ValueError(f"hysteresis_bps must be a finite number >= 0, got {hysteresis_bps!r}")
        self.market_steps, self.level, self.hysteresis_bps = market_steps, int(level), float(hysteresis_bps)
        super().__init__(env)

    def attach(self, env: Any) -> PassiveReprice:
        task = find_task(env)
        if isinstance(task, ExecutionTask) and self.level >= task.n_levels:
            raise ValueError(f"{self.name}: level must be < {task.n_levels} (passive levels {sp.LEVEL_PASSIVE0}.."
                             f"{task.n_levels - 1} for passive_bps {task.passive_bps.tolist()}), got {self.level}")
        super().attach(env)
        return self

    def _stale(self, task: ExecutionTask) -> np.ndarray:
        """Lanes with a working limit child whose price is more than the tolerance from where ``level`` posts now."""
        o, bars = task.exchange.orders, task.exchange.bars
        live = lifecycle.CANCELLABLE_TABLE[o.status] & (o.kind == ob.OrderKind.LIMIT)  # working, not being cancelled
        bid, ask = sp.at(bars.bid_ticks, o.instrument), sp.at(bars.ask_ticks, o.instrument)
        side = np.broadcast_to(task.side[:, None], o.price_ticks.shape)
        if self.level == sp.LEVEL_POST_NEAR:
            want = np.where(side == ob.Side.BUY, bid, ask)
        else:
            want = sp.limit_price_ticks(np.full(o.price_ticks.shape, self.level), side, bid, ask,
                                        np.asarray(task.passive_bps, dtype=np.float64))
        tolerance_ticks = np.floor(want * self.hysteresis_bps * 1e-4).astype(np.int64)
        return (live & (np.abs(o.price_ticks - want) > tolerance_ticks)).any(axis=1)

    def act(self, task: ExecutionTask) -> np.ndarray:
        n = task.n_lanes
        left = task.horizon - task.exchange.lanes.step
        sweep, wind_down = left <= self.market_steps, left == self.market_steps + 1
        stale = self._stale(task)
        cancel = np.where(sweep | wind_down | stale, sp.CANCEL_ALL, sp.CANCEL_NONE)
        level = np.where(sweep, sp.LEVEL_MARKET, self.level)
        send = (self._open_atoms(task) > 0) & (sweep | ~(wind_down | stale))
        return self._order(task, level, np.full(n, len(task.size_multiples)), send, cancel)


# ------------------------------------------------------------------- any task
class RandomPolicy(Baseline):
    """Uniform over the allowed choices of each action dimension (its own seeded generator)."""

    name = "random"

    def __init__(self, env: Any = None, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        super().__init__(env)

    def act(self, task: BatchTask) -> np.ndarray:
        masks = task.action_masks()
        out = np.empty((task.n_lanes, len(task.layout.nvec)), dtype=np.int64)
        start = 0
        for d, n in enumerate(task.layout.nvec.tolist()):
            mask = masks[:, start:start + n]
            start += n
            k = np.floor(self.rng.random(task.n_lanes) * mask.sum(axis=1)).astype(np.int64)
            out[:, d] = (mask.cumsum(axis=1) > k[:, None]).argmax(axis=1)
        return out


# ------------------------------------------------------------------ Trading-v0
class HoldCash(Baseline):
    """Never trades: the account's value moves only with the quotes it holds."""

    name = "hold_cash"
    task_types = (TradingTask,)

    def act(self, task: TradingTask) -> np.ndarray:
        return np.zeros((task.n_lanes, len(task.layout.nvec)), dtype=np.int64)


class BuyAndHold(Baseline):
    """Market buys with all free quote cash on every instrument (``orders_per_step`` at a time), then holds."""

    name = "buy_and_hold"
    task_types = (TradingTask,)

    def act(self, task: TradingTask) -> np.ndarray:
        ex, cc = task.exchange, task.cc
        n, n_i = task.n_lanes, len(task.config.instruments)
        inst = np.broadcast_to(np.arange(n_i), (n, n_i))
        buy = np.full((n, n_i), ob.Side.BUY, dtype=np.int64)
        worst = sp.collar_ticks(cc, inst, buy, ex.bars.bid_ticks, ex.bars.ask_ticks)
        cash = ex.accounts.free_atoms[:, cc.inst_venue, cc.inst_quote]  # (B, I)
        lots = np.minimum(sp.lots_within(cc, inst, buy, worst, cash), cc.max_qty_lots[inst])
        o = ex.orders
        live = lifecycle.LIVE_TABLE[o.status]
        working = np.zeros((n, n_i), dtype=bool)
        lanes = np.broadcast_to(np.arange(n)[:, None], o.status.shape)
        working[lanes[live], o.instrument[live]] = True
        down = sp.venue_down_next(ex.lanes)[:, cc.inst_venue]
        buyable = sp.order_ok(cc, inst, worst, lots) & ~working & ~down
        order = np.argsort(~buyable, axis=1, kind="stable")
        acts = np.zeros((n, len(task.layout.nvec)), dtype=np.int64)
        width, last_size = len(task.layout.dims), len(task.size_fractions) - 1
        for g in range(task.n_orders):
            pick = order[:, g % n_i]
            ok = buyable[np.arange(n), pick] & (g < n_i)
            acts[:, g * width:(g + 1) * width] = np.stack(
                [pick, np.zeros(n, np.int64), np.where(ok, sp.LEVEL_MARKET, sp.LEVEL_NONE), np.full(n, last_size)], axis=1)
        return acts


EXECUTION_BASELINES: dict[str, type[Baseline]] = {
    "twap": TWAP, "almgren_chriss": AlmgrenChriss, "passive": PassiveReprice, "all_at_once": AllAtOnce, "random": RandomPolicy,
}
TRADING_BASELINES: dict[str, type[Baseline]] = {"buy_and_hold": BuyAndHold, "hold_cash": HoldCash, "random": RandomPolicy}


def baselines_for(env: Any, seed: int = 0) -> dict[str, Baseline]:
    """Every baseline of the env's task, attached to ``env`` (the random one seeded with ``seed``)."""
    task = find_task(env)
    table = EXECUTION_BASELINES if isinstance(task, ExecutionTask) else TRADING_BASELINES
    return {name: (cls(env, seed=seed) if cls is RandomPolicy else cls(env)) for name, cls in table.items()}
