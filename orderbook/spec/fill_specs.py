"""How orders meet the market at a venue: the book's shape, the lane's own price impact, the fill rules.

Frozen, validated at construction like every spec (:mod:`orderbook.spec.specs`
re-exports them): :class:`BookSpec` (spread and displayed depth around the bar's
price), :class:`ImpactSpec` (Almgren-Chriss or square-root impact of the lane's own
trading) and :class:`FillSpec` (queues, participation, protection band, self-trade
prevention), each a field of :class:`orderbook.spec.specs.Venue`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from orderbook.spec.checks import check_nonnegative, check_probability, require

MAX_SPREAD_BPS = 10_000.0  # a spread or level step of 100% of the price at most
MAX_MIN_SPREAD_TICKS = 2**40
MAX_DEPTH_FRACTION = 100.0  # the book's depth (sum of fractions x bar volume <= 2**53 lots) stays far inside int64
IMPACT_MODELS = ("none", "linear", "sqrt")

# Self-trade prevention, as venues offer it (orderbook.engine.stp): which side of a would-be self-trade is cancelled.
SELF_TRADE_MODES = ("expire_taker", "expire_maker", "expire_both", "none")


@dataclass(frozen=True)
class ImpactSpec:
    """Price impact of the lane's own trading, in quote units per base unit.

    ``linear`` is Almgren-Chriss: permanent ``gamma`` per unit traded shifts the
    venue price; temporary ``eta`` per unit of trading rate (units per second)
    moves the fill price of the step's market flow; ``epsilon`` is a fixed cost per
    unit. ``sqrt``: temporary shift ``sqrt_coef * sqrt(q / bar_volume)`` times price.
    Impact prices round to the tick against the trader.
    """

    model: str = "none"
    gamma: float = 0.0
    eta: float = 0.0
    epsilon: float = 0.0
    sqrt_coef: float = 0.0

    def __post_init__(self) -> None:
        require(self.model in IMPACT_MODELS, f"ImpactSpec.model must be one of {IMPACT_MODELS}, got {self.model!r}")
        for f in ("gamma", "eta", "epsilon", "sqrt_coef"):
            check_nonnegative("ImpactSpec", f, getattr(self, f))


@dataclass(frozen=True)
class BookSpec:
    """Shape of the book around a bar: the same model for synthetic and replayed bars.

    Top of book is ``spread_bps`` wide (at least ``min_spread_ticks``) around the
    bar's price; level ``l`` lies ``l * level_step_bps`` (at least one tick per
    level) behind the touch and holds ``depth_fractions[l]`` of the bar volume.
    Within a bar, book prices are clamped into ``[low, high]``: nothing prints
    outside the bar's range, with one exception: a replayed bar whose path starts
    off its range (a gap from the previous close the decision saw) shows the
    decision's quotes at its start, and a taker arriving there walks the range
    widened to them (``orderbook.engine.book``).
    """

    spread_bps: float = 1.0
    min_spread_ticks: int = 1
    level_step_bps: float = 1.0
    depth_fractions: tuple[float, ...] = (0.05, 0.08, 0.12, 0.15, 0.2)

    def __post_init__(self) -> None:
        for f in ("spread_bps", "level_step_bps"):
            x = getattr(self, f)
            require(
                isinstance(x, (int, float)) and math.isfinite(x) and 0 <= x <= MAX_SPREAD_BPS,
                f"BookSpec.{f} must be a finite number in [0, {MAX_SPREAD_BPS:.0f}], got {x!r}",
            )
        require(
            isinstance(self.min_spread_ticks, int) and 0 <= self.min_spread_ticks <= MAX_MIN_SPREAD_TICKS,
            f"BookSpec.min_spread_ticks must be an int in [0, 2**40], got {self.min_spread_ticks!r}",
        )
        object.__setattr__(self, "depth_fractions", tuple(self.depth_fractions))
        require(
            len(self.depth_fractions) >= 1
            and all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in self.depth_fractions)
            and sum(self.depth_fractions) <= MAX_DEPTH_FRACTION,
            f"BookSpec.depth_fractions must be a non-empty tuple of numbers > 0 summing to at most {MAX_DEPTH_FRACTION:.0f}, got {self.depth_fractions!r}",
        )


@dataclass(frozen=True)
class FillSpec:
    """How live orders meet the path inside a bar (``orderbook.market.path``).

    A resting limit fills when the path after its arrival trades through its price
    (``touch_fill_prob`` when it only touches it), at most ``participation`` of the
    bar volume per lane and instrument, after the queue ahead of it has traded
    (``queue_fraction`` of the depth the book displays at equal or better prices
    when it arrives: 1 is the back of the level, 0 its front), thinned by
    cancellations ahead: ``queue_cancel_rate`` of it is cancelled per bar, spread
    along the path; with
    ``fill_prob < 1`` an eligible order fills in a bar only with that probability.
    Takers deplete the levels they walk; the depth taken comes back with a
    half-life of ``resilience_half_life_s`` seconds along the path (``inf``: not
    before the next bar).
    Market orders are IOC and walk the book up to their protection band,
    ``market_collar_bps`` beyond the far touch: the lots whose average price, impact
    included (never clipped), would pass it are cancelled (``PRICE_PROTECTION``).
    Limit prices more than ``price_band_bps`` from the mid are refused (BAD_TICK).

    ``self_trade``: what the venue does when an arriving order would trade with one
    of the lane's own resting orders on the other side (``orderbook.engine.stp``):
    ``"expire_taker"`` (default) cancels the arriving order, ``"expire_maker"`` the
    resting ones it would cross, ``"expire_both"`` both (reason ``SELF_TRADE``);
    ``"none"`` lets them rest and fill against the path side by side, and must be
    asked for.

    Defaults (issue 14, chosen from the calibration table of
    ``benchmarks/fidelity_calibration.py`` against the replayed Binance.US BTC/USD
    bars, 1,024 orders per cell, seed 0; ``python -m benchmarks.fidelity_calibration``):
    ``participation`` 0.3 scores best (root mean square of sim minus data over the
    table's any-fill and full-fill cells 0.0104, against 0.0197 / 0.0110 / 0.0105 /
    0.0107 / 0.0110 at 0.1 / 0.2 / 0.4 / 0.5 / 1.0): a tenth of a bar left a 0.1 BTC
    order filled whole within one bar in about 0.69 of windows where the prints
    past its price covered it in 0.77; 0.3 gives 0.75-0.79.
    ``queue_fraction`` 1.0: a resting limit joins the back of its level (DESIGN); at a
    one-cent tick the table cannot tell 0.5 from 1.0 (the price reaches a limit
    without trading through it in under 0.1% of windows), nor ``touch_fill_prob``
    0.2 from 1.0, which stays.
    """

    participation: float = 0.3
    queue_fraction: float = 1.0
    touch_fill_prob: float = 0.2
    fill_prob: float = 1.0
    queue_cancel_rate: float = 0.0
    resilience_half_life_s: float = math.inf
    market_collar_bps: float = 50.0
    price_band_bps: float = 1_000.0
    impact: ImpactSpec = field(default_factory=ImpactSpec)
    self_trade: str = "expire_taker"

    def __post_init__(self) -> None:
        require(
            isinstance(self.self_trade, str) and self.self_trade in SELF_TRADE_MODES,
            f"FillSpec.self_trade must be one of {SELF_TRADE_MODES}, got {self.self_trade!r}",
        )
        for f in ("participation", "queue_fraction", "touch_fill_prob", "fill_prob", "queue_cancel_rate"):
            check_probability("FillSpec", f, getattr(self, f))
        hl = self.resilience_half_life_s
        require(
            isinstance(hl, (int, float)) and not isinstance(hl, bool) and hl > 0 and not math.isnan(hl),
            f"FillSpec.resilience_half_life_s must be a number of seconds > 0 (inf: no recovery inside a bar), got {hl!r}",
        )
        for f in ("market_collar_bps", "price_band_bps"):
            require(
                isinstance(getattr(self, f), (int, float)) and 0 < getattr(self, f) < 10_000,
                f"FillSpec.{f} must be in (0, 10000), got {getattr(self, f)!r}",
            )
        require(isinstance(self.impact, ImpactSpec), f"FillSpec.impact must be an ImpactSpec, got {type(self.impact).__name__}")
