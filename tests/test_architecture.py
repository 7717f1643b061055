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

from test_import_cycles import ROOT, _modules, import_graph

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"

_NODE = re.compile(r'^\s*"([^"]+)"\s*\[([^\n]*)', re.M)
_EDGE = re.compile(r'^\s*"([^"]+)"\s*->\s*"([^"]+)"\s*(\[[^\]]*\])?', re.M)
_LABEL = re.compile(r'label="((?:[^"\\]|\\.)*)"')
_PY = re.compile(r"[\w/]+\.py\b")
_GRAPH = re.compile(r"^digraph\s+(\w+)", re.M)


def _dot(text: str | None = None) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    """The picture's boxes (name → label) and arrows (from, to, attributes)."""
    text = (DOCS / "architecture.dot").read_text(encoding="utf-8") if text is None else text
    nodes = {}
    for name, attrs in _NODE.findall(text):
        label = _LABEL.search(attrs)
        nodes[name] = label.group(1) if label else name
    return nodes, _EDGE.findall(text)


def _folder_only(path: Path) -> bool:
    """A package ``__init__`` that holds nothing but its docstring: the folder, drawn as its cluster."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _files_of(box: str, label: str, modules: dict[str, Path]) -> tuple[set[str], list[str]]:
    """The modules a box shows: each ``….py`` its label names, looked up from the box module's folder
    upwards (``inbox.py`` beside ``serve/app.py``, ``runtime/frames.py`` from the package root)."""
    by_path = {path: mod for mod, path in modules.items()}
    shown, unknown = set(), []
    for name in _PY.findall(label.replace("\\n", " ")):
        folder = modules[box].parent
        while True:
            if folder / name in by_path:
                shown.add(by_path[folder / name])
                break
            if folder == ROOT:
                unknown.append(name)
                break
            folder = folder.parent
    return shown, unknown


def picture_problems(nodes: dict[str, str], edges: list[tuple[str, str, str]],
                     modules: dict[str, Path], graph: dict[str, set[str]]) -> list[str]:
    """Everything on the picture that the code does not bear out, and every module it leaves out."""
    problems = [f"box {n!r} is not a module of jamsdk" for n in sorted(nodes)
                if not n.startswith("file:") and n not in modules]
    drawn: dict[str, list[str]] = {}
    for box, label in sorted(nodes.items()):
        if box.startswith("file:") or box not in modules:
            continue
        shown, unknown = _files_of(box, label, modules)
        problems += [f"box {box!r} shows {name!r}, which is no module of jamsdk" for name in unknown]
        if box not in shown:
            problems.append(f"box {box!r} does not name its own file in its label")
        for mod in shown | {box}:
            drawn.setdefault(mod, []).append(box)
    problems += [f"{mod} is drawn in several boxes: {boxes}" for mod, boxes in sorted(drawn.items())
                 if len(set(boxes)) > 1]
    problems += [f"{mod} ({modules[mod].relative_to(ROOT.parent)}) is on no box of the picture: draw it, or "
                 f"name its file in the label of the box it belongs with" for mod in sorted(modules)
                 if mod not in drawn and not _folder_only(modules[mod])]
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
    return problems


def test_boxes_are_modules_and_arrows_are_imports():
    nodes, edges = _dot()
    assert len(nodes) > 20 and len(edges) > 20  # the parse found the picture
    problems = picture_problems(nodes, edges, _modules(), import_graph())
    assert not problems, "\n".join(problems)


def test_an_undrawn_module_or_an_arrow_without_an_import_fails():
    modules, graph = _modules(), import_graph()
    text = (DOCS / "architecture.dot").read_text(encoding="utf-8")
    # a module left off the picture: serve/inbox.py dropped from the label of the box it is drawn in
    assert "inbox.py" in text
    undrawn = picture_problems(*_dot(text.replace("inbox.py", "")), modules, graph)
    assert undrawn == ["jamsdk.serve.inbox (jamsdk/serve/inbox.py) is on no box of the picture: draw it, or "
                       "name its file in the label of the box it belongs with"]
    # its neighbour: a new module of the package that nobody drew
    extra = dict(modules, **{"jamsdk.runtime.new_room": ROOT / "runtime" / "new_room.py"})
    assert [p.split(" ")[0] for p in picture_problems(*_dot(text), extra, graph)] == ["jamsdk.runtime.new_room"]
    # an arrow between two modules of which neither imports the other
    assert "jamsdk.stages" not in graph["jamsdk.serve.app"] and "jamsdk.serve.app" not in graph["jamsdk.stages"]
    fake = text.rstrip().rstrip("}") + '  "jamsdk.serve.app" -> "jamsdk.stages";\n}\n'
    assert picture_problems(*_dot(fake), modules, graph) == [
        "arrow jamsdk.serve.app -> jamsdk.stages: neither module imports the other"]
    # a box that names a file which is no module, and a module in two boxes
    wrong = text.replace("inbox.py", "inbox2.py")
    assert "box 'jamsdk.serve.app' shows 'inbox2.py', which is no module of jamsdk" in picture_problems(
        *_dot(wrong), modules, graph)
    twice = text.replace('label="stages.py', 'label="stages.py, serve/inbox.py')
    assert any("jamsdk.serve.inbox is drawn in several boxes" in p
               for p in picture_problems(*_dot(twice), modules, graph))


def test_svg_was_rendered_from_the_dot_file():
    # Graphviz names every node and edge in a <title>: the SVG must show exactly the DOT's.
    nodes, edges = _dot()
    svg = (DOCS / "architecture.svg").read_text(encoding="utf-8")
    titles = {html.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", svg)}
    drawn_nodes = {t for t in titles if "->" not in t}
    drawn_edges = {tuple(t.split("->")) for t in titles if "->" in t}
    name = _GRAPH.search((DOCS / "architecture.dot").read_text(encoding="utf-8")).group(1)
    assert drawn_nodes - {name} - {t for t in drawn_nodes if t.startswith("cluster_")} == set(nodes), (
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
