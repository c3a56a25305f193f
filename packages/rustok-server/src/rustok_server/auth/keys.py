"""API keys: their format, how they are stored (a hash, never the secret), and the
directory that creates, lists and revokes them.

A key reads ``rsk_<public id>_<secret>``. The public id (16 hex digits) names the key
everywhere: the CLI, the admin API, the ``actor`` of history rows, the logs. The secret
is 32 random bytes (256 bits) in URL-safe base64; only its SHA-256 is stored. A fast hash
is enough for a secret of that entropy: nobody can guess it, so a slow hash would only
slow every verification down (see ``docs/SECURITY.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_core.error import ErrorKind, RichError
from rustok_core.tenancy import parse_tenant_identifier
from rustok_server.auth.scopes import ADMIN, TENANT_SCOPES
from rustok_server.auth.tables import ApiKeyRow, TenantRateLimitRow
from rustok_server.db import Database
from rustok_server.db.base import utcnow
from rustok_server.db.changes import bump_version
from rustok_server.errors import ApiKeyNotFoundError, TenantNotFoundError
from rustok_server.tenancy.repository import Tenant, TenantRepository
from rustok_server.tenancy.tables import TenantRow

__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "KeyDirectory",
    "KeyRecord",
    "RateLimit",
    "hash_secret",
    "new_key",
    "parse_key",
    "secret_matches",
    "write_rate_limit",
]

KEY_PREFIX: Final = "rsk_"
"""How every API key starts: ``rsk_<id>_<secret>``."""
_KEY_PATTERN: Final = re.compile(r"rsk_([0-9a-f]{16})_([A-Za-z0-9_\-]{43})")


def new_key() -> tuple[str, str]:
    """A fresh ``(public id, full key)``; the key is shown once and never stored."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_key(token: str) -> tuple[str, str] | None:
    """``(public id, secret)`` of a well-formed key, else ``None``."""
    match = _KEY_PATTERN.fullmatch(token)
    return None if match is None else (match[1], match[2])


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash`` (compared in constant time)."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What may be shown of a key: everything but its secret.

    Attributes:
        id: the public id.
        tenant_id: the tenant it acts for; ``None`` for a platform admin key.
        scopes: what it may do.
        name: a note of what it is for.
        created_at: when it was made.
        expires_at: when it stops working, if ever.
        revoked_at: when it was revoked, if it was.
        last_used_at: when it was last used (kept to the minute).
    """

    id: str
    tenant_id: uuid.UUID | None
    scopes: tuple[str, ...]
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        """The key of a database row."""
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            scopes=tuple(row.scopes.split()),
            name=row.name,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What verification needs of a key: the key, its stored hash, its tenant's state."""

    key: ApiKey
    secret_hash: str
    tenant_active: bool


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``per_second`` requests a second, bursts of up to ``burst``."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second < 0:
            raise ValueError(f"per_second must be >= 0, got {self.per_second}")
        if self.burst < 0:
            raise ValueError(f"burst must be >= 0, got {self.burst}")

    @property
    def enabled(self) -> bool:
        """Whether it limits anything (``0`` turns a limit off)."""
        return self.per_second > 0 and self.burst > 0


def _invalid_scopes(scopes: Iterable[str], *, admin: bool) -> RichError | None:
    allowed = {ADMIN.value} if admin else {scope.value for scope in TENANT_SCOPES}
    chosen = list(scopes)
    unknown = [scope for scope in chosen if scope not in allowed]
    if not chosen or unknown:
        names = ", ".join(sorted(allowed))
        return RichError(
            ErrorKind.VALIDATION,
            f"scopes {chosen!r} are not a non-empty choice of {names}",
            user_message=f"Choose one or more scopes of: {names}.",
            code="INVALID_SCOPE",
        ).with_violation("scopes", f"one or more of {names}")
    return None


