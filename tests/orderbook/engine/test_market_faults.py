"""Faults tied to the market: latency that rises with the bar's realised range, broker errors in bursts.

Both are off unless configured (``FaultSpec`` fields ``latency_vol_*`` and
``error_burst_*`` / ``burst_error_prob``), on in ``FaultSpec.high()``. The statistical
checks compare with closed forms within 4 standard errors over thousands of lanes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

import orderbook as ob
from orderbook.compile.jit import kernel
from orderbook.spec import codes as c
from orderbook.spec import rng
from orderbook.spec.bounds import NEVER_NS
from tests.orderbook.helpers import small_config

CALM = dataclasses.replace(ob.FaultSpec.none(), ack_timeout_ms=600_000.0)
N_LANES = 4096


def one_order_per_lane(cfg: ob.ExchangeConfig, n_lanes: int = N_LANES, seed: int = 0, steps: int = 1) -> tuple[ob.Exchange, list]:
    """Each lane sends one small market buy on instrument 0 at each of ``steps`` steps; returns the exchange and,
    per step, ``(latency_ns, range_bps)`` of the order sent then (read from the state before the next step)."""
    ex = ob.Exchange(cfg, n_lanes=n_lanes)
    ex.reset(seed=seed)
    out = []
    for _ in range(steps):
        intents = ob.OrderIntents(*(np.full((n_lanes, cfg.max_new_orders), x, dtype=np.int64) for x in (-1, c.BUY, c.MARKET, 0, 10, 0)))
        intents.instrument[:, 0] = 0
        ex.step(intents)
        k = np.argmax(np.where(ex.orders.status > 0, ex.orders.order_id, -1), axis=1)  # the newest order of each lane
        lanes = np.arange(n_lanes)
        latency = ex.orders.ack_ns[lanes, k] - ex.orders.submit_ns[lanes, k]
        o, h, lo = (x[:, 0].astype(np.float64) for x in (ex.bars.open_ticks, ex.bars.high_ticks, ex.bars.low_ticks))
        out.append((latency, (h - lo) * 1e4 / o))
    return ex, out


def expected_scale(range_bps: np.ndarray, slope: float, ref_bps: float, cap: float) -> np.ndarray:
    """The documented multiplier: ``min(1 + slope x max(r / ref - 1, 0), cap)``."""
    return np.minimum(1.0 + slope * np.maximum(range_bps / ref_bps - 1.0, 0.0), cap)


def vol_faults(slope: float, ref_bps: float = 10.0, cap: float = 4.0) -> ob.FaultSpec:
    return dataclasses.replace(CALM, latency_vol_slope=slope, latency_vol_ref_bps=ref_bps, latency_vol_cap=cap)


# ------------------------------------------------------------------ latency and the bar's range
def test_constant_latency_is_scaled_by_the_bar_range_exactly_as_documented():
    slope, ref, cap = 1.5, 10.0, 4.0
    cfg = small_config(faults=vol_faults(slope, ref, cap), latency=ob.LatencySpec(kind="constant", constant_ms=20.0))
    _, [(latency, range_bps)] = one_order_per_lane(cfg)
    scale = expected_scale(range_bps, slope, ref, cap)
    assert (scale > 1.0).mean() > 0.2 and (scale == 1.0).mean() > 0.1  # the test sees calm and wild bars
    assert (scale == cap).any()
    assert np.abs(latency - np.floor(20e6 * scale)).max() <= 1  # ns (float rounding of the scale)
    assert (latency[scale == 1.0] == 20_000_000).all()


def test_a_cancel_latency_is_scaled_by_the_range_of_the_bar_it_is_sent_in():
    slope, ref, cap = 1.5, 10.0, 4.0
    cfg = small_config(faults=vol_faults(slope, ref, cap), latency=ob.LatencySpec(kind="constant", constant_ms=20.0))
    ex = ob.Exchange(cfg, n_lanes=N_LANES)
    ex.reset(seed=3)
    bid = ex.bars.bid_ticks[:, 0]
    intents = ob.OrderIntents(*(np.full((N_LANES, cfg.max_new_orders), x, dtype=np.int64) for x in (-1, c.BUY, c.LIMIT, 0, 10, 0)))
    intents.instrument[:, 0], intents.price_ticks[:, 0] = 0, bid * 99 // 100  # rests: 1% under the bid
    ex.step(intents)
    t0 = int(ex.lanes.time_ns[0])
    cancels = np.zeros((N_LANES, cfg.slots), dtype=bool)
    cancels[:, 0] = True
    ex.step(cancels=cancels)
    o, h, lo = (x[:, 0].astype(np.float64) for x in (ex.bars.open_ticks, ex.bars.high_ticks, ex.bars.low_ticks))
    scale = expected_scale((h - lo) * 1e4 / o, slope, ref, cap)
    sent = ex.orders.cancel_ack_ns[:, 0] < NEVER_NS  # not when the order filled first (a cancel too late)
    assert sent.mean() > 0.9 and (scale[sent] > 1.0).mean() > 0.2
    assert np.abs((ex.orders.cancel_ack_ns[:, 0] - t0)[sent] - np.floor(20e6 * scale[sent])).max() <= 1


def test_lognormal_latency_mean_rises_with_the_bar_range_by_the_configured_amount():
    """Mean latency in wide bars over mean latency in calm ones equals the mean multiplier of the wide bars."""
    lat = ob.LatencySpec(kind="lognormal", median_ms=20.0, sigma=0.5, tail_prob=0.0)
    ratios = {}
    for slope in (0.0, 1.5):
        _, per_step = one_order_per_lane(small_config(faults=vol_faults(slope), latency=lat), steps=3)
        latency = np.concatenate([x for x, _ in per_step]).astype(np.float64)
        scale = expected_scale(np.concatenate([r for _, r in per_step]), 1.5, 10.0, 4.0)
        calm, wild = latency[scale == 1.0], latency[scale > 1.5]
        assert calm.size > 1000 and wild.size > 1000
        ratio = wild.mean() / calm.mean()
        se = ratio * np.hypot(wild.std() / wild.mean() / np.sqrt(wild.size), calm.std() / calm.mean() / np.sqrt(calm.size))
        target = scale[scale > 1.5].mean() if slope > 0 else 1.0
        ratios[slope] = ratio
        assert abs(ratio - target) < 4 * se, (slope, ratio, target, se)
        base = latency / (scale if slope > 0 else 1.0)  # the plain draw: median 20 ms, mean 20 x exp(sigma^2 / 2)
        assert abs(base.mean() - 20e6 * np.exp(0.125)) < 4 * base.std() / np.sqrt(base.size)
    assert ratios[1.5] > 1.5 * ratios[0.0]


@kernel
def _plain_latency_ns(median_ns, sigma, tail_prob, tail_multiplier, seeds, episodes, step, order_ids, out):
    """Today's lognormal draw with the volatility knobs off, keyed as documented (the reference)."""
    for b in range(seeds.shape[0]):
        x = median_ns * np.exp(sigma * rng.normal(seeds[b], episodes[b], step, order_ids[b], rng.P_LATENCY))
        if rng.uniform(seeds[b], episodes[b], step, order_ids[b], rng.P_LATENCY_TAIL) < tail_prob:
            x *= tail_multiplier
        out[b] = np.int64(x)


