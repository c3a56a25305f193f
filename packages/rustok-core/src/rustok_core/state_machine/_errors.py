"""The errors a state machine raises: a trigger the state does not allow, a failing guard,
stored state data that cannot be rebuilt."""

from __future__ import annotations

from collections.abc import Sequence

from rustok_core.error import ErrorKind, RichError


class InvalidTransitionError(RichError):
    """The entity's current state has no transition for this trigger (kind CONFLICT, 409).

    Nothing is changed when this is raised. The message names the entity, the state it is
    in, the trigger asked for and the triggers that state does allow.

    Attributes:
        entity_type: the entity class, e.g. ``"ContentNode"``.
        entity_id: the entity's id, as a string.
        from_state: the state the entity is in.
        trigger: the trigger that was asked for.
        allowed: the triggers the machine allows from ``from_state``, sorted.
    """

    def __init__(
        self,
        *,
        entity_type: str,
        entity_id: str,
        from_state: str,
        trigger: str,
        allowed: Sequence[str],
    ) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none (final state)"
        super().__init__(
            ErrorKind.CONFLICT,
            f"{entity_type} {entity_id} cannot {trigger!r} from state {from_state!r}; "
            f"triggers allowed from {from_state!r}: {allowed_text}",
            user_message=f"This action ({trigger}) is not allowed while the item is {from_state}.",
            code="INVALID_TRANSITION",
            fields={
                "entity_type": entity_type,
                "entity_id": entity_id,
                "from_state": from_state,
                "trigger": trigger,
                "allowed": ",".join(allowed),
            },
        )
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.from_state = from_state
        self.trigger = trigger
        self.allowed: tuple[str, ...] = tuple(allowed)


class GuardFailedError(RichError):
    """A guard of the transition refused it (kind BUSINESS_LOGIC, 422).

    Nothing is changed when this is raised. ``message`` and ``user_message`` carry the
    guard's own message, which says what rule was broken.

    Attributes:
        entity_type: the entity class.
        entity_id: the entity's id, as a string.
        trigger: the trigger that was refused.
        guard: the name of the guard that failed.
        reason: the guard's message.
    """

    def __init__(
        self,
        *,
        entity_type: str,
        entity_id: str,
        from_state: str,
        trigger: str,
        guard: str,
        reason: str,
    ) -> None:
        super().__init__(
            ErrorKind.BUSINESS_LOGIC,
            f"{entity_type} {entity_id}: {trigger!r} from {from_state!r} refused by guard "
            f"{guard!r}: {reason}",
            user_message=reason,
            code="GUARD_FAILED",
            fields={
                "entity_type": entity_type,
                "entity_id": entity_id,
                "from_state": from_state,
                "trigger": trigger,
                "guard": guard,
            },
        )
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.from_state = from_state
        self.trigger = trigger
        self.guard = guard
        self.reason = reason


class InvalidStateDataError(RichError):
    """Stored state data could not be turned back into a state (kind VALIDATION, 400).

    Raised when rebuilding an entity whose stored state name is not part of its machine,
    or whose state data does not validate against that state's class.

    Attributes:
        entity_type: the entity or state class that was being rebuilt.
        state_name: the state name that was read.
    """

    def __init__(self, entity_type: str, state_name: str, problem: str) -> None:
        super().__init__(
            ErrorKind.VALIDATION,
            f"cannot rebuild {entity_type} in state {state_name!r}: {problem}",
            user_message="The stored state of this record is not valid.",
            code="INVALID_STATE_DATA",
            fields={"entity_type": entity_type, "state": state_name},
        )
        self.entity_type = entity_type
        self.state_name = state_name
