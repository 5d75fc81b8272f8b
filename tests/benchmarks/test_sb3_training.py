"""benchmarks.sb3_training.time_to_beat: the first rollout whose rolling training shortfall is below the baseline's."""

from __future__ import annotations

import polars as pl

from benchmarks.sb3_training import time_to_beat


def _run(tmp_path, shortfalls, twap_bps=5.0):
    (tmp_path / "eval").mkdir()
    n = len(shortfalls)
    pl.DataFrame({"rollout/shortfall_bps": shortfalls, "time/total_timesteps": [8192 * (k + 1) for k in range(n)],
                  "time/steps_per_s": [4096.0] * n}).write_csv(tmp_path / "progress.csv")
    pl.DataFrame({"policy": ["ppo (trained)", "twap", "twap"], "metric": ["shortfall_bps", "shortfall_bps", "fill_ratio"],
                  "mean": [1.0, twap_bps, 1.0]}).write_csv(tmp_path / "eval" / "summary.csv")
    return tmp_path


def test_the_first_rolling_mean_below_twap_gives_its_steps_and_seconds(tmp_path):
    got = time_to_beat(_run(tmp_path, [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]), window=3)
    # rolling means of 3: 8, 7, 6, 5, 4 -> the first below 5 ends at rollout index 6
    assert got == {"target_bps": 5.0, "steps": 8192 * 7, "seconds": 8192 * 7 / 4096.0, "rolling_shortfall_bps": 4.0}


def test_a_run_that_never_beats_twap_gives_none(tmp_path):
    assert time_to_beat(_run(tmp_path, [6.0, 5.5, 5.0, 5.2]), window=2) is None
