"""The webhook API, ``/api/webhooks``: a tenant's endpoints and their deliveries.

Each handler adapts HTTP to `rustok_server.webhooks.endpoints.WebhookEndpoints`, where
the rules live: it parses the request (form only: types and lengths, a 400 per bad
field), calls the operation for the request's tenant, and renders the answer. Reading
needs ``webhooks:read``; everything else ``webhooks:write``.

- ``POST /endpoints`` makes an endpoint and answers it with its signing ``secret``
  (201, ``Location``); ``POST /endpoints/{endpoint_id}/rotate-secret`` answers the new
  one. No other answer ever holds a secret.
- An endpoint's answers carry its version as ``ETag``; a change (``PATCH``, the
  rotation, a re-send) sent with ``If-Match`` applies only while the endpoint is at that
  version (412 otherwise).
- ``GET /endpoints/{endpoint_id}/deliveries`` lists its deliveries newest first; the
  re-send routes make deliveries pending again and answer how many were queued.
- Another tenant's endpoint or delivery is a 404, exactly like a missing one.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from rustok_core.text import TEXT_PATTERN, check_holdable
from rustok_server.auth.guard import require
from rustok_server.auth.scopes import Scope
from rustok_server.context import ServerContext
from rustok_server.http.entity_routes import PageOut, documented, json_response
from rustok_server.http.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Cursor
from rustok_server.http.preconditions import IfMatch, etag, expected_version
from rustok_server.tenancy.resolution import CurrentTenant
from rustok_server.webhooks.endpoints import (
    EndpointChange,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpoints,
)
from rustok_server.webhooks.safety import MAX_URL_LENGTH

__all__ = [
    "DeliveryOut",
    "DeliveryPageOut",
    "EndpointIn",
    "EndpointOut",
    "EndpointPageOut",
    "EndpointPatch",
    "EndpointWithSecretOut",
    "QueuedOut",
    "ResendFailedIn",
    "router",
]

PREFIX: Final = "/api/webhooks"
ENDPOINTS: Final = f"{PREFIX}/endpoints"

router: Final[APIRouter] = APIRouter(prefix=PREFIX, tags=["webhooks"])
"""The webhook routes (``/api/webhooks``)."""
READ = require(Scope.WEBHOOKS_READ)
WRITE = require(Scope.WEBHOOKS_WRITE)
DeliveryStatusName = Literal["pending", "delivered", "failed"]
_Input = ConfigDict(extra="forbid")
_Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where events are sent: an absolute https URL (http only where the "
        "server allows it); no credentials, no private or loopback address.",
        examples=["https://hooks.example.com/receive"],
    ),
]
_EventTypes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(
        min_length=1,
        max_length=64,
        description="The event types to receive (node.created, order.paid, ...), or * for "
        "every type.",
        examples=[["order.paid", "order.cancelled"]],
    ),
]
_Description = Annotated[
    str,
    Field(max_length=500, json_schema_extra={"pattern": TEXT_PATTERN}),
    AfterValidator(check_holdable),
]


# RFC 3339's date-time: the one form of a time the API reads (no Unix seconds, no date alone).
_DATE_TIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})"
)


def _date_time(value: object) -> datetime:
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 date-time with an offset, such as 2026-12-07T10:00:00Z"
        )
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):  # no such day, or a time that does not exist in UTC
        raise ValueError("must be a date-time that exists, in UTC too") from None


class EndpointIn(BaseModel):
    """A new webhook endpoint."""

    model_config = _Input
    url: _Url
    event_types: _EventTypes
    description: _Description = ""


class EndpointPatch(BaseModel):
    """What to change of an endpoint; absent (or null) fields stay."""

    model_config = _Input
    url: _Url | None = None
    event_types: _EventTypes | None = None
    description: _Description | None = None
    enabled: bool | None = Field(
        default=None,
        description="true enables it again (clearing disabled_reason and failing_since); "
        "false disables it.",
    )


class EndpointOut(BaseModel):
    """A webhook endpoint, never its secret."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why it is disabled, when it is.")
    failing_since: datetime | None = Field(
        description="When its current run of failed deliveries began; null while it succeeds."
    )
    previous_secret_until: datetime | None = Field(
        description="Until when the secret before the last rotation still signs too."
    )
    version: int = Field(description="Plus one per change; also sent as the ETag.")
    created_at: datetime
    updated_at: datetime


class EndpointWithSecretOut(EndpointOut):
    """An endpoint with its signing secret, shown in this answer only."""

    secret: str = Field(
        description="The signing secret (whsec_...), shown this once: store it now."
    )


class EndpointPageOut(PageOut[EndpointOut]):
    """One page of endpoints, oldest first; pass ``next_cursor`` as ``cursor`` for the next."""


