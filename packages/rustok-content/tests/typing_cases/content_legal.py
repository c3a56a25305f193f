"""Every legal chain of the content lifecycle type-checks clean, with the state it ends in."""

from uuid import uuid4

from rustok_content import AnyContentNode, Archived, ContentNode, Draft, Published
from rustok_core.state_machine import is_state

draft: ContentNode[Draft] = ContentNode.new_draft(
    tenant_id=uuid4(), kind="post", title="T", slug="t"
)
edited: ContentNode[Draft] = draft.update(title="New")
published: ContentNode[Published] = edited.publish()
republished: ContentNode[Published] = published.update(slug="new")
archived: ContentNode[Archived] = republished.archive("old")
restored: ContentNode[Draft] = archived.restore()
again: ContentNode[Published] = restored.publish().update(title="x")
when = again.state.published_at
reason: str = archived.state.reason


def loaded(node: AnyContentNode) -> AnyContentNode:
    if is_state(node, Draft):
        return node.publish()
    if is_state(node, Published):
        return node.archive("old")
    return node.restore()
