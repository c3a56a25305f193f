"""The content API, ``/api/content/nodes``: drafts, publishing, archiving, history.

Each handler loads the node of the request's tenant as a typed ``ContentNode`` (the
content machine checks the stored state), narrows it with ``is_state`` and calls the
typed transition. A transition the state does not allow is a 409 problem naming the
state and the allowed actions; a broken rule (archiving without a reason) is a 422; a
malformed request a 400 with one ``errors`` entry per bad field; another tenant's node
is a 404, exactly like a missing one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from rustok_content import (
    AnyContentNode,
    Archived,
    ContentNode,
    CreateNodeInput,
    Draft,
    NodeKind,
    NodeNotFoundError,
    Published,
    UpdateNodeInput,
)
from rustok_core.state_machine import is_state
from rustok_server.db import get_session
from rustok_server.entity_routes import (
    EntityRoute,
    documented,
    entity_response,
    json_response,
    refuse,
)
from rustok_server.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor
from rustok_server.preconditions import IfMatch, check_if_match
from rustok_server.repositories import SqlNodeRepository
from rustok_server.resolution import CurrentTenant

__all__ = ["ArchiveNodeBody", "NodeHistory", "NodeOut", "NodePage", "TransitionOut", "router"]

PREFIX = "/api/content/nodes"
router = APIRouter(prefix=PREFIX, tags=["content"], route_class=EntityRoute)
Session = Annotated[AsyncSession, Depends(get_session)]
NodeStateName = Literal["draft", "published", "archived"]


class ArchiveNodeBody(BaseModel):
    """Why a published node is taken down; a blank reason breaks the archive rule (422)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(max_length=1000, description="Why the node is archived.")


class NodeOut(BaseModel):
    """A content node: its fields, its state name and that state's data, its version."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    version: int = Field(description="Plus one per change; also sent as the ETag.")
    kind: NodeKind
    title: str
    slug: str
    author_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    category_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    state: NodeStateName
    state_data: dict[str, JsonValue] = Field(
        description="draft: {}; published: {published_at}; archived: {archived_at, reason}"
    )


class NodePage(BaseModel):
    """One page of nodes, oldest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[NodeOut]
    next_cursor: str | None


class TransitionOut(BaseModel):
    """One entry of a history: a transition, the version it produced, what it recorded."""

    entity_type: str
    entity_id: uuid.UUID
    tenant_id: uuid.UUID
    trigger: str
    from_state: str
    to_state: str
    at: datetime
    version: int
    actor: str | None
    data: dict[str, JsonValue]


class NodeHistory(BaseModel):
    """A node's transitions, oldest first."""

    items: list[TransitionOut]


_NODE_OK = "The node; its version is the ETag."
_CHANGE = documented(NodeOut, _NODE_OK, 400, 404, 409, 412)


async def _load(
    repository: SqlNodeRepository, tenant_id: uuid.UUID, node_id: uuid.UUID, if_match: str | None
) -> AnyContentNode:
    node = await repository.get(tenant_id, node_id)
    if node is None:
        raise NodeNotFoundError(node_id, tenant_id)
    check_if_match(if_match, node.version, "node")
    return node


async def _store(
    session: AsyncSession, repository: SqlNodeRepository, before: int, node: AnyContentNode
) -> Response:
    record = node.last_transition
    assert record is not None, "every transition sets last_transition"
    await repository.save(node, expected_version=before, record=record)
    await session.commit()
    return entity_response(node)


@router.post(
    "",
    status_code=201,
    summary="Create a draft",
    responses=documented(NodeOut, "The new draft; Location names it.", 400, 409, status=201),
)
async def create_node(body: CreateNodeInput, tenant: CurrentTenant, session: Session) -> Response:
    """Create a node in ``draft``. A slug the tenant already uses is a 409."""
    node = ContentNode.new_draft(
        tenant_id=tenant.id,
        kind=body.kind,
        title=body.title,
        slug=body.slug,
        author_id=body.author_id,
        parent_id=body.parent_id,
        category_id=body.category_id,
    )
    await SqlNodeRepository(session).add(node)
    await session.commit()
    return entity_response(node, status_code=201, location=f"{PREFIX}/{node.id}")


