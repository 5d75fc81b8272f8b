"""One OHLCV bar source: where it is (:class:`BarSource`), reading it, and row-level validation.

Used by :mod:`orderbook.market.bars`, which aligns sources; this module imports nothing
of it. A source (a CSV or Parquet file, a glob of such files, or a polars/pandas
frame) is read with polars into one frame of canonical columns, then every row is
checked with vectorised expressions (no Python loops over rows). The result is a
:class:`SourceBars`, whose invariants are:

- ``time_ns`` is int64 UTC epoch ns, strictly increasing across all files of the
  source (files of a glob are put in time order and must not overlap);
- every price is finite and > 0, every volume finite and >= 0;
- ``low <= open <= high`` and ``low <= close <= high`` on every row;
- ``file_index[i]`` and ``row[i]`` name the file and the 1-based data row that bar
  ``i`` came from (CSV line number minus the header line, if the file has one;
  frame position + 1).

Every malformed input raises :class:`BarDataError`; the message names the file (or
"frame"), the source's venue and symbol, the row and the column, and says what was
expected and what was found. When several rows fail, the first failing check in
the order of ``_row_checks`` is reported at its first row, with the count of rows
failing it. CSVs have one header line naming the columns, or none
(``BarSource(..., header=False, names=[...])``: ``names`` gives every column of the
file, in order, and a row with fewer cells has empty cells, reported as such).

Known limits: CSVs are comma-separated; a row with more cells than the file's first
line is reported for the file, not the row; a blank line is read as a row of empty
cells (so it is reported, and row numbers stay tied to line numbers); a quoted cell
spanning lines would shift later row numbers.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# --------------------------------------------------------------------- reading


def _resolve(source: BarSource) -> list[tuple[str, pl.LazyFrame]]:
    """(display name, lazy frame) of each file or frame of the source."""
    data, label = source.data, f"{source.venue} {source.symbol}"
    if isinstance(data, pl.DataFrame):
        return [("frame", data.lazy())]
    if type(data).__module__.startswith("pandas") and type(data).__name__ == "DataFrame":
        if data.index.name in {source.columns.source_name(f) for f in ("time", *VALUE_FIELDS)}:
            data = data.reset_index()  # a time index (common in pandas) becomes a column
        return [("frame", pl.from_pandas(data).lazy())]
    if not isinstance(data, (str, os.PathLike)):
        raise BarDataError(f"source ({label}): expected a path, a glob, or a polars or pandas DataFrame, "
                           f"found {type(data).__name__}")
    path = os.fspath(data)
    paths = [path] if os.path.isfile(path) else []
    if not paths and glob.has_magic(path):
        paths = sorted(glob.glob(path, recursive=True))  # put in time order after reading
    if not paths:
        raise located_error(path, label, None, None,
                            "empty source: expected a file or a glob matching at least one file, found none")
    return [(p, _scan(p, label, source)) for p in paths]


def _scan(path: str, label: str, source: BarSource) -> pl.LazyFrame:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":  # all String: parse errors stay row-located
        if source.header:
            return pl.scan_csv(path, infer_schema=False)
        names = list(source.names or ())
        try:
            width = pl.read_csv(path, has_header=False, infer_schema=False, n_rows=1).width
        except _READ_ERRORS:
            width = len(names)  # unreadable or empty: reported by _normalize, as for a file with a header
        if width != len(names):
            raise located_error(path, label, 1, None, f"expected {len(names)} columns, one per name in {names}, "
                                f"found {width} in the first line")
        return pl.scan_csv(path, infer_schema=False, has_header=False, new_columns=names)
    if not source.header:
        raise located_error(path, label, None, None, "header=False is for CSV files without a header line; "
                            f"expected a .csv file, found suffix {suffix!r}")
    if suffix in (".parquet", ".pq"):
        return pl.scan_parquet(path)
    raise located_error(path, label, None, None, f"expected a .csv, .parquet or .pq file, found suffix {suffix!r}")


def _time_exprs(dtype: pl.DataType, cm: ColumnMap, name: str, label: str) -> tuple[pl.Expr, pl.Expr]:
    """(time_ns Int64, null where unparsed; naive-parse-ok Boolean) for a time column of ``dtype``."""
    col, no = pl.col(cm.time), pl.lit(False)
    if cm.time_unit is not None and (dtype.is_integer() or dtype == pl.String):
        value = col.cast(pl.Int64, strict=False) if dtype.is_integer() else col.str.strip_chars().cast(
            pl.Int64, strict=False)
        factor = _NS_PER_UNIT[cm.time_unit]
        return pl.when(value.abs() <= _INT64_MAX // factor).then(value * factor), no
    if isinstance(dtype, pl.Date) or (isinstance(dtype, pl.Datetime) and dtype.time_zone is None):
        naive = col.cast(pl.Datetime("ns"))
        return _localize(naive, cm).dt.epoch("ns"), naive.is_not_null()
    if isinstance(dtype, pl.Datetime):  # aware: the physical value is already UTC
        return col.dt.epoch("ns"), no
    if dtype != pl.String:
        raise located_error(name, label, None, cm.time, "expected timestamp strings or datetimes (or integer "
                            f"epochs with ColumnMap(time_unit=...)), found dtype {dtype}")
    if cm.time_format is not None:
        parsed = col.str.strip_chars().str.to_datetime(cm.time_format, strict=False, time_unit="ns")
        out = pl.LazyFrame(schema={cm.time: pl.String}).select(parsed).collect_schema()[cm.time]
        if out.time_zone is not None:  # the format has an offset: polars gives UTC
            return parsed.dt.epoch("ns"), no
        return _localize(parsed, cm).dt.epoch("ns"), parsed.is_not_null()
    # ISO 8601 fast path: the common "YYYY-MM-DD HH:MM:SS[.f]+hh:mm"; other rows go to _iso_fallback
    return col.str.to_datetime(_ISO_AWARE[0], strict=False, time_unit="ns").dt.epoch("ns"), no


def _localize(naive: pl.Expr, cm: ColumnMap) -> pl.Expr:
    """Naive wall-clock time in ``cm.time_zone`` -> UTC; null when ambiguous or nonexistent."""
    local = naive.dt.replace_time_zone(cm.time_zone, ambiguous="null", non_existent="null")
    return local.dt.convert_time_zone("UTC")


def _iso_fallback(df: pl.DataFrame, cm: ColumnMap) -> pl.DataFrame:
    """Re-parse, in every accepted ISO 8601 form, the string timestamps the fast path left null."""
    if cm.time_unit is not None or cm.time_format is not None:
        return df
    retry = (df["time_ns"].is_null() & df["time_raw"].is_not_null()).arg_true()
    if retry.len() == 0:
        return df
    text = (pl.col("time_raw").str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2})[Tt]", "${1} ")
            .str.replace(r"[zZ]$", "+00:00"))
    aware = pl.coalesce([text.str.to_datetime(f, strict=False, time_unit="ns") for f in _ISO_AWARE])
    naive = pl.coalesce([text.str.to_datetime(f, strict=False, time_unit="ns") for f in _ISO_NAIVE])
    fixed = df[retry].select(pl.coalesce(aware, _localize(naive, cm)).dt.epoch("ns").alias("time_ns"),
                             naive.is_not_null().alias("_local_ok"))
    return df.with_columns(df[c].scatter(retry, fixed[c]) for c in ("time_ns", "_local_ok"))


def _value_expr(dtype: pl.DataType, column: str, name: str, label: str) -> pl.Expr:
    if dtype == pl.String:
        return pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
    if dtype.is_numeric():
        return pl.col(column).cast(pl.Float64)
    raise located_error(name, label, None, column, f"expected numbers, found dtype {dtype}")


def _normalize(name: str, lf: pl.LazyFrame, index: int, source: BarSource, label: str) -> pl.LazyFrame:
    """Canonical columns: _file, _row, time_ns, _local_ok, time_raw, open .. volume, open_raw .. volume_raw."""
    cm = source.columns
    try:
        schema = lf.collect_schema()
    except pl.exceptions.NoDataError as exc:
        expected = "a header line and at least one bar" if source.header else "at least one bar"
        raise located_error(name, label, None, None, f"empty source: expected {expected}, found an empty file") from exc
    except _READ_ERRORS as exc:
        what = "the header" if source.header else f"the first line as the columns {list(source.names or ())}"
        raise located_error(name, label, None, None, f"could not read {what}: {_one_line(exc)}") from exc
    wanted = [cm.source_name(f) for f in ("time", *VALUE_FIELDS)]
    missing = [c for c in dict.fromkeys(wanted) if c not in schema]
    if missing:
        where = "found" if source.header else "names given"
        hint = ""
        if source.header and name != "frame" and any(c[:1].isdigit() for c in schema):
            hint = ("; the header line looks like a row of data: for a CSV without a header line pass "
                    "header=False and names=[...] (every column of the file, in order)")
        raise located_error(name, label, None, None,
                            f"missing columns {missing}; expected {wanted}, {where} {list(schema)}{hint}")
    time_ns, local_ok = _time_exprs(schema[cm.time], cm, name, label)

    def raw(column: str) -> pl.Expr:  # the text of a cell, kept for messages
        return pl.col(column) if schema[column] == pl.String else pl.lit(None, pl.String)

    exprs = [pl.lit(index, pl.Int32).alias("_file"), pl.col("__bars_row__").cast(pl.Int64).alias("_row"),
             time_ns.cast(pl.Int64).alias("time_ns"), local_ok.alias("_local_ok"), raw(cm.time).alias("time_raw")]
    for f in VALUE_FIELDS:
        column = cm.source_name(f)
        exprs += [_value_expr(schema[column], column, name, label).alias(f), raw(column).alias(f"{f}_raw")]
    return lf.with_row_index("__bars_row__", offset=1).select(exprs)


def _collect(parts: list[tuple[str, pl.LazyFrame]], label: str) -> pl.DataFrame:
    try:
        return pl.concat([lf for _, lf in parts], how="vertical").collect()
    except _READ_ERRORS as exc:
        for name, lf in parts:  # find the file that failed, to name it
            try:
                lf.collect()
            except _READ_ERRORS as exc_one:
                raise located_error(name, label, None, None,
                                    f"could not be read as bars: {_one_line(exc_one)}") from exc_one
        names = ", ".join(n for n, _ in parts)
        raise BarDataError(f"{names} ({label}): could not be read as bars: {_one_line(exc)}") from exc


# ------------------------------------------------------------------ validation


def _row_checks(cm: ColumnMap) -> list[tuple[str, pl.Expr, str]]:
    """(canonical field, failing-row mask, message template), in the order they are reported.

    Templates are formatted with the failing row's values plus ``found`` (the cell's text),
    ``t`` and ``prev`` (this and the previous row's time as ISO 8601).
    """
    t, prev, same_file = pl.col("time_ns"), pl.col("time_ns").shift(1), pl.col("_file") == pl.col("_file").shift(1)
    unparsed = t.is_null() & ~pl.col("_local_ok")
    if cm.time_unit is not None:
        expected_time = f"an integer epoch in {cm.time_unit} within the int64 ns range"
    elif cm.time_format is not None:
        expected_time = f"a timestamp in format {cm.time_format!r}"
    else:
        expected_time = "an ISO 8601 timestamp such as '2023-03-01 00:00:00+00:00'"
    checks = [
        ("time", unparsed, f"expected {expected_time}, found {{found}}"),
        ("time", t.is_null() & pl.col("_local_ok"), f"expected an unambiguous local time in {cm.time_zone}, "
         "found {found}, which a daylight-saving change makes ambiguous or skipped"),
    ]
    checks += [(f, pl.col(f).is_null(), "expected a number, found {found}") for f in VALUE_FIELDS]
    for f in PRICE_FIELDS:
        checks += [(f, ~pl.col(f).is_finite(), f"expected a finite {f} price, found {{{f}!r}}"),
                   (f, pl.col(f) <= 0, f"expected a positive {f} price, found {{{f}!r}}")]
    checks += [
        ("volume", ~pl.col("volume").is_finite(), "expected a finite volume, found {volume!r}"),
        ("volume", pl.col("volume") < 0, "expected volume >= 0, found {volume!r}"),
        ("high", pl.col("high") < pl.col("low"), "high {high!r} is below low {low!r}"),
    ]
    for f in ("open", "close"):
        outside = (pl.col(f) < pl.col("low")) | (pl.col(f) > pl.col("high"))
        checks.append((f, outside, f"expected {f} within [low {{low!r}}, high {{high!r}}], found {{{f}!r}}"))
    checks += [
        ("time", same_file & (t < prev),
         "timestamps not increasing: expected a time after the previous row's {prev}, found {t}"),
        ("time", same_file & (t == prev), "duplicate timestamp {t}, same as the previous row; expected each time once"),
    ]
    return checks


def _check_rows(df: pl.DataFrame, files: list[str], cm: ColumnMap, label: str) -> None:
    checks = _row_checks(cm)
    # fill_null(False): a comparison with an unparsed (null) cell is reported by an earlier check
    masks = [mask.fill_null(False).alias(f"_c{i}") for i, (_, mask, _) in enumerate(checks)]
    flagged = df.with_columns(pl.col("time_ns").shift(1).alias("_prev")).with_columns(masks)
    counts = flagged.select(pl.col(f"_c{i}").sum() for i in range(len(checks))).row(0)
    for i, (field, _, template) in enumerate(checks):
        if counts[i]:
            r: dict[str, Any] = flagged.filter(pl.col(f"_c{i}")).row(0, named=True)
            raw = r[f"{field}_raw"]
            detail = template.format(**r, found="an empty cell (null)" if raw is None else repr(raw),
                                     t=_fmt_or_none(r["time_ns"]), prev=_fmt_or_none(r["_prev"]))
            more = f" ({counts[i]} rows of this source fail this check; the first is shown)" if counts[i] > 1 else ""
            raise located_error(files[r["_file"]], label, r["_row"], cm.source_name(field), detail + more)


def _fmt_or_none(time_ns: int | None) -> str:
    return "null" if time_ns is None else fmt_ns(time_ns)


def _order_files(df: pl.DataFrame, files: list[str], cm: ColumnMap, label: str) -> pl.DataFrame:
    """Put the files of a glob in time order; they must not overlap."""
    spans = (df.group_by("_file").agg(pl.col("time_ns").first().alias("first"), pl.col("time_ns").last().alias("last"))
             .sort("first").rows())
    for (f0, _, last0), (f1, first1, _) in zip(spans, spans[1:], strict=False):
        if first1 <= last0:
            what = "duplicate timestamp" if first1 == last0 else "files overlap in time"
            raise located_error(files[f1], label, 1, cm.time, f"{what}: expected a time after {fmt_ns(last0)} "
                                f"(the last bar of {files[f0]}), found {fmt_ns(first1)}")
    return df.sort("time_ns")


def read_source(source: BarSource) -> SourceBars:
    """Read every file or frame of ``source`` and validate every row; raise BarDataError if malformed."""
    cm, label = source.columns, f"{source.venue} {source.symbol}"
    parts = _resolve(source)
    files = [name for name, _ in parts]
    df = _collect([(name, _normalize(name, lf, i, source, label)) for i, (name, lf) in enumerate(parts)], label)
    df = _iso_fallback(df, cm)
    if df.height == 0:
        raise located_error(", ".join(files), label, None, None, "empty source: expected at least one bar, found none")
    _check_rows(df, files, cm, label)
    if len(files) > 1:
        df = _order_files(df, files, cm, label)
    arrays = {c: df[c].to_numpy() for c in ("_file", "_row", "time_ns", *VALUE_FIELDS)}
    return SourceBars(label=label, files=tuple(files), columns=cm, file_index=arrays["_file"], row=arrays["_row"],
                      time_ns=arrays["time_ns"], **{f: arrays[f] for f in VALUE_FIELDS})
