"""OHLCV bars of several sources, validated and aligned on one clock for the simulator to replay.

``load_bars(sources, step_ns=None)`` reads each :class:`BarSource` (a CSV or Parquet
file, a glob of them, or a polars/pandas frame; a CSV with or without a header line:
``BarSource(..., header=False, names=[...])`` names the columns of one without),
validates it, and returns
:class:`AlignedBars`: arrays of shape (T, S) on a common clock ``time_ns``.

Error policy
------------
- Each source is read fully and validated before anything is aligned. Any problem
  raises :class:`BarDataError` (a ``ValueError``) and nothing partial is returned.
- The message names the file (or ``frame`` for an in-memory frame), the source's
  venue and symbol, the 1-based data row (CSV line number minus the header line, if
  the file has one; frame position + 1) and the column, and says what was expected and what was
  found, e.g. ``BTCUSD_1m.csv (binance_us BTC/USD) row 17, column 'high': high
  23100.5 is below low 23110.0``. If several rows fail, the first failing check is
  reported at its first row, with the number of rows failing it.
- Detected: missing columns (missing and found names listed), unreadable files,
  empty sources, unparseable timestamps (and local times that a daylight-saving
  change makes ambiguous or skipped), timestamps that go backwards, duplicate
  timestamps (also across the files of a glob, which must not overlap),
  timestamps off the bar grid, NaN/inf/zero/negative prices, NaN/inf/negative
  volume, high below low, open or close outside [low, high], duplicate
  (venue, symbol) keys, sources whose bar intervals differ, sources that do not
  overlap in time.

Timestamps
----------
Per :class:`ColumnMap`: integer epochs with ``time_unit``; strings with
``time_format`` (strptime) or, by default, ISO 8601 (``T`` or space separator,
optional fraction, ``Z`` or ``+hh:mm`` offset, or none). Timestamps with an offset,
and aware datetimes, are converted to UTC; naive ones are read as wall-clock time
in ``time_zone``. Integer epochs are UTC whatever ``time_zone`` says.

Clock and fill policy (invariants of AlignedBars)
-------------------------------------------------
- ``step_ns``: if None, each source's interval is the most common difference
  between its consecutive timestamps (ties: the smallest) and all sources must
  agree. If given, it is trusted (for sparse sources whose most common
  difference is not the bar interval): a source on a coarser multiple of it is
  accepted and shows filled bars in between. Either way every bar of a source
  must lie on one grid of step_ns (the grid, i.e. time mod step_ns, that most of
  its bars follow), and all sources must share that grid.
- The clock runs from the latest first bar to the earliest last bar among the
  sources (the intersection), every ``step_ns``: ``time_ns`` is strictly
  increasing with constant step, T >= 1.
- A bar missing from a source inside that range is filled with
  open = high = low = close = the previous bar's close and volume = 0, and
  ``present`` is False there: prices are carried forward for valuation; volume 0
  means no trading. Zero-volume bars that exist in the data are kept as they are
  (present True, volume 0).
- On every row, low <= open, close <= high, all prices finite and > 0, volume >= 0.
- Arrays are read-only views; ``AlignedBars`` compares equal by value.

Known limits
------------
- Without ``step_ns``, a source of a single bar has no interval; if every source
  has one bar, pass ``step_ns``. With ``step_ns`` given, T = range / step_ns is not
  bounded: a tiny step over a long range allocates accordingly.
- Files of a glob must not overlap, even where the overlapping bars are equal.
- ISO 8601 basic format (``20230301T000000Z``), week dates and ``+hh`` offsets are
  not accepted; use ``time_format``. A pandas index is read only when its name is
  one of the mapped columns (it is reset into a column).
- Everything is loaded into memory: (T, S) float64 arrays, six of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from orderbook.market.bars_validate import (
    BarDataError,
    BarSource,
    ColumnMap,
    SourceBars,
    fmt_duration,
    fmt_ns,
    read_source,
)

__all__ = ["AlignedBars", "BarDataError", "BarSource", "ColumnMap", "load_bars"]

_PANEL_FIELDS = ("open", "high", "low", "close", "volume", "present")


@dataclass(frozen=True, eq=False)
class AlignedBars:
    """Bars of several sources on one common clock. Arrays are read-only."""

    keys: tuple[tuple[str, str], ...]  # (venue, symbol) of each source column s
    time_ns: np.ndarray  # (T,) int64 UTC epoch ns of each bar's open, strictly increasing, constant step
    step_ns: int  # bar interval in ns
    open: np.ndarray  # (T, S) float64, quote units
    high: np.ndarray  # (T, S) float64, quote units
    low: np.ndarray  # (T, S) float64, quote units
    close: np.ndarray  # (T, S) float64, quote units
    volume: np.ndarray  # (T, S) float64, base units; 0.0 where the bar was missing
    present: np.ndarray  # (T, S) bool, False where the source had no bar at that time (filled)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple((str(v), str(s)) for v, s in self.keys))
        time_ns = _read_only(self.time_ns, np.int64)
        if time_ns.ndim != 1:
            raise ValueError(f"AlignedBars.time_ns: expected shape (T,), found {time_ns.shape}")
        object.__setattr__(self, "time_ns", time_ns)
        shape = (time_ns.shape[0], len(self.keys))
        for name in _PANEL_FIELDS:
            arr = _read_only(getattr(self, name), np.bool_ if name == "present" else np.float64)
            if arr.shape != shape:
                raise ValueError(f"AlignedBars.{name}: expected shape (T, S) = {shape}, found {arr.shape}")
            object.__setattr__(self, name, arr)

    def column(self, venue: str, symbol: str) -> int:
        """Index s of source (venue, symbol); KeyError listing the known keys if absent."""
        try:
            return self.keys.index((venue, symbol))
        except ValueError:
            raise KeyError(f"no source ({venue!r}, {symbol!r}); known (venue, symbol) keys: "
                           f"{list(self.keys)}") from None

    def to_polars(self) -> pl.DataFrame:
        """Long, time-major frame: time (Datetime ns UTC), venue, symbol, open .. volume, present."""
        n_time, n_src = self.present.shape
        venues = np.array([v for v, _ in self.keys], dtype=object)
        symbols = np.array([s for _, s in self.keys], dtype=object)
        return pl.DataFrame({
            "time": pl.Series(np.repeat(self.time_ns, n_src)).cast(pl.Datetime("ns", "UTC")),
            "venue": pl.Series(np.tile(venues, n_time), dtype=pl.String),
            "symbol": pl.Series(np.tile(symbols, n_time), dtype=pl.String),
            **{name: getattr(self, name).reshape(-1) for name in _PANEL_FIELDS},
        })

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlignedBars):
            return NotImplemented
        return (self.keys == other.keys and self.step_ns == other.step_ns
                and np.array_equal(self.time_ns, other.time_ns)
                and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in _PANEL_FIELDS))

    __hash__ = None  # type: ignore[assignment]


def _read_only(value: Any, dtype: type) -> np.ndarray:
    view = np.asarray(value, dtype=dtype).view()
    view.flags.writeable = False
    return view


def load_bars(sources: Sequence[BarSource], *, step_ns: int | None = None) -> AlignedBars:
    """Read, validate and align ``sources``; see the module docstring for the policy."""
    sources = tuple(sources)
    if not sources:
        raise BarDataError("load_bars: expected at least one BarSource, found none")
    _check_keys(sources)
    if step_ns is not None and (isinstance(step_ns, bool) or not isinstance(step_ns, (int, np.integer))
                                or step_ns <= 0):
        raise BarDataError(f"load_bars: expected step_ns to be a positive integer number of ns or None, "
                           f"found {step_ns!r}")
    read = [read_source(s) for s in sources]  # everything is validated before anything is aligned
    step = _common_step(read, None if step_ns is None else int(step_ns))
    _check_phase(read, [_check_grid(src, step) for src in read], step)
    start, end = _common_range(read)
    return _align([s.key for s in sources], read, start, end, step)


def _check_keys(sources: tuple[BarSource, ...]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for i, src in enumerate(sources):
        if not isinstance(src, BarSource):
            raise BarDataError(f"load_bars: expected a BarSource at position {i}, found {type(src).__name__}")
        if src.key in seen:
            raise BarDataError(f"duplicate source key (venue, symbol) = {src.key} at positions {seen[src.key]} "
                               f"and {i}; expected each (venue, symbol) once")
        seen[src.key] = i


def _interval_ns(src: SourceBars) -> int | None:
    """Most common difference between consecutive bars (ties: the smallest); None for one bar."""
    if src.time_ns.shape[0] < 2:
        return None
    diffs, counts = np.unique(np.diff(src.time_ns), return_counts=True)
    return int(diffs[np.argmax(counts)])


def _common_step(read: list[SourceBars], step_ns: int | None) -> int:
    if step_ns is not None:  # trusted as given; _check_grid still holds every source to it
        return step_ns
    intervals = {src.label: _interval_ns(src) for src in read}
    known = {label: ns for label, ns in intervals.items() if ns is not None}
    if not known:
        raise BarDataError(f"cannot infer the bar interval: every source ({', '.join(intervals)}) has a single "
                           "bar; expected at least two bars in one source, or pass step_ns")
    if len(set(known.values())) > 1:
        listing = ", ".join(f"{label} {fmt_duration(ns)}" for label, ns in known.items())
        raise BarDataError(f"sources' bar intervals differ: expected one interval for all sources, found {listing}")
    return next(iter(known.values()))


def _grid_phase(src: SourceBars, step_ns: int) -> int:
    """Offset (time_ns mod step_ns) of the grid that most bars of ``src`` follow (ties: the smallest)."""
    phases, counts = np.unique(src.time_ns % step_ns, return_counts=True)
    return int(phases[np.argmax(counts)])


def _grid_points(time_ns: int, step_ns: int, phase: int) -> str:
    below = time_ns - (time_ns - phase) % step_ns
    return f"{fmt_ns(below)} or {fmt_ns(below + step_ns)}"


def _check_grid(src: SourceBars, step_ns: int) -> int:
    """Every bar of ``src`` lies on one step_ns grid; returns that grid's phase."""
    phase = _grid_phase(src, step_ns)
    off = np.flatnonzero(src.time_ns % step_ns != phase)
    if off.size:
        t = int(src.time_ns[off[0]])
        raise src.error(int(off[0]), "time", f"timestamp not on the bar grid: expected a time on the "
                        f"{fmt_duration(step_ns)} grid that most bars of this source follow, such as "
                        f"{_grid_points(t, step_ns, phase)}, found {fmt_ns(t)} ({off.size} bar(s) of this "
                        "source are off the grid)")
    return phase


