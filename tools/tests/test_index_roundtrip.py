"""The internal-index round trip, run for real: hatch-built wheels, a pypiserver on
127.0.0.1, twine upload with credentials, and one fresh venv per package installing from
that index alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from index_roundtrip import Installed, run
from workspace import load_workspace


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Installed]:
    return run(tmp_path_factory.mktemp("index"))


def test_every_package_installs_from_the_private_index_alone(
    round_trip: dict[str, Installed],
) -> None:
    workspace = load_workspace()
    by_name = {name: i for name, i in round_trip.items() if not name.startswith("packages/")}
    assert set(by_name) == set(workspace)
    for name, installed in by_name.items():
        assert installed.versions[name] == str(workspace[name].version)


def test_server_brings_every_sibling(round_trip: dict[str, Installed]) -> None:
    server = round_trip["rustok-server"]
    assert set(server.versions) == {"rustok-core", "rustok-content", "rustok-commerce",
                                    "rustok-server"}  # fmt: skip


def test_content_brings_core_and_nothing_of_server_or_commerce(
    round_trip: dict[str, Installed],
) -> None:
    content = round_trip["rustok-content"]
    assert set(content.versions) == {"rustok-core", "rustok-content"}
    assert "rustok-commerce" not in content.distributions
    assert "rustok-server" not in content.distributions


def test_core_installs_alone(round_trip: dict[str, Installed]) -> None:
    assert set(round_trip["rustok-core"].versions) == {"rustok-core"}


def test_content_checkout_installs_by_path_with_core_and_nothing_else(
    round_trip: dict[str, Installed],
) -> None:
    content = round_trip["packages/rustok-content"]
    assert set(content.versions) == {"rustok-core", "rustok-content"}
    assert "rustok-commerce" not in content.distributions
    assert "rustok-server" not in content.distributions


def test_every_wheel_ships_its_license_and_project_urls(round_trip: dict[str, Installed]) -> None:
    for name in load_workspace():
        installed = round_trip[name]
        (license_text,) = installed.licenses[name]
        assert "MIT License" in license_text
        assert installed.license_expressions[name] == "MIT"
        assert {"Source", "Changelog", "Documentation"} <= set(installed.project_urls[name])
