"""An illegal order transition is a type error of mypy and of pyright; every legal chain
type-checks clean under both.

The snippet files in ``typing_cases/`` are never run: each checker reads them here, strict
(pyright through basedpyright, the engine of VS Code's Pylance). In ``order_illegal.py`` each
line marked ``# E: <code>`` must get a mypy error with that code and the pyright error of the
same kind (`PYRIGHT_RULES`), and no other line may get an error; ``order_legal.py`` must have
no error at all.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mypy import api

CASES = Path(__file__).parent / "typing_cases"
ILLEGAL = CASES / "order_illegal.py"
LEGAL = CASES / "order_legal.py"
_MARK = re.compile(r"#\s*E:\s*(?P<code>[\w-]+)\s*$")
_ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")
# The pyright rule that reports what each mypy code of the marks reports.
PYRIGHT_RULES = {"misc": "reportAttributeAccessIssue", "assignment": "reportAssignmentType"}
# basedpyright starts Node: a few seconds for both files, bounded all the same.
PYRIGHT_TIMEOUT = 300
# The receivers of the snippets' calls from a known state: one variable per state.
STATES = ("pending", "confirmed", "paid", "shipped", "delivered", "cancelled")

# File name -> line -> every message the checker reports on that line, joined.
Errors = dict[str, dict[int, str]]


def _marked_lines(path: Path) -> dict[int, tuple[str, str]]:
    """Line number -> (statement, expected error code) of every line marked ``# E:``."""
    marked = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        found = _MARK.search(line)
        if found:
            marked[number] = (line.split("#")[0].strip(), found["code"])
    return marked


MARKED = _marked_lines(ILLEGAL)


def _add(errors: Errors, path: str, line: int, message: str) -> None:
    by_line = errors[Path(path).name]
    by_line[line] = (by_line.get(line, "") + " " + message).strip()


def _mypy(workdir: Path) -> Errors:
    """One strict mypy run over both files; every message ends with its ``[code]``."""
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
    errors: Errors = {ILLEGAL.name: {}, LEGAL.name: {}}
    for line in stdout.splitlines():
        match = _ERROR.match(line)
        assert match, f"unexpected mypy output: {line}"
        _add(errors, match["path"], int(match["line"]), match["message"])
    return errors


def _pyright(workdir: Path) -> Errors:
    """One strict basedpyright run over both files, with the packages of this interpreter;
    every message ends with its ``[rule]``. Warnings count as errors."""
    config = workdir / "pyrightconfig.json"
    config.write_text(json.dumps({"typeCheckingMode": "strict"}))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "basedpyright",
            "--project",
            str(config),
            "--pythonpath",
            sys.executable,
            "--outputjson",
            str(ILLEGAL),
            str(LEGAL),
        ],
        capture_output=True,
        text=True,
        timeout=PYRIGHT_TIMEOUT,
        check=False,
    )
    assert run.returncode in (0, 1), f"basedpyright failed:\n{run.stdout}\n{run.stderr}"
    errors: Errors = {ILLEGAL.name: {}, LEGAL.name: {}}
    for found in json.loads(run.stdout)["generalDiagnostics"]:
        if found["severity"] in ("error", "warning"):
            message = " ".join(found["message"].split()) + f" [{found.get('rule', '')}]"
            _add(errors, found["file"], found["range"]["start"]["line"] + 1, message)
    return errors


@pytest.fixture(scope="module", params=["mypy", "pyright"])
def checked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Errors]:
    """(checker, its errors) for one run of each checker over both files."""
    checker: str = request.param
    workdir = tmp_path_factory.mktemp(checker)
    return checker, _mypy(workdir) if checker == "mypy" else _pyright(workdir)


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
    checked: tuple[str, Errors], line: int, statement: str, code: str
) -> None:
    checker, errors = checked
    message = errors[ILLEGAL.name].get(line)
    assert message is not None, f"{checker} accepted line {line}: {statement}"
    if checker == "mypy":
        assert message.endswith(f"[{code}]")
        if code == "assignment":
            assert "Incompatible types in assignment" in message
        else:
            trigger = statement.split(".")[1].split("(")[0]
            assert 'Invalid self argument "Order[' in message
            assert f'to attribute function "{trigger}"' in message
    else:
        assert f"[{PYRIGHT_RULES[code]}]" in message, message
        if code == "assignment":
            assert "is not assignable to declared type" in message
        else:
            trigger = statement.split(".")[1].split("(")[0]
            assert f'Cannot access attribute "{trigger}" for class "Order[' in message


def test_no_error_outside_the_marked_lines(checked: tuple[str, Errors]) -> None:
    _, errors = checked
    unexpected = {n: m for n, m in errors[ILLEGAL.name].items() if n not in MARKED}
    assert unexpected == {}


def test_every_legal_chain_type_checks_clean(checked: tuple[str, Errors]) -> None:
    _, errors = checked
    assert errors[LEGAL.name] == {}
