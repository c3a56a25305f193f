"""NodeService over the in-memory repository: one record per transition, saved with the
node; tenants isolated; optimistic locking."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from rustok_content import (
    Archived,
    ContentNode,
    CreateNodeInput,
    Draft,
    DuplicateSlugError,
    InMemoryNodeRepository,
    NodeKind,
    NodeNotFoundError,
    NodeService,
    Published,
    UpdateNodeInput,
    VersionConflictError,
)
from rustok_core.error import ErrorKind
from rustok_core.state_machine import GuardFailedError, InvalidTransitionError, is_state
from rustok_core.testing import ManualClock

TENANT = UUID("00000000-0000-4000-8000-00000000000a")
OTHER_TENANT = UUID("00000000-0000-4000-8000-00000000000b")


def wall_clock(
    clock: ManualClock, start: datetime = datetime(2025, 5, 1, tzinfo=UTC)
) -> Callable[[], datetime]:
    """The service's wall clock read off ``clock``: it moves only when a test advances it."""
    return lambda: start + timedelta(seconds=clock())


@pytest.fixture
def repository() -> InMemoryNodeRepository:
    return InMemoryNodeRepository()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=0.0)


@pytest.fixture
def service(repository: InMemoryNodeRepository, clock: ManualClock) -> NodeService:
    return NodeService(repository, clock=wall_clock(clock))


def post(slug: str = "first-post", kind: NodeKind = NodeKind.POST) -> CreateNodeInput:
    return CreateNodeInput(kind=kind, title="First post", slug=slug)


async def test_create_stores_a_draft(service: NodeService) -> None:
    node = await service.create(TENANT, post())
    assert node.state == Draft()
    loaded = await service.get(TENANT, node.id)
    assert loaded == node
    assert await service.history(TENANT, node.id) == []


async def test_each_transition_saves_the_node_and_exactly_one_record(
    service: NodeService,
) -> None:
    node = await service.create(TENANT, post())
    published = await service.publish(TENANT, node.id, actor="alice")
    archived = await service.archive(TENANT, node.id, "outdated", actor="bob")
    restored = await service.restore(TENANT, node.id, actor="carol")
    assert published.state_name == "published"
    assert archived.state.reason == "outdated"
    assert restored.state == Draft()
    assert (await service.get(TENANT, node.id)) == restored
    history = await service.history(TENANT, node.id)
    assert [(r.trigger, r.from_state, r.to_state, r.actor, r.version) for r in history] == [
        ("publish", "draft", "published", "alice", 2),
        ("archive", "published", "archived", "bob", 3),
        ("restore", "archived", "draft", "carol", 4),
    ]
    assert [published.last_transition, archived.last_transition, restored.last_transition] == (
        history
    )


async def test_update_saves_the_changes_and_a_record(
    service: NodeService, clock: ManualClock
) -> None:
    node = await service.create(TENANT, post())
    clock.advance(60)
    updated = await service.update(
        TENANT, node.id, UpdateNodeInput(title="Renamed", slug="renamed"), actor="dan"
    )
    assert (updated.title, updated.slug, updated.version) == ("Renamed", "renamed", 2)
    assert updated.updated_at > node.updated_at
    history = await service.history(TENANT, node.id)
    assert [(r.trigger, r.data) for r in history] == [("update", {"fields": ["slug", "title"]})]


async def test_a_refused_transition_saves_nothing(service: NodeService) -> None:
    node = await service.create(TENANT, post())
    with pytest.raises(InvalidTransitionError) as caught:
        await service.archive(TENANT, node.id, "x")
    assert caught.value.status == 409
    assert await service.get(TENANT, node.id) == node
    assert await service.history(TENANT, node.id) == []


async def test_archiving_without_a_reason_is_refused(service: NodeService) -> None:
    node = await service.create(TENANT, post())
    await service.publish(TENANT, node.id)
    with pytest.raises(GuardFailedError):
        await service.archive(TENANT, node.id, "")
    assert len(await service.history(TENANT, node.id)) == 1


async def test_another_tenants_node_is_not_found(service: NodeService) -> None:
    node = await service.create(TENANT, post())
    with pytest.raises(NodeNotFoundError) as caught:
        await service.get(OTHER_TENANT, node.id)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert caught.value.code == "NODE_NOT_FOUND"
    with pytest.raises(NodeNotFoundError):
        await service.publish(OTHER_TENANT, node.id)
    with pytest.raises(NodeNotFoundError):
        await service.history(OTHER_TENANT, node.id)
    assert (await service.list_nodes(OTHER_TENANT)).items == ()


async def test_slugs_are_unique_within_a_tenant_only(service: NodeService) -> None:
    first = await service.create(TENANT, post("same"))
    with pytest.raises(DuplicateSlugError) as caught:
        await service.create(TENANT, post("same"))
    assert caught.value.kind is ErrorKind.CONFLICT
    await service.create(OTHER_TENANT, post("same"))
    second = await service.create(TENANT, post("second"))
    with pytest.raises(DuplicateSlugError):
        await service.update(TENANT, second.id, UpdateNodeInput(slug="same"))
    assert (await service.get(TENANT, first.id)).slug == "same"


async def test_a_stale_expected_version_is_a_concurrent_modification(
    service: NodeService,
) -> None:
    node = await service.create(TENANT, post())
    await service.update(TENANT, node.id, UpdateNodeInput(title="One"), expected_version=1)
    with pytest.raises(VersionConflictError) as caught:
        await service.update(TENANT, node.id, UpdateNodeInput(title="Two"), expected_version=1)
    assert caught.value.kind is ErrorKind.CONFLICT
    assert (caught.value.expected_version, caught.value.actual_version) == (1, 2)
    assert (await service.get(TENANT, node.id)).title == "One"


