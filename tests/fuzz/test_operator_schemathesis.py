"""Schemathesis against a live local front for the operator API (/operator/*), over HTTP, on DynamoDB Local.

The stack is built in-process, once for the module, as tests/fuzz/test_schemathesis.py builds it for /do: DynamoDB
Local (the session's `dynamodb_local`), a fresh table, two players, and wallet_local.front.LocalFront serving the
operator routes with the real operator handler and checking SigV4 against the local credentials, as `wallet local`
does. The schema is the one the function generates (functions/operator/app.py, from wallet.operator.api's models);
a test checks that GET /operator/openapi.json, signed, serves exactly it.

Every generated request, valid by the schema or a negation of it, is signed with SigV4 by a schemathesis auth
provider (a `requests` auth, so the signature covers the exact bytes sent) and must get: no 5xx, never the 403 of a
refused signature, a documented status, content type and body, and for a refusal our {"error": {"code",
"message"}}. Some cases are pointed at the seeded players, so the money routes move real money too; the ledger audit
must stay clean after every request.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import SALT, SESSION_KEY, serving
from wallet.bootstrap import Secrets, make_dynamodb_client
from wallet.money.dynamodb import DynamoDBStore
from wallet.money.limits import LimitKind, Period
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store
from wallet.operator.client import OperatorClient
from wallet.settings import Settings
from wallet_local.dynamodb_local import DynamoDBLocal, free_port
from wallet_local.front import LocalFront, load_function
from wallet_local.sigv4 import LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, LocalCredentials
from wallet_local.stack import OPERATOR_ROUTES
from wallet_local.table import create_table

pytestmark = pytest.mark.integration

REGION = "us-east-1"
CREDENTIALS = Credentials(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY)
PLAYERS = ("fz-alice", "fz-bob")  # the stateless tests point cases at these (any status, any limits may follow)
# Only the money property moves these: always active; the second has a deposit limit of DEPOSIT_LIMIT a day.
MONEY_PLAYERS = ("fz-money-1", "fz-money-2")
MONEY_OPENING = Decimal(20000)
DEPOSIT_LIMIT = Decimal(6000)
# 100 (50) examples a property by default, about 25 s in all; OPERATOR_FUZZ_SCALE=10 for a deeper run.
EXAMPLES = int(os.environ.get("OPERATOR_FUZZ_SCALE", "1"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def _schema_text() -> str:
    """The OpenAPI description the function serves, generated in-process from the same handler module. With
    WALLET_LOCAL_PRELOAD (the front imports it into every Lambda-like instance first), this process imports it too,
    so the schema fuzzed with and the handler fuzzed are the same code (e.g. a patched copy of app.py put in
    sys.modules["wallet_function_operator"] by that module)."""
    preload = os.environ.get("WALLET_LOCAL_PRELOAD")
    if preload:
        importlib.import_module(preload)
    return str(load_function("operator").openapi_document())


SCHEMA_TEXT = _schema_text()
SCHEMA = schemathesis.openapi.from_dict(json.loads(SCHEMA_TEXT))


class SigV4RequestsAuth(requests.auth.AuthBase):
    """SigV4 (execute-api) over the request exactly as `requests` prepared it: method, URL with its query, body."""

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {name: value for name, value in prepared.headers.items() if name.lower() == "content-type"}
        signed = AWSRequest(method=prepared.method, url=prepared.url, data=body, headers=headers)
        SigV4Auth(CREDENTIALS, "execute-api", REGION).add_auth(signed)
        prepared.headers["Authorization"] = signed.headers["Authorization"]
        prepared.headers["X-Amz-Date"] = signed.headers["X-Amz-Date"]
        return prepared


SCHEMA.auth.set_from_requests(SigV4RequestsAuth())


@dataclass
class Stack:
    url: str
    wallet: Wallet
    http: requests.Session


@pytest.fixture(scope="module")
def stack(dynamodb_local: DynamoDBLocal) -> Iterator[Stack]:
    table = f"wallet-opfuzz-{uuid.uuid4().hex[:10]}"
    create_table(dynamodb_local.client(), table)
    port = free_port()
    environment = {
        "WALLET_TABLE": table,
        "WALLET_SALT": SALT,
        "WALLET_SESSION_KEY": SESSION_KEY,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local.endpoint,
        # The instances are spawned on the first request and read it then: play_url points at this front.
        "WALLET_SITE_URL": f"http://127.0.0.1:{port}",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    with pytest.MonkeyPatch.context() as env:
        for key, value in environment.items():
            env.setenv(key, value)
        settings_ = Settings(table_name=table, salt=SALT, session_key=SESSION_KEY)
        wallet = Wallet(
            DynamoDBStore(table, make_dynamodb_client(endpoint_url=dynamodb_local.endpoint)), Secrets(settings_)
        )
        for player in PLAYERS:
            wallet.create_player(player, "FUN", Decimal(1000))
        for player in MONEY_PLAYERS:
            wallet.create_player(player, "FUN", MONEY_OPENING)
        wallet.set_limits(MONEY_PLAYERS[1], {(LimitKind.DEPOSIT, Period.DAY): DEPOSIT_LIMIT}, by="fuzz")
        # One Lambda-like instance: the requests come one at a time. SigV4 is checked as `wallet local` checks it.
        front = LocalFront(
            ("127.0.0.1", port),
            OPERATOR_ROUTES,
            max_instances=1,
            credentials=LocalCredentials(LOCAL_ACCESS_KEY, LOCAL_SECRET_KEY, REGION),
        )
        with serving(front), requests.Session() as http:
            yield Stack(front.url, wallet, http)


def _assert_audit_clean(stack: Stack) -> None:
    report = audit_store(stack.wallet.store)
    assert report.violations == [], report.violations


def _check(stack: Stack, case: schemathesis.Case, response: schemathesis.Response) -> None:
    """What every reply must be, beyond the schema: never a refused signature, never a trace, our error shape."""
    event(f"{case.method} {case.path} -> {response.status_code}")
    assert response.status_code != 403, (case.method, case.formatted_path, response.text[:500])
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body
    _assert_audit_clean(stack)


def _aim(case: schemathesis.Case, player: str | None) -> None:
    """Point a case at a seeded player, so it reaches the money and not only the 404."""
    if player is not None and case.path_parameters and "player_id" in case.path_parameters:
        case.path_parameters["player_id"] = player


@settings(SETTINGS, max_examples=EXAMPLES * 100)
@given(case=SCHEMA.as_strategy(GenerationMode.POSITIVE), player=st.sampled_from([None, *PLAYERS]))
def test_operator_api_schema_valid_requests(stack: Stack, case: schemathesis.Case, player: str | None) -> None:
    """Schema-valid requests, signed: documented replies only, no 5xx, the ledger stays consistent."""
    _aim(case, player)
    response = case.call(base_url=stack.url, session=stack.http, timeout=10)
    case.validate_response(response, checks=CHECKS)
    _check(stack, case, response)


@settings(SETTINGS, max_examples=EXAMPLES * 100)
@given(case=SCHEMA.as_strategy(GenerationMode.NEGATIVE), player=st.sampled_from([None, *PLAYERS]))
def test_operator_api_schema_invalid_requests(stack: Stack, case: schemathesis.Case, player: str | None) -> None:
    """Requests that break the schema, signed: a documented 4xx (never a 5xx, never a stored change the audit
    rejects)."""
    _aim(case, player)
    response = case.call(base_url=stack.url, session=stack.http, timeout=10)
    case.validate_response(response, checks=CHECKS)
    _check(stack, case, response)


DEPOSITS = SCHEMA["/operator/players/{player_id}/deposits"]["POST"]
WITHDRAWALS = SCHEMA["/operator/players/{player_id}/withdrawals"]["POST"]
AMOUNTS = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(4000), places=8, allow_nan=False)
RUN = uuid.uuid4().hex[:8]  # this run's refs: never one an earlier test (or run, on a kept table) used
# What this run's refs were used for, as the ledger has them: ref -> (player, path, amount, entry as JSON).
USED_REFS: dict[str, tuple[str, str, Decimal, dict[str, Any]]] = {}


@settings(SETTINGS, max_examples=EXAMPLES * 50)
@given(
    case=st.one_of(DEPOSITS.as_strategy(GenerationMode.POSITIVE), WITHDRAWALS.as_strategy(GenerationMode.POSITIVE)),
    player=st.sampled_from(MONEY_PLAYERS),
    amount=AMOUNTS,
    as_string=st.booleans(),
)
def test_deposits_and_withdrawals_move_exactly(
    stack: Stack, case: schemathesis.Case, player: str, amount: Decimal, as_string: bool
) -> None:
    """Schema-valid deposits and withdrawals with valid amounts, on players only this test moves: each one moves the
    balance by exactly its amount once (201); its ref again with the same body is 200 with the same entry, with
    anything else 409 conflict; a withdrawal beyond the balance and a deposit over the limit are 409 and move
    nothing. The refs are the generated ones (short ones repeat, so replays and conflicts happen), in this run's
    namespace."""
    path = case.path
    ref = f"{RUN}-{case.body['ref']}"[:128]
    # A JSON integer, or a plain decimal string (never an exponent: "1E-8" is not an amount the wallet takes).
    sent: int | str = int(amount) if amount == amount.to_integral_value() and not as_string else f"{amount:f}"
    case.path_parameters["player_id"] = player
    case.body = {"amount": sent, "ref": ref}
    note(f"POST /operator/players/{player}/{path.rsplit('/', 1)[-1]} {case.body}")
    before = stack.wallet.account(player)
    entries_before = len(stack.wallet.history(player, limit=10_000))

    response = case.call(base_url=stack.url, session=stack.http, timeout=10)
    case.validate_response(response, checks=CHECKS)
    _check(stack, case, response)
    after = stack.wallet.account(player)
    moved = after.balance - before.balance
    added = len(stack.wallet.history(player, limit=10_000)) - entries_before
    body = response.json()
    event(f"{path.rsplit('/', 1)[-1]} -> {response.status_code}")

    if ref in USED_REFS:
        first_player, first_path, first_amount, entry = USED_REFS[ref]
        if (first_player, first_path, first_amount) == (player, path, amount):
            assert response.status_code == 200, (response.status_code, body)
            assert body["entry"] == entry
            assert Decimal(str(body["balance"])) == before.balance
        else:
            assert (response.status_code, body["error"]["code"]) == (409, "conflict"), body
        assert (moved, added) == (0, 0)
        return
    deposit = path.endswith("/deposits")
    counted = before.counters.current((LimitKind.DEPOSIT, Period.DAY), time.time())
    if deposit and player == MONEY_PLAYERS[1] and counted + amount > DEPOSIT_LIMIT:
        assert (response.status_code, body["error"]["code"]) == (409, "over_limit"), body
        assert (moved, added) == (0, 0)
    elif not deposit and amount > before.balance:
        assert (response.status_code, body["error"]["code"]) == (409, "not_enough_money"), body
        assert Decimal(str(body["error"]["balance"])) == before.balance
        assert (moved, added) == (0, 0)
    else:
        assert response.status_code == 201, (response.status_code, body)
        assert moved == (amount if deposit else -amount)
        assert added == 1
        assert Decimal(str(body["balance"])) == after.balance
        entry = body["entry"]
        assert (entry["trx_id"], entry["kind"]) == (ref, "deposit" if deposit else "withdrawal")
        assert Decimal(str(entry["plus" if deposit else "minus"])) == amount
        USED_REFS[ref] = (player, path, amount, entry)


def test_served_schema_is_the_functions_own(stack: Stack) -> None:
    """GET /operator/openapi.json (signed, through the front) is the description these tests fuzz with."""
    client = OperatorClient(stack.url, region=REGION, credentials=CREDENTIALS)
    served = client.call("GET", "/operator/openapi.json")
    assert served.status == 200
    assert served.body == json.loads(SCHEMA_TEXT, parse_float=Decimal)
    unsigned = stack.http.get(f"{stack.url}/operator/openapi.json", timeout=10)
    assert unsigned.status_code == 403


def test_seeded_players_balances_match_their_ledgers(stack: Stack) -> None:
    """After the fuzzing (or alone): every seeded player's balance is its ledger's sum, and the audit is clean."""
    for player in (*PLAYERS, *MONEY_PLAYERS):
        entries = stack.wallet.history(player, limit=10_000)
        assert stack.wallet.account(player).balance == sum((e.plus - e.minus for e in entries), Decimal(0))
    _assert_audit_clean(stack)
