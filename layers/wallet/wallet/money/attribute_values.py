"""Python values <-> DynamoDB AttributeValues, as boto3.dynamodb.types' TypeSerializer / TypeDeserializer do them,
without importing boto3 (~150 ms of a cold start with its resources, sessions and s3transfer): the handlers talk to
DynamoDB through botocore's client alone (wallet.bootstrap).

    Python                              DynamoDB
    None                                {"NULL": True}
    bool                                {"BOOL": value}
    int, Decimal                        {"N": "..."}      exact: 38 digits at most, never rounded, never a float
    str                                 {"S": value}
    bytes, bytearray                    {"B": bytes}      (read back as bytes; boto3 wraps them in its Binary)
    a set of numbers / str / bytes      {"NS": [...]} / {"SS": [...]} / {"BS": [...]}
    a mapping                           {"M": {key: value}}
    a list or a tuple                   {"L": [value]}

A float is refused (TypeError), as boto3 refuses it: a binary fraction is not the number a request wrote. So is a
number DynamoDB cannot hold exactly (inexact, rounded, out of range: decimal's own signals) and, stricter than
boto3, any non-finite one (NaN, Infinity and their negatives, which DynamoDB refuses anyway). Numbers read back are
Decimals in the same context as boto3's.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

# boto3.dynamodb.types.DYNAMODB_CONTEXT: DynamoDB's number range and precision, every loss of precision an error.
DYNAMODB_CONTEXT = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])

_BINARY = (bytes, bytearray)


def _number(value: int | Decimal) -> str:
    number = DYNAMODB_CONTEXT.create_decimal(value)
    if not number.is_finite():
        raise TypeError("Infinity and NaN not supported")
    return str(number)


def _is_number(value: object) -> bool:
    if isinstance(value, float):
        raise TypeError("Float types are not supported. Use Decimal types instead.")
    return isinstance(value, (int, Decimal))


def serialize(value: Any) -> dict[str, Any]:
    """The AttributeValue of `value` (TypeError for a type or a number DynamoDB cannot hold as given)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, _BINARY):
        return {"B": bytes(value)}
    if isinstance(value, Set):
        # The kinds in boto3's order (an empty set is a number set, as there). bool counts as a number in a set.
        if all(_is_number(member) for member in value):
            return {"NS": [_number(member) for member in value]}
        if all(isinstance(member, str) for member in value):
            return {"SS": list(value)}
        if all(isinstance(member, _BINARY) for member in value):
            return {"BS": [bytes(member) for member in value]}
    elif isinstance(value, Mapping):
        return {"M": {key: serialize(item) for key, item in value.items()}}
    elif isinstance(value, (list, tuple)):
        return {"L": [serialize(item) for item in value]}
    raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def deserialize(attribute: Mapping[str, Any]) -> Any:
    """The Python value of an AttributeValue (TypeError for an empty or unknown one)."""
    if not attribute:
        raise TypeError("Value must be a nonempty dictionary whose key is a valid dynamodb type.")
    kind, value = next(iter(attribute.items()))
    if kind == "S":
        return value
    if kind == "N":
        return DYNAMODB_CONTEXT.create_decimal(value)
    if kind == "M":
        return {key: deserialize(item) for key, item in value.items()}
    if kind == "L":
        return [deserialize(item) for item in value]
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(value)
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {DYNAMODB_CONTEXT.create_decimal(member) for member in value}
    if kind == "BS":
        return {bytes(member) for member in value}
    raise TypeError(f"Dynamodb type {kind} is not supported")
