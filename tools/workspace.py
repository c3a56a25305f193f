"""What the workspace holds: its distributions, their versions and their declared siblings.

Shared by the workspace check, the release tool and the index round trip, so that the
three agree on what a package is.
"""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PACKAGES_DIR = ROOT / "packages"
_VERSION_RE = re.compile(r'^__version__\s*=\s*["\']([^"\']+)["\']', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Package:
    """One distribution of the workspace."""

    name: str
    directory: Path
    module: str
    version: Version
    requirements: tuple[Requirement, ...]

    @property
    def source(self) -> Path:
        return self.directory / "src" / self.module

    def sibling_requirements(self, names: set[str]) -> dict[str, Requirement]:
        """The declared requirements that name another workspace package."""
        return {
            canonicalize_name(r.name): r
            for r in self.requirements
            if canonicalize_name(r.name) in names
        }


def load_package(directory: Path) -> Package:
    """Read one package's pyproject and version file."""
    data = tomllib.loads((directory / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    name = canonicalize_name(project["name"])
    module = name.replace("-", "_")
    version_path = directory / data["tool"]["hatch"]["version"]["path"]
    match = _VERSION_RE.search(version_path.read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{version_path}: no __version__ = '...' line")
    requirements = tuple(Requirement(r) for r in project.get("dependencies", []))
    return Package(name, directory, module, Version(match.group(1)), requirements)


def load_workspace(packages_dir: Path = PACKAGES_DIR) -> dict[str, Package]:
    """Every package under ``packages/``, by distribution name."""
    found = [
        load_package(d) for d in sorted(packages_dir.iterdir()) if (d / "pyproject.toml").is_file()
    ]
    return {p.name: p for p in found}


def imported_top_level_modules(path: Path) -> set[str]:
    """Top-level module names a Python file imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules
