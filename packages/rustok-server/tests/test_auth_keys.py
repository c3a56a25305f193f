"""API keys: the format, the stored hash, the directory, and verification through the
one-second cache, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from api_fixtures import CREATED_KEYS, LogCapture, WallClock, leaked_secrets
from sqlalchemy import select

from rustok_core.resilience import CircuitBreaker, CircuitBreakerConfig, CircuitState
from rustok_core.testing import ManualClock
from rustok_server.auth import KeyDirectory, KeyVerifier, hash_secret, parse_key
from rustok_server.auth import keys as key_module
from rustok_server.auth.keys import KeyRecord, new_key
from rustok_server.auth.tables import ApiKeyRow
from rustok_server.db import Database
from rustok_server.errors import (
    InvalidCredentialError,
    TenantNotFoundError,
    TenantStoreUnavailableError,
)
from rustok_server.tenancy.repository import Tenant, TenantDirectory


@pytest.fixture
def directory(database: Database, wall_clock: WallClock) -> KeyDirectory:
    """The keys of the test database, dated by the test's wall clock."""
    return KeyDirectory(database, clock=wall_clock)


VerifierFactory = Callable[..., KeyVerifier]


@pytest.fixture
async def make_verifier(
    directory: KeyDirectory, clock: ManualClock, wall_clock: WallClock
) -> AsyncIterator[VerifierFactory]:
    """Makes a `KeyVerifier` of ``directory`` on the test's clocks (its other arguments as
    keywords); each is closed after the test (its last-used write waited for)."""
    made: list[KeyVerifier] = []

    def make(**options: Any) -> KeyVerifier:
        verifier = KeyVerifier(directory, clock=clock, wall_clock=wall_clock, **options)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.close()


def test_a_new_key_is_rsk_id_secret_with_256_bits_of_secret() -> None:
    key_id, token = new_key()
    parsed = parse_key(token)
    assert parsed is not None
    assert parsed[0] == key_id
    assert token.startswith(f"rsk_{key_id}_")
    assert len(parsed[1]) == 43  # 32 bytes of URL-safe base64


@pytest.mark.parametrize("token", ["", "rsk_", "rsk_0123_abc", "Bearer x", "rsk_zz" + "0" * 60])
def test_a_malformed_key_does_not_parse(token: str) -> None:
    assert parse_key(token) is None


async def test_the_table_holds_the_hash_never_the_secret(
    database: Database, tenants: dict[str, Tenant], directory: KeyDirectory
) -> None:
    key, token = await directory.create("acme", ["content:read"])
    async with database.reading() as session:
        row = (await session.scalars(select(ApiKeyRow).where(ApiKeyRow.id == key.id))).one()
    secret = token.split("_", 2)[2]
    assert row.secret_hash == hash_secret(secret)
    assert secret not in (row.secret_hash, row.scopes, row.name, row.id)
    assert [k.id for k in await directory.list("acme") if k.id == key.id]


async def test_a_revoked_key_fails_within_the_cache_ttl(
    tenants: dict[str, Tenant],
    clock: ManualClock,
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
) -> None:
    key, token = await directory.create("acme", ["orders:read"])
    verifier = make_verifier()
    principal = await verifier.verify(token)
    assert principal.actor == key.id
    assert principal.scopes == frozenset({"orders:read"})
    await directory.revoke(key.id)
    clock.advance(1.0)
    with pytest.raises(InvalidCredentialError):
        await verifier.verify(token)


async def test_a_wrong_secret_an_expired_key_and_a_disabled_tenant_are_refused(
    database: Database,
    tenants: dict[str, Tenant],
    clock: ManualClock,
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
) -> None:
    _, token = await directory.create("acme", ["orders:read"])
    verifier = make_verifier()
    with pytest.raises(InvalidCredentialError):
        await verifier.verify(token[:-1] + ("A" if token[-1] != "A" else "B"))
    _, expired = await directory.create("acme", ["orders:read"], expires_in=-timedelta(1))
    with pytest.raises(InvalidCredentialError):
        await verifier.verify(expired)
    _, globex = await directory.create("globex", ["orders:read"])
    await verifier.verify(globex)
    await TenantDirectory(database).set_active("globex", False)
    clock.advance(1.0)
    with pytest.raises(TenantNotFoundError):
        await verifier.verify(globex)


