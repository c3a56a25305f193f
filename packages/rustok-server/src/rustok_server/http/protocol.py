"""The HTTP/1.1 connections of ``rustok-server serve``: a bounded request head, bounded
waits for slow and idle clients, and a bounded number of connections per worker.

uvicorn keeps every byte of a request's head until the head ends, however long it is, and
waits for it as long as the client likes. `HttpProtocol` (the protocol ``serve`` runs)
adds the limits of `Settings`; what a client sees past each one:

- ``RUSTOK_MAX_HEADER_BYTES``: the bytes of the request line, the header lines and the
  blank line ending them are counted as they arrive, and the byte past the limit is never
  parsed: a 431 problem (``request-header-fields-too-large``), then the connection is
  closed. A head in progress never holds more than the limit, whatever the client sends.
- ``RUSTOK_MAX_HEADERS``: the header field past the limit is a 431 problem too, refused
  before it is stored.
- ``RUSTOK_HEAD_TIMEOUT``: a request's headers must be complete this many seconds after
  the connection was opened, or after the previous response ended, however steadily they
  trickle in. A client that sent part of a head gets a 408 problem (``request-timeout``);
  one that sent nothing is closed without an answer.
- ``RUSTOK_KEEP_ALIVE_TIMEOUT``: a connection that stays idle this long after a response
  is closed without an answer (uvicorn's keep-alive timer, which ``serve`` sets).
- ``RUSTOK_MAX_CONNECTIONS``: a worker holding this many connections answers a new one
  with a 503 problem (``too-many-connections``, ``Retry-After: 1``) and closes it.

A refusal carries ``Connection: close``; the connection's sending side is then shut, and
what the client still sends is read and dropped (never kept) until it closes, for at most
`LINGER` seconds, so that a client still sending reads the answer rather than a reset. Of
the connections refused past the cap, which the cap does not count, at most an eighth of
the cap linger at once; the others are closed as soon as they are answered.
The problems carry ``type``, ``title``, ``status``, ``detail`` and ``code``: no request
reached the app, so there is no ``instance`` or ``trace_id``. Refusals are logged as
warnings on ``rustok.server.http``, at most once every `LOG_EVERY` seconds each, with how
many there were.

Each worker process reads its limits from the ``RUSTOK_*`` environment once (`limits`), as
the app factory does; ``serve`` names `HttpProtocol` by its import path, so each worker
imports it itself. The added work per request is a few integer operations and a clock
reading: a connection keeps one timer for its heads, set again only when it fires.

Without httptools (Windows, PyPy) uvicorn parses with h11 and `HttpProtocol` is built on
that: the same head size limit, timeouts and connection cap, but no header count (h11
parses the header fields only once the head is complete, and the size limit bounds them).
"""

from __future__ import annotations

import asyncio
import functools
import http
import importlib.util
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.h11_impl import RequestResponseCycle as H11Cycle
from uvicorn.server import ServerState

from rustok_core.error import ProblemDetails
from rustok_server.http.problem_types import DEFAULT_PROBLEM_TYPE_BASE, problem_type_base
from rustok_server.settings import Settings

__all__ = ["LINGER", "LOG_EVERY", "ConnectionLimits", "HttpProtocol", "limits"]

logger: Final[logging.Logger] = logging.getLogger("rustok.server.http")

LINGER: Final = 2.0
"""Seconds a refused connection reads and drops what its client still sends."""
LOG_EVERY: Final = 10.0
"""Seconds between two log records of one kind of refusal."""
_TIMER_SLACK: Final = 0.01
"""Seconds a timer may fire early (the loop's clock is coarse) and still be on time."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits of one worker's connections (see the module docstring)."""

    max_header_bytes: int
    max_headers: int
    head_timeout: float
    max_connections: int
    problem_type_base: str = DEFAULT_PROBLEM_TYPE_BASE

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The limits ``settings`` set.

        Examples:
            >>> ConnectionLimits.from_settings(Settings(max_header_bytes=8192)).max_header_bytes
            8192
        """
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            head_timeout=settings.head_timeout,
            max_connections=settings.max_connections,
            problem_type_base=problem_type_base(settings.problem_base_url),
        )


@functools.cache
def limits() -> ConnectionLimits:
    """This process's limits, read from the ``RUSTOK_*`` environment on first use."""
    return ConnectionLimits.from_settings(Settings())


@dataclass(frozen=True, slots=True)
class _Refusal:
    """The status, problem type, title and code of one kind of refusal."""

    status: int
    name: str
    title: str
    code: str

    def fields(self, base: str, detail: str, *extra: tuple[bytes, bytes]) -> bytes:
        """Everything of the answer after the status line and uvicorn's default headers."""
        problem = ProblemDetails.for_status(self.status, detail).model_copy(
            update={"type": base + self.name, "title": self.title, "code": self.code}
        )
        body = problem.to_json().encode()
        headers = [
            (b"content-type", problem.headers()["Content-Type"].encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"connection", b"close"),
            *extra,
        ]
        return b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body


