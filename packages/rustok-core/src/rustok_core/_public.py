"""The public path of a package's names, shown instead of the private module defining them."""

from __future__ import annotations

__all__ = ["show_as_public"]


def show_as_public(package: str, *objects: object) -> None:
    """Show ``objects`` (classes, functions) as members of ``package`` in tracebacks and
    reprs: the path users import them from, not the private module that defines them."""
    for obj in objects:
        obj.__module__ = package
