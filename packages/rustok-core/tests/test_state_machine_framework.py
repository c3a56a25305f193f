"""The state machine framework, on a small ticket lifecycle defined here:
Open --close[reason given]--> Closed --reopen--> Open, Open --edit--> Open,
Closed --purge--> Purged (final)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import FrozenInstanceError, dataclass
from datetime import UTC, datetime
from typing import ClassVar, TypeVar, cast
from uuid import UUID, uuid4

import pytest

from rustok_core.error import ErrorKind, RichError
from rustok_core.state_machine import (
    SAME,
    Entity,
    Guard,
    GuardFailedError,
    InvalidStateDataError,
    InvalidTransitionError,
    MachineBuilder,
    State,
    StateMachine,
    TransitionRecord,
    TransitionRequest,
    allowed_triggers,
    and_,
    fire,
    is_state,
    not_,
    or_,
    to_mermaid,
)

S_co = TypeVar("S_co", bound=State, covariant=True)
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Open(State):
    pass


@dataclass(frozen=True, slots=True)
class Closed(State):
    reason: str
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class Purged(State):
    state_name: ClassVar[str] = "gone"


def _reason(request: TransitionRequest) -> str:
    return request.target.reason if isinstance(request.target, Closed) else ""


reason_given = Guard(lambda r: bool(_reason(r).strip()), "a reason is required", name="reason")
reason_short = Guard(lambda r: len(_reason(r)) <= 20, "the reason is too long", name="short")

TICKET_MACHINE = (
    MachineBuilder("Ticket")
    .state(Open, initial=True)
    .state(Closed)
    .state(Purged)
    .transition("close", Open, Closed, guard=and_(reason_given, reason_short))
    .transition("reopen", Closed, Open)
    .transition("edit", Open, SAME)
    .transition("purge", Closed, Purged)
    .build()
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticket(Entity[S_co]):
    state_machine: ClassVar[StateMachine] = TICKET_MACHINE

    title: str

    @staticmethod
    def new_open(title: str, *, tenant_id: UUID | None = None) -> Ticket[Open]:
        return Ticket(id=uuid4(), tenant_id=tenant_id or uuid4(), state=Open(), title=title)

    def close(self: Ticket[Open], reason: str, *, actor: str | None = None) -> Ticket[Closed]:
        target = Closed(reason=reason, closed_at=AT)
        return self._to("close", target, actor=actor, at=AT, data={"reason": reason})

    def reopen(self: Ticket[Closed]) -> Ticket[Open]:
        return self._to("reopen", Open())

    def edit(self: Ticket[Open], title: str) -> Ticket[Open]:
        return self._to("edit", self.state, title=title)

    def purge(self: Ticket[Closed]) -> Ticket[Purged]:
        return self._to("purge", Purged())

    def _to(
        self,
        trigger: str,
        target: T,
        *,
        actor: str | None = None,
        at: datetime | None = None,
        data: Mapping[str, object] | None = None,
        **changes: object,
    ) -> Ticket[T]:
        # The one cast of the class: _transition returns a copy of this Ticket class.
        moved = self._transition(trigger, target, actor=actor, at=at, data=data, **changes)
        return cast("Ticket[T]", moved)


T = TypeVar("T", bound=State)

AnyTicket = Ticket[Open] | Ticket[Closed] | Ticket[Purged]


# --- states -------------------------------------------------------------------------


def test_state_name_defaults_to_snake_case_of_the_class_name() -> None:
    @dataclass(frozen=True, slots=True)
    class InReview(State):
        pass

    assert InReview.state_name == "in_review"
    assert Open.state_name == "open"


def test_state_name_set_in_the_class_body_wins() -> None:
    assert Purged.state_name == "gone"


def test_state_data_round_trips_through_json_ready_dicts() -> None:
    closed = Closed(reason="done", closed_at=AT)
    data = closed.to_data()
    assert data == {"reason": "done", "closed_at": "2025-01-02T03:04:05Z"}
    assert Closed.from_data(data) == closed


def test_invalid_state_data_names_the_field() -> None:
    with pytest.raises(InvalidStateDataError, match="closed_at") as caught:
        Closed.from_data({"reason": "x", "closed_at": "yesterday"})
    assert caught.value.kind is ErrorKind.VALIDATION
    assert caught.value.state_name == "closed"


def test_states_are_immutable() -> None:
    closed = Closed(reason="done", closed_at=AT)
    with pytest.raises(FrozenInstanceError):
        closed.reason = "other"  # type: ignore[misc]  # the point: frozen


# --- transitions ----------------------------------------------------------------------


def test_transition_returns_a_new_entity_and_leaves_the_old_one_alone() -> None:
    ticket = Ticket.new_open("printer")
    closed = ticket.close("fixed")
    assert isinstance(closed.state, Closed)
    assert closed.state.reason == "fixed"
    assert isinstance(ticket.state, Open)
    assert ticket.version == 1
    assert closed.version == 2
    assert (closed.id, closed.tenant_id, closed.title) == (ticket.id, ticket.tenant_id, "printer")


def test_entities_are_immutable() -> None:
    ticket = Ticket.new_open("printer")
    with pytest.raises(FrozenInstanceError):
        ticket.title = "x"  # type: ignore[misc]  # the point: frozen


def test_transition_yields_a_record() -> None:
    ticket = Ticket.new_open("printer")
    closed = ticket.close("fixed", actor="alice")
    assert closed.last_transition == TransitionRecord(
        entity_type="Ticket",
        entity_id=ticket.id,
        tenant_id=ticket.tenant_id,
        trigger="close",
        from_state="open",
        to_state="closed",
        at=AT,
        version=2,
        actor="alice",
        data={"reason": "fixed"},
    )
    assert ticket.last_transition is None


def test_record_time_defaults_to_now_in_utc() -> None:
    before = datetime.now(UTC)
    reopened = Ticket.new_open("x").close("done").reopen()
    assert reopened.last_transition is not None
    assert before <= reopened.last_transition.at <= datetime.now(UTC)


def test_record_round_trips_through_json_ready_dicts() -> None:
    closed = Ticket.new_open("printer").close("fixed", actor="bob")
    record = closed.last_transition
    assert record is not None
    data = record.to_data()
    assert data["entity_id"] == str(closed.id)
    assert data["at"] == "2025-01-02T03:04:05Z"
    assert data["data"] == {"reason": "fixed"}
    assert TransitionRecord.from_data(data) == record


def test_reflexive_transition_keeps_the_state_and_applies_changes() -> None:
    ticket = Ticket.new_open("printer")
    edited = ticket.edit("scanner")
    assert edited.title == "scanner"
    assert edited.state == ticket.state
    assert edited.version == 2
    assert edited.last_transition is not None
    assert (edited.last_transition.from_state, edited.last_transition.to_state) == ("open", "open")


def test_a_transition_from_the_wrong_state_raises_invalid_transition() -> None:
    closed = Ticket.new_open("printer").close("fixed")
    with pytest.raises(InvalidTransitionError) as caught:
        closed.edit("x")  # type: ignore[misc]  # the point: not allowed from Closed
    err = caught.value
    assert isinstance(err, RichError)
    assert err.kind is ErrorKind.CONFLICT
    assert err.status == 409
    assert (err.entity_type, err.from_state, err.trigger) == ("Ticket", "closed", "edit")
    assert err.allowed == ("purge", "reopen")
    assert str(closed.id) in err.message
    assert "purge, reopen" in err.message


def test_a_final_state_says_nothing_is_allowed() -> None:
    purged = Ticket.new_open("x").close("done").purge()
    with pytest.raises(InvalidTransitionError, match="none \\(final state\\)"):
        purged.reopen()  # type: ignore[misc]  # the point: not allowed from Purged


def test_a_failing_guard_raises_guard_failed_with_its_message() -> None:
    ticket = Ticket.new_open("printer")
    with pytest.raises(GuardFailedError) as caught:
        ticket.close("   ")
    err = caught.value
    assert err.kind is ErrorKind.BUSINESS_LOGIC
    assert err.status == 422
    assert (err.guard, err.reason) == ("reason", "a reason is required")
    assert err.user_message == "a reason is required"
    assert ticket.version == 1


def test_and_reports_the_first_guard_that_fails() -> None:
    with pytest.raises(GuardFailedError, match="too long") as caught:
        Ticket.new_open("printer").close("x" * 21)
    assert caught.value.guard == "short"


def test_target_state_must_be_the_one_the_machine_leads_to() -> None:
    ticket = Ticket.new_open("printer")
    with pytest.raises(TypeError, match="leads from 'open' to 'closed'"):
        ticket._transition("close", Purged())


def test_unknown_field_changes_are_refused() -> None:
    ticket = Ticket.new_open("printer")
    with pytest.raises(TypeError, match="no field"):
        ticket._transition("edit", Open(), colour="red")


def test_a_refused_change_names_every_unknown_field_and_changes_nothing() -> None:
    ticket = Ticket.new_open("printer")
    before = ticket.to_data()
    with pytest.raises(TypeError, match=r"no field\(s\) colour, size$"):
        ticket._transition("edit", Open(), title="scanner", size=3, colour="red")
    assert ticket.to_data() == before


# --- guards -----------------------------------------------------------------------------


def _request(reason: str) -> TransitionRequest:
    ticket = Ticket.new_open("x")
    target = Closed(reason=reason, closed_at=AT)
    return TransitionRequest(ticket, "close", ticket.state, target, None, {})


def test_or_passes_when_one_guard_passes_and_joins_messages_otherwise() -> None:
    either = or_(reason_given, reason_short)
    assert either(_request("x" * 30))
    never = or_(not_(reason_short, "must be long"), not_(reason_given, "must be empty"))
    failed = never.failure(_request("ok"))
    assert failed is not None
    assert failed.message == "must be long or must be empty"
    assert failed.name == "not short or not reason"


def test_not_inverts_and_uses_its_own_message() -> None:
    empty = not_(reason_given, "must be empty")
    assert empty(_request(""))
    failed = empty.failure(_request("x"))
    assert failed is not None
    assert failed.message == "must be empty"


def test_guards_need_messages_and_combinations_need_guards() -> None:
    with pytest.raises(ValueError, match="message"):
        Guard(lambda r: True, " ")
    with pytest.raises(ValueError, match="at least one"):
        and_()
    with pytest.raises(ValueError, match="at least one"):
        or_()


# --- loaded values ------------------------------------------------------------------------


def test_entity_round_trips_with_state_name_and_state_data() -> None:
    closed = Ticket.new_open("printer").close("fixed")
    data = closed.to_data()
    assert data["state"] == "closed"
    assert data["state_data"] == {"reason": "fixed", "closed_at": "2025-01-02T03:04:05Z"}
    assert data["version"] == 2
    assert "last_transition" not in data
    loaded = Ticket.from_data(data)
    assert loaded == closed
    assert type(loaded.state) is Closed
    assert loaded.last_transition is None


def test_from_data_refuses_an_unknown_state_name() -> None:
    data = Ticket.new_open("printer").to_data()
    data["state"] = "lost"
    with pytest.raises(InvalidStateDataError, match="states: open, closed, gone"):
        Ticket.from_data(data)


def test_from_data_refuses_invalid_fields() -> None:
    data = Ticket.new_open("printer").to_data()
    data["tenant_id"] = "not-a-uuid"
    with pytest.raises(InvalidStateDataError, match="tenant_id"):
        Ticket.from_data(data)


def test_is_state_narrows_a_loaded_value() -> None:
    loaded: AnyTicket = Ticket.new_open("printer")
    assert not is_state(loaded, Closed)
    if is_state(loaded, Open):
        closed = loaded.close("done")
        assert closed.state.reason == "done"
    else:
        pytest.fail("an open ticket is in Open")


def test_allowed_triggers_follow_the_machine() -> None:
    ticket = Ticket.new_open("x")
    assert allowed_triggers(ticket) == ("close", "edit")
    assert allowed_triggers(ticket.close("y")) == ("purge", "reopen")


def test_fire_calls_the_method_named_by_the_trigger() -> None:
    loaded: Entity[State] = Ticket.new_open("x")
    closed = fire(loaded, "close", reason="done", actor="carol")
    assert isinstance(closed.state, Closed)
    assert closed.last_transition is not None
    assert closed.last_transition.actor == "carol"


def test_fire_refuses_an_unknown_trigger_as_invalid_transition() -> None:
    with pytest.raises(InvalidTransitionError, match="'explode'") as caught:
        fire(Ticket.new_open("x"), "explode")
    assert caught.value.allowed == ("close", "edit")


# --- the machine ------------------------------------------------------------------------------


def test_machine_is_one_transitions_machine_without_auto_transitions() -> None:
    machine = TICKET_MACHINE.machine
    assert machine.models == []
    assert set(machine.events) == {"close", "reopen", "edit", "purge"}
    assert TICKET_MACHINE.triggers == ("close", "reopen", "edit", "purge")
    assert TICKET_MACHINE.target("close", Open) is Closed
    assert TICKET_MACHINE.target("edit", "open") is Open
    assert TICKET_MACHINE.target("close", Closed) is None
    assert TICKET_MACHINE.guard("reopen", Closed) is None
    guard = TICKET_MACHINE.guard("close", Open)
    assert guard is not None
    assert guard.name == "reason and short"


def test_entities_hold_no_machine() -> None:
    ticket = Ticket.new_open("x")
    assert not hasattr(ticket, "__dict__")
    assert all(not isinstance(getattr(ticket, s), StateMachine) for s in ("state", "title"))


def test_mermaid_diagram_is_generated_from_the_machine() -> None:
    assert to_mermaid(Ticket) == (
        "stateDiagram-v2\n"
        "    [*] --> Open\n"
        "    Open --> Closed: close [reason and short]\n"
        "    Open --> Open: edit\n"
        "    Closed --> Open: reopen\n"
        "    Closed --> Purged: purge\n"
        "    Purged --> [*]\n"
    )
    assert to_mermaid(TICKET_MACHINE) == to_mermaid(Ticket)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda b: b.state(Open), "declared twice"),
        (lambda b: b.state(State), "not a State subclass"),
        (lambda b: b.state(Purged, initial=True), "initial state already set"),
        (lambda b: b.transition("close", Purged, Closed), "'Purged' is not a declared state"),
        (lambda b: b.transition("_hidden", Open, SAME), "public identifier"),
        (lambda b: b.transition("go", (), SAME), "at least one source"),
        (
            lambda b: b.transition("go", Open, SAME).transition("go", Open, Closed),
            "declared twice from Open",
        ),
    ],
)
def test_builder_refuses_inconsistent_declarations(build: object, message: str) -> None:
    builder = MachineBuilder("Thing").state(Open, initial=True).state(Closed)
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build(builder)


def test_builder_needs_states_and_an_initial_state() -> None:
    with pytest.raises(ValueError, match="no states"):
        MachineBuilder("Thing").build()
    with pytest.raises(ValueError, match="no initial state"):
        MachineBuilder("Thing").state(Open).build()


def test_an_entity_class_needs_a_method_per_trigger() -> None:
    with pytest.raises(TypeError, match="no method for trigger\\(s\\) reopen, edit, purge"):

        @dataclass(frozen=True, slots=True, kw_only=True)
        class Half(Entity[S_co]):
            state_machine: ClassVar[StateMachine] = TICKET_MACHINE

            def close(self) -> None:
                pass
