"""Collecting every invalid field of a request into one VALIDATION error."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Self

import pydantic

from rustok_core._public import show_as_public
from rustok_core.error._kind import ErrorKind
from rustok_core.error._rich import RichError
from rustok_core.error._violation import FieldPath, FieldViolation, json_pointer

__all__ = ["ValidationErrorBuilder", "validation_error_from_pydantic"]

_USER_MESSAGE = "One or more fields are invalid; see errors."


class ValidationErrorBuilder:
    """Collect field errors, several per field if need be, then build one error.

    The built error is a `RichError` of kind ``VALIDATION`` whose problem lists
    every message, in the order added, each with the JSON pointer of its field.

    Examples:
        >>> error = (
        ...     ValidationErrorBuilder().field("email", "invalid").field("email", "taken").build()
        ... )
        >>> [(v.pointer, v.detail) for v in error.violations]
        [('/email', 'invalid'), ('/email', 'taken')]
    """

    __slots__ = ("_trace_id", "_violations")

    def __init__(self) -> None:
        self._violations: list[FieldViolation] = []
        self._trace_id: str | None = None

    def field(self, path: FieldPath, detail: str) -> Self:
        """Add what is wrong with the field at ``path``; return this builder.

        Args:
            path: a field name (one segment, escaped, never split) or a sequence of
                keys and indexes such as ``("items", 0, "sku")``.
            detail: what is wrong, for the client.
        """
        self._violations.append(FieldViolation.at(path, detail))
        return self

    def pydantic(
        self,
        error: pydantic.ValidationError | Iterable[Mapping[str, object]],
        *,
        strip_prefix: Sequence[str | int] = (),
    ) -> Self:
        """Add every error of a pydantic ``ValidationError``; return this builder.

        Each error's ``loc`` becomes a JSON pointer (``("items", 0, "sku")`` is
        ``/items/0/sku``) and its ``msg`` the detail.

        Args:
            error: a pydantic ``ValidationError``, or its ``errors()`` list (the same
                shape FastAPI's ``RequestValidationError.errors()`` returns).
            strip_prefix: leading ``loc`` segments to drop when present, such as
                ``("body",)`` for FastAPI request bodies.
        """
        items: Iterable[Mapping[str, object]] = (
            error.errors() if isinstance(error, pydantic.ValidationError) else error
        )
        prefix = tuple(strip_prefix)
        for item in items:
            raw_loc = item.get("loc", ())
            loc = tuple(raw_loc) if isinstance(raw_loc, list | tuple) else (str(raw_loc),)
            if prefix and loc[: len(prefix)] == prefix:
                loc = loc[len(prefix) :]
            path = tuple(seg if isinstance(seg, int | str) else str(seg) for seg in loc)
            self._violations.append(FieldViolation(json_pointer(path), str(item.get("msg", ""))))
        return self

    def trace_id(self, trace_id: str) -> Self:
        """Set the trace id of the error to build; return this builder."""
        self._trace_id = trace_id
        return self

    def has_errors(self) -> bool:
        """Whether any field error was added."""
        return bool(self._violations)

    @property
    def violations(self) -> tuple[FieldViolation, ...]:
        """The field errors added so far, in order."""
        return tuple(self._violations)

    def build(self, message: str | None = None) -> RichError:
        """The ``VALIDATION`` error listing every field error.

        Args:
            message: the internal message; defaults to one naming the fields.

        Raises:
            ValueError: if no field error was added (check `has_errors` first).
        """
        if not self._violations:
            raise ValueError(
                "ValidationErrorBuilder.build() needs at least one field error; "
                "add one with .field(...) or check .has_errors() first"
            )
        if message is None:
            pointers = list(dict.fromkeys(v.pointer or "/" for v in self._violations))
            message = f"validation failed for {', '.join(pointers)}"
        error = RichError(
            ErrorKind.VALIDATION, message, user_message=_USER_MESSAGE, trace_id=self._trace_id
        )
        error.violations = tuple(self._violations)
        return error

    def raise_if_errors(self, message: str | None = None) -> None:
        """Raise the built error if any field error was added; do nothing otherwise."""
        if self._violations:
            raise self.build(message)


def validation_error_from_pydantic(
    error: pydantic.ValidationError | Iterable[Mapping[str, object]],
    *,
    strip_prefix: Sequence[str | int] = (),
    trace_id: str | None = None,
) -> RichError:
    """Convert a pydantic ``ValidationError`` into a ``VALIDATION`` `RichError`.

    The result has the same shape as `ValidationErrorBuilder.build`: one violation
    per pydantic error, located by a JSON pointer built from ``loc``. When given a
    ``ValidationError``, it becomes the cause.

    Examples:
        >>> import pydantic
        >>> class Item(pydantic.BaseModel):
        ...     qty: int
        >>> class Order(pydantic.BaseModel):
        ...     items: list[Item]
        >>> try:
        ...     Order.model_validate({"items": [{"qty": "many"}]})
        ... except pydantic.ValidationError as exc:
        ...     error = validation_error_from_pydantic(exc)
        >>> error.violations[0].pointer
        '/items/0/qty'
    """
    builder = ValidationErrorBuilder().pydantic(error, strip_prefix=strip_prefix)
    if trace_id is not None:
        builder.trace_id(trace_id)
    if not builder.has_errors():
        raise ValueError("the pydantic error lists no errors to convert")
    built = builder.build()
    if isinstance(error, pydantic.ValidationError):
        built.__cause__ = error
        built.__suppress_context__ = True
    return built


# Shown under its public path, rustok_core.error, in tracebacks and reprs.
show_as_public("rustok_core.error", ValidationErrorBuilder)
