"""with_timeout: results pass through, slow calls become OperationTimeoutError."""

from __future__ import annotations

import asyncio
from typing import assert_type

import pytest

from rustok_core.error import ErrorKind, RichError
from rustok_core.resilience import OperationTimeoutError, with_timeout


async def answer(x: int, *, plus: int = 0) -> int:
    return x + plus


async def test_a_fast_call_returns_its_result() -> None:
    result = await with_timeout(5.0, answer, 40, plus=2)
    assert assert_type(result, int) == 42


async def test_a_slow_call_is_cancelled_and_raises_operation_timeout_error() -> None:
    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(OperationTimeoutError) as caught:
        await with_timeout(0.01, hang)
    error = caught.value
    assert cancelled.is_set()
    assert error.seconds == 0.01
    assert "hang" in error.operation
    assert isinstance(error, TimeoutError)
    assert isinstance(error, RichError)
    assert error.kind is ErrorKind.TIMEOUT
    assert error.status == 504
    assert isinstance(error.__cause__, TimeoutError)


async def test_a_timeout_error_raised_by_the_call_itself_passes_through() -> None:
    own = TimeoutError("the upstream's own timeout")

    async def raise_own() -> None:
        raise own

    with pytest.raises(TimeoutError) as caught:
        await with_timeout(5.0, raise_own)
    assert caught.value is own


async def test_the_call_s_own_errors_pass_through_unchanged() -> None:
    async def broken() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await with_timeout(5.0, broken)


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), True])
async def test_the_limit_must_be_a_positive_number(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        await with_timeout(seconds, answer, 1)
