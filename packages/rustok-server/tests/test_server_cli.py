"""The ``rustok-server`` command: migrate, tenants, help, and serve in a fresh directory."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_fixtures import clean_env, start_serve

from rustok_server import __version__
from rustok_server.cli import main

# Most tests run the command in a process of its own, as users run it.
pytestmark = pytest.mark.slow


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RUSTOK_DATABASE_URL", url)
    return url


def test_migrate_creates_the_database(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert (tmp_path / "cli.db").is_file()
    assert "database migrated" in capsys.readouterr().out


def test_database_url_option_overrides_the_environment(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.db"
    assert main(["--database-url", f"sqlite+aiosqlite:///{other}", "migrate"]) == 0
    assert other.is_file()
    assert str(other) in capsys.readouterr().out


def test_tenants_create_list_show_disable_enable(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert (
        main(["tenants", "create", "acme", "--name", "Acme", "--domain", "Shop.Acme.Example"]) == 0
    )
    created = capsys.readouterr().out
    assert "slug:    acme" in created
    assert "domain:  shop.acme.example" in created
    assert main(["tenants", "list"]) == 0
    assert "acme" in capsys.readouterr().out
    assert main(["tenants", "disable", "acme"]) == 0
    assert "active:  no" in capsys.readouterr().out
    assert main(["tenants", "show", "acme"]) == 0
    assert "active:  no" in capsys.readouterr().out
    assert main(["tenants", "enable", "acme"]) == 0
    assert "active:  yes" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tenants", "create", "admin", "--name", "Admin"], "reserved"),
        (["tenants", "show", "nobody"], "No active tenant answers to 'nobody'"),
        (["tenants", "disable", "../x"], "invalid_characters"),
    ],
)
def test_tenant_errors_exit_1_with_a_message(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["migrate"]) == 0
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_duplicate_slug_is_refused(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert main(["tenants", "create", "acme", "--name", "Acme"]) == 0
    assert main(["tenants", "create", "acme", "--name", "Acme again"]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [[], ["serve"], ["migrate"], ["tenants"], ["tenants", "create"], ["tenants", "disable"]],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert "usage: rustok-server" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["migrate"], "newest schema"),
        (["keys", "list"], "Secrets are never shown"),
        (["keys", "revoke"], "within a second"),
        (["keys", "create"], "shown again"),
    ],
)
def test_every_command_describes_itself_in_its_help(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert says in " ".join(capsys.readouterr().out.split())


def test_serve_in_a_fresh_directory_creates_database_and_demo_tenant(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = start_serve(tmp_path, "--port", str(port))
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        banner = [process.stdout.readline() for _ in range(4)]
        assert (
            banner[0].strip() == f"rustok-server {__version__} listening on http://127.0.0.1:{port}"
        )
        assert str(tmp_path / "rustok.db") in banner[1]
        assert "demo" in banner[2]
        for line in process.stderr:  # uvicorn's log: wait until it accepts connections
            if "Application startup complete" in line:
                break
        response = httpx.get(
            f"http://127.0.0.1:{port}/health/ready", headers={"X-Tenant-ID": "demo"}
        )
        assert response.status_code == 200
        assert response.json() == {"status": "ready"}  # details for admin keys only
        assert (tmp_path / "rustok.db").is_file()
    finally:
        process.terminate()
        process.wait(30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _banner(cwd: Path) -> list[str]:
    """The banner of `serve --port 0` in ``cwd`` (everything it prints before serving)."""
    process = start_serve(cwd, "--port", "0", stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        while "try: curl" not in lines[-1]:
            lines.append(process.stdout.readline())
            assert lines[-1], lines
        return lines
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_serve_started_again_says_how_to_make_a_demo_key(tmp_path: Path) -> None:
    first = _banner(tmp_path)
    assert any("demo key" in line for line in first)
    again = " ".join(_banner(tmp_path))
    assert "demo key" not in again  # shown once
    command = "rustok-server keys create demo --scope content:read --scope content:write"
    assert command in again


def _command_fails(tmp_path: Path, *argv: str, **env: str) -> list[str]:
    """Run a command expecting exit status 2 (it refused to start); the lines it wrote to
    stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "rustok_server", *argv],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    return done.stderr.splitlines()


