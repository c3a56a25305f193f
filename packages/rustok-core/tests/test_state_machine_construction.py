"""How states and entities are built: state classes are plain frozen dataclasses, and the
entity a transition returns is one like its constructor builds, with ``touched_field``."""

from __future__ import annotations

import copy
from dataclasses import FrozenInstanceError, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import ClassVar, TypeVar
from uuid import uuid4

import pytest

from rustok_core.state_machine import Entity, MachineBuilder, State, StateMachine

S_co = TypeVar("S_co", bound=State, covariant=True)
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


# --- states ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placed(State):
    where: str
    at: datetime
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tagged(State):
    label: str
    weight: int = 1


@dataclass(frozen=True, slots=True)
class Refined(Placed):
    grade: int = 0


def test_a_state_takes_positional_keyword_and_default_arguments() -> None:
    by_position = Placed("dock 4", AT)
    by_keyword = Placed(at=AT, where="dock 4", note=None)
    assert by_position == by_keyword
    assert (by_position.where, by_position.at, by_position.note) == ("dock 4", AT, None)
    assert Placed("dock 4", AT, "fragile").note == "fragile"
    assert repr(by_position) == f"Placed(where='dock 4', at={AT!r}, note=None)"
    assert hash(by_position) == hash(by_keyword)


def test_a_state_constructor_refuses_what_dataclass_refuses() -> None:
    with pytest.raises(TypeError, match="where"):
        Placed(at=AT)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Placed("dock 4", AT, None, "one too many")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="colour"):
        Placed("dock 4", AT, colour="red")  # type: ignore[call-arg]


def test_keyword_only_fields_stay_keyword_only() -> None:
    assert Tagged(label="x") == Tagged(label="x", weight=1)
    with pytest.raises(TypeError):
        Tagged("x")  # type: ignore[call-arg]


def test_an_inherited_state_sets_its_own_and_its_parents_fields() -> None:
    refined = Refined("dock 4", AT, None, 3)
    assert (refined.where, refined.at, refined.note, refined.grade) == ("dock 4", AT, None, 3)
    assert Refined.state_name == "refined"


def test_built_states_stay_frozen() -> None:
    placed = Placed("dock 4", AT)
    with pytest.raises(FrozenInstanceError):
        placed.where = "elsewhere"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del placed.where


@dataclass(frozen=True, slots=True)
class Checked(State):
    amount: int

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("amount must not be negative")


@dataclass(frozen=True, slots=True)
class Listed(State):
    items: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True, init=False)
class Doubled(State):
    value: int

    def __init__(self, value: int) -> None:
        object.__setattr__(self, "value", value * 2)


def test_post_init_default_factories_and_hand_written_init_run() -> None:
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)
    assert Checked(2).amount == 2
    assert Listed().items == ()
    assert Listed(("a",)).items == ("a",)
    assert Doubled(2).value == 4


# --- the entity a transition returns -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draft(State):
    pass


@dataclass(frozen=True, slots=True)
class Sent(State):
    to: str


NOTE_MACHINE = (
    MachineBuilder("Note")
    .state(Draft, initial=True)
    .state(Sent)
    .transition("send", Draft, Sent)
    .transition("recall", Sent, Draft)
    .build()
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Note(Entity[S_co]):
    state_machine: ClassVar[StateMachine] = NOTE_MACHINE
    touched_field: ClassVar[str | None] = "updated_at"

    body: str
    created_at: datetime
    updated_at: datetime

    def send(self: Note[Draft], to: str, *, at: datetime | None = None) -> Note[Sent]:
        return self._transition("send", Sent(to), at=at, data={"to": to})  # type: ignore[return-value]

    def recall(self: Note[Sent], *, body: str | None = None) -> Note[Draft]:
        if body is None:
            return self._transition("recall", Draft())  # type: ignore[return-value]
        return self._transition("recall", Draft(), body=body)  # type: ignore[return-value]


def _draft() -> Note[Draft]:
    return Note(
        id=uuid4(), tenant_id=uuid4(), state=Draft(), body="hi", created_at=AT, updated_at=AT
    )


def test_a_transition_returns_an_instance_of_the_entity_class_itself() -> None:
    sent = _draft().send("ops", at=AT + timedelta(hours=1))
    assert type(sent) is Note
    assert sent.__class__ is Note


def test_the_returned_entity_is_frozen() -> None:
    sent = _draft().send("ops")
    with pytest.raises(FrozenInstanceError):
        sent.body = "changed"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del sent.body


def test_the_returned_entity_equals_one_built_with_the_same_fields() -> None:
    draft = _draft()
    later = AT + timedelta(hours=1)
    sent = draft.send("ops", at=later)
    built = Note(
        id=draft.id,
        tenant_id=draft.tenant_id,
        state=Sent("ops"),
        version=2,
        body="hi",
        created_at=AT,
        updated_at=later,
    )
    assert sent == built
    assert hash(sent) == hash(built)
    assert copy.copy(sent) == sent
    assert repr(sent) == repr(built)


def test_touched_field_is_set_to_the_transition_time_and_nothing_else_moves() -> None:
    draft = _draft()
    later = AT + timedelta(hours=1)
    sent = draft.send("ops", at=later)
    assert sent.updated_at == later
    assert sent.last_transition is not None
    assert sent.last_transition.at == later
    kept = {f.name for f in fields(Note)} - {"state", "version", "last_transition", "updated_at"}
    assert {name: getattr(sent, name) for name in kept} == {
        name: getattr(draft, name) for name in kept
    }
    assert draft.updated_at == AT  # the old value is left alone


def test_touched_field_defaults_to_now() -> None:
    before = datetime.now(UTC)
    sent = _draft().send("ops")
    assert before <= sent.updated_at <= datetime.now(UTC)
    assert sent.last_transition is not None
    assert sent.updated_at == sent.last_transition.at


def test_changes_apply_on_top_of_the_copied_fields() -> None:
    sent = _draft().send("ops", at=AT)
    recalled = sent.recall(body="second thoughts")
    assert recalled.body == "second thoughts"
    assert recalled.version == 3
    assert sent.body == "hi"


def test_a_touched_field_that_is_not_a_field_is_refused_when_first_used() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Misnamed(Entity[S_co]):
        state_machine: ClassVar[StateMachine] = NOTE_MACHINE
        touched_field: ClassVar[str | None] = "modified_at"

        def send(self, to: str) -> Misnamed[Sent]:
            return self._transition("send", Sent(to))  # type: ignore[return-value]

        def recall(self) -> Misnamed[Draft]:
            return self._transition("recall", Draft())  # type: ignore[return-value]

    misnamed = Misnamed(id=uuid4(), tenant_id=uuid4(), state=Draft())
    with pytest.raises(TypeError, match="'modified_at' is not one of its fields"):
        misnamed.send("ops")
    assert misnamed.version == 1
