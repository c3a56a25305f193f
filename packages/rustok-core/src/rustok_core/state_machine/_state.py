"""The base of every state's data class, and its JSON round trip."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from rustok_core.state_machine._errors import InvalidStateDataError

if TYPE_CHECKING:
    from pydantic import JsonValue

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _default_state_name(class_name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", class_name).lower()


@dataclass(frozen=True, slots=True)
class State:
    """Base of the data class of one state (``Draft``, ``Paid(payment_id, ...)``).

    Subclass it with ``@dataclass(frozen=True, slots=True)`` and put the data that only
    exists in that state on it. Each subclass gets a ``state_name`` (snake case of the
    class name unless the class body sets one): the name the machine and storage use.

    Example::

        @dataclass(frozen=True, slots=True)
        class Published(State):
            published_at: datetime
    """

    state_name: ClassVar[str] = "state"

    def __init_subclass__(cls, **kwargs: object) -> None:
        # super() without arguments breaks in slotted dataclasses (the class is rebuilt).
        super(State, cls).__init_subclass__(**kwargs)
        if "state_name" not in cls.__dict__:
            cls.state_name = _default_state_name(cls.__name__)

    def to_data(self) -> dict[str, JsonValue]:
        """This state's data as a JSON-ready dict (datetimes and decimals as strings)."""
        return cast("dict[str, JsonValue]", _adapter(type(self)).dump_python(self, mode="json"))

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Self:
        """Rebuild a state from what `to_data` returned, validating every field.

        Raises:
            InvalidStateDataError: when a field is missing or has the wrong type.
        """
        try:
            return _adapter(cls).validate_python(dict(data))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidStateDataError(cls.__qualname__, cls.state_name, problems) from exc


_ADAPTERS: dict[type[State], TypeAdapter[State]] = {}


_S = TypeVar("_S", bound=State)


def _adapter(cls: type[_S]) -> TypeAdapter[_S]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return cast("TypeAdapter[_S]", adapter)
