"""A kernel's on-disk cache is discarded when any file of the package changes, not only its own.

Numba's cache checks only the file a kernel is defined in; a kernel that calls a
kernel of another file kept the callee's old machine code after the callee was
edited. ``orderbook.compile.jit`` stamps the package's kernels with a hash of
the whole package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from orderbook.compile import jit

CALLER = '''
from orderbook.compile.jit import kernel
from orderbook.callee import answer


@kernel
def ask():
    return answer() * 10
'''

CALLEE = '''
from orderbook.compile.jit import kernel

VALUE = {value}


@kernel
def answer():
    return VALUE
'''


def _package(root: Path, value: int) -> None:
    """A two-file package ``orderbook`` (its own copy of ``compile/jit.py``): ``caller.ask()`` returns 10 x ``callee.VALUE``."""
    (root / "orderbook" / "compile").mkdir(parents=True, exist_ok=True)
    (root / "orderbook" / "__init__.py").write_text("")
    (root / "orderbook" / "compile" / "__init__.py").write_text("")
    shutil.copy(Path(jit.__file__), root / "orderbook" / "compile" / "jit.py")
    (root / "orderbook" / "caller.py").write_text(CALLER)
    (root / "orderbook" / "callee.py").write_text(CALLEE.format(value=value))


def _ask(root: Path) -> tuple[int, bool]:
    """``ask()`` in a fresh interpreter, and whether it was loaded from the on-disk cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(root)
    code = "from orderbook.caller import ask; r = ask(); print(r, bool(ask.stats.cache_hits))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    value, hit = out.stdout.split()
    return int(value), hit == "True"


def test_editing_a_callee_recompiles_its_callers_cached_in_another_file(tmp_path):
    _package(tmp_path, 1)
    assert _ask(tmp_path) == (10, False)  # compiled and cached
    assert _ask(tmp_path) == (10, True)  # served from the cache
    _package(tmp_path, 2)  # only the callee's file changes
    assert _ask(tmp_path) == (20, False)  # numba alone would serve 10 from the caller's cache


def test_only_the_packages_kernels_get_the_package_stamp(tmp_path):
    from orderbook.engine import lifecycle

    inside = jit.PackageStampLocator.from_function(lifecycle.is_live.py_func, lifecycle.__file__)
    assert inside is not None and inside.get_source_stamp()[1] == jit.code_version()
    outside = tmp_path / "mine.py"
    outside.write_text("def f():\n    return 1\n")
    assert jit.PackageStampLocator.from_function(lambda: 1, str(outside)) is None
