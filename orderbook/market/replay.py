"""Replayed market: bars from data files (several venues and pairs) drive the core.

:class:`ReplayMarket` is a market spec for ``ExchangeConfig(market=...)``: OHLCV
bars aligned on one clock (:class:`~orderbook.market.bars.AlignedBars`, or the
:class:`~orderbook.market.bars.BarSource` list to load them from) and the length of an
episode. :meth:`ReplayMarket.make_source` converts the bars for one config and
returns a :class:`ReplaySource` with the market-source interface of
:mod:`orderbook.market.sources` (``reset(lanes, bars, mask)``, ``advance(lanes, bars)``).

Mapping. Each config instrument ``(venue, "BASE/QUOTE")`` reads the data column of
the same key. ``venue_map`` renames data venues to config venues: a value is one
config venue or a tuple of them, so one file can feed several venues
(``{"binance_us": ("binance_us", "binance_us_2")}``); data venues not in the map
keep their name. Every instrument needs a column; extra columns are ignored.

Conversion (once per source, vectorised):
- prices to integer ticks by rounding to the nearest tick, halves up
  (``floor(price / tick + 0.5 + 1e-9)``: the epsilon makes a decimal half such as
  100.015 at tick 0.01 round up whatever its float error); a price outside the
  instrument's range ``[min_price, max_price]`` (the range :mod:`orderbook.spec.bounds`
  proves every product fits int64 for) is refused (``ValueError`` naming the
  column, row and time), as are bar times that are negative or whose close passes
  ``MAX_TIME_NS``. Rounding is monotone, so ``low <= open, close <= high``
  still holds in ticks.
- volumes to integer lots by flooring (``floor(volume / lot + 1e-9)``: the
  epsilon absorbs float error, so 0.0003 BTC is 3 lots of 0.0001, not 2).
- a bar missing from the data (``present`` False) has volume 0 (nothing trades)
  and carries the previous close (valuation goes on).

Episodes. A lane replays a window of ``episode_steps + 1`` consecutive bars. With
``start="random"`` the first bar is drawn per lane from the key (lane market seed,
``rng_episode``, purpose ``P_WINDOW``): deterministic and batch-size invariant.
With a fixed start (a bar index or a timestamp, naive = UTC, the bar containing
it) every lane replays the same window (evaluation). With ``window=(start, end)``
(timestamps, naive = UTC, half-open) only the bars inside ``[start, end)`` are
ever used: a start, drawn or fixed, leaves room for the whole episode before
``end`` (:data:`BINANCE_US_SPLITS` are such windows: the sample's time split into
a training and a test period that no episode crosses). At reset, step 0 shows the
window's first bar as a flat bar at its close with volume 0, the quotes around
it, and ``lanes.time_ns`` is that bar's close (= the next bar's open), so that step
``k`` trades bar ``k`` of the window during exactly its own interval
``[t0, t0 + step)``: the market log's ``time_ns`` of step ``k`` is the close of
the bar shown. Stepping a lane past its window raises ``ValueError`` before
anything changes.

Inside each bar the mid follows a path from the mid the decision saw (the
previous bar's close as the market showed it, the centre of the quotes the agent
decided on) through the bar's high and low to its close
(:func:`orderbook.market.path.bridge_through_extremes`: the extremes at interior
points drawn from the lane's market key, Brownian bridges between them), along
which orders meet the market when they arrive. The bar's open (a trade print, off
that mid by the bid-ask bounce) stays the data's in the bar and the market log,
but is not a point of the path.

Spread and depth come from each venue's :class:`~orderbook.spec.specs.BookSpec` (the one
book model, :mod:`orderbook.engine.book`), exactly as for synthetic bars. The lane's own
permanent impact (``bars.impact_ticks``, rounded to the tick) shifts all four
prices of its later bars, clamped into the instrument's price range.

Known limits: the whole panel is held in memory as (T, I) int64 arrays (five of
them, per config instrument); a window never wraps around the end of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from orderbook.compile.jit import kernel
from orderbook.compile.packed import Call
from orderbook.market.bars import AlignedBars, BarSource, load_bars
from orderbook.market.bars_validate import fmt_duration, fmt_ns
from orderbook.market.path import bridge_through_extremes
from orderbook.market.replay_window import normalise_venue_map, resolve_start, resolve_window
from orderbook.market.synthetic import close_quotes, start_bar
from orderbook.spec import rng
from orderbook.spec.bounds import MAX_TIME_NS

_MAX_VOLUME_LOTS = 2**53  # volumes stay exact as float64 in depth and participation arithmetic
_VOLUME_EPS_LOTS = 1e-9  # float error allowance when flooring volumes to lots
_HALF_TICK_EPS = 1e-9  # and when rounding prices: a decimal half tick (100.015 / 0.01) rounds up


@dataclass(frozen=True)
class ReplayMarket:
    """Bars from data for every lane (see the module docstring).

    Args:
        data: aligned bars, or the bar sources to load with :func:`~orderbook.market.bars.load_bars`.
        episode_steps: steps per episode; a window is ``episode_steps + 1`` bars.
        start: ``"random"`` (per lane, keyed by its market seed and episode), a bar
            index, or a timestamp (``datetime``, ``date``, ISO string, ``numpy.datetime64``;
            naive = UTC) of the window's first bar.
        venue_map: data venue -> config venue (or a tuple of config venues).
        window: ``None`` (every bar) or ``(start, end)``: timestamps (as ``start``), naive = UTC, of the
            half-open period whose bars the episodes may use; a window of ``episode_steps + 1`` bars
            must fit inside it.
    """

    data: AlignedBars | Sequence[BarSource]
    episode_steps: int
    start: Any = "random"
    venue_map: dict[str, str | tuple[str, ...]] | None = None
    window: tuple[Any, Any] | None = None
    start_index: int = field(init=False, repr=False, compare=False)  # -1 = random
    first_row: int = field(init=False, repr=False, compare=False)  # first bar of the window (0 without one)
    end_row: int = field(init=False, repr=False, compare=False)  # one past its last bar (the data's length without one)

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, AlignedBars):
            if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
                raise ValueError(f"ReplayMarket.data must be AlignedBars or a sequence of BarSource, got {type(data).__name__}")
            data = load_bars(data)
            object.__setattr__(self, "data", data)
        n_bars = data.time_ns.shape[0]
        steps = self.episode_steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"ReplayMarket.episode_steps must be an int >= 1, got {steps!r}")
        if steps > n_bars - 1:
            raise ValueError(
                f"ReplayMarket.episode_steps={steps} needs {steps + 1} bars per window, but the data has {n_bars} "
                f"bars ({fmt_ns(int(data.time_ns[0]))} to {fmt_ns(int(data.time_ns[-1]))}); expected episode_steps <= {n_bars - 1}"
            )
        object.__setattr__(self, "episode_steps", int(steps))
        object.__setattr__(self, "venue_map", normalise_venue_map(self.venue_map, data))
        if isinstance(self.window, list):
            object.__setattr__(self, "window", tuple(self.window))  # as JSON gives it back; the spec stays hashable
        first, end = resolve_window(self.window, data, int(steps))
        object.__setattr__(self, "first_row", first)
        object.__setattr__(self, "end_row", end)
        object.__setattr__(self, "start_index", resolve_start(self.start, data, int(steps), first, end))

    @property
    def n_starts(self) -> int:
        """How many episode windows the data (inside ``window``) holds: the range of a random start."""
        return self.end_row - self.first_row - self.episode_steps

    def make_source(self, config, compiled, n_lanes: int) -> ReplaySource:
        """The market source of this data for ``config`` (called by :func:`orderbook.market.sources.make_source`)."""
        return ReplaySource(self, config, compiled, n_lanes)


class ReplayData(NamedTuple):
    """The bars of one config, in ticks and lots, per config instrument (kernels only read them)."""

    time_ns: np.ndarray  # (T,) int64 open time of each bar, UTC epoch ns
    open_ticks: np.ndarray  # (T, I) int64
    high_ticks: np.ndarray  # (T, I) int64
    low_ticks: np.ndarray  # (T, I) int64
    close_ticks: np.ndarray  # (T, I) int64
    volume_lots: np.ndarray  # (T, I) int64, 0 where the bar was missing


def instrument_columns(spec: ReplayMarket, config) -> np.ndarray:
    """(I,) data column of each config instrument; ValueError naming what is missing and what is available."""
    config_venues = [v.name for v in config.venues]
    by_key: dict[tuple[str, str], int] = {}
    for s, (venue, symbol) in enumerate(spec.data.keys):
        for target in spec.venue_map.get(venue, (venue,)):
            if venue in spec.venue_map and target not in config_venues:
                raise ValueError(
                    f"ReplayMarket.venue_map maps data venue {venue!r} to {target!r}, which is not a config venue; "
                    f"config venues: {config_venues}"
                )
            if (target, symbol) in by_key:
                other = spec.data.keys[by_key[(target, symbol)]]
                raise ValueError(f"ReplayMarket: data {other} and {(venue, symbol)} both map to {target}:{symbol}; expected one source per instrument")
            by_key[(target, symbol)] = s
    missing = [f"{i.venue}:{i.symbol}" for i in config.instruments if i.key not in by_key]
    if missing:
        available = [f"{v}:{s}" for v, s in by_key]
        raise ValueError(
            f"ReplayMarket has no data for instrument(s) {missing}; available after venue_map: {available} "
            f"(data keys {[f'{v}:{s}' for v, s in spec.data.keys]}, venue_map {spec.venue_map or {}})"
        )
    return np.array([by_key[i.key] for i in config.instruments], dtype=np.int64)


def _refuse(spec: ReplayMarket, s: int, inst, what: str, bad: np.ndarray, values: np.ndarray, expected: str) -> None:
    rows = np.flatnonzero(bad)
    r = int(rows[0])
    raise ValueError(
        f"ReplayMarket: data {spec.data.keys[s][0]}:{spec.data.keys[s][1]} for instrument {inst.venue}:{inst.symbol}, "
        f"bar {r} ({fmt_ns(int(spec.data.time_ns[r]))}), {what} {float(values[r])!r} is not representable: expected {expected} "
        f"({rows.size} bar(s) fail)"
    )


def compile_replay(spec: ReplayMarket, config, compiled) -> ReplayData:
    """Convert the data to ticks and lots for ``config``'s instruments (module docstring: Conversion)."""
    if config.step_ns != spec.data.step_ns:
        raise ValueError(
            f"ExchangeConfig.step_ms={config.step_ms} does not match the data's bar interval "
            f"{fmt_duration(spec.data.step_ns)}; expected step_ms={spec.data.step_ns // 1_000_000}"
        )
    times = spec.data.time_ns
    if times.shape[0] and (int(times[0]) < 0 or int(times[-1]) > MAX_TIME_NS - config.step_ns):
        raise ValueError(
            f"ReplayMarket: bar times must lie in [0, MAX_TIME_NS - step] = [0, {MAX_TIME_NS - config.step_ns}] ns "
            f"(1970 to about 2079) so that no time sum can wrap; found bars from {int(times[0])} to {int(times[-1])} ns"
        )
    columns = instrument_columns(spec, config)
    n_bars, n_inst = spec.data.time_ns.shape[0], len(config.instruments)
    prices = {name: np.empty((n_bars, n_inst), dtype=np.int64) for name in ("open", "high", "low", "close")}
    volume = np.empty((n_bars, n_inst), dtype=np.int64)
    for i, (inst, s) in enumerate(zip(config.instruments, columns, strict=True)):
        tick, lot = float(inst.tick_size), float(inst.lot_size)
        lo_ticks, hi_ticks = int(compiled.min_price_ticks[i]), int(compiled.max_price_ticks[i])
        for name in prices:
            raw = getattr(spec.data, name)[:, s]
            with np.errstate(invalid="ignore", over="ignore"):
                ticks = np.floor(raw / tick + (0.5 + _HALF_TICK_EPS))
            bad = ~np.isfinite(ticks) | (ticks < lo_ticks) | (ticks > hi_ticks)
            if bad.any():
                _refuse(spec, int(s), inst, name, bad, raw, f"a finite price in the instrument's range [{inst.min_price}, {inst.max_price}] (ticks of {inst.tick_size})")
            prices[name][:, i] = ticks.astype(np.int64)
        raw = np.where(spec.data.present[:, s], spec.data.volume[:, s], 0.0)
        with np.errstate(invalid="ignore", over="ignore"):
            lots = np.floor(raw / lot + _VOLUME_EPS_LOTS)
        bad = ~np.isfinite(lots) | (lots < 0) | (lots > _MAX_VOLUME_LOTS)
        if bad.any():
            _refuse(spec, int(s), inst, "volume", bad, raw, f"a finite volume in [0, {_MAX_VOLUME_LOTS * lot:.6g}] for lot {inst.lot_size}")
        volume[:, i] = lots.astype(np.int64)
    o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
    bad = (lo > np.minimum(o, c)) | (h < np.maximum(o, c))
    if bad.any():
        r, i = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(
            f"ReplayMarket: instrument {config.instruments[i].venue}:{config.instruments[i].symbol} bar {r} "
            f"({fmt_ns(int(spec.data.time_ns[r]))}): expected low <= open, close <= high, found ticks "
            f"open {o[r, i]} high {h[r, i]} low {lo[r, i]} close {c[r, i]}"
        )
    return ReplayData(np.array(spec.data.time_ns, dtype=np.int64), o, h, lo, c, volume)


