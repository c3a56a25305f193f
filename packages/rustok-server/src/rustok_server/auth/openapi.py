"""What authentication adds to the OpenAPI document: the bearer scheme, the scopes each
secured operation requires, and the 401, 403 and 429 problems of those operations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from rustok_server.auth.guard import BEARER_SCHEME, required_scopes
from rustok_server.http.problems import problem_responses

__all__ = ["document_security"]

_DESCRIPTIONS = {
    401: "No credential, or one that is not valid; see WWW-Authenticate",
    403: "The credential lacks the scope named, or the request names another tenant",
    429: "The tenant's rate limit is used up; see Retry-After and the RateLimit headers",
}


_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "rsk_<id>_<secret> API key, or a JWT of the configured issuer",
    "description": "An API key (`rsk_<id>_<secret>`) or, when configured, a JWT.",
}


def document_security(document: dict[str, Any], routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """Declare the bearer scheme on each operation of ``routes`` that uses `require`, with
    its scopes, and add the authentication problems to it.

    ``routes`` are the routes ``document`` was generated from, as their routers hold them
    (the routers are included without a prefix).
    """
    secured = 0
    paths = document.get("paths", {})
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        scopes = required_scopes(route)
        if scopes is None:
            continue
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                operation["security"] = [{BEARER_SCHEME: list(scopes)}]
                secured += 1
    if secured:
        schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[BEARER_SCHEME] = dict(_SCHEME)
    responses = problem_responses(401, 403, 429)
    for status, response in responses.items():
        response["description"] = _DESCRIPTIONS[int(status)]
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not operation.get("security"):
                continue
            declared: dict[str, Any] = operation.setdefault("responses", {})
            for status, response in responses.items():
                declared.setdefault(str(status), response)
    return document
