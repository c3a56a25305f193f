"""The release tool refuses tags that name no package or another version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from release import ReleaseError, package_for_tag
from workspace import ROOT, load_workspace

TOOLS = ROOT / "tools"


def _release(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLS / "release.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_matching_tag_names_its_package() -> None:
    core = load_workspace()["rustok-core"]
    assert package_for_tag(f"rustok-core-v{core.version}") == core
    assert package_for_tag(f"refs/tags/rustok-core-v{core.version}") == core


@pytest.mark.parametrize(
    ("tag", "reason"),
    [
        ("rustok-nope-v0.1.0", "names unknown package 'rustok-nope'"),
        ("rustok-core-v9.9.9", "says 9.9.9 but rustok-core is at"),
        ("rustok-core-0.1.0", "is not of the form <package>-v<version>"),
        ("rustok-core-vbanana", "has an invalid version 'banana'"),
    ],
)
def test_a_bad_tag_is_refused_with_a_reason(tag: str, reason: str) -> None:
    with pytest.raises(ReleaseError, match=reason.replace("<", ".").replace(">", ".")):
        package_for_tag(tag)


@pytest.mark.parametrize("tag", ["rustok-nope-v0.1.0", "rustok-core-v9.9.9"])
def test_the_command_exits_non_zero_with_one_line(tag: str) -> None:
    result = _release("check", tag)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("release refused: ")


def test_the_command_prints_the_package_directory() -> None:
    version = load_workspace()["rustok-commerce"].version
    result = _release("check", f"rustok-commerce-v{version}")
    assert result.returncode == 0
    assert result.stdout.strip() == "packages/rustok-commerce"
