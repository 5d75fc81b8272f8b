"""The notebooks execute without error, show their figures inline, and their .ipynb match the .py."""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FIGURES = {
    "episode_analytics": ("lifecycle", "event_times", "fills", "slippage", "balances", "value"),
    "many_episodes": ("fill_and_slippage", "rejects_expiries"),
}


def pngs(notebook) -> list[str]:
    """The inline figures of a notebook: every ``image/png`` output of its code cells."""
    return [o["data"]["image/png"] for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_ipynb_is_in_step_with_its_py(name):
    paired = jupytext.read(NOTEBOOKS / f"{name}.py")
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert [c.source for c in notebook.cells] == [c.source for c in paired.cells]


@pytest.mark.notebook
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_and_draws_its_figures(name, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERBOOK_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("ORDERBOOK_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOKS.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # as Jupyter shows them, whatever CI sets
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    prefix = "episode" if name == "episode_analytics" else "many"
    for figure in FIGURES[name]:
        png = tmp_path / "out" / f"{prefix}_{figure}.png"
        assert png.exists() and png.stat().st_size > 5_000, png
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert len(pngs(notebook)) >= len(FIGURES[name]), "every figure shows inline in the executed notebook"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_committed_notebook_carries_its_figures_and_small_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    figures = pngs(notebook)
    assert len(figures) == len(FIGURES[name]), f"{name}.ipynb should carry its {len(FIGURES[name])} figures, has {len(figures)}"
    assert all(len(png) < 200_000 for png in figures), "PNGs at modest dpi (base64 under 200 kB each)"
    texts = ["".join(o.get("text", "")) for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
             if o.get("output_type") == "stream"]
    assert all(t.count("\n") <= 60 for t in texts), "text outputs are short enough to review"
    assert not any("compiling orderbook kernels" in t for t in texts), "no compile notices in the committed outputs"
