"""orderbook.compile.packed: one compiled call over packed tables gives what the direct kernel calls give."""

from __future__ import annotations

import numpy as np
import pytest

import orderbook as ob
from orderbook.compile.packed import Call, PackedCall
from orderbook.engine.step import step_orders
from tests.orderbook.helpers import random_cancels, random_intents, small_config


def _direct_step(ex: ob.Exchange, intents, cancels) -> None:
    """The step as two direct kernel calls (the path before packing), for comparison."""
    h, cfg = ex.history, ex.config
    ex.lanes.active[:] = True
    k, m = cfg.slots, cfg.max_new_orders
    h.events.reserve(ex.n_lanes * (6 * k + m))
    h.ledger.reserve(ex.n_lanes * (12 * k + 2 * m))
    h.market.reserve(ex.n_lanes * len(cfg.instruments))
    ex.source.advance(ex.lanes, ex.bars)
    step_orders(ex.compiled, ex.orders, ex.lanes, ex.bars, ex.accounts, ex.stats, h.events.arrays, h.ledger.arrays,
                h.market.arrays, intents, cancels, cfg.record_market, ex._error)
    assert ex._error[0] == 0


def _state(ex: ob.Exchange) -> dict[str, np.ndarray]:
    out = {}
    for group in ("orders", "lanes", "bars", "accounts", "stats"):
        for name, arr in zip(type(getattr(ex, group))._fields, getattr(ex, group)):
            out[f"{group}.{name}"] = arr
    for log in ("events", "ledger", "market"):
        for name, col in getattr(ex.history, log).columns().items():
            out[f"{log}.{name}"] = col
    return out


@pytest.mark.parametrize("config", [small_config(faults=ob.FaultSpec.high()), ob.default_config(slots=16)], ids=["small-high-faults", "default"])
def test_packed_step_equals_direct_kernel_calls_bit_for_bit(config):
    """Many steps of random orders and cancels, faults high, history growing from a tiny capacity
    (so the logs are reallocated and repacked mid-run): every state array and history column equal."""
    packed, direct = ob.Exchange(config, 5, history_capacity=16), ob.Exchange(config, 5, history_capacity=16)
    packed.reset(seed=11)
    direct.reset(seed=11)
    rng = np.random.default_rng(4)
    reallocations = 0
    for _ in range(120):
        intents, cancels = random_intents(rng, packed), random_cancels(rng, packed)
        before = packed.history.events.arrays
        packed.step(intents, cancels)
        reallocations += packed.history.events.arrays is not before
        _direct_step(direct, intents, cancels)
    assert reallocations >= 3  # the repacking path ran
    assert len(packed.history.events) > 500
    a, b = _state(packed), _state(direct)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_packed_call_sees_in_place_writes_and_returns_results():
    x = np.arange(6, dtype=np.int64).reshape(2, 3)
    call = PackedCall([Call(_add_into, (x, 5)), Call(_total, (x,), result=0)], n_results=1)
    assert call()[0] == 15 + 6 * 5
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3) + 5)  # written in place
    x[0, 0] = 100  # the table points at x itself
    assert call()[0] == (100 + 5) + (15 - 0 + 5 * 5 + 5 * 5)
    y = np.zeros((2, 3), dtype=np.int64)
    assert call([Call(_add_into, (y, 1)), Call(_total, (y,), result=0)])[0] == 6  # a new object: repacked
    assert x.sum() == 105 + 15 + 50  # and x was left alone


def test_packed_call_refuses_what_it_cannot_pack():
    x = np.zeros((4, 4), dtype=np.int64)
    with pytest.raises(TypeError, match="C-contiguous"):
        PackedCall([Call(_total, (x[:, ::2],))])
    with pytest.raises(TypeError, match="got str"):
        PackedCall([Call(_total, ("x",))])
    with pytest.raises(ValueError, match="Call.result"):
        PackedCall([Call(_total, (x,), result=2)], n_results=1)
    call = PackedCall([Call(_total, (x,))])
    with pytest.raises(TypeError, match="slots"):
        call([Call(_total, (np.zeros((4, 4, 4), dtype=np.int64),))])


def test_same_structure_shares_one_generated_kernel():
    a = PackedCall([Call(_total, (np.zeros(3, dtype=np.int64),))])
    b = PackedCall([Call(_total, (np.ones(7, dtype=np.int64),), result=-1)])
    assert a._kernel is b._kernel
    assert a.source == b.source


from orderbook.compile.jit import kernel  # noqa: E402


@kernel
def _add_into(x, k):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] += k


@kernel
def _total(x):
    return x.sum()


def test_generated_modules_of_other_code_versions_are_forgotten(tmp_path, monkeypatch):
    """The cache folder keeps only the current code version's modules (it would grow with every edit)."""
    from orderbook.compile import packed
    monkeypatch.setattr(packed, "_CODE_VERSION", "current")
    (tmp_path / "__pycache__").mkdir()
    keep = [tmp_path / "orderbook_packed_current_abc.py", tmp_path / "__pycache__" / "orderbook_packed_current_abc.packed-3.py311.nbi"]
    drop = [tmp_path / "orderbook_packed_older_abc.py", tmp_path / "__pycache__" / "orderbook_packed_older_abc.packed-3.py311.nbc"]
    other = tmp_path / "notes.txt"
    for path in keep + drop + [other]:
        path.write_text("x")
    packed._forget_other_versions(tmp_path)
    assert all(p.exists() for p in keep + [other])
    assert not any(p.exists() for p in drop)


def test_repacking_calls_of_another_kernel_generates_and_runs_that_kernel():
    """A driver may pick its parallel or serial kernel when its calls are rebuilt (the thread count changed):
    the packed call then generates the new sequence instead of packing it for the old kernels."""
    from orderbook.market.synthetic import synthetic_advance, synthetic_advance_parallel

    packed_ex, direct_ex = ob.Exchange(small_config(), 3), ob.Exchange(small_config(), 3)
    for ex in (packed_ex, direct_ex):
        ex.reset(seed=2)
        ex.lanes.active[:] = True
    s = packed_ex.source
    serial = (Call(synthetic_advance, (packed_ex.compiled, s.params, s.state, packed_ex.lanes, packed_ex.bars)),)
    packed = PackedCall(serial)
    packed(serial)
    packed((Call(synthetic_advance_parallel, serial[0].args + (2,)),))
    assert packed.calls[0].func is synthetic_advance_parallel and "synthetic_advance_parallel" in packed.source
    packed(serial)
    assert packed.calls[0].func is synthetic_advance
    for _ in range(3):
        direct_ex.source.advance(direct_ex.lanes, direct_ex.bars)
    for group in ("bars", "lanes"):
        for name, a, b in zip(type(getattr(packed_ex, group))._fields, getattr(packed_ex, group), getattr(direct_ex, group)):
            np.testing.assert_array_equal(a, b, err_msg=f"{group}.{name}")
    assert (packed_ex.lanes.step == 3).all()
