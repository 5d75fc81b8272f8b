"""Bad input gives a clear error and leaves state and history as they were."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orderbook as ob
from orderbook.engine.intents import empty_intents, validate_intents
from orderbook.engine.state import copy_state
from tests.orderbook.helpers import random_intents, small_config

CONFIG = small_config()


def fresh():
    ex = ob.Exchange(CONFIG, n_lanes=2)
    ex.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        ex.step(random_intents(rng, ex, 2))
    return ex


def good():
    it = empty_intents(2, CONFIG.max_new_orders)
    it.instrument[0, 0], it.side[0, 0], it.kind[0, 0], it.qty_lots[0, 0] = 0, 1, 0, 10
    return it


def with_field(name, value, where=(0, 0), dtype=None):
    it = good()
    arr = getattr(it, name).astype(dtype or getattr(it, name).dtype)
    arr[where] = value
    return it._replace(**{name: arr})


BAD_INTENTS = [
    ("wrong shape", lambda: good()._replace(qty_lots=np.zeros((2, 9), dtype=np.int64)), r"qty_lots must have shape \(2, 3\).*got \(2, 9\)"),
    ("NaN price", lambda: with_field("price_ticks", np.nan, dtype=np.float64), r"price_ticks must be finite integers, got nan"),
    ("fractional lots", lambda: with_field("qty_lots", 1.5, dtype=np.float64), r"qty_lots must be whole numbers, got 1.5"),
    ("string dtype", lambda: good()._replace(side=np.full((2, 3), "b")), r"side must be an integer array, got dtype <U1"),
    ("unknown instrument", lambda: with_field("instrument", 99), r"instrument\[0, 0\] must be an index in \[0, 4\).*got 99"),
    ("zero quantity", lambda: with_field("qty_lots", 0), r"qty_lots\[0, 0\] must be a quantity > 0 lots, got 0"),
    ("negative ttl", lambda: with_field("ttl_ns", -5), r"ttl_ns\[0, 0\] must be a time to live >= 0 ns.*got -5"),
    ("bad side", lambda: with_field("side", 0), r"side\[0, 0\] must be \+1 \(buy\) or -1 \(sell\), got 0"),
    ("bad kind", lambda: with_field("kind", 7), r"kind\[0, 0\] must be 0 \(market\) or 1 \(limit\), got 7"),
    ("limit without price", lambda: with_field("kind", 1), r"price_ticks\[0, 0\] must be a limit price > 0 ticks, got 0"),
    ("not intents", lambda: (1, 2, 3), r"intents must be an OrderIntents, got tuple"),
    ("huge ttl", lambda: with_field("ttl_ns", 2**63 - 1), r"ttl_ns\[0, 0\] must be a time to live <= 2\*\*60 ns .*GTC for no expiry.*got 9223372036854775807"),
    ("ttl just past the bound", lambda: with_field("ttl_ns", 2**60 + 1), r"ttl_ns\[0, 0\] must be a time to live <= 2\*\*60 ns"),
    ("unknown time in force", lambda: with_field("tif", 5), r"tif\[0, 0\] must be a TimeInForce: 0 \(GTD\), 1 \(GTC\), 2 \(IOC\), 3 \(FOK\) or 4 \(POST_ONLY\), got 5"),
    ("negative time in force", lambda: with_field("tif", -1), r"tif\[0, 0\] must be a TimeInForce: .*got -1"),
    ("GTC with a ttl", lambda: with_field("ttl_ns", 5)._replace(tif=np.array([[1, 0, 0], [0, 0, 0]])), r"ttl_ns\[0, 0\] must be 0 for a GTC, IOC or FOK order.*got 5"),
    ("IOC with a ttl", lambda: with_field("ttl_ns", 5)._replace(tif=np.array([[2, 0, 0], [0, 0, 0]])), r"ttl_ns\[0, 0\] must be 0 for a GTC, IOC or FOK order \(.*IOC and FOK never rest\), got 5"),
    ("FOK with a ttl", lambda: with_field("ttl_ns", 5)._replace(tif=np.array([[3, 0, 0], [0, 0, 0]])), r"ttl_ns\[0, 0\] must be 0 for a GTC, IOC or FOK order.*got 5"),
    ("post-only market order", lambda: with_field("tif", 4), r"tif\[0, 0\] must be a time in force other than 4 \(POST_ONLY\) for a market order.*got 4"),
    ("infinite ttl", lambda: with_field("ttl_ns", np.inf, dtype=np.float64), r"ttl_ns must be finite integers, got inf"),
]


def snapshot(ex):
    return [copy_state(x) for x in (ex.orders, ex.lanes, ex.bars, ex.accounts, ex.stats)], ex.history.sizes()


def assert_unchanged(ex, before):
    states, sizes = before
    now, now_sizes = snapshot(ex)
    assert now_sizes == sizes
    for a, b in zip(states, now):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("name,make,message", BAD_INTENTS, ids=[b[0] for b in BAD_INTENTS])
def test_bad_intents_raise_and_change_nothing(name, make, message):
    ex = fresh()
    before = snapshot(ex)
    with pytest.raises(ValueError, match=message):
        ex.step(make())
    assert_unchanged(ex, before)


BAD_ORDERS = [
    (ob.Order("alpha", "BTC/USD", "buy", "0.00015"), r"quantity must be a positive multiple of lot_size 0.0001, got 0.00015"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", price="30000.005"), r"price must be a positive multiple of tick_size 0.01, got 30000.005"),
    (ob.Order("alpha", "ETH/USD", "buy", "0.001"), r"unknown instrument alpha:ETH/USD; known: \['alpha:BTC/USD'"),
    (ob.Order("alpha", "BTC/USD", "hold", "0.001"), r"side must be 'buy' or 'sell', got 'hold'"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", ttl_ms=-1), r"ttl_ms \(0 = venue default\) must be a finite duration >= 0 and <= 1152921504607 ms.*got -1"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", ttl_ms=float("inf")), r"ttl_ms \(0 = venue default\) must be a finite duration >= 0.*got inf"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", ttl_ms=(2**63 - 1) / 1e6), r"ttl_ms \(0 = venue default\) must be a finite duration .*36.5 years\), got 9223372036854.775"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", ttl_ms=1000.0, tif="GTC"), r"GTC orders take no time to live .*, so ttl_ms must be 0, got 1000.0"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", ttl_ms=1000.0, tif="IOC"), r"IOC orders take no time to live .*, so ttl_ms must be 0, got 1000.0"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", price="30000", ttl_ms=5.0, tif="fok"), r"FOK orders take no time to live .*, so ttl_ms must be 0, got 5.0"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", tif="post-only"), r"a post-only order is a limit that only rests, so it needs a price, got a market order"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", tif="DAY"), r"tif must be one of \['GTD', 'GTC', 'IOC', 'FOK', 'POST_ONLY'\], got 'DAY'"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", tif=7), r"tif must be a TimeInForce \(0 = GTD, 1 = GTC, 2 = IOC, 3 = FOK, 4 = POST_ONLY\), got 7"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", tif=True), r"tif must be a TimeInForce \(.*\), got True"),
    (ob.Order("alpha", "BTC/USD", "buy", "nan"), r"quantity must be finite, got 'nan'"),
    (ob.Order("alpha", "BTC/USD", "buy", "1e30"), r"quantity must be at most 2\*\*40 lots of 0.0001 \(max_qty_lots is 1000000\), got 1E\+30"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", price="1e30"), r"price must be at most 2\*\*40 ticks of 0.01 \(max_price is 1000000\), got 1E\+30"),
    (ob.Order("alpha", "BTC/USD", "buy", "0.001", lane=5), r"lane must be in \[0, 2\), got 5"),
]


@pytest.mark.parametrize("order,message", BAD_ORDERS, ids=[m[:30] for _, m in BAD_ORDERS])
def test_bad_human_orders_raise_and_change_nothing(order, message):
    ex = fresh()
    before = snapshot(ex)
    with pytest.raises((ValueError, KeyError), match=message):
        ex.step([order])
    assert_unchanged(ex, before)


def test_bad_cancel_mask_raises_and_changes_nothing():
    ex = fresh()
    before = snapshot(ex)
    with pytest.raises(ValueError, match=r"cancels must have shape \(2, 8\).*got \(2, 3\)"):
        ex.step(None, np.zeros((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="cancels must be a boolean mask"):
        ex.step(None, np.full((2, 8), 0.5))
    assert_unchanged(ex, before)


def test_step_before_reset_raises():
    ex = ob.Exchange(CONFIG, n_lanes=2)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\): lanes \[0, 1\]"):
        ex.step()


def _reference_first_bad(it, n_instruments):
    """The documented order of the checks: check by check, rows in row-major order within one."""
    used = it.instrument >= 0
    fails = [
        it.instrument >= n_instruments,
        used & (it.side != 1) & (it.side != -1),
        used & (it.kind != 0) & (it.kind != 1),
        used & (it.qty_lots <= 0),
        used & (it.kind == 1) & (it.price_ticks <= 0),
        used & (it.ttl_ns < 0),
        used & (it.qty_lots > 2**40),
        used & (it.price_ticks > 2**40),
        used & ((it.tif < 0) | (it.tif > 4)),
        used & (it.ttl_ns > 2**60),
        used & np.isin(it.tif, (1, 2, 3)) & (it.ttl_ns != 0),
        used & (it.kind == 0) & (it.tif == 4),
    ]
    for check, bad in enumerate(fails):
        if bad.any():
            b, m = np.argwhere(bad)[0]
            return check, int(b), int(m)
    return None


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_first_bad_intent_is_reported_in_the_documented_order(seed):
    from orderbook.engine.intents import _CHECKS

    rng = np.random.default_rng(seed)
    it = empty_intents(3, 3)
    pick = lambda good, bad: np.where(rng.random((3, 3)) < 0.93, good, rng.choice(bad, (3, 3)))  # noqa: E731
    it = it._replace(
        instrument=pick(rng.integers(-1, 4, (3, 3)), [4, 9]), side=pick(1, [0, 2]), kind=pick(rng.integers(0, 2, (3, 3)), [5]),
        qty_lots=pick(10, [0, -1, 2**41]), price_ticks=pick(100, [0, 2**41]), ttl_ns=pick(0, [-1, 2**60 + 1, 7]), tif=pick(rng.integers(0, 5, (3, 3)), [5, -1, 99]),
    )
    expect = _reference_first_bad(it, 4)
    if expect is None:
        validate_intents(it, 3, 3, 4)
        return
    name = _CHECKS[expect[0]][0]
    with pytest.raises(ValueError, match=rf"intents\.{name}\[{expect[1]}, {expect[2]}\] must be"):
        validate_intents(it, 3, 3, 4)
