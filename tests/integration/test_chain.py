"""The tamper-evident chain on DynamoDB Local: moves played through the real DynamoDBStore, one live entry item edited
behind the wallet's back, and the whole-table audit (`wallet audit --scan`) naming it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from tests.support import do_body
from wallet.money.dynamodb import DynamoDBStore, account_key, entry_key
from wallet.money.ledger import LedgerEntry, chain_hash
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store

pytestmark = pytest.mark.integration

TAG = {"game": "slot", "game_id": "a_op", "game_uuid": "R-1", "lines": [9, {"bet": 1}], "name": "Ünï €"}


def play(wallet: Wallet) -> list[LedgerEntry]:
    """An opening, a deposit, a bet, a win and a withdrawal; the player's entries in version order."""
    wallet.create_player("p1", "FUN", Decimal("1000.50"))
    wallet.deposit("p1", "10.25", "d-1")
    session = wallet.new_session("p1").token
    assert wallet.handle_do(do_body(session, "b-1", 30, 0, TAG)).reply.status == "OK"
    assert wallet.handle_do(do_body(session, "w-1", 0, "0.75", TAG)).reply.status == "OK"
    wallet.withdraw("p1", "5", "wd-1")
    return sorted(wallet.store.history("p1"), key=lambda e: e.account_version)


def table_of(wallet: Wallet) -> DynamoDBStore:
    assert isinstance(wallet.store, DynamoDBStore)
    return wallet.store


def broken(entry: LedgerEntry) -> str:
    return (
        f"player p1: entry {entry.entry_id} (version {entry.account_version}) breaks the chain: its chain_hash is not "
        "the hash of its content after the previous entry's (changed after it was written)"
    )


@pytest.fixture
def calls(local_wallet: Wallet) -> Iterator[list[str]]:
    """The DynamoDB operations the wallet's client sends from now on."""
    seen: list[str] = []

    def count(model: Any, **_: Any) -> None:
        seen.append(model.name)

    events = table_of(local_wallet).client.meta.events
    events.register("before-call.dynamodb", count)
    yield seen
    events.unregister("before-call.dynamodb", count)


def test_the_played_ledger_is_one_chain(local_wallet: Wallet) -> None:
    entries = play(local_wallet)
    assert [e.kind for e in entries] == ["opening", "deposit", "bet", "win", "withdrawal"]
    previous = ""
    for entry in entries:  # as DynamoDB gives them back: every number a Decimal
        assert entry.chain_hash == chain_hash(replace(entry, chain_hash=""), previous)
        previous = entry.chain_hash
    assert local_wallet.account("p1").chain_head == previous
    report = audit_store(local_wallet.store)
    assert report.clean and report.warnings == [], report.as_json()


def test_a_move_is_still_one_transaction(local_wallet: Wallet, calls: list[str]) -> None:
    """The head rides in the account's update: one read and one TransactWriteItems per move, as before the chain."""
    local_wallet.create_player("p1", "FUN", Decimal(100))
    assert calls == ["TransactWriteItems"]
    calls.clear()
    result = local_wallet.deposit("p1", "1", "d-1")
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert result.entry is not None and result.account is not None
    assert local_wallet.account("p1").chain_head == result.entry.chain_hash == result.account.chain_head


@pytest.mark.parametrize(
    ("what", "update", "values"),
    [
        ("an amount", "SET plus = :v", {":v": {"N": "20.25"}}),
        ("a tag", "SET tag.game_id = :v", {":v": {"S": "another_game"}}),
        ("a time", "SET created_at = :v", {":v": {"S": "2020-01-01T00:00:00.000000Z"}}),
    ],
)
def test_an_edited_live_entry_is_caught(local_wallet: Wallet, what: str, update: str, values: dict[str, Any]) -> None:
    entries = play(local_wallet)
    store = table_of(local_wallet)
    target = entries[1] if what == "an amount" else entries[3]
    store.client.update_item(
        TableName=store.table_name,
        Key=entry_key(target.source, target.trx_id),
        UpdateExpression=update,
        ExpressionAttributeValues=values,
        ConditionExpression="attribute_exists(pk)",
    )
    report = audit_store(store)
    assert not report.clean
    assert broken(target) in report.violations, report.violations
    assert [v for v in report.violations if "chain" in v] == [broken(target)]


def test_a_rewritten_head_is_caught(local_wallet: Wallet) -> None:
    entries = play(local_wallet)
    store = table_of(local_wallet)
    store.client.update_item(
        TableName=store.table_name,
        Key=account_key("p1"),
        UpdateExpression="SET chain_head = :v",
        ExpressionAttributeValues={":v": {"S": entries[-2].chain_hash}},
    )
    assert audit_store(store).violations == [
        f"player p1: chain_head {entries[-2].chain_hash} is not the last entry's chain_hash {entries[-1].chain_hash}"
    ]
