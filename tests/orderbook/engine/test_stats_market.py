"""Online statistics agree with the history; the synthetic market does what its spec says."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import orderbook as ob
from orderbook.engine import state as st
from orderbook.engine.stats import welford_summary
from tests.orderbook.helpers import random_cancels, random_intents, small_config


def test_online_statistics_equal_the_history():
    ex = ob.Exchange(small_config(faults=ob.FaultSpec.high()), n_lanes=3)
    ex.reset(seed=4)
    rng = np.random.default_rng(4)
    for _ in range(150):
        ex.step(random_intents(rng, ex), random_cancels(rng, ex))
    ev = ex.history.events_frame()
    n, mean, std = welford_summary(ex.stats.welford)
    for lane in range(3):
        fills = ev.filter(pl.col("lane") == lane, pl.col("event") == "FILL")
        slip = fills["slippage_arrival_bps"].to_numpy()
        assert n[lane, st.STAT_SLIPPAGE_ARRIVAL_BPS] == len(slip) > 10
        assert mean[lane, st.STAT_SLIPPAGE_ARRIVAL_BPS] == pytest.approx(slip.mean(), rel=1e-9, abs=1e-9)
        assert std[lane, st.STAT_SLIPPAGE_ARRIVAL_BPS] == pytest.approx(slip.std(ddof=1), rel=1e-9)
        lane_ev = ev.filter(pl.col("lane") == lane)
        rejects = lane_ev.filter(pl.col("event") == "REJECT").group_by("reason").len()
        for reason, count in rejects.iter_rows():
            assert ex.stats.rejects_by_reason[lane, ob.Reason[reason]] == count
        assert ex.stats.counters[lane, st.CNT_FILLS] == fills.height
        assert ex.stats.counters[lane, st.CNT_EXPIRED] == lane_ev.filter(pl.col("event") == "EXPIRE").height


def test_a_depegging_quote_moves_the_portfolio_value():
    depeg = ob.DepegSpec(start_prob=1.0, size_mean=0.1, half_life_steps=1e9, noise_bps=0.0)
    cfg = ob.default_config(faults=ob.FaultSpec.none(), market=ob.SyntheticMarket(depeg={"USDC": depeg}, vol_per_step=0.0, jump_prob=0.0, basis_bps=0.0))
    ex = ob.Exchange(cfg)
    ex.reset(seed=0)
    before = ex.portfolio_value()[0]
    ex.step()
    after = ex.portfolio_value()[0]
    usdc_usd = 2 * 50_000.0  # 50k USDC on each of two venues
    # USDC lost 5% to 15% of its value (size drawn around 10%); nothing else moved
    assert 0.05 * usdc_usd <= before - after <= 0.15 * usdc_usd


def test_arithmetic_brownian_mid_has_the_configured_step_variance():
    cfg = small_config(faults=ob.FaultSpec.none(), market=ob.SyntheticMarket(process="abm", abm_sigma_per_step=5.0, initial_prices={"BTC": 30_000.0}))
    ex = ob.Exchange(cfg, n_lanes=512)
    ex.reset(seed=0)
    ex.step()
    closes = ex.bars.close_ticks[:, 0] * 0.01 - 30_000.0
    assert abs(closes.mean()) < 4 * 5.0 / np.sqrt(512)
    assert closes.std() == pytest.approx(5.0, rel=0.1)
