"""The import graph of ``src/cloverleaf``, read from the source (no import is executed).

Every ``import`` statement counts, wherever it stands: module level, inside a function (a lazy
import is still a dependency), under ``if TYPE_CHECKING:`` (a cycle for the type checker is a
cycle for the reader). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
else to ``pkg``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import cloverleaf

SRC = Path(cloverleaf.__file__).parent
ROOT = "cloverleaf"


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _resolve(importer: str, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = importer.split(".")
    if not _is_package(importer):
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


@cache
def edges() -> dict[str, dict[str, int]]:
    """importer -> {imported module inside cloverleaf: first line number}."""
    known = modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in known.items():
        out: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            found: list[str] = []
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.append(sub if sub in known else base)
            for target in found:
                while target and target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]  # ``import a.b.c`` of a non-module: its package
                if target in known and target != name:
                    out.setdefault(target, node.lineno)
        graph[name] = out
    return graph


def cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    graph = edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    import sys

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in graph:
        if v not in index:
            visit(v)
    return found
