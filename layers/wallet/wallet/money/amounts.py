"""Exact amounts: parsing from the wire and writing back, always as Decimal."""

from __future__ import annotations

import re
from decimal import Context, Decimal, Inexact, InvalidOperation, Overflow, Rounded

# Amounts are in whatever unit the Games Server is set to (kopecks by default). The bounds only reject the absurd:
# more than a quadrillion units, or more decimal places than any currency unit needs.
MAX_AMOUNT = Decimal(10) ** 15
MAX_DECIMAL_PLACES = 8
_PLAIN_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
# DynamoDB keeps 38 significant digits. Money arithmetic uses the same precision and traps any rounding, so a result
# is exact or an error, never silently rounded (Python's default context would round at 28 digits).
MONEY = Context(prec=38, traps=[Inexact, Rounded, InvalidOperation, Overflow])


def significant_digits(number: Decimal) -> int:
    """Digits without leading or trailing zeros, computed without rounding (normalize() would round at prec)."""
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    return max(len(digits), 1)


def move_balance(balance: Decimal, minus: Decimal, plus: Decimal) -> Decimal:
    """balance - minus + plus, exactly (raises decimal.Inexact rather than round)."""
    return MONEY.add(MONEY.subtract(balance, minus), plus)


class InvalidAmount(ValueError):
    """An amount that is not a finite, non-negative, bounded decimal number."""


def parse_amount(value: object, field: str) -> Decimal:
    """Turn a JSON value (already parsed with Decimal for numbers) into an exact amount, or raise InvalidAmount.

    A JSON number or a string holding a plain decimal ("100", "1.50") is accepted; booleans, floats that slipped past
    the Decimal parser, exponents in strings, NaN and infinities are not.
    """
    if isinstance(value, bool):
        raise InvalidAmount(f"{field} must be a number, not a boolean")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value):
        amount = Decimal(value)
    else:
        raise InvalidAmount(f"{field} must be a non-negative number")
    if not amount.is_finite():
        raise InvalidAmount(f"{field} must be finite")
    if amount < 0:
        raise InvalidAmount(f"{field} must not be negative")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"{field} exceeds {MAX_AMOUNT}")
    if significant_digits(amount) > MONEY.prec:
        raise InvalidAmount(f"{field} has more than {MONEY.prec} significant digits")
    if amount != 0 and amount.adjusted() < -MAX_DECIMAL_PLACES:
        # Below the smallest unit: refused before normalize(), which would underflow for 1e-1000037.
        raise InvalidAmount(f"{field} has more than {MAX_DECIMAL_PLACES} decimal places")
    # Normalise "100.00" and "1E+2" to one canonical value so equal amounts compare and store the same way.
    amount = canonical(amount)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        raise InvalidAmount(f"{field} has more than {MAX_DECIMAL_PLACES} decimal places")
    return amount


def canonical(amount: Decimal) -> Decimal:
    """The shortest exact form: integers without exponent or trailing zeros, fractions without trailing zeros."""
    if amount == amount.to_integral_value():
        return Decimal(int(amount))
    return amount.normalize(MONEY)


def format_number(amount: Decimal) -> str:
    """A JSON number for the wire: an integer where the value is whole, else a plain decimal (never an exponent)."""
    if amount == amount.to_integral_value():
        return str(int(amount))
    return format(amount.normalize(MONEY), "f")


def parse_stored(text: str) -> Decimal:
    """Read a number DynamoDB gave back (its string form); never goes through float."""
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - DynamoDB only returns valid numbers
        raise ValueError(f"not a number: {text!r}") from exc