async def test_an_expected_version_may_be_any_of_several(service: NodeService) -> None:
    node = await service.create(TENANT, post())
    with pytest.raises(VersionConflictError) as caught:
        await service.publish(TENANT, node.id, expected_version=frozenset({2, 7}))
    assert (caught.value.expected_version, caught.value.actual_version) == ({2, 7}, 1)
    assert "expected one of 2, 7" in caught.value.message
    published = await service.publish(TENANT, node.id, expected_version=frozenset({1, 7}))
    assert published.version == 2


@pytest.mark.parametrize(
    ("state_of", "change"),
    [
        ("published", "publish"),
        ("draft", "archive"),
        ("draft", "restore"),
        ("archived", "update"),
    ],
)
async def test_a_change_from_the_wrong_state_names_it_and_saves_nothing(
    service: NodeService, state_of: str, change: str
) -> None:
    node = await service.create(TENANT, post())
    if state_of != "draft":
        await service.publish(TENANT, node.id)
    if state_of == "archived":
        await service.archive(TENANT, node.id, "old")
    before = await service.get(TENANT, node.id)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "publish": lambda: service.publish(TENANT, node.id),
        "archive": lambda: service.archive(TENANT, node.id, "why"),
        "restore": lambda: service.restore(TENANT, node.id),
        "update": lambda: service.update(TENANT, node.id, UpdateNodeInput(title="New")),
    }
    with pytest.raises(InvalidTransitionError) as caught:
        await calls[change]()
    assert (caught.value.from_state, caught.value.trigger) == (state_of, change)
    assert await service.get(TENANT, node.id) == before


async def test_of_two_writers_of_one_version_only_the_first_is_saved(
    repository: InMemoryNodeRepository,
) -> None:
    service = NodeService(repository, clock=wall_clock(ManualClock()))
    node = await service.create(TENANT, post())
    first = await repository.get(TENANT, node.id)
    second = await repository.get(TENANT, node.id)
    assert first is not None
    assert second is not None
    assert is_state(first, Draft)
    assert is_state(second, Draft)
    published = first.publish()
    edited = second.update(title="Edited")
    assert published.last_transition is not None
    assert edited.last_transition is not None
    await repository.save(published, expected_version=1, record=published.last_transition)
    with pytest.raises(VersionConflictError):
        await repository.save(edited, expected_version=1, record=edited.last_transition)
    stored = await service.get(TENANT, node.id)
    assert stored == published
    assert [r.trigger for r in await service.history(TENANT, node.id)] == ["publish"]


async def test_list_filters_by_state_and_kind_and_pages(
    service: NodeService, clock: ManualClock
) -> None:
    a = await service.create(TENANT, post("a"))
    clock.advance(60)
    b = await service.create(TENANT, post("b", NodeKind.PAGE))
    clock.advance(60)
    c = await service.create(TENANT, post("c"))
    await service.publish(TENANT, b.id)
    await service.publish(TENANT, c.id)
    await service.archive(TENANT, c.id, "old")

    async def slugs(**filters: Any) -> list[str]:
        return [n.slug for n in (await service.list_nodes(TENANT, **filters)).items]

    assert await slugs() == ["a", "b", "c"]
    assert await slugs(state=Published) == ["b"]
    assert await slugs(state="archived") == ["c"]
    assert [n.id for n in (await service.list_nodes(TENANT, kind=NodeKind.POST)).items] == [
        a.id,
        c.id,
    ]
    archived = (await service.list_nodes(TENANT, state=Archived)).items[0]
    assert is_state(archived, Archived)


async def test_list_pages_by_position_until_the_last_page(
    service: NodeService, clock: ManualClock
) -> None:
    created = []
    for slug in ("a", "b", "c"):
        created.append(await service.create(TENANT, post(slug)))
        clock.advance(60)
    first = await service.list_nodes(TENANT, limit=2)
    assert [n.id for n in first.items] == [created[0].id, created[1].id]
    assert first.next_after == (created[1].created_at, created[1].id)
    later = await service.create(TENANT, post("d"))  # added meanwhile: at the end
    second = await service.list_nodes(TENANT, after=first.next_after, limit=2)
    assert [n.id for n in second.items] == [created[2].id, later.id]
    assert second.next_after is None


@pytest.mark.parametrize("limit", [0, 501])
async def test_list_refuses_bad_paging(service: NodeService, limit: int) -> None:
    with pytest.raises(ValueError):
        await service.list_nodes(TENANT, limit=limit)


async def test_saving_a_node_that_was_never_added_is_not_found(
    repository: InMemoryNodeRepository,
) -> None:
    node = ContentNode.new_draft(tenant_id=TENANT, kind="page", title="T", slug="t", id=uuid4())
    published = node.publish()
    assert published.last_transition is not None
    with pytest.raises(NodeNotFoundError):
        await repository.save(published, expected_version=1, record=published.last_transition)


async def test_on_transition_hears_each_saved_record_and_nothing_refused(
    repository: InMemoryNodeRepository, clock: ManualClock
) -> None:
    heard: list[tuple[str, str, str]] = []
    service = NodeService(
        repository,
        clock=wall_clock(clock),
        on_transition=lambda r: heard.append((r.trigger, r.from_state, r.to_state)),
    )
    node = await service.create(TENANT, post())
    await service.publish(TENANT, node.id)
    with pytest.raises(InvalidTransitionError):
        await service.publish(TENANT, node.id)  # refused: nothing saved, nothing heard
    assert heard == [("publish", "draft", "published")]
