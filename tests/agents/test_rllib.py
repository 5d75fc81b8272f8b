"""RLlib on the same core: PPO with 2 remote env runners trains, its sampled episodes replay on a single env,
each runner's history lands in its own store run; the action-mask Dict observation."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
import orderbook as ob
from agents import rllib
from orderbook.analytics.store import EpisodeStore

REPO = Path(__file__).resolve().parents[2]
HORIZON = 8


@pytest.fixture
def ray_cluster(monkeypatch):
    """A small local cluster: 2 CPUs, an 80 MB object store, its files in a fresh temporary folder (removed after),
    no token written to the home folder. One test uses it, so parallel test workers never start two."""
    import ray

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    temp = tempfile.mkdtemp(prefix="ray-")  # short: ray's socket paths must stay under ~100 characters
    env_vars = {k: os.environ[k] for k in ("PYTHONPATH", "ORDERBOOK_KERNEL_DIR") if k in os.environ}
    env_vars["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env_vars.get("PYTHONPATH")]))
    ray.init(num_cpus=2, object_store_memory=80 * 2**20, include_dashboard=False, _temp_dir=temp,
             log_to_driver=False, runtime_env={"env_vars": env_vars})
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def replay(seed: int, episodes_before: int, actions, faults=None) -> tuple[list[np.ndarray], list[float]]:
    """Observations and rewards of a single env seeded ``seed``, ``episodes_before`` episodes on, under ``actions``."""
    env = gym.make("orderbook/Execution-v0", horizon=HORIZON, max_episode_steps=HORIZON, faults=faults or ob.FaultSpec())
    obs, _ = env.reset(seed=seed)
    for _ in range(episodes_before):
        obs, _ = env.reset()
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, *_ = env.step(action)
        observations.append(obs)
        rewards.append(reward)
    return observations, rewards


@pytest.mark.slow
def test_ppo_on_rllib_runners_trains_replays_on_a_single_env_and_respects_masks(ray_cluster, tmp_path):
    """The issue's test (2 remote runners, 2 iterations, episodes equal the single env's), then the masked module."""
    two_remote_runners_train_and_their_episodes_equal_the_single_envs(tmp_path)
    the_action_masking_module_never_samples_a_masked_choice()


def two_remote_runners_train_and_their_episodes_equal_the_single_envs(tmp_path):
    args = rllib.Args(env_id="orderbook/Execution-v0", env_runners=2, envs_per_runner=2, iterations=2, seed=3,
                      horizon=HORIZON, train_batch_size=64, minibatch_size=32, epochs=1, rollout_fragment_length=16,
                      hidden=16)
    out = tmp_path / "ppo"
    algo = rllib.build_config(args, out).build_algo()
    try:
        for _ in range(args.iterations):
            result = algo.train()
        assert result["training_iteration"] == 2
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 2 * args.train_batch_size
        assert result["learners"]["default_policy"]["num_module_steps_trained_lifetime"] >= 2 * args.train_batch_size
        sampled = algo.env_runner_group.foreach_env_runner(lambda r: r.sample(num_timesteps=48), local_env_runner=False)
    finally:
        algo.stop()  # closes the runners' envs: their last flush
    episodes = [e for runner in sampled for e in runner]
    seeds, checked = set(), 0
    for episode in episodes:
        info = episode.get_infos(0)
        seeds.add(int(info["lane_seed"]))
        if episode.t_started != 0:  # a chunk of an episode begun in training: its start is not here
            continue
        observations, rewards = replay(int(info["lane_seed"]), int(info["lane_episode"]), episode.get_actions())
        assert all(np.array_equal(a, b) for a, b in zip(observations, episode.get_observations(), strict=True))
        assert rewards == [float(r) for r in episode.get_rewards()]
        checked += 1
    assert checked >= 4
    expected = {rllib.lane_seed(3, w, b) for w in (1, 2) for b in range(2)}
    assert seeds == expected  # every lane of both remote runners sampled, each with its own seed
    store = EpisodeStore(out / "history")
    assert store.runs() == ["ppo-w1", "ppo-w2"]
    table = store.runs_table()
    assert table["env_id"].to_list() == ["orderbook/Execution-v0"] * 2
    assert [sorted(s) for s in table["seeds"].to_list()] == [sorted(rllib.lane_seed(3, w, b) for b in range(2)) for w in (1, 2)]
    events = store.scan("events", run="ppo-w1").collect()
    assert events.height > 0 and events["lane"].unique().sort().to_list() == [0, 1]


def test_the_action_mask_observation_is_the_envs_mask_beside_its_observation():
    env = rllib.make_env({"env_id": "orderbook/Execution-v0", "num_envs": 3, "seed": 1, "horizon": 4, "action_mask": True,
                          "faults": "high"})
    plain = rllib.make_env({"env_id": "orderbook/Execution-v0", "num_envs": 3, "seed": 1, "horizon": 4, "faults": "high"})
    assert env.single_observation_space["action_mask"].shape == (int(np.sum(env.single_action_space.nvec)),)
    obs, info = env.reset(seed=0)
    plain_obs, _ = plain.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert env.observation_space.contains(obs)
        assert np.array_equal(obs["observations"], plain_obs)
        assert np.array_equal(obs["action_mask"], env.unwrapped.action_masks().astype(np.float32))
        assert set(np.unique(obs["action_mask"])) <= {0.0, 1.0}
        action = env.action_space.sample() if rng.random() < 0.5 else np.zeros_like(env.action_space.sample())
        obs, *_ = env.step(action)
        plain_obs, *_ = plain.step(action)


def test_a_runner_writes_its_history_to_its_own_described_run_and_the_rest_on_close(tmp_path):
    env = rllib.make_env({"env_id": "orderbook/Execution-v0", "num_envs": 2, "seed": 9, "horizon": 3,
                          "history_dir": str(tmp_path / "h"), "run": "exp"})
    rllib.runner_lanes(env).attach(2)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(7):
        env.step(env.action_space.sample())
    env.close()
    store = EpisodeStore(tmp_path / "h")
    assert store.runs() == ["exp-w2"] and store.episodes("exp-w2")[:2] == [0, 1]
    record = store.runs_table().row(0, named=True)
    assert record["env_id"] == "orderbook/Execution-v0" and record["seeds"] == [rllib.lane_seed(9, 2, b) for b in range(2)]
    assert store.read("ledger")["lane"].unique().sort().to_list() == [0, 1] and store.read("events").height > 0


def test_runner_lanes_are_seeded_from_the_run_runner_and_lane_and_tag_their_episodes(tmp_path):
    env = rllib.make_env({"env_id": "orderbook/Execution-v0", "num_envs": 2, "seed": 9, "horizon": 3})
    rllib.runner_lanes(env).attach(4)
    _, info = env.reset(seed=123)  # RLlib's own seed only triggers the seeding
    assert info["lane_seed"].tolist() == [rllib.lane_seed(9, 4, 0), rllib.lane_seed(9, 4, 1)]
    assert len({rllib.lane_seed(9, w, b) for w in range(8) for b in range(8)}) == 64
    episodes = []
    for _ in range(8):
        *_, info = env.step(np.zeros_like(env.action_space.sample()))
        episodes.append(info["lane_episode"].tolist())
    assert episodes[0] == [0, 0] and episodes[3] == [1, 1] and episodes[-1] == [2, 2]  # horizon 3, NEXT_STEP autoreset
    with pytest.raises(RuntimeError, match="after the lanes were seeded"):
        rllib.runner_lanes(env).attach(5)
    assert rllib.runner_lanes(env).keeper.store is None  # no history_dir: the current episodes only
    with pytest.raises(ValueError, match="env_id must be one of"):
        rllib.make_env({"env_id": "CartPole-v1"})
    named = rllib.make_env({"env_id": "orderbook/Execution-v0", "run": "my run/ä", "history_dir": str(tmp_path)})
    assert rllib.runner_lanes(named).keeper.run == "my-run-w0"  # a folder name made a valid run name


def the_action_masking_module_never_samples_a_masked_choice():
    args = rllib.Args(env_runners=1, envs_per_runner=4, iterations=1, seed=5, horizon=HORIZON, faults="high",
                      action_mask=True, train_batch_size=64, minibatch_size=32, epochs=1, rollout_fragment_length=16,
                      hidden=16, save_history=False)
    algo = rllib.build_config(args, None).build_algo()
    try:
        algo.train()
        sampled = algo.env_runner_group.foreach_env_runner(lambda r: r.sample(num_timesteps=96), local_env_runner=False)
    finally:
        algo.stop()
    nvec = gym.make("orderbook/Execution-v0").action_space.nvec
    offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
    masked = chosen = 0
    for episode in (e for runner in sampled for e in runner):
        observations, actions = episode.get_observations(), episode.get_actions()
        for t, action in enumerate(actions):
            mask = observations["action_mask"][t] if isinstance(observations, dict) else observations[t]["action_mask"]
            assert mask[offsets + np.asarray(action)].all(), (mask, action)
            masked += int((mask == 0).sum())
            chosen += 1
    assert chosen >= 90 and masked > 0  # masks did forbid choices, and none was taken


def test_the_cli_arguments_become_rllibs_config():
    from agents.cli import parse

    args = parse(rllib.Args, ["--env-id", "orderbook/Trading-v0", "--env-runners", "3", "--envs-per-runner", "16",
                              "--seed", "7", "--train-batch-size", "512"])
    config = rllib.build_config(args, Path("runs") / "t")
    assert (config.num_env_runners, config.num_envs_per_env_runner, config.gym_env_vectorize_mode) == (3, 16, "vector_entry_point")
    assert config.env == rllib.RLLIB_ENV and config.seed == 7 and config.train_batch_size_per_learner == 512
    assert config.env_config["env_id"] == "orderbook/Trading-v0" and config.env_config["run"] == "t"
    assert config.env_config["history_dir"] == str(Path("runs") / "t" / "history")
