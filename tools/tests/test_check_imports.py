"""The folder-circle check, on the real checkout and on made-up packages."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from check_imports import circles, main, problems


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / "packages" / "pkg" / "src" / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_real_checkout_has_no_circle_between_folders() -> None:
    found, folders = problems()
    assert found == []
    assert folders >= 10  # every package's folders were read


def test_two_folders_importing_each_other_are_reported_with_the_imports(tmp_path: Path) -> None:
    _package(
        tmp_path,
        {
            "auth/__init__.py": "",
            "auth/keys.py": "from pkg.tenancy.repository import Tenant\n",
            "tenancy/__init__.py": "",
            "tenancy/repository.py": "Tenant = object\n",
            "tenancy/api.py": "import os\n\nfrom pkg.auth.keys import Key\n",
        },
    )
    found, _folders = problems(tmp_path)
    assert len(found) == 1
    assert "folders in a circle: auth, tenancy" in found[0]
    assert "tenancy -> auth (packages/pkg/src/pkg/tenancy/api.py:3)" in found[0]
    assert main([str(tmp_path)]) == 1


def test_a_longer_circle_is_found_and_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    _package(
        tmp_path,
        {
            "a/__init__.py": "from pkg.b import x\n",
            "b/__init__.py": "from pkg.c import y\n",
            "c/__init__.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import z\n"
            ),
            "app.py": "from pkg.a import x\nfrom pkg.c import y\n",  # top level: no folder
        },
    )
    assert problems(tmp_path)[0] == []
    assert main([str(tmp_path)]) == 0
    (tmp_path / "packages/pkg/src/pkg/c/run.py").write_text("from pkg.a import z\n")
    found, _folders = problems(tmp_path)
    assert len(found) == 1
    assert "folders in a circle: a, b, c" in found[0]


def test_circles_are_the_strongly_connected_groups() -> None:
    edges = {"a": {"b": ""}, "b": {"a": ""}, "c": {"d": ""}, "d": {"e": ""}, "e": {"c": ""}}
    assert sorted(circles(edges)) == [["a", "b"], ["c", "d", "e"]]
    assert circles({"a": {"b": ""}, "b": {"c": ""}}) == []
