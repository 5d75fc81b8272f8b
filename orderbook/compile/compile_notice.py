"""A notice on stderr while numba compiles the package's kernels, and the time it took.

Numba compiles a kernel on its first call and caches the machine code on disk
(``cache=True``; the packed calls under ``ORDERBOOK_KERNEL_DIR``). The first run
after installing or editing the package therefore spends a minute or more
compiling inside the first ``reset``/``step``; without a word, that looks like a
hang and, timed, like a slow step. :func:`install` (called where kernels are
first loaded: :func:`orderbook.compile.packed._load`) registers one listener for numba's
``numba:compile`` event, which numba raises only when it really compiles (a
cache miss), never when it loads a cached kernel.

What it keeps true:
- a process whose kernels are all cached prints nothing;
- it writes to stderr only (stdout stays the program's), a line when compiling
  starts, then a progress line every ``interval_s`` seconds while it goes on
  (``compiling orderbook kernels (first run, cached afterwards): 14 compiled, 40 s``;
  a daemon thread speaks during one long compile too), and :func:`finish` a line
  saying how many kernels took how long;
- ``ORDERBOOK_COMPILE_NOTICE=0`` silences it (the counting goes on);
- :func:`compile_seconds` is the wall time this process spent compiling (nested
  compiles counted once), so callers report step time apart from compile time.

Known limit: numba does not say in advance how many kernels a call will compile,
so the progress counts kernels compiled so far, without a total.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from numba.core import event

__all__ = ["CompileNotice", "install", "compile_seconds", "kernels_compiled", "ENV_VAR"]

ENV_VAR = "ORDERBOOK_COMPILE_NOTICE"
PREFIX = "compiling orderbook kernels (first run, cached afterwards)"


def _enabled_by_env() -> bool:
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def _kernel_name(data: dict | None) -> str:
    dispatcher = (data or {}).get("dispatcher")
    func = getattr(dispatcher, "py_func", None)
    module = getattr(func, "__module__", "") or ""
    if module.startswith("orderbook_packed_"):
        module = "packed"
    return f"{module}.{getattr(func, '__qualname__', '?')}" if func is not None else "?"


class CompileNotice(event.Listener):
    """Counts numba compiles and tells the user about them on ``stream`` (default: stderr at write time).

    ``enabled=None`` reads ``ORDERBOOK_COMPILE_NOTICE`` at each message; ``clock``
    is injectable for tests. ``compiled`` counts kernels compiled (every depth),
    ``seconds`` the wall time of outermost compiles.
    """

    def __init__(self, stream: TextIO | None = None, interval_s: float = 10.0, enabled: bool | None = None, clock=time.perf_counter,
                 heartbeat: bool = False):
        self.stream, self.interval_s, self.enabled, self.clock = stream, float(interval_s), enabled, clock
        self.heartbeat = heartbeat  # a daemon thread that speaks during one long compile too
        self.compiled = 0
        self.seconds = 0.0
        self._depth = 0
        self._burst_start = 0.0  # clock at the start of the current burst of compiles
        self._burst_compiled = 0
        self._outer_start = 0.0
        self._last_line = 0.0
        self._compiling_names: list[str] = []  # the kernels compiling now, outermost first
        self._reset_threading()

    def _reset_threading(self) -> None:
        self._lock = threading.Lock()
        self._compiling = threading.Event()  # set while an outermost compile runs
        self._thread: threading.Thread | None = None

    # numba calls these around every real compile (nested ones too)
    def on_start(self, ev: event.Event) -> None:
        with self._lock:
            now = self.clock()
            self.compiled += 1
            self._depth += 1
            self._compiling_names.append(_kernel_name(ev.data))
            if self._depth == 1:
                self._outer_start = now
                if self._burst_compiled == 0:
                    self._burst_start = self._last_line = now
                    self._say(f"{PREFIX} ...")
                self._compiling.set()
                if self.heartbeat and self._thread is None:
                    self._thread = threading.Thread(target=self._beat_loop, name="orderbook-compile-notice", daemon=True)
                    self._thread.start()
            self._burst_compiled += 1
            self._progress(now)

    def _progress(self, now: float) -> bool:
        """A progress line if ``interval_s`` passed since the last line (the lock is held)."""
        if now - self._last_line < self.interval_s:
            return False
        self._last_line = now
        self._say(f"{PREFIX}: {self._burst_compiled} compiled, {now - self._burst_start:.0f} s (now {self._compiling_names[-1] if self._compiling_names else '?'})")
        return True

    def beat(self) -> bool:
        """A progress line while a compile runs and ``interval_s`` passed since the last line; whether one was written."""
        with self._lock:
            return self._depth > 0 and self._progress(self.clock())

    def _beat_loop(self) -> None:
        while True:
            self._compiling.wait()
            time.sleep(self.interval_s / 4)
            self.beat()

    def on_end(self, ev: event.Event) -> None:
        with self._lock:
            self._depth = max(self._depth - 1, 0)
            if self._compiling_names:
                self._compiling_names.pop()
            if self._depth == 0:
                self.seconds += self.clock() - self._outer_start
                self._compiling.clear()

    def finish(self) -> str | None:
        """Close the current burst of compiles: its one-line summary (also written), or None if nothing compiled."""
        with self._lock:
            if self._burst_compiled == 0 or self._depth:
                return None
            line = f"compiled {self._burst_compiled} orderbook kernels in {self.clock() - self._burst_start:.1f} s (cached for later runs)"
            self._burst_compiled = 0
            self._say(line)
            return line

    def _say(self, line: str) -> None:
        if not (self.enabled if self.enabled is not None else _enabled_by_env()):
            return
        stream = self.stream if self.stream is not None else sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed stream never breaks a compile
            pass


_NOTICE: CompileNotice | None = None


def install() -> CompileNotice:
    """Register the process's notice with numba (once; later calls return the same object)."""
    global _NOTICE
    if _NOTICE is None:
        _NOTICE = CompileNotice(heartbeat=True)
        os.register_at_fork(after_in_child=_NOTICE._reset_threading)  # a forked child gets its own lock, no thread
        event.register("numba:compile", _NOTICE)
    return _NOTICE


def compile_seconds() -> float:
    """Wall time this process has spent compiling kernels since :func:`install` (0.0 before)."""
    return _NOTICE.seconds if _NOTICE is not None else 0.0


def kernels_compiled() -> int:
    """Kernels compiled by this process since :func:`install` (nested compiles each count)."""
    return _NOTICE.compiled if _NOTICE is not None else 0


def finish() -> str | None:
    """End the current burst of compiles with its summary line (see :meth:`CompileNotice.finish`)."""
    return _NOTICE.finish() if _NOTICE is not None else None
