"""The one compiled kernel of the front-ends: the observation features every env shares.

Computing ~40 small features with numpy costs dozens of calls per step, which a
single env (one lane) pays in full; this kernel writes them all in one call, for
any number of lanes, with the same scalar code per lane (so lane ``b`` gives the
same bits whatever the batch size). It values balances with the core's own
:func:`orderbook.engine.portfolio.asset_value`, so the balance fractions agree with
``Exchange.accounts.value_numeraire``. Compiled like the core's kernels
(:func:`orderbook.compile.jit.kernel`: cached, no reference counting, never allocates).
Feature definitions and bounds: :mod:`envs.features`.
"""

from __future__ import annotations

import numpy as np

from envs.spaces import CANCEL_ALL, CANCEL_OLDEST, LEVEL_IOC_FAR, LEVEL_MARKET, LEVEL_POST_NEAR
from orderbook.compile.jit import kernel
from orderbook.engine.lifecycle import LIVE_CODES, is_cancellable
from orderbook.engine.portfolio import asset_value
from orderbook.engine.state import (
    CNT_CANCELLED,
    CNT_EXPIRED,
    CNT_FILLED_LOTS,
    CNT_FILLS,
    CNT_ORDERED_LOTS,
    CNT_ORDERS,
    STAT_ACK_LATENCY_MS,
    STAT_SLIPPAGE_ARRIVAL_BPS,
)
from orderbook.spec import codes as c


@kernel(inline=True)
def _ratio(x, y):
    return x / y if y != 0 else 0.0


@kernel
def common_features(out, cc, bars, lanes, acct, orders, stats, prev_counters, prev_rejects, inst, venues, assets, prev_mid, start_mid):
    """Fill ``out`` (B, D) with the market, outage, balance, order and statistics features (unclipped)."""
    n_v, n_a = acct.free_atoms.shape[1], acct.free_atoms.shape[2]
    n_k = orders.status.shape[1]
    for b in range(out.shape[0]):
        j = 0
        for n in range(inst.shape[0]):  # market: 4 per instrument
            i = inst[n]
            bid, ask = bars.bid_ticks[b, i], bars.ask_ticks[b, i]
            mid = (bid + ask) * 0.5 * cc.tick_size[i]
            out[b, j] = (_ratio(mid, prev_mid[b, i]) - 1.0) * 1e3 if prev_mid[b, i] > 0 else 0.0
            out[b, j + 1] = (_ratio(mid, start_mid[b, i]) - 1.0) * 1e2 if start_mid[b, i] > 0 else 0.0
            out[b, j + 2] = _ratio(float(ask - bid), 0.5 * (ask + bid)) * 1e3
            out[b, j + 3] = np.log1p(bars.volume_lots[b, i] * cc.lot_size[i])
            j += 4
        for n in range(venues.shape[0]):  # outages
            out[b, j] = min(lanes.outage_steps_left[b, venues[n]], 10) / 10.0
            j += 1
        total = 0.0  # balances, valued like the core values the portfolio
        for v in range(n_v):
            for a in range(n_a):
                atoms = acct.free_atoms[b, v, a] + acct.locked_atoms[b, v, a]
                if atoms != 0:
                    total += atoms / cc.atoms_per_unit[a] * asset_value(cc, bars, b, v, a)
        for n in range(venues.shape[0]):
            v = venues[n]
            for m in range(assets.shape[0]):
                a = assets[m]
                unit = asset_value(cc, bars, b, v, a) / cc.atoms_per_unit[a]
                out[b, j] = _ratio(acct.free_atoms[b, v, a] * unit, total)
                out[b, j + 1] = _ratio(acct.locked_atoms[b, v, a] * unit, total)
                j += 2
        live = 0  # orders: share of slots per live status, then free
        for s in LIVE_CODES:
            k_s = 0
            for k in range(n_k):
                if orders.status[b, k] == s:
                    k_s += 1
            out[b, j] = k_s / n_k
            live += k_s
            j += 1
        out[b, j] = (n_k - live) / n_k
        j += 1
        cnt = stats.counters
        rejects = lane_rejects(stats, b)
        out[b, j] = min(cnt[b, CNT_FILLS] - prev_counters[b, CNT_FILLS], 10) / 10.0
        out[b, j + 1] = min(rejects - prev_rejects[b], 10) / 10.0
        out[b, j + 2] = min(cnt[b, CNT_EXPIRED] - prev_counters[b, CNT_EXPIRED], 10) / 10.0
        orders_sent = max(cnt[b, CNT_ORDERS], 1)
        out[b, j + 3] = rejects / orders_sent
        out[b, j + 4] = cnt[b, CNT_EXPIRED] / orders_sent
        out[b, j + 5] = cnt[b, CNT_FILLED_LOTS] / max(cnt[b, CNT_ORDERED_LOTS], 1)
        w = stats.welford[b, STAT_SLIPPAGE_ARRIVAL_BPS]
        out[b, j + 6] = w[1] / 10.0 if w[0] > 0 else 0.0


