"""The stores the contract suite runs on: the in-memory twin, DynamoDBStore on moto, DynamoDBStore on DynamoDB Local.

Every test gets an empty store: a new MemoryStore, a new moto backend, or a new table in the session's DynamoDB Local.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from moto import mock_aws

from wallet.money.dynamodb import DynamoDBStore, session_key
from wallet.money.memory import MemoryStore
from wallet.money.store import WalletStore
from wallet_local.table import create_table_request


@cache
def _table_request() -> dict[str, Any]:
    # template.yaml is parsed once (~0.1 s a time): each test only sends CreateTable with a new name.
    return create_table_request("unused")


def _new_table(client: Any) -> str:
    name = f"contract-{uuid.uuid4().hex[:10]}"
    client.create_table(**{**_table_request(), "TableName": name})
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return name


@pytest.fixture(params=["memory", "moto", pytest.param("dynamodb_local", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> Iterator[WalletStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "moto":
        with mock_aws():
            client = request.getfixturevalue("boto_session").client("dynamodb", region_name="us-east-1")
            yield DynamoDBStore(_new_table(client), client)
    else:
        client = request.getfixturevalue("dynamodb_local").client()
        yield DynamoDBStore(_new_table(client), client)


def stored_purge_at(store: WalletStore, player_id: str, token_hash: str) -> int | None:
    """What the table's TTL attribute holds for a session record (outside the protocol: each store keeps it its way)."""
    if isinstance(store, MemoryStore):
        return store.purge_at.get((player_id, token_hash))
    assert isinstance(store, DynamoDBStore)
    item = store.client.get_item(TableName=store.table_name, Key=session_key(player_id, token_hash)).get("Item")
    return int(item["purge_at"]["N"]) if item else None
