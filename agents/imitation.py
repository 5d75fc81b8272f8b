"""Behaviour cloning: start an SB3 policy from a baseline's actions before PPO improves on it.

    python -m agents.train --imitate passive --imitate-steps 65536 ...

:func:`record` rolls a baseline of :mod:`agents.baselines` through the very env the
training uses (``OrderbookVecEnv -> VecMonitor -> [DriftControl] -> VecNormalize``,
``VecNormalize`` in training mode), so the running observation and return statistics
PPO then keeps are warmed on the baseline's states. It keeps the raw observation each
action was taken on, the action, the raw (possibly drift-controlled) reward and the
episode ends; at the end everything is normalised with the statistics as they stand
then (the ones PPO starts from): observations with ``normalize_obs``, rewards with
``normalize_reward``, and discounted returns ``G_t = r_t + gamma G_{t+1}`` summed back
from each episode's end. Steps of an episode still running when the recording stops,
or cut by ``max_episode_steps`` (truncated, so its return would need a bootstrap),
have no return and are left out of the value fit only. The demonstration episodes are
the training env's first episodes, so a run that saves its history keeps them in it too.

:func:`fit` fits the policy by maximum likelihood of the baseline's MultiDiscrete
actions (``policy.evaluate_actions``: the sum of every dimension's log-probability)
and the value head on those returns (mean squared error), with its own Adam optimizer
on shuffled minibatches, so PPO's first updates start from the baseline's behaviour
and a critic of that behaviour rather than a random one; PPO's own optimizer is left
untouched. :func:`warm_start` does both on a model and its env.

Cost at 256 lanes: recording 65,536 steps takes 1-4 s (the baseline and the env step the
batch together), 30 epochs of minibatches of 2,048 7-20 s (one torch thread, alone or sharing
the box). What the fit gets right on held-out steps of passive (256 lanes, seed 0): level and
cancel 99.9-100%; the venue (the one with the better far touch, which the observation shows only
through each venue's returns and spread) 74% after 10 epochs at Adam's 1e-3, 95% after 30, 98.5%
after 30 at 3e-3 (the default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from stable_baselines3.common.vec_env import VecNormalize

from agents.baselines import EXECUTION_BASELINES, TRADING_BASELINES, Baseline, RandomPolicy
from agents.vec_env import find_task
from envs.execution import ExecutionTask

Imitate = Literal["none", "twap", "almgren_chriss", "passive", "all_at_once", "random", "buy_and_hold", "hold_cash"]
IMITATE_CHOICES = get_args(Imitate)  # the CLI's --imitate values: none, or a baseline of the env (checked against the env's own)
assert set(IMITATE_CHOICES) == {"none", *EXECUTION_BASELINES, *TRADING_BASELINES}, "Imitate must list every baseline"


def baseline_names(env_id: str) -> tuple[str, ...]:
    """The baselines ``--imitate`` may name for ``env_id``."""
    return tuple(EXECUTION_BASELINES if env_id.endswith("Execution-v0") else TRADING_BASELINES)


def make_baseline(name: str, env: Any, seed: int = 0) -> Baseline:
    """Baseline ``name`` attached to ``env``; ``ValueError`` naming the env's baselines for any other name."""
    table = EXECUTION_BASELINES if isinstance(find_task(env), ExecutionTask) else TRADING_BASELINES
    if name not in table:
        raise ValueError(f"imitate must be one of {tuple(table)} for this env, got {name!r}")
    cls = table[name]
    return cls(env, seed=seed) if cls is RandomPolicy else cls(env)


@dataclass
class Demonstrations:
    """What a baseline did, normalised as the policy sees it. ``obs`` ``(N, obs_dim)`` float32, ``actions``
    ``(N, n_dims)`` int64, ``returns`` ``(N,)`` float32 (discounted, normalised rewards; ``nan`` where the
    episode did not end within the recording or was truncated), ``episodes`` the episodes that ended."""

    obs: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    episodes: int

    def __len__(self) -> int:
        return len(self.actions)


