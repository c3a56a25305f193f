"""`rustok_server.http.protocol` in this process (uvicorn in a thread, raw sockets), on
both parsers: the same refusals `test_http_edge` drives through ``serve``, where the
protocol runs in another process, here where each of its paths is measured."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from rustok_server.http import protocol
from rustok_server.http.protocol import ConnectionLimits

LIMITS = ConnectionLimits(
    max_header_bytes=2048, max_headers=10, head_timeout=0.5, max_connections=3
)
REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n"


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def served(http: type, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(protocol, "limits", lambda: LIMITS)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until the server accepts them
    config = uvicorn.Config(ok, http=http, lifespan="off", log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        port = sock.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as probe:
            probe.sendall(REQUEST + b"Connection: close\r\n\r\n")
            assert answer(probe)[0] == 200  # serving
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status of the answer read up to the close, and its JSON body if it has one."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else {}


PROTOCOLS = [
    pytest.param(getattr(protocol, "_HttpToolsProtocol", protocol.HttpProtocol), id="httptools"),
    pytest.param(protocol._H11Protocol, id="h11"),
]


@pytest.mark.parametrize("http", PROTOCOLS)
def test_every_refusal_of_the_protocol(http: type, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(http, monkeypatch) as port:

        def connect() -> socket.socket:
            return socket.create_connection(("127.0.0.1", port), timeout=10)

        with connect() as big:  # a head over the byte limit
            big.sendall(REQUEST + b"X-Big: " + b"a" * 4096 + b"\r\n\r\n")
            status, problem = answer(big)
            assert status == 431
            assert problem["code"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"
        if http is not protocol._H11Protocol:  # h11 counts no fields: the bytes bound them
            with connect() as many:
                many.sendall(REQUEST + b"".join(b"X-%d: 1\r\n" % n for n in range(20)) + b"\r\n")
                assert answer(many)[0] == 431
        with connect() as slow:  # half a head, then nothing: the head timeout
            slow.sendall(REQUEST)
            status, problem = answer(slow)
            assert status == 408
            assert problem["code"] == "REQUEST_TIMEOUT"
        with connect() as silent:  # nothing at all: closed without an answer
            assert silent.recv(1) == b""
        held = [connect() for _ in range(LIMITS.max_connections)]
        try:
            for sock in held:  # served, and kept open
                sock.sendall(REQUEST + b"\r\n")
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            with connect() as refused:
                status, problem = answer(refused)
                assert status == 503
                assert problem["code"] == "TOO_MANY_CONNECTIONS"
        finally:
            for sock in held:
                sock.close()
        with connect() as normal:
            normal.sendall(REQUEST + b"Connection: close\r\n\r\n")
            assert answer(normal)[0] == 200
