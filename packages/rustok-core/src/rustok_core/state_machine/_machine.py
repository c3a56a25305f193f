"""The machine builder and the built machine: one transitions ``Machine`` per entity class."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Final, Self

from transitions import Machine

from rustok_core.state_machine._errors import InvalidStateDataError
from rustok_core.state_machine._guard import Guard
from rustok_core.state_machine._state import State


class _Same(enum.Enum):
    SAME = "="


SAME: Final = _Same.SAME
"""Destination marker of a transition that keeps the state it starts from (``update``)."""


class StateMachine:
    """The legal graph of one entity class: its states, triggers and guards.

    Built once per entity class by `MachineBuilder` and held in the class's
    ``state_machine`` attribute. The graph lives in one model-less transitions
    ``Machine`` (``auto_transitions=False``). Every run-time check consults the
    Machine's event table, read once at build into a table by trigger and source state;
    no entity ever holds a machine of its own.
    """

    __slots__ = ("_by_name", "_initial", "_machine", "_moves", "_states", "name")

    def __init__(
        self, name: str, states: Sequence[type[State]], initial: type[State], machine: Machine
    ) -> None:
        self.name: str = name
        self._states = tuple(states)
        self._by_name: Mapping[str, type[State]] = {s.state_name: s for s in states}
        self._initial = initial
        self._machine = machine
        # The Machine's event table, read once into trigger -> source -> (dest, guard):
        # the run-time check of every transition is then two dict lookups. The graph is
        # fixed once built, so the two cannot drift apart.
        moves: dict[str, dict[str, tuple[str, Guard | None]]] = {}
        for trigger, event in machine.events.items():
            for source, transitions in event.transitions.items():
                transition = transitions[0]
                conditions = transition.conditions
                guard = conditions[0].func if conditions else None
                moves.setdefault(trigger, {})[source] = (
                    transition.dest or source,
                    guard if isinstance(guard, Guard) else None,
                )
        self._moves: Mapping[str, Mapping[str, tuple[str, Guard | None]]] = moves

    @property
    def states(self) -> tuple[type[State], ...]:
        """Every state class, in declaration order."""
        return self._states

    @property
    def initial(self) -> type[State]:
        """The state a new entity starts in."""
        return self._initial

    @property
    def triggers(self) -> tuple[str, ...]:
        """Every trigger, in declaration order."""
        return tuple(self._machine.events)

    @property
    def machine(self) -> Machine:
        """The transitions ``Machine`` holding the graph. Read it; do not add models or
        transitions (the run-time checks use the table read from it at build)."""
        return self._machine

    def state_class(self, name: str) -> type[State]:
        """The state class stored under ``name``.

        Raises:
            InvalidStateDataError: when ``name`` is not a state of this machine.
        """
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise InvalidStateDataError(
                self.name, name, f"not a state of this machine (states: {known})"
            ) from None

    def parse_state(self, name: str, data: Mapping[str, object]) -> State:
        """Rebuild a state from its stored name and data, validated.

        Raises:
            InvalidStateDataError: when the name is unknown or the data does not validate.
        """
        return self.state_class(name).from_data(data)

    def allowed_triggers(self, state: State | type[State] | str) -> tuple[str, ...]:
        """The triggers that have a transition from ``state``, sorted."""
        name = state if isinstance(state, str) else state.state_name
        return tuple(sorted(self._machine.get_triggers(name)))

    def target(self, trigger: str, state: State | type[State] | str) -> type[State] | None:
        """The state ``trigger`` leads to from ``state``, or ``None`` when there is no
        such transition."""
        name = state if isinstance(state, str) else state.state_name
        found = self._machine.get_transitions(trigger=trigger, source=name)
        return self._by_name[found[0].dest or name] if found else None

    def guard(self, trigger: str, state: State | type[State] | str) -> Guard | None:
        """The guard of the transition ``trigger`` from ``state``, if it has one."""
        name = state if isinstance(state, str) else state.state_name
        for transition in self._machine.get_transitions(trigger=trigger, source=name):
            for condition in transition.conditions:
                if isinstance(condition.func, Guard):
                    return condition.func
        return None

    def _lookup(self, trigger: str, source: str) -> tuple[str, Guard | None] | None:
        # The hot path of every transition. ``get_transitions`` answers the same question
        # but scans the Machine's events and builds lists.
        moves = self._moves.get(trigger)
        return None if moves is None else moves.get(source)

    def __repr__(self) -> str:
        names = ", ".join(self._by_name)
        return f"StateMachine({self.name!r}, states=[{names}], triggers={list(self.triggers)})"


_Declared = tuple[str, tuple[type[State], ...], "type[State] | _Same", Guard | None]


class MachineBuilder:
    """Declares the states, transitions and guards of one entity class, once.

    Args:
        name: the entity class's name, used in diagrams.

    Example::

        CONTENT_MACHINE = (
            MachineBuilder("ContentNode")
            .state(Draft, initial=True)
            .state(Published)
            .state(Archived)
            .transition("publish", Draft, Published)
            .transition("archive", Published, Archived, guard=reason_given)
            .transition("restore", Archived, Draft)
            .transition("update", (Draft, Published), SAME)
            .build()
        )
    """

    __slots__ = ("_initial", "_name", "_states", "_transitions")

    def __init__(self, name: str) -> None:
        if not name.isidentifier():
            raise ValueError(f"machine name must be an identifier, got {name!r}")
        self._name = name
        self._states: list[type[State]] = []
        self._initial: type[State] | None = None
        self._transitions: list[
            tuple[str, tuple[type[State], ...], type[State] | _Same, Guard | None]
        ] = []

    def state(self, state: type[State], *, initial: bool = False) -> Self:
        """Declare a state class; exactly one state is ``initial``.

        Raises:
            ValueError: when the class is not a ``State`` subclass, or its name or the
                initial flag is declared twice.
        """
        if state is State or State not in getattr(state, "__mro__", ()):
            raise ValueError(f"{state!r} is not a State subclass")
        if any(s.state_name == state.state_name for s in self._states):
            raise ValueError(f"state name {state.state_name!r} is declared twice")
        if initial:
            if self._initial is not None:
                raise ValueError(
                    f"initial state already set to {self._initial.__name__}, "
                    f"cannot also be {state.__name__}"
                )
            self._initial = state
        self._states.append(state)
        return self

    def transition(
        self,
        trigger: str,
        source: type[State] | Sequence[type[State]],
        dest: type[State] | _Same,
        *,
        guard: Guard | None = None,
    ) -> Self:
        """Declare that ``trigger`` moves an entity from ``source`` (one state or several)
        to ``dest`` (a state, or `SAME` to keep the source state).

        The entity class must have a method named ``trigger``.

        Raises:
            ValueError: when the trigger is not a public identifier, a state was not
                declared, or the same trigger is declared twice from one state.
        """
        if not trigger.isidentifier() or trigger.startswith("_"):
            raise ValueError(f"trigger must be a public identifier, got {trigger!r}")
        sources = (source,) if isinstance(source, type) else tuple(source)
        if not sources:
            raise ValueError(f"trigger {trigger!r} needs at least one source state")
        for state in (*sources, *([] if isinstance(dest, _Same) else [dest])):
            if state not in self._states:
                raise ValueError(
                    f"{getattr(state, '__name__', state)!r} is not a declared state; "
                    "declare it with .state() before using it in a transition"
                )
        for known_trigger, known_sources, _, _ in self._transitions:
            clash = set(known_sources) & set(sources)
            if known_trigger == trigger and clash:
                names = ", ".join(sorted(s.__name__ for s in clash))
                raise ValueError(f"trigger {trigger!r} is declared twice from {names}")
        self._transitions.append((trigger, sources, dest, guard))
        return self

    def build(self) -> StateMachine:
        """Build the transitions ``Machine`` and return the `StateMachine`.

        Raises:
            ValueError: when no state or no initial state was declared.
        """
        if not self._states:
            raise ValueError(f"machine {self._name!r} has no states")
        if self._initial is None:
            raise ValueError(f"machine {self._name!r} has no initial state")
        machine = Machine(
            model=None,
            states=[s.state_name for s in self._states],
            initial=self._initial.state_name,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            name=self._name,
        )
        for trigger, sources, dest, guard in self._transitions:
            machine.add_transition(
                trigger,
                [s.state_name for s in sources],
                "=" if isinstance(dest, _Same) else dest.state_name,
                conditions=[guard] if guard is not None else None,
            )
        return StateMachine(self._name, self._states, self._initial, machine)
