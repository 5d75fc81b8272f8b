"""Reading one bar source into one frame of canonical columns: files, globs and frames, timestamps in any
accepted form, numbers from text.

Keeps true: every file or frame of a source becomes the same columns (``_file``,
``_row``, ``time_ns``, ``_local_ok``, ``time_raw``, ``open`` .. ``volume`` and
their ``*_raw`` texts), a cell that does not parse becomes null with its text kept
for the message (so :mod:`orderbook.market.bars_validate` reports it at its row);
a file that cannot be read, or lacks a column, raises :class:`BarDataError`
naming it. Nothing loops over rows in Python.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import polars as pl

from orderbook.market.bars_source import (
    _INT64_MAX,
    _ISO_AWARE,
    _ISO_NAIVE,
    _NS_PER_UNIT,
    _READ_ERRORS,
    VALUE_FIELDS,
    BarDataError,
    BarSource,
    ColumnMap,
    _one_line,
    located_error,
)


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
