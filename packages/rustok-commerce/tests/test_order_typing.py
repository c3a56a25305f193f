"""An illegal order transition is a type error of mypy and of pyright; every legal chain
type-checks clean under both.

The snippet files in ``typing_cases/`` are never run: each checker reads them here, strict,
through core's typing harness (`rustok_core.testing.check_types`; pyright through
basedpyright, the engine of VS Code's Pylance). In ``order_illegal.py`` each line marked
``# E: <code>`` must get a mypy error with that code and the pyright error of the same kind
(`rustok_core.testing.PYRIGHT_RULES`), and no other line may get an error;
``order_legal.py`` must have no error at all.
"""

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
ILLEGAL = CASES / "order_illegal.py"
LEGAL = CASES / "order_legal.py"
# The receivers of the snippets' calls from a known state: one variable per state.
STATES = ("pending", "confirmed", "paid", "shipped", "delivered", "cancelled")
# Line number -> (statement, expected mypy code) of every line marked ``# E:``.
MARKED = {marked.line: (marked.statement, marked.code) for marked in marked_lines(ILLEGAL)}


@pytest.fixture(scope="module", params=TYPE_CHECKERS)
def checked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TypeChecker, TypeCheckErrors]:
    """(checker, its errors) for one run of each checker over both files."""
    checker: TypeChecker = request.param
    return checker, check_types(checker, [ILLEGAL, LEGAL], tmp_path_factory.mktemp(checker))


def test_the_snippets_mark_every_illegal_trigger_of_every_state() -> None:
    # 6 triggers from 6 states, minus the 7 legal edges (cancel has two sources), plus
    # the two assignments that check return types and the calls on a loaded order.
    calls = [s for s, _ in MARKED.values() if "=" not in s and s.split(".")[0] in STATES]
    assert len(calls) == 6 * 6 - 7
    loaded = [s for s, _ in MARKED.values() if s.startswith("order.")]
    assert len(loaded) == 3
    assert len(MARKED) == len(calls) + 2 + len(loaded)


@pytest.mark.parametrize(
    ("line", "statement", "code"),
    [(line, statement, code) for line, (statement, code) in sorted(MARKED.items())],
    ids=[MARKED[line][0] for line in sorted(MARKED)],
)
def test_illegal_transition_is_a_type_error(
    checked: tuple[TypeChecker, TypeCheckErrors], line: int, statement: str, code: str
) -> None:
    checker, errors = checked
    found = errors[ILLEGAL.name].get(line)
    assert found, f"{checker} accepted line {line}: {statement}"
    codes = [error.code for error in found]
    message = " ".join(error.message for error in found)
    if checker == "mypy":
        assert code in codes, found
        if code == "assignment":
            assert "Incompatible types in assignment" in message
        else:
            trigger = statement.split(".")[1].split("(")[0]
            assert 'Invalid self argument "Order[' in message
            assert f'to attribute function "{trigger}"' in message
    else:
        assert PYRIGHT_RULES[code] in codes, found
        if code == "assignment":
            assert "is not assignable to declared type" in message
        else:
            trigger = statement.split(".")[1].split("(")[0]
            assert f'Cannot access attribute "{trigger}" for class "Order[' in message


def test_no_error_outside_the_marked_lines(checked: tuple[TypeChecker, TypeCheckErrors]) -> None:
    _, errors = checked
    unexpected = {n: m for n, m in errors[ILLEGAL.name].items() if n not in MARKED}
    assert unexpected == {}


def test_every_legal_chain_type_checks_clean(checked: tuple[TypeChecker, TypeCheckErrors]) -> None:
    _, errors = checked
    assert errors[LEGAL.name] == {}
