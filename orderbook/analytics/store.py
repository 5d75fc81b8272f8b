"""Episodes on disk: a Parquet dataset partitioned by run and episode, and its writers.

The layout (folders, the padded episode partitions and their layout versions,
``_schema.json``, atomic file writes) is :mod:`orderbook.analytics.store_layout`;
reading and scanning is :mod:`orderbook.analytics.store_read` (:class:`EpisodeStore`
inherits it). This module holds :class:`EpisodeStore`'s writes.

Choices:

- **Partitions.** ``run`` names a training or evaluation run; ``episode`` is the
  history's episode number, which counts per lane, so one partition holds that
  episode of every lane and ``lane`` stays a column. ``run`` and ``episode`` live
  only in the path (Spark refuses a column that is both in the files and in the
  partitioning); :meth:`EpisodeStore.scan` puts them back as columns.
- **Schema version** (:data:`orderbook.history.logs.HISTORY_SCHEMA_VERSION`) is kept
  twice: in ``_schema.json`` at the root, which a reader checks once before
  scanning (with the column schema of each kind, recorded at its first write),
  and in each file's key-value metadata (``orderbook.history_schema_version``),
  so a file copied out of the dataset still says what it is
  (:meth:`EpisodeStore.verify` checks every file). Not a column: it would be the
  same value in every row of every query.
- **Atomic writes.** Every file is written to a hidden temporary file in its own
  directory, fsynced and renamed into place (:mod:`orderbook.analytics.store_layout`).
  A call writes all its temporary files before it renames any, so a crash while
  writing leaves no new visible file; a crash between renames (microseconds) can
  leave some kinds of the call visible and not others, never a partial file.
  Appending writes new part files and never touches old ones.
- **Order across writes.** ``seq`` (a row's position in its log) restarts when a
  History is cleared; the store adds an offset so ``seq`` keeps increasing
  across a run's writes (stored as Int64) and "latest row" queries stay right
  when an episode spans several flushes.
- **One writer per run, enforced** (:mod:`orderbook.analytics.store_lock`). Part numbers
  and ``seq`` offsets are read from the run's directory when a writer starts, so
  two writers of one run would overwrite each other's parts and share ``seq``
  values. The first write to a run (or :meth:`EpisodeStore.open_run`, a
  :meth:`~EpisodeStore.compact` or :meth:`~EpisodeStore.describe_run`) takes an
  exclusive ``flock`` on ``root/_locks/run=<run>.lock`` recording the holder (pid,
  host, start time); another process is refused at once with
  :class:`RunLockedError` naming the run and the holder. Store objects of one
  process share the hold and the run's ``seq`` counter, and their writes are
  serialised; it is released by :meth:`EpisodeStore.close` (or a ``with`` block,
  or garbage collection) once no store of the process has the run open, and by
  the kernel when the process dies: a dead writer never blocks, and taking the
  lock removes the temporary files and compaction leftovers it left. A forked
  child does not inherit it. Distinct runs are written concurrently; their shared
  ``_schema.json`` is updated under ``_locks/_schema.lock``.
- **Compaction** (:mod:`orderbook.analytics.store_compact`): each partition's parts merged
  into one file and swapped in atomically; readers never see a half state and a
  crash leaves every row exactly once.
- **Runs table** (:mod:`orderbook.analytics.store_runs`): ``root/_runs/run=<run>.json`` per
  run (env id, config, seeds, package version, created), one table through
  :meth:`EpisodeStore.runs_table`.
- **Time and partition types.** ``time_utc`` (``Datetime("us", "UTC")``) is written
  beside the exact ``time_ns`` (stores created before it keep their columns);
  partition folders sort as their episodes (layout version 2, see
  :mod:`orderbook.analytics.store_layout`), and :meth:`EpisodeStore.partitioning`
  gives pyarrow, pandas and Dask ``episode`` as an int32 rather than a dictionary.
- **Local paths only.** An object-store URL is refused with an error saying how to
  get there (locks and atomic renames need a POSIX filesystem); ``file://`` is a
  path. SQL over the store: :mod:`orderbook.analytics.store_sql`; readers of other engines:
  ``docs/scaling.md``.

Limits: every :meth:`write_history` call writes all rows the history holds, so
call it once per history or with ``clear=True`` to flush periodically. The locks
are advisory ``flock`` locks, on network filesystems only as good as their
``flock``; lock files stay in ``_locks`` (deleting one while another process waits
on it would let two writers in).
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from orderbook.analytics import store_compact, store_lock, store_runs
from orderbook.analytics.store_compact import STAGING_DIR, Compaction
from orderbook.analytics.store_layout import (  # noqa: F401 (FORMAT, HIVE_SCHEMA, SchemaVersionError, utc_time re-exported)
    FORMAT,
    HIVE_SCHEMA,
    KINDS,
    TIME_COLUMN,
    VERSION_KEY,
    SchemaVersionError,
    check_episodes,
    check_kind,
    check_run,
    column_dtypes,
    episode_folder,
    fsync_dir,
    layout_version,
    local_root,
    new_schema,
    part_number,
    temporary,
    utc_time,
    write_json_atomically,
)
from orderbook.analytics.store_lock import _TOKENS, _WRITERS, LOCK_DIR, SCHEMA_FILE, RunLockedError, _RunWriter  # noqa: F401 (re-exported)
from orderbook.analytics.store_read import StoreReader
from orderbook.analytics.store_runs import RUNS_DIR, RUNS_SCHEMA  # noqa: F401 (re-exported)
from orderbook.history.logs import HISTORY_SCHEMA_VERSION


def _write_parquet(frame: pl.DataFrame, fh, metadata: dict[str, str]) -> None:
    """The one call that writes Parquet bytes (tests replace it to simulate a crash)."""
    frame.write_parquet(fh, metadata=metadata, statistics=True)


class EpisodeStore(StoreReader):
    """A Parquet dataset of episodes under ``root`` (created if missing).

    >>> store = EpisodeStore("runs/episodes")              # doctest: +SKIP
    >>> store.write_history("ppo-seed0", ex.history, clear=True)
    >>> open_ = queries.open_orders(store.scan("events"))   # a LazyFrame
    >>> open_.collect().to_pandas()
    """

    def __init__(self, root: str | os.PathLike):
        self.root = local_root(root)
        self._token = next(_TOKENS)
        self._open: dict[str, tuple[str, str]] = {}  # run -> key of _WRITERS, the runs this store writes
        weakref.finalize(self, store_lock.release_all, self._open, self._token)  # garbage collected: lets the runs go
        if not (self.root / SCHEMA_FILE).exists():
            self.root.mkdir(parents=True, exist_ok=True)
            with store_lock.schema_lock(self.root):
                if not (self.root / SCHEMA_FILE).exists():
                    write_json_atomically(self.root / SCHEMA_FILE, new_schema())
        self.schema()

    # ------------------------------------------------------------ writers
    def open_run(self, run: str) -> None:
        """Become the writer of ``run`` (the first write does this on its own).

        Takes the run's lock, or raises :class:`RunLockedError` naming the holder
        if another process writes it (store objects of this process share it),
        and removes the temporary files a killed writer of the run left. Held
        until :meth:`close`.
        """
        self._writer(check_run(run))

    def close(self) -> None:
        """Let go of every run this store opened; a run's lock is released once no store of this process has it open."""
        store_lock.release_all(self._open, self._token)

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _writer(self, run: str) -> _RunWriter:
        key = (os.path.realpath(self.root), run)
        with store_lock.writers_mutex():
            writer = _WRITERS.get(key)
            if writer is None:
                writer = store_lock.lock_run(self.root, run)
                for stale in self._temporary_files(run):  # ours now: no live writer of the run can own them
                    stale.unlink(missing_ok=True)
                store_compact.remove_staging(self.root, run)  # a killed compaction's copy: never visible
                _WRITERS[key] = writer
            writer.users.add(self._token)
        self._open[run] = key
        return writer

    def _temporary_files(self, run: str = "*") -> list[Path]:
        return [p for k in KINDS for p in (self.root / k).glob(f"run={run}/episode=*/.part-*.tmp")]

    # ------------------------------------------------------------ cleaning
    def remove_temporary(self) -> list[Path]:
        """Delete the temporary files killed writers left, in every run that no writer has open; returns them.

        A run being written (by this process or another) is left alone: its
        temporary files may be a live write's. Opening a run for writing cleans it.
        """
        removed: list[Path] = []
        for run in self.runs():
            if not self._temporary_files(run) and not (self.root / STAGING_DIR / f"run={run}").is_dir():
                continue
            with store_lock.writers_mutex():
                if (os.path.realpath(self.root), run) in _WRITERS:
                    continue
                try:
                    writer = store_lock.lock_run(self.root, run)
                except RunLockedError:
                    continue
                for path in self._temporary_files(run):
                    path.unlink(missing_ok=True)
                    removed.append(path)
                removed += store_compact.remove_staging(self.root, run)
                store_lock.unlock(writer)
        return removed

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
        run = check_run(run)
        writer = self._writer(run)
        with writer.mutex:
            paths = self._write_locked(writer, run, frames)
            if paths and not writer.described:
                self._describe_locked(writer, run, None, None, None, only_if_missing=True)
            return paths

    # ------------------------------------------------------------ runs table
    def describe_run(self, run: str, *, env_id: str | None = None, config: object = None,
                     seeds: Iterable[int] | None = None) -> dict:
        """Record what ``run`` is in the runs table (:mod:`orderbook.analytics.store_runs`); returns the record.

        A writer of the run does it (takes the run, as :meth:`open_run`). Fields
        left ``None`` keep their recorded value; ``created`` is kept.
        """
        run = check_run(run)
        writer = self._writer(run)
        with writer.mutex:
            return self._describe_locked(writer, run, env_id, config, seeds)

    def _describe_locked(self, writer: _RunWriter, run: str, env_id, config, seeds, only_if_missing: bool = False) -> dict:
        old = store_runs.read_record(self.root, run)
        if old is not None and only_if_missing:
            writer.described = True
            return old
        record = store_runs.new_record(run, env_id, config, seeds, old)
        (self.root / RUNS_DIR).mkdir(exist_ok=True)
        write_json_atomically(store_runs.record_path(self.root, run), record)
        writer.described = True
        return record

    def runs_table(self) -> pl.DataFrame:
        """One row per described run: run, env_id, config (JSON), seeds, package_version, created (UTC)."""
        return store_runs.runs_frame(self.root)

    # ------------------------------------------------------------ compaction
    def compact(self, run: str | None = None, episodes: Iterable[int] | None = None, min_files: int = 2) -> Compaction:
        """Merge the part files of each partition of ``run`` (every run if None; only ``episodes`` if given)
        that has at least ``min_files`` parts into one file, atomically (see :mod:`orderbook.analytics.store_compact`).

        A writer of the run: raises :class:`RunLockedError` if another process
        writes ``run``; with ``run=None`` such runs are skipped and listed in the
        result. Rows, their order within a partition and ``seq`` are kept.
        """
        if not (isinstance(min_files, int) and min_files >= 2):
            raise ValueError(f"min_files must be an int >= 2 (a partition of one file is compact), got {min_files!r}")
        self.schema(write=True)
        result = Compaction()
        for name in [check_run(run)] if run is not None else self.runs():
            was_open = name in self._open
            try:
                writer = self._writer(name)
            except RunLockedError:
                if run is not None:
                    raise
                result.skipped_runs.append(name)
                continue
            try:
                with writer.mutex:
                    for directory in store_compact.partitions(self.root, KINDS, name, episodes, min_files):
                        files, rows = store_compact.compact_partition(  # this module: tests replace _write_parquet
                            sys.modules[__name__], self.root, name, directory,
                            {VERSION_KEY: str(HISTORY_SCHEMA_VERSION)})
                        result.partitions += 1
                        result.files_before += files
                        result.files_after += 1
                        result.rows += rows
            finally:
                if not was_open:  # a compaction does not keep the run
                    store_lock.release(self._open.pop(name), self._token)
        return result

    def _write_locked(self, writer: _RunWriter, run: str, frames: dict[str, pl.DataFrame]) -> list[Path]:
        meta = self.schema(write=True)
        staged: list[tuple[Path, Path]] = []
        tmps: list[Path] = []
        created: list[Path] = []  # partition directories this call made, removed again if it fails
        recorded = dict(meta["kinds"])
        new_kinds: dict[str, dict[str, str]] = {}
        try:
            for kind, frame in frames.items():
                frame = self._prepare(writer, run, check_kind(kind), frame, recorded)
                if frame.height == 0:
                    continue
                body = frame.drop("episode")
                new_kinds[kind] = self._check_columns(recorded, kind, column_dtypes(body))
                for (episode,), part in frame.partition_by("episode", as_dict=True, maintain_order=True).items():
                    directory = self.root / kind / f"run={run}" / episode_folder(episode, layout_version(meta))
                    created += [d for d in (directory.parent, directory) if not d.exists()]
                    directory.mkdir(parents=True, exist_ok=True)
                    final = directory / f"part-{self._next_part(directory, staged):05d}.parquet"
                    tmp = temporary(final)
                    tmps.append(tmp)
                    with open(tmp, "wb") as fh:
                        _write_parquet(part.drop("episode"), fh, {VERSION_KEY: str(HISTORY_SCHEMA_VERSION)})
                        fh.flush()
                        os.fsync(fh.fileno())
                    staged.append((tmp, final))
            if recorded != meta["kinds"]:
                self._record_kinds(new_kinds)
            for tmp, final in staged:
                os.replace(tmp, final)
            for directory in {final.parent for _, final in staged}:
                fsync_dir(directory)
        except BaseException:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)
            for directory in reversed(created):  # so a refused first write leaves no empty run behind
                try:
                    directory.rmdir()
                except OSError:  # not empty: a file of this call was already renamed into it
                    pass
            raise
        finally:
            for tmp in tmps:
                tmp.unlink(missing_ok=True)
        self._advance_seq(writer, run, frames)
        return [final for _, final in staged]

    def _record_kinds(self, kinds: dict[str, dict[str, str]]) -> None:
        """Add kinds' column schemas to ``_schema.json``, checked against what other runs recorded meanwhile."""
        with store_lock.schema_lock(self.root):
            meta = self.schema(write=True)
            recorded = dict(meta["kinds"])
            for kind, dtypes in kinds.items():
                self._check_columns(recorded, kind, dtypes)
            if recorded != meta["kinds"]:
                write_json_atomically(self.root / SCHEMA_FILE, {**meta, "kinds": recorded})

    def _prepare(self, writer: _RunWriter, run: str, kind: str, frame: pl.DataFrame, recorded: dict) -> pl.DataFrame:
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
        check_episodes(kind, frame["episode"])
        frame = frame.with_columns(pl.col("episode").cast(pl.Int32))
        if "time_ns" in frame.columns and TIME_COLUMN not in frame.columns and TIME_COLUMN in recorded.get(kind, {TIME_COLUMN: None}):
            names = frame.columns
            at = names.index("time_ns") + 1
            frame = frame.with_columns(utc_time(pl.col("time_ns"))).select(*names[:at], TIME_COLUMN, *names[at:])
        if "seq" in frame.columns and frame.height:
            frame = frame.with_columns(pl.col("seq").cast(pl.Int64) + self._seq_offset(writer, run, kind))
        return frame

    def _seq_offset(self, writer: _RunWriter, run: str, kind: str) -> int:
        if kind not in writer.next_seq:
            directory = self.root / kind / f"run={run}"
            last = None
            if any(directory.glob("episode=*/part-*.parquet")):
                last = pl.scan_parquet(directory / "episode=*" / "part-*.parquet", hive_partitioning=False).select(pl.col("seq").max()).collect().item()
            writer.next_seq[kind] = 0 if last is None else int(last) + 1
        return writer.next_seq[kind]

    def _advance_seq(self, writer: _RunWriter, run: str, frames: dict[str, pl.DataFrame]) -> None:
        for kind, frame in frames.items():
            if "seq" in frame.columns and frame.height:
                writer.next_seq[kind] = self._seq_offset(writer, run, kind) + int(frame["seq"].max()) + 1

    @staticmethod
    def _check_columns(recorded: dict, kind: str, dtypes: dict[str, str]) -> dict[str, str]:
        expected = recorded.setdefault(kind, dtypes)
        if expected != dtypes:
            diff = {k: (expected.get(k), dtypes.get(k)) for k in expected.keys() | dtypes.keys() if expected.get(k) != dtypes.get(k)}
            raise ValueError(f"{kind}: columns do not match the dataset's {kind} schema; (expected, got) per column: {diff}")
        return dtypes

    @staticmethod
    def _next_part(directory: Path, staged: Iterable[tuple[Path, Path]]) -> int:
        used = [n for p in directory.iterdir() if (n := part_number(p.name)) is not None]
        used += [part_number(f.name) for _, f in staged if f.parent == directory]
        return max(used, default=-1) + 1
