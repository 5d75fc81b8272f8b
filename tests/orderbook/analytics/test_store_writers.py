"""EpisodeStore: one writer per run, enforced by a lock a dead writer never keeps; stale temporary files cleaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from orderbook.analytics.store import EpisodeStore, RunLockedError

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

PRELUDE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import polars as pl
    from orderbook.analytics import store as store_mod
    from orderbook.analytics.store import EpisodeStore, RunLockedError

    def rows(writer, i, n=7):
        return {"events": pl.DataFrame({"lane": [writer] * n, "episode": [i % 3] * n, "seq": list(range(n)),
                                        "writer": [writer] * n, "i": [i] * n})}

    def wait_for(*paths, timeout=120):
        deadline = time.monotonic() + timeout
        while not all(Path(p).exists() for p in paths):
            assert time.monotonic() < deadline, f"timed out waiting for {paths}"
            time.sleep(0.01)
    """
)


def rows(writer: int, i: int, n: int = 7) -> dict[str, pl.DataFrame]:
    """One flush of a fake writer: n rows tagged with the writer and the flush number."""
    return {"events": pl.DataFrame({"lane": [writer] * n, "episode": [i % 3] * n, "seq": list(range(n)),
                                    "writer": [writer] * n, "i": [i] * n})}


def run_script(tmp_path: Path, name: str, body: str, *args: str) -> subprocess.Popen:
    script = tmp_path / f"{name}.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    return subprocess.Popen([sys.executable, str(script), *args], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


TRY_WRITE = """
root, run = sys.argv[1], sys.argv[2]
try:
    EpisodeStore(root).write_episode(run, rows(9, 0))
except RunLockedError as err:
    print(err)
    sys.exit(3)
"""


def try_write(tmp_path: Path, root: Path, run: str) -> tuple[int, str]:
    proc = run_script(tmp_path, "try_write", TRY_WRITE, str(root), run)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 3), err
    return proc.returncode, out


def test_another_process_is_refused_while_a_store_has_the_run_open_and_admitted_after_close(tmp_path):
    root = tmp_path / "store"
    first, second = EpisodeStore(root), EpisodeStore(root)
    first.write_episode("r", rows(0, 0))
    second.write_episode("r", rows(1, 1))  # same process: the same writer, not a second one
    first.write_episode("r", rows(0, 2))
    events = first.read("events").sort("seq")
    assert events["seq"].to_list() == list(range(21))  # one seq counter across the process's store objects
    assert sorted(p.name for p in first.files("events")) == ["part-00000.parquet"] * 3  # episodes 0, 1, 2
    code, message = try_write(tmp_path, root, "r")
    assert code == 3
    assert "run 'r' of the episode store" in message and f"pid {os.getpid()} on host" in message
    assert "expected one writer per run" in message
    assert try_write(tmp_path, root, "other") == (0, "")  # other runs are free
    first.close()
    assert try_write(tmp_path, root, "r")[0] == 3  # `second` still has it open
    second.close()
    assert try_write(tmp_path, root, "r") == (0, "")
    assert EpisodeStore(root).read("events", run="r").height == 28  # nothing lost, nothing written by the refusals


def test_leaving_the_with_block_or_dropping_the_store_releases_the_run(tmp_path):
    root = tmp_path / "store"
    with EpisodeStore(root) as store:
        store.open_run("r")
        assert try_write(tmp_path, root, "r")[0] == 3
    assert try_write(tmp_path, root, "r") == (0, "")
    store = EpisodeStore(root)
    store.write_episode("s", rows(0, 0))
    assert try_write(tmp_path, root, "s")[0] == 3
    del store
    assert try_write(tmp_path, root, "s") == (0, "")


def test_a_child_forked_from_the_writer_does_not_inherit_the_run(tmp_path):
    store = EpisodeStore(tmp_path)
    store.write_episode("r", rows(0, 0))
    pid = os.fork()
    if pid == 0:  # the child: refused, and its exit does not release the parent's lock
        try:
            store.write_episode("r", rows(1, 1))
            code = 1
        except RunLockedError:
            code = 0
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert try_write(tmp_path, tmp_path, "r")[0] == 3  # the parent still holds the run
    store.write_episode("r", rows(0, 1))
    assert store.read("events")["i"].to_list() == [0] * 7 + [1] * 7


LOOP_WRITER = """
root, me, other = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
here = Path(root).parent
wait_for(here / "go")
store = EpisodeStore(root)
written = 0
try:
    for i in range(40):
        store.write_episode("r", rows(me, i))
        written += 1
        if i == 0:
            (here / f"tried-{me}").touch()
except RunLockedError as err:
    (here / f"tried-{me}").touch()
    print(written, err)
    sys.exit(3)
wait_for(here / f"tried-{other}")  # keep the run open until the other writer has tried
print(written)
"""


def test_two_processes_appending_to_one_run_in_a_loop_one_is_refused_and_no_row_is_lost(tmp_path):
    root = tmp_path / "store"
    EpisodeStore(root)
    procs = [run_script(tmp_path, f"writer{me}", LOOP_WRITER, str(root), str(me), str(1 - me)) for me in (0, 1)]
    (tmp_path / "go").touch()
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 3], results
    winner, loser = codes.index(0), codes.index(3)
    assert results[winner][0].split() == ["40"]
    written, message = results[loser][0].split(" ", 1)
    assert written == "0" and "run 'r'" in message and f"pid {procs[winner].pid} on host" in message
    events = EpisodeStore(root).read("events")
    assert events.height == 40 * 7 and set(events["writer"]) == {winner}
    assert sorted(events["i"].unique()) == list(range(40))
    assert events["seq"].n_unique() == events.height  # seq kept increasing across the 40 flushes


