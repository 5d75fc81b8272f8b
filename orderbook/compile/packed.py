"""One compiled call for a sequence of kernels over named tuples of arrays.

Why: numba's dispatcher unboxes every array argument on every call, so a
kernel call's cost grows with the arrays it is handed (a step hands ~115), and
at one lane that is most of a step (figures in ``benchmarks/RESULTS.md``,
"Figures that were in the package's docstrings").
:class:`PackedCall` instead hands the compiled code two small tables, one of
int64 (array addresses and shapes, integer and bool scalars) and one of float64
(float scalars), and a generated kernel rebuilds the arrays (``numba.carray``
over the addresses) and the named tuples, then calls the kernels in order. The
call costs one dispatch of three arrays, whatever the state holds.

What it keeps true:
- the kernels called are the same functions with the same argument types
  (arrays rebuilt with their dtype and shape, C order), so results are bit for
  bit those of calling them directly;
- the tables never point at freed memory: a :class:`PackedCall` holds a
  reference to every array it packed, and :meth:`PackedCall.__call__` repacks
  whenever one of the argument trees is a different object than when packed
  (a history log grown by doubling hands out a new ``LogArrays``). In-place
  writes to the packed arrays are seen by the kernels, and vice versa; rebinding
  a field of a named tuple is impossible (tuples are immutable);
- only C-contiguous arrays are packed; anything else raises ``TypeError``;
- a copy (``copy.deepcopy``) or a pickle never carries the tables: the clone
  loads the kernel by its source and packs the arrays its own copied calls hold
  (copied in the same pass as their owner, so they are the owner's copies), so
  stepping a clone never writes the original's memory, and a clone outlives it.

The generated source is written to a per-user cache directory (named by a hash
of the source and of the package's code, so a code change never reuses stale
machine code) and imported from there, so numba's on-disk cache serves it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from orderbook.compile import compile_notice
from orderbook.compile.jit import code_version

__all__ = ["PackedCall", "Call", "address_to_voidptr"]


@intrinsic
def address_to_voidptr(typingctx, address):
    """The int64 ``address`` as a ``void*`` (for ``numba.carray``)."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(types.int64), codegen


class Call(NamedTuple):
    """One kernel call of a packed sequence; ``result`` names a slot of the results array, or -1.

    A copy or a pickle names ``func`` (``module``, ``qualname``) and imports it again, so the
    clone calls the very dispatcher its module defines (numba's own pickling would rebuild a
    new dispatcher in another process); ``args`` are copied as they are.
    """

    func: Any  # a numba dispatcher importable as module.name
    args: tuple
    result: int = -1

    def __reduce__(self):
        return _call_by_name, (*_qualified(self.func), self.args, self.result)


def _qualified(obj) -> tuple[str, str]:
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", getattr(obj, "__name__", None))
    if module is None or name is None or "<" in name:
        raise TypeError(f"packed calls need importable functions and classes, got {obj!r}")
    found = sys.modules.get(module)
    target = found
    for part in name.split("."):
        target = getattr(target, part, None)
    py_func = getattr(obj, "py_func", None)
    if target is not obj and getattr(target, "py_func", object()) is not py_func:
        raise TypeError(f"{module}.{name} does not name {obj!r}; packed calls need module-level functions")
    return module, name


def _resolve(module: str, name: str):
    """The object ``module.name`` names (``name`` may be dotted), imported if need be."""
    target = importlib.import_module(module)
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _call_by_name(module: str, name: str, args: tuple, result: int) -> Call:
    return Call(_resolve(module, name), args, result)


def _dtype_expr(dtype: np.dtype) -> str:
    return "np.bool_" if dtype == np.bool_ else f"np.{dtype.name}"