async def test_a_key_stops_at_its_expiry_on_the_wall_clock_cached_or_not(
    tenants: dict[str, Tenant],
    clock: ManualClock,
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
) -> None:
    ten = timedelta(seconds=10)
    key, cached = await directory.create("acme", ["orders:read"], expires_in=ten)
    assert key.expires_at == key.created_at + ten
    _, unseen = await directory.create("acme", ["orders:read"], expires_in=ten)
    verifier = make_verifier()
    clock.advance(9.5)
    await verifier.verify(cached)  # loaded at 9.5 s: trusted until 10.5 s
    clock.advance(0.5)  # its expiry, while its entry is still trusted
    with pytest.raises(InvalidCredentialError, match="expired"):
        await verifier.verify(cached)
    with pytest.raises(InvalidCredentialError, match="expired"):
        await verifier.verify(unseen)  # loaded now: refused at once
    clock.advance(5.0)  # both read again: still expired on the wall clock
    for token in (cached, unseen):
        with pytest.raises(InvalidCredentialError, match="expired"):
            await verifier.verify(token)


def test_the_log_check_finds_a_secret_wherever_it_is_logged() -> None:
    """The check that ends the test run, shown to fail: a secret in a message's arguments
    or in a traceback, logged by a logger that does not propagate (as uvicorn's do), is
    found; the key's public id alone is not a leak."""
    key_id = "0123456789abcdef"
    token = f"rsk_{key_id}_{secrets.token_urlsafe(32)}"  # by hand: no key of this run
    quiet = logging.getLogger("rustok-test.leaks")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    quiet.setLevel(logging.INFO)
    capture = LogCapture()
    with capture.installed() as lines:
        quiet.warning("refused %s", token)
        quiet.info("key %s used", key_id)
        try:
            raise ValueError(token)
        except ValueError:
            quiet.exception("failed")
    assert len(lines) == 3
    assert leaked_secrets(lines, [token]) == [lines[0], lines[2]]
    assert leaked_secrets(lines, CREATED_KEYS) == []
    made = key_module.new_key()[1]  # every key this process makes is looked for
    assert made in CREATED_KEYS


# -- while the database fails: stale-on-error, bounded ----------------------------------


class Outage:
    """Key loads as the server makes them, through a ``database`` breaker (it opens at the
    first failure), over a database that the test switches off (a query that times out)."""

    def __init__(self, directory: KeyDirectory, clock: ManualClock) -> None:
        self.directory = directory
        self.down = False
        self.breaker = CircuitBreaker(
            "database", CircuitBreakerConfig(failure_threshold=1, timeout=30.0), clock=clock
        )

    async def _query(self, key_id: str) -> KeyRecord | None:
        if self.down:
            raise TimeoutError("the database does not answer")
        return await self.directory.load(key_id)

    async def load(self, key_id: str) -> KeyRecord | None:
        return await self.breaker.call(self._query, key_id)


@pytest.fixture
def outage(directory: KeyDirectory, clock: ManualClock) -> Outage:
    """Key loads of ``directory`` that the test can turn into timeouts."""
    return Outage(directory, clock)


async def test_a_key_dropped_by_a_change_announcement_stands_in_while_the_database_fails(
    tenants: dict[str, Tenant],
    clock: ManualClock,
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
    outage: Outage,
) -> None:
    key, token = await directory.create("acme", ["orders:read"])
    _, unseen = await directory.create("acme", ["orders:read"])
    verifier = make_verifier(load=outage.load)
    assert (await verifier.verify(token)).actor == key.id
    verifier.clear()  # a change somewhere: the key is read again on its next use
    await directory.revoke(key.id)  # meanwhile revoked, which this process cannot read
    outage.down = True
    assert (await verifier.verify(token)).actor == key.id  # the failed read: its entry
    assert outage.breaker.state is CircuitState.OPEN
    assert (await verifier.verify(token)).actor == key.id  # refused by the breaker
    with pytest.raises(TenantStoreUnavailableError) as refused:
        await verifier.verify(unseen)  # nothing can stand in: the store's 503
    assert 1.0 <= refused.value.retry_after <= 30.0
    outage.down = False
    clock.advance(30.0)  # the breaker lets a probe through: the key is read again
    with pytest.raises(InvalidCredentialError, match="revoked"):
        await verifier.verify(token)


