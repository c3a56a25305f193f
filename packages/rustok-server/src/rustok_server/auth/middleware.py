"""`AuthMiddleware`: verifies the ``Authorization`` header of every request.

Pure ASGI, like the tenant middleware after it: the principal is put in the request state
(``principal``) for tenant resolution and the routes' `require` dependencies. Under
``/api`` a credential that fails verification is a 401 at once, and why it failed is
logged (naming a key by its public id, never its secret); elsewhere (health checks) it is
ignored and the request is anonymous. A missing credential is decided by the route
(the 401 of `require`), so an unknown path stays a 404.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from rustok_server.auth.service import Authentication
from rustok_server.errors import InvalidCredentialError

__all__ = ["API_PREFIX", "AuthMiddleware"]

logger = logging.getLogger("rustok.server.auth")

API_PREFIX: Final = "/api/"
_AUTHORIZATION: Final = b"authorization"


class AuthMiddleware:
    """Verifies bearer credentials (API keys and JWTs) before tenant resolution.

    Args:
        app: the inner application.
        auth: the server's authentication.
    """

    def __init__(self, app: ASGIApp, auth: Authentication) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw: bytes | None = None
        for name, value in scope["headers"]:
            if name == _AUTHORIZATION:
                if raw is not None:
                    raw = b""  # two credentials are no credential
                    break
                raw = value
        principal = None
        if raw is not None:
            on_api = scope["path"].startswith(API_PREFIX)
            scheme, _, token = raw.partition(b" ")
            try:
                if scheme.lower() != b"bearer" or not token.strip():
                    raise InvalidCredentialError("not one 'Bearer <token>' credential")
                principal = await self.auth.authenticate(token.strip().decode("latin-1"))
            except InvalidCredentialError as exc:
                if on_api:
                    logger.info("%s %s: %s", scope["method"], scope["path"], exc.message)
                    raise
            except Exception:
                if on_api:
                    raise
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["principal"] = principal
        await self.app(scope, receive, send)
