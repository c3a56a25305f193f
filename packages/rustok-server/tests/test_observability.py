"""Logs and metrics as an operator meets them: JSON lines, and `/metrics` on the metrics port
of `serve --workers 2`, read with Prometheus's own parser."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, get_args

import httpx
import pytest
from api_fixtures import CREATED_KEYS, ApiKeys, ServerFactory, node_in, order_in, start_serve
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from rustok_server import Tenant
from rustok_server.observability.logs import RequestContextFilter, logging_config
from rustok_server.observability.metrics import ServerMetrics
from rustok_server.observability.middleware import UNMATCHED_ROUTE
from rustok_server.tenancy.tenant_cache import LookupResult

# Every metric of the operators' list that this server has a subject for. Retry attempts
# are labelled by the server's one retry policy, the JWKS fetch, whose series exists (at 0)
# whether or not JWT is configured, so that dashboards and alerts never query a missing name.
EXPORTED = {
    "rustok_http_requests": "counter",
    "rustok_http_request_duration_seconds": "histogram",
    "rustok_circuit_breaker_state": "gauge",
    "rustok_circuit_breaker_calls": "counter",
    "rustok_state_transitions": "counter",
    "rustok_tenant_cache_requests": "counter",
    "rustok_rate_limited": "counter",
    "rustok_retry_attempts": "counter",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_json_config_writes_one_parsable_object_per_record() -> None:
    formatters = logging_config("json", "info")["formatters"]
    assert isinstance(formatters, dict)
    options = dict(formatters["default"])
    assert options.pop("()") == "pythonjsonlogger.json.JsonFormatter"
    stream = io.StringIO()
    formatter = JsonFormatter(**options)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("rustok.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("breaker %s opened", "database")
    finally:
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["message"] == "breaker database opened"
    assert record["level"] == "WARNING"
    assert record["logger"] == "rustok.test.json"
    assert record["request_id"] == "-"  # written outside any request


def test_json_records_carry_no_ansi_colour_copy_of_the_message() -> None:
    formatters = logging_config("json", "info")["formatters"]
    assert isinstance(formatters, dict)
    options = dict(formatters["default"])
    options.pop("()")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(**options))
    logger = logging.getLogger("rustok.test.colour")
    logger.addHandler(handler)
    logger.propagate = False
    try:  # as uvicorn logs "Started server process [%d]"
        logger.info("Started %s", "x", extra={"color_message": "Started \x1b[36m%s\x1b[0m"})
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert "\\u001b" not in line
    assert "\x1b" not in line
    record = json.loads(line)
    assert "color_message" not in record
    assert record["message"] == "Started x"


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        logging_config("xml", "info")  # type: ignore[arg-type]


class ServerLog:
    """The stderr lines of a server process, read by a thread as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()

    def close(self) -> None:
        """Wait for the end of the stream (the process has exited)."""
        self._thread.join(30)

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 180.0) -> None:
        """Block until ``predicate(lines)`` holds (or fail after ``timeout`` seconds)."""
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self.lines), timeout), self.lines


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, str, ServerLog, str]]:
    """`serve --workers 2 --metrics-port P` with JSON logs: app URL, metrics URL, its log,
    and the demo key its banner shows."""
    metrics_port = _free_port()
    process = start_serve(
        tmp_path,
        "--port",
        "0",
        "--workers",
        "2",
        "--metrics-port",
        str(metrics_port),
        variables={"RUSTOK_LOG_FORMAT": "json"},
    )
    log: ServerLog | None = None
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        banner = process.stdout.readline().strip()
        url = banner.split(" listening on ")[1].split(",")[0]
        lines = [banner]
        while "try: curl" not in lines[-1]:  # the rest of the banner, the demo key in it
            lines.append(process.stdout.readline())
            assert lines[-1], lines
        demo_key = next(line for line in lines if "rsk_" in line and "curl" not in line)
        CREATED_KEYS.append(demo_key.strip())
        log = ServerLog(process.stderr)
        # Both workers started: each logs its own start-up.
        log.wait_for(lambda lines: sum("Application startup complete" in x for x in lines) == 2)
        yield url, f"http://127.0.0.1:{metrics_port}/metrics", log, demo_key.strip()
    finally:
        process.terminate()
        process.wait(30)
        if log is not None:
            log.close()
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.slow  # starts `rustok-server serve`
def test_two_workers_metrics_add_up_and_every_name_is_there(
    two_workers: tuple[str, str, ServerLog, str],
) -> None:
    url, metrics_url, _log, _demo_key = two_workers
    sent = 40
    for _ in range(sent // 2):
        # A new connection each time, so that both workers get some of them.
        assert httpx.get(f"{url}/health/live").status_code == 200
        assert httpx.get(f"{url}/no/such/path").status_code in {400, 404}
    text = httpx.get(metrics_url).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, kind in EXPORTED.items():
        assert name in families, f"{name} missing from /metrics"
        assert families[name].type == kind, name
    requests = [s for s in families["rustok_http_requests"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in requests) == sent
    routes = {s.labels["route"] for s in requests}
    assert routes == {"/health/live", UNMATCHED_ROUTE}  # templates, never raw paths
    states = [
        s.value
        for s in families["rustok_circuit_breaker_state"].samples
        if s.labels.get("breaker") == "database"
    ]
    assert states == [0.0]  # closed, one figure for the fleet
    cache = {
        s.labels["result"]: s.value
        for s in families["rustok_tenant_cache_requests"].samples
        if s.name.endswith("_total")
    }
    assert set(cache) == set(get_args(LookupResult))  # every answer the cache can give
    transitions = {
        (s.labels["entity"], s.labels["trigger"])
        for s in families["rustok_state_transitions"].samples
    }
    assert ("Order", "pay") in transitions
    assert ("ContentNode", "publish") in transitions


@pytest.mark.slow  # starts `rustok-server serve`
def test_json_logs_every_line_parses_and_requests_carry_their_fields(
    two_workers: tuple[str, str, ServerLog, str],
) -> None:
    url, _metrics_url, log, demo_key = two_workers
    # A tenant-resolved request (a health check resolves no tenant).
    response = httpx.get(f"{url}/api/tenant", headers={"Authorization": f"Bearer {demo_key}"})
    assert response.status_code == 200
    request_id = response.headers["X-Request-ID"]
    log.wait_for(lambda lines: any(request_id in line for line in lines))
    records = [json.loads(line) for line in log.lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    mine = [r for r in records if r["request_id"] == request_id]
    assert [r["logger"] for r in mine] == ["rustok.access"]
    assert mine[0]["tenant"] == "demo"
    assert mine[0]["method"] == "GET"
    assert mine[0]["route"] == "/api/tenant"
    assert mine[0]["status"] == 200
    assert mine[0]["duration_ms"] >= 0


def _sample(app_metrics: ServerMetrics, name: str, **labels: str) -> float:
    text = generate_latest(app_metrics.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"no sample {name}{labels}")


async def test_transitions_and_tenant_cache_reads_are_counted(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    metrics: ServerMetrics = server.app.state.metrics  # type: ignore[attr-defined]
    async with api_keys.client(server, "acme") as client:
        await order_in(client, "paid")
        await node_in(client, "published")
        assert (await client.get("/api/tenant")).status_code == 200
    transitions = "rustok_state_transitions_total"
    assert _sample(metrics, transitions, entity="Order", trigger="confirm") == 1
    assert _sample(metrics, transitions, entity="Order", trigger="pay") == 1
    assert _sample(metrics, transitions, entity="Order", trigger="ship") == 0
    assert _sample(metrics, transitions, entity="ContentNode", trigger="publish") == 1
    reads = "rustok_tenant_cache_requests_total"
    assert _sample(metrics, reads, result="miss") == 1  # the first request loaded acme
    assert _sample(metrics, reads, result="hit") >= 4  # every later request hit
    calls = "rustok_circuit_breaker_calls_total"
    # Every statement passes the breaker (the loads of acme and of its key, the writes of
    # the transitions; on PostgreSQL the reads too): all of them succeeded.
    assert _sample(metrics, calls, breaker="database", outcome="success") > 2
    assert _sample(metrics, calls, breaker="database", outcome="failure") == 0


async def test_metrics_on_the_api_port_need_an_admin_key(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url) as client:
        anonymous = await client.get("/metrics")
        tenant_key = await client.get("/metrics", headers=api_keys.auth("acme"))
        admin = await client.get("/metrics", headers=api_keys.auth("admin"))
    assert anonymous.status_code == 401
    assert tenant_key.status_code == 403
    assert admin.status_code == 200
    assert admin.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(admin.text)}
    assert {"rustok_http_requests", "rustok_circuit_breaker_state"} <= names


async def test_requests_refused_by_the_rate_limit_are_counted(
    start_server: ServerFactory, tenants: dict[str, Tenant], api_keys: ApiKeys
) -> None:
    server = start_server(rate_limit_per_second=1, rate_limit_burst=2)
    metrics: ServerMetrics = server.app.state.metrics  # type: ignore[attr-defined]
    async with api_keys.client(server, "acme") as client:
        statuses = [(await client.get("/api/tenant")).status_code for _ in range(5)]
    assert statuses.count(429) == 3  # the clock stands still: no token comes back
    assert _sample(metrics, "rustok_rate_limited_total") == 3
