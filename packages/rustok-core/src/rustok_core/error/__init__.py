"""Rich errors for RusTok: categories, context, RFC 9457 problem details, validation.

A user imports everything from here::

    from rustok_core.error import ErrorKind, RichError, ProblemDetails
"""

from rustok_core.error._kind import PROBLEM_TYPE_BASE, ErrorKind
from rustok_core.error._rich import RichError
from rustok_core.error._violation import FieldPath, FieldViolation, json_pointer

__all__ = [
    "PROBLEM_TYPE_BASE",
    "ErrorKind",
    "FieldPath",
    "FieldViolation",
    "RichError",
    "json_pointer",
]
