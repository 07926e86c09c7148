"""POST /do on the wire: stage one (the signed envelope), stage two (the movement), and the four replies."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from wallet.money.protocol import (
    MAX_BODY_BYTES,
    SESSION_NOT_FOUND,
    SIGN_NOT_FOUND,
    InvalidRequest,
    Reply,
    not_enough_money,
    ok,
    parse_do_request,
    parse_movement,
)

UUID = "6f1c2b8e-4a1d-4c3e-9b7a-0d2f3e4a5b6c"


def envelope(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"method": "do", "session": "p1.abc", "trx_id": UUID, "sign": "f" * 32}
    body.update(overrides)
    return body


def raw(**overrides: Any) -> str:
    body = envelope(**overrides)
    return json.dumps({k: v for k, v in body.items() if v is not _MISSING})


_MISSING = object()

# --- stage one ----------------------------------------------------------------------------------------------------


def test_a_valid_envelope() -> None:
    request = parse_do_request(raw(minus=5, plus=0, tag={"game": "slot"}))
    assert request.envelope.method == "do"
    assert request.envelope.session == "p1.abc"
    assert request.trx_id == UUID
    assert request.envelope.sign == "f" * 32
    assert request.body["minus"] == 5


def test_bytes_body() -> None:
    assert parse_do_request(raw().encode("utf-8")).trx_id == UUID


def test_extra_fields_are_kept_for_stage_two() -> None:
    request = parse_do_request(raw(minus=1, extra="x"))
    assert request.body["extra"] == "x"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{",
        '{"method":"do",}',
        "[]",
        '[{"method":"do"}]',
        '"do"',
        "1",
        "null",
        '{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","minus":NaN}',
        '{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","minus":Infinity}',
        '{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","plus":-Infinity}',
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_stage_one_refuses_what_is_not_a_json_object(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_do_request(text)


@pytest.mark.parametrize(
    "overrides",
    [
        {"session": _MISSING},
        {"session": ""},
        {"session": None},
        {"session": 123},
        {"session": ["p1.abc"]},
        {"session": "x" * 257},
        {"sign": _MISSING},
        {"sign": ""},
        {"sign": None},
        {"sign": 5},
        {"sign": "f" * 129},
        {"trx_id": _MISSING},
        {"trx_id": ""},
        {"trx_id": None},
        {"trx_id": 0},
        {"trx_id": -1},
        {"trx_id": True},
        {"trx_id": False},
        {"trx_id": 1.5},
        {"trx_id": 0.5},
        {"trx_id": ["1"]},
        {"trx_id": "x" * 129},
        {"trx_id": 10**129},
        {"method": _MISSING},
        {"method": "DO"},
        {"method": "balance"},
        {"method": ""},
        {"method": None},
    ],
)
def test_stage_one_refuses_a_bad_envelope(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        parse_do_request(raw(**overrides))


def test_stage_one_message_never_holds_the_session_or_sign() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_do_request(raw(session="p1.SECRETTOKEN", sign=12345, trx_id=True))
    assert "SECRETTOKEN" not in str(caught.value)
    assert "12345" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (UUID, UUID),
        (1, "1"),
        (12345, "12345"),
        (10**30, "1" + "0" * 30),
        ("007", "007"),  # a string stays exactly as sent
        ("x" * 128, "x" * 128),
    ],
)
def test_trx_id_text(value: object, text: str) -> None:
    assert parse_do_request(raw(trx_id=value)).trx_id == text


def test_integer_trx_id_from_the_wire_is_its_decimal_text() -> None:
    request = parse_do_request('{"method":"do","session":"p1.abc","trx_id":98765432101234,"sign":"x"}')
    assert request.trx_id == "98765432101234"


def test_body_size_limit() -> None:
    padding = "x" * (MAX_BODY_BYTES - len(raw(pad="")))
    assert len(raw(pad=padding)) == MAX_BODY_BYTES
    assert parse_do_request(raw(pad=padding)).trx_id == UUID
    with pytest.raises(InvalidRequest, match="larger"):
        parse_do_request(raw(pad=padding + "x"))
    with pytest.raises(InvalidRequest, match="larger"):
        parse_do_request(raw(pad=padding + "x").encode())


def test_body_size_limit_counts_bytes_for_text() -> None:
    text = json.dumps({**envelope(), "pad": "é" * 40_000}, ensure_ascii=False)
    assert len(text.encode("utf-8")) > MAX_BODY_BYTES
    with pytest.raises(InvalidRequest):
        parse_do_request(text)


# --- stage two ----------------------------------------------------------------------------------------------------


def movement_of(text: str) -> Any:
    return parse_movement(parse_do_request(text).body)


def test_json_numbers_are_parsed_exactly() -> None:
    movement = movement_of('{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","minus":0.1,"plus":0.2,"tag":{}}')
    assert movement.minus == Decimal("0.1")
    assert movement.plus == Decimal("0.2")
    assert movement.minus + movement.plus == Decimal("0.3")  # a float would give 0.30000000000000004
    assert isinstance(movement.minus, Decimal)


@pytest.mark.parametrize(
    ("minus", "plus", "expected"),
    [
        ("100", "0", (Decimal(100), Decimal(0))),
        ("1.50", "0", (Decimal("1.5"), Decimal(0))),
        ("0", "12.25", (Decimal(0), Decimal("12.25"))),
        ('"100"', '"2.5"', (Decimal(100), Decimal("2.5"))),
        ("1E+2", "0", (Decimal(100), Decimal(0))),  # a JSON number with an exponent is still a number
        ("100.000", "0", (Decimal(100), Decimal(0))),
    ],
)
def test_amounts(minus: str, plus: str, expected: tuple[Decimal, Decimal]) -> None:
    movement = movement_of(
        f'{{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","minus":{minus},"plus":{plus},"tag":{{}}}}'
    )
    assert (movement.minus, movement.plus) == expected


@pytest.mark.parametrize(
    ("minus", "plus"),
    [
        ("-1", "0"),
        ("0", "-0.5"),
        ('"abc"', "0"),
        ('"1e3"', "0"),
        ("true", "0"),
        ("0", "false"),
        ("null", "0"),
        ("[1]", "0"),
        ('{"a":1}', "0"),
        ("1e30", "0"),
        ("0", "1e30"),
        ("1e30", "1e30"),
        ("0.000000001", "0"),
    ],
)
def test_invalid_amounts(minus: str, plus: str) -> None:
    with pytest.raises(InvalidRequest):
        movement_of(f'{{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","minus":{minus},"plus":{plus}}}')


@pytest.mark.parametrize("missing", ["minus", "plus"])
def test_missing_amount(missing: str) -> None:
    body = {**envelope(), "minus": 1, "plus": 0}
    del body[missing]
    with pytest.raises(InvalidRequest):
        parse_movement(body)


def test_tag_is_stored_verbatim_with_nested_lists() -> None:
    tag_text = (
        '{"game":"bet","game_id":"1009","game_uuid":"BP-1","round":10000,'
        '"bets":["[0]:100","[1]:50"],"result":[[1,2,3],[4,5,[6,0.25]]],"denomination":0.01,"cancel":true,'
        '"empty":"","nothing":null}'
    )
    movement = movement_of(
        f'{{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","minus":150,"plus":0,"tag":{tag_text}}}'
    )
    assert movement.tag == json.loads(tag_text, parse_float=Decimal)
    assert movement.tag["result"] == [[1, 2, 3], [4, 5, [6, Decimal("0.25")]]]
    assert movement.tag["denomination"] == Decimal("0.01")
    assert movement.game_uuid == "BP-1"


def test_missing_tag_is_empty() -> None:
    movement = parse_movement({**envelope(), "minus": 0, "plus": 0})
    assert movement.tag == {}
    assert movement.game_uuid is None


@pytest.mark.parametrize("tag", [None, [], "slot", 5])
def test_tag_must_be_an_object(tag: object) -> None:
    with pytest.raises(InvalidRequest):
        parse_movement({**envelope(), "minus": 0, "plus": 0, "tag": tag})


@pytest.mark.parametrize(
    "value",
    [Decimal("1E+126"), Decimal("1E-131"), Decimal("9.9E+200"), [Decimal("1E-200")], {"deep": Decimal("1E+300")}],
)
def test_tag_numbers_dynamodb_cannot_store_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequest, match="DynamoDB"):
        parse_movement({**envelope(), "minus": 0, "plus": 0, "tag": {"x": value}})


@pytest.mark.parametrize(
    "value",
    [Decimal("9.99E+125"), Decimal("1E-130"), 0, Decimal("0E-300"), 10**37, Decimal("1." + "1" * 27)],
)
def test_tag_numbers_dynamodb_can_store_are_kept(value: object) -> None:
    assert parse_movement({**envelope(), "minus": 0, "plus": 0, "tag": {"x": value}}).tag == {"x": value}


def test_tag_numbers_with_more_than_38_digits_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        parse_movement({**envelope(), "minus": 0, "plus": 0, "tag": {"x": 10**40 + 1}})


def test_tag_empty_key_too_deep_and_too_large_are_refused() -> None:
    base = {**envelope(), "minus": 0, "plus": 0}
    with pytest.raises(InvalidRequest, match="empty key"):
        parse_movement({**base, "tag": {"": 1}})
    deep: Any = 1
    for _ in range(20):
        deep = [deep]
    with pytest.raises(InvalidRequest, match="deep"):
        parse_movement({**base, "tag": {"x": deep}})
    with pytest.raises(InvalidRequest, match="larger"):
        parse_movement({**base, "tag": {"x": "y" * 9000}})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc-1", "abc-1"),
        (123456789012, "123456789012"),
        (Decimal("123456789012"), "123456789012"),
        ("", None),
        (None, None),
    ],
)
def test_game_uuid(value: object, text: str | None) -> None:
    movement = parse_movement({**envelope(), "minus": 1, "plus": 0, "tag": {"game_uuid": value}})
    assert movement.game_uuid == text


def test_game_uuid_integer_from_the_wire_is_text() -> None:
    movement = movement_of(
        '{"method":"do","session":"p1.abc","trx_id":"1","sign":"x","minus":1,"plus":0,"tag":{"game_uuid":778899}}'
    )
    assert movement.game_uuid == "778899"


@pytest.mark.parametrize("value", [True, ["a"], {"a": 1}, "x" * 129])
def test_bad_game_uuid(value: object) -> None:
    with pytest.raises(InvalidRequest, match="game_uuid"):
        parse_movement({**envelope(), "minus": 1, "plus": 0, "tag": {"game_uuid": value}})


@pytest.mark.parametrize(
    ("minus", "plus", "tag", "balance_request"),
    [
        (0, 0, {"game": "slot", "game_id": ""}, True),
        (0, 0, {}, True),
        (0, 0, {"game_uuid": ""}, True),
        (0, 0, {"game": "slot", "game_uuid": "R-1"}, False),  # a zero win: recorded
        (0, 0, {"game_uuid": 5}, False),
        (1, 0, {}, False),
        (0, 1, {}, False),
        (Decimal("0.00"), Decimal("0.0"), {}, True),
    ],
)
def test_is_balance_request(minus: object, plus: object, tag: dict[str, Any], balance_request: bool) -> None:
    movement = parse_movement({**envelope(), "minus": minus, "plus": plus, "tag": tag})
    assert movement.is_balance_request is balance_request


def test_zero_win_with_game_uuid_zero_is_not_a_balance_request() -> None:
    movement = parse_movement({**envelope(), "minus": 0, "plus": 0, "tag": {"game_uuid": 0}})
    assert movement.game_uuid == "0"
    assert not movement.is_balance_request


# --- the four replies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (ok(Decimal(195650), "FUN"), '{"status":"OK","balance":195650,"currency":"FUN"}'),
        (not_enough_money(Decimal(2), "FUN"), '{"status":"not_enough_money","balance":2,"currency":"FUN"}'),
        (SESSION_NOT_FOUND, '{"status":"session_not_found"}'),
        (SIGN_NOT_FOUND, '{"status":"sign_not_found"}'),
        (ok(Decimal("195650.00"), "FUN"), '{"status":"OK","balance":195650,"currency":"FUN"}'),
        (ok(Decimal("1E+3"), "FUN"), '{"status":"OK","balance":1000,"currency":"FUN"}'),
        (ok(Decimal("0.7"), "FUN"), '{"status":"OK","balance":0.7,"currency":"FUN"}'),
        (ok(Decimal("12.50"), "EUR"), '{"status":"OK","balance":12.5,"currency":"EUR"}'),
        (ok(Decimal(0), "FUN"), '{"status":"OK","balance":0,"currency":"FUN"}'),
        (
            not_enough_money(Decimal("0.00000001"), "FUN"),
            '{"status":"not_enough_money","balance":0.00000001,"currency":"FUN"}',
        ),
    ],
)
def test_reply_json_byte_for_byte(reply: Reply, text: str) -> None:
    assert reply.to_json() == text
    decoded = json.loads(reply.to_json(), parse_float=Decimal)
    assert decoded["status"] == reply.status
    if reply.balance is not None:
        assert decoded["balance"] == reply.balance
        assert isinstance(decoded["balance"], int) == (reply.balance == reply.balance.to_integral_value())


def test_reply_currency_is_json_escaped() -> None:
    assert json.loads(ok(Decimal(1), 'F"N').to_json())["currency"] == 'F"N'
