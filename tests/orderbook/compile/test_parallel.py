"""Parallel drivers over blocks of lanes give the serial result bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import orderbook as ob
from orderbook.compile.jit import PARALLEL_MIN_LANES, parallel_blocks
from orderbook.market.synthetic import synthetic_advance, synthetic_advance_parallel


@pytest.mark.parametrize("n_blocks", [1, 2, 3, 7])
def test_parallel_market_advance_equals_serial(n_blocks):
    """40 steps of 50 lanes, some sitting steps out, depegs and jumps on: bars, clocks and latent state equal."""
    market = ob.SyntheticMarket(jump_prob=0.2, depeg={"USDT": ob.DepegSpec(start_prob=0.2)})
    cfg = ob.default_config(slots=8, market=market)
    serial, parallel = ob.Exchange(cfg, 50), ob.Exchange(cfg, 50)
    serial.reset(seed=3)
    parallel.reset(seed=3)
    rng = np.random.default_rng(n_blocks)
    for _ in range(40):
        active = rng.random(50) < 0.8
        for ex in (serial, parallel):
            ex.lanes.active[:] = active
        s, p = serial.source, parallel.source
        synthetic_advance(serial.compiled, s.params, s.state, serial.lanes, serial.bars)
        synthetic_advance_parallel(parallel.compiled, p.params, p.state, parallel.lanes, parallel.bars, n_blocks)
    for group in ("bars", "lanes"):
        for name, a, b in zip(type(getattr(serial, group))._fields, getattr(serial, group), getattr(parallel, group)):
            np.testing.assert_array_equal(a, b, err_msg=f"{group}.{name}")
    for name, a, b in zip(s.state._fields, s.state, p.state):
        np.testing.assert_array_equal(a, b, err_msg=f"state.{name}")
    assert (serial.lanes.step > 20).all() and (serial.lanes.step < 40).any()  # lanes did sit steps out


def test_parallel_blocks_only_for_large_batches():
    assert parallel_blocks(PARALLEL_MIN_LANES - 1) == 0
    assert parallel_blocks(1) == 0
    assert parallel_blocks(PARALLEL_MIN_LANES) in (0, *range(2, 1025))  # 0 on a one-thread machine
