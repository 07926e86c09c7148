"""The tamper-evident chain: every entry's chain_hash over its content and the player's previous entry's hash, the
account's chain_head, the mover that writes them, and the whole-table audit (`wallet audit --scan`) that checks them.

The money path runs on the in-memory twin here; tests/contract holds the stores to one round trip of the hashes, and
tests/integration/test_chain.py edits a live item in DynamoDB Local.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from tests.support import SALT, SESSION_KEY, do_body
from tests.unit.test_ledger_sql import spec_canonical_tag, spec_chain_hash
from wallet.bootstrap import Secrets
from wallet.money.ledger import Account, LedgerEntry, Source, canonical_tag, chain_hash
from wallet.money.memory import MemoryStore
from wallet.money.mover import MoveStatus
from wallet.money.store import WalletStore
from wallet.money.wallet import Wallet
from wallet.operator.audit import UNCHAINED_WARNING, audit_store
from wallet.settings import Settings

SLOT = {"game": "slot", "game_id": "a_op", "game_uuid": "R-1", "lines": [9, {"bet": 1}], "name": "Ünï"}


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001  # every entry its own time
        return self.now


def wallet_on(store: WalletStore, **kwargs: Any) -> Wallet:
    settings = Settings(table_name="wallet-test", salt=SALT, session_key=SESSION_KEY)
    return Wallet(store, Secrets(settings), clock=kwargs.pop("clock", Clock()), sleep=lambda _: None, **kwargs)


def entry(**changes: Any) -> LedgerEntry:
    fields: dict[str, Any] = {
        "source": Source.GAME,
        "trx_id": "t-1",
        "player_id": "p1",
        "minus": Decimal("12.5"),
        "plus": Decimal(0),
        "balance_before": Decimal(100),
        "balance_after": Decimal("87.5"),
        "currency": "FUN",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "kind": "bet",
        "game_uuid": "R-1",
        "tag": {"game": "slot", "game_uuid": "R-1"},
        "account_version": 1,
    }
    return LedgerEntry(**(fields | changes))


def ledger(store: WalletStore, player_id: str) -> list[LedgerEntry]:
    """The player's entries in version order (the chain's order)."""
    return sorted(store.history(player_id, 1000), key=lambda e: e.account_version)


def assert_linked(store: WalletStore, player_id: str) -> list[LedgerEntry]:
    """Every entry hashes to its chain_hash after the one before it, and the account's head is the last one."""
    entries = ledger(store, player_id)
    previous = ""
    for number, found in enumerate(entries):
        assert len(found.chain_hash) == 64, found
        assert found.chain_hash == spec_chain_hash(replace(found, chain_hash=""), previous), f"entry #{number}"
        previous = found.chain_hash
    account = store.get_account(player_id)
    assert account is not None
    assert account.chain_head == previous
    return entries


# --- the hash is the design's -----------------------------------------------------------------------------------------


TAGS = [
    {},
    {"game": "slot", "game_id": 42, "game_uuid": "R-1"},
    {"amount": Decimal("1.50"), "whole": Decimal("100.00"), "exp": Decimal("1E+2"), "n": 7, "neg": Decimal("-0.25")},
    {"nested": [1, {"b": [Decimal("0.5"), None, True, False]}, []], "z": {"y": {"x": ""}}},
    {"text": "üñï € 日本 \U0001f600", "ключ": "значение", 'quote"': "back\\slash\n"},
]


@pytest.mark.parametrize("tag", TAGS)
def test_canonical_tag_is_the_spec(tag: dict[str, Any]) -> None:
    assert canonical_tag(tag) == spec_canonical_tag(tag)
    assert canonical_tag(tag).isascii()


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("previous", ["", "0" * 64, "é"])
def test_chain_hash_is_the_spec(tag: dict[str, Any], previous: str) -> None:
    for one in (entry(tag=tag), entry(tag=tag, game_uuid=None, source=Source.OPERATOR, trx_id="ref-ü")):
        assert chain_hash(one, previous) == spec_chain_hash(one, previous)


def test_a_known_vector() -> None:
    """Pinned (and worked out by hand from the design's field list), so the spec and the code cannot drift together:
    this is what the table and the archives hold."""
    assert chain_hash(entry(), "") == "8fbcb9529fab5543629343b4242292d284528171d9b9ca626c5f9810b2bf9764"


