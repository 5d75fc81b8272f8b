"""Behaviour cloning (agents.imitation): the cloned policy acts as the baseline, the critic learns its returns,
and ``agents.train --imitate`` refuses bad values in one line and records what it did."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from agents import imitation as im
from agents import main as main_cli
from agents import real_data, train
from agents.common import make_env
from tests.agents.test_cli import one_line_error

EXEC = "orderbook/Execution-v0"


def naive_returns(rewards, ends, valid_end, gamma):
    """Lane by lane, episode by episode, forwards: the definition of :func:`agents.imitation.discounted_returns`."""
    t_len, lanes = rewards.shape
    out = np.full(rewards.shape, np.nan)
    for b in range(lanes):
        start = 0
        for t in range(t_len):
            if ends[t, b]:
                if valid_end[t, b]:
                    for s in range(start, t + 1):
                        out[s, b] = sum(gamma ** (u - s) * rewards[u, b] for u in range(s, t + 1))
                start = t + 1
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 4), st.floats(0.5, 1.0), st.integers(0, 2**32 - 1))
def test_discounted_returns_sum_each_episode_back_from_its_end(t_len, lanes, gamma, seed):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(t_len, lanes))
    ends = rng.random((t_len, lanes)) < 0.3
    valid = rng.random((t_len, lanes)) < 0.8
    got = im.discounted_returns(rewards, ends, valid, gamma)
    want = naive_returns(rewards, ends, valid, gamma)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-12, atol=1e-12)


def test_discounted_returns_leave_unfinished_and_truncated_episodes_out():
    rewards = np.array([[1.0], [2.0], [4.0], [8.0], [16.0]])
    ends = np.array([[False], [True], [True], [False], [False]])
    valid = np.array([[True], [True], [False], [True], [True]])  # the second episode was truncated at t = 2
    got = im.discounted_returns(rewards, ends, valid, 0.5)[:, 0]
    np.testing.assert_array_equal(got[:2], [1.0 + 0.5 * 2.0, 2.0])
    assert np.isnan(got[2:]).all(), "a truncated episode and the unfinished tail have no return"
    with pytest.raises(ValueError, match="one shape"):
        im.discounted_returns(rewards, ends[:4], valid, 0.5)


def wrapped(n: int, seed: int) -> VecNormalize:
    """The training's wrapping of the registered task (no drift control: the plain env reward)."""
    raw = make_env(EXEC, n, history="none")
    raw.seed(seed)
    return VecNormalize(VecMonitor(raw), gamma=0.999)


def test_record_refuses_unknown_baselines_and_envs_that_are_not_normalised():
    venv = wrapped(2, 0)
    with pytest.raises(ValueError, match=r"imitate must be one of \('twap', 'almgren_chriss', 'passive'"):
        im.record(venv, "vwap", 8, 0.99)
    with pytest.raises(ValueError, match="VecNormalize"):
        im.record(venv.venv, "passive", 8, 0.99)


@pytest.mark.slow
def test_cloned_policy_acts_as_passive_on_held_out_steps_and_its_critic_learns():
    torch.set_num_threads(1)
    venv = wrapped(256, 0)
    model = PPO("MlpPolicy", venv, seed=0, device="cpu", n_steps=32, batch_size=2048, gamma=0.999,
                policy_kwargs=dict(net_arch=[64, 64]))
    demo = im.record(venv, "passive", 65_536, 0.999)
    held = im.record(venv, "passive", 8_192, 0.999)  # later episodes of the same lanes: markets the fit never saw
    # 256 steps per lane: at the registered 30 BTC passive's episodes last ~50 steps (at 1 BTC they lasted ~3)
    assert len(demo) == 65_536 and demo.episodes > 1_000 and np.isfinite(demo.returns).mean() > 0.9
    assert set(np.unique(demo.actions[:, 1])) <= {0, 1, 5}, "passive sends nothing, a post-only limit at the near touch or its final sweep"
    before, mse_before = im.agreement(model.policy, held), im.value_mse(model.policy, held)
    history = im.fit(model.policy, demo, epochs=30)
    after, mse_after = im.agreement(model.policy, held), im.value_mse(model.policy, held)
    assert before < 0.5 and after >= 0.95, (before, after)
    assert mse_after < 0.6 * mse_before and mse_after < 0.75 * float(np.nanvar(held.returns)), (mse_before, mse_after)
    assert history["value_mse"][-1] < history["value_mse"][0], "the value loss falls over the epochs"
    assert history["policy_nll"][-1] < 0.2 * history["policy_nll"][0]


