"""A replay window keeps every episode inside a period of the data: the Binance.US time split.

``ReplayMarket(window=(start, end))`` draws (or checks) each episode's first bar so
that all its ``episode_steps + 1`` bars lie in ``[start, end)``;
``binance_us_config(split="train" | "test")`` names the two periods of the sample.
"""

from __future__ import annotations

from datetime import UTC, datetime

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envs
import orderbook as ob
from orderbook.market.bars import load_bars
from orderbook.market.replay import ReplayMarket
from orderbook.presets import BINANCE_US_SPLITS, binance_us_sources, replay_config

STEP_NS = 60 * 10**9


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


SPLIT_NS = {name: (ns(a), ns(b)) for name, (a, b) in BINANCE_US_SPLITS.items()}


@pytest.fixture(scope="module")
def aligned():
    return load_bars(binance_us_sources())


def episode_bars_ns(ex: ob.Exchange) -> tuple[np.ndarray, np.ndarray]:
    """Open time of the first and of the last bar of each lane's episode window."""
    src, steps = ex.source, ex.config.market.episode_steps
    return src.data.time_ns[src.start_row], src.data.time_ns[src.start_row + steps]


def test_the_two_splits_are_adjacent_whole_days_and_never_overlap(aligned):
    (train_lo, train_hi), (test_lo, test_hi) = SPLIT_NS["train"], SPLIT_NS["test"]
    assert (train_lo, train_hi, test_lo, test_hi) == (ns("2023-03-01"), ns("2023-03-15"), ns("2023-03-15"), ns("2023-03-22"))
    train = ReplayMarket(aligned, episode_steps=60, window=BINANCE_US_SPLITS["train"])
    test = ReplayMarket(aligned, episode_steps=60, window=BINANCE_US_SPLITS["test"])
    assert train.end_row == test.first_row  # no bar in both, none left out between them
    assert (train.first_row, test.end_row) == (0, aligned.time_ns.shape[0])  # the sample is March 1..21
    assert train.end_row - train.first_row == 14 * 1440 and test.end_row - test.first_row == 7 * 1440
    assert aligned.time_ns[train.end_row - 1] + STEP_NS == train_hi == aligned.time_ns[test.first_row]


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_episode_of_a_split_starts_and_ends_inside_it(split):
    cfg = ob.binance_us_config(split=split, episode_steps=240, faults=ob.FaultSpec.none())
    lo, hi = SPLIT_NS[split]
    ex = ob.Exchange(cfg, n_lanes=512)
    firsts, lasts = [], []
    for seed in range(0, 20 * 512, 512):  # 10,240 lane seeds, then their next (unseeded) episodes
        ex.reset(seed=seed)
        firsts.append(episode_bars_ns(ex)[0])
        lasts.append(episode_bars_ns(ex)[1])
        ex.reset()
        firsts.append(episode_bars_ns(ex)[0])
        lasts.append(episode_bars_ns(ex)[1])
    first, last = np.concatenate(firsts), np.concatenate(lasts)
    assert (first >= lo).all() and (last + STEP_NS <= hi).all()
    # the draws reach both ends of the split (within a few hours), so the bound is what keeps them in
    assert first.min() - lo < 6 * 3600 * 10**9 and hi - (last.max() + STEP_NS) < 6 * 3600 * 10**9


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start_min=st.integers(0, 20 * 1440 - 40), length_min=st.integers(12, 3000), steps=st.integers(1, 11), seed=st.integers(0, 2**40))
def test_a_random_window_bounds_every_drawn_episode(aligned, start_min, length_min, steps, seed):
    base = ns("2023-03-01")
    lo, hi = base + start_min * STEP_NS, min(base + (start_min + length_min) * STEP_NS, ns("2023-03-22"))
    cfg = replay_config(aligned, episode_steps=steps, window=(np.datetime64(lo, "ns"), np.datetime64(hi, "ns")),
                        faults=ob.FaultSpec.none())
    ex = ob.Exchange(cfg, n_lanes=64)
    ex.reset(seed=seed)
    first, last = episode_bars_ns(ex)
    assert (first >= lo).all() and (last + STEP_NS <= hi).all()
    assert (ex.source.start_row >= cfg.market.first_row).all() and (ex.source.start_row < cfg.market.first_row + cfg.market.n_starts).all()


