"""The outbox: an event written with every change, in the change's own transaction.

Every creation, update and transition of a content node or an order writes one row of
``webhook_events`` (its type ``<entity>.<action>``, such as ``order.paid``, and the body
that is sent) and one pending row of ``webhook_deliveries`` per enabled endpoint of the
tenant that wants that type, beside the entity's row and its history row. A change that
rolls back emits nothing; a change that commits has its event and its deliveries, which
the deliverer (`rustok_server.webhooks.delivery`) sends afterwards, at least once.

The body is what a receiver gets, the Standard Webhooks payload shape::

    {"type": "order.paid", "timestamp": "2026-12-07T10:00:00+00:00",
     "data": {"entity": {...the order as the API renders it...},
              "transition": {"trigger": "pay", "from_state": "Confirmed", ...} or null,
              "version": 3}}

``version`` is the entity's version after the change: a receiver orders the events of
one entity by it and ignores one it has already seen.

With tracing on, the event keeps the ``traceparent`` of the request that made the change:
its deliveries continue that trace, and so does the receiver's, with the ``traceparent``
it gets.

On PostgreSQL the event and its deliveries are one statement (one round trip); on
SQLite two, on the writer connection the change holds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from rustok_core.state_machine import Entity, State, TransitionRecord
from rustok_server.db.statements import Statements
from rustok_server.observability.tracing import current_traceparent

__all__ = [
    "ALL_EVENTS",
    "CREATED",
    "EVENT_TYPES",
    "NODE_EVENTS",
    "ORDER_EVENTS",
    "Outbox",
    "event_body",
]

ALL_EVENTS: Final = "*"
"""The subscription to every event type."""
CREATED: Final = "created"
"""The action of an entity's creation (``node.created``, ``order.created``)."""

_EVENT_COLUMNS: Final = "id, tenant_id, type, entity_id, version, body, traceparent, created_at"
_DELIVERY_COLUMNS: Final = (
    "id, tenant_id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at"
)
# The enabled endpoints of the tenant that want the type, each once (a subscription to
# the type and to every type names it twice).
_SUBSCRIBED: Final = (
    "SELECT DISTINCT s.endpoint_id FROM webhook_subscriptions s"
    " JOIN webhook_endpoints e ON e.id = s.endpoint_id"
    " WHERE s.tenant_id = {tenant} AND s.event_type IN ({type}, '*') AND e.enabled"
)
_SQLITE_EVENT: Final = (
    f"INSERT INTO webhook_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_DELIVERIES: Final = (
    f"INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS})"
    " SELECT lower(hex(randomblob(16))), ?, ?, chosen.endpoint_id, 'pending', 0, ?, ?"
    f" FROM ({_SUBSCRIBED.format(tenant='?', type='?')}) AS chosen"
)
_POSTGRES_EVENT: Final = (
    f"WITH event AS (INSERT INTO webhook_events ({_EVENT_COLUMNS})"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, tenant_id, created_at)"
    f" INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS})"
    " SELECT gen_random_uuid(), event.tenant_id, event.id, chosen.endpoint_id, 'pending', 0,"
    " event.created_at, event.created_at"
    f" FROM event, ({_SUBSCRIBED.format(tenant='$2::uuid', type='$3::varchar')}) AS chosen"
)


def event_body(
    event_type: str,
    at: datetime,
    entity: Entity[State],
    record: TransitionRecord | None,
) -> str:
    """The JSON body of an event, as sent and as signed."""
    data = {
        "entity": entity.to_data(),
        "transition": None if record is None else record.to_data(),
        "version": entity.version,
    }
    return json.dumps(
        {"type": event_type, "timestamp": at.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


class Outbox:
    """Writes the events of one kind of entity.

    Args:
        noun: the entity's name in event types (``"order"``).
        actions: each transition trigger's action in event types (``{"pay": "paid"}``);
            a trigger not named is its own action.

    Examples:
        >>> Outbox("order", {"pay": "paid"}).event_type("pay")
        'order.paid'
    """

    __slots__ = ("actions", "noun")

    def __init__(self, noun: str, actions: Mapping[str, str]) -> None:
        self.noun: str = noun
        self.actions: Mapping[str, str] = dict(actions)

    def event_type(self, trigger: str | None) -> str:
        """The event type of a transition's ``trigger`` (``None``: the creation)."""
        action = CREATED if trigger is None else self.actions.get(trigger, trigger)
        return f"{self.noun}.{action}"

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every event type this entity emits: its creation, then each named action."""
        return tuple(dict.fromkeys(f"{self.noun}.{a}" for a in (CREATED, *self.actions.values())))

    async def write(
        self,
        statements: Statements,
        entity: Entity[State],
        record: TransitionRecord | None,
        at: datetime,
    ) -> None:
        """Write the event of ``entity``'s change at ``at`` (``record``: its transition;
        ``None``: its creation) and its pending deliveries, in ``statements``'
        transaction."""
        event_type = self.event_type(None if record is None else record.trigger)
        body = event_body(event_type, at, entity, record)
        event_id, tenant_id = uuid.uuid4(), entity.tenant_id
        traceparent = current_traceparent()
        event = [event_id, tenant_id, event_type, entity.id, entity.version, body, traceparent, at]
        if statements.dialect == "postgresql":
            await statements.execute(_POSTGRES_EVENT, event)
            return
        await statements.execute(_SQLITE_EVENT, event)
        deliveries = [tenant_id, event_id, at, at, tenant_id, event_type]
        await statements.execute(_SQLITE_DELIVERIES, deliveries)


# The catalogue: what each entity's repository writes, and so what an endpoint may ask for.
NODE_EVENTS: Final = Outbox(
    "node",
    {"update": "updated", "publish": "published", "archive": "archived", "restore": "restored"},
)
"""The events of content nodes (`rustok_server.content.repository`): ``node.created``,
``node.updated``, ``node.published``, ``node.archived``, ``node.restored``."""
ORDER_EVENTS: Final = Outbox(
    "order",
    {
        "confirm": "confirmed",
        "pay": "paid",
        "ship": "shipped",
        "deliver": "delivered",
        "cancel": "cancelled",
        "cancel_with_refund": "cancelled",
    },
)
"""The events of orders (`rustok_server.commerce.repository`): ``order.created``,
``order.confirmed``, ``order.paid``, ``order.shipped``, ``order.delivered``,
``order.cancelled`` (with or without a refund: the transition record says which)."""
EVENT_TYPES: Final[tuple[str, ...]] = (*NODE_EVENTS.event_types, *ORDER_EVENTS.event_types)
"""Every event type an endpoint may ask for (besides ``*``, every type): those of content
nodes, then those of orders."""
