"""RusTok core: resilience, typed state machines, errors and tenant identifiers."""

from rustok_core.__about__ import __version__

__all__ = ["__version__"]
