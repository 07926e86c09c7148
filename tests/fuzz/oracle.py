"""What every fuzz test checks: the reply is exactly one of the four, and an exact model of the amounts we accept.

The model is written from PROTOCOL.md and money.py's documented rules, not from the code: a JSON number or an ASCII
plain-decimal string, finite, 0 <= amount <= 10^15, at most 8 decimal places (trailing zeros do not count). It uses no
decimal context (no rounding anywhere), so it cannot share a rounding bug with the product.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

FOUR = frozenset({"OK", "not_enough_money", "session_not_found", "sign_not_found"})
WITH_BALANCE = frozenset({"OK", "not_enough_money"})
MAX_AMOUNT = Decimal(10) ** 15
MAX_PLACES = 8
_ASCII_PLAIN = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
# `balance` on the wire: an integer where the value is whole, else a plain decimal; never an exponent.
_BALANCE_LITERAL = re.compile(r'"balance":(0|[1-9][0-9]*)(\.[0-9]*[1-9])?,')


def parse_reply(text: str | bytes) -> dict[str, Any]:
    """Parse a /do reply and check its shape exactly (keys and types); return it."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    reply = json.loads(text, parse_float=Decimal)
    assert isinstance(reply, dict), text
    status = reply.get("status")
    assert status in FOUR, text
    if status in WITH_BALANCE:
        assert set(reply) == {"status", "balance", "currency"}, text
        balance = reply["balance"]
        assert isinstance(balance, int | Decimal), text
        assert not isinstance(balance, bool), text
        assert balance >= 0, text
        assert isinstance(reply["currency"], str), text
        assert reply["currency"], text
        assert _BALANCE_LITERAL.search(text), text
    else:
        assert set(reply) == {"status"}, text
    return reply


def model_amount(value: object) -> Decimal | None:
    """The exact amount a JSON value (numbers parsed as Decimal) stands for, or None if the protocol refuses it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str) and _ASCII_PLAIN.fullmatch(value):
        amount = Decimal(value)
    else:
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        return None
    if amount == 0:
        return Decimal(0)
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    kept = list(digits)
    while exponent < 0 and kept and kept[-1] == 0:
        kept.pop()
        exponent += 1
    return amount if exponent >= -MAX_PLACES else None


def game_uuid_model(tag: object) -> str | None:
    """The round a (valid, storable) tag links to, or None: the balance-request test needs it."""
    if not isinstance(tag, dict):
        return None
    value = tag.get("game_uuid")
    if value is None or value == "":
        return None
    return str(value)


def has_surrogate(value: object) -> bool:
    """A lone surrogate anywhere in a JSON value (strings or keys): text no UTF-8 store can hold."""
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_surrogate(item) for item in value)
    return False


def has_wide_number(value: object) -> bool:
    """A number written with more than 38 digits (trailing zeros included): the tag values that hit a known bug (see
    test_raw_bodies' test_unstorable_tag_wide_number); the clean properties leave them out."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | Decimal):
        return len(Decimal(value).as_tuple().digits) > 38
    if isinstance(value, dict):
        return any(has_wide_number(v) for v in value.values())
    if isinstance(value, list):
        return any(has_wide_number(item) for item in value)
    return False
