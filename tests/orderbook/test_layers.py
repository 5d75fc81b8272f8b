"""The house's rule: inside ``orderbook/`` arrows only point down the folders' order.

Every ``import`` of every module (also those inside functions) is read from the
source, so an upward import hidden in a function body fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "orderbook"
# Each folder may import the folders before it in this order (and itself).
ORDER = ["compile", "spec", "history", "market", "engine", "analytics"]
# Modules at the top of the package (above every folder).
TOP = {"__init__", "presets", "demo"}


def _imports(path: Path) -> set[str]:
    """Every ``orderbook.*`` module a file imports, as dotted names."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "orderbook":
            if node.module == "orderbook":
                out.update(f"orderbook.{a.name}" for a in node.names)
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "orderbook")
    return out


def _folder(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


MODULES = sorted(p for p in ROOT.rglob("*.py") if "data" not in p.relative_to(ROOT).parts)


def test_every_module_lives_in_a_folder_or_at_the_top():
    loose = [p.name for p in MODULES if p.parent == ROOT and p.stem not in TOP]
    assert not loose, f"expected every module of orderbook/ in one of {ORDER} (or {sorted(TOP)}), found {loose} at the top"
    assert {p.relative_to(ROOT).parts[0] for p in MODULES if p.parent != ROOT} == set(ORDER)


@pytest.mark.parametrize("path", [p for p in MODULES if p.parent != ROOT], ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_point_down(path: Path):
    mine = ORDER.index(_folder(path))
    for name in _imports(path):
        parts = name.split(".")
        target = parts[1] if len(parts) > 1 else ""
        assert target in ORDER, f"{path.relative_to(ROOT)} imports {name}: expected a module of one of {ORDER}"
        assert ORDER.index(target) <= mine, (
            f"{path.relative_to(ROOT)} (folder {ORDER[mine]}) imports {name} (folder {target}): "
            f"expected only {ORDER[: mine + 1]}")


def test_no_import_circle_between_modules():
    graph = {}
    for p in MODULES:
        name = "orderbook." + ".".join(p.relative_to(ROOT).with_suffix("").parts)
        graph[name.removesuffix(".__init__")] = {m for m in _imports(p) if m != name}
    seen: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if seen.get(node) == 2 or node not in graph:
            return
        assert seen.get(node) != 1, f"import circle: {' -> '.join(trail + [node])}"
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if not (node == "orderbook" or node.count(".") == 1 and nxt.startswith(node + ".")):
                visit(nxt, trail + [node])
        seen[node] = 2

    for node in sorted(graph):
        visit(node, [])
