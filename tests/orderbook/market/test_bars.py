"""Tests of orderbook.market.bars: loading, timestamp parsing, alignment, located errors, invariants."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbook.market.bars import AlignedBars, BarDataError, BarSource, ColumnMap, load_bars

SHARED = Path(os.environ.get("ORDERBOOK_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
DATA = SHARED / "data" / "binance_us"
QUOTES = ("USD", "USDT", "USDC")
FILES = {q: DATA / f"BTC{q}_1m_20230301_20230321.csv" for q in QUOTES}
needs_data = pytest.mark.skipif(not all(f.is_file() for f in FILES.values()), reason=f"no binance_us CSVs in {DATA}")

STEP_NS = 60 * 10**9
T0_NS = 1_677_628_800 * 10**9  # 2023-03-01 00:00:00 UTC
HEADER = "open_time,open,high,low,close,volume"


def binance_sources(venue: str = "binance_us") -> list[BarSource]:
    return [BarSource(venue, f"BTC/{q}", FILES[q]) for q in QUOTES]


def iso_ns(text: str) -> int:
    dt = datetime.fromisoformat(text)
    return (int(dt.timestamp()) * 10**6 + dt.microsecond) * 1000


def bar_line(minute: int, o: object = 100.0, h: object = 101.0, lo: object = 99.0, c: object = 100.5,
             v: object = 1.0) -> str:
    return f"2023-03-01 00:{minute:02d}:00+00:00,{o},{h},{lo},{c},{v}"


def good_lines(n: int = 5, start_minute: int = 0, every: int = 1) -> list[str]:
    return [HEADER] + [bar_line(start_minute + i * every) for i in range(n)]


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------ real data


@needs_data
def test_binance_us_values_equal_the_files_read_with_csv_module() -> None:
    bars = load_bars(binance_sources())
    assert bars.time_ns.shape == (30240,) and bars.open.shape == (30240, 3)
    assert bars.step_ns == STEP_NS and np.all(np.diff(bars.time_ns) == STEP_NS)
    assert bars.present.all()
    for s, q in enumerate(QUOTES):
        with open(FILES[q], newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert bars.keys[s] == ("binance_us", f"BTC/{q}")
        for t in (0, 1, 17, 12345, len(rows) - 1):
            assert bars.time_ns[t] == iso_ns(rows[t]["open_time"])
            for name in ("open", "high", "low", "close", "volume"):
                assert getattr(bars, name)[t, s] == float(rows[t][name]), (q, t, name)
        zero_volume = sum(float(r["volume"]) == 0.0 for r in rows)
        assert zero_volume > 0  # zero-volume bars exist in the data and are kept as present
        assert int((bars.volume[:, s] == 0.0).sum()) == zero_volume


@needs_data
def test_arrays_read_only_and_to_polars_long_time_major() -> None:
    bars = load_bars(binance_sources())
    with pytest.raises(ValueError, match="read-only"):
        bars.close[0, 0] = 1.0
    long = bars.to_polars()
    assert long.columns == ["time", "venue", "symbol", "open", "high", "low", "close", "volume", "present"]
    assert long.schema["time"] == pl.Datetime("ns", "UTC") and long.height == 30240 * 3
    assert long.row(4, named=True)["symbol"] == "BTC/USDT"  # time 1, source 1
    assert long["close"][3 * 100 + 2] == bars.close[100, 2]
    assert long["time"][3 * 100].timestamp() * 10**9 == bars.time_ns[100]


@needs_data
def test_six_sources_two_venues_column_finds_each() -> None:
    bars = load_bars(binance_sources("binance_us") + binance_sources("mirror"))
    assert bars.open.shape == (30240, 6)
    for venue in ("binance_us", "mirror"):
        for q in QUOTES:
            assert bars.keys[bars.column(venue, f"BTC/{q}")] == (venue, f"BTC/{q}")
    for q in QUOTES:
        a, b = bars.column("binance_us", f"BTC/{q}"), bars.column("mirror", f"BTC/{q}")
        assert a != b
        np.testing.assert_array_equal(bars.close[:, a], bars.close[:, b])
    with pytest.raises(KeyError, match=re.escape("known (venue, symbol) keys: [('binance_us', 'BTC/USD')")):
        bars.column("nowhere", "BTC/USD")


@needs_data
def test_glob_polars_frame_and_pandas_frame_equal_files(tmp_path: Path) -> None:
    reference = load_bars(binance_sources())
    by_glob, by_polars, by_pandas = [], [], []
    for q in QUOTES:
        frame = pl.read_csv(FILES[q], infer_schema=False)
        # file names sort opposite to time order: the loader must order files by time
        for name, part in (("c", frame[:10000]), ("b", frame[10000:20000]), ("a", frame[20000:])):
            part.write_csv(tmp_path / f"{q}_{name}.csv")
        by_glob.append(BarSource("binance_us", f"BTC/{q}", str(tmp_path / f"{q}_*.csv")))
        by_polars.append(BarSource("binance_us", f"BTC/{q}", frame))
        by_pandas.append(BarSource("binance_us", f"BTC/{q}", pd.read_csv(FILES[q], parse_dates=["open_time"])))
    assert load_bars(by_glob) == reference
    assert load_bars(by_polars) == reference
    assert load_bars(by_pandas) == reference
    assert load_bars(by_pandas[:2]) != reference


def test_parquet_file_and_pandas_time_index_equal_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", good_lines(4))
    frame = pl.read_csv(path, try_parse_dates=True)
    assert frame.schema["open_time"] == pl.Datetime("us", "UTC")  # typed, unlike the CSV read
    frame.write_parquet(tmp_path / "bars.parquet")
    indexed = pd.read_csv(path, parse_dates=["open_time"]).set_index("open_time")
    expected = load_bars([BarSource("v", "BTC/USD", path)])
    assert expected.time_ns[-1] == T0_NS + 3 * STEP_NS
    assert load_bars([BarSource("v", "BTC/USD", tmp_path / "bars.parquet")]) == expected
    assert load_bars([BarSource("v", "BTC/USD", indexed)]) == expected


def test_csv_without_header_equals_the_same_file_with_one(tmp_path: Path) -> None:
    lines = good_lines(6)
    expected = load_bars([BarSource("v", "BTC/USD", write(tmp_path, "with.csv", lines))])
    bare = BarSource("v", "BTC/USD", write(tmp_path, "without.csv", lines[1:]), header=False, names=list(NAMES))
    assert bare.names == NAMES  # kept as a tuple: the source stays immutable
    assert load_bars([bare]) == expected
    for part, rows in (("b", lines[1:4]), ("a", lines[4:])):  # a glob of headerless files, put in time order
        write(tmp_path, f"part_{part}.csv", rows)
    assert load_bars([BarSource("v", "BTC/USD", str(tmp_path / "part_*.csv"), header=False, names=NAMES)]) == expected
    # an exchange's kline export: no header, epoch milliseconds, columns beyond the six (Binance's layout)
    names = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
             "taker_buy_volume", "taker_buy_quote_volume", "ignore")
    klines = [f"{(T0_NS + m * STEP_NS) // 10**6},100.0,101.0,99.0,100.5,1.0,{(T0_NS + (m + 1) * STEP_NS) // 10**6 - 1},"
              "100.5,3,0.5,50.25,0" for m in range(6)]
    source = BarSource("v", "BTC/USD", write(tmp_path, "klines.csv", klines), ColumnMap(time_unit="ms"), header=False,
                       names=names)
    assert load_bars([source]) == expected


# ------------------------------------------------------------------ timestamps


def parsed_ns(values: list[object], columns: ColumnMap) -> np.ndarray:
    frame = pl.DataFrame({"open_time": values, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0})
    return load_bars([BarSource("v", "BTC/USD", frame, columns)], step_ns=STEP_NS).time_ns


def test_integer_epoch_ms() -> None:
    got = parsed_ns([1_677_628_800_000, 1_677_628_860_000], ColumnMap(time_unit="ms"))
    np.testing.assert_array_equal(got, [T0_NS, T0_NS + STEP_NS])


def test_integer_epoch_seconds_as_csv_text(tmp_path: Path) -> None:
    path = write(tmp_path, "epoch.csv", [HEADER, "1677628800,1,1,1,1,0", " 1677628860 ,1,1,1,1,0"])
    bars = load_bars([BarSource("v", "BTC/USD", path, ColumnMap(time_unit="s"))])
    np.testing.assert_array_equal(bars.time_ns, [T0_NS, T0_NS + STEP_NS])


def test_custom_time_format() -> None:
    got = parsed_ns(["01/03/2023 00:00", "01/03/2023 00:01"], ColumnMap(time_format="%d/%m/%Y %H:%M"))
    np.testing.assert_array_equal(got, [T0_NS, T0_NS + STEP_NS])


def test_naive_new_york_time_in_winter_and_summer() -> None:
    new_york = ColumnMap(time_zone="America/New_York")
    assert parsed_ns(["2023-03-01 09:30:00"], new_york)[0] == T0_NS + (14 * 60 + 30) * STEP_NS  # EST = UTC-5
    summer = datetime(2023, 7, 3, 13, 30, tzinfo=UTC)  # EDT = UTC-4
    assert parsed_ns(["2023-07-03 09:30:00"], new_york)[0] == int(summer.timestamp()) * 10**9
    assert parsed_ns(["2023-07-03 09:30:00+00:00"], new_york)[0] == int(summer.timestamp() - 4 * 3600) * 10**9


@pytest.mark.parametrize("text, expected_ns", [
    ("2023-03-01T00:00:00Z", T0_NS),
    ("2023-03-01 01:00:00+01:00", T0_NS),
    ("2023-02-28T19:00:00-05:00", T0_NS),
    ("2023-03-01T00:00:00.250Z", T0_NS + 250_000_000),
    ("2023-03-01 00:00", T0_NS),
    ("  2023-03-01 00:00:00+0000 ", T0_NS),
])
def test_iso_8601_variants(text: str, expected_ns: int) -> None:
    assert parsed_ns([text], ColumnMap())[0] == expected_ns


def test_aware_datetimes_converted_to_utc() -> None:
    assert parsed_ns([datetime(2023, 2, 28, 19, 0, tzinfo=ZoneInfo("America/New_York"))], ColumnMap())[0] == T0_NS


# ------------------------------------------------------------------ alignment


def frame_of(minutes: list[int], close0: float = 100.0, volume: float = 1.0) -> pl.DataFrame:
    closes = [close0 + m for m in minutes]
    return pl.DataFrame({"open_time": [T0_NS + m * STEP_NS for m in minutes], "open": [c - 0.5 for c in closes],
                         "high": [c + 1.0 for c in closes], "low": [c - 1.0 for c in closes], "close": closes,
                         "volume": [volume] * len(minutes)})


def test_clock_is_intersection_and_gaps_are_filled() -> None:
    ns = ColumnMap(time_unit="ns")
    a = BarSource("a", "BTC/USD", frame_of([0, 1, 3, 4, 7, 8, 9]), ns)  # missing 2 (the clock's start), 5, 6
    b = BarSource("b", "BTC/USD", frame_of(list(range(2, 13)), close0=200.0), ns)
    bars = load_bars([a, b])
    np.testing.assert_array_equal(bars.time_ns, T0_NS + np.arange(2, 10) * STEP_NS)
    np.testing.assert_array_equal(bars.present[:, 0], [False, True, True, False, False, True, True, True])
    assert bars.present[:, 1].all()
    for t, carried_from_minute in ((0, 1), (3, 4), (4, 4)):  # minute 2 carries minute 1, before the clock
        for name in ("open", "high", "low", "close"):
            assert getattr(bars, name)[t, 0] == 100.0 + carried_from_minute
        assert bars.volume[t, 0] == 0.0
    assert (bars.open[1, 0], bars.close[1, 0], bars.volume[1, 0]) == (102.5, 103.0, 1.0)
    np.testing.assert_array_equal(bars.close[:, 1], 200.0 + np.arange(2, 10))


def test_zero_volume_bar_in_data_is_present_and_kept() -> None:
    bars = load_bars([BarSource("a", "BTC/USD", frame_of([0, 1, 2], volume=0.0), ColumnMap(time_unit="ns"))])
    assert bars.present.all() and (bars.volume == 0.0).all()
    assert bars.open[1, 0] == 100.5  # the bar's own open, not the previous close


def test_explicit_step_ns_accepts_sparse_source() -> None:
    source = BarSource("a", "BTC/USD", frame_of([0, 2, 4, 5]), ColumnMap(time_unit="ns"))
    bars = load_bars([source], step_ns=STEP_NS)
    np.testing.assert_array_equal(bars.present[:, 0], [True, False, True, False, True, True])


# ------------------------------------------------------------------ malformed inputs


def loc(file: str, row: int, column: str) -> str:
    return re.escape(f"{file} (v BTC/USD) row {row}, column '{column}'")


def replaced(row: int, line: str) -> list[str]:
    lines = good_lines()
    lines[row] = line
    return lines


def one(lines: list[str], name: str = "bad.csv", **columns: object):
    return lambda tmp: [BarSource("v", "BTC/USD", write(tmp, name, lines), ColumnMap(**columns))]


NAMES = tuple(HEADER.split(","))


def headerless(lines: list[str], names: tuple[str, ...] = NAMES, name: str = "bad.csv", **columns: object):
    """A CSV of ``lines`` (data only, no header line) read with ``names``; row n is line n."""
    return lambda tmp: [BarSource("v", "BTC/USD", write(tmp, name, lines), ColumnMap(**columns), header=False,
                                  names=names)]


def touched(tmp: Path, name: str) -> Path:
    """An empty file."""
    (tmp / name).touch()
    return tmp / name


def two(lines_v: list[str], lines_w: list[str]):
    return lambda tmp: [BarSource("v", "BTC/USD", write(tmp, "a.csv", lines_v)),
                        BarSource("w", "BTC/USD", write(tmp, "b.csv", lines_w))]


def glob_of(parts: dict[str, list[str]]):
    def build(tmp: Path) -> list[BarSource]:
        for name, lines in parts.items():
            write(tmp, name, lines)
        return [BarSource("v", "BTC/USD", str(tmp / "part*.csv"))]
    return build


def frame_with_bad_row(tmp: Path) -> list[BarSource]:
    return [BarSource("v", "BTC/USD", pl.read_csv(write(tmp, "f.csv", replaced(2, bar_line(1, h=98.0)))))]


def shifted(line: str) -> str:
    return line.replace(":00+00:00", ":30+00:00")


GRID = ": timestamp not on the bar grid: expected a time on the 60 s grid that most bars of this source follow, "
MALFORMED = [  # (id, build sources from tmp_path, regex the message must match)
    ("missing columns", one([HEADER.replace(",low", "").replace(",volume", ""), "2023-03-01,1,1,1"]),
     r"bad\.csv \(v BTC/USD\): missing columns \['low', 'volume'\].*found \['open_time', 'open', 'high', 'close'\]"),
    ("unparseable time", one(replaced(3, shifted(bar_line(2)).replace(":02:", ":0x:"))),
     loc("bad.csv", 3, "open_time") + ": expected an ISO 8601 timestamp.*, found '2023-03-01 00:0x:30"),
    ("empty time cell", one(replaced(2, ",100,101,99,100.5,1")), loc("bad.csv", 2, "open_time") + ".*empty cell"),
    ("blank line", one(good_lines(2) + [""] + good_lines(2, 2)[1:]), loc("bad.csv", 3, "open_time") + ".*empty cell"),
    ("bad epoch", one([HEADER, "1677628800,1,1,1,1,0", "12e3,1,1,1,1,0"], time_unit="s"),
     loc("bad.csv", 2, "open_time") + ": expected an integer epoch in s.*found '12e3'"),
    ("epoch out of range", one([HEADER, "99999999999999999,1,1,1,1,0"], time_unit="s"),
     loc("bad.csv", 1, "open_time") + ": expected an integer epoch in s within the int64 ns range"),
    ("bad custom format", one(good_lines(), time_format="%d/%m/%Y %H:%M"),
     loc("bad.csv", 1, "open_time") + re.escape(": expected a timestamp in format '%d/%m/%Y %H:%M'") + r".*\(5 rows"),
    ("ambiguous local time", one([HEADER, "2023-11-05 01:30:00,1,1,1,1,0"], time_zone="America/New_York"),
     loc("bad.csv", 1, "open_time") + ": expected an unambiguous local time in America/New_York"),
    ("non-monotonic", one(replaced(4, bar_line(1))), loc("bad.csv", 4, "open_time") + ": timestamps not increasing: "
     "expected a time after the previous row's 2023-03-01T00:02:00Z, found 2023-03-01T00:01:00Z"),
    ("duplicate time", one(replaced(3, bar_line(1))),
     loc("bad.csv", 3, "open_time") + ": duplicate timestamp 2023-03-01T00:01:00Z"),
    ("off grid", one(replaced(3, shifted(bar_line(2)))), loc("bad.csv", 3, "open_time") + re.escape(
        GRID + "such as 2023-03-01T00:02:00Z or 2023-03-01T00:03:00Z, found 2023-03-01T00:02:30Z (1 bar(s)")),
    ("first bar off grid", one(replaced(1, shifted(bar_line(0)))), loc("bad.csv", 1, "open_time") + re.escape(GRID)),
    ("unparseable price", one(replaced(2, bar_line(1, c="abc"))),
     loc("bad.csv", 2, "close") + ": expected a number, found 'abc'"),
    ("NaN price", one(replaced(2, bar_line(1, h="nan"))),
     loc("bad.csv", 2, "high") + ": expected a finite high price, found nan"),
    ("inf price", one(replaced(5, bar_line(4, lo="-inf"))),
     loc("bad.csv", 5, "low") + ": expected a finite low price, found -inf"),
    ("negative price", one(replaced(2, bar_line(1, lo=-1.0))),
     loc("bad.csv", 2, "low") + ": expected a positive low price, found -1.0"),
    ("zero price", one(replaced(2, bar_line(1, o=0))),
     loc("bad.csv", 2, "open") + ": expected a positive open price, found 0.0"),
    ("NaN volume", one(replaced(2, bar_line(1, v="NaN"))),
     loc("bad.csv", 2, "volume") + ": expected a finite volume, found nan"),
    ("negative volume", one(replaced(3, bar_line(2, v=-2.0))),
     loc("bad.csv", 3, "volume") + ": expected volume >= 0, found -2.0"),
    ("high below low", one(replaced(2, bar_line(1, h=23100.5, lo=23110.0, o=23105.0, c=23105.0))),
     loc("bad.csv", 2, "high") + ": high 23100.5 is below low 23110.0"),
    ("open above high", one(replaced(2, bar_line(1, o=102.0))),
     loc("bad.csv", 2, "open") + re.escape(": expected open within [low 99.0, high 101.0], found 102.0")),
    ("close below low", one(replaced(2, bar_line(1, c=98.0))),
     loc("bad.csv", 2, "close") + re.escape(": expected close within [low 99.0, high 101.0], found 98.0")),
    ("many bad rows counted", one([HEADER] + [bar_line(m, c=98.0) for m in range(4)]),
     loc("bad.csv", 1, "close") + r".*\(4 rows of this source fail this check; the first is shown\)"),
    ("empty source", one([HEADER]), r"bad\.csv \(v BTC/USD\): empty source: expected at least one bar, found none"),
    ("empty file", one([], name="nothing.csv"), r"nothing\.csv \(v BTC/USD\): empty source: expected a header line"),
    ("glob matches nothing", lambda tmp: [BarSource("v", "BTC/USD", str(tmp / "none*.csv"))],
     r"none\*\.csv \(v BTC/USD\): empty source: expected a file or a glob matching at least one file"),
    ("ragged csv line", one(good_lines() + [bar_line(9) + ",7"]), r"bad\.csv \(v BTC/USD\): could not be read as bars"),
    ("unsupported suffix", one(good_lines(), name="bars.txt"), r"bars\.txt \(v BTC/USD\): expected a \.csv, \.parquet"),
    ("error in a frame", frame_with_bad_row,
     re.escape("frame (v BTC/USD) row 2, column 'high': high 98.0 is below low 99.0")),
    ("glob files overlap", glob_of({"part1.csv": good_lines(5), "part2.csv": good_lines(3, start_minute=4)}),
     loc("part2.csv", 1, "open_time") + r": duplicate timestamp: expected a time after 2023-03-01T00:04:00Z "
     r"\(the last bar of \S*part1\.csv\)"),
    ("duplicate keys", lambda tmp: [BarSource("v", "BTC/USD", write(tmp, "a.csv", good_lines()))] * 2,
     re.escape("duplicate source key (venue, symbol) = ('v', 'BTC/USD') at positions 0 and 1")),
    ("intervals differ", two(good_lines(), good_lines(every=2)),
     r"intervals differ: expected one interval for all sources, found v BTC/USD 60 s, w BTC/USD 120 s"),
    ("single bars, no interval", one([HEADER, bar_line(0)]),
     r"cannot infer the bar interval: every source \(v BTC/USD\)"),
    ("no overlap in time", two(good_lines(3), good_lines(3, start_minute=10)), r"do not overlap in time.*latest first "
     r"bar 2023-03-01T00:10:00Z after the earliest last bar 2023-03-01T00:02:00Z"),
    ("grids out of phase", two(good_lines(), [HEADER] + [shifted(bar_line(m)) for m in range(5)]),
     re.escape("b.csv (w BTC/USD) row 1, column 'open_time': timestamp not on the common bar grid")),
    # CSVs without a header line: rows are line numbers
    ("no header: bad price", headerless(replaced(2, bar_line(1, c="abc"))[1:]),
     loc("bad.csv", 2, "close") + ": expected a number, found 'abc'"),
    ("no header: renamed column", headerless([f"{m},1,1,1,1,0" for m in (0, 60, 59)], names=("t", "o", "h", "l", "c", "v"),
                                             time="t", open="o", high="h", low="l", close="c", volume="v", time_unit="s"),
     loc("bad.csv", 3, "t") + ": timestamps not increasing"),
    ("no header: short row", headerless(good_lines()[1:] + ["2023-03-01 00:05:00+00:00,100,101,99"]),
     loc("bad.csv", 6, "close") + ": expected a number, found an empty cell"),
    ("no header: too few names", headerless(good_lines()[1:], names=NAMES[:5]),
     re.escape("bad.csv (v BTC/USD) row 1: expected 5 columns, one per name in ") + r".*found 6 in the first line"),
    ("no header: a mapped column not named", headerless(good_lines()[1:], names=(*NAMES[:5], "vol")),
     r"bad\.csv \(v BTC/USD\): missing columns \['volume'\]; expected .*, names given \[.*'vol'\]"),
    ("no header: empty file", lambda tmp: [BarSource("v", "BTC/USD", touched(tmp, "nothing.csv"), header=False, names=NAMES)],
     r"nothing\.csv \(v BTC/USD\): empty source: expected at least one bar, found an empty file"),
    ("no header: not a csv", lambda tmp: [BarSource("v", "BTC/USD", touched(tmp, "bars.parquet"), header=False, names=NAMES)],
     r"bars\.parquet \(v BTC/USD\): header=False is for CSV files without a header line; expected a \.csv file"),
    ("header expected, data found", one(good_lines()[1:]),
     r"missing columns .* the header line looks like a row of data: for a CSV without a header line pass "
     r"header=False and names=\[\.\.\.\]"),
]


@pytest.mark.parametrize("build, match", [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_malformed_input_raises_located_error(tmp_path: Path, build, match: str) -> None:
    sources = build(tmp_path)
    with pytest.raises(BarDataError, match=match):
        load_bars(sources)


def test_explicit_step_ns_off_grid_names_row(tmp_path: Path) -> None:
    source = BarSource("v", "BTC/USD", write(tmp_path, "bad.csv", good_lines()))
    with pytest.raises(BarDataError, match=loc("bad.csv", 2, "open_time") + ": .* on the 120 s grid"):
        load_bars([source], step_ns=2 * STEP_NS)


@pytest.mark.parametrize("make, match", [
    (lambda: ColumnMap(time_unit="h"), r"time_unit: expected one of \['ms', 'ns', 's', 'us'\] or None, found 'h'"),
    (lambda: ColumnMap(time_zone="Mars/Olympus"), r"time_zone: expected an IANA zone name.*found 'Mars/Olympus'"),
    (lambda: BarSource("v", "BTCUSD", "x.csv"), r"symbol: expected 'BASE/QUOTE'.*found 'BTCUSD'"),
    (lambda: load_bars([]), r"expected at least one BarSource, found none"),
    (lambda: load_bars([BarSource("v", "BTC/USD", pl.DataFrame())], step_ns=0), r"positive integer.*found 0"),
    (lambda: load_bars([BarSource("v", "BTC/USD", [1, 2])]), r"expected a path, a glob.*found list"),
    (lambda: BarSource("v", "BTC/USD", "x.csv", header="no"), r"header: expected True or False, found 'no'"),
    (lambda: BarSource("v", "BTC/USD", "x.csv", header=False), r"names: with header=False, expected a list of the "
     r"CSV's column names in file order \(non-empty strings\), found None"),
    (lambda: BarSource("v", "BTC/USD", "x.csv", header=False, names="open_time,open"), r"names: .*found 'open_time"),
    (lambda: BarSource("v", "BTC/USD", "x.csv", header=False, names=["a", "", "c"]), r"names: .*found \['a', '', 'c'\]"),
    (lambda: BarSource("v", "BTC/USD", "x.csv", header=False, names=["a", "b", "a"]),
     r"names: expected each column name once, found \['a'\] more than once"),
    (lambda: BarSource("v", "BTC/USD", "x.csv", names=NAMES), r"names: expected None for a source with a header line"),
    (lambda: BarSource("v", "BTC/USD", pl.DataFrame(), header=False, names=NAMES),
     r"header=False is for CSV files without a header line, found data of type DataFrame"),
])
def test_bad_configuration_raises(make, match: str) -> None:
    with pytest.raises(BarDataError, match=match):
        make()


# ------------------------------------------------------------------ properties


@st.composite
def sparse_sources(draw: st.DrawFn) -> list[tuple[list[int], pl.DataFrame]]:
    """1-3 valid sources on a 60 s grid with random gaps; all contain minute 6, so they overlap."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        first, last = draw(st.integers(0, 6)), draw(st.integers(6, 14))
        minutes = [m for m in range(first, last + 1) if m in (first, 6, last) or draw(st.booleans())]
        n = len(minutes)
        low, span, u_open, u_close = (draw(st.lists(st.floats(lo, hi), min_size=n, max_size=n))
                                      for lo, hi in ((1.0, 1e5), (0.0, 100.0), (0.0, 1.0), (0.0, 1.0)))
        out.append((minutes, pl.DataFrame({
            "open_time": [T0_NS + m * STEP_NS for m in minutes],
            "open": [lo + u * s for lo, u, s in zip(low, u_open, span, strict=True)],
            "high": [lo + s for lo, s in zip(low, span, strict=True)], "low": low,
            "close": [lo + u * s for lo, u, s in zip(low, u_close, span, strict=True)],
            "volume": draw(st.lists(st.sampled_from([0.0, 0.5, 3.25]), min_size=n, max_size=n)),
        })))
    return out


