"""Cold start: a fresh Python process from ``import`` to its first step (issue 7, target 6).

    python benchmarks/cold_start.py [--runs 5] [--cold]

Each run is a new interpreter (nothing imported, nothing compiled in memory) that
times, in order: ``import envs`` (numpy, numba, gymnasium, polars and the
package), ``gym.make(env_id)`` (config, exchange, spaces), the first ``reset``
and the first ``step`` (numba loads the cached machine code of the kernels and
the packed calls the first time each is called). With a warm cache (the default:
the package's own numba cache, filled by a first run that is not timed) that is
what every training script pays once; ``--cold`` also times one run against an
empty cache (a temporary ``NUMBA_CACHE_DIR`` and ``ORDERBOOK_KERNEL_DIR``), which
is what the first run after installing or editing the code pays.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, time
t0 = time.perf_counter()
import gymnasium as gym
import envs  # noqa: F401
t1 = time.perf_counter()
env = gym.make(ENV_ID)
t2 = time.perf_counter()
env.reset(seed=0)
t3 = time.perf_counter()
env.step(env.action_space.sample())
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "make": t2 - t1, "reset": t3 - t2, "step": t4 - t3, "total": t4 - t0}))
"""

PARTS = ("import", "make", "reset", "step", "total")


def run_child(env_id: str, extra_env: dict[str, str] | None = None) -> dict[str, float]:
    env = dict(os.environ, **(extra_env or {}))
    out = subprocess.run([sys.executable, "-c", CHILD.replace("ENV_ID", repr(env_id))], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed warm-cache runs per env (the median is reported)")
    parser.add_argument("--cold", action="store_true", help="also time one run per env against an empty compile cache")
    args = parser.parse_args()
    import numba
    import numpy

    print(f"machine: {platform.machine()} cores={os.cpu_count()} python {platform.python_version()} numpy {numpy.__version__} "
          f"numba {numba.__version__}")
    print(f"{'env':<26} {'cache':<6} " + " ".join(f"{p + ' s':>9}" for p in PARTS))
    for env_id in ("orderbook/Execution-v0", "orderbook/Trading-v0"):
        run_child(env_id)  # fill the cache (not timed)
        rows = [run_child(env_id) for _ in range(args.runs)]
        med = {p: statistics.median(r[p] for r in rows) for p in PARTS}
        print(f"{env_id:<26} {'warm':<6} " + " ".join(f"{med[p]:>9.2f}" for p in PARTS))
        if args.cold:
            with tempfile.TemporaryDirectory() as tmp:
                cold = run_child(env_id, {"NUMBA_CACHE_DIR": os.path.join(tmp, "numba"), "ORDERBOOK_KERNEL_DIR": os.path.join(tmp, "packed")})
            print(f"{env_id:<26} {'empty':<6} " + " ".join(f"{cold[p]:>9.2f}" for p in PARTS))


if __name__ == "__main__":
    main()
