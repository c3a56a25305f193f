"""Retrying a block of code, not only a function: `retrying` and `retrying_async`.

Some code to retry is not a function of its own: a few statements in the middle of a
handler, a transaction's body. stamina's ``retry_context`` and tenacity's
``for attempt in Retrying(): with attempt:`` retry such a block; these do the same
with a `RetryPolicy`::

    async for attempt in retrying_async(policy):
        with attempt:
            rows = await conn.fetch(query)

Every decision is the policy's own: the block is run as the attempts of one
``policy.execute`` (``execute_sync`` for `retrying`) call, so which errors are retried,
the waits, the stops, both budgets, ``retry_after``, the statistics, logs, ``on_retry``
and listeners, and test mode, are those of a call through the policy, and nothing of
them is written again here. `retrying_async` drives that call's coroutine itself, in
the caller's task, handing each attempt to the block and each wait to the event loop.
`retrying` runs ``execute_sync`` in a helper thread that waits while the block runs in
the caller's thread (a plain function's retries cannot be paused otherwise), so each
block costs a thread start: prefer `RetryPolicy.execute_sync` on a function where the
cost matters.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from types import TracebackType
from typing import Final, Literal, TypeAlias

from rustok_core.resilience._retry import RetryPolicy

__all__ = ["BlockAttempt", "retrying", "retrying_async"]


class _Abandoned(BaseException):
    """Thrown into a policy's call whose block loop was left before it ended: ends it
    (a ``BaseException``, so never retried)."""


class _Handoff:
    """What the attempt function awaits: the driver is handed it, runs the block, and
    sends nothing back (the block succeeded) or throws the block's error."""

    __slots__ = ()

    def __await__(self) -> Generator[_Handoff, None, None]:
        yield self


_HANDOFF: Final = _Handoff()

_Settle: TypeAlias = Callable[[BaseException | None], bool]
"""Hands a block's outcome (None: it succeeded) to the policy's call; returns what the
attempt's ``__exit__`` returns."""


class BlockAttempt:
    """One attempt of a block retried by `retrying` or `retrying_async`: enter it with
    ``with attempt:`` around the block.

    On leaving it, an error the policy retries is swallowed and the loop goes on to the
    next attempt after the policy's wait; any other error, and the last attempt's, is
    raised as itself; success ends the loop.
    """

    __slots__ = ("_done", "_number", "_settle")

    def __init__(self, number: int, settle: _Settle) -> None:
        self._number = number
        self._settle = settle
        self._done = False

    @property
    def number(self) -> int:
        """The attempt's number, from 1."""
        return self._number

    def __enter__(self) -> BlockAttempt:
        if self._done:
            raise RuntimeError(f"attempt {self._number} has already been run")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._done = True
        return self._settle(error)

    def __repr__(self) -> str:
        return f"<BlockAttempt {self._number}>"


def _suppressed(error: BaseException | None, raised: BaseException | None) -> bool:
    """What ``__exit__`` returns once the policy has judged the block's ``error``: False
    to let the block's own error go on (or after success), True to swallow a retried one;
    ``raised``, if the policy raised another error, is raised."""
    if raised is None:
        return error is not None  # the policy goes on to another attempt
    if raised is error:
        return False
    raise raised


class _AsyncBlock:
    """The async iterator of `retrying_async`: drives ``policy.execute``'s coroutine."""

    __slots__ = ("_attempts", "_call", "_state", "_step")

    def __init__(self, policy: RetryPolicy) -> None:
        self._call: Coroutine[object, None, None] = policy.execute(self._attempt)
        # "start": nothing run yet; "block": an attempt is out; "wait": the policy waits
        # on ``_step``; "done": the call has ended.
        self._state: Literal["start", "block", "wait", "done"] = "start"
        self._step: object = None
        self._attempts = 0

    @staticmethod
    async def _attempt() -> None:
        await _HANDOFF

    def __aiter__(self) -> _AsyncBlock:
        return self

    async def __anext__(self) -> BlockAttempt:
        if self._state == "done":
            raise StopAsyncIteration
        if self._state == "block":
            raise RuntimeError(
                f"attempt {self._attempts} was not run: enter each attempt with `with attempt:`"
            )
        step = self._call.send(None) if self._state == "start" else self._step
        # Everything but the hand-off is a wait of the policy's, passed on to the loop.
        while step is not _HANDOFF:
            try:
                if step is None:
                    await asyncio.sleep(0)
                elif isinstance(step, asyncio.Future):
                    # Taken over as a task takes over a future its coroutine yields.
                    step._asyncio_future_blocking = False
                    await step
                else:  # pragma: no cover - asyncio's coroutines yield nothing else
                    raise RuntimeError(f"unexpected await in a retry policy's call: {step!r}")
            except BaseException as error:
                self._state = "done"
                step = self._call.throw(error)  # raises it: an interrupted wait ends the call
            else:
                step = self._call.send(None)
        self._state = "block"
        self._attempts += 1
        return BlockAttempt(self._attempts, self._settle)

    def _settle(self, error: BaseException | None) -> bool:
        raised: BaseException | None = None
        self._state = "done"
        try:
            if error is None:
                self._call.send(None)
            else:
                self._step = self._call.throw(error)
                self._state = "wait"
        except StopIteration:
            pass
        except BaseException as policy_raised:
            raised = policy_raised
        return _suppressed(error, raised)

    async def aclose(self) -> None:
        """End the policy's call if the loop was left before it ended (``break``)."""
        if self._state != "done":
            self._state = "done"
            self._call.close()


