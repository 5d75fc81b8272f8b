"""What an Execution parent may be: its side, quantity, horizon and reward, and the funds that must hold it.

Each function checks a user's argument (a ``gym.make`` keyword or a
``reset(options=...)`` value) and says, when it refuses, what was expected and
what came; none changes anything, so a refused reset leaves the task as it was.
:class:`envs.execution.ExecutionTask` calls them (``_check_options`` before a
reset, ``_check_funds`` after its reset kernel found a lane short), and
``envs.execution`` re-exports the names here that were always imported from it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

import orderbook as ob
from envs import execution_kernels as ek
from envs import spaces as sp
from orderbook.spec.specs import to_decimal

if TYPE_CHECKING:
    from envs.execution import ExecutionTask

ACCOUNT_SCALE = 30  # the default account is the core's (per venue 1 BTC, 100,000 USD, ...) times this: it holds the default parent
DEFAULT_QUANTITY = "30"  # base units: a tenth of the synthetic market's mean hourly volume (60 bars of 5 BTC)
HORIZON_MAX = 2**31 - 1  # steps: the history's step column is int32
PARENT_ATOMS_MAX = 2**53  # base atoms of a parent: the task's float figures (notional, fractions) stay exact
REWARDS = ek.REWARDS  # the reward options: "shortfall" (the default), "arrival", "marked"
SIDE_CODES = {"buy": ob.Side.BUY, "sell": ob.Side.SELL, "random": 0, 1: 1, -1: -1}  # 0: drawn per episode from the lane's seed


def default_account(cfg: ob.ExchangeConfig, scale: int = ACCOUNT_SCALE) -> ob.ExchangeConfig:
    """``cfg`` with every initial balance times ``scale``: the account Execution-v0 gets when the user gave none
    (no ``config`` object, no ``exchange={"initial_balances": ...}``), so that it holds the default parent
    (30 BTC: per venue 30 BTC, or 3,000,000 USD, ~3x its notional at 30,000 USD per BTC). Exact (decimals)."""
    return dataclasses.replace(cfg, initial_balances={k: to_decimal(v, f"initial_balances[{k!r}]") * scale
                                                      for k, v in cfg.initial_balances.items()})


def check_reward(reward: Any) -> int:
    """The kernel code of the reward option ``reward`` (a name of :data:`REWARDS`); ValueError naming what came otherwise."""
    if not isinstance(reward, str) or reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
    return REWARDS.index(reward)


def check_horizon(horizon: Any, step_ms: int | None = None) -> int:
    """``horizon`` as an int in ``[1, HORIZON_MAX]`` steps (and, with ``step_ms``, short enough that the
    episode's end fits the int64 ns clock); ValueError naming what came otherwise."""
    top = HORIZON_MAX if step_ms is None else min(HORIZON_MAX, (2**62) // (int(step_ms) * 1_000_000))
    if isinstance(horizon, (bool, np.bool_)) or not isinstance(horizon, (int, np.integer)) or not 1 <= horizon <= top:
        why = "" if step_ms is None else f"; {top} steps of {step_ms} ms fit the int64 ns clock"
        raise ValueError(f"horizon must be an int in [1, {top}] (steps{why}), got {horizon!r}")
    return int(horizon)


def check_side(side: Any) -> int:
    """The side code of ``side`` (+1 buy, -1 sell, 0 random; names in any case); ValueError naming what came otherwise."""
    key = side.lower() if isinstance(side, str) else side
    if not isinstance(key, (str, int, np.integer)) or isinstance(key, (bool, np.bool_)) or key not in SIDE_CODES:
        raise ValueError(f"side must be 'buy', 'sell', 'random', +1 or -1, got {side!r}")
    return int(SIDE_CODES[key])


def check_quantity(task: ExecutionTask, quantity: Any) -> int:
    """Base atoms of a parent of ``quantity`` base units: > 0, a whole number of lots on every listed
    instrument and at most :data:`PARENT_ATOMS_MAX`; ValueError naming what came otherwise."""
    qty = to_decimal(quantity, "quantity") * int(task.apu_base)
    lots = task.cc.base_atoms_per_lot[task.listing]
    if qty <= 0 or qty != qty.to_integral_value() or any(int(qty) % int(x) for x in lots):
        sizes = [str(task.config.instruments[i].lot_size) for i in task.listing]
        raise ValueError(f"quantity must be > 0 and a multiple of the lot sizes {sizes}, got {quantity!r}")
    if qty > PARENT_ATOMS_MAX:
        top = to_decimal(PARENT_ATOMS_MAX, "max") / int(task.apu_base)
        raise ValueError(f"quantity must be at most {top} {task.config.assets[task.base_a].name} (2**53 atoms: the task's "
                         f"float figures stay exact), got {quantity!r}")
    return int(qty)


def check_options(task: ExecutionTask, options: dict[str, Any]) -> dict[str, Any]:
    """The checked parent of ``options`` (any of ``side``, ``quantity``, ``horizon``) as the task's arrays hold it:
    ``side``, ``parent_atoms``, ``horizon``."""
    out: dict[str, Any] = {}
    if "side" in options:
        out["side"] = check_side(options["side"])
    if "quantity" in options:
        out["parent_atoms"] = check_quantity(task, options["quantity"])
    if "horizon" in options:
        out["horizon"] = check_horizon(options["horizon"], task.config.step_ms)
    return out


def check_funds(task: ExecutionTask, mask: np.ndarray) -> None:
    """The account of every masked lane must hold the parent: its base (sell) or its notional at the collar
    plus fees (buy); ValueError naming the first lane short, the asset, what it needs and what it holds."""
    acct, cc = task.exchange.accounts, task.cc
    free = acct.free_atoms[:, task.obs_venues]
    worst = 1.0 + cc.collar_bps[task.obs_venues].max() * 1e-4
    fee = 1.0 + np.maximum(cc.maker_fee_e8, cc.taker_fee_e8)[task.listing].max() / sp.E8
    need_quote = np.ceil(task.notional * worst * fee * task.apu_quote)
    short = np.where(task.side == ob.Side.BUY, free[:, :, task.quote_a].sum(axis=1) < need_quote,
                     free[:, :, task.base_a].sum(axis=1) < task.parent_atoms) & mask
    if short.any():
        b = int(np.flatnonzero(short)[0])
        asset = task.quote_a if task.side[b] == ob.Side.BUY else task.base_a
        need = need_quote[b] if asset == task.quote_a else task.parent_atoms[b]
        have = free[b, :, asset].sum()
        name = task.config.assets[asset].name
        units = task.apu_quote if asset == task.quote_a else task.apu_base
        raise ValueError(f"lane {b}: the account must hold enough {name} for the parent order: needs {need / units:.8g}, "
                         f"holds {have / units:.8g} on the venues that list the pair; lower quantity or raise initial_balances")
