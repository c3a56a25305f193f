"""RFC 9457 problem details: what a client sees of an error."""

from __future__ import annotations

import math
from collections.abc import Iterable
from http import HTTPStatus
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from rustok_core.error._kind import ErrorKind
from rustok_core.error._rich import RichError
from rustok_core.error._violation import FieldViolation

__all__ = ["PROBLEM_JSON", "ProblemDetails", "ProblemError"]

#: The media type of a problem details JSON document (RFC 9457 section 3).
PROBLEM_JSON: Final = "application/problem+json"
"""The media type of a problem document (RFC 9457): `application/problem+json`."""

_GENERIC_5XX_DETAIL: Final[dict[ErrorKind, str]] = {
    ErrorKind.EXTERNAL_SERVICE: "A service this request needs is unavailable; try again later.",
    ErrorKind.TIMEOUT: "The request took too long to complete; try again later.",
}
_GENERIC_DETAIL: Final = "An unexpected error occurred; quote the trace id when reporting it."


class ProblemError(BaseModel):
    """One entry of a problem's ``errors``: an invalid field and what is wrong with it."""

    model_config = ConfigDict(frozen=True)

    pointer: str = Field(description="RFC 6901 JSON pointer to the field in the request body.")
    detail: str = Field(description="What is wrong with the field.")


