"""Fact 3 of ``benchmarks/fidelity.py`` (``fidelity_fills.fill_probability``): a resting buy's fill probability is
compared with the crossings of the same lanes' own bars (paired), not with every bar of every lane.

Unpaired, a 512-lane group's fill share could fall outside an all-bars frequency by sampling alone (``--quick
--seed 1`` missed one row that way); paired, a row misses only if some lane fills on bars that never reached its
price, or fails to fill on too many bars that traded through it.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.fidelity_fills import fill_probability, own_bars_cross, resting_buys
from benchmarks.fidelity_setup import synthetic_market
from benchmarks.fidelity_targets import cross_frequency

INF = np.inf
LANES, SIZES, HORIZONS, BEHIND, SEED = 48, (500, 50_000), (1, 5), (0, 1), 1


def test_own_bars_cross_reads_the_bars_after_the_decision_bar_only():
    """Buys at 10, 10, 10; the decision bar's own low (0) never counts; a bar with no trade crosses nothing."""
    price = np.array([10.0, 10.0, 10.0])
    low = np.array([[0.0, 10.0, 9.0], [0.0, 11.0, INF], [0.0, INF, 9.5]])
    through, touch = own_bars_cross(price, low, 1)
    assert through.tolist() == [False, False, False] and touch.tolist() == [True, False, False]
    through, touch = own_bars_cross(price, low, 2)
    assert through.tolist() == [True, False, True] and touch.tolist() == [True, False, True]


@given(st.lists(st.lists(st.sampled_from([8.0, 9.0, 10.0, 11.0, INF]), min_size=6, max_size=6), min_size=1, max_size=8),
       st.integers(1, 5))
def test_own_bars_cross_is_the_pooled_frequency_at_the_decision_bar_alone(lows, horizon):
    low = np.array(lows)
    price = np.full(low.shape[0], 10.0)
    through, touch = own_bars_cross(price, low, horizon)
    window = np.repeat(price[:, None], horizon + 1, axis=1), low[:, :horizon + 1]  # one decision bar per lane: t = 0
    assert (through.mean(), low.shape[0]) == cross_frequency(*window, horizon, strict=True)
    assert (touch.mean(), low.shape[0]) == cross_frequency(*window, horizon, strict=False)
    assert not (through & ~touch).any()  # a trade through is a touch


@pytest.mark.parametrize(("price", "low", "horizon", "match"), [
    (np.ones(2), np.ones((2, 4)), 4, r"horizon must be in \[1, 3\] for 4 bars, got 4"),
    (np.ones(2), np.ones((2, 4)), 0, r"horizon must be in \[1, 3\] for 4 bars, got 0"),
    (np.ones(3), np.ones((2, 4)), 1, r"price_ticks must be \(N,\) and low_ticks \(N, T\), got \(3,\) and \(2, 4\)"),
    (np.ones((2, 4)), np.ones((2, 4)), 1, r"price_ticks must be \(N,\) .* got \(2, 4\) and \(2, 4\)"),
])
def test_own_bars_cross_refuses_shapes_and_horizons_it_cannot_read(price, low, horizon, match):
    with pytest.raises(ValueError, match=match):
        own_bars_cross(price, low, horizon)


def test_fact_3_compares_each_group_with_its_own_lanes_bars():
    m = synthetic_market()
    lanes = resting_buys(m, LANES, SEED, SIZES, HORIZONS, BEHIND)
    assert lanes.height == LANES * len(SIZES) * len(BEHIND) * len(HORIZONS)
    filled = pl.col("filled_lots") > 0
    # the pairing the row relies on: no lane fills on bars that never reached its price
    assert lanes.filter(filled & ~pl.col("touch")).height == 0
    assert lanes.filter(filled).height > 0 and lanes.filter(~pl.col("touch")).height > 0  # both kinds of lane occur
    rows = fill_probability(m, LANES, SEED, SIZES, HORIZONS, BEHIND)
    assert len(rows) == len(HORIZONS) * len(BEHIND) * len(SIZES)
    for r, (h, k, q) in zip(rows, [(h, k, q) for h in HORIZONS for k in BEHIND for q in SIZES]):
        assert r["setting"].startswith(f"bid-{k} ticks, {q * 1e-4:g} BTC, {h} bars")
        g = lanes.filter((pl.col("horizon") == h) & (pl.col("ticks_behind") == k) & (pl.col("lots") == q))
        target = f"through {g['through'].mean():.3f}, touch {g['touch'].mean():.3f} ({LANES} bars)"
        assert r["target"] == target, (r["setting"], r["target"], target)
        share = float(re.match(r"([0-9.]+) ", r["measured"]).group(1))
        assert share == pytest.approx(g.filter(filled).height / LANES, abs=5e-4)
        assert share <= g["touch"].mean() + 5e-4 and r["holds"] == "yes"
