"""wallet.money.attribute_values: our AttributeValue (de)serializer, which lets the handlers skip boto3, against
boto3's own TypeSerializer / TypeDeserializer (boto3 stays a dev dependency for this)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from wallet.money.attribute_values import deserialize, serialize

BOTO3_SERIALIZER = TypeSerializer()
BOTO3_DESERIALIZER = TypeDeserializer()

# Numbers DynamoDB holds exactly: at most 38 significant digits, exponents inside its range.
numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.builds(
        lambda digits, exponent: Decimal(digits).scaleb(exponent),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.integers(min_value=-60, max_value=60),
    ),
    st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(), st.binary())
sets = st.one_of(
    st.frozensets(st.text(), min_size=1),
    st.frozensets(st.binary(), min_size=1),
    st.frozensets(st.integers(min_value=-(10**30), max_value=10**30), min_size=1),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(st.text(), children, max_size=5)),
    max_leaves=25,
)


def _same_attribute(ours: Any, boto3s: Any) -> bool:
    """Equal, with the members of a set attribute (an unordered list) compared as sets."""
    if isinstance(ours, dict):
        if set(ours) != set(boto3s):
            return False
        return all(
            sorted(map(repr, ours[k])) == sorted(map(repr, map(_plain, boto3s[k])))
            if k in ("SS", "NS", "BS")
            else _same_attribute(ours[k], boto3s[k])
            for k in ours
        )
    if isinstance(ours, list):
        return len(ours) == len(boto3s) and all(map(_same_attribute, ours, boto3s))
    return type(ours) is type(_plain(boto3s)) and ours == _plain(boto3s)


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, (bytearray, Binary)) else value


def _python(value: Any) -> Any:
    """What a value reads back as: sets as sets, numbers as Decimals, tuples as lists."""
    if isinstance(value, (set, frozenset)):
        return {_python(member) for member in value}
    if isinstance(value, dict):
        return {key: _python(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_python(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


@given(values)
def test_serialize_is_boto3s(value: Any) -> None:
    assert _same_attribute(serialize(value), BOTO3_SERIALIZER.serialize(value))


@given(values)
def test_deserialize_is_boto3s(value: Any) -> None:
    attribute = BOTO3_SERIALIZER.serialize(value)
    assert deserialize(attribute) == BOTO3_DESERIALIZER.deserialize(attribute)


@given(values)
def test_round_trip(value: Any) -> None:
    back = deserialize(serialize(value))
    assert back == _python(value)
    assert _same_attribute(serialize(back), serialize(value))  # a set's members in any order


@given(numbers)
def test_numbers_are_exact_decimals(number: int | Decimal) -> None:
    back = deserialize(serialize(number))
    assert isinstance(back, Decimal)
    assert back == number
    assert serialize(back) == serialize(number)


def test_the_tag_as_the_ledger_stores_it() -> None:
    tag = {"game_uuid": "g-1", "round": Decimal("12.50"), "free": False, "note": None, "bonus": [1, "x"]}
    attribute = serialize(tag)
    assert attribute == {
        "M": {
            "game_uuid": {"S": "g-1"},
            "round": {"N": "12.50"},
            "free": {"BOOL": False},
            "note": {"NULL": True},
            "bonus": {"L": [{"N": "1"}, {"S": "x"}]},
        }
    }
    assert deserialize(attribute) == {**tag, "bonus": [Decimal(1), "x"]}
    assert deserialize(attribute)["round"].as_tuple() == Decimal("12.50").as_tuple()  # the digits as written


@pytest.mark.parametrize(
    "value",
    [
        1.5,  # a float: never a binary fraction in the ledger
        {"a": [0.1]},
        {1.5},
        Decimal("1" + "0" * 38 + ".1"),  # 40 digits: DynamoDB would round it
        10**40 + 1,
        Decimal("1e-200"),  # out of DynamoDB's range
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),  # boto3 lets this one through; DynamoDB refuses it
        object(),
        {"mixed", 1},
    ],
    # Named, not repr'd: xdist compares its workers' collections, and an object's repr has its address.
    ids=[
        "float",
        "float-in-a-list",
        "float-set",
        "40-digits",
        "41-digit-int",
        "below-range",
        "nan",
        "infinity",
        "minus-infinity",
        "object",
        "mixed-set",
    ],
)
def test_what_dynamodb_cannot_hold_exactly_is_refused(value: Any) -> None:
    with pytest.raises((TypeError, ArithmeticError)):
        serialize(value)


@pytest.mark.parametrize("attribute", [{}, {"X": "1"}])
def test_an_empty_or_unknown_attribute_is_refused(attribute: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        deserialize(attribute)
