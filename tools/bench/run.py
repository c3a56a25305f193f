"""Run every benchmark (tools/bench/bench_*.py), each in its own process, and write
one results file, ``bench-results.json``, beside a printed table.

Usage: ``python tools/bench/run.py [NAME ...]`` where NAME filters by file name. Each
benchmark is ended after ``RUSTOK_BENCH_BOUND`` seconds (default 1200) and counted as failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
BOUND = float(os.environ.get("RUSTOK_BENCH_BOUND", "1200"))
"""Seconds one benchmark may run before it is ended and reported as failed (a hung
benchmark must not hold the whole run)."""


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(a in s.stem for a in argv)]
    if not scripts:
        print("no benchmark matched", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        lines_path = Path(tmp) / "results.jsonl"
        env = {**os.environ, "RUSTOK_BENCH_RESULTS": str(lines_path)}
        failed = []
        for script in scripts:
            print(f"== {script.stem}", flush=True)
            try:
                done = subprocess.run(
                    [sys.executable, str(script)], env=env, check=False, timeout=BOUND
                )
            except subprocess.TimeoutExpired:
                print(f"{script.stem} did not finish within {BOUND:g} s; ended", file=sys.stderr)
                failed.append(script.stem)
                continue
            if done.returncode:
                failed.append(script.stem)
        figures = []
        if lines_path.exists():
            figures = [json.loads(line) for line in lines_path.read_text().splitlines() if line]
    out = Path.cwd() / "bench-results.json"
    out.write_text(json.dumps({"python": sys.version, "figures": figures}, indent=2) + "\n")
    print(f"\n{len(figures)} figures written to {out.name}")
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
