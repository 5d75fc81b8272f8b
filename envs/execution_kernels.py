"""The Execution task's step as compiled kernels: decode, evaluate, features.

They are the task's only step in the product. Their readable specification is
the numpy reference kept with the tests
(``tests/envs/oracle/execution_reference.py``: ``_decode``, ``_evaluate``,
``_task_features``, ``_task_info``, ``_reset_task``): with the same inputs the
kernels give the same bits (same operations in the same order, checked by
``tests/envs/test_compiled_step.py`` on random actions with faults high).
:class:`envs.core.BatchTask` runs them with the core's market advance and
order step as one packed call (:mod:`orderbook.compile.packed`), so a step of the
single env is one compiled call instead of ~100 numpy calls.

Compiled like the core's kernels (:func:`orderbook.compile.jit.kernel`): they never
allocate and write only the arrays they are given.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from envs.kernels import clear_intents, write_cancels, write_intent
from envs.spaces import E8, LEVEL_FAR, LEVEL_IOC_FAR, LEVEL_NEAR, LEVEL_NONE, LEVEL_PASSIVE0, LEVEL_POST_NEAR
from orderbook.compile.jit import kernel
from orderbook.engine.lifecycle import is_live
from orderbook.spec import codes as c
from orderbook.spec import rng

P_ENV_SIDE = rng.P_ENV_SIDE  # kept for envs.execution; the number lives in orderbook.spec.rng.Purpose

# The reward options (``ExecutionTask(reward=...)``), by code: what each credits is in ExecutionEnv's docstring.
REWARD_SHORTFALL, REWARD_ARRIVAL, REWARD_MARKED = 0, 1, 2
REWARDS = ("shortfall", "arrival", "marked")  # name of each code


class ExecutionArrays(NamedTuple):
    """The task's parameters and per-lane state, shared (not copied) with :class:`ExecutionTask`."""

    listing: np.ndarray  # (n,) int64 instruments of the pair, one per venue
    obs_venues: np.ndarray  # (n,) int64 their venues
    size_multiples: np.ndarray  # (S,) float64
    passive_bps: np.ndarray  # (P,) float64
    side: np.ndarray  # (B,) int64 +1 buy / -1 sell
    parent_atoms: np.ndarray  # (B,) int64
    horizon: np.ndarray  # (B,) int64 steps
    arrival: np.ndarray  # (B,) float64 arrival mid
    notional: np.ndarray  # (B,) float64 parent notional at arrival, quote units
    shortfall_bps: np.ndarray  # (B,) float64
    penalty_step_bps: np.ndarray  # (B,) float64
    base_start: np.ndarray  # (B,) int64
    prev_base: np.ndarray  # (B,) int64
    prev_quote: np.ndarray  # (B,) int64
    step_filled: np.ndarray  # (B,) int64
    filled: np.ndarray  # (B,) int64
    base_a: int  # asset indices of the pair
    quote_a: int
    ttl_ns: int  # children's time to live (0 = the venue's default)
    apu_base: float  # atoms per unit of base and quote
    apu_quote: float
    penalty_bps: float
    reward_code: int  # REWARD_SHORTFALL, REWARD_ARRIVAL or REWARD_MARKED


@kernel
def working_atoms(cc, orders, b, k):
    """Base atoms still working in slot ``k`` (0 unless live)."""
    if not is_live(orders.status[b, k]):
        return 0
    return (orders.qty_lots[b, k] - orders.filled_lots[b, k]) * cc.base_atoms_per_lot[orders.instrument[b, k]]


@kernel
def limit_price(level, side, bid, ask, passive_bps):
    """:func:`envs.spaces.limit_price_ticks` for one choice (the same operations)."""
    buy = side == c.BUY
    far = ask if buy else bid
    near = bid if buy else ask
    n_p = passive_bps.shape[0]
    j = min(max(level - LEVEL_PASSIVE0, 0), max(n_p - 1, 0))
    bps = passive_bps[j] if n_p else 0.0
    behind = max(np.int64(np.ceil(near * bps * 1e-4)), 1)
    passive = near - behind if buy else near + behind
    if level == LEVEL_FAR or level == LEVEL_IOC_FAR:
        price = far
    elif level == LEVEL_NEAR or level == LEVEL_POST_NEAR:
        price = near
    else:
        price = passive
    return max(price, 1)


