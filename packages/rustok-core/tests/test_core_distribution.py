"""The installed rustok-core distribution is what its source says it is."""

from importlib import metadata, resources

import rustok_core


def test_version_matches_distribution_metadata() -> None:
    assert rustok_core.__version__ == metadata.version("rustok-core")


def test_ships_py_typed_marker() -> None:
    assert resources.files("rustok_core").joinpath("py.typed").is_file()


def test_requires_python_311_or_newer() -> None:
    assert metadata.metadata("rustok-core")["Requires-Python"] == ">=3.11"