class KeyDirectory:
    """Creates, lists and revokes API keys, and keeps per-tenant rate limits.

    Every change commits and bumps the change counter, so serving processes that did not
    make it drop what they cached within a second.

    Args:
        database: where keys live.
        clock: the current time (timezone-aware) of creation, expiry and revocation times.
    """

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock

    async def _tenant(self, session: AsyncSession, identifier: str) -> Tenant:
        tenant = await TenantRepository(session).find(parse_tenant_identifier(identifier))
        if tenant is None:
            raise TenantNotFoundError(identifier)
        return tenant

    async def create(
        self,
        tenant: str | None,
        scopes: Sequence[str],
        *,
        expires_in: timedelta | None = None,
        name: str = "",
    ) -> tuple[ApiKey, str]:
        """Make a key for ``tenant`` (a UUID or slug), or an admin key when it is ``None``.

        Returns:
            The key and its full text, ``rsk_<id>_<secret>``: show it once, never store it.

        Raises:
            TenantNotFoundError: no tenant answers to ``tenant``.
            RichError: a scope that is not one of the allowed ones (400).
        """
        admin = tenant is None
        chosen = tuple(dict.fromkeys(scopes or ((ADMIN.value,) if admin else ())))
        problem = _invalid_scopes(chosen, admin=admin)
        if problem is not None:
            raise problem
        key_id, token = new_key()
        secret = token[len(KEY_PREFIX) + len(key_id) + 1 :]
        now = self.clock()
        async with self.database.writing() as session:
            tenant_id = None if tenant is None else (await self._tenant(session, tenant)).id
            row = ApiKeyRow(
                id=key_id,
                tenant_id=tenant_id,
                secret_hash=hash_secret(secret),
                scopes=" ".join(chosen),
                name=name.strip()[:200],
                created_at=now,
                expires_at=None if expires_in is None else now + expires_in,
            )
            session.add(row)
            await bump_version(session)
            await session.commit()
            return ApiKey.from_row(row), token

    async def list(self, tenant: str | None) -> list[ApiKey]:
        """The keys of ``tenant`` (a UUID or slug), or the admin keys for ``None``; oldest first.

        Raises:
            TenantNotFoundError: no tenant answers to ``tenant``.
        """
        async with self.database.reading() as session:
            query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
            if tenant is None:
                query = query.where(ApiKeyRow.tenant_id.is_(None))
            else:
                query = query.where(ApiKeyRow.tenant_id == (await self._tenant(session, tenant)).id)
            return [ApiKey.from_row(row) for row in (await session.scalars(query)).all()]

    async def get(self, key_id: str) -> ApiKey:
        """The key with this id. Raises `ApiKeyNotFoundError`."""
        async with self.database.reading() as session:
            row = await session.get(ApiKeyRow, key_id)
            if row is None:
                raise ApiKeyNotFoundError(key_id)
            return ApiKey.from_row(row)

    async def revoke(self, key_id: str, *, tenant_id: uuid.UUID | None = None) -> ApiKey:
        """Revoke a key (again is a no-op); with ``tenant_id``, only one of that tenant's.

        Raises:
            ApiKeyNotFoundError: no such key (for that tenant).
        """
        async with self.database.writing() as session:
            row = await session.get(ApiKeyRow, key_id)
            if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
                raise ApiKeyNotFoundError(key_id)
            if row.revoked_at is None:
                row.revoked_at = self.clock()
                await bump_version(session)
                await session.commit()
            return ApiKey.from_row(row)

    async def load(self, key_id: str) -> KeyRecord | None:
        """The key, its hash and whether its tenant is active (one query), or ``None``."""
        query = (
            select(ApiKeyRow, TenantRow.active)
            .outerjoin(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
            .where(ApiKeyRow.id == key_id)
        )
        async with self.database.reading() as session:
            found = (await session.execute(query)).one_or_none()
        if found is None:
            return None
        row, active = found
        return KeyRecord(
            ApiKey.from_row(row), row.secret_hash, bool(active) or row.tenant_id is None
        )

    async def record_use(self, used: dict[str, datetime]) -> None:
        """Write the last-used times of keys (one statement each, one transaction)."""
        async with self.database.writing() as session:
            for key_id, at in used.items():
                await session.execute(
                    update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=at)
                )
            await session.commit()

    async def rate_limits(self) -> dict[uuid.UUID, RateLimit]:
        """Every tenant's own rate limit."""
        async with self.database.reading() as session:
            rows = (await session.scalars(select(TenantRateLimitRow))).all()
        return {row.tenant_id: RateLimit(row.per_second, row.burst) for row in rows}

    async def set_rate_limit(self, tenant_id: uuid.UUID, limit: RateLimit | None) -> None:
        """Give a tenant its own rate limit, or (``None``) return it to the default."""
        async with self.database.writing() as session:
            await write_rate_limit(session, tenant_id, limit)
            await session.commit()


async def write_rate_limit(
    session: AsyncSession, tenant_id: uuid.UUID, limit: RateLimit | None
) -> None:
    """Set (or, with ``None``, remove) a tenant's own rate limit in the caller's
    transaction, and count the change there."""
    row = await session.get(TenantRateLimitRow, tenant_id)
    if limit is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(TenantRateLimitRow(tenant_id=tenant_id, **_limit_values(limit)))
    else:
        row.per_second, row.burst = limit.per_second, limit.burst
    await bump_version(session)


def _limit_values(limit: RateLimit) -> dict[str, float | int]:
    return {"per_second": limit.per_second, "burst": limit.burst}
