"""Baselines: legal actions under heavy faults, the accounting audit, and Almgren-Chriss closed forms.

Almgren and Chriss (2000), "Optimal execution of portfolio transactions", J. Risk 3(2), section 2:
buying ``X`` in ``N`` steps of ``tau`` seconds as ``n_k`` per step, under an arithmetic Brownian price
with permanent impact ``gamma`` per unit and temporary impact ``epsilon + eta n_k / tau`` per unit,
the expected implementation shortfall is

    E[IS] = gamma/2 (X^2 - sum n_k^2) + epsilon X + eta/tau sum n_k^2,

which for TWAP (``n_k = X / N``) is ``gamma X^2 / 2 (1 - 1/N) + epsilon X + eta X^2 / (N tau)``,
and its variance ``sigma_step^2 sum_k x_k^2`` (``x_k``: holdings still to buy after step ``k``).
The env reports shortfall in bps of the parent notional ``X P0`` (``P0`` the arrival mid), so a
lane's shortfall in quote units is ``bps x 1e-4 x X x P0``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import envs
import orderbook as ob
from agents.baselines import (
    TWAP,
    AllAtOnce,
    AlmgrenChriss,
    ExecutionBaseline,
    PassiveReprice,
    ac_holdings_fraction,
    ac_kappa_tau,
    baselines_for,
)
from agents.vec_env import OrderbookVecEnv
from envs import spaces as sp
from envs.execution import ExecutionTask
from orderbook.analytics.audit import audit
from orderbook.engine import lifecycle
from tests.agents.helpers import (
    EPSILON,
    ETA,
    EXEC,
    GAMMA,
    N_STEPS,
    SIGMA,
    TAU_S,
    TRADE,
    X_BTC,
    ac_env,
    assert_inside_masks,
    make_vec,
)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_every_baseline_acts_legally_with_faults_high_and_the_audit_holds(env_id):
    kwargs = dict(horizon=20) if env_id == EXEC else dict(max_episode_steps=40)
    probe = OrderbookVecEnv(env_id, 1)
    for name in baselines_for(probe):
        venv = OrderbookVecEnv(env_id, 8, faults=ob.FaultSpec.high(), **kwargs)
        policy = baselines_for(venv, seed=3)[name]
        venv.seed(17)
        obs = venv.reset()
        nvec = venv.action_space.nvec
        orders = dones = 0
        for t in range(120):
            actions, _ = policy.predict(obs)
            assert_inside_masks(actions, venv.action_masks(), nvec, f"{name} step {t}")
            obs, _, done, _ = venv.step(actions)
            orders += int(venv.step_info["orders"].sum())
            dones += int(done.sum())
            if t % 40 == 39:
                assert audit(venv.exchange) == [], f"{name} step {t}"
        assert dones > 0, name
        if name != "hold_cash":
            assert orders > 0, f"{name} never sent an order"


def run_episode(env: OrderbookVecEnv, policy, steps: int) -> tuple[dict, np.ndarray]:
    """Step ``steps`` times from a seeded reset; the info arrays of the step where each lane first ended."""
    obs = env.reset()
    final: dict[str, np.ndarray] = {}
    ended = np.zeros(env.num_envs, dtype=bool)
    length = np.zeros(env.num_envs, dtype=np.int64)
    for t in range(steps):
        obs, _, done, _ = env.step(policy.predict(obs)[0])
        first = done & ~ended
        for k, v in env.step_info.items():
            final.setdefault(k, np.zeros_like(v))[first] = v[first]
        length[first] = t + 1
        ended |= done
    assert ended.all()
    return final, length


def shortfall_usd(final: dict) -> np.ndarray:
    return final["shortfall_bps"] * 1e-4 * X_BTC * final["arrival_price"]


def test_twap_mean_shortfall_matches_almgren_chriss_linear_impact():
    env = ac_env(1024)
    env.seed(0)
    final, length = run_episode(env, TWAP(env), N_STEPS)
    assert (final["parent_filled_qty"] == X_BTC).all() and (length == N_STEPS).all()
    expected = GAMMA * X_BTC**2 / 2 * (1 - 1 / N_STEPS) + EPSILON * X_BTC + ETA * X_BTC**2 / (N_STEPS * TAU_S)
    cost = shortfall_usd(final)
    se = cost.std(ddof=1) / np.sqrt(len(cost))
    assert abs(cost.mean() - expected) < 4 * se, (cost.mean(), expected, se)
    assert se < 0.2 * expected  # the comparison has power
    holdings = X_BTC * (1 - np.arange(1, N_STEPS + 1) / N_STEPS)
    sd = SIGMA * np.sqrt((holdings**2).sum())  # the price risk of the schedule
    assert 0.85 < cost.std(ddof=1) / sd < 1.15


def test_twap_costs_nothing_on_average_without_impact():
    env = ac_env(1024, model="none")
    env.seed(1)
    final, _ = run_episode(env, TWAP(env), N_STEPS)
    cost = shortfall_usd(final)
    assert abs(cost.mean()) < 4 * cost.std(ddof=1) / np.sqrt(len(cost))


def test_almgren_chriss_front_loads_and_its_mean_cost_matches_the_general_formula():
    env = ac_env(1024)
    env.seed(0)
    policy = AlmgrenChriss(env, risk_aversion=5e-3)  # kappa T ~ 3: x_1 / X = sinh(2.9) / sinh(3.2), a 2.8 BTC first child
    final, _ = run_episode(env, policy, N_STEPS)
    assert (final["parent_filled_qty"] == X_BTC).all()
    first = pl.col("episode") == pl.col("episode").min().over("lane")  # it may finish early and start a second one
    per_step = (env.exchange.history.events_frame().filter((pl.col("event") == "FILL") & first)
                .group_by("lane", "step").agg(pl.col("fill_quantity").sum())
                .pivot(on="step", index="lane", values="fill_quantity", sort_columns=True).sort("lane").drop("lane").fill_null(0.0))
    schedule = per_step.to_numpy()
    n_k = schedule[0]
    assert (schedule == n_k).all(), "no faults, ABM: every lane follows the same schedule"
    assert n_k.sum() == pytest.approx(X_BTC)
    assert n_k[0] >= 2 * X_BTC / N_STEPS and n_k[: N_STEPS // 2].sum() > 0.65 * X_BTC, f"front-loaded schedule expected, got {n_k}"
    expected = GAMMA / 2 * (X_BTC**2 - (n_k**2).sum()) + EPSILON * X_BTC + ETA / TAU_S * (n_k**2).sum()
    cost = shortfall_usd(final)
    se = cost.std(ddof=1) / np.sqrt(len(cost))
    assert abs(cost.mean() - expected) < 4 * se, (cost.mean(), expected, se)
    env2 = ac_env(1024)
    env2.seed(0)
    twap_cost = shortfall_usd(run_episode(env2, TWAP(env2), N_STEPS)[0])
    assert cost.std() < 0.8 * twap_cost.std()  # less price risk, more impact: the trade-off AC optimises
    assert cost.mean() > twap_cost.mean()


def test_almgren_chriss_holdings_formula():
    n, j = 10, np.arange(11)
    assert np.allclose(ac_holdings_fraction(0.0, n, j), (n - j) / n)  # lambda -> 0: TWAP
    kt = ac_kappa_tau(np.array(1e-4), np.array(2.0), np.array(300.0), np.array(0.5), 60.0)
    x = ac_holdings_fraction(kt, n, j)
    assert np.allclose(x, np.sinh(kt * (n - j)) / np.sinh(kt * n))
    assert x[0] == pytest.approx(1.0) and x[-1] == pytest.approx(0.0) and (np.diff(x) < 0).all()
    # 2 (cosh(kappa tau) - 1) = tau^2 lambda sigma^2 / (eta - gamma tau / 2)
    assert 2 * (np.cosh(kt) - 1) == pytest.approx(60.0**2 * 1e-4 * 4.0 / (300.0 - 0.5 * 60.0 / 2))
    assert np.isfinite(ac_holdings_fraction(50.0, 100, j)).all()  # no overflow for steep schedules
    with pytest.raises(ValueError, match="eta"):
        ac_kappa_tau(np.array(1e-4), np.array(2.0), np.array(1.0), np.array(1.0), 60.0)


def test_all_at_once_fills_the_parent_in_one_step_without_faults():
    env = OrderbookVecEnv(EXEC, 4, faults=ob.FaultSpec.none(), latency=ob.LatencySpec.zero(), quantity="1")  # one bar's book holds it
    env.seed(0)
    final, length = run_episode(env, AllAtOnce(env), 3)
    assert (length == 1).all() and (final["parent_remaining_qty"] == 0).all()


def test_passive_reprices_with_limits_and_sweeps_at_the_horizon():
    env = OrderbookVecEnv(EXEC, 16, horizon=12, faults=ob.FaultSpec.none())
    env.seed(5)
    obs = env.reset()
    policy = PassiveReprice(env)
    for _ in range(12 * 4):
        obs, _, _, _ = env.step(policy.predict(obs)[0])
    ev = env.exchange.history.events_frame()
    submitted = ev.filter(pl.col("event") == "SUBMIT")
    assert (submitted["kind"] == "LIMIT").mean() > 0.5
    assert ev.filter(pl.col("event") == "CANCEL_REQUEST").height > 0, "the touch moves: some limit must be re-priced"
    fills = ev.filter(pl.col("event") == "FILL")
    assert (fills["liquidity"] == "MAKER").mean() > 0.5  # mostly filled passively
    assert audit(env.exchange) == []


class _PassiveBeforeOptions(ExecutionBaseline):
    """Reference: PassiveReprice's rule as it was before it took ``level`` and ``hysteresis_bps`` (verbatim)."""

    def _stale(self, task: ExecutionTask) -> np.ndarray:
        o, bars = task.exchange.orders, task.exchange.bars
        live = lifecycle.CANCELLABLE_TABLE[o.status]
        near = np.where((task.side == ob.Side.BUY)[:, None], sp.at(bars.bid_ticks, o.instrument), sp.at(bars.ask_ticks, o.instrument))
        return (live & (o.kind == ob.OrderKind.LIMIT) & (o.price_ticks != near)).any(axis=1)

    def act(self, task: ExecutionTask) -> np.ndarray:
        n, market_steps = task.n_lanes, 1
        left = task.horizon - task.exchange.lanes.step
        sweep, wind_down = left <= market_steps, left == market_steps + 1
        stale = self._stale(task)
        cancel = np.where(sweep | wind_down | stale, sp.CANCEL_ALL, sp.CANCEL_NONE)
        level = np.where(sweep, sp.LEVEL_MARKET, sp.LEVEL_POST_NEAR)
        send = (self._open_atoms(task) > 0) & (sweep | ~(wind_down | stale))
        return self._order(task, level, np.full(n, len(task.size_multiples)), send, cancel)


