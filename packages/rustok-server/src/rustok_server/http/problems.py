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
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rustok_core.error import (
    PROBLEM_JSON,
    PROBLEM_TYPE_BASE,
    ErrorKind,
    ProblemDetails,
    RichError,
    validation_error_from_pydantic,
)
from rustok_server.errors import InvalidCursorError, MalformedBodyError
from rustok_server.http.problem_types import DEFAULT_PROBLEM_TYPE_BASE, PROBLEM_TYPES
from rustok_server.observability.tracing import current_trace_id
from rustok_server.request_state import request_state

__all__ = [
    "MAX_VALIDATION_ERRORS",
    "PROBLEM_RESPONSES",
    "REQUEST_ID_HEADER",
    "ProblemMiddleware",
    "add_problem_schema",
    "install_problem_handlers",
    "problem_for",
    "problem_response",
    "problem_responses",
    "problem_type_base_of",
    "request_id",
]

logger: Final[logging.Logger] = logging.getLogger("rustok.server")

REQUEST_ID_HEADER: Final = "X-Request-ID"
"""The header that carries a request's id, in the request (if the client sends one) and the
response."""
MAX_VALIDATION_ERRORS: Final = 100
"""Most entries of a validation problem's ``errors``; past it ``errors_omitted`` counts the
rest and ``detail`` says the list was cut short."""
_REQUEST_ID_KEY: Final = b"x-request-id"
# A client's request id is echoed back and logged: accept only a short, plain token.
_REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id(scope: Scope | Request) -> str:
    """The id of this request (assigned by `ProblemMiddleware`), or ``""`` outside it."""
    return request_state(scope).get("request_id", "")


def problem_type_base_of(scope: Scope | Request) -> str:
    """The prefix of problem ``type`` URIs for this request (set by `ProblemMiddleware`)."""
    return request_state(scope).get("problem_type_base", DEFAULT_PROBLEM_TYPE_BASE)


# The HTTP-level refusals that are no error kind: their problem type and code.
_STATUS_TYPES: Final = {
    405: ("method-not-allowed", "METHOD_NOT_ALLOWED"),
    406: ("not-acceptable", "NOT_ACCEPTABLE"),
    412: ("precondition-failed", "PRECONDITION_FAILED"),
    413: ("payload-too-large", "PAYLOAD_TOO_LARGE"),
    415: ("unsupported-media-type", "UNSUPPORTED_MEDIA_TYPE"),
}
_STATUS_KINDS: Final = {400: ErrorKind.VALIDATION, 404: ErrorKind.NOT_FOUND}


def _of_status_type(problem: ProblemDetails, code: str | None) -> ProblemDetails:
    name = _STATUS_TYPES[problem.status or 500][0]
    title = PROBLEM_TYPES[name].title
    return problem.model_copy(
        update={"type": PROBLEM_TYPE_BASE + name, "title": title, "code": code}
    )


def _retyped(problem: ProblemDetails, base: str) -> ProblemDetails:
    if base == PROBLEM_TYPE_BASE or not problem.type.startswith(PROBLEM_TYPE_BASE):
        return problem
    return problem.model_copy(update={"type": base + problem.type[len(PROBLEM_TYPE_BASE) :]})


def problem_for(
    exc: BaseException,
    *,
    instance: str | None,
    trace_id: str | None,
    type_base: str = DEFAULT_PROBLEM_TYPE_BASE,
) -> ProblemDetails:
    """The problem a client sees for ``exc``.

    Args:
        exc: any exception.
        instance: the request path.
        trace_id: the request id.
        type_base: the prefix of the problem's ``type`` (`problem_type_base_of`).
    """
    return _retyped(_problem_for(exc, instance=instance, trace_id=trace_id), type_base)


