"""The one body of every strategy's typed decorator (breaker, bulkhead, retry, policy,
chaos), the base of the views that judge results, and the predicates strategies are given:
the exceptions they select, and the name a description gives a predicate."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Never, ParamSpec, TypeAlias, TypeVar, overload

if sys.version_info >= (3, 13):
    from typing import TypeVar as DefaultTypeVar
else:
    from typing_extensions import TypeVar as DefaultTypeVar

__all__ = [
    "Decorates",
    "Judging",
    "Paths",
    "R",
    "R_co",
    "decorate",
    "exception_selector",
    "predicate_name",
]

P = ParamSpec("P")
T = TypeVar("T")
# What a strategy may return in place of a call's result (a fallback's value, a chaos
# drill's answer): nothing, unless it says so.
R = DefaultTypeVar("R", default=Never)
R_co = DefaultTypeVar("R_co", covariant=True, default=Never)

Paths: TypeAlias = tuple[Callable[..., Awaitable[Any]], Callable[..., Any]]
"""A strategy's two ways to run a call: the async one and the sync one."""

AsyncFunction: TypeAlias = Callable[P, Coroutine[object, object, T]]
"""A coroutine function taking ``P`` and returning ``T`` (what ``async def`` makes)."""


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


class Decorates(Generic[R_co]):
    """A strategy that decorates functions: calls of a coroutine function go through its
    async path, calls of a plain one through its sync path (`_paths` names them). A
    decorated call returns the function's type, or ``R_co`` where the strategy may put a
    value of its own in its place (a fallback's, a chaos drill's)."""

    __slots__ = ()

    def _paths(self) -> Paths:
        raise NotImplementedError  # pragma: no cover - every strategy names its paths

    @overload
    def __call__(self, fn: AsyncFunction[P, T], /) -> AsyncFunction[P, T | R_co]: ...
    @overload
    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T | R_co]: ...

    def __call__(self, fn: Callable[P, object], /) -> Callable[P, object]:
        """Decorate a coroutine function (through the async path, ``call`` or ``execute``)
        or a plain one (through the sync path, ``call_sync`` or ``execute_sync``).

        The signature is kept, so type checkers see the original parameters and
        return type::

            @breaker
            async def load_tenant(tenant_id: str) -> Tenant: ...
        """
        return decorate(fn, *self._paths())


class Judging(Generic[T, R_co]):
    """A strategy's view that also judges results with ``failed_if`` (true: the call
    failed): `JudgedBreaker`, `JudgedRetry`, `JudgedPolicy`. As a decorator it takes the
    functions whose results ``failed_if`` can judge, of type ``T``.

    Raises:
        TypeError: if ``failed_if`` is not callable.
    """

    __slots__ = ("_failed_if",)

    def __init__(self, failed_if: Callable[[T], bool]) -> None:
        if not callable(failed_if):
            raise TypeError(
                "failed_if must be a predicate taking the call's result, such as "
                f"lambda response: response.status_code >= 500; got {failed_if!r}"
            )
        self._failed_if = failed_if

    @property
    def failed_if(self) -> Callable[[T], bool]:
        """The predicate on results: true means the call failed."""
        return self._failed_if

    def _paths(self) -> Paths:
        raise NotImplementedError  # pragma: no cover - every view names its paths

    @overload
    def __call__(self, fn: AsyncFunction[P, T], /) -> AsyncFunction[P, T | R_co]: ...
    @overload
    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T | R_co]: ...

    def __call__(self, fn: Callable[P, object], /) -> Callable[P, object]:
        """Decorate a coroutine function (through the async path) or a plain one (the sync
        path); the signature is kept, and each call's result is judged::

            @breaker.judging(server_error)
            async def charge(order_id: str) -> Response: ...
        """
        return decorate(fn, *self._paths())


def exception_selector(
    field: str, on: object, base: type[BaseException] = Exception
) -> Callable[[Exception], bool]:
    """The predicate of a strategy's ``field`` (``retry_on``, a fallback's or a hedge's
    ``on``): ``on`` is an exception type (a subclass of ``base``), a tuple of them, or a
    predicate taking the exception.

    Raises:
        TypeError: ``on`` is none of those; the message names ``field``.
    """
    # A class is callable too: test for classes first, so that an exception type
    # (ABCMeta ones included) is never mistaken for a predicate.
    if isinstance(on, type):
        if not issubclass(on, base):
            raise TypeError(f"{field} must be an exception type, got {on!r}")
        return lambda exc: isinstance(exc, on)
    if isinstance(on, tuple):
        for entry in on:
            if not (isinstance(entry, type) and issubclass(entry, base)):
                raise TypeError(f"{field} must hold exception types, got {entry!r} in {on!r}")
        return lambda exc: isinstance(exc, on)
    if callable(on):
        return lambda exc: bool(on(exc))
    raise TypeError(
        f"{field} must be an exception type, a tuple of them, or a predicate taking the "
        f"exception, got {on!r}"
    )


def predicate_name(predicate: object) -> str:
    """A predicate's name for descriptions: ``server_error``, ``<lambda>``, or its type's."""
    name = getattr(predicate, "__name__", None)
    return name if isinstance(name, str) else type(predicate).__name__
