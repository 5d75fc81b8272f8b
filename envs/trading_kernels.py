"""The Trading task's step as compiled kernels: decode, evaluate, features, info.

They are the task's only step in the product. Their readable specification is
the numpy reference kept with the tests (``tests/envs/oracle/trading_reference.py``:
``_decode``, ``_evaluate``, ``_task_features``, ``_task_info``): with
the same inputs the kernels give the same bits (same operations in the same
order, checked by ``tests/envs/test_compiled_trading.py`` on random actions with
faults high). :class:`envs.core.BatchTask` runs them with the core's market
advance and order step as one packed call (:mod:`orderbook.compile.packed`).

Matching numpy bit for bit takes care in three places:

- sums: numpy adds a row of ``n`` floats pairwise (:func:`pairwise_sum`, the
  algorithm of numpy's ``pairwise_sum``: left to right below 8 elements, 8
  accumulators up to 128, halves above); ``mean`` is that sum divided by ``n``;
- a float division by zero gives inf or nan in numpy where numba (its Python
  error model) would raise: :func:`fdiv` gives numpy's result;
- sizing against funds (:func:`lots_within`, :func:`reservation_atoms`,
  :func:`collar_ticks`) repeats :mod:`envs.spaces` operation by operation.

Compiled like the core's kernels (:func:`orderbook.compile.jit.kernel`): they never
allocate; the few scratch values they need live in buffers the task owns
(:class:`TradingArrays` ``free`` and ``buf``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from envs.execution_kernels import limit_price
from envs.kernels import clear_intents, write_cancels, write_intent
from envs.spaces import E8, LEVEL_MARKET, LEVEL_NONE
from orderbook.compile.jit import kernel
from orderbook.engine.tif import band_price_ticks
from orderbook.spec import codes as c

N_DIMS = 4  # choices per order group: instrument, side, level, size


class TradingArrays(NamedTuple):
    """The task's parameters, per-lane state and scratch, shared (not copied) with :class:`TradingTask`."""

    size_fractions: np.ndarray  # (S,) float64
    passive_bps: np.ndarray  # (P,) float64
    group_inst: np.ndarray  # (I,) int64 instruments ordered by symbol group
    group_start: np.ndarray  # (G + 1,) int64 where each symbol group starts in group_inst
    base_assets: np.ndarray  # (nb,) int64 assets that are the base of some instrument
    initial_value: np.ndarray  # (B,) float64 portfolio value at reset
    prev_value: np.ndarray  # (B,) float64 portfolio value after the previous step
    free: np.ndarray  # (V, A) int64 scratch: one lane's free funds left for its later orders of the step
    buf: np.ndarray  # (V * A + V * nb + I,) float64 scratch: rows to sum
    ttl_ns: int  # orders' time to live (0 = the venue's default)
    ruin_fraction: float


# ------------------------------------------------------------------ floats
@kernel(inline=True)
def fdiv(x, y):
    """``x / y`` as numpy divides floats: inf or nan when ``y`` is 0 (numba would raise)."""
    if y != 0:
        return x / y
    if x != x or x == 0:
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)


@kernel
def _pairwise_block(a, lo, n):
    """numpy's ``pairwise_sum`` of ``a[lo:lo + n]`` for ``n <= 128`` (no further halving)."""
    if n < 8:
        res = -0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


# numpy halves a row of more than 128 elements recursively; numba cannot load a recursive function
# from its cache, so the halvings are written out: each level halves once and calls the level below
# (four levels: rows of up to 1,928 elements; PAIRWISE_MAX is a round bound under it).
PAIRWISE_MAX = 1024


@kernel(inline=True)
def _half(n):
    n2 = n // 2
    return n2 - n2 % 8


@kernel
def _pairwise_1(a, lo, n):
    if n <= 128:
        return _pairwise_block(a, lo, n)
    n2 = _half(n)
    return _pairwise_block(a, lo, n2) + _pairwise_block(a, lo + n2, n - n2)


@kernel
def _pairwise_2(a, lo, n):
    if n <= 128:
        return _pairwise_block(a, lo, n)
    n2 = _half(n)
    return _pairwise_1(a, lo, n2) + _pairwise_1(a, lo + n2, n - n2)


