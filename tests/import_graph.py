"""The package's module import graph, read from the source with ``ast`` (nothing is imported).

Every ``import`` counts wherever it is written, function bodies included (a lazy import still makes two
modules depend on each other), except those under ``if TYPE_CHECKING:``, which never run. ``from a.b
import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``; parent packages imported on the
way are not edges (every package ``__init__`` that re-exports its modules would otherwise be a cycle).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "adaptermix"
SRC = Path(__file__).resolve().parents[1] / "src"


def module_files(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``src``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@cache
def import_graph() -> dict[str, frozenset[str]]:
    """Module -> the modules of adaptermix it imports (edges to other packages are dropped)."""
    return build_graph(SRC, PACKAGE)


def build_graph(src: Path, package: str) -> dict[str, frozenset[str]]:
    """Module -> the modules of ``package`` (under ``src``) it imports."""
    files = module_files(src, package)
    known = set(files)
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        targets = _imports(tree, module, path.name == "__init__.py", known)
        graph[module] = frozenset(t for t in targets if t in known and t != module)
    return graph


def cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (each sorted), sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(out)


def path_between(graph: dict[str, frozenset[str]], start: str, goal: str) -> list[str] | None:
    """A shortest import chain ``start -> ... -> goal`` (breadth first), or None."""
    prev: dict[str, str | None] = {start: None}
    queue = [start]
    for v in queue:
        for w in sorted(graph.get(v, ())):
            if w not in prev:
                prev[w] = v
                if w == goal:
                    chain = [w]
                    while (p := prev[chain[-1]]) is not None:
                        chain.append(p)
                    return chain[::-1]
                queue.append(w)
    return None
