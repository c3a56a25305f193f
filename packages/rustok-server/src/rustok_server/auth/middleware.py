"""`AuthMiddleware`: verifies the ``Authorization`` header of every request.

Pure ASGI, like the tenant middleware after it: the principal is put in the request state
(``principal``) for tenant resolution and the routes' `require` dependencies. Under
``/api`` a credential that fails verification is a 401 at once, and why it failed is
logged (naming a key by its public id, never its secret); elsewhere (health checks) it is
ignored and the request is anonymous. A missing credential is decided by the route
(the 401 of `require`), so an unknown path stays a 404.

Each refused credential takes a token of its client address's failure bucket
(`rustok_server.auth.rate_limits.FailureLimits`); while that bucket is empty, a request of
the address that carries a credential is not verified at all: under ``/api`` it is a 429
with ``Retry-After``, valid credential or not, and elsewhere it is anonymous (a route that
requires a credential, such as ``/metrics``, answers the 429). Successful authentications
never touch the bucket.

The route's `require` checks (credential, scope, the tenant's rate limit) run when the
route first asks for its body, after tenant resolution and before a byte of the body is
handed on to the body limits and the JSON parser; a route without a body runs them in its
dependency (`rustok_server.auth.guard`). A refusal raised there keeps its own headers
(``WWW-Authenticate``, ``RateLimit-*``), which FastAPI's report of an error while reading
the body would otherwise lose.
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rustok_server.auth.guard import authorize, route_requirements
from rustok_server.auth.rate_limits import address_key
from rustok_server.auth.service import Authentication
from rustok_server.errors import InvalidCredentialError, ServerError
from rustok_server.request_state import RequestState, request_state

__all__ = ["API_PREFIX", "AuthMiddleware", "client_address"]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.auth")

API_PREFIX: Final = "/api/"
"""The paths whose every route needs a credential."""
_AUTHORIZATION: Final = b"authorization"
# Methods whose routes take no body here: their checks are left to the dependency, which
# costs them no wrapped receive and send (a route that did read one would still be checked,
# only after its body).
_BODILESS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(scope: Scope) -> str:
    """The failure bucket of the request's client: its address (`address_key`), or ``""``
    when the server does not know it (a Unix socket). Behind a reverse proxy this is the
    proxy's address unless uvicorn trusts it to name the client (``--forwarded-allow-ips``,
    ``FORWARDED_ALLOW_IPS``)."""
    client = scope.get("client")
    if not client:
        return ""
    return address_key(str(client[0]))


class AuthMiddleware:
    """Verifies bearer credentials (API keys and JWTs) before tenant resolution, limits the
    failures of each client address, and runs the route's `require` checks before its body
    is read.

    Args:
        app: the inner application.
        auth: the server's authentication.
    """

    def __init__(self, app: ASGIApp, auth: Authentication) -> None:
        self.app = app
        self.auth = auth
        # The `require` scopes of each route object met, found once.
        self._requirements: dict[int, tuple[object, tuple[tuple[str, ...], ...]]] = {}

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
        state = request_state(scope)
        principal = None
        if raw is not None:
            on_api = scope["path"].startswith(API_PREFIX)
            failures = self.auth.failures
            address = client_address(scope)
            refused = failures.refusal(address)
            if refused is not None:
                # Not verified at all: guessing costs the guesser, never a lookup.
                if on_api:
                    raise refused
                state["refused_credential"] = refused
            else:
                scheme, _, token = raw.partition(b" ")
                try:
                    if scheme.lower() != b"bearer" or not token.strip():
                        raise InvalidCredentialError("not one 'Bearer <token>' credential")
                    principal = await self.auth.authenticate(token.strip().decode("latin-1"))
                except InvalidCredentialError as exc:
                    failures.failed(address)
                    if on_api:
                        logger.info("%s %s: %s", scope["method"], scope["path"], exc.message)
                        raise
                except Exception:
                    if on_api:
                        raise
        state["principal"] = principal
        if scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
        else:
            await self._guarded(scope, receive, send, state)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, state: RequestState
    ) -> None:
        """Call the app with a ``receive`` that runs the route's `require` checks before it
        hands on the first message of the body."""
        checked = False
        refusal: ServerError | None = None
        limits = self.auth.rate_limits

        async def receive_checked() -> Message:
            nonlocal checked, refusal
            if not checked:
                checked = True
                route = scope.get("route")
                if route is not None:
                    try:
                        for scopes in self._requirements_of(route):
                            authorize(state, scopes, limits)
                    except ServerError as exc:
                        refusal = exc
                        raise
            return await receive()

        async def send_with_headers(message: Message) -> None:
            if (
                refusal is not None
                and refusal.response_headers
                and message["type"] == "http.response.start"
                and message["status"] == refusal.status
            ):
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                for name, value in refusal.response_headers.items():
                    key = name.lower().encode("latin-1")
                    if key not in present:
                        headers.append((key, value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive_checked, send_with_headers)

    def _requirements_of(self, route: object) -> tuple[tuple[str, ...], ...]:
        known = self._requirements.get(id(route))
        if known is not None and known[0] is route:
            return known[1]
        requirements = route_requirements(route)
        self._requirements[id(route)] = (route, requirements)
        return requirements
