"""Seeds replay bit for bit; lane b of the native vector env equals a single env seeded with lane b's seed."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import envs
from tests.envs.helpers import EXEC, TRADE, make_vec

SHORT = {EXEC: dict(horizon=8), TRADE: dict(max_episode_steps=8)}  # several episodes within a short rollout


def rollout(env_id: str, seed: int, actions: np.ndarray, **kwargs) -> list:
    """(obs, reward, terminated, truncated, info) of every step, resetting (unseeded) after each episode."""
    env = gym.make(env_id, **kwargs)
    out = [env.reset(seed=seed)]
    done = False
    for a in actions:
        if done:
            out.append(env.reset())
            done = False
            continue
        step = env.step(a)
        done = step[2] or step[3]
        out.append(step)
    return out


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_seeds_0_0_1_give_equal_equal_different(env_id):
    space = gym.make(env_id).action_space
    space.seed(7)
    actions = np.stack([space.sample() for _ in range(40)])
    a, b, c = (rollout(env_id, s, actions, **SHORT[env_id]) for s in (0, 0, 1))
    assert data_equivalence(a, b, exact=True)
    assert not data_equivalence(a, c)
    assert not data_equivalence([x[0] for x in a[1:]], [x[0] for x in c[1:]])  # the observations themselves differ


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_lane_b_of_make_vec_64_equals_make_seeded_with_its_seed(env_id):
    n, seed, steps = 64, 1000, 20
    venv = make_vec(env_id, n, **SHORT[env_id])
    venv.action_space.seed(3)
    actions = np.stack([venv.action_space.sample() for _ in range(steps)])
    obs0, _ = venv.reset(seed=seed)
    batch = [venv.step(a) for a in actions]
    assert sum(int(x[2].sum() + x[3].sum()) for x in batch) > 0, "the rollout must cross an autoreset"
    for b in (0, 1, 31, 63):
        single = rollout(env_id, seed + b, actions[:, b], **SHORT[env_id])
        assert data_equivalence(single[0][0], obs0[b], exact=True)
        for t, (obs, rew, term, trunc, _) in enumerate(batch):
            s = single[t + 1]
            if len(s) == 2:  # the single env was reset where the vector env autoreset: reward 0, flags False
                s = (s[0], 0.0, False, False, None)
            assert data_equivalence(s[0], obs[b], exact=True), f"lane {b} step {t}: observations differ"
            assert s[1] == rew[b] and s[2] == term[b] and s[3] == trunc[b], f"lane {b} step {t}"


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_a_list_of_seeds_seeds_each_lane_as_a_single_env_and_a_wrong_length_changes_nothing(env_id):
    seeds = [11, 5_000_000, 3]
    venv = make_vec(env_id, 3, **SHORT[env_id])
    obs, _ = venv.reset(seed=seeds)
    venv.action_space.seed(1)
    actions = np.stack([venv.action_space.sample() for _ in range(6)])
    batch = [venv.step(a)[0] for a in actions]
    for b, seed in enumerate(seeds):
        single = rollout(env_id, seed, actions[:, b], **SHORT[env_id])
        assert data_equivalence(single[0][0], obs[b], exact=True)
        assert all(data_equivalence(single[t + 1][0], o[b], exact=True) for t, o in enumerate(batch))
    before = venv.unwrapped.exchange.lanes.step.copy()
    with pytest.raises(ValueError, match="one per lane"):
        venv.reset(seed=[1, 2])
    assert (venv.unwrapped.exchange.lanes.step == before).all()


def test_next_step_autoreset_returns_the_first_observation_and_ignores_the_action():
    venv = make_vec(EXEC, 2, horizon=3)
    venv.reset(seed=5)
    market_order = np.array([[0, 1, 1, 0], [0, 1, 1, 0]])
    for _ in range(3):
        _, _, term, trunc, _ = venv.step(market_order)
    assert term.all()  # the horizon passed
    orders_before = venv.unwrapped.exchange.stats.counters[:, 0].copy()  # orders sent this episode
    obs, rew, term, trunc, info = venv.step(market_order)
    assert (rew == 0).all() and not term.any() and not trunc.any()
    assert (info["step"] == 0).all() and (info["parent_filled_qty"] == 0).all()
    fresh = make_vec(EXEC, 2, horizon=3)
    first, _ = fresh.reset(seed=5)
    assert obs.shape == first.shape and (obs[:, -4:] == first[:, -4:]).all()  # parent block back to its start
    assert orders_before.sum() == 6 and venv.unwrapped.exchange.stats.counters[:, 0].sum() == 0


def test_vector_truncation_from_max_episode_steps():
    venv = make_vec(TRADE, 3, max_episode_steps=4)
    venv.reset(seed=0)
    none = np.zeros((3, venv.single_action_space.shape[0]), dtype=np.int64)
    flags = [venv.step(none)[3].copy() for _ in range(5)]
    assert [f.all() for f in flags] == [False, False, False, True, False]


def test_random_side_is_keyed_by_seed_and_episode():
    venv = make_vec(EXEC, 64, side="random")
    venv.reset(seed=0)
    sides = venv.unwrapped.task.side.copy()
    assert set(np.unique(sides)) == {-1, 1}
    env = gym.make(EXEC, side="random")
    for b in (0, 17, 63):
        env.reset(seed=b)
        assert env.unwrapped.task.side[0] == sides[b]


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_native_vector_env_equals_gymnasium_sync_vector_env(env_id):
    native = make_vec(env_id, 4, **SHORT[env_id])
    sync = gym.make_vec(env_id, num_envs=4, vectorization_mode="sync", **SHORT[env_id])
    native.action_space.seed(5)
    actions = [native.action_space.sample() for _ in range(20)]
    assert data_equivalence(native.reset(seed=9)[0], sync.reset(seed=9)[0], exact=True)
    for a in actions:
        n, s = native.step(a), sync.step(a)
        assert all(data_equivalence(x, y, exact=True) for x, y in zip(n[:4], s[:4]))
        assert data_equivalence(n[4]["portfolio_value"], s[4]["portfolio_value"], exact=True)