@kernel
def _pairwise_3(a, lo, n):
    if n <= 128:
        return _pairwise_block(a, lo, n)
    n2 = _half(n)
    return _pairwise_2(a, lo, n2) + _pairwise_2(a, lo + n2, n - n2)


@kernel
def pairwise_sum(a, lo, n):
    """The sum of ``a[lo:lo + n]`` in the order numpy's ``pairwise_sum`` adds (``np.sum`` of a row),
    for ``n <= PAIRWISE_MAX``: left to right below 8 elements, 8 accumulators up to 128, halves above."""
    if n <= 128:
        return _pairwise_block(a, lo, n)
    n2 = _half(n)
    return _pairwise_3(a, lo, n2) + _pairwise_3(a, lo + n2, n - n2)


@kernel(inline=True)
def mid_price(cc, bars, b, i):
    """:func:`envs.features.mids` of one instrument."""
    return (bars.bid_ticks[b, i] + bars.ask_ticks[b, i]) * 0.5 * cc.tick_size[i]


@kernel
def unit_value(cc, bars, b, v, a):
    """:func:`envs.features.unit_values` of one (venue, asset)."""
    val = 1.0
    for t in range(cc.valuation_inst.shape[2]):
        i = cc.valuation_inst[v, a, t]
        if i < 0:
            continue
        m = mid_price(cc, bars, b, i)
        if cc.valuation_power[v, a, t] > 0:
            val = val * m
        else:
            val = fdiv(val, m)
    return val


# ------------------------------------------------------------------ sizing
@kernel(inline=True)
def worst_fee_atoms(notional, rate_e8):
    """:func:`envs.spaces.worst_fee_atoms` for one notional."""
    hi = notional // E8
    lo = notional % E8
    x = lo * rate_e8
    return hi * rate_e8 + x // E8 + (1 if x % E8 > 0 else 0)


@kernel
def collar_ticks(cc, inst, side, bid, ask):
    """:func:`envs.spaces.collar_ticks`: the price a market order reserves at (the core's band)."""
    return band_price_ticks(bid, ask, cc.collar_bps[cc.inst_venue[inst]], cc.min_price_ticks[inst], cc.max_price_ticks[inst], side)


@kernel
def reservation_atoms(cc, inst, side, price, lots):
    """:func:`envs.spaces.reservation_atoms`: what the core locks for a new order."""
    if side != c.BUY:
        return lots * cc.base_atoms_per_lot[inst]
    notional = price * lots * cc.quote_atoms_per_tick_lot[inst]
    rate = max(cc.maker_fee_e8[inst], cc.taker_fee_e8[inst])
    return notional + worst_fee_atoms(notional, rate)


