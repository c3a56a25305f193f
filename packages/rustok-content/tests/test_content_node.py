"""ContentNode: its states, every transition, its rules and guard, its records and its
round trip through stored data."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from rustok_content import (
    CONTENT_MACHINE,
    AnyContentNode,
    Archived,
    ContentError,
    ContentNode,
    Draft,
    InvalidContentError,
    NodeKind,
    Published,
)
from rustok_core.error import ErrorKind, RichError
from rustok_core.state_machine import (
    GuardFailedError,
    InvalidStateDataError,
    InvalidTransitionError,
    allowed_triggers,
    fire,
    is_state,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TENANT = UUID("00000000-0000-4000-8000-000000000001")


def draft(**overrides: object) -> ContentNode[Draft]:
    values: dict[str, object] = {"title": "Hello world", "slug": "hello-world", "kind": "post"}
    values.update(overrides)
    return ContentNode.new_draft(
        tenant_id=TENANT,
        kind=str(values["kind"]),
        title=str(values["title"]),
        slug=str(values["slug"]),
        author_id=uuid4(),
        at=T0,
    )


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --- creation and rules -----------------------------------------------------------------


def test_new_draft_starts_in_draft_at_version_1() -> None:
    node = draft()
    assert node.state == Draft()
    assert node.state_name == "draft"
    assert node.version == 1
    assert node.kind is NodeKind.POST
    assert (node.created_at, node.updated_at) == (T0, T0)
    assert node.last_transition is None


def test_new_draft_strips_the_title() -> None:
    assert draft(title="  Spaced  ").title == "Spaced"


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("title", "   ", "must not be empty"),
        ("title", "x" * 256, "at most 255 characters, got 256"),
        ("slug", "Hello", "lower-case letters and digits"),
        ("slug", "a--b", "joined by single hyphens"),
        ("slug", "-a", "joined by single hyphens"),
        ("slug", "a" * 256, "at most 255 characters"),
        ("kind", "poem", "must be one of article, page, post"),
    ],
)
def test_new_draft_refuses_fields_that_break_a_rule(field: str, value: str, problem: str) -> None:
    with pytest.raises(InvalidContentError, match=problem) as caught:
        draft(**{field: value})
    err = caught.value
    assert isinstance(err, ContentError)
    assert err.kind is ErrorKind.VALIDATION
    assert err.field == field
    assert [v.pointer for v in err.violations] == [f"/{field}"]


def test_a_title_of_255_characters_is_accepted() -> None:
    assert len(draft(title="x" * 255).title) == 255


# --- transitions ------------------------------------------------------------------------


def test_publish_moves_a_draft_to_published() -> None:
    node = draft()
    published = node.publish(actor="alice", at=at(5))
    assert published.state == Published(published_at=at(5))
    assert published.updated_at == at(5)
    assert published.created_at == T0
    assert published.version == 2
    assert node.state == Draft()
    record = published.last_transition
    assert record is not None
    assert (record.trigger, record.from_state, record.to_state) == ("publish", "draft", "published")
    assert (record.entity_type, record.entity_id, record.tenant_id) == (
        "ContentNode",
        node.id,
        TENANT,
    )
    assert (record.actor, record.at, record.version) == ("alice", at(5), 2)


def test_archive_moves_a_published_node_to_archived_with_its_reason() -> None:
    archived = draft().publish(at=at(1)).archive("  outdated  ", at=at(2))
    assert archived.state == Archived(archived_at=at(2), reason="outdated")
    assert archived.version == 3
    assert archived.last_transition is not None
    assert archived.last_transition.data == {"reason": "outdated"}


def test_archive_refuses_an_empty_reason() -> None:
    published = draft().publish()
    with pytest.raises(GuardFailedError) as caught:
        published.archive("  ")
    err = caught.value
    assert err.kind is ErrorKind.BUSINESS_LOGIC
    assert err.guard == "reason given"
    assert "needs a reason" in err.reason


def test_restore_moves_an_archived_node_back_to_draft() -> None:
    restored = draft().publish(at=at(1)).archive("old", at=at(2)).restore(at=at(3))
    assert restored.state == Draft()
    assert restored.updated_at == at(3)
    assert restored.version == 4
    assert restored.last_transition is not None
    assert restored.last_transition.from_state == "archived"


def test_update_changes_fields_keeps_the_state_and_touches_updated_at() -> None:
    node = draft()
    updated = node.update(title="New title", slug="new-title", at=at(9))
    assert (updated.title, updated.slug, updated.updated_at) == ("New title", "new-title", at(9))
    assert updated.state == Draft()
    assert updated.version == 2
    assert updated.last_transition is not None
    assert updated.last_transition.data == {"fields": ["slug", "title"]}
    assert node.title == "Hello world"


def test_update_of_a_published_node_keeps_it_published() -> None:
    published = draft().publish(at=at(1))
    updated = published.update(category_id=uuid4(), at=at(2))
    assert updated.state == Published(published_at=at(1))
    assert updated.updated_at == at(2)


def test_update_validates_the_new_values() -> None:
    with pytest.raises(InvalidContentError, match="slug"):
        draft().update(slug="Not A Slug")


@pytest.mark.parametrize(
    ("node", "trigger", "arguments", "allowed"),
    [
        (draft(), "archive", {"reason": "x"}, ("publish", "update")),
        (draft(), "restore", {}, ("publish", "update")),
        (draft().publish(), "publish", {}, ("archive", "update")),
        (draft().publish(), "restore", {}, ("archive", "update")),
        (draft().publish().archive("x"), "publish", {}, ("restore",)),
        (draft().publish().archive("x"), "archive", {"reason": "x"}, ("restore",)),
        (draft().publish().archive("x"), "update", {"title": "t"}, ("restore",)),
    ],
)
def test_a_trigger_the_state_does_not_allow_raises_and_changes_nothing(
    node: AnyContentNode, trigger: str, arguments: dict[str, object], allowed: tuple[str, ...]
) -> None:
    before = node.to_data()
    with pytest.raises(InvalidTransitionError) as caught:
        fire(node, trigger, **arguments)
    err = caught.value
    assert isinstance(err, RichError)
    assert err.kind is ErrorKind.CONFLICT
    assert (err.entity_type, err.from_state, err.trigger) == (
        "ContentNode",
        node.state_name,
        trigger,
    )
    assert err.allowed == allowed
    assert node.to_data() == before


def test_update_of_an_archived_node_reports_the_state_before_the_arguments() -> None:
    archived: AnyContentNode = draft().publish().archive("x")
    with pytest.raises(InvalidTransitionError):
        fire(archived, "update", slug="Not A Slug")


def test_nodes_are_immutable() -> None:
    node = draft()
    with pytest.raises(FrozenInstanceError):
        node.title = "x"  # type: ignore[misc]  # the point: frozen


def test_allowed_triggers_per_state() -> None:
    published = draft().publish()
    assert allowed_triggers(draft()) == ("publish", "update")
    assert allowed_triggers(published) == ("archive", "update")
    assert allowed_triggers(published.archive("x")) == ("restore",)


def test_the_machine_is_the_documented_graph() -> None:
    assert CONTENT_MACHINE.triggers == ("publish", "archive", "restore", "update")
    assert CONTENT_MACHINE.initial is Draft
    assert CONTENT_MACHINE.target("publish", Draft) is Published
    assert CONTENT_MACHINE.target("archive", Published) is Archived
    assert CONTENT_MACHINE.target("restore", Archived) is Draft
    assert CONTENT_MACHINE.target("archive", Draft) is None
    assert CONTENT_MACHINE.target("publish", Archived) is None


# --- stored data ---------------------------------------------------------------------------


def test_a_node_round_trips_through_its_stored_data() -> None:
    archived = draft().publish(at=at(1)).archive("old", at=at(2))
    data = archived.to_data()
    assert data["state"] == "archived"
    assert data["state_data"] == {"archived_at": "2025-03-01T12:02:00Z", "reason": "old"}
    assert data["version"] == 3
    assert data["kind"] == "post"
    loaded = ContentNode.from_data(data)
    assert loaded == archived
    assert is_state(loaded, Archived)


def test_a_loaded_node_is_narrowed_before_a_transition() -> None:
    loaded = ContentNode.from_data(draft().publish(at=at(1)).to_data())
    assert not is_state(loaded, Draft)
    if is_state(loaded, Published):
        assert loaded.archive("gone").state.reason == "gone"
    else:
        pytest.fail("a published node loads as Published")


def test_stored_data_with_an_unknown_state_is_refused() -> None:
    data = draft().to_data()
    data["state"] = "deleted"
    with pytest.raises(InvalidStateDataError, match="states: draft, published, archived"):
        ContentNode.from_data(data)


def test_stored_state_data_missing_a_field_is_refused() -> None:
    data = draft().publish().to_data()
    data["state_data"] = {}
    with pytest.raises(InvalidStateDataError, match="published_at"):
        ContentNode.from_data(data)
