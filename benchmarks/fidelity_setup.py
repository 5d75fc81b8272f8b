"""Setups of ``benchmarks/fidelity.py``: the markets, the orders, the measurements' plumbing.

Public APIs only (``Exchange``, ``OrderIntents``, the specs, the history frames and
``orderbook.analytics.queries``): when the fill path changes, these build the same
experiments. :func:`latency_spec` is the one place a row's latency becomes a spec;
:func:`lane_seeds` the one place a run's seed becomes its lanes' seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import polars as pl

import orderbook as ob
from benchmarks.fidelity_targets import log_return_sd_bps, synthetic_sigma_bar_bps
from orderbook.analytics import queries
from orderbook.engine.intents import OrderIntents, empty_intents
from orderbook.market.bars import load_bars
from orderbook.presets import binance_us_sources, replay_config
from orderbook.spec import codes as c

EPISODE_STEPS = 25  # replay windows: the longest horizon (20 bars) plus room
TOL = 0.30  # the issues' relative tolerance
LANES_PER_SEED = 2**32  # lane seeds a run's seed owns: seed s runs lanes s x 2**32 + b (:func:`lane_seeds`)
SEED_MAX = 2**31 - 1  # the largest run seed: its last lane seed is 2**63 - 1, the core's largest


# ------------------------------------------------------------------ markets
def latency_spec(latency_s: float) -> ob.LatencySpec:
    """The venue latency of a row: every message arrives ``latency_s`` after its decision.

    Today a constant per venue; the one place to change when latency gains an
    offset inside the bar or a distribution.
    """
    return ob.LatencySpec(kind="constant", constant_ms=latency_s * 1000.0)


@dataclass(frozen=True)
class Market:
    """A market to measure on: how to build its config and what a true market's sigma is there."""

    name: str
    venue: str
    symbol: str
    sigma_bar_bps: float  # one-bar log return sd of the market itself (target input)
    big_lots: int  # an order size near or above a typical bar's volume
    build: Callable[..., ob.ExchangeConfig]

    def config(self, latency_s: float = 0.0, fills: ob.FillSpec | None = None, **market) -> ob.ExchangeConfig:
        """The market's config with a latency, fill spec and (synthetic only) market overrides; faults off."""
        cfg = self.build(**market)
        venues = tuple(
            v.replace(latency=latency_spec(latency_s), faults=ob.FaultSpec.none(), fills=fills or ob.FillSpec()) for v in cfg.venues
        )
        return ob.ExchangeConfig(**{**cfg.__dict__, "venues": venues})

    def instrument(self, cfg: ob.ExchangeConfig) -> int:
        return cfg.instrument_index(self.venue, self.symbol)


def synthetic_market(tick_size: str = "0.01") -> Market:
    """One venue, BTC/USD, the default synthetic market; balances that never bind. Named ``synthetic`` at the
    default one-cent tick, ``synthetic $<tick> tick`` otherwise."""
    spec = ob.SyntheticMarket()

    def build(**market) -> ob.ExchangeConfig:
        return ob.ExchangeConfig(
            assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6)),
            venues=(ob.Venue("sim"),),
            instruments=(ob.Instrument("sim", "BTC", "USD", min_notional="0", tick_size=tick_size),),
            initial_balances={("sim", "USD"): "100000000", ("sim", "BTC"): "1000"},
            market=replace(spec, **market),
            slots=8,
        )

    sigma = synthetic_sigma_bar_bps(spec.vol_per_step, spec.jump_prob, spec.jump_sigma)
    name = "synthetic" if tick_size == "0.01" else f"synthetic ${tick_size} tick"
    return Market(name, "sim", "BTC/USD", sigma, int(spec.volume_mean["BTC"] / 0.0001), build)


def binance_us_market() -> Market:
    """Binance.US BTC/USD replayed (bars loaded once); sigma from the data's own one-minute returns."""
    bars = load_bars(binance_us_sources())
    s = bars.column("binance_us", "BTC/USD")
    sigma = log_return_sd_bps(bars.close[:, s], bars.present[:, s] & (bars.volume[:, s] > 0))
    median_volume = float(np.median(bars.volume[bars.volume[:, s] > 0, s]))

    def build() -> ob.ExchangeConfig:
        return replay_config(
            bars,
            episode_steps=EPISODE_STEPS,
            venue_map={"binance_us": ("binance_us",)},
            initial_balances={("binance_us", a): amt for a, amt in (("BTC", "1000"), ("USD", "100000000"), ("USDT", "0"), ("USDC", "0"))},
            slots=8,
        )

    return Market("binance_us", "binance_us", "BTC/USD", sigma, max(int(median_volume / 0.0001), 1), build)


