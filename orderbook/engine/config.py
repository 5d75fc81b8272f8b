"""The exchange configuration: frozen, validated once, compiled to arrays for kernels.

:class:`ExchangeConfig` names assets, venues, instruments, the numeraire, initial
balances, the step length, the order table size and the market source.
:meth:`ExchangeConfig.compile` checks everything that involves more than one spec
(an instrument on an unknown venue, a tick x lot that is not a whole number of
quote atoms, an asset that cannot be valued in the numeraire, a price range and
maximum quantity whose products could overflow int64: :mod:`orderbook.spec.bounds`) and returns
:class:`Compiled`, a tuple of plain arrays the kernels read and never write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np

from orderbook.market.path import DEFAULT_PATH_POINTS, MAX_PATH_POINTS, MIN_PATH_POINTS
from orderbook.market.synthetic import SyntheticMarket
from orderbook.spec import bounds
from orderbook.spec.bounds import NS_PER_MS
from orderbook.spec.specs import Asset, FaultSpec, Instrument, Venue, to_decimal

LATENCY_KIND_CODE = {"constant": 0, "uniform": 1, "lognormal": 2}
IMPACT_CODE = {"none": 0, "linear": 1, "sqrt": 2}
SELF_TRADE_CODE = {"none": 0, "expire_taker": 1, "expire_maker": 2, "expire_both": 3}  # orderbook.engine.stp


@dataclass(frozen=True)
class ExchangeConfig:
    """Everything fixed about a simulated account and its venues.

    ``initial_balances`` maps ``(venue, asset)`` to an amount in units (exact
    decimals). ``slots`` is K, the live order table's width per lane;
    ``max_new_orders`` is how many new orders one step may carry per lane.
    ``market`` is a :class:`SyntheticMarket` or a :class:`~orderbook.market.replay.ReplayMarket`.
    ``path_points`` is the resolution of the path inside every bar
    (:mod:`orderbook.market.path`): the bar is ``path_points`` intervals of
    ``step / path_points``; resting orders fill at these points and arrivals are
    refined 64x finer. The market's advance draws ``path_points`` numbers per lane
    and instrument, so its cost grows linearly with it (16: 3.75 s at one-minute bars).
    """

    assets: tuple[Asset, ...]
    venues: tuple[Venue, ...]
    instruments: tuple[Instrument, ...]
    numeraire: str = "USD"
    initial_balances: dict[tuple[str, str], Any] = field(default_factory=dict)
    step_ms: int = 60_000
    slots: int = 64
    max_new_orders: int = 4
    market: Any = field(default_factory=SyntheticMarket)
    record_market: bool = True
    path_points: int = DEFAULT_PATH_POINTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", tuple(self.assets))
        object.__setattr__(self, "venues", tuple(self.venues))
        object.__setattr__(self, "instruments", tuple(self.instruments))
        if not (isinstance(self.step_ms, int) and 0 < self.step_ms * NS_PER_MS <= bounds.MAX_DURATION_NS):
            raise ValueError(f"ExchangeConfig.step_ms must be an int in [1, {bounds.MAX_DURATION_NS // NS_PER_MS}] (2**60 ns), got {self.step_ms!r}")
        if isinstance(self.path_points, bool) or not (isinstance(self.path_points, int) and MIN_PATH_POINTS <= self.path_points <= MAX_PATH_POINTS):
            raise ValueError(f"ExchangeConfig.path_points must be an int in [{MIN_PATH_POINTS}, {MAX_PATH_POINTS}], got {self.path_points!r}")
        if not (isinstance(self.slots, int) and 1 <= self.slots <= 4096):
            raise ValueError(f"ExchangeConfig.slots must be an int in [1, 4096], got {self.slots!r}")
        if not (isinstance(self.max_new_orders, int) and 1 <= self.max_new_orders <= 256):
            raise ValueError(f"ExchangeConfig.max_new_orders must be an int in [1, 256], got {self.max_new_orders!r}")
        for name, items, cls in (("assets", self.assets, Asset), ("venues", self.venues, Venue), ("instruments", self.instruments, Instrument)):
            if not items:
                raise ValueError(f"ExchangeConfig.{name} must not be empty")
            for item in items:
                if not isinstance(item, cls):
                    raise ValueError(f"ExchangeConfig.{name} must hold {cls.__name__} objects, got {type(item).__name__}")

    @property
    def step_ns(self) -> int:
        return self.step_ms * NS_PER_MS

    def asset_index(self, name: str) -> int:
        names = [a.name for a in self.assets]
        if name not in names:
            raise KeyError(f"unknown asset {name!r}; known assets: {names}")
        return names.index(name)

    def venue_index(self, name: str) -> int:
        names = [v.name for v in self.venues]
        if name not in names:
            raise KeyError(f"unknown venue {name!r}; known venues: {names}")
        return names.index(name)

    def instrument_index(self, venue: str, symbol: str) -> int:
        keys = [i.key for i in self.instruments]
        if (venue, symbol) not in keys:
            raise KeyError(f"unknown instrument {venue}:{symbol}; known: {[f'{v}:{s}' for v, s in keys]}")
        return keys.index((venue, symbol))

    def compile(self) -> Compiled:
        return compile_config(self)


class Compiled(NamedTuple):
    """Arrays of an :class:`ExchangeConfig`; kernels only read them."""

    step_ns: int
    path_points: int  # intervals of the path inside a bar (orderbook.market.path)
    # instruments (I,)
    inst_venue: np.ndarray  # int64 venue index
    inst_base: np.ndarray  # int64 asset index
    inst_quote: np.ndarray  # int64 asset index
    quote_atoms_per_tick_lot: np.ndarray  # int64: notional of 1 lot at 1 tick, quote atoms
    base_atoms_per_lot: np.ndarray  # int64
    min_notional_atoms: np.ndarray  # int64 quote atoms
    maker_fee_e8: np.ndarray  # int64 fee rate per 1e8 of notional
    taker_fee_e8: np.ndarray  # int64
    max_qty_lots: np.ndarray  # int64
    min_price_ticks: np.ndarray  # int64 lowest price of the instrument's range (>= 1)
    max_price_ticks: np.ndarray  # int64 highest price; every product is bounded by it (orderbook.spec.bounds)
    tick_size: np.ndarray  # float64 quote units per tick (edges only)
    lot_size: np.ndarray  # float64 base units per lot (edges only)
    # venues (V,)
    latency_kind: np.ndarray  # int64 LATENCY_KIND_CODE
    latency_params_ns: np.ndarray  # (V, 5) float64: constant, low, high, median, tail multiplier (unitless)
    latency_sigma: np.ndarray  # float64
    latency_tail_prob: np.ndarray  # float64
    broker_error_prob: np.ndarray
    lost_ack_prob: np.ndarray
    ack_timeout_ns: np.ndarray  # int64 <= MAX_DURATION_NS
    outage_start_prob: np.ndarray
    outage_end_prob: np.ndarray  # 1 / mean outage steps
    rate_limit_per_step: np.ndarray  # int64, 0 = unlimited
    unsolicited_cancel_prob: np.ndarray
    cancel_race_prob: np.ndarray
    latency_vol_slope: np.ndarray  # float64, 0 = latency does not scale with the bar's range
    latency_vol_ref_bps: np.ndarray  # float64 > 0: the venue's typical bar range (high - low) / open
    latency_vol_cap: np.ndarray  # float64 >= 1: the largest latency multiplier
    error_burst_start_prob: np.ndarray  # per step, outside a burst
    error_burst_end_prob: np.ndarray  # per step, inside a burst: 1 / mean burst steps
    burst_error_prob: np.ndarray  # broker error probability inside a burst
    participation: np.ndarray
    queue_fraction: np.ndarray
    touch_fill_prob: np.ndarray
    fill_prob: np.ndarray
    self_trade_mode: np.ndarray  # int64 SELF_TRADE_CODE
    queue_cancel_rate: np.ndarray  # share of the queue ahead cancelled per bar
    resilience_half_life_ns: np.ndarray  # float64 half-life of taken depth (inf: none inside a bar)
    collar_bps: np.ndarray
    band_bps: np.ndarray
    impact_model: np.ndarray  # int64 IMPACT_CODE
    impact_gamma_ticks_per_lot: np.ndarray  # per instrument (I,) float64
    impact_eta_ticks_per_lot: np.ndarray  # (I,) float64: shift per lot traded in one step
    impact_epsilon_ticks: np.ndarray  # (I,) float64
    impact_sqrt_coef: np.ndarray  # (V,) float64
    spread_bps: np.ndarray
    min_spread_ticks: np.ndarray  # int64
    level_step_bps: np.ndarray
    depth_fractions: np.ndarray  # (V, L) float64, zero-padded
    default_ttl_ns: np.ndarray  # int64 <= MAX_DURATION_NS: a GTD order without its own ttl
    # accounts
    initial_free_atoms: np.ndarray  # (V, A) int64
    balance_bound_atoms: np.ndarray  # (V, A) int64 no balance exceeds this (orderbook.spec.bounds, audited)
    atoms_per_unit: np.ndarray  # (A,) float64
    valuation_inst: np.ndarray  # (V, A, 2) int64 instrument of each factor, -1 = none
    valuation_power: np.ndarray  # (V, A, 2) int64 exponent of each factor (+1, -1, 0)


def _exact_int(value: Decimal, what: str) -> int:
    if value != value.to_integral_value():
        raise ValueError(f"{what}, got {value.normalize()}")
    return int(value)


def _compile_instruments(cfg: ExchangeConfig) -> dict[str, np.ndarray]:
    assets = {a.name: a for a in cfg.assets}
    venues = [v.name for v in cfg.venues]
    seen: set[tuple[str, str]] = set()
    cols: dict[str, list] = {k: [] for k in ("inst_venue", "inst_base", "inst_quote", "quote_atoms_per_tick_lot", "base_atoms_per_lot", "min_notional_atoms", "maker_fee_e8", "taker_fee_e8", "max_qty_lots", "min_price_ticks", "max_price_ticks", "tick_size", "lot_size")}
    for inst in cfg.instruments:
        name = f"instrument {inst.venue}:{inst.symbol}"
        if inst.key in seen:
            raise ValueError(f"{name} is listed twice")
        seen.add(inst.key)
        if inst.venue not in venues:
            raise ValueError(f"{name}: unknown venue {inst.venue!r}; known venues: {venues}")
        for role in ("base", "quote"):
            if getattr(inst, role) not in assets:
                raise ValueError(f"{name}: unknown {role} asset {getattr(inst, role)!r}; known assets: {list(assets)}")
        base, quote = assets[inst.base], assets[inst.quote]
        cols["base_atoms_per_lot"].append(
            _exact_int(inst.lot_size * base.atoms_per_unit, f"{name}: lot_size must be a whole number of {base.name} atoms (1e-{base.decimals})")
        )
        per_tick_lot = inst.tick_size * inst.lot_size * quote.atoms_per_unit
        cols["quote_atoms_per_tick_lot"].append(
            _exact_int(per_tick_lot, f"{name}: tick_size x lot_size must be a whole number of {quote.name} atoms (1e-{quote.decimals})")
        )
        cols["min_notional_atoms"].append(int((inst.min_notional * quote.atoms_per_unit).to_integral_value(rounding="ROUND_CEILING")))
        cols["inst_venue"].append(venues.index(inst.venue))
        cols["inst_base"].append(list(assets).index(inst.base))
        cols["inst_quote"].append(list(assets).index(inst.quote))
        cols["maker_fee_e8"].append(round(inst.maker_fee_bps * 10_000))
        cols["taker_fee_e8"].append(round(inst.taker_fee_bps * 10_000))
        cols["max_qty_lots"].append(inst.max_qty_lots)
        lo, hi = bounds.price_range_ticks(name, inst.tick_size, inst.min_price, inst.max_price)
        cols["min_price_ticks"].append(lo)
        cols["max_price_ticks"].append(hi)
        n_max = bounds.max_notional_atoms(name, hi, inst.max_qty_lots, cols["quote_atoms_per_tick_lot"][-1])
        if cols["min_notional_atoms"][-1] > n_max:
            raise ValueError(f"{name}: min_notional {inst.min_notional} is above the largest notional max_price x max_qty_lots = {n_max} {quote.name} atoms; expected at most that")
        cols["tick_size"].append(float(inst.tick_size))
        cols["lot_size"].append(float(inst.lot_size))
    return {k: np.asarray(v, dtype=np.float64 if k in ("tick_size", "lot_size") else np.int64) for k, v in cols.items()}


def _compile_venues(cfg: ExchangeConfig) -> dict[str, np.ndarray]:
    vs = cfg.venues
    if len({v.name for v in vs}) != len(vs):
        raise ValueError(f"venue names must be unique, got {[v.name for v in vs]}")
    n_levels = max(len(v.book.depth_fractions) for v in vs)
    depth = np.zeros((len(vs), n_levels))
    for j, v in enumerate(vs):
        depth[j, : len(v.book.depth_fractions)] = v.book.depth_fractions
    ms = float(NS_PER_MS)
    f64 = lambda xs: np.asarray(xs, dtype=np.float64)  # noqa: E731
    i64 = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
    return dict(
        latency_kind=i64([LATENCY_KIND_CODE[v.latency.kind] for v in vs]),
        latency_params_ns=f64([[v.latency.constant_ms * ms, v.latency.low_ms * ms, v.latency.high_ms * ms, v.latency.median_ms * ms, v.latency.tail_multiplier] for v in vs]),
        latency_sigma=f64([v.latency.sigma for v in vs]),
        latency_tail_prob=f64([v.latency.tail_prob for v in vs]),
        broker_error_prob=f64([v.faults.broker_error_prob for v in vs]),
        lost_ack_prob=f64([v.faults.lost_ack_prob for v in vs]),
        ack_timeout_ns=i64([min(int(v.faults.ack_timeout_ms * ms), bounds.MAX_DURATION_NS) for v in vs]),  # min: float rounding at the bound
        outage_start_prob=f64([v.faults.outage_start_prob for v in vs]),
        outage_end_prob=f64([1.0 / v.faults.outage_mean_steps for v in vs]),
        rate_limit_per_step=i64([v.faults.rate_limit_per_step for v in vs]),
        unsolicited_cancel_prob=f64([v.faults.unsolicited_cancel_prob for v in vs]),
        cancel_race_prob=f64([v.faults.cancel_race_prob for v in vs]),
        latency_vol_slope=f64([v.faults.latency_vol_slope for v in vs]),
        latency_vol_ref_bps=f64([v.faults.latency_vol_ref_bps for v in vs]),
        latency_vol_cap=f64([v.faults.latency_vol_cap for v in vs]),
        error_burst_start_prob=f64([v.faults.error_burst_start_prob for v in vs]),
        error_burst_end_prob=f64([1.0 / v.faults.error_burst_mean_steps for v in vs]),
        burst_error_prob=f64([v.faults.burst_error_prob for v in vs]),
        participation=f64([v.fills.participation for v in vs]),
        queue_fraction=f64([v.fills.queue_fraction for v in vs]),
        touch_fill_prob=f64([v.fills.touch_fill_prob for v in vs]),
        fill_prob=f64([v.fills.fill_prob for v in vs]),
        self_trade_mode=i64([SELF_TRADE_CODE[v.fills.self_trade] for v in vs]),
        queue_cancel_rate=f64([v.fills.queue_cancel_rate for v in vs]),
        resilience_half_life_ns=f64([v.fills.resilience_half_life_s * 1e9 for v in vs]),
        collar_bps=f64([v.fills.market_collar_bps for v in vs]),
        band_bps=f64([v.fills.price_band_bps for v in vs]),
        impact_model=i64([IMPACT_CODE[v.fills.impact.model] for v in vs]),
        impact_sqrt_coef=f64([v.fills.impact.sqrt_coef for v in vs]),
        spread_bps=f64([v.book.spread_bps for v in vs]),
        min_spread_ticks=i64([v.book.min_spread_ticks for v in vs]),
        level_step_bps=f64([v.book.level_step_bps for v in vs]),
        depth_fractions=depth,
        default_ttl_ns=i64([min(int(v.default_ttl_ms * ms), bounds.MAX_DURATION_NS) for v in vs]),
    )


def _impact_per_instrument(cfg: ExchangeConfig) -> dict[str, np.ndarray]:
    """Impact coefficients in ticks per lot (per step for eta), per instrument."""
    step_s = cfg.step_ms / 1000.0
    venues = {v.name: v for v in cfg.venues}
    gamma, eta, eps = [], [], []
    for inst in cfg.instruments:
        imp = venues[inst.venue].fills.impact
        lots_per_unit = 1.0 / float(inst.lot_size)
        ticks_per_quote = 1.0 / float(inst.tick_size)
        on = imp.model == "linear"
        gamma.append(imp.gamma * ticks_per_quote / lots_per_unit if on else 0.0)
        eta.append(imp.eta / step_s * ticks_per_quote / lots_per_unit if on else 0.0)
        eps.append(imp.epsilon * ticks_per_quote if on else 0.0)
    f64 = lambda xs: np.asarray(xs, dtype=np.float64)  # noqa: E731
    return dict(impact_gamma_ticks_per_lot=f64(gamma), impact_eta_ticks_per_lot=f64(eta), impact_epsilon_ticks=f64(eps))


def _valuation_plan(cfg: ExchangeConfig) -> tuple[np.ndarray, np.ndarray]:
    """For each (venue, asset), at most two instruments whose mid prices, raised to
    +1 or -1 and multiplied, value one unit of the asset in the numeraire."""
    names = [a.name for a in cfg.assets]
    num = cfg.numeraire
    n_v, n_a = len(cfg.venues), len(names)
    inst_of = {(i.venue, i.base, i.quote): k for k, i in enumerate(cfg.instruments)}
    plan_inst = np.full((n_v, n_a, 2), -1, dtype=np.int64)
    plan_pow = np.zeros((n_v, n_a, 2), dtype=np.int64)

    def path(venue: str, asset: str) -> list[tuple[int, int]] | None:
        if (venue, asset, num) in inst_of:
            return [(inst_of[(venue, asset, num)], 1)]
        if (venue, num, asset) in inst_of:
            return [(inst_of[(venue, num, asset)], -1)]
        for (v, b, q), k in inst_of.items():
            if v == venue and q == asset and (venue, b, num) in inst_of:
                return [(inst_of[(venue, b, num)], 1), (k, -1)]  # quote valued through a shared base
            if v == venue and b == asset and (venue, q, num) in inst_of:
                return [(k, 1), (inst_of[(venue, q, num)], 1)]
        return None

    used = {(i.venue, a) for i in cfg.instruments for a in (i.base, i.quote)} | set(cfg.initial_balances)
    for j, venue in enumerate(cfg.venues):
        for a, asset in enumerate(names):
            if asset == num:
                continue
            found = path(venue.name, asset)
            for other in cfg.venues:
                if found is None:
                    found = path(other.name, asset)
            if found is None:
                if (venue.name, asset) in used:
                    raise ValueError(
                        f"cannot value {asset} on {venue.name} in numeraire {num}: no instrument {asset}/{num}, "
                        f"{num}/{asset}, or pair through a shared asset on any venue"
                    )
                continue
            for t, (k, p) in enumerate(found):
                plan_inst[j, a, t], plan_pow[j, a, t] = k, p
    return plan_inst, plan_pow


def compile_config(cfg: ExchangeConfig) -> Compiled:
    """Validate cross-references and return the arrays of ``cfg``."""
    names = [a.name for a in cfg.assets]
    if len(set(names)) != len(names):
        raise ValueError(f"asset names must be unique, got {names}")
    if cfg.numeraire not in names:
        raise ValueError(f"numeraire {cfg.numeraire!r} is not an asset; known assets: {names}")
    inst = _compile_instruments(cfg)
    ven = _compile_venues(cfg)
    free = np.zeros((len(cfg.venues), len(names)), dtype=np.int64)
    for key, amount in cfg.initial_balances.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"initial_balances keys must be (venue, asset) pairs, got {key!r}")
        venue, asset = key
        v, a = cfg.venue_index(venue), cfg.asset_index(asset)
        atoms = to_decimal(amount, f"initial balance {venue}:{asset}") * cfg.assets[a].atoms_per_unit
        if atoms < 0:
            raise ValueError(f"initial balance {venue}:{asset} must be >= 0, got {amount}")
        if atoms > bounds.BALANCE_CAP_ATOMS:
            raise ValueError(f"initial balance {venue}:{asset} must be at most 2**62 atoms for int64 accounting, got {amount} = {atoms} atoms")
        free[v, a] = _exact_int(atoms, f"initial balance {venue}:{asset} must be a whole number of atoms (1e-{cfg.assets[a].decimals})")
    plan_inst, plan_pow = _valuation_plan(cfg)
    balance_bound = bounds.check_money_bounds(
        [f"instrument {i.venue}:{i.symbol}" for i in cfg.instruments],
        inst["inst_venue"], inst["inst_base"], inst["inst_quote"],
        [int(p) * int(q) * int(x) for p, q, x in zip(inst["max_price_ticks"], inst["max_qty_lots"], inst["quote_atoms_per_tick_lot"])],
        [int(q) * int(u) for q, u in zip(inst["max_qty_lots"], inst["base_atoms_per_lot"])],
        cfg.slots, free.shape,
    )
    return Compiled(
        step_ns=cfg.step_ns,
        path_points=cfg.path_points,
        **inst,
        **ven,
        **_impact_per_instrument(cfg),
        initial_free_atoms=free,
        balance_bound_atoms=balance_bound,
        atoms_per_unit=np.asarray([a.atoms_per_unit for a in cfg.assets], dtype=np.float64),
        valuation_inst=plan_inst,
        valuation_power=plan_pow,
    )


def default_config(
    venues: tuple[str, ...] = ("alpha", "beta"),
    quotes: tuple[str, ...] = ("USD", "USDT", "USDC"),
    faults: FaultSpec | None = None,
    **overrides: Any,
) -> ExchangeConfig:
    """The default account: BTC against each quote on each venue, 1-minute steps,
    $100k of USD and 1 BTC on each venue, USDT/USDC 50k each, faults on."""
    assets = (Asset("BTC", 8),) + tuple(Asset(q, 6) for q in quotes)
    vs = tuple(Venue(name, faults=faults if faults is not None else FaultSpec()) for name in venues)
    insts = tuple(Instrument(v, "BTC", q) for v in venues for q in quotes)
    balances: dict[tuple[str, str], Any] = {}
    for v in venues:
        balances[(v, "BTC")] = "1"
        for q in quotes:
            balances[(v, q)] = "100000" if q == "USD" else "50000"
    kwargs: dict[str, Any] = dict(assets=assets, venues=vs, instruments=insts, numeraire="USD", initial_balances=balances)
    kwargs.update(overrides)
    return ExchangeConfig(**kwargs)