@kernel
def begin_step(cc, bars, stats, prev_mid, prev_counters, prev_rejects):
    """Keep the mids, counters and rejects at the start of a step (per-step deltas for info and features)."""
    for b in range(prev_mid.shape[0]):
        keep_lane(cc, bars, stats, b, prev_mid, prev_counters, prev_rejects)


@kernel
def finish_observation(raw, low, high, obs):
    """``obs`` (float32) = ``raw`` with non-finite values as 0, clipped to ``[low, high]``
    (what :meth:`envs.features.ObsLayout.assemble` does with numpy)."""
    for b in range(raw.shape[0]):
        for j in range(raw.shape[1]):
            v = raw[b, j]
            if not np.isfinite(v):
                v = 0.0
            v = min(max(v, float(low[j])), float(high[j]))
            obs[b, j] = np.float32(v)


# The shared info figures: (name, is_int) in the order of BatchTask.info (ints and floats count separately).
COMMON_INFO = (("orders", True), ("fills", True), ("filled_lots", True), ("expiries", True), ("cancels", True),
               ("rejects", True), ("slippage_mean_bps", False), ("ack_latency_mean_ms", False), ("step", True),
               ("portfolio_value", False))


@kernel
def common_info(stats, lanes, acct, prev_counters, prev_rejects, ints, floats):
    """The :data:`COMMON_INFO` figures of every lane into ``ints[:, :7]`` and ``floats[:, :3]``."""
    cnt = stats.counters
    for b in range(ints.shape[0]):
        ints[b, 0] = cnt[b, CNT_ORDERS] - prev_counters[b, CNT_ORDERS]
        ints[b, 1] = cnt[b, CNT_FILLS] - prev_counters[b, CNT_FILLS]
        ints[b, 2] = cnt[b, CNT_FILLED_LOTS] - prev_counters[b, CNT_FILLED_LOTS]
        ints[b, 3] = cnt[b, CNT_EXPIRED] - prev_counters[b, CNT_EXPIRED]
        ints[b, 4] = cnt[b, CNT_CANCELLED] - prev_counters[b, CNT_CANCELLED]
        ints[b, 5] = lane_rejects(stats, b) - prev_rejects[b]
        w = stats.welford
        floats[b, 0] = w[b, STAT_SLIPPAGE_ARRIVAL_BPS, 1] if w[b, STAT_SLIPPAGE_ARRIVAL_BPS, 0] > 0 else 0.0
        floats[b, 1] = w[b, STAT_ACK_LATENCY_MS, 1] if w[b, STAT_ACK_LATENCY_MS, 0] > 0 else 0.0
        ints[b, 6] = lanes.step[b]
        floats[b, 2] = acct.value_numeraire[b]