# ------------------------------------------------------------------ running
def orders(n_lanes: int, max_new: int) -> OrderIntents:
    """Empty intents, GTC by default here: the rows below rest until the measurement ends."""
    intents = empty_intents(n_lanes, max_new)
    intents.tif[:] = c.TIF_GTC
    return intents


def put(intents: OrderIntents, col: int, inst: int, side, kind: int, qty_lots, price_ticks=0, lanes=slice(None), tif: int = c.TIF_GTC) -> None:
    """Write one order per lane into column ``col`` (arrays broadcast over the chosen lanes)."""
    intents.instrument[lanes, col] = inst
    intents.side[lanes, col] = side
    intents.kind[lanes, col] = kind
    intents.qty_lots[lanes, col] = qty_lots
    intents.price_ticks[lanes, col] = price_ticks
    intents.tif[lanes, col] = tif
    intents.ttl_ns[lanes, col] = 0


def quotes(ex: ob.Exchange, inst: int) -> tuple[np.ndarray, np.ndarray]:
    """(bid, ask) ticks per lane the agent sees now, from the market log (``queries.latest_prices``)."""
    latest = queries.latest_prices(ex.history.market_frame()).filter(pl.col("instrument") == inst).sort("lane")
    return latest["bid_ticks"].to_numpy(), latest["ask_ticks"].to_numpy()


def lane_seeds(seed: int, n_lanes: int) -> np.ndarray:
    """``(n_lanes,)`` int64: the seeds of a run's lanes, ``seed x 2**32 + b`` for lane ``b``.

    Runs with different ``seed`` share no lane (the core's own ``seed + b`` made a run of
    seed ``s + 1`` replay all lanes but one of seed ``s``: nearby seeds were not independent
    replications); the lanes of one run stay distinct; seed 0 keeps the lanes ``0, 1, ...``
    it always had. ValueError unless ``seed`` is an int in ``[0, SEED_MAX]`` and ``n_lanes``
    in ``[1, LANES_PER_SEED]``.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an int in [0, {SEED_MAX}] (lane b gets seed x 2**32 + b), got {seed!r}")
    if isinstance(n_lanes, (bool, np.bool_)) or not isinstance(n_lanes, (int, np.integer)) or not 1 <= n_lanes <= LANES_PER_SEED:
        raise ValueError(f"n_lanes must be an int in [1, {LANES_PER_SEED}] (the lanes one seed owns), got {n_lanes!r}")
    return int(seed) * LANES_PER_SEED + np.arange(n_lanes, dtype=np.int64)


def start(cfg: ob.ExchangeConfig, n_lanes: int, seed: int) -> ob.Exchange:
    """An exchange of ``n_lanes`` lanes reset with the run's lane seeds (:func:`lane_seeds`)."""
    ex = ob.Exchange(cfg, n_lanes=n_lanes)
    ex.reset(seed=lane_seeds(seed, n_lanes))
    return ex


def rest_limits(cfg: ob.ExchangeConfig, inst: int, n_lanes: int, seed: int, n_steps: int, side, lots,
                ticks_behind=0) -> tuple[ob.Exchange, np.ndarray]:
    """An exchange whose every lane sent one GTC limit (``side``, ``lots``: scalars or per-lane arrays) ``ticks_behind``
    the touch it saw (under the bid for a buy, over the ask for a sell), then stepped ``n_steps`` bars in all; and
    the ``(n_lanes,)`` limit prices."""
    ex = start(cfg, n_lanes, seed)
    bid, ask = quotes(ex, inst)
    price = np.where(np.asarray(side) == c.BUY, bid - ticks_behind, ask + ticks_behind)
    intents = orders(n_lanes, cfg.max_new_orders)
    put(intents, 0, inst, side, c.LIMIT, lots, price)
    ex.step(intents)
    for _ in range(n_steps - 1):
        ex.step()
    return ex, price


