"""A process that stepped a parallel batch can fork, and the child keeps stepping (issue 11).

From :data:`~orderbook.compile.jit.PARALLEL_MIN_LANES` lanes the synthetic market advance
runs in numba's threads. GNU OpenMP (numba's default layer on Linux) kills a child
forked after a parallel region at the child's first parallel region; importing
``orderbook`` selects numba's ``forksafe`` layer instead. Each scenario runs in a
fresh interpreter with two numba threads (so the parallel path runs on any
machine) and no ``NUMBA_THREADING_LAYER`` unless the test sets one.
"""

from __future__ import annotations

import multiprocessing
import os
from queue import Empty

import numpy as np
import pytest

import orderbook as ob
from orderbook.market import sources
from tests.orderbook.copies import run_in_subprocess
from tests.orderbook.helpers import random_cancels, random_intents

N_LANES = 1024


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "NUMBA_NUM_THREADS")}
    env["NUMBA_NUM_THREADS"] = "2"
    env.update(extra)
    return env


def _config() -> ob.ExchangeConfig:
    market = ob.SyntheticMarket(jump_prob=0.2, depeg={"USDT": ob.DepegSpec(start_prob=0.2)})
    return ob.default_config(slots=8, market=market)


def _steps(ex: ob.Exchange, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [(random_intents(rng, ex), random_cancels(rng, ex)) for _ in range(n)]


def _run(ex: ob.Exchange, steps: list) -> None:
    for intents, cancels in steps:
        ex.step(intents, cancels)


def _digest(ex: ob.Exchange) -> dict[str, np.ndarray]:
    out = {}
    for group in ("orders", "lanes", "bars", "accounts", "stats"):
        for name, arr in zip(type(getattr(ex, group))._fields, getattr(ex, group)):
            out[f"{group}.{name}"] = arr.copy()
    for log in ("events", "ledger", "market"):
        for name, col in getattr(ex.history, log).columns().items():
            out[f"{log}.{name}"] = col
    return out


def _child(ex: ob.Exchange, steps: list, queue) -> None:
    """In the forked child: step the inherited exchange on, and a new one of as many lanes (both parallel)."""
    _run(ex, steps)
    fresh = ob.Exchange(_config(), N_LANES)
    fresh.reset(seed=9)
    _run(fresh, _steps(fresh, 3, seed=2))
    parallel = [e._calls[0].func.__name__ for e in (ex, fresh)]
    queue.put((_digest(ex), _digest(fresh), parallel))


def _receive(queue, child):
    """What the child put on ``queue``; fails as soon as the child is gone without sending it."""
    while True:
        try:
            return queue.get(timeout=1)
        except Empty:
            assert child.is_alive(), f"the forked child died (exit code {child.exitcode}) before sending its results"


def fork_after_parallel_step() -> None:
    """(Run in a subprocess.) Step 1,024 lanes (parallel), fork, step in the child; compare with serial runs."""
    import numba

    ex = ob.Exchange(_config(), N_LANES)
    ex.reset(seed=5)
    first, then = _steps(ex, 3, seed=1), _steps(ex, 4, seed=3)
    _run(ex, first)
    assert ex._calls[0].func.__name__ == "synthetic_advance_parallel", "the parent's advance did not run in threads"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(ex, then, queue))
    child.start()
    got = _receive(queue, child)
    child.join(60)
    assert child.exitcode == 0, f"the forked child exited with {child.exitcode}"
    inherited, fresh, parallel = got
    assert parallel == ["synthetic_advance_parallel"] * 2, parallel
    _run(ex, then)  # the parent steps on too
    np.testing.assert_array_equal(_digest(ex)["bars.close_ticks"], inherited["bars.close_ticks"])
    sources.parallel_blocks = lambda n_lanes: 0  # the serial path from here on, for the references
    serial = ob.Exchange(_config(), N_LANES)
    serial.reset(seed=5)
    _run(serial, first + then)
    assert serial._calls[0].func.__name__ == "synthetic_advance"
    serial_fresh = ob.Exchange(_config(), N_LANES)
    serial_fresh.reset(seed=9)
    _run(serial_fresh, _steps(serial_fresh, 3, seed=2))
    for got_state, want in ((inherited, _digest(serial)), (fresh, _digest(serial_fresh))):
        assert got_state.keys() == want.keys()
        for name in want:
            np.testing.assert_array_equal(got_state[name], want[name], err_msg=name)
    print("layer", numba.threading_layer(), "ok", flush=True)


def test_a_child_forked_after_a_parallel_step_steps_like_the_serial_path():
    out = run_in_subprocess("tests.orderbook.compile.test_fork:fork_after_parallel_step", env=_env())
    assert "ok" in out and "layer omp" not in out, out


def threading_layer() -> None:
    """(Run in a subprocess.) Print the layer numba's threads run in after a parallel step."""
    import numba

    ex = ob.Exchange(_config(), N_LANES)
    ex.reset(seed=5)
    ex.step()
    print("layer", numba.threading_layer(), flush=True)


@pytest.mark.parametrize("chosen, expected", [(None, ("workqueue", "tbb")), ("omp", ("omp",)), ("workqueue", ("workqueue",))])
def test_orderbook_picks_a_fork_safe_layer_unless_the_user_chose_one(chosen, expected):
    env = _env() if chosen is None else _env(NUMBA_THREADING_LAYER=chosen)
    out = run_in_subprocess("tests.orderbook.compile.test_fork:threading_layer", env=env)
    assert out.split()[-1] in expected, out
