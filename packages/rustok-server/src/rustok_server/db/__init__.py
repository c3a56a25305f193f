"""The database: the engine, the sessions and the driver-level transactions
(``engine.py``), where the SQL repositories' statements run (``statements.py``), the
declarative base and the columns entity tables share (``base.py``), the SQL those tables
share (``entity_rows.py``), the counter of tenant, key and limit changes (``changes.py``)
and the Alembic migrations."""

from rustok_server.db.engine import Database, get_session
from rustok_server.db.statements import ConstraintError, SessionStatements, Statements, UnitOfWork

__all__ = [
    "ConstraintError",
    "Database",
    "SessionStatements",
    "Statements",
    "UnitOfWork",
    "get_session",
]
