"""Fixtures for all three levels: moto (unit), DynamoDB Local (integration), `wallet local` (end to end)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
import pytest
from moto import mock_aws

# Never reach a real AWS account from the tests, whatever the machine has configured.
for _name in (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "WALLET_SALT_PARAMETER",
    "WALLET_SESSION_KEY_PARAMETER",
):
    os.environ.pop(_name, None)
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="Wallet",
    POWERTOOLS_SERVICE_NAME="wallet",
    # The billing answers only these sources: the handler tests' events come from tests.support.GAMES_SERVER_IP, the
    # local front's clients (the Games Server simulator, schemathesis) from loopback.
    WALLET_GAMES_SERVER_CIDRS="203.0.113.0/24,127.0.0.0/8,::1/128",
)

from tests.support import SALT, SESSION_KEY, new_lambda_instance  # noqa: E402
from wallet.bootstrap import Secrets, make_dynamodb_client  # noqa: E402
from wallet.money.dynamodb import DynamoDBStore  # noqa: E402
from wallet.money.wallet import Wallet  # noqa: E402
from wallet.settings import Settings  # noqa: E402
from wallet_local.dynamodb_local import DynamoDBLocal, free_port  # noqa: E402
from wallet_local.table import create_table, create_table_request  # noqa: E402


def make_wallet(client, table: str, **kwargs) -> Wallet:  # type: ignore[no-untyped-def]
    settings = Settings(table_name=table, salt=SALT, session_key=SESSION_KEY)
    return Wallet(DynamoDBStore(table, client), Secrets(settings), **kwargs)


# One long-lived session: a new boto3 client per test otherwise reloads botocore's data files (~0.3 s a test).
_SESSION = boto3.session.Session(region_name="us-east-1")


@pytest.fixture(autouse=True)
def fresh_lambda_wallet() -> Iterator[None]:
    """Each test's handlers build their wallet and catalogue anew (in its moto or DynamoDB Local), as a new Lambda
    instance would."""
    new_lambda_instance()
    yield
    new_lambda_instance()


@pytest.fixture
def boto_session() -> boto3.session.Session:
    """The long-lived session, for code that calls boto3.client() itself (patch boto3.DEFAULT_SESSION with it)."""
    return _SESSION


@cache
def _moto_table_request() -> dict[str, Any]:
    # template.yaml parsed once, not per test (~0.1 s each: most of a moto test's set-up).
    return create_table_request("wallet-test")


@pytest.fixture
def moto_client() -> Iterator[object]:
    with mock_aws():
        client = _SESSION.client("dynamodb", region_name="us-east-1")
        client.create_table(**_moto_table_request())  # moto's table is ACTIVE at once: no waiter needed
        yield client


@pytest.fixture
def wallet(moto_client) -> Wallet:  # type: ignore[no-untyped-def]
    return make_wallet(moto_client, "wallet-test", sleep=lambda _: None)


@pytest.fixture
def player(wallet: Wallet) -> tuple[str, str]:
    """A player with 1000 FUN and a live session: (player_id, session token)."""
    wallet.create_player("p1", "FUN", Decimal(1000))
    return "p1", wallet.new_session("p1").token


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    with DynamoDBLocal(free_port()) as database:
        yield database


@pytest.fixture
def local_table(dynamodb_local: DynamoDBLocal) -> tuple[object, str]:
    """A fresh table in DynamoDB Local for one test: (client, table name)."""
    client = dynamodb_local.client()
    table = f"wallet-{uuid.uuid4().hex[:10]}"
    create_table(client, table)
    return client, table


@pytest.fixture
def local_wallet(dynamodb_local: DynamoDBLocal, local_table) -> Wallet:  # type: ignore[no-untyped-def]
    """A wallet on DynamoDB Local with the production client settings (timeouts, retries)."""
    _, table = local_table
    return make_wallet(make_dynamodb_client(endpoint_url=dynamodb_local.endpoint), table)
