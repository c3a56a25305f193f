"""The one body of every strategy's typed decorator (breaker, bulkhead, retry, policy), and
the name a description gives a predicate."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

__all__ = ["decorate", "predicate_name"]

P = ParamSpec("P")


def decorate(
    fn: Callable[P, object],
    run: Callable[..., Awaitable[Any]],
    run_sync: Callable[..., Any],
) -> Callable[P, object]:
    """Wrap ``fn`` so that each call goes through ``run(fn, ...)`` (a coroutine function)
    or ``run_sync(fn, ...)`` (a plain one), keeping its name, docstring and signature.

    The strategies' own ``__call__`` overloads give the wrapper its precise type.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> object:
            return await run(fn, *args, **kwargs)

        return async_wrapper

    @functools.wraps(fn)
    def sync_wrapper(*args: P.args, **kwargs: P.kwargs) -> object:
        return run_sync(fn, *args, **kwargs)

    return sync_wrapper


def predicate_name(predicate: object) -> str:
    """A predicate's name for descriptions: ``server_error``, ``<lambda>``, or its type's."""
    name = getattr(predicate, "__name__", None)
    return name if isinstance(name, str) else type(predicate).__name__