@pytest.mark.parametrize(("faults", "seed"), [(ob.FaultSpec.none(), 0), (ob.FaultSpec(), 1), (ob.FaultSpec.high(), 2)])
def test_passive_with_default_options_is_the_rule_before_them_action_for_action(faults, seed):
    horizon, episodes = 12, 3
    env = OrderbookVecEnv(EXEC, 16, horizon=horizon, faults=faults)
    new, old = PassiveReprice(env), _PassiveBeforeOptions(env)
    env.seed(seed)
    obs = env.reset()
    sent_new, sent_old, left, dones = [], [], [], 0
    for _ in range(horizon * episodes):
        left.append(new.task.horizon - new.task.exchange.lanes.step)
        sent_new.append(new.predict(obs)[0])
        sent_old.append(old.predict(obs)[0])
        obs, _, done, _ = env.step(sent_new[-1])
        dones += int(done.sum())
    sent_new, sent_old = np.stack(sent_new), np.stack(sent_old)
    np.testing.assert_array_equal(sent_new, sent_old)
    assert dones >= 16 * (episodes - 1), "whole episodes: every lane ends at least twice"
    assert (sent_new[:, :, 1] == sp.LEVEL_POST_NEAR).any() and (sent_new[:, :, 1] == sp.LEVEL_MARKET).any()
    before_wind_down = np.stack(left) > 2
    assert (sent_new[:, :, -1][before_wind_down] == sp.CANCEL_ALL).any(), "some child went stale before the wind-down"