@kernel
def begin_episode(cc, bars, stats, mask, prev_mid, start_mid, prev_counters, prev_rejects):
    """The masked lanes' mids (last step's and the episode's start), counters and rejects after a reset."""
    for b in range(mask.shape[0]):
        if mask[b]:
            keep_lane(cc, bars, stats, b, prev_mid, prev_counters, prev_rejects)
            for i in range(prev_mid.shape[1]):
                start_mid[b, i] = prev_mid[b, i]


# ------------------------------------------------------------ decoding (shared by the tasks' decoders)
_NO_ID = np.iinfo(np.int64).max


@kernel(inline=True)
def clear_intents(intents, b):
    """Lane ``b``'s intent rows as :func:`orderbook.engine.intents.empty_intents` makes them (no order)."""
    for m in range(intents.instrument.shape[1]):
        intents.instrument[b, m] = -1
        intents.side[b, m] = 1
        intents.kind[b, m] = 0
        intents.price_ticks[b, m] = 0
        intents.qty_lots[b, m] = 0
        intents.ttl_ns[b, m] = 0
        intents.tif[b, m] = c.TIF_GTD


@kernel(inline=True)
def write_intent(intents, b, g, inst, side, level, price, lots, send, ttl):
    """Intent row ``g`` of lane ``b`` as the numpy reference's ``_fill_intent`` writes it (unsent: instrument -1)."""
    intents.instrument[b, g] = inst if send else -1
    intents.side[b, g] = side
    intents.kind[b, g] = c.MARKET if level == LEVEL_MARKET else c.LIMIT
    intents.price_ticks[b, g] = 0 if level == LEVEL_MARKET else price
    intents.qty_lots[b, g] = lots if send else 0
    if level == LEVEL_IOC_FAR:
        intents.ttl_ns[b, g] = 0  # IOC never rests: it takes no time to live
        intents.tif[b, g] = c.TIF_IOC
    else:
        intents.ttl_ns[b, g] = ttl
        intents.tif[b, g] = c.TIF_POST_ONLY if level == LEVEL_POST_NEAR else c.TIF_GTD  # GTD: the venue's default TTL when ttl is 0


@kernel(inline=True)
def write_cancels(cc, orders, lanes, b, choice, active, cancels):
    """Lane ``b``'s cancel mask for its cancel choice (the numpy reference's ``_cancels``): none, the
    oldest cancellable order (lowest id), or every one; cancellable = PENDING, OPEN or PARTIAL on a
    venue not known to be down next step."""
    oldest, oldest_id = -1, _NO_ID
    for k in range(orders.status.shape[1]):
        s = orders.status[b, k]
        can = is_cancellable(s) and not lanes.outage_steps_left[b, cc.inst_venue[orders.instrument[b, k]]] > 1
        cancels[b, k] = can and active and choice == CANCEL_ALL
        if can and orders.order_id[b, k] < oldest_id:
            oldest, oldest_id = k, orders.order_id[b, k]
    if choice == CANCEL_OLDEST and oldest >= 0 and active:
        cancels[b, oldest] = True


# ------------------------------------------------------------ per-step bookkeeping
@kernel(inline=True)
def lane_rejects(stats, b):
    rejects = 0
    for r in range(stats.rejects_by_reason.shape[1]):
        rejects += stats.rejects_by_reason[b, r]
    return rejects


@kernel(inline=True)
def keep_lane(cc, bars, stats, b, prev_mid, prev_counters, prev_rejects):
    """Lane ``b``'s mids, counters and rejects as they are now (the next step's deltas start here)."""
    for i in range(prev_mid.shape[1]):
        prev_mid[b, i] = (bars.bid_ticks[b, i] + bars.ask_ticks[b, i]) * 0.5 * cc.tick_size[i]
    for j in range(prev_counters.shape[1]):
        prev_counters[b, j] = stats.counters[b, j]
    prev_rejects[b] = lane_rejects(stats, b)
