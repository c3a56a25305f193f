"""Release helper: turn a tag into the package it releases, refusing tags that lie.

A release tag is ``<distribution>-v<version>``, for example ``rustok-core-v0.1.0``.

Usage:
  python tools/release.py check TAG   # prints the package directory; exit 1 with a reason
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from packaging.version import InvalidVersion, Version

from workspace import PACKAGES_DIR, Package, load_workspace

_TAG_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*)-v(?P<version>\S+)$")


class ReleaseError(Exception):
    """A tag that cannot be released; the message is the one-line reason."""


def package_for_tag(tag: str, packages_dir: Path = PACKAGES_DIR) -> Package:
    """The package a tag releases, after checking that the tag's version is the package's."""
    tag = tag.removeprefix("refs/tags/")
    match = _TAG_RE.match(tag)
    if match is None:
        raise ReleaseError(f"tag {tag!r} is not of the form <package>-v<version>")
    workspace = load_workspace(packages_dir)
    # The longest package name the tag starts with wins, so "-v" inside a name is harmless.
    owners = [n for n in workspace if tag.startswith(f"{n}-v")]
    name = max(owners, key=len) if owners else match.group("name")
    if name not in workspace:
        known = ", ".join(sorted(workspace))
        raise ReleaseError(f"tag {tag!r} names unknown package {name!r} (known: {known})")
    try:
        raw_version = tag.removeprefix(f"{name}-v")
        version = Version(raw_version)
    except InvalidVersion:
        raise ReleaseError(f"tag {tag!r} has an invalid version {raw_version!r}") from None
    package = workspace[name]
    if version != package.version:
        raise ReleaseError(
            f"tag {tag!r} says {version} but {name} is at {package.version}"
            f" (src/{package.module}/__about__.py)"
        )
    return package


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "check":
        print("usage: release.py check TAG", file=sys.stderr)
        return 2
    try:
        package = package_for_tag(argv[1])
    except ReleaseError as error:
        print(f"release refused: {error}", file=sys.stderr)
        return 1
    print(package.directory.relative_to(PACKAGES_DIR.parent))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
