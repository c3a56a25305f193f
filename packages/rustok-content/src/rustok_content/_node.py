"""The content node and its lifecycle: Draft -> Published -> Archived -> Draft."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, TypeAlias, TypeVar, cast, overload
from uuid import UUID, uuid4

from rustok_content._errors import InvalidContentError
from rustok_content._rules import NodeKind, check_kind, check_slug, check_title
from rustok_core.state_machine import (
    SAME,
    Entity,
    Guard,
    MachineBuilder,
    State,
    StateMachine,
    TransitionRequest,
)

S_co = TypeVar("S_co", bound=State, covariant=True)
T = TypeVar("T", bound=State)


@dataclass(frozen=True, slots=True)
class Draft(State):
    """Being written: not visible to readers."""


@dataclass(frozen=True, slots=True)
class Published(State):
    """Live since ``published_at``."""

    published_at: datetime


@dataclass(frozen=True, slots=True)
class Archived(State):
    """Taken down at ``archived_at`` for ``reason``."""

    archived_at: datetime
    reason: str


def _reason_given(request: TransitionRequest) -> bool:
    target = request.target
    return isinstance(target, Archived) and bool(target.reason.strip())


reason_given: Guard = Guard(
    _reason_given,
    "archiving needs a reason: say why the content is taken down",
    name="reason given",
)
"""The guard of ``archive``: the reason must not be empty."""

CONTENT_MACHINE: StateMachine = (
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
"""The content node lifecycle, built once."""


def _now(at: datetime | None) -> datetime:
    return at if at is not None else datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentNode(Entity[S_co]):
    """A content node (article, page, post) in state ``S_co``: ``ContentNode[Draft]``.

    Create one with `new_draft`; move it with `publish`, `archive`,
    `restore`; change its fields with `update` while it is a draft or
    published. Each returns a new node (version plus one, ``last_transition`` set) and
    leaves this one unchanged. mypy rejects a transition from the wrong state; for a node
    loaded from storage (`AnyContentNode`) the same call raises
    ``InvalidTransitionError`` at run time.

    Attributes:
        author_id: who wrote it, if known.
        parent_id: the parent node, if any.
        kind: what sort of content it is.
        category_id: its category, if any.
        title: 1 to 255 characters.
        slug: its URL segment, unique within the tenant.
        created_at: when it was created.
        updated_at: when it last changed (any transition or update).
    """

    state_machine: ClassVar[StateMachine] = CONTENT_MACHINE
    touched_field: ClassVar[str | None] = "updated_at"

    author_id: UUID | None = None
    parent_id: UUID | None = None
    kind: NodeKind
    category_id: UUID | None = None
    title: str
    slug: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def new_draft(
        *,
        tenant_id: UUID,
        kind: NodeKind | str,
        title: str,
        slug: str,
        author_id: UUID | None = None,
        parent_id: UUID | None = None,
        category_id: UUID | None = None,
        id: UUID | None = None,
        at: datetime | None = None,
    ) -> ContentNode[Draft]:
        """A new node in `Draft`, version 1.

        Raises:
            InvalidContentError: when the title, slug or kind breaks its rule.
        """
        now = _now(at)
        return ContentNode(
            id=id if id is not None else uuid4(),
            tenant_id=tenant_id,
            state=Draft(),
            author_id=author_id,
            parent_id=parent_id,
            kind=check_kind(kind),
            category_id=category_id,
            title=check_title(title),
            slug=check_slug(slug),
            created_at=now,
            updated_at=now,
        )

    if TYPE_CHECKING:
        # Entity._transition, typed to return a ContentNode (mypy cannot say "this class
        # in another state" on the base class). A declaration only: no cost at run time.
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
        ) -> ContentNode[T]: ...

    def publish(
        self: ContentNode[Draft], *, actor: str | None = None, at: datetime | None = None
    ) -> ContentNode[Published]:
        """Draft -> Published, live from ``at`` (default: now)."""
        now = _now(at)
        return self._transition("publish", Published(now), actor=actor, at=now)

    def archive(
        self: ContentNode[Published],
        reason: str,
        *,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> ContentNode[Archived]:
        """Published -> Archived, for ``reason``.

        Raises:
            GuardFailedError: when ``reason`` is empty (kind BUSINESS_LOGIC).
        """
        now = _now(at)
        reason = reason.strip()
        target = Archived(now, reason)
        return self._transition("archive", target, actor=actor, at=now, data={"reason": reason})

    def restore(
        self: ContentNode[Archived], *, actor: str | None = None, at: datetime | None = None
    ) -> ContentNode[Draft]:
        """Archived -> Draft, to be edited again."""
        now = _now(at)
        return self._transition("restore", Draft(), actor=actor, at=now)

    # One overload per state that allows update: a TypeVar bound or constrained to
    # Draft | Published in the self type is not enforced by mypy, overloads are.
    @overload
    def update(
        self: ContentNode[Draft],
        *,
        title: str | None = None,
        slug: str | None = None,
        category_id: UUID | None = None,
        parent_id: UUID | None = None,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> ContentNode[Draft]: ...

    @overload
    def update(
        self: ContentNode[Published],
        *,
        title: str | None = None,
        slug: str | None = None,
        category_id: UUID | None = None,
        parent_id: UUID | None = None,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> ContentNode[Published]: ...

    def update(
        self,
        *,
        title: str | None = None,
        slug: str | None = None,
        category_id: UUID | None = None,
        parent_id: UUID | None = None,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> ContentNode[State]:
        """Change fields of a draft or published node, keeping its state; touches
        ``updated_at``. Fields left ``None`` keep their value.

        Raises:
            InvalidTransitionError: when the node is archived (restore it first).
            InvalidContentError: when a new title or slug breaks its rule.
        """
        changes: dict[str, object] = {}
        try:
            if title is not None:
                changes["title"] = check_title(title)
            if slug is not None:
                changes["slug"] = check_slug(slug)
        except InvalidContentError:
            # An archived node is refused as such (409), whatever its fields; valid fields
            # go straight to _transition, which checks the state once.
            self._check_trigger("update")
            raise
        if category_id is not None:
            changes["category_id"] = category_id
        if parent_id is not None:
            changes["parent_id"] = parent_id
        now = _now(at)
        data = {"fields": sorted(changes)}
        return self._transition("update", self.state, actor=actor, at=now, data=data, **changes)

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> AnyContentNode:
        """Rebuild a stored node (fields, ``state`` name, ``state_data``), validated; its
        state is known only at run time, so narrow it with ``is_state`` before a
        transition.

        Raises:
            InvalidStateDataError: when the state or any field is invalid.
        """
        # super() needs its arguments in a slotted dataclass (the class is rebuilt).
        return cast("AnyContentNode", super(ContentNode, cls).from_data(data))


AnyContentNode: TypeAlias = ContentNode[Draft] | ContentNode[Published] | ContentNode[Archived]
"""A node whose state is known only at run time (loaded from storage)."""
