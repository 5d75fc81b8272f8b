"""The episode store's locks: one writer per run, and the shared ``_schema.json``.

Keeps true: at most one process holds a run's ``flock`` (``root/_locks/run=<run>.lock``)
at a time; store objects of one process share that hold (a :class:`_RunWriter`,
with the run's ``seq`` counter and a mutex serialising the process's writes and
compactions of the run); the hold ends with the last store of the process that
opened the run, or with the process (even killed): a dead writer never blocks. A
child forked from a writer holds nothing. ``_schema.json`` is only changed under
``_locks/_schema.lock``. See :mod:`orderbook.analytics.store` for the choices and limits.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

LOCK_DIR = "_locks"  # "_" first: hive readers (pyarrow, Spark) skip it
SCHEMA_FILE = "_schema.json"


class RunLockedError(RuntimeError):
    """Another process is writing the run: one writer per run (see the module docstring)."""


@dataclass(eq=False)
class _RunWriter:
    """This process's hold on one run: the flock-ed lock file, the run's seq counter, the stores using it."""

    fd: int  # the lock file, flock-ed LOCK_EX; closing it releases the lock
    users: set[int] = field(default_factory=set)  # tokens of the EpisodeStore objects that have the run open
    next_seq: dict[str, int] = field(default_factory=dict)  # kind -> the seq offset of the next write
    mutex: threading.Lock = field(default_factory=threading.Lock)  # one write (or compaction) of the run at a time
    described: bool = False  # the run's record in the runs table is known to exist


_WRITERS: dict[tuple[str, str], _RunWriter] = {}  # (real root, run) -> this process's hold
_WRITERS_MUTEX = threading.Lock()
_TOKENS = count()


def writers_mutex() -> threading.Lock:
    """The mutex guarding ``_WRITERS`` (looked up on each use: a forked child gets a new one)."""
    return _WRITERS_MUTEX


def _forget_inherited_locks() -> None:
    """In a forked child: drop the parent's run locks (closing our copies of the fds leaves the parent's lock)."""
    global _WRITERS_MUTEX
    for writer in _WRITERS.values():
        os.close(writer.fd)
    _WRITERS.clear()
    _WRITERS_MUTEX = threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_locks)


def _holder_text() -> str:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    return f"pid {os.getpid()} on host {socket.gethostname()}, writing since {since}"


def lock_run(root: Path, run: str) -> _RunWriter:
    """Take the run's lock without waiting; RunLockedError naming the holder if another process has it."""
    (root / LOCK_DIR).mkdir(exist_ok=True)
    path = root / LOCK_DIR / f"run={run}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "a writer that is starting"
        os.close(fd)
        raise RunLockedError(
            f"run {run!r} of the episode store {root} is being written by another process ({holder}); "
            "expected one writer per run: wait for that writer to close, or write to another run name"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, _holder_text().encode(), 0)
    return _RunWriter(fd=fd)


def unlock(writer: _RunWriter) -> None:
    """Let go of a lock taken with :func:`lock_run` and not registered in ``_WRITERS``."""
    os.ftruncate(writer.fd, 0)
    os.close(writer.fd)


def release(key: tuple[str, str], token: int) -> None:
    with writers_mutex():
        writer = _WRITERS.get(key)
        if writer is None or token not in writer.users:
            return
        writer.users.discard(token)
        if not writer.users:
            del _WRITERS[key]
            unlock(writer)  # releases the flock


def release_all(open_runs: dict[str, tuple[str, str]], token: int) -> None:
    for key in open_runs.values():
        release(key, token)
    open_runs.clear()


@contextmanager
def schema_lock(root: Path) -> Iterator[None]:
    """Hold ``_locks/_schema.lock`` (waiting for it) while ``_schema.json`` is read, changed and replaced.

    Every writer of ``_schema.json`` holds it, so temporary schema files found
    under it are a killed writer's and are removed.
    """
    (root / LOCK_DIR).mkdir(exist_ok=True)
    fd = os.open(root / LOCK_DIR / "_schema.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for stale in root.glob(f".{SCHEMA_FILE}.*.tmp"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)
