"""Episode histories of training and evaluation runs: the env's own retention, pointed at a store.

Every env keeps a bounded history (:mod:`orderbook.analytics.retention`): each lane's current
episode by default. A run that keeps its episodes gives its env a store
(:func:`history_kwargs`): before the env drops older episodes from memory it writes
them to an :class:`orderbook.analytics.store.EpisodeStore`
(``<root>/<kind>/run=<run>/episode=<n>/part-*.parquet``, written atomically), and
``close()`` (or ``task.keeper.flush()``) writes the rest, so memory stays flat
over a run of any length and the store ends with every row once. Episodes are
written whole (a drop takes whole episodes; the final flush the episodes in
progress), so one partition's part files hold different lanes' episodes. Read it
back with ``EpisodeStore(root).scan("events", run=...)`` and the queries of
:mod:`orderbook.analytics.queries`.

Cost: the store writes one file per (kind, episode number) per write (timed in
``benchmarks/RESULTS.md``, "SB3 adapter and the main job"); writes happen when the logs
outgrow twice what they kept (see :class:`orderbook.analytics.retention.HistoryKeeper`),
not every step.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any


def run_name(text: str) -> str:
    """``text`` as a valid store run name (letters, digits, ``_.-``; starting with a letter or digit)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")[:128]
    return name or "run"


def history_kwargs(root: str | os.PathLike[str], run: str, keep: bool = True) -> dict[str, Any]:
    """The env arguments of a run's history: each lane's current episode in memory and every episode
    written to ``EpisodeStore(root)`` as ``run`` (``keep=False``: ``history="none"``, nothing kept)."""
    if not keep:
        return {"history": "none"}
    return {"history": "episode", "history_store": Path(root), "history_run": run_name(run)}


def replace_store(root: str | os.PathLike[str]) -> None:
    """Remove the episode store at ``root`` left by an earlier run into the same folder, so a rerun replaces its
    history as it replaces the model (appending would mix two runs' episodes under one name, and a store written
    by an older package may hold an older schema). Only a folder that is an episode store (it has ``_schema.json``)
    is removed; anything else at ``root`` is refused, naming it."""
    root = Path(root)
    if not root.exists():
        return
    if not (root / "_schema.json").is_file():
        raise FileExistsError(f"{root}: expected an episode store (with _schema.json) or nothing, found another folder; "
                              "move it away or choose another output folder")
    shutil.rmtree(root)
