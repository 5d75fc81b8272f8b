"""What a front-end's history keeps: each lane's last episodes, everything or nothing, and a store.

The core's logs are append-only and grow by doubling; nothing in the core drops
rows. :class:`HistoryKeeper` is the policy the front-ends apply after every step
and reset (``envs.core.BatchTask``: ``gym.make``, the native vector env and the
SB3 ``VecEnv``), so a plain loop runs flat in memory. ``keep`` says what stays:

- ``"episode"`` (the default of every env; the same as ``1``) or an int ``N >= 1``:
  every row of each lane's last ``N`` episodes, the current one included. Older
  episodes are dropped whole (:meth:`History.drop_episodes`), so every episode the
  history holds is complete. Lanes reset at different times, so dropping is lazy:
  when the logs hold more than :attr:`HistoryKeeper.limit` rows (twice the rows
  kept at the last drop, and at least ``min_rows``), every episode older than the
  window goes. Until then older episodes linger (complete). The rows held stay
  below ``max(2 x kept at the last drop, min_rows)`` plus one step's, and the next
  drop waits until the rows at least double (or reach ``min_rows``), so a drop's
  cost is amortized O(1) per row written. The bound is in episodes: a lane whose
  episode never ends (no ``max_episode_steps``, no termination) keeps its whole
  episode, growing; such loops want ``"none"`` or a store.
  :meth:`HistoryKeeper.trim` drops them at once (then exactly ``N`` episodes per
  lane remain).
- ``"all"``: nothing is dropped (the logs grow without bound; for short runs
  that want every episode in memory).
- ``"none"``: the logs are cleared after every step and reset (the compiled step
  still writes one step's rows, into the same few pages; the cost is O(1)).

The logs are dropped and cleared in place: their arrays and capacity stay, so
memory is flat once the largest window was seen, not only bounded.

``store`` (an :class:`orderbook.analytics.store.EpisodeStore` or a folder for one): before
any drop, the rows dropped are written to it as run ``run`` (the least limit is
then 16 times larger, so the store gets fewer, larger files); :meth:`flush` writes
what is left and clears the logs (the envs' ``close()`` calls :meth:`close`, which
also lets go of the run's writer lock). So the store's
rows plus the rows in memory are every row written, none twice. ``"none"`` with
a store is refused (it would write a file per step); ``"all"`` writes at flush.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import polars as pl

from orderbook.analytics.store import EpisodeStore

KEEP_CHOICES = "'episode', 'all', 'none', or an int N >= 1 (each lane's last N episodes)"
_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def parse_keep(keep: Any) -> int | None:
    """``keep`` as episodes per lane: ``N >= 1``, ``0`` for ``"none"``, ``None`` for ``"all"``."""
    if isinstance(keep, str):
        table = {"episode": 1, "all": None, "none": 0}
        if keep in table:
            return table[keep]
    elif isinstance(keep, (int, np.integer)) and not isinstance(keep, bool) and 1 <= keep <= 2**31 - 1:
        return int(keep)
    raise ValueError(f"history must be {KEEP_CHOICES}, got {keep!r}")


class HistoryKeeper:
    """Applies a retention policy to ``exchange.history`` (see the module docstring).

    Args:
        exchange: the :class:`orderbook.Exchange` whose history is kept.
        keep: ``"episode"``, an int ``N >= 1``, ``"all"`` or ``"none"``.
        store: ``None``, an :class:`~orderbook.analytics.store.EpisodeStore` or a folder path for one;
            the rows dropped go there first.
        run: the store's run name (1-128 letters, digits, ``_.-``, starting with a letter or digit).
        min_rows: the least row limit (rows of the three logs together) before episodes are dropped;
            default ``4096 + 256 x lanes``, 16 times that with a store (each drop writes files: fewer,
            larger writes).
    """

    def __init__(self, exchange, keep: Any = "episode", store: Any = None, run: str = "env", min_rows: int | None = None):
        self.episodes = parse_keep(keep)
        self.keep = keep
        if store is not None and not isinstance(store, (EpisodeStore, str, os.PathLike)):
            raise ValueError(f"history_store must be None, an orderbook.analytics.store.EpisodeStore or a folder path, got {type(store).__name__}")
        if store is not None and self.episodes == 0:
            raise ValueError("history='none' keeps nothing to flush to a store (it would write every step); "
                             "use history='episode' (or an int) with history_store")
        if not (isinstance(run, str) and _RUN.fullmatch(run)):
            raise ValueError(f"history_run must be 1-128 characters of letters, digits, '_', '.', '-', starting with a "
                             f"letter or digit, got {run!r}")
        if min_rows is None:
            min_rows = (4096 + 256 * exchange.n_lanes) * (16 if store is not None else 1)
        if not (isinstance(min_rows, (int, np.integer)) and min_rows >= 0):
            raise ValueError(f"min_rows must be an int >= 0, got {min_rows!r}")
        self.exchange = exchange
        self.run = run
        self._store_arg = store
        self._store: EpisodeStore | None = store if isinstance(store, EpisodeStore) else None
        self.min_rows = int(min_rows)
        self.limit = self.min_rows  # rows (three logs together) above which old episodes are dropped
        self.drops = 0  # times episodes were dropped
        self.rows_written = {"events": 0, "ledger": 0, "market": 0}
        self.files_written = 0

    @property
    def store(self) -> EpisodeStore | None:
        """The episode store (opened at the first write when given as a path), or None."""
        if self._store is None and self._store_arg is not None:
            self._store = EpisodeStore(self._store_arg)
        return self._store

    def rows(self) -> int:
        """Rows the three logs hold."""
        return sum(self.exchange.history.sizes())

    def after_step(self) -> None:
        """Apply the policy after a step or reset that succeeded (cheap unless something is dropped)."""
        if self.episodes is None:
            return
        if self.episodes == 0:
            self.exchange.history.clear()
        elif self.rows() > self.limit:
            self.trim()

    def first_kept(self) -> np.ndarray:
        """``(B,)`` the first episode of each lane the policy keeps."""
        return self.exchange.lanes.episode - (self.episodes - 1)

    def trim(self) -> None:
        """Drop every episode older than the window now (written to the store first); then each lane's
        history holds exactly its last ``N`` episodes. ``"all"``: nothing; ``"none"``: clear."""
        if self.episodes is None:
            return
        history = self.exchange.history
        if self.episodes == 0:
            history.clear()
            return
        first = self.first_kept()
        if self._store_arg is not None:
            self._write(self._dropped_frames(first))
        kept = history.drop_episodes(first, self.exchange.orders.history_row)
        self.drops += 1
        self.limit = max(2 * sum(kept), self.min_rows)

    def flush(self) -> None:
        """Write every row the history holds to the store and clear it (nothing without a store).

        The episodes in progress go on in memory from where the flush cut them; the store holds them
        whole once written again (its ``seq`` keeps increasing across writes)."""
        history = self.exchange.history
        if self._store_arg is None or not any(history.sizes()):
            return
        frames = history.to_polars()
        self._write(frames)
        history.clear()

    def close(self) -> None:
        """:meth:`flush`, then let go of the store's run (its writer lock) if the keeper opened the store
        from a path; a store object given by the caller stays the caller's to close."""
        self.flush()
        if self._store is not None and self._store is not self._store_arg:
            self._store.close()
            self._store = None

    def _dropped_frames(self, first: np.ndarray) -> dict[str, pl.DataFrame]:
        out = {}
        for kind, frame in self.exchange.history.to_polars().items():
            lane, episode = frame["lane"].to_numpy(), frame["episode"].to_numpy()
            out[kind] = frame.filter(pl.Series(episode < first[lane]))
        return out

    def _write(self, frames: dict[str, pl.DataFrame]) -> None:
        if not any(f.height for f in frames.values()):
            return
        self.files_written += len(self.store.write_episode(self.run, frames))
        for kind, frame in frames.items():
            self.rows_written[kind] += frame.height
