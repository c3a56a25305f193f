"""Benchmark peer: our authenticated single-row read, written the conventional way.

It follows the pattern of the official full-stack FastAPI template
(``fastapi/full-stack-fastapi-template``: ``backend/app/api/deps.py``,
``backend/app/core/security.py`` and ``backend/app/api/routes/items.py``), unoptimised:
plain FastAPI with synchronous ``def`` handlers (run in FastAPI's threadpool), one
synchronous SQLAlchemy 2 ORM ``Session(engine)`` per request from a generator dependency
``get_db``, an OAuth2 bearer token that is an HS256 JWT decoded per request with PyJWT,
the current user loaded per request with ``session.get(User, sub)``, then
``session.get(Item, id)`` with an ownership check, returned through a pydantic v2
``response_model`` built ``from_attributes``.

What maps to what: the template's ``User`` is our tenant (table ``tenants``; the token's
``sub`` is the tenant id; an inactive tenant is refused as the template refuses an
inactive user); its ``Item`` is a row of ``content_nodes``, owned when its ``tenant_id``
is the tenant's id (another tenant's node answers 404). The peer declares its own ORM
models (only the columns the response needs) and never imports ``rustok_server``.

Serve: ``RUSTOK_BENCH_PEER_DB=sqlite:///x.db RUSTOK_BENCH_PEER_SECRET=... uvicorn
--factory peer_template:template_app --app-dir tools/bench``; ``GET /items/{item_id}``
with ``Authorization: Bearer <template_token(...)>``.
"""

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from jwt.exceptions import InvalidTokenError
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Boolean, DateTime, Integer, String, Uuid, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

__all__ = ["sync_url", "template_app", "template_token"]

ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE = timedelta(days=1)
_SYNC_DRIVERS = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql+psycopg"}


class Base(DeclarativeBase):
    """The peer's own declarative base."""


class User(Base):
    """The template's user: our tenant."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean)


class Item(Base):
    """The template's item: one content node, owned by its tenant."""

    __tablename__ = "content_nodes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ItemPublic(BaseModel):
    """The response model (the template's ``ItemPublic``)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    title: str
    slug: str
    state: str
    version: int
    created_at: datetime
    updated_at: datetime


class TokenPayload(BaseModel):
    """The JWT's claims that the template reads."""

    sub: uuid.UUID | None = None


def template_token(tenant_id: uuid.UUID, secret: str) -> str:
    """A bearer token for the tenant, as the template's ``create_access_token``."""
    expire = datetime.now(UTC) + ACCESS_TOKEN_EXPIRE
    to_encode = {"exp": expire, "sub": str(tenant_id)}
    return jwt.encode(to_encode, secret, algorithm=ALGORITHM)


def sync_url(async_url: str) -> str:
    """Our async database URL as the peer's synchronous one (pysqlite or psycopg 3)."""
    scheme, separator, rest = async_url.partition("://")
    if not separator or scheme not in _SYNC_DRIVERS:
        raise ValueError(f"no synchronous driver known for {scheme!r}")
    return f"{_SYNC_DRIVERS[scheme]}://{rest}"


def template_app() -> FastAPI:
    """The peer app; reads ``RUSTOK_BENCH_PEER_DB`` and ``RUSTOK_BENCH_PEER_SECRET``."""
    database_url = os.environ["RUSTOK_BENCH_PEER_DB"]
    secret_key = os.environ["RUSTOK_BENCH_PEER_SECRET"]
    connect_args = {"check_same_thread": False} if database_url.startswith("sqlite") else {}
    engine = create_engine(database_url, connect_args=connect_args)
    reusable_oauth2 = OAuth2PasswordBearer(tokenUrl="/login/access-token")

    def get_db() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    def get_current_user(
        session: Annotated[Session, Depends(get_db)],
        token: Annotated[str, Depends(reusable_oauth2)],
    ) -> User:
        try:
            payload = jwt.decode(token, secret_key, algorithms=[ALGORITHM])
            token_data = TokenPayload(**payload)
        except (InvalidTokenError, ValidationError) as exc:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN, detail="Could not validate credentials"
            ) from exc
        user = session.get(User, token_data.sub)
        if not user:
            raise HTTPException(status_code=404, detail="User not found")
        if not user.active:
            raise HTTPException(status_code=400, detail="Inactive user")
        return user

    # Dependencies are closures over the engine and key: this module must not use
    # ``from __future__ import annotations`` (FastAPI could not resolve them).
    app = FastAPI(title="peer: full-stack FastAPI template")

    @app.get("/items/{item_id}", response_model=ItemPublic)
    def read_item(
        session: Annotated[Session, Depends(get_db)],
        current_user: Annotated[User, Depends(get_current_user)],
        item_id: uuid.UUID,
    ) -> Any:
        item = session.get(Item, item_id)
        if not item or item.tenant_id != current_user.id:
            raise HTTPException(status_code=404, detail="Item not found")
        return item

    return app
