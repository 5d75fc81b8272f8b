"""Hashes of everything a run produces, to check that a speed-up changed no result bit for bit.

    python benchmarks/same_results.py --record before.json   # on the commit before
    python benchmarks/same_results.py --check before.json    # on the change

Runs (every combination) ``orderbook/Execution-v0`` and ``orderbook/Trading-v0``, the
synthetic and the ``binance_us`` market, default and high faults, 1 / 7 / 64 lanes,
seeds 0 and 1: 30 steps of random valid actions (drawn from a fixed generator), and
the core (``Exchange`` on ``default_config(slots=64)``, the demo's baseline intents,
64 lanes, all faults on). Per run one SHA-256 over every step's observation, reward,
terminated and truncated, every state array of the core after every step (orders,
lanes, bars with the path, its interval extremes and the volume used, accounts,
stats) and the history's frames at the end. Floats are hashed by their bytes, so
hashes hold on one machine and numba build; compare runs of the same machine.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys

import gymnasium as gym
import numpy as np

import envs
import orderbook as ob
from orderbook.demo import baseline_intents

STEPS = 30


def _feed(h, x) -> None:
    if isinstance(x, dict):
        for k in sorted(x):
            h.update(str(k).encode())
            _feed(h, x[k])
    elif isinstance(x, (tuple, list)):
        for y in x:
            _feed(h, y)
    else:
        a = np.ascontiguousarray(np.asarray(x))
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())


def _core_state(ex) -> list:
    return [tuple(getattr(ex, name)) for name in ("orders", "lanes", "bars", "accounts", "stats")]


def _history(h, ex) -> None:
    for name, frame in ex.history.to_polars().items():
        h.update(name.encode())
        h.update(frame.write_csv().encode())


def env_hash(env_id: str, market: str, faults: str, lanes: int, seed: int) -> str:
    env = gym.make_vec(env_id, num_envs=lanes, vectorization_mode="vector_entry_point", market=market, faults=faults)
    h = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    _feed(h, obs)
    nvec = env.single_action_space.nvec
    gen = np.random.default_rng(1000 + seed)
    ex = env.unwrapped.exchange
    for _ in range(STEPS):
        obs, reward, term, trunc, info = env.step(gen.integers(0, nvec, size=(lanes, len(nvec))))
        _feed(h, [obs, reward, term, trunc])
        _feed(h, _core_state(ex))
    _history(h, ex)
    env.close()
    return h.hexdigest()


def core_hash(seed: int) -> str:
    ex = ob.Exchange(ob.default_config(slots=64), n_lanes=64, history_capacity=1 << 16)
    ex.reset(seed=seed)
    actions = [baseline_intents(ex, s, twap_lots=20, quote_lots=50) for s in range(5)]
    h = hashlib.sha256()
    for step in range(STEPS):
        ex.step(*actions[step % len(actions)])
        _feed(h, _core_state(ex))
    _history(h, ex)
    return h.hexdigest()


def all_hashes() -> dict[str, str]:
    out = {f"core seed={s}": core_hash(s) for s in (0, 1)}
    for env_id, market, faults, lanes, seed in itertools.product(envs.ENV_IDS, ("synthetic", "binance_us"),
                                                                 ("default", "high"), (1, 7, 64), (0, 1)):
        out[f"{env_id} {market} faults={faults} lanes={lanes} seed={seed}"] = env_hash(env_id, market, faults, lanes, seed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", metavar="JSON")
    group.add_argument("--check", metavar="JSON")
    args = parser.parse_args()
    got = all_hashes()
    if args.record:
        with open(args.record, "w") as f:
            json.dump(got, f, indent=1)
        print(f"recorded {len(got)} runs")
        return
    with open(args.check) as f:
        want = json.load(f)
    bad = [k for k in want if got.get(k) != want[k]]
    missing = sorted(set(want) ^ set(got))
    for k in bad:
        print(f"DIFFERS: {k}")
    print(f"{len(want) - len(bad)} of {len(want)} runs identical" + (f"; not in both: {missing}" if missing else ""))
    sys.exit(1 if bad or missing else 0)


if __name__ == "__main__":
    main()
