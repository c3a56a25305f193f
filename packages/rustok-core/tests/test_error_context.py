"""wrap() and error_context(): context added the Python way, the cause kept."""

import asyncio

import pytest

from rustok_core.error import ErrorKind, FieldViolation, RichError, error_context, wrap


def test_wrap_makes_a_plain_exception_an_internal_error_with_it_as_cause() -> None:
    cause = OSError("connection reset")
    error = wrap(cause, "loading order o-1 failed", order_id="o-1")
    assert error.kind is ErrorKind.INTERNAL
    assert error.message == "loading order o-1 failed"
    assert error.fields == {"order_id": "o-1"}
    assert error.__cause__ is cause
    assert error.__suppress_context__
    assert error.chain() == ["loading order o-1 failed", "OSError: connection reset"]


def test_wrap_uses_the_kind_it_is_told() -> None:
    error = wrap(ValueError("x"), "parsing page size failed", kind=ErrorKind.VALIDATION)
    assert error.kind is ErrorKind.VALIDATION
    assert error.status == 400


def test_wrap_keeps_a_rich_errors_kind_code_status_and_user_message() -> None:
    inner = (
        RichError(ErrorKind.NOT_FOUND, "row missing", user_message="No such order")
        .with_code("ORDER_NOT_FOUND")
        .with_status(410)
        .with_violation("id", "unknown")
    )
    error = wrap(inner, "shipping order failed")
    assert error.kind is ErrorKind.NOT_FOUND
    assert error.code == "ORDER_NOT_FOUND"
    assert error.status == 410
    assert error.user_message == "No such order"
    assert error.violations == (FieldViolation("/id", "unknown"),)
    assert error.__cause__ is inner


def test_wrap_told_another_kind_drops_the_inner_code_status_and_user_message() -> None:
    inner = RichError(ErrorKind.NOT_FOUND, "row missing", user_message="No such order")
    inner.with_code("ORDER_NOT_FOUND").with_violation("id", "unknown")
    error = wrap(inner, "consistency check failed", kind=ErrorKind.INTERNAL)
    assert error.kind is ErrorKind.INTERNAL
    assert error.code == "INTERNAL"
    assert error.status == 500
    assert error.user_message is None
    assert error.violations == ()


def test_wrap_carries_tenant_trace_and_fields_over_new_fields_winning() -> None:
    inner = RichError(ErrorKind.DATABASE, "insert failed", tenant_id="acme", trace_id="t-1")
    inner.with_fields(table="orders", step="insert")
    error = wrap(inner, "creating order failed", step="create")
    assert error.tenant_id == "acme"
    assert error.trace_id == "t-1"
    assert error.fields == {"table": "orders", "step": "create"}


def test_error_context_converts_and_chains_what_is_raised_inside() -> None:
    with pytest.raises(RichError) as caught:
        with error_context("charging order", kind=ErrorKind.EXTERNAL_SERVICE, order_id="o-1"):
            raise ConnectionError("gateway down")
    error = caught.value
    assert error.kind is ErrorKind.EXTERNAL_SERVICE
    assert error.fields == {"order_id": "o-1"}
    assert isinstance(error.__cause__, ConnectionError)
    assert error.chain() == ["charging order", "ConnectionError: gateway down"]


def test_error_context_defaults_to_internal_and_keeps_a_rich_errors_kind() -> None:
    with pytest.raises(RichError) as caught:
        with error_context("step"):
            raise KeyError("k")
    assert caught.value.kind is ErrorKind.INTERNAL

    def nested() -> None:
        with error_context("outer"):
            with error_context("inner"):
                raise RichError(ErrorKind.CONFLICT, "version mismatch")

    with pytest.raises(RichError) as caught:
        nested()
    assert caught.value.kind is ErrorKind.CONFLICT
    assert caught.value.chain() == ["outer", "inner", "version mismatch"]


def test_error_context_lets_a_clean_block_through() -> None:
    with error_context("nothing fails"):
        value = 1 + 1
    assert value == 2


@pytest.mark.parametrize(
    "exc", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(3), GeneratorExit()]
)
def test_error_context_does_not_convert_cancellation_or_shutdown(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as caught:
        with error_context("step"):
            raise exc
    assert caught.value is exc


async def test_error_context_lets_task_cancellation_through() -> None:
    started = asyncio.Event()

    async def work() -> None:
        with error_context("waiting"):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_error_context_converts_errors_of_awaited_code() -> None:
    async def fetch() -> None:
        raise TimeoutError("slow")

    with pytest.raises(RichError) as caught:
        with error_context("fetching tenant", kind=ErrorKind.TIMEOUT):
            await fetch()
    assert caught.value.status == 504
    assert isinstance(caught.value.__cause__, TimeoutError)
