"""Fault injection: the wallet talks to DynamoDB Local through a programmable faulty proxy (tests/faults/proxy.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import make_wallet
from tests.faults.proxy import FaultyProxy
from wallet.bootstrap import make_dynamodb_client
from wallet.money.wallet import Wallet
from wallet_local.dynamodb_local import DynamoDBLocal


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal) -> Iterator[FaultyProxy]:
    with FaultyProxy(dynamodb_local.endpoint) as running:
        yield running


@pytest.fixture
def faulty_wallet(proxy: FaultyProxy, local_table) -> Wallet:  # type: ignore[no-untyped-def]
    """The wallet under test: the production client settings (CLIENT_CONFIG: timeouts, retries), through the proxy."""
    _, table = local_table
    return make_wallet(make_dynamodb_client(endpoint_url=proxy.url), table)


@pytest.fixture
def direct_wallet(dynamodb_local: DynamoDBLocal, local_table) -> Wallet:  # type: ignore[no-untyped-def]
    """The same table without the proxy: to set up players and to check what really happened."""
    _, table = local_table
    return make_wallet(make_dynamodb_client(endpoint_url=dynamodb_local.endpoint), table)
