"""DynamoDBStore.get_account_and_entry: one strongly consistent BatchGetItem of the account and the trx_id's entry slot.

Real items come from moto (a wallet that made a deposit); the read under test runs on a client whose replies are set
by botocore's Stubber: BatchGetItem's answers in any order, its unprocessed keys, and the skew of two items read one
by one (the entry of a transaction that just committed, the account from before it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber

from tests.conftest import _SESSION, make_wallet
from wallet.money.dynamodb import BATCH_GET_ATTEMPTS, DynamoDBStore, account_key, entry_key
from wallet.money.ledger import Source
from wallet.money.store import StoreUnavailable

TABLE = "wallet-test"
ACCOUNT = account_key("p1")
ENTRY = entry_key(Source.OPERATOR, "d-1")


@dataclass(frozen=True)
class Items:
    """p1's account before the deposit d-1, the entry d-1, and the account after it (raw DynamoDB items)."""

    account_before: dict[str, Any]
    entry: dict[str, Any]
    account_after: dict[str, Any]


@pytest.fixture
def items(moto_client: Any) -> Items:
    wallet = make_wallet(moto_client, TABLE, sleep=lambda _: None)
    wallet.create_player("p1", "FUN", Decimal(1000))

    def item(key: dict[str, Any]) -> dict[str, Any]:
        return dict(moto_client.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"])

    before = item(ACCOUNT)
    assert wallet.deposit("p1", "25", "d-1").balance == Decimal(1025)
    return Items(before, item(ENTRY), item(ACCOUNT))


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoDBStore, Stubber, list[float]]]:
    """A store on a stubbed client (no moto, no network): (store, stubber, the pauses it slept)."""
    client = _SESSION.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    store = DynamoDBStore(TABLE, client)
    pauses: list[float] = []
    store._pause = pauses.append  # type: ignore[method-assign]
    with Stubber(client) as stubber:
        yield store, stubber, pauses
        stubber.assert_no_pending_responses()


def batch_request(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"RequestItems": {TABLE: {"Keys": list(keys), "ConsistentRead": True}}}


def batch_reply(*found: dict[str, Any], unprocessed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"Responses": {TABLE: list(found)}}
    if unprocessed:
        reply["UnprocessedKeys"] = {TABLE: {"Keys": unprocessed, "ConsistentRead": True}}
    return reply


def test_one_strongly_consistent_batch_get_of_both_keys(stubbed: Any, items: Items) -> None:
    store, stubber, pauses = stubbed
    stubber.add_response("batch_get_item", batch_reply(items.account_after), batch_request(ACCOUNT, ENTRY))
    account, entry = store.get_account_and_entry("p1", Source.OPERATOR, "d-1")
    assert account is not None and account.balance == Decimal(1025)
    assert entry is None
    assert pauses == []


def test_items_in_reversed_order_are_matched_by_their_keys(stubbed: Any, items: Items) -> None:
    store, stubber, _ = stubbed
    stubber.add_response("batch_get_item", batch_reply(items.entry, items.account_after), batch_request(ACCOUNT, ENTRY))
    account, entry = store.get_account_and_entry("p1", Source.OPERATOR, "d-1")
    assert account is not None and account.player_id == "p1" and account.balance == Decimal(1025)
    assert entry is not None and entry.trx_id == "d-1" and entry.plus == Decimal(25)
    assert entry.account_version == account.version  # the same transaction: no second read


def test_the_scoped_slot_is_the_key_asked_for(stubbed: Any, items: Items) -> None:
    store, stubber, _ = stubbed
    scoped = entry_key(Source.GAME, "t-1", "p1")
    stubber.add_response("batch_get_item", batch_reply(items.account_after), batch_request(ACCOUNT, scoped))
    account, entry = store.get_account_and_entry("p1", Source.GAME, "t-1", scoped_to="p1")
    assert account is not None and entry is None


def test_unprocessed_keys_are_asked_for_again_then_read(stubbed: Any, items: Items) -> None:
    store, stubber, pauses = stubbed
    stubber.add_response("batch_get_item", batch_reply(unprocessed=[ACCOUNT, ENTRY]), batch_request(ACCOUNT, ENTRY))
    stubber.add_response(
        "batch_get_item", batch_reply(items.entry, unprocessed=[ACCOUNT]), batch_request(ACCOUNT, ENTRY)
    )
    stubber.add_response("batch_get_item", batch_reply(items.account_after), batch_request(ACCOUNT))
    account, entry = store.get_account_and_entry("p1", Source.OPERATOR, "d-1")
    assert account is not None and account.balance == Decimal(1025)
    assert entry is not None and entry.trx_id == "d-1"
    assert len(pauses) == 2 and pauses == sorted(pauses) and all(0 < p < 0.1 for p in pauses)


def test_keys_unprocessed_every_time_are_store_unavailable(stubbed: Any, items: Items) -> None:
    store, stubber, pauses = stubbed
    stubber.add_response("batch_get_item", batch_reply(items.account_after, unprocessed=[ENTRY]))
    for _ in range(BATCH_GET_ATTEMPTS - 1):
        stubber.add_response("batch_get_item", batch_reply(unprocessed=[ENTRY]), batch_request(ENTRY))
    with pytest.raises(StoreUnavailable, match="unprocessed"):
        store.get_account_and_entry("p1", Source.OPERATOR, "d-1")
    assert len(pauses) == BATCH_GET_ATTEMPTS - 1


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "TransactionConflictException"])
def test_an_error_is_store_unavailable(stubbed: Any, code: str) -> None:
    store, stubber, _ = stubbed
    stubber.add_client_error("batch_get_item", service_error_code=code, http_status_code=400)
    with pytest.raises(StoreUnavailable, match=code):
        store.get_account_and_entry("p1", Source.OPERATOR, "d-1")


def test_an_entry_newer_than_the_account_reads_the_account_again(stubbed: Any, items: Items) -> None:
    """The entry of a transaction that just committed, the account from before it: the account is read again, so a
    replay reports the balance as it is now."""
    store, stubber, _ = stubbed
    stubber.add_response(
        "batch_get_item", batch_reply(items.entry, items.account_before), batch_request(ACCOUNT, ENTRY)
    )
    stubber.add_response(
        "get_item",
        {"Item": items.account_after},
        {"TableName": TABLE, "Key": ACCOUNT, "ConsistentRead": True},
    )
    account, entry = store.get_account_and_entry("p1", Source.OPERATOR, "d-1")
    assert entry is not None and account is not None
    assert entry.account_version > int(items.account_before["version"]["N"])
    assert account.version == entry.account_version and account.balance == Decimal(1025)


def test_another_players_newer_entry_reads_nothing_more(stubbed: Any, items: Items) -> None:
    """The version of another player's entry says nothing about this account: no second read."""
    store, stubber, _ = stubbed
    theirs = {**items.entry, "player_id": {"S": "p2"}, "account_version": {"N": "99"}}
    stubber.add_response("batch_get_item", batch_reply(theirs, items.account_before), batch_request(ACCOUNT, ENTRY))
    account, entry = store.get_account_and_entry("p1", Source.OPERATOR, "d-1")
    assert entry is not None and entry.player_id == "p2"
    assert account is not None and account.version == int(items.account_before["version"]["N"])


def test_on_moto_the_read_is_one_batch_get(moto_client: Any, items: Items, calls: list[str]) -> None:
    store = DynamoDBStore(TABLE, moto_client)
    account, entry = store.get_account_and_entry("p1", Source.OPERATOR, "d-1")
    assert calls == ["BatchGetItem"]
    assert account is not None and entry is not None and account.version == entry.account_version
