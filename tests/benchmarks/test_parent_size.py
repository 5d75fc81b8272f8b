"""``benchmarks.parent_size``: the agent and every passive variant on the same lanes and seeds, at the asked parent."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import parent_size as ps


def test_every_policy_is_paired_with_the_agent_at_the_asked_parent(tmp_path):
    args = ps.Args(quantities="2", total_timesteps=64, n_envs=2, batch_size=64, imitate_steps=256, sweep_steps="1,3",
                   eval_envs=3, eval_episodes=1, out_dir=str(tmp_path))
    table = ps.one_parent(args, "2")
    rows = {r["policy"]: r for r in table.iter_rows(named=True)}
    assert list(rows)[0] == "ppo (trained)" and rows["ppo (trained)"]["mean"] is None  # the reference
    assert {"twap", "almgren_chriss", "passive", "all_at_once", "random", "passive, 1-step sweep", "passive, 3-step sweep",
            "passive, 0.05 floor", "passive, 0.1 floor", "passive, 0.2 floor"} <= set(rows)
    assert set(table["quantity"]) == {"2"}
    # the 1-step sweep is the evaluation's passive, on the same seeds: the same episodes, so the same paired figures
    assert rows["passive, 1-step sweep"]["shortfall_bps"] == rows["passive"]["shortfall_bps"]
    assert rows["passive, 1-step sweep"]["mean"] == rows["passive"]["mean"]
    assert all(0.0 <= r["fill_ratio"] <= 1.0 for r in rows.values())
    assert (tmp_path / "q2" / "args.json").read_text().count('"quantity": "2"') == 1  # trained at that parent
    lines = ps.markdown(table).splitlines()
    assert lines[2].startswith("| 2 | ppo (trained) |") and lines[2].endswith("| reference |") and len(lines) == 2 + len(rows)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--quantities", "1,x"], "--quantities must be comma-separated numbers of BTC > 0, got '1,x'"),
    (["--sweep-steps", "0"], "--sweep-steps must be comma-separated ints >= 1, got '0'"),
    (["--eval-envs", "0"], "--eval-envs must be >= 1, got 0"),
])
def test_bad_arguments_are_refused_in_one_line(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        ps.main(argv)
    assert exit_info.value.code == 2 and expected in capsys.readouterr().err


def _actions(policy_cls, kwargs, steps, **options):
    from agents.common import make_env

    raw = make_env("orderbook/Execution-v0", 8, **kwargs)
    policy = policy_cls(raw, **options)
    raw.seed(7)
    obs = raw.reset()
    out = []
    for _ in range(steps):
        action = policy.predict(obs)[0]
        out.append(action)
        obs, _, _, _ = raw.step(action)
    return np.stack(out), raw


def test_passive_with_a_floor_it_never_reaches_is_passive_action_for_action():
    from agents.baselines import PassiveReprice
    from agents.common import env_kwargs

    kwargs = env_kwargs("orderbook/Execution-v0", horizon=12, quantity="30")
    floor, _ = _actions(ps.PassiveWithFloor, kwargs, 30, band=0.99)
    passive, _ = _actions(PassiveReprice, kwargs, 30)
    assert np.array_equal(floor, passive)


def test_passive_with_a_floor_takes_when_behind_the_straight_line_and_fills_more():
    from agents.baselines import PassiveReprice
    from agents.common import env_kwargs

    kwargs = env_kwargs("orderbook/Execution-v0", horizon=12, quantity="30")  # 30 BTC in 12 bars: passive falls behind
    floor, raw_floor = _actions(ps.PassiveWithFloor, kwargs, 11, band=0.0)
    passive, raw_passive = _actions(PassiveReprice, kwargs, 11)
    from envs import spaces as sp

    assert (floor[:-2, :, 1] == sp.LEVEL_MARKET).any()  # market children before the final sweep...
    assert not (passive[:-2, :, 1] == sp.LEVEL_MARKET).any()  # ...which passive never sends
    assert raw_floor.task.filled_atoms().sum() > raw_passive.task.filled_atoms().sum()


def test_a_floor_band_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match=r"band must be in \[0, 1\), got 1.5"):
        ps.PassiveWithFloor(band=1.5)
