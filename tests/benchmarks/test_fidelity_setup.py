"""The lane seeds of ``benchmarks/fidelity.py`` (``fidelity_setup.lane_seeds``): runs of different ``--seed`` are
independent replications, sharing no lane (the core's ``seed + b`` made seeds 0 and 1 share 1,023 of 1,024 lanes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import orderbook as ob
from benchmarks.fidelity_setup import LANES_PER_SEED, SEED_MAX, lane_seeds, start

seeds = st.integers(0, SEED_MAX)


@given(seeds, seeds, st.integers(1, 4096), st.integers(1, 4096))
def test_two_different_seeds_give_disjoint_lane_seeds(s1, s2, n1, n2):
    a, b = lane_seeds(s1, n1), lane_seeds(s2, n2)
    assert len(np.unique(a)) == n1 and a.dtype == np.int64  # one run's lanes are distinct
    assert (s1 == s2) or np.intersect1d(a, b).size == 0


def test_consecutive_seeds_share_no_lane_where_the_cores_seed_plus_b_shared_all_but_one():
    old = np.intersect1d(0 + np.arange(1024), 1 + np.arange(1024)).size
    assert old == 1023
    assert np.intersect1d(lane_seeds(0, 1024), lane_seeds(1, 1024)).size == 0


def test_seed_0_keeps_its_lanes_and_the_extremes_fit_the_cores_int64_seeds():
    assert lane_seeds(0, 5).tolist() == [0, 1, 2, 3, 4]  # tables measured before keep their numbers
    assert lane_seeds(1, 2).tolist() == [LANES_PER_SEED, LANES_PER_SEED + 1]
    top = lane_seeds(SEED_MAX, 1)[0]
    assert top + (LANES_PER_SEED - 1) == 2**63 - 1  # a full run of the largest seed ends at the largest int64


@pytest.mark.parametrize(("seed", "n_lanes", "match"), [
    (-1, 4, r"seed must be an int in \[0, 2147483647\] .* got -1"),
    (SEED_MAX + 1, 4, r"seed must be an int in \[0, 2147483647\] .* got 2147483648"),
    (1.0, 4, r"seed must be an int .* got 1.0"),
    (True, 4, r"seed must be an int .* got True"),
    (0, 0, r"n_lanes must be an int in \[1, 4294967296\] .* got 0"),
    (0, LANES_PER_SEED + 1, r"n_lanes must be an int in \[1, 4294967296\] .* got 4294967297"),
])
def test_bad_seeds_and_lane_counts_say_what_was_expected(seed, n_lanes, match):
    with pytest.raises(ValueError, match=match):
        lane_seeds(seed, n_lanes)


def test_start_resets_every_lane_with_the_runs_lane_seeds():
    cfg = ob.default_config(faults=ob.FaultSpec.none())
    ex = start(cfg, 3, 2)
    assert ex.lane_seed.tolist() == lane_seeds(2, 3).tolist()