def test_passive_refuses_bad_options_with_what_it_expected():
    with pytest.raises(ValueError, match=r"level must be post-only at the near touch \(5\) or behind it \(>= 6\), got 1"):
        PassiveReprice(level=sp.LEVEL_MARKET)
    with pytest.raises(ValueError, match=r"level must be post-only .* got 5\.0"):
        PassiveReprice(level=5.0)
    for bad in (-1.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match=r"hysteresis_bps must be a finite number >= 0, got"):
            PassiveReprice(hysteresis_bps=bad)
    env = OrderbookVecEnv(EXEC, 2, passive_bps=(2.0, 5.0))
    policy = PassiveReprice(level=sp.LEVEL_PASSIVE0 + 2)
    with pytest.raises(ValueError, match=r"level must be < 8 \(passive levels 6..7 for passive_bps \[2.0, 5.0\]\), got 8"):
        policy.attach(env)
    assert policy.task is None, "a refused attach leaves the policy unattached"
    assert PassiveReprice(env, level=sp.LEVEL_PASSIVE0 + 1).task is not None


def test_baselines_refuse_the_wrong_task_and_predict_before_attach():
    with pytest.raises(ValueError, match="Execution"):
        TWAP(OrderbookVecEnv(TRADE, 1))
    with pytest.raises(RuntimeError, match="attach"):
        TWAP().predict(np.zeros((1, 37)))
    env = OrderbookVecEnv(EXEC, 2)
    env.reset()
    with pytest.raises(ValueError, match="shape"):
        TWAP(env).predict(np.zeros((3, 37)))


def test_baselines_attach_to_the_gymnasium_vector_env_too():
    venv = make_vec(EXEC, 4, horizon=10, faults=ob.FaultSpec.none(), quantity="1")  # a parent TWAP finishes in 10 steps
    obs, info = venv.reset(seed=0)
    policy = TWAP(venv)
    for _ in range(10):
        obs, _, term, trunc, info = venv.step(policy.predict(obs)[0])
    assert term.all() and np.allclose(info["parent_filled_qty"], 1.0)
