"""Every session a developer or CI runs.

`nox` with no arguments runs what CI runs: lint, typecheck, the test matrix
(every package on every supported Python), the docs examples and the workspace
tools' tests (the internal-index round trip among them).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ["rustok-core", "rustok-content", "rustok-commerce", "rustok-server"]
PYTHONS = ["3.11", "3.12", "3.13"]
# Interpreters installed with pyenv are not all on PATH; make them findable.
for bindir in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin")), reverse=True):
    if bindir not in os.environ.get("PATH", ""):
        os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + bindir

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests", "docs", "tools"]


def _pyproject(package: str) -> dict[str, object]:
    return nox.project.load_toml(ROOT / "packages" / package / "pyproject.toml")


def _siblings(package: str) -> list[str]:
    """The workspace packages `package` depends on, directly or not, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        project = _pyproject(name)["project"]
        assert isinstance(project, dict)
        for requirement in project.get("dependencies", []):
            dep = requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
            if dep in PACKAGES and dep not in order:
                visit(dep)
                order.append(dep)

    visit(package)
    return order


def _test_requirements(package: str) -> list[str]:
    return list(nox.project.dependency_groups(_pyproject(package), "test"))


def _install_workspace(session: nox.Session, packages: list[str], *, editable: bool) -> None:
    args: list[str] = []
    for name in packages:
        if editable:
            args.append("-e")
        args.append(str(ROOT / "packages" / name))
    session.install(*args)


@nox.session(python=PYTHONS)
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package, in a venv holding only that package, its declared dependencies
    (siblings built from the workspace) and its test group."""
    _install_workspace(session, [*_siblings(package), package], editable=False)
    session.install(*_test_requirements(package))
    pkg_dir = ROOT / "packages" / package
    session.run(
        "pytest",
        "--markdown-docs",
        str(pkg_dir / "README.md"),
        str(pkg_dir / "tests"),
        *session.posargs,
    )


@nox.session(python=PYTHONS[0])
def docs(session: nox.Session) -> None:
    """Every Python example in docs/ runs."""
    _install_workspace(session, PACKAGES, editable=False)
    requirements = sorted({r for p in PACKAGES for r in _test_requirements(p)})
    session.install(*requirements)
    session.run("pytest", "--markdown-docs", "docs", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and the workspace dependency check."""
    session.install("ruff>=0.8", "packaging>=24")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", "tools/check_workspace.py")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict, package by package, sources and tests."""
    _install_workspace(session, PACKAGES, editable=True)
    requirements = sorted({r for p in PACKAGES for r in _test_requirements(p)})
    # What the tools and benchmarks import, so that mypy checks them too.
    tool_requirements = ["nox>=2024.10.9", "packaging>=24", "pyinstrument>=4", "asyncpg-stubs"]
    session.install(*requirements, *tool_requirements)
    for package in PACKAGES:
        pkg_dir = ROOT / "packages" / package
        module = package.replace("-", "_")
        session.run("mypy", str(pkg_dir / "src" / module), str(pkg_dir / "tests"))
    session.run("mypy", "tools", "noxfile.py")


@nox.session(python=PYTHONS[0])
def tools(session: nox.Session) -> None:
    """The workspace tools' tests: dependency check, release tool, internal-index round trip."""
    session.install("pytest>=8", "pytest-asyncio>=0.24", "packaging>=24", "hatch>=1.12")
    session.run("pytest", "tools/tests", *session.posargs)


@nox.session(python=PYTHONS[0])
def build(session: nox.Session) -> None:
    """Build an sdist and a wheel of every package into dist/."""
    session.install("hatch>=1.12")
    # hatch builds in environments of its own: keep them inside this session, and keep
    # the variables that point uv at nox's venv away from them.
    hatch_env: dict[str, str | None] = {
        "VIRTUAL_ENV": None,
        "UV_PYTHON": None,
        "UV_PROJECT_ENVIRONMENT": None,
        "HATCH_DATA_DIR": str(Path(session.create_tmp()).resolve() / "hatch"),
    }
    for package in session.posargs or PACKAGES:
        with session.chdir(ROOT / "packages" / package):
            session.run(
                "hatch", "build", "-t", "sdist", "-t", "wheel", str(ROOT / "dist"), env=hatch_env
            )  # fmt: skip


@nox.session(python=PYTHONS[0])
def index(session: nox.Session) -> None:
    """Publish the four wheels to a private index on 127.0.0.1 and install each from it alone."""
    session.install("packaging>=24", "hatch>=1.12")
    session.run("python", "tools/index_roundtrip.py", *session.posargs)


@nox.session(python=PYTHONS[0])
def release(session: nox.Session) -> None:
    """Check a release tag against the workspace: `nox -s release -- rustok-core-v0.1.0`."""
    session.install("packaging>=24")
    session.run("python", "tools/release.py", "check", *session.posargs)


@nox.session(python=PYTHONS[0])
def serve(session: nox.Session) -> None:
    """Run the server on its embedded SQLite default, with a demo tenant."""
    _install_workspace(session, PACKAGES, editable=False)
    session.run("rustok-server", "serve", *session.posargs)


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Every benchmark under tools/bench, one results file and one printed table.

    The HTTP benchmark uses `wrk` when it is on the PATH (Debian: apt-get install wrk)
    and its own asyncio client otherwise; the frozen-database drill needs PostgreSQL's
    server binaries (Debian: apt-get install postgresql) and is skipped without them.
    """
    _install_workspace(session, PACKAGES, editable=False)
    session.install("httpx>=0.27", "redis>=5", "pyinstrument>=4.6")
    session.run("python", "tools/bench/run.py", *session.posargs)
