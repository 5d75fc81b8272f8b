"""The training and evaluation CLIs run end to end on tiny budgets and write what they promise."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from agents import evaluate, train
from agents import main as main_cli
from agents.cli import field_docs, parser_for
from orderbook.store import EpisodeStore

TINY = ["--n-envs", "4", "--total-timesteps", "256", "--n-steps", "32", "--batch-size", "64", "--n-epochs", "1",
        "--net-arch", "16,16", "--horizon", "6", "--no-progress-bar"]


def test_every_cli_field_has_a_one_line_docstring_and_an_option():
    for cls in (train.Args, evaluate.Args, main_cli.Args):
        docs = field_docs(cls)
        fields = list(cls.__dataclass_fields__)
        assert set(docs) == set(fields), f"{cls.__module__}: fields without a docstring: {set(fields) - set(docs)}"
        text = parser_for(cls).format_help()
        assert all(f"--{f.replace('_', '-')}" in text for f in fields)


def test_bool_and_typed_options_parse():
    args = train.parse(train.Args, ["--no-progress-bar", "--learning-rate", "0.001", "--algo", "A2C"])
    assert args.progress_bar is False and args.learning_rate == 0.001 and args.algo == "A2C"
    with pytest.raises(SystemExit):
        train.parse(train.Args, ["--n-envs", "four"])


@pytest.mark.parametrize("algo", ["PPO", "MaskablePPO"])
def test_train_then_evaluate_write_model_stats_history_table_and_plot(tmp_path, algo):
    run = train.main(TINY + ["--algo", algo, "--out-dir", str(tmp_path / "run"), "--faults", "high"])
    for name in ("model.zip", "vecnormalize.pkl", "args.json", "summary.json", "progress.csv"):
        assert (run / name).is_file(), name
    assert json.loads((run / "args.json").read_text())["algo"] == algo
    store = EpisodeStore(run / "history")
    assert store.runs() == ["run"] and store.verify() > 0
    events, market = store.read("events", run="run"), store.read("market", run="run")
    per_lane = market.group_by("lane").agg(pl.col("episode").n_unique().alias("n"), pl.col("episode").max().alias("last"))
    assert (per_lane["n"] == per_lane["last"] + 1).all() and per_lane.height == 4, "every episode of every lane is in the store"
    whole = market.group_by("lane", "episode").agg(pl.col("step").min().alias("first"), pl.col("step").n_unique().alias("n"),
                                                   pl.col("step").max().alias("last"))
    assert (whole["first"] == 0).all() and (whole["n"] == whole["last"] + 1).all(), "episodes are whole, from step 0"
    assert events.height > 0 and market["step"].max() >= 1
    assert market.select("lane", "episode", "step", "instrument").is_duplicated().sum() == 0, "no row is written twice"
    assert events["seq"].is_unique().all(), "seq keeps increasing across flushes"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["history_rows"]["events"] == events.height

    paths = evaluate.main(["--run-dir", str(run), "--n-envs", "4", "--episodes", "2", "--baselines", "twap,all_at_once,random"])
    for key in ("episodes", "summary", "paired", "table", "plot"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    episodes = pl.read_parquet(paths["episodes"])
    assert episodes.group_by("policy").len()["len"].to_list() == [8, 8, 8, 8]  # 4 lanes x 2 episodes each
    table = paths["table"].read_text()
    assert f"{algo.lower()} (trained)" in table and "twap" in table and "paired diff" in table
    paired = pl.read_csv(paths["paired"])
    assert sorted(paired["policy"]) == ["all_at_once", "random", "twap"]


def test_evaluation_gives_every_policy_the_same_markets(tmp_path):
    """Common random numbers: episode k of lane b sees the same bars whatever the policy did."""
    out = tmp_path / "eval"
    evaluate.main(["--n-envs", "4", "--episodes", "3", "--horizon", "6", "--baselines", "twap,passive,random",
                   "--faults", "high", "--out-dir", str(out)])
    cols = ["lane", "episode", "step", "instrument"]
    store = EpisodeStore(out / "history")
    assert store.runs() == ["passive", "random", "twap"]
    frames = {p: store.read("market", run=p).select(*cols, "close", "volume") for p in ("twap", "passive", "random")}
    joined = frames["twap"].join(frames["passive"], on=cols, suffix="_passive").join(frames["random"], on=cols, suffix="_random")
    assert joined.height > 100
    assert (joined["close"] == joined["close_passive"]).all() and (joined["close"] == joined["close_random"]).all()
    assert (joined["volume"] == joined["volume_passive"]).all()
    ep = pl.read_parquet(out / "episodes.parquet")
    assert not np.allclose(ep.filter(pl.col("policy") == "twap")["shortfall_bps"], ep.filter(pl.col("policy") == "random")["shortfall_bps"])


def test_trading_baselines_evaluate_without_a_model(tmp_path):
    paths = evaluate.main(["--env-id", "orderbook/Trading-v0", "--max-episode-steps", "10", "--n-envs", "4", "--episodes", "2",
                           "--out-dir", str(tmp_path), "--no-save-history"])
    ep = pl.read_parquet(paths["episodes"])
    assert sorted(ep["policy"].unique()) == ["buy_and_hold", "hold_cash", "random"]
    assert (ep["steps"] == 10).all()
    assert (ep.filter(pl.col("policy") == "hold_cash")["fills"] == 0).all()
    assert ep.filter(pl.col("policy") == "buy_and_hold")["fills"].min() > 0


def test_evaluate_refuses_unknown_baselines_and_folders_that_are_not_runs(tmp_path):
    with pytest.raises(ValueError, match="unknown baselines"):
        evaluate.main(["--baselines", "twap,vwap", "--out-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="args.json"):
        evaluate.main(["--run-dir", str(tmp_path)])


def test_main_trains_then_evaluates_into_one_folder(tmp_path, capsys):
    paths = main_cli.main(["--total-timesteps", "256", "--n-envs", "2", "--horizon", "5", "--eval-envs", "2",
                           "--eval-episodes", "2", "--out-dir", str(tmp_path / "main"), "--no-progress-bar"])
    assert (tmp_path / "main" / "model.zip").is_file() and paths["table"].parent == tmp_path / "main" / "eval"
    printed = capsys.readouterr().out
    assert f"table: {paths['table']}" in printed and f"plot:  {paths['plot']}" in printed
    assert all(name in printed for name in ("ppo (trained)", "twap", "almgren_chriss", "passive", "all_at_once", "random"))
