"""API keys: the format, the stored hash, the directory, and verification through the
one-second cache, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

import pytest
from api_fixtures import CREATED_KEYS, LogCapture, WallClock, leaked_secrets
from sqlalchemy import select

from rustok_core.testing import ManualClock
from rustok_server.auth import KeyDirectory, KeyVerifier, hash_secret, parse_key
from rustok_server.auth import keys as key_module
from rustok_server.auth.keys import new_key
from rustok_server.auth.tables import ApiKeyRow
from rustok_server.db import Database
from rustok_server.errors import InvalidCredentialError, TenantNotFoundError
from rustok_server.tenancy.repository import Tenant, TenantDirectory


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
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    database = Database(database_url)
    try:
        key, token = await KeyDirectory(database).create("acme", ["content:read"])
        async with database.sessions() as session:
            row = (await session.scalars(select(ApiKeyRow).where(ApiKeyRow.id == key.id))).one()
        secret = token.split("_", 2)[2]
        assert row.secret_hash == hash_secret(secret)
        assert secret not in (row.secret_hash, row.scopes, row.name, row.id)
        assert [k.id for k in await KeyDirectory(database).list("acme") if k.id == key.id]
    finally:
        await database.dispose()


async def test_a_revoked_key_fails_within_the_cache_ttl(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    database = Database(database_url)
    clock = ManualClock()
    try:
        directory = KeyDirectory(database)
        key, token = await directory.create("acme", ["orders:read"])
        verifier = KeyVerifier(directory, clock=clock)
        principal = await verifier.verify(token)
        assert principal.actor == key.id
        assert principal.scopes == frozenset({"orders:read"})
        await directory.revoke(key.id)
        clock.advance(1.0)
        with pytest.raises(InvalidCredentialError):
            await verifier.verify(token)
        await verifier.close()
    finally:
        await database.dispose()


async def test_a_wrong_secret_an_expired_key_and_a_disabled_tenant_are_refused(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    database = Database(database_url)
    clock = ManualClock()
    try:
        directory = KeyDirectory(database)
        _, token = await directory.create("acme", ["orders:read"])
        verifier = KeyVerifier(directory, clock=clock)
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
        await verifier.close()
    finally:
        await database.dispose()


async def test_a_key_stops_at_its_expiry_on_the_wall_clock_cached_or_not(
    database_url: str, tenants: dict[str, Tenant]
) -> None:
    database = Database(database_url)
    clock = ManualClock()
    wall = WallClock(clock)
    try:
        directory = KeyDirectory(database, clock=wall)
        ten = timedelta(seconds=10)
        key, cached = await directory.create("acme", ["orders:read"], expires_in=ten)
        assert key.expires_at == key.created_at + ten
        _, unseen = await directory.create("acme", ["orders:read"], expires_in=ten)
        verifier = KeyVerifier(directory, clock=clock, wall_clock=wall)
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
        await verifier.close()
    finally:
        await database.dispose()


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