@pytest.mark.parametrize(
    "change",
    [
        {"player_id": "p2"},
        {"account_version": 2},
        {"source": Source.OPERATOR},
        {"trx_id": "t-2"},
        {"kind": "win"},
        {"minus": Decimal("12.50000001")},
        {"plus": Decimal(1)},
        {"balance_before": Decimal(101)},
        {"balance_after": Decimal(88)},
        {"currency": "EUR"},
        {"game_uuid": None},
        {"tag": {"game": "slot", "game_uuid": "R-2"}},
        {"created_at": "2026-01-01T00:00:00.000001Z"},
    ],
)
def test_every_field_is_hashed(change: dict[str, Any]) -> None:
    assert chain_hash(entry(**change), "") != chain_hash(entry(), "")


def test_the_fields_cannot_run_into_each_other() -> None:
    """Length prefixes: moving text from one field to the next gives another hash."""
    assert chain_hash(entry(player_id="p1", currency="FUN"), "") != chain_hash(entry(player_id="p", currency="FUN"), "")
    assert chain_hash(entry(trx_id="ab", kind="bet"), "") != chain_hash(entry(trx_id="a", kind="bbet"), "")


def test_the_hash_is_not_in_its_own_input() -> None:
    plain = entry()
    assert chain_hash(replace(plain, chain_hash="x" * 64, fingerprint="f"), "") == chain_hash(plain, "")


def test_amounts_hash_by_value() -> None:
    """Equal amounts written differently (as a store may give them back) hash the same."""
    assert chain_hash(entry(minus=Decimal("12.50"), balance_before=Decimal("1E+2")), "") == chain_hash(entry(), "")


def test_the_entry_json_shows_the_hash_when_there_is_one() -> None:
    assert "chain_hash" not in entry().as_json()
    assert entry(chain_hash="ab").as_json()["chain_hash"] == "ab"


# --- the mover writes the chain ---------------------------------------------------------------------------------------


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def wallet(store: MemoryStore) -> Wallet:
    return wallet_on(store)


def test_the_opening_entry_starts_the_chain(wallet: Wallet, store: MemoryStore) -> None:
    account = wallet.create_player("p1", "FUN", Decimal(100))
    (opening,) = assert_linked(store, "p1")
    assert opening.account_version == 0
    assert opening.chain_hash == chain_hash(replace(opening, chain_hash=""), "")
    assert account.chain_head == opening.chain_hash  # what create_player returns is what was stored


def test_no_opening_no_head(wallet: Wallet, store: MemoryStore) -> None:
    assert wallet.create_player("p1", "FUN").chain_head == ""
    assert assert_linked(store, "p1") == []
    deposit = wallet.deposit("p1", "5", "d-1")
    assert deposit.entry is not None
    assert deposit.entry.chain_hash == chain_hash(replace(deposit.entry, chain_hash=""), "")
    assert_linked(store, "p1")


def test_bets_wins_and_operator_moves_chain_one_after_another(wallet: Wallet, store: MemoryStore) -> None:
    wallet.create_player("p1", "FUN", Decimal(1000))
    results = [wallet.deposit("p1", "100.25", "d-1")]
    session = wallet.new_session("p1").token
    plays: list[tuple[str, int | str, int | str]] = [
        ("b-1", 30, 0),
        ("w-1", 0, "0.75"),
        ("bw-1", 10, 25),
        ("z-1", 0, 0),
    ]
    for trx_id, minus, plus in plays:
        assert wallet.handle_do(do_body(session, trx_id, minus, plus, SLOT)).reply.status == "OK"
    results.append(wallet.withdraw("p1", "50", "w-1"))
    results.append(wallet.set_status("p1", "suspended", "KYC", "ops", ref="s-1"))
    entries = assert_linked(store, "p1")
    assert [e.kind for e in entries] == [
        "opening",
        "deposit",
        "bet",
        "win",
        "bet_and_win",
        "zero_win",
        "withdrawal",
        "status",
    ]
    assert len({e.chain_hash for e in entries}) == len(entries)
    for result in results:  # what a move answers is what it stored, the head included
        assert result.account is not None and result.entry is not None
        assert result.account.chain_head == result.entry.chain_hash
    assert audit_store(store).as_json()["violations"] == []


def test_a_replay_does_not_move_the_head(wallet: Wallet, store: MemoryStore) -> None:
    wallet.create_player("p1", "FUN", Decimal(1000))
    first = wallet.deposit("p1", "10", "d-1")
    session = wallet.new_session("p1").token
    assert wallet.handle_do(do_body(session, "b-1", 30, 0, SLOT)).reply.status == "OK"
    head = store.get_account("p1").chain_head  # type: ignore[union-attr]
    again = wallet.deposit("p1", "10", "d-1")
    assert again.status is MoveStatus.DUPLICATE
    assert again.entry == first.entry
    assert wallet.handle_do(do_body(session, "b-1", 30, 0, SLOT)).reply.status == "OK"
    assert store.get_account("p1").chain_head == head  # type: ignore[union-attr]
    assert len(assert_linked(store, "p1")) == 3


