"""The API reference covers the four packages: a page per public module, an entry per public
name.

`nox -s docs` builds the site (`mkdocs build --strict`) before it runs these tests, so the
inventory the build wrote (`site/objects.inv`, every object the reference rendered) is fresh.
A page missing from `mkdocs.yml`'s nav fails the build itself.
"""

from __future__ import annotations

import ast
import re
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference"
INVENTORY = ROOT / "site" / "objects.inv"
PACKAGES = {
    "rustok_core": "rustok-core",
    "rustok_content": "rustok-content",
    "rustok_commerce": "rustok-commerce",
    "rustok_server": "rustok-server",
}
# Public by name but no API: the scripts Alembic runs (its env.py and the revisions).
NOT_API = ("rustok_server.db.migrations",)

# Public names the reference may leave out, with why: none today. A public name shows in the
# reference only with a docstring (for a constant, a string literal on the line after it); one
# missing from the reference and from this list fails.
UNDOCUMENTED: dict[str, str] = {}


def _public_modules() -> dict[str, Path]:
    """Every public module of the four packages (no part of its path starts with `_`), with
    its source file."""
    modules: dict[str, Path] = {}
    for module, dist in PACKAGES.items():
        src = ROOT / "packages" / dist / "src"
        for path in sorted((src / module).rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if any(p.startswith("_") for p in parts) or name.startswith(NOT_API):
                continue
            modules[name] = path
    return modules


def _page(module: str, source: Path) -> Path:
    """Where the page of `module` is: `<path>/index.md` for a package, `<path>.md` else."""
    path = REFERENCE.joinpath(*module.split("."))
    return path / "index.md" if source.name == "__init__.py" else path.with_suffix(".md")


def _public_names(source: Path) -> list[str]:
    """The names a module exports: its `__all__`, or else every top-level name it defines
    without a leading underscore (imports are not its own)."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            return [str(ast.literal_eval(e)) for e in node.value.elts]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not n.startswith("_")]


def _inventory() -> set[str]:
    """The names of every object in the built site's inventory (Sphinx's objects.inv v2)."""
    header, _, _, _, body = INVENTORY.read_bytes().split(b"\n", 4)
    assert header == b"# Sphinx inventory version 2", header
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


def test_every_public_module_has_a_page() -> None:
    expected = {_page(m, s): f"::: {m}" for m, s in _public_modules().items()}
    missing = sorted(
        f"{p.relative_to(ROOT)} holding `{directive}`"
        for p, directive in expected.items()
        if not p.is_file() or directive not in p.read_text(encoding="utf-8").split("\n")
    )
    assert not missing, "write the reference page(s), and add them to mkdocs.yml's nav: " + (
        "; ".join(missing)
    )


def test_every_page_documents_a_public_module() -> None:
    modules = _public_modules()
    expected = {_page(m, s) for m, s in modules.items()}
    stale = []
    for page in sorted(REFERENCE.rglob("*.md")):
        directives = re.findall(r"^::: (\S+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
        if directives and (page not in expected or directives[0] not in modules):
            stale.append(str(page.relative_to(ROOT)))
    assert not stale, f"pages of modules that are gone or private: {stale}"


def test_every_public_name_has_a_reference_entry() -> None:
    if not INVENTORY.is_file():
        pytest.skip("the site is not built: `nox -s docs` builds it first")
    documented = _inventory()
    public = {
        f"{module}.{name}"
        for module, source in _public_modules().items()
        for name in _public_names(source)
    }
    missing = sorted(public - documented - set(UNDOCUMENTED))
    assert not missing, f"public names without a reference entry (a docstring?): {missing}"
    now_documented = sorted(set(UNDOCUMENTED) & documented)
    assert not now_documented, f"documented now, remove from UNDOCUMENTED: {now_documented}"
    gone = sorted(set(UNDOCUMENTED) - public)
    assert not gone, f"no longer public, remove from UNDOCUMENTED: {gone}"


# Docstring syntax the reference's Google-style parser does not read, with what to write instead.
UNREAD_SYNTAX = {
    # `Examples:` is a section of examples (the doctest rendered as code); `Example:` is a
    # plain admonition, whose `>>>` lines render as nested quotes.
    r"^\s*Example:\s*$": "title the section `Examples:`",
    # Sphinx roles are printed as they are.
    r":(?:class|func|meth|attr|exc|data|mod|obj|const):`": "write the name in backticks",
}


@pytest.mark.parametrize("pattern", UNREAD_SYNTAX)
def test_docstrings_use_syntax_the_reference_reads(pattern: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{source[: match.start()].count(chr(10)) + 1}"
        for module, dist in PACKAGES.items()
        for path in sorted((ROOT / "packages" / dist / "src" / module).rglob("*.py"))
        for source in [path.read_text(encoding="utf-8")]
        for match in re.finditer(pattern, source, re.MULTILINE)
    ]
    assert not found, f"{UNREAD_SYNTAX[pattern]}: {found}"