class DeliveryOut(BaseModel):
    """One event for one endpoint: its state and its last attempt."""

    id: uuid.UUID
    event_id: uuid.UUID = Field(description="The webhook-id a receiver deduplicates by.")
    endpoint_id: uuid.UUID
    event_type: str
    status: DeliveryStatusName
    attempts: int = Field(description="Attempts since it was written or last re-sent.")
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    response_excerpt: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPageOut(PageOut[DeliveryOut]):
    """One page of deliveries, newest first; pass ``next_cursor`` as ``cursor`` for the
    next (older) page."""


class ResendFailedIn(BaseModel):
    """Which failed deliveries to send again."""

    model_config = _Input
    since: Annotated[AwareDatetime, BeforeValidator(_date_time)] = Field(
        description="Every failed delivery of an event written at or after this time."
    )


class QueuedOut(BaseModel):
    """What was queued to be sent again."""

    queued: int = Field(description="How many deliveries are pending again, due now.")


async def _endpoints(request: Request) -> WebhookEndpoints:
    context: ServerContext = request.app.state.context
    return WebhookEndpoints.of_settings(context.database, context.settings)


Endpoints = Annotated[WebhookEndpoints, Depends(_endpoints)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
CursorText = Annotated[str | None, Query(max_length=200)]


def _endpoint_data(endpoint: WebhookEndpoint) -> dict[str, object]:
    return EndpointOut(
        id=endpoint.id,
        tenant_id=endpoint.tenant_id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        previous_secret_until=endpoint.previous_secret_until,
        version=endpoint.version,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    ).model_dump(mode="json")


def _delivery_data(delivery: WebhookDelivery) -> dict[str, object]:
    return DeliveryOut.model_validate(delivery, from_attributes=True).model_dump(mode="json")


def _endpoint_response(
    endpoint: WebhookEndpoint,
    *,
    secret: str | None = None,
    status_code: int = 200,
    location: str | None = None,
) -> Response:
    data = _endpoint_data(endpoint)
    if secret is not None:
        data["secret"] = secret
    headers = {"ETag": etag(endpoint.version)}
    if location is not None:
        headers["Location"] = location
    return json_response(data, status_code=status_code, headers=headers)


_ENDPOINT_OK = "The endpoint; its version is the ETag."
_CHANGE = documented(EndpointOut, _ENDPOINT_OK, 400, 404, 412)
_QUEUED = documented(QueuedOut, "How many deliveries were queued to be sent.", 400, 404, 409, 412)


@router.post(
    "/endpoints",
    dependencies=[WRITE],
    status_code=201,
    summary="Create a webhook endpoint",
    responses=documented(
        EndpointWithSecretOut,
        "The new endpoint and its secret, shown this once; Location names it.",
        400,
        status=201,
    ),
)
async def create_webhook_endpoint(
    body: EndpointIn, tenant: CurrentTenant, endpoints: Endpoints
) -> Response:
    """A new, enabled endpoint receiving the event types named. The answer holds its
    signing ``secret``: no other answer will. A refused URL or an unknown event type is
    a 400 naming the field."""
    endpoint, secret = await endpoints.create(
        tenant.id, body.url, body.event_types, body.description
    )
    location = f"{ENDPOINTS}/{endpoint.id}"
    return _endpoint_response(endpoint, secret=secret, status_code=201, location=location)


@router.get(
    "/endpoints",
    dependencies=[READ],
    summary="List webhook endpoints",
    responses=documented(EndpointPageOut, "One page of endpoints.", 400),
)
async def list_webhook_endpoints(
    tenant: CurrentTenant,
    endpoints: Endpoints,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: CursorText = None,
) -> Response:
    """One page of the tenant's endpoints, oldest first (by creation time, then id)."""
    after = Cursor.decode(cursor).position if cursor is not None else None
    page = await endpoints.list(tenant.id, after=after, limit=limit)
    items = [_endpoint_data(endpoint) for endpoint in page.items]
    return json_response({"items": items, "next_cursor": Cursor.of(page.next_after)})


@router.get(
    "/endpoints/{endpoint_id}",
    dependencies=[READ],
    summary="Get a webhook endpoint",
    responses=documented(EndpointOut, _ENDPOINT_OK, 400, 404),
)
async def get_webhook_endpoint(
    endpoint_id: uuid.UUID, tenant: CurrentTenant, endpoints: Endpoints
) -> Response:
    """The endpoint: its URL, event types, whether it is enabled and if not why."""
    return _endpoint_response(await endpoints.get(tenant.id, endpoint_id))


@router.patch(
    "/endpoints/{endpoint_id}",
    dependencies=[WRITE],
    summary="Change a webhook endpoint",
    responses=_CHANGE,
)
async def update_webhook_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointPatch,
    tenant: CurrentTenant,
    endpoints: Endpoints,
    if_match: IfMatch = None,
) -> Response:
    """Change its URL, event types (replacing them) or description, or enable or
    disable it. Enabling clears ``disabled_reason`` and ``failing_since``."""
    change = EndpointChange(
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    expected = expected_version(if_match)
    endpoint = await endpoints.update(tenant.id, endpoint_id, change, expected_version=expected)
    return _endpoint_response(endpoint)


@router.delete(
    "/endpoints/{endpoint_id}",
    dependencies=[WRITE],
    summary="Delete a webhook endpoint",
    responses=documented(EndpointOut, "The endpoint as it was, now deleted.", 400, 404),
)
async def delete_webhook_endpoint(
    endpoint_id: uuid.UUID, tenant: CurrentTenant, endpoints: Endpoints
) -> Response:
    """Delete the endpoint with its deliveries; nothing more is sent to it. Answers the
    endpoint as it was."""
    endpoint = await endpoints.delete(tenant.id, endpoint_id)
    return json_response(_endpoint_data(endpoint))


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    dependencies=[WRITE],
    summary="Rotate a webhook endpoint's secret",
    responses=documented(
        EndpointWithSecretOut, "The endpoint and its new secret, shown this once.", 400, 404, 412
    ),
)
async def rotate_webhook_secret(
    endpoint_id: uuid.UUID,
    tenant: CurrentTenant,
    endpoints: Endpoints,
    if_match: IfMatch = None,
) -> Response:
    """A new signing secret, shown in this answer only. The previous one still signs
    (beside the new one) until ``previous_secret_until``, so that receivers can switch."""
    expected = expected_version(if_match)
    endpoint, secret = await endpoints.rotate_secret(
        tenant.id, endpoint_id, expected_version=expected
    )
    return _endpoint_response(endpoint, secret=secret)


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    dependencies=[READ],
    summary="List a webhook endpoint's deliveries",
    responses=documented(DeliveryPageOut, "One page of deliveries, newest first.", 400, 404),
)
async def list_webhook_deliveries(
    endpoint_id: uuid.UUID,
    tenant: CurrentTenant,
    endpoints: Endpoints,
    status: Annotated[
        DeliveryStatusName | None, Query(description="Only deliveries in this status.")
    ] = None,
    limit: Limit = DEFAULT_PAGE_SIZE,
    cursor: CursorText = None,
) -> Response:
    """One page of the endpoint's deliveries, newest first (by creation time, then id):
    status, attempts, the last attempt's status code, error and response excerpt."""
    before = Cursor.decode(cursor).position if cursor is not None else None
    page = await endpoints.deliveries(
        tenant.id, endpoint_id, status=status, before=before, limit=limit
    )
    items = [_delivery_data(delivery) for delivery in page.items]
    return json_response({"items": items, "next_cursor": Cursor.of(page.next_after)})


