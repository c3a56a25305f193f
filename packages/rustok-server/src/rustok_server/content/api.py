"""The content API, ``/api/content/nodes``: drafts, publishing, archiving, history.

Each handler adapts HTTP to ``rustok_content.NodeService``: it parses the request (the
bodies are the domain's input models), calls the service over the SQL repository of the
request's unit of work (no transaction for a read), commits, and renders the node with its
``ETag``; every change goes through ``Change.apply``, and the get and history routes are
``EntityApi``'s. The rules are the service's. A transition the state does not allow is a
409 problem naming the state and the allowed actions; a broken rule (archiving without a
reason) is a 422; a malformed request a 400 with one ``errors`` entry per bad field;
another tenant's node is a 404, exactly like a missing one.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Final, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field, JsonValue
from starlette.responses import Response

from rustok_content import (
    ArchiveNodeInput,
    CreateNodeInput,
    NodeKind,
    NodeService,
    UpdateNodeInput,
    VersionConflictError,
)
from rustok_server.auth.guard import get_actor, require
from rustok_server.auth.scopes import Scope
from rustok_server.content.repository import SqlNodeRepository
from rustok_server.db import UnitOfWork
from rustok_server.http.entity_routes import (
    Change,
    EntityApi,
    EntityOut,
    EntityRoute,
    PageOut,
    documented,
    entity_response,
    page_response,
    unit_of_work,
)
from rustok_server.http.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor
from rustok_server.tenancy.resolution import CurrentTenant, get_tenant

__all__ = ["NodeOut", "NodePageOut", "router"]

PREFIX = "/api/content/nodes"


class NodeRoute(EntityRoute):
    """Content routes: a refused transition speaks of the "node"."""

    noun: ClassVar[str] = "node"
    version_conflict: ClassVar[type[Exception]] = VersionConflictError


router: Final[APIRouter] = APIRouter(prefix=PREFIX, tags=["content"], route_class=NodeRoute)
"""The content node routes (``/api/content/nodes``)."""
Unit = Annotated[UnitOfWork, Depends(unit_of_work)]
READ = require(Scope.CONTENT_READ)
WRITE = require(Scope.CONTENT_WRITE)
NodeStateName = Literal["draft", "published", "archived"]


class NodeOut(EntityOut):
    """A content node: its fields, its state name and that state's data, its version."""

    kind: NodeKind
    title: str
    slug: str
    author_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    category_id: uuid.UUID | None
    state: NodeStateName
    state_data: dict[str, JsonValue] = Field(
        description="draft: {}; published: {published_at}; archived: {archived_at, reason}"
    )


class NodePageOut(PageOut[NodeOut]):
    """One page of nodes, oldest first; pass ``next_cursor`` as ``cursor`` for the next."""


_NODE_OK = "The node; its version is the ETag."
_CHANGE = documented(NodeOut, _NODE_OK, 400, 404, 409, 412)


NODES = EntityApi("node_id", NodeService, SqlNodeRepository, tenant=get_tenant, actor=get_actor)
"""The dependencies of the node routes, and their get and history routes."""
Nodes = Annotated[NodeService, Depends(NODES.service)]
NodeChange = Annotated[Change[NodeService], Depends(NODES.change)]


@router.post(
    "",
    dependencies=[WRITE],
    status_code=201,
    summary="Create a draft",
    responses=documented(NodeOut, "The new draft; Location names it.", 400, 409, status=201),
)
async def create_node(
    body: CreateNodeInput, tenant: CurrentTenant, service: Nodes, unit: Unit
) -> Response:
    """Create a node in ``draft``. A slug the tenant already uses is a 409."""
    node = await service.create(tenant.id, body)
    await unit.commit()
    return entity_response(node, status_code=201, location=f"{PREFIX}/{node.id}")


@router.get(
    "",
    dependencies=[READ],
    summary="List nodes",
    responses=documented(NodePageOut, "One page of nodes.", 400),
)
async def list_nodes(
    tenant: CurrentTenant,
    service: Nodes,
    state: Annotated[NodeStateName | None, Query(description="Only nodes in this state.")] = None,
    kind: Annotated[NodeKind | None, Query(description="Only nodes of this kind.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One page of the tenant's nodes, oldest first (by creation time, then id)."""
    after = Cursor.decode(cursor).position if cursor is not None else None
    page = await service.list_nodes(tenant.id, state=state, kind=kind, after=after, limit=limit)
    return page_response(page.items, page.next_after)


@router.patch(
    "/{node_id}",
    dependencies=[WRITE],
    summary="Change a draft or published node",
    responses=_CHANGE,
)
async def update_node(body: UpdateNodeInput, change: NodeChange) -> Response:
    """Change the title, slug, parent or category; the state stays. Archived: 409."""
    return await change.apply(change.service.update, body)


@router.post(
    "/{node_id}/publish", dependencies=[WRITE], summary="Publish a draft", responses=_CHANGE
)
async def publish_node(change: NodeChange) -> Response:
    """``draft`` to ``published``."""
    return await change.apply(change.service.publish)


@router.post(
    "/{node_id}/archive",
    dependencies=[WRITE],
    summary="Archive a published node",
    responses=documented(NodeOut, _NODE_OK, 400, 404, 409, 412, 422),
)
async def archive_node(body: ArchiveNodeInput, change: NodeChange) -> Response:
    """``published`` to ``archived``, for a reason (a blank reason is a 422)."""
    return await change.apply(change.service.archive, body.reason)


@router.post(
    "/{node_id}/restore",
    dependencies=[WRITE],
    summary="Restore an archived node",
    responses=_CHANGE,
)
async def restore_node(change: NodeChange) -> Response:
    """``archived`` back to ``draft``."""
    return await change.apply(change.service.restore)


NODES.add_reads(router, noun="node", out=NodeOut, ok=_NODE_OK, dependencies=[READ])
