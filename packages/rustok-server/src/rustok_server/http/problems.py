"""The one layer that turns every error into an RFC 9457 problem response.

`RichError`, Starlette/FastAPI ``HTTPException``, request validation errors and
any unhandled exception become ``application/problem+json`` with the request id
as ``trace_id``. A 5xx never carries an internal message, SQL or a stack trace.

Two entry points share one mapping (`problem_for`):

- `install_problem_handlers` registers FastAPI exception handlers for errors
  raised inside routes and dependencies;
- `ProblemMiddleware` (pure ASGI, outermost) assigns the request id, echoes it in
  ``X-Request-ID``, and turns errors raised by inner middleware (tenant
  resolution) or escaping everything else into problems.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Final

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rustok_core.error import (
    PROBLEM_JSON,
    ErrorKind,
    ProblemDetails,
    RichError,
    validation_error_from_pydantic,
)

__all__ = [
    "PROBLEM_RESPONSES",
    "REQUEST_ID_HEADER",
    "ProblemMiddleware",
    "add_problem_schema",
    "install_problem_handlers",
    "problem_for",
    "problem_response",
    "problem_responses",
    "request_id",
]

logger = logging.getLogger("rustok_server")

REQUEST_ID_HEADER: Final = "X-Request-ID"
_REQUEST_ID_KEY: Final = b"x-request-id"
# A client's request id is echoed back and logged: accept only a short, plain token.
_REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id(scope: Scope | Request) -> str:
    """The id of this request (assigned by `ProblemMiddleware`), or ``""`` outside it."""
    if isinstance(scope, Request):
        scope = scope.scope
    state = scope.get("state")
    if isinstance(state, dict):
        value = state.get("request_id")
        if isinstance(value, str):
            return value
    return ""


def problem_for(
    exc: BaseException, *, instance: str | None, trace_id: str | None
) -> ProblemDetails:
    """The problem a client sees for ``exc``.

    Args:
        exc: any exception.
        instance: the request path.
        trace_id: the request id.
    """
    if isinstance(exc, RichError):
        if exc.trace_id is None and trace_id:
            exc.trace_id = trace_id
        if exc.kind is ErrorKind.EXTERNAL_SERVICE:
            # Expected while a dependency is down: one line each, no traceback flood.
            logger.warning("request failed: %s", exc.to_log_dict())
        elif exc.is_server_error:
            logger.error("request failed: %s", exc.to_log_dict(), exc_info=exc)
        return ProblemDetails.from_error(exc, instance=instance)
    if isinstance(exc, RequestValidationError):
        error = validation_error_from_pydantic(exc.errors(), strip_prefix=("body",))
        error.trace_id = trace_id or None
        return ProblemDetails.from_error(error, instance=instance)
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if exc.status_code < 500 and isinstance(exc.detail, str) else None
        try:
            return ProblemDetails.for_status(
                exc.status_code, detail, instance=instance, trace_id=trace_id or None
            )
        except ValueError:  # a status outside the HTTP registry
            return ProblemDetails.internal(instance=instance, trace_id=trace_id or None)
    logger.error("unhandled error (trace_id=%s)", trace_id, exc_info=exc)
    return ProblemDetails.internal(instance=instance, trace_id=trace_id or None)


def problem_response(
    problem: ProblemDetails, *, headers: Mapping[str, str] | None = None
) -> Response:
    """A response carrying ``problem`` as ``application/problem+json``."""
    all_headers = dict(headers or {})
    all_headers.update(problem.headers())
    return Response(
        problem.to_json().encode(),
        status_code=problem.status or 500,
        headers=all_headers,
        media_type=PROBLEM_JSON,
    )


def _handler_response(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    problem = problem_for(exc, instance=request.url.path, trace_id=rid)
    headers: dict[str, str] = {}
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        headers.update(exc.headers)  # e.g. Allow on a 405
    headers.update(_error_headers(exc))
    if rid:
        headers[REQUEST_ID_HEADER] = rid
    return problem_response(problem, headers=headers)


def _error_headers(exc: BaseException) -> Mapping[str, str]:
    """The headers an error asks its problem response to carry (``WWW-Authenticate``)."""
    extra = getattr(exc, "response_headers", None)
    return extra if isinstance(extra, Mapping) else {}


async def _handle(request: Request, exc: Exception) -> Response:
    return _handler_response(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error raised in a route or dependency of ``app`` a problem response."""
    app.add_exception_handler(RichError, _handle)
    app.add_exception_handler(StarletteHTTPException, _handle)
    app.add_exception_handler(RequestValidationError, _handle)
    app.add_exception_handler(Exception, _handle)


class ProblemMiddleware:
    """Pure ASGI middleware: request ids, and problems for errors nothing else handled.

    Reads ``X-Request-ID`` (a plain token of at most 128 characters) or generates
    one, stores it in the request state, and adds it to every response. An
    exception raised below it becomes a problem response if no response was
    started yet; `RichError` keeps its status (a tenant resolution 400, 404 or
    503), anything else is a 500 that shows nothing internal.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_KEY:
                candidate = value.decode("latin-1")
                if _REQUEST_ID_PATTERN.fullmatch(candidate):
                    rid = candidate
                break
        if not rid:
            rid = uuid.uuid4().hex
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["request_id"] = rid
        header = (_REQUEST_ID_KEY, rid.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _REQUEST_ID_KEY for name, _ in headers):
                    headers.append(header)
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                raise
            problem = problem_for(exc, instance=scope.get("path"), trace_id=rid)
            await problem_response(problem, headers=_error_headers(exc))(
                scope, receive, send_with_id
            )


PROBLEM_RESPONSES: Final[dict[int | str, dict[str, object]]] = {
    400: {"description": "Malformed request or tenant identifier"},
    404: {"description": "Unknown tenant, or resource not found for this tenant"},
    500: {"description": "Internal error (no internal detail is shown)"},
    503: {"description": "Tenant store unavailable; see Retry-After"},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` documenting problem bodies for ``statuses``.

    Example:
        >>> sorted(problem_responses(404, 409))
        [404, 409]
    """
    schema = {"$ref": "#/components/schemas/ProblemDetails"}
    responses: dict[int | str, dict[str, object]] = {}
    for status in statuses:
        description = PROBLEM_RESPONSES.get(status, {}).get("description", "Problem")
        responses[status] = {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
    return responses


def add_problem_schema(openapi: dict[str, object]) -> dict[str, object]:
    """Add the ``ProblemDetails`` schema (and what it refers to) to an OpenAPI document."""
    schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    components = openapi.setdefault("components", {})
    assert isinstance(components, dict)
    schemas = components.setdefault("schemas", {})
    assert isinstance(schemas, dict)
    schemas.update(definitions)
    schemas["ProblemDetails"] = schema
    return openapi
