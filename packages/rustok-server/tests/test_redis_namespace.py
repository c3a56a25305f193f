"""Two deployments on one Redis (``RUSTOK_REDIS_NAMESPACE``), and the ``rustok_redis_up``
gauge.

The first tests drive this module's objects (`RedisLink`, the breaker storages,
`TenantRateLimits`, `ServerMetrics`) on a real Redis; the last ones run the real
``python -m rustok_server serve`` processes of `test_scale_out`, on one PostgreSQL and one
Redis, and read what they publish, keep on Redis and export on ``/metrics``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from api_fixtures import create_postgres_database
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from test_scale_out import _seed, as_tenant, bearer, fleet_settings, start_fleet, wait_until

from rustok_core.resilience import CircuitBreaker, CircuitBreakerConfig, CircuitOpenError
from rustok_core.testing import RedisServer
from rustok_server import Settings
from rustok_server.auth.keys import RateLimit
from rustok_server.auth.rate_limits import TenantRateLimits
from rustok_server.errors import RateLimitExceededError
from rustok_server.observability.metrics import ServerMetrics, exposition
from rustok_server.scaleout import RedisLink, change_channel

FREEZE_SEEN = 5.0  # seconds: a ping (twice a second, 0.25 s timeout) finds Redis frozen


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def frozen_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, to SIGSTOP; thawed however the test ends."""
    with RedisServer() as server:
        try:
            yield server
        finally:
            if server.process is not None and server.process.poll() is None:
                os.kill(server.process.pid, signal.SIGCONT)


def redis_up(metrics_text: str) -> list[float]:
    """The values of ``rustok_redis_up`` in a text exposition (one sample expected)."""
    return [
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "rustok_redis_up"
        for sample in family.samples
    ]


async def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not seen within {seconds} s"
        await asyncio.sleep(0.01)


# -- the setting ---------------------------------------------------------------------------


def test_the_namespace_is_rustok_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(database_url="sqlite+aiosqlite:///:memory:").redis_namespace == "rustok"
    assert change_channel() == "rustok:changes"
    monkeypatch.setenv("RUSTOK_REDIS_NAMESPACE", "shop-eu.prod")
    assert Settings(database_url="sqlite+aiosqlite:///:memory:").redis_namespace == "shop-eu.prod"


@pytest.mark.parametrize(
    "bad", ["", "-leading", "has space", "brace{tag}", "trailing-newline\n", "x" * 101]
)
def test_a_malformed_namespace_is_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(ValidationError, match="redis_namespace") as caught:
        Settings(database_url="sqlite+aiosqlite:///:memory:", redis_namespace=bad)
    assert "letters, digits" in str(caught.value)
    with pytest.raises(ValueError, match="namespace"):
        RedisLink("redis://127.0.0.1:1/0", namespace=bad)


# -- what each namespace keeps apart, on one Redis -------------------------------------------


@pytest.mark.redis
async def test_links_of_two_namespaces_hear_only_their_own_changes(
    shared_redis: RedisServer,
) -> None:
    names = ["blue", "blue", "green"]
    links = [RedisLink(shared_redis.url, namespace=name) for name in names]
    heard = [0, 0, 0]

    def counter(index: int) -> Callable[[], None]:
        def count() -> None:
            heard[index] += 1

        return count

    client = redis.Redis.from_url(shared_redis.url)
    try:
        for index, link in enumerate(links):
            link.start(counter(index))

        def subscribed() -> bool:
            numbers = dict(client.pubsub_numsub("blue:changes", "green:changes"))
            return numbers == {b"blue:changes": 2, b"green:changes": 1}

        await until(subscribed, 5.0, "every link listening on its namespace's channel")
        links[0].publish()
        links[2].publish()
        # Redis delivers in the order of publication: once green heard its own change, it
        # would have heard blue's before it.
        await until(lambda: heard == [1, 1, 1], 1.0, "each link hearing its channel")
        assert [link.messages for link in links] == [1, 1, 1]
    finally:
        for link in links:
            await link.stop()
        client.close()


