"""action_masks(): layout, what it masks, and MaskablePPO using it; PPO and A2C accept the spaces."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
import orderbook as ob
from envs import spaces as sp
from tests.envs.helpers import EXEC, TRADE, make_vec


def dims(env) -> list[np.ndarray]:
    """The flat mask split per MultiDiscrete dimension."""
    mask = env.unwrapped.action_masks()
    return np.split(mask, np.cumsum(env.action_space.nvec)[:-1])


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_mask_is_flat_bool_of_length_sum_nvec_with_a_choice_in_every_dimension(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(30):
        mask = env.unwrapped.action_masks()
        assert mask.dtype == np.bool_ and mask.shape == (int(env.action_space.nvec.sum()),)
        assert all(d.any() for d in dims(env))
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            env.reset()
    venv = make_vec(env_id, 3)
    venv.reset(seed=0)
    assert venv.unwrapped.action_masks().shape == (3, int(env.action_space.nvec.sum()))


def test_execution_masks_a_venue_that_is_down():
    env = gym.make(EXEC, faults=ob.FaultSpec.none())
    env.reset(seed=0)
    venue, level, size, cancel = dims(env)
    assert venue.all() and level.all() and size.all() and cancel.tolist() == [True, False, False]
    env.unwrapped.exchange.lanes.outage_steps_left[0, 0] = 3  # alpha down for the next two steps
    venue, level, *_ = dims(env)
    assert venue.tolist() == [False, True] and level.all()
    env.unwrapped.exchange.lanes.outage_steps_left[0, :] = 3  # every venue down: no order level but 'none'
    venue, level, *_ = dims(env)
    assert level.tolist() == [True] + [False] * 7 and venue.all()  # an irrelevant dimension keeps every choice
    env.unwrapped.exchange.lanes.outage_steps_left[0, :] = 1  # up again at the start of the next step
    assert dims(env)[0].all()


def test_trading_masks_the_instruments_of_a_venue_that_is_down():
    env = gym.make(TRADE, faults=ob.FaultSpec.none())
    env.reset(seed=0)
    env.unwrapped.exchange.lanes.outage_steps_left[0, 1] = 2
    inst = dims(env)[0]
    venue_of = env.unwrapped.task.cc.inst_venue
    assert inst.tolist() == (venue_of == 0).tolist()


def test_masks_follow_slots_funds_and_cancellable_orders():
    env = gym.make(EXEC, faults=ob.FaultSpec.none(), exchange={"slots": 2}, passive_bps=(2.0, 100.0))
    env.reset(seed=0)
    passive = [0, sp.LEVEL_PASSIVE0 + 1, 0, 0]  # a limit 100 bps behind the touch (12 one-minute sd): rests
    env.step(np.array(passive))
    assert dims(env)[3].tolist() == [True, True, True]  # something to cancel
    env.step(np.array(passive))
    assert dims(env)[1].tolist() == [True] + [False] * 7  # both slots taken
    env.step(np.array([0, 0, 0, sp.CANCEL_ALL]))
    env.step(np.array([0, 0, 0, 0]))
    assert dims(env)[1].all() and dims(env)[3].tolist() == [True, False, False]


def test_sizes_beyond_the_free_funds_are_masked():
    cfg = ob.default_config(quotes=("USD",), faults=ob.FaultSpec.none(), initial_balances={("alpha", "USD"): "5000", ("beta", "USD"): "5000", ("alpha", "BTC"): "1", ("beta", "BTC"): "1"})
    env = gym.make(EXEC, config=cfg, quantity="0.3", horizon=4)
    env.reset(seed=0)
    size = dims(env)[2]
    # slices of 0.3/4 BTC ~ 2250 USD: 0.5x, 1x and 2x fit in 5000 USD on a venue, 4x and 'all' (0.3 BTC ~ 9000 USD) do not
    assert size.tolist() == [True, True, True, False, False]


def test_maskable_ppo_learns_and_never_picks_a_masked_venue():
    from sb3_contrib import MaskablePPO

    env = gym.make(EXEC, horizon=10)
    model = MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(128)
    obs, _ = env.reset(seed=1)
    env.unwrapped.exchange.lanes.outage_steps_left[0, 1] = 5
    mask = env.unwrapped.action_masks()
    for _ in range(20):
        action, _ = model.predict(obs, action_masks=mask, deterministic=False)
        assert action[0] == 0, "beta is down: the masked policy must pick alpha"


@pytest.mark.parametrize("algo", ["PPO", "A2C"])
def test_ppo_and_a2c_accept_the_spaces(algo):
    import stable_baselines3 as sb3

    env = gym.make(TRADE, max_episode_steps=20)
    extra = {"batch_size": 16} if algo == "PPO" else {}
    model = getattr(sb3, algo)("MlpPolicy", env, n_steps=16, seed=0, device="cpu", **extra)
    model.learn(32)
    action, _ = model.predict(env.reset(seed=0)[0])
    assert env.action_space.contains(action)


def test_the_down_venue_rule_matches_the_core():
    """The mask's rule (down next step iff outage_steps_left > 1) against what the core does."""
    faults = ob.FaultSpec(0.0, 0.0, 1e12, outage_start_prob=0.2, outage_mean_steps=3.0, rate_limit_per_step=0,
                          unsolicited_cancel_prob=0.0, cancel_race_prob=0.0)
    venv = make_vec(EXEC, 64, faults=faults)
    venv.reset(seed=0)
    ex = venv.unwrapped.exchange
    refused = {0: [], 1: [], 2: []}
    for _ in range(30):
        left = np.minimum(ex.lanes.outage_steps_left[:, 0], 2)
        predicted = venv.unwrapped.action_masks()[:, 0]  # alpha allowed? (all allowed when every venue is down)
        beta_up = ex.lanes.outage_steps_left[:, 1] <= 1
        before = ex.stats.rejects_by_reason[:, ob.Reason.VENUE_DOWN].copy()
        venv.step(np.tile([0, sp.LEVEL_NEAR, 0, 0], (64, 1)))
        down = ex.stats.rejects_by_reason[:, ob.Reason.VENUE_DOWN] > before
        for k in refused:
            refused[k].extend(down[left == k].tolist())
        assert not (down & predicted & beta_up & (left > 0)).any()  # a known outage is always masked
    assert not any(refused[1]) and all(refused[2]) and 0 < np.mean(refused[0]) < 0.5