@pytest.mark.parametrize(("run", "argv", "expected"), [
    (train.run, ["--imitate", "vwap"], "argument --imitate: invalid choice: 'vwap' (choose from 'none', 'twap'"),
    (train.run, ["--env-id", "orderbook/Trading-v0", "--imitate", "passive"],
     "--imitate must name a baseline of orderbook/Trading-v0: one of ('none', 'buy_and_hold', 'hold_cash', 'random'), got 'passive'"),
    (train.run, ["--imitate-steps", "0"], "--imitate-steps must be >= 1, got 0"),
    (train.run, ["--total-timesteps", "0"], "--total-timesteps must be >= 1 (0 only with --imitate"),
    (real_data.run, ["--imitate", "passive!"], "argument --imitate: invalid choice: 'passive!'"),
    (main_cli.run, ["--imitate", "twap2"], "argument --imitate: invalid choice: 'twap2'"),
])
def test_bad_imitate_values_exit_2_with_one_line(tmp_path, capsys, monkeypatch, run, argv, expected):
    monkeypatch.chdir(tmp_path)
    assert expected in one_line_error(capsys, run, argv + ["--out-dir", str(tmp_path / "out")])
    assert list(tmp_path.iterdir()) == [], "nothing is created for bad arguments"


def test_train_with_imitation_only_saves_the_clone_and_round_trips_its_arguments(tmp_path):
    argv = ["--n-envs", "8", "--total-timesteps", "0", "--imitate", "passive", "--imitate-steps", "256", "--imitate-epochs", "2",
            "--net-arch", "16,16", "--horizon", "6", "--no-progress-bar", "--no-save-history", "--out-dir", str(tmp_path / "run")]
    run = train.run(argv)
    saved = json.loads((run / "args.json").read_text())
    assert (saved["imitate"], saved["imitate_steps"], saved["imitate_epochs"]) == ("passive", 256, 2)
    assert train.Args(**saved) == train.parse(train.Args, argv), "args.json rebuilds the run's arguments"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["timesteps"] == 0 and summary["imitation"]["steps"] == 256 and summary["imitation"]["baseline"] == "passive"
    assert (run / "model.zip").is_file() and (run / "vecnormalize.pkl").is_file()


def test_evaluate_writes_the_share_of_each_level_every_policy_chose(tmp_path):
    import polars as pl

    from agents import evaluate

    paths = evaluate.evaluate(evaluate.Args(baselines="twap,passive", n_envs=4, episodes=2, horizon=6, save_history=False,
                                            out_dir=str(tmp_path / "eval")))
    levels = pl.read_csv(paths["levels"])
    shares = levels.group_by("policy").agg(pl.col("share").sum(), pl.col("steps").sum())
    assert sorted(shares["policy"]) == ["passive", "twap"] and (shares["steps"] > 0).all()
    np.testing.assert_allclose(shares["share"].to_numpy(), 1.0)
    used = {p: set(levels.filter((pl.col("policy") == p) & (pl.col("steps") > 0))["level"]) for p in ("twap", "passive")}
    assert used["twap"] <= {"market", "none"} and "market" in used["twap"]
    assert used["passive"] <= {"none", "post-only@near", "market"} and "post-only@near" in used["passive"]
    assert "Levels chosen" in paths["table"].read_text()