@pytest.mark.redis
async def test_a_breaker_opened_in_one_namespace_stays_closed_in_the_other(
    shared_redis: RedisServer,
) -> None:
    config = CircuitBreakerConfig(failure_threshold=2, timeout=30.0)
    prefix = uuid.uuid4().hex[:8]
    blue, other_blue, green = (
        RedisLink(shared_redis.url, namespace=f"{prefix}-{name}")
        for name in ("blue", "blue", "green")
    )

    async def failing() -> None:
        raise ConnectionError("the database does not answer")

    async def working() -> str:
        return "answered"

    try:
        opened = CircuitBreaker("database", config, storage=blue.breaker_storage("database"))
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await opened.call(failing)
        assert opened.state.value == "open"
        # Breakers made now read the circuit of their namespace from Redis.
        same = CircuitBreaker("database", config, storage=other_blue.breaker_storage("database"))
        apart = CircuitBreaker("database", config, storage=green.breaker_storage("database"))
        with pytest.raises(CircuitOpenError):
            await same.call(working)
        assert await apart.call(working) == "answered"
        assert apart.state.value == "closed"
        assert blue.client.exists(f"rustok:{{{prefix}-blue:database}}:circuit")
    finally:
        for link in (blue, other_blue, green):
            await link.stop()


@pytest.mark.redis
def test_rate_buckets_of_two_namespaces_are_separate(shared_redis: RedisServer) -> None:
    client = redis.Redis.from_url(shared_redis.url)
    limit = RateLimit(0.001, 2)  # two requests, then none for a quarter of an hour
    prefix = uuid.uuid4().hex[:8]
    blue_one, blue_two, green = (
        TenantRateLimits(limit, clock=time.time, redis=client, namespace=f"{prefix}-{name}")
        for name in ("blue", "blue", "green")
    )
    tenant = uuid.uuid4()
    try:
        blue_one.admit(tenant, str(tenant))
        blue_two.admit(tenant, str(tenant))  # one bucket for the two processes of blue
        with pytest.raises(RateLimitExceededError):
            blue_one.admit(tenant, str(tenant))
        green.admit(tenant, str(tenant))  # the same tenant id, green's own bucket
        green.admit(tenant, str(tenant))
        with pytest.raises(RateLimitExceededError):
            green.admit(tenant, str(tenant))
        assert client.exists(f"rustok:ratelimit:{prefix}-green:api-0.001-2:{tenant}")
    finally:
        for limits in (blue_one, blue_two, green):
            limits.close()
        client.close()


# -- the gauge, on this process's own objects ------------------------------------------------


def test_without_redis_no_redis_up_gauge_is_exported() -> None:
    body, _content_type = exposition(ServerMetrics())
    assert redis_up(body.decode()) == []


@pytest.mark.redis
async def test_redis_up_follows_the_link_through_a_freeze(frozen_redis: RedisServer) -> None:
    assert frozen_redis.process is not None
    metrics = ServerMetrics()
    link = RedisLink(frozen_redis.url)
    metrics.watch_redis(link.health)

    def gauge() -> list[float]:
        return redis_up(exposition(metrics)[0].decode())

    try:
        link.start(lambda: None)
        assert gauge() == [1.0]
        os.kill(frozen_redis.process.pid, signal.SIGSTOP)
        await until(lambda: gauge() == [0.0], FREEZE_SEEN, "rustok_redis_up 0")
        os.kill(frozen_redis.process.pid, signal.SIGCONT)
        await until(lambda: gauge() == [1.0], FREEZE_SEEN, "rustok_redis_up 1 again")
    finally:
        await link.stop()


