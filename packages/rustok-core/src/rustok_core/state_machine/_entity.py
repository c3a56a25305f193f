"""The entity base, generic in its state, and the helpers that read an entity's state."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar, cast
from uuid import UUID

from pydantic import TypeAdapter, ValidationError

from rustok_core.state_machine._errors import (
    GuardFailedError,
    InvalidStateDataError,
    InvalidTransitionError,
)
from rustok_core.state_machine._guard import TransitionRequest
from rustok_core.state_machine._machine import StateMachine
from rustok_core.state_machine._record import TransitionRecord
from rustok_core.state_machine._state import State

if sys.version_info >= (3, 13):
    from typing import TypeIs
else:
    from typing_extensions import TypeIs

if TYPE_CHECKING:
    from pydantic import JsonValue

S_co = TypeVar("S_co", bound=State, covariant=True)
"""The state an entity is in (covariant: ``Order[Paid]`` is an ``Order[State]``)."""

T = TypeVar("T", bound=State)

_NO_DATA: Mapping[str, object] = MappingProxyType({})
_SET_ON_ADVANCE = frozenset({"state", "version", "last_transition"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Entity(Generic[S_co]):
    """Base of an entity generic in its state: ``ContentNode[Draft]``, ``Order[Paid]``.

    Subclass it with ``@dataclass(frozen=True, slots=True, kw_only=True)``, set the class
    attribute ``state_machine`` to the machine built by ``MachineBuilder``, and write one
    method per trigger, typed on ``self`` so that mypy rejects it from any other state::

        def publish(self: ContentNode[Draft]) -> ContentNode[Published]: ...

    Each method builds the target state and calls `_transition`, which checks the
    trigger against the class's machine (for values whose state is known only at run
    time), evaluates the guard, and returns a new entity; the entity it is called on never
    changes. Create entities only through typed factories (``new_draft(...)``).

    ``_transition`` is typed to return an ``Entity``; declare it again in the subclass
    under ``TYPE_CHECKING``, returning the subclass (``-> ContentNode[T]``), so that each
    method can return its result as is (see the state machine guide).

    Attributes:
        id: the entity's id.
        tenant_id: the tenant it belongs to.
        state: the current state and its data.
        version: 1 when created, plus one per transition (for optimistic locking).
        last_transition: the record of the transition that produced this value, or
            ``None`` for a value that was created or loaded.
    """

    state_machine: ClassVar[StateMachine]
    touched_field: ClassVar[str | None] = None
    """The field every transition sets to the transition's time (``"updated_at"``), if
    any; checked to be a field of the class on its first transition."""

    id: UUID
    tenant_id: UUID
    state: S_co
    version: int = 1
    last_transition: TransitionRecord | None = field(default=None, compare=False, repr=False)

    def __init_subclass__(cls, **kwargs: object) -> None:
        # super() without arguments breaks in slotted dataclasses (the class is rebuilt).
        super(Entity, cls).__init_subclass__(**kwargs)
        machine = cls.__dict__.get("state_machine")
        if isinstance(machine, StateMachine):
            missing = [t for t in machine.triggers if not callable(getattr(cls, t, None))]
            if missing:
                raise TypeError(
                    f"{cls.__name__} has no method for trigger(s) {', '.join(missing)} "
                    f"of its machine {machine.name!r}; write one per trigger"
                )

    @property
    def state_name(self) -> str:
        """The name of the current state, as the machine and storage know it."""
        return self.state.state_name

    def _transition(
        self,
        trigger: str,
        target: T,
        /,
        *,
        actor: str | None = None,
        at: datetime | None = None,
        data: Mapping[str, object] | None = None,
        **changes: object,
    ) -> Entity[T]:
        """Move to ``target`` by ``trigger``; return the new entity.

        Checks, in order: the trigger exists from the current state
        (``InvalidTransitionError``), ``target`` is the state the machine leads to
        (``TypeError``, a programming error), the guard passes (``GuardFailedError``). Then
        returns a copy with the new state, the version plus one, ``last_transition`` set
        to the `TransitionRecord`, `touched_field` set to ``at`` (default:
        now) and ``changes`` applied. The copy is written field by field, without calling
        the class, so a ``__post_init__`` does not run again: validate ``changes`` in the
        transition method (as ``ContentNode.update`` does).
        """
        cls = type(self)
        source = self.state.state_name
        found = cls.state_machine._lookup(trigger, source)
        if found is None:
            raise self._invalid(trigger)
        dest, guard = found
        if target.state_name != dest:
            raise TypeError(
                f"{cls.__name__}.{trigger} built a {type(target).__name__} state but its "
                f"machine leads from {source!r} to {dest!r}"
            )
        record_data = _NO_DATA if data is None else MappingProxyType(dict(data))
        if guard is not None:
            request = TransitionRequest(self, trigger, self.state, target, actor, record_data)
            failed = guard.failure(request)
            if failed is not None:
                raise GuardFailedError(
                    entity_type=cls.__name__,
                    entity_id=str(self.id),
                    from_state=source,
                    trigger=trigger,
                    guard=failed.name,
                    reason=failed.message,
                )
        copied, changeable = _field_names(cls)
        if changes and not changes.keys() <= changeable:
            unknown = sorted(changes.keys() - changeable)
            raise TypeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
        when = at if at is not None else datetime.now(UTC)
        version = self.version + 1
        # Positional, in the record's field order (entity_type, entity_id, tenant_id,
        # trigger, from_state, to_state, at, version, actor, data): a NamedTuple built
        # with keywords costs twice as much.
        record = TransitionRecord(
            cls.__name__,
            self.id,
            self.tenant_id,
            trigger,
            source,
            dest,
            when,
            version,
            actor,
            record_data,
        )
        # A frozen dataclass refuses attribute writes, so the copy is written with
        # object.__setattr__, as the dataclass's own __init__ does. Calling the class
        # instead would parse every field as a keyword and run __post_init__ again on
        # values checked when the entity was built: about a third more per content
        # transition, which then misses the benchmark's target (the guide's Cost section).
        new = object.__new__(cls)
        set_field = object.__setattr__
        for name in copied:
            set_field(new, name, getattr(self, name))
        set_field(new, "state", target)
        set_field(new, "version", version)
        set_field(new, "last_transition", record)
        if cls.touched_field is not None:
            set_field(new, cls.touched_field, when)
        for name, value in changes.items():
            set_field(new, name, value)
        return cast("Entity[T]", new)

    def _check_trigger(self, trigger: str) -> None:
        """Raise ``InvalidTransitionError`` unless ``trigger`` is allowed from the current state.

        A transition method whose arguments need validating calls this first, so that an
        entity in the wrong state reports ``InvalidTransitionError`` whatever the arguments.
        """
        if type(self).state_machine._lookup(trigger, self.state.state_name) is None:
            raise self._invalid(trigger)

    def _invalid(self, trigger: str) -> InvalidTransitionError:
        return invalid_transition(self, trigger)

    def to_data(self) -> dict[str, JsonValue]:
        """The entity as a JSON-ready dict: its fields, ``state`` (the state name) and
        ``state_data`` (the state's data); ``last_transition`` is left out."""
        data = cast(
            "dict[str, JsonValue]",
            _entity_adapter(type(self)).dump_python(
                self, mode="json", exclude={"state", "last_transition"}
            ),
        )
        data["state"] = self.state.state_name
        data["state_data"] = self.state.to_data()
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Entity[State]:
        """Rebuild an entity whose state is known only at run time (a stored row) from
        `to_data`'s output, validating the state name, the state data and every
        field. Narrow the result with `is_state` before calling a transition.

        Raises:
            InvalidStateDataError: when the state name is unknown or any data is invalid.
        """
        state_name = data.get("state")
        if not isinstance(state_name, str):
            raise InvalidStateDataError(
                cls.__name__, str(state_name), "'state' must be a state name"
            )
        state_data = data.get("state_data", {})
        if not isinstance(state_data, Mapping):
            raise InvalidStateDataError(cls.__name__, state_name, "'state_data' must be a mapping")
        # The state's class validates the data, its keys included.
        state = cls.state_machine.parse_state(state_name, cast("Mapping[str, object]", state_data))
        values = {k: v for k, v in data.items() if k not in ("state", "state_data")}
        values["state"] = state
        try:
            return _entity_adapter(cls).validate_python(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidStateDataError(cls.__name__, state_name, problems) from exc


_ADAPTERS: dict[type[Entity[State]], TypeAdapter[Entity[State]]] = {}
_FIELD_NAMES: dict[type[Entity[State]], tuple[tuple[str, ...], frozenset[str]]] = {}


def _field_names(cls: type[Entity[State]]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The fields a transition copies from the entity as they are, and the fields it lets
    a transition method change (``**changes``); read once per class, on its first
    transition.

    A transition sets ``state``, ``version``, ``last_transition`` and
    `Entity.touched_field` itself; it copies every other field.

    Raises:
        TypeError: when `Entity.touched_field` is not one of the class's fields.
    """
    found = _FIELD_NAMES.get(cls)
    if found is None:
        names = [f.name for f in fields(cls)]
        touched = cls.touched_field
        if touched is not None and touched not in names:
            raise TypeError(f"{cls.__name__}.touched_field {touched!r} is not one of its fields")
        copied = tuple(name for name in names if name not in _SET_ON_ADVANCE and name != touched)
        found = _FIELD_NAMES[cls] = (copied, frozenset(names) - _SET_ON_ADVANCE)
    return found


def _entity_adapter(cls: type[Entity[State]]) -> TypeAdapter[Entity[State]]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def is_state(entity: Entity[State], state: type[T]) -> TypeIs[Entity[T]]:
    """``True`` when ``entity`` is in ``state``; narrows a loaded value for mypy and pyright.

    Type loaded values as a union of the entity in each state (``AnyContentNode``); after
    ``if is_state(node, Published):`` both checkers know ``node`` is a
    ``ContentNode[Published]`` and allow ``node.archive(...)``, and in the ``else`` branch
    that it is in one of the other states. The union is what keeps the entity's class: the
    narrowing keeps the members that are an ``Entity[Published]``. A value typed
    ``ContentNode[State]`` (one type, not a union) narrows to ``Entity[Published]`` for mypy
    and to ``<subclass of ContentNode[State] and Entity[Published]>`` for pyright: neither
    has the transitions.
    """
    return isinstance(entity.state, state)


def invalid_transition(entity: Entity[State], trigger: str) -> InvalidTransitionError:
    """The ``InvalidTransitionError`` of ``trigger`` on ``entity`` in its current state, to
    raise where a service finds a loaded entity in a state the trigger does not start from.

    The error names the entity, its state, the trigger and the triggers that state allows;
    it is the error the typed transition method itself raises from a wrong state::

        if not is_state(order, Paid):
            raise invalid_transition(order, "ship")
        shipped = order.ship(tracking_number, carrier)  # typed: an Order[Paid]

    Returns:
        the error; the caller raises it (so type checkers see the branch end).
    """
    source = entity.state.state_name
    machine = type(entity).state_machine
    return InvalidTransitionError(
        entity_type=type(entity).__name__,
        entity_id=str(entity.id),
        from_state=source,
        trigger=trigger,
        allowed=machine.allowed_triggers(source),
    )


def allowed_triggers(entity: Entity[State]) -> tuple[str, ...]:
    """The triggers the entity's machine allows from its current state, sorted."""
    return type(entity).state_machine.allowed_triggers(entity.state.state_name)


def fire(entity: Entity[State], trigger: str, /, **kwargs: object) -> Entity[State]:
    """Call the transition method named ``trigger`` on an entity whose state is known only
    at run time, with ``kwargs``; return the new entity.

    This is the dynamic twin of calling the typed method (an HTTP endpoint per trigger, a
    replayed command). The method itself checks the machine, so a trigger the state does
    not allow raises ``InvalidTransitionError`` and changes nothing.

    Raises:
        InvalidTransitionError: when ``trigger`` is not a trigger of the machine at all, or not
            allowed from the entity's state.
        GuardFailedError: when the transition's guard refuses it.
    """
    cls = type(entity)
    if trigger not in cls.state_machine.triggers:
        raise entity._invalid(trigger)
    result: object = getattr(entity, trigger)(**kwargs)
    if not isinstance(result, Entity):
        raise TypeError(f"{cls.__name__}.{trigger} returned {result!r}, not an entity")
    return cast("Entity[State]", result)