@router.get(
    "",
    summary="List nodes",
    responses=documented(NodePage, "One page of nodes.", 400),
)
async def list_nodes(
    tenant: CurrentTenant,
    session: Session,
    state: Annotated[NodeStateName | None, Query(description="Only nodes in this state.")] = None,
    kind: Annotated[NodeKind | None, Query(description="Only nodes of this kind.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One page of the tenant's nodes, oldest first (by creation time, then id)."""
    after = Cursor.decode(cursor) if cursor is not None else None
    page = await SqlNodeRepository(session).page(
        tenant.id, state=state, kind=kind, after=after, limit=limit
    )
    return json_response(
        {
            "items": [node.to_data() for node in page.items],
            "next_cursor": None if page.next_cursor is None else page.next_cursor.encode(),
        }
    )


@router.get("/{node_id}", summary="Get a node", responses=documented(NodeOut, _NODE_OK, 404))
async def get_node(node_id: uuid.UUID, tenant: CurrentTenant, session: Session) -> Response:
    """The node, with its state and that state's data."""
    node = await SqlNodeRepository(session).get(tenant.id, node_id)
    if node is None:
        raise NodeNotFoundError(node_id, tenant.id)
    return entity_response(node)


@router.patch("/{node_id}", summary="Change a draft or published node", responses=_CHANGE)
async def update_node(
    node_id: uuid.UUID,
    body: UpdateNodeInput,
    tenant: CurrentTenant,
    session: Session,
    if_match: IfMatch = None,
) -> Response:
    """Change the title, slug, parent or category; the state stays. Archived: 409."""
    repository = SqlNodeRepository(session)
    node = await _load(repository, tenant.id, node_id, if_match)
    if is_state(node, Draft) or is_state(node, Published):
        changed = node.update(
            title=body.title,
            slug=body.slug,
            parent_id=body.parent_id,
            category_id=body.category_id,
        )
    else:
        refuse(node, "update")
    return await _store(session, repository, node.version, changed)


@router.post("/{node_id}/publish", summary="Publish a draft", responses=_CHANGE)
async def publish_node(
    node_id: uuid.UUID, tenant: CurrentTenant, session: Session, if_match: IfMatch = None
) -> Response:
    """``draft`` to ``published``."""
    repository = SqlNodeRepository(session)
    node = await _load(repository, tenant.id, node_id, if_match)
    if not is_state(node, Draft):
        refuse(node, "publish")
    return await _store(session, repository, node.version, node.publish())


@router.post(
    "/{node_id}/archive",
    summary="Archive a published node",
    responses=documented(NodeOut, _NODE_OK, 400, 404, 409, 412, 422),
)
async def archive_node(
    node_id: uuid.UUID,
    body: ArchiveNodeBody,
    tenant: CurrentTenant,
    session: Session,
    if_match: IfMatch = None,
) -> Response:
    """``published`` to ``archived``, for a reason (a blank reason is a 422)."""
    repository = SqlNodeRepository(session)
    node = await _load(repository, tenant.id, node_id, if_match)
    if not is_state(node, Published):
        refuse(node, "archive")
    return await _store(session, repository, node.version, node.archive(body.reason))


@router.post("/{node_id}/restore", summary="Restore an archived node", responses=_CHANGE)
async def restore_node(
    node_id: uuid.UUID, tenant: CurrentTenant, session: Session, if_match: IfMatch = None
) -> Response:
    """``archived`` back to ``draft``."""
    repository = SqlNodeRepository(session)
    node = await _load(repository, tenant.id, node_id, if_match)
    if not is_state(node, Archived):
        refuse(node, "restore")
    return await _store(session, repository, node.version, node.restore())


@router.get(
    "/{node_id}/history",
    summary="A node's transitions",
    responses=documented(NodeHistory, "The transitions, oldest first.", 404),
)
async def node_history(node_id: uuid.UUID, tenant: CurrentTenant, session: Session) -> Response:
    """Every transition and update of the node, oldest first."""
    repository = SqlNodeRepository(session)
    if await repository.get(tenant.id, node_id) is None:
        raise NodeNotFoundError(node_id, tenant.id)
    records = await repository.history(tenant.id, node_id)
    return json_response({"items": [record.to_data() for record in records]})
