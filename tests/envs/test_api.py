"""The Gymnasium API as Gymnasium and SB3 check it, registration, configuration arguments, docs."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
import orderbook as ob
from tests.envs.helpers import EXEC, TRADE, make_vec


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_gymnasium_check_env_passes_without_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every warning of the checker fails the test
        check_env(env.unwrapped)  # the raw env, as the checker recommends (a wrapped env warns)
    env.close()


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_sb3_check_env_passes_without_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_make_vec_gives_the_native_vector_env(env_id):
    venv = make_vec(env_id, 8)
    assert isinstance(venv.unwrapped, VectorEnv)
    assert type(venv.unwrapped).__module__.startswith("envs.")
    assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert venv.num_envs == 8 and venv.unwrapped.task.n_lanes == 8
    assert venv.single_action_space == gym.make(env_id).action_space
    obs, info = venv.reset(seed=0)
    assert obs.shape == (8,) + venv.single_observation_space.shape and obs.dtype == np.float32
    for key in ("fills", "rejects", "expiries", "portfolio_value", "slippage_mean_bps"):
        assert info[key].shape == (8,) and info[f"_{key}"].all()
    assert venv.unwrapped.max_episode_steps == gym.spec(env_id).max_episode_steps


def test_registered_ids_have_entry_points_and_time_limits():
    for env_id, steps in ((EXEC, 60), (TRADE, 240)):
        spec = gym.spec(env_id)
        assert spec.entry_point and spec.vector_entry_point and spec.max_episode_steps == steps


def test_module_prefixed_id_imports_the_package_itself():
    code = "import gymnasium as gym; e = gym.make('envs:orderbook/Execution-v0'); e.reset(seed=0); print(type(e.unwrapped).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ExecutionEnv"


def test_config_pieces_pass_through_make_and_make_vec():
    kwargs = dict(venues=("a", "b", "c"), faults=ob.FaultSpec.none(), fills=ob.FillSpec(participation=0.3), exchange={"slots": 8})
    env = gym.make(EXEC, **kwargs)
    cfg = env.unwrapped.task.config
    assert [v.name for v in cfg.venues] == ["a", "b", "c"] and cfg.slots == 8
    assert all(v.faults == ob.FaultSpec.none() and v.fills.participation == 0.3 for v in cfg.venues)
    assert env.action_space.nvec[0] == 3  # one venue choice per listing venue
    venv = make_vec(EXEC, 2, **kwargs)
    assert venv.unwrapped.task.config == cfg


def test_a_whole_config_with_pieces_on_top():
    base = ob.default_config(venues=("x", "y"), quotes=("USD", "USDT"))
    env = gym.make(TRADE, config=base, faults=ob.FaultSpec.high())
    cfg = env.unwrapped.task.config
    assert [v.name for v in cfg.venues] == ["x", "y"] and all(v.faults == ob.FaultSpec.high() for v in cfg.venues)
    assert env.action_space.nvec[0] == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(config="nope"), r"config as a name must be one of \('default', 'binance_us'\), got 'nope'"),
        (dict(config=3), "config must be an orderbook.ExchangeConfig"),
        (dict(config=ob.default_config(), venues=("a",)), "venues and quotes choose the default config"),
        (dict(exchange={"slot": 3}), "unknown ExchangeConfig fields"),
        (dict(faults="extreme"), r"faults as a name must be one of \('none', 'default', 'high'\), got 'extreme'"),
        (dict(faults=0.5), "faults must be an orderbook.FaultSpec, one of the names"),
        (dict(orders_per_step=9), r"orders_per_step must be an int in \[1, 4\]"),
        (dict(quote="EUR"), "no venue lists BTC/EUR"),
        (dict(quantity="0.00001"), "multiple of the lot sizes"),
        (dict(side="up"), "side must be"),
    ],
)
def test_bad_constructor_arguments_say_what_was_expected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(EXEC, **kwargs)


@pytest.mark.parametrize("cls", [envs.ExecutionEnv, envs.TradingEnv, envs.ExecutionVectorEnv, envs.TradingVectorEnv])
def test_unknown_render_mode_is_refused(cls):
    with pytest.raises(ValueError, match=r"render_mode must be None or one of \['rgb_array'\], got 'ansi'"):
        cls(render_mode="ansi")


def test_execution_refuses_a_parent_the_account_cannot_pay():
    env = gym.make(EXEC, quantity="1000")  # 1,000 BTC at ~30k: more than the 6M USD of the default account on both venues
    with pytest.raises(ValueError, match="must hold enough USD"):
        env.reset(seed=0)


@pytest.mark.parametrize("cls", [envs.ExecutionEnv, envs.TradingEnv])
def test_docstrings_follow_the_gymnasium_template(cls):
    sections = ["## Description", "## Action Space", "## Observation Space", "## Rewards", "## Starting State",
                "## Episode End", "## Arguments", "## Version History"]
    doc = cls.__doc__
    positions = [doc.index(s) for s in sections]
    assert positions == sorted(positions)


@pytest.mark.parametrize("env_id, width", [(EXEC, 37), (TRADE, 62)])
def test_observation_width_matches_the_documented_table(env_id, width):
    env = gym.make(env_id)
    assert env.observation_space.shape == (width,)
    assert len(env.unwrapped.task.obs_layout.labels) == width


@pytest.mark.parametrize("env_id, cls", [(EXEC, envs.ExecutionEnv), (TRADE, envs.TradingEnv)])
def test_docstring_observation_table_matches_the_layout(env_id, cls):
    documented = []
    for line in cls.__doc__.splitlines():
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0][:1].isdigit():
            first, _, last = cells[0].partition("-")
            low, high = (float(x) for x in cells[3].strip("[]").split(","))
            documented.append((int(first), int(last or first), cells[1], low, high))
    assert documented == gym.make(env_id).unwrapped.task.obs_layout.rows()


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_vector_env_whose_construction_failed_is_collected_quietly():
    import gc

    with pytest.raises(ValueError, match="render_mode"):
        envs.ExecutionVectorEnv(num_envs=2, render_mode="human")
    gc.collect()  # Gymnasium 1.2's VectorEnv.__del__ closes the half-built env
