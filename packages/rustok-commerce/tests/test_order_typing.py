"""An illegal order transition is a mypy error; every legal chain type-checks clean.

The snippet files in ``typing_cases/`` are never run: mypy checks them here. In
``order_illegal.py`` each line marked ``# E: <code>`` must get a mypy error with that code
and no other line may get one; ``order_legal.py`` must have no error at all.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).parent / "typing_cases"
ILLEGAL = CASES / "order_illegal.py"
LEGAL = CASES / "order_legal.py"
_MARK = re.compile(r"#\s*E:\s*(?P<code>[\w-]+)\s*$")
_ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def _marked_lines(path: Path) -> dict[int, tuple[str, str]]:
    """Line number -> (statement, expected error code) of every line marked ``# E:``."""
    marked = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        found = _MARK.search(line)
        if found:
            marked[number] = (line.split("#")[0].strip(), found["code"])
    return marked


MARKED = _marked_lines(ILLEGAL)


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, str]]:
    """File name -> line -> mypy's error messages, for one strict run over both files."""
    workdir = tmp_path_factory.mktemp("mypy")
    config = workdir / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nwarn_unreachable = True\n")
    stdout, stderr, _ = api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(workdir / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            str(ILLEGAL),
            str(LEGAL),
        ]
    )
    assert not stderr, stderr
    errors: dict[str, dict[int, str]] = {ILLEGAL.name: {}, LEGAL.name: {}}
    for line in stdout.splitlines():
        match = _ERROR.match(line)
        assert match, f"unexpected mypy output: {line}"
        by_line = errors[Path(match["path"]).name]
        number = int(match["line"])
        by_line[number] = (by_line.get(number, "") + " " + match["message"]).strip()
    return errors


def test_the_snippets_mark_every_illegal_trigger_of_every_state() -> None:
    # 6 triggers from 6 states, minus the 7 legal edges (cancel has two sources), plus
    # the two assignments that check return types.
    calls = [statement for statement, _ in MARKED.values() if "=" not in statement]
    assert len(calls) == 6 * 6 - 7
    assert len(MARKED) == len(calls) + 2


@pytest.mark.parametrize(
    ("line", "statement", "code"),
    [(line, statement, code) for line, (statement, code) in sorted(MARKED.items())],
    ids=[MARKED[line][0] for line in sorted(MARKED)],
)
def test_illegal_transition_is_a_mypy_error(
    mypy_errors: dict[str, dict[int, str]], line: int, statement: str, code: str
) -> None:
    message = mypy_errors[ILLEGAL.name].get(line)
    assert message is not None, f"mypy accepted line {line}: {statement}"
    assert message.endswith(f"[{code}]")
    if code == "assignment":
        assert "Incompatible types in assignment" in message
    else:
        trigger = statement.split(".")[1].split("(")[0]
        assert 'Invalid self argument "Order[' in message
        assert f'to attribute function "{trigger}"' in message


def test_no_error_outside_the_marked_lines(mypy_errors: dict[str, dict[int, str]]) -> None:
    unexpected = {n: m for n, m in mypy_errors[ILLEGAL.name].items() if n not in MARKED}
    assert unexpected == {}


def test_every_legal_chain_type_checks_clean(mypy_errors: dict[str, dict[int, str]]) -> None:
    assert mypy_errors[LEGAL.name] == {}