class _Layout:
    """Flattens argument trees into table slots and the source that rebuilds them."""

    def __init__(self):
        self.imports: dict[tuple[str, str], str] = {}
        self.lines: list[str] = []
        self.n_int = 0
        self.n_float = 0
        self.n_vars = 0
        self.signature: list[str] = []  # what the code depends on (dtypes, ndims, classes), for the hash

    def alias(self, obj) -> str:
        key = _qualified(obj)
        if key not in self.imports:
            self.imports[key] = f"_g{len(self.imports)}"
        return self.imports[key]

    def var(self, expr: str) -> str:
        name = f"v{self.n_vars}"
        self.n_vars += 1
        self.lines.append(f"    {name} = {expr}")
        return name

    def leaf(self, value) -> str:
        if isinstance(value, np.ndarray):
            if not value.flags.c_contiguous:
                raise TypeError(f"packed calls need C-contiguous arrays, got one of shape {value.shape} with strides {value.strides}")
            j = self.n_int
            self.n_int += 1 + value.ndim
            shape = ", ".join(f"ti[{j + 1 + d}]" for d in range(value.ndim)) + ("," if value.ndim == 1 else "")
            self.signature.append(f"a{value.dtype.str}{value.ndim}")
            return self.var(f"carray(address_to_voidptr(ti[{j}]), ({shape}), {_dtype_expr(value.dtype)})")
        if isinstance(value, (bool, np.bool_)):
            self.n_int += 1
            self.signature.append("b")
            return f"(ti[{self.n_int - 1}] != 0)"
        if isinstance(value, (int, np.integer)):
            self.n_int += 1
            self.signature.append("i")
            return f"ti[{self.n_int - 1}]"
        if isinstance(value, (float, np.floating)):
            self.n_float += 1
            self.signature.append("f")
            return f"tf[{self.n_float - 1}]"
        if isinstance(value, tuple):
            items = [self.leaf(v) for v in value]
            if hasattr(value, "_fields"):
                self.signature.append(f"T{_qualified(type(value))}")
                return self.var(f"{self.alias(type(value))}({', '.join(items)})")
            self.signature.append(f"t{len(items)}")
            return "(" + "".join(f"{x}, " for x in items) + ")"
        raise TypeError(f"packed calls take arrays, ints, floats, bools and (named) tuples of them, got {type(value).__name__}")


def _fill(value, ti: list, tf: list, keep: list) -> None:
    if isinstance(value, np.ndarray):
        keep.append(value)
        ti.append(value.ctypes.data)
        ti.extend(value.shape)
    elif isinstance(value, (bool, np.bool_, int, np.integer)):
        ti.append(int(value))
    elif isinstance(value, (float, np.floating)):
        tf.append(float(value))
    else:
        for v in value:
            _fill(v, ti, tf, keep)


_CODE_VERSION: str | None = None
_MODULES: dict[str, Callable] = {}


