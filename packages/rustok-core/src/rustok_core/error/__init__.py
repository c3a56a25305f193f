"""Rich errors for RusTok: categories, context, RFC 9457 problem details, validation.

A user imports everything from here::

    from rustok_core.error import ErrorKind, RichError, ProblemDetails, wrap
"""

from rustok_core.error._context import error_context, wrap
from rustok_core.error._kind import PROBLEM_TYPE_BASE, ErrorKind
from rustok_core.error._problem import PROBLEM_JSON, ProblemDetails, ProblemError
from rustok_core.error._rich import RichError
from rustok_core.error._validation import ValidationErrorBuilder, validation_error_from_pydantic
from rustok_core.error._violation import FieldPath, FieldViolation, json_pointer

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

# Show the public path in tracebacks and reprs, not the private module.
ErrorKind.__module__ = __name__
FieldViolation.__module__ = __name__
RichError.__module__ = __name__
ValidationErrorBuilder.__module__ = __name__
error_context.__module__ = __name__
