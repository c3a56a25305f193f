"""`rustok-server serve`'s listener: every connection it accepts is served as a TCP
connection with Nagle's algorithm off, with one worker or several, on IPv4 and IPv6.

With Nagle on, a response written in two parts (head, then body) waits for the client's
delayed ACK before its second part leaves: about 40 ms on every keep-alive request. No
time is measured here: the test reads ``TCP_NODELAY`` on the server's own end of a served
connection, duplicated out of the worker process that holds it (Linux ``pidfd_getfd``).
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import start_serve

pytestmark = [
    pytest.mark.skipif(
        not sys.platform.startswith("linux"), reason="reads another process's socket (Linux only)"
    ),
    pytest.mark.slow,  # starts `rustok-server serve` with one and two workers
]

PIDFD_GETFD = 438
"""The ``pidfd_getfd`` system call: the same number on every Linux architecture."""


def _duplicate(pid: int, fd: int) -> int:
    """A descriptor of this process for the descriptor ``fd`` of the process ``pid``."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        duplicate = int(libc.syscall(PIDFD_GETFD, pidfd, fd, 0))
    finally:
        os.close(pidfd)
    if duplicate < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"pidfd_getfd({pid}, {fd}): {os.strerror(error)}")
    return duplicate


def _children(pid: int) -> Iterator[int]:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            yield child
            yield from _children(child)


def _server_end(serve: int, client: socket.socket) -> tuple[int, socket.socket]:
    """(the pid holding it, the server's end of ``client``'s connection)."""
    ours = client.getsockname()[:2]
    for pid in (serve, *_children(serve)):
        for entry in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if not os.readlink(entry).startswith("socket:"):
                    continue
                sock = socket.socket(fileno=_duplicate(pid, int(entry.name)))
            except OSError:  # closed meanwhile
                continue
            try:
                if sock.getpeername()[:2] == ours:
                    return pid, sock
            except OSError:  # a listening or unconnected socket
                pass
            sock.close()
    raise AssertionError(f"no process of serve ({serve}) holds the connection from {ours}")


def _get(client: socket.socket) -> bytes:
    client.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
    response = b""
    while b"\r\n\r\n" not in response or not response.endswith(b"}"):
        chunk = client.recv(65536)
        assert chunk, f"the server closed the connection: {response!r}"
        response += chunk
    return response


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_every_served_connection_is_tcp_with_nagle_off(
    tmp_path: Path, host: str, workers: int
) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    process = start_serve(tmp_path, "--host", host, "--port", "0", "--workers", str(workers))
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        first = process.stdout.readline()
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        listening = re.search(rf"listening on http://{re.escape(shown)}:(\d+)", first)
        assert listening is not None, first
        port = int(listening[1])
        started = 0
        for line in process.stderr:  # each worker's log: wait until all accept connections
            started += "Application startup complete" in line
            if started == workers:
                break
        with socket.socket(family, socket.SOCK_STREAM) as client:
            client.connect((host, port))
            assert _get(client).startswith(b"HTTP/1.1 200")
            pid, server_end = _server_end(process.pid, client)
            with server_end:
                assert server_end.family == family
                assert server_end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            if workers > 1:
                assert pid != process.pid  # served by a worker, not the supervisor
            assert _get(client).startswith(b"HTTP/1.1 200")  # still kept alive
    finally:
        process.terminate()
        process.communicate(timeout=30)
