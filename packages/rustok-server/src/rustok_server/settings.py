"""Server settings, read from ``RUSTOK_*`` environment variables.

Every setting has a default that runs the server on an embedded SQLite file, so
``rustok-server serve`` works in an empty directory. The table of settings lives
in ``docs/TENANT_CACHE_GUIDE.md`` and the package README.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rustok_server.db.engine import POSTGRES_POOL_SIZE
from rustok_server.scaleout import DEFAULT_NAMESPACE, check_namespace

__all__ = ["DEFAULT_DATABASE_URL", "ResolutionSource", "Settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./rustok.db"
"""The database of a server that sets no ``RUSTOK_DATABASE_URL``: ``rustok.db`` in the working
folder."""
_DRIVERS = frozenset({"sqlite+aiosqlite", "postgresql+asyncpg"})


class ResolutionSource(StrEnum):
    """Where the tenant of a request may come from, tried in the configured order."""

    HEADER = "header"
    """The tenant header (``X-Tenant-ID`` by default): a UUID or a slug."""
    HOST = "host"
    """The Host header: a tenant's own domain, or ``<slug>.<base domain>``."""
    DEFAULT = "default"
    """The fixed default tenant (``RUSTOK_DEFAULT_TENANT``)."""


class Settings(BaseSettings):
    """How the server runs: database, tenant resolution, tenant cache and breaker.

    Each field is read from ``RUSTOK_<FIELD>`` (case-insensitive); a list is
    given comma-separated (``RUSTOK_TENANT_RESOLUTION=header,host``).

    Examples:
        >>> Settings(database_url="sqlite+aiosqlite:///:memory:").tenant_header
        'X-Tenant-ID'
    """

    model_config: ClassVar[SettingsConfigDict] = SettingsConfigDict(
        env_prefix="RUSTOK_", frozen=True, extra="forbid", use_attribute_docstrings=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    """SQLAlchemy async URL: ``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``."""
    database_echo: bool = False
    """Log every SQL statement (development only)."""
    postgres_pool_size: int = Field(default=POSTGRES_POOL_SIZE, ge=1)
    """On PostgreSQL, the most connections one worker's statement pool opens."""
    host: str = "127.0.0.1"
    """Address ``serve`` listens on."""
    port: int = Field(default=8000, ge=0, le=65535)
    """Port ``serve`` listens on."""
    log_format: Literal["text", "json"] = "text"
    """``text`` (one readable line a record) or ``json`` (one JSON object a line)."""
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Least severe log records shown (``serve --log-level`` overrides it)."""
    access_log: bool = True
    """Write one ``rustok.access`` record per request (at INFO)."""
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """When set, ``serve`` also answers ``GET /metrics`` on this port, without credentials
    (``--metrics-port`` overrides it)."""
    tracing: bool = False
    """Trace requests with OpenTelemetry (the ``rustok-server[otel]`` extra), configured by
    the standard ``OTEL_*`` variables (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_TRACES_SAMPLER``, ...)."""
    metrics_host: str = "127.0.0.1"
    """Address of the metrics port: loopback unless Prometheus scrapes from elsewhere."""

    tenant_resolution: Annotated[tuple[ResolutionSource, ...], NoDecode] = (
        ResolutionSource.HEADER,
        ResolutionSource.HOST,
        ResolutionSource.DEFAULT,
    )
    """Sources of the tenant, tried in order; the header, when sent, is decisive."""
    tenant_header: str = "X-Tenant-ID"
    """Name of the request header carrying a tenant UUID or slug."""
    base_domain: str | None = None
    """With ``example.com``, the host ``acme.example.com`` resolves the tenant ``acme``."""
    default_tenant: str | None = None
    """UUID or slug of the tenant used when no other source names one."""
    demo_tenant: bool = True
    """``serve`` creates the tenant ``demo`` when the database has no tenant at all."""

    cache_ttl: float = Field(default=300.0, gt=0)
    """Seconds a loaded tenant stays fresh."""
    cache_idle: float = Field(default=180.0, gt=0)
    """Seconds an entry stays fresh without being read."""
    cache_capacity: int = Field(default=10_000, ge=1)
    """Most entries kept; the least recently used goes first."""
    cache_negative_ttl: float = Field(default=30.0, gt=0)
    """Seconds an unknown identifier is remembered as unknown."""
    cache_stale_window: float = Field(default=3600.0, ge=0)
    """Seconds after expiry (or after a change was announced) a tenant may still be served
    while the database is failing; a verified API key likewise, counted from its last
    load."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    """Most bytes of a request body (1 MiB); a larger one is refused while it is read (413)."""
    max_json_depth: int = Field(default=32, ge=1)
    """Most nesting of arrays and objects in a JSON body; a deeper one is a 400 problem,
    refused before it is parsed."""
    max_json_keys: int = Field(default=1000, ge=1)
    """Most object members in a JSON body, all objects together; more is a 400 problem."""
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    """Most bytes of a request's line and headers together (32 KiB); past it the client gets
    a 431 problem and the connection is closed."""
    max_headers: int = Field(default=100, ge=1)
    """Most header fields of a request; past it a 431 problem and the connection closed."""
    head_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client may take to send a request's line and headers (from the start of
    the connection, or from the end of the previous response); a slower one is closed."""
    keep_alive_timeout: float = Field(default=5.0, gt=0)
    """Seconds an idle keep-alive connection is kept open."""
    max_connections: int = Field(default=512, ge=1)
    """Most open connections of one worker; past it a new connection is answered 503 and
    closed (keep it under the process's open-file limit, with room for the database)."""
    auth_failure_rate: float = Field(default=10.0, ge=0)
    """Failed authentications a second one client address may make (a token bucket) before
    its requests with a credential are answered 429; ``0`` turns the limit off."""
    auth_failure_burst: int = Field(default=20, ge=1)
    """Failed authentications one client address may make at once."""
    key_negative_ttl: float = Field(default=5.0, gt=0)
    """Seconds an API key id that does not exist is remembered as unknown (no query)."""
    key_negative_capacity: int = Field(default=10_000, ge=1)
    """Most unknown key ids remembered; the oldest go first, so memory stays flat."""
    api_docs: bool = True
    """Serve the interactive API documentation (``/docs``, ``/redoc``) from the server's own
    assets; ``false`` in production to hide it (``/openapi.json`` stays)."""
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    """Origins (``https://app.example.com``, comma-separated) whose browser apps may call the
    API; none by default."""
    problem_base_url: str | None = None
    """Where problem types are documented: ``type`` is this URL followed by the type's name
    (``https://docs.example.com/problems/validation``); by default the relative reference
    ``/problems/validation``, served by this server."""

    db_query_timeout: float = Field(default=2.0, gt=0)
    """Seconds a read may take (an entity, a page, a tenant, a key, the health ping);
    past it the statement is cancelled, its connection discarded, the request answered
    504, and the timeout counts as a failure of the ``database`` breaker."""
    db_write_timeout: float = Field(default=5.0, gt=0)
    """Seconds each step of a write may take (the begin, each statement, the commit; on
    SQLite the wait for the write lock too); past it the write is rolled back with its
    connection and the request answered 504."""
    breaker_failure_threshold: int = Field(default=5, ge=1)
    """Consecutive failed statements (timeouts, lost connections) that open the
    ``database`` breaker; while it is open, requests that need the database are
    answered 503 at once."""
    breaker_success_threshold: int = Field(default=2, ge=1)
    """Successful probes that close a half-open breaker."""
    breaker_timeout: float = Field(default=5.0, gt=0)
    """Seconds the breaker stays open the first time before it lets trial requests
    through; each reopening without a close in between doubles it, up to
    ``breaker_max_timeout``. (Recovery does not wait for it: while the breaker is open
    each process pings the database once a second and lets trials through as soon as
    it answers.)"""
    breaker_max_timeout: float = Field(default=60.0, gt=0)
    """The longest the breaker stays open while the database stays down."""

    rate_limit_per_second: float = Field(default=100.0, ge=0)
    """Requests a second each tenant may make (a token bucket); ``0`` turns limits off."""
    rate_limit_burst: int = Field(default=200, ge=0)
    """Requests a tenant may make at once after a quiet period; ``0`` turns limits off."""
    redis_url: str | None = None
    """``redis://`` URL (the ``rustok-server[redis]`` extra): every process shares the
    breakers' state and the rate-limit buckets there, and hears of tenant and key changes
    on its channel at once. Without it each process keeps its own, and changes arrive
    through the database's change counter (within a second)."""
    redis_timeout: float = Field(default=0.25, gt=0)
    """Seconds any one Redis call may take; past it the process goes on with its own state
    until Redis answers again."""
    redis_namespace: str = DEFAULT_NAMESPACE
    """The deployment's name on Redis: its change channel (``<namespace>:changes``), its
    breakers and its rate-limit buckets are named under it, so deployments with different
    namespaces can share one Redis. 1-100 letters, digits, ``_``, ``.``, ``:`` or ``-``."""

    jwt_issuer: str | None = None
    """Accept JWT bearer tokens from this issuer (``iss``); needs an audience and keys."""
    jwt_audience: str | None = None
    """The ``aud`` a token must carry."""
    jwt_jwks_url: str | None = None
    """Where the issuer publishes its signing keys (a JWKS document)."""
    jwt_public_key: str | None = None
    """A PEM public key to verify tokens with, instead of a JWKS URL."""
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ("RS256", "ES256")
    """Signing algorithms accepted, comma-separated."""
    jwt_tenant_claim: str = "tenant"
    """The claim holding the tenant's UUID or slug."""
    jwt_scopes_claim: str = "scope"
    """The claim holding the scopes (space-separated, or a list)."""
    jwt_leeway: float = Field(default=0.0, ge=0)
    """Seconds of clock skew tolerated on ``exp`` and ``nbf``."""
    webhooks: bool = True
    """Deliver webhook events from this process (the events are written either way)."""
    webhook_allow_http: bool = False
    """Accept ``http://`` endpoint URLs (local development and tests; HTTPS otherwise)."""
    webhook_allow_private_addresses: bool = False
    """Deliver to loopback, private, link-local and cloud metadata addresses (local
    development and tests only)."""
    webhook_attempt_timeout: float = Field(default=10.0, gt=0)
    """Seconds one delivery attempt may take, connecting and reading included."""
    webhook_max_attempts: int = Field(default=10, ge=1)
    """Attempts of one delivery before it is failed (the last about four hours after the
    first, with the default schedule)."""
    webhook_retry_base: float = Field(default=30.0, gt=0)
    """Seconds before the first retry; each next wait doubles, with jitter."""
    webhook_retry_max_delay: float = Field(default=21_600.0, gt=0)
    """The longest wait between two attempts, in seconds (six hours)."""
    webhook_disable_after: float = Field(default=432_000.0, gt=0)
    """Seconds an endpoint may fail without a success before it is disabled (five days)."""
    webhook_retention: float = Field(default=604_800.0, gt=0)
    """Seconds events are kept after their deliveries ended (seven days)."""
    webhook_poll_interval: float = Field(default=1.0, gt=0)
    """Seconds between two looks for due deliveries written by other processes."""
    webhook_concurrency: int = Field(default=4, ge=1)
    """Attempts to one endpoint in flight at once, per process (its bulkhead)."""
    webhook_secret_grace: float = Field(default=86_400.0, ge=0)
    """Seconds the previous secret of a rotated endpoint still signs (one day)."""
    webhook_claim_lease: float = Field(default=120.0, gt=0)
    """Seconds a process holds the deliveries it claimed; a process killed meanwhile
    loses nothing, another one delivers them once the lease ends. Longer than
    ``webhook_attempt_timeout``."""
    webhook_batch_size: int = Field(default=100, ge=1)
    """Most deliveries one process has in flight at once (and claims in one statement)."""

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _jwt_complete(self) -> Settings:
        if self.jwt_issuer is None:
            return self
        if self.jwt_audience is None:
            raise ValueError("RUSTOK_JWT_ISSUER needs RUSTOK_JWT_AUDIENCE too")
        if (self.jwt_jwks_url is None) == (self.jwt_public_key is None):
            raise ValueError(
                "RUSTOK_JWT_ISSUER needs one of RUSTOK_JWT_JWKS_URL and RUSTOK_JWT_PUBLIC_KEY"
            )
        return self

    @model_validator(mode="after")
    def _lease_outlasts_attempt(self) -> Settings:
        if self.webhook_claim_lease <= self.webhook_attempt_timeout:
            raise ValueError(
                "RUSTOK_WEBHOOK_CLAIM_LEASE must be longer than RUSTOK_WEBHOOK_ATTEMPT_TIMEOUT"
                f" ({self.webhook_claim_lease} <= {self.webhook_attempt_timeout}): a claim"
                " that ends before its attempt would let another process deliver it again"
            )
        return self

    @field_validator("redis_namespace")
    @classmethod
    def _namespace_usable(cls, value: str) -> str:
        return check_namespace(value)

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if scheme not in _DRIVERS:
            raise ValueError(
                f"use a sqlite+aiosqlite:/// or postgresql+asyncpg:// URL, got {scheme!r}"
            )
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError(f"an origin is scheme://host[:port] with no path, got {origin!r}")
        return value

    @field_validator("tenant_resolution", mode="before")
    @classmethod
    def _split_sources(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().lower() for part in value.split(",") if part.strip())
        return value

    @field_validator("tenant_resolution")
    @classmethod
    def _sources_not_empty(
        cls, value: tuple[ResolutionSource, ...]
    ) -> tuple[ResolutionSource, ...]:
        if not value:
            raise ValueError("name at least one of: header, host, default")
        if len(set(value)) != len(value):
            raise ValueError(f"each source may appear once, got {[s.value for s in value]}")
        return value

    @field_validator("tenant_header")
    @classmethod
    def _header_is_token(cls, value: str) -> str:
        if not value or not all(c.isascii() and (c.isalnum() or c == "-") for c in value):
            raise ValueError(f"a header name is letters, digits and '-', got {value!r}")
        return value

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is SQLite (embedded, one file)."""
        return self.database_url.startswith("sqlite")
