"""EpisodeStore: a Parquet dataset of episodes, partitioned by run and episode, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.dataset as pads
import pytest
from polars.testing import assert_frame_equal

import orderbook as ob
from orderbook.analytics import queries as q
from orderbook.analytics import store as store_mod
from orderbook.analytics.store import EpisodeStore, SchemaVersionError
from orderbook.history.logs import HISTORY_SCHEMA_VERSION
from tests.orderbook.helpers import random_cancels, random_intents, small_config

REPO = Path(__file__).resolve().parents[3]


def stepped(seed: int = 0, n_steps: int = 20, n_lanes: int = 2) -> ob.Exchange:
    ex = ob.Exchange(small_config(faults=ob.FaultSpec.high()), n_lanes=n_lanes)
    ex.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(n_steps):
        ex.step(random_intents(rng, ex), random_cancels(rng, ex))
    return ex


def fingerprint(root: Path) -> dict[str, tuple[int, int, str]]:
    """(inode, mtime_ns, sha256) of every visible part file."""
    out = {}
    for path in sorted(root.rglob("part-*.parquet")):
        st = path.stat()
        out[str(path.relative_to(root))] = (st.st_ino, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def as_stored(frame: pl.DataFrame) -> pl.DataFrame:
    """An in-memory frame as the store gives it back: run first, seq as Int64, time_utc beside time_ns."""
    cols = ["run", "lane", "episode"] + [c for c in frame.columns if c not in ("lane", "episode")]
    cols.insert(cols.index("time_ns") + 1, "time_utc")
    frame = frame.with_columns(pl.lit("r").alias("run"), pl.from_epoch(pl.col("time_ns") // 1000, "us").dt.replace_time_zone("UTC").alias("time_utc"))
    if "seq" in frame.columns:
        frame = frame.with_columns(pl.col("seq").cast(pl.Int64))
    return frame.select(cols)


def test_layout_is_hive_partitioned_by_run_and_episode_and_reads_back_equal(tmp_path):
    ex = stepped()
    ex.reset(mask=np.array([True, False]))
    ex.step(random_intents(np.random.default_rng(1), ex, n_orders=3))
    frames = ex.history.to_polars()
    paths = EpisodeStore(tmp_path).write_history("r", ex.history)
    rel = sorted(str(p.relative_to(tmp_path)) for p in paths)
    assert rel == sorted(f"{k}/run=r/episode={e:010d}/part-00000.parquet" for k in ("events", "ledger", "market") for e in (0, 1))
    store = EpisodeStore(tmp_path)
    for kind, frame in frames.items():
        back = store.read(kind)
        key = ["episode", "lane", "seq"] if "seq" in frame.columns else ["episode", "lane", "step", "instrument"]
        assert_frame_equal(back.sort(key), as_stored(frame).sort(key))
    meta = json.loads((tmp_path / "_schema.json").read_text())
    assert meta["schema_version"] == HISTORY_SCHEMA_VERSION and meta["partitioning"] == ["run", "episode"]
    assert set(meta["kinds"]) == {"events", "ledger", "market"} and "episode" not in meta["kinds"]["events"]
    assert store.verify() == 6 and store.runs() == ["r"] and store.episodes("r") == [0, 1]
    # other engines read the same dataset: pyarrow with hive partitioning, pandas through Polars
    assert pads.dataset(tmp_path / "events", format="parquet", partitioning="hive").count_rows() == frames["events"].height
    assert len(store.to_pandas("ledger", run="r")) == frames["ledger"].height


def test_appending_episodes_never_rewrites_earlier_files(tmp_path):
    ex = stepped(n_steps=10)
    store = EpisodeStore(tmp_path)
    store.write_history("r", ex.history, clear=True)
    before = fingerprint(tmp_path)
    time.sleep(0.01)
    for _ in range(5):  # the same episodes go on: new parts in the same partitions
        ex.step(random_intents(np.random.default_rng(2), ex, n_orders=3))
    written = EpisodeStore(tmp_path).write_history("r", ex.history, clear=True)
    after = fingerprint(tmp_path)
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {str(p.relative_to(tmp_path)) for p in written}
    assert all(p.name == "part-00001.parquet" for p in written)


def test_seq_keeps_increasing_across_flushes_so_latest_state_spans_them(tmp_path):
    ex = stepped(n_steps=12)
    whole = stepped(n_steps=12)
    store = EpisodeStore(tmp_path)
    store.write_history("r", ex.history, clear=True)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(12):
        ex.step(random_intents(rng_a, ex), random_cancels(rng_a, ex))
        whole.step(random_intents(rng_b, whole), random_cancels(rng_b, whole))
    EpisodeStore(tmp_path).write_history("r", ex.history)  # a new store object finds the offset on disk
    parts = sorted((tmp_path / "events" / "run=r" / "episode=0000000000").glob("part-*.parquet"))
    first, second = (pl.read_parquet(p)["seq"] for p in parts)
    assert first.max() < second.min()
    assert first.is_sorted() and second.is_sorted()
    key = ["lane", "episode", "order_id"]
    got = q.latest_order_state(store.scan("events")).collect().drop("run")
    assert_frame_equal(got.sort(key), q.latest_order_state(whole.history.events_frame()).sort(key))


def _crash_after_half(frame, fh, metadata):
    fh.write(b"PAR1" + b"\0" * 100)  # the start of a file, then the process dies
    raise OSError("disk full (simulated)")


def test_a_write_that_fails_midway_leaves_the_earlier_episodes_readable_and_nothing_partial(tmp_path, monkeypatch):
    ex = stepped(n_steps=8)
    store = EpisodeStore(tmp_path)
    store.write_history("r", ex.history, clear=True)
    before = fingerprint(tmp_path)
    earlier = {k: store.read(k) for k in ("events", "ledger", "market")}
    for _ in range(4):
        ex.step(random_intents(np.random.default_rng(3), ex))
    calls = []
    real = store_mod._write_parquet

    def fail_on_second(frame, fh, metadata):  # the first file of the call succeeds, the second dies
        calls.append(1)
        return real(frame, fh, metadata) if len(calls) == 1 else _crash_after_half(frame, fh, metadata)

    monkeypatch.setattr(store_mod, "_write_parquet", fail_on_second)
    with pytest.raises(OSError, match="simulated"):
        store.write_history("r", ex.history, clear=True)
    assert len(ex.history.events) > 0  # not cleared: nothing was written
    assert fingerprint(tmp_path) == before
    assert not list(tmp_path.rglob("*.tmp"))
    for kind, frame in earlier.items():
        assert_frame_equal(store.read(kind), frame)


WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import orderbook as ob
    from orderbook.analytics import store as store_mod
    from tests.orderbook.helpers import random_intents, small_config

    root, ready = sys.argv[1], sys.argv[2]
    ex = ob.Exchange(small_config(), n_lanes=2)
    ex.reset(seed=0)
    for _ in range(5):
        ex.step(random_intents(np.random.default_rng(0), ex))
    store = store_mod.EpisodeStore(root)
    store.write_history("r", ex.history, clear=True)

    def hang_midway(frame, fh, metadata):
        fh.write(b"PAR1" + b"\\0" * 100)
        fh.flush()
        open(ready, "w").close()
        time.sleep(600)

    store_mod._write_parquet = hang_midway
    ex.step(random_intents(np.random.default_rng(1), ex, n_orders=3))
    store.write_history("r", ex.history, clear=True)
    """
)


