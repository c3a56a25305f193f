"""Typed state machines: the typestate pattern on one transitions ``Machine`` per entity class.

An entity is generic in its state (``Order[Paid]``); transition methods are typed on
``self`` so mypy rejects a call from the wrong state, and the class's machine checks the
same call at run time for values loaded from storage::

    from rustok_core.state_machine import (
        Entity,
        MachineBuilder,
        State,
        InvalidTransitionError,
        invalid_transition,
        is_state,
        to_mermaid,
    )
"""

from rustok_core.state_machine._entity import (
    Entity,
    allowed_triggers,
    fire,
    invalid_transition,
    is_state,
)
from rustok_core.state_machine._errors import (
    GuardFailedError,
    InvalidStateDataError,
    InvalidTransitionError,
)
from rustok_core.state_machine._guard import Guard, TransitionRequest, and_, not_, or_
from rustok_core.state_machine._machine import SAME, MachineBuilder, StateMachine
from rustok_core.state_machine._mermaid import to_mermaid
from rustok_core.state_machine._record import TransitionRecord
from rustok_core.state_machine._state import State

__all__ = [
    "SAME",
    "Entity",
    "Guard",
    "GuardFailedError",
    "InvalidStateDataError",
    "InvalidTransitionError",
    "MachineBuilder",
    "State",
    "StateMachine",
    "TransitionRecord",
    "TransitionRequest",
    "allowed_triggers",
    "and_",
    "fire",
    "invalid_transition",
    "is_state",
    "not_",
    "or_",
    "to_mermaid",
]