class ProblemDetails(BaseModel):
    """An RFC 9457 problem details object, plus RusTok's extension members.

    Standard members: ``type`` (a URI reference naming the problem type; RusTok's
    types live under ``https://rustok.dev/problems/``, and ``about:blank`` is used
    only when nothing more specific exists), ``title``, ``status``, ``detail``,
    ``instance``. Extension members: ``code`` (a stable error code), ``trace_id``,
    ``errors`` (one `ProblemError` per invalid field). Unknown members of a parsed
    problem are kept. Serialised without nulls, as ``application/problem+json``.

    Build one from an error with `from_error`, or with a constructor for the common
    cases (`not_found`, `forbidden`, `conflict`, `validation`, `rate_limited`, ...).

    Examples:
        >>> ProblemDetails.not_found("Order").to_dict()["type"]
        'https://rustok.dev/problems/not-found'
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    type: str = Field(default="about:blank", description="URI reference naming the problem type.")
    title: str | None = Field(default=None, description="Short summary of the problem type.")
    status: int | None = Field(default=None, ge=100, le=599, description="The HTTP status.")
    detail: str | None = Field(default=None, description="This occurrence, for the client.")
    instance: str | None = Field(default=None, description="URI reference of this occurrence.")
    code: str | None = Field(default=None, description="Stable, upper-snake error code.")
    trace_id: str | None = Field(default=None, description="Id correlating this with logs.")
    errors: tuple[ProblemError, ...] | None = Field(
        default=None, description="One entry per invalid request field."
    )

    _retry_after: float | None = PrivateAttr(default=None)

    @property
    def retry_after(self) -> float | None:
        """Seconds after which the client may retry, if known (sent as ``Retry-After``)."""
        return self._retry_after

    def with_retry_after(self, seconds: float | None) -> ProblemDetails:
        """Return a copy whose `headers` carry ``Retry-After: seconds`` (rounded up).

        Raises:
            ValueError: if ``seconds`` is negative or not finite.
        """
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(
                f"retry_after must be a finite number of seconds >= 0, got {seconds!r}"
            )
        copy = self.model_copy()
        copy._retry_after = seconds
        return copy

    def headers(self) -> dict[str, str]:
        """The HTTP headers a response carrying this problem needs.

        ``Content-Type: application/problem+json``, and ``Retry-After`` (whole
        seconds, rounded up) when the problem knows when to retry.
        """
        headers = {"Content-Type": PROBLEM_JSON}
        if self._retry_after is not None:
            headers["Retry-After"] = str(math.ceil(self._retry_after))
        return headers

    def to_dict(self) -> dict[str, object]:
        """The JSON object of this problem: RFC 9457 members and extensions, no nulls."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        """This problem as a JSON document (no nulls), to send as `PROBLEM_JSON`."""
        return self.model_dump_json(exclude_none=True)

    # Constructors -----------------------------------------------------------------

    @classmethod
    def from_error(cls, error: RichError, *, instance: str | None = None) -> ProblemDetails:
        """The problem a client may see for ``error``.

        A 4xx shows the user message (or else the message), the code, the trace id
        and the violations as ``errors``. A 5xx shows only a generic detail (or the
        user message, which is by definition safe to show), the code and the trace
        id: never the internal message, the fields, the violations or the cause.
        An error with a numeric ``retry_after`` attribute (such as an open circuit
        breaker's) gets a ``Retry-After`` header.

        Args:
            error: the error to show.
            instance: the URI reference of this occurrence, usually the request path.
        """
        kind = error.kind
        errors: tuple[ProblemError, ...] | None = None
        if error.is_server_error:
            detail = error.user_message or _GENERIC_5XX_DETAIL.get(kind, _GENERIC_DETAIL)
        else:
            detail = error.user_message or error.message
            if error.violations:
                errors = _problem_errors(error.violations)
        problem = cls(
            type=kind.type_uri,
            title=kind.problem_title,
            status=error.status,
            detail=detail,
            instance=instance,
            code=error.code,
            trace_id=error.trace_id,
            errors=errors,
        )
        retry_after = getattr(error, "retry_after", None)
        if (
            isinstance(retry_after, int | float)
            and not isinstance(retry_after, bool)
            and math.isfinite(retry_after)
        ):
            problem._retry_after = max(0.0, float(retry_after))
        return problem

    @classmethod
    def for_status(
        cls,
        status: int,
        detail: str | None = None,
        *,
        instance: str | None = None,
        trace_id: str | None = None,
    ) -> ProblemDetails:
        """A problem that is just an HTTP status (``about:blank``), such as a 405.

        The title is the status's reason phrase, as RFC 9457 asks for ``about:blank``.

        Raises:
            ValueError: if ``status`` is not a known HTTP status.
        """
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            raise ValueError(f"status must be a known HTTP status code, got {status!r}") from None
        return cls(status=status, title=phrase, detail=detail, instance=instance, trace_id=trace_id)

    @classmethod
    def for_kind(
        cls,
        kind: ErrorKind,
        detail: str | None = None,
        *,
        instance: str | None = None,
        trace_id: str | None = None,
        code: str | None = None,
        errors: Iterable[FieldViolation] = (),
    ) -> ProblemDetails:
        """A problem of ``kind``'s type, title, status and code."""
        problem_errors = _problem_errors(errors)
        return cls(
            type=kind.type_uri,
            title=kind.problem_title,
            status=kind.status,
            detail=detail,
            instance=instance,
            code=code or kind.code,
            trace_id=trace_id,
            errors=problem_errors or None,
        )

    @classmethod
    def not_found(
        cls, resource: str, *, instance: str | None = None, trace_id: str | None = None
    ) -> ProblemDetails:
        """404: ``"<resource> not found"``."""
        return cls.for_kind(
            ErrorKind.NOT_FOUND, f"{resource} not found", instance=instance, trace_id=trace_id
        )

    @classmethod
    def unauthenticated(
        cls, *, instance: str | None = None, trace_id: str | None = None
    ) -> ProblemDetails:
        """401: the request needs valid credentials."""
        return cls.for_kind(
            ErrorKind.UNAUTHENTICATED,
            "Authentication is required to access this resource.",
            instance=instance,
            trace_id=trace_id,
        )

    @classmethod
    def forbidden(
        cls, detail: str | None = None, *, instance: str | None = None, trace_id: str | None = None
    ) -> ProblemDetails:
        """403: the caller may not do this."""
        return cls.for_kind(
            ErrorKind.FORBIDDEN,
            detail or "You do not have permission to perform this action.",
            instance=instance,
            trace_id=trace_id,
        )

    @classmethod
    def conflict(
        cls, detail: str, *, instance: str | None = None, trace_id: str | None = None
    ) -> ProblemDetails:
        """409: the request conflicts with the resource's current state."""
        return cls.for_kind(ErrorKind.CONFLICT, detail, instance=instance, trace_id=trace_id)

    @classmethod
    def validation(
        cls,
        errors: Iterable[FieldViolation] = (),
        *,
        detail: str | None = None,
        instance: str | None = None,
        trace_id: str | None = None,
    ) -> ProblemDetails:
        """400: the request is invalid; ``errors`` says which fields and why."""
        return cls.for_kind(
            ErrorKind.VALIDATION,
            detail or "One or more fields are invalid.",
            instance=instance,
            trace_id=trace_id,
            errors=errors,
        )

    @classmethod
    def rate_limited(
        cls, retry_after: float, *, instance: str | None = None, trace_id: str | None = None
    ) -> ProblemDetails:
        """429: too many requests; `headers` carry ``Retry-After``.

        Raises:
            ValueError: if ``retry_after`` is negative or not finite.
        """
        seconds = math.ceil(retry_after) if math.isfinite(retry_after) else retry_after
        problem = cls.for_kind(
            ErrorKind.RATE_LIMITED,
            f"Too many requests; retry after {seconds} seconds.",
            instance=instance,
            trace_id=trace_id,
        )
        return problem.with_retry_after(retry_after)

    @classmethod
    def internal(
        cls, *, instance: str | None = None, trace_id: str | None = None
    ) -> ProblemDetails:
        """500: a generic detail, nothing about the cause."""
        return cls.for_kind(
            ErrorKind.INTERNAL, _GENERIC_DETAIL, instance=instance, trace_id=trace_id
        )

    @classmethod
    def timeout(cls, *, instance: str | None = None, trace_id: str | None = None) -> ProblemDetails:
        """504: the operation took too long."""
        return cls.for_kind(
            ErrorKind.TIMEOUT,
            _GENERIC_5XX_DETAIL[ErrorKind.TIMEOUT],
            instance=instance,
            trace_id=trace_id,
        )

    @classmethod
    def external_service(
        cls,
        name: str,
        *,
        retry_after: float | None = None,
        instance: str | None = None,
        trace_id: str | None = None,
    ) -> ProblemDetails:
        """503: ``"<name> is unavailable"``, with ``Retry-After`` if ``retry_after`` is given."""
        problem = cls.for_kind(
            ErrorKind.EXTERNAL_SERVICE,
            f"{name} is unavailable; try again later.",
            instance=instance,
            trace_id=trace_id,
        )
        return problem.with_retry_after(retry_after)


def _problem_errors(violations: Iterable[FieldViolation]) -> tuple[ProblemError, ...]:
    return tuple(ProblemError(pointer=v.pointer, detail=v.detail) for v in violations)
