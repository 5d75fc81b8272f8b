"""How every kernel of the core is compiled: ``@kernel`` instead of ``@njit``.

Kernels are cached (``cache=True``) and compiled without numba's reference
counting (``_nrt=False``). The state is passed as named tuples of dozens of
arrays; with reference counting on, every function that unpacks them and may
call another function increfs and decrefs each array (atomic operations), which
cost ~2 us per lane and phase, 8x the whole step (measured with
``benchmarks/throughput.py``: 26k -> 200k env-steps/s at 1,024 lanes).

What that requires, and every kernel keeps: **a kernel never allocates** (no
``np.empty``, no array-returning expressions, no lists); it reads and writes the
arrays it is given. Views (``a[b, :] = 0``) are fine.
"""

from __future__ import annotations

from numba import njit


def kernel(func=None, *, inline: bool = False):
    """``njit(cache=True, _nrt=False)``; ``inline=True`` inlines at numba IR level."""
    options = dict(cache=True, _nrt=False)
    if inline:
        options["inline"] = "always"
    if func is None:
        return njit(**options)
    return njit(**options)(func)
