"""``Idempotency-Key``: a retried request returns the first result instead of acting twice.

The first successful response of a request sent with a key is stored, per tenant and
operation, in the same transaction as the change it reports, and kept for
`DEFAULT_TTL`. A retry with the same key and the same body gets that response again
(with ``Idempotent-Replayed: true``); the same key with another body is refused (422),
since answering it with the first result would be wrong. Two requests with one key that
race are decided by the table's primary key: one commits, the other rolls back
everything it did and replays the winner's response.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import Header
from sqlalchemy import JSON, ForeignKey, Integer, String, Uuid, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from starlette.responses import Response

from rustok_server.db.base import TENANT_FK, Base, UtcDateTime, utcnow
from rustok_server.errors import IdempotencyKeyReusedError, InvalidIdempotencyKeyError

__all__ = [
    "DEFAULT_TTL",
    "IDEMPOTENCY_HEADER",
    "REPLAYED_HEADER",
    "IdempotencyKey",
    "IdempotencyRow",
    "IdempotentRequest",
    "commit_once",
    "replay_or_raise",
]

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
DEFAULT_TTL: Final = timedelta(hours=24)
"""How long a stored response answers retries."""

_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")
_KEPT_HEADERS: Final = ("etag", "location")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        description="A unique key per operation (e.g. a UUID); a retry with the same key "
        "returns the first result instead of acting twice. Kept for 24 hours.",
    ),
]
"""The optional ``Idempotency-Key`` request header."""


class IdempotencyRow(Base):
    """The first result of a request sent with an ``Idempotency-Key``, until it expires.

    ``scope`` names the operation (``POST /api/commerce/orders``, or the payment of one
    order); ``request_hash`` is the SHA-256 of the request body, so that the same key
    sent with another body is refused instead of answered with the wrong result.
    """

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey(TENANT_FK, ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int] = mapped_column(Integer(), nullable=False)
    body: Mapped[str] = mapped_column(String(), nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """One request's key, the operation it is for and the fingerprint of its body.

    Args:
        tenant_id: the tenant of the request.
        scope: the operation, e.g. ``"create-order"`` or ``"pay:<order id>"``.
        key: the client's ``Idempotency-Key``.
        fingerprint: SHA-256 (hex) of the request's canonical body.
        ttl: how long the stored response answers retries.
    """

    tenant_id: uuid.UUID
    scope: str
    key: str
    fingerprint: str
    ttl: timedelta = DEFAULT_TTL

    @classmethod
    def of(
        cls, key: str | None, tenant_id: uuid.UUID, scope: str, body: object
    ) -> IdempotentRequest | None:
        """The idempotent request for header value ``key``, or ``None`` without a key.

        ``body`` is any JSON-ready value: its canonical JSON is fingerprinted.

        Raises:
            InvalidIdempotencyKeyError: the key is malformed.
        """
        if key is None:
            return None
        if not _KEY.fullmatch(key):
            raise InvalidIdempotencyKeyError(key)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        return cls(tenant_id, scope, key, hashlib.sha256(canonical.encode()).hexdigest())

    async def replay(self, session: AsyncSession) -> Response | None:
        """The stored response of this key, or ``None`` when there is none (or it expired,
        in which case it is deleted so the key can be used again).

        Raises:
            IdempotencyKeyReusedError: the key was stored for another body.
        """
        query = select(IdempotencyRow).where(
            IdempotencyRow.tenant_id == self.tenant_id,
            IdempotencyRow.scope == self.scope,
            IdempotencyRow.key == self.key,
        )
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            return None
        if row.expires_at <= utcnow():
            await session.execute(
                delete(IdempotencyRow)
                .where(
                    IdempotencyRow.tenant_id == self.tenant_id,
                    IdempotencyRow.scope == self.scope,
                    IdempotencyRow.key == self.key,
                )
                .execution_options(synchronize_session=False)
            )
            return None
        if row.request_hash != self.fingerprint:
            raise IdempotencyKeyReusedError(self.key, self.scope)
        headers = {str(k): str(v) for k, v in row.headers.items()}
        headers[REPLAYED_HEADER] = "true"
        return Response(row.body.encode(), row.status_code, headers, media_type="application/json")

    def remember(self, session: AsyncSession, response: Response) -> None:
        """Add ``response`` to the session, to be committed with the change it reports."""
        now = utcnow()
        body = bytes(response.body).decode()
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        session.add(
            IdempotencyRow(
                tenant_id=self.tenant_id,
                scope=self.scope,
                key=self.key,
                request_hash=self.fingerprint,
                status_code=response.status_code,
                body=body,
                headers=kept,
                created_at=now,
                expires_at=now + self.ttl,
            )
        )


async def commit_once(
    session: AsyncSession, request: IdempotentRequest | None, response: Response
) -> Response:
    """Commit the session's change with ``response`` stored under the request's key.

    When another request with the same key committed first, this change is rolled back
    and that request's response is returned instead.
    """
    if request is None:
        await session.commit()
        return response
    request.remember(session, response)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        replayed = await request.replay(session)
        if replayed is None:
            raise
        return replayed
    return response


async def replay_or_raise(
    session: AsyncSession, request: IdempotentRequest | None, error: Exception
) -> Response:
    """After ``error`` (a lost race, a refused transition): roll back, and return the
    response stored under the request's key if the same request already succeeded;
    otherwise raise ``error``."""
    if request is None:
        raise error
    await session.rollback()
    replayed = await request.replay(session)
    if replayed is None:
        raise error
    return replayed
