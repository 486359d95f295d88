"""The import statements of the core (src/ocean), read with ast, for the architecture
tests (tests/unit/test_import_loops.py, tests/unit/test_private_imports.py).

Read from the source, not by importing it: an import inside a function counts (a loop
hidden in a function is still a loop), one under ``if TYPE_CHECKING:`` does not (it
never runs).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ocean.config import REPO_ROOT

SOURCE = REPO_ROOT / "src"


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    target: str  # the module named by the statement, absolute
    names: tuple[str, ...]  # what `from target import …` takes (empty for `import target`)
    line: int


def modules(source: Path = SOURCE, under: str = "") -> dict[str, Path]:
    """Every module under ``source`` (or its folder ``under``), by dotted name relative
    to ``source`` (a package by its __init__.py)."""
    found = {}
    for path in sorted((source / under).rglob("*.py")):
        parts = list(path.relative_to(source).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def front_ends() -> dict[str, Path]:
    """The front ends' modules: the Invoke tasks and the console (tui/)."""
    return {"tasks": REPO_ROOT / "tasks.py", **modules(REPO_ROOT, "tui")}


def _runs(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for branch in node.orelse for n in (branch, *_runs(branch)))
            continue
        yield node
        yield from _runs(node)


def imports(name: str, path: Path) -> Iterator[Import]:
    """The import statements of module ``name`` (at ``path``) that run."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _runs(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:  # relative: up from this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, target] if target else base)
            yield Import(name, target, tuple(a.name for a in node.names), node.lineno)


def graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module → the modules of ``found`` its imports run: the named module or, for
    `from package import submodule`, the submodule; and every package on the way,
    whose __init__ runs first (except the importer's own packages)."""
    edges: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        for statement in imports(name, path):
            targets = [statement.target]
            targets += [f"{statement.target}.{taken}" for taken in statement.names]
            for target in targets:
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):
                    module = ".".join(parts[:depth])
                    if module in found and module != name and not name.startswith(module + "."):
                        edges[name].add(module)
    return edges


def loops(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[tuple[str, ...]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(edges[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(found)
