"""Guards: named, composable predicates that may refuse a transition."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rustok_core.state_machine._entity import Entity
    from rustok_core.state_machine._state import State


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    """What a guard sees: the transition about to happen, before anything changes.

    Attributes:
        entity: the entity in its current state.
        trigger: the trigger being fired.
        source: the current state.
        target: the state the transition would produce.
        actor: who asks for the transition, if known.
        data: the data the transition method records with it (e.g. a reason).
    """

    entity: Entity[State]
    trigger: str
    source: State
    target: State
    actor: str | None
    data: Mapping[str, object]


class Guard:
    """A named predicate over a `TransitionRequest`, with the message shown when it
    refuses the transition.

    Combine guards with `and_`, `or_` and `not_`; attach them to a
    transition with ``MachineBuilder.transition(..., guard=...)``. A guard that returns
    ``False`` makes the transition raise ``GuardFailedError`` carrying the message of the guard
    that failed.

    Args:
        predicate: returns ``True`` when the transition may happen.
        message: says which rule was broken and what to do, e.g. ``"a reason is required"``.
        name: a short label for diagrams and errors; defaults to the predicate's name.

    Example::

        reason_given = Guard(
            lambda r: bool(getattr(r.target, "reason", "").strip()),
            "archiving needs a non-empty reason",
            name="reason given",
        )
    """

    __slots__ = ("_check", "message", "name")

    name: str
    message: str

    def __init__(
        self,
        predicate: Callable[[TransitionRequest], bool],
        message: str,
        *,
        name: str | None = None,
    ) -> None:
        if not message.strip():
            raise ValueError("a guard needs a message that says which rule failed")
        self.message = message
        self.name = name or str(getattr(predicate, "__name__", "guard"))

        def check(request: TransitionRequest) -> Guard | None:
            return None if predicate(request) else self

        self._check: Callable[[TransitionRequest], Guard | None] = check

    def failure(self, request: TransitionRequest) -> Guard | None:
        """The guard whose rule ``request`` breaks (for a combination, the innermost one
        that decided), or ``None`` when the transition may happen."""
        return self._check(request)

    def __call__(self, request: TransitionRequest) -> bool:
        """``True`` when the transition may happen."""
        return self._check(request) is None

    def __repr__(self) -> str:
        return f"Guard({self.name!r})"

    @classmethod
    def _combined(
        cls, name: str, message: str, check: Callable[[TransitionRequest], Guard | None]
    ) -> Guard:
        guard = cls.__new__(cls)
        guard.name = name
        guard.message = message
        guard._check = check
        return guard


def and_(*guards: Guard, name: str | None = None) -> Guard:
    """A guard that passes when every guard passes; it fails with the first failing
    guard's message.

    Raises:
        ValueError: when no guard is given.
    """
    if not guards:
        raise ValueError("and_() needs at least one guard")

    def check(request: TransitionRequest) -> Guard | None:
        for guard in guards:
            failed = guard.failure(request)
            if failed is not None:
                return failed
        return None

    return Guard._combined(
        name or " and ".join(g.name for g in guards),
        "; ".join(g.message for g in guards),
        check,
    )


def or_(*guards: Guard, message: str | None = None, name: str | None = None) -> Guard:
    """A guard that passes when at least one guard passes; when all fail it fails with
    ``message`` (default: every guard's message joined by "or").

    Raises:
        ValueError: when no guard is given.
    """
    if not guards:
        raise ValueError("or_() needs at least one guard")
    combined = Guard._combined(
        name or " or ".join(g.name for g in guards),
        message or " or ".join(g.message for g in guards),
        lambda request: None,
    )

    def check(request: TransitionRequest) -> Guard | None:
        for guard in guards:
            if guard.failure(request) is None:
                return None
        return combined

    combined._check = check
    return combined


def not_(guard: Guard, message: str, *, name: str | None = None) -> Guard:
    """A guard that passes when ``guard`` fails, and fails with ``message`` otherwise
    (an inverted rule needs its own words).

    Raises:
        ValueError: when ``message`` is empty.
    """
    if not message.strip():
        raise ValueError("not_() needs a message that says which rule failed")
    inverted = Guard._combined(name or f"not {guard.name}", message, lambda request: None)

    def check(request: TransitionRequest) -> Guard | None:
        return inverted if guard.failure(request) is None else None

    inverted._check = check
    return inverted