def _problem_for(
    exc: BaseException, *, instance: str | None, trace_id: str | None
) -> ProblemDetails:
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 400 and exc.__cause__:
        # FastAPI reports any failure while reading the body as "error parsing the body":
        # the body limits raise theirs from ``receive``, and theirs is the answer; anything
        # else (JSON nested too deeply for the parser) is a body that cannot be read.
        cause = exc.__cause__
        exc = cause if isinstance(cause, RichError) else MalformedBodyError("not readable JSON")
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        malformed = [e for e in errors if e.get("type") == "json_invalid"]
        if malformed:
            position = malformed[0].get("loc", ("body", 0))[-1]
            exc = MalformedBodyError(f"not JSON (error at character {position})")
        elif errors and all(tuple(e.get("loc", ())) == ("query", "cursor") for e in errors):
            # The routes declare the cursor's length; any bad cursor is an INVALID_CURSOR.
            exc = InvalidCursorError(str(errors[0].get("input", "")), "too long")
        else:
            whole = {e.get("type") for e in errors if tuple(e.get("loc", ())) == ("body",)}
            if "missing" in whole:
                exc = MalformedBodyError("empty")
            elif whole:
                exc = MalformedBodyError("not a JSON object")
    if isinstance(exc, RichError):
        if exc.trace_id is None and trace_id:
            exc.trace_id = trace_id
        if exc.kind in (ErrorKind.EXTERNAL_SERVICE, ErrorKind.TIMEOUT):
            # Expected while a dependency is down: one line each, no traceback flood.
            logger.warning("request failed: %s", exc.to_log_dict())
        elif exc.is_server_error:
            logger.error("request failed: %s", exc.to_log_dict(), exc_info=exc)
        problem = ProblemDetails.from_error(exc, instance=instance)
        if problem.status in _STATUS_TYPES:  # a 412 or a 413 is no kind's own status
            problem = _of_status_type(problem, problem.code)
        return problem
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        error = validation_error_from_pydantic(
            errors[:MAX_VALIDATION_ERRORS], strip_prefix=("body",)
        )
        error.trace_id = trace_id or None
        problem = ProblemDetails.from_error(error, instance=instance)
        if len(errors) > MAX_VALIDATION_ERRORS:
            # Cut short: a body with thousands of bad fields gets a bounded answer.
            omitted = len(errors) - MAX_VALIDATION_ERRORS
            cut_short = f"{problem.detail} (the first {MAX_VALIDATION_ERRORS} errors are listed)"
            problem = ProblemDetails.model_validate(
                {**problem.to_dict(), "detail": cut_short, "errors_omitted": omitted}
            )
        return problem
    if isinstance(exc, StarletteHTTPException):
        status = exc.status_code
        detail = exc.detail if status < 500 and isinstance(exc.detail, str) else None
        kind = _STATUS_KINDS.get(status)
        if kind is not None:
            return ProblemDetails.for_kind(
                kind, detail, instance=instance, trace_id=trace_id or None
            )
        try:
            problem = ProblemDetails.for_status(
                status, detail, instance=instance, trace_id=trace_id or None
            )
        except ValueError:  # a status outside the HTTP registry
            return ProblemDetails.internal(instance=instance, trace_id=trace_id or None)
        if status in _STATUS_TYPES:
            problem = _of_status_type(problem, _STATUS_TYPES[status][1])
        return problem
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


_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    # Starlette names the methods of the first route matching the path only; a path such
    # as /api/content/nodes has several routes (GET and POST), in included routers.
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches(dict(request.scope, method=method))[0] is Match.FULL for route in routes
        )
    ]
    return ", ".join(allowed)


def _handler_response(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    problem = problem_for(
        exc, instance=request.url.path, trace_id=rid, type_base=problem_type_base_of(request)
    )
    headers: dict[str, str] = {}
    if isinstance(exc, StarletteHTTPException) and exc.headers:
        headers.update(exc.headers)  # e.g. Allow on a 405
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
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

    Args:
        app: the ASGI app.
        type_base: the prefix of every problem ``type`` (``/problems/`` by default).
    """

    def __init__(self, app: ASGIApp, *, type_base: str = DEFAULT_PROBLEM_TYPE_BASE) -> None:
        self.app = app
        self.type_base = type_base

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
        # With tracing on, the request id is the trace id, in logs and problems alike.
        rid = current_trace_id() or rid or uuid.uuid4().hex
        state = request_state(scope)
        state["request_id"] = rid
        state["problem_type_base"] = self.type_base
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
            problem = problem_for(
                exc, instance=scope.get("path"), trace_id=rid, type_base=self.type_base
            )
            await problem_response(problem, headers=_error_headers(exc))(
                scope, receive, send_with_id
            )


PROBLEM_RESPONSES: Final[dict[int | str, dict[str, object]]] = {
    400: {"description": "Malformed request or tenant identifier"},
    404: {"description": "Unknown tenant, or resource not found for this tenant"},
    500: {"description": "Internal error (no internal detail is shown)"},
    503: {"description": "Tenant store unavailable; see Retry-After"},
}
"""The OpenAPI responses of the problems every route may answer, by status."""


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses=`` documenting problem bodies for ``statuses``.

    Examples:
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
