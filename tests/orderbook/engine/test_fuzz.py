"""Seeded fuzz with every fault turned up high: the audit holds throughout."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import orderbook as ob
from orderbook.analytics.audit import audit
from tests.orderbook.helpers import random_cancels, random_intents, small_config

HIGH = ob.FaultSpec.high()
CONFIG = small_config(faults=HIGH, latency=ob.LatencySpec(median_ms=2_000.0, sigma=1.5, tail_prob=0.1, tail_multiplier=50.0))


def fuzz(seed: int, n_steps: int = 150, n_lanes: int = 4) -> ob.Exchange:
    ex = ob.Exchange(CONFIG, n_lanes=n_lanes)
    ex.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for t in range(n_steps):
        ex.step(random_intents(rng, ex, tifs=True), random_cancels(rng, ex, 0.3))
        if t % 50 == 49:
            assert audit(ex) == [], (seed, t)
            ex.reset(mask=rng.random(n_lanes) < 0.5)
    assert audit(ex) == [], seed
    return ex


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_high_faults(seed):
    ex = fuzz(seed)
    events = ex.history.events_frame()
    seen = set(events["reason"].cast(pl.String).unique())
    # the fuzz reaches the faults it is meant to exercise
    assert {"BROKER_ERROR", "ACK_TIMEOUT", "VENUE_DOWN", "RATE_LIMITED", "UNSOLICITED"} <= seen
    assert {"IOC_REMAINDER", "FOK_NOT_FILLABLE", "POST_ONLY_WOULD_TAKE"} <= seen  # and the times in force


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4, 64))
def test_fuzz_high_faults_many_seeds(seed):
    fuzz(seed, n_steps=300)
