"""`SecurityHeadersMiddleware`: the headers every response carries.

``X-Content-Type-Options: nosniff`` on every response, ``Cache-Control: no-store`` on
``/api`` responses (tenant data never sits in a shared cache) unless the route set its own,
and a ``Content-Security-Policy`` that allows nothing (`NOTHING_POLICY`: JSON and the
problem pages load nothing and are framed nowhere) unless the route set its own: the
documentation pages set `docs_content_security_policy`. The server banner is turned off
where uvicorn is started (``server_header=False``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "NOTHING_POLICY",
    "SecurityHeadersMiddleware",
    "docs_content_security_policy",
]

CONTENT_SECURITY_POLICY: Final = "Content-Security-Policy"
"""The name of the ``Content-Security-Policy`` response header."""
NOTHING_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"
"""The policy of every response that sets none: load nothing, be framed by nobody."""

_NOSNIFF: Final = (b"x-content-type-options", b"nosniff")
_NO_STORE: Final = (b"cache-control", b"no-store")
_NOTHING: Final = (CONTENT_SECURITY_POLICY.lower().encode("latin-1"), NOTHING_POLICY.encode())


def docs_content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    """The ``Content-Security-Policy`` of the documentation pages (``/docs``, ``/redoc``).

    Everything from the server's own origin and nothing from anywhere else: scripts from
    the server, plus the inline ones whose hashes are given (``sha256-<base64>``; Swagger
    UI's page starts the UI with one); inline styles (both UIs set them); images from the
    server or ``data:`` URLs; requests to the server only (the OpenAPI document, and the
    calls of "Try it out"); ReDoc's search worker from a ``blob:`` URL; no plugins, no
    ``<base>``; framed by nobody.

    Examples:
        >>> "frame-ancestors 'none'" in docs_content_security_policy()
        True
        >>> docs_content_security_policy(["sha256-abc="]).split("; ")[1]
        "script-src 'self' 'sha256-abc='"
    """
    scripts = " ".join(["'self'", *(f"'{digest}'" for digest in script_hashes)])
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the security headers (see the module docstring).

    Args:
        app: the inner application.
        api_prefix: paths under it get ``Cache-Control: no-store``.
    """

    def __init__(self, app: ASGIApp, api_prefix: str = "/api/") -> None:
        self.app = app
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith(self.api_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                cached = policy = False
                for name, _ in headers:
                    lowered = name.lower()
                    cached = cached or lowered == b"cache-control"
                    policy = policy or lowered == _NOTHING[0]
                headers.append(_NOSNIFF)
                if api and not cached:
                    headers.append(_NO_STORE)
                if not policy:
                    headers.append(_NOTHING)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