def _check_phase(read: list[SourceBars], phases: list[int], step_ns: int) -> None:
    """All sources lie on the first source's grid."""
    for src, phase in zip(read[1:], phases[1:], strict=True):
        if phase != phases[0]:
            t = int(src.time_ns[0])
            raise src.error(0, "time", f"timestamp not on the common bar grid: expected a time on the "
                            f"{fmt_duration(step_ns)} grid of {read[0].label}, such as "
                            f"{_grid_points(t, step_ns, phases[0])}, found {fmt_ns(t)} "
                            f"(offset {fmt_duration((phase - phases[0]) % step_ns)})")


def _common_range(read: list[SourceBars]) -> tuple[int, int]:
    """[latest first bar, earliest last bar] of the sources; BarDataError if empty."""
    starts, ends = [int(s.time_ns[0]) for s in read], [int(s.time_ns[-1]) for s in read]
    start, end = max(starts), min(ends)
    if start > end:
        spans = ", ".join(f"{s.label} [{fmt_ns(a)}, {fmt_ns(b)}]" for s, a, b in zip(read, starts, ends, strict=True))
        raise BarDataError(f"sources do not overlap in time: expected a common range, found the latest first bar "
                           f"{fmt_ns(start)} after the earliest last bar {fmt_ns(end)}; spans: {spans}")
    return start, end


def _align(keys: list[tuple[str, str]], read: list[SourceBars], start: int, end: int, step_ns: int) -> AlignedBars:
    """Gather each source onto the clock; a missing bar repeats the previous close, with volume 0."""
    time_ns = np.arange(start, end + 1, step_ns, dtype=np.int64)
    shape = (time_ns.shape[0], len(read))
    panel = {name: np.empty(shape, dtype=np.bool_ if name == "present" else np.float64) for name in _PANEL_FIELDS}
    for s, src in enumerate(read):
        j = np.searchsorted(src.time_ns, time_ns, side="right") - 1  # last bar at or before t: >= 0 as t >= start
        present = src.time_ns[j] == time_ns
        panel["present"][:, s] = present
        panel["volume"][:, s] = np.where(present, src.volume[j], 0.0)
        for name in ("open", "high", "low", "close"):
            panel[name][:, s] = np.where(present, getattr(src, name)[j], src.close[j])
    return AlignedBars(keys=tuple(keys), time_ns=time_ns, step_ns=int(step_ns), **panel)
