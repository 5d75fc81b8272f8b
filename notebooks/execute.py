"""Rebuild the committed notebooks from their jupytext sources, executed, with outputs small enough to review.

    python notebooks/execute.py                  # every notebook of this folder
    python notebooks/execute.py many_episodes    # one of them

Each ``<name>.py`` (the source of truth) is read with jupytext, executed in a fresh
kernel with matplotlib's inline backend (figures land in the outputs as PNG, at the
notebooks' own modest dpi), the figure files and the dataset go to a temporary
folder, and ``<name>.ipynb`` is written with the outputs: compile notices on stderr
dropped, long text outputs cut to their first lines, no execution timestamps.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
MAX_LINES = 40


def tidy(notebook) -> None:
    """Drop compile notices and execution metadata; cut long text outputs to ``MAX_LINES`` lines."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        kept = []
        for out in cell.outputs:
            if out.output_type == "stream":
                lines = [x for x in out.text.splitlines(keepends=True) if not x.startswith(("compiling orderbook kernels", "compiled "))]
                if not lines:
                    continue
                if len(lines) > MAX_LINES:
                    lines = lines[:MAX_LINES] + [f"... ({len(lines) - MAX_LINES} more lines: run the notebook to see them)\n"]
                out.text = "".join(lines)
            kept.append(out)
        cell.outputs = kept


def execute(name: str) -> Path:
    source = HERE / f"{name}.py"
    notebook = jupytext.read(source)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"ORDERBOOK_NOTEBOOK_OUT": str(Path(tmp) / "out"), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
               "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the kernel inherits them
        try:
            NotebookClient(notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    tidy(notebook)
    target = HERE / f"{name}.ipynb"
    nbformat.write(notebook, target)
    return target


if __name__ == "__main__":
    names = sys.argv[1:] or sorted(p.stem for p in HERE.glob("*.ipynb"))
    for name in names:
        print(f"executed {execute(name)}")
