"""Free text that every database column and log line can hold.

NUL (PostgreSQL refuses it in text, SQLite stores it), the other C0 controls but tab, line
feed and carriage return, DEL, the C1 controls, and lone UTF-16 surrogates (no UTF-8 can
carry one) are refused in free text, with the same message on every database. Each input
model declares its own fields and checks them with `check_holdable`; `TEXT_PATTERN` is the
same rule for a JSON schema::

    from typing import Annotated
    from pydantic import AfterValidator, Field
    from rustok_core.text import TEXT_PATTERN, check_holdable

    Name = Annotated[
        str,
        Field(max_length=200, json_schema_extra={"pattern": TEXT_PATTERN}),
        AfterValidator(check_holdable),
    ]
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["TEXT_PATTERN", "check_holdable"]

_UNHOLDABLE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

TEXT_PATTERN: Final = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"
"""The JSON-schema ``pattern`` of free text: no control character but tab, LF and CR."""


def check_holdable(value: str) -> str:
    """``value`` itself, if every database and log can hold it.

    Raises:
        ValueError: naming the first character that cannot be held and its position
            (pydantic turns it into a validation error of the field).

    Examples:
        >>> check_holdable("Hello\\tworld")
        'Hello\\tworld'
        >>> check_holdable("a\\x00b")
        Traceback (most recent call last):
        ...
        ValueError: must not contain the control character U+0000 (at position 1)
    """
    found = _UNHOLDABLE.search(value)
    if found is not None:
        raise ValueError(
            f"must not contain the control character U+{ord(found.group()):04X} "
            f"(at position {found.start()})"
        )
    return value