HANG_MIDWAY = """
root, ready = sys.argv[1], sys.argv[2]
store = EpisodeStore(root)
store.write_episode("r", rows(0, 0))

def hang_midway(frame, fh, metadata):
    fh.write(b"PAR1" + b"\\0" * 100)
    fh.flush()
    Path(ready).touch()
    time.sleep(600)

store_mod._write_parquet = hang_midway
store.write_episode("r", rows(0, 3))
"""


def test_a_writer_killed_mid_write_frees_the_run_and_the_next_open_removes_its_temporary_files(tmp_path):
    root, ready = tmp_path / "store", tmp_path / "ready"
    proc = run_script(tmp_path, "hang", HANG_MIDWAY, str(root), str(ready))
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the writer never reached its second write"
            time.sleep(0.02)
        assert try_write(tmp_path, root, "r")[0] == 3  # alive: it holds the run
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=30)
    assert len(list(root.rglob(".part-*.tmp"))) == 1  # the half-written file, hidden
    store = EpisodeStore(root)
    assert len(list(root.rglob(".part-*.tmp"))) == 1  # opening to read removes nothing
    store.open_run("r")  # the dead writer's lock does not block
    assert not list(root.rglob("*.tmp"))
    store.write_episode("r", rows(1, 0))
    assert sorted(str(p.relative_to(root)) for p in store.files()) == [
        "events/run=r/episode=0000000000/part-00000.parquet", "events/run=r/episode=0000000000/part-00001.parquet"]
    events = store.read("events")
    assert events["seq"].to_list() == list(range(14)) and events["writer"].to_list() == [0] * 7 + [1] * 7


def test_stale_temporary_files_of_other_runs_are_left_to_their_writers(tmp_path):
    store = EpisodeStore(tmp_path)
    store.write_episode("a", rows(0, 0))
    store.write_episode("b", rows(0, 0))
    store.close()
    stale_a = tmp_path / "events" / "run=a" / "episode=0000000000" / ".part-00001.parquet.123-abcd.tmp"
    stale_b = tmp_path / "events" / "run=b" / "episode=0000000000" / ".part-00001.parquet.123-abcd.tmp"
    for p in (stale_a, stale_b):
        p.write_bytes(b"PAR1")
    EpisodeStore(tmp_path).open_run("a")
    assert not stale_a.exists() and stale_b.exists()


def test_a_refused_write_changes_nothing(tmp_path):
    root = tmp_path / "store"
    proc = run_script(tmp_path, "holder", """
root, ready, done = sys.argv[1], sys.argv[2], sys.argv[3]
store = EpisodeStore(root)
store.open_run("r")
Path(ready).touch()
wait_for(done)
""", str(root), str(tmp_path / "ready"), str(tmp_path / "done"))
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "ready").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        store = EpisodeStore(root)
        with pytest.raises(RunLockedError, match=rf"run 'r' of the episode store {root} is being written by "
                                                 rf"another process \(pid {proc.pid} on host"):
            store.write_episode("r", rows(1, 0))
        assert store.files() == [] and not list(root.rglob("*.tmp"))
        assert store.schema()["kinds"] == {}
    finally:
        (tmp_path / "done").touch()
        proc.communicate(timeout=30)
    store.write_episode("r", rows(1, 0))  # the holder exited: the same store object now gets the run
    assert store.read("events").height == 7


def test_remove_temporary_leaves_the_runs_being_written_alone(tmp_path):
    root = tmp_path / "store"
    writer = EpisodeStore(root)
    writer.write_episode("live", rows(0, 0))
    writer.write_episode("dead", rows(0, 0))
    writer.close()
    writer.open_run("live")
    stale = {run: root / "events" / f"run={run}" / "episode=0000000000" / ".part-00001.parquet.123-abcd.tmp" for run in ("live", "dead")}
    for p in stale.values():
        p.write_bytes(b"PAR1")
    assert EpisodeStore(root).remove_temporary() == [stale["dead"]]
    assert stale["live"].exists() and not stale["dead"].exists()
    assert try_write(tmp_path, root, "dead") == (0, "")  # the probe let the run go
    writer.close()
    assert EpisodeStore(root).remove_temporary() == [stale["live"]]


FIRST_WRITE = """
root, run, extra = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
here = Path(root).parent
store = EpisodeStore(root)
wait_for(here / "go")
frames = rows(0, 0)
if extra:
    frames = {"events": frames["events"].with_columns(extra=pl.lit(1.5))}
try:
    store.write_episode(run, frames)
except ValueError as err:
    print(err)
    sys.exit(4)
"""


def test_two_runs_first_written_at_once_with_different_columns_leave_one_schema(tmp_path):
    root = tmp_path / "store"
    EpisodeStore(root)
    procs = [run_script(tmp_path, f"first{run}", FIRST_WRITE, str(root), run, extra) for run, extra in (("a", "0"), ("b", "1"))]
    (tmp_path / "go").touch()
    results = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 4], results
    refused = results[codes.index(4)][0]
    assert "events: columns do not match the dataset's events schema" in refused and "extra" in refused
    store = EpisodeStore(root)
    kept = ["a", "b"][codes.index(0)]
    assert store.runs() == [kept] and not list(root.rglob("*.tmp"))
    assert set(store.schema()["kinds"]["events"]) == set(store.read("events").columns) - {"run", "episode"}
