"""The SB3 adapter: the same episodes as the native Gymnasium vector env, under SB3's conventions."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

import envs
import orderbook as ob
from agents.vec_env import OrderbookVecEnv, find_task
from tests.agents.helpers import EXEC, SHORT, gym_lanes, make_vec


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_adapter_replays_the_gymnasium_vector_env_across_autoresets(env_id):
    """Same seeds and per-lane actions: equal observations, rewards and flags. Gymnasium (NEXT_STEP)
    returns the final observation at the done step and the reset one a step later; SB3 returns the reset
    observation at the done step, with Gymnasium's final one in ``terminal_observation``."""
    n, seed = 8, 42
    ref = gym_lanes(env_id, n, steps=60, seed=seed, action_seed=5, **SHORT[env_id])
    k_max = min(len(a) for a in ref["actions"]) - 1
    venv = OrderbookVecEnv(env_id, n, **SHORT[env_id])
    venv.seed(seed)
    obs = venv.reset()
    assert np.array_equal(obs, ref["obs0"])
    episodes, dones, truncs = np.zeros(n, dtype=int), 0, 0
    for k in range(k_max):
        obs, rew, done, infos = venv.step(np.stack([ref["actions"][b][k] for b in range(n)]))
        assert isinstance(infos, list) and len(infos) == n and all(isinstance(i, dict) for i in infos)
        for b in range(n):
            term, trunc = ref["term"][b][k], ref["trunc"][b][k]
            assert rew[b] == np.float32(ref["rew"][b][k]), (b, k)
            assert done[b] == (term or trunc), (b, k)
            assert infos[b]["TimeLimit.truncated"] == (trunc and not term), (b, k)
            if done[b]:
                assert np.array_equal(infos[b]["terminal_observation"], ref["obs"][b][k]), (b, k)
                if episodes[b] < len(ref["reset_obs"][b]):
                    assert np.array_equal(obs[b], ref["reset_obs"][b][episodes[b]]), (b, k)
                episodes[b] += 1
                dones += 1
                truncs += infos[b]["TimeLimit.truncated"]
            else:
                assert "terminal_observation" not in infos[b]
                assert np.array_equal(obs[b], ref["obs"][b][k]), (b, k)
    assert dones >= 2 * n, "the rollout must cross several autoresets"
    assert truncs > 0, "some episode must end by truncation alone"


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_seeds_0_0_1_give_equal_equal_different(env_id):
    def run(seed):
        venv = OrderbookVecEnv(env_id, 4, **SHORT[env_id])
        venv.seed(seed)
        out = [venv.reset()]
        rng = np.random.default_rng(0)
        for _ in range(20):
            acts = np.stack([rng.integers(0, venv.action_space.nvec) for _ in range(4)])
            obs, rew, done, _ = venv.step(acts)
            out += [obs, rew, done]
        return out

    a, b, c = run(0), run(0), run(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_seed_gives_lane_b_the_seed_plus_b_and_is_used_once():
    venv = OrderbookVecEnv(EXEC, 3)
    assert venv.seed(10) == [10, 11, 12]
    first = venv.reset()
    assert venv.exchange.lane_seed.tolist() == [10, 11, 12]
    ref = make_vec(EXEC, 3)
    assert np.array_equal(first, ref.reset(seed=10)[0])
    assert venv._seeds == [None, None, None]


def test_env_method_get_attr_set_attr_have_one_row_per_lane():
    venv = OrderbookVecEnv(EXEC, 5)
    venv.seed(0)
    venv.reset()
    masks = venv.env_method("action_masks")
    assert len(masks) == 5 and all(np.array_equal(m, r) for m, r in zip(masks, venv.task.action_masks()))
    assert venv.has_attr("action_masks")
    assert len(venv.env_method("action_masks", indices=[1, 3])) == 2
    assert venv.get_attr("horizon") == [60] * 5  # a (B,) task array, one entry per lane
    assert venv.get_attr("penalty_bps", indices=[0, 1]) == [50.0, 50.0]  # a scalar, repeated
    venv.set_attr("penalty_bps", 10.0)
    assert venv.task.penalty_bps == 10.0
    venv.set_attr("horizon", 5, indices=[2])
    assert venv.task.horizon.tolist() == [60, 60, 5, 60, 60]
    assert venv.env_is_wrapped(object) == [False] * 5
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_attribute")
    assert venv.render_mode is None
    with pytest.warns(UserWarning, match="render_mode"):
        assert venv.render() is None


def test_render_tiles_one_picture_per_lane():
    venv = OrderbookVecEnv(EXEC, 2, render_mode="rgb_array", horizon=4)
    venv.reset()
    venv.step(np.array([[0, 1, 1, 0], [1, 3, 4, 0]]))
    img = venv.render()
    assert img is not None and img.ndim == 3 and img.shape[2] == 3


def test_observations_and_terminal_observations_are_fresh_arrays():
    venv = OrderbookVecEnv(EXEC, 2, horizon=1)
    venv.seed(0)
    obs = venv.reset()
    before = obs.copy()
    obs2, _, done, infos = venv.step(np.array([[0, 1, 4, 0], [1, 1, 4, 0]]))
    assert done.all()  # horizon 1: every lane ends after one step
    assert np.array_equal(obs, before)
    term = infos[0]["terminal_observation"]
    term_before = term.copy()
    venv.step(np.array([[0, 1, 4, 0], [1, 1, 4, 0]]))
    assert np.array_equal(term, term_before) and not np.shares_memory(obs2, term)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_vecmonitor_and_vecnormalize_wrap_the_adapter(env_id):
    raw = OrderbookVecEnv(env_id, 4, **SHORT[env_id])
    env = VecNormalize(VecMonitor(raw), norm_obs=True, norm_reward=True)
    env.seed(3)
    obs = env.reset()
    assert obs.shape == (4, raw.observation_space.shape[0])
    episodes = []
    rng = np.random.default_rng(1)
    for _ in range(30):
        obs, rew, done, infos = env.step(np.stack([rng.integers(0, raw.action_space.nvec) for _ in range(4)]))
        assert np.isfinite(obs).all() and np.isfinite(rew).all()
        episodes += [i["episode"] for i, d in zip(infos, done) if d]
    assert len(episodes) >= 4 and all(ep["l"] <= SHORT[env_id]["max_episode_steps"] for ep in episodes)
    assert len(env.env_method("action_masks")) == 4  # forwarded through both wrappers
    assert find_task(env) is raw.task


def test_bad_arguments_raise_before_anything_runs():
    with pytest.raises(ValueError, match="num_envs"):
        OrderbookVecEnv(EXEC, 0)
    with pytest.raises(ValueError, match="render_mode"):
        OrderbookVecEnv(EXEC, 1, render_mode="human")
    with pytest.raises(ValueError, match="vector entry point"):
        OrderbookVecEnv("CartPole-v1", 1)
    venv = OrderbookVecEnv(EXEC, 2)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros((2, 4), dtype=np.int64))
    venv.reset()
    with pytest.raises(Exception, match="shape"):
        venv.step(np.zeros((3, 4), dtype=np.int64))
    venv.set_options({"horizon": 0})
    with pytest.raises(ValueError, match="horizon"):
        venv.reset()


