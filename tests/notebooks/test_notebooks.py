"""The notebooks execute without error, produce their figures, and their .ipynb match the .py."""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FIGURES = {
    "episode_analytics": ("lifecycle", "fills", "slippage", "balances", "value"),
    "many_episodes": ("fill_and_slippage", "rejects_expiries"),
}


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
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    prefix = "episode" if name == "episode_analytics" else "many"
    for figure in FIGURES[name]:
        png = tmp_path / "out" / f"{prefix}_{figure}.png"
        assert png.exists() and png.stat().st_size > 5_000, png
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
