"""Compaction of the episode store: the part files of each (kind, run, episode) partition merged into one.

A long run that flushes often writes one small file per kind, episode and flush;
compacted, the same rows are one file per partition, which the store's queries
read faster with Polars and DuckDB (``benchmarks/history.py --only store``;
figures in ``benchmarks/RESULTS.md``).

Keeps true:

- **A compaction is a writer of the run.** It takes the run's lock (another
  process writing the run is refused with :class:`RunLockedError`; store objects
  of this process share the hold, and their writes wait on the run's mutex until
  the compaction is done), so no part is added to a partition while it is merged.
- **Readers never see a half state.** A partition's parts are read, concatenated
  in part order (so rows keep their write order and ``seq``) and written as
  ``part-00000.parquet`` into a new directory under ``root/_staging/run=<run>/``
  (outside every kind's tree; ``_`` first, so hive readers skip it), fsynced,
  its row count checked against the parts'; then that directory and the
  partition's directory swap names in one atomic ``renameat2(RENAME_EXCHANGE)``
  (``renamex_np(RENAME_SWAP)`` on macOS). A reader lists either the old parts
  or the merged file, never both and never neither; the old directory, now
  under ``_staging``, is deleted after.
- **A crash at any point leaves every row exactly once.** Before the swap the
  partition is untouched and the staging directory holds a copy nobody reads;
  after it the partition is merged and the staging directory holds the old parts
  nobody reads. Either way whatever is under ``_staging/run=<run>`` is garbage,
  removed the next time a writer takes the run (or by ``remove_temporary``).

Limits: a partition is merged in memory (one episode number of every lane of a
run); a scan planned before a compaction and collected after it may find its
listed files gone (re-scan); the swap needs a filesystem with atomic exchange
(ext4, xfs, btrfs, tmpfs, APFS); elsewhere the compaction refuses before
changing anything.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from orderbook.analytics.store_layout import episode_of, fsync_dir

STAGING_DIR = "_staging"


@dataclass
class Compaction:
    """What :meth:`EpisodeStore.compact` did."""

    partitions: int = 0  # (kind, run, episode) partitions merged
    files_before: int = 0  # part files of those partitions before
    files_after: int = 0  # and after (one each)
    rows: int = 0  # rows they hold (unchanged)
    skipped_runs: list[str] = field(default_factory=list)  # runs another process was writing (run=None only)


# ------------------------------------------------------------------ atomic swap
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2  # macOS sys/stdio.h
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def exchange(a: Path, b: Path) -> None:
    """Swap the names of the existing paths ``a`` and ``b`` atomically (both remain, each under the other's name)."""
    if sys.platform.startswith("linux") and hasattr(_libc, "renameat2"):
        result = _libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(_libc, "renamex_np"):
        result = _libc.renamex_np(os.fsencode(a), os.fsencode(b), _RENAME_SWAP)
    else:
        raise OSError(errno.ENOSYS, f"compaction needs an atomic directory swap (renameat2 or renamex_np); {sys.platform} has neither")
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"atomic swap of {a} and {b} failed: {os.strerror(err)} (expected a filesystem that supports it)")


# ------------------------------------------------------------------ one partition
def count_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    return pl.scan_parquet(path, hive_partitioning=False).select(pl.len()).collect().item()


def part_files(directory: Path) -> list[Path]:
    """The partition's visible part files in part-number order."""
    return sorted(directory.glob("part-*.parquet"), key=lambda p: int(p.stem.split("-")[1]))


def compact_partition(store_mod, root: Path, run: str, directory: Path, metadata: dict[str, str]) -> tuple[int, int]:
    """Merge the parts of ``directory`` (a partition of ``run``; the caller holds the run) into one file.

    Returns (files before, rows). Nothing visible changes unless the merged file
    was written, fsynced and holds as many rows as the parts.
    """
    parts = part_files(directory)
    rows = sum(count_rows(p) for p in parts)
    frame = pl.concat([pl.read_parquet(p, hive_partitioning=False) for p in parts], how="vertical")
    if frame.height != rows:
        raise RuntimeError(f"{directory}: read {frame.height} rows from {len(parts)} parts that hold {rows}")
    staging = root / STAGING_DIR / f"run={run}" / f"{directory.parent.parent.name}-{directory.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    merged = staging / "part-00000.parquet"
    with open(merged, "wb") as fh:
        store_mod._write_parquet(frame, fh, metadata)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(staging)
    written = count_rows(merged)
    if written != rows:
        raise RuntimeError(f"{merged}: the merged file holds {written} rows, expected {rows}; the partition is left as it was")
    exchange(staging, directory)  # the one visible change: old parts -> merged file
    fsync_dir(directory.parent)
    fsync_dir(staging.parent)
    shutil.rmtree(staging)  # the old parts, under the staging name now
    return len(parts), rows


def remove_staging(root: Path, run: str) -> list[Path]:
    """Delete what a killed compaction of ``run`` left under ``_staging`` (the caller holds the run)."""
    base = root / STAGING_DIR / f"run={run}"
    removed = sorted(base.iterdir()) if base.is_dir() else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def partitions(root: Path, kinds: Iterable[str], run: str, episodes: Iterable[int] | None, min_files: int) -> list[Path]:
    """The partitions of ``run`` (restricted to ``episodes``) with at least ``min_files`` parts."""
    wanted = None if episodes is None else {int(e) for e in episodes}
    found = []
    for kind in kinds:
        for directory in sorted((root / kind / f"run={run}").glob("episode=*")):
            if wanted is not None and episode_of(directory.name) not in wanted:
                continue
            if len(part_files(directory)) >= min_files:
                found.append(directory)
    return found