def test_a_writer_killed_mid_write_leaves_no_partial_file_visible(tmp_path):
    root, ready = tmp_path / "store", tmp_path / "ready"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(ready)], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "the writer exited before it started the second write"
            assert time.monotonic() < deadline, "the writer never reached the second write"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    store = EpisodeStore(root)
    leftovers = list(root.rglob(".part-*.tmp"))
    assert len(leftovers) == 1  # the half-written temporary file is there, hidden
    files = store.files()
    assert len(files) == 3 and all(p.name == "part-00000.parquet" for p in files)
    assert store.verify() == 3
    events = store.read("events")
    assert events.height > 0 and events["step"].max() == 5  # the first write only
    assert pads.dataset(root / "events", format="parquet", partitioning="hive").count_rows() == events.height
    assert store.remove_temporary() == leftovers and not list(root.rglob("*.tmp"))


def test_a_wrong_schema_version_is_refused_on_read_with_a_clear_error(tmp_path):
    ex = stepped(n_steps=3)
    store = EpisodeStore(tmp_path)
    store.write_history("r", ex.history)
    meta_path = tmp_path / "_schema.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "schema_version": 999}))
    with pytest.raises(SchemaVersionError, match=r"version 999; this orderbook reads versions \[1, 2\]"):
        store.scan("events")
    with pytest.raises(SchemaVersionError, match="999"):
        EpisodeStore(tmp_path)
    meta_path.write_text(json.dumps(meta))
    # a file from elsewhere, with another version in its metadata, is named by verify()
    stray = tmp_path / "events" / "run=r" / "episode=0000000000" / "part-00007.parquet"
    pl.DataFrame({"lane": [0]}).write_parquet(stray, metadata={store_mod.VERSION_KEY: "0"})
    with pytest.raises(SchemaVersionError, match="part-00007.parquet"):
        store.verify()