# -- the served processes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_two_deployments_on_one_redis_share_neither_changes_nor_rate_buckets(
    postgres_server: str, shared_redis: RedisServer, tmp_path: Path
) -> None:
    """Both deployments on one database too, so that their tenants, keys and bucket keys
    would be the same ones but for the namespace."""
    url = asyncio.run(create_postgres_database(postgres_server))
    keys = asyncio.run(_seed(url, ["acme", "globex", "initech"]))
    limited = {"rate_limit_per_second": "0.001", "rate_limit_burst": "3"}
    prefix = uuid.uuid4().hex[:8]
    blue_ns, green_ns = f"{prefix}-blue", f"{prefix}-green"
    blue_settings = fleet_settings(url, shared_redis.url, redis_namespace=blue_ns, **limited)
    green_settings = fleet_settings(url, shared_redis.url, redis_namespace=green_ns, **limited)
    served = start_fleet(tmp_path, 1, blue_settings) + start_fleet(tmp_path, 1, green_settings)
    client = redis.Redis.from_url(shared_redis.url)
    listener = client.pubsub()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
    channels = [change_channel(blue_ns), change_channel(green_ns)]
    try:
        listener.subscribe(*channels)
        for _ in channels:
            assert listener.get_message(timeout=5.0) is not None  # the subscription replies
        # Each process listens on its deployment's channel (we are the second subscriber). A
        # process subscribes in the background once it serves, so this waits for Redis to say so.
        wanted = {name.encode(): 2 for name in channels}
        deadline = time.monotonic() + 10.0
        while (numbers := dict(client.pubsub_numsub(*channels))) != wanted:
            assert time.monotonic() < deadline, f"subscribers {numbers}, wanted {wanted}"
            time.sleep(0.05)  # Redis has no event for a new subscriber: poll it
        with (
            httpx.Client(base_url=served[0].url, timeout=30.0) as blue,
            httpx.Client(base_url=served[1].url, timeout=30.0) as green,
        ):
            admin = bearer(keys["admin"])
            readiness = blue.get("/health/ready", headers=admin).json()
            assert readiness["redis"]["namespace"] == blue_ns

            # A change on blue, then one on green: each on its own channel, in that order.
            assert blue.post("/api/admin/tenants/globex/disable", headers=admin).is_success
            assert green.post("/api/admin/tenants/initech/disable", headers=admin).is_success
            heard: list[Any] = []
            deadline = time.monotonic() + 1.0
            while len(heard) < 2 and time.monotonic() < deadline:
                message = listener.get_message(timeout=0.1)
                if message is not None:
                    heard.append(message["channel"].decode())
            assert heard == channels
            assert listener.get_message(timeout=0.2) is None

            # Blue's burst of three is used up; green's bucket of the same tenant is full.
            acme = as_tenant("acme", keys["acme"])
            assert [blue.get("/api/tenant", headers=acme).status_code for _ in range(3)] == [
                200
            ] * 3
            assert blue.get("/api/tenant", headers=acme).status_code == 429
            assert green.get("/api/tenant", headers=acme).status_code == 200
    finally:
        listener.close()
        client.close()
        for process in served:
            process.stop()


@pytest.mark.slow
def test_one_process_with_a_metrics_port_exports_the_apps_figures_there(tmp_path: Path) -> None:
    """``serve`` has imported prometheus_client before it sets the multiprocess folder; with
    one worker the app runs in that process, and its figures must reach the folder."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'rustok.db'}"
    keys = asyncio.run(_seed(url, []))
    port = free_port()
    (served,) = start_fleet(tmp_path, 1, fleet_settings(url, None, metrics_port=str(port)))
    try:
        with httpx.Client(timeout=30.0) as http:
            assert http.get(f"{served.url}/health/live").status_code == 200
            for where in (f"http://127.0.0.1:{port}", served.url):
                response = http.get(f"{where}/metrics", headers=bearer(keys["admin"]))
                text = response.text
                try:
                    families = {f.name: f for f in text_string_to_metric_families(text)}
                except ValueError as exc:
                    raise AssertionError(f"{where}: {response.status_code} {text}") from exc
                (state,) = families["rustok_circuit_breaker_state"].samples
                assert state.labels == {"breaker": "database"}
                assert any(
                    s.labels.get("route") == "/health/live" and s.value >= 1
                    for s in families["rustok_http_requests"].samples
                ), where
                assert "rustok_redis_up" not in families  # no Redis configured
    finally:
        served.stop()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_metrics_show_redis_up_0_while_redis_is_frozen_and_1_after(
    postgres_server: str, frozen_redis: RedisServer, tmp_path: Path
) -> None:
    """With a metrics port, ``serve`` keeps its figures in multiprocess files: both the
    API's ``/metrics`` and the metrics port read them."""
    assert frozen_redis.process is not None
    url = asyncio.run(create_postgres_database(postgres_server))
    keys = asyncio.run(_seed(url, []))
    port = free_port()
    settings = fleet_settings(url, frozen_redis.url, metrics_port=str(port))
    (served,) = start_fleet(tmp_path, 1, settings)
    try:
        with (
            httpx.Client(base_url=served.url, timeout=30.0, headers=bearer(keys["admin"])) as api,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as scrape,
        ):

            def gauges() -> tuple[list[float], list[float]]:
                return redis_up(api.get("/metrics").text), redis_up(scrape.get("/metrics").text)

            assert gauges() == ([1.0], [1.0])
            os.kill(frozen_redis.process.pid, signal.SIGSTOP)
            wait_until(
                lambda: gauges() == ([0.0], [0.0]),
                time.monotonic() + FREEZE_SEEN,
                "rustok_redis_up 0",
                pause=0.05,
            )
            assert api.get("/health/ready").json()["status"] == "degraded"
            os.kill(frozen_redis.process.pid, signal.SIGCONT)
            wait_until(
                lambda: gauges() == ([1.0], [1.0]),
                time.monotonic() + FREEZE_SEEN,
                "rustok_redis_up 1 again",
                pause=0.05,
            )
            assert api.get("/health/ready").json()["status"] == "ready"
    finally:
        served.stop()
