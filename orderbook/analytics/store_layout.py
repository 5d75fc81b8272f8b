"""The episode store's layout on disk: names, the partition folders, ``_schema.json`` and atomic file writes.

Layout (hive style, readable by Polars, pandas/pyarrow, DuckDB, Spark)::

    root/_schema.json
    root/_runs/run=<run>.json  root/_locks/run=<run>.lock  root/_staging/run=<run>/  (hive readers skip "_")
    root/<kind>/run=<run>/episode=<episode>/part-00000.parquet    kind: events, ledger, market

Keeps true:

- **Partition folders sort as their episodes.** Layout version 2 (every store
  created now) names a partition ``episode=`` and the episode zero-padded to
  :data:`EPISODE_DIGITS` digits (``episode=0000000010``), wide enough for every
  episode the store holds (an ``Int32`` from 0 to 2**31 - 1, refused otherwise),
  so readers that take partitions in directory order (pandas, pyarrow, Dask)
  give episodes in numeric order, and every engine that types the partition
  reads the same integer. Layout version 1 (stores made before, recorded by the
  absence of ``layout_version`` in ``_schema.json``) names it ``episode=<n>``;
  such a store is read as before and keeps being written in its own layout, so
  one episode is never two folders.
- **The layout version is recorded in the store** (``layout_version`` in
  ``_schema.json``); a store of a layout this code does not know is refused
  with an error naming both versions.
- **A file write is atomic**: bytes go to a hidden temporary file in the final
  file's folder (``.part-00003.parquet.<pid>-<nonce>.tmp``, which no
  ``*.parquet`` glob matches), are fsynced, renamed into place, and the folder
  fsynced.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import polars as pl

from orderbook.analytics.store_lock import SCHEMA_FILE
from orderbook.history.logs import HISTORY_SCHEMA_VERSION, READABLE_SCHEMA_VERSIONS

FORMAT = "orderbook-episodes"
KINDS = ("events", "ledger", "market")
VERSION_KEY = "orderbook.history_schema_version"
HIVE_SCHEMA = {"run": pl.String, "episode": pl.Int32}
TIME_COLUMN = "time_utc"  # Datetime("us", "UTC") beside the exact integer time_ns
LAYOUT_VERSION = 2  # what new stores are written in; 1: unpadded episode folders
LAYOUTS = {
    1: "<kind>/run=<run>/episode=<episode>/part-<n>.parquet",
    2: "<kind>/run=<run>/episode=<episode, 10 digits>/part-<n>.parquet",
}
EPISODE_MAX = 2**31 - 1  # episodes are Int32 in the store
EPISODE_DIGITS = len(str(EPISODE_MAX))  # 10: every episode's folder name has the same width
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_PART = re.compile(r"part-(\d+)\.parquet")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


class SchemaVersionError(ValueError):
    """A dataset, or a file in it, written with another history schema version."""


# ------------------------------------------------------------------ partition folders
def episode_folder(episode: int, layout_version: int) -> str:
    """The folder name of ``episode``'s partition in a store of ``layout_version``."""
    return f"episode={episode:0{EPISODE_DIGITS}d}" if layout_version >= 2 else f"episode={episode}"


def episode_of(folder: str) -> int:
    """The episode of a partition folder name of either layout (``episode=0000000010`` or ``episode=10``)."""
    return int(folder[len("episode="):])


def layout_version(meta: dict) -> int:
    """The layout version a store's ``_schema.json`` records (1 when it records none: stores made before versions)."""
    return int(meta.get("layout_version", 1))


def new_schema() -> dict:
    """The ``_schema.json`` of a new, empty store."""
    return {"format": FORMAT, "schema_version": HISTORY_SCHEMA_VERSION, "layout_version": LAYOUT_VERSION,
            "partitioning": ["run", "episode"], "layout": LAYOUTS[LAYOUT_VERSION], "kinds": {}}


def read_schema(root: Path, write: bool = False) -> dict:
    """The contents of ``root/_schema.json``, after checking format, history schema version (any of
    ``READABLE_SCHEMA_VERSIONS`` to read, ``HISTORY_SCHEMA_VERSION`` to ``write``) and layout version."""
    path = root / SCHEMA_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: expected the JSON schema file of an episode store, could not read it: {err}") from err
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: expected format {FORMAT!r}, found {meta.get('format')!r}")
    found = meta.get("schema_version")
    if found not in READABLE_SCHEMA_VERSIONS:
        raise SchemaVersionError(
            f"{root}: episodes were written with history schema version {found!r}; "
            f"this orderbook reads versions {list(READABLE_SCHEMA_VERSIONS)}"
        )
    if write and found != HISTORY_SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{root}: episodes were written with history schema version {found!r}, which this orderbook reads "
            f"but does not extend; it writes version {HISTORY_SCHEMA_VERSION}: write new episodes to a new store"
        )
    if meta.get("layout_version", 1) not in LAYOUTS:
        raise ValueError(f"{path}: expected a store layout version in {sorted(LAYOUTS)}, found {meta.get('layout_version')!r} "
                         "(written by a newer orderbook?)")
    return meta


def check_episodes(kind: str, episode: pl.Series) -> None:
    """Refuse episodes the store cannot name (it holds ``Int32`` episodes from 0, as the history counts them)."""
    if not episode.dtype.is_integer():
        raise ValueError(f"{kind}: expected an integer episode column, got {episode.dtype}")
    if episode.len() == 0 or episode.null_count() == 0 and 0 <= episode.min() <= episode.max() <= EPISODE_MAX:
        return
    raise ValueError(f"{kind}: expected episodes from 0 to {EPISODE_MAX} (the store's Int32 partitions), "
                     f"found min {episode.min()}, max {episode.max()}, {episode.null_count()} null")


# ------------------------------------------------------------------ names
def check_run(run: str) -> str:
    if not (isinstance(run, str) and _RUN.fullmatch(run)):
        raise ValueError(f"run must be 1-128 characters of letters, digits, '_', '.', '-', starting with a letter or digit, got {run!r}")
    return run


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def part_number(name: str) -> int | None:
    """``n`` of a visible part file's name ``part-<n>.parquet``, else None."""
    m = _PART.fullmatch(name)
    return int(m.group(1)) if m else None


def local_root(root: str | os.PathLike) -> Path:
    """``root`` as a local path; ``file://`` URLs are taken, other URLs refused (the store's locks and
    atomic renames need a POSIX filesystem)."""
    text = os.fspath(root)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if _URL.match(text):
        raise ValueError(
            f"EpisodeStore writes a local (or mounted) directory, got the URL {text!r}: its run locks (flock) and "
            "atomic renames have no equivalent in an object store. Write to a local folder and copy it up "
            "(e.g. `aws s3 sync`), or mount the bucket; any engine reads the copy directly, e.g. "
            f"pl.scan_parquet('{text.rstrip('/')}/events/**/*.parquet', hive_partitioning=True)"
        )
    return Path(text)


# ------------------------------------------------------------------ columns
def utc_time(time_ns: pl.Expr) -> pl.Expr:
    """Integer nanoseconds since the epoch as ``Datetime("us", "UTC")`` (floored to the microsecond, which
    Spark, DuckDB and pandas all read; the exact value stays in ``time_ns``)."""
    return time_ns.floordiv(1000).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(TIME_COLUMN)


def column_dtypes(frame: pl.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.schema.items()}


# ------------------------------------------------------------------ atomic files
def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def write_json_atomically(path: Path, payload: dict) -> None:
    tmp = temporary(path)
    try:
        with open(tmp, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
