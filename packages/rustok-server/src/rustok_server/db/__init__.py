"""The database: the engine and sessions (``engine.py``), the declarative base and the
columns entity tables share (``base.py``), the SQL those tables share
(``entity_rows.py``), the Alembic migrations and the demo data."""

from rustok_server.db.engine import Database, get_session

__all__ = ["Database", "get_session"]
