"""Where the workers of ``serve --workers N`` keep their metrics.

prometheus_client chooses, when it is first imported, whether a process keeps its figures in
memory or in files of ``PROMETHEUS_MULTIPROC_DIR`` that every process can read. So ``serve``
sets that folder before anything imports prometheus_client: this module imports nothing of
it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

__all__ = ["MULTIPROCESS_ENV", "multiprocess_enabled", "prepare_multiprocess_dir"]

MULTIPROCESS_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_enabled() -> bool:
    """Whether prometheus_client keeps this process's figures in multiprocess files."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def prepare_multiprocess_dir(path: Path) -> Path:
    """Empty ``path`` (figures of an earlier run must not count) and point this process and
    the workers it starts at it. Call before prometheus_client is imported anywhere."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(path)
    return path
