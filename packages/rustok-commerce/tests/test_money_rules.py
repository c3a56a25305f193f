"""Money is an exact Decimal in one ISO 4217 currency, held at the currency's minor unit."""

from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rustok_commerce import (
    CommerceError,
    CurrencyMismatchError,
    InvalidAmountError,
    Money,
    UnknownCurrencyError,
    currency_minor_units,
    is_currency,
)
from rustok_core.error import ErrorKind


def test_amount_is_held_at_the_currency_minor_unit() -> None:
    assert Money(Decimal("12.5"), "USD").amount.as_tuple() == Decimal("12.50").as_tuple()
    assert str(Money(Decimal("7"), "JPY").amount) == "7"
    assert str(Money(Decimal("1.2"), "BHD").amount) == "1.200"


def test_int_amount_is_accepted_and_quantised() -> None:
    assert str(Money.of(3, "EUR").amount) == "3.00"


def test_trailing_zeros_beyond_the_minor_unit_are_not_extra_precision() -> None:
    assert Money(Decimal("12.5000"), "USD") == Money(Decimal("12.50"), "USD")


def test_amount_finer_than_the_minor_unit_is_refused_not_rounded() -> None:
    with pytest.raises(InvalidAmountError, match="USD has 2 decimal place") as info:
        Money(Decimal("12.345"), "USD")
    assert info.value.reason == "too_precise"
    assert info.value.kind is ErrorKind.VALIDATION
    assert info.value.amount == "12.345"
    assert [(v.pointer, v.detail) for v in info.value.violations] == [
        ("/amount", "USD has 2 decimal place(s); round the amount first")
    ]


def test_yen_refuses_any_fraction() -> None:
    with pytest.raises(InvalidAmountError) as info:
        Money(Decimal("100.5"), "JPY")
    assert info.value.reason == "too_precise"


def test_float_amount_is_refused() -> None:
    with pytest.raises(InvalidAmountError, match="got float") as info:
        Money(0.1, "USD")  # type: ignore[arg-type]  # a float is exactly what is refused
    assert info.value.reason == "not_decimal"


def test_bool_amount_is_refused() -> None:
    with pytest.raises(InvalidAmountError):
        Money(True, "USD")  # type: ignore[arg-type]  # a bool is not an amount


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_amount_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmountError) as info:
        Money(Decimal(text), "USD")
    assert info.value.reason == "not_finite"


@pytest.mark.parametrize("code", ["usd", "US", "USDX", "ABC", "", "ZZZ", "EURO"])
def test_code_outside_iso_4217_is_refused(code: str) -> None:
    with pytest.raises(UnknownCurrencyError) as info:
        Money(Decimal(1), code)
    assert info.value.currency == code
    assert info.value.reason == "unknown"
    assert info.value.kind is ErrorKind.VALIDATION
    assert info.value.code == "UNKNOWN_CURRENCY"


@pytest.mark.parametrize("code", ["XAU", "XTS", "XXX", "XDR"])
def test_iso_code_without_minor_unit_cannot_price(code: str) -> None:
    with pytest.raises(UnknownCurrencyError, match="without a minor unit") as info:
        Money(Decimal(1), code)
    assert info.value.reason == "no_minor_unit"


def test_currency_minor_units_follow_iso_4217() -> None:
    assert currency_minor_units("USD") == 2
    assert currency_minor_units("JPY") == 0
    assert currency_minor_units("KWD") == 3
    assert is_currency("CHF")
    assert not is_currency("chf")
    assert not is_currency("XAU")


def test_of_reads_a_decimal_string() -> None:
    assert Money.of(" 19.90 ", "EUR") == Money(Decimal("19.9"), "EUR")


def test_of_refuses_text_that_is_not_a_number() -> None:
    with pytest.raises(InvalidAmountError, match="not a decimal number") as info:
        Money.of("12,50", "EUR")
    assert info.value.amount == "12,50"


def test_addition_and_subtraction_within_one_currency() -> None:
    total = Money.of("19.99", "EUR") + Money.of("0.01", "EUR")
    assert total == Money.of("20", "EUR")
    assert total - Money.of("25", "EUR") == Money.of("-5.00", "EUR")
    assert -Money.of("1.5", "EUR") == Money.of("-1.50", "EUR")


def test_adding_two_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatchError, match="cannot add EUR and USD") as info:
        _ = Money.of("1", "EUR") + Money.of("1", "USD")
    assert (info.value.left, info.value.right) == ("EUR", "USD")
    assert info.value.kind is ErrorKind.BUSINESS_LOGIC


def test_comparing_two_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatchError, match="compare"):
        _ = Money.of("1", "EUR") < Money.of("2", "USD")


def test_ordering_within_one_currency() -> None:
    small, large = Money.of("1.00", "GBP"), Money.of("1.01", "GBP")
    assert small < large
    assert small <= large
    assert large > small
    assert large >= small
    assert max(small, large) is large


def test_equal_amounts_of_different_currencies_differ() -> None:
    assert Money.of("1", "EUR") != Money.of("1", "USD")
    assert len({Money.of("1", "EUR"), Money.of("1.00", "EUR"), Money.of("1", "USD")}) == 2


def test_multiplying_by_an_int_is_exact() -> None:
    assert Money.of("0.10", "USD") * 3 == Money.of("0.30", "USD")
    assert 3 * Money.of("0.10", "USD") == Money.of("0.30", "USD")


def test_multiplying_by_a_decimal_rounds_half_to_even() -> None:
    assert Money.of("0.25", "USD") * Decimal("0.5") == Money.of("0.12", "USD")
    assert Money.of("0.35", "USD") * Decimal("0.5") == Money.of("0.18", "USD")


def test_scaled_takes_another_rounding() -> None:
    assert Money.of("0.35", "USD").scaled(Decimal("0.5"), rounding=ROUND_DOWN) == Money.of(
        "0.17", "USD"
    )


def test_multiplying_by_a_float_is_refused() -> None:
    with pytest.raises(TypeError):
        _ = Money.of("1", "USD") * 0.5  # type: ignore[operator]  # floats are refused
    with pytest.raises(InvalidAmountError):
        Money.of("1", "USD").scaled(0.5)  # type: ignore[arg-type]  # floats are refused


def test_money_is_immutable() -> None:
    price = Money.of("1", "USD")
    with pytest.raises(AttributeError):
        price.amount = Decimal(2)  # type: ignore[misc]  # frozen: the assignment must fail


def test_helpers_and_text() -> None:
    assert Money.zero("JPY").is_zero
    assert Money.of("0.01", "USD").is_positive
    assert not Money.of("-0.01", "USD").is_positive
    assert Money.of("1", "KWD").minor_units == 3
    assert str(Money.of("5", "EUR")) == "5.00 EUR"


def test_money_errors_are_commerce_errors() -> None:
    with pytest.raises(CommerceError):
        Money.of("1", "???")


_CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CLF", "GBP"])


@given(
    currency=_CURRENCIES,
    a=st.integers(min_value=-(10**12), max_value=10**12),
    b=st.integers(min_value=-(10**12), max_value=10**12),
)
def test_addition_is_exact_in_minor_units(currency: str, a: int, b: int) -> None:
    places = currency_minor_units(currency)
    left = Money(Decimal(a).scaleb(-places), currency)
    right = Money(Decimal(b).scaleb(-places), currency)
    total = left + right
    assert total.amount == Decimal(a + b).scaleb(-places)
    assert total.amount.as_tuple().exponent == -places
    assert total - right == left
