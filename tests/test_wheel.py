"""A newcomer's install: the built wheel, in a fresh virtual environment with no repository and no shared folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEEL_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "orderbook", "envs", "agents")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", "*.egg-info")

IN_THE_VENV = textwrap.dedent(
    """
    import importlib.metadata, importlib.resources, json, sys
    import gymnasium as gym
    import numpy as np
    import envs, orderbook
    from orderbook.presets import binance_us_sources

    env = gym.make("orderbook/Execution-v0", data="binance_us")
    obs, info = env.reset(seed=0)
    env.action_space.seed(0)  # random actions may finish the parent early: seeded, and reset when an episode ends
    ok = [bool(env.observation_space.contains(obs))]
    rewards = []
    for _ in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        ok.append(bool(env.observation_space.contains(obs)))
        rewards.append(float(reward))
        if terminated or truncated:
            obs, info = env.reset()
    exchange = env.unwrapped.task.exchange
    dist = importlib.metadata.distribution("orderbook-gym")
    print(json.dumps({
        "orderbook": orderbook.__file__, "envs": envs.__file__,
        "sources": [str(s.data) for s in binance_us_sources()],
        "observations_ok": ok, "rewards_finite": bool(np.isfinite(rewards).all()),
        "market_rows": exchange.history.sizes()[2],
        "instruments": [i.symbol for i in exchange.config.instruments],
        "py_typed": [importlib.resources.files(p).joinpath("py.typed").is_file() for p in ("orderbook", "envs", "agents")],
        "license": any(f.name == "LICENSE" for f in dist.files),
        "sys_path": sys.path,
    }))
    """
)


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_venv_makes_and_steps_an_env_on_the_packaged_data(tmp_path):
    source, wheels, venv, work = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    for name in WHEEL_INPUTS:  # only what the wheel is built from: no build/ leftovers, no caches
        (shutil.copytree(REPO / name, source / name, ignore=JUNK) if (REPO / name).is_dir()
         else (source.mkdir(exist_ok=True), shutil.copy2(REPO / name, source / name)))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(wheels), str(source)], check=True, cwd=tmp_path, timeout=600)
    (wheel,) = wheels.glob("orderbook_gym-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet",
                    str(wheel)], check=True, cwd=tmp_path, timeout=600)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies come from this environment's site-packages: a path in a .pth file is put on sys.path,
    # but the .pth files inside it (this environment's editable install of the repository) are not run
    (site / "_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work.mkdir()
    script = work / "newcomer.py"
    script.write_text(IN_THE_VENV)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ORDERBOOK_SHARED", "PYTHONHOME")}
    env["ORDERBOOK_KERNEL_DIR"] = str(tmp_path / "kernels")  # this code's generated kernels, apart from others'
    done = subprocess.run([str(python), str(script)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(out["orderbook"]).is_relative_to(site) and Path(out["envs"]).is_relative_to(site)
    dependencies = sysconfig.get_paths()["purelib"]  # may lie inside the repository (CI's .venv): packages only
    assert not any(p != dependencies and (str(REPO) == p or p.startswith(str(REPO) + os.sep)) for p in out["sys_path"])
    assert [Path(p).parent for p in out["sources"]] == [site / "orderbook" / "data" / "binance_us"] * 3
    assert all(p.endswith(".parquet") for p in out["sources"])
    assert out["observations_ok"] == [True] * 6 and out["rewards_finite"]
    assert out["market_rows"] > 0 and sorted(out["instruments"]) == ["BTC/USD", "BTC/USDC", "BTC/USDT"]
    assert out["py_typed"] == [True, True, True] and out["license"]
