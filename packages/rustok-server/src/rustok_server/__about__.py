"""Version of the rustok-server distribution: the one place it is set."""

__version__ = "0.1.0"
"""The version of this distribution (`rustok-server`)."""
