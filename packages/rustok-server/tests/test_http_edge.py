"""The connections of ``rustok-server serve`` (`rustok_server.http.protocol`) against
hostile and slow clients: heads too large or with too many fields, heads that never end,
clients that send slowly or not at all, and more connections than a worker takes.

The server is the real command in its own process; the clients are raw sockets. Each case
opens a bounded number of connections, and asserts only bounds that a hang or unbounded
memory would break, never how fast an answer comes. These limits act before a request
reaches the app, so no database is involved; the head, slow-client and memory cases still
run on both databases (the `database_url` fixture), the others on a SQLite file.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import clean_env, start_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux only)"),
]

WAIT = 10.0
"""Seconds any answer or close may take: far beyond the limits tested, short of a hang."""
STARTUP = 60.0
"""Seconds a server may take to start."""
HEAD = b"GET /health/live HTTP/1.1\r\nHost: test\r\n"
MIB = 1024 * 1024


@dataclass
class Response:
    """A response read off a socket."""

    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self, status: int, name: str) -> dict[str, Any]:
        """The response is an RFC 9457 problem of type ``name`` that closes the connection."""
        assert self.status == status, self
        assert self.headers["content-type"] == "application/problem+json"
        assert self.headers["connection"] == "close"
        problem = json.loads(self.body)
        assert isinstance(problem, dict)
        assert problem["type"] == f"/problems/{name}"
        assert problem["status"] == status
        assert problem["code"] == name.upper().replace("-", "_")
        assert problem["title"]
        assert problem["detail"]
        return problem


@dataclass
class Server:
    """A running ``serve`` process and its port."""

    process: subprocess.Popen[str]
    port: int

    def connect(self, timeout: float = WAIT) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def get(self, sock: socket.socket | None = None) -> Response:
        """``GET /health/live`` on ``sock`` (kept alive), or on a connection of its own."""
        if sock is not None:
            sock.sendall(HEAD + b"\r\n")
            return read_response(sock)
        with self.connect() as own:
            own.sendall(HEAD + b"Connection: close\r\n\r\n")
            return read_response(own)

    @contextmanager
    def admitted(self, deadline: float) -> Iterator[socket.socket]:
        """A connection the server serves, once connections that ended no longer count:
        the worker may see a new connection before it has seen others end."""
        while True:
            with self.connect() as sock:
                sock.sendall(HEAD + b"\r\n")
                response = read_response(sock)
                if response.status == 200:
                    yield sock
                    return
            response.problem(503, "too-many-connections")
            assert time.monotonic() < deadline, "connections that ended still count"

    def memory(self) -> tuple[int, int]:
        """The server process's resident memory now and at its peak, in bytes (one worker:
        the process itself serves)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
        return int(found["VmRSS"]) * 1024, int(found["VmHWM"]) * 1024


def _parsed(data: bytes) -> tuple[Response, int] | None:
    """The first response in ``data`` and where it ends, or ``None`` while it is incomplete
    (every response here has a ``Content-Length``)."""
    head, blank, rest = data.partition(b"\r\n\r\n")
    if not blank:
        return None
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers["content-length"])
    if len(rest) < length:
        return None
    response = Response(int(status_line.split()[1]), headers, rest[:length])
    return response, len(head) + len(blank) + length


def read_response(sock: socket.socket) -> Response:
    """One response read from ``sock``."""
    data = b""
    while (parsed := _parsed(data)) is None:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response: {data!r}"
        data += chunk
    response, end = parsed
    assert end == len(data), f"more than one response: {data!r}"
    return response


def read_to_end(sock: socket.socket, deadline: float) -> bytes | None:
    """What the server sends on ``sock`` until it closes it (``None`` for a reset); fails
    if it is still open at ``deadline`` (a `time.monotonic` time)."""
    data = b""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return None
        except TimeoutError:
            raise AssertionError(f"still open after the deadline; received {data!r}") from None
        if not chunk:
            return data
        data += chunk


def response_of(data: bytes) -> Response:
    """The one response in ``data`` (all a server sent before it closed)."""
    parsed = _parsed(data)
    assert parsed is not None, f"no whole response: {data!r}"
    response, end = parsed
    assert end == len(data), f"more than one response: {data!r}"
    return response


