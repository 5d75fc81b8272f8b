"""Reading the episode store: what it holds (runs, episodes, files) and scans of it for Polars, pyarrow, pandas, DuckDB.

:class:`StoreReader` is the reading half of :class:`orderbook.analytics.store.EpisodeStore`
(which adds the writers). Keeps true: every read checks ``_schema.json`` first
(format, history schema version, layout version) and gives ``run`` as a string
and ``episode`` as an ``Int32`` whatever the store's layout version (padded or
unpadded episode folders, :mod:`orderbook.analytics.store_layout`); reads never
take a lock and never see a temporary file or a compaction's staging copy.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from orderbook.analytics.store_layout import (
    HIVE_SCHEMA,
    KINDS,
    VERSION_KEY,
    SchemaVersionError,
    check_kind,
    check_run,
    episode_of,
    read_schema,
)


class StoreReader:
    """What an episode store under ``self.root`` holds, and scans of it (no writes, no locks)."""

    root: Path

    # ------------------------------------------------------------ metadata
    def schema(self, write: bool = False) -> dict:
        """The contents of ``_schema.json``, after checking format, history schema version (any readable one, or
        the one this orderbook writes if ``write``) and layout version."""
        return read_schema(self.root, write)

    def runs(self) -> list[str]:
        found = {p.name[4:] for kind in KINDS for p in (self.root / kind).glob("run=*") if p.is_dir()}
        return sorted(found)

    def episodes(self, run: str) -> list[int]:
        found = {episode_of(p.name) for kind in KINDS for p in (self.root / kind / f"run={run}").glob("episode=*")}
        return sorted(found)

    def files(self, kind: str | None = None) -> list[Path]:
        """Every visible part file (of ``kind``, or all kinds), sorted."""
        kinds = KINDS if kind is None else (check_kind(kind),)
        return sorted(p for k in kinds for p in (self.root / k).glob("run=*/episode=*/part-*.parquet"))

    def verify(self) -> int:
        """Check every file's schema version metadata; returns the number of files."""
        version = str(self.schema()["schema_version"])
        paths = self.files()
        for path in paths:
            found = pl.read_parquet_metadata(path).get(VERSION_KEY)
            if found != version:
                raise SchemaVersionError(f"{path}: history schema version {found!r}, expected the store's {version}")
        return len(paths)

    # ---------------------------------------------------------------- read
    def scan(self, kind: str, run: str | None = None) -> pl.LazyFrame:
        """A lazy scan of every episode of ``kind`` (of ``run``), with ``run`` and
        ``episode`` columns first after ``lane``: ``run, lane, episode, ...``."""
        kind = check_kind(kind)
        self.schema()
        if not self.files(kind):
            raise FileNotFoundError(f"no {kind} files under {self.root / kind}: nothing written yet")
        lf = pl.scan_parquet(self.root / kind / "**" / "*.parquet", hive_partitioning=True, hive_schema=HIVE_SCHEMA)
        rest = [n for n in lf.collect_schema().names() if n not in ("run", "lane", "episode")]
        lf = lf.select("run", "lane", "episode", *rest)
        return lf if run is None else lf.filter(pl.col("run") == check_run(run))

    def read(self, kind: str, run: str | None = None) -> pl.DataFrame:
        return self.scan(kind, run).collect()

    def to_pandas(self, kind: str, run: str | None = None):
        """``read(kind, run).to_pandas()``: enums become pandas categoricals, ``episode`` stays an integer."""
        return self.read(kind, run).to_pandas()

    @staticmethod
    def partitioning():
        """The dataset's hive partitioning for pyarrow, pandas and Dask: ``run`` a string, ``episode`` an int32.

        Without it they infer ``episode`` as a dictionary (a pandas categorical)
        in directory order: numeric order in a store of layout version 2 (padded
        folders), 0, 1, 10, 11, 2, ... in one of layout version 1::

            pd.read_parquet(root / "events", partitioning=EpisodeStore.partitioning())
            dd.read_parquet(root / "events", dataset={"partitioning": EpisodeStore.partitioning()})
        """
        import pyarrow as pa
        import pyarrow.dataset as pads

        return pads.partitioning(pa.schema([("run", pa.string()), ("episode", pa.int32())]), flavor="hive")

    def dataset(self, kind: str):
        """A ``pyarrow.dataset.Dataset`` of ``kind`` with integer ``episode`` (hidden and ``_`` files ignored)."""
        import pyarrow.dataset as pads

        self.schema()
        return pads.dataset(self.root / check_kind(kind), format="parquet", partitioning=self.partitioning())

    def sql(self, connection=None):
        """A DuckDB connection with views over this store (``orderbook.analytics.store_sql``; needs the ``sql`` extra)."""
        from orderbook.analytics import store_sql
        return store_sql.connect(self, connection)
