"""The server-lookup check, on the real checkout and on made-up files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from check_servers import main, problems


def test_the_real_checkout_starts_every_server_through_rustok_core_testing() -> None:
    assert problems() == []


@pytest.mark.parametrize(
    "line",
    [
        'binary = shutil.which("redis-server")',
        "found = which('valkey-server')",
        'bindir = shutil.which("postgres")',
        'subprocess.run(["pg_config", "--bindir"])',
        'candidates = glob.glob("/usr/lib/postgresql/*/bin")',
        'run(str(bindir / "initdb"), "-D", data)',
    ],
)
def test_a_test_that_looks_for_a_server_itself_is_reported(tmp_path: Path, line: str) -> None:
    test = tmp_path / "packages" / "rustok-x" / "tests" / "test_x.py"
    test.parent.mkdir(parents=True)
    test.write_text(f"import shutil\n{line}\n")
    found = problems(tmp_path)
    assert len(found) == 1
    assert found[0].startswith("packages/rustok-x/tests/test_x.py:2: looks for a server")
    assert main([str(tmp_path)]) == 1


def test_postgres_as_a_user_or_database_name_is_not_a_lookup(tmp_path: Path) -> None:
    tool = tmp_path / "tools" / "bench" / "bench_x.py"
    tool.parent.mkdir(parents=True)
    tool.write_text('url = server_url + "/postgres"\nuser = "postgres"\n')
    assert problems(tmp_path) == []
    assert main([str(tmp_path)]) == 0
