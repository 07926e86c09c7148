"""Exact amounts: what parse_amount accepts and refuses, the canonical form, and the wire form of numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wallet.money.amounts import MAX_AMOUNT, MAX_DECIMAL_PLACES, InvalidAmount, canonical, format_number, parse_amount


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, Decimal(0)),
        (1, Decimal(1)),
        (195650, Decimal(195650)),
        (Decimal("0.1"), Decimal("0.1")),
        (Decimal("100.00"), Decimal(100)),
        (Decimal("1E+2"), Decimal(100)),
        (Decimal("-0"), Decimal(0)),
        ("100", Decimal(100)),
        ("1.50", Decimal("1.5")),
        ("0.00000001", Decimal("0.00000001")),
        ("007", Decimal(7)),
        (MAX_AMOUNT, MAX_AMOUNT),
        (int(MAX_AMOUNT), MAX_AMOUNT),
        (Decimal("999999999999999.99999999"), Decimal("999999999999999.99999999")),
    ],
)
def test_accepts(value: object, expected: Decimal) -> None:
    amount = parse_amount(value, "minus")
    assert amount == expected
    assert isinstance(amount, Decimal)
    assert str(amount) == str(expected)  # the canonical text, not just an equal value


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        -1,
        Decimal("-0.01"),
        "-1",
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        "NaN",
        "Infinity",
        MAX_AMOUNT + 1,
        Decimal("1000000000000000.00000001"),
        Decimal("1E+30"),
        Decimal("0.000000001"),
        Decimal("1.123456789"),
        "0.000000001",
        "1e3",
        "1E+2",
        "1.5e1",
        "",
        " 1",
        "1 ",
        "1,5",
        ".5",
        "5.",
        "+5",
        "0x10",
        "abc",
        1.5,
        0.0,
        None,
        [1],
        {"amount": 1},
    ],
)
def test_refuses(value: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(value, "minus")


def test_error_names_the_field() -> None:
    with pytest.raises(InvalidAmount, match="plus"):
        parse_amount(-1, "plus")


def test_trailing_zeros_beyond_the_limit_are_not_extra_places() -> None:
    # 1.000000000 has nine decimal places written, but is the integer 1.
    assert parse_amount(Decimal("1.000000000"), "minus") == 1
    assert MAX_DECIMAL_PLACES == 8


def test_refuses_non_ascii_digits_in_strings() -> None:
    with pytest.raises(InvalidAmount):
        parse_amount("١٢٣", "minus")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("100.00"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("1.50"), "1.5"),
        (Decimal("0.10"), "0.1"),
        (Decimal("0"), "0"),
        (Decimal("0.000"), "0"),
    ],
)
def test_canonical(value: Decimal, text: str) -> None:
    assert str(canonical(value)) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal(195650), "195650"),
        (Decimal("195650.0"), "195650"),
        (Decimal("1E+2"), "100"),
        (Decimal("1E+15"), "1000000000000000"),
        (Decimal("0.3"), "0.3"),
        (Decimal("0.30"), "0.3"),
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("12.50"), "12.5"),
        (Decimal("999999999999999.99999999"), "999999999999999.99999999"),
        (Decimal(0), "0"),
        (Decimal("-0"), "0"),
    ],
)
def test_format_number(value: Decimal, text: str) -> None:
    assert format_number(value) == text
    assert "E" not in text.upper()
    assert Decimal(text) == value


def test_format_number_stays_exact_beyond_28_digits() -> None:
    value = Decimal("123456789012345678901234.12345678")
    assert format_number(value) == "123456789012345678901234.12345678"
