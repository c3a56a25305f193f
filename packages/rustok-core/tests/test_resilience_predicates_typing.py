"""The predicates are typed: mypy --strict checks a result predicate against the call's return
type, and an exception predicate against ``Exception``. A snippet is checked on its own; a line
marked ``# E: <code>`` must get an error with that code, and no other line may get one."""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest
from mypy import api

SNIPPET = textwrap.dedent(
    """
    from __future__ import annotations

    from dataclasses import dataclass
    from typing import assert_type

    from rustok_core.resilience import (
        CircuitBreaker,
        CircuitBreakerConfig,
        Fallback,
        JudgedBreaker,
        JudgedPolicy,
        JudgedRetry,
        ResiliencePolicy,
        RetryPolicy,
    )


    @dataclass
    class Response:
        status_code: int


    class HTTPStatusError(Exception):
        response: Response


    def server_error(response: Response) -> bool:
        return response.status_code >= 500


    def is_none(value: object) -> bool:
        return value is None


    async def get(path: str) -> Response:
        return Response(200)


    def get_sync(path: str) -> Response:
        return Response(200)


    async def count(path: str) -> int:
        return 1


    breaker = CircuitBreaker("api")


    async def legal() -> None:
        api = breaker.judging(server_error)
        assert_type(api, JudgedBreaker[Response])
        assert_type(await api.call(get, "/charges"), Response)
        assert_type(api.call_sync(get_sync, "/charges"), Response)
        annotated: JudgedBreaker[Response] = breaker.judging(lambda r: r.status_code >= 500)
        assert_type(await annotated.call(get, "/"), Response)
        wide: JudgedBreaker[int | None] = breaker.judging(is_none)
        assert_type(await wide.call(count, "/"), int | None)
        retrying = RetryPolicy().judging(server_error)
        assert_type(retrying, JudgedRetry[Response])
        assert_type(await retrying.execute(get, "/"), Response)
        policy = ResiliencePolicy(fallback=Fallback(lambda error: "stale"), breaker=breaker)
        judged = policy.judging(server_error)
        assert_type(judged, JudgedPolicy[Response, str])
        assert_type(await judged.execute(get, "/"), Response | str)
        CircuitBreakerConfig(
            excluded_if=lambda e: isinstance(e, HTTPStatusError) and e.response.status_code < 500
        )


    async def illegal() -> None:
        api = breaker.judging(server_error)
        await api.call(count, "/")  # E: arg-type
        await api.call(get, 1)  # E: arg-type
        api.call_sync(get, "/")  # E: arg-type
        guessed = breaker.judging(lambda r: r.status_code >= 500)  # E: var-annotated
        await RetryPolicy().judging(server_error).execute(count, "/")  # E: arg-type
        await ResiliencePolicy().judging(server_error).execute(count, "/")  # E: arg-type
        breaker.judging(lambda r: r.status_code >= 500, "x")  # E: call-arg
        CircuitBreakerConfig(excluded_if=lambda e: e.response.status_code < 500)  # E: attr-defined
        CircuitBreakerConfig(excluded_if=server_error)  # E: arg-type
    """
)
_MARK = re.compile(r"#\s*E:\s*([\w-]+)")
_ERROR = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)\s\[(?P<code>[\w-]+)\]$"
)


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[str]]:
    folder = tmp_path_factory.mktemp("predicates-typing")
    snippet = folder / "snippet.py"
    snippet.write_text(SNIPPET)
    stdout, stderr, status = api.run(
        [
            "--config-file=",  # the snippet is checked on its own, strict
            "--strict",
            "--show-error-codes",
            "--no-color-output",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(folder / "mypy-cache"),
            str(snippet),
        ]
    )
    assert status in (0, 1), f"mypy crashed:\n{stdout}\n{stderr}"
    errors: dict[int, list[str]] = defaultdict(list)
    for line in stdout.splitlines():
        found = _ERROR.match(line)
        if found and Path(found["path"]).name == snippet.name:
            errors[int(found["line"])].append(found["code"])
    return errors


def _marked() -> list[tuple[int, str, str]]:
    marked = []
    for number, text in enumerate(SNIPPET.splitlines(), start=1):
        found = _MARK.search(text)
        if found:
            marked.append((number, found.group(1), text.split("#")[0].strip()))
    return marked


@pytest.mark.parametrize(("line", "code", "statement"), _marked(), ids=[m[2] for m in _marked()])
def test_mypy_rejects_the_mistyped_use(
    mypy_errors: dict[int, list[str]], line: int, code: str, statement: str
) -> None:
    assert code in mypy_errors.get(line, []), f"mypy accepted line {line}: {statement}"


def test_mypy_accepts_every_other_line(mypy_errors: dict[int, list[str]]) -> None:
    marked = {line for line, _, _ in _marked()}
    unexpected = {line: codes for line, codes in mypy_errors.items() if line not in marked}
    lines = SNIPPET.splitlines()
    assert unexpected == {}, "\n".join(f"{n}: {lines[n - 1].strip()}" for n in unexpected)