_TOO_LARGE: Final = _Refusal(
    431,
    "request-header-fields-too-large",
    "Request header fields too large",
    "REQUEST_HEADER_FIELDS_TOO_LARGE",
)
_TIMED_OUT: Final = _Refusal(408, "request-timeout", "Request timeout", "REQUEST_TIMEOUT")
_BUSY: Final = _Refusal(503, "too-many-connections", "Too many connections", "TOO_MANY_CONNECTIONS")


@dataclass(frozen=True, slots=True)
class _Answers:
    """The refusals of one set of limits, built once: each without its status line."""

    too_many_bytes: bytes
    too_many_headers: bytes
    timed_out: bytes
    busy: bytes

    @classmethod
    def of(cls, limits: ConnectionLimits) -> _Answers:
        base = limits.problem_type_base
        return cls(
            too_many_bytes=_TOO_LARGE.fields(
                base,
                f"The request line and headers are larger than {limits.max_header_bytes} bytes.",
            ),
            too_many_headers=_TOO_LARGE.fields(
                base, f"The request has more than {limits.max_headers} header fields."
            ),
            timed_out=_TIMED_OUT.fields(
                base,
                f"The request line and headers took longer than {limits.head_timeout:g} "
                "seconds to arrive.",
            ),
            busy=_BUSY.fields(
                base,
                "The server has as many open connections as it allows; try again shortly.",
                (b"retry-after", b"1"),
            ),
        )


@functools.cache
def _answers(limits: ConnectionLimits) -> _Answers:
    return _Answers.of(limits)


def _status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()