def discounted_returns(rewards: np.ndarray, ends: np.ndarray, valid_end: np.ndarray, gamma: float) -> np.ndarray:
    """``(T, B)`` returns ``G_t = r_t + gamma G_{t+1}`` within each lane's episodes (an episode ends at a step with
    ``ends`` true); ``nan`` for steps whose episode does not end within the ``T`` steps, or ends at a step whose
    ``valid_end`` is false (truncated: its return would need a bootstrap the recording does not have)."""
    rewards, ends, valid_end = (np.asarray(x) for x in (rewards, ends, valid_end))
    if not (rewards.shape == ends.shape == valid_end.shape and rewards.ndim == 2):
        raise ValueError(f"rewards, ends and valid_end must be (T, B) arrays of one shape, got {rewards.shape}, {ends.shape}, {valid_end.shape}")
    out = np.full(rewards.shape, np.nan, dtype=np.float64)
    running = np.zeros(rewards.shape[1], dtype=np.float64)
    known = np.zeros(rewards.shape[1], dtype=bool)  # the lane's current episode (read backwards) has an end we trust
    for t in range(rewards.shape[0] - 1, -1, -1):
        end = ends[t].astype(bool)
        known = np.where(end, valid_end[t].astype(bool), known)
        running = rewards[t] + gamma * np.where(end, 0.0, running)
        out[t] = np.where(known, running, np.nan)
    return out


