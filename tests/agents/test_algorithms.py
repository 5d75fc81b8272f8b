"""PPO, A2C and MaskablePPO learn on both envs through the adapter, wrapped in VecMonitor and VecNormalize,
and a saved model with its normalisation statistics predicts the same after loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

import envs
from agents.common import algorithm
from agents.vec_env import OrderbookVecEnv
from tests.agents.helpers import EXEC, SHORT, assert_inside_masks

torch.set_num_threads(1)
SMALL = dict(policy_kwargs=dict(net_arch=[16, 16]), learning_rate=1e-3)
ALGO_KWARGS = {"PPO": dict(n_steps=32, batch_size=64, n_epochs=2), "A2C": dict(n_steps=8),
               "MaskablePPO": dict(n_steps=32, batch_size=64, n_epochs=2)}


def wrapped(env_id: str, n: int = 4) -> tuple[OrderbookVecEnv, VecNormalize]:
    raw = OrderbookVecEnv(env_id, n, **SHORT[env_id])
    return raw, VecNormalize(VecMonitor(raw), norm_obs=True, norm_reward=True)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
@pytest.mark.parametrize("algo", ["PPO", "A2C", "MaskablePPO"])
def test_short_learn_then_save_load_round_trip(env_id, algo, tmp_path):
    raw, env = wrapped(env_id)
    model = algorithm(algo)("MlpPolicy", env, seed=0, device="cpu", **SMALL, **ALGO_KWARGS[algo])
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters())), "learn() must update the policy"
    assert len(model.ep_info_buffer) > 0, "VecMonitor must report finished episodes"
    model.save(tmp_path / "model.zip")
    env.save(str(tmp_path / "vecnormalize.pkl"))

    env.training = False  # the statistics stay as saved
    obs = env.reset()
    masks = get_action_masks(env) if algo == "MaskablePPO" else None
    extra = {"action_masks": masks} if masks is not None else {}
    actions, _ = model.predict(obs, deterministic=True, **extra)
    raw_obs = env.get_original_obs()

    raw2 = OrderbookVecEnv(env_id, 4, **SHORT[env_id])
    env2 = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), raw2)
    env2.training, env2.norm_reward = False, False
    loaded = algorithm(algo).load(tmp_path / "model.zip", device="cpu")
    assert np.allclose(env2.normalize_obs(raw_obs), env.normalize_obs(raw_obs))
    actions2, _ = loaded.predict(env2.normalize_obs(raw_obs), deterministic=True, **extra)
    assert np.array_equal(actions, actions2)
    if algo == "MaskablePPO":
        assert_inside_masks(actions, masks, raw.action_space.nvec, algo)


def test_maskable_ppo_only_samples_allowed_actions_during_rollouts():
    raw, env = wrapped(EXEC, 4)
    model = algorithm("MaskablePPO")("MlpPolicy", env, seed=1, device="cpu", **SMALL, **ALGO_KWARGS["MaskablePPO"])
    obs = env.reset()
    for _ in range(40):
        masks = get_action_masks(env)
        actions, _ = model.predict(obs, deterministic=False, action_masks=masks)
        assert_inside_masks(actions, masks, raw.action_space.nvec, "MaskablePPO")
        obs, _, _, _ = env.step(actions)
