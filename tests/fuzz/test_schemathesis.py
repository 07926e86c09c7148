"""Schemathesis against a live local front: docs/openapi.yaml's POST /do, over HTTP, on DynamoDB Local.

The stack is built in-process, once for the module: DynamoDB Local (the session's `dynamodb_local`), a fresh table, a
player with a live session, and wallet_local.front.LocalFront serving POST /do with the real billing handler (the
API Gateway event path minus API Gateway). Every generated request, valid by the schema or not, must get HTTP 200 with
exactly one of the four bodies; random signs are never valid, so nothing may move. A second property re-signs
schema-valid bodies with the live session and checks the money against the exact model.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.oracle import game_uuid_model, has_wide_number, model_amount, parse_reply
from tests.support import SALT, SESSION_KEY, serving
from wallet.bootstrap import Secrets, make_dynamodb_client
from wallet.money.dynamodb import DynamoDBStore
from wallet.money.sign import compute_sign
from wallet.money.wallet import Wallet
from wallet.settings import Settings
from wallet_local.dynamodb_local import DynamoDBLocal, free_port
from wallet_local.front import BILLING_ROUTE, LocalFront
from wallet_local.table import create_table

pytestmark = pytest.mark.integration

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(SCHEMA_PATH)
DO = SCHEMA["/do"]["POST"]
PLAYER = "fuzz"
JSON_HEADERS = {"Content-Type": "application/json"}
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


@dataclass
class Stack:
    url: str
    wallet: Wallet
    session: str
    http: requests.Session

    def balance(self) -> Decimal:
        return self.wallet.account(PLAYER).balance

    def items(self) -> int:
        repository = self.wallet.store
        return int(repository.client.scan(TableName=repository.table_name, Select="COUNT")["Count"])


@pytest.fixture(scope="module")
def stack(dynamodb_local: DynamoDBLocal) -> Iterator[Stack]:
    table = f"wallet-fuzz-{uuid.uuid4().hex[:10]}"
    create_table(dynamodb_local.client(), table)
    environment = {
        "WALLET_TABLE": table,
        "WALLET_SALT": SALT,
        "WALLET_SESSION_KEY": SESSION_KEY,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_local.endpoint,
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
        wallet.create_player(PLAYER, "FUN", Decimal(1000))
        session = wallet.new_session(PLAYER).token
        # The front runs the handler in Lambda-like instances (spawned processes that import it with the environment
        # above); requests here come one at a time, so one instance is enough.
        front = LocalFront(("127.0.0.1", free_port()), [BILLING_ROUTE], max_instances=1)
        with serving(front), requests.Session() as http:
            yield Stack(front.url, wallet, session, http)


def _check_http_reply(response: requests.Response | schemathesis.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    content_type = response.headers.get("content-type")  # requests: a string; schemathesis: a list of them
    if isinstance(content_type, list):
        content_type = ",".join(content_type)
    assert content_type, response.headers
    assert content_type.startswith("application/json"), response.headers
    assert "Traceback" not in response.text
    return parse_reply(response.text)


@settings(SETTINGS, max_examples=150)
@given(
    case=st.one_of(
        DO.as_strategy(GenerationMode.POSITIVE),
        DO.as_strategy(GenerationMode.NEGATIVE),
    )
)
def test_do_answers_one_of_four_and_moves_nothing(stack: Stack, case: schemathesis.Case) -> None:
    """Whatever the body (schema-valid or a negation of the schema), 200 + one of the four; a random sign: nothing."""
    before, items = stack.balance(), stack.items()
    response = case.call(base_url=stack.url, session=stack.http, timeout=10)
    case.validate_response(response, checks=CHECKS)
    reply = _check_http_reply(response)
    assert reply == {"status": "sign_not_found"}, (reply, case.body)
    assert stack.balance() == before
    assert stack.items() == items


@settings(SETTINGS, max_examples=100)
@given(case=DO.as_strategy(GenerationMode.POSITIVE))
def test_do_resigned_schema_bodies_move_exactly(stack: Stack, case: schemathesis.Case) -> None:
    """Schema-valid bodies re-signed for the live session: the amounts decide, and the money moves exactly."""
    body = dict(case.body)
    trx_id = f"st-{uuid.uuid4()}"
    body.update(session=stack.session, trx_id=trx_id, sign=compute_sign(stack.session, trx_id, SALT))
    raw = json.dumps(body)
    sent = json.loads(raw, parse_float=Decimal)  # exactly what the billing reads
    minus, plus = model_amount(sent["minus"]), model_amount(sent["plus"])

    before, items = stack.balance(), stack.items()
    response = stack.http.post(f"{stack.url}/do", data=raw.encode("utf-8"), headers=JSON_HEADERS, timeout=10)
    reply = _check_http_reply(response)
    after, added = stack.balance(), stack.items() - items
    event(f"reply {reply['status']}")

    if minus is None or plus is None or has_wide_number(sent.get("tag")):
        # Invalid amounts, or a tag number DynamoDB cannot store as written (> 38 digits): refused, nothing moves.
        assert reply == {"status": "session_not_found"}, (reply, raw[:500])
        assert (after, added) == (before, 0)
    elif reply["status"] == "OK":
        if minus == 0 and plus == 0 and game_uuid_model(sent.get("tag", {})) is None:
            assert (after, added) == (before, 0)
        else:
            assert after == before - minus + plus, raw[:500]
            assert added == 1
        assert reply["balance"] == after
    elif reply["status"] == "not_enough_money":
        assert minus > before
        assert reply["balance"] == before
    else:  # valid amounts refused: only a tag we cannot store (too deep, too big, an empty key, a bad game_uuid)
        assert reply == {"status": "session_not_found"}, (reply, raw[:500])
    if reply["status"] != "OK":
        assert (after, added) == (before, 0), raw[:500]


def test_non_utf8_body_over_http(stack: Stack) -> None:
    response = stack.http.post(f"{stack.url}/do", data=b"\xff", headers=JSON_HEADERS, timeout=10)
    assert _check_http_reply(response) == {"status": "sign_not_found"}
