"""Where the workers of ``serve --workers N`` (or of ``serve --metrics-port``) keep their
metrics.

prometheus_client chooses, when it is first imported, whether a process keeps its figures in
memory or in files of ``PROMETHEUS_MULTIPROC_DIR`` that every process can read. The workers
``serve`` starts import it after the folder is set. The process of ``serve`` itself has
imported it already (``rustok_server`` imports its app), and with one worker it serves the
app too: `prepare_multiprocess_dir` makes it choose again, so that the metrics the app makes
afterwards are written to the folder that the metrics port reads.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Final

__all__ = ["MULTIPROCESS_ENV", "multiprocess_enabled", "prepare_multiprocess_dir"]

MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
"""The variable that names the folder where the workers of one server share their metrics."""


def multiprocess_enabled() -> bool:
    """Whether prometheus_client keeps this process's figures in multiprocess files."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def prepare_multiprocess_dir(path: Path) -> Path:
    """Empty ``path`` (figures of an earlier run must not count) and point this process and
    the workers it starts at it. Call before the app's metrics are made: a metric made
    earlier in this process keeps its figures in memory."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(path)
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        # Imported before the folder was set: it chose memory. Metrics read the value
        # class when they are made, so those made from now on use the folder.
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
    return path
