"""docs/architecture.md and its picture stay true to the code.

The picture (docs/architecture.dot, rendered to docs/architecture.svg) is drawn by hand, so that it
shows how a frame flows rather than every import; these checks keep it from drifting: its boxes are
modules that exist, its arrows are imports that exist, its file boxes are files that the modules
joined to them name, and the committed SVG was rendered from the committed DOT file. The page's own
paths must exist too.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

from test_import_cycles import _modules, import_graph

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

_NODE = re.compile(r'^\s*"([^"]+)"\s*\[', re.M)
_EDGE = re.compile(r'^\s*"([^"]+)"\s*->\s*"([^"]+)"\s*(\[[^\]]*\])?', re.M)


def _dot() -> tuple[set[str], list[tuple[str, str, str]]]:
    text = (DOCS / "architecture.dot").read_text(encoding="utf-8")
    return set(_NODE.findall(text)), _EDGE.findall(text)


def test_boxes_are_modules_and_arrows_are_imports():
    modules = _modules()
    graph = import_graph()
    nodes, edges = _dot()
    assert len(nodes) > 20 and len(edges) > 20  # the parse found the picture
    problems = [f"box {n!r} is not a module of jamsdk" for n in sorted(nodes)
                if not n.startswith("file:") and n not in modules]
    for a, b, attrs in edges:
        problems += [f"arrow {a} -> {b}: {x!r} has no box" for x in (a, b) if x not in nodes]
        if a.startswith("file:") or b.startswith("file:"):
            name, module = (a[5:], b) if a.startswith("file:") else (b[5:], a)
            if module in modules and name not in modules[module].read_text(encoding="utf-8"):
                problems.append(f"arrow {a} -> {b}: {module} never names {name!r}")
        elif a in modules and b in modules:
            if "dashed" in attrs:  # loaded by name (the CLI's command table)
                if f'"{b.rpartition(".")[2]}"' not in modules[a].read_text(encoding="utf-8"):
                    problems.append(f"dashed arrow {a} -> {b}: {a} never spells {b.rpartition('.')[2]!r}")
            elif b not in graph[a] and a not in graph[b]:
                problems.append(f"arrow {a} -> {b}: neither module imports the other")
    assert not problems, "\n".join(problems)


def test_svg_was_rendered_from_the_dot_file():
    # Graphviz names every node and edge in a <title>: the SVG must show exactly the DOT's.
    nodes, edges = _dot()
    svg = (DOCS / "architecture.svg").read_text(encoding="utf-8")
    titles = {html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", svg)}
    drawn_nodes = {t for t in titles if "->" not in t}
    drawn_edges = {tuple(t.split("->")) for t in titles if "->" in t}
    assert drawn_nodes - {"jamsdk"} - {t for t in drawn_nodes if t.startswith("cluster_")} == nodes, (
        "docs/architecture.svg is out of date: dot -Tsvg docs/architecture.dot -o docs/architecture.svg")
    assert drawn_edges == {(a, b) for a, b, _ in edges}, (
        "docs/architecture.svg is out of date: dot -Tsvg docs/architecture.dot -o docs/architecture.svg")


def test_paths_on_the_page_exist():
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:[\w./-]+/)?[\w-]+\.py)`", page))
    assert len(paths) > 30
    missing = [p for p in sorted(paths)
               if not (REPO / "jamsdk" / p).is_file() and not (REPO / p).is_file()]
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
    assert "docs/architecture.md" in (REPO / "README.md").read_text(encoding="utf-8")


def backslash_imports(root: Path) -> list[str]:
    """``file:line`` of every import statement under ``root`` continued with a backslash."""
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and "\\\n" in ast.get_source_segment(source, node):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_imports_are_parenthesised_not_backslash_continued(tmp_path):
    (tmp_path / "ok.py").write_text("from os import (\n    path, sep,\n)\nx = 1 + \\\n    2\n")
    (tmp_path / "bad.py").write_text("import os\nif os:\n    from os import path, \\\n        sep\n")
    assert backslash_imports(tmp_path) == ["bad.py:3"]  # the finder sees one, and not a continued expression
    found = [f"{d}/{hit}" for d in ("jamsdk", "benchmarks", "tests") for hit in backslash_imports(REPO / d)]
    assert not found, f"continue these imports in parentheses, not with a backslash: {found}"
