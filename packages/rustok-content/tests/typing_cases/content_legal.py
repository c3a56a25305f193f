"""Every legal chain of the content lifecycle type-checks clean, with the state it ends in.

The statements sit in functions: this file is only type-checked, and importing it (as
pytest's doc collection does) must not run them.
"""

from datetime import datetime
from uuid import uuid4

from rustok_content import AnyContentNode, Archived, ContentNode, Draft, Published
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
