"""What the public surface of ``rustok-server serve`` gives away, over real HTTP: the health
checks tell no tenant that exists from one that does not (and look none up), no redirect
takes its host from the request, the API documentation loads nothing from another origin
(and can be turned off), and CORS answers only the configured origins."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest
from api_fixtures import NODES, ORDERS, ApiKeys, assert_problem, start_serve

from rustok_server.tenancy.repository import Tenant

# Each test starts `rustok-server serve` as users run it.
pytestmark = pytest.mark.slow

APP = "https://app.example.com"
PREFLIGHT_HEADERS = "authorization,idempotency-key,if-match,x-tenant-id"
EXPOSED = (
    "etag",
    "location",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-request-id",
    "idempotent-replayed",
)
DOCS_PAGES = ("/docs", "/redoc")


class _Log:
    """The stderr lines of a server process, read by a thread (so that it never blocks on a
    full pipe); `started` is set once uvicorn accepts connections."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.started = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.lines.append(line)
                if "Application startup complete" in line:
                    self.started.set()

    def close(self) -> None:
        """Wait for the end of the stream (the process has exited)."""
        self._thread.join(30)


@contextmanager
def serving(cwd: Path, **variables: str) -> Iterator[httpx.Client]:
    """``rustok-server serve --port 0`` in ``cwd`` with these ``RUSTOK_*`` variables (rate
    limits off); yields a client of it once it accepts connections."""
    process = start_serve(
        cwd, "--port", "0", variables={"RUSTOK_RATE_LIMIT_PER_SECOND": "0", **variables}
    )
    assert process.stdout is not None
    assert process.stderr is not None
    log = _Log(process.stderr)
    try:
        banner = process.stdout.readline()
        assert " listening on http://127.0.0.1:" in banner, (banner, log.lines)
        url = banner.split(" listening on ")[1].strip()
        assert log.started.wait(60), "".join(log.lines)
        with httpx.Client(base_url=url, timeout=30) as client:
            yield client
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        log.close()
        process.stdout.close()


def _cache_counters(client: httpx.Client, api_keys: ApiKeys) -> dict[str, int]:
    """The tenant cache's counters, from an admin's readiness check."""
    body = client.get("/health/ready", headers=api_keys.auth("admin")).json()
    counters: dict[str, int] = body["tenant_cache"]
    return counters


def _without_trace(response: httpx.Response) -> tuple[int, object]:
    """Status and body, less the request's own id (a problem's ``trace_id``)."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("trace_id", None)
    return response.status_code, body


# (1) The health checks: no tenant oracle.


def test_health_checks_answer_the_same_whatever_tenant_is_named_and_look_none_up(
    database_url: str, tenants: dict[str, Tenant], tmp_path: Path, api_keys: ApiKeys
) -> None:
    named = ("acme", str(tenants["acme"].id), "umbrella", "initech", "no-such-tenant-42")
    with serving(tmp_path, RUSTOK_DATABASE_URL=database_url) as client:
        before = _cache_counters(client, api_keys)
        for path in ("/health/live", "/health/ready", "/no/such/path"):
            plain = _without_trace(client.get(path))
            asked = [{"X-Tenant-ID": name} for name in named]
            # A tenant's own key changes nothing outside /api either.
            asked += [
                {"X-Tenant-ID": "umbrella", **api_keys.auth(key)} for key in ("acme", "initech")
            ]
            for headers in asked:
                assert _without_trace(client.get(path, headers=headers)) == plain, (path, headers)
        assert client.get("/health/live").json() == {"status": "ok"}
        assert client.get("/health/ready").json() == {"status": "ready"}
        # Nothing above looked a tenant up: the cache never saw a read.
        assert _cache_counters(client, api_keys) == before

        # An admin key may still ask which tenant the header resolves to.
        admin = api_keys.auth("admin")
        acme = client.get("/health/ready", headers={"X-Tenant-ID": "acme", **admin}).json()
        assert acme["tenant"] == {"id": str(tenants["acme"].id), "slug": "acme"}
        for missing in ("umbrella", "initech"):
            response = client.get("/health/ready", headers={"X-Tenant-ID": missing, **admin})
            assert_problem(response, 404, "TENANT_NOT_FOUND")


# (2) No redirect built from the Host header.


def test_a_trailing_slash_is_the_same_404_problem_with_or_without_a_key(
    database_url: str, tenants: dict[str, Tenant], tmp_path: Path, api_keys: ApiKeys
) -> None:
    with serving(tmp_path, RUSTOK_DATABASE_URL=database_url) as client:
        for path in ("/api/tenant/", f"{NODES}/", "/health/live/", "/openapi.json/"):
            answers = []
            for headers in ({}, api_keys.auth("acme"), api_keys.auth("admin")):
                response = client.get(path, headers={"Host": "evil.example", **headers})
                assert not response.is_redirect, (path, response.headers)
                assert "location" not in response.headers
                assert "evil.example" not in response.text
                assert_problem(response, 404, "NOT_FOUND")
                answers.append(_without_trace(response))
            assert answers[0] == answers[1] == answers[2], (path, answers)
        # The same paths without the slash are served as before.
        assert client.get("/api/tenant", headers=api_keys.auth("acme")).json()["slug"] == "acme"
        assert_problem(client.get("/api/tenant"), 401, "CREDENTIAL_REQUIRED")


# (3) API documentation that works offline.


def _references(page: str) -> list[str]:
    """Every ``src`` and ``href`` of the page's script and link elements."""
    return re.findall(r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"([^\"]*)\"", page)


