"""The broker that errs: latency, lost acks, rejects, outages, rate limits, venue cancels.

Each fault is a pure function of the lane's fault seed and a key (episode, step,
order id or venue, purpose), so faults replay bit for bit and two policies can face
the same faults. Every probability is a per-venue parameter; zero switches it off.

Two faults are tied to the market (:class:`~orderbook.spec.specs.FaultSpec`):

- latency rises with the bar's realised range: :func:`volatility_scale` multiplies
  every latency drawn for a message sent during the bar (the market has advanced
  when the order step runs, so the bar is known: synthetic and replayed alike);
  with the slope at 0 it is exactly 1 and the draws are the plain ones, bit for bit;
- broker errors come in bursts: :func:`update_error_bursts` moves each venue's
  two-state regime (``lanes.error_burst``) once per step, before any ack of the
  step, and :func:`broker_errs` takes the burst's error probability inside one.
"""

from __future__ import annotations

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.spec import rng
from orderbook.spec.bounds import MAX_DURATION_NS, NEVER_NS, sat_add_ns

LAT_CONSTANT = 0
LAT_UNIFORM = 1
LAT_LOGNORMAL = 2


@kernel
def volatility_scale(cc, bars, b, i):
    """Multiplier of the latencies of messages about instrument ``i`` sent during lane ``b``'s bar.

    ``min(1 + slope x max(r / ref - 1, 0), cap)`` with ``r = (high - low) / open`` of the
    bar in bps and the venue's ``latency_vol_slope``, ``latency_vol_ref_bps`` and
    ``latency_vol_cap``; always in ``[1, cap]``, and exactly 1.0 when the slope is 0.
    """
    v = cc.inst_venue[i]
    slope = cc.latency_vol_slope[v]
    o = bars.open_ticks[b, i]
    if slope == 0.0 or o <= 0:
        return 1.0
    range_bps = (bars.high_ticks[b, i] - bars.low_ticks[b, i]) * 1e4 / o
    excess = range_bps / cc.latency_vol_ref_bps[v] - 1.0
    if not excess > 0.0:
        return 1.0
    return min(1.0 + slope * excess, cc.latency_vol_cap[v])


@kernel
def draw_latency_ns(cc, v, seed, episode, step, key, purpose, scale):
    """Latency of one message to venue ``v`` in ns: a draw from the venue's distribution times ``scale``
    (:func:`volatility_scale`), at most ``MAX_DURATION_NS``."""
    kind = cc.latency_kind[v]
    p = cc.latency_params_ns
    if kind == LAT_CONSTANT:
        x = p[v, 0]
    elif kind == LAT_UNIFORM:
        x = p[v, 1] + (p[v, 2] - p[v, 1]) * rng.uniform(seed, episode, step, key, purpose)
    else:
        x = p[v, 3] * np.exp(cc.latency_sigma[v] * rng.normal(seed, episode, step, key, purpose))
        if rng.uniform(seed, episode, step, key, rng.P_LATENCY_TAIL) < cc.latency_tail_prob[v]:
            x *= p[v, 4]
    x *= scale
    if not x < MAX_DURATION_NS:  # a tail draw past the bound (or inf x 0) saturates there
        return np.int64(MAX_DURATION_NS)
    return np.int64(x)


@kernel
def ack_time_ns(cc, v, seed, episode, step, order_id, sent_ns, scale):
    """When the ack of an order sent at ``sent_ns`` arrives (latency times ``scale``); NEVER_NS if it is lost."""
    if rng.uniform(seed, episode, step, order_id, rng.P_ACK_LOST) < cc.lost_ack_prob[v]:
        return NEVER_NS
    return sat_add_ns(sent_ns, draw_latency_ns(cc, v, seed, episode, step, order_id, rng.P_LATENCY, scale))


@kernel
def broker_errs(cc, lanes, b, v, seed, episode, step, order_id):
    """True if the broker rejects this order (it learns so when the ack comes), at the burst's rate inside a burst."""
    p = cc.burst_error_prob[v] if lanes.error_burst[b, v] else cc.broker_error_prob[v]
    return rng.uniform(seed, episode, step, order_id, rng.P_BROKER_ERROR) < p


@kernel
def update_error_bursts(cc, lanes, b, seed, episode, step):
    """Each venue's broker errors enter a burst (``error_burst_start_prob``) or leave one (``1 / mean steps``) for this step.

    A two-state Markov chain per lane and venue, one keyed draw per venue and step
    (none while the venue is outside a burst and bursts are off).
    """
    for v in range(lanes.error_burst.shape[1]):
        if lanes.error_burst[b, v]:
            if rng.uniform(seed, episode, step, v, rng.P_ERROR_BURST_END) < cc.error_burst_end_prob[v]:
                lanes.error_burst[b, v] = False
        elif cc.error_burst_start_prob[v] > 0.0:
            if rng.uniform(seed, episode, step, v, rng.P_ERROR_BURST_START) < cc.error_burst_start_prob[v]:
                lanes.error_burst[b, v] = True


@kernel
def update_outages(cc, lanes, b, seed, episode, step):
    """Start or continue each venue's outage for this step (geometric lengths)."""
    for v in range(lanes.outage_steps_left.shape[1]):
        left = lanes.outage_steps_left[b, v]
        if left > 0:
            lanes.outage_steps_left[b, v] = left - 1
        elif rng.uniform(seed, episode, step, v, rng.P_OUTAGE_START) < cc.outage_start_prob[v]:
            u = rng.uniform(seed, episode, step, v, rng.P_OUTAGE_LENGTH)
            q = 1.0 - cc.outage_end_prob[v]
            length = 1 if q <= 0.0 else 1 + int(np.log(1.0 - u) / np.log(q))
            lanes.outage_steps_left[b, v] = length


@kernel(inline=True)
def venue_down(lanes, b, v):
    return lanes.outage_steps_left[b, v] > 0


@kernel
def venue_cancels(cc, v, seed, episode, step, order_id):
    """True if the venue cancels this resting order on its own this step."""
    return rng.uniform(seed, episode, step, order_id, rng.P_UNSOLICITED) < cc.unsolicited_cancel_prob[v]


@kernel
def cancel_loses_race(cc, v, seed, episode, step, order_id):
    """True if the venue processes this cancel only at the end of the bar it lands in (its cancel queue lags).

    Races themselves are decided by time on the bar's path (a fill earlier than the
    cancel wins, :mod:`orderbook.engine.matching`); this fault moves the cancel later.
    """
    return rng.uniform(seed, episode, step, order_id, rng.P_CANCEL_RACE) < cc.cancel_race_prob[v]


@kernel(inline=True)
def end_of_bar_ns(t0, step_ns, t_ns):
    """The end of the bar (of those starting at ``t0 + m x step``) in which ``t_ns`` falls; a bar's start counts to the bar before."""
    if t_ns >= NEVER_NS:
        return t_ns
    bars_on = max(np.int64(1), (t_ns - t0 + step_ns - 1) // step_ns)
    return max(t_ns, sat_add_ns(t0, min(bars_on, MAX_DURATION_NS // step_ns) * step_ns))
