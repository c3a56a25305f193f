"""A tenant's webhook endpoints and their deliveries: the rules, in one place.

`WebhookEndpoints` creates, lists, changes, deletes and rotates the endpoints of a
tenant, lists an endpoint's deliveries and queues them again; the HTTP routes
(`rustok_server.webhooks.api`) only adapt requests to it. Every query names the tenant:
another tenant's endpoint or delivery is not found, exactly like a missing one. Reads
run in a `Database.reading` session; every write in one `Database.writing` session (on
SQLite the process's one writer, in turn), committed once.

The rules:

- An endpoint's URL passes `check_url` when it is created or changed: absolute,
  ``https`` (``http`` too with ``webhook_allow_http``), a host, no credentials, at most
  2048 characters, and no literal loopback, private, link-local or metadata address
  (unless ``webhook_allow_private_addresses``); the deliverer's own rule, and a little
  more. No name is resolved here: the deliverer checks the addresses a name resolves to
  when it sends.
- Its event types are known ones (the outbox's `EVENT_TYPES`) or ``*``
  (`check_event_types`).
- Its signing secret (`new_secret`, ``whsec_`` and 32 random bytes in base64, the
  Standard Webhooks form) is returned by `WebhookEndpoints.create` and
  `WebhookEndpoints.rotate_secret` only; nothing else ever shows it. After a rotation
  the previous secret still signs for the grace period (``webhook_secret_grace``).
- Enabling an endpoint clears why it was disabled and since when it was failing.
- Re-sending makes deliveries pending again, due now, with their attempts counted from
  zero; a disabled endpoint's deliveries are not re-sent (enable it first).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Generic, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Select, and_, delete, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from rustok_server.db import Database
from rustok_server.db.base import utcnow
from rustok_server.errors import (
    PreconditionFailedError,
    UnknownEventTypeError,
    WebhookDeliveryNotFoundError,
    WebhookEndpointDisabledError,
    WebhookEndpointNotFoundError,
    WebhookUrlRefusedError,
)
from rustok_server.settings import Settings
from rustok_server.webhooks import safety
from rustok_server.webhooks.outbox import ALL_EVENTS, EVENT_TYPES
from rustok_server.webhooks.tables import (
    DeliveryStatus,
    WebhookDeliveryRow,
    WebhookEndpointRow,
    WebhookEventRow,
    WebhookSubscriptionRow,
)

__all__ = [
    "DISABLED_BY_REQUEST",
    "SECRET_PREFIX",
    "EndpointChange",
    "Page",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEndpoints",
    "check_event_types",
    "check_url",
    "new_secret",
]

SECRET_PREFIX: Final = "whsec_"
"""How every signing secret starts (the Standard Webhooks form)."""
DISABLED_BY_REQUEST: Final = "disabled by a request (PATCH enabled: false)"
"""The ``disabled_reason`` of an endpoint its tenant disabled."""

# A host of digits, dots and hex that the C resolver reads as IPv4 (127.1, 0x7f.0.0.1).
_NUMERIC_HOST: Final = re.compile(r"[0-9a-fA-FxX.]*[0-9][0-9a-fA-FxX.]*")

T = TypeVar("T")


def check_url(url: str, *, allow_http: bool = False, allow_private: bool = False) -> str:
    """``url`` itself, if this server may send webhooks to it, by its text alone.

    The rule is the deliverer's own (`rustok_server.webhooks.safety.check_url`: length,
    scheme, host, no credentials, port, no literal non-public address or ``localhost``),
    and two more refusals that only a URL being chosen can meet: a fragment (never
    sent), and a host the resolver reads as a non-public IPv4 address though it is not
    written as one (``127.1``, ``0x7f.0.0.1``).

    Args:
        url: the endpoint URL.
        allow_http: accept ``http://`` as well as ``https://``.
        allow_private: accept a loopback, private, link-local, metadata or otherwise
            non-public literal address, and ``localhost``.

    Raises:
        WebhookUrlRefusedError: naming what is wrong (400).

    Examples:
        >>> check_url("https://hooks.example.com/receive")
        'https://hooks.example.com/receive'
        >>> try:
        ...     check_url("https://10.0.0.7/receive")
        ... except WebhookUrlRefusedError as error:
        ...     print(error.reason)
        it names 10.0.0.7, a private address
    """
    reason = safety.check_url(url, allow_http=allow_http, allow_private=allow_private)
    if reason is not None:
        raise WebhookUrlRefusedError(url, reason)
    parts = urlsplit(url)
    if parts.fragment or url.endswith("#"):
        raise WebhookUrlRefusedError(url, "it has a fragment (#...), which is never sent")
    host = parts.hostname or ""
    if not allow_private and _NUMERIC_HOST.fullmatch(host):
        try:  # what getaddrinfo makes of it: 127.1 is 127.0.0.1
            address = ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:  # a name after all
            return url
        refusal = safety.address_refusal(address)
        if refusal is not None:
            raise WebhookUrlRefusedError(url, f"it names {address}, {refusal}")
    return url


def check_event_types(event_types: Iterable[str]) -> tuple[str, ...]:
    """The event types, each once, sorted, if every one is known (`EVENT_TYPES`) or ``*``.

    Raises:
        UnknownEventTypeError: naming the first unknown one and its position (400).

    Examples:
        >>> check_event_types(["order.paid", "*", "order.paid"])
        ('*', 'order.paid')
    """
    chosen = list(event_types)
    known = {*EVENT_TYPES, ALL_EVENTS}
    for index, event_type in enumerate(chosen):
        if event_type not in known:
            raise UnknownEventTypeError(event_type, index, EVENT_TYPES)
    return tuple(sorted(set(chosen)))


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """What may be shown of an endpoint: everything but its secrets.

    Attributes:
        id: its id.
        tenant_id: the tenant whose events it receives.
        url: where the events are sent.
        description: a note of what it is for.
        event_types: the types it receives, sorted (``*``: every type).
        enabled: whether events are sent to it.
        disabled_reason: why it is disabled, when it is.
        failing_since: when its current run of failures began, if it is failing.
        previous_secret_until: until when the secret before the last rotation still
            signs, if it does.
        version: plus one per change made through the API; also its ETag.
        created_at: when it was made.
        updated_at: when it last changed.
    """

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_until: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpointRow, event_types: Iterable[str]) -> WebhookEndpoint:
        """The endpoint of a row and its subscriptions."""
        return cls(
            id=row.id,
            tenant_id=row.tenant_id,
            url=row.url,
            description=row.description,
            event_types=tuple(sorted(event_types)),
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            failing_since=row.failing_since,
            previous_secret_until=row.previous_secret_until
            if row.previous_secret is not None
            else None,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event for one endpoint: its state and its last attempt.

    Attributes:
        id: its id.
        event_id: the event's id (the ``webhook-id`` a receiver deduplicates by).
        endpoint_id: the endpoint it goes to.
        event_type: the event's type (``order.paid``).
        status: ``pending``, ``delivered`` or ``failed`` (`DeliveryStatus`).
        attempts: attempts made since it was written or last re-sent.
        next_attempt_at: when it is due, while pending.
        last_attempt_at: when the last attempt was made.
        last_status_code: the HTTP status the receiver last answered, if it answered.
        last_error: why the last attempt failed, if it did.
        response_excerpt: the start of the receiver's last answer.
        created_at: when the event was written.
        delivered_at: when the receiver accepted it.
    """

    id: uuid.UUID
    event_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    response_excerpt: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: WebhookDeliveryRow, event_type: str) -> WebhookDelivery:
        """The delivery of a row and its event's type."""
        return cls(
            id=row.id,
            event_id=row.event_id,
            endpoint_id=row.endpoint_id,
            event_type=event_type,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            response_excerpt=row.response_excerpt,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, and the position after its last item (``None``: the last page).

    Attributes:
        items: the page's items.
        next_after: the ``(created_at, id)`` of its last item when more follow.
    """

    items: Sequence[T]
    next_after: tuple[datetime, uuid.UUID] | None


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """What to change of an endpoint; ``None`` leaves a field as it is.

    Attributes:
        url: the new URL (checked by `check_url`).
        event_types: the new event types, replacing the old ones (`check_event_types`).
        description: the new note.
        enabled: ``True`` enables it (clearing ``disabled_reason`` and
            ``failing_since``); ``False`` disables it (`DISABLED_BY_REQUEST`).
    """

    url: str | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None


class WebhookEndpoints:
    """The operations on a tenant's webhook endpoints and their deliveries.

    Args:
        database: where endpoints and deliveries live.
        allow_http: accept ``http://`` URLs (`check_url`).
        allow_private: accept literal private addresses (`check_url`).
        secret_grace: how long the previous secret still signs after a rotation.
        clock: the current time (timezone-aware).

    Examples:
        >>> endpoints = WebhookEndpoints(Database("sqlite+aiosqlite:///:memory:"))
        >>> endpoints.secret_grace
        datetime.timedelta(days=1)
    """

    def __init__(
        self,
        database: Database,
        *,
        allow_http: bool = False,
        allow_private: bool = False,
        secret_grace: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.allow_http = allow_http
        self.allow_private = allow_private
        self.secret_grace = secret_grace
        self.clock = clock

    @classmethod
    def of_settings(
        cls, database: Database, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> WebhookEndpoints:
        """The operations as ``settings`` configure them (``webhook_allow_http``,
        ``webhook_allow_private_addresses``, ``webhook_secret_grace``)."""
        return cls(
            database,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private_addresses,
            secret_grace=timedelta(seconds=settings.webhook_secret_grace),
            clock=clock,
        )

    def _check_url(self, url: str) -> str:
        return check_url(url, allow_http=self.allow_http, allow_private=self.allow_private)

    async def create(
        self, tenant_id: uuid.UUID, url: str, event_types: Sequence[str], description: str = ""
    ) -> tuple[WebhookEndpoint, str]:
        """A new, enabled endpoint of the tenant.

        Returns:
            The endpoint and its signing secret: show it once, it is never shown again.

        Raises:
            WebhookUrlRefusedError: the URL is refused (400).
            UnknownEventTypeError: an event type is unknown (400).
        """
        url = self._check_url(url)
        types = check_event_types(event_types)
        now, secret = self.clock(), new_secret()
        row = WebhookEndpointRow(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            url=url,
            description=description,
            enabled=True,
            disabled_reason=None,
            secret=secret,
            previous_secret=None,
            previous_secret_until=None,
            failing_since=None,
            version=1,
            created_at=now,
            updated_at=now,
        )
        async with self.database.writing() as session:
            session.add(row)
            await session.flush()  # the endpoint before the rows that refer to it
            _subscribe(session, row, types)
            await session.commit()
        return WebhookEndpoint.of(row, types), secret

    async def list(
        self,
        tenant_id: uuid.UUID,
        *,
        after: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 20,
    ) -> Page[WebhookEndpoint]:
        """One page of the tenant's endpoints, oldest first (by creation time, then id),
        starting after the position ``after``."""
        query = select(WebhookEndpointRow).where(WebhookEndpointRow.tenant_id == tenant_id)
        if after is not None:
            at, last = after
            query = query.where(
                or_(
                    WebhookEndpointRow.created_at > at,
                    and_(WebhookEndpointRow.created_at == at, WebhookEndpointRow.id > last),
                )
            )
        query = query.order_by(WebhookEndpointRow.created_at, WebhookEndpointRow.id)
        async with self.database.reading() as session:
            rows = list((await session.scalars(query.limit(limit + 1))).all())
            types = await _event_types(session, [row.id for row in rows[:limit]])
        items = [WebhookEndpoint.of(row, types.get(row.id, ())) for row in rows[:limit]]
        return Page(items, _next_after(rows, limit))

    async def get(self, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        """The tenant's endpoint.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
        """
        async with self.database.reading() as session:
            row = await _endpoint_row(session, tenant_id, endpoint_id)
            types = await _event_types(session, [row.id])
        return WebhookEndpoint.of(row, types.get(row.id, ()))

    async def update(
        self,
        tenant_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        change: EndpointChange,
        *,
        expected_version: frozenset[int] | None = None,
    ) -> WebhookEndpoint:
        """Change the tenant's endpoint; its version goes up by one.

        Args:
            tenant_id: the tenant.
            endpoint_id: the endpoint.
            change: what to change.
            expected_version: the versions the change may start from (``If-Match``);
                ``None``: any.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
            PreconditionFailedError: it is at another version than expected (412).
            WebhookUrlRefusedError: the new URL is refused (400).
            UnknownEventTypeError: a new event type is unknown (400).
        """
        url = None if change.url is None else self._check_url(change.url)
        types = None if change.event_types is None else check_event_types(change.event_types)
        async with self.database.writing() as session:
            row = await _endpoint_row(session, tenant_id, endpoint_id, lock=True)
            _check_version(row, expected_version)
            if url is not None:
                row.url = url
            if change.description is not None:
                row.description = change.description
            if change.enabled is True:
                row.enabled, row.disabled_reason, row.failing_since = True, None, None
            elif change.enabled is False and row.enabled:
                row.enabled, row.disabled_reason = False, DISABLED_BY_REQUEST
            if types is not None:
                await session.execute(
                    delete(WebhookSubscriptionRow).where(
                        WebhookSubscriptionRow.endpoint_id == row.id
                    )
                )
                _subscribe(session, row, types)
            else:
                types = tuple((await _event_types(session, [row.id])).get(row.id, ()))
            row.version += 1
            row.updated_at = self.clock()
            await session.commit()
        return WebhookEndpoint.of(row, types)

    async def delete(self, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        """Delete the tenant's endpoint, its subscriptions and its deliveries (the
        foreign keys cascade; SQLite enforces them on every connection).

        Returns:
            The endpoint as it was.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
        """
        async with self.database.writing() as session:
            row = await _endpoint_row(session, tenant_id, endpoint_id, lock=True)
            types = await _event_types(session, [row.id])
            gone = WebhookEndpoint.of(row, types.get(row.id, ()))
            await session.execute(
                delete(WebhookEndpointRow).where(
                    WebhookEndpointRow.tenant_id == tenant_id, WebhookEndpointRow.id == row.id
                )
            )
            await session.commit()
        return gone

    async def rotate_secret(
        self,
        tenant_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        *,
        expected_version: frozenset[int] | None = None,
    ) -> tuple[WebhookEndpoint, str]:
        """Give the endpoint a new secret; the current one becomes the previous secret,
        which still signs until the grace period (`secret_grace`) has passed.

        Returns:
            The endpoint and its new secret: show it once, it is never shown again.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
            PreconditionFailedError: it is at another version than expected (412).
        """
        secret = new_secret()
        async with self.database.writing() as session:
            row = await _endpoint_row(session, tenant_id, endpoint_id, lock=True)
            _check_version(row, expected_version)
            now = self.clock()
            if self.secret_grace > timedelta(0):
                row.previous_secret = row.secret
                row.previous_secret_until = now + self.secret_grace
            else:
                row.previous_secret = row.previous_secret_until = None
            row.secret = secret
            row.version += 1
            row.updated_at = now
            types = await _event_types(session, [row.id])
            await session.commit()
        return WebhookEndpoint.of(row, types.get(row.id, ())), secret

    async def deliveries(
        self,
        tenant_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        *,
        status: str | None = None,
        before: tuple[datetime, uuid.UUID] | None = None,
        limit: int = 20,
    ) -> Page[WebhookDelivery]:
        """One page of the endpoint's deliveries, newest first (by creation time, then
        id), starting before the position ``before``; only those of ``status`` if given.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
        """
        delivery = WebhookDeliveryRow
        query = (
            select(delivery, WebhookEventRow.type)
            .join(WebhookEventRow, WebhookEventRow.id == delivery.event_id)
            .where(delivery.tenant_id == tenant_id, delivery.endpoint_id == endpoint_id)
        )
        if status is not None:
            query = query.where(delivery.status == status)
        if before is not None:
            at, last = before
            query = query.where(
                or_(delivery.created_at < at, and_(delivery.created_at == at, delivery.id < last))
            )
        query = query.order_by(delivery.created_at.desc(), delivery.id.desc()).limit(limit + 1)
        async with self.database.reading() as session:
            await _endpoint_row(session, tenant_id, endpoint_id)
            found = (await session.execute(query)).all()
        rows = [row for row, _ in found]
        items = [WebhookDelivery.of(row, event_type) for row, event_type in found[:limit]]
        return Page(items, _next_after(rows, limit))

    async def delivery(
        self, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery:
        """One delivery of the tenant's endpoint.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
            WebhookDeliveryNotFoundError: the endpoint has no such delivery (404).
        """
        async with self.database.reading() as session:
            await _endpoint_row(session, tenant_id, endpoint_id)
            found = (
                await session.execute(_delivery_query(tenant_id, endpoint_id, delivery_id))
            ).first()
        if found is None:
            raise WebhookDeliveryNotFoundError(delivery_id)
        row, event_type = found
        return WebhookDelivery.of(row, event_type)

    async def resend(
        self,
        tenant_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        delivery_id: uuid.UUID,
        *,
        expected_version: frozenset[int] | None = None,
    ) -> int:
        """Queue one delivery of the endpoint again, whatever its status: pending, due
        now, attempts counted from zero, unclaimed.

        Returns:
            How many deliveries were queued (1).

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
            WebhookDeliveryNotFoundError: the endpoint has no such delivery (404).
            PreconditionFailedError: the endpoint is at another version than expected.
            WebhookEndpointDisabledError: the endpoint is disabled (409).
        """
        chosen = WebhookDeliveryRow.id == delivery_id
        queued = await self._requeue(tenant_id, endpoint_id, chosen, expected_version)
        if queued == 0:
            raise WebhookDeliveryNotFoundError(delivery_id)
        return queued

    async def resend_failed(
        self,
        tenant_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        since: datetime,
        *,
        expected_version: frozenset[int] | None = None,
    ) -> int:
        """Queue again every failed delivery of the endpoint whose event was written at
        or after ``since``: pending, due now, attempts counted from zero, unclaimed.

        Returns:
            How many deliveries were queued.

        Raises:
            WebhookEndpointNotFoundError: the tenant has no such endpoint (404).
            PreconditionFailedError: the endpoint is at another version than expected.
            WebhookEndpointDisabledError: the endpoint is disabled (409).
        """
        chosen = and_(
            WebhookDeliveryRow.status == DeliveryStatus.FAILED,
            WebhookDeliveryRow.created_at >= since,
        )
        return await self._requeue(tenant_id, endpoint_id, chosen, expected_version)

    async def _requeue(
        self,
        tenant_id: uuid.UUID,
        endpoint_id: uuid.UUID,
        chosen: Any,  # a SQL condition on webhook_deliveries
        expected_version: frozenset[int] | None,
    ) -> int:
        async with self.database.writing() as session:
            row = await _endpoint_row(session, tenant_id, endpoint_id, lock=True)
            _check_version(row, expected_version)
            if not row.enabled:
                raise WebhookEndpointDisabledError(endpoint_id, row.disabled_reason)
            requeue = (
                update(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.tenant_id == tenant_id,
                    WebhookDeliveryRow.endpoint_id == endpoint_id,
                    chosen,
                )
                .values(
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    next_attempt_at=self.clock(),
                    claimed_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            result = await session.execute(requeue)
            queued = _rowcount(result)
            await session.commit()
        return queued


def _subscribe(session: AsyncSession, row: WebhookEndpointRow, event_types: Iterable[str]) -> None:
    session.add_all(
        WebhookSubscriptionRow(endpoint_id=row.id, event_type=event_type, tenant_id=row.tenant_id)
        for event_type in event_types
    )


async def _endpoint_row(
    session: AsyncSession, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpointRow:
    query = select(WebhookEndpointRow).where(
        WebhookEndpointRow.tenant_id == tenant_id, WebhookEndpointRow.id == endpoint_id
    )
    if lock:  # PostgreSQL: a concurrent change waits for this one (SQLite: one writer)
        query = query.with_for_update()
    row = (await session.scalars(query)).first()
    if row is None:
        raise WebhookEndpointNotFoundError(endpoint_id)
    return row


async def _event_types(
    session: AsyncSession, endpoint_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    if not endpoint_ids:
        return {}
    query = select(WebhookSubscriptionRow.endpoint_id, WebhookSubscriptionRow.event_type).where(
        WebhookSubscriptionRow.endpoint_id.in_(endpoint_ids)
    )
    found: dict[uuid.UUID, list[str]] = {}
    for endpoint_id, event_type in (await session.execute(query)).all():
        found.setdefault(endpoint_id, []).append(event_type)
    return found


def _delivery_query(
    tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> Select[WebhookDeliveryRow, str]:
    return (
        select(WebhookDeliveryRow, WebhookEventRow.type)
        .join(WebhookEventRow, WebhookEventRow.id == WebhookDeliveryRow.event_id)
        .where(
            WebhookDeliveryRow.tenant_id == tenant_id,
            WebhookDeliveryRow.endpoint_id == endpoint_id,
            WebhookDeliveryRow.id == delivery_id,
        )
    )


def _check_version(row: WebhookEndpointRow, expected: frozenset[int] | None) -> None:
    if expected is not None and row.version not in expected:
        tags = ", ".join(f'"{version}"' for version in sorted(expected)) or "no strong tag"
        raise PreconditionFailedError("webhook endpoint", tags, row.version)


def _next_after(
    rows: Sequence[WebhookEndpointRow | WebhookDeliveryRow], limit: int
) -> tuple[datetime, uuid.UUID] | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return (last.created_at, last.id)


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    count: int = result.rowcount
    return count
