"""RusTok server: the multi-tenant FastAPI service."""

from rustok_server.__about__ import __version__

__all__ = ["__version__"]
