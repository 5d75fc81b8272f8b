"""Frozen specifications: assets, instruments, venues and their broker behaviour.

Everything a user configures is a frozen dataclass validated at construction, with
messages that say what was expected and what was found. Money is exact: an asset
has ``decimals`` (one unit = ``10**decimals`` atoms); an instrument's ``tick_size``
and ``lot_size`` are decimals in quote and base units, and a spec is refused unless
``lot_size`` is a whole number of base atoms and ``tick_size x lot_size`` a whole
number of quote atoms, so every fill's notional is an exact integer of quote atoms.

Every product of price, quantity and atoms is bounded: an instrument has a price
range (``min_price``, ``max_price``, as venues publish it) and ``max_qty_lots``, and
``ExchangeConfig.compile`` refuses a configuration that could overflow int64
(:mod:`orderbook.spec.bounds`). Every duration is finite and at most 2**60 ns.

Fault and fill parameters live per venue (:class:`LatencySpec`, :class:`FaultSpec`
here; :class:`FillSpec`, :class:`BookSpec`, :class:`ImpactSpec` in
:mod:`orderbook.spec.fill_specs`, re-exported); each fault switches off with a zero
(or ``FaultSpec.none()``). The checks every spec uses are :mod:`orderbook.spec.checks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from decimal import Decimal

from orderbook.spec.bounds import check_duration_ms
from orderbook.spec.checks import check_nonnegative, check_probability, is_real, require, to_decimal
from orderbook.spec.fill_specs import MAX_SPREAD_BPS, BookSpec, FillSpec, ImpactSpec

__all__ = ["Asset", "BookSpec", "FaultSpec", "FillSpec", "ImpactSpec", "Instrument", "LatencySpec", "Venue", "to_decimal"]

LATENCY_KINDS = ("constant", "uniform", "lognormal")
MAX_OUTAGE_MEAN_STEPS = 1e12  # outage lengths stay far inside int64
MAX_VOL_SLOPE = 1e6  # latency's volatility multiplier stays a finite float (it is capped anyway)
MAX_VOL_CAP = 1e6


@dataclass(frozen=True)
class Asset:
    """A currency or coin; one unit is ``10**decimals`` atoms."""

    name: str
    decimals: int

    def __post_init__(self) -> None:
        require(bool(self.name) and isinstance(self.name, str), f"Asset.name must be a non-empty str, got {self.name!r}")
        require(
            isinstance(self.decimals, int) and 0 <= self.decimals <= 12,
            f"Asset {self.name}: decimals must be an int in [0, 12], got {self.decimals!r}",
        )

    @property
    def atoms_per_unit(self) -> int:
        return 10**self.decimals


@dataclass(frozen=True)
class Instrument:
    """A tradable pair ``base/quote`` on one venue, with its trading rules and fees.

    Prices are in ``[min_price, max_price]`` (quote units; ``min_price`` defaults to
    one tick): a limit outside is refused (``PRICE_OUT_OF_RANGE``) and market prices
    are kept inside (:mod:`orderbook.spec.bounds`). ``max_qty_lots`` caps one order.
    """

    venue: str
    base: str
    quote: str
    tick_size: Decimal | str | float = Decimal("0.01")
    lot_size: Decimal | str | float = Decimal("0.0001")
    min_notional: Decimal | str | float = Decimal("10")
    maker_fee_bps: float = 1.0
    taker_fee_bps: float = 5.0
    max_qty_lots: int = 1_000_000
    min_price: Decimal | str | float | None = None
    max_price: Decimal | str | float = Decimal("1000000")

    def __post_init__(self) -> None:
        name = f"Instrument {self.venue}:{self.base}/{self.quote}"
        require(self.base != self.quote, f"{name}: base and quote must differ, got {self.base!r} twice")
        if self.min_price is None:
            object.__setattr__(self, "min_price", self.tick_size)
        for attr in ("tick_size", "lot_size", "min_notional", "min_price", "max_price"):
            object.__setattr__(self, attr, to_decimal(getattr(self, attr), f"{name}.{attr}"))
        require(self.tick_size > 0, f"{name}: tick_size must be > 0, got {self.tick_size}")
        require(self.lot_size > 0, f"{name}: lot_size must be > 0, got {self.lot_size}")
        require(self.min_notional >= 0, f"{name}: min_notional must be >= 0, got {self.min_notional}")
        require(self.min_price > 0, f"{name}: min_price must be > 0, got {self.min_price}")
        require(
            self.max_price >= self.min_price and self.max_price >= self.tick_size,
            f"{name}: max_price must be >= min_price ({self.min_price}) and >= tick_size ({self.tick_size}), got {self.max_price}",
        )
        for attr in ("maker_fee_bps", "taker_fee_bps"):
            bps = getattr(self, attr)
            require(
                isinstance(bps, (int, float)) and math.isfinite(bps) and 0 <= bps < 10_000,
                f"{name}: {attr} must be in [0, 10000), got {bps!r}",
            )
            e8 = bps * 10_000
            require(
                abs(e8 - round(e8)) < 1e-6,
                f"{name}: {attr} must be a whole number of 1e-4 bps, got {bps!r}",
            )
        require(
            isinstance(self.max_qty_lots, int) and self.max_qty_lots >= 1,
            f"{name}: max_qty_lots must be an int >= 1, got {self.max_qty_lots!r}",
        )

    @property
    def symbol(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)


@dataclass(frozen=True)
class LatencySpec:
    """Ack latency in market time, drawn per order (and per cancel).

    ``constant``: ``constant_ms``. ``uniform``: in ``[low_ms, high_ms]``.
    ``lognormal``: median ``median_ms`` and log-sd ``sigma``; with probability
    ``tail_prob`` the draw is multiplied by ``tail_multiplier`` (a heavy tail of
    stalls, the ones that lose races and hit the ack timeout). Durations are finite
    and at most 2**60 ns; a draw above that saturates there. The venue's
    :class:`FaultSpec` may scale every draw with the bar's realised range
    (``latency_vol_slope``, ``latency_vol_ref_bps``, ``latency_vol_cap``: off by default).
    """

    kind: str = "lognormal"
    constant_ms: float = 50.0
    low_ms: float = 10.0
    high_ms: float = 100.0
    median_ms: float = 50.0
    sigma: float = 0.6
    tail_prob: float = 0.01
    tail_multiplier: float = 200.0

    def __post_init__(self) -> None:
        require(self.kind in LATENCY_KINDS, f"LatencySpec.kind must be one of {LATENCY_KINDS}, got {self.kind!r}")
        for f in ("constant_ms", "low_ms", "high_ms", "median_ms"):
            check_duration_ms(f"LatencySpec.{f}", getattr(self, f), positive=False)
        for f in ("sigma", "tail_multiplier"):
            check_nonnegative("LatencySpec", f, getattr(self, f))
        require(
            self.low_ms <= self.high_ms,
            f"LatencySpec: low_ms must be <= high_ms, got {self.low_ms} > {self.high_ms}",
        )
        check_probability("LatencySpec", "tail_prob", self.tail_prob)

    @classmethod
    def zero(cls) -> LatencySpec:
        return cls(kind="constant", constant_ms=0.0)


@dataclass(frozen=True)
class FaultSpec:
    """Broker and venue faults; every one is off at 0.

    - ``broker_error_prob``: a sent order is rejected (BROKER_ERROR) when its ack comes.
    - ``lost_ack_prob``: the ack never comes; the order expires after ``ack_timeout_ms``.
    - ``outage_start_prob`` per step and ``outage_mean_steps``: the venue refuses all
      submissions and cancels for a geometric stretch of steps.
    - ``rate_limit_per_step``: new orders per step per venue per lane (0 = unlimited).
    - ``unsolicited_cancel_prob``: a resting order is cancelled by the venue, per step.
    - ``cancel_race_prob``: the venue's cancel queue lags: a cancel is processed only
      at the end of the bar it lands in, so the bar's path can fill the order first
      (races themselves are decided by time on the path, not by this fault).

    Faults tied to the market (off unless set; on in :meth:`high`):

    - ``latency_vol_slope``, ``latency_vol_ref_bps``, ``latency_vol_cap``: every
      latency drawn for a message (order or cancel) sent during a bar is multiplied by
      ``min(1 + latency_vol_slope x max(r / latency_vol_ref_bps - 1, 0), latency_vol_cap)``,
      where ``r = (high - low) / open`` of that bar, in bps, for the message's
      instrument: the bar's realised range, known once the market advanced (synthetic
      and replayed bars alike). ``latency_vol_ref_bps`` is the venue's typical bar
      range: a bar that calm or calmer keeps the :class:`LatencySpec` draw as it is, a
      bar twice as wide multiplies it by ``1 + latency_vol_slope``. Slope 0 is off.
    - ``error_burst_start_prob``, ``error_burst_mean_steps``, ``burst_error_prob``:
      broker errors come in bursts. Each step, a venue not in a burst enters one with
      probability ``error_burst_start_prob``; a burst ends after each step with
      probability ``1 / error_burst_mean_steps`` (geometric lengths of that mean).
      While in a burst an ack's broker error comes with ``burst_error_prob`` instead
      of ``broker_error_prob``. In the long run a share
      ``pi = p m / (1 + p m)`` of steps is in a burst (``p`` the start probability,
      ``m`` the mean length), so the error rate is
      ``broker_error_prob + (burst_error_prob - broker_error_prob) x pi``, and the
      burst indicator's lag-1 autocorrelation is ``1 - p - 1 / m``. A lane starts an
      episode outside a burst. Start probability 0 is off.
    """

    broker_error_prob: float = 0.02
    lost_ack_prob: float = 0.005
    ack_timeout_ms: float = 5_000.0
    outage_start_prob: float = 0.002
    outage_mean_steps: float = 5.0
    rate_limit_per_step: int = 8
    unsolicited_cancel_prob: float = 0.002
    cancel_race_prob: float = 0.1
    latency_vol_slope: float = 0.0
    latency_vol_ref_bps: float = 20.0
    latency_vol_cap: float = 10.0
    error_burst_start_prob: float = 0.0
    error_burst_mean_steps: float = 5.0
    burst_error_prob: float = 0.0

    def __post_init__(self) -> None:
        probabilities = ("broker_error_prob", "lost_ack_prob", "outage_start_prob", "unsolicited_cancel_prob", "cancel_race_prob",
                         "error_burst_start_prob", "burst_error_prob")
        for f in probabilities:
            check_probability("FaultSpec", f, getattr(self, f))
        check_duration_ms("FaultSpec.ack_timeout_ms", self.ack_timeout_ms, positive=True)
        for f in ("outage_mean_steps", "error_burst_mean_steps"):
            x = getattr(self, f)
            require(
                is_real(x) and math.isfinite(x) and 1 <= x <= MAX_OUTAGE_MEAN_STEPS,
                f"FaultSpec.{f} must be a finite number of steps in [1, {MAX_OUTAGE_MEAN_STEPS:.0e}], got {x!r}",
            )
        require(
            isinstance(self.rate_limit_per_step, int) and self.rate_limit_per_step >= 0,
            f"FaultSpec.rate_limit_per_step must be an int >= 0 (0 = unlimited), got {self.rate_limit_per_step!r}",
        )
        require(
            is_real(self.latency_vol_slope) and math.isfinite(self.latency_vol_slope) and 0 <= self.latency_vol_slope <= MAX_VOL_SLOPE,
            f"FaultSpec.latency_vol_slope must be a finite number in [0, {MAX_VOL_SLOPE:.0e}] (0 = off), got {self.latency_vol_slope!r}",
        )
        require(
            is_real(self.latency_vol_ref_bps) and math.isfinite(self.latency_vol_ref_bps) and 0 < self.latency_vol_ref_bps <= MAX_SPREAD_BPS,
            f"FaultSpec.latency_vol_ref_bps must be a typical bar range in bps in (0, {MAX_SPREAD_BPS:.0f}], got {self.latency_vol_ref_bps!r}",
        )
        require(
            is_real(self.latency_vol_cap) and math.isfinite(self.latency_vol_cap) and 1 <= self.latency_vol_cap <= MAX_VOL_CAP,
            f"FaultSpec.latency_vol_cap must be a finite multiplier in [1, {MAX_VOL_CAP:.0e}], got {self.latency_vol_cap!r}",
        )

    @classmethod
    def none(cls) -> FaultSpec:
        """Every fault off (the ack timeout, 1e12 ms, never comes in an episode; nothing tied to the market)."""
        return cls(0.0, 0.0, 1e12, 0.0, 1.0, 0, 0.0, 0.0)

    @classmethod
    def high(cls) -> FaultSpec:
        """Every fault turned up, for fuzzing: latency x3 on a bar twice the typical range (capped at x20),
        bursts of 90% broker errors entered 5% of steps, 4 steps long on average."""
        return cls(0.3, 0.1, 2_000.0, 0.1, 3.0, 2, 0.2, 0.5, latency_vol_slope=2.0, latency_vol_ref_bps=10.0, latency_vol_cap=20.0,
                   error_burst_start_prob=0.05, error_burst_mean_steps=4.0, burst_error_prob=0.9)


@dataclass(frozen=True)
class Venue:
    """An exchange: its latency, faults, fill rules, book shape and default time to live.

    ``default_ttl_ms`` is the order system's rule that drops lingering orders: a GTD
    order without its own time to live expires after it. GTC orders never expire by time.
    """

    name: str
    latency: LatencySpec = field(default_factory=LatencySpec)
    faults: FaultSpec = field(default_factory=FaultSpec)
    fills: FillSpec = field(default_factory=FillSpec)
    book: BookSpec = field(default_factory=BookSpec)
    default_ttl_ms: float = 300_000.0

    def __post_init__(self) -> None:
        require(bool(self.name) and isinstance(self.name, str), f"Venue.name must be a non-empty str, got {self.name!r}")
        for f, cls in (("latency", LatencySpec), ("faults", FaultSpec), ("fills", FillSpec), ("book", BookSpec)):
            require(isinstance(getattr(self, f), cls), f"Venue {self.name}: {f} must be a {cls.__name__}, got {type(getattr(self, f)).__name__}")
        check_duration_ms(f"Venue {self.name}: default_ttl_ms", self.default_ttl_ms, positive=True)

    def replace(self, **changes: object) -> Venue:
        """A copy with some fields changed (``dataclasses.replace``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Venue(**values)  # type: ignore[arg-type]
