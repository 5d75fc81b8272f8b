"""Out of sample on the Binance.US replay: the evaluated windows, the split check, clustered intervals, the CLI."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import real_data
from agents.baselines import AllAtOnce
from agents.cli import field_docs
from agents.common import env_kwargs, make_env
from agents.stats import paired
from tests.agents.test_cli import one_line_error

STEP_NS = real_data.STEP_NS
TEST_KWARGS = env_kwargs("orderbook/Execution-v0", "default", "binance_us", split="test")


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def test_episode_windows_are_the_windows_a_rollout_replays_whatever_the_policy():
    lanes, episodes, seed = 5, 3, 10_000
    predicted = real_data.episode_windows(TEST_KWARGS, lanes, episodes, seed)
    raw = make_env("orderbook/Execution-v0", lanes, **TEST_KWARGS, history="none")
    raw.seed(seed)
    obs = raw.reset()
    source = raw.task.exchange.source
    seen = [[int(x)] for x in source.window_start_ns()]
    policy = AllAtOnce(raw)  # short episodes: lanes finish at different steps and reset on their own
    for _ in range(60 * episodes):
        obs, _, done, _ = raw.step(policy.predict(obs)[0])
        for b in np.flatnonzero(done):
            seen[b].append(int(source.window_start_ns()[b]))
        if min(len(s) for s in seen) >= episodes:
            break
    assert predicted.shape == (lanes, episodes)
    assert [s[:episodes] for s in seen] == predicted.tolist()
    assert np.unique(predicted).size == predicted.size  # distinct windows (seeded lanes, later episodes)


def test_every_evaluated_test_window_lies_inside_the_test_split_and_none_in_train():
    windows = real_data.episode_windows(TEST_KWARGS, 16, 4, 10_000)
    real_data.check_inside(windows, "test")
    lo, hi = real_data.split_bounds_ns("test")
    assert (windows >= lo).all() and (windows + 61 * STEP_NS <= hi).all()
    with pytest.raises(ValueError, match=r"lane 0 episode 0: expected its 61 bars inside the train split"):
        real_data.check_inside(windows, "train")


def test_check_inside_names_the_first_window_that_leaves_the_split():
    last_ok = ns("2023-03-22") - 61 * STEP_NS  # bars 23:59 - 60 min .. 23:59 of March 21
    windows = np.array([[ns("2023-03-15"), last_ok]])
    real_data.check_inside(windows, "test")
    with pytest.raises(ValueError, match=r"lane 0 episode 1: expected its 61 bars inside the test split .* starting 2023-03-21T23:00:00$"):
        real_data.check_inside(windows + np.array([[0, STEP_NS]]), "test")
    with pytest.raises(ValueError, match=r"lane 0 episode 0: .* starting 2023-03-14T23:59:00$"):
        real_data.check_inside(windows - STEP_NS, "test")
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'valid'"):
        real_data.check_inside(windows, "valid")


def test_overlap_counts_pairs_of_windows_that_share_a_bar():
    minute = STEP_NS
    windows = np.array([[0, 60 * minute, 121 * minute], [300 * minute, 300 * minute, 1000 * minute]])
    # 0 and 60 share bar 60; 121 starts after 60's last bar (120); the two at 300 are one window twice
    assert real_data.overlap_counts(windows) == (5, 4)
    assert real_data.overlap_counts(windows, steps=10) == (5, 2)


def episodes_frame(diffs: list[float], policy: str = "b") -> pl.DataFrame:
    n = len(diffs)
    base = np.linspace(-3.0, 5.0, n)
    rows = {"policy": ["a"] * n + [policy] * n, "lane": list(range(n)) * 2, "episode": [0] * (2 * n),
            "shortfall_bps": list(base) + list(base + np.asarray(diffs))}
    return pl.DataFrame(rows)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=3, max_size=30))
def test_clustered_intervals_with_one_episode_per_cluster_are_the_plain_paired_ones(diffs):
    episodes = episodes_frame(diffs)
    windows = pl.DataFrame({"lane": range(len(diffs)), "episode": [0] * len(diffs), "first_bar_ns": [k * 10 for k in range(len(diffs))]})
    got = real_data.clustered_paired(episodes, windows, "shortfall_bps", "a", block_ns=10).row(0, named=True)
    want = paired(episodes, "shortfall_bps", "a").row(0, named=True)
    assert got["clusters"] == got["n"] == want["n"]
    assert got["mean"] == pytest.approx(want["mean"], abs=1e-9)
    assert got["se"] == pytest.approx(want["se"], rel=1e-9, abs=1e-12)
    assert got["ci_low"] == pytest.approx(want["ci_low"], rel=1e-9, abs=1e-9)


def test_copies_of_one_episode_in_one_cluster_widen_the_interval_instead_of_narrowing_it():
    rng = np.random.default_rng(0)
    diffs = rng.normal(1.0, 4.0, 20)
    copied = np.repeat(diffs, 5)  # every window replayed five times: no new information
    episodes = episodes_frame(list(copied))
    windows = pl.DataFrame({"lane": range(copied.size), "episode": [0] * copied.size, "first_bar_ns": np.repeat(np.arange(20), 5) * 10})
    clustered = real_data.clustered_paired(episodes, windows, "shortfall_bps", "a", block_ns=10).row(0, named=True)
    plain = paired(episodes, "shortfall_bps", "a").row(0, named=True)
    independent = paired(episodes_frame(list(diffs)), "shortfall_bps", "a").row(0, named=True)
    assert clustered["clusters"] == 20 and clustered["n"] == 100
    assert plain["se"] < 0.5 * clustered["se"]  # the plain interval counts the copies as evidence
    assert clustered["se"] == pytest.approx(independent["se"], rel=1e-9)  # the clustered one sees 20 episodes


def test_every_real_data_option_has_a_one_line_docstring():
    assert set(field_docs(real_data.Args)) == set(real_data.Args.__dataclass_fields__)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--eval-envs", "0"], "--eval-envs must be >= 1, got 0"),
    (["--reward", "pnl"], "argument --reward: invalid choice: 'pnl'"),
    (["--block-hours", "0"], "--block-hours must be >= 1, got 0"),
    (["--net-arch", "64,x"], "--net-arch must be comma-separated layer sizes > 0 such as 64,64, got '64,x'"),
    (["--algo", "DQN"], "argument --algo: invalid choice: 'DQN'"),
])
def test_real_data_refuses_bad_values_in_one_line(capsys, tmp_path, argv, expected):
    assert expected in one_line_error(capsys, real_data.run, [*argv, "--out-dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_real_data_trains_on_train_evaluates_on_test_and_prints_the_checks(tmp_path, capsys):
    paths = real_data.run(["--total-timesteps", "256", "--n-envs", "4", "--n-steps", "32", "--batch-size", "64",
                           "--eval-envs", "4", "--eval-episodes", "2", "--no-save-history", "--out-dir", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    assert "market binance_us (train split)" in printed and "market binance_us (test split)" in printed
    assert "Out of sample: all 8 test windows lie inside ('2023-03-15', '2023-03-22') (first bars 2023-03-" in printed
    windows = pl.read_parquet(paths["windows"])
    clustered = pl.read_csv(paths["clustered"])
    assert windows.height == 8 and clustered["policy"].to_list() == ["twap", "almgren_chriss", "passive", "all_at_once", "random"]
    assert (clustered["n"] == 8).all() and (clustered["clusters"] <= 8).all()


def test_a_synthetic_model_on_the_replay_is_refused_naming_both_layouts(tmp_path, capsys):
    from agents import evaluate, train
    from tests.agents.test_cli import TINY

    run = train.run(TINY + ["--out-dir", str(tmp_path / "run"), "--no-save-history"])  # two synthetic venues
    capsys.readouterr()
    err = one_line_error(capsys, evaluate.run, ["--run-dir", str(run), "--market", "binance_us", "--split", "test",
                                                "--out-dir", str(tmp_path / "eval")])
    assert "the model observes 37 features and acts in [2, 8, 5, 3], but the env evaluated observes 27 and acts in [1, 8, 5, 3]" in err
    assert not (tmp_path / "eval").exists()