def test_with_the_knobs_off_latencies_are_the_plain_draws_bit_for_bit():
    lat = ob.LatencySpec(kind="lognormal", median_ms=10.0, sigma=0.3, tail_prob=0.05, tail_multiplier=1000.0)
    ex, [(latency, _)] = one_order_per_lane(small_config(faults=CALM, latency=lat))
    out = np.zeros(N_LANES, dtype=np.int64)
    _plain_latency_ns(10e6, 0.3, 0.05, 1000.0, ex.lanes.fault_seed, ex.lanes.rng_episode, 1, ex.orders.order_id[:, 0], out)
    assert np.array_equal(latency, out)


def test_a_tail_stall_no_longer_depends_on_the_base_draw():
    """The tail roll and the normal's second uniform have their own keys: among stalled orders the base latency is
    above its median half the time (when they shared a key, a stall came only with a high base draw)."""
    lat = ob.LatencySpec(kind="lognormal", median_ms=10.0, sigma=0.3, tail_prob=0.05, tail_multiplier=1000.0)
    _, per_step = one_order_per_lane(small_config(faults=CALM, latency=lat), steps=3)
    latency = np.concatenate([x for x, _ in per_step])
    stalled = latency > 1e9  # base draws lie within median x exp(+-5 sigma), 2 ms to 45 ms; stalls x1000
    n = int(stalled.sum())
    assert abs(n / latency.size - 0.05) < 4 * np.sqrt(0.05 * 0.95 / latency.size)
    above = (latency[stalled] / 1000.0 > 10e6).mean()
    assert abs(above - 0.5) < 4 * np.sqrt(0.25 / n)