class _Tally:
    """Refusals of one kind: logged at most once every `LOG_EVERY` seconds, with a count."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.count = 0
        self.logged = -LOG_EVERY

    def add(self, *args: object) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged >= LOG_EVERY:
            logger.warning(self.message, self.count, *args)
            self.count = 0
            self.logged = now


_TALLIES: Final = {
    431: _Tally(
        "refused %d request(s) whose head passed RUSTOK_MAX_HEADER_BYTES (%d) or "
        "RUSTOK_MAX_HEADERS (%d) (431)"
    ),
    408: _Tally(
        "closed %d connection(s) whose request head took longer than "
        "RUSTOK_HEAD_TIMEOUT (%gs) (408)"
    ),
    503: _Tally("refused %d connection(s) past RUSTOK_MAX_CONNECTIONS (%d open) (503)"),
}


class _Limited(asyncio.Protocol):
    """What both protocols add to uvicorn's: the head's size and time limits, the cap on
    connections, and refusals. Listed before the uvicorn protocol among the bases, whose
    ``__init__``, ``connection_made`` and ``connection_lost`` it extends.

    A head is awaited from the start of the connection and from the end of each request
    message; the protocol calls `_head_complete` when the parser has the whole head and
    `_message_complete` when it has the whole message.
    """

    # uvicorn's protocols set these.
    transport: asyncio.Transport
    flow: FlowControl
    loop: asyncio.AbstractEventLoop
    server_state: ServerState

    _outside: ClassVar[int] = 0
    """Connections of this process refused past the cap (so not among its connections)
    that still read what their client sends: at most an eighth of the cap."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # The uvicorn protocol's __init__ (asyncio.Protocol's takes no arguments).
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        self._limits_init()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self._admit(transport):
            super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()
        super().connection_lost(exc)

    def _limits_init(self) -> None:
        self._limits = limits()
        self._awaiting_head = True
        self._head_bytes = 0
        self._heads = 0
        self._head_deadline: float | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._outside_cap = False
        self._linger: asyncio.TimerHandle | None = None

    def _feed(self, data: bytes) -> None:
        """Hand ``data`` to the parser (uvicorn's ``data_received``)."""
        raise NotImplementedError

    def _responding(self) -> bool:
        """Whether a response is being sent on this connection."""
        raise NotImplementedError

    # Connection -----------------------------------------------------------------

    def _admit(self, transport: asyncio.Transport) -> bool:
        """Whether this worker may serve one more connection; if not, refuse it (503)."""
        if len(self.server_state.connections) < self._limits.max_connections:
            self._start_head_clock()
            return True
        self.transport = transport
        self.flow = FlowControl(transport)
        _TALLIES[503].add(len(self.server_state.connections))
        # Refused connections hold a file each while they linger: a few, past the cap.
        linger = _Limited._outside < max(1, self._limits.max_connections // 8)
        if linger:
            _Limited._outside += 1
            self._outside_cap = True
        self._refuse(503, _answers(self._limits).busy, linger=linger)
        return False

    def _lost(self) -> None:
        self._cancel_head_timer()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._outside_cap:
            self._outside_cap = False
            _Limited._outside -= 1

    # The head -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Count the bytes of a head in progress, and parse what the limit allows."""
        if self._refused:
            return  # lingering: read and dropped
        while self._awaiting_head:
            room = self._limits.max_header_bytes - self._head_bytes
            size = len(data)
            if size <= room:
                self._head_bytes += size
                break
            # The head passes the limit unless it ends within the first `room` bytes.
            self._head_bytes = self._limits.max_header_bytes
            heads = self._heads
            if room:
                self._feed(data[:room])
            if self._closed():
                return
            if self._heads == heads:
                self._too_large(_answers(self._limits).too_many_bytes)
                return
            # The body, or the next request. (A pipelined head begun within bytes parsed
            # already is counted from the next bytes: it may reach twice the limit.)
            data = data[room:]
        self._feed(data)

    def _closed(self) -> bool:
        return self._refused or self.transport.is_closing()

    def _too_large(self, answer: bytes) -> None:
        _TALLIES[431].add(self._limits.max_header_bytes, self._limits.max_headers)
        self._refuse(431, answer)

    def _head_complete(self) -> None:
        self._heads += 1
        self._awaiting_head = False
        self._head_deadline = None  # a pending timer finds no head to wait for

    def _message_complete(self) -> None:
        self._awaiting_head = True
        self._head_bytes = 0

    def _start_head_clock(self) -> None:
        """Give the next head until `ConnectionLimits.head_timeout` from now.

        A connection keeps at most one timer: one that fires before the deadline (moved by
        the requests served meanwhile) is set again for it, so a request costs no timer.
        """
        self._head_deadline = self.loop.time() + self._limits.head_timeout
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        self._head_deadline = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        deadline = self._head_deadline
        if deadline is None or self._closed():
            return
        if deadline - self.loop.time() > _TIMER_SLACK:
            self._head_timer = self.loop.call_at(deadline, self._head_timed_out)
            return
        self._head_deadline = None
        if self._awaiting_head and self._head_bytes:
            _TALLIES[408].add(self._limits.head_timeout)
            self._refuse(408, _answers(self._limits).timed_out)
        else:  # nothing of a request was sent: an idle connection
            self.transport.close()

    # Refusals -------------------------------------------------------------------

    def _refuse(self, status: int, answer: bytes, *, linger: bool = True) -> None:
        """Answer ``answer`` (a problem of ``status``) and close the connection; with
        ``linger``, shut only its sending side first, and read and drop what the client
        still sends for at most `LINGER` seconds (then drop what it did not read)."""
        self._refused = True
        self._cancel_head_timer()
        transport = self.transport
        if transport.is_closing():
            return
        if self._responding():  # a pipelined request: the answer would cut into a response
            transport.close()
            return
        default = self.server_state.default_headers
        transport.write(
            _status_line(status)
            + b"".join(name + b": " + value + b"\r\n" for name, value in default)
            + answer
        )
        if not linger or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        # A client that sends nothing more and closes ends it at once (eof_received).
        self._linger = self.loop.call_later(LINGER, transport.abort)


class _H11Protocol(_Limited, H11Protocol):
    """uvicorn's h11 protocol with the limits (used when httptools is not installed)."""

    def _feed(self, data: bytes) -> None:
        H11Protocol.data_received(self, data)

    def _responding(self) -> bool:
        cycle: H11Cycle | None = self.cycle  # None until the first request
        return cycle is not None and not cycle.response_complete

    def handle_events(self) -> None:
        # h11 tells no callback: its state says when a head ended, and when a request
        # (and its response) ended and the next head is awaited.
        super().handle_events()
        idle = self.conn.their_state is h11.IDLE
        if self._awaiting_head and not idle:
            self._head_complete()
        elif idle and not self._awaiting_head and not self.transport.is_closing():
            self._message_complete()
            self._start_head_clock()


HttpProtocol: type[asyncio.Protocol] = _H11Protocol
"""The protocol ``serve`` runs: on httptools when it is installed, else on h11."""

if importlib.util.find_spec("httptools") is not None:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as HttpToolsCycle

    class _TooManyHeaders(Exception):
        """Raised from the parser's header callback: stops the parser at once."""

    class _HttpToolsProtocol(_Limited, HttpToolsProtocol):
        """uvicorn's httptools protocol with the limits."""

        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._headers_left = self._limits.max_headers

        def _feed(self, data: bytes) -> None:
            # uvicorn's data_received, and a 431 when a header callback stopped the parser.
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, _TooManyHeaders):
                    self._too_large(_answers(self._limits).too_many_headers)
                    return
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()

        def _responding(self) -> bool:
            cycle: HttpToolsCycle | None = self.cycle  # None until the first request
            return cycle is not None and not cycle.response_complete

        # The parser's callbacks run for every request (on_header for every field): they
        # call uvicorn's by name, which costs less than super().

        def on_header(self, name: bytes, value: bytes) -> None:
            self._headers_left -= 1
            if self._headers_left < 0:
                raise _TooManyHeaders
            HttpToolsProtocol.on_header(self, name, value)

        def on_headers_complete(self) -> None:
            self._head_complete()
            HttpToolsProtocol.on_headers_complete(self)

        def on_message_complete(self) -> None:
            HttpToolsProtocol.on_message_complete(self)
            self._message_complete()
            self._headers_left = self._limits.max_headers

        def on_response_complete(self) -> None:
            pipelined = bool(self.pipeline)
            HttpToolsProtocol.on_response_complete(self)
            if not pipelined and not self.transport.is_closing():
                self._start_head_clock()

    HttpProtocol = _HttpToolsProtocol
