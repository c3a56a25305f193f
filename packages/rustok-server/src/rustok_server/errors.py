"""The errors of rustok-server, all rooted in `ServerError` (a `RichError`).

Each carries its `ErrorKind` (and so its HTTP status and a stable code); the problem layer
turns any of them into an ``application/problem+json`` response. The domain packages keep
their own errors (``rustok_content.ContentError``, ``rustok_commerce.CommerceError``).
"""

from __future__ import annotations

import math

from rustok_core.error import ErrorKind, RichError

__all__ = [
    "ApiKeyNotFoundError",
    "CredentialRequiredError",
    "DatabaseTimeoutError",
    "DatabaseUnavailableError",
    "IdempotencyKeyReusedError",
    "InvalidCredentialError",
    "InvalidCursorError",
    "InvalidIdempotencyKeyError",
    "MalformedBodyError",
    "MalformedIfMatchError",
    "PayloadTooLargeError",
    "PreconditionFailedError",
    "ProblemTypeNotFoundError",
    "RateLimitExceededError",
    "RepeatedHeaderError",
    "ScopeRequiredError",
    "ServerError",
    "StoredRecordError",
    "TenantConflictError",
    "TenantMismatchError",
    "TenantNotFoundError",
    "TenantRequiredError",
    "TenantStoreUnavailableError",
    "UnknownEventTypeError",
    "WebhookDeliveryNotFoundError",
    "WebhookEndpointDisabledError",
    "WebhookEndpointNotFoundError",
    "WebhookUrlRefusedError",
]


class ServerError(RichError):
    """Root of every error raised by rustok-server itself.

    Attributes:
        response_headers: headers the problem response carries besides its own
            (``WWW-Authenticate`` on a 401, the ``RateLimit`` headers on a 429).
    """

    response_headers: dict[str, str] = {}  # noqa: RUF012  # replaced per instance, never mutated


class TenantRequiredError(ServerError):
    """The request names no tenant and no default is configured (400)."""

    def __init__(self, header: str) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            "the request names no tenant",
            user_message=f"Name the tenant with the {header} header (a UUID or a slug).",
            code="TENANT_REQUIRED",
        )


class TenantNotFoundError(ServerError):
    """No tenant answers to this identifier, or it is disabled (both are a 404)."""

    def __init__(self, identifier: str) -> None:
        super().__init__(
            ErrorKind.NOT_FOUND,
            f"no active tenant answers to {identifier!r}",
            user_message=(
                f"No active tenant answers to {identifier!r}; check the tenant id, "
                "slug or host name."
            ),
            code="TENANT_NOT_FOUND",
        )
        self.identifier = identifier


class TenantConflictError(ServerError):
    """Another tenant already has this slug or domain."""

    def __init__(self, slug: str, domain: str | None) -> None:
        which = f"slug {slug!r}" + (f" or domain {domain!r}" if domain else "")
        super().__init__(
            ErrorKind.CONFLICT,
            f"a tenant with {which} already exists",
            user_message=f"A tenant with {which} already exists; choose another.",
            code="TENANT_CONFLICT",
        )


class TenantStoreUnavailableError(ServerError):
    """The tenant could not be loaded and no stale entry can stand in (503).

    Attributes:
        retry_after: seconds after which the client may retry.
    """

    def __init__(self, identifier: str, retry_after: float) -> None:
        super().__init__(
            ErrorKind.EXTERNAL_SERVICE,
            f"the tenant store could not load {identifier!r}",
            user_message="Tenant data is temporarily unavailable; retry after the delay given.",
            code="TENANT_STORE_UNAVAILABLE",
        )
        self.retry_after = retry_after


class DatabaseUnavailableError(ServerError):
    """The database failed or its breaker is open: the request was not served (503).

    Nothing was written (a write that failed was rolled back with its connection).

    Attributes:
        retry_after: seconds after which the client may retry.
        breaker_open: whether the breaker refused the request (nothing was tried).
    """

    def __init__(self, retry_after: float, *, breaker_open: bool = False) -> None:
        reason = "the database breaker is open" if breaker_open else "the database did not answer"
        super().__init__(
            ErrorKind.EXTERNAL_SERVICE,
            f"{reason}; retry after {retry_after:.3f} s",
            user_message="The database is temporarily unavailable; retry after the delay given.",
            code="DATABASE_UNAVAILABLE",
        )
        self.retry_after = retry_after
        self.breaker_open = breaker_open


