"""The layout's import rules that import-linter's contracts do not express.

The layers (cli -> measure : server : monitor : board -> render -> config -> core), the pure core
and the acyclic packages are contracts in ``.importlinter``: run ``lint-imports`` (docs/architecture.md).
Two finer rules are checked here:

- no import cycle between any two *modules* (import-linter's ``acyclic_siblings`` compares the
  children of a package, so a package's ``__init__`` importing its own modules and back is not a
  sibling cycle to it; it is one here);
- imports sit at the top of a module. Inside a function only an optional, heavy or platform-only
  module (:data:`LAZY_ALLOWED`) is imported, and the line (or the line above it) says why in a
  comment. A function-level import is how a cycle hides, so the rule keeps the first one honest.

Each failure names the modules and lines to change.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

import grimp
import pytest

import giga_netcheck

PACKAGE = Path(giga_netcheck.__file__).resolve().parent
REPO = PACKAGE.parent

LAZY_ALLOWED = frozenset(
    {
        # optional or slow to import, used by one command or one probe
        "duckdb",
        "pyarrow",
        "pyspark",
        "scapy",
        "speedtest",
        # platform-only standard modules: importing them elsewhere fails
        "ctypes",
        "msvcrt",
        "fcntl",
        "winreg",
    }
)
"""Top-level names that may be imported inside a function (with a comment saying why)."""


# ----------------------------------------------------------------------------- cycles


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every set of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
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
                        out.append(sorted(component))
    return sorted(out)


def _shortest_cycle(graph: grimp.ImportGraph, component: list[str]) -> list[str]:
    """The shortest import path from the component's first module back to itself, inside the component."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.find_modules_directly_imported_by(node) & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {component}")  # a component always has one


def _describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    """``a -(l.3)-> b -(l.9)-> a``: each arrow carries the importing module's line numbers."""
    text = cycle[0]
    for importer, imported in zip(cycle, cycle[1:]):
        lines = sorted({d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)})
        text += f" -(l.{', l.'.join(map(str, lines))})-> {imported}" if lines else f" -> {imported}"
    return text


def import_cycles(graph: grimp.ImportGraph) -> list[str]:
    """One line per set of mutually importing modules: its shortest cycle, with the import lines."""
    return [
        f"{_describe(graph, _shortest_cycle(graph, c))}   (all modules in this knot: {', '.join(c)})" for c in _strongly_connected(graph)
    ]


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("giga_netcheck", cache_dir=None)
    cycles = import_cycles(graph)
    assert not cycles, "import cycles (every import, also those inside functions, counts):\n" + "\n".join(cycles)


def test_cycle_finder_names_a_cycle() -> None:
    """The finder itself: a two-module and a three-module cycle are found and named; a chain is not."""
    g = grimp.ImportGraph()
    for importer, imported in [
        ("p.a", "p.b"),
        ("p.b", "p.a"),
        ("p.c", "p.d"),
        ("p.d", "p.e"),
        ("p.e", "p.c"),
        ("p.f", "p.a"),
        ("p.g", "p.f"),
    ]:
        g.add_import(importer=importer, imported=imported, line_number=7, line_contents=f"import {imported}")
    assert _strongly_connected(g) == [["p.a", "p.b"], ["p.c", "p.d", "p.e"]]
    cycles = import_cycles(g)
    assert cycles[0].startswith("p.a -(l.7)-> p.b -(l.7)-> p.a ")
    assert cycles[1].startswith("p.c -(l.7)-> p.d -(l.7)-> p.e -(l.7)-> p.c ")


# ----------------------------------------------------------------------------- imports inside functions


def _comment_lines(source: str) -> set[int]:
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            lines.add(tok.start[0])
    return lines


def _imports_in_functions(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    def walk(node: ast.AST, in_function: bool) -> Iterator[ast.Import | ast.ImportFrom]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if in_function:
                    yield child
            else:
                yield from walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    yield from walk(tree, False)


def _top_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if node.level:  # relative: one of ours
        return ["giga_netcheck"]
    return [(node.module or "").split(".")[0]]


def inner_import_problems(source: str, name: str) -> list[str]:
    """``name:line: why`` for each import inside a function that the rule does not allow."""
    tree = ast.parse(source, filename=name)
    comments = _comment_lines(source)
    out = []
    for node in _imports_in_functions(tree):
        text = ast.get_source_segment(source, node) or ""
        text = " ".join(text.split())
        heavy = [n for n in _top_names(node) if n not in LAZY_ALLOWED]
        if heavy:
            out.append(f"{name}:{node.lineno}: `{text}` inside a function: move it to the top of the module")
            continue
        span = range(node.lineno - 1, (node.end_lineno or node.lineno) + 1)
        if not comments.intersection(span):
            out.append(f"{name}:{node.lineno}: `{text}` inside a function needs a comment saying why (optional, heavy or platform-only)")
    return out


def _sources() -> Iterable[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_imports_inside_functions_only_for_optional_heavy_modules() -> None:
    problems = []
    for path in _sources():
        problems += inner_import_problems(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert not problems, "imports inside functions:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    import json\n", ["m.py:2: `import json` inside a function: move it to the top of the module"]),
        (
            "def f():\n    from giga_netcheck.core import stats\n",
            ["m.py:2: `from giga_netcheck.core import stats` inside a function: move"],
        ),
        ("class C:\n    def f(self):\n        from . import x\n", ["m.py:3: `from . import x` inside a function: move"]),
        ("def f():\n    import duckdb\n", ["m.py:2: `import duckdb` inside a function needs a comment"]),
        ("def f():\n    import duckdb  # optional: batch only\n", []),
        ("def f():\n    # scapy is slow to import\n    from scapy.layers import inet\n", []),
        ("import json\n\nclass C:\n    import os\n", []),
    ],
)
def test_inner_import_rule(source: str, expected: list[str]) -> None:
    got = inner_import_problems(source, "m.py")
    assert len(got) == len(expected)
    for line, start in zip(got, expected):
        assert line.startswith(start)
