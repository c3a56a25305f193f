"""One load per key however many callers wait for it, and a stale answer when it fails:
the loading half of the tenant cache and of the API key cache.

Each cache keeps its own entries and its own rules for when one is fresh or may stand in
for a failed load; this module runs the loads. A load runs in a task of its own, so a
caller that is cancelled stops waiting while the load goes on for the others. When it
raises, each waiter is answered by the entry that may stand in for the key, if any, or
gets the load's exception. While the store is failing (``degraded()``), a caller whose key
has such an entry and a load already under way gets the entry at once instead of waiting
for that load, which can then only end at its query timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SharedLoads"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SharedLoads(Generic[K, T]):
    """Runs ``load(key)`` once per key at a time and shares its answer.

    Args:
        load: starts the load of one key (called at once, when the first caller asks;
            the coroutine it returns runs in its own task). It stores what it loaded in
            the owner's entries, if `is_current` still says so.
        stale: the entry that may stand in for ``key`` when its load fails, or ``None``.
        degraded: says whether the store behind ``load`` is failing right now.
    """

    def __init__(
        self,
        load: Callable[[K], Coroutine[Any, Any, T]],
        stale: Callable[[K], T | None],
        *,
        degraded: Callable[[], bool] | None = None,
    ) -> None:
        self._load = load
        self._stale = stale
        self._degraded = degraded
        self._tasks: dict[K, asyncio.Task[T]] = {}
        self.joined = 0
        """Callers that joined a load under way instead of starting one."""

    async def get(self, key: K) -> tuple[T, bool]:
        """What the key's load answered, and ``False``; or the entry that stands in for
        it, and ``True``.

        Raises:
            Exception: what the load raised, when no entry may stand in.
        """
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(key))
            self._tasks[key] = task
            task.add_done_callback(self._finished(key))
        else:
            if self._degraded is not None and self._degraded():
                stale = self._stale(key)
                if stale is not None:
                    return stale, True
            self.joined += 1
        try:
            # shield: a cancelled waiter must not cancel the load the others share.
            return await asyncio.shield(task), False
        except Exception:
            stale = self._stale(key)
            if stale is None:
                raise
            return stale, True

    def is_current(self, key: K) -> bool:
        """Whether the running task is the key's current load (one that was not dropped),
        whose answer may be stored."""
        return self._tasks.get(key) is asyncio.current_task()

    def drop(self, key: K) -> None:
        """Stop sharing the key's load under way: its answer is not to be stored, and the
        next caller starts a new one."""
        self._tasks.pop(key, None)

    def drop_all(self) -> None:
        """`drop` every load under way."""
        self._tasks.clear()

    def _finished(self, key: K) -> Callable[[asyncio.Task[T]], None]:
        def finished(task: asyncio.Task[T]) -> None:
            if self._tasks.get(key) is task:
                del self._tasks[key]
            if not task.cancelled():
                task.exception()  # retrieved: no "never retrieved" warning if all waiters left

        return finished