class SlowReads(MemoryStore):
    """Reads that let other threads in between the read and the write, so concurrent moves race for the version."""

    def get_account_and_entry(
        self, player_id: str, source: Source, trx_id: str, scoped_to: str | None = None
    ) -> tuple[Account | None, LedgerEntry | None]:
        found = super().get_account_and_entry(player_id, source, trx_id, scoped_to)
        time.sleep(0.0005)
        return found


def test_concurrent_moves_keep_one_line() -> None:
    """Moves racing for the same account: each write that wins was chained to the head it read, a loser rebuilds its
    entry from the account that won, so the ledger is one chain with no fork."""
    store = SlowReads()
    wallet = wallet_on(store, max_write_attempts=10_000, retry_budget_seconds=120.0, clock=time.time)
    wallet.create_player("p1", "FUN", Decimal(1000))
    session = wallet.new_session("p1").token
    errors: list[BaseException] = []
    attempts: list[int] = []
    start = threading.Barrier(8)

    def play(worker: int) -> None:
        try:
            start.wait()
            for n in range(10):
                if n % 2:
                    attempts.append(wallet.deposit("p1", "1", f"d-{worker}-{n}").attempts)
                else:
                    reply = wallet.handle_do(do_body(session, f"b-{worker}-{n}", 1, 0, SLOT)).reply
                    assert reply.status == "OK", reply
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=play, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert max(attempts) > 1  # the writers did race: some wrote after losing to another
    entries = assert_linked(store, "p1")
    assert [e.account_version for e in entries] == list(range(81))
    assert len({e.chain_hash for e in entries}) == 81
    report = audit_store(store)
    assert report.violations == [] and report.warnings == []


# --- the audit checks it ----------------------------------------------------------------------------------------------


@pytest.fixture
def played(wallet: Wallet, store: MemoryStore) -> list[LedgerEntry]:
    """Two players with a few entries each, and a clean audit."""
    for player in ("p1", "p2"):
        wallet.create_player(player, "FUN", Decimal(1000))
        wallet.deposit(player, "5", f"d-{player}")
        session = wallet.new_session(player).token
        tag = {**SLOT, "game_uuid": f"R-{player}"}
        assert wallet.handle_do(do_body(session, f"b-{player}", 30, 0, tag)).reply.status == "OK"
        assert wallet.handle_do(do_body(session, f"w-{player}", 0, 12, tag)).reply.status == "OK"
    report = audit_store(store)
    assert report.clean and report.warnings == [], report.as_json()
    return ledger(store, "p1")


def edit_entry(store: MemoryStore, edited: LedgerEntry) -> None:
    """Change an entry in place, as someone with write access to the table could (the twin's own storage)."""
    (slot,) = [s for s, e in store._entries.items() if e.entry_id == edited.entry_id]
    store._entries[slot] = edited


def edit_account(store: MemoryStore, edited: Account) -> None:
    store._accounts[edited.player_id] = edited


def chain_violations(store: MemoryStore) -> list[str]:
    return [v for v in audit_store(store).violations if "chain" in v]


def test_an_edited_amount_is_caught(played: list[LedgerEntry], store: MemoryStore) -> None:
    bet = played[2]
    assert bet.kind == "bet"
    edit_entry(store, replace(bet, minus=Decimal(3), balance_after=bet.balance_before - 3))
    report = audit_store(store)
    assert not report.clean
    assert chain_violations(store) == [
        f"player p1: entry {bet.entry_id} (version 2) breaks the chain: its chain_hash is not the hash of its content "
        "after the previous entry's (changed after it was written)"
    ]


def test_an_edit_no_other_check_sees_is_caught(played: list[LedgerEntry], store: MemoryStore) -> None:
    """A consistent rewrite of the money (an earlier bet made smaller, every later balance and the account moved to
    match) passes every sum and every link; only the chain sees it."""
    bet, win = played[2], played[3]
    smaller = replace(bet, minus=Decimal(3), balance_after=bet.balance_before - 3)
    edit_entry(store, smaller)
    edit_entry(store, replace(win, balance_before=smaller.balance_after, balance_after=smaller.balance_after + 12))
    account = store.get_account("p1")
    assert account is not None
    edit_account(store, replace(account, balance=smaller.balance_after + 12))
    report = audit_store(store)
    assert report.violations == [
        f"player p1: entry {bet.entry_id} (version 2) breaks the chain: its chain_hash is not the hash of its content "
        "after the previous entry's (changed after it was written)",
        f"player p1: entry {win.entry_id} (version 3) breaks the chain: its chain_hash is not the hash of its content "
        "after the previous entry's (changed after it was written)",
    ]


