"""An append-only columnar log, grown by doubling: the storage of every history log.

A log keeps its columns grouped by dtype in 2-D arrays (``(n_columns, capacity)``,
one contiguous row per column), so kernels append with a cursor (:func:`next_row`)
and ``columns()`` hands Polars contiguous column slices. Rows are never rewritten:
a log's prefix is the same after any later step (the property tests check it).
Before each step the caller reserves room for the most rows a step can write
(:meth:`ColumnLog.reserve`), so kernels never run out of space and never allocate.
Growing copies the prefix into new arrays once: callers that keep
:attr:`ColumnLog.arrays` take them again after a reserve that grew the log.
:meth:`ColumnLog.clear` and :meth:`ColumnLog.compact` (drop rows, keeping the rest
in order) work in place: the arrays and their capacity stay, so a log that is
cleared or compacted as it fills reuses the same memory (flat, not only bounded).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from orderbook.compile.jit import kernel


class LogArrays(NamedTuple):
    """The arrays a kernel appends to: one 2-D block per dtype and the row count."""

    i64: np.ndarray  # (n_i64_columns, capacity) int64
    i32: np.ndarray  # (n_i32_columns, capacity) int32
    u8: np.ndarray  # (n_u8_columns, capacity) uint8
    size: np.ndarray  # (1,) int64 rows written


class ColumnLog:
    """An append-only columnar log with doubling growth."""

    def __init__(self, i64: tuple[str, ...], i32: tuple[str, ...], u8: tuple[str, ...], capacity: int = 1024):
        self.names = (i64, i32, u8)
        self._arrays = self._allocate(max(capacity, 16))

    def _allocate(self, capacity: int) -> LogArrays:
        i64, i32, u8 = self.names
        return LogArrays(
            np.zeros((len(i64), capacity), dtype=np.int64),
            np.zeros((len(i32), capacity), dtype=np.int32),
            np.zeros((max(len(u8), 1), capacity), dtype=np.uint8),
            np.zeros(1, dtype=np.int64),
        )

    @property
    def arrays(self) -> LogArrays:
        return self._arrays

    def __len__(self) -> int:
        return int(self._arrays.size[0])

    @property
    def capacity(self) -> int:
        return self._arrays.i64.shape[1]

    @property
    def nbytes_per_row(self) -> int:
        i64, i32, u8 = self.names
        return 8 * len(i64) + 4 * len(i32) + len(u8)

    def reserve(self, extra_rows: int) -> None:
        """Make room for ``extra_rows`` more rows (doubling, copying the prefix once)."""
        need = len(self) + extra_rows
        if need <= self.capacity:
            return
        cap = self.capacity
        while cap < need:
            cap *= 2
        new = self._allocate(cap)
        n = len(self)
        for old_block, new_block in zip(self._arrays[:3], new[:3]):
            new_block[:, :n] = old_block[:, :n]
        new.size[0] = n
        self._arrays = new

    def truncate(self, size: int) -> None:
        """Forget rows at and after ``size`` (only to undo a step that raised)."""
        if not 0 <= size <= len(self):
            raise ValueError(f"truncate size must be in [0, {len(self)}], got {size}")
        self._arrays.size[0] = size

    def clear(self) -> None:
        """Drop every row (after the rows were flushed elsewhere); the arrays and their capacity stay."""
        self._arrays.size[0] = 0

    def compact(self, keep: np.ndarray) -> int:
        """Keep the rows where ``keep`` (a bool array of the log's length) is True, in their order, at
        the front of the same arrays; returns the rows kept. The only rewrite of rows: for dropping
        old rows (history retention), never during a step."""
        n = len(self)
        if keep.shape != (n,) or keep.dtype != np.bool_:
            raise ValueError(f"keep must be a bool array of shape ({n},), got {keep.dtype} {keep.shape}")
        m = n
        for block in self._arrays[:3]:
            m = compact_block(block, keep, n)
        self._arrays.size[0] = m
        return m

    def columns(self) -> dict[str, np.ndarray]:
        """Copies of the written rows of every column."""
        n = len(self)
        out: dict[str, np.ndarray] = {}
        for names, block in zip(self.names, self._arrays[:3]):
            for j, name in enumerate(names):
                out[name] = block[j, :n].copy()
        return out


@kernel
def compact_block(block, keep, n):
    """Move the columns' values of the rows ``i < n`` where ``keep[i]`` to the front, in order (in place:
    a kept row only moves towards the front); returns how many were kept."""
    m = 0
    for c in range(block.shape[0]):
        m = 0
        for i in range(n):
            if keep[i]:
                block[c, m] = block[c, i]
                m += 1
    if block.shape[0] == 0:
        for i in range(n):
            if keep[i]:
                m += 1
    return m


@kernel(inline=True)
def next_row(log):
    """The index of the row to write next in ``log`` (arrays with a ``size`` cursor), counted as written."""
    n = log.size[0]
    log.size[0] = n + 1
    return n
