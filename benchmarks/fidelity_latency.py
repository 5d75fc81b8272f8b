"""Fidelity facts of time on the wire and faults: what latency does to a market order's price (fact 1)
and to a cancel's race against fills (fact 8), and faults tied to the replayed market (fact 7).

Rows of ``benchmarks/fidelity.py``'s table (see its docstring for the table's columns and
the markets); public APIs only, through :mod:`benchmarks.fidelity_setup`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

import orderbook as ob
from benchmarks.fidelity_setup import (
    EPISODE_STEPS,
    TOL,
    Market,
    Row,
    ci,
    fills_by_order,
    orders,
    put,
    rest_buy_at_bid,
    row,
    start,
)
from benchmarks.fidelity_targets import latency_slippage_sd_bps, mean_se, sd_se, share_se
from orderbook.spec import codes as c

LATENCIES_S = (0.0, 1.0, 10.0, 30.0, 50.0)  # fact 1: the constant latencies, in s


def latency_vs_slippage(m: Market, n_lanes: int, seed: int, latencies_s=LATENCIES_S) -> list[Row]:
    """Fact 1. Sd of a market order's slippage against the decision mid, by constant latency.

    Half the lanes buy, half sell a small market order (1% of a typical bar) at the
    first step; orders that fill in that step count (a market order left resting by
    a zero-volume bar is fact 5's artefact, not latency). In a true market the price walks while the order travels, so the
    variance grows by ``sigma_bar^2 x L / 60`` over the zero-latency sd
    (:func:`~benchmarks.fidelity_targets.latency_slippage_sd_bps`); holds when the
    added variance is within 30% of that (at L = 0 only the spread counts).
    """
    rows, sd0 = [], None
    for lat in latencies_s:
        cfg = m.config(latency_s=lat)
        inst = m.instrument(cfg)
        ex = start(cfg, n_lanes, seed)
        intents = orders(n_lanes, cfg.max_new_orders)
        side = np.where(np.arange(n_lanes) % 2 == 0, c.BUY, c.SELL)
        put(intents, 0, inst, side, c.MARKET, max(m.big_lots // 100, 1), tif=c.TIF_GTD)
        ex.step(intents)
        ex.step()
        f = fills_by_order(ex.history.events_frame()).filter(pl.col("first_fill_step") == 1)  # resting ones are fact 5
        slip = (f["sgn"] * (f["vwap"] - f["decision_mid"]) / f["decision_mid"] * 1e4).to_numpy()
        sd, se = sd_se(slip)
        if sd0 is None:
            sd0 = sd
        target = latency_slippage_sd_bps(sd0, m.sigma_bar_bps, lat)
        added, expected = sd**2 - sd0**2, target**2 - sd0**2
        holds = None if lat == 0 else bool(abs(added - expected) <= TOL * expected)
        rows.append(row("1 latency vs slippage sd (bps)", m.name, f"L = {lat:g} s, {len(slip)} orders", ci(sd, se),
                        f"{target:.2f} (sigma_bar {m.sigma_bar_bps:.1f} bps)", "added variance ±30%", holds))
    return rows


def cancel_race(m: Market, n_lanes: int, seed: int, latencies_s=(1.0, 10.0, 30.0)) -> list[Row]:
    """Fact 8. A buy limit at the bid, cancelled at the next step: races lost to fills, by latency (orders and cancels alike).

    In a true market a cancel removes what still rests when it lands, and a fill
    earlier on the price path wins: so no fill is ever stamped after the cancel's
    landing, and the share of races lost grows with the time the cancel travels
    (a coin flip would keep it flat). Holds when no fill comes after its cancel
    landed and the share grows from each latency to the next (the difference beyond its 95% interval).
    """
    rows, prev = [], None
    for lat in latencies_s:
        cfg = m.config(latency_s=lat)
        ex = rest_buy_at_bid(m, cfg, n_lanes, seed, 1, lots=max(m.big_lots // 100, 1))
        resting = (ex.orders.status[:, 0] == c.OPEN) & (ex.orders.filled_lots[:, 0] == 0)
        cancels = np.zeros((n_lanes, cfg.slots), dtype=bool)
        cancels[:, 0] = resting
        ex.step(None, cancels)
        raced = pl.Series("lane", np.flatnonzero(resting), dtype=pl.Int32)
        ev = ex.history.events_frame().filter(pl.col("step") == 2, pl.col("lane").is_in(raced.implode()))
        landed = ev.filter(pl.col("event") == "CANCEL_ACK").select("lane", pl.col("time_ns").alias("landed_ns"))
        fills = ev.filter(pl.col("event") == "FILL").select("lane", "time_ns")
        lost_lanes = fills["lane"].unique()
        late = fills.join(landed, on="lane").filter(pl.col("time_ns") > pl.col("landed_ns")).height
        n = int(resting.sum())
        share, se = share_se(int(lost_lanes.len()), n)
        grows = prev is None or share - prev[0] > 1.96 * np.hypot(se, prev[1])
        rows.append(row("8 cancel race: races lost to fills", m.name, f"L = {lat:g} s, {n} resting buys at the bid; fills after the cancel landed: {late}",
                        ci(share, se, 3), "grows with L; 0 fills after the cancel", "no late fill, share above the previous L", late == 0 and grows))
        prev = (share, se)
    return rows


def bar_ranges_bps(ex: ob.Exchange, inst: int) -> pl.DataFrame:
    """Per (lane, step): the bar's realised range ``(high - low) / open`` in bps, from the market log."""
    mk = ex.history.market_frame().filter((pl.col("instrument") == inst) & (pl.col("step") > 0))
    return mk.select("lane", "step", ((pl.col("high_ticks") - pl.col("low_ticks")) * 1e4 / pl.col("open_ticks")).alias("range_bps"))


MF_SIGMA, MF_SLOPE, MF_CAP = 0.6, 1.0, 10.0  # fact 7: lognormal latency's sigma, the range slope and cap
MF_P, MF_MEAN_STEPS, MF_Q, MF_B = 0.05, 4.0, 0.8, 0.02  # fact 7: burst start, mean length, error rate inside, outside


def market_faults(m: Market, n_lanes: int, seed: int, per_bar: int = 4, burn_in: int = 8) -> list[Row]:
    """Fact 7. Faults tied to the market: latency against the bar's range, and broker errors in bursts.

    Every lane sends ``per_bar`` small market orders (buys and sells in turn) each bar of
    its window, latency lognormal (median 50 ms, sigma 0.6, no tail) scaled by the bar's
    range (``FaultSpec.latency_vol_slope`` 1, ``latency_vol_ref_bps`` the market's median
    bar range, cap 10); broker errors 2%, in bursts of 80% entered 5% of steps, 4 steps long
    on average. (a) The correlation across bars of the bar's range with its orders' mean ack
    latency, against the correlation the configured model implies on the same bars (a
    closed form over the measured ranges): holds within 30%. (b) The lag-1 autocorrelation
    of the share of a bar's orders the broker rejects (after ``burn_in`` bars: a lane starts
    outside a burst) against the regime's closed form, and the error rate against
    ``b + (q - b) pi``: hold within 30%. No venue publishes its latency per bar, so the
    targets are the model's own: the rows show the replayed bars drive the faults as configured.
    """
    bars, ref_bps, n_steps = market_faults_bars(m, n_lanes, seed, per_bar)
    return [latency_vs_range(m, bars, ref_bps, per_bar), error_bursts(m, bars, n_lanes, n_steps, per_bar, burn_in)]


def market_faults_bars(m: Market, n_lanes: int, seed: int, per_bar: int) -> tuple[pl.DataFrame, float, int]:
    """Fact 7's run: per (lane, step) with all ``per_bar`` orders sent, the bar's range, mean ack latency and
    share of broker errors; also the reference range (the market's median bar range) and the steps run."""
    calm = m.config()
    inst = m.instrument(calm)
    probe = start(calm, min(n_lanes, 256), seed)
    for _ in range(20):
        probe.step()
    ref_bps = float(bar_ranges_bps(probe, inst).filter(pl.col("range_bps") > 0)["range_bps"].median())
    faults = replace(ob.FaultSpec.none(), ack_timeout_ms=600_000.0, broker_error_prob=MF_B, latency_vol_slope=MF_SLOPE, latency_vol_ref_bps=ref_bps,
                     latency_vol_cap=MF_CAP, error_burst_start_prob=MF_P, error_burst_mean_steps=MF_MEAN_STEPS, burst_error_prob=MF_Q)
    lat = ob.LatencySpec(kind="lognormal", median_ms=50.0, sigma=MF_SIGMA, tail_prob=0.0)
    cfg = ob.ExchangeConfig(**{**calm.__dict__, "venues": tuple(v.replace(faults=faults, latency=lat) for v in calm.venues)})
    ex = start(cfg, n_lanes, seed)
    n_steps = EPISODE_STEPS - 1 if m.name == "binance_us" else 40
    for t in range(n_steps):
        intents = orders(n_lanes, cfg.max_new_orders)
        for j in range(per_bar):
            put(intents, j, inst, c.BUY if (t + j) % 2 == 0 else c.SELL, c.MARKET, max(m.big_lots // 100, 1), tif=c.TIF_GTD)
        ex.step(intents)
    ev = ex.history.events_frame()
    sent = ev.filter(pl.col("event") == "SUBMIT").select("lane", "order_id", "step", pl.col("time_ns").alias("sent_ns"))
    came = ev.filter((pl.col("event") == "ACK") | (pl.col("reason") == "BROKER_ERROR")).select(
        "lane", "order_id", "time_ns", (pl.col("reason") == "BROKER_ERROR").alias("error"))
    per = sent.join(came, on=["lane", "order_id"]).group_by("lane", "step").agg(
        ((pl.col("time_ns") - pl.col("sent_ns")) * 1e-6).mean().alias("latency_ms"), pl.col("error").cast(pl.Float64).mean().alias("errors"),
        pl.len().alias("n")).join(bar_ranges_bps(ex, inst), on=["lane", "step"]).sort("lane", "step")
    # a lane whose 8 slots hold market orders resting on quiet bars sends fewer (fact 5): whole bars only
    return per.filter(pl.col("n") == per_bar), ref_bps, n_steps


def latency_vs_range(m: Market, bars: pl.DataFrame, ref_bps: float, per_bar: int) -> Row:
    """Fact 7a: the correlation of the bar's range with its mean ack latency, and the model's on the same ranges."""
    r, lat_ms = bars["range_bps"].to_numpy(), bars["latency_ms"].to_numpy()
    corr = float(np.corrcoef(r, lat_ms)[0, 1])
    corr_se = (1 - corr**2) / np.sqrt(len(r) - 3)
    scale = np.minimum(1.0 + MF_SLOPE * np.maximum(r / ref_bps - 1.0, 0.0), MF_CAP)
    mu, v = np.exp(MF_SIGMA**2 / 2), (np.exp(MF_SIGMA**2) - 1) * np.exp(MF_SIGMA**2)  # mean and variance of the lognormal factor
    target = mu * np.cov(r, scale)[0, 1] / (r.std(ddof=1) * np.sqrt((scale**2).mean() * (mu**2 + v / per_bar) - mu**2 * scale.mean() ** 2))
    return row("7a latency vs bar range: corr.", m.name, f"{per_bar} orders per bar, ref {ref_bps:.1f} bps (median range), slope {MF_SLOPE:g}; "
               f"ack {lat_ms.mean():.0f} ms on average, {lat_ms[scale > 2].mean():.0f} ms on bars of range > 2 x ref",
               ci(corr, corr_se), f"{target:.3f} (the model on these bars)", "±30%", bool(abs(corr - target) <= TOL * target))


def error_bursts(m: Market, bars: pl.DataFrame, n_lanes: int, n_steps: int, per_bar: int, burn_in: int) -> Row:
    """Fact 7b: lag-1 autocorrelation of the share of a bar's orders rejected by the broker, and the error rate."""
    x = bars.filter(pl.col("step") > burn_in)
    whole = x.group_by("lane").agg(pl.len().alias("k")).filter(pl.col("k") == n_steps - burn_in)["lane"]
    x = x.filter(pl.col("lane").is_in(whole.implode())).sort("lane", "step")["errors"].to_numpy().reshape(len(whole), n_steps - burn_in)
    e = 1.0 / MF_MEAN_STEPS
    pi = MF_P / (MF_P + e)
    rate_target = MF_B + (MF_Q - MF_B) * pi
    var_share = (MF_Q - MF_B) ** 2 * pi * (1 - pi) + (pi * MF_Q * (1 - MF_Q) + (1 - pi) * MF_B * (1 - MF_B)) / per_bar
    rho_target = (MF_Q - MF_B) ** 2 * pi * (1 - pi) * (1 - MF_P - e) / var_share
    mean, var = x.mean(), x.var()
    lane_rho = ((x[:, :-1] - mean) * (x[:, 1:] - mean)).mean(axis=1) / var
    rho, rho_se = float(lane_rho.mean()), float(lane_rho.std() / np.sqrt(len(lane_rho)))
    rate, rate_se = mean_se(x.mean(axis=1))
    return row("7b broker errors: lag-1 autocorr.", m.name, f"share of a bar's {per_bar} orders rejected, bars {burn_in + 1}-{n_steps}, "
               f"{len(lane_rho)} of {n_lanes} lanes (every order sent); rate {rate:.3f} ± {1.96 * rate_se:.3f} vs {rate_target:.3f}",
               ci(rho, rho_se, 3), f"{rho_target:.3f} (closed form)", "±30% (and the rate)",
               bool(abs(rho - rho_target) <= TOL * rho_target and abs(rate - rate_target) <= TOL * rate_target))
