"""Errors, resilience and tenancy import without pydantic; the problem-details and
validation names bring it in on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rustok_core.error


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(result.stdout.split())


def test_errors_resilience_and_tenancy_do_not_import_pydantic() -> None:
    modules = _modules_after(
        "import rustok_core.resilience, rustok_core.tenancy\n"
        "from rustok_core.error import ErrorKind, RichError, wrap"
    )
    assert "rustok_core.resilience" in modules
    assert "pydantic" not in modules


@pytest.mark.parametrize(
    "name",
    [
        "PROBLEM_JSON",
        "ProblemDetails",
        "ProblemError",
        "ValidationErrorBuilder",
        "validation_error_from_pydantic",
    ],
)
def test_a_name_that_needs_pydantic_imports_it_on_first_use(name: str) -> None:
    modules = _modules_after(f"from rustok_core.error import {name}")
    assert "pydantic" in modules
    assert getattr(rustok_core.error, name) is not None
    assert name in dir(rustok_core.error)


def test_every_public_name_is_reachable_and_unknown_names_are_refused() -> None:
    for name in rustok_core.error.__all__:
        assert getattr(rustok_core.error, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'ProblemDetail'"):
        rustok_core.error.ProblemDetail  # type: ignore[attr-defined]  # noqa: B018
