"""Properties of the content lifecycle under random trigger sequences applied at run time:
the node never leaves the graph, ``InvalidTransitionError`` is raised exactly when the typed API
has no such method for the node's state, and a refused trigger changes nothing."""

from __future__ import annotations

import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from rustok_content import CONTENT_MACHINE, AnyContentNode, ContentNode, Draft
from rustok_core.state_machine import (
    Entity,
    GuardFailedError,
    InvalidTransitionError,
    State,
    fire,
)

TENANT = UUID("00000000-0000-4000-8000-0000000000cc")
T0 = datetime(2025, 6, 1, tzinfo=UTC)
TRIGGERS = CONTENT_MACHINE.triggers


def _self_states(method: Callable[..., object]) -> set[type[State]]:
    """The states a transition method accepts, read from its ``self`` annotation(s)."""
    signatures = list(typing.get_overloads(method)) or [method]
    states: set[type[State]] = set()
    for signature in signatures:
        hint = typing.get_type_hints(signature)["self"]
        (state,) = typing.get_args(hint)
        states.add(state)
    return states


def typed_api() -> dict[type[State], set[str]]:
    """For each state, the triggers whose typed method accepts a node in that state."""
    api: dict[type[State], set[str]] = {state: set() for state in CONTENT_MACHINE.states}
    for trigger in TRIGGERS:
        for state in _self_states(getattr(ContentNode, trigger)):
            api[state].add(trigger)
    return api


TYPED_API = typed_api()


def test_the_typed_api_and_the_machine_describe_the_same_graph() -> None:
    for state, triggers in TYPED_API.items():
        assert set(CONTENT_MACHINE.allowed_triggers(state)) == triggers, state.__name__
    assert TYPED_API[Draft] == {"publish", "update"}


def _arguments(trigger: str, reason: str, step: int) -> dict[str, object]:
    at = T0 + timedelta(minutes=step)
    if trigger == "archive":
        return {"reason": reason, "at": at}
    if trigger == "update":
        return {"title": f"Title {step}", "at": at}
    return {"at": at}


steps = st.lists(
    st.tuples(st.sampled_from(TRIGGERS), st.sampled_from(["outdated", "", "  ", "moved"])),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_trigger_sequences_follow_the_typed_api(
    sequence: list[tuple[str, str]],
) -> None:
    node: AnyContentNode = ContentNode.new_draft(
        tenant_id=TENANT, kind="page", title="Start", slug="start", at=T0
    )
    for step, (trigger, reason) in enumerate(sequence, start=1):
        state = type(node.state)
        before = node.to_data()
        allowed = trigger in TYPED_API[state]
        outcome: Entity[State] | InvalidTransitionError | GuardFailedError
        try:
            outcome = fire(node, trigger, **_arguments(trigger, reason, step))
        except (InvalidTransitionError, GuardFailedError) as refused:
            outcome = refused
        if isinstance(outcome, InvalidTransitionError):
            assert not allowed, f"{trigger} refused from {state.__name__}"
            assert (outcome.from_state, outcome.trigger) == (state.state_name, trigger)
            assert node.to_data() == before
            continue
        if isinstance(outcome, GuardFailedError):
            assert allowed
            assert trigger == "archive"
            assert not reason.strip()
            assert node.to_data() == before
            continue
        moved = outcome
        assert allowed, f"{trigger} accepted from {state.__name__}"
        assert isinstance(moved, ContentNode)
        assert type(moved.state) in CONTENT_MACHINE.states
        assert type(moved.state) is CONTENT_MACHINE.target(trigger, state)
        assert moved.version == node.version + 1
        assert moved.last_transition is not None
        assert moved.last_transition.trigger == trigger
        assert node.to_data() == before
        node = typing.cast("AnyContentNode", moved)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_a_node_rebuilt_from_its_stored_data_is_equal(sequence: list[tuple[str, str]]) -> None:
    node: AnyContentNode = ContentNode.new_draft(
        tenant_id=TENANT, kind="post", title="Start", slug="start", at=T0
    )
    for step, (trigger, reason) in enumerate(sequence, start=1):
        if trigger in TYPED_API[type(node.state)] and (trigger != "archive" or reason.strip()):
            moved = fire(node, trigger, **_arguments(trigger, reason, step))
            node = typing.cast("AnyContentNode", moved)
    assert ContentNode.from_data(node.to_data()) == node
