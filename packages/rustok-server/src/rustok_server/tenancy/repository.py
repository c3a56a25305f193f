"""Tenants: the value handlers see, the repository that reads and writes them, and the
directory that keeps the tenant cache in step with every change."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_core.error import ErrorKind, RichError
from rustok_core.tenancy import (
    IdentifierKind,
    TenantIdentifier,
    parse_tenant_identifier,
    validate_host,
    validate_slug,
)
from rustok_server.db import Database
from rustok_server.db.base import utcnow
from rustok_server.db.changes import bump_version
from rustok_server.errors import TenantConflictError, TenantNotFoundError
from rustok_server.tenancy.tables import TenantRow
from rustok_server.tenancy.tenant_cache import TenantCache

__all__ = [
    "Tenant",
    "TenantDirectory",
    "TenantRepository",
    "find_tenant",
]


class _Unset(enum.Enum):
    UNSET = "unset"


#: "Leave unchanged" for optional fields where ``None`` is a value.
UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant as the rest of the server sees it (immutable; reloaded after changes).

    Attributes:
        id: the tenant's UUID; every row it owns carries it as ``tenant_id``.
        slug: its unique short name (``acme``), usable in ``X-Tenant-ID`` and as a subdomain.
        domain: its own host name (``shop.acme.test``), if any.
        name: its display name.
        active: a disabled tenant resolves to 404, like an unknown one.
        created_at: when it was created (UTC).
        updated_at: when it last changed (UTC).
    """

    id: uuid.UUID
    slug: str
    domain: str | None
    name: str
    active: bool
    created_at: datetime
    updated_at: datetime
    # Built once: every request under /api compares what it names against them.
    _identifiers: tuple[TenantIdentifier, ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        keys = [
            TenantIdentifier(IdentifierKind.UUID, str(self.id)),
            TenantIdentifier(IdentifierKind.SLUG, self.slug),
        ]
        if self.domain is not None:
            keys.append(TenantIdentifier(IdentifierKind.HOST, self.domain))
        object.__setattr__(self, "_identifiers", tuple(keys))

    def identifiers(self) -> tuple[TenantIdentifier, ...]:
        """Every identifier that resolves to this tenant: its id, its slug and its domain."""
        return self._identifiers

    @classmethod
    def from_row(cls, row: TenantRow) -> Tenant:
        """The tenant of a database row."""
        return cls(
            id=row.id,
            slug=row.slug,
            domain=row.domain,
            name=row.name,
            active=row.active,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class TenantRepository:
    """Reads and writes tenants in one session; the caller commits.

    Args:
        session: the session to work in.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, identifier: TenantIdentifier) -> Tenant | None:
        """The tenant an identifier names (active or not), or ``None``."""
        if identifier.kind is IdentifierKind.UUID:
            condition = TenantRow.id == uuid.UUID(identifier.value)
        elif identifier.kind is IdentifierKind.SLUG:
            condition = TenantRow.slug == identifier.value
        else:
            condition = TenantRow.domain == identifier.value
        row = (await self.session.execute(select(TenantRow).where(condition))).scalar_one_or_none()
        return None if row is None else Tenant.from_row(row)

    async def list(self, *, limit: int = 100, offset: int = 0) -> Sequence[Tenant]:
        """Tenants ordered by slug, one page."""
        query = select(TenantRow).order_by(TenantRow.slug).limit(limit).offset(offset)
        return [Tenant.from_row(row) for row in (await self.session.scalars(query)).all()]

    async def count(self) -> int:
        """How many tenants exist."""
        return int((await self.session.execute(select(func.count(TenantRow.id)))).scalar_one())

    async def create(
        self, slug: str, name: str, *, domain: str | None = None, tenant_id: uuid.UUID | None = None
    ) -> Tenant:
        """Add a tenant; ``slug`` and ``domain`` are validated and normalised first.

        Raises:
            InvalidTenantIdentifierError: the slug or domain is malformed or reserved.
            TenantConflictError: the slug or domain is taken.
        """
        slug = validate_slug(slug)
        if domain is not None:
            domain = validate_host(domain)
        name = name.strip()
        if not name:
            raise RichError(
                ErrorKind.VALIDATION,
                f"tenant {slug!r} needs a name",
                user_message="A tenant needs a non-empty name.",
            ).with_violation("name", "must not be empty")
        now = utcnow()
        row = TenantRow(
            id=tenant_id or uuid.uuid4(),
            slug=slug,
            domain=domain,
            name=name,
            active=True,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError as exc:
            await self.session.rollback()
            raise TenantConflictError(slug, domain) from exc
        return Tenant.from_row(row)

    async def set_active(self, identifier: TenantIdentifier, active: bool) -> tuple[Tenant, Tenant]:
        """Enable or disable a tenant; returns it before and after the change.

        Raises:
            TenantNotFoundError: nothing answers to ``identifier``.
        """
        row = await self._row(identifier)
        before = Tenant.from_row(row)
        row.active = active
        row.updated_at = utcnow()
        await self.session.flush()
        return before, Tenant.from_row(row)

    async def update(
        self,
        identifier: TenantIdentifier,
        *,
        name: str | None = None,
        domain: str | _Unset | None = UNSET,
    ) -> tuple[Tenant, Tenant]:
        """Rename a tenant or change its domain (``None`` removes it); returns before and after.

        Raises:
            TenantNotFoundError: nothing answers to ``identifier``.
            InvalidTenantIdentifierError: the new domain is malformed.
            TenantConflictError: another tenant has the new domain.
        """
        row = await self._row(identifier)
        before = Tenant.from_row(row)
        if name is not None:
            if not name.strip():
                raise RichError(
                    ErrorKind.VALIDATION,
                    f"tenant {row.slug!r} needs a name",
                    user_message="A tenant needs a non-empty name.",
                ).with_violation("name", "must not be empty")
            row.name = name.strip()
        if not isinstance(domain, _Unset):
            row.domain = validate_host(domain) if domain is not None else None
        wanted = row.domain  # the row's attributes are expired by a rollback
        row.updated_at = utcnow()
        try:
            await self.session.flush()
        except IntegrityError as exc:
            await self.session.rollback()
            raise TenantConflictError(before.slug, wanted) from exc
        return before, Tenant.from_row(row)

    async def _row(self, identifier: TenantIdentifier) -> TenantRow:
        tenant = await self.find(identifier)
        if tenant is None:
            raise TenantNotFoundError(identifier.value)
        row = await self.session.get(TenantRow, tenant.id)
        assert row is not None  # found just above, in the same transaction
        return row


class TenantDirectory:
    """Tenant administration that keeps a tenant cache in step.

    Creating, enabling or disabling a tenant commits and then invalidates every
    cache key of the tenant (before and after the change), so the server never
    keeps answering from an entry the change made wrong.

    Args:
        database: where tenants live.
        cache: the server's tenant cache, if any (the CLI runs without one).
    """

    def __init__(
        self,
        database: Database,
        cache: TenantCache[TenantIdentifier, Tenant] | None = None,
    ) -> None:
        self.database = database
        self.cache = cache

    async def create(self, slug: str, name: str, *, domain: str | None = None) -> Tenant:
        """Create a tenant. Raises `TenantConflictError` or `InvalidTenantIdentifierError`."""
        async with self.database.writing() as session:
            tenant = await TenantRepository(session).create(slug, name, domain=domain)
            await bump_version(session)
            await session.commit()
        self._invalidate(tenant)
        return tenant

    async def find(self, identifier: TenantIdentifier) -> Tenant | None:
        """The tenant ``identifier`` names, active or not, or ``None`` (one query)."""
        return await find_tenant(self.database, identifier)

    async def get(self, identifier: str) -> Tenant:
        """The tenant a UUID or slug names, active or not. Raises `TenantNotFoundError`."""
        parsed = parse_tenant_identifier(identifier)
        async with self.database.reading() as session:
            tenant = await TenantRepository(session).find(parsed)
        if tenant is None:
            raise TenantNotFoundError(identifier)
        return tenant

    async def list(self, *, limit: int = 100, offset: int = 0) -> Sequence[Tenant]:
        """Tenants ordered by slug, one page."""
        async with self.database.reading() as session:
            return await TenantRepository(session).list(limit=limit, offset=offset)

    async def count(self) -> int:
        """How many tenants exist."""
        async with self.database.reading() as session:
            return await TenantRepository(session).count()

    async def set_active(self, identifier: str, active: bool) -> Tenant:
        """Enable or disable the tenant a UUID or slug names. Raises `TenantNotFoundError`."""
        return await self._change(
            identifier, lambda tenants, parsed: tenants.set_active(parsed, active)
        )

    async def update(
        self,
        identifier: str,
        *,
        name: str | None = None,
        domain: str | _Unset | None = UNSET,
        also: Callable[[AsyncSession, Tenant], Awaitable[None]] | None = None,
    ) -> Tenant:
        """Rename the tenant a UUID or slug names, or change its domain (``None`` removes it).

        ``also`` writes what else belongs to the change (a tenant's rate limit), in the same
        transaction: the whole change commits, and is counted, once.

        Raises `TenantNotFoundError`, `TenantConflictError` or `InvalidTenantIdentifierError`.
        """
        return await self._change(
            identifier,
            lambda tenants, parsed: tenants.update(parsed, name=name, domain=domain),
            also,
        )

    async def _change(
        self,
        identifier: str,
        change: Callable[[TenantRepository, TenantIdentifier], Awaitable[tuple[Tenant, Tenant]]],
        also: Callable[[AsyncSession, Tenant], Awaitable[None]] | None = None,
    ) -> Tenant:
        # One transaction: the change (before and after), what else belongs to it, and the
        # change counter; then the cache forgets the tenant under its old and new names.
        parsed = parse_tenant_identifier(identifier)
        async with self.database.writing() as session:
            before, after = await change(TenantRepository(session), parsed)
            if also is not None:
                await also(session, after)
            await bump_version(session)
            await session.commit()
        self._invalidate(before, after)
        return after

    def _invalidate(self, *tenants: Tenant) -> None:
        if self.cache is None:
            return
        for tenant in tenants:
            for key in tenant.identifiers():
                self.cache.invalidate(key)


async def find_tenant(database: Database, identifier: TenantIdentifier) -> Tenant | None:
    """The tenant ``identifier`` names, active or not, or ``None`` (one query): what the
    tenant cache loads."""
    async with database.reading() as session:
        return await TenantRepository(session).find(identifier)