def test_a_store_of_schema_version_1_stays_readable_and_refuses_new_episodes(tmp_path):
    """Version 2 added the tif column and new event and reason names; a version-1 store (no tif column, the
    older enums) is read as it is, and a write to it is refused with a clear error, leaving it unchanged."""
    assert HISTORY_SCHEMA_VERSION == 2
    ex = stepped(n_steps=3)
    store = EpisodeStore(tmp_path)
    store.write_history("r", ex.history)
    old_events = store.read("events").drop("tif")
    for path in store.files():  # rewrite the dataset as version 1 wrote it
        frame = pl.read_parquet(path, hive_partitioning=False)
        frame.drop("tif", strict=False).write_parquet(path, metadata={store_mod.VERSION_KEY: "1"})
    meta_path = tmp_path / "_schema.json"
    meta = json.loads(meta_path.read_text())
    meta["kinds"]["events"].pop("tif")
    meta_path.write_text(json.dumps({**meta, "schema_version": 1}))
    v1 = EpisodeStore(tmp_path)
    assert v1.verify() == len(store.files())
    assert v1.read("events").equals(old_events)
    before = fingerprint(tmp_path)
    with pytest.raises(SchemaVersionError, match=r"version 1, which this orderbook reads but does not extend; it writes version 2"):
        v1.write_history("r2", ex.history)
    assert fingerprint(tmp_path) == before


def test_frames_that_do_not_match_the_dataset_are_refused_before_anything_is_written(tmp_path):
    ex = stepped(n_steps=3)
    store = EpisodeStore(tmp_path)
    store.write_history("r", ex.history)
    before = fingerprint(tmp_path)
    frames = ex.history.to_polars()
    with pytest.raises(ValueError, match="extra"):
        store.write_episode("r", {"ledger": frames["ledger"], "events": frames["events"].with_columns(extra=pl.lit(1))})
    with pytest.raises(ValueError, match="kind must be one of"):
        store.write_episode("r", {"orders": frames["events"]})
    with pytest.raises(ValueError, match="run must be"):
        store.write_episode("../elsewhere", frames)
    with pytest.raises(ValueError, match="missing"):
        store.write_episode("r", {"events": frames["events"].drop("episode")})
    assert fingerprint(tmp_path) == before


def test_scan_before_any_write_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing written yet"):
        EpisodeStore(tmp_path).scan("events")
