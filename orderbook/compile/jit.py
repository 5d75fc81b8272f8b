"""How every kernel of the core is compiled: ``@kernel`` instead of ``@njit``.

Kernels are cached (``cache=True``) and compiled without numba's reference
counting (``_nrt=False``). The state is passed as named tuples of dozens of
arrays; with reference counting on, every function that unpacks them and may
call another function increfs and decrefs each array (atomic operations), at
every phase of every lane: more than the whole step costs without them
(``benchmarks/throughput.py``; figures in ``benchmarks/RESULTS.md``, "Core and
native vector env throughput").

What that requires, and every kernel keeps: **a kernel never allocates** (no
``np.empty``, no array-returning expressions, no lists); it reads and writes the
arrays it is given. Views (``a[b, :] = 0``) are fine.

Parallel kernels (:func:`parallel_kernel`) run in numba's threads from a layer
that survives ``fork``: importing this module selects numba's ``forksafe`` layer
(``tbb`` when installed, else ``workqueue``; never GNU OpenMP, whose child dies
at its first parallel region after a fork), unless ``NUMBA_THREADING_LAYER``
says otherwise or numba's threads were already started. Why and what it costs:
``docs/core.md`` ("Threads and fork").
"""

from __future__ import annotations

import os

import numba
from numba import njit
from numba.np.ufunc import parallel as _numba_parallel

FORK_SAFE_LAYER = "forksafe"


def use_fork_safe_threads() -> bool:
    """Select numba's ``forksafe`` threading layer if nobody chose one and its threads have not started.

    Returns whether the choice was made here. Numba reads the layer once, when it
    starts its threads (the first parallel call or ``numba.get_num_threads()``).
    """
    if "NUMBA_THREADING_LAYER" in os.environ or getattr(_numba_parallel, "_is_initialized", False):
        return False
    numba.config.THREADING_LAYER = FORK_SAFE_LAYER
    return True


use_fork_safe_threads()


def kernel(func=None, *, inline: bool = False):
    """``njit(cache=True, _nrt=False)``; ``inline=True`` inlines at numba IR level."""
    options = dict(cache=True, _nrt=False)
    if inline:
        options["inline"] = "always"
    if func is None:
        return njit(**options)
    return njit(**options)(func)


def parallel_kernel(func):
    """A :func:`kernel` whose ``prange`` loops run in numba's threads (``parallel=True``).

    Used only for drivers that split lanes into blocks and call a serial kernel per
    block (lanes are independent), so results do not depend on the thread count.
    A parallel region costs tens of microseconds to start: callers use these above
    a few hundred lanes (:data:`PARALLEL_MIN_LANES`).
    """
    return njit(cache=True, _nrt=False, parallel=True)(func)


PARALLEL_MIN_LANES = 512


def parallel_blocks(n_lanes: int) -> int:
    """How many blocks of lanes a parallel driver should use: numba's threads, or 0 (run serially)."""
    threads = numba.get_num_threads()
    return threads if threads > 1 and n_lanes >= PARALLEL_MIN_LANES else 0