def record(venv: VecNormalize, baseline: str, steps: int, gamma: float, seed: int = 0) -> Demonstrations:
    """Roll ``baseline`` through ``venv`` for at least ``steps`` env steps (summed over lanes) from a reset;
    the demonstrations normalised with ``venv``'s statistics after the rollout (see the module docstring).

    ``venv`` must be a ``VecNormalize`` (its statistics update as it runs, as they do in training)."""
    if not isinstance(venv, VecNormalize):
        raise ValueError(f"record needs the training's VecNormalize env, got {type(venv).__name__}")
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    policy = make_baseline(baseline, venv, seed=seed)
    n = venv.num_envs
    rounds = -(-int(steps) // n)
    obs_raw, acts, rews, ends, valid = [], [], [], [], []
    obs = venv.reset()
    for _ in range(rounds):
        obs_raw.append(venv.get_original_obs().copy())
        action = policy.predict(obs)[0]
        obs, _, done, infos = venv.step(action)
        acts.append(action)
        rews.append(venv.get_original_reward().copy())
        ends.append(done.copy())
        valid.append(np.array([not (d and info.get("TimeLimit.truncated", False)) for d, info in zip(done, infos)]))
    raw = np.stack(obs_raw)  # (T, B, D)
    rewards = venv.normalize_reward(np.stack(rews).astype(np.float64))
    returns = discounted_returns(rewards, np.stack(ends), np.stack(valid), gamma)
    return Demonstrations(obs=venv.normalize_obs(raw.reshape(rounds * n, -1)).astype(np.float32),
                          actions=np.stack(acts).reshape(rounds * n, -1).astype(np.int64),
                          returns=returns.reshape(-1).astype(np.float32), episodes=int(np.stack(ends).sum()))


def greedy_actions(policy, obs: np.ndarray) -> np.ndarray:
    """The policy's most likely action for each normalised observation row."""
    with torch.no_grad():
        out = policy._predict(torch.as_tensor(obs, device=policy.device), deterministic=True)
    return out.cpu().numpy().reshape(len(obs), -1).astype(np.int64)


def agreement(policy, demo: Demonstrations) -> float:
    """Share of the demonstrations where the policy's greedy action equals the baseline's in every dimension."""
    return float((greedy_actions(policy, demo.obs) == demo.actions).all(axis=1).mean())


def value_mse(policy, demo: Demonstrations) -> float:
    """Mean squared error of the policy's value head against the demonstrations' returns (rows that have one)."""
    has = np.isfinite(demo.returns)
    with torch.no_grad():
        values = policy.predict_values(torch.as_tensor(demo.obs[has], device=policy.device)).cpu().numpy().ravel()
    return float(np.mean((values - demo.returns[has]) ** 2))


def fit(policy, demo: Demonstrations, epochs: int = 30, batch_size: int = 2048, learning_rate: float = 3e-3,
        vf_coef: float = 1.0, seed: int = 0) -> dict[str, list[float]]:
    """Maximum likelihood of ``demo.actions`` and least squares of ``demo.returns`` (rows that have one) for an SB3
    actor-critic policy, ``epochs`` passes of shuffled minibatches with a fresh Adam; per epoch, the mean negative
    log-likelihood per step (``policy_nll``) and the value head's mean squared error (``value_mse``)."""
    if not (isinstance(epochs, int) and epochs >= 1 and isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"epochs and batch_size must be ints >= 1, got {epochs!r} and {batch_size!r}")
    if len(demo) == 0:
        raise ValueError("no demonstrations to fit")
    device = policy.device
    obs = torch.as_tensor(demo.obs, device=device)
    acts = torch.as_tensor(demo.actions, device=device)
    rets = torch.as_tensor(np.nan_to_num(demo.returns, nan=0.0), device=device)
    has_ret = torch.as_tensor(np.isfinite(demo.returns), device=device)
    opt = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    policy.set_training_mode(True)
    history: dict[str, list[float]] = {"policy_nll": [], "value_mse": []}
    for _ in range(epochs):
        order = torch.randperm(len(demo), generator=gen).to(device)
        nll_sum = mse_sum = 0.0
        n_ret = 0
        for start in range(0, len(demo), batch_size):
            idx = order[start:start + batch_size]
            values, log_prob, _ = policy.evaluate_actions(obs[idx], acts[idx])
            mask = has_ret[idx]
            err = (values.flatten() - rets[idx])[mask]
            nll = -log_prob.mean()
            mse = (err**2).mean() if len(err) else torch.zeros((), device=device)
            opt.zero_grad()
            (nll + vf_coef * mse).backward()
            opt.step()
            nll_sum += float(nll.detach()) * len(idx)
            mse_sum += float((err.detach()**2).sum())
            n_ret += int(mask.sum())
        history["policy_nll"].append(nll_sum / len(demo))
        history["value_mse"].append(mse_sum / max(n_ret, 1))
    policy.set_training_mode(False)
    return history


def warm_start(model, venv: VecNormalize, baseline: str, steps: int, gamma: float, epochs: int = 30,
               batch_size: int = 2048, seed: int = 0) -> dict[str, Any]:
    """Record ``steps`` of ``baseline`` on ``venv`` and fit ``model.policy`` to them (:func:`record`, :func:`fit`);
    a summary: steps, episodes, seconds, the first and last epoch's losses and the greedy agreement on a
    held-out tenth of the recorded rows (the fit uses the other nine tenths)."""
    t0 = time.perf_counter()
    demo = record(venv, baseline, steps, gamma, seed=seed)
    t1 = time.perf_counter()
    rng = np.random.default_rng(seed)
    held = rng.random(len(demo)) < 0.1
    take = lambda m: Demonstrations(demo.obs[m], demo.actions[m], demo.returns[m], demo.episodes)  # noqa: E731
    history = fit(model.policy, take(~held), epochs=epochs, batch_size=batch_size, seed=seed)
    t2 = time.perf_counter()
    return {"baseline": baseline, "steps": len(demo), "episodes": demo.episodes, "record_seconds": round(t1 - t0, 2),
            "fit_seconds": round(t2 - t1, 2), "policy_nll": [round(history["policy_nll"][0], 4), round(history["policy_nll"][-1], 4)],
            "value_mse": [round(history["value_mse"][0], 4), round(history["value_mse"][-1], 4)],
            "held_out_agreement": round(agreement(model.policy, take(held)), 4)}