@kernel
def lots_within(cc, inst, side, price, budget_atoms):
    """:func:`envs.spaces.lots_within`: the most lots whose reservation fits in ``budget_atoms``."""
    budget = max(budget_atoms, 0)
    if side != c.BUY:
        return max(budget // cc.base_atoms_per_lot[inst], 0)
    per_lot = max(price * cc.quote_atoms_per_tick_lot[inst], 1)
    rate = max(cc.maker_fee_e8[inst], cc.taker_fee_e8[inst])
    buy = np.int64(np.floor(budget / (per_lot * (1.0 + rate / E8))))
    for _ in range(2):  # the same two correction passes
        notional = buy * per_lot
        need = notional + worst_fee_atoms(notional, rate)
        if buy > 0 and need > budget:
            buy -= 1
    return max(buy, 0)


# ------------------------------------------------------------------- step
@kernel
def trading_decode(cc, orders, lanes, bars, acct, x, n_orders, actions, active, intents, cancels):
    """Intents and cancels of every lane from its ``(n_orders * 4 + 1)`` choices (the reference's ``_decode``;
    inactive lanes send nothing). Each order sizes against the free funds earlier orders of the step left."""
    n_v, n_a = acct.free_atoms.shape[1], acct.free_atoms.shape[2]
    ttl = x.ttl_ns
    free = x.free
    for b in range(actions.shape[0]):
        clear_intents(intents, b)
        for v in range(n_v):
            for a in range(n_a):
                free[v, a] = acct.free_atoms[b, v, a]
        for g in range(n_orders):
            inst = actions[b, N_DIMS * g]
            side = c.BUY if actions[b, N_DIMS * g + 1] == 0 else c.SELL
            level = actions[b, N_DIMS * g + 2]
            size = actions[b, N_DIMS * g + 3]
            bid, ask = bars.bid_ticks[b, inst], bars.ask_ticks[b, inst]
            price = limit_price(level, side, bid, ask, x.passive_bps)
            reserve_at = collar_ticks(cc, inst, side, bid, ask) if level == LEVEL_MARKET else price
            venue = cc.inst_venue[inst]
            asset = cc.inst_quote[inst] if side == c.BUY else cc.inst_base[inst]
            budget = np.int64(np.floor(free[venue, asset] * x.size_fractions[size]))
            lots = min(lots_within(cc, inst, side, reserve_at, budget), cc.max_qty_lots[inst])
            send = active[b] and lots > 0 and level != LEVEL_NONE
            write_intent(intents, b, g, inst, side, level, price, lots, send, ttl)
            if send:
                free[venue, asset] -= reservation_atoms(cc, inst, side, reserve_at, lots)
        write_cancels(cc, orders, lanes, b, actions[b, actions.shape[1] - 1], active[b], cancels)


@kernel
def trading_evaluate(acct, x, reward, terminated):
    """Reward and termination of every lane after a step (the reference's ``_evaluate``)."""
    for b in range(reward.shape[0]):
        value = acct.value_numeraire[b]
        reward[b] = fdiv(value - x.prev_value[b], x.initial_value[b]) * 1e4
        x.prev_value[b] = value
        terminated[b] = value < x.ruin_fraction * x.initial_value[b]


@kernel
def trading_features(out, start, cc, bars, acct, x):
    """The task's features into ``out[:, start:]`` (the reference's ``_task_features``): basis per
    instrument, return since the episode began, value held in base assets."""
    n_i = cc.tick_size.shape[0]
    n_v, n_a = acct.free_atoms.shape[1], acct.free_atoms.shape[2]
    n_base = x.base_assets.shape[0]
    buf = x.buf
    for b in range(out.shape[0]):
        for gi in range(x.group_start.shape[0] - 1):  # basis against the mean mid of the symbol's group
            lo, n = x.group_start[gi], x.group_start[gi + 1] - x.group_start[gi]
            for j in range(n):
                buf[j] = mid_price(cc, bars, b, x.group_inst[lo + j])
            ref = pairwise_sum(buf, 0, n) / n
            for j in range(n):
                out[b, start + x.group_inst[lo + j]] = (fdiv(buf[j], ref) - 1.0) * 1e4
        out[b, start + n_i] = (fdiv(acct.value_numeraire[b], x.initial_value[b]) - 1.0) * 1e2
        # features.balance_values: free + locked value per (venue, asset), then the base assets' part
        for v in range(n_v):
            for a in range(n_a):
                unit = unit_value(cc, bars, b, v, a) / cc.atoms_per_unit[a]
                buf[v * n_a + a] = acct.free_atoms[b, v, a] * unit + acct.locked_atoms[b, v, a] * unit
        total = pairwise_sum(buf, 0, n_v * n_a)
        lo = n_v * n_a
        for v in range(n_v):
            for m in range(n_base):
                buf[lo + v * n_base + m] = buf[v * n_a + x.base_assets[m]]
        base = pairwise_sum(buf, lo, n_v * n_base)
        out[b, start + n_i + 1] = fdiv(base, total if total > 0 else 1.0)


# The task's info figures after the common ones: (name, is_int), in the order of the reference's _task_info.
TRADING_INFO = (("initial_value", False), ("return_bps", False))


@kernel
def trading_info(acct, x, ints, floats, int_start, float_start):
    """The :data:`TRADING_INFO` figures of every lane from column ``float_start`` on."""
    for b in range(floats.shape[0]):
        floats[b, float_start] = x.initial_value[b]
        floats[b, float_start + 1] = (fdiv(acct.value_numeraire[b], x.initial_value[b]) - 1.0) * 1e4