def _serve_fails(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """Run `serve` expecting it to refuse to start; the lines it wrote to stderr."""
    return _command_fails(tmp_path, "serve", *args, **env)


def test_serve_on_a_busy_port_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        lines = _serve_fails(tmp_path, "--port", str(port))
    assert lines == [f"rustok-server: cannot listen on 127.0.0.1:{port}: address already in use"]


def test_serve_with_an_unreachable_postgresql_names_it_and_exits_2(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://nobody@127.0.0.1:1/x"
    lines = _serve_fails(tmp_path, "--port", "0", RUSTOK_DATABASE_URL=url)
    assert len(lines) == 1
    assert lines[0].startswith(f"rustok-server: cannot use the database {url}: ")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RUSTOK_PORT", "eighty", "rustok-server: RUSTOK_PORT: Input should be a valid integer"),
        ("RUSTOK_CACHE_TTL", "-1", "rustok-server: RUSTOK_CACHE_TTL: Input should be greater"),
        ("RUSTOK_DATABASE_URL", "mysql://u:hunter2@db/x", "rustok-server: RUSTOK_DATABASE_URL:"),
    ],
)
def test_a_bad_setting_is_named_in_one_line_and_exits_2(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    lines = _serve_fails(tmp_path, **{variable: value})
    assert len(lines) == 1
    assert lines[0].startswith(expected)
    assert "hunter2" not in lines[0]  # a URL's password is never echoed


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--port", "99999"], "argument --port: expected a port from 0 to 65535, got 99999"),
        (["--port", "-5"], "argument --port: expected a port from 0 to 65535, got -5"),
        (["--port", "eighty"], "argument --port: expected a port number, got 'eighty'"),
        (["--metrics-port", "70000"], "argument --metrics-port: expected a port from 0 to"),
        (["--workers", "0"], "argument --workers: expected at least 1, got 0"),
    ],
)
def test_a_bad_flag_value_is_named_in_one_line_and_exits_2(
    tmp_path: Path, argv: list[str], expected: str
) -> None:
    lines = _serve_fails(tmp_path, *argv)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"rustok-server serve: {expected}"), lines[0]
    assert lines[0].endswith("(see rustok-server serve --help)")
    assert not list(tmp_path.iterdir())  # nothing was created


def test_a_bad_database_url_flag_is_named_as_the_flag(tmp_path: Path) -> None:
    lines = _command_fails(tmp_path, "--database-url", "mysql://u:hunter2@db/x", "serve")
    assert len(lines) == 1, lines
    assert lines[0].startswith("rustok-server: --database-url: ")
    assert "hunter2" not in lines[0]


@pytest.mark.parametrize(
    "argv", [["tenants", "list"], ["keys", "list", "--admin"], ["tenants", "show", "acme"]]
)
def test_a_command_without_a_database_says_so_and_creates_none(
    tmp_path: Path, argv: list[str]
) -> None:
    lines = _command_fails(tmp_path, *argv)
    assert lines == [
        f"rustok-server: no database at {tmp_path.resolve() / 'rustok.db'}: run "
        "`rustok-server migrate` there, or set RUSTOK_DATABASE_URL (or --database-url)"
    ]
    assert not list(tmp_path.iterdir())


def test_a_command_on_a_database_never_migrated_says_to_migrate(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "rustok.db").close()  # an empty file, no tables
    lines = _command_fails(tmp_path, "tenants", "list")
    assert len(lines) == 1
    assert lines[0].startswith("rustok-server: cannot use the database sqlite+aiosqlite:")
    assert lines[0].endswith("it has no tables yet: run `rustok-server migrate`")


def test_python_dash_m_rustok_server_is_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rustok_server", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"rustok-server {__version__}"


@pytest.fixture
def empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder is an empty one, and no RUSTOK_* variable is set."""
    for name in [name for name in os.environ if name.startswith("RUSTOK_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_in_process_a_command_without_a_database_exits_2(
    empty_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "list", "--admin"]) == 2
    assert "no database at " in capsys.readouterr().err
    assert not list(empty_folder.iterdir())


def test_in_process_a_database_never_migrated_is_named(
    empty_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite3.connect(empty_folder / "rustok.db").close()
    assert main(["tenants", "list"]) == 2
    assert capsys.readouterr().err.strip().endswith("run `rustok-server migrate`")


def test_in_process_a_bad_flag_is_one_line(
    empty_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "99999"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
    monkeypatch.setenv("RUSTOK_DATABASE_URL", "")  # main() sets it from the flag; undone after
    assert main(["--database-url", "mysql://u:hunter2@db/x", "migrate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rustok-server: --database-url: ")
    assert "hunter2" not in err
