"""The audit record every successful transition yields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, cast
from uuid import UUID

from pydantic import TypeAdapter

if TYPE_CHECKING:
    from pydantic import JsonValue

_EMPTY: Mapping[str, object] = MappingProxyType({})


# A NamedTuple rather than a frozen dataclass: it is built on every transition, and a
# tuple is immutable for free (a frozen dataclass pays for each field's assignment).
class TransitionRecord(NamedTuple):
    """One successful transition, as services persist it for the audit trail.

    Attributes:
        entity_type: the entity class, e.g. ``"ContentNode"``.
        entity_id: the entity's id.
        tenant_id: the tenant the entity belongs to.
        trigger: the trigger that fired, e.g. ``"publish"``.
        from_state: the state name before.
        to_state: the state name after.
        at: when it happened (timezone-aware).
        version: the entity's version after the transition.
        actor: who caused it, if known.
        data: what the transition method recorded with it (e.g. a reason), JSON-ready.
    """

    entity_type: str
    entity_id: UUID
    tenant_id: UUID
    trigger: str
    from_state: str
    to_state: str
    at: datetime
    version: int
    actor: str | None = None
    data: Mapping[str, object] = _EMPTY

    def to_data(self) -> dict[str, JsonValue]:
        """The record as a JSON-ready dict (ids and the time as strings)."""
        plain = self._replace(data=dict(self.data))  # pydantic cannot dump a mappingproxy
        values = _ADAPTER.dump_python(plain, mode="json")
        return dict(zip(self._fields, cast("list[JsonValue]", values), strict=True))

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> TransitionRecord:
        """Rebuild a record from `to_data`'s output, validating every field.

        Raises:
            pydantic.ValidationError: when a field is missing or has the wrong type.
        """
        return _ADAPTER.validate_python(dict(data))


_ADAPTER: TypeAdapter[TransitionRecord] = TypeAdapter(TransitionRecord)
