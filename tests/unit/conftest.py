"""The unit tests' store: the in-memory twin for the money rules, DynamoDBStore on moto for tests about AWS calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from wallet.money.dynamodb import DynamoDBStore
from wallet.money.memory import MemoryStore
from wallet.money.store import WalletStore


@pytest.fixture
def store(request: pytest.FixtureRequest) -> WalletStore:
    """MemoryStore (tests/contract holds it to DynamoDBStore), unless the test asks for `moto_client`, itself or
    through a fixture such as `calls`: a test that counts DynamoDB operations or reads raw items gets moto's table."""
    if "moto_client" in request.fixturenames:
        return DynamoDBStore("wallet-test", request.getfixturevalue("moto_client"))
    return MemoryStore()


@pytest.fixture
def calls(moto_client: Any) -> Iterator[list[str]]:
    """The names of the DynamoDB operations the code sends from now on (the test's store is then moto's)."""
    seen: list[str] = []

    def count(model: Any, **_: Any) -> None:
        seen.append(model.name)

    moto_client.meta.events.register("before-call.dynamodb", count)
    yield seen
    moto_client.meta.events.unregister("before-call.dynamodb", count)