@settings(max_examples=60, deadline=None)
@given(sparse_sources())
def test_aligned_bars_invariants(generated: list[tuple[list[int], pl.DataFrame]]) -> None:
    ns = ColumnMap(time_unit="ns")
    bars: AlignedBars = load_bars([BarSource(f"v{i}", "BTC/USD", f, ns) for i, (_, f) in enumerate(generated)],
                                  step_ns=STEP_NS)
    start, end = max(m[0] for m, _ in generated), min(m[-1] for m, _ in generated)
    np.testing.assert_array_equal(bars.time_ns, T0_NS + np.arange(start, end + 1) * STEP_NS)
    assert np.all(np.diff(bars.time_ns) == STEP_NS) and bars.step_ns == STEP_NS
    assert np.all(bars.low <= bars.open) and np.all(bars.open <= bars.high)
    assert np.all(bars.low <= bars.close) and np.all(bars.close <= bars.high)
    for s, (minutes, frame) in enumerate(generated):
        by_minute = dict(zip(minutes, frame.iter_rows(named=True), strict=True))
        previous_close = frame["close"][max(i for i, m in enumerate(minutes) if m <= start)]
        for t, minute in enumerate(range(start, end + 1)):
            assert bars.present[t, s] == (minute in by_minute)
            if minute in by_minute:
                row = by_minute[minute]
                assert [bars.open[t, s], bars.high[t, s], bars.low[t, s], bars.close[t, s], bars.volume[t, s]] == [
                    row["open"], row["high"], row["low"], row["close"], row["volume"]]
            else:
                assert bars.open[t, s] == bars.high[t, s] == bars.low[t, s] == bars.close[t, s] == previous_close
                assert bars.volume[t, s] == 0.0
            previous_close = bars.close[t, s]


@settings(max_examples=25, deadline=None)
@given(frame=sparse_sources().map(lambda generated: generated[0][1]), order=st.permutations(list(range(7))))
def test_headerless_csv_in_any_column_order_equals_the_frame(frame: pl.DataFrame, order: list[int]) -> None:
    columns = ColumnMap(time_unit="ns")
    expected = load_bars([BarSource("v", "BTC/USD", frame, columns)], step_ns=STEP_NS)
    wide = frame.with_columns(pl.lit("x").alias("note"))
    wide = wide.select([wide.columns[i] for i in order])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars.csv"
        wide.write_csv(path, include_header=False)
        got = load_bars([BarSource("v", "BTC/USD", path, columns, header=False, names=wide.columns)], step_ns=STEP_NS)
    assert got == expected
