"""Input models check form and report every bad field by name."""

from decimal import Decimal
from uuid import UUID

import pytest
from pydantic import ValidationError

from rustok_commerce import (
    CancelOrderInput,
    CreateOrderInput,
    DeliverOrderInput,
    Money,
    PayOrderInput,
    ShipOrderInput,
)

CUSTOMER = UUID(int=42)


def _errors(error: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in error.errors()}


def test_create_order_reads_amount_text_and_upper_cases_currency() -> None:
    data = CreateOrderInput.model_validate(
        {"customer_id": str(CUSTOMER), "amount": " 49.9 ", "currency": "eur"}
    )
    assert data.customer_id == CUSTOMER
    assert data.currency == "EUR"
    assert data.money == Money(Decimal("49.90"), "EUR")


def test_create_order_refuses_a_json_number_amount() -> None:
    with pytest.raises(ValidationError) as info:
        CreateOrderInput.model_validate(
            {"customer_id": str(CUSTOMER), "amount": 49.9, "currency": "EUR"}
        )
    assert "amount" in _errors(info.value)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "greater than zero"),
        ("-1.00", "greater than zero"),
        ("abc", "not a decimal number"),
        ("NaN", "not a finite amount"),
        ("1.234", "USD has 2 decimal place"),
    ],
)
def test_create_order_refuses_bad_amounts(amount: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        CreateOrderInput(customer_id=CUSTOMER, amount=amount, currency="USD")
    assert message in _errors(info.value)["amount"]


def test_create_order_refuses_an_unknown_currency_by_field() -> None:
    with pytest.raises(ValidationError) as info:
        CreateOrderInput(customer_id=CUSTOMER, amount="1", currency="ABC")
    errors = _errors(info.value)
    assert set(errors) == {"currency"}
    assert "not an ISO 4217 currency code" in errors["currency"]


def test_create_order_reports_every_bad_field_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        CreateOrderInput.model_validate({"customer_id": "nope", "amount": "", "currency": "XAU"})
    assert set(_errors(info.value)) == {"customer_id", "amount", "currency"}


def test_create_order_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError) as info:
        CreateOrderInput.model_validate(
            {"customer_id": str(CUSTOMER), "amount": "1", "currency": "USD", "total": "1"}
        )
    assert set(_errors(info.value)) == {"total"}


def test_pay_requires_non_blank_id_and_method() -> None:
    with pytest.raises(ValidationError) as info:
        PayOrderInput(payment_id="  ", payment_method="")
    assert set(_errors(info.value)) == {"payment_id", "payment_method"}
    assert PayOrderInput(payment_id=" pi_1 ", payment_method="card").payment_id == "pi_1"


def test_ship_requires_tracking_number_and_carrier() -> None:
    with pytest.raises(ValidationError) as info:
        ShipOrderInput(tracking_number="", carrier=" ")
    assert set(_errors(info.value)) == {"tracking_number", "carrier"}


def test_deliver_signature_is_optional_but_not_blank() -> None:
    assert DeliverOrderInput().signature is None
    assert DeliverOrderInput(signature="J. Doe").signature == "J. Doe"
    with pytest.raises(ValidationError):
        DeliverOrderInput(signature=" ")


def test_cancel_requires_a_reason_and_takes_an_optional_refund_id() -> None:
    assert CancelOrderInput(reason="changed my mind").refund_id is None
    assert CancelOrderInput(reason="late", refund_id="re_1").refund_id == "re_1"
    with pytest.raises(ValidationError) as info:
        CancelOrderInput(reason="")
    assert set(_errors(info.value)) == {"reason"}
