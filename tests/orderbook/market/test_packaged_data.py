"""The Binance.US sample shipped in the package: equal to the shared CSVs, and read when no shared folder is given."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import orderbook as ob
from orderbook.market.bars import load_bars
from orderbook.presets import BINANCE_US_QUOTES, binance_us_sources, packaged_data_dir

SHARED = Path(os.environ.get("ORDERBOOK_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
CSVS = [SHARED / "data" / "binance_us" / f"BTC{q}_1m_20230301_20230321.csv" for q in BINANCE_US_QUOTES]
needs_data = pytest.mark.skipif(not all(f.is_file() for f in CSVS), reason=f"no binance_us CSVs in {SHARED}")
PACKED = [packaged_data_dir() / f"BTC{q}_1m_20230301_20230321.parquet" for q in BINANCE_US_QUOTES]


def test_the_sample_is_three_small_zstd_parquet_files_with_their_credit_beside_them():
    assert all(p.is_file() for p in PACKED)
    assert sum(p.stat().st_size for p in PACKED) < 3_000_000
    for path in PACKED:
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows == 30240
        assert {meta.row_group(0).column(c).compression for c in range(meta.num_columns)} == {"ZSTD"}
    readme = (packaged_data_dir() / "README.md").read_text()
    assert "Binance.US" in readme and "public market-data API" in readme and "BTCUSD,1m" in readme


def test_without_a_shared_folder_the_sources_are_the_packaged_files(monkeypatch, tmp_path):
    monkeypatch.delenv("ORDERBOOK_SHARED", raising=False)
    sources = binance_us_sources(venue="v")
    assert [(s.venue, s.symbol) for s in sources] == [("v", f"BTC/{q}") for q in BINANCE_US_QUOTES]
    assert [Path(s.data).parent for s in sources] == [packaged_data_dir()] * 3
    assert all(str(s.data).endswith(".parquet") for s in sources)
    monkeypatch.setenv("ORDERBOOK_SHARED", str(tmp_path))  # the variable, or an explicit folder, means the CSVs
    for given in (None, tmp_path):
        with pytest.raises(ValueError, match=rf"no Binance.US data folder at {tmp_path}/data/binance_us"):
            binance_us_sources(given)


@needs_data
def test_packaged_bars_equal_the_csv_bars_exactly(monkeypatch):
    monkeypatch.delenv("ORDERBOOK_SHARED", raising=False)
    packed = load_bars(binance_us_sources())
    csv = load_bars(binance_us_sources(SHARED))
    assert packed == csv  # keys, step, time_ns and every (T, S) array, value for value
    assert packed.time_ns.shape == (30240,) and packed.step_ns == 60 * 10**9
    cfg_packed = ob.binance_us_config(episode_steps=10, start=0)
    cfg_csv = ob.binance_us_config(SHARED, episode_steps=10, start=0)
    assert cfg_packed.market.data == cfg_csv.market.data
