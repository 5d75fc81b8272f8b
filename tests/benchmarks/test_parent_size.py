"""``benchmarks.parent_size``: the agent and every passive variant on the same lanes and seeds, at the asked parent."""

from __future__ import annotations

import pytest

from benchmarks import parent_size as ps


def test_every_policy_is_paired_with_the_agent_at_the_asked_parent(tmp_path):
    args = ps.Args(quantities="2", total_timesteps=64, n_envs=2, batch_size=64, imitate_steps=256, sweep_steps="1,3",
                   eval_envs=3, eval_episodes=1, out_dir=str(tmp_path))
    table = ps.one_parent(args, "2")
    rows = {r["policy"]: r for r in table.iter_rows(named=True)}
    assert list(rows)[0] == "ppo (trained)" and rows["ppo (trained)"]["mean"] is None  # the reference
    assert {"twap", "almgren_chriss", "passive", "all_at_once", "random", "passive, 1-step sweep", "passive, 3-step sweep"} <= set(rows)
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
