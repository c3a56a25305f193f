"""``GET /metrics`` on the server's own port, for an admin credential.

The same figures as the metrics port (``serve --metrics-port``), which needs no credential
and is bound to loopback by default; this route lets a Prometheus that holds an admin key
scrape the API port itself. It is not part of the API's OpenAPI document: it answers
Prometheus's text format, not JSON.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from rustok_server.auth import ADMIN, require
from rustok_server.observability.metrics import ServerMetrics, exposition

__all__ = ["router"]

router: Final[APIRouter] = APIRouter()
"""``GET /metrics``: the Prometheus exposition, for an admin key."""


@router.get("/metrics", dependencies=[require(ADMIN)], include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every metric in Prometheus's text format (all workers' under ``--workers``)."""
    server_metrics: ServerMetrics = request.app.state.metrics
    body, content_type = exposition(server_metrics)
    return Response(body, media_type=content_type)
