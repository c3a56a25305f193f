"""One coroutine that runs in the background of the event loop for as long as the server
does: the change watcher, the database prober, the idempotency purger."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine

__all__ = ["BackgroundTask"]


class BackgroundTask:
    """Runs ``work()`` as a task of the running loop between `start` and `stop`.

    Args:
        work: makes the coroutine to run (called by each `start` that starts it).

    Examples:
        >>> async def main() -> bool:
        ...     ticks = asyncio.Event()
        ...
        ...     async def tick() -> None:
        ...         ticks.set()
        ...         await asyncio.Event().wait()
        ...
        ...     task = BackgroundTask(tick)
        ...     task.start()
        ...     await ticks.wait()
        ...     await task.stop()
        ...     return task.running
        >>> asyncio.run(main())
        False
    """

    def __init__(self, work: Callable[[], Coroutine[object, object, None]]) -> None:
        self._work = work
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether it was started and not stopped."""
        return self._task is not None

    def start(self) -> None:
        """Start the work in the running loop (nothing if it runs already)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        """Cancel the work and wait until it has ended (nothing if it does not run)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
