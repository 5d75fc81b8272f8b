"""The compile notice speaks on stderr only while numba really compiles, and counts the time apart."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import textwrap
import types

import numba
import pytest
from numba.core import event

from orderbook.compile import compile_notice as cn


class FakeClock:
    """Each reading is ``step_s`` later than the previous one."""

    def __init__(self, step_s: float):
        self.ticks = itertools.count()
        self.step_s = step_s

    def __call__(self) -> float:
        return next(self.ticks) * self.step_s


def fresh_function():
    """A new dispatcher each call (no cache): its first call compiles it and a nested helper."""

    @numba.njit(cache=False)
    def helper(x):
        return x + 1

    @numba.njit(cache=False)
    def outer(x):
        return helper(x) * 2

    return outer


def listening(notice: cn.CompileNotice):
    class Scope:
        def __enter__(self):
            event.register("numba:compile", notice)
            return notice

        def __exit__(self, *exc):
            event.unregister("numba:compile", notice)

    return Scope()


def test_a_compile_is_announced_counted_and_summed_and_a_compiled_call_is_silent():
    stream = io.StringIO()
    notice = cn.CompileNotice(stream=stream, interval_s=1e9, enabled=True, clock=FakeClock(1.0))
    func = fresh_function()
    with listening(notice):
        assert func(1) == 4
        first = stream.getvalue()
        assert func(2) == 6  # compiled already: no event
    assert first.splitlines() == [f"{cn.PREFIX} ..."]
    assert stream.getvalue() == first
    assert notice.compiled == 2  # outer and the nested helper
    assert notice.seconds > 0 and notice.seconds == int(notice.seconds), "outermost compile time, from the clock"
    summary = notice.finish()
    assert summary is not None and summary.startswith("compiled 2 orderbook kernels in ")
    assert stream.getvalue().splitlines()[-1] == summary
    assert notice.finish() is None, "a burst is summed up once"


def test_progress_lines_come_at_most_every_interval():
    stream = io.StringIO()
    notice = cn.CompileNotice(stream=stream, interval_s=5.0, enabled=True, clock=FakeClock(3.0))
    with listening(notice):
        for _ in range(4):
            fresh_function()(1)
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"{cn.PREFIX} ..."
    progress = lines[1:]
    assert progress and all(line.startswith(f"{cn.PREFIX}: ") and " compiled, " in line for line in progress)
    assert len(progress) < notice.compiled, "throttled, not a line per kernel"
    counts = [int(line.split(": ")[1].split(" compiled")[0]) for line in progress]
    assert counts == sorted(counts) and counts[-1] <= notice.compiled == 8


@pytest.mark.parametrize("value", ["0", "off", "false"])
def test_the_env_var_silences_the_notice_but_not_the_counting(monkeypatch, value):
    monkeypatch.setenv(cn.ENV_VAR, value)
    stream = io.StringIO()
    notice = cn.CompileNotice(stream=stream, enabled=None)
    with listening(notice):
        fresh_function()(1)
    assert notice.finish().startswith("compiled 2 orderbook kernels")
    assert stream.getvalue() == ""
    assert notice.compiled == 2 and notice.seconds > 0


def test_install_is_idempotent_and_feeds_the_module_figures():
    notice = cn.install()
    assert cn.install() is notice
    before_n, before_s = cn.kernels_compiled(), cn.compile_seconds()
    fresh_function()(1)
    assert cn.kernels_compiled() == before_n + 2 and cn.compile_seconds() > before_s


def test_a_second_process_with_everything_cached_prints_nothing(tmp_path):
    """The real thing: a cached kernel in a new process raises no compile event, so no notice."""
    (tmp_path / "kernels_mod.py").write_text(textwrap.dedent("""
        from numba import njit

        @njit(cache=True)
        def twice(x):
            return 2 * x
    """))
    script = "from orderbook.compile import compile_notice as cn; cn.install(); import kernels_mod; kernels_mod.twice(3); cn.finish()"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    env.pop(cn.ENV_VAR, None)
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert all(r.returncode == 0 and r.stdout == "" for r in runs), [r.stderr for r in runs]
    cold, warm = runs[0].stderr.splitlines(), runs[1].stderr
    assert cold[0] == f"{cn.PREFIX} ..." and cold[-1].startswith("compiled 1 orderbook kernels in ")
    assert warm == ""


def test_the_demo_reports_compile_time_apart_from_stepping(monkeypatch, capsys):
    """Whatever compiles during the steps is reported as compiling, not as stepping time."""
    from orderbook import demo
    readings = iter([0.0, 0.0, 500.0])  # before the exchange, after reset, after the steps
    monkeypatch.setattr(demo.compile_notice, "compile_seconds", lambda: next(readings))
    monkeypatch.setattr(demo.compile_notice, "finish", lambda: None)
    demo.main(["--lanes", "2", "--steps", "3"])
    line = next(x for x in capsys.readouterr().out.splitlines() if "stepping" in x)
    assert "compiling kernels 500.0 s (first run only, cached afterwards)" in line
    assert "stepping 0.00 s" in line, "the 500 s of compiling are not stepping time"



def test_the_heartbeat_speaks_during_one_long_compile_and_is_quiet_between_compiles():
    stream = io.StringIO()
    clock = FakeClock(4.0)
    notice = cn.CompileNotice(stream=stream, interval_s=10.0, enabled=True, clock=clock)
    assert notice.beat() is False and stream.getvalue() == "", "nothing compiling: no line"
    notice.on_start(event.Event("numba:compile", event.EventStatus.START, data={}))
    lines = [notice.beat() for _ in range(4)]  # the clock moves 4 s a reading: a line once 10 s have passed
    assert lines.count(True) >= 1 and lines[0] is False
    assert stream.getvalue().splitlines()[-1].startswith(f"{cn.PREFIX}: 1 compiled, ")
    notice.on_end(event.Event("numba:compile", event.EventStatus.END, data={}))
    before = stream.getvalue()
    assert [notice.beat() for _ in range(5)] == [False] * 5 and stream.getvalue() == before


def test_progress_names_the_kernel_still_compiling_not_the_last_one_started():
    stream = io.StringIO()
    notice = cn.CompileNotice(stream=stream, interval_s=10.0, enabled=True, clock=FakeClock(4.0))
    start = lambda name: notice.on_start(event.Event("numba:compile", event.EventStatus.START, data={"dispatcher": _named(name)}))  # noqa: E731
    end = lambda: notice.on_end(event.Event("numba:compile", event.EventStatus.END, data={}))  # noqa: E731
    start("outer")
    start("inner")
    end()
    while not notice.beat():
        pass
    assert stream.getvalue().splitlines()[-1].endswith("(now tests.orderbook.compile.test_compile_notice.outer)")


def _named(name):
    """Stands for a numba dispatcher: what the notice reads of one is its ``py_func``."""

    def func():
        pass

    func.__qualname__ = name
    return types.SimpleNamespace(py_func=func)