@kernel
def size_lots(cc, x, b, size, inst, open_atoms):
    """:meth:`ExecutionTask.size_lots` for one choice."""
    bapl = cc.base_atoms_per_lot[inst]
    n_m = x.size_multiples.shape[0]
    mult = x.size_multiples[min(size, n_m - 1)]
    slice_lots = max(np.int64(np.floor(x.parent_atoms[b] * mult / x.horizon[b] / bapl + 1e-9)), 1)
    cap = max(open_atoms, 0) // bapl
    lots = cap if size == n_m else min(slice_lots, cap)
    return min(lots, cc.max_qty_lots[inst])


@kernel
def execution_decode(cc, orders, lanes, bars, x, n_orders, actions, active, intents, cancels):
    """Intents and cancels of every lane from its ``(n_orders * 3 + 1)`` choices (inactive lanes send nothing)."""
    n_k = orders.status.shape[1]
    ttl = x.ttl_ns
    for b in range(actions.shape[0]):
        clear_intents(intents, b)
        open_atoms = x.parent_atoms[b] - x.filled[b]
        for k in range(n_k):
            open_atoms -= working_atoms(cc, orders, b, k)
        side = x.side[b]
        for g in range(n_orders):
            inst = x.listing[actions[b, 3 * g]]
            level = actions[b, 3 * g + 1]
            size = actions[b, 3 * g + 2]
            price = limit_price(level, side, bars.bid_ticks[b, inst], bars.ask_ticks[b, inst], x.passive_bps)
            lots = size_lots(cc, x, b, size, inst, open_atoms)
            send = active[b] and lots > 0 and level != LEVEL_NONE
            write_intent(intents, b, g, inst, side, level, price, lots, send, ttl)
            if send:
                open_atoms -= lots * cc.base_atoms_per_lot[inst]
        write_cancels(cc, orders, lanes, b, actions[b, actions.shape[1] - 1], active[b], cancels)


@kernel
def _totals(acct, x, b):
    base_a, quote_a = x.base_a, x.quote_a
    base, quote = 0, 0
    for n in range(x.obs_venues.shape[0]):
        v = x.obs_venues[n]
        base += acct.free_atoms[b, v, base_a] + acct.locked_atoms[b, v, base_a]
        quote += acct.free_atoms[b, v, quote_a] + acct.locked_atoms[b, v, quote_a]
    return base, quote


@kernel
def pair_mid(cc, bars, x, b):
    """The mean mid of the listed instruments (the reference's ``_mid``)."""
    total = 0.0
    for n in range(x.listing.shape[0]):
        i = x.listing[n]
        total += (bars.bid_ticks[b, i] + bars.ask_ticks[b, i]) * 0.5 * cc.tick_size[i]
    return total / x.listing.shape[0]


@kernel
def execution_evaluate(cc, lanes, bars, acct, x, reward, terminated):
    """Reward and termination of every lane after a step (the reference's ``_evaluate``).

    ``x.shortfall_bps`` books the implementation shortfall (the same for every reward option);
    ``reward`` is the option's (``x.reward_code``; :class:`envs.execution.ExecutionEnv`, Rewards)."""
    apu_base, apu_quote, penalty_bps = x.apu_base, x.apu_quote, x.penalty_bps
    for b in range(reward.shape[0]):
        base, quote = _totals(acct, x, b)
        d_base, d_quote = base - x.prev_base[b], quote - x.prev_quote[b]
        x.prev_base[b], x.prev_quote[b] = base, quote
        x.step_filled[b] = x.side[b] * d_base
        x.filled[b] = x.side[b] * (base - x.base_start[b])
        r = (d_quote / apu_quote + x.arrival[b] * d_base / apu_base) / x.notional[b] * 1e4
        remaining = x.parent_atoms[b] - x.filled[b]
        at_horizon = lanes.step[b] >= x.horizon[b]
        move = x.side[b] * (pair_mid(cc, bars, x, b) - x.arrival[b])
        cost = remaining / apu_base * (x.arrival[b] * penalty_bps * 1e-4 + move)
        charged = at_horizon and remaining > 0
        x.penalty_step_bps[b] = cost / x.notional[b] * 1e4 if charged else 0.0
        booked = r - x.penalty_step_bps[b]  # minus the shortfall's increment: the reported metric, whatever the reward
        x.shortfall_bps[b] = x.shortfall_bps[b] - booked
        if x.reward_code == REWARD_SHORTFALL:
            reward[b] = booked
        elif x.reward_code == REWARD_ARRIVAL:  # the remainder pays the penalty at P0, without its price drift
            reward[b] = r - (remaining / x.parent_atoms[b] * penalty_bps if charged else 0.0)
        else:  # REWARD_MARKED: each fill earns back the penalty its quantity no longer owes
            reward[b] = r + penalty_bps * x.step_filled[b] / x.parent_atoms[b]
        terminated[b] = remaining <= 0 or at_horizon


