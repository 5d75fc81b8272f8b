"""Pack the Binance.US sample bars into the package as compressed Parquet.

Reads the three 1-minute CSVs of ``<shared>/data/binance_us`` (``$ORDERBOOK_SHARED``,
else the ``shared`` folder beside the repository) with the bar loader's own reader,
so the values written are the float64 values the loader reads from the CSVs, and
writes ``orderbook/data/binance_us/BTC<quote>_1m_<dates>.parquet`` (zstd) plus a
README carrying the source's description and credit. Before it returns it loads
both and checks that the aligned bars are equal, array for array.

Run once when the sample changes::

    python scripts/pack_sample_data.py [--shared PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orderbook.market.bars import BarSource, load_bars  # noqa: E402
from orderbook.market.bars_validate import read_source  # noqa: E402
from orderbook.presets import BINANCE_US_QUOTES, default_shared_dir  # noqa: E402

NS_PER_MS = 1_000_000
ZSTD_LEVEL = 19  # 22 gives the same size on these files


def pack(csv: Path, out: Path, symbol: str) -> Path:
    """Write the bars of one CSV as Parquet: open_time Datetime(ms, UTC), open .. volume Float64."""
    bars = read_source(BarSource("binance_us", symbol, str(csv)))
    if np.any(bars.time_ns % NS_PER_MS):
        raise SystemExit(f"{csv}: expected timestamps on whole milliseconds")
    frame = pl.DataFrame({
        "open_time": pl.from_epoch(pl.Series(bars.time_ns // NS_PER_MS), time_unit="ms").dt.replace_time_zone("UTC"),
        **{name: getattr(bars, name) for name in ("open", "high", "low", "close", "volume")},
    })
    path = out / csv.with_suffix(".parquet").name
    frame.write_parquet(path, compression="zstd", compression_level=ZSTD_LEVEL, statistics=True)
    return path


def readme(shared_data: Path) -> str:
    """The source's README (its binance_us section on) and metadata.csv, with how the Parquet was made."""
    source = (shared_data / "README.md").read_text()
    section = source[source.index("## binance_us/"):].replace("## binance_us/\n", "## The source's description\n\n", 1)
    metadata = (shared_data / "binance_us" / "metadata.csv").read_text().strip()
    return (
        "# Binance.US sample bars (packaged)\n\n"
        "The three CSVs of the project's shared `data/binance_us` folder, as zstd Parquet\n"
        "(`open_time` Datetime UTC, `open`, `high`, `low`, `close`, `volume` Float64), made by\n"
        "`scripts/pack_sample_data.py`. Loaded with `orderbook.market.bars.load_bars`, they give the\n"
        "same aligned bars as the CSVs, value for value (tested). `orderbook.binance_us_sources()`,\n"
        "`binance_us_config()` and `gym.make(..., data=\"binance_us\")` read them when no shared\n"
        "folder is given.\n\n"
        f"{section.rstrip()}\n\n"
        "## Source metadata (metadata.csv)\n\n"
        f"```\n{metadata}\n```\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=default_shared_dir(), help="the shared folder holding data/")
    parser.add_argument("--out", type=Path, default=REPO / "orderbook" / "data" / "binance_us")
    args = parser.parse_args()
    shared_data = args.shared / "data"
    args.out.mkdir(parents=True, exist_ok=True)
    csv_sources, packed_sources = [], []
    for quote in BINANCE_US_QUOTES:
        (csv,) = sorted((shared_data / "binance_us").glob(f"BTC{quote}_1m_*.csv"))
        path = pack(csv, args.out, f"BTC/{quote}")
        csv_sources.append(BarSource("binance_us", f"BTC/{quote}", str(csv)))
        packed_sources.append(BarSource("binance_us", f"BTC/{quote}", str(path)))
        print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {path.stat().st_size / 1e6:.2f} MB")
    (args.out / "README.md").write_text(readme(shared_data))
    if load_bars(packed_sources) != load_bars(csv_sources):
        raise SystemExit("the packed bars differ from the CSV bars")
    print("packed bars equal the CSV bars")


if __name__ == "__main__":
    main()
