"""mypy rejects every illegal transition of the content lifecycle and accepts every legal
chain: it is run on the snippet files in ``typing_cases/`` (which the normal mypy and ruff
runs leave out). A line marked ``# E: <code>`` must get an error with that code; no other
line may get one."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).parent / "typing_cases"
ILLEGAL = CASES / "content_illegal.py"
LEGAL = CASES / "content_legal.py"
_MARK = re.compile(r"#\s*E:\s*([\w-]+)")
_ERROR = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)\s\[(?P<code>[\w-]+)\]$"
)

Errors = dict[str, dict[int, list[tuple[str, str]]]]


def _marked_lines(path: Path) -> list[tuple[int, str, str]]:
    marked = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        found = _MARK.search(text)
        if found:
            marked.append((number, found.group(1), text.split("#")[0].strip()))
    return marked


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> Errors:
    cache = tmp_path_factory.mktemp("mypy-cache")
    stdout, stderr, status = api.run(
        [
            "--config-file=",  # the snippets are checked on their own, strict
            "--strict",
            "--show-error-codes",
            "--no-color-output",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(cache),
            str(ILLEGAL),
            str(LEGAL),
        ]
    )
    assert status in (0, 1), f"mypy crashed:\n{stdout}\n{stderr}"
    errors: Errors = defaultdict(lambda: defaultdict(list))
    for line in stdout.splitlines():
        found = _ERROR.match(line)
        if found:
            name = Path(found["path"]).name
            errors[name][int(found["line"])].append((found["code"], found["message"]))
    return errors


@pytest.mark.parametrize(
    ("line", "code", "statement"),
    _marked_lines(ILLEGAL),
    ids=[statement for _, _, statement in _marked_lines(ILLEGAL)],
)
def test_mypy_rejects_the_illegal_transition(
    mypy_errors: Errors, line: int, code: str, statement: str
) -> None:
    found = mypy_errors[ILLEGAL.name].get(line, [])
    assert code in [c for c, _ in found], f"mypy accepted line {line}: {statement}"


def test_every_illegal_transition_of_the_machine_has_a_case() -> None:
    statements = {statement for _, _, statement in _marked_lines(ILLEGAL)}
    for trigger, state in [
        ("archive", "draft"),
        ("restore", "draft"),
        ("publish", "published"),
        ("restore", "published"),
        ("publish", "archived"),
        ("archive", "archived"),
        ("update", "archived"),
    ]:
        assert any(s.startswith(f"{state}.{trigger}(") for s in statements), (trigger, state)


def test_mypy_reports_nothing_on_unmarked_lines(mypy_errors: Errors) -> None:
    marked = {line for line, _, _ in _marked_lines(ILLEGAL)}
    unexpected = {
        line: found for line, found in mypy_errors[ILLEGAL.name].items() if line not in marked
    }
    assert unexpected == {}


def test_every_legal_chain_type_checks_clean(mypy_errors: Errors) -> None:
    assert dict(mypy_errors[LEGAL.name]) == {}
    assert LEGAL.read_text().count(".publish()") >= 2
