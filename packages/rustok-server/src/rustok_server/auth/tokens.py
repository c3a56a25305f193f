"""JWT bearer tokens from a configured identity provider, verified with PyJWT.

The signing keys come from a configured public key, or from a JWKS URL fetched through a
``jwks`` circuit breaker and a retry policy of ``rustok_core.resilience`` (the identity
provider is an external service), cached for `JwtConfig.jwks_ttl` seconds and fetched
again early when a token names a key id the cached set lacks (at most once every
`JWKS_REFRESH_MIN` seconds). ``iss``, ``aud``, ``exp`` and ``sub`` are required; ``exp``
and ``nbf`` are checked. The tenant and the scopes come from configured claims; a token
never carries the ``admin`` scope (platform administration takes an admin key).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import jwt

from rustok_core.resilience import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitStorage,
    Exponential,
    RetryAttempt,
    RetryPolicy,
)
from rustok_core.tenancy import InvalidTenantIdentifierError, parse_tenant_identifier
from rustok_server.auth.principal import Principal
from rustok_server.auth.scopes import ADMIN, parse_scopes
from rustok_server.errors import InvalidCredentialError

__all__ = ["JWKS_REFRESH_MIN", "JwtConfig", "JwtVerifier"]

JWKS_REFRESH_MIN: Final = 30.0
"""Fewest seconds between two fetches of the JWKS for an unknown key id."""


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """Where tokens come from and how to read them.

    Attributes:
        issuer: the required ``iss``.
        audience: the required ``aud``.
        jwks_url: where the signing keys are published (or give ``public_key``).
        public_key: a PEM public key (or give ``jwks_url``).
        algorithms: the accepted signing algorithms (never ``none``).
        tenant_claim: the claim holding the tenant's UUID or slug.
        scopes_claim: the claim holding the scopes (a space-separated string or a list).
        leeway: seconds of clock skew tolerated on ``exp`` and ``nbf``.
        jwks_ttl: seconds a fetched JWKS is used.
        fetch_timeout: seconds one JWKS fetch may take.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    public_key: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    tenant_claim: str = "tenant"
    scopes_claim: str = "scope"
    leeway: float = 0.0
    jwks_ttl: float = 300.0
    fetch_timeout: float = 2.0

    def __post_init__(self) -> None:
        if (self.jwks_url is None) == (self.public_key is None):
            raise ValueError("give exactly one of jwks_url and public_key")
        if not self.algorithms or any(a.lower() == "none" for a in self.algorithms):
            raise ValueError(f"algorithms must name real algorithms, got {self.algorithms}")


class JwtVerifier:
    """Verifies JWT bearer tokens.

    Args:
        config: the issuer, audience, keys and claims.
        clock: monotonic seconds for the JWKS cache and the breaker.
        on_retry: told of each retried JWKS fetch (for metrics).
        storage: where the ``jwks`` breaker keeps its state (shared on Redis by a
            deployment with ``RUSTOK_REDIS_URL``; this process's memory by default).
    """

    def __init__(
        self,
        config: JwtConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_retry: Callable[[RetryAttempt], None] | None = None,
        storage: CircuitStorage | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.breaker: CircuitBreaker = CircuitBreaker(
            "jwks",
            CircuitBreakerConfig(failure_threshold=3, timeout=30.0),
            clock=clock,
            storage=storage,
        )
        self.retry: RetryPolicy = RetryPolicy(
            max_attempts=3,
            backoff=Exponential(base=0.1),
            budget=5.0,
            name="jwks",
            on_retry=on_retry,
        )
        self._jwks: jwt.PyJWKSet | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Principal:
        """The principal of a token.

        Raises:
            InvalidCredentialError: malformed, badly signed, expired, not yet valid, from
                another issuer or for another audience, or without a valid tenant claim.
            CircuitOpenError: the JWKS cannot be fetched and none is cached (503).
        """
        config = self.config
        try:
            header = jwt.get_unverified_header(token)
            key = await self._signing_key(header.get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidCredentialError(f"token refused: {type(exc).__name__}") from None
        subject = claims["sub"]
        tenant_value = claims.get(config.tenant_claim)
        if not isinstance(subject, str) or not isinstance(tenant_value, str):
            raise InvalidCredentialError("token without a string sub and tenant claim")
        try:
            tenant = parse_tenant_identifier(tenant_value)
        except InvalidTenantIdentifierError:
            raise InvalidCredentialError("token with a malformed tenant claim") from None
        raw_scopes = claims.get(config.scopes_claim, "")
        if not isinstance(raw_scopes, str | list):
            raise InvalidCredentialError("token with a malformed scopes claim")
        scopes = parse_scopes(
            [str(s) for s in raw_scopes] if isinstance(raw_scopes, list) else raw_scopes
        )
        return Principal(f"jwt:{subject}"[:255], tenant, scopes - {ADMIN.value}, "token")

    async def _signing_key(self, kid: object) -> jwt.PyJWK | str:
        if self.config.public_key is not None:
            return self.config.public_key
        jwks = await self._current_jwks(force=False)
        key = _find(jwks, kid)
        if key is None and self.clock() - self._fetched_at >= JWKS_REFRESH_MIN:
            key = _find(await self._current_jwks(force=True), kid)  # the provider rotated
        if key is None:
            raise jwt.InvalidKeyError(f"no signing key {kid!r}")
        return key

    async def _current_jwks(self, *, force: bool) -> jwt.PyJWKSet:
        if not force and self._jwks_fresh():
            assert self._jwks is not None
            return self._jwks
        async with self._lock:
            if not force and self._jwks_fresh():
                assert self._jwks is not None
                return self._jwks
            try:
                document = await self.retry.execute(self.breaker.call, self._fetch)
            except Exception:
                if self._jwks is not None:
                    return self._jwks  # the provider is away: keep using what we had
                raise
            self._jwks = jwt.PyJWKSet.from_dict(document)
            self._fetched_at = self.clock()
            return self._jwks

    def _jwks_fresh(self) -> bool:
        return self._jwks is not None and self.clock() - self._fetched_at < self.config.jwks_ttl

    async def _fetch(self) -> dict[str, object]:
        url = self.config.jwks_url
        assert url is not None
        timeout = self.config.fetch_timeout

        def get() -> dict[str, object]:
            # The configured identity provider's URL, not a client's.
            with urllib.request.urlopen(url, timeout=timeout) as response:
                document = json.loads(response.read(1_000_000))
            if not isinstance(document, dict):
                raise ValueError("the JWKS is not a JSON object")
            return document

        return await asyncio.wait_for(asyncio.to_thread(get), timeout + 1.0)


def _find(jwks: jwt.PyJWKSet, kid: object) -> jwt.PyJWK | None:
    if kid is None and len(jwks.keys) == 1:
        return jwks.keys[0]
    for key in jwks.keys:
        if key.key_id == kid:
            return key
    return None
