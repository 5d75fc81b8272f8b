"""Builders shared by the core's tests: small configs and random intents."""

from __future__ import annotations

import numpy as np

import orderbook as ob
from orderbook.engine.intents import OrderIntents, empty_intents


def small_config(faults: ob.FaultSpec | None = None, latency: ob.LatencySpec | None = None, **overrides) -> ob.ExchangeConfig:
    """Two venues, BTC against USD and USDT, 8 slots: small enough to read a failure."""
    venues = tuple(
        ob.Venue(name, faults=faults if faults is not None else ob.FaultSpec(), latency=latency or ob.LatencySpec())
        for name in ("alpha", "beta")
    )
    kwargs = dict(
        assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6), ob.Asset("USDT", 6)),
        venues=venues,
        instruments=tuple(ob.Instrument(v.name, "BTC", q) for v in venues for q in ("USD", "USDT")),
        initial_balances={(v, a): amt for v in ("alpha", "beta") for a, amt in (("BTC", "2"), ("USD", "100000"), ("USDT", "50000"))},
        slots=8,
        max_new_orders=3,
    )
    kwargs.update(overrides)
    return ob.ExchangeConfig(**kwargs)


def random_intents(rng: np.random.Generator, ex: ob.Exchange, n_orders: int | None = None, tifs: bool = False) -> OrderIntents:
    """Random market and limit orders near the touch, sizes up to a large fraction of funds; with ``tifs``
    every time in force (GTD most often), else GTD only (the draws, and so the seeded histories other
    tests pin, are those of before the times in force)."""
    cfg = ex.config
    b_count, m_count = ex.n_lanes, cfg.max_new_orders
    intents = empty_intents(b_count, m_count)
    lanes = np.arange(b_count)
    n = rng.integers(0, m_count + 1) if n_orders is None else n_orders
    for m in range(n):
        inst = rng.integers(0, len(cfg.instruments), b_count)
        mid = (ex.bars.bid_ticks[lanes, inst] + ex.bars.ask_ticks[lanes, inst]) // 2
        intents.instrument[:, m] = np.where(rng.random(b_count) < 0.9, inst, -1)
        intents.side[:, m] = rng.choice([1, -1], b_count)
        intents.kind[:, m] = rng.integers(0, 2, b_count)
        intents.price_ticks[:, m] = np.maximum(mid + rng.integers(-40, 41, b_count) * (mid // 10_000 + 1), 1)
        intents.qty_lots[:, m] = rng.integers(1, 3_000, b_count)
        intents.ttl_ns[:, m] = rng.choice([0, 30_000_000_000, 120_000_000_000, 600_000_000_000], b_count)
        if not tifs:
            continue
        # every time in force, GTD most often; GTC, IOC and FOK take no ttl; post-only only on limits
        tif = rng.choice([ob.TimeInForce.GTD, ob.TimeInForce.GTC, ob.TimeInForce.IOC, ob.TimeInForce.FOK, ob.TimeInForce.POST_ONLY],
                         b_count, p=[0.6, 0.1, 0.1, 0.1, 0.1]).astype(np.int64)
        tif = np.where((intents.kind[:, m] == ob.OrderKind.MARKET) & (tif == ob.TimeInForce.POST_ONLY), ob.TimeInForce.IOC, tif)
        intents.tif[:, m] = tif
        intents.ttl_ns[:, m] = np.where(np.isin(tif, (ob.TimeInForce.GTC, ob.TimeInForce.IOC, ob.TimeInForce.FOK)), 0, intents.ttl_ns[:, m])
    return intents


def random_cancels(rng: np.random.Generator, ex: ob.Exchange, p: float = 0.15) -> np.ndarray:
    return rng.random((ex.n_lanes, ex.config.slots)) < p


def almgren_chriss_config(model: str, *, sigma: float, step_s: float, band_bps: float = 50.0, **impact) -> ob.ExchangeConfig:
    """Zero spread, a book deep enough that a walk never leaves the touch, no fees, no faults, no
    latency, an arithmetic Brownian price: the only execution costs are the ``model`` impacts."""
    venue = ob.Venue(
        "alpha",
        latency=ob.LatencySpec.zero(),
        faults=ob.FaultSpec.none(),
        fills=ob.FillSpec(market_collar_bps=band_bps, impact=ob.ImpactSpec(model=model, **impact)),
        book=ob.BookSpec(spread_bps=0.0, min_spread_ticks=0, level_step_bps=0.0, depth_fractions=(1.0,)),
    )
    return ob.ExchangeConfig(
        assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6)),
        venues=(venue,),
        instruments=(ob.Instrument("alpha", "BTC", "USD", maker_fee_bps=0.0, taker_fee_bps=0.0, min_notional="0"),),
        initial_balances={("alpha", "USD"): "1000000"},
        market=ob.SyntheticMarket(process="abm", abm_sigma_per_step=sigma, volume_mean={"BTC": 1e6}, zero_volume_prob=0.0, range_scale=0.0),
        step_ms=int(step_s * 1000),
    )
