"""Steps/s of our envs next to two peer trading envs on one synthetic price series (issue 7).

    python benchmarks/peers.py [--rounds 5] [--seconds 1.0] [--bars 100000]

Peers (installed by the ``bench`` extra, ``pip install -e '.[bench]'``):

- ``gym-anytrading`` (``stocks-v0``: ``StocksEnv``, window 30, Discrete(2) sell/buy);
- ``gym-trading-env`` (``TradingEnv``: positions [0, 1], no window, 5 static features).

Both installed from PyPI into gymnasium 1.4 / numpy 2.x / pandas 3.x and run
there (checked 2026-11). A peer that does not install or import is reported in the
output and skipped; nothing pins old numpy.

The series is a GBM of ``--bars`` one-minute bars (numpy, seed 0, start 30,000,
0.08% per bar), as each one wants it: ``Open/High/Low/Close/Volume`` on a
DatetimeIndex for gym-anytrading, ``open/high/low/close/volume`` plus
``feature_*`` columns for gym-trading-env, and for our envs the same bars as
``BTC/USD``, ``BTC/USDT`` and ``BTC/USDC`` of one data venue replayed on both
config venues (``ReplayMarket``, 240-step windows at random starts).

Contenders: every peer as a single env (``gym.make``, random actions, reset when
done) and under ``gymnasium.vector.SyncVectorEnv`` with 8 and 64 copies; our
``orderbook/Execution-v0`` and ``orderbook/Trading-v0`` from ``gym.make`` (with the
wrappers it adds) and from ``gym.make_vec(..., vectorization_mode="vector_entry_point")``
with 8, 64 and 1,024 lanes. Actions are random and valid (``action_space.sample()``;
every in-range MultiDiscrete action is valid for ours), drawn before timing and
cycled. Every contender is warmed up first (our numba kernels compile on first use,
and the warm-up runs past an episode end so the reset paths are hot too). Each
round runs every contender for ``--seconds``, in an order rotated round by round;
the table gives the median env-steps/s over rounds and the median over rounds of
the ratio to gym-anytrading's single env taken within each round (the machine may
be shared: read the ratios).

Not like for like: a peer step reads the next bar of an array and updates a
position; ours runs an order-management core (orders, latency, fills, faults,
balances, history) on six instruments. The peers' episodes are the whole series
(100k steps), so they hardly ever reset while timed; ours reset every 60
(Execution) or 240 (Trading) steps.

gym-trading-env runs ``warnings.filterwarnings("error")`` when imported (every
warning in the process becomes an exception); the script restores the filters
after importing it, so the other contenders run under the usual ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as md
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

import envs
from orderbook import ReplayMarket
from orderbook.market.bars import BarSource, load_bars

BASELINE = "gym-anytrading single"


# --------------------------------------------------------------------------- the series


def gbm_bars(n_bars: int, seed: int = 0) -> pd.DataFrame:
    """One-minute GBM bars: open_time (UTC), open, high, low, close, volume."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n_bars)))
    open_ = np.r_[30_000.0, close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.0003, n_bars)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.0003, n_bars)))
    volume = rng.lognormal(1.5, 0.5, n_bars)
    time_ = pd.date_range("2024-01-01", periods=n_bars, freq="1min", tz="UTC")
    return pd.DataFrame({"open_time": time_, "open": open_, "high": high, "low": low, "close": close, "volume": volume})


def anytrading_frame(bars: pd.DataFrame) -> pd.DataFrame:
    df = bars.set_index("open_time")
    return df.rename(columns=str.capitalize)


def trading_env_frame(bars: pd.DataFrame) -> pd.DataFrame:
    df = bars.set_index("open_time")
    df.index = df.index.tz_localize(None)
    df["feature_close"] = df["close"].pct_change()
    df["feature_open"] = df["open"] / df["close"]
    df["feature_high"] = df["high"] / df["close"]
    df["feature_low"] = df["low"] / df["close"]
    df["feature_volume"] = df["volume"] / df["volume"].rolling(7 * 24).max()
    return df.dropna()


def replay_market(bars: pd.DataFrame) -> ReplayMarket:
    sources = [BarSource("gbm", f"BTC/{q}", bars) for q in ("USD", "USDT", "USDC")]
    return ReplayMarket(load_bars(sources), episode_steps=240, venue_map={"gbm": ("alpha", "beta")})


# --------------------------------------------------------------------------- peers


def peer_makers(bars: pd.DataFrame) -> tuple[dict[str, Callable[[], gym.Env]], dict[str, str]]:
    makers: dict[str, Callable[[], gym.Env]] = {}
    missing: dict[str, str] = {}
    try:
        import gym_anytrading  # noqa: F401  (registers stocks-v0)

        df_any = anytrading_frame(bars)
        kw = dict(df=df_any, window_size=30, frame_bound=(30, len(df_any)))
        makers["gym-anytrading"] = lambda: gym.make("stocks-v0", **kw)
        makers["gym-anytrading"]().reset(seed=0)  # fails here if it cannot run
    except Exception as exc:  # not installed, or broken with these gymnasium/numpy/pandas
        makers.pop("gym-anytrading", None)
        missing["gym-anytrading"] = f"{type(exc).__name__}: {exc}"
    filters = warnings.filters[:]
    try:
        import gym_trading_env  # noqa: F401  (registers TradingEnv; sets warnings to "error")

        df_te = trading_env_frame(bars)
        makers["gym-trading-env"] = lambda: gym.make("TradingEnv", df=df_te, verbose=0, name="GBM")
        makers["gym-trading-env"]().reset(seed=0)
    except Exception as exc:
        makers.pop("gym-trading-env", None)
        missing["gym-trading-env"] = f"{type(exc).__name__}: {exc}"
    finally:
        warnings.filters[:] = filters
    return makers, missing