@router.get(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}",
    dependencies=[READ],
    summary="Get a webhook delivery",
    responses=documented(DeliveryOut, "The delivery.", 400, 404),
)
async def get_webhook_delivery(
    endpoint_id: uuid.UUID, delivery_id: uuid.UUID, tenant: CurrentTenant, endpoints: Endpoints
) -> Response:
    """One delivery of the endpoint."""
    delivery = await endpoints.delivery(tenant.id, endpoint_id, delivery_id)
    return json_response(_delivery_data(delivery))


@router.post(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}/resend",
    dependencies=[WRITE],
    summary="Send a webhook delivery again",
    responses=_QUEUED,
)
async def resend_webhook_delivery(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    tenant: CurrentTenant,
    endpoints: Endpoints,
    if_match: IfMatch = None,
) -> Response:
    """Queue the delivery again, whatever its status: pending, due now, its attempts
    counted from zero. A disabled endpoint's deliveries are not re-sent (409): enable it
    first. ``If-Match`` names the endpoint's version."""
    expected = expected_version(if_match)
    queued = await endpoints.resend(tenant.id, endpoint_id, delivery_id, expected_version=expected)
    return json_response({"queued": queued})


@router.post(
    "/endpoints/{endpoint_id}/resend-failed",
    dependencies=[WRITE],
    summary="Send a webhook endpoint's failed deliveries again",
    responses=_QUEUED,
)
async def resend_failed_webhook_deliveries(
    endpoint_id: uuid.UUID,
    body: ResendFailedIn,
    tenant: CurrentTenant,
    endpoints: Endpoints,
    if_match: IfMatch = None,
) -> Response:
    """Queue again every failed delivery of the endpoint whose event was written at or
    after ``since``: pending, due now, attempts counted from zero. Answers how many. A
    disabled endpoint's deliveries are not re-sent (409): enable it first."""
    expected = expected_version(if_match)
    queued = await endpoints.resend_failed(
        tenant.id, endpoint_id, body.since, expected_version=expected
    )
    return json_response({"queued": queued})
