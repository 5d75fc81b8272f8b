"""The synthetic market advance, serial and in numba's threads, under each threading layer.

A process runs in one threading layer, so each layer runs in its own interpreter,
alternating rounds (the load of a shared machine drifts). Prints the median time
of one advance call per round, and the medians over rounds.

    python -m benchmarks.threads --lanes 4096 --rounds 5 --reps 300
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

LAYERS = ("omp", "forksafe")


def measure(n_lanes: int, reps: int) -> None:
    """In this process: print ``layer serial_ms parallel_ms`` (medians of ``reps`` calls)."""
    import numba

    import orderbook as ob
    from orderbook.compile.jit import parallel_blocks
    from orderbook.market.synthetic import synthetic_advance, synthetic_advance_parallel

    ex = ob.Exchange(ob.default_config(slots=8), n_lanes)
    ex.reset(seed=0)
    ex.lanes.active[:] = True
    s = ex.source
    args = (ex.compiled, s.params, s.state, ex.lanes, ex.bars)
    blocks = max(parallel_blocks(n_lanes), 2)
    medians = []
    for call in (lambda: synthetic_advance(*args), lambda: synthetic_advance_parallel(*args, blocks)):
        call()  # compile or load
        times = np.empty(reps)
        for k in range(reps):
            t = time.perf_counter()
            call()
            times[k] = time.perf_counter() - t
        medians.append(float(np.median(times)) * 1e3)
    print(numba.threading_layer(), numba.get_num_threads(), *(f"{m:.3f}" for m in medians), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.measure:
        measure(a.lanes, a.reps)
        return
    rows: dict[str, list[tuple[float, float]]] = {layer: [] for layer in LAYERS}
    print(f"{'layer':>10} {'threads':>7} {'serial ms':>10} {'parallel ms':>12}   (median of {a.reps} calls, {a.lanes} lanes)")
    for _ in range(a.rounds):
        for layer in LAYERS:
            env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
            out = subprocess.run([sys.executable, "-m", "benchmarks.threads", "--measure", "--lanes", str(a.lanes), "--reps", str(a.reps)],
                                 env=env, capture_output=True, text=True, check=True).stdout.split()
            name, threads, serial, parallel = out[-4:]
            rows[layer].append((float(serial), float(parallel)))
            print(f"{name:>10} {threads:>7} {serial:>10} {parallel:>12}", flush=True)
    for layer, values in rows.items():
        serial, parallel = np.median(np.array(values), axis=0)
        print(f"median over rounds, {layer}: serial {serial:.3f} ms, parallel {parallel:.3f} ms")


if __name__ == "__main__":
    main()
