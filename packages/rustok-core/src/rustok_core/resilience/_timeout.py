"""with_timeout: a time limit on one awaited call, raising OperationTimeoutError."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from rustok_core.resilience._errors import OperationTimeoutError

__all__ = ["with_timeout"]

P = ParamSpec("P")
T = TypeVar("T")


def _is_positive_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


async def with_timeout(
    seconds: float, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Await ``fn(*args, **kwargs)`` for at most ``seconds``; return its result.

    When the limit passes, the call is cancelled and `OperationTimeoutError`
    (a `TimeoutError`) is raised with the limit in ``.seconds`` and the
    cancellation's ``TimeoutError`` as its cause. A ``TimeoutError`` raised by
    ``fn`` itself passes through unchanged.

    Raises:
        ValueError: if ``seconds`` is not a positive number.
        OperationTimeoutError: if ``fn`` did not finish in time.

    Example::

        tenant = await with_timeout(2.0, load_tenant, "acme")
    """
    if not _is_positive_number(seconds):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    timeout = asyncio.timeout(seconds)
    try:
        async with timeout:
            return await fn(*args, **kwargs)
    except TimeoutError as exc:
        if not timeout.expired():
            raise
        name = getattr(fn, "__qualname__", None) or repr(fn)
        raise OperationTimeoutError(float(seconds), name) from exc
