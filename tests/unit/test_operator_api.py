"""The operator API (functions/operator/app.py) driven with API Gateway events, on moto: every route's success path,
every error code, exact amounts, idempotent deposits, history pages, the OpenAPI document, the caller's identity in
the ledger, play_url, and no secret in any reply or log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest

from tests.support import SALT, SESSION_KEY, LambdaContext, do_body, lambda_function, operator_route
from wallet.bootstrap import lambda_settings, lambda_wallet
from wallet.money.ledger import PlayerStatus
from wallet.money.operator_moves import MAX_HISTORY_PAGE
from wallet_local.front import api_gateway_event
from wallet_local.stack import OPERATOR_ROUTES

SITE = "https://play.example.com/site"
CALLER_ARN = "arn:aws:iam::123456789012:role/wallet-operators"
ROUND_TAG = {"game": "slot", "game_id": "a_op", "game_uuid": "R-77"}


@dataclass
class Reply:
    status: int
    body: Any  # parsed with Decimal for fractions, None for an empty body
    text: str
    headers: dict[str, str]

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and set(self.body) == {"error"}, self.body
        error: dict[str, Any] = self.body["error"]
        return error


class Api:
    def __init__(self, module: ModuleType, log_buffer: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
        self.module = module
        self.log_buffer = log_buffer
        self.capsys = capsys
        self.replies: list[str] = []
        self.output: list[str] = []

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        *,
        raw: bytes | None = None,
        user_arn: str | None = CALLER_ARN,
    ) -> Reply:
        """One request as API Gateway hands it to the function: the route's resource and path parameters, the
        SigV4-authenticated caller in requestContext.identity."""
        route, parameters = operator_route(method, path)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        headers = {"Content-Type": "application/json", "Host": "api.example.com"}
        event = api_gateway_event(route, parameters, method, path, urlencode(query or {}), headers, data, "203.0.113.7")
        if user_arn is not None:
            event["requestContext"]["identity"].update(userArn=user_arn, caller="AROAEXAMPLE:alice")
        reply = self.module.lambda_handler(event, LambdaContext("operator"))
        text = reply.get("body") or ""
        self.replies.append(text)
        self.output.append(self.log_buffer.getvalue() + self.capsys.readouterr().out)
        self.log_buffer.seek(0)
        self.log_buffer.truncate()
        parsed = json.loads(text, parse_float=Decimal) if text else None
        headers_out = {**reply.get("headers", {}), **{k: v[-1] for k, v in reply.get("multiValueHeaders", {}).items()}}
        return Reply(reply["statusCode"], parsed, text, headers_out)

    def player(self, player_id: str = "p1", balance: Any = 1000, currency: str = "FUN") -> Reply:
        reply = self.call(
            "POST", "/operator/players", {"player_id": player_id, "currency": currency, "balance": balance}
        )
        assert reply.status == 201, reply
        return reply


@pytest.fixture
def api(
    moto_client: Any,
    boto_session: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Api]:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto_session)
    monkeypatch.setenv("WALLET_TABLE", "wallet-test")
    monkeypatch.setenv("WALLET_SALT", SALT)
    monkeypatch.setenv("WALLET_SESSION_KEY", SESSION_KEY)
    monkeypatch.setenv("WALLET_SITE_URL", SITE)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # DEBUG: every line the function (or a library under it) can write is checked for secrets.
    caplog.set_level(logging.DEBUG)
    with lambda_function("operator", "DEBUG") as (module, log_buffer):
        capsys.readouterr()
        api = Api(module, log_buffer, capsys)
        yield api
        everything = [*api.replies, *api.output, caplog.text]
        for secret in (SALT, SESSION_KEY):
            assert not [text for text in everything if secret in text], f"{secret!r} leaked"


def entry_view_keys() -> set[str]:
    return {
        "entry_id",
        "source",
        "trx_id",
        "player",
        "kind",
        "minus",
        "plus",
        "balance_before",
        "balance_after",
        "currency",
        "game_uuid",
        "tag",
        "created_at",
        "account_version",
        "chain_hash",
    }


# --- every route's success path ---------------------------------------------------------------------------------------


def test_create_and_get_a_player(api: Api) -> None:
    created = api.player("p1", 1000)
    assert created.headers["Content-Type"] == "application/json"
    view = created.body
    assert set(view) == {
        "player_id",
        "balance",
        "currency",
        "status",
        "version",
        "created_at",
        "session_expires_at",
        "limits",
    }
    assert (view["player_id"], view["balance"], view["currency"], view["status"], view["version"]) == (
        "p1",
        1000,
        "FUN",
        "active",
        0,
    )
    assert (view["session_expires_at"], view["limits"]) == (None, {})
    got = api.call("GET", "/operator/players/p1")
    assert got.status == 200
    assert got.body == view


def test_change_a_players_status_records_who_did_it(api: Api) -> None:
    api.player()
    api.call("POST", "/operator/players/p1/sessions", {})
    changed = api.call("PATCH", "/operator/players/p1", {"status": "suspended", "reason": "KYC expired"})
    assert changed.status == 200
    assert changed.body["status"] == "suspended"
    assert changed.body["session_expires_at"] is None  # the live session ended with the status
    entry = api.call("GET", "/operator/players/p1/history").body["entries"][0]
    assert entry["kind"] == "status"
    assert entry["tag"] == {"operator": "status", "status": "suspended", "reason": "KYC expired", "by": CALLER_ARN}
    back = api.call("PATCH", "/operator/players/p1", {"status": "active"})
    assert back.status == 200
    assert back.body["status"] == "active"
    entry = api.call("GET", "/operator/players/p1/history").body["entries"][0]
    assert entry["tag"]["reason"] == "set through the operator API"
    assert entry["tag"]["by"] == CALLER_ARN


def test_change_a_players_limits_records_who_did_it(api: Api) -> None:
    api.player()
    changed = api.call("PATCH", "/operator/players/p1", {"limits": {"loss": {"day": 100, "week": 500}}})
    assert changed.status == 200
    assert changed.body["limits"] == {"loss": {"day": {"amount": 100}, "week": {"amount": 500}}}
    assert changed.body["version"] == 1
    raised = api.call("PATCH", "/operator/players/p1", {"limits": {"loss": {"day": 300, "week": None}}})
    assert raised.status == 200
    day, week = raised.body["limits"]["loss"]["day"], raised.body["limits"]["loss"]["week"]
    assert (day["amount"], day["pending"]) == (100, 300)
    assert (week["amount"], week["pending"]) == (500, None)
    assert day["pending_at"] == week["pending_at"] > 0
    entries = api.call("GET", "/operator/players/p1/history").body["entries"]
    limit_entries = sorted((e for e in entries if e["kind"] == "limits"), key=lambda e: e["account_version"])
    assert [e["tag"] for e in limit_entries] == [
        {"operator": "limits", "limits": {"loss": {"day": 100, "week": 500}}, "by": CALLER_ARN},
        {"operator": "limits", "limits": {"loss": {"day": 300, "week": None}}, "by": CALLER_ARN},
    ]
    assert all((e["minus"], e["plus"], e["balance_after"]) == (0, 0, 1000) for e in limit_entries)


def test_the_caller_falls_back_to_the_caller_id_without_a_user_arn(api: Api) -> None:
    api.player()
    api.call("PATCH", "/operator/players/p1", {"limits": {"wager": {"month": 10}}}, user_arn=None)
    entry = api.call("GET", "/operator/players/p1/history").body["entries"][0]
    assert entry["kind"] == "limits"
    assert entry["tag"]["by"] == "operator-api"  # no identity at all in this event


def test_status_and_limits_in_one_change(api: Api) -> None:
    api.player()
    changed = api.call("PATCH", "/operator/players/p1", {"status": "closed", "limits": {"deposit": {"day": 5}}})
    assert changed.status == 200
    assert (changed.body["status"], changed.body["limits"]) == ("closed", {"deposit": {"day": {"amount": 5}}})
    assert changed.body["version"] == 2


def test_open_a_session_without_and_with_a_play_url(api: Api) -> None:
    api.player()
    plain = api.call("POST", "/operator/players/p1/sessions", {})
    assert plain.status == 201
    assert set(plain.body) == {"player_id", "session", "expires_at"}
    assert plain.body["player_id"] == "p1"
    assert plain.body["session"].startswith("p1.")
    assert plain.body["expires_at"] == api.call("GET", "/operator/players/p1").body["session_expires_at"]
    options = {
        "application": "slot-a_op",
        "language": "pt_BR",
        "kf": 100,
        "kf_list": [1, 10, 100],
        "home_page": "https://casino.example.com/lobby?x=1&y=2",
    }
    with_url = api.call("POST", "/operator/players/p1/sessions", options)
    assert with_url.status == 201
    url = urlsplit(with_url.body["play_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{SITE}/play/slot-a_op"
    assert parse_qs(url.query) == {
        "session": [with_url.body["session"]],
        "language": ["pt_BR"],
        "kf": ["100"],
        "kf_list": ["1,10,100"],
        "home_page": ["https://casino.example.com/lobby?x=1&y=2"],
    }
    # The new session replaced the first one: only the second is the live one.
    assert lambda_wallet().live_account(plain.body["session"]) is None
    assert lambda_wallet().live_account(with_url.body["session"]) is not None
    only_application = api.call("POST", "/operator/players/p1/sessions", {"application": "keno"})
    url = urlsplit(only_application.body["play_url"])
    assert url.path == "/site/play/keno"
    assert parse_qs(url.query) == {"session": [only_application.body["session"]]}


def test_a_play_url_without_a_site_is_refused(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALLET_SITE_URL")
    api.player()
    reply = api.call("POST", "/operator/players/p1/sessions", {"application": "keno"})
    assert reply.status == 400
    assert reply.error["code"] == "invalid_request"
    assert "WALLET_SITE_URL" in reply.error["message"]


def test_a_refused_play_url_leaves_the_live_session_alone(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.player()
    live = api.call("POST", "/operator/players/p1/sessions", {}).body["session"]
    monkeypatch.delenv("WALLET_SITE_URL")
    lambda_settings.cache_clear()  # a new instance, configured without a site
    assert api.call("POST", "/operator/players/p1/sessions", {"application": "keno"}).status == 400
    # The refusal came before a new session was issued: the one the site holds is still the live one.
    assert lambda_wallet().live_account(live) is not None


def test_a_change_retried_with_its_ref_is_recorded_once(api: Api) -> None:
    api.player()
    change = {"status": "suspended", "reason": "cooling off", "limits": {"wager": {"day": 50}}, "ref": "chg-1"}
    first = api.call("PATCH", "/operator/players/p1", change)
    again = api.call("PATCH", "/operator/players/p1", change)  # the site's retry after a timeout
    assert first.status == again.status == 200
    assert first.body == again.body and again.body["version"] == 2
    kinds = [e["kind"] for e in api.call("GET", "/operator/players/p1/history").body["entries"]]
    assert sorted(kinds) == ["limits", "opening", "status"]
    other = api.call("PATCH", "/operator/players/p1", {**change, "limits": {"wager": {"day": 10}}})
    assert (other.status, other.error["code"]) == (409, "conflict")


def test_revoke_a_session(api: Api) -> None:
    api.player()
    token = api.call("POST", "/operator/players/p1/sessions", {}).body["session"]
    revoked = api.call("DELETE", "/operator/players/p1/sessions")
    assert (revoked.status, revoked.text) == (204, "")
    assert lambda_wallet().live_account(token) is None
    assert api.call("GET", "/operator/players/p1").body["session_expires_at"] is None
    assert api.call("DELETE", "/operator/players/p1/sessions").status == 204  # none left: still done


def test_deposit_and_withdraw(api: Api) -> None:
    api.player()
    deposit = api.call("POST", "/operator/players/p1/deposits", {"amount": 250, "ref": "pay-1"})
    assert deposit.status == 201
    assert (deposit.body["balance"], deposit.body["currency"]) == (1250, "FUN")
    entry = deposit.body["entry"]
    assert set(entry) == entry_view_keys()
    assert (entry["kind"], entry["source"], entry["trx_id"], entry["player"]) == ("deposit", "operator", "pay-1", "p1")
    assert (entry["minus"], entry["plus"], entry["balance_before"], entry["balance_after"]) == (0, 250, 1000, 1250)
    assert entry["tag"] == {"operator": "deposit", "ref": "pay-1"}
    withdrawal = api.call("POST", "/operator/players/p1/withdrawals", {"amount": "300", "ref": "wd-1"})
    assert withdrawal.status == 201
    assert withdrawal.body["balance"] == 950
    assert withdrawal.body["entry"]["kind"] == "withdrawal"
    assert (withdrawal.body["entry"]["minus"], withdrawal.body["entry"]["account_version"]) == (300, 2)
    assert api.call("GET", "/operator/players/p1").body["balance"] == 950


def test_a_deposit_replayed_with_the_same_ref_and_body_is_200_with_the_same_entry(api: Api) -> None:
    api.player()
    first = api.call("POST", "/operator/players/p1/deposits", {"amount": "12.50", "ref": "pay-1"})
    other = api.call("POST", "/operator/players/p1/deposits", {"amount": 5, "ref": "pay-2"})
    again = api.call("POST", "/operator/players/p1/deposits", {"amount": "12.5", "ref": "pay-1"})
    as_number = api.call("POST", "/operator/players/p1/deposits", raw=b'{"amount": 12.50, "ref": "pay-1"}')
    assert (first.status, other.status, again.status, as_number.status) == (201, 201, 200, 200)
    assert again.body["entry"] == first.body["entry"]
    assert as_number.body["entry"] == first.body["entry"]
    assert again.body["balance"] == as_number.body["balance"] == "1017.5"  # the current balance; nothing moved
    entries = api.call("GET", "/operator/players/p1/history").body["entries"]
    assert sorted(e["trx_id"] for e in entries) == ["opening#p1", "pay-1", "pay-2"]


def test_history(api: Api) -> None:
    api.player()
    api.call("POST", "/operator/players/p1/deposits", {"amount": 1, "ref": "d-1"})
    reply = api.call("GET", "/operator/players/p1/history")
    assert reply.status == 200
    assert set(reply.body) == {"entries", "next_cursor"}
    assert [e["trx_id"] for e in reply.body["entries"]] == ["d-1", "opening#p1"]
    assert reply.body["next_cursor"] is None
    assert all(set(e) == entry_view_keys() for e in reply.body["entries"])


def test_a_round(api: Api) -> None:
    api.player()
    token = api.call("POST", "/operator/players/p1/sessions", {}).body["session"]
    wallet = lambda_wallet()
    assert wallet.handle_do(do_body(token, "bet-1", 100, 0, ROUND_TAG)).reply.status == "OK"
    assert wallet.handle_do(do_body(token, "win-1", 0, "12.5", {**ROUND_TAG, "result": [1]})).reply.status == "OK"
    assert wallet.handle_do(do_body(token, "other", 1, 0, {**ROUND_TAG, "game_uuid": "R-78"})).reply.status == "OK"
    reply = api.call("GET", "/operator/rounds/R-77")
    assert reply.status == 200
    assert [(e["trx_id"], e["kind"], e["minus"], e["plus"]) for e in reply.body["entries"]] == [
        ("bet-1", "bet", 100, 0),
        ("win-1", "win", 0, "12.5"),
    ]
    assert api.call("GET", "/operator/rounds/nothing-here").body == {"entries": []}


def test_the_openapi_document_lists_exactly_the_routes(api: Api) -> None:
    reply = api.call("GET", "/operator/openapi.json")
    assert reply.status == 200
    document = reply.body
    assert document["info"]["title"] == "Wallet operator API"
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routes = {(r.method, r.resource) for r in OPERATOR_ROUTES if r.resource != "/operator/openapi.json"}
    assert listed == routes
    # Each documents its success and the {"error": ...} replies.
    players = document["paths"]["/operator/players"]["post"]["responses"]
    assert {"201", "400", "403", "409"} <= set(players)


# --- exact amounts ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b'{"amount": 12.50, "ref": "r"}', b'{"amount": "12.50", "ref": "r"}'])
def test_amounts_are_exact_as_a_json_number_or_a_string(api: Api, raw: bytes) -> None:
    api.player("p1", "0.1")
    reply = api.call("POST", "/operator/players/p1/deposits", raw=raw)
    assert reply.status == 201, reply
    assert reply.body["entry"]["plus"] == "12.5"
    assert reply.body["balance"] == "12.6"  # 0.1 + 12.50 exactly: a float would make it 12.6000000000000001
    assert '"balance": "12.6"' in reply.text
    assert lambda_wallet().account("p1").balance == Decimal("12.6")
    for small in (b'{"amount": 0.00000001, "ref": "s1"}', b'{"amount": "0.00000001", "ref": "s2"}'):
        assert api.call("POST", "/operator/players/p1/deposits", raw=small).status == 201
    assert api.call("GET", "/operator/players/p1").body["balance"] == "12.60000002"


def test_many_small_deposits_add_up_exactly(api: Api) -> None:
    api.player("p1", 0)
    for i in range(10):
        assert (
            api.call("POST", "/operator/players/p1/deposits", raw=f'{{"amount": 0.1, "ref": "d{i}"}}'.encode()).status
            == 201
        )
    assert api.call("GET", "/operator/players/p1").body["balance"] == 1


def test_limits_are_exact(api: Api) -> None:
    api.player()
    reply = api.call("PATCH", "/operator/players/p1", raw=b'{"limits": {"wager": {"day": 12.50}}}')
    assert reply.status == 200
    assert reply.body["limits"] == {"wager": {"day": {"amount": "12.5"}}}


def test_a_limit_as_a_decimal_string_is_exact_like_any_amount(api: Api) -> None:
    """The contract (wallet.operator.api.Amount, and so the OpenAPI document) says every amount, limits included,
    is a JSON number or a decimal string."""
    api.player()
    reply = api.call("PATCH", "/operator/players/p1", {"limits": {"wager": {"day": "12.50"}}})
    assert reply.status == 200, reply
    assert reply.body["limits"] == {"wager": {"day": {"amount": "12.5"}}}


# --- 400: the request is wrong, and the message names the field -------------------------------------------------------


def assert_invalid(reply: Reply, *names: str) -> None:
    assert reply.status == 400, reply
    assert reply.error["code"] == "invalid_request"
    for name in names:
        assert name in reply.error["message"], (name, reply.error)


@pytest.mark.parametrize("player_id", ["bad.id", "x" * 65, "a b", "ü"])
def test_a_bad_player_id_in_the_path(api: Api, player_id: str) -> None:
    assert_invalid(api.call("GET", f"/operator/players/{player_id}"), "player_id")
    assert_invalid(api.call("POST", f"/operator/players/{player_id}/deposits", {"amount": 1, "ref": "r"}), "player_id")


@pytest.mark.parametrize("player_id", ["bad.id", "", "x" * 65, 7])
def test_a_bad_player_id_in_the_body(api: Api, player_id: Any) -> None:
    assert_invalid(api.call("POST", "/operator/players", {"player_id": player_id, "currency": "FUN"}), "player_id")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/operator/players", {"player_id": "p2", "currency": "FUN", "colour": "red"}, "colour"),
        ("/operator/players/p1/deposits", {"amount": 1, "ref": "r", "note": "x"}, "note"),
        ("/operator/players/p1/sessions", {"application": "keno", "debug": True}, "debug"),
    ],
)
def test_an_extra_field(api: Api, path: str, body: dict[str, Any], field: str) -> None:
    api.player()
    assert_invalid(api.call("POST", path, body), field)


def test_an_extra_field_in_a_change(api: Api) -> None:
    api.player()
    assert_invalid(api.call("PATCH", "/operator/players/p1", {"status": "active", "by": "me"}), "by")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"amount": 0.123456789, "ref": "r"}',
        b'{"amount": "0.123456789", "ref": "r"}',
        b'{"amount": 1e-9, "ref": "r"}',
        b'{"amount": 1000000000000000.5, "ref": "r"}',
        b'{"amount": 1e16, "ref": "r"}',
        b'{"amount": "1e3", "ref": "r"}',
    ],
)
def test_an_amount_beyond_what_the_wallet_allows(api: Api, raw: bytes) -> None:
    api.player()
    assert_invalid(api.call("POST", "/operator/players/p1/deposits", raw=raw), "amount")
    assert api.call("GET", "/operator/players/p1").body["version"] == 0


@pytest.mark.parametrize(
    "raw",
    [b'{"amount": -5, "ref": "r"}', b'{"amount": "-5", "ref": "r"}', b'{"amount": -0.5, "ref": "r"}'],
)
def test_a_negative_amount(api: Api, raw: bytes) -> None:
    api.player()
    assert_invalid(api.call("POST", "/operator/players/p1/deposits", raw=raw), "amount")
    assert_invalid(api.call("POST", "/operator/players/p1/withdrawals", raw=raw), "amount")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"amount": 0, "ref": "r"}',
        b'{"amount": true, "ref": "r"}',
        b'{"amount": null, "ref": "r"}',
        b'{"amount": [1], "ref": "r"}',
        b'{"amount": "ten", "ref": "r"}',
        b'{"amount": NaN, "ref": "r"}',
        b'{"amount": Infinity, "ref": "r"}',
        b'{"ref": "r"}',
    ],
)
def test_an_amount_that_is_not_a_positive_number(api: Api, raw: bytes) -> None:
    api.player()
    assert_invalid(api.call("POST", "/operator/players/p1/deposits", raw=raw), "amount")


def test_a_negative_opening_balance(api: Api) -> None:
    assert_invalid(
        api.call("POST", "/operator/players", {"player_id": "p1", "currency": "FUN", "balance": -1}), "balance"
    )


@pytest.mark.parametrize("ref", ["", "has space", "x" * 129, "slash/no", "hash#no"])
def test_a_bad_ref(api: Api, ref: str) -> None:
    api.player()
    assert_invalid(api.call("POST", "/operator/players/p1/deposits", {"amount": 1, "ref": ref}), "ref")


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"bonus": {"day": 5}}, "bonus"),
        ({"loss": {"year": 5}}, "year"),
        ({"loss": {"day": -1}}, "limits.loss.day"),
        ({"loss": {"day": "-1"}}, "limits"),
        ({"loss": {"day": True}}, "limits"),
        ({"loss": {"day": "lots"}}, "limits"),
        ({"loss": 5}, "limits"),
    ],
)
def test_a_bad_limit(api: Api, limits: Any, field: str) -> None:
    api.player()
    assert_invalid(api.call("PATCH", "/operator/players/p1", {"limits": limits}), field)
    assert api.call("GET", "/operator/players/p1").body["limits"] == {}


def test_a_limit_beyond_what_the_wallet_allows(api: Api) -> None:
    """A limit is an amount: the same precision and bounds as the money it limits."""
    api.player()
    assert_invalid(
        api.call("PATCH", "/operator/players/p1", raw=b'{"limits": {"loss": {"day": 0.123456789}}}'), "limits"
    )


def test_a_limit_with_more_digits_than_the_table_keeps_is_400_not_503(api: Api) -> None:
    api.player()
    raw = b'{"limits": {"loss": {"day": 1.000000000000000000000000000000000000001}}}'
    assert_invalid(api.call("PATCH", "/operator/players/p1", raw=raw), "limits")


def test_a_limit_of_zero_is_allowed_and_refuses_every_bet(api: Api) -> None:
    api.player()
    reply = api.call("PATCH", "/operator/players/p1", {"limits": {"wager": {"day": 0}}})
    assert reply.status == 200
    assert reply.body["limits"] == {"wager": {"day": {"amount": 0}}}
    token = api.call("POST", "/operator/players/p1/sessions", {}).body["session"]
    refused = lambda_wallet().handle_do(do_body(token, "b-1", 1, 0, ROUND_TAG))
    assert refused.reply.to_json() == '{"status":"not_enough_money","balance":1000,"currency":"FUN"}'


def test_nothing_to_change(api: Api) -> None:
    api.player()
    assert_invalid(api.call("PATCH", "/operator/players/p1", {}), "status or limits")
    assert_invalid(api.call("PATCH", "/operator/players/p1", {"limits": {}}), "limits")
    assert_invalid(api.call("PATCH", "/operator/players/p1", {"status": "asleep"}), "status")


def test_a_body_that_is_not_json(api: Api) -> None:
    api.player()
    reply = api.call("POST", "/operator/players/p1/deposits", raw=b"{not json")
    assert reply.status == 400, reply
    assert reply.error["code"] == "invalid_request"


@pytest.mark.parametrize("cursor", ["not-a-cursor", "!!!", "eyJwayI6IDF9", "A" * 2048])
def test_a_bad_cursor(api: Api, cursor: str) -> None:
    api.player()
    assert_invalid(api.call("GET", "/operator/players/p1/history", query={"cursor": cursor}), "cursor")


def test_a_cursor_too_long(api: Api) -> None:
    api.player()
    assert_invalid(api.call("GET", "/operator/players/p1/history", query={"cursor": "A" * 2049}), "cursor")


@pytest.mark.parametrize("limit", ["0", "-1", str(MAX_HISTORY_PAGE + 1), "ten", "1.5"])
def test_a_history_limit_out_of_range(api: Api, limit: str) -> None:
    api.player()
    assert_invalid(api.call("GET", "/operator/players/p1/history", query={"limit": limit}), "limit")


# --- 404 --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/operator/players/ghost", None),
        ("PATCH", "/operator/players/ghost", {"status": "suspended"}),
        ("PATCH", "/operator/players/ghost", {"limits": {"loss": {"day": 1}}}),
        ("POST", "/operator/players/ghost/sessions", {}),
        ("DELETE", "/operator/players/ghost/sessions", None),
        ("POST", "/operator/players/ghost/deposits", {"amount": 1, "ref": "r-1"}),
        ("POST", "/operator/players/ghost/withdrawals", {"amount": 1, "ref": "r-2"}),
        ("GET", "/operator/players/ghost/history", None),
    ],
)
def test_an_unknown_player(api: Api, method: str, path: str, body: Any) -> None:
    reply = api.call(method, path, body)
    assert reply.status == 404, reply
    assert reply.error["code"] == "not_found"
    assert "ghost" in reply.error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/operator/nothing"), ("POST", "/operator/players/p1"), ("PUT", "/operator/players/p1"), ("GET", "/")],
)
def test_an_unknown_route(api: Api, method: str, path: str) -> None:
    reply = api.call(method, path)
    assert reply.status == 404
    assert reply.error == {"code": "not_found", "message": "no such route"}


# --- 409 --------------------------------------------------------------------------------------------------------------


def assert_refused(reply: Reply, code: str) -> dict[str, Any]:
    assert reply.status == 409, reply
    assert reply.error["code"] == code
    return reply.error


def test_a_player_that_exists(api: Api) -> None:
    api.player()
    again = api.call("POST", "/operator/players", {"player_id": "p1", "currency": "EUR", "balance": 5})
    assert_refused(again, "exists")
    assert api.call("GET", "/operator/players/p1").body["currency"] == "FUN"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/operator/players/p1/deposits", {"amount": 11, "ref": "pay-1"}),  # another amount
        ("/operator/players/p1/withdrawals", {"amount": 10, "ref": "pay-1"}),  # another movement
        ("/operator/players/p2/deposits", {"amount": 10, "ref": "pay-1"}),  # another player: refs are global
    ],
)
def test_a_ref_reused_with_another_body(api: Api, path: str, body: dict[str, Any]) -> None:
    api.player("p1")
    api.player("p2")
    assert api.call("POST", "/operator/players/p1/deposits", {"amount": 10, "ref": "pay-1"}).status == 201
    assert_refused(api.call("POST", path, body), "conflict")
    assert api.call("GET", "/operator/players/p1").body["balance"] == 1010
    assert api.call("GET", "/operator/players/p2").body["balance"] == 1000


def test_not_enough_money_comes_with_the_balance(api: Api) -> None:
    api.player("p1", "10.5")
    error = assert_refused(
        api.call("POST", "/operator/players/p1/withdrawals", {"amount": 11, "ref": "wd"}), "not_enough_money"
    )
    assert error["balance"] == "10.5"
    assert api.call("GET", "/operator/players/p1").body["version"] == 0
    assert api.call("POST", "/operator/players/p1/withdrawals", {"amount": "10.5", "ref": "wd"}).body["balance"] == 0


def test_a_deposit_over_the_deposit_limit(api: Api) -> None:
    api.player()
    api.call("PATCH", "/operator/players/p1", {"limits": {"deposit": {"week": 100}}})
    assert api.call("POST", "/operator/players/p1/deposits", {"amount": 60, "ref": "d-1"}).status == 201
    error = assert_refused(
        api.call("POST", "/operator/players/p1/deposits", {"amount": 41, "ref": "d-2"}), "over_limit"
    )
    assert error["balance"] == 1060
    assert "deposit limit per week is 100" in error["message"]
    history = api.call("GET", "/operator/players/p1/history").body["entries"]
    assert "d-2" not in [e["trx_id"] for e in history]
    assert api.call("POST", "/operator/players/p1/deposits", {"amount": 40, "ref": "d-2"}).status == 201
    output = api.output[-3]
    assert "DepositLimitRefusals" in output  # the refusal is counted


@pytest.mark.parametrize("status", [PlayerStatus.SUSPENDED, PlayerStatus.SELF_EXCLUDED, PlayerStatus.CLOSED])
def test_a_session_for_a_player_who_is_not_active(api: Api, status: PlayerStatus) -> None:
    api.player()
    api.call("PATCH", "/operator/players/p1", {"status": status.value})
    error = assert_refused(api.call("POST", "/operator/players/p1/sessions", {"application": "keno"}), "not_allowed")
    assert status.value in error["message"]


def test_a_deposit_to_a_closed_account(api: Api) -> None:
    api.player()
    api.call("PATCH", "/operator/players/p1", {"status": "closed"})
    assert_refused(api.call("POST", "/operator/players/p1/deposits", {"amount": 1, "ref": "d"}), "not_allowed")
    assert api.call("POST", "/operator/players/p1/withdrawals", {"amount": 1000, "ref": "w"}).status == 201


# --- history pages ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entries", "limit"), [(7, 3), (6, 3), (5, 1), (4, 4), (3, 10)])
def test_history_pages_walk_every_entry_once_newest_first(api: Api, entries: int, limit: int) -> None:
    api.player()
    for i in range(entries - 1):
        api.call("POST", "/operator/players/p1/deposits", {"amount": i + 1, "ref": f"d-{i}"})
    everything = api.call("GET", "/operator/players/p1/history", query={"limit": 1000}).body
    assert everything["next_cursor"] is None
    assert len(everything["entries"]) == entries
    walked: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        page = api.call("GET", "/operator/players/p1/history", query=query)
        assert page.status == 200, page
        assert 1 <= len(page.body["entries"]) <= limit
        walked.extend(page.body["entries"])
        pages += 1
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
        assert len(page.body["entries"]) == limit
    assert pages == -(-entries // limit)  # no empty last page
    assert [e["entry_id"] for e in walked] == [e["entry_id"] for e in everything["entries"]]
    assert len({e["entry_id"] for e in walked}) == entries
    assert [e["account_version"] for e in walked] == list(range(entries - 1, -1, -1))  # newest first


def test_a_cursor_opens_only_the_players_own_ledger(api: Api) -> None:
    api.player("p1")
    api.player("p2")
    for i in range(3):
        api.call("POST", "/operator/players/p1/deposits", {"amount": 1, "ref": f"a-{i}"})
        api.call("POST", "/operator/players/p2/deposits", {"amount": 1, "ref": f"b-{i}"})
    cursor = api.call("GET", "/operator/players/p1/history", query={"limit": 1}).body["next_cursor"]
    reply = api.call("GET", "/operator/players/p2/history", query={"cursor": cursor, "limit": 100})
    if reply.status == 200:
        assert {e["player"] for e in reply.body["entries"]} <= {"p2"}
    else:
        assert_invalid(reply, "cursor")


# --- failures of ours -------------------------------------------------------------------------------------------------


def test_a_store_failure_is_503_and_changes_nothing(api: Api, moto_client: Any) -> None:
    from botocore.exceptions import ClientError

    api.player()
    wallet = lambda_wallet()

    class Throttled:
        def __getattr__(self, operation: str) -> Any:
            def throttled(**_: Any) -> Any:
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, operation)

            return throttled

    original = wallet.store.client
    wallet.store.client = Throttled()
    try:
        reply = api.call("POST", "/operator/players/p1/deposits", {"amount": 1, "ref": "d"})
    finally:
        wallet.store.client = original
    assert reply.status == 503
    assert reply.error["code"] == "unavailable"
    assert api.call("GET", "/operator/players/p1").body["balance"] == 1000


def test_play_options_the_game_page_would_refuse_are_refused_before_the_session_changes(api: Api) -> None:
    api.player()
    live = api.call("POST", "/operator/players/p1/sessions", {}).body["session"]
    refused = api.call("POST", "/operator/players/p1/sessions", {"application": "a_op", "home_page": "javascript:x"})
    assert (refused.status, refused.error["code"]) == (400, "invalid_request")
    assert "home_page" in refused.error["message"]
    assert lambda_wallet().live_account(live) is not None
