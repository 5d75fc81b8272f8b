"""Episode histories to the core's Parquet episode store during long runs, with memory kept flat.

:class:`HistoryWriter` flushes an exchange's logs (events, ledger, market) into an
:class:`orderbook.store.EpisodeStore` (``<root>/<kind>/run=<run>/episode=<n>/part-*.parquet``,
written atomically, ``seq`` kept increasing across flushes) and clears them, so a
run of any length holds at most one flush interval of history in memory. An
episode in progress during a flush lands in two part files of its partition; the
store's readers see one episode. Read it back with
``EpisodeStore(root).scan("events", run=...)`` and the queries of :mod:`orderbook.queries`.

Cost (measured on the 2-core box): the store writes one file per (kind, episode
number) per flush, about 2-3 ms each, so a policy that finishes a parent every
few steps writes thousands of small files over a long run; ``keep=False`` only
clears the logs.
"""

from __future__ import annotations

import os
import re

import polars as pl

from orderbook.store import EpisodeStore


def run_name(text: str) -> str:
    """``text`` as a valid store run name (letters, digits, ``_.-``; starting with a letter or digit)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:128]
    return name or "run"


class HistoryWriter:
    """Flush an exchange's history into ``EpisodeStore(root)`` as ``run`` (``keep=False``: only clear it)."""

    def __init__(self, exchange, root: str | os.PathLike[str], run: str, keep: bool = True):
        self.exchange = exchange
        self.run = run_name(run)
        self.keep = keep
        self.store = EpisodeStore(root) if keep else None
        self.files = 0
        self.rows = {"events": 0, "ledger": 0, "market": 0}

    def flush(self) -> None:
        """Write what the logs hold (when keeping) and clear them."""
        history = self.exchange.history
        if self.store is not None and any(history.sizes()):
            for name, n in zip(self.rows, history.sizes()):
                self.rows[name] += n
            self.files += len(self.store.write_history(self.run, history, clear=True))
        history.clear()

    def scan(self, kind: str) -> pl.LazyFrame:
        """A lazy frame over every episode of this run's ``kind`` log (events, ledger, market)."""
        if self.store is None:
            raise ValueError("the history was not kept (keep=False)")
        return self.store.scan(kind, run=self.run)
