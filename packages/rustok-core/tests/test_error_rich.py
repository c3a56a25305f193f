"""RichError: defaults from its kind, the fluent API, chaining and pickling."""

import pickle
import uuid

import pytest

from rustok_core.error import ErrorKind, FieldViolation, RichError


class OrderNotFoundError(RichError):
    def __init__(self, order_id: str) -> None:
        super().__init__(ErrorKind.NOT_FOUND, f"order {order_id} not found")
        self.order_id = order_id


def test_code_and_status_default_to_the_kind() -> None:
    error = RichError(ErrorKind.CONFLICT, "slug taken")
    assert (error.kind, error.code, error.status) == (ErrorKind.CONFLICT, "CONFLICT", 409)
    assert error.message == "slug taken"
    assert error.user_message is None
    assert error.fields == {}
    assert error.tenant_id is None
    assert error.trace_id is None
    assert error.violations == ()


def test_constructor_overrides_every_default() -> None:
    error = RichError(
        ErrorKind.NOT_FOUND,
        "row 7 missing in orders",
        user_message="No such order",
        code="ORDER_NOT_FOUND",
        status=410,
        fields={"order_id": "7"},
        tenant_id="acme",
        trace_id="t-1",
    )
    assert error.user_message == "No such order"
    assert error.code == "ORDER_NOT_FOUND"
    assert error.status == 410
    assert error.fields == {"order_id": "7"}
    assert error.tenant_id == "acme"
    assert error.trace_id == "t-1"


def test_fluent_setters_change_the_error_and_return_it() -> None:
    tenant = uuid.UUID("12345678-1234-5678-1234-567812345678")
    error = RichError(ErrorKind.INTERNAL, "boom")
    same = (
        error.with_field("order_id", 42)
        .with_fields({"step": "pay"}, attempt=3)
        .with_tenant(tenant)
        .with_trace("trace-9")
        .with_user_message("Try again later")
        .with_code("PAYMENT_FAILED")
        .with_status(502)
        .with_violation(("items", 0, "sku"), "unknown SKU")
    )
    assert same is error
    assert error.fields == {"order_id": "42", "step": "pay", "attempt": "3"}
    assert error.tenant_id == str(tenant)
    assert error.trace_id == "trace-9"
    assert error.user_message == "Try again later"
    assert error.code == "PAYMENT_FAILED"
    assert error.status == 502
    assert error.violations == (FieldViolation("/items/0/sku", "unknown SKU"),)


def test_fluent_raise_reads_as_one_statement() -> None:
    with pytest.raises(RichError) as caught:
        raise RichError(ErrorKind.NOT_FOUND, "no order").with_field("id", "o-1")
    assert caught.value.fields == {"id": "o-1"}


@pytest.mark.parametrize("status", [200, 302, 399, 600, 0])
def test_status_outside_4xx_5xx_is_refused(status: int) -> None:
    with pytest.raises(ValueError, match=r"400-599.*got " + str(status)):
        RichError(ErrorKind.INTERNAL, "x", status=status)
    with pytest.raises(ValueError, match="400-599"):
        RichError(ErrorKind.INTERNAL, "x").with_status(status)


def test_str_shows_message_and_fields_repr_shows_kind() -> None:
    error = RichError(ErrorKind.NOT_FOUND, "no order").with_field("id", "o-1")
    assert str(error) == "no order [id=o-1]"
    assert str(RichError(ErrorKind.NOT_FOUND, "no order")) == "no order"
    assert repr(error) == "RichError(kind=NOT_FOUND, code='NOT_FOUND', message='no order')"


def test_subclass_passes_its_own_kind() -> None:
    error = OrderNotFoundError("o-1")
    assert error.kind is ErrorKind.NOT_FOUND
    assert error.status == 404
    assert error.message == "order o-1 not found"
    assert isinstance(error, RichError)


def test_server_error_flag_follows_the_status() -> None:
    assert RichError(ErrorKind.DATABASE, "x").is_server_error
    assert not RichError(ErrorKind.VALIDATION, "x").is_server_error
    assert RichError(ErrorKind.VALIDATION, "x", status=503).is_server_error


def _load_config() -> None:
    try:
        try:
            raise KeyError("k")
        except KeyError as exc:
            raise ValueError("bad value") from exc
    except ValueError as exc:
        raise RichError(ErrorKind.INTERNAL, "loading config failed") from exc


def _save(*, suppress: bool) -> None:
    try:
        raise OSError("disk")
    except OSError:
        if suppress:
            raise RichError(ErrorKind.INTERNAL, "save failed") from None
        raise RichError(ErrorKind.INTERNAL, "save failed")  # noqa: B904


def test_chain_lists_messages_outermost_first() -> None:
    with pytest.raises(RichError) as caught:
        _load_config()
    assert caught.value.chain() == [
        "loading config failed",
        "ValueError: bad value",
        "KeyError: 'k'",
    ]


def test_chain_follows_implicit_context_but_not_suppressed_context() -> None:
    with pytest.raises(RichError) as caught:
        _save(suppress=False)
    assert caught.value.chain() == ["save failed", "OSError: disk"]
    with pytest.raises(RichError) as caught:
        _save(suppress=True)
    assert caught.value.chain() == ["save failed"]


def test_chain_names_an_exception_without_text_by_its_type() -> None:
    error = RichError(ErrorKind.INTERNAL, "outer")
    error.__cause__ = RuntimeError()
    assert error.chain() == ["outer", "RuntimeError"]


def test_chain_stops_at_a_cycle() -> None:
    outer = RichError(ErrorKind.INTERNAL, "outer")
    inner = RichError(ErrorKind.INTERNAL, "inner")
    outer.__cause__ = inner
    inner.__cause__ = outer
    assert outer.chain() == ["outer", "inner"]


def test_log_dict_holds_everything_for_logs() -> None:
    error = (
        RichError(ErrorKind.DATABASE, "insert failed", user_message="Try later")
        .with_field("table", "orders")
        .with_tenant("acme")
        .with_trace("t-1")
        .with_violation("email", "taken")
    )
    assert error.to_log_dict() == {
        "kind": "DATABASE",
        "code": "DATABASE",
        "status": 500,
        "message": "insert failed",
        "chain": ["insert failed"],
        "user_message": "Try later",
        "fields": {"table": "orders"},
        "tenant_id": "acme",
        "trace_id": "t-1",
        "violations": [{"pointer": "/email", "detail": "taken"}],
    }


def test_pickles_with_its_state_even_for_subclasses() -> None:
    error = OrderNotFoundError("o-1").with_field("id", "o-1").with_trace("t-1")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is OrderNotFoundError
    assert copy.order_id == "o-1"
    assert copy.fields == {"id": "o-1"}
    assert copy.trace_id == "t-1"
    assert copy.kind is ErrorKind.NOT_FOUND
    assert copy.args == error.args
