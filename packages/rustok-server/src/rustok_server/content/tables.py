"""The tables of content nodes and their transition history."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from rustok_server.db.base import Base, EntityColumns, TransitionColumns

__all__ = ["ContentNodeRow", "ContentTransitionRow"]


class ContentNodeRow(EntityColumns, Base):
    """One content node of a tenant (see ``rustok_content.ContentNode``)."""

    __tablename__ = "content_nodes"
    __table_args__: tuple[UniqueConstraint | Index, ...] = (
        UniqueConstraint("tenant_id", "slug", name="uq_content_nodes_tenant_slug"),
        Index("ix_content_nodes_tenant_created", "tenant_id", "created_at", "id"),
        # One per list filter, in keyset order (migration 0003).
        Index("ix_content_nodes_tenant_state_created", "tenant_id", "state", "created_at", "id"),
        Index("ix_content_nodes_tenant_kind_created", "tenant_id", "kind", "created_at", "id"),
        Index(
            "ix_content_nodes_tenant_state_kind_created",
            "tenant_id",
            "state",
            "kind",
            "created_at",
            "id",
        ),
    )

    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    slug: Mapped[str] = mapped_column(String(255), nullable=False)
    author_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)
    category_id: Mapped[uuid.UUID | None] = mapped_column(Uuid(), nullable=True)


class ContentTransitionRow(TransitionColumns, Base):
    """One transition of a content node: its audit trail, in ``version`` order."""

    __tablename__ = "content_node_transitions"
    __table_args__: tuple[UniqueConstraint, ...] = (
        UniqueConstraint("node_id", "version", name="uq_content_node_transitions_version"),
    )

    node_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("content_nodes.id", ondelete="CASCADE"), nullable=False
    )
