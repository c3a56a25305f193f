"""The installed rustok-commerce distribution is what its source says it is."""

from importlib import metadata, resources

import rustok_commerce


def test_version_matches_distribution_metadata() -> None:
    assert rustok_commerce.__version__ == metadata.version("rustok-commerce")


def test_ships_py_typed_marker() -> None:
    assert resources.files("rustok_commerce").joinpath("py.typed").is_file()


def test_requires_python_311_or_newer() -> None:
    assert metadata.metadata("rustok-commerce")["Requires-Python"] == ">=3.11"
