"""Adding context to an error the Python way: wrap it, keeping it as the cause."""

from __future__ import annotations

from types import TracebackType
from typing import Literal

from rustok_core.error._kind import ErrorKind
from rustok_core.error._rich import RichError

__all__ = ["error_context", "wrap"]


def wrap(
    exc: BaseException, message: str, /, *, kind: ErrorKind | None = None, **fields: object
) -> RichError:
    """Build a `RichError` saying what failed, with ``exc`` as its cause.

    A wrapped `RichError` keeps its kind unless ``kind`` is given; then the new
    error also keeps its code, status, user message and violations, so a
    ``404 ORDER_NOT_FOUND`` stays one however much context is added. Its tenant id,
    trace id and fields are always carried over (the new fields win). Anything
    else becomes ``ErrorKind.INTERNAL`` unless ``kind`` says otherwise.

    Args:
        exc: the exception caught.
        message: what was being done, for logs (``"loading order o-1 failed"``).
        kind: the category of the new error; defaults as above.
        **fields: diagnostic fields to add.

    Returns:
        The new error; raise it with ``raise wrap(exc, ...) from exc``, or just
        ``raise wrap(exc, ...)`` inside the ``except`` block (the cause is set either way).

    Examples:
        >>> try:
        ...     int("x")
        ... except ValueError as exc:
        ...     error = wrap(exc, "parsing the page size failed", kind=ErrorKind.VALIDATION)
        >>> error.chain()
        ['parsing the page size failed', "ValueError: invalid literal for int() with base 10: 'x'"]
    """
    if isinstance(exc, RichError):
        keep = kind is None or kind is exc.kind
        error = RichError(
            exc.kind if kind is None else kind,
            message,
            user_message=exc.user_message if keep else None,
            code=exc.code if keep else None,
            status=exc.status if keep else None,
            fields=exc.fields,
            tenant_id=exc.tenant_id,
            trace_id=exc.trace_id,
        )
        if keep:
            error.violations = exc.violations
    else:
        error = RichError(ErrorKind.INTERNAL if kind is None else kind, message)
    error.with_fields(fields)
    error.__cause__ = exc
    error.__suppress_context__ = True
    return error


class error_context:  # lower case: it reads as a function, ``with error_context(...):``
    """Convert anything raised inside the block into a `RichError` with context.

    The exception raised inside becomes the cause (``__cause__``) of a `RichError`
    built by `wrap`. Only `Exception` subclasses are converted:
    ``asyncio.CancelledError``, ``KeyboardInterrupt``, ``SystemExit`` and
    ``GeneratorExit`` pass through untouched, so cancellation and shutdown keep working.

    Args:
        message: what the block does, for logs (``"charging order o-1"``).
        kind: the category of the new error (see `wrap` for the default).
        **fields: diagnostic fields to add.

    Examples:
        >>> with error_context("reading settings", kind=ErrorKind.INTERNAL, file="a.toml"):
        ...     raise OSError("disk unplugged")
        Traceback (most recent call last):
        ...
        rustok_core.error.RichError: reading settings [file=a.toml]
    """

    __slots__ = ("_fields", "_kind", "_message")

    def __init__(self, message: str, /, *, kind: ErrorKind | None = None, **fields: object) -> None:
        self._message = message
        self._kind = kind
        self._fields = fields

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if isinstance(exc, Exception):
            raise wrap(exc, self._message, kind=self._kind, **self._fields) from exc
        return False
