"""The workspace dependency check, on the real workspace and on broken copies of it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from check_workspace import main, problems
from workspace import PACKAGES_DIR


@pytest.fixture
def workspace_copy(tmp_path: Path) -> Path:
    target = tmp_path / "packages"
    for package in PACKAGES_DIR.iterdir():
        if (package / "pyproject.toml").is_file():
            shutil.copytree(package / "src", target / package.name / "src")
            (target / package.name / "tests").mkdir()
            shutil.copy(package / "pyproject.toml", target / package.name)
    return target


def test_the_real_workspace_is_consistent() -> None:
    assert problems() == []


def test_an_undeclared_sibling_import_is_reported(workspace_copy: Path) -> None:
    module = workspace_copy / "rustok-core" / "src" / "rustok_core" / "leak.py"
    module.write_text("from rustok_content import __version__\n")
    found = problems(workspace_copy)
    assert len(found) == 1
    assert "imports rustok_content but rustok-core does not declare rustok-content" in found[0]
    assert main([str(workspace_copy)]) == 1


def test_a_range_the_sibling_does_not_satisfy_is_reported(workspace_copy: Path) -> None:
    pyproject = workspace_copy / "rustok-content" / "pyproject.toml"
    text = pyproject.read_text()
    assert '"rustok-core>=0.1,<0.2"' in text
    pyproject.write_text(text.replace('"rustok-core>=0.1,<0.2"', '"rustok-core>=3.0,<4"'))
    found = problems(workspace_copy)
    assert found == ["rustok-content: declares rustok-core<4,>=3.0 but rustok-core is at 0.1.0"]