# ------------------------------------------------------------------ bursts of broker errors
def burst_run(p: float, mean_steps: float, q: float, base: float, n_lanes: int = 512, n_steps: int = 300):
    """Every lane sends one small market order on alpha each step (buys and sells in turn), acked within the step;
    returns the per-step broker-error indicators and burst states, ``(B, T)`` each."""
    faults = dataclasses.replace(CALM, broker_error_prob=base, error_burst_start_prob=p, error_burst_mean_steps=mean_steps, burst_error_prob=q)
    cfg = small_config(faults=faults, latency=ob.LatencySpec(kind="constant", constant_ms=1.0))
    ex = ob.Exchange(cfg, n_lanes=n_lanes)
    ex.reset(seed=11)
    burst = np.zeros((n_lanes, n_steps), dtype=bool)
    for t in range(n_steps):
        side = c.BUY if t % 2 == 0 else c.SELL
        intents = ob.OrderIntents(*(np.full((n_lanes, cfg.max_new_orders), x, dtype=np.int64) for x in (-1, side, c.MARKET, 0, 10, 0)))
        intents.instrument[:, 0] = 0
        ex.step(intents)
        burst[:, t] = ex.lanes.error_burst[:, 0]
    ev = ex.history.events_frame()
    assert ev.filter(pl.col("event") == "SUBMIT").height == n_lanes * n_steps  # every order was sent
    errs = ev.filter((pl.col("event") == "REJECT") & (pl.col("reason") == "BROKER_ERROR")).select("lane", "step")
    x = np.zeros((n_lanes, n_steps), dtype=np.float64)
    x[errs["lane"].to_numpy(), errs["step"].to_numpy() - 1] = 1.0
    return x, burst


def lag1_autocorrelation(x: np.ndarray) -> tuple[float, float]:
    """Pooled lag-1 autocorrelation of the rows of ``x`` and its standard error (lanes are independent)."""
    mean, var = x.mean(), x.var()
    per_lane = ((x[:, :-1] - mean) * (x[:, 1:] - mean)).mean(axis=1) / var
    return float(per_lane.mean()), float(per_lane.std() / np.sqrt(len(per_lane)))


def burst_closed_form(p: float, mean_steps: float, q: float, base: float) -> tuple[float, float, float]:
    """Share of steps in a burst, long-run error rate and lag-1 autocorrelation of the per-step error indicator."""
    e = 1.0 / mean_steps
    pi = p / (p + e)
    rate = base + (q - base) * pi
    rho = (q - base) ** 2 * pi * (1 - pi) * (1 - p - e) / (rate * (1 - rate)) if 0 < rate < 1 else 0.0
    return pi, rate, rho


BURN_IN = 40  # a lane starts outside a burst; the chain forgets that at rate (1 - p - 1/m) per step


@pytest.mark.parametrize("p,mean_steps,q,base", [(0.05, 4.0, 0.8, 0.05), (0.0, 4.0, 0.8, 0.05), (0.02, 10.0, 0.5, 0.0)],
                         ids=["bursts", "no-bursts", "rare-long-bursts"])
def test_burst_errors_cluster_as_the_regime_says_and_their_rate_matches_its_closed_form(p, mean_steps, q, base):
    x, burst = burst_run(p, mean_steps, q, base)
    x, burst = x[:, BURN_IN:], burst[:, BURN_IN:]
    pi, rate, rho = burst_closed_form(p, mean_steps, q, base)
    lane_rates = x.mean(axis=1)
    assert abs(x.mean() - rate) < 4 * lane_rates.std() / np.sqrt(len(lane_rates)) + 1e-12
    assert abs(burst.mean() - pi) < 4 * burst.mean(axis=1).std() / np.sqrt(len(burst)) + 1e-12
    if pi > 0:
        # inside a burst the error rate is q, outside it is base
        assert abs(x[burst].mean() - q) < 4 * np.sqrt(q * (1 - q) / burst.sum()) + 1e-12
        assert abs(x[~burst].mean() - base) < 4 * np.sqrt(max(base * (1 - base), 1e-9) / (~burst).sum()) + 1e-12
        got, se = lag1_autocorrelation(x)
        assert rho > 0.1 and abs(got - rho) < 4 * se, (got, rho, se)
        chain, se = lag1_autocorrelation(burst.astype(np.float64))
        assert abs(chain - (1 - p - 1 / mean_steps)) < 4 * se
    else:
        assert not burst.any()
        got, se = lag1_autocorrelation(x)
        assert abs(got) < 4 * se  # independent errors do not cluster


