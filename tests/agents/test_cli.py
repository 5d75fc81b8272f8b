"""The training and evaluation CLIs run end to end on tiny budgets and write what they promise."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from agents import evaluate, train
from agents import main as main_cli
from agents.cli import field_docs, parser_for
from orderbook.analytics.store import EpisodeStore

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
    run = train.run(TINY + ["--algo", algo, "--out-dir", str(tmp_path / "run"), "--faults", "high"])
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

    paths = evaluate.run(["--run-dir", str(run), "--n-envs", "4", "--episodes", "2", "--baselines", "twap,all_at_once,random"])
    for key in ("episodes", "summary", "paired", "table", "plot"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    episodes = pl.read_parquet(paths["episodes"])
    assert episodes.group_by("policy").len()["len"].to_list() == [8, 8, 8, 8]  # 4 lanes x 2 episodes each
    table = paths["table"].read_text()
    assert f"{algo.lower()} (trained)" in table and "twap" in table and "paired diff" in table
    assert "Episodes: 8 per policy, 4 policies; evaluation wall time" in table
    assert f"Training: {summary['timesteps']:,} steps in" in table and "steps/s while learning" in table
    paired = pl.read_csv(paths["paired"])
    assert sorted(paired["policy"]) == ["all_at_once", "random", "twap"]


def test_evaluation_gives_every_policy_the_same_markets(tmp_path):
    """Common random numbers: episode k of lane b sees the same bars whatever the policy did."""
    out = tmp_path / "eval"
    evaluate.run(["--n-envs", "4", "--episodes", "3", "--horizon", "6", "--baselines", "twap,passive,random",
                   "--faults", "high", "--out-dir", str(out)])
    cols = ["lane", "episode", "step", "instrument"]
    store = EpisodeStore(out / "history")
    assert store.runs() == ["passive", "random", "twap"]
    frames = {p: store.read("market", run=p).select(*cols, "close", "volume") for p in ("twap", "passive", "random")}
    joined = frames["twap"].join(frames["passive"], on=cols, suffix="_passive").join(frames["random"], on=cols, suffix="_random")
    # every step that all three episodes reached is there (an episode ends when its parent fills, so at the earliest policy's end)
    steps = [f.group_by("lane", "episode").agg(pl.col("step").n_unique().alias(p)) for p, f in frames.items()]
    reached = steps[0].join(steps[1], on=["lane", "episode"]).join(steps[2], on=["lane", "episode"])
    common_steps = reached.select(pl.min_horizontal("twap", "passive", "random")).to_series().sum()
    assert reached.height >= 12 and joined.height == common_steps * frames["twap"]["instrument"].n_unique() > 0
    assert (joined["close"] == joined["close_passive"]).all() and (joined["close"] == joined["close_random"]).all()
    assert (joined["volume"] == joined["volume_passive"]).all()
    ep = pl.read_parquet(out / "episodes.parquet")
    assert not np.allclose(ep.filter(pl.col("policy") == "twap")["shortfall_bps"], ep.filter(pl.col("policy") == "random")["shortfall_bps"])


def test_trading_baselines_evaluate_without_a_model(tmp_path):
    paths = evaluate.run(["--env-id", "orderbook/Trading-v0", "--max-episode-steps", "10", "--n-envs", "4", "--episodes", "2",
                           "--out-dir", str(tmp_path), "--no-save-history"])
    ep = pl.read_parquet(paths["episodes"])
    assert sorted(ep["policy"].unique()) == ["buy_and_hold", "hold_cash", "random"]
    assert (ep["steps"] == 10).all()
    assert (ep.filter(pl.col("policy") == "hold_cash")["fills"] == 0).all()
    assert ep.filter(pl.col("policy") == "buy_and_hold")["fills"].min() > 0


def one_line_error(capsys, run, argv) -> str:
    """``run(argv)`` exits with code 2 and a single ``error:`` line on stderr, nothing on stdout."""
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and ": error: " in err, err
    return err


def test_evaluate_refuses_unknown_baselines_and_folders_that_are_not_runs(tmp_path, capsys):
    err = one_line_error(capsys, evaluate.run, ["--baselines", "twap,vwap", "--out-dir", str(tmp_path / "eval")])
    assert "unknown baselines ['vwap']" in err
    err = one_line_error(capsys, evaluate.run, ["--run-dir", str(tmp_path)])
    assert "args.json" in err
    assert not (tmp_path / "eval").exists() and not (tmp_path / "eval-execution").exists()
    with pytest.raises(ValueError, match="unknown baselines"):  # the library call raises, the CLI exits
        evaluate.evaluate(evaluate.Args(baselines="twap,vwap", out_dir=str(tmp_path / "eval")))


@pytest.mark.parametrize(("run", "argv", "expected"), [
    (train.run, ["--algo", "DQN"], "argument --algo: invalid choice: 'DQN' (choose from 'PPO', 'A2C', 'MaskablePPO')"),
    (train.run, ["--faults", "extreme"], "argument --faults: invalid choice: 'extreme'"),
    (train.run, ["--market", "nasdaq"], "argument --market: invalid choice: 'nasdaq'"),
    (train.run, ["--env-id", "CartPole-v1"], "argument --env-id: invalid choice: 'CartPole-v1'"),
    (train.run, ["--n-envs", "0"], "--n-envs must be >= 1, got 0"),
    (train.run, ["--net-arch", "64,x"], "--net-arch must be comma-separated layer sizes > 0"),
    (train.run, ["--env-id", "orderbook/Trading-v0", "--horizon", "5"], "horizon applies to orderbook/Execution-v0 only"),
    (evaluate.run, ["--faults", "extreme"], "argument --faults: invalid choice: 'extreme'"),
    (evaluate.run, ["--episodes", "0"], "--episodes must be >= 1, got 0"),
    (train.run, ["--split", "test"], "split 'test' is a period of the replayed Binance.US data: use it with market binance_us"),
    (train.run, ["--split", "holdout", "--market", "binance_us"], "argument --split: invalid choice: 'holdout'"),
    (train.run, ["--reward", "pnl"], "argument --reward: invalid choice: 'pnl'"),
    (train.run, ["--env-id", "orderbook/Trading-v0", "--reward", "marked"], "reward applies to orderbook/Execution-v0 only"),
    (train.run, ["--env-id", "orderbook/Trading-v0", "--drift-control"], "--drift-control applies to orderbook/Execution-v0 only"),
    (evaluate.run, ["--split", "train"], "split 'train' is a period of the replayed Binance.US data"),
    (main_cli.run, ["--faults", "high!"], "argument --faults: invalid choice: 'high!'"),
    (main_cli.run, ["--horizon", "-1"], "--horizon must be >= 0 (0: the env's default, 60), got -1"),
    (main_cli.run, ["--no-drift-control"], "--holding-bps applies with --drift-control, got 0.1 without it"),
    (train.run, ["--holding-bps", "-1", "--drift-control"], "--holding-bps must be a finite number >= 0, got -1.0"),
])
def test_bad_arguments_exit_2_with_one_line_and_create_nothing(tmp_path, capsys, monkeypatch, run, argv, expected):
    monkeypatch.chdir(tmp_path)  # default output folders would land here
    err = one_line_error(capsys, run, argv + ["--out-dir", str(tmp_path / "out")])
    assert expected in err
    assert list(tmp_path.iterdir()) == [], "nothing is created for bad arguments"


def test_python_m_train_with_a_bad_algo_prints_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "agents.train", "--algo", "DQN", "--out-dir", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == "" and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "invalid choice: 'DQN'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("cls", [train.Args, evaluate.Args, main_cli.Args])
def test_help_keeps_paragraphs_and_shows_each_default_once(cls):
    module = sys.modules[cls.__module__]
    text = parser_for(cls, description=module.__doc__).format_help()
    assert "(default: )" not in text
    first_paragraph = module.__doc__.split("\n\n")[0]
    assert first_paragraph.splitlines()[0] in text.splitlines(), "the description is printed as written"
    options = text.split("options:")[1]
    for f in dataclasses.fields(cls):
        block = options.split(f"--{f.name.replace('_', '-')}")[1].split("\n  --")[0]
        assert block.count("default:") <= 1, block
        if f.default not in ("", None):
            assert block.count("default:") == 1 or "default" in field_docs(cls)[f.name], block


def test_choices_are_listed_in_help():
    text = parser_for(train.Args).format_help()
    assert "{PPO,A2C,MaskablePPO}" in text and "{none,default,high}" in text


def test_main_trains_then_evaluates_into_one_folder(tmp_path, capsys):
    paths = main_cli.run(["--total-timesteps", "256", "--n-envs", "2", "--batch-size", "64", "--horizon", "5", "--eval-envs", "2",
                           "--eval-episodes", "2", "--out-dir", str(tmp_path / "main"), "--no-progress-bar", "--real-timesteps", "256",
                           "--imitate-steps", "64"])
    assert (tmp_path / "main" / "model.zip").is_file() and paths["table"].parent == tmp_path / "main" / "eval"
    printed = capsys.readouterr().out
    assert f"[main] table: {paths['table']}" in printed and f"[main] plot: {paths['plot']}" in printed
    # the real-data part: trained on the replay's train split, evaluated on its test split, into out_dir/real
    assert paths["real_table"] == tmp_path / "main" / "real" / "eval" / "table.md"
    assert (tmp_path / "main" / "real" / "model.zip").is_file() and paths["real_windows"].is_file()
    assert json.loads((tmp_path / "main" / "real" / "args.json").read_text())["split"] == "train"
    assert "market binance_us (test split)" in paths["real_table"].read_text()
    synthetic_at = printed.index("## Synthetic market")
    real_at = printed.index("## Binance.US BTC/USD replay, out of sample")
    assert synthetic_at < real_at and "Out of sample: all 1024 test windows lie inside" in printed
    assert all(name in printed for name in ("ppo (trained)", "twap", "almgren_chriss", "passive", "all_at_once", "random"))
    assert paths["learning_curve"] == tmp_path / "main" / "eval" / "learning_curve.png" and paths["learning_curve"].stat().st_size > 0
    assert f"learning curve: {paths['learning_curve']}" in printed
    assert "steps/s while learning" in printed and "evaluation wall time" in printed
    progress = pl.read_csv(tmp_path / "main" / "progress.csv")
    assert progress["rollout/shortfall_bps"].drop_nulls().len() > 0  # the curve's metric is logged per rollout


def test_rerunning_main_into_its_folder_replaces_the_histories(tmp_path):
    argv = ["--total-timesteps", "256", "--n-envs", "2", "--batch-size", "64", "--horizon", "5", "--eval-envs", "2", "--eval-episodes", "2",
            "--out-dir", str(tmp_path / "main"), "--no-progress-bar", "--no-real-data", "--imitate-steps", "64"]
    main_cli.run(argv)
    first = EpisodeStore(tmp_path / "main" / "history").read("market", run="main")
    # a store left by another version of the package: its recorded schema no longer matches what this one writes
    schema = tmp_path / "main" / "history" / "_schema.json"
    meta = json.loads(schema.read_text())
    meta["kinds"]["market"] = {**meta["kinds"]["market"], "bid_ticks": "Float32"}
    schema.write_text(json.dumps(meta))
    main_cli.run(argv)
    again = EpisodeStore(tmp_path / "main" / "history").read("market", run="main")
    assert again.height == first.height  # the same seeds: the same rows, once, not appended to the first run's
    assert again.select("lane", "episode", "step", "instrument").is_duplicated().sum() == 0
    assert EpisodeStore(tmp_path / "main" / "eval" / "history").runs() == sorted(
        ["ppo", "twap", "almgren_chriss", "passive", "all_at_once", "random"])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "history").mkdir()
    (tmp_path / "other" / "history" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="expected an episode store"):
        train.run(TINY + ["--out-dir", str(tmp_path / "other")])
    assert (tmp_path / "other" / "history" / "notes.txt").read_text() == "mine"


def test_console_scripts_name_main_functions_that_print_help(capsys):
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    assert set(scripts) == {"orderbook-train", "orderbook-evaluate", "orderbook-demo"}
    for name, target in scripts.items():
        module, func = target.split(":")
        assert func == "main"
        with pytest.raises(SystemExit) as exit_info:
            getattr(importlib.import_module(module), func)(["--help"])
        assert exit_info.value.code == 0
        assert "--help" in capsys.readouterr().out, name


def test_training_steps_per_second_leave_compile_time_out(monkeypatch):
    callback = train.RunCallback(keeper=None, log_every=1)
    monkeypatch.setattr("orderbook.compile.compile_notice.compile_seconds", lambda: 7.0)
    callback._on_training_start()
    callback.num_timesteps = 1_000
    callback.t0 -= 10.0  # ten seconds since training started...
    monkeypatch.setattr("orderbook.compile.compile_notice.compile_seconds", lambda: 12.0)  # ...five of them compiling
    assert callback.compile_s() == 5.0
    assert 190 < callback.steps_per_s() < 201


@pytest.mark.parametrize(("argv", "expected"), [
    (["--lanes", "0"], "argument --lanes: expected an integer in [1, 65536], got 0"),
    (["--steps", "ten"], "argument --steps: expected an integer in [1, 1048576], got 'ten'"),
])
def test_demo_refuses_bad_counts_in_one_line(capsys, argv, expected):
    from orderbook import demo
    assert expected in one_line_error(capsys, demo.main, argv)


def test_split_reaches_the_env_kwargs_and_evaluation_defaults_to_the_other_split(tmp_path):
    from agents.common import env_kwargs

    assert env_kwargs("orderbook/Execution-v0", market="binance_us", split="train") == {
        "faults": "default", "market": "binance_us", "split": "train"}
    assert "split" not in env_kwargs("orderbook/Execution-v0", market="binance_us")  # every bar, as before
    assert env_kwargs("orderbook/Execution-v0", reward="marked")["reward"] == "marked"
    assert "reward" not in env_kwargs("orderbook/Execution-v0")  # the default is not written: old args.json read the same
    run = tmp_path / "run"
    run.mkdir()
    (run / "args.json").write_text(json.dumps({"env_id": "orderbook/Execution-v0", "market": "binance_us", "split": "train",
                                               "horizon": 5, "faults": "none"}))
    what = evaluate.resolve(evaluate.Args(run_dir=str(run), baselines="twap"))
    assert what["split"] == "test" and what["kwargs"]["split"] == "test"  # out of sample unless asked
    assert evaluate.resolve(evaluate.Args(run_dir=str(run), baselines="twap", split="train"))["kwargs"]["split"] == "train"
    assert "split" not in evaluate.resolve(evaluate.Args(run_dir=str(run), baselines="twap", market="synthetic"))["kwargs"]


def test_evaluate_on_the_test_split_uses_only_its_bars_and_says_so(tmp_path, capsys):
    from orderbook.presets import BINANCE_US_SPLITS

    paths = evaluate.run(["--market", "binance_us", "--split", "test", "--n-envs", "3", "--episodes", "2", "--horizon", "4",
                          "--baselines", "twap,random", "--out-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "market binance_us (test split)" in printed and "Episodes: 6 per policy, 2 policies" in printed
    assert "Student t, 5 degrees of freedom" in printed
    times = EpisodeStore(tmp_path / "history").read("market")["time_ns"].to_numpy()
    lo, hi = (np.datetime64(t, "ns").astype(np.int64) for t in BINANCE_US_SPLITS["test"])
    assert times.min() > lo and times.max() <= hi and paths["table"].is_file()


def test_main_without_history_writes_no_store(tmp_path):
    out = tmp_path / "main"
    main_cli.run(["--total-timesteps", "128", "--n-envs", "2", "--batch-size", "64", "--horizon", "5", "--eval-envs", "2",
                  "--eval-episodes", "1", "--out-dir", str(out), "--no-save-history"])
    assert (out / "model.zip").is_file() and (out / "eval" / "table.md").is_file()
    assert not (out / "history").exists() and not (out / "eval" / "history").exists()


def test_quantity_reaches_training_evaluation_and_both_parts_of_the_main_job(tmp_path):
    args = main_cli.Args(quantity="30")
    assert main_cli.train_args(args).quantity == "30" and main_cli.real_args(args).quantity == "30"
    assert main_cli.train_args(main_cli.Args()).quantity == ""  # the registered 1 BTC unless asked
    run = tmp_path / "run"
    run.mkdir()
    (run / "args.json").write_text(json.dumps({"env_id": "orderbook/Execution-v0", "quantity": "90", "faults": "none"}))
    kwargs = evaluate.resolve(evaluate.Args(run_dir=str(run), baselines="twap"))["kwargs"]
    assert kwargs["quantity"] == "90" and kwargs["exchange"]["initial_balances"]["alpha:BTC"] == "90"  # as trained
    again = evaluate.resolve(evaluate.Args(run_dir=str(run), baselines="twap", quantity="2"))["kwargs"]
    assert again["quantity"] == "2" and "exchange" not in again  # the default account holds it


@pytest.mark.parametrize("module", ["train", "main", "real_data"])
def test_a_bad_quantity_is_refused_in_one_line_before_anything_is_created(capsys, tmp_path, module):
    cli = importlib.import_module(f"agents.{module}")
    message = one_line_error(capsys, cli.run, ["--quantity", "lots", "--out-dir", str(tmp_path / "out")])
    assert "quantity must be a number of BTC > 0, got 'lots'" in message
    assert not (tmp_path / "out").exists()
