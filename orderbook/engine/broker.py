"""The broker that errs: latency, lost acks, rejects, outages, rate limits, venue cancels.

Each fault is a pure function of the lane's fault seed and a key (episode, step,
order id or venue, purpose), so faults replay bit for bit and two policies can face
the same faults. Every probability is a per-venue parameter; zero switches it off.
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
def draw_latency_ns(cc, v, seed, episode, step, key, purpose):
    """Latency of one message to venue ``v`` in ns, from the venue's distribution, at most ``MAX_DURATION_NS``."""
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
    if not x < MAX_DURATION_NS:  # a tail draw past the bound (or inf x 0) saturates there
        return np.int64(MAX_DURATION_NS)
    return np.int64(x)


@kernel
def ack_time_ns(cc, v, seed, episode, step, order_id, sent_ns):
    """When the ack of an order sent at ``sent_ns`` arrives; NEVER_NS if it is lost."""
    if rng.uniform(seed, episode, step, order_id, rng.P_ACK_LOST) < cc.lost_ack_prob[v]:
        return NEVER_NS
    return sat_add_ns(sent_ns, draw_latency_ns(cc, v, seed, episode, step, order_id, rng.P_LATENCY))


@kernel
def broker_errs(cc, v, seed, episode, step, order_id):
    """True if the broker rejects this order (it learns so when the ack comes)."""
    return rng.uniform(seed, episode, step, order_id, rng.P_BROKER_ERROR) < cc.broker_error_prob[v]


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
