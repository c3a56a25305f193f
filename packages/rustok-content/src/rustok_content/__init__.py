"""RusTok content: the content node lifecycle."""

from rustok_content.__about__ import __version__

__all__ = ["__version__"]
