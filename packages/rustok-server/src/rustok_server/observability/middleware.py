"""`ObservabilityMiddleware`: what every request leaves behind, an access record and its
HTTP metrics, measured once."""

from __future__ import annotations

import logging
import time
from typing import Final

from prometheus_client.metrics import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rustok_server.observability.logs import access_logger, done_serving, serving
from rustok_server.observability.metrics import ServerMetrics

__all__ = ["UNMATCHED_ROUTE", "ObservabilityMiddleware", "route_template"]

UNMATCHED_ROUTE: Final = "<unmatched>"
"""The ``route`` label of a request that matched no route (a 404 for an unknown path)."""
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The path template of the route that served ``scope`` (never the raw path)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Pure ASGI middleware, outermost: marks the request for the log filter, then records
    one ``rustok.access`` log record and the HTTP metrics once the response is sent.

    The status is that of the response actually sent (problem responses included); an error
    that escapes before any response counts as 500 and is re-raised. Method labels outside
    the standard methods become ``OTHER``, so a client cannot grow the label set.

    Args:
        app: the inner application.
        metrics: where HTTP figures go; ``None`` records none.
        access_log: write the access record (``RUSTOK_ACCESS_LOG``); it is most of what this
            middleware costs a request (formatting a log record takes about 10 us).
    """

    def __init__(
        self, app: ASGIApp, metrics: ServerMetrics | None = None, *, access_log: bool = True
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        # Label children by (method, route, status): labels() costs a lock and a dict build.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = serving(scope)
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, status, elapsed)
            done_serving(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        if self.metrics is not None:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            key = (method, route_template(scope), status)
            children = self._children.get(key)
            if children is None:
                children = (
                    self.metrics.http_requests.labels(method, key[1], str(status)),
                    self.metrics.http_duration.labels(method, key[1]),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(elapsed)
        if self.access_log and access_logger.isEnabledFor(logging.INFO):
            duration_ms = round(elapsed * 1000, 3)
            access_logger.info(
                "%s %s %d %.1f ms",
                scope["method"],
                scope["path"],
                status,
                duration_ms,
                extra={"status": status, "duration_ms": duration_ms},
            )
