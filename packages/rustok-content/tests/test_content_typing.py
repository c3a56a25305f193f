"""mypy and pyright reject every illegal transition of the content lifecycle and accept every
legal chain: each is run, strict, on the snippet files in ``typing_cases/`` (which the normal
mypy and ruff runs leave out); pyright through basedpyright, the engine of VS Code's Pylance.
A line marked ``# E: <code>`` must get a mypy error with that code and the pyright error of
the same kind (`PYRIGHT_RULES`); no other line may get one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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
# The pyright rule that reports what each mypy code of the marks reports.
PYRIGHT_RULES = {"misc": "reportAttributeAccessIssue", "call-arg": "reportCallIssue"}
# basedpyright starts Node: a few seconds for both files, bounded all the same.
PYRIGHT_TIMEOUT = 300

# File name -> line -> (code, message) of every error the checker reports on that line.
Errors = dict[str, dict[int, list[tuple[str, str]]]]


def _marked_lines(path: Path) -> list[tuple[int, str, str]]:
    marked = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        found = _MARK.search(text)
        if found:
            marked.append((number, found.group(1), text.split("#")[0].strip()))
    return marked


def _mypy(cache: Path) -> Errors:
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


def _pyright(workdir: Path) -> Errors:
    """One strict basedpyright run, with the packages of this interpreter; its rule names
    are the codes. Warnings count as errors."""
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
    errors: Errors = defaultdict(lambda: defaultdict(list))
    for found in json.loads(run.stdout)["generalDiagnostics"]:
        if found["severity"] in ("error", "warning"):
            name = Path(found["file"]).name
            line = found["range"]["start"]["line"] + 1
            errors[name][line].append((found.get("rule", ""), " ".join(found["message"].split())))
    return errors


@pytest.fixture(scope="module", params=["mypy", "pyright"])
def checked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Errors]:
    """(checker, its errors) for one run of each checker over both files."""
    checker: str = request.param
    workdir = tmp_path_factory.mktemp(checker)
    return checker, _mypy(workdir) if checker == "mypy" else _pyright(workdir)


@pytest.mark.parametrize(
    ("line", "code", "statement"),
    _marked_lines(ILLEGAL),
    ids=[statement for _, _, statement in _marked_lines(ILLEGAL)],
)
def test_the_checker_rejects_the_illegal_transition(
    checked: tuple[str, Errors], line: int, code: str, statement: str
) -> None:
    checker, errors = checked
    expected = code if checker == "mypy" else PYRIGHT_RULES[code]
    found = errors[ILLEGAL.name].get(line, [])
    assert expected in [c for c, _ in found], f"{checker} accepted line {line}: {statement}"


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


def test_the_checker_reports_nothing_on_unmarked_lines(checked: tuple[str, Errors]) -> None:
    _, errors = checked
    marked = {line for line, _, _ in _marked_lines(ILLEGAL)}
    unexpected = {line: found for line, found in errors[ILLEGAL.name].items() if line not in marked}
    assert unexpected == {}


def test_every_legal_chain_type_checks_clean(checked: tuple[str, Errors]) -> None:
    _, errors = checked
    assert dict(errors[LEGAL.name]) == {}
    assert LEGAL.read_text().count(".publish()") >= 2
