"""The internal-index round trip: publish every wheel to a private index and install each
package from that index alone, the way a team installs it from our internal index.

1. Build the four wheels with hatch.
2. Mirror their third-party dependencies (``pip download``) into the index's folder: the
   internal index holds everything a package needs, so installs never reach another index.
3. Start a real package index (pypiserver) on 127.0.0.1 with upload credentials, and upload
   the wheels to it with twine, as a release does.
4. For each package, a fresh venv and ``pip install --index-url http://127.0.0.1:PORT/simple/
   <package>`` with every other index and configuration switched off; then import every
   module of every installed rustok package and print its version. A wheel that forgets to
   declare a dependency fails here, on import.
5. Stop the index, whatever happened.

Usage: ``python tools/index_roundtrip.py [--work-dir DIR]``; exits 0 when every package
installed and imported, 1 otherwise. ``run()`` is the same for tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workspace import Package, load_workspace

_IMPORT_CHECK = r"""
import importlib, importlib.metadata as md, importlib.util, json, pkgutil, sys
# Modules of an optional extra, importable only where the extra's package is installed.
OPTIONAL = {
    "rustok_core.resilience.prometheus": "prometheus_client",
    "rustok_core.resilience.otel": "opentelemetry",
}
report = {}
for dist in sys.argv[1:]:
    module = dist.replace("-", "_")
    top = importlib.import_module(module)
    imported = [module]
    for info in pkgutil.walk_packages(top.__path__, module + "."):
        if ".migrations" in info.name:
            continue  # Alembic scripts run inside Alembic, not on import
        needs = OPTIONAL.get(info.name)
        if needs and importlib.util.find_spec(needs) is None:
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
    licenses = [f.read_text() for f in md.files(dist) or () if f.name == "LICENSE"]
    meta = md.metadata(dist)
    report[dist] = {"version": top.__version__, "metadata_version": md.version(dist),
                    "modules": len(imported), "licenses": licenses,
                    "license": meta["License-Expression"],
                    "urls": sorted(u.split(",")[0] for u in meta.get_all("Project-URL") or [])}
installed = sorted(d.metadata["Name"].lower() for d in md.distributions())
print(json.dumps({"packages": report, "installed": installed}))
"""


class RoundTripError(Exception):
    """A step of the round trip failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Installed:
    """What one package's fresh venv held after installing it from the index."""

    package: str
    versions: Mapping[str, str]
    distributions: tuple[str, ...]
    licenses: Mapping[str, tuple[str, ...]]
    """The text of each LICENSE file each installed workspace package ships."""
    license_expressions: Mapping[str, str]
    """Each installed workspace package's ``License-Expression``."""
    project_urls: Mapping[str, tuple[str, ...]]
    """The labels of each installed workspace package's project URLs."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_pip_env() -> dict[str, str]:
    """An environment in which pip knows of no index, find-links or config but ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise RoundTripError(f"`{' '.join(cmd[:4])} ...` failed:\n" + "\n".join(tail))
    return result.stdout


def _make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def build_wheels(packages: Mapping[str, Package], out: Path) -> list[Path]:
    """Build one wheel per package into ``out`` with hatch."""
    out.mkdir(parents=True, exist_ok=True)
    hatch = shutil.which("hatch") or str(Path(sys.executable).parent / "hatch")
    # hatch builds in environments of its own: keep them in the work folder, and keep the
    # variables that point uv at an outer venv (nox's) away from them.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith("UV_")}
    env["HATCH_DATA_DIR"] = str(out.parent / "hatch-data")
    for package in packages.values():
        _run([hatch, "build", "-t", "wheel", str(out)], cwd=package.directory, env=env)
    wheels = sorted(out.glob("*.whl"))
    built = {w.name.split("-")[0].replace("_", "-") for w in wheels}
    missing = set(packages) - built
    if missing:
        raise RoundTripError(f"no wheel was built for {', '.join(sorted(missing))}")
    return wheels


def mirror_dependencies(wheels: list[Path], index_dir: Path, tools_python: Path) -> None:
    """Download every third-party dependency of the wheels into the index folder, and the
    build backend, so that a source checkout also installs against the index alone."""
    index_dir.mkdir(parents=True, exist_ok=True)
    scratch = index_dir.parent / "mirror-download"
    _run(
        [str(tools_python), "-m", "pip", "download", "--quiet", "--dest", str(scratch),
         "--find-links", str(wheels[0].parent), *map(str, wheels), "hatchling"]
    )  # fmt: skip
    for file in scratch.iterdir():
        if not file.name.startswith("rustok_"):
            shutil.move(str(file), index_dir / file.name)


