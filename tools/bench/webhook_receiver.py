"""A webhook receiver that does nothing but answer: reads the body, answers 204. The
fast local receiver of bench_webhooks (run by uvicorn with the options ``serve`` uses)."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send


async def _receiver(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def app() -> object:
    """The receiver (a factory, for ``uvicorn --factory``)."""
    return _receiver
