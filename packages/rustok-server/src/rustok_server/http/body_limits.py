"""Request bodies: at most ``RUSTOK_MAX_BODY_BYTES`` (1 MiB by default), JSON in UTF-8.

`BodyLimitMiddleware` refuses a body while it is being read, chunk by chunk, so a huge
body never sits in memory: a ``Content-Length`` above the limit is a 413 before a byte is
read, and a body that grows past it (chunked, or lying about its length) is a 413 as soon
as the chunk that crosses the limit arrives. A JSON body must be UTF-8 (RFC 8259,
section 8.1): invalid UTF-8 or a NUL byte (how UTF-16 and UTF-32 look byte by byte) is a
400 ``MALFORMED_BODY``; without this check the JSON parser would guess the encoding.
"""

from __future__ import annotations

import codecs
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rustok_server.errors import MalformedBodyError, PayloadTooLargeError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimitMiddleware"]

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""The default most bytes of a request body: 1 MiB."""


def _header(scope: Scope, key: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == key:
            return bytes(value)
    return None


class BodyLimitMiddleware:
    """Pure ASGI middleware: bodies of at most ``max_bytes``, JSON bodies in UTF-8.

    The errors are raised from ``receive`` (inside the route that reads the body) or
    before the app is called (a declared length above the limit); the problem layer
    answers them as 413 ``PAYLOAD_TOO_LARGE`` and 400 ``MALFORMED_BODY``.

    Args:
        app: the ASGI app.
        max_bytes: the most bytes a request body may have.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            raise PayloadTooLargeError(self.max_bytes)
        content_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        is_json = content_type == b"application/json" or content_type.endswith(b"+json")
        decoder = codecs.getincrementaldecoder("utf-8")() if is_json else None
        limit = self.max_bytes
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk: bytes = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise PayloadTooLargeError(limit)
                if decoder is not None:
                    if b"\x00" in chunk:
                        raise MalformedBodyError("not UTF-8 (it has a NUL byte)")
                    try:
                        decoder.decode(chunk, final=not message.get("more_body", False))
                    except UnicodeDecodeError:
                        raise MalformedBodyError("not UTF-8") from None
            return message

        await self.app(scope, limited_receive, send)
