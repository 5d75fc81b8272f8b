"""One OHLCV bar source read and validated: :func:`read_source`, and the row-level checks.

Used by :mod:`orderbook.market.bars`, which aligns sources; this module imports nothing
of it. The source's description and errors are :mod:`orderbook.market.bars_source`,
reading its files :mod:`orderbook.market.bars_read` (both re-exported names stay
importable from here). A source (a CSV or Parquet file, a glob of such files, or a polars/pandas
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

from typing import Any

import polars as pl

from orderbook.market.bars_read import _collect, _iso_fallback, _normalize, _resolve
from orderbook.market.bars_source import (  # noqa: F401 (re-exported: the source, its errors and formats)
    PRICE_FIELDS,
    VALUE_FIELDS,
    BarDataError,
    BarSource,
    ColumnMap,
    SourceBars,
    fmt_duration,
    fmt_ns,
    located_error,
)

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