class ReplaySource:
    """The market source of a :class:`ReplayMarket` for one config and batch size."""

    def __init__(self, spec: ReplayMarket, config, compiled, n_lanes: int):
        self.spec = spec
        self.compiled = compiled
        self.data = compile_replay(spec, config, compiled)
        self.columns = instrument_columns(spec, config)
        self.present = np.ascontiguousarray(spec.data.present[:, self.columns])  # (T, I) bool
        self.start_row = np.zeros(n_lanes, dtype=np.int64)  # (B,) first bar of each lane's window

    def reset(self, lanes, bars, mask: np.ndarray) -> None:
        spec = self.spec
        replay_reset(self.compiled, self.data, spec.first_row, spec.n_starts, spec.start_index, self.start_row, lanes, bars, mask)

    def advance(self, lanes, bars) -> None:
        self.check_advance(lanes)
        replay_advance(self.compiled, self.data, self.spec.episode_steps, self.start_row, lanes, bars)

    def reset_call(self, lanes, bars, mask: np.ndarray) -> Call:
        spec = self.spec
        return Call(replay_reset, (self.compiled, self.data, spec.first_row, spec.n_starts, spec.start_index, self.start_row, lanes,
                                   bars, mask))

    def advance_call(self, lanes, bars) -> Call:
        return Call(replay_advance, (self.compiled, self.data, self.spec.episode_steps, self.start_row, lanes, bars))

    def check_advance(self, lanes) -> None:
        """Refuse (before anything moves) active lanes already at the last bar of their window."""
        steps = self.spec.episode_steps
        over = lanes.active & (lanes.step >= steps)
        if over.any():
            raise ValueError(
                f"ReplayMarket: lane(s) {np.flatnonzero(over).tolist()} are at step {steps} = episode_steps, the last bar of their "
                f"{steps + 1}-bar window; expected them reset before stepping (truncate episodes at episode_steps)"
            )

    def window_start_ns(self) -> np.ndarray:
        """(B,) open time of each lane's window's first bar (UTC epoch ns), a fresh array."""
        return self.data.time_ns[self.start_row]


