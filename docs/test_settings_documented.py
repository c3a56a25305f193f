"""The docs' tables hold what the code does: every server setting and its default in the
settings table of the tenant cache guide, every problem type with its status in the error
handling guide, and the statuses of the server README."""

from __future__ import annotations

import re
from pathlib import Path

from rustok_server import Settings
from rustok_server.http.problem_types import PROBLEM_TYPES

TABLE = (Path(__file__).parent / "TENANT_CACHE_GUIDE.md").read_text()


def test_every_setting_has_a_row_in_the_settings_table() -> None:
    missing = [
        f"RUSTOK_{name.upper()}"
        for name in Settings.model_fields
        if f"| `RUSTOK_{name.upper()}` |" not in TABLE
    ]
    assert missing == []


def _default_cell(name: str) -> str:
    row = next(
        line for line in TABLE.splitlines() if line.startswith(f"| `RUSTOK_{name.upper()}` |")
    )
    return row.split("|")[2].strip()


def _documents(cell: str, value: object) -> bool:
    """Whether the table's default ``cell`` writes the default ``value``."""
    if value is None or value == ():
        return cell == "unset"
    shown = cell.strip("`")
    if isinstance(value, bool):
        return shown == str(value).lower()
    if isinstance(value, int | float):
        return float(shown) == value
    if isinstance(value, tuple | list):
        return shown == ",".join(str(getattr(item, "value", item)) for item in value)
    return shown == str(value)


def test_every_default_in_the_settings_table_is_the_settings_default() -> None:
    wrong = {
        f"RUSTOK_{name.upper()}": (_default_cell(name), field.default)
        for name, field in Settings.model_fields.items()
        if not _documents(_default_cell(name), field.default)
    }
    assert wrong == {}


GUIDE = (Path(__file__).parent / "ERROR_HANDLING_GUIDE.md").read_text()
SERVER_README = (Path(__file__).parents[1] / "packages/rustok-server/README.md").read_text()


def test_the_problem_type_table_gives_each_type_its_status() -> None:
    rows = re.findall(r"^\| `/problems/([a-z-]+)` \| ([\d, ]+) \|", GUIDE, re.MULTILINE)
    assert rows
    documented = {name: {int(s) for s in statuses.split(",")} for name, statuses in rows}
    assert documented == {name: {PROBLEM_TYPES[name].status} for name in documented}
    named = {name for name in PROBLEM_TYPES if f"`/problems/{name}`" in GUIDE}
    named |= {name for name in PROBLEM_TYPES if f"`{name}`" in GUIDE}
    assert named == set(PROBLEM_TYPES)  # every type is in the table or named below it


def test_every_status_of_the_server_readme_is_a_problem_type_status() -> None:
    statuses = {int(s) for s in re.findall(r"^\| (\d{3}) \|", SERVER_README, re.MULTILINE)}
    assert statuses
    assert statuses <= {problem.status for problem in PROBLEM_TYPES.values()}
