"""An Exchange copies and pickles into an independent clone (issue 11), its packed calls repacked.

The logs start tiny so they grow (new arrays, repacked calls) both before and after the copy.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import orderbook as ob
from orderbook.compile.packed import Call, PackedCall
from orderbook.engine.step import step_orders
from tests.orderbook.copies import COPIES, assert_packs_only_its_own_arrays, clobber_freed_memory, run_in_subprocess
from tests.orderbook.helpers import random_cancels, random_intents, small_config

N_STEPS, WARMUP = 100, 20


def state(ex: ob.Exchange) -> dict[str, np.ndarray]:
    """Copies of every state array, the market source's state and every history column."""
    out = {}
    for group in ("orders", "lanes", "bars", "accounts", "stats"):
        for name, arr in zip(type(getattr(ex, group))._fields, getattr(ex, group)):
            out[f"{group}.{name}"] = arr.copy()
    for name, arr in zip(ex.source.state._fields, ex.source.state):
        out[f"source.{name}"] = arr.copy()
    for log in ("events", "ledger", "market"):
        for name, col in getattr(ex.history, log).columns().items():
            out[f"{log}.{name}"] = col
    return out


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def inputs(ex: ob.Exchange, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [(random_intents(rng, ex), random_cancels(rng, ex)) for _ in range(n)]


def run(ex: ob.Exchange, steps: list) -> None:
    for intents, cancels in steps:
        ex.step(intents, cancels)


def started(seed: int = 11) -> ob.Exchange:
    ex = ob.Exchange(small_config(faults=ob.FaultSpec.high()), 5, history_capacity=16)
    ex.reset(seed=seed)
    run(ex, inputs(ex, WARMUP, seed=seed))
    return ex


@pytest.mark.parametrize("how", COPIES)
def test_exchange_clone_steps_like_the_original_and_apart_from_it(how):
    ex = started()
    clone = COPIES[how](ex)
    assert_same_state(state(ex), state(clone))
    assert_packs_only_its_own_arrays(clone, ex)
    before = state(ex)
    steps = inputs(ex, N_STEPS, seed=5)
    run(clone, steps)  # only the clone: the original does not move
    assert_same_state(before, state(ex))
    assert len(clone.history.events) > len(ex.history.events) + 100
    assert clone.history.events.capacity > ex.history.events.capacity  # its logs grew: it repacked its own arrays
    assert_packs_only_its_own_arrays(clone, ex)
    run(ex, steps)  # now the original takes the same steps: the same state and history, bit for bit
    assert_same_state(state(ex), state(clone))
    ex.reset(mask=np.array([True, False, True, False, False]))
    clone.reset(mask=np.array([True, False, True, False, False]))
    assert_same_state(state(ex), state(clone))


def test_packed_call_copy_repacks_its_copied_arrays_and_names_its_kernels():
    """A PackedCall alone: the copy holds copies of the arguments, its table their addresses, and the
    same kernel functions (imported by name), so calling it writes the copies only."""
    ex = ob.Exchange(small_config(), 2)
    ex.reset(seed=1)
    h = ex.history
    h.events.reserve(100)
    h.ledger.reserve(100)
    h.market.reserve(100)
    call = Call(step_orders, (ex.compiled, ex.orders, ex.lanes, ex.bars, ex.accounts, ex.stats, h.events.arrays, h.ledger.arrays,
                              h.market.arrays, ex.intent_buffer, ex.cancel_buffer, True, ex._error))
    packed = PackedCall([call])
    for how, copy_fn in COPIES.items():
        clone = copy_fn(packed)
        assert clone.calls[0].func is step_orders, how
        assert clone.source == packed.source and clone._kernel is packed._kernel, how
        assert_packs_only_its_own_arrays(clone, packed)
        before = state(ex)
        clone()  # an order step of no orders: moves the clone's clock and writes its market log only
        assert_same_state(before, state(ex))
        assert clone.calls[0].args[8].size[0] == 2 * len(ex.history.market), how  # a row per lane and instrument, as at reset
        assert (clone.calls[0].args[2].time_ns > ex.lanes.time_ns).all(), how
    assert set(packed.__getstate__()) == {"calls", "n_results", "source", "n_int", "n_float"}  # no table, no cache
    with pytest.raises(ValueError, match="PackedCall's state has the keys"):
        PackedCall.__new__(PackedCall).__setstate__({"calls": ()})


def test_call_pickles_its_kernel_by_name():
    data = pickle.dumps(Call(step_orders, (1, 2.0)), protocol=5)
    assert b"step_orders" in data and b"orderbook.engine.step" in data
    assert pickle.loads(data) == Call(step_orders, (1, 2.0), -1)
    assert copy.deepcopy(Call(step_orders, ())).func is step_orders


def exchange_clone_outlives_original() -> None:
    """(Run in a subprocess.) Free the original and overwrite freed memory: the clone steps on and equals
    a fresh exchange replaying the same seed and inputs."""
    for how, copy_fn in COPIES.items():
        ex = started()
        steps = inputs(ex, N_STEPS, seed=5)
        clone = copy_fn(ex)
        del ex
        junk = clobber_freed_memory()
        run(clone, steps)
        reference = started()
        run(reference, steps)
        assert_same_state(state(clone), state(reference))
        del junk
        print(how, "ok", flush=True)


def test_an_exchange_clone_outlives_its_original():
    out = run_in_subprocess("tests.orderbook.compile.test_copy:exchange_clone_outlives_original")
    assert out.count(" ok") == len(COPIES), out