# --------------------------------------------------------------------------- contenders


@dataclass
class Contender:
    name: str
    env: Any
    n_envs: int  # 1 = single env (reset when done); else a vector env (autoreset)
    actions: list[Any] = field(default_factory=list)
    i: int = 0

    def run(self, seconds: float, min_steps: int = 1) -> float:
        """Step for ``seconds`` (and at least ``min_steps``); env-steps/s."""
        env, actions, n_act = self.env, self.actions, len(self.actions)
        i, steps = self.i, 0
        start = time.perf_counter()
        end = start + seconds
        if self.n_envs == 1:
            while True:
                _, _, terminated, truncated, _ = env.step(actions[i % n_act])
                i += 1
                steps += 1
                if terminated or truncated:
                    env.reset()
                if steps >= min_steps and time.perf_counter() >= end:
                    break
        else:
            while True:
                env.step(actions[i % n_act])
                i += 1
                steps += 1
                if steps >= min_steps and time.perf_counter() >= end:
                    break
        elapsed = time.perf_counter() - start
        self.i = i
        return self.n_envs * steps / elapsed


def build(name: str, env: Any, n_envs: int, n_actions: int = 64) -> Contender:
    env.reset(seed=0)
    env.action_space.seed(0)
    return Contender(name, env, n_envs, [env.action_space.sample() for _ in range(n_actions)])


def contenders(bars: pd.DataFrame, peer_copies: list[int], lanes: list[int]) -> tuple[list[Contender], dict[str, str]]:
    out: list[Contender] = []
    makers, missing = peer_makers(bars)
    for peer, make in makers.items():
        out.append(build(f"{peer} single", make(), 1))
        for n in peer_copies:
            out.append(build(f"{peer} Sync x{n}", gym.vector.SyncVectorEnv([make] * n), n))
    market = replay_market(bars)
    for env_id in envs.ENV_IDS:
        short = env_id.split("/")[1]
        out.append(build(f"{short} single", gym.make(env_id, market=market), 1))
        for n in lanes:
            vec = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", market=market)
            out.append(build(f"{short} native x{n}", vec, n, n_actions=16))
    return out, missing


# --------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per contender per round")
    parser.add_argument("--bars", type=int, default=100_000, help="one-minute GBM bars in the series")
    parser.add_argument("--peer-copies", type=int, nargs="+", default=[8, 64], help="SyncVectorEnv sizes of the peers")
    parser.add_argument("--lanes", type=int, nargs="+", default=[8, 64, 1024], help="our native vector env sizes")
    args = parser.parse_args()

    t0 = time.perf_counter()
    bars = gbm_bars(args.bars)
    cons, missing = contenders(bars, args.peer_copies, args.lanes)
    built = time.perf_counter() - t0

    t0 = time.perf_counter()
    for c in cons:  # warm up: compile, fault pages in, and pass an episode end (Trading: 240 steps)
        c.run(0.2, min_steps=250)
    warm = time.perf_counter() - t0

    rates: dict[str, list[float]] = {c.name: [] for c in cons}
    ratios: dict[str, list[float]] = {c.name: [] for c in cons}
    for r in range(args.rounds):
        k = r % len(cons)
        this = {c.name: c.run(args.seconds) for c in cons[k:] + cons[:k]}
        for name, rate in this.items():
            rates[name].append(rate)
            if BASELINE in this:
                ratios[name].append(rate / this[BASELINE])

    print(f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")
    print(f"date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    print(f"machine: {platform.machine()} cores={os.cpu_count()} {cpu_model()} load={load[0]:.1f}")
    print(f"python {platform.python_version()}  " + "  ".join(
        f"{d} {version(d)}" for d in ("gymnasium", "numpy", "pandas", "numba", "orderbook-gym", "gym-anytrading", "gym-trading-env")))
    for peer, why in missing.items():
        print(f"SKIPPED {peer}: {why}")
    print(f"series: GBM {args.bars:,} one-minute bars; setup {built:.1f} s, warm-up {warm:.1f} s")
    print(f"{args.rounds} interleaved rounds x {args.seconds:g} s per contender; medians over rounds; "
          f"ratio = within-round ratio to {BASELINE}, median over rounds")
    print(f"{'contender':<28} {'env-steps/s':>14} {'ratio':>10}")
    for c in cons:
        ratio = f"{statistics.median(ratios[c.name]):>10.3g}" if ratios[c.name] else f"{'n/a':>10}"
        print(f"{c.name:<28} {statistics.median(rates[c.name]):>14,.0f} {ratio}")
    for c in cons:
        c.env.close()


if __name__ == "__main__":
    main()
