"""agents.stats: Student t intervals (exact for small n, no SciPy) and paired differences on common random numbers."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.stats import Z95, markdown_table, paired, summarize, t_cdf, t_quantile

# t(0.975, df) for df = 1..29 (n = 2..30), as printed in the standard tables (three decimals).
T975_TABLE = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
              2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045]
# and to nine decimals for a few degrees of freedom (NIST/SEMATECH e-Handbook, 1.3.6.7.2)
T975_PRECISE = {1: 12.706204736, 2: 4.302652730, 3: 3.182446305, 5: 2.570581836, 10: 2.228138852, 29: 2.045229642}


@pytest.mark.parametrize("n", range(2, 31))
def test_t_quantile_matches_the_table_for_n_2_to_30(n):
    assert round(t_quantile(0.975, n - 1), 3) == pytest.approx(T975_TABLE[n - 2], abs=1e-9)


@pytest.mark.parametrize("df, value", sorted(T975_PRECISE.items()))
def test_t_quantile_to_nine_decimals(df, value):
    assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-9)


def test_t_quantile_tends_to_the_normal_and_has_no_interval_for_one_value():
    assert t_quantile(0.975, 1e7) == pytest.approx(Z95, abs=1e-6)
    assert math.isnan(t_quantile(0.975, 0))
    with pytest.raises(ValueError, match=r"p must be a probability in \(0, 1\), got 1.0"):
        t_quantile(1.0, 5)


@given(p=st.floats(0.001, 0.999), df=st.integers(1, 200))
def test_t_cdf_inverts_t_quantile_and_the_quantile_is_odd(p, df):
    q = t_quantile(p, df)
    assert t_cdf(q, df) == pytest.approx(p, abs=1e-12)
    assert t_quantile(1 - p, df) == pytest.approx(-q, abs=1e-9 * max(1.0, abs(q)))


def _episodes() -> pl.DataFrame:
    """Three paired episodes: the policy minus the reference is 1, 2, 6 (mean 3, sd sqrt(7))."""
    ref = [10.0, 20.0, 30.0]
    return pl.DataFrame({
        "policy": ["ref"] * 3 + ["algo"] * 3,
        "lane": [0, 1, 2] * 2,
        "episode": [0, 0, 0] * 2,
        "cost": ref + [11.0, 22.0, 36.0],
    })


def test_paired_interval_matches_a_hand_computed_three_episode_case():
    row = paired(_episodes(), "cost", "ref").row(0, named=True)
    se = math.sqrt(7 / 3)  # sd sqrt(((1-3)^2 + (2-3)^2 + (6-3)^2) / 2) = sqrt(7), over sqrt(3)
    half = 4.302652729749464 * se  # t(0.975, 2) = 0.95 / sqrt(2 x 0.975 x 0.025), not the normal 1.96
    assert row["policy"] == "algo" and row["n"] == 3
    assert row["mean"] == pytest.approx(3.0) and row["std"] == pytest.approx(math.sqrt(7))
    assert row["ci_low"] == pytest.approx(3.0 - half, rel=1e-12) and row["ci_high"] == pytest.approx(3.0 + half, rel=1e-12)
    assert row["ci_low"] == pytest.approx(-3.5724, abs=1e-4) and row["t"] == pytest.approx(3.0 / se)


def test_summary_intervals_are_t_based_and_the_table_says_n_and_the_degrees_of_freedom():
    episodes = _episodes()
    summary = summarize(episodes, ["cost"])
    algo = summary.filter(pl.col("policy") == "algo").row(0, named=True)
    sd = math.sqrt(((11 - 23) ** 2 + (22 - 23) ** 2 + (36 - 23) ** 2) / 2)
    assert algo["ci_high"] - algo["mean"] == pytest.approx(4.302652729749464 * sd / math.sqrt(3), rel=1e-12)
    table = markdown_table(summary, paired(episodes, "cost", "ref"), ["cost"], {}, "cost")
    assert "n = 3 episodes per policy" in table and "Student t, 2 degrees of freedom: 4.303 standard errors" in table
    assert "(2.0; n 3)" in table  # the paired row: t = 3 / sqrt(7/3) and its n


def test_a_single_episode_has_no_interval():
    one = pl.DataFrame({"policy": ["a"], "lane": [0], "episode": [0], "cost": [1.0]})
    row = summarize(one, ["cost"]).row(0, named=True)
    assert row["n"] == 1 and row["ci_low"] is None and row["ci_high"] is None