class _SyncBlock:
    """The runs of `retrying`: ``policy.execute_sync`` in a helper thread, whose attempts
    wait for the caller's block."""

    __slots__ = ("_attempts", "_next", "_outcomes", "_pending", "_policy", "_steps")

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        # From the helper: "attempt" (run the block), or the call's end (None, or its error).
        self._steps: queue.SimpleQueue[Literal["attempt"] | BaseException | None] = (
            queue.SimpleQueue()
        )
        # To the helper: the block's outcome (None: it succeeded).
        self._outcomes: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._attempts = 0
        self._next: Literal["attempt"] | BaseException | None = None
        self._pending = False  # the helper waits for a block's outcome

    def _attempt(self) -> None:
        self._steps.put("attempt")
        error = self._outcomes.get()
        if error is not None:
            raise error

    def _run(self) -> None:
        try:
            self._policy.execute_sync(self._attempt)
        except BaseException as error:
            self._steps.put(error)
        else:
            self._steps.put(None)

    def run(self) -> Iterator[BlockAttempt]:
        context = contextvars.copy_context()
        helper = threading.Thread(
            target=context.run, args=(self._run,), name=f"retrying {self._policy.name}"
        )
        helper.start()
        try:
            self._next = self._steps.get()
            while self._next == "attempt":
                self._pending = True
                self._attempts += 1
                attempt = BlockAttempt(self._attempts, self._settle)
                yield attempt
                if not attempt._done:
                    raise RuntimeError(
                        f"attempt {self._attempts} was not run: enter each attempt with "
                        "`with attempt:`"
                    )
        finally:
            if self._pending:  # the loop was left early: end the helper's call
                self._pending = False
                self._outcomes.put(_Abandoned())
                self._steps.get()
            helper.join()

    def _settle(self, error: BaseException | None) -> bool:
        self._pending = False
        self._outcomes.put(error)
        step = self._next = self._steps.get()
        if step == "attempt":
            return _suppressed(error, None)
        return _suppressed(error, step)


def retrying(policy: RetryPolicy) -> Iterator[BlockAttempt]:
    """Attempts of a block of plain code, retried per ``policy``::

        for attempt in retrying(policy):
            with attempt:
                row = cursor.execute(query).fetchone()

    The block runs once per attempt, in the caller's thread; the policy's waits between
    attempts are those of `RetryPolicy.execute_sync` (skipped in test mode). An error the
    policy retries is swallowed by ``with attempt:`` and the loop goes on; any other
    error, or the last attempt's, is raised as itself from the block.

    Raises:
        RuntimeError: the loop went on without running an attempt (``with attempt:``).
    """
    return _SyncBlock(policy).run()


def retrying_async(policy: RetryPolicy) -> AsyncIterator[BlockAttempt]:
    """Attempts of a block of async code, retried per ``policy``::

        async for attempt in retrying_async(policy):
            with attempt:
                rows = await conn.fetch(query)

    The block runs once per attempt, in the caller's task; the policy's waits between
    attempts are those of `RetryPolicy.execute` (skipped in test mode), awaited in the
    ``async for``. An error the policy retries is swallowed by ``with attempt:`` and the
    loop goes on; any other error, or the last attempt's, is raised as itself.

    Raises:
        RuntimeError: the loop went on without running an attempt (``with attempt:``).
    """
    return _AsyncBlock(policy)
