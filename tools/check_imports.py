"""Fail when the folders of a package import each other in a circle.

Each package is layered by folder: in ``rustok_server``, ``tenancy`` is below ``auth``
(keys belong to tenants), ``db`` below ``content`` and ``commerce``, ``observability``
below ``http`` and ``tenancy``. An import that runs back up (``tenancy`` importing
``auth``) makes two folders one knot that can only be read, tested and changed together.
This check finds every such circle, however long, between the folders (sub-packages) of
each workspace package; modules at a package's top level (``app.py``, ``cli.py``,
``errors.py``, ...) assemble or are shared and are not folders. Imports under ``if
TYPE_CHECKING:`` are not run and are not counted.

Usage: ``python tools/check_imports.py [ROOT]``. Prints each circle with one import that
closes it and exits 1 when there is any; prints a one-line summary and exits 0 otherwise.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

Edges = dict[str, dict[str, str]]
"""folder -> imported folder -> one import that ties them, as ``file:line``."""


def _run_time_imports(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """The modules a file imports when it runs, with their lines (relative imports
    resolved by the caller; ``if TYPE_CHECKING:`` blocks skipped)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def folder_edges(package_dir: Path, root: Path) -> Edges:
    """The imports between the folders of one import package (``src/<name>``)."""
    name = package_dir.name
    edges: Edges = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir).parts
        if len(parts) < 2:
            continue  # a top-level module
        source = parts[0]
        for module, line in _run_time_imports(ast.parse(path.read_text(), str(path))):
            names = module.split(".")
            if names[0] != name or len(names) < 2 or not (package_dir / names[1]).is_dir():
                continue
            target = names[1]
            if target != source:
                edges.setdefault(source, {}).setdefault(target, f"{path.relative_to(root)}:{line}")
    return edges


def circles(edges: Edges) -> list[list[str]]:
    """The strongly connected groups of more than one folder (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    nodes = set(edges) | {target for targets in edges.values() for target in targets}
    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def problems(root: Path = ROOT) -> tuple[list[str], int]:
    """Every circle between the folders of a workspace package, as readable lines, and
    how many folders were checked."""
    found: list[str] = []
    folders = 0
    for package_dir in sorted(root.glob("packages/*/src/*")):
        if not package_dir.is_dir():
            continue
        edges = folder_edges(package_dir, root)
        folders += sum(1 for child in package_dir.iterdir() if (child / "__init__.py").is_file())
        for group in circles(edges):
            ties = [
                f"{source} -> {target} ({where})"
                for source in group
                for target, where in edges.get(source, {}).items()
                if target in group
            ]
            found.append(
                f"{package_dir.name}: folders in a circle: {', '.join(group)}; " + "; ".join(ties)
            )
    return found, folders


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else ROOT
    found, folders = problems(root)
    for line in found:
        print(line)
    if found:
        return 1
    print(f"imports: {folders} folders checked; no two import each other, directly or not")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
