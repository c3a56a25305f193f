"""Input models check form and report every bad field by name."""

import re
from decimal import Decimal
from uuid import UUID

import pytest
from pydantic import ValidationError

from rustok_commerce import (
    AMOUNT_MAX_INTEGER_DIGITS,
    AMOUNT_MAX_SCALE,
    AMOUNT_PATTERN,
    CancelOrderInput,
    ConfirmOrderInput,
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
        {"customer_id": str(CUSTOMER), "amount": "49.9", "currency": "eur"}
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
        ("abc", "not a decimal number"),
        ("NaN", "not a decimal number"),
        ("1.234", "USD has 2 decimal place"),
    ],
)
def test_create_order_refuses_bad_amounts(amount: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        CreateOrderInput(customer_id=CUSTOMER, amount=amount, currency="USD")
    assert message in _errors(info.value)["amount"]


@pytest.mark.parametrize("amount", ["0", "-1.00"])
def test_create_order_leaves_a_non_positive_total_to_the_order_rule(amount: str) -> None:
    # Well-formed money; that an order must cost something is NonPositiveAmountError (422).
    assert CreateOrderInput(customer_id=CUSTOMER, amount=amount, currency="USD").amount == amount


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


def test_pay_strips_and_leaves_blank_details_to_the_payment_rule() -> None:
    assert PayOrderInput(payment_id=" pi_1 ", payment_method="card").payment_id == "pi_1"
    blank = PayOrderInput(payment_id="  ", payment_method="")  # MissingOrderDetailError later
    assert (blank.payment_id, blank.payment_method) == ("", "")


def test_details_longer_than_255_characters_are_malformed() -> None:
    with pytest.raises(ValidationError) as info:
        ShipOrderInput(tracking_number="1" * 256, carrier="x" * 256)
    assert set(_errors(info.value)) == {"tracking_number", "carrier"}


def test_deliver_signature_is_optional() -> None:
    assert DeliverOrderInput().signature is None
    assert DeliverOrderInput(signature="J. Doe").signature == "J. Doe"


def test_cancel_takes_a_reason_and_an_optional_refund_id() -> None:
    assert CancelOrderInput(reason="changed my mind").refund_id is None
    assert CancelOrderInput(reason="late", refund_id="re_1").refund_id == "re_1"
    with pytest.raises(ValidationError) as info:
        CancelOrderInput.model_validate({})
    assert set(_errors(info.value)) == {"reason"}


def test_confirm_input_says_the_items_are_reserved_unless_told() -> None:
    assert ConfirmOrderInput().inventory_reserved is True
    with pytest.raises(ValidationError):
        ConfirmOrderInput.model_validate({"inventory_reserved": "maybe"})


@pytest.mark.parametrize(
    "amount",
    [
        " 5 ",  # no spaces
        "+5",  # no plus sign
        "1_000",  # no underscores
        "\u0661\u0662\u0663",  # ASCII digits only (not Arabic-Indic)
        "1E+37",  # no exponent
        "1e2",
        ".5",
        "5.",
        "Infinity",
        "NaN",
        "1234567890123456789",  # 19 digits before the point
        "1.00000",  # 5 after it
        "",
    ],
)
def test_create_order_refuses_amount_text_that_is_not_plain_ascii_decimal(amount: str) -> None:
    with pytest.raises(ValidationError) as info:
        CreateOrderInput.model_validate(
            {"customer_id": str(CUSTOMER), "amount": amount, "currency": "EUR"}
        )
    assert list(_errors(info.value)) == ["amount"]


def test_create_order_accepts_the_largest_amount_and_a_sign_left_to_the_rules() -> None:
    largest = "9" * AMOUNT_MAX_INTEGER_DIGITS + ".99"
    assert CreateOrderInput(customer_id=CUSTOMER, amount=largest, currency="EUR").amount == largest
    negative = CreateOrderInput(customer_id=CUSTOMER, amount="-5", currency="EUR")
    assert negative.money == Money(Decimal("-5.00"), "EUR")  # NonPositiveAmountError later


def test_amount_pattern_is_the_checked_form() -> None:
    schema = CreateOrderInput.model_json_schema()["properties"]["amount"]
    assert schema["pattern"] == AMOUNT_PATTERN
    assert re.fullmatch(AMOUNT_PATTERN, "49.90")
    assert not re.fullmatch(AMOUNT_PATTERN, "+5")
    assert AMOUNT_MAX_SCALE == 4


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x9b"])
def test_text_refuses_control_characters_naming_the_field(character: str) -> None:
    with pytest.raises(ValidationError) as info:
        ShipOrderInput.model_validate({"tracking_number": f"1Z{character}9", "carrier": "UPS"})
    assert list(_errors(info.value)) == ["tracking_number"]
    assert "control character" in _errors(info.value)["tracking_number"]


def test_text_keeps_tabs_and_line_breaks() -> None:
    cancel = CancelOrderInput(reason="wrong size\r\nand\tcolour")
    assert cancel.reason == "wrong size\r\nand\tcolour"


def test_text_refuses_a_lone_surrogate() -> None:
    with pytest.raises(ValidationError) as info:
        PayOrderInput.model_validate({"payment_id": "pi_\ud800", "payment_method": "card"})
    assert list(_errors(info.value)) == ["payment_id"]
