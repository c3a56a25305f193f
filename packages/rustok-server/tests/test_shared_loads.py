"""SharedLoads: one load per key however many wait, stale-on-error, and the stand-in at
once while the store is degraded; the loading half of the tenant and key caches."""

from __future__ import annotations

import asyncio

import pytest

from rustok_server._shared_loads import SharedLoads


class Store:
    """Loads that the test holds at a gate, makes fail, and counts; ``entries`` is what
    stands in for a key."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False
        self.entries: dict[str, str] = {}

    async def load(self, key: str) -> str:
        self.calls.append(key)
        await self.gate.wait()
        if self.fail:
            raise TimeoutError(f"no answer for {key}")
        return key.upper()

    def stale(self, key: str) -> str | None:
        return self.entries.get(key)


async def test_concurrent_callers_share_one_load() -> None:
    store = Store()
    loads = SharedLoads(store.load, store.stale)
    store.gate.clear()
    waiting = [asyncio.create_task(loads.get("acme")) for _ in range(20)]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(*waiting) == [("ACME", False)] * 20
    assert store.calls == ["acme"]
    assert loads.joined == 19


async def test_a_failed_load_is_answered_by_the_stand_in_or_raised() -> None:
    store = Store()
    loads = SharedLoads(store.load, store.stale)
    store.fail = True
    with pytest.raises(TimeoutError):
        await loads.get("acme")
    store.entries["acme"] = "old"
    assert await loads.get("acme") == ("old", True)


async def test_while_degraded_a_caller_with_a_stand_in_does_not_wait_for_the_load() -> None:
    store = Store()
    degraded = True
    loads = SharedLoads(store.load, store.stale, degraded=lambda: degraded)
    store.entries["acme"] = "old"
    store.gate.clear()
    first = asyncio.create_task(loads.get("acme"))
    await asyncio.sleep(0)
    assert await loads.get("acme") == ("old", True)
    assert not first.done()
    store.gate.set()
    assert await first == ("ACME", False)


async def test_a_cancelled_caller_does_not_cancel_the_load_the_others_share() -> None:
    store = Store()
    loads = SharedLoads(store.load, store.stale)
    store.gate.clear()
    first = asyncio.create_task(loads.get("acme"))
    second = asyncio.create_task(loads.get("acme"))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    store.gate.set()
    assert await second == ("ACME", False)
    assert store.calls == ["acme"]


async def test_a_dropped_load_is_no_longer_current_and_the_next_caller_starts_another() -> None:
    store = Store()
    current: list[bool] = []

    async def load(key: str) -> str:
        value = await store.load(key)
        current.append(loads.is_current(key))
        return value

    loads: SharedLoads[str, str] = SharedLoads(load, store.stale)
    store.gate.clear()
    first = asyncio.create_task(loads.get("acme"))
    await asyncio.sleep(0)
    loads.drop("acme")
    second = asyncio.create_task(loads.get("acme"))
    await asyncio.sleep(0)
    store.gate.set()
    assert await first == await second == ("ACME", False)
    assert store.calls == ["acme", "acme"]
    assert sorted(current) == [False, True]
