"""The installed rustok-server distribution is what its source says it is."""

from importlib import metadata, resources

import rustok_server


def test_version_matches_distribution_metadata() -> None:
    assert rustok_server.__version__ == metadata.version("rustok-server")


def test_ships_py_typed_marker() -> None:
    assert resources.files("rustok_server").joinpath("py.typed").is_file()


def test_requires_python_311_or_newer() -> None:
    assert metadata.metadata("rustok-server")["Requires-Python"] == ">=3.11"
