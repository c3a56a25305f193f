"""Hostile bodies and hostile paths against ``rustok-server serve``, on SQLite and
PostgreSQL: a body is refused by its shape before it costs the event loop, a validation
problem stays bounded, and a path cannot forge a log line (text or JSON)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_fixtures import NODES, ApiKeys, assert_problem, start_serve

from rustok_server import Tenant

pytestmark = pytest.mark.slow


class Served:
    """A running ``serve``: its URL and every line of its log so far."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert " listening on " in banner, banner
        self.url = banner.split(" listening on ")[1].split(",")[0].strip()
        self.lines: list[str] = []
        self._written = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._written:
                self.lines.append(line)
                self._written.notify_all()

    def log_until(self, needle: str, seconds: float = 30.0) -> list[str]:
        """The log once a line holding ``needle`` has been written (the access record is
        written after the response is sent)."""
        with self._written:
            logged = self._written.wait_for(
                lambda: any(needle in line for line in self.lines), seconds
            )
            assert logged, f"{needle!r} never logged"
            return list(self.lines)


@pytest.fixture(params=["text", "json"])
def served(
    request: pytest.FixtureRequest, database_url: str, tenants: dict[str, Tenant], tmp_path: Path
) -> Iterator[Served]:
    process = start_serve(
        tmp_path,
        "--port",
        "0",
        variables={
            "RUSTOK_DATABASE_URL": database_url,
            "RUSTOK_LOG_FORMAT": str(request.param),
            "RUSTOK_RATE_LIMIT_PER_SECOND": "0",
            "RUSTOK_DEMO_TENANT": "false",
        },
    )
    try:
        yield Served(process)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def post(served: Served, content: bytes, api_keys: ApiKeys) -> httpx.Response:
    return httpx.post(
        served.url + NODES,
        content=content,
        headers={
            "Content-Type": "application/json",
            "X-Tenant-ID": "acme",
            **api_keys.auth("acme"),
        },
        timeout=30,
    )


def test_a_body_with_too_many_members_or_too_deep_is_refused_before_it_is_parsed(
    served: Served,
    api_keys: ApiKeys,
) -> None:
    unknown = json.dumps({f"k{n}": 0 for n in range(70_000)}).encode()  # 0.9 MB
    problem = assert_problem(post(served, unknown, api_keys), 400, "MALFORMED_BODY")
    assert "1000 members" in problem["detail"], problem
    deep = b"[" * 10_000 + b"]" * 10_000
    problem = assert_problem(post(served, deep, api_keys), 400, "MALFORMED_BODY")
    assert "nested deeper than 32" in problem["detail"], problem
    # A body of the same size whose shape is fine is parsed and validated as usual.
    fine = '{"kind": "article", "title": "t", "slug": "s-1"' + " " * 800_000 + "}"
    assert post(served, fine.encode(), api_keys).status_code == 201


def test_a_validation_problem_lists_at_most_100_errors_and_says_it_was_cut_short(
    served: Served,
    api_keys: ApiKeys,
) -> None:
    body = json.dumps({"kind": "article", "title": "t", **{f"x{n}": n for n in range(150)}})
    response = post(served, body.encode(), api_keys)
    problem = assert_problem(response, 400)
    assert len(problem["errors"]) == 100
    assert problem["errors_omitted"] == 51  # 150 unknown fields and the missing slug
    assert "first 100 errors" in problem["detail"]
    assert len(response.content) < 20_000


def test_a_path_cannot_forge_a_log_line(served: Served, api_keys: ApiKeys) -> None:
    forged = "DELETE /api/admin/tenants/demo 200"
    response = httpx.get(
        served.url + "/api/x%0a" + forged.replace(" ", "%20") + "%0d%0aend",
        headers=api_keys.auth("acme"),
        timeout=30,
    )
    assert response.status_code == 404
    lines = served.log_until(" 404 ")
    assert not any(line.startswith((forged, "end")) for line in lines), lines
    access = [line for line in lines if "/api/x" in line]
    assert len(access) == 1, access
    if access[0].lstrip().startswith("{"):
        record = json.loads(access[0])  # a JSON log stays JSON, the path in one field
        assert f"/api/x\n{forged}\r\nend" in record["message"]
    else:
        assert f"/api/x\\x0a{forged}\\x0d\\x0aend" in access[0]
