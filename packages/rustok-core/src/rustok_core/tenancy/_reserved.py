"""Slugs no tenant may take: they name system endpoints and common subdomains."""

from __future__ import annotations

from typing import Final

__all__ = ["RESERVED_SLUGS"]

#: Refused as tenant slugs (compared after trimming and lower-casing).
RESERVED_SLUGS: Final[frozenset[str]] = frozenset(
    {
        # system endpoints
        "api", "admin", "www", "app", "cdn", "assets", "static", "health", "metrics",
        "docs", "swagger",
        # common subdomains
        "mail", "smtp", "pop", "imap", "ftp", "sftp", "ssh", "vpn",
        # authentication
        "auth", "login", "logout", "register", "signup", "signin",
        # environments
        "dev", "test", "staging", "prod", "production", "localhost",
        # storage
        "db", "database", "cache", "redis", "postgres",
        # special
        "root", "system", "internal", "private", "public",
    }
)  # fmt: skip
"""Slugs no tenant may take: they name parts of the platform (``api``, ``admin``, ``www``, ...)."""
