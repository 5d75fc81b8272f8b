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

Stale machine code is never run: numba's on-disk cache checks only the file a
kernel is defined in, but kernels inline and call kernels of other files and read
constants (``orderbook.spec.codes``) frozen at compile time. Importing this module
puts :class:`PackageStampLocator` in front of numba's cache locators: for a kernel
of this package (``orderbook/``, ``envs/``) the cache's source stamp also holds
:func:`code_version`, a hash of every source file of both packages, so an edit
anywhere in them recompiles every kernel that is next loaded (the packed calls
of :mod:`orderbook.compile.packed` already key their files by the same hash).
Kernels of other packages keep numba's own stamp.

Parallel kernels (:func:`parallel_kernel`) run in numba's threads from a layer
that survives ``fork``: importing this module selects numba's ``forksafe`` layer
(``tbb`` when installed, else ``workqueue``; never GNU OpenMP, whose child dies
at its first parallel region after a fork), unless ``NUMBA_THREADING_LAYER``
says otherwise or numba's threads were already started. Why and what it costs:
``docs/core.md`` ("Threads and fork").
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numba
from numba import njit
from numba.core import caching as _numba_caching
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

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
KERNEL_PACKAGES = ("orderbook", "envs")


@functools.cache
def code_version() -> str:
    """A hash of every ``.py`` file of the kernel packages (paths and contents), read once per process."""
    digest = hashlib.sha256()
    for package in KERNEL_PACKAGES:
        for path in sorted((PACKAGE_ROOT / package).rglob("*.py")):
            digest.update(path.relative_to(PACKAGE_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _in_kernel_packages(py_file: str) -> bool:
    try:
        rel = Path(py_file).resolve().relative_to(PACKAGE_ROOT)
    except (OSError, ValueError):
        return False
    return len(rel.parts) > 1 and rel.parts[0] in KERNEL_PACKAGES


class PackageStampLocator:
    """Numba's own cache locator for a kernel of this package, with :func:`code_version` in its source stamp.

    Everything else (where the cache lives, the disambiguator) is the wrapped
    locator's, so caches stay where numba puts them; only a changed package makes
    numba's index check (stamp != stored stamp) discard them.
    """

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def get_source_stamp(self):
        return (self._inner.get_source_stamp(), code_version())

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _in_kernel_packages(py_file):
            return None
        for locator_class in _numba_caching.CacheImpl._locator_classes:
            if locator_class is cls:
                continue
            inner = locator_class.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None


def install_package_stamps() -> None:
    """Put :class:`PackageStampLocator` first among numba's cache locators (idempotent)."""
    classes = _numba_caching.CacheImpl._locator_classes
    if PackageStampLocator not in classes:
        classes.insert(0, PackageStampLocator)


install_package_stamps()


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
