"""Request bodies: at most ``RUSTOK_MAX_BODY_BYTES`` (1 MiB by default), JSON in UTF-8,
of a bounded shape.

`BodyLimitMiddleware` refuses a body while it is being read, chunk by chunk, so a huge
body never sits in memory: a ``Content-Length`` above the limit is a 413 before a byte is
read, and a body that grows past it (chunked, or lying about its length) is a 413 as soon
as the chunk that crosses the limit arrives. A JSON body must be UTF-8 (RFC 8259,
section 8.1): invalid UTF-8 or a NUL byte (how UTF-16 and UTF-32 look byte by byte) is a
400 ``MALFORMED_BODY``; without this check the JSON parser would guess the encoding.

A JSON body's shape is bounded before it is parsed: at most ``RUSTOK_MAX_JSON_DEPTH``
levels of nested arrays and objects and ``RUSTOK_MAX_JSON_KEYS`` object members in all
(`check_json_shape`), else a 400 ``MALFORMED_BODY``. The check runs at C speed on the
whole body once its last chunk has arrived (strings are blanked out with one regular
expression, members counted by their colons, depth found by removing innermost pairs of
brackets, one pass per level): a hostile body costs milliseconds here, where parsing and
validating 80,000 members cost more than a second of the event loop.
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rustok_server.errors import MalformedBodyError, PayloadTooLargeError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_JSON_DEPTH",
    "DEFAULT_MAX_JSON_KEYS",
    "BodyLimitMiddleware",
    "check_json_shape",
]

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""The default most bytes of a request body: 1 MiB."""
DEFAULT_MAX_JSON_DEPTH: Final = 32
"""The default most levels of nested arrays and objects in a JSON body."""
DEFAULT_MAX_JSON_KEYS: Final = 1000
"""The default most object members in a JSON body, all objects together."""

_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET: Final = re.compile(rb"[^\[\]{}]+")
_INNERMOST: Final = re.compile(rb"[\[{][\]}]")


@functools.cache
def _opened_in_a_row(count: int) -> re.Pattern[bytes]:
    return re.compile(rb"[\[{]{%d}" % count)


def check_json_shape(body: bytes, *, max_depth: int, max_keys: int) -> None:
    """Refuse a JSON body nested deeper than ``max_depth`` or with more than ``max_keys``
    object members, before it is parsed. A body that is not JSON passes (the parser
    then says where it is wrong).

    Raises:
        MalformedBodyError: too deep, or too many members.

    Examples:
        >>> check_json_shape(b'{"a": [1, {"b": "x:y"}]}', max_depth=3, max_keys=2)
        >>> try:
        ...     check_json_shape(b"[[[[]]]]", max_depth=3, max_keys=10)
        ... except MalformedBodyError as refused:
        ...     print(refused.message)
        the request body is malformed: nested deeper than 3 levels
    """
    blanked = _STRING.sub(b'""', body)
    members = blanked.count(b":")
    if members > max_keys:
        raise MalformedBodyError(f"an object with more than {max_keys} members in all")
    brackets = _NOT_BRACKET.sub(b"", blanked)
    too_deep = _opened_in_a_row(max_depth + 1)
    for _ in range(max_depth):
        if not brackets:
            return
        if too_deep.search(brackets):
            break
        inner = _INNERMOST.sub(b"", brackets)
        if len(inner) == len(brackets):
            return  # unbalanced: not JSON, which the parser reports
        brackets = inner
    if brackets and _INNERMOST.search(brackets):
        raise MalformedBodyError(f"nested deeper than {max_depth} levels")


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
        max_json_depth: the most levels of nested arrays and objects in a JSON body.
        max_json_keys: the most object members in a JSON body, all objects together.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
        max_json_keys: int = DEFAULT_MAX_JSON_KEYS,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth
        self.max_json_keys = max_json_keys

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
        chunks: list[bytes] = []

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
                    last = not message.get("more_body", False)
                    try:
                        decoder.decode(chunk, final=last)
                    except UnicodeDecodeError:
                        raise MalformedBodyError("not UTF-8") from None
                    chunks.append(chunk)
                    if last:
                        body = chunk if len(chunks) == 1 else b"".join(chunks)
                        chunks.clear()
                        check_json_shape(
                            body, max_depth=self.max_json_depth, max_keys=self.max_json_keys
                        )
            return message

        await self.app(scope, limited_receive, send)
