"""Determinism (seeds 0, 0, 1) and batch-size invariance, bit for bit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import orderbook as ob
from tests.orderbook.helpers import random_cancels, random_intents, small_config

CONFIG = small_config(faults=ob.FaultSpec.high())


def run(seeds, n_steps=60, actions_seed=7, n_lanes=None):
    ex = ob.Exchange(CONFIG, n_lanes=n_lanes or len(seeds))
    ex.reset(seed=np.asarray(seeds, dtype=np.int64))
    rng = np.random.default_rng(actions_seed)
    for t in range(n_steps):
        ex.step(random_intents(rng, ex), random_cancels(rng, ex))
        if t == n_steps // 2:
            ex.reset(mask=np.arange(ex.n_lanes) % 2 == 0)  # unseeded reset: next episode
    return ex


def frames(ex):
    f = ex.history.to_polars()
    return {k: v.drop("seq") if "seq" in v.columns else v for k, v in f.items()}


def test_same_seed_same_history_different_seed_different_history():
    a, b, c_ = (frames(run([s])) for s in (0, 0, 1))
    for name in ("events", "ledger", "market"):
        assert a[name].equals(b[name]), name
    assert not a["market"].equals(c_["market"])
    assert not a["events"].equals(c_["events"])


def test_lane_of_a_batch_equals_a_batch_of_one():
    """Lane b of 64 lanes equals one lane seeded with b's seed under b's actions, over two episodes (the market's
    per-episode draws, such as the volume level, keyed by seed and episode alike)."""
    batch_seeds = np.arange(100, 164)
    n_steps = 40
    big = ob.Exchange(CONFIG, n_lanes=64)
    big.reset(seed=batch_seeds)
    rng = np.random.default_rng(3)
    actions = []
    for t in range(n_steps):
        intents, cancels = random_intents(rng, big), random_cancels(rng, big)
        actions.append((intents, cancels))
        big.step(intents, cancels)
        if t == n_steps // 2:
            big.reset()  # unseeded: every lane's next episode
    big_frames = frames(big)
    for lane in (0, 17, 63):
        one = ob.Exchange(CONFIG, n_lanes=1)
        one.reset(seed=int(batch_seeds[lane]))
        for t, (intents, cancels) in enumerate(actions):
            one.step(ob.OrderIntents(*(x[lane : lane + 1] for x in intents)), cancels[lane : lane + 1])
            if t == n_steps // 2:
                one.reset()
        one_frames = frames(one)
        for name in ("events", "ledger", "market"):
            mine = big_frames[name].filter(pl.col("lane") == lane).drop("lane")
            assert mine.equals(one_frames[name].drop("lane")), (lane, name)
        np.testing.assert_array_equal(big.accounts.free_atoms[lane], one.accounts.free_atoms[0])
        np.testing.assert_array_equal(big.orders.status[lane], one.orders.status[0])
        assert big.accounts.value_numeraire[lane] == one.accounts.value_numeraire[0]


def test_fault_seed_apart_from_market_seed_keeps_the_market():
    """Common random numbers: same market seed, different fault seeds -> same market, other faults."""
    a = ob.Exchange(CONFIG)
    b = ob.Exchange(CONFIG)
    a.reset(seed=5, fault_seed=1)
    b.reset(seed=5, fault_seed=2)
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    for _ in range(40):
        a.step(random_intents(rng_a, a, 2))
        b.step(random_intents(rng_b, b, 2))
    ma = a.history.market_frame().select("step", "instrument", "open_ticks", "volume_lots")
    mb = b.history.market_frame().select("step", "instrument", "open_ticks", "volume_lots")
    # prices may differ only through the lanes' own impact (none by default)
    assert ma.equals(mb)
    assert not a.history.events_frame().select("event", "reason").equals(b.history.events_frame().select("event", "reason"))


@pytest.mark.parametrize("bad", [-1, [1, 2], "x"])
def test_bad_seeds_are_refused(bad):
    ex = ob.Exchange(CONFIG, n_lanes=3)
    with pytest.raises(ValueError, match="seed"):
        ex.reset(seed=bad)


def test_an_inactive_lane_sits_the_step_out_and_the_others_do_not_notice():
    a = ob.Exchange(CONFIG, n_lanes=2)
    b = ob.Exchange(CONFIG, n_lanes=2)
    a.reset(seed=9)
    b.reset(seed=9)
    rng = np.random.default_rng(1)
    for _ in range(5):
        intents, cancels = random_intents(rng, a, 2), random_cancels(rng, a)
        a.step(intents, cancels)
        b.step(intents, cancels)
    frozen = [np.array(x, copy=True) for x in (b.orders.status, b.accounts.free_atoms, b.lanes.step, b.lanes.time_ns, b.bars.close_ticks)]
    events_before = b.history.events_frame().filter(pl.col("lane") == 1).height
    intents, cancels = random_intents(rng, a, 2), random_cancels(rng, a)
    a.step(intents, cancels)
    b.step(intents, cancels, active=np.array([True, False]))
    for before, now in zip(frozen, (b.orders.status, b.accounts.free_atoms, b.lanes.step, b.lanes.time_ns, b.bars.close_ticks)):
        np.testing.assert_array_equal(before[1], now[1])
    assert b.history.events_frame().filter(pl.col("lane") == 1).height == events_before
    np.testing.assert_array_equal(a.accounts.free_atoms[0], b.accounts.free_atoms[0])
    np.testing.assert_array_equal(a.orders.status[0], b.orders.status[0])
    assert a.lanes.step[1] == b.lanes.step[1] + 1