class DatabaseTimeoutError(ServerError):
    """A statement ran past its deadline and was cancelled with its connection (504).

    A read changed nothing. A write was rolled back, unless the database had already
    received its commit: send it again with the same ``Idempotency-Key`` to have it
    exactly once.

    Attributes:
        retry_after: seconds after which the client may retry.
    """

    def __init__(self, seconds: float, retry_after: float = 1.0) -> None:
        super().__init__(
            ErrorKind.TIMEOUT,
            f"a database statement took longer than its deadline of {seconds:g} s",
            user_message=(
                "The database did not answer in time; retry after the delay given "
                "(with the same Idempotency-Key for a write)."
            ),
            code="DATABASE_TIMEOUT",
        )
        self.seconds = seconds
        self.retry_after = retry_after


class InvalidCursorError(ServerError):
    """A ``cursor`` query parameter that this server did not issue (400)."""

    def __init__(self, cursor: str, reason: str = "not a cursor") -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"cursor {cursor[:80]!r} is not a cursor this server issued: {reason}",
            user_message="The cursor is not valid; use the next_cursor of a previous page.",
            code="INVALID_CURSOR",
        )
        self.with_violation(("query", "cursor"), "not a cursor this server issued")


class MalformedIfMatchError(ServerError):
    """``If-Match`` is neither ``*`` nor a list of version tags (400)."""

    def __init__(self, value: str) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"If-Match {value[:80]!r} is not a list of entity tags",
            user_message='If-Match must be * or the ETag of the resource, such as "3".',
            code="INVALID_IF_MATCH",
        )
        self.with_violation(("header", "If-Match"), 'expected * or an entity tag such as "3"')


class PreconditionFailedError(ServerError):
    """``If-Match`` names another version than the stored one (412); nothing changed.

    Attributes:
        current_version: the version stored now.
    """

    def __init__(self, resource: str, if_match: str, current_version: int) -> None:
        super().__init__(
            ErrorKind.CONFLICT,
            f"{resource} is at version {current_version}, If-Match was {if_match!r}",
            user_message=(
                f"The {resource} is now at version {current_version}, not the one in If-Match; "
                "read it again and retry the change on the new version."
            ),
            code="PRECONDITION_FAILED",
            status=412,
            fields={"current_version": str(current_version)},
        )
        self.current_version = current_version


class InvalidIdempotencyKeyError(ServerError):
    """The key is empty, too long or not printable ASCII (400)."""

    def __init__(self, key: str) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"Idempotency-Key {key[:80]!r} is not 1-255 printable ASCII characters",
            user_message="Idempotency-Key must be 1 to 255 printable ASCII characters.",
            code="INVALID_IDEMPOTENCY_KEY",
        )
        self.with_violation(("header", "Idempotency-Key"), "1-255 printable ASCII characters")


class IdempotencyKeyReusedError(ServerError):
    """The key was used for a request with another body (422); nothing was done."""

    def __init__(self, key: str, scope: str) -> None:
        super().__init__(
            ErrorKind.BUSINESS_LOGIC,
            f"Idempotency-Key {key!r} was first used for another request to {scope}",
            user_message=(
                "This Idempotency-Key was already used with a different request body; "
                "use a new key for a new request."
            ),
            code="IDEMPOTENCY_KEY_REUSED",
        )


_BEARER_CHALLENGE = 'Bearer realm="rustok"'


class CredentialRequiredError(ServerError):
    """An ``/api`` request without ``Authorization: Bearer <token>`` (401)."""

    def __init__(self) -> None:
        super().__init__(
            ErrorKind.UNAUTHENTICATED,
            "the request carries no credential",
            user_message="Send an API key or token as 'Authorization: Bearer <token>'.",
            code="CREDENTIAL_REQUIRED",
        )
        self.response_headers: dict[str, str] = {"WWW-Authenticate": _BEARER_CHALLENGE}


