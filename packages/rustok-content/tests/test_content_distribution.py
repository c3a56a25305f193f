"""The installed rustok-content distribution is what its source says it is."""

from importlib import metadata, resources

import rustok_content


def test_version_matches_distribution_metadata() -> None:
    assert rustok_content.__version__ == metadata.version("rustok-content")


def test_ships_py_typed_marker() -> None:
    assert resources.files("rustok_content").joinpath("py.typed").is_file()


def test_requires_python_311_or_newer() -> None:
    assert metadata.metadata("rustok-content")["Requires-Python"] == ">=3.11"