def test_a_fixed_start_must_leave_the_episode_inside_the_window(aligned):
    window = BINANCE_US_SPLITS["train"]
    ok = ReplayMarket(aligned, episode_steps=10, window=window, start="2023-03-14T23:49")
    assert ok.start_index == 14 * 1440 - 11
    with pytest.raises(ValueError, match=r"leaves 10 bars of the window, but a window needs 11 .*latest start is 2023-03-14T23:49:00Z"):
        ReplayMarket(aligned, episode_steps=10, window=window, start="2023-03-14T23:50")
    with pytest.raises(ValueError, match=r"start=2023-03-15T00:00:00Z is outside the window's bars \(2023-03-01T00:00:00Z to 2023-03-14T23:59:00Z"):
        ReplayMarket(aligned, episode_steps=10, window=window, start="2023-03-15")
    with pytest.raises(ValueError, match=r"start=20150 is outside the window: a window of 11 bars must start at a bar index in \[20160, 30229\]"):
        ReplayMarket(aligned, episode_steps=10, window=BINANCE_US_SPLITS["test"], start=20150)


@pytest.mark.parametrize(
    "window, steps, match",
    [
        (("2023-03-01T00:00", "2023-03-01T00:10"), 10, r"window 2023-03-01T00:00:00Z to 2023-03-01T00:10:00Z holds 10 bars .*needs 11"),
        (("2023-04-01", "2023-04-02"), 5, r"holds 0 bars of the data \(2023-03-01T00:00:00Z to 2023-03-21T23:59:00Z\)"),
        (("2023-03-05", "2023-03-02"), 5, r"window must end after it starts, got 2023-03-05T00:00:00Z to 2023-03-02T00:00:00Z"),
        ("2023-03-01", 5, r"window must be None or a pair \(start, end\) of timestamps, got '2023-03-01'"),
        (("2023-03-01",), 5, r"window must be None or a pair"),
        ((0, 10), 5, r"window start must be a timestamp .*got int 0"),
        (("2023-03-01", "soon"), 5, r"window end must be a timestamp .*got str 'soon'"),
    ],
)
def test_a_bad_window_is_refused_saying_what_was_expected(aligned, window, steps, match):
    with pytest.raises(ValueError, match=match):
        ReplayMarket(aligned, episode_steps=steps, window=window)


def test_split_names_and_their_combinations_are_checked():
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\) .*got 'valid'"):
        ob.binance_us_config(split="valid")
    with pytest.raises(ValueError, match=r"pass split='train' or window=.*not both"):
        ob.binance_us_config(split="train", window=("2023-03-01", "2023-03-02"))
    with pytest.raises(ValueError, match=r"holds 10080 bars .*episode_steps=20000 needs 20001"):
        ob.binance_us_config(split="test", episode_steps=20_000)


@pytest.mark.parametrize("split", ["train", "test"])
def test_env_episodes_through_gym_make_stay_in_their_split(split):
    lo, hi = SPLIT_NS[split]
    venv = gym.make_vec(envs.ENV_IDS[0], num_envs=32, vectorization_mode="vector_entry_point", market="binance_us",
                        split=split, horizon=30, max_episode_steps=30, history="all")
    venv.reset(seed=3)
    starts = [episode_bars_ns(venv.unwrapped.exchange)[0]]
    venv.action_space.seed(0)
    for _ in range(70):  # two episodes and more per lane, autoresets included
        venv.step(venv.action_space.sample())
        starts.append(episode_bars_ns(venv.unwrapped.exchange)[0])
    shown = venv.unwrapped.exchange.history.to_polars()["market"]["time_ns"].to_numpy()  # the close of each bar shown
    assert shown.min() >= lo + STEP_NS and shown.max() <= hi
    assert len(np.unique(np.concatenate(starts))) > 32  # new windows were drawn at the autoresets
    assert envs.ENV_IDS[0] and gym.make(envs.ENV_IDS[0], market="binance_us", split=split).spec.kwargs["split"] == split
