"""The wire protocol of POST /do: parsing the Games Server's body in two stages, and the four replies.

Stage one (the signed envelope) decides whether the request can be authenticated at all: an unparseable body or one
without a usable method/session/trx_id/sign gets `sign_not_found`. Stage two (the movement) is parsed only for a
request whose sign matched: an invalid amount there gets `session_not_found` and moves nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from wallet.money.amounts import format_number, parse_amount

MAX_BODY_BYTES = 64 * 1024
MAX_TAG_BYTES = 8 * 1024
MAX_GAME_UUID_LENGTH = 128
_MAX_TRX_ID_LENGTH = 128
# DynamoDB numbers hold 38 significant digits within 1E-130..9.99E+125; a tag value outside that cannot be stored.
_DYNAMODB_MAX_DIGITS = 38
_DYNAMODB_MAX_EXPONENT = 125
_DYNAMODB_MIN_EXPONENT = -130


class InvalidRequest(ValueError):
    """The request cannot be processed; the message says why (for logs, never for the reply)."""


def _trx_id_text(value: object) -> object:
    # trx_id is a string (a UUID) or a positive integer; the sign uses its decimal text, as PHP's concatenation does.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value > 0:
        return str(value)
    # The magnitude check comes first: int(Decimal("1e1000000")) alone would burn seconds of CPU, unauthenticated.
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and 0 <= value.adjusted() < _MAX_TRX_ID_LENGTH
        and value == value.to_integral_value()
    ):
        return str(int(value))
    return value


def _encodable(value: object) -> object:
    # A lone surrogate ("\ud800" in JSON) cannot become UTF-8: not for the sign's md5, not for DynamoDB.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not encodable as UTF-8") from None
    return value


class SignedEnvelope(BaseModel):
    """The fields the sign covers, plus `method`; everything else waits until the sign has matched."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    method: Literal["do"]
    session: Annotated[str, StringConstraints(min_length=1, max_length=256), BeforeValidator(_encodable)]
    trx_id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=_MAX_TRX_ID_LENGTH),
        BeforeValidator(_encodable),
        BeforeValidator(_trx_id_text),
    ]
    sign: Annotated[str, StringConstraints(min_length=1, max_length=128), BeforeValidator(_encodable)]


def _amount(field: str) -> Any:
    def validate(value: object) -> Decimal:
        return parse_amount(value, field)

    return BeforeValidator(validate)


class MovementFields(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    minus: Annotated[Decimal, _amount("minus")]
    plus: Annotated[Decimal, _amount("plus")]
    tag: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class DoRequest:
    envelope: SignedEnvelope
    body: dict[str, Any]

    @property
    def trx_id(self) -> str:
        return self.envelope.trx_id


@dataclass(frozen=True)
class Movement:
    minus: Decimal
    plus: Decimal
    tag: dict[str, Any]
    game_uuid: str | None

    @property
    def is_balance_request(self) -> bool:
        return self.minus == 0 and self.plus == 0 and self.game_uuid is None

    @property
    def needs_live_session(self) -> bool:
        """A debit, or a credit we cannot tie to a round; anything else is money owed (docs/PROTOCOL.md)."""
        return self.minus > 0 or self.game_uuid is None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def parse_do_request(raw: str | bytes) -> DoRequest:
    """Stage one: a JSON object with method "do" and string session, trx_id and sign. Raises InvalidRequest."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise InvalidRequest(f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        # Numbers become Decimal (never float); NaN/Infinity, which Python's json would otherwise accept, are refused.
        body = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"body is not JSON: {type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("body is not a JSON object")
    try:
        envelope = SignedEnvelope.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(f"envelope: {_describe(exc)}") from None
    return DoRequest(envelope, body)


def parse_movement(body: dict[str, Any]) -> Movement:
    """Stage two, after the sign matched: exact amounts and a storable tag. Raises InvalidRequest."""
    try:
        fields = MovementFields.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(f"movement: {_describe(exc)}") from None
    _check_storable(fields.tag)
    if len(json.dumps(fields.tag, default=str)) > MAX_TAG_BYTES:
        raise InvalidRequest(f"tag larger than {MAX_TAG_BYTES} bytes")
    return Movement(fields.minus, fields.plus, fields.tag, game_uuid_of(fields.tag))


def game_uuid_of(tag: dict[str, Any]) -> str | None:
    value = tag.get("game_uuid")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise InvalidRequest("tag.game_uuid must be a string or an integer")
    text = str(int(value)) if isinstance(value, Decimal) and value == value.to_integral_value() else str(value)
    if len(text) > MAX_GAME_UUID_LENGTH:
        raise InvalidRequest(f"tag.game_uuid longer than {MAX_GAME_UUID_LENGTH}")
    return text


def _check_storable(value: object, depth: int = 0) -> None:
    """The tag is stored verbatim, so everything in it must be storable exactly as written: UTF-8 strings, and
    numbers that fit DynamoDB as written (boto3 refuses to round, so 1 followed by 40 zeros is refused too)."""
    if depth > 16:
        raise InvalidRequest("tag nested too deeply")
    if isinstance(value, dict):
        for key, item in value.items():
            if not key:
                raise InvalidRequest("tag has an empty key")
            _check_text(key)
            _check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, depth + 1)
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, Decimal | int) and not isinstance(value, bool):
        number = Decimal(value)
        if not number.is_finite():
            raise InvalidRequest("tag holds a number DynamoDB cannot store")
        if number.is_zero():
            return
        magnitude = number.adjusted()
        if (
            len(number.as_tuple().digits) > _DYNAMODB_MAX_DIGITS
            or magnitude > _DYNAMODB_MAX_EXPONENT
            or magnitude < _DYNAMODB_MIN_EXPONENT
        ):
            raise InvalidRequest("tag holds a number DynamoDB cannot store exactly as written")


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("tag holds text that is not valid UTF-8") from None


def _describe(exc: ValidationError) -> str:
    # Field names and error types only: the input values may hold the session token or the sign.
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['type']}" for err in exc.errors())


# --- replies: exactly these four ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: Literal["OK", "not_enough_money", "session_not_found", "sign_not_found"]
    balance: Decimal | None = None
    currency: str | None = None

    def to_json(self) -> str:
        if self.balance is None:
            return f'{{"status":"{self.status}"}}'
        return (
            f'{{"status":"{self.status}","balance":{format_number(self.balance)},'
            f'"currency":{json.dumps(self.currency or "")}}}'
        )


SIGN_NOT_FOUND = Reply("sign_not_found")
SESSION_NOT_FOUND = Reply("session_not_found")


def ok(balance: Decimal, currency: str) -> Reply:
    return Reply("OK", balance, currency)


def not_enough_money(balance: Decimal, currency: str) -> Reply:
    return Reply("not_enough_money", balance, currency)


__all__ = [
    "SESSION_NOT_FOUND",
    "SIGN_NOT_FOUND",
    "DoRequest",
    "InvalidRequest",
    "Movement",
    "Reply",
    "not_enough_money",
    "ok",
    "parse_do_request",
    "parse_movement",
]