@contextlib.contextmanager
def package_index(index_dir: Path, tools_python: Path, user: str, password: str) -> Iterator[str]:
    """A pypiserver on 127.0.0.1 serving ``index_dir``, uploads allowed with credentials."""
    htpasswd = index_dir.parent / "htpasswd"
    _run(
        [str(tools_python), "-c",
         "import sys; from passlib.apache import HtpasswdFile as H; "
         "h = H(sys.argv[1], new=True, default_scheme='sha256_crypt'); "
         "h.set_password(sys.argv[2], sys.argv[3]); h.save()",
         str(htpasswd), user, password]
    )  # fmt: skip
    port = _free_port()
    log = (index_dir.parent / "pypiserver.log").open("w")
    server = subprocess.Popen(
        [str(tools_python), "-m", "pypiserver", "run", "--host", "127.0.0.1", "--port", str(port),
         "--passwords", str(htpasswd), "--authenticate", "update", "--disable-fallback",
         str(index_dir)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise RoundTripError(f"the package index exited with {server.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/simple/", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RoundTripError("the package index did not answer within 30 s") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def install_from_index(
    index_url: str, package: str, venv_dir: Path, *, names: list[str], no_deps: bool = False
) -> Installed:
    """A fresh venv holding ``package`` from the index alone; import every rustok module."""
    python = _make_venv(venv_dir)
    env = _clean_pip_env()
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--index-url", f"{index_url}/simple/"]
    if no_deps:
        cmd.append("--no-deps")
    _run([*cmd, package], env=env)
    listed = json.loads(_run([str(python), "-m", "pip", "list", "--format=json"], env=env))
    present = [n for n in names if any(d["name"].lower() == n for d in listed)]
    output = _run([str(python), "-c", _IMPORT_CHECK, *present], env=env)
    report = json.loads(output.strip().splitlines()[-1])
    versions = {name: info["version"] for name, info in report["packages"].items()}
    for name, info in report["packages"].items():
        if info["version"] != info["metadata_version"]:
            raise RoundTripError(f"{name}: __version__ {info['version']} but metadata says"
                                 f" {info['metadata_version']}")  # fmt: skip
    licenses = {name: tuple(info["licenses"]) for name, info in report["packages"].items()}
    expressions = {name: info["license"] for name, info in report["packages"].items()}
    urls = {name: tuple(info["urls"]) for name, info in report["packages"].items()}
    return Installed(package, versions, tuple(report["installed"]), licenses, expressions, urls)


def run(work_dir: Path) -> dict[str, Installed]:
    """The whole round trip in ``work_dir``; returns what each package's venv held."""
    packages = load_workspace()
    names = sorted(packages)
    wheels = build_wheels(packages, work_dir / "wheels")
    tools_python = _make_venv(work_dir / "index-venv")
    _run([str(tools_python), "-m", "pip", "install", "--quiet",
          "pypiserver>=2.1", "passlib>=1.7", "twine>=5"])  # fmt: skip
    index_dir = work_dir / "index"
    mirror_dependencies(wheels, index_dir, tools_python)
    user, password = "release", secrets.token_urlsafe(16)
    results: dict[str, Installed] = {}
    with package_index(index_dir, tools_python, user, password) as url:
        upload_env = {**os.environ, "TWINE_USERNAME": user, "TWINE_PASSWORD": password,
                      "TWINE_NON_INTERACTIVE": "1"}  # fmt: skip
        _run([str(tools_python), "-m", "twine", "check", "--strict", *map(str, wheels)])
        _run([str(tools_python), "-m", "twine", "upload", "--repository-url", url,
              *map(str, wheels)], env=upload_env)  # fmt: skip
        for name in names:
            installed = install_from_index(url, name, work_dir / f"venv-{name}", names=names)
            versions = sorted(installed.versions.items())
            listing = ", ".join(f"{dist} {version}" for dist, version in versions)
            print(f"{name}: installed from {url}/simple/ alone; {listing}")
            results[name] = installed
        # A checkout installed by path finds its siblings on the index, and only those
        # it declares.
        content = packages["rustok-content"]
        from_path = install_from_index(
            url, str(content.directory), work_dir / "venv-content-path", names=names
        )
        print(f"packages/rustok-content by path: {', '.join(sorted(from_path.versions))}")
        results["packages/rustok-content"] = from_path
        # The detector itself: a package installed without its dependencies must fail the
        # import check, or a wheel that forgets a declaration would slip through unseen.
        try:
            install_from_index(url, "rustok-server", work_dir / "venv-no-deps", names=names,
                               no_deps=True)  # fmt: skip
        except RoundTripError:
            print("a package installed without its dependencies fails the import check, as it must")
        else:
            raise RoundTripError("rustok-server imported without its dependencies installed:"
                                 " the import check cannot see a missing declaration")  # fmt: skip
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--work-dir", type=Path, help="keep the wheels, index and venvs here")
    args = parser.parse_args(argv)
    try:
        if args.work_dir:
            args.work_dir.mkdir(parents=True, exist_ok=True)
            run(args.work_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="rustok-index-") as tmp:
                run(Path(tmp))
    except RoundTripError as error:
        print(f"index round trip failed: {error}", file=sys.stderr)
        return 1
    print("index round trip: every package installed from the private index alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
