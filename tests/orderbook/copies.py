"""Ways to clone an object (deepcopy, pickle in and out of band, cloudpickle) and checks that a clone is its own.

Shared by the copy tests of the core, the envs and the SB3 adapter. A check that could
crash the interpreter if it failed (stepping a clone after its original was freed)
runs in a subprocess (:func:`run_in_subprocess`), so a regression fails one test
instead of taking pytest down.
"""

from __future__ import annotations

import copy
import gc
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import cloudpickle
import numpy as np

from orderbook.compile.packed import PackedCall

ROOT = Path(__file__).resolve().parents[2]


def _pickle5(obj):
    return pickle.loads(pickle.dumps(obj, protocol=5))


def _pickle5_out_of_band(obj):
    """Protocol 5 with the arrays' buffers out of band, handed back as fresh writable copies."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=[bytearray(b.raw()) for b in buffers])


def _cloudpickle(obj):
    return cloudpickle.loads(cloudpickle.dumps(obj))


COPIES: dict[str, Callable[[Any], Any]] = {
    "deepcopy": copy.deepcopy,
    "pickle5": _pickle5,
    "pickle5-out-of-band": _pickle5_out_of_band,
    "cloudpickle": _cloudpickle,
}


def packed_calls(obj) -> list[PackedCall]:
    """Every :class:`PackedCall` reachable from ``obj`` through attributes, dicts, lists and tuples."""
    seen: set[int] = set()
    found: list[PackedCall] = []
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, (np.ndarray, str, bytes, int, float, type)):
            continue
        seen.add(id(o))
        if isinstance(o, PackedCall):
            found.append(o)
        if isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, "__dict__") and type(o).__module__.split(".")[0] in ("orderbook", "envs", "agents", "gymnasium", "stable_baselines3"):
            stack.extend(vars(o).values())
    return found


def assert_packs_only_its_own_arrays(clone, original) -> None:
    """The clone's packed tables point at arrays it holds, none of which shares memory with the original's."""
    ours, theirs = packed_calls(clone), packed_calls(original)
    assert ours and len(ours) == len(theirs), f"expected as many packed calls in the clone as in the original ({len(theirs)}), got {len(ours)}"
    their_arrays = [a for p in theirs for a in p._keep]
    for p in ours:
        addresses = set(p._ti[: p.n_int].tolist())
        for a in p._keep:
            assert a.ctypes.data in addresses, "a kept array is not in the clone's table"
            shared = [b.shape for b in their_arrays if np.shares_memory(a, b)]
            assert not shared, f"a clone's packed array {a.shape} {a.dtype} shares memory with the original's {shared}"




def clobber_freed_memory() -> list[np.ndarray]:
    """Collect garbage, then fill freshly allocated memory with -1s: after the caller dropped its last
    reference to an original, a clone that still pointed into the original's arrays would now read garbage.
    Keep the returned arrays alive while the clone runs."""
    gc.collect()
    return [np.full(n, -1, dtype=np.int64) for n in (16, 256, 4096, 1 << 16, 1 << 20) for _ in range(4)]


def run_in_subprocess(target: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run ``module:function(*args)`` in a fresh interpreter from the repository root; its stdout.

    Fails the test (with the child's output) if the child exits with an error or is killed.
    """
    module, function = target.split(":")
    code = f"import sys; from {module} import {function} as f; f(*sys.argv[1:])"
    full_env = dict(os.environ) if env is None else env
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{target}{args} exited with {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return done.stdout