@kernel
def replay_reset(cc, data, first_row, n_starts, fixed_start, start_row, lanes, bars, mask):
    """Start the masked lanes' windows: a flat bar at the first bar's close, time at its close. A random
    start lies in ``[first_row, first_row + n_starts)``, so the episode's bars stay inside the market's window."""
    for b in range(mask.shape[0]):
        if not mask[b]:
            continue
        if fixed_start >= 0:
            row = fixed_start
        else:
            u = rng.uniform(lanes.market_seed[b], lanes.rng_episode[b], 0, 0, rng.P_WINDOW)
            row = first_row + min(np.int64(u * n_starts), n_starts - 1)
        start_row[b] = row
        lanes.time_ns[b] = data.time_ns[row] + cc.step_ns
        for i in range(bars.open_ticks.shape[1]):
            start_bar(cc, bars, b, i, data.close_ticks[row, i])


@kernel
def replay_advance(cc, data, episode_steps, start_row, lanes, bars):
    """Advance every lane's clock one step and show the next bar of its window.

    Returns -1, or the first lane already at the end of its window (then nothing changed).
    """
    n_lanes, n_inst = bars.open_ticks.shape
    for b in range(n_lanes):
        if lanes.active[b] and lanes.step[b] >= episode_steps:
            return b
    for b in range(n_lanes):
        if not lanes.active[b]:
            continue
        step = lanes.step[b] + 1
        lanes.step[b] = step
        row = start_row[b] + step
        key = rng.step_key(lanes.market_seed[b], lanes.rng_episode[b], step)
        for i in range(n_inst):
            bars.ref_bid_ticks[b, i] = bars.bid_ticks[b, i]
            bars.ref_ask_ticks[b, i] = bars.ask_ticks[b, i]
            start = bars.close_ticks[b, i]  # the mid the decision saw: the previous close as the market showed it
            shift = np.int64(np.round(bars.impact_ticks[b, i]))  # |impact| <= max_price_ticks (matching)
            lo, hi = cc.min_price_ticks[i], cc.max_price_ticks[i]
            bars.open_ticks[b, i] = min(max(data.open_ticks[row, i] + shift, lo), hi)
            bars.high_ticks[b, i] = min(max(data.high_ticks[row, i] + shift, lo), hi)
            bars.low_ticks[b, i] = min(max(data.low_ticks[row, i] + shift, lo), hi)
            bars.close_ticks[b, i] = min(max(data.close_ticks[row, i] + shift, lo), hi)
            bars.volume_lots[b, i] = data.volume_lots[row, i]
            bridge_through_extremes(bars, b, i, key, cc.path_points, start)
            close_quotes(cc, bars, b, i)
    return -1

__all__ = ["ReplayData", "ReplayMarket", "ReplaySource", "compile_replay"]