def _cache_dir() -> Path:
    base = os.environ.get("ORDERBOOK_KERNEL_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "orderbook-gym" / "packed"


def _forget_other_versions(folder: Path) -> None:
    """Delete generated modules (and their numba cache files) of other code versions: the folder
    would otherwise grow with every edit of the package. Best effort (another process may race)."""
    for path in list(folder.glob("orderbook_packed_*")) + list(folder.glob("__pycache__/orderbook_packed_*")):
        if not path.name.startswith(f"orderbook_packed_{_CODE_VERSION}_"):
            try:
                path.unlink()
            except OSError:
                pass


def _load(source: str) -> Callable:
    """Write ``source`` to the cache directory (atomically) and import its ``packed`` kernel."""
    global _CODE_VERSION
    compile_notice.install()  # the first kernels of a cold run compile right after this: say so on stderr
    if _CODE_VERSION is None:
        _CODE_VERSION = code_version()
    key = f"{_CODE_VERSION}_{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    if key in _MODULES:
        return _MODULES[key]
    folder = _cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if not _MODULES:
        _forget_other_versions(folder)
    path = folder / f"orderbook_packed_{key}.py"
    name = f"orderbook_packed_{key}"
    for attempt in range(3):  # a process of another code version may delete the file between write and import
        try:
            if not path.exists() or path.read_text() != source:
                fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
                with os.fdopen(fd, "w") as f:
                    f.write(source)
                os.replace(tmp, path)
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    sys.modules[name] = module
    _MODULES[key] = module.packed
    return module.packed


class PackedCall:
    """Calls ``calls`` (a sequence of :class:`Call`) as one compiled function.

    ``n_results`` int64 results (``Call.result`` slots) come back as a fresh
    numpy array from ``__call__``, or ``None`` when there are none.
    """

    def __init__(self, calls: Sequence[Call], n_results: int = 0):
        self.calls = tuple(calls)
        self.n_results = n_results
        layout = _Layout()
        body: list[str] = []
        for call in self.calls:
            args = [layout.leaf(a) for a in call.args]
            expr = f"{layout.alias(call.func)}({', '.join(args)})"
            body.append(f"    res[{call.result}] = {expr}" if call.result >= 0 else f"    {expr}")
            if not (-1 <= call.result < max(n_results, 0)):
                raise ValueError(f"Call.result must be -1 or a slot in [0, {n_results}), got {call.result}")
        header = [
            '"""Generated by orderbook.compile.packed: do not edit (rewritten when the code changes)."""',
            "import numpy as np",
            "from numba import carray, njit",
            "from orderbook.compile.packed import address_to_voidptr",
        ]
        header += [f"from {module} import {name.split('.')[0]} as {alias}" for (module, name), alias in layout.imports.items()]
        source = "\n".join(header + ["", "", "@njit(cache=True)", "def packed(ti, tf, res):"] + layout.lines + body + ["    return 0", ""])
        self.source = source
        self.n_int, self.n_float = layout.n_int, layout.n_float
        self._start()

    def _start(self) -> None:
        """Load the kernel of :attr:`source`, allocate the tables and pack :attr:`calls` into them."""
        self._kernel = _load(self.source)
        self._ti = np.zeros(max(self.n_int, 1), dtype=np.int64)
        self._tf = np.zeros(max(self.n_float, 1), dtype=np.float64)
        self._res = np.zeros(max(self.n_results, 1), dtype=np.int64)
        self._keep: list = []
        self._packed_args: tuple = ()
        self._packed_from: object = None
        self.repack()

    # A copy or a pickle carries the calls (their arguments copied with the rest of the object graph,
    # so they are the clone's arrays) and the source; never the tables, whose addresses are the
    # original's arrays, nor the identity caches. The clone loads the kernel by its source and packs
    # its own arrays (the copied _res would be harmless; it is made fresh like the rest).
    _COPIED = ("calls", "n_results", "source", "n_int", "n_float")

    def __getstate__(self) -> dict:
        return {name: getattr(self, name) for name in self._COPIED}

    def __setstate__(self, state: dict) -> None:
        if set(state) != set(self._COPIED):
            raise ValueError(f"a PackedCall's state has the keys {sorted(self._COPIED)}, got {sorted(state)}")
        self.__dict__.update(state)
        self._start()

    def repack(self, calls: Sequence[Call] | None = None) -> None:
        """Refill the tables from ``calls`` (same structure, dtypes and ndims; new objects allowed).

        Calls of other kernels than the packed ones (a driver that chose its serial kernel this time,
        the thread count having changed) generate and load the kernel again instead.
        """
        if calls is not None and not self._same_funcs(calls):
            self.__init__(calls, self.n_results)
            return
        if calls is not None:
            self.calls = tuple(calls)
        ti: list[int] = []
        tf: list[float] = []
        keep: list = []
        for call in self.calls:
            _fill(call.args, ti, tf, keep)
        if len(ti) != self.n_int or len(tf) != self.n_float:
            raise TypeError(f"repacked calls have {len(ti)} int and {len(tf)} float slots, the kernel expects {self.n_int} and {self.n_float}")
        self._ti[: len(ti)] = ti
        self._tf[: len(tf)] = tf
        self._keep = keep
        self._packed_args = tuple(a for call in self.calls for a in call.args)  # held: their ids stay unique

    def _same_funcs(self, calls: Sequence[Call]) -> bool:
        return len(calls) == len(self.calls) and all(a.func is b.func for a, b in zip(calls, self.calls))

    def _same_args(self, calls: Sequence[Call]) -> bool:
        packed = iter(self._packed_args)
        return self._same_funcs(calls) and all(a is next(packed, None) for call in calls for a in call.args)

    def __call__(self, calls: Sequence[Call] | None = None) -> np.ndarray | None:
        """Run the kernels. With ``calls`` (the same structure), repack first if any argument object changed."""
        if calls is not None and calls is not self._packed_from and not self._same_args(calls):
            self.repack(calls)
        self._packed_from = calls if isinstance(calls, tuple) else None  # the same tuple next time: nothing to check
        self._kernel(self._ti, self._tf, self._res)
        return self._res[: self.n_results].copy() if self.n_results else None
