"""JWT bearer tokens over real HTTP, against a JWKS served on loopback by the test."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from api_fixtures import ServerFactory, assert_problem
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from rustok_server import Tenant

ISSUER = "https://id.example"
AUDIENCE = "rustok"


class _Jwks:
    """A JWKS document served on a loopback port, counting its fetches."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.document = {"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps(jwks.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-7",
            "exp": now + 300,
            "tenant": "acme",
            "scope": "content:read orders:read",
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    served = _Jwks()
    served.thread.start()
    try:
        yield served
    finally:
        served.server.shutdown()
        served.server.server_close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_is_served_for_its_tenant_with_its_scopes(
    start_server: ServerFactory, tenants: dict[str, Tenant], jwks: _Jwks
) -> None:
    server = start_server(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=jwks.url)
    async with httpx.AsyncClient(base_url=server.url) as client:
        tenant = await client.get("/api/tenant", headers=_bearer(jwks.token()))
        nodes = await client.get("/api/content/nodes", headers=_bearer(jwks.token()))
        write = await client.post(
            "/api/content/nodes",
            json={"kind": "article", "title": "T", "slug": "t"},
            headers=_bearer(jwks.token()),
        )
        again = await client.get("/api/tenant", headers=_bearer(jwks.token(sub="user-8")))
    assert tenant.json()["slug"] == "acme"
    assert nodes.status_code == 200
    assert_problem(write, 403, "SCOPE_REQUIRED")
    assert again.status_code == 200
    assert jwks.fetches == 1  # the key set is cached


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example"},
        {"aud": "someone-else"},
        {"exp": int(time.time()) - 60},
        {"nbf": int(time.time()) + 600},
        {"exp": None},
        {"tenant": None},
        {"tenant": "../etc"},
    ],
    ids=["issuer", "audience", "expired", "not-yet-valid", "no-exp", "no-tenant", "bad-tenant"],
)
async def test_a_token_failing_a_check_is_401(
    start_server: ServerFactory, tenants: dict[str, Tenant], jwks: _Jwks, claims: dict[str, Any]
) -> None:
    server = start_server(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=jwks.url)
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/api/tenant", headers=_bearer(jwks.token(**claims)))
    assert_problem(response, 401, "INVALID_CREDENTIAL")


async def test_a_token_signed_by_another_key_and_an_admin_scope_grant_nothing(
    start_server: ServerFactory, tenants: dict[str, Tenant], jwks: _Jwks
) -> None:
    server = start_server(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=jwks.url)
    forger = _Jwks()
    forged = forger.token()
    forger.server.server_close()
    async with httpx.AsyncClient(base_url=server.url) as client:
        refused = await client.get("/api/tenant", headers=_bearer(forged))
        admin = await client.get("/api/admin/tenants", headers=_bearer(jwks.token(scope="admin")))
    assert_problem(refused, 401, "INVALID_CREDENTIAL")
    assert_problem(admin, 403, "SCOPE_REQUIRED")
