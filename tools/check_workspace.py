"""Fail when a package imports a sibling it does not declare, or declares a sibling range
that the sibling's current version does not satisfy.

Usage: ``python tools/check_workspace.py [PACKAGES_DIR]``. Prints one line per problem and
exits 1 when there is any; prints a one-line summary and exits 0 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import PACKAGES_DIR, imported_top_level_modules, load_workspace


def problems(packages_dir: Path = PACKAGES_DIR) -> list[str]:
    """Every violation of the workspace's dependency rules, as readable lines."""
    workspace = load_workspace(packages_dir)
    names = set(workspace)
    by_module = {p.module: p for p in workspace.values()}
    found: list[str] = []
    for package in workspace.values():
        declared = package.sibling_requirements(names)
        for sibling, requirement in sorted(declared.items()):
            current = workspace[sibling].version
            if not requirement.specifier.contains(current, prereleases=True):
                found.append(
                    f"{package.name}: declares {requirement} but {sibling} is at {current}"
                )
        for folder in (package.source, package.directory / "tests"):
            for path in sorted(folder.rglob("*.py")):
                if "typing_cases" in path.parts:
                    continue
                for module in sorted(imported_top_level_modules(path) & set(by_module)):
                    imported = by_module[module]
                    if imported.name != package.name and imported.name not in declared:
                        rel = path.relative_to(packages_dir.parent)
                        found.append(
                            f"{rel}: imports {module} but {package.name} does not declare"
                            f" {imported.name}"
                        )
    return found


def main(argv: list[str]) -> int:
    packages_dir = Path(argv[0]) if argv else PACKAGES_DIR
    found = problems(packages_dir)
    for line in found:
        print(line)
    if found:
        print(f"workspace check: {len(found)} problem(s)", file=sys.stderr)
        return 1
    print(f"workspace check: {len(load_workspace(packages_dir))} packages, dependencies consistent")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
