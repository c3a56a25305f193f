"""One logging configuration for the server and uvicorn: text or JSON lines.

Every record carries the request it was written for: its id (the trace id when tracing is
on), tenant, method and route template, read from the request being served when the record
is written. `ObservabilityMiddleware` marks the request (`serving`) and writes one access
record per request (``rustok.access``, with status and duration) in the same format as every
other record. uvicorn's own access log is switched off.

A text record is one line whatever the client sent: `TextFormatter` escapes the control
characters (line breaks included) of the message and of its request fields, so a path
with ``%0a`` in it cannot forge a second record. A JSON record escapes them as JSON does.

Examples:
    >>> config = logging_config("json", "info")
    >>> sorted(config["loggers"])
    ['rustok', 'uvicorn', 'uvicorn.access', 'uvicorn.error']
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar, Token
from typing import Final, Literal

from starlette.types import Scope

from rustok_server.request_state import RequestState, request_state

__all__ = [
    "LOG_FORMATS",
    "LogFormat",
    "RequestContextFilter",
    "TextFormatter",
    "access_logger",
    "configure_logging",
    "current_request",
    "done_serving",
    "escape_controls",
    "logging_config",
    "serving",
]

LogFormat = Literal["text", "json"]
"""A log format: ``text`` (one line a record) or ``json`` (one object a line)."""
LOG_FORMATS: Final = ("text", "json")
"""The log formats ``RUSTOK_LOG_FORMAT`` accepts."""

_TEXT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s %(tenant)s] %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_NONE: Final = "-"

# Every C0 control character, DEL, C1 and the Unicode line and paragraph separators.
_CONTROLS: Final = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}


def escape_controls(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n`` as ``\\x0a``).

    Examples:
        >>> escape_controls("/api/x\\nDELETE /api/admin/tenants/demo 200")
        '/api/x\\\\x0aDELETE /api/admin/tenants/demo 200'
    """
    return text.translate(_CONTROLS)


class TextFormatter(logging.Formatter):
    """The text format, one line per record: the message and the request fields have their
    control characters escaped (a traceback, appended after the message, keeps its lines).
    """

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging's name
        record.message = escape_controls(record.message)
        for name in ("tenant", "route", "method", "request_id"):
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, escape_controls(value))
        return super().formatMessage(record)


_current: ContextVar[Scope | None] = ContextVar("rustok_request", default=None)
access_logger: Final[logging.Logger] = logging.getLogger("rustok.access")
"""The logger of the access log (``rustok.access``): one record per request."""


def current_request() -> Scope | None:
    """The ASGI scope of the request being served in this task, if any."""
    return _current.get()


def serving(scope: Scope) -> Token[Scope | None]:
    """Mark ``scope`` as the request this task serves; give the token back to `_current`
    with ``reset`` (`ObservabilityMiddleware` does both)."""
    return _current.set(scope)


def done_serving(token: Token[Scope | None]) -> None:
    """Undo `serving`."""
    _current.reset(token)


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else _NONE


def _tenant(state: RequestState) -> str:
    tenant = state.get("tenant")
    return _NONE if tenant is None else tenant.slug


class RequestContextFilter(logging.Filter):
    """Adds ``request_id``, ``tenant``, ``method`` and ``route`` to every record ("-" when
    the record was not written for a request). Attach it to handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = _current.get()
        if scope is None:
            fields = dict.fromkeys(("request_id", "tenant", "method", "route"), _NONE)
        else:
            state = request_state(scope)
            fields = {
                "request_id": state.get("request_id", _NONE),
                "tenant": _tenant(state),
                "method": scope.get("method", _NONE),
                "route": _route(scope),
            }
        for name, value in fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def logging_config(fmt: LogFormat, level: str) -> dict[str, object]:
    """A `logging.config.dictConfig` for the ``rustok`` tree and uvicorn, to stderr.

    Args:
        fmt: ``"text"`` (one readable line) or ``"json"`` (one JSON object per line, through
            python-json-logger).
        level: the least severe level shown (``"info"``, ``"warning"``, ...).

    Raises:
        ValueError: ``fmt`` is neither ``"text"`` nor ``"json"``.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {fmt!r}")
    formatter: dict[str, object]
    if fmt == "json":
        from pythonjsonlogger.core import RESERVED_ATTRS

        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": _JSON_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
            # uvicorn adds `color_message`, its message again with ANSI colour codes.
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
    else:
        formatter = {"()": TextFormatter, "format": _TEXT}
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "default",
        "filters": ["request"],
    }
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": RequestContextFilter}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "rustok": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            # Requests are logged once, by RequestLogMiddleware, with tenant and route.
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


def configure_logging(fmt: LogFormat = "text", level: str = "info") -> None:
    """Apply `logging_config` to this process."""
    logging.config.dictConfig(logging_config(fmt, level))
