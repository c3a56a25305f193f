"""RusTok commerce: the order lifecycle."""

from rustok_commerce.__about__ import __version__

__all__ = ["__version__"]
