"""Every legal chain of the content lifecycle type-checks clean under mypy and pyright, with
the state it ends in.

The statements sit in functions: this file is only type-checked, and importing it (as
pytest's doc collection does) must not run them.
"""

from datetime import datetime
from typing import assert_type
from uuid import UUID, uuid4

from rustok_content import AnyContentNode, Archived, ContentNode, Draft, NodeService, Published
from rustok_core.state_machine import is_state


def legal_chain() -> datetime:
    draft: ContentNode[Draft] = ContentNode.new_draft(
        tenant_id=uuid4(), kind="post", title="T", slug="t"
    )
    edited: ContentNode[Draft] = draft.update(title="New")
    published: ContentNode[Published] = edited.publish()
    republished: ContentNode[Published] = published.update(slug="new")
    archived: ContentNode[Archived] = republished.archive("old")
    restored: ContentNode[Draft] = archived.restore()
    again: ContentNode[Published] = restored.publish().update(title="x")
    reason: str = archived.state.reason
    assert reason
    return again.state.published_at


def loaded(node: AnyContentNode) -> AnyContentNode:
    if is_state(node, Draft):
        return node.publish()
    if is_state(node, Published):
        return node.archive("old")
    return node.restore()


def narrowing_keeps_the_node(data: dict[str, object]) -> None:
    """is_state narrows a loaded node to the ContentNode in that state, never to a bare
    Entity (whose transitions would be gone): assert_type checks the exact type."""
    node = ContentNode.from_data(data)
    assert_type(node, AnyContentNode)
    if is_state(node, Draft):
        assert_type(node, ContentNode[Draft])
        assert_type(node.update(title="x"), ContentNode[Draft])
    elif is_state(node, Published):
        assert_type(node, ContentNode[Published])
    else:
        assert_type(node, ContentNode[Archived])


async def service_transitions_say_their_target(service: NodeService, node_id: UUID) -> None:
    """Each of the service's transitions returns the node in the state it leads to."""
    tenant_id = uuid4()
    assert_type(await service.publish(tenant_id, node_id), ContentNode[Published])
    assert_type(await service.archive(tenant_id, node_id, "old"), ContentNode[Archived])
    assert_type(await service.restore(tenant_id, node_id), ContentNode[Draft])