def _inline_scripts(page: str) -> list[str]:
    """The sha256 CSP source of each inline script of the page."""
    return [
        "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    ]


def _policy(response: httpx.Response) -> dict[str, list[str]]:
    """The response's Content-Security-Policy, by directive."""
    directives = (part.split() for part in response.headers["content-security-policy"].split(";"))
    return {words[0]: words[1:] for words in directives if words}


def test_the_docs_pages_load_only_their_own_assets_under_a_policy(tmp_path: Path) -> None:
    content_types = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    with serving(tmp_path) as client:
        assets: set[str] = set()
        for path in DOCS_PAGES:
            response = client.get(path)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/html")
            page = response.text
            assert "://" not in page, page  # no absolute URL: no CDN, no font service
            references = _references(page)
            assert references, page
            for reference in references:
                assert reference.startswith("/docs/assets/"), reference
            assets.update(references)
            policy = _policy(response)
            assert policy["default-src"] == ["'self'"]
            assert policy["frame-ancestors"] == ["'none'"]
            assert policy["connect-src"] == ["'self'"]
            assert policy["img-src"] == ["'self'", "data:"]
            assert policy["script-src"] == ["'self'", *(f"'{h}'" for h in _inline_scripts(page))]
            assert "://" not in response.headers["content-security-policy"]
            assert response.headers["x-content-type-options"] == "nosniff"
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/redoc.standalone.js"} <= assets
        for asset in sorted(assets):
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert content_types[Path(asset).suffix] in response.headers["content-type"], asset
            assert len(response.content) > 1000, asset
        # Neither the pages nor their assets are operations of the API.
        paths = client.get("/openapi.json").json()["paths"]
        assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]
        # Every other response loads nothing and is framed by nobody.
        for path in ("/openapi.json", "/health/live", "/api/tenant", "/no/such/path"):
            assert _policy(client.get(path)) == {
                "default-src": ["'none'"],
                "frame-ancestors": ["'none'"],
            }, path


def test_api_docs_off_hides_the_pages_and_keeps_the_openapi_document(tmp_path: Path) -> None:
    with serving(tmp_path, RUSTOK_API_DOCS="false") as client:
        for path in (*DOCS_PAGES, "/docs/assets/swagger-ui-bundle.js", "/docs/oauth2-redirect"):
            assert_problem(client.get(path), 404, "NOT_FOUND")
        document = client.get("/openapi.json")
        assert document.status_code == 200
        assert "/api/tenant" in document.json()["paths"]


# (4) CORS, only for the configured origins.


def _cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def _preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options(
        NODES,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": PREFLIGHT_HEADERS,
        },
    )


def test_without_cors_origins_no_response_has_a_cors_header(tmp_path: Path) -> None:
    with serving(tmp_path) as client:
        preflight = _preflight(client, APP)
        simple = client.get("/api/tenant", headers={"Origin": APP})
        live = client.get("/health/live", headers={"Origin": APP})
    assert preflight.status_code in {401, 405}  # not answered as a preflight
    for response in (preflight, simple, live):
        assert not _cors_headers(response), response.headers


def test_cors_answers_the_configured_origin_without_a_credential(
    database_url: str, tenants: dict[str, Tenant], tmp_path: Path, api_keys: ApiKeys
) -> None:
    variables = {"RUSTOK_DATABASE_URL": database_url, "RUSTOK_CORS_ORIGINS": APP}
    with serving(tmp_path, **variables) as client:
        before = _cache_counters(client, api_keys)
        preflight = _preflight(client, APP)
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == APP
        assert "access-control-allow-credentials" not in preflight.headers
        methods = {m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "POST", "PATCH", "DELETE"} <= methods
        allowed = {
            h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
        }
        assert set(PREFLIGHT_HEADERS.split(",")) | {"content-type", "x-request-id"} <= allowed
        assert "origin" in preflight.headers["vary"].lower()
        assert _cache_counters(client, api_keys) == before  # answered before any tenant lookup

        # The actual requests: their script may read the headers the API sends.
        headers = {"Origin": APP, "Idempotency-Key": "cors-1", **api_keys.auth("acme")}
        order = {"customer_id": str(uuid.uuid4()), "amount": "9.99", "currency": "EUR"}
        created = client.post(ORDERS, json=order, headers=headers)
        replayed = client.post(ORDERS, json=order, headers=headers)
        refused = client.get("/api/tenant", headers={"Origin": APP})  # a 401 problem
        for response, status in ((created, 201), (replayed, 201), (refused, 401)):
            assert response.status_code == status, response.text
            assert response.headers["access-control-allow-origin"] == APP
            exposed = response.headers["access-control-expose-headers"].lower()
            assert set(EXPOSED) <= {h.strip() for h in exposed.split(",")}
        assert {"etag", "location", "x-request-id"} <= set(created.headers)
        assert replayed.headers["idempotent-replayed"] == "true"

        # Another origin is told nothing it could use.
        other = "https://evil.example"
        refused_preflight = _preflight(client, other)
        assert refused_preflight.status_code == 400
        assert "access-control-allow-origin" not in refused_preflight.headers
        read = client.get("/api/tenant", headers={"Origin": other, **api_keys.auth("acme")})
        assert read.status_code == 200
        assert "access-control-allow-origin" not in read.headers