def rest_buy_at_bid(m: Market, cfg: ob.ExchangeConfig, n_lanes: int, seed: int, n_steps: int, lots: int = 0) -> ob.Exchange:
    """An exchange whose every lane sent one buy limit of ``lots`` (0: a tenth of a median bar) at the bid it saw,
    then stepped ``n_steps`` bars in all (zero latency unless ``cfg`` says otherwise)."""
    return rest_limits(cfg, m.instrument(cfg), n_lanes, seed, n_steps, c.BUY, lots or max(m.big_lots // 10, 1))[0]


def fills_by_order(events: pl.DataFrame) -> pl.DataFrame:
    """Per order: lane, side (+1/-1), lots filled, VWAP, decision mid, taker lots, first fill step."""
    f = events.filter(pl.col("event") == "FILL")
    return f.group_by("lane", "order_id").agg(
        pl.col("side").first().cast(pl.Utf8).alias("side_name"),
        pl.col("fill_lots").sum().alias("lots"),
        ((pl.col("fill_price") * pl.col("fill_quantity")).sum() / pl.col("fill_quantity").sum()).alias("vwap"),
        pl.col("decision_mid").first(),
        pl.col("fill_lots").filter(pl.col("liquidity").cast(pl.Utf8) == "TAKER").sum().alias("taker_lots"),
        pl.col("step").min().alias("first_fill_step"),
    ).with_columns(pl.when(pl.col("side_name") == "BUY").then(1).otherwise(-1).alias("sgn"))


def cum_fills_by_step(events: pl.DataFrame, lanes: np.ndarray, n_steps: int) -> np.ndarray:
    """``(len(lanes), n_steps + 1)`` lots filled up to and including each step, summed over each lane's orders."""
    f = events.filter(pl.col("event") == "FILL").group_by("lane", "step").agg(pl.col("fill_lots").sum())
    out = np.zeros((int(lanes.max()) + 1, n_steps + 1), dtype=np.int64)
    np.add.at(out, (f["lane"].to_numpy(), np.minimum(f["step"].to_numpy(), n_steps)), f["fill_lots"].to_numpy())
    return np.cumsum(out, axis=1)[lanes]


Row = dict


def row(fact: str, market: str, setting: str, measured: str, target: str, tolerance: str, holds: bool | None) -> Row:
    return dict(fact=fact, market=market, setting=setting, measured=measured, target=target, tolerance=tolerance,
                holds="n/a" if holds is None else ("yes" if holds else "no"))


def ci(x: float, se: float, digits: int = 2) -> str:
    """``x ± 1.96 se`` (a 95% interval)."""
    return f"{x:.{digits}f} ± {1.96 * se:.{digits}f}" if np.isfinite(se) else f"{x:.{digits}f}"


AC_X_BTC, AC_N, AC_TAU_S, AC_GAMMA, AC_EPSILON, AC_ETA, AC_SIGMA = 10.0, 10, 60.0, 0.5, 1.0, 300.0, 10.0


def ac_config(collar_bps: float, eta: float = AC_ETA) -> ob.ExchangeConfig:
    """The Almgren-Chriss setting of ``tests/orderbook/engine/test_impact.py``: zero spread, a book deep enough
    that a walk never leaves the touch, no fees, faults or latency, an arithmetic Brownian price;
    the only costs are the linear impacts. ``collar_bps`` is the market orders' protection band."""
    venue = ob.Venue(
        "alpha", latency=latency_spec(0.0), faults=ob.FaultSpec.none(),
        fills=ob.FillSpec(market_collar_bps=collar_bps, impact=ob.ImpactSpec(model="linear", gamma=AC_GAMMA, eta=eta, epsilon=AC_EPSILON)),
        book=ob.BookSpec(spread_bps=0.0, min_spread_ticks=0, level_step_bps=0.0, depth_fractions=(1.0,)),
    )
    return ob.ExchangeConfig(
        assets=(ob.Asset("BTC", 8), ob.Asset("USD", 6)), venues=(venue,),
        instruments=(ob.Instrument("alpha", "BTC", "USD", maker_fee_bps=0.0, taker_fee_bps=0.0, min_notional="0"),),
        initial_balances={("alpha", "USD"): "1000000"},
        market=ob.SyntheticMarket(process="abm", abm_sigma_per_step=AC_SIGMA, volume_mean={"BTC": 1e6}, zero_volume_prob=0.0, range_scale=0.0),
        step_ms=int(AC_TAU_S * 1000),
    )
