"""Shared measuring and reporting for the benchmarks under tools/bench.

Every benchmark measures its figure and its baseline in the same process, prints
them side by side, and appends them to the results file named by the
``RUSTOK_BENCH_RESULTS`` environment variable (JSON lines), which ``run.py``
gathers into one report.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, the baseline it is judged against and the verdict."""

    bench: str
    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline_value: float | None = None
    target: str | None = None
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value in (None, 0):
            return None
        assert self.baseline_value is not None
        return self.value / self.baseline_value


def per_call_ns(fn: Callable[[], object], *, number: int, repeat: int) -> list[float]:
    """Time ``fn`` ``number`` times per sample, ``repeat`` samples; ns per call per sample."""
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        start = clock()
        for _ in range(number):
            fn()
        samples.append((clock() - start) / number)
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def emit(figures: Sequence[Figure]) -> None:
    """Print the figures as a table and append them to the results file, if any."""
    width = max((len(f.name) for f in figures), default=10)
    for f in figures:
        base = ""
        if f.baseline_name is not None and f.baseline_value is not None:
            base = f"  vs {f.baseline_name} {f.baseline_value:,.3f} {f.unit}"
            if f.ratio is not None:
                base += f"  ({f.ratio:.2f}x)"
        verdict = "" if f.met is None else ("  MET" if f.met else "  MISSED")
        target = f"  target: {f.target}" if f.target else ""
        print(f"[{f.bench}] {f.name:<{width}} {f.value:,.3f} {f.unit}{base}{target}{verdict}")
    path = os.environ.get("RUSTOK_BENCH_RESULTS")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            for f in figures:
                out.write(json.dumps({**asdict(f), "ratio": f.ratio}) + "\n")