class InvalidCredentialError(ServerError):
    """A credential that is malformed, unknown, revoked, expired or fails its checks (401).

    The client is told only that the credential is not valid, never which check failed:
    the reason is for the log (``reason``), and names no secret.

    Attributes:
        reason: why it was refused, for the log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            ErrorKind.UNAUTHENTICATED,
            f"the credential was refused: {reason}",
            user_message="The credential is not valid (unknown, revoked or expired).",
            code="INVALID_CREDENTIAL",
        )
        self.reason = reason
        self.response_headers: dict[str, str] = {
            "WWW-Authenticate": f'{_BEARER_CHALLENGE}, error="invalid_token"'
        }


class ScopeRequiredError(ServerError):
    """The credential is valid but lacks the scope the route needs (403).

    Attributes:
        scopes: the scopes, any one of which the route accepts.
    """

    def __init__(self, scopes: tuple[str, ...]) -> None:
        wanted = " or ".join(scopes)
        super().__init__(
            ErrorKind.FORBIDDEN,
            f"the credential lacks the scope {wanted}",
            user_message=f"This credential lacks the scope {wanted} that this request needs.",
            code="SCOPE_REQUIRED",
            fields={"required_scope": wanted},
        )
        self.scopes = scopes
        self.response_headers: dict[str, str] = {
            "WWW-Authenticate": f'{_BEARER_CHALLENGE}, error="insufficient_scope", '
            f'scope="{" ".join(scopes)}"'
        }


class TenantMismatchError(ServerError):
    """The tenant header or host names a tenant other than the credential's (403).

    The same answer whether the named tenant exists or not.
    """

    def __init__(self) -> None:
        super().__init__(
            ErrorKind.FORBIDDEN,
            "the request names a tenant other than its credential's",
            user_message="This credential is not valid for the tenant the request names.",
            code="TENANT_FORBIDDEN",
        )


class ApiKeyNotFoundError(ServerError):
    """No key has this id (for this tenant) (404)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            ErrorKind.NOT_FOUND,
            f"no API key has the id {key_id[:40]!r}",
            user_message=f"No API key has the id {key_id[:40]!r}; list the keys to find it.",
            code="API_KEY_NOT_FOUND",
        )


class RateLimitExceededError(ServerError):
    """The tenant (or key) used up its rate limit (429).

    Attributes:
        retry_after: seconds until a request would be admitted again.
    """

    def __init__(self, limit: int, retry_after: float) -> None:
        super().__init__(
            ErrorKind.RATE_LIMITED,
            f"rate limit of {limit} requests used up; retry after {retry_after:.3f} s",
            user_message="Too many requests for this tenant; retry after the delay given.",
            code="RATE_LIMITED",
        )
        self.retry_after = retry_after
        reset = str(max(1, math.ceil(retry_after)))
        self.response_headers: dict[str, str] = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": reset,
        }


class MalformedBodyError(ServerError):
    """The body is not a JSON object in UTF-8 (400 ``MALFORMED_BODY``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"the request body is malformed: {reason}",
            user_message=f"The request body must be a JSON object in UTF-8; it is {reason}.",
            code="MALFORMED_BODY",
        )
        self.with_violation((), reason)


class PayloadTooLargeError(ServerError):
    """The body is larger than ``RUSTOK_MAX_BODY_BYTES`` (413); it was not read further.

    Attributes:
        limit: the most bytes a body may have.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"the request body exceeds {limit} bytes",
            user_message=f"The request body is larger than {limit} bytes.",
            code="PAYLOAD_TOO_LARGE",
            status=413,
        )
        self.limit = limit


class RepeatedHeaderError(ServerError):
    """A header that names one thing (the tenant) was sent more than once (400)."""

    def __init__(self, header: str) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"the {header} header was sent more than once",
            user_message=f"Send the {header} header once.",
            code="REPEATED_HEADER",
        )
        self.with_violation(("header", header), "sent more than once")


