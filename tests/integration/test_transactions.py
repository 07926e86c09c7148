"""The money path against DynamoDB Local: real expression, condition and transaction semantics."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError

from tests.support import do_body
from wallet.money.dynamodb import account_key
from wallet.money.games_server import BillingUnavailable, Event
from wallet.money.ledger import LedgerEntry, Source
from wallet.money.store import Applied, DuplicateEntry, StaleAccount
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store

pytestmark = pytest.mark.integration


def _entry(account, trx_id: str, minus: Decimal, plus: Decimal = Decimal(0)) -> LedgerEntry:  # type: ignore[no-untyped-def]
    return LedgerEntry(
        source=Source.GAME,
        trx_id=trx_id,
        player_id=account.player_id,
        minus=minus,
        plus=plus,
        balance_before=account.balance,
        balance_after=account.balance - minus + plus,
        currency=account.currency,
        created_at="2026-01-01T00:00:00.000000Z",
        kind="bet",
        game_uuid="r-1",
        tag={"game": "slot", "game_uuid": "r-1", "nested": [1, {"a": "b"}]},
        fingerprint="f",
        account_version=account.version + 1,
    )


def test_dynamodb_rejects_two_operators_in_one_set_action(local_wallet: Wallet) -> None:
    """Why the new balance is computed from the version read: `SET balance = balance - :m + :p` (which moto accepts)
    is rejected by DynamoDB, so a single arithmetic update cannot do bet-and-win in one go."""
    local_wallet.create_player("p1", "FUN", Decimal(100))
    repository = local_wallet.store
    with pytest.raises(ClientError) as caught:
        repository.client.update_item(
            TableName=repository.table_name,
            Key=account_key("p1"),
            UpdateExpression="SET balance = balance - :m + :p",
            ExpressionAttributeValues={":m": {"N": "1"}, ":p": {"N": "2"}},
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert local_wallet.account("p1").balance == 100


def test_record_applies_entry_and_balance_together(local_wallet: Wallet) -> None:
    local_wallet.create_player("p1", "FUN", Decimal(100))
    account, earlier = local_wallet.store.get_account_and_entry("p1", Source.GAME, "t-1")
    assert earlier is None
    assert isinstance(local_wallet.store.record(_entry(account, "t-1", Decimal("12.5")), account), Applied)

    after, stored = local_wallet.store.get_account_and_entry("p1", Source.GAME, "t-1")
    assert after is not None and stored is not None
    assert after.balance == Decimal("87.5")
    assert after.version == account.version + 1
    assert stored.balance_before == 100 and stored.balance_after == Decimal("87.5")
    assert stored.tag == {"game": "slot", "game_uuid": "r-1", "nested": [1, {"a": "b"}]}


def test_stale_version_writes_nothing(local_wallet: Wallet) -> None:
    local_wallet.create_player("p1", "FUN", Decimal(100))
    first_read, _ = local_wallet.store.get_account_and_entry("p1", Source.GAME, "a")
    second_read, _ = local_wallet.store.get_account_and_entry("p1", Source.GAME, "b")
    assert isinstance(local_wallet.store.record(_entry(first_read, "a", Decimal(10)), first_read), Applied)

    outcome = local_wallet.store.record(_entry(second_read, "b", Decimal(10)), second_read)
    assert isinstance(outcome, StaleAccount)
    assert outcome.latest is not None and outcome.latest.balance == 90  # ALL_OLD works on DynamoDB Local
    _, missing = local_wallet.store.get_account_and_entry("p1", Source.GAME, "b")
    assert missing is None  # the entry put was rolled back with the failed update
    assert local_wallet.account("p1").balance == 90


def test_duplicate_key_returns_the_stored_entry(local_wallet: Wallet) -> None:
    local_wallet.create_player("p1", "FUN", Decimal(100))
    account, _ = local_wallet.store.get_account_and_entry("p1", Source.GAME, "t")
    local_wallet.store.record(_entry(account, "t", Decimal(10)), account)

    outcome = local_wallet.store.record(_entry(account, "t", Decimal(30)), account)
    assert isinstance(outcome, DuplicateEntry)
    assert outcome.existing is not None and outcome.existing.minus == 10
    assert outcome.latest is not None and outcome.latest.balance == 90  # the account condition failed too
    assert local_wallet.account("p1").balance == 90


def _provider_call(wallet: Wallet, body: str) -> tuple[dict[str, object], int]:
    """Like the Games Server: a 5xx (here BillingContended) is retried with the same body, up to 10 more times."""
    for attempt in range(1, 12):
        try:
            outcome = wallet.handle_do(body)
        except BillingUnavailable:
            continue
        return {"status": outcome.reply.status, "balance": outcome.reply.balance, "event": outcome.event}, attempt
    raise AssertionError("still contended after 11 attempts")


def _race(wallet: Wallet, bodies: list[str]) -> list[tuple[dict[str, object], int]]:
    """Every body sent at once, one thread each, released together by a barrier; the replies in body order."""
    start = threading.Barrier(len(bodies))

    def play(body: str) -> tuple[dict[str, object], int]:
        start.wait()
        return _provider_call(wallet, body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(play, bodies))


def _assert_audit_clean(wallet: Wallet) -> None:
    report = audit_store(wallet.store)
    assert report.violations == []
    assert report.clean


def _ledger(wallet: Wallet, player: str) -> list[LedgerEntry]:
    return wallet.history(player, limit=10_000)


def test_64_concurrent_bets_on_one_player(local_wallet: Wallet) -> None:
    """64 distinct bets of 25 race on one account holding 1000: exactly 40 fit, 24 get not_enough_money,
    the balance ends at 0 and the ledger holds exactly the 40 accepted bets."""
    local_wallet.create_player("hot", "FUN", Decimal(1000))
    session = local_wallet.new_session("hot").token
    bodies = [do_body(session, f"bet-{i}", 25, 0, {"game": "slot", "game_uuid": f"r-{i}"}) for i in range(64)]
    results = _race(local_wallet, bodies)

    statuses = Counter(reply["status"] for reply, _ in results)
    assert statuses == {"OK": 40, "not_enough_money": 24}
    assert all(reply["balance"] >= 0 for reply, _ in results)  # type: ignore[operator]
    assert local_wallet.account("hot").balance == 0
    bets = [entry for entry in _ledger(local_wallet, "hot") if entry.source is Source.GAME]
    assert len(bets) == 40
    assert len({entry.trx_id for entry in bets}) == 40
    # Each accepted bet saw a distinct balance: the chain 1000 -> 975 -> ... -> 0 has no gap and no repeat.
    assert sorted(entry.balance_before for entry in bets) == [Decimal(25 * k) for k in range(1, 41)]
    _assert_audit_clean(local_wallet)


def test_64_concurrent_bets_and_wins_leave_an_exact_balance(local_wallet: Wallet) -> None:
    local_wallet.create_player("mixed", "FUN", Decimal(100000))
    session = local_wallet.new_session("mixed").token
    movements = [(i % 7 + 1, (i * 13) % 5) for i in range(64)]
    bodies = [
        do_body(session, str(uuid.uuid4()), m, p, {"game": "slot", "game_uuid": i})
        for i, (m, p) in enumerate(movements)
    ]
    results = _race(local_wallet, bodies)

    assert {reply["status"] for reply, _ in results} == {"OK"}
    expected = Decimal(100000) - sum(Decimal(m) for m, _ in movements) + sum(Decimal(p) for _, p in movements)
    assert local_wallet.account("mixed").balance == expected
    ledger = _ledger(local_wallet, "mixed")
    assert len(ledger) == 64 + 1  # the bets and wins plus the opening balance
    assert sum(e.plus for e in ledger) - sum(e.minus for e in ledger) == expected
    assert sum(attempts for _, attempts in results) >= 64
    _assert_audit_clean(local_wallet)


def test_64_concurrent_copies_of_one_trx_move_money_once(local_wallet: Wallet) -> None:
    local_wallet.create_player("twin", "FUN", Decimal(500))
    session = local_wallet.new_session("twin").token
    body = do_body(session, "the-one", 120, 0, {"game": "slot", "game_uuid": 42})
    results = _race(local_wallet, [body] * 64)

    assert all(reply == {"status": "OK", "balance": Decimal(380), "event": reply["event"]} for reply, _ in results)
    events = Counter(reply["event"] for reply, _ in results)
    assert events[Event.BET] == 1
    assert events[Event.DUPLICATE] == 63
    assert local_wallet.account("twin").balance == 380
    entries = [e for e in _ledger(local_wallet, "twin") if e.source is Source.GAME]
    assert [(e.trx_id, e.minus) for e in entries] == [("the-one", 120)]
    _assert_audit_clean(local_wallet)


def test_round_and_history_indexes(local_wallet: Wallet) -> None:
    local_wallet.create_player("r", "FUN", Decimal(1000))
    session = local_wallet.new_session("r").token
    tag = {"game": "bet", "game_id": "1009", "game_uuid": "AA-BB-CC", "round": 10000}
    for trx_id, minus, plus in (("b1", 300, 0), ("c1", 0, 100), ("w1", 0, 0)):
        assert local_wallet.handle_do(do_body(session, trx_id, minus, plus, tag)).reply.status == "OK"
    local_wallet.handle_do(do_body(session, "other", 5, 0, {"game": "slot", "game_uuid": "elsewhere"}))

    round_entries = local_wallet.round("AA-BB-CC")
    assert [(e.trx_id, e.minus, e.plus, e.kind) for e in round_entries] == [
        ("b1", 300, 0, "bet"),
        ("c1", 0, 100, "win"),
        ("w1", 0, 0, "zero_win"),
    ]
    history = local_wallet.history("r")
    assert [e.trx_id for e in history][:4] == ["other", "w1", "c1", "b1"]  # newest first
    assert history[-1].kind == "opening"
    assert local_wallet.account("r").balance == 1000 - 300 + 100 - 5


def test_audit_catches_a_lost_write_and_a_tampered_balance(local_wallet: Wallet) -> None:
    local_wallet.create_player("a", "FUN", Decimal(100))
    session = local_wallet.new_session("a").token
    for i in range(3):
        local_wallet.handle_do(do_body(session, f"t{i}", 10, 0, {"game": "slot", "game_uuid": f"r{i}"}))
    assert audit_store(local_wallet.store).clean
    repository = local_wallet.store
    client, table = repository.client, repository.table_name

    # A ledger entry disappears: the version chain has a gap and the sum no longer matches.
    client.delete_item(TableName=table, Key={"pk": {"S": "ENTRY#game:t1"}, "sk": {"S": "ENTRY"}})
    report = audit_store(local_wallet.store)
    assert not report.clean
    assert any("ledger sum" in v for v in report.violations)
    assert any("without gaps" in v for v in report.violations)

    # A balance is set by hand: it no longer equals its ledger.
    local_wallet.create_player("b", "FUN", Decimal(50))
    client.update_item(
        TableName=table,
        Key=account_key("b"),
        UpdateExpression="SET balance = :b",
        ExpressionAttributeValues={":b": {"N": "75"}},
    )
    assert any("player b: balance 75 != ledger sum 50" in v for v in audit_store(local_wallet.store).violations)


def test_audit_warns_about_a_win_without_a_bet(local_wallet: Wallet) -> None:
    local_wallet.create_player("w", "FUN", Decimal(0))
    session = local_wallet.new_session("w").token
    local_wallet.handle_do(do_body(session, "lonely-win", 0, 40, {"game": "slot", "game_uuid": "no-bet"}))
    report = audit_store(local_wallet.store)
    assert report.clean
    assert report.warnings == ["round no-bet: credited 40 with no bet"]
