"""Bulkhead: slots, the bounded wait, handover in arrival order, the sync twin, events."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rustok_core.error import ErrorKind, ProblemDetails
from rustok_core.resilience import (
    Bulkhead,
    BulkheadFullError,
    CallOutcome,
    CallRejected,
    Event,
)
from rustok_core.testing import ManualClock, test_mode


class Gate:
    """Calls that wait until the test opens the gate."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = 0

    async def __call__(self, value: int = 0) -> int:
        self.entered += 1
        await self.open.wait()
        return value


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_admits_up_to_max_concurrent_and_refuses_the_next_at_once() -> None:
    bulkhead = Bulkhead("search", max_concurrent=2)
    gate = Gate()
    running = [asyncio.create_task(bulkhead.call(gate, n)) for n in range(2)]
    await settle()
    with pytest.raises(BulkheadFullError) as refused:
        await bulkhead.call(gate)
    assert gate.entered == 2  # the refused call never ran
    assert refused.value.bulkhead_name == "search"
    gate.open.set()
    assert await asyncio.gather(*running) == [0, 1]
    stats = bulkhead.stats()
    assert (stats.in_use, stats.total_admitted, stats.total_rejected) == (0, 2, 1)


async def test_a_waiting_call_gets_the_slot_freed_within_max_wait() -> None:
    bulkhead = Bulkhead("search", max_concurrent=1, max_wait=30.0)
    gate = Gate()
    first = asyncio.create_task(bulkhead.call(gate, 1))
    await settle()
    second = asyncio.create_task(bulkhead.call(gate, 2))
    await settle()
    assert bulkhead.stats().waiting == 1
    assert gate.entered == 1
    gate.open.set()  # the first call ends and hands its slot over
    assert list(await asyncio.gather(first, second)) == [1, 2]
    assert bulkhead.stats().total_rejected == 0


async def test_waiters_get_slots_in_arrival_order() -> None:
    bulkhead = Bulkhead("search", max_concurrent=1, max_wait=30.0)
    order: list[int] = []
    release = asyncio.Event()

    async def work(n: int) -> None:
        order.append(n)
        if n == 0:
            await release.wait()

    tasks = [asyncio.create_task(bulkhead.call(work, n)) for n in range(4)]
    await settle()
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]


async def test_in_test_mode_a_full_bulkhead_counts_max_wait_on_the_clock_and_refuses() -> None:
    clock = ManualClock(start=0.0)
    bulkhead = Bulkhead("search", max_concurrent=1, max_wait=2.5, clock=clock)
    gate = Gate()
    running = asyncio.create_task(bulkhead.call(gate))
    await settle()
    with test_mode(), pytest.raises(BulkheadFullError) as refused:
        await bulkhead.call(gate)
    assert clock.now == 2.5
    assert refused.value.retry_after == 2.5
    gate.open.set()
    await running
    assert bulkhead.stats().waiting == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_takes_no_slot() -> None:
    bulkhead = Bulkhead("search", max_concurrent=1, max_wait=30.0)
    gate = Gate()
    first = asyncio.create_task(bulkhead.call(gate, 1))
    await settle()
    waiter = asyncio.create_task(bulkhead.call(gate, 2))
    await settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.open.set()
    await first
    assert bulkhead.stats().in_use == 0
    assert await bulkhead.call(gate, 3) == 3


async def test_the_slot_is_freed_when_the_call_fails() -> None:
    bulkhead = Bulkhead("search", max_concurrent=1)

    async def fail() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await bulkhead.call(fail)
    assert bulkhead.stats().in_use == 0


def test_bulkhead_full_is_a_503_with_retry_after() -> None:
    problem = ProblemDetails.from_error(BulkheadFullError("search", 4, 1.0))
    assert BulkheadFullError("search", 4, 1.0).kind is ErrorKind.EXTERNAL_SERVICE
    assert problem.status == 503
    assert problem.headers()["Retry-After"] == "1"


def test_the_sync_twin_shares_the_slots_with_threads() -> None:
    bulkhead = Bulkhead("files", max_concurrent=1)
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> str:
        inside.set()
        leave.wait(5)
        return "done"

    thread = threading.Thread(target=bulkhead.call_sync, args=(hold,))
    thread.start()
    inside.wait(5)
    with pytest.raises(BulkheadFullError):
        bulkhead.call_sync(lambda: "second")
    leave.set()
    thread.join(5)
    assert bulkhead.call_sync(lambda: "third") == "third"


def test_the_sync_twin_waits_for_a_slot_freed_by_another_thread() -> None:
    bulkhead = Bulkhead("files", max_concurrent=1, max_wait=30.0)
    inside = threading.Event()
    leave = threading.Event()

    def hold() -> None:
        inside.set()
        leave.wait(5)

    thread = threading.Thread(target=bulkhead.call_sync, args=(hold,))
    thread.start()
    inside.wait(5)
    threading.Timer(0.0, leave.set).start()  # frees the slot while we wait
    assert bulkhead.call_sync(lambda: "got it") == "got it"
    thread.join(5)


async def test_listeners_hear_outcomes_and_rejections() -> None:
    events: list[Event] = []
    bulkhead = Bulkhead("search", max_concurrent=1, listeners=[events.append])
    gate = Gate()
    running = asyncio.create_task(bulkhead.call(gate))
    await settle()
    with pytest.raises(BulkheadFullError):
        await bulkhead.call(gate)
    gate.open.set()
    await running
    assert [type(e) for e in events] == [CallRejected, CallOutcome]
    rejected, outcome = events
    assert isinstance(rejected, CallRejected)
    assert (rejected.strategy, rejected.reason) == ("bulkhead", "full")
    assert isinstance(outcome, CallOutcome)
    assert outcome.outcome == "success"


async def test_the_decorator_keeps_the_signature() -> None:
    bulkhead = Bulkhead("search", max_concurrent=2)

    @bulkhead
    async def double(x: int) -> int:
        return 2 * x

    @bulkhead
    def triple(x: int) -> int:
        return 3 * x

    assert await double(2) == 4
    assert triple(2) == 6
    assert double.__name__ == "double"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "max_concurrent": 1}, "name"),
        ({"name": "b", "max_concurrent": 0}, "max_concurrent"),
        ({"name": "b", "max_concurrent": 1, "max_wait": -1.0}, "max_wait"),
    ],
)
def test_invalid_bulkhead_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Bulkhead(**kwargs)  # type: ignore[arg-type]  # testing bad input


def test_bulkhead_full_error_names_its_retry_time() -> None:
    assert "retry after 1.5 s," in str(BulkheadFullError("search", 4, 1.5))
