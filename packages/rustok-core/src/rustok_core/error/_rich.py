"""RichError: an exception that knows its category, its audience and its context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self
from uuid import UUID

from rustok_core.error._kind import ErrorKind
from rustok_core.error._violation import FieldPath, FieldViolation

__all__ = ["RichError"]


def _checked_status(status: int) -> int:
    if not 400 <= status <= 599:
        raise ValueError(
            f"an error status must be an HTTP client or server error status (400-599), "
            f"got {status!r}; pass one such as 404 or 503, or leave it to the error kind"
        )
    return status


class RichError(Exception):
    """An error with a category, an internal and a user-facing message, and context.

    The internal ``message`` is for logs; ``user_message`` (if set) is what a client
    may read. ``code`` and ``status`` default to the kind's. ``fields`` hold
    diagnostic context for logs (ids, names) and are never shown to clients;
    ``violations`` list invalid request fields and are. The cause is chained the
    Python way, through ``__cause__`` (``raise RichError(...) from exc``, `wrap`,
    `error_context`).

    Subclasses pass their own kind::

        class OrderNotFoundError(RichError):
            def __init__(self, order_id: str) -> None:
                super().__init__(ErrorKind.NOT_FOUND, f"order {order_id} not found")

    Args:
        kind: the category of the error.
        message: what failed, for logs; never shown to clients for a 5xx.
        user_message: a message safe to show to clients, if different.
        code: a stable error code; defaults to ``kind.code``.
        status: the HTTP status (400-599); defaults to ``kind.status``.
        fields: diagnostic context; values are kept as strings.
        tenant_id: the tenant the failing operation ran for.
        trace_id: the id correlating this error with a request's logs.

    Raises:
        ValueError: if ``status`` is not a 4xx or 5xx status.
    """

    kind: ErrorKind
    message: str
    user_message: str | None
    code: str
    status: int
    fields: dict[str, str]
    tenant_id: str | None
    trace_id: str | None
    violations: tuple[FieldViolation, ...]

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        user_message: str | None = None,
        code: str | None = None,
        status: int | None = None,
        fields: Mapping[str, str] | None = None,
        tenant_id: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = ErrorKind(kind)
        self.message = message
        self.user_message = user_message
        self.code = code if code is not None else self.kind.code
        self.status = _checked_status(status) if status is not None else self.kind.status
        self.fields = {str(key): str(value) for key, value in (fields or {}).items()}
        self.tenant_id = tenant_id
        self.trace_id = trace_id
        self.violations = ()

    # Fluent setters: each changes this error and returns it, so that
    # ``raise RichError(...).with_field("id", id)`` reads as one statement.

    def with_field(self, key: str, value: object) -> Self:
        """Add one diagnostic field (its value kept as ``str(value)``); return this error."""
        self.fields[key] = str(value)
        return self

    def with_fields(self, fields: Mapping[str, object] | None = None, /, **more: object) -> Self:
        """Add several diagnostic fields, from a mapping and/or keywords; return this error."""
        for key, value in {**(fields or {}), **more}.items():
            self.fields[key] = str(value)
        return self

    def with_tenant(self, tenant_id: str | UUID) -> Self:
        """Record the tenant the failing operation ran for; return this error."""
        self.tenant_id = str(tenant_id)
        return self

    def with_trace(self, trace_id: str | UUID) -> Self:
        """Record the trace (request) id; return this error."""
        self.trace_id = str(trace_id)
        return self

    def with_user_message(self, user_message: str) -> Self:
        """Set the message a client may read; return this error."""
        self.user_message = user_message
        return self

    def with_code(self, code: str) -> Self:
        """Replace the error code (for example ``"ORDER_NOT_FOUND"``); return this error."""
        self.code = code
        return self

    def with_status(self, status: int) -> Self:
        """Replace the HTTP status (400-599); return this error.

        Raises:
            ValueError: if ``status`` is not a 4xx or 5xx status.
        """
        self.status = _checked_status(status)
        return self

    def with_violation(self, field: FieldPath, detail: str) -> Self:
        """Add an invalid request field, shown in the problem's ``errors``; return this error.

        Args:
            field: a field name or a path such as ``("items", 0, "sku")``.
            detail: what is wrong with it, for the client.
        """
        self.violations = (*self.violations, FieldViolation.at(field, detail))
        return self

    @property
    def is_server_error(self) -> bool:
        """Whether this error is the server's fault (its status is 5xx)."""
        return self.status >= 500

    def chain(self) -> list[str]:
        """The messages of this error and of its causes, outermost first.

        Follows ``__cause__`` and, as tracebacks do, an implicit ``__context__``
        unless it was suppressed. A `RichError` contributes its ``message``; any
        other exception ``"TypeName: text"``.
        """
        messages: list[str] = []
        seen: set[int] = set()
        current: BaseException | None = self
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if isinstance(current, RichError):
                messages.append(current.message)
            else:
                text = str(current)
                name = type(current).__name__
                messages.append(f"{name}: {text}" if text else name)
            if current.__cause__ is not None:
                current = current.__cause__
            elif current.__suppress_context__:
                current = None
            else:
                current = current.__context__
        return messages

    def to_log_dict(self) -> dict[str, object]:
        """Everything known about this error, for structured logs (never for clients)."""
        record: dict[str, object] = {
            "kind": self.kind.code,
            "code": self.code,
            "status": self.status,
            "message": self.message,
            "chain": self.chain(),
        }
        if self.user_message is not None:
            record["user_message"] = self.user_message
        if self.fields:
            record["fields"] = dict(self.fields)
        if self.tenant_id is not None:
            record["tenant_id"] = self.tenant_id
        if self.trace_id is not None:
            record["trace_id"] = self.trace_id
        if self.violations:
            record["violations"] = [
                {"pointer": v.pointer, "detail": v.detail} for v in self.violations
            ]
        return record

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        context = ", ".join(f"{key}={value}" for key, value in self.fields.items())
        return f"{self.message} [{context}]"

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(kind={self.kind.code}, code={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Exception pickles as cls(*args), which a subclass with its own signature
        # cannot take: rebuild from the class and the instance state instead.
        return (_restore, (type(self), self.args, self.__dict__.copy()))


def _restore(cls: type[RichError], args: tuple[object, ...], state: dict[str, object]) -> RichError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error
