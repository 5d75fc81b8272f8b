"""EpisodeStore at scale: compaction (atomic, crash-safe, a writer of the run), the runs table,
UTC time columns, integer partition keys for other readers, object-store URLs refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from polars.testing import assert_frame_equal

from orderbook.analytics import queries as q
from orderbook.analytics import store as store_mod
from orderbook.analytics import store_compact
from orderbook.analytics.store import EpisodeStore, RunLockedError
from tests.orderbook.analytics.test_store import stepped
from tests.orderbook.helpers import random_cancels, random_intents

REPO = Path(__file__).resolve().parents[3]
KINDS = ("events", "ledger", "market")
ORDER_KEY = ["run", "lane", "episode", "order_id"]


def flushed_store(root: Path, runs=("r",), flushes: int = 4, steps: int = 6) -> EpisodeStore:
    """A store whose runs were flushed ``flushes`` times: several parts in each partition."""
    store = EpisodeStore(root)
    for i, run in enumerate(runs):
        ex = stepped(seed=i, n_steps=steps)
        rng = np.random.default_rng(i)
        for _ in range(flushes):
            store.write_history(run, ex.history, clear=True)
            for _ in range(steps):
                ex.step(random_intents(rng, ex), random_cancels(rng, ex))
            ex.reset(mask=np.array([True, False]))  # lane 0 starts a new episode: more partitions
        store.write_history(run, ex.history, clear=True)
    store.close()
    return store


def everything(store: EpisodeStore) -> dict[str, pl.DataFrame]:
    """Every row of every kind, in a canonical order (so two stores with the same rows compare equal)."""
    out = {}
    for kind in KINDS:
        frame = store.read(kind)
        out[kind] = frame.sort(frame.columns[:6])
    return out


def answers(store: EpisodeStore) -> dict[str, pl.DataFrame]:
    events, ledger = store.scan("events"), store.scan("ledger")
    quality = q.execution_quality(events, by=["run", "venue", "kind"])["summary"].collect()
    return {
        "open": q.open_orders(events).collect().sort(ORDER_KEY),
        "state": q.latest_order_state(events).collect().sort(ORDER_KEY),
        "balances": q.latest_balances(ledger).collect().sort(["run", "lane", "episode", "venue", "asset"]),
        "quality": quality.sort(["run", "venue", "kind"]),
    }


def parts_per_partition(root: Path) -> list[int]:
    return [len(list(d.glob("part-*.parquet"))) for k in KINDS for d in (root / k).glob("run=*/episode=*")]


# ------------------------------------------------------------------ compaction
def test_compaction_keeps_every_row_their_order_and_the_queries_answers(tmp_path):
    store = flushed_store(tmp_path, runs=("a", "b"))
    before, answered = everything(store), answers(store)
    ordered = {kind: store.read(kind) for kind in KINDS}  # rows in partition then part then row order
    assert max(parts_per_partition(tmp_path)) >= 3
    files_before = len(store.files())
    done = store.compact()
    assert parts_per_partition(tmp_path) and set(parts_per_partition(tmp_path)) == {1}
    assert done.files_before + (len(store.files()) - done.files_after) == files_before
    for kind in KINDS:
        assert_frame_equal(everything(store)[kind], before[kind])
        assert_frame_equal(store.read(kind), ordered[kind])  # the same order: parts concatenated in part order
    for name, frame in answers(store).items():
        assert_frame_equal(frame, answered[name], check_exact=name != "quality")
    assert store.verify() == len(store.files())
    assert not list((tmp_path / store_compact.STAGING_DIR).rglob("*.parquet"))


def test_compaction_counts_what_it_merged_and_a_second_one_finds_nothing_to_do(tmp_path):
    store = flushed_store(tmp_path)
    multi = [d for k in KINDS for d in (tmp_path / k).glob("run=r/episode=*") if len(list(d.glob("part-*"))) >= 2]
    n_files = sum(len(list(d.glob("part-*.parquet"))) for d in multi)
    n_rows = sum(store_compact.count_rows(p) for d in multi for p in d.glob("part-*.parquet"))
    done = store.compact("r")
    assert (done.partitions, done.files_before, done.files_after, done.rows) == (len(multi), n_files, len(multi), n_rows)
    again = store.compact("r")
    assert (again.partitions, again.files_before, again.rows) == (0, 0, 0)


def test_compacting_some_episodes_leaves_the_others_as_they_were(tmp_path):
    store = flushed_store(tmp_path)
    untouched = {p: p.stat().st_ino for p in store.files() if p.parent.name != "episode=0000000000"}
    store.compact("r", episodes=[0])
    assert all(len(list(d.glob("part-*.parquet"))) == 1 for k in KINDS for d in (tmp_path / k).glob("run=r/episode=0000000000"))
    assert {p: p.stat().st_ino for p in store.files() if p.parent.name != "episode=0000000000"} == untouched


def test_appending_after_compaction_continues_the_parts_and_seq(tmp_path):
    store = flushed_store(tmp_path)
    store.compact("r")
    top = store.read("events").filter(pl.col("episode") == 0)["seq"].max()
    ex = stepped(seed=7, n_steps=3)
    written = EpisodeStore(tmp_path).write_history("r", ex.history)
    assert {p.name for p in written if p.parent.name == "episode=0000000000"} == {"part-00001.parquet"}
    new = pl.read_parquet(tmp_path / "events" / "run=r" / "episode=0000000000" / "part-00001.parquet")
    assert new["seq"].min() > top


def test_bad_compaction_arguments_are_refused_before_anything_changes(tmp_path):
    store = flushed_store(tmp_path, flushes=1)
    before = sorted(store.files())
    with pytest.raises(ValueError, match="min_files must be an int >= 2"):
        store.compact(min_files=1)
    with pytest.raises(ValueError, match="run must be"):
        store.compact("../x")
    assert sorted(store.files()) == before


CRASH_POINTS = ["writing the merged file", "before the swap", "after the swap"]


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.parametrize("nth", [0, 1, 3])
def test_a_compaction_that_dies_leaves_every_row_exactly_once_and_readable(tmp_path, monkeypatch, point, nth):
    store = flushed_store(tmp_path)
    before, answered = everything(store), answers(store)
    calls = []

    def dies_on_nth(real):
        def wrapped(*args):
            calls.append(1)
            if len(calls) == nth + 1:
                raise OSError(f"crash {point} (simulated)")
            return real(*args)
        return wrapped

    assert len(store_compact.partitions(tmp_path, KINDS, "r", None, 2)) > nth
    if point == "writing the merged file":
        real = store_mod._write_parquet

        def half_then_crash(frame, fh, metadata):
            calls.append(1)
            if len(calls) <= nth:
                return real(frame, fh, metadata)
            fh.write(b"PAR1" + b"\0" * 64)  # the start of the merged file, then the crash
            raise OSError("crash (simulated)")

        monkeypatch.setattr(store_mod, "_write_parquet", half_then_crash)
    elif point == "before the swap":
        monkeypatch.setattr(store_compact, "exchange", dies_on_nth(store_compact.exchange))
    else:
        monkeypatch.setattr(store_compact.shutil, "rmtree", dies_on_nth(store_compact.shutil.rmtree))
    with pytest.raises(OSError, match="simulated"):
        store.compact("r")
    monkeypatch.undo()
    # readers see every row once, whatever was swapped in
    for kind in KINDS:
        assert_frame_equal(everything(store)[kind], before[kind])
    for name, frame in answers(store).items():
        assert_frame_equal(frame, answered[name], check_exact=name != "quality")
    assert pa.dataset.dataset(tmp_path / "events", format="parquet", partitioning="hive").count_rows() == before["events"].height
    assert list((tmp_path / store_compact.STAGING_DIR).rglob("*"))  # the dead compaction's leftovers, unread
    # the run's next writer removes them; a second compaction finishes the job
    store.open_run("r")
    assert not list((tmp_path / store_compact.STAGING_DIR / "run=r").iterdir())
    store.compact("r")
    assert set(parts_per_partition(tmp_path)) == {1}
    for kind in KINDS:
        assert_frame_equal(everything(store)[kind], before[kind])


KILLED = textwrap.dedent(
    """
    import sys, time
    from orderbook.analytics import store as store_mod
    root, ready, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real, calls = store_mod._write_parquet, []

    def hang_on_nth(frame, fh, metadata):
        calls.append(1)
        if len(calls) <= nth:
            return real(frame, fh, metadata)
        fh.write(b"PAR1" + b"\\0" * 100)
        fh.flush()
        open(ready, "w").close()
        time.sleep(600)

    store_mod._write_parquet = hang_on_nth
    store_mod.EpisodeStore(root).compact("r")
    """
)


def test_a_compaction_killed_midway_frees_the_run_and_leaves_every_row_once(tmp_path):
    root = tmp_path / "store"
    store = flushed_store(root)
    before = everything(store)
    script, ready = tmp_path / "compact.py", tmp_path / "ready"
    script.write_text(KILLED)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(ready), "2"], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, "the compaction exited before it reached the third partition"
            assert time.monotonic() < deadline, "the compaction never reached the third partition"
            time.sleep(0.05)
        with pytest.raises(RunLockedError, match="being written by another process"):
            EpisodeStore(root).write_episode("r", {"events": before["events"].head(0).drop("run", "time_utc")})
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    for kind in KINDS:
        assert_frame_equal(everything(store)[kind], before[kind])
    assert 1 in parts_per_partition(root) and max(parts_per_partition(root)) > 1  # two partitions merged, the rest not
    store.compact("r")  # the run is free again; its leftovers go when the compaction takes it
    assert set(parts_per_partition(root)) == {1} and not list((root / "_staging").rglob("*.parquet"))
    for kind in KINDS:
        assert_frame_equal(everything(store)[kind], before[kind])


HOLD = textwrap.dedent(
    """
    import sys, time
    from orderbook.analytics.store import EpisodeStore
    root, ready = sys.argv[1], sys.argv[2]
    store = EpisodeStore(root)
    store.open_run("r")
    open(ready, "w").close()
    time.sleep(600)
    """
)


def test_compaction_is_a_writer_refused_while_another_process_writes_the_run(tmp_path):
    root = tmp_path / "store"
    store = flushed_store(root, runs=("r", "s"))
    script, ready = tmp_path / "hold.py", tmp_path / "ready"
    script.write_text(HOLD)
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(ready)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        before = {p: p.stat().st_ino for p in store.files() if "run=r" in str(p)}
        with pytest.raises(RunLockedError, match="'r'"):
            store.compact("r")
        done = store.compact()
        assert done.skipped_runs == ["r"] and done.partitions > 0
        assert {p: p.stat().st_ino for p in store.files() if "run=r" in str(p)} == before
        assert all(len(list(d.glob("part-*"))) == 1 for k in KINDS for d in (root / k).glob("run=s/episode=*"))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert "r" not in store._open  # a compaction does not keep the runs it took


# ------------------------------------------------------------------ runs table
def test_the_runs_table_records_what_each_run_is_and_keeps_its_creation_time(tmp_path):
    store = EpisodeStore(tmp_path)
    assert store.runs_table().schema == pl.Schema(store_mod.RUNS_SCHEMA) and store.runs_table().height == 0
    store.describe_run("ppo-1", env_id="orderbook/Execution-v0", config={"lr": 3e-4, "lanes": np.int64(4)}, seeds=[0, 1])
    ex = stepped(n_steps=3)
    store.write_history("plain", ex.history)  # written without a description: a record with nulls
    table = store.runs_table()
    assert table["run"].to_list() == ["plain", "ppo-1"]
    ppo = table.row(1, named=True)
    assert ppo["env_id"] == "orderbook/Execution-v0" and ppo["seeds"] == [0, 1]
    assert pl.Series([ppo["config"]]).str.json_decode().item() == {"lanes": 4, "lr": 3e-4}
    assert table.row(0, named=True)["env_id"] is None and table.row(0, named=True)["seeds"] is None
    assert table.schema["created"] == pl.Datetime("us", "UTC") and ppo["package_version"]
    time.sleep(0.01)
    store.describe_run("plain", env_id="orderbook/Trading-v0")
    again = store.runs_table().row(0, named=True)
    assert again["env_id"] == "orderbook/Trading-v0" and again["created"] == table.row(0, named=True)["created"]
    with pytest.raises(ValueError, match="expected a JSON-able object or JSON text"):
        store.describe_run("plain", config="{not json")
    assert store.runs_table().row(0, named=True) == again  # a refused description changes nothing


# ------------------------------------------------------------------ columns and readers
def test_time_utc_is_the_integer_time_as_a_utc_datetime_beside_it(tmp_path):
    store = EpisodeStore(tmp_path)
    store.write_episode("r", {"events": pl.DataFrame({"lane": [0, 0], "episode": [0, 0], "seq": [0, 1],
                                                      "time_ns": [1_700_000_000_123_456_789, 5]})})
    back = store.read("events")
    assert back.columns.index("time_utc") == back.columns.index("time_ns") + 1
    assert back.schema["time_utc"] == pl.Datetime("us", "UTC")
    assert back["time_utc"].to_list()[0].isoformat() == "2023-11-14T22:13:20.123456+00:00"
    assert (back["time_utc"].dt.epoch("us") == back["time_ns"] // 1000).all()


def test_episode_partitions_read_back_as_integers_in_numeric_order(tmp_path):
    store = EpisodeStore(tmp_path)
    for episode in (0, 2, 10, 11, 1):
        store.write_episode("r", {"events": pl.DataFrame({"lane": [0], "episode": [episode], "tag": [episode]})})
    frame = pd.read_parquet(tmp_path / "events", partitioning=store.partitioning())
    assert frame["episode"].dtype == np.int32 and sorted(frame["episode"]) == [0, 1, 2, 10, 11]
    assert frame.sort_values("episode")["tag"].tolist() == [0, 1, 2, 10, 11]
    assert store.dataset("events").schema.field("episode").type == pa.int32()
    assert store.to_pandas("events")["episode"].dtype == np.int32


@pytest.mark.parametrize("url", ["s3://bucket/x", "gs://b/episodes", "abfs://c@acct.dfs.core.windows.net/x"])
def test_an_object_store_url_is_refused_and_creates_no_local_folder(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="writes a local .or mounted. directory, got the URL"):
        EpisodeStore(url)
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_is_the_local_path(tmp_path):
    store = EpisodeStore(f"file://{tmp_path}/s")
    assert store.root == tmp_path / "s" and (tmp_path / "s" / "_schema.json").exists()


# ------------------------------------------------------------------ property: writes and compactions interleaved

class WritesAndCompactions(RuleBasedStateMachine):
    """Appends of random episodes and compactions of random episode ranges, in any order: every row once, each
    partition's rows in the order written, ``seq`` increasing across the run."""

    def __init__(self):
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.store = EpisodeStore(self.tmp.name)
        self.written: list[tuple[int, int]] = []  # (episode, tag) in write order
        self.tag = 0

    @rule(episodes=st.lists(st.integers(0, 5), min_size=1, max_size=6))
    def write(self, episodes):
        tags = list(range(self.tag, self.tag + len(episodes)))
        self.tag += len(episodes)
        frame = pl.DataFrame({"lane": [0] * len(episodes), "episode": episodes, "seq": list(range(len(episodes))), "tag": tags})
        self.store.write_episode("r", {"events": frame})
        self.written += list(zip(episodes, tags, strict=True))

    @rule(low=st.integers(0, 5), width=st.integers(1, 6), min_files=st.integers(2, 3))
    def compact(self, low, width, min_files):
        self.store.compact("r", episodes=range(low, low + width), min_files=min_files)

    @invariant()
    def every_row_once_in_write_order(self):
        if not self.written:
            return
        back = self.store.read("events")
        assert sorted(back["tag"].to_list()) == sorted(t for _, t in self.written)
        for (episode,), part in back.partition_by("episode", as_dict=True, maintain_order=True).items():
            assert part["tag"].to_list() == [t for e, t in self.written if e == episode]
        assert back.sort("tag")["seq"].is_sorted() and back["seq"].n_unique() == back.height

    def teardown(self):
        self.store.close()
        self.tmp.cleanup()


TestWritesAndCompactions = WritesAndCompactions.TestCase
TestWritesAndCompactions.settings = settings(max_examples=25, stateful_step_count=12)
