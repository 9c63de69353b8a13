"""Who may import whom: no cycle between packages; ``controlplane`` and ``cli`` at the top.

The graph is read from the source (every ``import modelplane.x`` / ``from modelplane.x import``,
type-only and function-level ones included: they couple packages too), one node per top-level
package or module of ``modelplane``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import modelplane

ROOT = Path(modelplane.__file__).parent

TOP = {"cli", "controlplane"}
"""Imported by nothing of ours; ``cli`` (the program) may start the ``controlplane``."""

def package_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        source = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "modelplane" and len(parts) > 1 and parts[1] != source:
                    edges[source].add(parts[1])
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_cycle_between_packages() -> None:
    assert cycles(package_graph()) == []


def test_controlplane_and_cli_are_imported_by_nothing_of_ours() -> None:
    edges = package_graph()
    offenders = sorted(
        f"{a} -> {b}"
        for a, bs in edges.items()
        for b in bs
        if b in TOP and not (a == "cli" and b == "controlplane")
    )
    assert offenders == []


def test_the_walk_sees_real_edges() -> None:
    # the test above would pass on an empty graph: make sure it is not one
    edges = package_graph()
    assert "gateway" in edges["controlplane"] and "errors" in edges["gateway"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
