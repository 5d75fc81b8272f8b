"""One OHLCV bar source: where it is (:class:`BarSource`), how its columns are named (:class:`ColumnMap`), what
reading it gives (:class:`SourceBars`) and the located errors every bar module raises.

Keeps true: a :class:`BarSource` or :class:`ColumnMap` that could not be read is
refused at construction, with what was expected and what was found; every
:class:`BarDataError` built by :func:`located_error` names the file (or "frame"),
the source's venue and symbol, and the row and column when there is one. Reading
is :mod:`orderbook.market.bars_read`, the row checks and :func:`read_source`
:mod:`orderbook.market.bars_validate`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import pandas as pd

_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_INT64_MAX = int(np.iinfo(np.int64).max)
# ISO 8601 after normalisation ("T" -> " ", trailing "Z" -> "+00:00"); first match wins.
_ISO_AWARE = ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%z")
_ISO_NAIVE = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")
PRICE_FIELDS = ("open", "high", "low", "close")
VALUE_FIELDS = (*PRICE_FIELDS, "volume")
_READ_ERRORS = (pl.exceptions.PolarsError, OSError)
_SYMBOL = re.compile(r"^[^/\s]+/[^/\s]+$")


class BarDataError(ValueError):
    """A bar source (or the set of sources) is malformed; the message says where and why."""


@dataclass(frozen=True)
class ColumnMap:
    """Names of the columns in a source, and how to read its timestamps."""

    time: str = "open_time"
    open: str = "open"
    high: str = "high"
    low: str = "low"
    close: str = "close"
    volume: str = "volume"
    time_unit: str | None = None  # "s", "ms", "us", "ns" when the time column is an integer epoch
    time_format: str | None = None  # strptime format for string timestamps; None = ISO 8601
    time_zone: str = "UTC"  # zone of naive timestamps; aware ones are converted to UTC

    def __post_init__(self) -> None:
        if self.time_unit is not None and self.time_unit not in _NS_PER_UNIT:
            raise BarDataError(f"ColumnMap.time_unit: expected one of {sorted(_NS_PER_UNIT)} or None, "
                               f"found {self.time_unit!r}")
        if self.time_unit is not None and self.time_format is not None:
            raise BarDataError(f"ColumnMap: expected at most one of time_unit and time_format, found "
                               f"time_unit={self.time_unit!r} and time_format={self.time_format!r}")
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise BarDataError(f"ColumnMap.time_zone: expected an IANA zone name such as 'UTC' or "
                               f"'America/New_York', found {self.time_zone!r}") from exc

    def source_name(self, field: str) -> str:
        """The source's column name for canonical field ``field`` ("time", "open", ...)."""
        return getattr(self, field)


@dataclass(frozen=True, eq=False)
class BarSource:
    """One venue's bars of one symbol, and where to read them.

    A CSV has a header line naming its columns (``header=True``), or none
    (``header=False``), when ``names`` lists every column of the file in order;
    ``columns`` then maps the fields to those names as it maps header names.
    """

    venue: str  # e.g. "binance_us"
    symbol: str  # "BASE/QUOTE", e.g. "BTC/USD"
    data: str | os.PathLike[str] | pl.DataFrame | pd.DataFrame  # CSV/Parquet path, glob of them, or a frame
    columns: ColumnMap = dataclasses.field(default_factory=ColumnMap)
    header: bool = True  # False: a CSV without a header line, its columns named by ``names``
    names: Sequence[str] | None = None  # with header=False: every column of the CSV, in order

    def __post_init__(self) -> None:
        if not isinstance(self.venue, str) or not self.venue:
            raise BarDataError(f"BarSource.venue: expected a non-empty string, found {self.venue!r}")
        if not isinstance(self.symbol, str) or not _SYMBOL.match(self.symbol):
            raise BarDataError(f"BarSource.symbol: expected 'BASE/QUOTE' such as 'BTC/USD', found {self.symbol!r}")
        if not isinstance(self.columns, ColumnMap):
            raise BarDataError(f"BarSource.columns: expected a ColumnMap, found {type(self.columns).__name__}")
        if not isinstance(self.header, bool):
            raise BarDataError(f"BarSource.header: expected True or False, found {self.header!r}")
        if self.header:
            if self.names is not None:
                raise BarDataError("BarSource.names: expected None for a source with a header line (names are for "
                                   f"a CSV without one, with header=False), found {self.names!r}")
            return
        if not isinstance(self.data, (str, os.PathLike)):
            raise BarDataError(f"BarSource.header: header=False is for CSV files without a header line, "
                               f"found data of type {type(self.data).__name__}")
        names = tuple(self.names) if isinstance(self.names, Sequence) and not isinstance(self.names, str) else None
        if not names or not all(isinstance(n, str) and n for n in names):
            raise BarDataError("BarSource.names: with header=False, expected a list of the CSV's column names in "
                               f"file order (non-empty strings), found {self.names!r}")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise BarDataError(f"BarSource.names: expected each column name once, found {repeated} more than once")
        object.__setattr__(self, "names", names)

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)


@dataclass(frozen=True)
class SourceBars:
    """One source after reading and validation (see the module docstring for invariants)."""

    label: str  # "venue symbol", used in messages
    files: tuple[str, ...]  # display name of each file, "frame" for an in-memory frame
    columns: ColumnMap
    file_index: np.ndarray  # (N,) int32 index into files
    row: np.ndarray  # (N,) int64 1-based data row within its file
    time_ns: np.ndarray  # (N,) int64 UTC epoch ns, strictly increasing
    open: np.ndarray  # (N,) float64 quote units
    high: np.ndarray  # (N,) float64
    low: np.ndarray  # (N,) float64
    close: np.ndarray  # (N,) float64
    volume: np.ndarray  # (N,) float64 base units

    def error(self, i: int, field: str, detail: str) -> BarDataError:
        """A BarDataError located at bar ``i``, in the column of canonical ``field``."""
        file = self.files[int(self.file_index[i])]
        return located_error(file, self.label, int(self.row[i]), self.columns.source_name(field), detail)


def located_error(file: str, label: str, row: int | None, column: str | None, detail: str) -> BarDataError:
    """``<file> (<label>) row <row>, column '<column>': <detail>``, omitting absent parts."""
    where = [f"row {row}"] if row is not None else []
    where += [f"column '{column}'"] if column is not None else []
    return BarDataError(f"{file} ({label}){' ' if where else ''}{', '.join(where)}: {detail}")


def fmt_ns(time_ns: int) -> str:
    """UTC epoch ns as ISO 8601 with a Z, to the coarsest exact unit."""
    unit = next(u for u, f in (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)) if time_ns % f == 0)
    return str(np.datetime_as_string(np.datetime64(int(time_ns), "ns"), unit=unit)) + "Z"


def fmt_duration(ns: int) -> str:
    unit, factor = next((u, f) for u, f in (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1))
                        if ns % f == 0)
    return f"{ns // factor} {unit}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
