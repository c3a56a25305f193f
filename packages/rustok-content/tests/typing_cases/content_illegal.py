"""Every transition the content lifecycle does not have is an error of mypy and of pyright on
its line.

The statements sit in functions: this file is only type-checked, and importing it (as
pytest's doc collection does) must not run them.
"""

from uuid import uuid4

from rustok_content import AnyContentNode, ContentNode, Published
from rustok_core.state_machine import is_state


def illegal_transitions() -> None:
    draft = ContentNode.new_draft(tenant_id=uuid4(), kind="post", title="T", slug="t")
    published = draft.publish()
    archived = published.archive("old")

    draft.archive("no")  # E: misc
    draft.restore()  # E: misc
    published.publish()  # E: misc
    published.restore()  # E: misc
    archived.publish()  # E: misc
    archived.archive("again")  # E: misc
    archived.update(title="x")  # E: misc


def loaded(node: AnyContentNode) -> None:
    node.publish()  # E: misc
    node.update(title="x")  # E: misc
    if is_state(node, Published):
        node.publish()  # E: misc
        node.restore()  # E: misc


def bare_constructor() -> None:
    ContentNode(id=uuid4(), tenant_id=uuid4())  # E: call-arg
