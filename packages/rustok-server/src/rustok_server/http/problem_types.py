"""The problem types this server emits, and the pages that explain them.

Every problem's ``type`` names one entry of `PROBLEM_TYPES`: the eleven error kinds of
``rustok_core.error`` (``validation``, ``not-found``, ...) and the HTTP-level refusals the
server makes itself (``method-not-allowed``, ``precondition-failed``,
``payload-too-large``, ``unsupported-media-type``, ``request-header-fields-too-large``,
``request-timeout``, ``too-many-connections``, ``not-acceptable``); ``GET /problems/{name}``
(`rustok_server.http.problem_pages`) explains each one.

By default ``type`` is the relative reference ``/problems/{name}``; RFC 9457 resolves it
against the request's URI, so it always reaches the server that sent it. The setting
``RUSTOK_PROBLEM_BASE_URL`` makes it absolute (``https://docs.example.com/problems/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rustok_core.error import PROBLEM_TYPE_BASE, ErrorKind

__all__ = [
    "DEFAULT_PROBLEM_TYPE_BASE",
    "PROBLEM_TYPES",
    "ProblemType",
    "problem_type_base",
    "type_uri",
]

DEFAULT_PROBLEM_TYPE_BASE: Final = "/problems/"
"""Where problem types live unless ``RUSTOK_PROBLEM_BASE_URL`` says otherwise."""


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of problem: its name (the last segment of ``type``), default status,
    title, what it means and what a client should do."""

    name: str
    status: int
    title: str
    meaning: str
    action: str


def _kind(kind: ErrorKind, meaning: str, action: str) -> ProblemType:
    name = kind.type_uri.removeprefix(PROBLEM_TYPE_BASE)
    return ProblemType(name, kind.status, kind.problem_title, meaning, action)


PROBLEM_TYPES: Final[dict[str, ProblemType]] = {
    problem.name: problem
    for problem in (
        _kind(
            ErrorKind.VALIDATION,
            "The request is malformed: a body that is not UTF-8 JSON, a field of the wrong "
            "type or form, a bad header, cursor or identifier. Each bad field is listed in "
            "errors with its JSON pointer.",
            "Fix the fields named in errors and send the request again; retrying it "
            "unchanged gives the same answer.",
        ),
        _kind(
            ErrorKind.UNAUTHENTICATED,
            "The request carries no valid credential.",
            "Send a valid credential.",
        ),
        _kind(
            ErrorKind.FORBIDDEN,
            "The credential is valid but may not do this.",
            "Use a credential with the needed scope, or ask an administrator.",
        ),
        _kind(
            ErrorKind.NOT_FOUND,
            "No such resource for this tenant, no such path, or no active tenant of that "
            "name. Another tenant's resource is reported exactly like a missing one.",
            "Check the identifier, the path and the tenant.",
        ),
        _kind(
            ErrorKind.CONFLICT,
            "The request conflicts with the resource's current state: a transition the "
            "state does not allow (the problem names the allowed actions), a duplicate, or "
            "a concurrent change.",
            "Read the resource again and decide on its current state.",
        ),
        _kind(
            ErrorKind.RATE_LIMITED,
            "Too many requests.",
            "Wait for the Retry-After delay, then retry.",
        ),
        _kind(
            ErrorKind.DATABASE,
            "The database failed. Nothing internal is shown.",
            "Retry later; quote the trace_id when reporting it.",
        ),
        _kind(
            ErrorKind.EXTERNAL_SERVICE,
            "A service the server depends on is unavailable.",
            "Wait for the Retry-After delay, then retry.",
        ),
        _kind(
            ErrorKind.INTERNAL,
            "The server failed (also for a stored record it cannot read). Nothing internal "
            "is shown; the log has the details under the trace_id.",
            "Quote the trace_id when reporting it.",
        ),
        _kind(
            ErrorKind.TIMEOUT,
            "The server gave up waiting for a dependency.",
            "Retry later.",
        ),
        _kind(
            ErrorKind.BUSINESS_LOGIC,
            "The request is well formed but a business rule refuses it (a blank tracking "
            "number, a non-positive total, an Idempotency-Key reused for another body).",
            "Read detail, change the request, and send it again.",
        ),
        ProblemType(
            "method-not-allowed",
            405,
            "Method not allowed",
            "The path exists but does not answer this method; Allow lists those it does.",
            "Use one of the methods in the Allow header.",
        ),
        ProblemType(
            "precondition-failed",
            412,
            "Precondition failed",
            "If-Match names another version than the resource has now (someone changed it "
            "since it was read); nothing was changed. The ETag of a read names the version.",
            "Read the resource again, decide on its current state, and retry with its ETag.",
        ),
        ProblemType(
            "payload-too-large",
            413,
            "Payload too large",
            "The request body is larger than the server accepts (RUSTOK_MAX_BODY_BYTES, "
            "1 MiB by default).",
            "Send a smaller body.",
        ),
        ProblemType(
            "unsupported-media-type",
            415,
            "Unsupported media type",
            "The body is not of a media type the route reads.",
            "Send application/json.",
        ),
        ProblemType(
            "request-header-fields-too-large",
            431,
            "Request header fields too large",
            "The request line and headers are larger than the server accepts "
            "(RUSTOK_MAX_HEADER_BYTES, 32 KiB by default), or have more header fields than "
            "it accepts (RUSTOK_MAX_HEADERS, 100 by default); the connection was closed.",
            "Send fewer or smaller headers (large cookies are the usual cause), on a new "
            "connection.",
        ),
        ProblemType(
            "request-timeout",
            408,
            "Request timeout",
            "The request line and headers did not all arrive within RUSTOK_HEAD_TIMEOUT "
            "(10 s by default) of the connection's start or the previous response's end; the "
            "connection was closed.",
            "Send the whole request head promptly, on a new connection.",
        ),
        ProblemType(
            "too-many-connections",
            503,
            "Too many connections",
            "The server process already holds as many connections as it allows "
            "(RUSTOK_MAX_CONNECTIONS, per worker); the connection was closed before any "
            "request was read.",
            "Wait for the Retry-After delay, then retry; reuse kept-alive connections rather "
            "than opening many.",
        ),
        ProblemType(
            "not-acceptable",
            406,
            "Not acceptable",
            "The server cannot answer in a media type the Accept header allows.",
            "Accept application/json or text/html.",
        ),
    )
}
"""Every problem type the server can emit, by name."""


def problem_type_base(base_url: str | None) -> str:
    """The prefix of every ``type``: ``/problems/``, or under ``base_url`` when set.

    Examples:
        >>> problem_type_base(None), problem_type_base("https://docs.example.com/problems")
        ('/problems/', 'https://docs.example.com/problems/')
    """
    if not base_url:
        return DEFAULT_PROBLEM_TYPE_BASE
    return base_url if base_url.endswith("/") else base_url + "/"


def type_uri(name: str, base: str = DEFAULT_PROBLEM_TYPE_BASE) -> str:
    """The ``type`` of the problem type ``name`` under ``base``."""
    return base + name
