"""Money: a `Decimal` amount in one ISO 4217 currency, exact to the currency's minor unit.

Floats never enter: `0.1 + 0.2` is not `0.3`, and a price must add up to the cent.
Currency codes are checked against the ISO 4217 table shipped by the ``iso4217``
distribution, which also gives each currency's minor unit (2 for USD, 0 for JPY,
3 for BHD). Every amount is held at exactly that many decimal places.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, cast

from iso4217 import Currency

from rustok_commerce._errors import CurrencyMismatchError, InvalidAmountError, UnknownCurrencyError

# Alphabetic code -> minor unit exponent (None for funds, metals and test codes), read once.
_EXPONENTS: Final[dict[str, int | None]] = {c.code: c.exponent for c in Currency}
# Quantising under this context raises instead of rounding: money is never rounded silently.
_EXACT: Final = decimal.Context(prec=40, traps=[decimal.Inexact, decimal.InvalidOperation])


def currency_minor_units(currency: str) -> int:
    """The number of decimal places of `currency`'s minor unit (2 for ``"USD"``).

    Args:
        currency: an upper-case ISO 4217 alphabetic code.

    Returns:
        The exponent of the minor unit: 0 for JPY, 2 for EUR, 3 for KWD.

    Raises:
        UnknownCurrencyError: `currency` is not an ISO 4217 code (``reason="unknown"``),
            or is one without a minor unit such as ``XAU`` (``reason="no_minor_unit"``).
    """
    if currency not in _EXPONENTS:
        raise UnknownCurrencyError(currency)
    exponent = _EXPONENTS[currency]
    if exponent is None:
        raise UnknownCurrencyError(currency, reason="no_minor_unit")
    return exponent


def is_currency(code: str) -> bool:
    """Whether `code` is an ISO 4217 currency that can price an order."""
    try:
        currency_minor_units(code)
    except UnknownCurrencyError:
        return False
    return True


def _quantum(exponent: int) -> Decimal:
    return Decimal(1).scaleb(-exponent)


@dataclass(frozen=True, slots=True, eq=True)
class Money:
    """An exact amount of one currency.

    `amount` must be a `Decimal` (`Money.of` also reads text and ints); a `float` is
    refused, because it cannot hold most prices exactly. The amount may have fewer decimal
    places than the currency's minor unit (``Decimal("12.5")`` USD becomes ``12.50``) but
    never more: ``Decimal("12.345")`` USD is refused instead of silently rounded.

    Arithmetic (``+``, ``-``, unary ``-``, ``*`` by an integer) and ordering work only
    between amounts of the same currency; mixing currencies raises
    `CurrencyMismatchError`. Multiplying by a `Decimal` factor rounds half to even to the
    minor unit (use `Money.scaled` to choose another rounding).

    Args:
        amount: the amount, a `Decimal`.
        currency: the upper-case ISO 4217 code, e.g. ``"EUR"``.

    Raises:
        InvalidAmountError: `amount` is a float, not finite, or finer than the minor unit.
        UnknownCurrencyError: `currency` is not an ISO 4217 currency with a minor unit.

    Examples:
        >>> Money(Decimal("19.9"), "EUR") + Money(Decimal("0.10"), "EUR")
        Money(amount=Decimal('20.00'), currency='EUR')
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        exponent = currency_minor_units(self.currency)
        amount: object = self.amount
        if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
            raise InvalidAmountError(
                amount,
                self.currency,
                "not_decimal",
                f"expected a Decimal or an int, got {type(amount).__name__}; "
                "pass the amount as Decimal('12.34') or as the string '12.34'",
            )
        value = Decimal(amount)
        if not value.is_finite():
            raise InvalidAmountError(amount, self.currency, "not_finite", "must be finite")
        quantum = _quantum(exponent)
        try:
            exact = value.quantize(quantum, context=_EXACT)
        except decimal.Inexact:
            raise InvalidAmountError(
                amount,
                self.currency,
                "too_precise",
                f"{self.currency} has {exponent} decimal place(s); round the amount first",
            ) from None
        except decimal.InvalidOperation:
            raise InvalidAmountError(
                amount, self.currency, "not_finite", "is too large to represent"
            ) from None
        object.__setattr__(self, "amount", exact)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Build money from a decimal string (``"12.34"``), an int or a `Decimal`.

        Raises:
            InvalidAmountError: the text is not a decimal number, or any `Money` rule fails.
            UnknownCurrencyError: as for `Money`.
        """
        if isinstance(amount, str):
            try:
                value = Decimal(amount.strip())
            except decimal.InvalidOperation:
                raise InvalidAmountError(
                    amount, currency, "not_decimal", "is not a decimal number such as '12.34'"
                ) from None
            return cls(value, currency)
        if isinstance(amount, int) and type(amount) is not bool:
            amount = Decimal(amount)
        # Anything else than a Decimal now (a float, a bool) is refused by the constructor.
        return cls(cast("Decimal", amount), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in `currency`."""
        return cls(Decimal(0), currency)

    @property
    def minor_units(self) -> int:
        """The number of decimal places of this currency (2 for USD)."""
        return currency_minor_units(self.currency)

    @property
    def is_positive(self) -> bool:
        """Whether the amount is greater than zero."""
        return self.amount > 0

    @property
    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return self.amount == 0

    def scaled(self, factor: Decimal | int, *, rounding: str = ROUND_HALF_EVEN) -> Money:
        """This amount times `factor`, rounded to the minor unit with `rounding`.

        Raises:
            InvalidAmountError: `factor` is a float or not finite.
        """
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            raise InvalidAmountError(
                factor,
                self.currency,
                "not_decimal",
                f"a factor must be a Decimal or an int, got {type(factor).__name__}",
            )
        product = self.amount * Decimal(factor)
        if not product.is_finite():
            raise InvalidAmountError(factor, self.currency, "not_finite", "must be finite")
        quantum = _quantum(currency_minor_units(self.currency))
        return Money(product.quantize(quantum, rounding=rounding), self.currency)

    def _same(self, other: Money, operation: str) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(self.currency, other.currency, operation)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "add")
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "subtract")
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            return NotImplemented
        return self.scaled(factor)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other, "compare")
        return self.amount >= other.amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
