"""Episodes on disk: a Parquet dataset partitioned by run and episode.

Layout (hive style, readable by Polars, pandas/pyarrow, DuckDB, Spark)::

    root/_schema.json
    root/<kind>/run=<run>/episode=<episode>/part-00000.parquet    kind: events, ledger, market

Choices:

- **Partitions.** ``run`` names a training or evaluation run; ``episode`` is the
  history's episode number, which counts per lane, so one partition holds that
  episode of every lane and ``lane`` stays a column. ``run`` and ``episode`` live
  only in the path (Spark refuses a column that is both in the files and in the
  partitioning); :meth:`EpisodeStore.scan` puts them back as columns.
- **Schema version** (:data:`orderbook.history.HISTORY_SCHEMA_VERSION`) is kept
  twice: in ``_schema.json`` at the root, which a reader checks once before
  scanning (with the column schema of each kind, recorded at its first write),
  and in each file's key-value metadata (``orderbook.history_schema_version``),
  so a file copied out of the dataset still says what it is
  (:meth:`EpisodeStore.verify` checks every file). Not a column: it would be the
  same value in every row of every query.
- **Atomic writes.** Every file is written to a hidden temporary file in its own
  directory (``.part-00003.parquet.<pid>-<nonce>.tmp``, which no ``*.parquet``
  glob matches), flushed, fsynced, then ``os.replace``-d into place and the
  directory fsynced. A call writes all its temporary files before it renames any,
  so a crash while writing leaves no new visible file; a crash between renames
  (microseconds) can leave some kinds of the call visible and not others, never
  a partial file. Appending writes new part files and never touches old ones.
- **Order across writes.** ``seq`` (a row's position in its log) restarts when a
  History is cleared; the store adds an offset so ``seq`` keeps increasing
  across a run's writes (stored as Int64) and "latest row" queries stay right
  when an episode spans several flushes.

Limits: one writer per run at a time (part numbers and ``seq`` offsets are
read from the directory at the first write); every :meth:`write_history` call
writes all rows the history holds, so call it once per history or with
``clear=True`` to flush periodically.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Iterable

import polars as pl

from orderbook.history import HISTORY_SCHEMA_VERSION

FORMAT = "orderbook-episodes"
KINDS = ("events", "ledger", "market")
SCHEMA_FILE = "_schema.json"
VERSION_KEY = "orderbook.history_schema_version"
HIVE_SCHEMA = {"run": pl.String, "episode": pl.Int32}
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_PART = re.compile(r"part-(\d+)\.parquet")


class SchemaVersionError(ValueError):
    """A dataset, or a file in it, written with another history schema version."""


def _write_parquet(frame: pl.DataFrame, fh, metadata: dict[str, str]) -> None:
    """The one call that writes Parquet bytes (tests replace it to simulate a crash)."""
    frame.write_parquet(fh, metadata=metadata, statistics=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _write_json_atomically(path: Path, payload: dict) -> None:
    tmp = _temporary(path)
    try:
        with open(tmp, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _dtypes(frame: pl.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.schema.items()}


class EpisodeStore:
    """A Parquet dataset of episodes under ``root`` (created if missing).

    >>> store = EpisodeStore("runs/episodes")              # doctest: +SKIP
    >>> store.write_history("ppo-seed0", ex.history, clear=True)
    >>> open_ = queries.open_orders(store.scan("events"))   # a LazyFrame
    >>> open_.collect().to_pandas()
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._next_seq: dict[tuple[str, str], int] = {}
        if not (self.root / SCHEMA_FILE).exists():
            self.root.mkdir(parents=True, exist_ok=True)
            layout = "<kind>/run=<run>/episode=<episode>/part-<n>.parquet"
            _write_json_atomically(
                self.root / SCHEMA_FILE,
                {"format": FORMAT, "schema_version": HISTORY_SCHEMA_VERSION, "partitioning": ["run", "episode"],
                 "layout": layout, "kinds": {}},
            )
        self.schema()

    # ------------------------------------------------------------ metadata
    def schema(self) -> dict:
        """The contents of ``_schema.json``, after checking format and version."""
        path = self.root / SCHEMA_FILE
        try:
            meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: expected the JSON schema file of an episode store, could not read it: {err}") from err
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: expected format {FORMAT!r}, found {meta.get('format')!r}")
        found = meta.get("schema_version")
        if found != HISTORY_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.root}: episodes were written with history schema version {found!r}; "
                f"this orderbook reads version {HISTORY_SCHEMA_VERSION}"
            )
        return meta

    def runs(self) -> list[str]:
        found = {p.name[4:] for kind in KINDS for p in (self.root / kind).glob("run=*") if p.is_dir()}
        return sorted(found)

    def episodes(self, run: str) -> list[int]:
        found = {int(p.name[8:]) for kind in KINDS for p in (self.root / kind / f"run={run}").glob("episode=*")}
        return sorted(found)

    def files(self, kind: str | None = None) -> list[Path]:
        """Every visible part file (of ``kind``, or all kinds), sorted."""
        kinds = KINDS if kind is None else (self._kind(kind),)
        return sorted(p for k in kinds for p in (self.root / k).glob("run=*/episode=*/part-*.parquet"))

    def verify(self) -> int:
        """Check every file's schema version metadata; returns the number of files."""
        self.schema()
        paths = self.files()
        for path in paths:
            found = pl.read_parquet_metadata(path).get(VERSION_KEY)
            if found != str(HISTORY_SCHEMA_VERSION):
                raise SchemaVersionError(f"{path}: history schema version {found!r}, expected {HISTORY_SCHEMA_VERSION}")
        return len(paths)

    def remove_temporary(self) -> list[Path]:
        """Delete temporary files a crashed writer left (call when no writer runs)."""
        stale = [p for k in KINDS for p in (self.root / k).glob("run=*/episode=*/.part-*.tmp")]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    # --------------------------------------------------------------- write
    def write_history(self, run: str, history, clear: bool = False) -> list[Path]:
        """Write every row ``history`` holds (all lanes and episodes); ``clear`` empties it after."""
        paths = self.write_episode(run, history.to_polars())
        if clear:
            history.clear()
        return paths

    def write_episode(self, run: str, frames: dict[str, pl.DataFrame]) -> list[Path]:
        """Append ``{"events": ..., "ledger": ..., "market": ...}`` (any subset, any
        lanes and episodes) as new part files, one per kind and episode.

        Returns the files written. Nothing becomes visible unless every file of
        the call was written and fsynced.
        """
        run = self._run(run)
        meta = self.schema()
        staged: list[tuple[Path, Path]] = []
        temporary: list[Path] = []
        recorded = dict(meta["kinds"])
        try:
            for kind, frame in frames.items():
                frame = self._prepare(run, self._kind(kind), frame)
                if frame.height == 0:
                    continue
                body = frame.drop("episode")
                self._check_columns(recorded, kind, body)
                for (episode,), part in frame.partition_by("episode", as_dict=True, maintain_order=True).items():
                    directory = self.root / kind / f"run={run}" / f"episode={episode}"
                    directory.mkdir(parents=True, exist_ok=True)
                    final = directory / f"part-{self._next_part(directory, staged):05d}.parquet"
                    tmp = _temporary(final)
                    temporary.append(tmp)
                    with open(tmp, "wb") as fh:
                        _write_parquet(part.drop("episode"), fh, {VERSION_KEY: str(HISTORY_SCHEMA_VERSION)})
                        fh.flush()
                        os.fsync(fh.fileno())
                    staged.append((tmp, final))
            if recorded != meta["kinds"]:
                _write_json_atomically(self.root / SCHEMA_FILE, {**meta, "kinds": recorded})
            for tmp, final in staged:
                os.replace(tmp, final)
            for directory in {final.parent for _, final in staged}:
                _fsync_dir(directory)
        finally:
            for tmp in temporary:
                tmp.unlink(missing_ok=True)
        self._advance_seq(run, frames)
        return [final for _, final in staged]

    def _prepare(self, run: str, kind: str, frame: pl.DataFrame) -> pl.DataFrame:
        if not isinstance(frame, pl.DataFrame):
            raise ValueError(f"{kind}: expected a polars DataFrame, got {type(frame).__name__}")
        missing = [c for c in ("lane", "episode") if c not in frame.columns]
        if missing:
            raise ValueError(f"{kind}: a history frame needs columns lane and episode, missing {missing}")
        if "run" in frame.columns:
            other = frame.filter(pl.col("run") != run)["run"].unique().to_list()
            if other:
                raise ValueError(f"{kind}: frame has rows of run(s) {other}, writing run {run!r}")
            frame = frame.drop("run")
        frame = frame.with_columns(pl.col("episode").cast(pl.Int32))
        if "seq" in frame.columns and frame.height:
            frame = frame.with_columns(pl.col("seq").cast(pl.Int64) + self._seq_offset(run, kind))
        return frame

    def _seq_offset(self, run: str, kind: str) -> int:
        if (run, kind) not in self._next_seq:
            directory = self.root / kind / f"run={run}"
            last = None
            if any(directory.glob("episode=*/part-*.parquet")):
                last = pl.scan_parquet(directory / "episode=*" / "part-*.parquet", hive_partitioning=False).select(pl.col("seq").max()).collect().item()
            self._next_seq[(run, kind)] = 0 if last is None else int(last) + 1
        return self._next_seq[(run, kind)]

    def _advance_seq(self, run: str, frames: dict[str, pl.DataFrame]) -> None:
        for kind, frame in frames.items():
            if "seq" in frame.columns and frame.height:
                self._next_seq[(run, kind)] = self._seq_offset(run, kind) + int(frame["seq"].max()) + 1

    @staticmethod
    def _check_columns(recorded: dict, kind: str, body: pl.DataFrame) -> None:
        dtypes = _dtypes(body)
        expected = recorded.setdefault(kind, dtypes)
        if expected != dtypes:
            diff = {k: (expected.get(k), dtypes.get(k)) for k in expected.keys() | dtypes.keys() if expected.get(k) != dtypes.get(k)}
            raise ValueError(f"{kind}: columns do not match the dataset's {kind} schema; (expected, got) per column: {diff}")

    @staticmethod
    def _next_part(directory: Path, staged: Iterable[tuple[Path, Path]]) -> int:
        used = [int(m.group(1)) for p in directory.iterdir() if (m := _PART.fullmatch(p.name))]
        used += [int(_PART.fullmatch(f.name).group(1)) for _, f in staged if f.parent == directory]
        return max(used, default=-1) + 1

    @staticmethod
    def _run(run: str) -> str:
        if not (isinstance(run, str) and _RUN.fullmatch(run)):
            raise ValueError(f"run must be 1-128 characters of letters, digits, '_', '.', '-', starting with a letter or digit, got {run!r}")
        return run

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        return kind

    # ---------------------------------------------------------------- read
    def scan(self, kind: str, run: str | None = None) -> pl.LazyFrame:
        """A lazy scan of every episode of ``kind`` (of ``run``), with ``run`` and
        ``episode`` columns first after ``lane``: ``run, lane, episode, ...``."""
        kind = self._kind(kind)
        self.schema()
        if not self.files(kind):
            raise FileNotFoundError(f"no {kind} files under {self.root / kind}: nothing written yet")
        lf = pl.scan_parquet(self.root / kind / "**" / "*.parquet", hive_partitioning=True, hive_schema=HIVE_SCHEMA)
        rest = [n for n in lf.collect_schema().names() if n not in ("run", "lane", "episode")]
        lf = lf.select("run", "lane", "episode", *rest)
        return lf if run is None else lf.filter(pl.col("run") == self._run(run))

    def read(self, kind: str, run: str | None = None) -> pl.DataFrame:
        return self.scan(kind, run).collect()

    def to_pandas(self, kind: str, run: str | None = None):
        """``read(kind, run).to_pandas()``: enums become pandas categoricals."""
        return self.read(kind, run).to_pandas()
