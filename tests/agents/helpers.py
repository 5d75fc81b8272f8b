"""Builders shared by the agent tests: envs, aligned rollouts, the Almgren-Chriss config, mask checks."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import envs
import orderbook as ob
from agents.vec_env import OrderbookVecEnv
from tests.orderbook.helpers import almgren_chriss_config

EXEC, TRADE = envs.ENV_IDS
# short episodes ending every way: fills (termination), horizon (both flags), max_episode_steps (truncation)
SHORT = {EXEC: dict(horizon=8, max_episode_steps=6, faults=ob.FaultSpec.high()),
         TRADE: dict(max_episode_steps=7, faults=ob.FaultSpec.high())}

# Almgren-Chriss check: the core test's market (tests/orderbook/engine/test_impact.py), as an env config.
X_BTC, N_STEPS, TAU_S = 10, 10, 60.0
GAMMA, EPSILON, ETA, SIGMA = 0.5, 1.0, 300.0, 10.0


def make_vec(env_id: str, n: int, **kwargs) -> gym.vector.VectorEnv:
    return gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)


def gym_lanes(env_id: str, n: int, steps: int, seed: int, action_seed: int, **kwargs) -> dict:
    """Run the native (NEXT_STEP) vector env on random actions and split what each lane lived through.

    Per lane ``b``: ``actions[b]``, ``obs[b]``, ``rew[b]``, ``term[b]``, ``trunc[b]`` of the steps that
    acted (not the autoreset steps, whose action is ignored), and ``reset_obs[b]``, the first
    observation of every later episode.
    """
    venv = make_vec(env_id, n, **kwargs)
    venv.action_space.seed(action_seed)
    obs0, _ = venv.reset(seed=seed)
    keys = ("actions", "obs", "rew", "term", "trunc", "reset_obs")
    out = {k: [[] for _ in range(n)] for k in keys}
    prev_done = np.zeros(n, dtype=bool)
    for _ in range(steps):
        acts = venv.action_space.sample()
        obs, rew, term, trunc, _ = venv.step(acts)
        for b in range(n):
            if prev_done[b]:
                assert rew[b] == 0.0 and not term[b] and not trunc[b]
                out["reset_obs"][b].append(obs[b])
            else:
                for k, v in zip(keys, (acts[b], obs[b], rew[b], term[b], trunc[b])):
                    out[k][b].append(v)
        prev_done = term | trunc
    out["obs0"] = obs0
    return out


def flat_offsets(nvec: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(nvec)[:-1]])


def assert_inside_masks(actions: np.ndarray, masks: np.ndarray, nvec: np.ndarray, who: str) -> None:
    """Every choice of every lane is allowed by the flat per-dimension mask."""
    assert actions.shape == (masks.shape[0], len(nvec)) and actions.dtype.kind == "i", (who, actions.shape, actions.dtype)
    assert ((actions >= 0) & (actions < nvec)).all(), f"{who}: action outside the space: {actions}"
    ok = masks[np.arange(len(actions))[:, None], flat_offsets(nvec)[None, :] + actions]
    bad = np.argwhere(~ok)
    assert not len(bad), f"{who}: lane {bad[0][0]} chose a masked value in dimension {bad[0][1]}: {actions[bad[0][0]]}"


def ac_config(model: str = "linear") -> ob.ExchangeConfig:
    """Costs are only the linear impacts (the core's version: tests/orderbook/engine/test_impact.py)."""
    params = dict(gamma=GAMMA, epsilon=EPSILON, eta=ETA) if model == "linear" else {}
    return almgren_chriss_config(model, sigma=SIGMA, step_s=TAU_S, **params)


def ac_env(n: int, model: str = "linear") -> OrderbookVecEnv:
    return OrderbookVecEnv(EXEC, n, config=ac_config(model), quantity=str(X_BTC), horizon=N_STEPS, side="buy",
                           max_episode_steps=N_STEPS)