def head_of(size: int, headers: int = 1) -> bytes:
    """A complete request head of exactly ``size`` bytes with ``headers`` header fields."""
    fields = HEAD + b"".join(b"X-%d: 1\r\n" % n for n in range(headers - 2)) + b"X-Pad: "
    pad = size - len(fields) - len(b"\r\n\r\n")
    assert pad >= 0
    return fields + b"a" * pad + b"\r\n\r\n"


@contextmanager
def serving(tmp_path: Path, *, h11: bool = False, **variables: str) -> Iterator[Server]:
    """``rustok-server serve --port 0`` (one worker) with ``RUSTOK_<NAME>`` ``variables``,
    once it answers; with ``h11``, as where httptools is missing (Windows, PyPy)."""
    env = {f"RUSTOK_{name.upper()}": value for name, value in variables.items()}
    env["RUSTOK_DEMO_TENANT"] = "false"
    log = (tmp_path / "serve.log").open("w")
    if h11:
        code = (
            "import sys; sys.modules['httptools'] = None; from rustok_server.cli import main; "
            "sys.exit(main(['serve', '--port', '0']))"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    else:
        process = start_serve(tmp_path, "--port", "0", variables=env, stderr=log.fileno())
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        listening = re.search(r"listening on http://127\.0\.0\.1:(\d+)", banner)
        assert listening is not None, banner + (tmp_path / "serve.log").read_text()
        server = Server(process, int(listening[1]))
        with server.connect(timeout=STARTUP) as sock:  # waits until the app has started
            sock.sendall(HEAD + b"Connection: close\r\n\r\n")
            assert read_response(sock).status == 200
        yield server
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
    finally:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        log.close()


def test_a_head_over_the_limits_is_a_431_problem_and_the_connection_closes(
    tmp_path: Path, database_url: str
) -> None:
    with serving(
        tmp_path, database_url=database_url, max_header_bytes="8192", max_headers="20"
    ) as server:
        # At the limits, on a kept-alive connection: each request's head is counted afresh.
        with server.connect() as sock:
            assert server.get(sock).status == 200
            sock.sendall(head_of(8192))
            assert read_response(sock).status == 200
            sock.sendall(head_of(1024, headers=20))
            assert read_response(sock).status == 200

        for request, detail in (
            (head_of(8193), "larger than 8192 bytes"),
            (head_of(1024, headers=21), "more than 20 header fields"),
            (head_of(256 * 1024), "larger than 8192 bytes"),  # in several reads
        ):
            with server.connect() as sock:
                sock.sendall(request)
                answer = read_to_end(sock, time.monotonic() + WAIT)
            assert answer is not None
            problem = response_of(answer).problem(431, "request-header-fields-too-large")
            assert detail in problem["detail"]

        assert server.get().status == 200


def test_unfinished_heads_are_cut_off_and_memory_stays_flat(
    tmp_path: Path, database_url: str
) -> None:
    connections, each, chunk = 20, 4 * MIB, b"a" * 65536
    with serving(tmp_path, database_url=database_url) as server, ExitStack() as stack:
        for _ in range(3):
            assert server.get().status == 200
        rss_before, peak_before = server.memory()
        socks = [stack.enter_context(server.connect()) for _ in range(connections)]
        for sock in socks:
            sock.sendall(HEAD + b"X-Flood: ")
        cut = set()
        for _ in range(each // len(chunk)):
            for n, sock in enumerate(socks):
                if n in cut:
                    continue
                try:
                    sock.sendall(chunk)
                except TimeoutError:
                    raise AssertionError("the server stopped reading but kept it open") from None
                except OSError:  # reset: the server closed it
                    cut.add(n)
        deadline = time.monotonic() + WAIT
        for sock in socks:
            answer = read_to_end(sock, deadline)
            if answer is not None:  # else reset: it closed with bytes of ours unread
                response_of(answer).problem(431, "request-header-fields-too-large")
            sock.close()
        assert server.get().status == 200
        rss, peak = server.memory()
    ceiling = 20 * MIB  # the 80 MiB sent, kept, would pass it four times over
    assert rss - rss_before < ceiling, (rss_before, rss)
    assert peak < max(peak_before, rss_before + ceiling), (rss_before, peak_before, peak)


def test_slow_and_silent_clients_are_closed_after_the_head_timeout(
    tmp_path: Path, database_url: str
) -> None:
    with (
        serving(
            tmp_path, database_url=database_url, head_timeout="1", keep_alive_timeout="30"
        ) as server,
        ExitStack() as stack,
    ):
        started = time.monotonic()
        deadline = started + WAIT
        half_sent = [stack.enter_context(server.connect()) for _ in range(50)]
        for sock in half_sent:
            sock.sendall(HEAD)  # no blank line: the head never ends
        silent = stack.enter_context(server.connect())
        # After a response: the next head's time runs from the response's end.
        kept = stack.enter_context(server.connect())
        assert server.get(kept).status == 200
        kept.sendall(HEAD)
        # A byte every 0.2 s: never idle, yet the head is not complete in time.
        trickle = stack.enter_context(server.connect())
        trickle.settimeout(0.2)
        received = b""
        for byte in HEAD + b"X-Slow: " + b"a" * 1000:
            assert time.monotonic() < deadline, "the trickling client is still served"
            try:
                received = trickle.recv(65536)
                break
            except TimeoutError:
                trickle.send(bytes([byte]))
        rest = read_to_end(trickle, deadline)
        assert rest is not None
        response_of(received + rest).problem(408, "request-timeout")

        for sock in [*half_sent, kept]:
            answer = read_to_end(sock, deadline)
            assert answer is not None
            response_of(answer).problem(408, "request-timeout")
        assert read_to_end(silent, deadline) == b""  # nothing sent, nothing answered
        assert server.get().status == 200


def test_connections_past_the_cap_get_a_503_problem(tmp_path: Path) -> None:
    serve = serving(tmp_path, max_connections="20", head_timeout="60", keep_alive_timeout="60")
    with serve as server, ExitStack() as stack:
        held = [stack.enter_context(server.connect()) for _ in range(20)]
        for sock in held:  # each answered, so each is open in the worker
            assert server.get(sock).status == 200

        deadline = time.monotonic() + WAIT
        with server.connect() as refused:  # sends nothing
            answer = read_to_end(refused, deadline)
        assert answer is not None
        busy = response_of(answer)
        busy.problem(503, "too-many-connections")
        assert busy.headers["retry-after"] == "1"
        with server.connect() as refused:  # sends its request before reading
            refused.sendall(HEAD + b"\r\n")
            answer = read_to_end(refused, deadline)
        assert answer is not None
        response_of(answer).problem(503, "too-many-connections")

        for sock in held[:5]:
            sock.shutdown(socket.SHUT_WR)
            assert read_to_end(sock, deadline) == b""
        with server.admitted(deadline) as sock:
            assert server.get(sock).status == 200
        assert server.get(held[-1]).status == 200


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    tmp_path: Path,
) -> None:
    # Longer than uvicorn's own 5 s, so that the setting shows; the time of a head is not
    # what closes this connection.
    with serving(tmp_path, keep_alive_timeout="8", head_timeout="60") as server:
        with server.connect() as sock:
            response = server.get(sock)
            assert response.status == 200
            assert "connection" not in response.headers  # kept alive
            sock.settimeout(5.5)
            with pytest.raises(TimeoutError):
                sock.recv(1)  # still open past uvicorn's default
            assert read_to_end(sock, time.monotonic() + WAIT) == b""


def test_without_httptools_the_limits_hold_on_h11(tmp_path: Path) -> None:
    serve = serving(
        tmp_path, h11=True, max_header_bytes="8192", max_connections="3", head_timeout="5"
    )
    with serve as server:
        deadline = time.monotonic() + WAIT
        with ExitStack() as stack:
            slow = [stack.enter_context(server.connect()) for _ in range(3)]
            for sock in slow:
                sock.sendall(HEAD)
            with server.connect() as refused:
                answer = read_to_end(refused, deadline)
            assert answer is not None
            response_of(answer).problem(503, "too-many-connections")
            for sock in slow:
                answer = read_to_end(sock, deadline)
                assert answer is not None
                response_of(answer).problem(408, "request-timeout")

        with server.admitted(deadline) as sock:
            sock.sendall(head_of(8192))
            assert read_response(sock).status == 200
            sock.sendall(head_of(256 * 1024))
            answer = read_to_end(sock, deadline)
        assert answer is not None
        response_of(answer).problem(431, "request-header-fields-too-large")
