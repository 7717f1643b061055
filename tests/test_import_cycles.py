"""No import cycles inside jamsdk.

The graph: one node per module of the package, an edge A → B for every import of B anywhere in
A's source (top level, inside functions, under ``if TYPE_CHECKING:``); ``from pkg import name``
counts as an import of ``pkg.name`` when that is a module. An import inside a function still
ties two modules together for a reader, so it counts: a cycle is fixed by moving the shared
piece, not by hiding the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import jamsdk

ROOT = Path(jamsdk.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ("jamsdk",) + path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lives in (``jamsdk.a.b.func`` → ``jamsdk.a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                target = _owner(name, modules) if name.split(".")[0] == "jamsdk" else None
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_sees_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_counts_function_level_and_type_checking_imports():
    graph = import_graph()
    # jamsdk/__init__ reaches the Animator only lazily (in __getattr__ and under TYPE_CHECKING)
    assert "jamsdk.runtime.animator" in graph["jamsdk"]
    # `from jamsdk.runtime import _cuda` is an edge to the submodule, not to the package
    assert "jamsdk.runtime._cuda" in graph["jamsdk.runtime.backends.tensorrt"]


def test_no_import_cycles_inside_jamsdk():
    graph = import_graph()
    found = cycles(graph)
    described = []
    for component in found:
        members = set(component)
        edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
        described.append(" | ".join(component) + "\n    " + "\n    ".join(edges))
    assert not found, "import cycles inside jamsdk:\n" + "\n".join(described)