@kernel
def execution_features(out, start, cc, lanes, orders, x):
    """The task's features into ``out[:, start:]`` (the reference's ``_task_features``)."""
    n_k = orders.status.shape[1]
    n_v = x.obs_venues.shape[0]
    for b in range(out.shape[0]):
        parent = float(x.parent_atoms[b])
        for n in range(n_v):
            out[b, start + n] = 0.0
        working_total = 0
        for k in range(n_k):  # one pass: each slot's working atoms to the total and to its venue
            w = working_atoms(cc, orders, b, k)
            if w == 0:
                continue
            working_total += w
            v = cc.inst_venue[orders.instrument[b, k]]
            for n in range(n_v):
                if v == x.obs_venues[n]:
                    out[b, start + n] += w  # whole atoms: exact in float64 below 2**53
        for n in range(n_v):
            out[b, start + n] = out[b, start + n] / parent
        j = start + n_v
        out[b, j] = float(x.side[b])
        out[b, j + 1] = (x.parent_atoms[b] - x.filled[b]) / parent
        out[b, j + 2] = working_total / parent
        out[b, j + 3] = max(x.horizon[b] - lanes.step[b], 0) / x.horizon[b]
        out[b, j + 4] = x.shortfall_bps[b] / 100.0



# The task's info figures after the common ones: (name, is_int), in the order of the reference's _task_info.
EXECUTION_INFO = (("filled_qty", False), ("parent_side", True), ("parent_filled_qty", False), ("parent_remaining_qty", False),
                  ("arrival_price", False), ("shortfall_bps", False), ("horizon_penalty_bps", False))


@kernel
def execution_info(x, ints, floats, int_start, float_start):
    """The :data:`EXECUTION_INFO` figures of every lane from columns ``int_start`` / ``float_start`` on."""
    for b in range(ints.shape[0]):
        ints[b, int_start] = x.side[b]
        f = float_start
        floats[b, f] = x.step_filled[b] / x.apu_base
        floats[b, f + 1] = x.filled[b] / x.apu_base
        floats[b, f + 2] = (x.parent_atoms[b] - x.filled[b]) / x.apu_base
        floats[b, f + 3] = x.arrival[b]
        floats[b, f + 4] = x.shortfall_bps[b]
        floats[b, f + 5] = x.penalty_step_bps[b]


@kernel
def execution_reset(cc, lanes, bars, acct, x, side_choice, mask, short):
    """Start the masked lanes' parents (the reference's ``_reset_task`` after the options).

    ``short[b]`` is set where the account cannot hold the parent (the caller raises).
    """
    collar = cc.collar_bps[x.obs_venues[0]]  # the widest market collar and the worst fee over the pair's venues
    for n in range(1, x.obs_venues.shape[0]):
        collar = max(collar, cc.collar_bps[x.obs_venues[n]])
    worst = 1.0 + collar * 1e-4
    rate = max(cc.maker_fee_e8[x.listing[0]], cc.taker_fee_e8[x.listing[0]])
    for n in range(1, x.listing.shape[0]):
        rate = max(rate, cc.maker_fee_e8[x.listing[n]], cc.taker_fee_e8[x.listing[n]])
    fee = 1.0 + rate / E8
    for b in range(mask.shape[0]):
        if not mask[b]:
            continue
        drawn = c.BUY if rng.uniform(lanes.market_seed[b], lanes.rng_episode[b], 0, 0, rng.P_ENV_SIDE) < 0.5 else c.SELL
        x.side[b] = drawn if side_choice[b] == 0 else side_choice[b]
        base, quote = _totals(acct, x, b)
        x.arrival[b] = pair_mid(cc, bars, x, b)
        x.notional[b] = x.parent_atoms[b] / x.apu_base * x.arrival[b]
        x.base_start[b], x.prev_base[b], x.prev_quote[b] = base, base, quote
        x.filled[b] = 0
        x.shortfall_bps[b], x.penalty_step_bps[b], x.step_filled[b] = 0.0, 0.0, 0
        need_quote = np.ceil(x.notional[b] * worst * fee * x.apu_quote)
        free_base, free_quote = 0, 0
        for n in range(x.obs_venues.shape[0]):
            free_base += acct.free_atoms[b, x.obs_venues[n], x.base_a]
            free_quote += acct.free_atoms[b, x.obs_venues[n], x.quote_a]
        short[b] = free_quote < need_quote if x.side[b] == c.BUY else free_base < x.parent_atoms[b]
