"""`SecurityHeadersMiddleware`: the headers every response carries.

``X-Content-Type-Options: nosniff`` on every response, and ``Cache-Control: no-store`` on
``/api`` responses (tenant data never sits in a shared cache) unless the route set its own.
The server banner is turned off where uvicorn is started (``server_header=False``).
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware"]

_NOSNIFF: Final = (b"x-content-type-options", b"nosniff")
_NO_STORE: Final = (b"cache-control", b"no-store")


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
                headers.append(_NOSNIFF)
                if api and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
