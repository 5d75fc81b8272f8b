"""DriftControl: its term is the remainder's share of the pair mid's move, it leaves every policy's mean
return where it was, and it takes the drift out of the return's spread."""

from __future__ import annotations

import numpy as np
import pytest

from agents.baselines import TWAP, PassiveReprice, RandomPolicy
from agents.rewards import DriftControl
from agents.vec_env import OrderbookVecEnv

EXEC, TRADE = "orderbook/Execution-v0", "orderbook/Trading-v0"


def pair_mid_bps(task) -> np.ndarray:
    """``(B,)`` the task's own pair mid (mean mid of the listed instruments), bps from the arrival price."""
    bars, tick = task.exchange.bars, task.cc.tick_size[task.listing]
    mid = ((bars.bid_ticks[:, task.listing] + bars.ask_ticks[:, task.listing]) * 0.5 * tick).mean(axis=1)
    return (mid / task.arrival - 1.0) * 1e4


def test_the_term_is_side_times_the_mid_move_times_the_remainder_before_the_step():
    raw = OrderbookVecEnv(EXEC, 16, side="random")  # 60 steps: no lane finishes in the steps below
    env = DriftControl(raw)
    twap = TWAP(raw)
    raw.seed(3)
    obs = env.reset()
    task = raw.task
    shortfall = np.zeros(16)  # the running shortfall (bps): the default reward is minus its increment
    for _ in range(6):
        mid_before, left_before = pair_mid_bps(task), (task.parent_atoms - task.filled) / task.parent_atoms
        obs, shaped, done, _ = env.step(twap.predict(obs)[0])
        assert not done.any()
        now = raw.step_info["shortfall_bps"].astype(np.float64)
        env_reward, shortfall = shortfall - now, now
        term = task.side * (pair_mid_bps(task) - mid_before) * left_before
        assert np.abs(term).max() > 0.1  # the mid moved
        # the observation's float32 features and the instruments' own start mids: within a thousandth of a bps
        np.testing.assert_allclose(shaped, env_reward + term, atol=1e-3)
    assert set(task.side.tolist()) == {-1, 1}, "both sides were exercised"


# The spread the control takes out is the drift the remainder carries: a lot for TWAP (60 steps) and random,
# little for passive repricing, which fills in about three steps (measured at the default fills: return sd
# 8.4 -> 6.5 bps for passive; 37 -> 1.3 for TWAP, 21 -> 6 for random).
MOST_SD_LEFT = {RandomPolicy: 0.6, PassiveReprice: 0.85, TWAP: 0.6}


@pytest.mark.parametrize("policy", [RandomPolicy, PassiveReprice, TWAP])
def test_mean_return_is_kept_and_the_spread_drops(policy):
    raw = OrderbookVecEnv(EXEC, 128)
    env = DriftControl(raw)
    pol = policy(raw)
    raw.seed(10_000)
    obs = env.reset()
    ret, shaped, shortfall = np.zeros(128), [], []
    for _ in range(60 * 2):
        obs, reward, done, _ = env.step(pol.predict(obs)[0])
        ret += reward
        for b in np.flatnonzero(done):
            shaped.append(ret[b])
            shortfall.append(raw.step_info["shortfall_bps"][b])
            ret[b] = 0.0
    shaped, metric = np.asarray(shaped), -np.asarray(shortfall)  # the env's episode return is minus the shortfall
    diff = shaped - metric
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert abs(diff.mean()) < 4 * se + 0.05, f"{policy.__name__}: shaped - env return {diff.mean():.3f} bps, se {se:.3f}"
    assert shaped.std() < MOST_SD_LEFT[policy] * metric.std(), f"{policy.__name__}: sd {shaped.std():.2f} shaped vs {metric.std():.2f}"


def test_refuses_an_env_that_is_not_execution():
    with pytest.raises(ValueError, match="DriftControl works on orderbook/Execution-v0, got TradingTask"):
        DriftControl(OrderbookVecEnv(TRADE, 2))


def test_step_before_reset_is_refused():
    env = DriftControl(OrderbookVecEnv(EXEC, 2))
    env.venv.reset()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(np.zeros((2, 4), dtype=np.int64))


def test_holding_charges_the_remainder_before_each_step():
    plain, urgent = DriftControl(OrderbookVecEnv(EXEC, 8)), DriftControl(OrderbookVecEnv(EXEC, 8), holding_bps=0.5)
    twap = [TWAP(env.venv) for env in (plain, urgent)]
    for env in (plain, urgent):
        env.venv.seed(5)
    obs = [plain.reset(), urgent.reset()]
    for _ in range(5):
        task = plain.venv.task
        left = (task.parent_atoms - task.filled) / task.parent_atoms
        (obs[0], r0, _, _), (obs[1], r1, _, _) = (env.step(p.predict(o)[0]) for env, p, o in zip((plain, urgent), twap, obs))
        np.testing.assert_allclose(r1 - r0, -0.5 * left, atol=1e-5)  # the same markets and actions: only the charge differs


@pytest.mark.parametrize("holding", [-0.1, float("nan"), "1"])
def test_bad_holding_is_refused(holding):
    with pytest.raises(ValueError, match="holding_bps must be a finite number >= 0"):
        DriftControl(OrderbookVecEnv(EXEC, 2), holding_bps=holding)
