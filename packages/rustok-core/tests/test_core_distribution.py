"""The installed rustok-core distribution is what its source says it is."""

from importlib import metadata, resources

import rustok_core


def test_version_matches_distribution_metadata() -> None:
    assert rustok_core.__version__ == metadata.version("rustok-core")


def test_ships_py_typed_marker() -> None:
    assert resources.files("rustok_core").joinpath("py.typed").is_file()


def test_requires_python_311_or_newer() -> None:
    assert metadata.metadata("rustok-core")["Requires-Python"] == ">=3.11"


def test_wheel_ships_the_license_and_project_urls() -> None:
    files = metadata.files("rustok-core") or []
    licenses = [f for f in files if f.name == "LICENSE" and "dist-info" in str(f)]
    assert licenses, "the wheel lost its LICENSE"
    assert "MIT License" in licenses[0].read_text()
    meta = metadata.metadata("rustok-core")
    assert meta["License-Expression"] == "MIT"
    urls = {url.split(",")[0] for url in meta.get_all("Project-URL") or []}
    assert {"Source", "Changelog", "Documentation"} <= urls
