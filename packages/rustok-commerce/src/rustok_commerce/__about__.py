"""Version of the rustok-commerce distribution: the one place it is set."""

__version__ = "0.1.0"
"""The version of this distribution (`rustok-commerce`)."""
