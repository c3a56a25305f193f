"""Alembic environment: runs on the connection handed over by ``rustok_server.db.migrations``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from rustok_server.db.base import Base

connection: object = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "run migrations with `rustok-server migrate` or rustok_server.db.migrations.upgrade(), "
        "which hand Alembic an open connection"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