class StoredRecordError(ServerError):
    """A stored row fails the entity's run-time check: the server's fault (500), logged
    with the row's id; the client sees nothing of it.

    Attributes:
        entity_type: the entity the row should become (``Order``).
        row_id: the row's id.
    """

    def __init__(self, entity_type: str, row_id: object) -> None:
        super().__init__(
            ErrorKind.INTERNAL,
            f"stored {entity_type} {row_id} fails its run-time check",
            code="STORED_RECORD_INVALID",
            fields={"entity_type": entity_type, "row_id": str(row_id)},
        )
        self.entity_type = entity_type
        self.row_id = row_id


class ProblemTypeNotFoundError(ServerError):
    """``GET /problems/{name}`` for a name that is no problem type (404)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            ErrorKind.NOT_FOUND,
            f"no problem type {name[:80]!r}",
            user_message="No such problem type.",
            code="PROBLEM_TYPE_NOT_FOUND",
        )


class WebhookEndpointNotFoundError(ServerError):
    """No webhook endpoint of the tenant has this id (404); another tenant's endpoint is
    reported exactly like a missing one."""

    def __init__(self, endpoint_id: object) -> None:
        super().__init__(
            ErrorKind.NOT_FOUND,
            f"no webhook endpoint {endpoint_id} for this tenant",
            user_message=(
                f"No webhook endpoint has the id {endpoint_id}; list the endpoints to find it."
            ),
            code="WEBHOOK_ENDPOINT_NOT_FOUND",
        )


class WebhookDeliveryNotFoundError(ServerError):
    """The endpoint has no delivery with this id (404); another tenant's delivery is
    reported exactly like a missing one."""

    def __init__(self, delivery_id: object) -> None:
        super().__init__(
            ErrorKind.NOT_FOUND,
            f"no webhook delivery {delivery_id} of this endpoint",
            user_message=(
                f"The endpoint has no delivery with the id {delivery_id}; list its "
                "deliveries to find it."
            ),
            code="WEBHOOK_DELIVERY_NOT_FOUND",
        )


class WebhookEndpointDisabledError(ServerError):
    """Deliveries of a disabled endpoint cannot be re-sent (409): nothing would send them.

    Attributes:
        reason: why the endpoint is disabled, as its ``disabled_reason`` says.
    """

    def __init__(self, endpoint_id: object, reason: str | None) -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            ErrorKind.CONFLICT,
            f"webhook endpoint {endpoint_id} is disabled{why}",
            user_message=(
                f"The endpoint is disabled{why}; enable it (PATCH with enabled: true), "
                "then re-send its deliveries."
            ),
            code="WEBHOOK_ENDPOINT_DISABLED",
        )
        self.reason = reason


class WebhookUrlRefusedError(ServerError):
    """An endpoint URL this server will not send to (400): not absolute, not HTTPS (unless
    allowed), with credentials in it, too long, or naming a loopback, private, link-local
    or metadata address (unless allowed).

    Attributes:
        reason: what is wrong with it, for the client.
    """

    def __init__(self, url: str, reason: str) -> None:
        # The URL itself is never repeated: it may hold a password (that is one refusal).
        super().__init__(
            ErrorKind.VALIDATION,
            f"a webhook URL of {len(url)} characters refused: {reason}",
            user_message=f"The webhook URL is refused: {reason}.",
            code="INVALID_WEBHOOK_URL",
        )
        self.reason = reason
        self.with_violation("url", reason)


class UnknownEventTypeError(ServerError):
    """An endpoint asks for an event type that no entity emits (400).

    Attributes:
        event_type: the first unknown type.
    """

    def __init__(self, event_type: str, index: int, known: tuple[str, ...]) -> None:
        names = ", ".join(known)
        super().__init__(
            ErrorKind.VALIDATION,
            f"unknown webhook event type {event_type[:80]!r}",
            user_message=(
                f"{event_type[:80]!r} is not an event type; choose among {names}, or * for "
                "every type."
            ),
            code="UNKNOWN_EVENT_TYPE",
        )
        self.event_type = event_type
        self.with_violation(("event_types", index), f"one of {names}, or *")