def test_a_reset_leaves_every_burst():
    faults = dataclasses.replace(CALM, error_burst_start_prob=1.0, error_burst_mean_steps=1e9, burst_error_prob=1.0)
    ex = ob.Exchange(small_config(faults=faults), n_lanes=3)
    ex.reset(seed=0)
    assert not ex.lanes.error_burst.any()
    ex.step()
    assert ex.lanes.error_burst.all()
    ex.reset(seed=0, mask=np.array([True, False, True]))
    assert ex.lanes.error_burst.tolist() == [[False, False], [True, True], [False, False]]


# ------------------------------------------------------------------ presets and specs
def test_market_faults_are_off_in_the_zero_fault_specs_and_the_default_and_on_in_high():
    for spec in (ob.FaultSpec.none(), ob.FaultSpec()):
        assert spec.latency_vol_slope == 0.0 and spec.error_burst_start_prob == 0.0
    high = ob.FaultSpec.high()
    assert high.latency_vol_slope > 0 and high.error_burst_start_prob > 0 and high.burst_error_prob > high.broker_error_prob


BAD_MARKET_FAULTS = [
    (dict(latency_vol_slope=-1.0), r"FaultSpec.latency_vol_slope must be a finite number in \[0, 1e\+06\] \(0 = off\), got -1.0"),
    (dict(latency_vol_slope=float("inf")), r"FaultSpec.latency_vol_slope must be a finite number .*got inf"),
    (dict(latency_vol_slope="2"), r"FaultSpec.latency_vol_slope must be a finite number .*got '2'"),
    (dict(latency_vol_ref_bps=0.0), r"FaultSpec.latency_vol_ref_bps must be a typical bar range in bps in \(0, 10000\], got 0.0"),
    (dict(latency_vol_ref_bps=float("nan")), r"FaultSpec.latency_vol_ref_bps must be .*got nan"),
    (dict(latency_vol_cap=0.5), r"FaultSpec.latency_vol_cap must be a finite multiplier in \[1, 1e\+06\], got 0.5"),
    (dict(latency_vol_cap=True), r"FaultSpec.latency_vol_cap must be a finite multiplier .*got True"),
    (dict(error_burst_start_prob=1.5), r"FaultSpec.error_burst_start_prob must be a probability in \[0, 1\], got 1.5"),
    (dict(burst_error_prob=-0.1), r"FaultSpec.burst_error_prob must be a probability in \[0, 1\], got -0.1"),
    (dict(error_burst_mean_steps=0.5), r"FaultSpec.error_burst_mean_steps must be a finite number of steps in \[1, 1e\+12\], got 0.5"),
    (dict(error_burst_mean_steps=float("inf")), r"FaultSpec.error_burst_mean_steps must be a finite number of steps .*got inf"),
]


@pytest.mark.parametrize("fields,message", BAD_MARKET_FAULTS, ids=[m[10:50] for _, m in BAD_MARKET_FAULTS])
def test_bad_market_fault_values_are_refused_with_what_was_expected(fields, message):
    with pytest.raises(ValueError, match=message):
        ob.FaultSpec(**fields)


def test_market_faults_compile_per_venue():
    wild = dataclasses.replace(CALM, latency_vol_slope=2.0, latency_vol_ref_bps=5.0, latency_vol_cap=3.0,
                               error_burst_start_prob=0.1, error_burst_mean_steps=4.0, burst_error_prob=0.7)
    cfg = small_config(faults=CALM)
    cfg = dataclasses.replace(cfg, venues=(cfg.venues[0].replace(faults=wild), cfg.venues[1]))
    cc = cfg.compile()
    assert cc.latency_vol_slope.tolist() == [2.0, 0.0] and cc.latency_vol_ref_bps.tolist() == [5.0, 20.0]
    assert cc.latency_vol_cap.tolist() == [3.0, 10.0] and cc.error_burst_start_prob.tolist() == [0.1, 0.0]
    assert cc.error_burst_end_prob.tolist() == [0.25, 0.2] and cc.burst_error_prob.tolist() == [0.7, 0.0]
