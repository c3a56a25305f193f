"""Type-level tests: snippet files that are never run, only read by mypy and pyright, strict.

A lifecycle's illegal transitions must be type errors and its legal chains must check
clean. Its tests keep the snippets in two files: in the illegal one each line that must
get an error is marked ``# E: <mypy code>``; the legal one must get no error at all.
pyright runs through basedpyright (the engine of VS Code's Pylance), which the tests
install; mypy through its API. Neither is a dependency of rustok-core: each is imported
or started only when a check runs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeAlias

__all__ = [
    "PYRIGHT_RULES",
    "TYPE_CHECKERS",
    "MarkedLine",
    "TypeCheckError",
    "TypeCheckErrors",
    "TypeChecker",
    "check_types",
    "marked_lines",
]

TypeChecker: TypeAlias = Literal["mypy", "pyright"]
"""The type checkers `check_types` runs."""

TYPE_CHECKERS: Final[tuple[TypeChecker, ...]] = ("mypy", "pyright")
"""Both checkers, in the order the typing tests run them."""

PYRIGHT_RULES: Final[Mapping[str, str]] = {
    "misc": "reportAttributeAccessIssue",
    "call-arg": "reportCallIssue",
    "assignment": "reportAssignmentType",
}
"""The pyright rule that reports what a mypy error code of the marks reports: a call of a
transition from a state without it, a call with a wrong argument, a wrong result type."""

_MARK: Final = re.compile(r"#\s*E:\s*(?P<code>[\w-]+)\s*$")
_MYPY_ERROR: Final = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)\s\[(?P<code>[\w-]+)\]$"
)
_MYPY_NOTE: Final = re.compile(r"^[^:]+:\d+: note: ")


@dataclass(frozen=True, slots=True)
class MarkedLine:
    """A line of a snippet file that must get a type error (``statement  # E: code``).

    Attributes:
        line: its number, from 1.
        statement: the code before the mark.
        code: the mypy error code it must get (`PYRIGHT_RULES` names pyright's).
    """

    line: int
    statement: str
    code: str


@dataclass(frozen=True, slots=True)
class TypeCheckError:
    """One error (or, from pyright, warning) a checker reported on a line.

    Attributes:
        code: mypy's error code, or pyright's rule (empty when it names none).
        message: what the checker said, on one line.
    """

    code: str
    message: str


TypeCheckErrors: TypeAlias = dict[str, dict[int, list[TypeCheckError]]]
"""File name -> line -> the errors a checker reported on that line; every file checked has
an entry, empty when it got no error."""


def marked_lines(path: Path) -> list[MarkedLine]:
    """Every line of ``path`` marked ``# E: <code>``, in order.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     snippet = Path(tmp, "cases.py")
        ...     _ = snippet.write_text("ok = 1\\nbad: str = 1  # E: assignment\\n")
        ...     marked_lines(snippet)
        [MarkedLine(line=2, statement='bad: str = 1', code='assignment')]
    """
    marked: list[MarkedLine] = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        found = _MARK.search(text)
        if found:
            marked.append(MarkedLine(number, text.split("#")[0].strip(), found["code"]))
    return marked


def check_types(
    checker: TypeChecker, files: Iterable[Path], workdir: Path, *, timeout: float = 300.0
) -> TypeCheckErrors:
    """Run one checker, strict and with no project configuration, over ``files``.

    mypy runs with ``strict`` and ``warn_unreachable``; basedpyright in its ``strict``
    mode, with the packages of this interpreter, and its warnings count as errors.

    Args:
        checker: ``"mypy"`` or ``"pyright"``.
        files: the snippet files.
        workdir: an empty directory for the checker's configuration and cache.
        timeout: seconds basedpyright may take (it starts Node: a few seconds).

    Returns:
        The errors of each file, by line.

    Raises:
        RuntimeError: the checker crashed, or printed what is not an error report.
    """
    paths = list(files)
    errors: TypeCheckErrors = {path.name: {} for path in paths}
    found = _mypy(paths, workdir) if checker == "mypy" else _pyright(paths, workdir, timeout)
    for name, line, error in found:
        errors.setdefault(name, {}).setdefault(line, []).append(error)
    return errors


def _mypy(paths: list[Path], workdir: Path) -> list[tuple[str, int, TypeCheckError]]:
    from mypy import api  # the tests' dependency, not the package's

    config = workdir / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nwarn_unreachable = True\n")
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(workdir / "mypy-cache"),
            "--show-error-codes",
            "--no-color-output",
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            *map(str, paths),
        ]
    )
    if status not in (0, 1) or stderr:
        raise RuntimeError(f"mypy crashed (exit status {status}):\n{stdout}\n{stderr}")
    found: list[tuple[str, int, TypeCheckError]] = []
    for line in stdout.splitlines():
        match = _MYPY_ERROR.match(line)
        if match:
            error = TypeCheckError(match["code"], match["message"])
            found.append((Path(match["path"]).name, int(match["line"]), error))
        elif not _MYPY_NOTE.match(line):
            raise RuntimeError(f"unexpected mypy output: {line}")
    return found


def _pyright(
    paths: list[Path], workdir: Path, timeout: float
) -> list[tuple[str, int, TypeCheckError]]:
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
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if run.returncode not in (0, 1):
        raise RuntimeError(f"basedpyright failed:\n{run.stdout}\n{run.stderr}")
    found: list[tuple[str, int, TypeCheckError]] = []
    for diagnostic in json.loads(run.stdout)["generalDiagnostics"]:
        if diagnostic["severity"] in ("error", "warning"):
            message = " ".join(diagnostic["message"].split())
            error = TypeCheckError(diagnostic.get("rule", ""), message)
            line = diagnostic["range"]["start"]["line"] + 1
            found.append((Path(diagnostic["file"]).name, line, error))
    return found