async def test_an_entry_stands_in_for_a_failed_load_up_to_the_stale_limit_after_its_load(
    tenants: dict[str, Tenant],
    clock: ManualClock,
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
    outage: Outage,
) -> None:
    key, token = await directory.create("acme", ["orders:read"])
    verifier = make_verifier(load=outage.load, stale_limit=60.0)
    await verifier.verify(token)
    outage.down = True
    clock.advance(60.0)
    assert (await verifier.verify(token)).actor == key.id
    clock.advance(0.5)
    with pytest.raises(TenantStoreUnavailableError):
        await verifier.verify(token)


async def test_while_the_database_fails_a_key_being_reloaded_is_answered_from_its_entry_at_once(
    tenants: dict[str, Tenant],
    clock: ManualClock,
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
) -> None:
    key, token = await directory.create("acme", ["orders:read"])
    hanging = asyncio.Event()
    released = asyncio.Event()
    failing = False

    async def load(key_id: str) -> KeyRecord | None:
        if failing:
            hanging.set()
            await released.wait()  # a reload that waits out its deadline
            raise TimeoutError("the database does not answer")
        return await directory.load(key_id)

    verifier = make_verifier(load=load, degraded=lambda: failing)
    await verifier.verify(token)
    failing = True
    clock.advance(1.0)  # the entry came due: the next use reloads it
    first = asyncio.create_task(verifier.verify(token))
    await hanging.wait()
    # Another request for the same key does not join the reload: its entry answers.
    assert (await verifier.verify(token)).actor == key.id
    assert not first.done()
    released.set()
    assert (await first).actor == key.id  # the failed reload: the entry stands in


async def test_a_forgotten_key_never_stands_in_for_a_failed_load(
    tenants: dict[str, Tenant],
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
    outage: Outage,
) -> None:
    _, token = await directory.create("acme", ["orders:read"])
    key_id = parse_key(token)
    assert key_id is not None
    verifier = make_verifier(load=outage.load)
    await verifier.verify(token)
    verifier.forget(key_id[0])  # this process changed the key (the admin API revoked it)
    outage.down = True
    with pytest.raises(TenantStoreUnavailableError):
        await verifier.verify(token)


async def test_a_load_that_began_before_a_change_announcement_is_not_trusted_after_it(
    tenants: dict[str, Tenant],
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
) -> None:
    _, token = await directory.create("acme", ["orders:read"])
    loads: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_load(key_id: str) -> KeyRecord | None:
        loads.append(key_id)
        record = await directory.load(key_id)
        started.set()
        await release.wait()
        return record

    verifier = make_verifier(load=slow_load)
    first = asyncio.create_task(verifier.verify(token))
    await started.wait()
    verifier.clear()  # announced while the row read before it is on its way
    release.set()
    await first
    await verifier.verify(token)  # read again, though the clock has not moved
    assert len(loads) == 2


async def test_a_failing_key_load_is_logged_once_until_the_key_loads_again(
    tenants: dict[str, Tenant],
    caplog: pytest.LogCaptureFixture,
    clock: ManualClock,
    directory: KeyDirectory,
    make_verifier: VerifierFactory,
    outage: Outage,
) -> None:
    caplog.set_level(logging.INFO, logger="rustok.server.auth")
    key, token = await directory.create("acme", ["orders:read"])
    verifier = make_verifier(load=outage.load)
    await verifier.verify(token)
    outage.down = True
    for _ in range(5):
        clock.advance(1.0)
        await verifier.verify(token)
    outage.down = False
    clock.advance(30.0)
    await verifier.verify(token)
    lines = [r.getMessage() for r in caplog.records if r.name == "rustok.server.auth"]
    assert [line for line in lines if "could not load" in line] == [
        f"could not load API key {key.id}: TimeoutError; its entry of 1.0 s ago stands in"
    ]
    assert f"API key {key.id} loaded again" in lines


@pytest.mark.parametrize(
    ("ttl", "stale_limit", "named"), [(0.0, 1.0, "ttl"), (1.0, -1.0, "stale_limit")]
)
async def test_a_verifier_refuses_a_cache_ttl_that_is_not_positive_or_a_negative_stale_limit(
    ttl: float, stale_limit: float, named: str
) -> None:
    database = Database("sqlite+aiosqlite:///:memory:")
    try:
        with pytest.raises(ValueError, match=f"KeyVerifier {named} must be"):
            KeyVerifier(KeyDirectory(database), ttl=ttl, stale_limit=stale_limit)
    finally:
        await database.dispose()
