"""mypy and pyright reject every illegal transition of the content lifecycle and accept every
legal chain: each is run, strict, on the snippet files in ``typing_cases/`` (which the normal
mypy and ruff runs leave out) through core's typing harness (`rustok_core.testing.check_types`).
A line marked ``# E: <code>`` must get a mypy error with that code and the pyright error of
the same kind (`rustok_core.testing.PYRIGHT_RULES`); no other line may get one."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustok_core.testing import (
    PYRIGHT_RULES,
    TYPE_CHECKERS,
    TypeChecker,
    TypeCheckErrors,
    check_types,
    marked_lines,
)

CASES = Path(__file__).parent / "typing_cases"
ILLEGAL = CASES / "content_illegal.py"
LEGAL = CASES / "content_legal.py"
MARKED = marked_lines(ILLEGAL)


@pytest.fixture(scope="module", params=TYPE_CHECKERS)
def checked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TypeChecker, TypeCheckErrors]:
    """(checker, its errors) for one run of each checker over both files."""
    checker: TypeChecker = request.param
    return checker, check_types(checker, [ILLEGAL, LEGAL], tmp_path_factory.mktemp(checker))


@pytest.mark.parametrize(
    ("line", "code", "statement"),
    [(marked.line, marked.code, marked.statement) for marked in MARKED],
    ids=[marked.statement for marked in MARKED],
)
def test_the_checker_rejects_the_illegal_transition(
    checked: tuple[TypeChecker, TypeCheckErrors], line: int, code: str, statement: str
) -> None:
    checker, errors = checked
    expected = code if checker == "mypy" else PYRIGHT_RULES[code]
    found = errors[ILLEGAL.name].get(line, [])
    assert expected in [e.code for e in found], f"{checker} accepted line {line}: {statement}"


def test_every_illegal_transition_of_the_machine_has_a_case() -> None:
    statements = {marked.statement for marked in MARKED}
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


def test_the_checker_reports_nothing_on_unmarked_lines(
    checked: tuple[TypeChecker, TypeCheckErrors],
) -> None:
    _, errors = checked
    marked = {marked.line for marked in MARKED}
    unexpected = {line: found for line, found in errors[ILLEGAL.name].items() if line not in marked}
    assert unexpected == {}


def test_every_legal_chain_type_checks_clean(checked: tuple[TypeChecker, TypeCheckErrors]) -> None:
    _, errors = checked
    assert errors[LEGAL.name] == {}
    assert LEGAL.read_text().count(".publish()") >= 2
