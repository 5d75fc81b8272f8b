"""Market sources: what the bar of each (lane, instrument) is at every step.

A market source fills the bar arrays ``open/high/low/close`` (ticks) and
``volume`` (lots) of every lane and instrument for one step; the book model
(:mod:`orderbook.engine.book`) turns a bar into prices and depth. Two sources:

- :class:`SyntheticMarket` (the default): one fundamental price per base asset in
  the numeraire (geometric Brownian with optional jumps, or arithmetic Brownian for
  closed-form execution costs), quote assets whose value in the numeraire can
  depeg and recover, a venue basis per instrument (mean-reverting noise), and
  stochastic volume with some zero-volume bars around a level drawn per episode
  (busy episodes stay busy, quiet ones quiet).
- :class:`ReplayMarket` (:mod:`orderbook.market.replay`): bars from data files.

Every draw is keyed by the lane's market seed (:mod:`orderbook.spec.rng`), so a lane's
market depends on nothing but its seed and episode. The lane's own permanent
impact (``impact_ticks``) is added to its prices here, from the next bar on.

Bounds (:mod:`orderbook.spec.bounds`): every synthetic price (drift and impact
included) is clamped into its instrument's ``[min_price, max_price]`` range, so a
bar sticks at the edge of the range rather than leave it; an initial price outside
the range is refused at configuration. Bar volumes are capped at ``MAX_VOLUME_LOTS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import prange

from orderbook.compile.jit import kernel, parallel_kernel
from orderbook.market.path import bridge_from_open_to_close, flat_path
from orderbook.spec import rng
from orderbook.spec.bounds import MAX_VOLUME_LOTS

PROCESSES = ("gbm", "abm")


@dataclass(frozen=True)
class DepegSpec:
    """A quote asset that can lose its peg: starts with ``start_prob`` per step, drops
    by a fraction drawn around ``size_mean``, and recovers with ``half_life_steps``."""

    start_prob: float = 0.0005
    size_mean: float = 0.08
    half_life_steps: float = 240.0
    noise_bps: float = 1.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.start_prob <= 1.0):
            raise ValueError(f"DepegSpec.start_prob must be in [0, 1], got {self.start_prob!r}")
        if not (0.0 <= self.size_mean < 1.0):
            raise ValueError(f"DepegSpec.size_mean must be in [0, 1), got {self.size_mean!r}")
        if not (self.half_life_steps > 0):
            raise ValueError(f"DepegSpec.half_life_steps must be > 0, got {self.half_life_steps!r}")
        if not (self.noise_bps >= 0):
            raise ValueError(f"DepegSpec.noise_bps must be >= 0, got {self.noise_bps!r}")


@dataclass(frozen=True)
class SyntheticMarket:
    """The embedded default market (see the module docstring).

    ``initial_prices`` maps each base asset to its price in the numeraire.
    ``process="gbm"``: log returns with sd ``vol_per_step`` and jumps of log-size sd
    ``jump_sigma`` with probability ``jump_prob`` per step. ``process="abm"``: the
    price moves by a normal with sd ``abm_sigma_per_step`` (numeraire units), no
    jumps, no basis, for comparison with closed-form costs.
    ``volume_mean`` maps each base asset to the mean bar volume (base units) of
    each of its instruments; a bar has zero volume with ``zero_volume_prob``.
    Otherwise its volume is lognormal: ``mean x exp(volume_level_sigma z_level +
    volume_sigma z_bar - (volume_level_sigma^2 + volume_sigma^2) / 2)``, where
    ``z_bar`` is drawn per bar and ``z_level`` once per episode and base asset
    (:func:`synthetic_volume_level`), so the mean bar volume is ``mean`` whatever
    the two sigmas, and the log volumes of two traded bars of one episode correlate
    ``volume_level_sigma^2 / (volume_level_sigma^2 + volume_sigma^2)`` at every lag.
    Inside the bar the price follows a path (:mod:`orderbook.market.path`): a
    Brownian bridge from the open to the close with sd ``range_scale`` times the
    step's own (``vol_per_step`` of the price, or ``abm_sigma_per_step``); the bar's
    high and low are the path's extremes. ``range_scale=1`` is a Brownian market,
    ``0`` a straight line from open to close.
    """

    initial_prices: dict[str, float] = field(default_factory=lambda: {"BTC": 30_000.0})
    process: str = "gbm"
    vol_per_step: float = 0.0008
    abm_sigma_per_step: float = 10.0
    jump_prob: float = 0.001
    jump_sigma: float = 0.01
    basis_bps: float = 2.0
    basis_half_life_steps: float = 30.0
    volume_mean: dict[str, float] = field(default_factory=lambda: {"BTC": 5.0})
    volume_sigma: float = 0.5
    volume_level_sigma: float = 0.5
    """Sd of the episode's log volume level (0: every bar alike, the market before the level).

    Calibrated on the packaged Binance.US BTC/USD one-minute bars (March 2023): the
    correlation of log volume between two bars of one hour is 0.65 at lag 1, 0.52 at
    lag 10, 0.47 at lag 30 (``benchmarks/fidelity_volume.py``), a plateau near 0.5
    from lag 5 on; with ``volume_sigma`` 0.5, ``0.5^2 / (0.5^2 + 0.5^2) = 0.5``. A level
    constant over the episode gives one correlation at every lag: it cannot give the
    extra correlation of neighbouring bars (0.65 at lag 1). The ratio is calibrated, not
    the scale: the data's log volume varies more (sd 1.07 within an hour and 1.08
    between hours' means, against 0.5 and 0.5 here)."""
    zero_volume_prob: float = 0.02
    range_scale: float = 1.0
    depeg: dict[str, DepegSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.process not in PROCESSES:
            raise ValueError(f"SyntheticMarket.process must be one of {PROCESSES}, got {self.process!r}")
        for name, price in self.initial_prices.items():
            if not (isinstance(price, (int, float)) and math.isfinite(price) and price > 0):
                raise ValueError(f"SyntheticMarket.initial_prices[{name!r}] must be a finite price > 0, got {price!r}")
        for name, vol in self.volume_mean.items():
            if not (isinstance(vol, (int, float)) and math.isfinite(vol) and vol >= 0):
                raise ValueError(f"SyntheticMarket.volume_mean[{name!r}] must be a finite number >= 0, got {vol!r}")
        for f in ("vol_per_step", "abm_sigma_per_step", "jump_sigma", "basis_bps", "volume_sigma", "volume_level_sigma", "range_scale"):
            x = getattr(self, f)
            if not (isinstance(x, (int, float)) and math.isfinite(x) and x >= 0):
                raise ValueError(f"SyntheticMarket.{f} must be a finite number >= 0, got {x!r}")
        for f in ("jump_prob", "zero_volume_prob"):
            x = getattr(self, f)
            if not (isinstance(x, (int, float)) and 0.0 <= x <= 1.0):
                raise ValueError(f"SyntheticMarket.{f} must be a probability in [0, 1], got {x!r}")
        if not self.basis_half_life_steps > 0:
            raise ValueError(f"SyntheticMarket.basis_half_life_steps must be > 0, got {self.basis_half_life_steps!r}")
        for name, spec in self.depeg.items():
            if not isinstance(spec, DepegSpec):
                raise ValueError(f"SyntheticMarket.depeg[{name!r}] must be a DepegSpec, got {type(spec).__name__}")


class SyntheticParams(NamedTuple):
    """Compiled :class:`SyntheticMarket` for the kernels (arrays indexed by asset/instrument)."""

    is_abm: bool
    log_vol: float
    abm_sigma: float  # numeraire units per step
    jump_prob: float
    jump_sigma: float
    basis_sd: float  # stationary sd of the log basis
    basis_keep: float  # per-step persistence of the basis
    volume_sigma: float
    volume_level_sigma: float
    zero_volume_prob: float
    range_scale: float
    base_price0: np.ndarray  # (A,) float64, numeraire units; 0 for assets that are not a base
    volume_mean_lots: np.ndarray  # (I,) float64
    depeg_start: np.ndarray  # (A,) float64
    depeg_size: np.ndarray  # (A,) float64
    depeg_keep: np.ndarray  # (A,) float64 per-step persistence of a depeg
    peg_noise: np.ndarray  # (A,) float64 relative sd


class SyntheticState(NamedTuple):
    """Latent state of the synthetic market, per lane."""

    base_price: np.ndarray  # (B, A) float64 numeraire units per base unit
    quote_value: np.ndarray  # (B, A) float64 numeraire units per unit (1 = on peg)
    depeg: np.ndarray  # (B, A) float64 current fractional depeg (0 = none)
    log_basis: np.ndarray  # (B, I) float64


def compile_synthetic(spec: SyntheticMarket, asset_names, instruments, numeraire: str) -> SyntheticParams:
    """Arrays of ``spec`` for these assets and instruments; refuses unknown or unpriced bases."""
    index = {a: i for i, a in enumerate(asset_names)}
    n_assets = len(asset_names)
    base_price0 = np.zeros(n_assets)
    for name, price in spec.initial_prices.items():
        if name not in index:
            raise ValueError(f"SyntheticMarket.initial_prices names asset {name!r}, known assets: {list(asset_names)}")
        base_price0[index[name]] = price
    bases = {inst.base for inst in instruments}
    quotes = {inst.quote for inst in instruments} - {numeraire}
    for base in sorted(bases):
        if base == numeraire:
            raise ValueError(f"SyntheticMarket needs the numeraire {numeraire!r} as a quote, found it as a base")
        if base_price0[index[base]] <= 0:
            raise ValueError(f"SyntheticMarket.initial_prices has no price for base asset {base!r}; got {spec.initial_prices}")
        if base in quotes:
            raise ValueError(f"SyntheticMarket supports each asset as base or quote, found {base!r} as both")
    for inst in instruments:
        price = spec.initial_prices[inst.base]
        if not float(inst.min_price) <= price <= float(inst.max_price):
            raise ValueError(
                f"SyntheticMarket.initial_prices[{inst.base!r}] = {price!r} is outside the price range "
                f"[{inst.min_price}, {inst.max_price}] of instrument {inst.venue}:{inst.symbol}; expected a price inside it"
            )
    volume = np.zeros(len(instruments))
    for i, inst in enumerate(instruments):
        volume[i] = spec.volume_mean.get(inst.base, 0.0) / float(inst.lot_size)
    depeg_start, depeg_size, depeg_keep, peg_noise = (np.zeros(n_assets) for _ in range(4))
    depeg_keep[:] = 1.0
    for name, d in spec.depeg.items():
        if name not in index:
            raise ValueError(f"SyntheticMarket.depeg names asset {name!r}, known assets: {list(asset_names)}")
        a = index[name]
        depeg_start[a], depeg_size[a] = d.start_prob, d.size_mean
        depeg_keep[a] = 0.5 ** (1.0 / d.half_life_steps)
        peg_noise[a] = d.noise_bps * 1e-4
    keep = 0.5 ** (1.0 / spec.basis_half_life_steps)
    return SyntheticParams(
        is_abm=spec.process == "abm",
        log_vol=float(spec.vol_per_step),
        abm_sigma=float(spec.abm_sigma_per_step),
        jump_prob=float(spec.jump_prob),
        jump_sigma=float(spec.jump_sigma),
        basis_sd=0.0 if spec.process == "abm" else spec.basis_bps * 1e-4,
        basis_keep=keep,
        volume_sigma=float(spec.volume_sigma),
        volume_level_sigma=float(spec.volume_level_sigma),
        zero_volume_prob=float(spec.zero_volume_prob),
        range_scale=float(spec.range_scale),
        base_price0=base_price0,
        volume_mean_lots=volume,
        depeg_start=depeg_start,
        depeg_size=depeg_size,
        depeg_keep=depeg_keep,
        peg_noise=peg_noise,
    )


def new_synthetic_state(n_lanes: int, n_assets: int, n_instruments: int) -> SyntheticState:
    return SyntheticState(
        base_price=np.zeros((n_lanes, n_assets)),
        quote_value=np.ones((n_lanes, n_assets)),
        depeg=np.zeros((n_lanes, n_assets)),
        log_basis=np.zeros((n_lanes, n_instruments)),
    )


@kernel
def synthetic_reset_lane(p, s, b, seed, episode):
    """Start lane ``b``'s market: prices at their initial values, basis drawn stationary."""
    key = rng.step_key(seed, episode, 0)
    for a in range(p.base_price0.shape[0]):
        s.base_price[b, a] = p.base_price0[a]
        s.quote_value[b, a] = 1.0
        s.depeg[b, a] = 0.0
    for i in range(s.log_basis.shape[1]):
        s.log_basis[b, i] = p.basis_sd * rng.normal_at(key, i, rng.P_BASIS)


@kernel
def synthetic_fair_price(p, s, b, i, inst_base, inst_quote):
    """Fair price of instrument ``i`` in its quote units: base value / quote value x basis."""
    return s.base_price[b, inst_base[i]] / s.quote_value[b, inst_quote[i]] * np.exp(s.log_basis[b, i])


@kernel
def synthetic_advance_lane(p, s, b, key):
    """Move lane ``b``'s latent prices one step (bases, quote pegs, basis); ``key`` = ``rng.step_key`` of the step."""
    n_assets = p.base_price0.shape[0]
    for a in range(n_assets):
        if p.base_price0[a] > 0.0:
            z = rng.normal_at(key, a, rng.P_PRICE)
            if p.is_abm:
                s.base_price[b, a] = max(s.base_price[b, a] + p.abm_sigma * z, 1e-9)
            else:
                x = p.log_vol * z - 0.5 * p.log_vol * p.log_vol
                if rng.uniform_at(key, a, rng.P_JUMP) < p.jump_prob:
                    x += p.jump_sigma * rng.normal_at(key, a, rng.P_JUMP_SIZE)
                s.base_price[b, a] *= np.exp(x)
        if p.depeg_keep[a] < 1.0:
            s.depeg[b, a] *= p.depeg_keep[a]
            if rng.uniform_at(key, a, rng.P_DEPEG_START) < p.depeg_start[a]:
                size = p.depeg_size[a] * (0.5 + rng.uniform_at(key, a, rng.P_DEPEG_SIZE))
                s.depeg[b, a] = min(0.95, s.depeg[b, a] + size)
            noise = p.peg_noise[a] * rng.normal_at(key, a, rng.P_PEG_NOISE)
            s.quote_value[b, a] = (1.0 - s.depeg[b, a]) * (1.0 + noise)
    innovation = p.basis_sd * np.sqrt(1.0 - p.basis_keep * p.basis_keep)
    for i in range(s.log_basis.shape[1]):
        s.log_basis[b, i] = p.basis_keep * s.log_basis[b, i] + innovation * rng.normal_at(key, i, rng.P_BASIS)


@kernel(inline=True)
def synthetic_volume_level(p, seed, episode, a):
    """Log of base asset ``a``'s volume level in the lane's episode: ``level_sigma z - level_sigma^2 / 2``.

    ``z`` is keyed ``(seed, episode, step 0, a, VOLUME_LEVEL)``: the same at every
    step of the episode whatever the batch, another in the next episode, one for
    every instrument of the base (a busy asset is busy on every venue). Exactly 0
    when ``volume_level_sigma`` is 0 (nothing drawn). Never nan (``sigma (z -
    sigma / 2)``: finite or -inf for a finite sigma), so the volume stays a number.
    """
    if p.volume_level_sigma == 0.0:
        return 0.0
    z = rng.normal_at(rng.step_key(seed, episode, 0), a, rng.P_VOLUME_LEVEL)
    return p.volume_level_sigma * (z - 0.5 * p.volume_level_sigma)


@kernel
def synthetic_volume(p, i, key, log_level):
    """Volume (lots) of instrument ``i``'s synthetic bar: lognormal around its mean x the episode's level
    (``log_level``, :func:`synthetic_volume_level`), zero with ``zero_volume_prob``.

    ``log_level`` 0 gives the bars of the market before the level bit for bit (``x + 0.0`` is ``x``).
    A volume that is not a number (``inf - inf`` in the exponent: a ``volume_sigma`` near the
    largest float, whose true exponent is ``-inf``) is 0, never the int64 of a nan (negative).
    """
    if rng.uniform_at(key, i, rng.P_VOLUME_ZERO) < p.zero_volume_prob:
        return np.int64(0)
    z = rng.normal_at(key, i, rng.P_VOLUME)
    vol = p.volume_mean_lots[i] * np.exp(p.volume_sigma * z - 0.5 * p.volume_sigma * p.volume_sigma + log_level)
    if not vol >= 0.0:
        return np.int64(0)
    return np.int64(min(vol, MAX_VOLUME_LOTS))


@kernel(inline=True)
def synthetic_sigma_ticks(p, s, b, i, inst_base, fair_open_ticks):
    """Sd over one step of instrument ``i``'s Brownian part, in ticks at its open (x ``range_scale``)."""
    if p.is_abm:
        base = s.base_price[b, inst_base[i]]
        return p.range_scale * p.abm_sigma * fair_open_ticks / base if base > 0.0 else 0.0
    return p.range_scale * p.log_vol * fair_open_ticks


@kernel(inline=True)
def in_range_ticks(cc, i, x):
    """``x`` (float ticks) rounded to the nearest tick and clamped into instrument ``i``'s price range."""
    lo, hi = cc.min_price_ticks[i], cc.max_price_ticks[i]
    t = np.int64(np.round(min(max(x, float(lo)), float(hi))))
    return min(max(t, lo), hi)


@kernel
def close_quotes(cc, bars, b, i):
    v = cc.inst_venue[i]
    s = max(cc.min_spread_ticks[v], np.int64(np.ceil(bars.close_ticks[b, i] * cc.spread_bps[v] * 1e-4)))
    bid = max(bars.close_ticks[b, i] - s // 2, 1)
    bars.bid_ticks[b, i] = bid
    bars.ask_ticks[b, i] = bid + s


@kernel
def start_bar(cc, bars, b, i, price_ticks):
    """The bar an episode starts on: flat at ``price_ticks``, no volume, no impact yet."""
    bars.open_ticks[b, i] = price_ticks
    bars.high_ticks[b, i] = price_ticks
    bars.low_ticks[b, i] = price_ticks
    bars.close_ticks[b, i] = price_ticks
    bars.volume_lots[b, i] = 0
    bars.impact_ticks[b, i] = 0.0
    flat_path(bars, b, i, cc.path_points, price_ticks)
    close_quotes(cc, bars, b, i)
    bars.ref_bid_ticks[b, i] = bars.bid_ticks[b, i]
    bars.ref_ask_ticks[b, i] = bars.ask_ticks[b, i]


@kernel
def synthetic_reset(cc, p, s, lanes, bars, mask):
    """Start the market of every lane in ``mask``: a flat bar at the initial prices."""
    for b in range(mask.shape[0]):
        if not mask[b]:
            continue
        seed, episode = lanes.market_seed[b], lanes.rng_episode[b]
        synthetic_reset_lane(p, s, b, seed, episode)
        for i in range(bars.open_ticks.shape[1]):
            fair = synthetic_fair_price(p, s, b, i, cc.inst_base, cc.inst_quote) / cc.tick_size[i]
            start_bar(cc, bars, b, i, in_range_ticks(cc, i, fair))


@kernel
def synthetic_advance(cc, p, s, lanes, bars):
    """Advance every lane's clock one step and draw its bars; keep the decision quotes."""
    synthetic_advance_lanes(cc, p, s, lanes, bars, 0, bars.open_ticks.shape[0])


@parallel_kernel
def synthetic_advance_parallel(cc, p, s, lanes, bars, n_blocks):
    """:func:`synthetic_advance` over ``n_blocks`` contiguous blocks of lanes in parallel threads.

    Lanes are independent (keyed draws, per-lane state), so the result is the
    serial one bit for bit, whatever the number of threads.
    """
    n = bars.open_ticks.shape[0]
    for block in prange(n_blocks):
        synthetic_advance_lanes(cc, p, s, lanes, bars, block * n // n_blocks, (block + 1) * n // n_blocks)


@kernel
def synthetic_advance_lanes(cc, p, s, lanes, bars, lo, hi):
    """:func:`synthetic_advance` for lanes ``lo <= b < hi``."""
    for b in range(lo, hi):
        if not lanes.active[b]:
            continue
        step = lanes.step[b] + 1
        lanes.step[b] = step
        seed, episode = lanes.market_seed[b], lanes.rng_episode[b]
        n_inst = bars.open_ticks.shape[1]
        for i in range(n_inst):
            bars.ref_bid_ticks[b, i] = bars.bid_ticks[b, i]
            bars.ref_ask_ticks[b, i] = bars.ask_ticks[b, i]
        sigma = bars.path_sigma_ticks  # scratch until the path is drawn: each instrument's sd at its open
        for i in range(n_inst):
            # the open is the last fair price, shifted by the lane's impact so far
            fair_open = synthetic_fair_price(p, s, b, i, cc.inst_base, cc.inst_quote) / cc.tick_size[i]
            bars.open_ticks[b, i] = in_range_ticks(cc, i, fair_open + bars.impact_ticks[b, i])
            sigma[b, i] = synthetic_sigma_ticks(p, s, b, i, cc.inst_base, fair_open)
        key = rng.step_key(seed, episode, step)
        synthetic_advance_lane(p, s, b, key)
        level_base, log_level = -1, 0.0  # the last base's volume level: drawn once for a run of instruments of one base
        for i in range(n_inst):
            fair_close = synthetic_fair_price(p, s, b, i, cc.inst_base, cc.inst_quote) / cc.tick_size[i]
            bars.close_ticks[b, i] = in_range_ticks(cc, i, fair_close + bars.impact_ticks[b, i])
            bridge_from_open_to_close(cc, bars, b, i, key, cc.path_points, sigma[b, i])
            if cc.inst_base[i] != level_base:
                level_base = cc.inst_base[i]
                log_level = synthetic_volume_level(p, seed, episode, level_base)
            bars.volume_lots[b, i] = synthetic_volume(p, i, key, log_level)
            close_quotes(cc, bars, b, i)