def test_reset_options_apply_to_every_lane():
    venv = OrderbookVecEnv(EXEC, 3)
    venv.set_options({"horizon": 7, "side": "sell"})
    venv.reset()
    assert venv.task.horizon.tolist() == [7, 7, 7] and (venv.task.side == ob.Side.SELL).all()


def test_info_keys_choose_the_figures_copied_into_each_lane_dict():
    lean = OrderbookVecEnv(EXEC, 3, info_keys=(), horizon=1)
    some = OrderbookVecEnv(EXEC, 3, info_keys=("shortfall_bps",), horizon=1)
    for venv in (lean, some):
        venv.seed(0)
        venv.reset()
    acts = np.array([[0, 1, 4, 0]] * 3)
    _, _, done, infos = lean.step(acts)
    assert done.all() and all(set(i) == {"TimeLimit.truncated", "terminal_observation"} for i in infos)
    assert set(lean.step_info) >= {"shortfall_bps", "rejects"}  # the arrays keep every figure
    _, _, _, infos = some.step(acts)
    assert [i["shortfall_bps"] for i in infos] == some.step_info["shortfall_bps"].tolist()
    with pytest.raises(ValueError, match="info_keys"):
        OrderbookVecEnv(EXEC, 1, info_keys=("no_such_figure",))


def test_refused_reset_changes_nothing_and_seeds_never_overflow():
    from tests.envs.helpers import assert_same, snapshot

    venv = OrderbookVecEnv(EXEC, 4, horizon=6)
    venv.seed(0)
    venv.reset()
    venv.step(np.zeros((4, len(venv.single_action_space.nvec)), dtype=np.int64))
    before = snapshot(venv)
    venv.seed(2**63 - 2)  # lanes 2 and 3 would pass 2**63 - 1
    with pytest.raises(ValueError, match=r"seeds must be 4 ints in \[0, 9223372036854775807\] \(one per lane\)"):
        venv.reset()
    assert_same(before, snapshot(venv))
    venv.set_options({"quantity": "1000000"})  # more than the account holds: refused after the core's reset began
    venv.seed(1)
    with pytest.raises(ValueError, match="must hold enough USD"):
        venv.reset()
    assert_same(before, snapshot(venv))


def test_history_of_the_adapter_is_bounded_and_can_keep_two_episodes():
    """Same-step reset: with history=2 the episode that just ended is still there after step_wait."""
    venv = OrderbookVecEnv(EXEC, 3, horizon=4, history=2)
    venv.seed(0)
    venv.reset()
    keeper = venv.task.keeper
    keeper.min_rows = keeper.limit = 100  # drops come early
    for _ in range(40):
        _, _, done, _ = venv.step(np.tile([0, 1, 1, 0], (3, 1)))
        ledger = venv.exchange.history.ledger_frame()
        current = venv.exchange.lanes.episode
        for b in np.flatnonzero(done):
            assert (ledger.filter(ledger["lane"] == b)["episode"] == current[b] - 1).any()
    assert keeper.drops > 0 and keeper.rows() <= keeper.limit + 3 * (18 * 64 + 3 * 4 + 2)
