"""Rich errors for RusTok: categories, context, RFC 9457 problem details, validation.

A user imports everything from here::

    from rustok_core.error import ErrorKind, RichError, ProblemDetails, wrap
"""

from importlib import import_module
from typing import TYPE_CHECKING

from rustok_core._public import show_as_public
from rustok_core.error._context import error_context, wrap
from rustok_core.error._kind import PROBLEM_TYPE_BASE, ErrorKind
from rustok_core.error._rich import RichError
from rustok_core.error._violation import FieldPath, FieldViolation, json_pointer

if TYPE_CHECKING:
    from rustok_core.error._problem import PROBLEM_JSON, ProblemDetails, ProblemError
    from rustok_core.error._validation import (
        ValidationErrorBuilder,
        validation_error_from_pydantic,
    )

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_TYPE_BASE",
    "ErrorKind",
    "FieldPath",
    "FieldViolation",
    "ProblemDetails",
    "ProblemError",
    "RichError",
    "ValidationErrorBuilder",
    "error_context",
    "json_pointer",
    "validation_error_from_pydantic",
    "wrap",
]

show_as_public(__name__, ErrorKind, FieldViolation, RichError, error_context)

# The names that need pydantic are imported on first use, so that code using only errors,
# resilience or tenancy does not pay for importing pydantic (about half a second cold).
_NEEDS_PYDANTIC = {
    "PROBLEM_JSON": "_problem",
    "ProblemDetails": "_problem",
    "ProblemError": "_problem",
    "ValidationErrorBuilder": "_validation",
    "validation_error_from_pydantic": "_validation",
}

if not TYPE_CHECKING:  # mypy sees the imports above; a module __getattr__ would hide typos

    def __getattr__(name: str) -> object:
        module = _NEEDS_PYDANTIC.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_NEEDS_PYDANTIC})