def test_an_edited_tag_is_caught(played: list[LedgerEntry], store: MemoryStore) -> None:
    win = played[3]
    edit_entry(store, replace(win, tag={**win.tag, "game_id": "another"}))
    assert audit_store(store).violations == [
        f"player p1: entry {win.entry_id} (version 3) breaks the chain: its chain_hash is not the hash of its content "
        "after the previous entry's (changed after it was written)"
    ]


def test_a_rehashed_entry_breaks_the_next_link(played: list[LedgerEntry], store: MemoryStore) -> None:
    """Whoever edits an entry and recomputes its hash leaves the next entry pointing at the old one."""
    deposit, bet = played[1], played[2]
    edited = replace(deposit, tag={**deposit.tag, "ref": "other"})
    edit_entry(store, replace(edited, chain_hash=chain_hash(replace(edited, chain_hash=""), played[0].chain_hash)))
    assert audit_store(store).violations == [
        f"player p1: entry {bet.entry_id} (version 2) breaks the chain: its chain_hash is not the hash of its content "
        "after the previous entry's (changed after it was written)"
    ]


def test_a_wrong_head_is_caught(played: list[LedgerEntry], store: MemoryStore) -> None:
    account = store.get_account("p1")
    assert account is not None
    edit_account(store, replace(account, chain_head="0" * 64))
    assert audit_store(store).violations == [
        f"player p1: chain_head {'0' * 64} is not the last entry's chain_hash {played[-1].chain_hash}"
    ]
    edit_account(store, replace(account, chain_head=""))
    assert audit_store(store).violations == [
        f"player p1: chain_head (none) is not the last entry's chain_hash {played[-1].chain_hash}"
    ]


def test_the_last_entry_removed_with_the_account_rolled_back_is_caught(
    played: list[LedgerEntry], store: MemoryStore
) -> None:
    """Balance, version and sums all agree again after the rollback; the head still names the removed entry."""
    win = played[-1]
    (slot,) = [s for s, e in store._entries.items() if e.entry_id == win.entry_id]
    del store._entries[slot]
    account = store.get_account("p1")
    assert account is not None
    edit_account(store, replace(account, balance=win.balance_before, version=win.account_version - 1))
    assert audit_store(store).violations == [
        f"player p1: chain_head {win.chain_hash} is not the last entry's chain_hash {played[-2].chain_hash}"
    ]


def test_a_hash_removed_after_the_chain_began_is_caught(played: list[LedgerEntry], store: MemoryStore) -> None:
    deposit = played[1]
    edit_entry(store, replace(deposit, chain_hash=""))
    assert audit_store(store).violations == [
        f"player p1: entry {deposit.entry_id} has no chain_hash after chained entries"
    ]


def test_a_ledger_from_before_the_chain_is_a_warning(played: list[LedgerEntry], store: MemoryStore) -> None:
    """Entries written before the chain existed have no hash, and their account no head: not proof of anything."""
    for old in played:
        edit_entry(store, replace(old, chain_hash=""))
    account = store.get_account("p1")
    assert account is not None
    edit_account(store, replace(account, chain_head=""))
    report = audit_store(store)
    assert report.violations == []
    assert report.warnings == [f"player p1: 4 entries {UNCHAINED_WARNING}, not chained"]


def test_the_chain_goes_on_after_entries_from_before_it(store: MemoryStore) -> None:
    """An account upgraded in place: its head is "", so the first new entry chains from "" after the old ones."""
    wallet = wallet_on(store)
    wallet.create_player("p1", "FUN", Decimal(1000))
    wallet.deposit("p1", "5", "d-1")
    for old in ledger(store, "p1"):
        edit_entry(store, replace(old, chain_hash=""))
    account = store.get_account("p1")
    assert account is not None
    edit_account(store, replace(account, chain_head=""))
    wallet.deposit("p1", "7", "d-2")
    report = audit_store(store)
    assert report.violations == []
    assert report.warnings == [f"player p1: 2 entries {UNCHAINED_WARNING}, not chained"]
    new = ledger(store, "p1")[-1]
    assert new.chain_hash == chain_hash(replace(new, chain_hash=""), "")
