"""One contract for every WalletStore: the same calls give the same full results on MemoryStore, on DynamoDBStore
over moto and on DynamoDBStore over DynamoDB Local (the `store` fixture, tests/contract/conftest.py).

The in-memory twin runs the money rules' unit tests and the simulation, so whatever it answers differently from the
table is a test that passes for the wrong reason: each outcome of each method is pinned here, as whole objects.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from tests.contract.conftest import stored_purge_at
from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source, canonical_tag, chain_hash
from wallet.money.limits import Counter, Counters, Limit, LimitKind, Limits, Period
from wallet.money.sessions import SessionRecord
from wallet.money.store import (
    AccountNotActive,
    Applied,
    DuplicateEntry,
    InvalidCursor,
    NoSuchAccount,
    SessionStarted,
    StaleAccount,
    StoreUnavailable,
    WalletStore,
)

CREATED = "2026-01-01T00:00:00.000000Z"
# Every kind of value a parsed tag can hold: the table gives them back equal (its numbers come back as Decimal).
TAG = {
    "game": "slot",
    "game_id": "a_op",
    "game_uuid": 778899,
    "nested": [1, {"a": "b"}, []],
    "amount": Decimal("0.5"),
    "flag": True,
    "nothing": None,
    "text": "üñï €",
    "empty": "",
}


def account(player_id: str = "p1", balance: Decimal | int = 1000, **fields: Any) -> Account:
    return Account(player_id, Decimal(balance), "FUN", 0, CREATED, **fields)


def opening(of: Account) -> LedgerEntry:
    return LedgerEntry(
        source=Source.OPERATOR,
        trx_id=f"opening#{of.player_id}",
        player_id=of.player_id,
        minus=Decimal(0),
        plus=of.balance,
        balance_before=Decimal(0),
        balance_after=of.balance,
        currency=of.currency,
        created_at=of.created_at,
        kind="opening",
        tag={"operator": "opening"},
    )


def move(
    read: Account,
    trx_id: str,
    minus: Decimal | int | str = 0,
    plus: Decimal | int | str = 0,
    *,
    source: Source = Source.GAME,
    at: str = "2026-01-01T00:00:01.000000Z",
    game_uuid: str | None = "R-1",
    scoped: bool = False,
    version: int | None = None,
) -> LedgerEntry:
    """The entry that moves `read` by -minus +plus (to the next version unless told otherwise)."""
    minus, plus = Decimal(minus), Decimal(plus)
    return LedgerEntry(
        source=source,
        trx_id=trx_id,
        player_id=read.player_id,
        minus=minus,
        plus=plus,
        balance_before=read.balance,
        balance_after=read.balance - minus + plus,
        currency=read.currency,
        created_at=at,
        kind="bet" if minus else "win",
        game_uuid=game_uuid,
        tag={**TAG, "game_uuid": game_uuid} if game_uuid else {"game": "slot", "game_id": ""},
        fingerprint=f"fp-{trx_id}-{minus}-{plus}",
        account_version=read.version + 1 if version is None else version,
        scoped=scoped,
    )


def moved(read: Account, entry: LedgerEntry, **fields: Any) -> Account:
    """The account as `entry` leaves it."""
    return replace(read, balance=entry.balance_after, version=entry.account_version, **fields)


def session(player_id: str = "p1", token_hash: str = "h1", issued_at: int = 1_800_000_000) -> SessionRecord:  # noqa: S107
    return SessionRecord(player_id, token_hash, issued_at, issued_at + 3600)


def created(store: WalletStore, player_id: str = "p1", balance: int = 1000, **fields: Any) -> Account:
    new = account(player_id, balance, **fields)
    assert store.create_account(new, None) is True
    return new


def by_id(entries: Any) -> list[LedgerEntry]:
    return sorted(entries, key=lambda e: (e.entry_id, e.scoped))


# --- create_account -----------------------------------------------------------------------------------------------


def test_an_empty_store(store: WalletStore) -> None:
    assert store.get_account("p1") is None
    assert store.get_account_and_entry("p1", Source.GAME, "t-1") == (None, None)
    assert store.get_account_and_entry("p1", Source.GAME, "t-1", scoped_to="p1") == (None, None)
    assert store.get_session("p1", "h1") is None
    assert store.history("p1") == []
    assert store.round_entries("R-1") == []
    assert list(store.iter_accounts()) == []
    assert list(store.iter_entries()) == []


def test_create_account_with_an_opening_entry(store: WalletStore) -> None:
    new = account(balance=Decimal("12.5"))
    assert store.create_account(new, opening(new)) is True
    assert store.get_account("p1") == new
    assert store.get_account_and_entry("p1", Source.OPERATOR, "opening#p1") == (new, opening(new))
    assert store.history("p1") == [opening(new)]
    assert list(store.iter_accounts()) == [new]
    assert list(store.iter_entries()) == [opening(new)]


def test_create_account_without_an_opening_entry(store: WalletStore) -> None:
    new = account(balance=0)
    assert store.create_account(new, None) is True
    assert store.get_account("p1") == new
    assert store.history("p1") == []
    assert list(store.iter_entries()) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"status": PlayerStatus.SUSPENDED},
        {"status": PlayerStatus.CLOSED},
        {"session_hash": "h0", "session_expires_at": 1_800_003_600},
    ],
)
def test_create_account_keeps_every_field(store: WalletStore, fields: dict[str, Any]) -> None:
    new = account(balance=Decimal("0.00000001"), **fields)
    assert store.create_account(new, None) is True
    assert store.get_account("p1") == new
    assert list(store.iter_accounts()) == [new]


def test_create_account_refuses_an_existing_player(store: WalletStore) -> None:
    first = account(balance=1000)
    assert store.create_account(first, opening(first)) is True
    again = account(balance=5)
    assert store.create_account(again, opening(again)) is False
    assert store.create_account(again, None) is False
    assert store.get_account("p1") == first
    assert list(store.iter_entries()) == [opening(first)]


def test_create_account_whose_opening_slot_is_taken_writes_nothing(store: WalletStore) -> None:
    """A new player, but its opening entry's key exists (it cannot happen through the wallet: the key names the
    player). The write fails as a whole and it is not a "player exists"."""
    p1 = account("p1")
    assert store.create_account(p1, opening(p1)) is True
    p2 = account("p2")
    with pytest.raises(StoreUnavailable):
        store.create_account(p2, replace(opening(p2), trx_id="opening#p1", player_id="p2"))
    assert store.get_account("p2") is None
    assert list(store.iter_entries()) == [opening(p1)]


# --- record: Applied ----------------------------------------------------------------------------------------------


def test_record_applies_the_entry_and_the_account_together(store: WalletStore) -> None:
    read = created(store)
    bet = move(read, "t-1", "12.5")
    assert store.record(bet, read) == Applied()
    after = moved(read, bet)
    assert after == Account("p1", Decimal("987.5"), "FUN", 1, CREATED)
    assert store.get_account("p1") == after
    assert store.get_account_and_entry("p1", Source.GAME, "t-1") == (after, bet)
    assert store.history("p1") == [bet]

    win = move(after, "t-2", 0, "0.75", at="2026-01-01T00:00:02.000000Z")
    assert store.record(win, after) == Applied()
    assert store.get_account_and_entry("p1", Source.GAME, "t-2") == (moved(after, win), win)
    assert store.get_account("p1") == Account("p1", Decimal("988.25"), "FUN", 2, CREATED)


def test_an_entry_without_a_round_or_tag(store: WalletStore) -> None:
    read = created(store)
    bare = replace(move(read, "t-1", 1, game_uuid=None), tag={}, fingerprint="")
    assert store.record(bare, read) == Applied()
    assert store.get_account_and_entry("p1", Source.GAME, "t-1")[1] == bare
    assert store.round_entries("R-1") == []


def test_game_and_operator_keys_are_separate_slots(store: WalletStore) -> None:
    read = created(store)
    game = move(read, "k-1", 100)
    assert store.record(game, read) == Applied()
    after = moved(read, game)
    deposit = replace(move(after, "k-1", 0, 10, source=Source.OPERATOR, game_uuid=None), kind="deposit")
    assert store.record(deposit, after) == Applied()
    assert store.get_account_and_entry("p1", Source.GAME, "k-1")[1] == game
    assert store.get_account_and_entry("p1", Source.OPERATOR, "k-1")[1] == deposit
    assert store.get_account("p1") == moved(after, deposit)


@pytest.mark.parametrize("version", [0, 2, 5])
def test_record_refuses_an_entry_that_skips_or_repeats_a_version(store: WalletStore, version: int) -> None:
    read = created(store)
    with pytest.raises(ValueError, match="version after the one read"):
        store.record(move(read, "t-1", 1, version=version), read)
    assert store.get_account("p1") == read
    assert list(store.iter_entries()) == []


# --- record: the entry's slot is taken ----------------------------------------------------------------------------


def test_a_taken_slot_with_the_account_unchanged_is_a_duplicate_without_latest(store: WalletStore) -> None:
    read = created(store)
    first = move(read, "t-1", 100)
    assert store.record(first, read) == Applied()
    after = moved(read, first)
    twin = move(after, "t-1", 500)  # read after the first write: the account's guard holds, the entry's does not
    assert store.record(twin, after) == DuplicateEntry(first, None)
    assert store.get_account_and_entry("p1", Source.GAME, "t-1") == (after, first)


def test_a_taken_slot_with_the_account_changed_too_is_a_duplicate_with_latest(store: WalletStore) -> None:
    read = created(store)
    first = move(read, "t-1", 100)
    assert store.record(first, read) == Applied()
    after = moved(read, first)
    # A twin that read the account before the first write: both guards fail, and the account comes back.
    assert store.record(move(read, "t-1", 100), read) == DuplicateEntry(first, after)
    # The same when only the balance differs from what the entry starts from.
    wrong_balance = replace(move(after, "t-1", 100), balance_before=Decimal(1), balance_after=Decimal(0))
    assert store.record(wrong_balance, after) == DuplicateEntry(first, after)
    assert store.get_account("p1") == after
    assert list(store.iter_entries()) == [first]


def test_a_taken_slot_of_a_missing_account_is_a_duplicate_without_latest(store: WalletStore) -> None:
    read = created(store)
    first = move(read, "t-1", 100)
    assert store.record(first, read) == Applied()
    ghost = account("ghost")
    assert store.record(move(ghost, "t-1", 1), ghost) == DuplicateEntry(first, None)
    assert store.get_account("ghost") is None


# --- record: the account changed ----------------------------------------------------------------------------------


def test_a_version_that_moved_on_is_stale_with_the_latest_account(store: WalletStore) -> None:
    read = created(store)
    winner = move(read, "a", 10)
    assert store.record(winner, read) == Applied()
    latest = moved(read, winner)
    assert store.record(move(read, "b", 10), read) == StaleAccount(latest)
    assert store.get_account_and_entry("p1", Source.GAME, "b") == (latest, None)
    assert list(store.iter_entries()) == [winner]


def test_a_balance_that_differs_is_stale_with_the_latest_account(store: WalletStore) -> None:
    read = created(store)
    not_what_was_read = replace(read, balance=Decimal(999))
    assert store.record(move(not_what_was_read, "b", 10), not_what_was_read) == StaleAccount(read)
    assert store.get_account("p1") == read
    assert list(store.iter_entries()) == []


def test_a_missing_account_is_stale_without_latest(store: WalletStore) -> None:
    ghost = account("ghost")
    assert store.record(move(ghost, "t-1", 1), ghost) == StaleAccount(None)
    assert store.get_account_and_entry("ghost", Source.GAME, "t-1") == (None, None)
    assert list(store.iter_accounts()) == []
    assert list(store.iter_entries()) == []


# --- record: the same live session (a debit) ----------------------------------------------------------------------


def _live(store: WalletStore, token_hash: str = "h1") -> Account:  # noqa: S107
    """p1 with 1000 FUN and a live session, as read before a debit."""
    if store.get_account("p1") is None:
        created(store)
    assert store.start_session(session(token_hash=token_hash), purge_at=1_800_200_000) == SessionStarted()
    read = store.get_account("p1")
    assert read is not None and read.session_hash == token_hash
    return read


def test_a_debit_on_the_session_still_live_is_applied(store: WalletStore) -> None:
    read = _live(store)
    bet = move(read, "t-1", 100)
    assert store.record(bet, read, same_session=True) == Applied()
    assert store.get_account_and_entry("p1", Source.GAME, "t-1") == (moved(read, bet), bet)


def test_a_debit_after_a_new_session_is_stale_with_the_latest_account(store: WalletStore) -> None:
    read = _live(store, "h1")
    latest = _live(store, "h2")  # the version did not move: only the session guard can refuse the debit
    assert latest == replace(read, session_hash="h2")
    assert store.record(move(read, "t-1", 100), read, same_session=True) == StaleAccount(latest)
    assert store.get_account_and_entry("p1", Source.GAME, "t-1") == (latest, None)
    # Without the session guard (a credit) the same write goes through.
    credit = move(read, "t-2", 0, 100)
    assert store.record(credit, read) == Applied()
    assert store.get_account("p1") == moved(latest, credit)


def test_a_debit_after_the_session_ended_is_stale_with_the_latest_account(store: WalletStore) -> None:
    read = _live(store)
    assert store.end_session("p1") is True
    latest = replace(read, session_hash=None, session_expires_at=None)
    assert store.record(move(read, "t-1", 100), read, same_session=True) == StaleAccount(latest)
    assert store.get_account("p1") == latest
    assert list(store.iter_entries()) == []


def test_a_debit_read_without_a_session_is_stale(store: WalletStore) -> None:
    read = created(store)  # no session at all: the guard cannot hold
    assert store.record(move(read, "t-1", 100), read, same_session=True) == StaleAccount(read)
    live = _live(store)
    assert store.record(move(read, "t-1", 100), read, same_session=True) == StaleAccount(live)
    assert list(store.iter_entries()) == []


def test_a_debit_whose_slot_is_taken_after_a_new_session_is_a_duplicate_with_latest(store: WalletStore) -> None:
    read = _live(store, "h1")
    first = move(read, "t-1", 100)
    assert store.record(first, read, same_session=True) == Applied()
    after = moved(read, first)
    assert store.record(move(after, "t-1", 100), after, same_session=True) == DuplicateEntry(first, None)
    latest = _live(store, "h2")
    assert store.record(move(after, "t-1", 100), after, same_session=True) == DuplicateEntry(first, latest)


# --- record: a status change --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [PlayerStatus.SUSPENDED, PlayerStatus.SELF_EXCLUDED, PlayerStatus.CLOSED])
def test_a_status_that_is_not_active_ends_the_live_session(store: WalletStore, status: PlayerStatus) -> None:
    created(store)
    assert store.start_session(session(), purge_at=1_800_200_000) == SessionStarted()
    read = store.get_account("p1")
    assert read == account(session_hash="h1", session_expires_at=1_800_003_600)
    change = replace(move(read, "status-1", source=Source.OPERATOR, game_uuid=None), kind="status")
    assert store.record(change, read, new_status=status) == Applied()
    assert store.get_account("p1") == moved(read, change, status=status, session_hash=None, session_expires_at=None)
    assert store.get_session("p1", "h1") == session()  # the record stays: money owed on it still lands


def test_an_active_status_keeps_the_live_session(store: WalletStore) -> None:
    created(store)
    assert store.start_session(session(), purge_at=1_800_200_000) == SessionStarted()
    read = store.get_account("p1")
    assert read is not None
    change = replace(move(read, "status-1", source=Source.OPERATOR, game_uuid=None), kind="status")
    assert store.record(change, read, new_status=PlayerStatus.ACTIVE) == Applied()
    assert store.get_account("p1") == moved(read, change)
    assert store.get_account("p1").session_hash == "h1"  # type: ignore[union-attr]


def test_reactivation_sets_the_status_back(store: WalletStore) -> None:
    read = created(store, status=PlayerStatus.SUSPENDED)
    change = replace(move(read, "status-1", source=Source.OPERATOR, game_uuid=None), kind="status")
    assert store.record(change, read, new_status=PlayerStatus.ACTIVE) == Applied()
    assert store.get_account("p1") == moved(read, change, status=PlayerStatus.ACTIVE)


def test_without_a_status_the_status_is_left_alone(store: WalletStore) -> None:
    read = created(store, status=PlayerStatus.CLOSED)
    withdrawal = move(read, "wd-1", 10, source=Source.OPERATOR, game_uuid=None)
    assert store.record(withdrawal, read) == Applied()
    assert store.get_account("p1") == moved(read, withdrawal)
    assert store.get_account("p1").status is PlayerStatus.CLOSED  # type: ignore[union-attr]


def test_a_refused_status_change_changes_nothing(store: WalletStore) -> None:
    created(store)
    assert store.start_session(session(), purge_at=1_800_200_000) == SessionStarted()
    live = store.get_account("p1")
    assert live is not None
    stale = replace(live, version=7)
    change = replace(move(stale, "status-1", source=Source.OPERATOR, game_uuid=None), kind="status")
    assert store.record(change, stale, new_status=PlayerStatus.CLOSED) == StaleAccount(live)
    assert store.get_account("p1") == live


# --- the scoped slot: another player's game trx_id ----------------------------------------------------------------


def test_a_scoped_entry_has_its_own_slot(store: WalletStore) -> None:
    p1 = created(store, "p1")
    p2 = created(store, "p2", 500)
    first = move(p1, "shared", 100)
    assert store.record(first, p1) == Applied()
    # p2 reads the key's first slot: p1's entry. Its own transaction goes to p2's slot under the same key.
    assert store.get_account_and_entry("p2", Source.GAME, "shared") == (p2, first)
    assert store.get_account_and_entry("p2", Source.GAME, "shared", scoped_to="p2") == (p2, None)
    own = move(p2, "shared", 100, scoped=True, game_uuid="R-2")
    assert store.record(own, p2) == Applied()
    p2_after = moved(p2, own)
    assert store.get_account_and_entry("p2", Source.GAME, "shared", scoped_to="p2") == (p2_after, own)
    assert store.get_account_and_entry("p2", Source.GAME, "shared") == (p2_after, first)
    assert store.get_account_and_entry("p1", Source.GAME, "shared", scoped_to="p1") == (moved(p1, first), None)
    assert store.get_account_and_entry("p3", Source.GAME, "shared", scoped_to="p3") == (None, None)
    assert store.history("p2") == [own]
    assert store.history("p1") == [first]
    assert store.round_entries("R-2") == [own]
    assert by_id(store.iter_entries()) == [first, own]  # game:p1:shared, game:p2:shared


def test_a_scoped_slot_taken_is_a_duplicate(store: WalletStore) -> None:
    p1 = created(store, "p1")
    p2 = created(store, "p2", 500)
    assert store.record(move(p1, "shared", 100), p1) == Applied()
    own = move(p2, "shared", 100, scoped=True)
    assert store.record(own, p2) == Applied()
    p2_after = moved(p2, own)
    assert store.record(move(p2_after, "shared", 7, scoped=True), p2_after) == DuplicateEntry(own, None)
    assert store.record(move(p2, "shared", 100, scoped=True), p2) == DuplicateEntry(own, p2_after)
    assert store.get_account("p2") == p2_after


def test_a_scoped_slot_is_per_player(store: WalletStore) -> None:
    players = [created(store, p, 100) for p in ("p1", "p2", "p3")]
    entries = [move(players[0], "1", 10)] + [move(p, "1", 10, scoped=True) for p in players[1:]]
    for read, entry in zip(players, entries, strict=True):
        assert store.record(entry, read) == Applied()
    for read, entry in zip(players[1:], entries[1:], strict=True):
        assert store.get_account_and_entry(read.player_id, Source.GAME, "1", scoped_to=read.player_id) == (
            moved(read, entry),
            entry,
        )
    assert by_id(store.iter_entries()) == entries
    assert by_id(store.round_entries("R-1")) == entries


# --- sessions -----------------------------------------------------------------------------------------------------


def test_start_session(store: WalletStore) -> None:
    new = created(store)
    assert store.start_session(session(), purge_at=1_800_200_000) == SessionStarted()
    assert store.get_account("p1") == replace(new, session_hash="h1", session_expires_at=1_800_003_600)
    assert store.get_session("p1", "h1") == session()
    assert stored_purge_at(store, "p1", "h1") == 1_800_200_000
    assert store.get_session("p1", "h2") is None
    assert store.get_session("p2", "h1") is None
    assert list(store.iter_accounts()) == [store.get_account("p1")]  # a session record is not an account


def test_a_new_session_replaces_the_live_one_and_keeps_the_old_record(store: WalletStore) -> None:
    new = created(store)
    assert store.start_session(session(token_hash="h1"), purge_at=1_800_200_000) == SessionStarted()
    later = session(token_hash="h2", issued_at=1_800_001_000)
    assert store.start_session(later, purge_at=1_800_201_000) == SessionStarted()
    assert store.get_account("p1") == replace(new, session_hash="h2", session_expires_at=1_800_004_600)
    assert store.get_session("p1", "h1") == session(token_hash="h1")
    assert store.get_session("p1", "h2") == later
    assert (stored_purge_at(store, "p1", "h1"), stored_purge_at(store, "p1", "h2")) == (1_800_200_000, 1_800_201_000)


def test_starting_the_same_session_again_overwrites_its_record(store: WalletStore) -> None:
    created(store)
    assert store.start_session(session(), purge_at=1_800_200_000) == SessionStarted()
    again = SessionRecord("p1", "h1", 1_800_000_500, 1_800_004_100)
    assert store.start_session(again, purge_at=1_800_300_000) == SessionStarted()
    assert store.get_session("p1", "h1") == again
    assert stored_purge_at(store, "p1", "h1") == 1_800_300_000


def test_a_session_for_a_missing_account(store: WalletStore) -> None:
    assert store.start_session(session("ghost"), purge_at=1_800_200_000) == NoSuchAccount()
    assert store.get_account("ghost") is None
    assert store.get_session("ghost", "h1") is None
    assert list(store.iter_accounts()) == []


@pytest.mark.parametrize("status", [PlayerStatus.SUSPENDED, PlayerStatus.SELF_EXCLUDED, PlayerStatus.CLOSED])
def test_a_session_for_an_account_that_is_not_active(store: WalletStore, status: PlayerStatus) -> None:
    new = created(store, status=status)
    assert store.start_session(session(), purge_at=1_800_200_000) == AccountNotActive(status)
    assert store.get_account("p1") == new
    assert store.get_session("p1", "h1") is None


def test_a_session_after_a_status_change(store: WalletStore) -> None:
    read = created(store)
    change = replace(move(read, "status-1", source=Source.OPERATOR, game_uuid=None), kind="status")
    assert store.record(change, read, new_status=PlayerStatus.SELF_EXCLUDED) == Applied()
    assert store.start_session(session(), purge_at=1_800_200_000) == AccountNotActive(PlayerStatus.SELF_EXCLUDED)


def test_end_session(store: WalletStore) -> None:
    new = created(store)
    assert store.end_session("p1") is False  # nothing live yet
    assert store.start_session(session(), purge_at=1_800_200_000) == SessionStarted()
    assert store.end_session("p1") is True
    assert store.get_account("p1") == new
    assert store.end_session("p1") is False
    assert store.get_session("p1", "h1") == session()  # the record stays for the grace period
    assert store.end_session("ghost") is None
    assert store.get_account("ghost") is None


def test_end_session_leaves_the_money_alone(store: WalletStore) -> None:
    read = created(store)
    bet = move(read, "t-1", 100)
    assert store.record(bet, read) == Applied()
    assert store.start_session(session(), purge_at=1_800_200_000) == SessionStarted()
    assert store.end_session("p1") is True
    assert store.get_account("p1") == moved(read, bet)


# --- history, rounds, scans ---------------------------------------------------------------------------------------


def _play(store: WalletStore) -> list[LedgerEntry]:
    """p1: an opening, then six movements one second apart across two rounds (and one without); p2 one in R-A."""
    p1 = account("p1")
    assert store.create_account(p1, opening(p1)) is True
    p2 = created(store, "p2", 50)
    steps = [("g-1", 100, 0, "R-A"), ("g-2", 0, 40, "R-A"), ("g-3", "0.25", 0, "R-B"), ("g-4", 0, "0.75", "R-B")]
    made = [opening(p1)]
    read = p1
    for second, (key, minus, plus, round_) in enumerate(steps, start=1):
        entry = move(read, key, minus, plus, at=f"2026-01-01T00:00:{second:02d}.000000Z", game_uuid=round_)
        assert store.record(entry, read) == Applied()
        made.append(entry)
        read = moved(read, entry)
    deposit = replace(
        move(read, "dep-1", 0, 10, source=Source.OPERATOR, at="2026-01-01T00:00:05.000000Z", game_uuid=None),
        kind="deposit",
    )
    assert store.record(deposit, read) == Applied()
    made.append(deposit)
    theirs = move(p2, "g-9", 5, at="2026-01-01T00:00:03.500000Z", game_uuid="R-A")
    assert store.record(theirs, p2) == Applied()
    made.append(theirs)
    return made


def test_history_is_newest_first_and_limited(store: WalletStore) -> None:
    opening_, g1, g2, g3, g4, deposit, theirs = _play(store)
    assert store.history("p1") == [deposit, g4, g3, g2, g1, opening_]
    assert store.history("p1", limit=2) == [deposit, g4]
    assert store.history("p1", limit=1) == [deposit]
    assert store.history("p1", limit=100) == [deposit, g4, g3, g2, g1, opening_]
    assert store.history("p2") == [theirs]
    assert store.history("ghost") == []


def test_history_orders_entries_of_the_same_time_by_their_id(store: WalletStore) -> None:
    read = created(store)
    same_time = "2026-01-01T00:00:01.000000Z"
    first = move(read, "b", 1, at=same_time)
    assert store.record(first, read) == Applied()
    second = move(moved(read, first), "a", 1, at=same_time)
    assert store.record(second, moved(read, first)) == Applied()
    assert store.history("p1") == [first, second]  # game:p1:b > game:p1:a


def test_history_of_many_entries(store: WalletStore) -> None:
    read = created(store)
    made = []
    for i in range(30):
        entry = move(read, f"t-{i:02d}", 1, at=f"2026-01-01T00:00:{i:02d}.000000Z", game_uuid=None)
        assert store.record(entry, read) == Applied()
        made.append(entry)
        read = moved(read, entry)
    assert store.history("p1") == made[::-1]
    assert store.history("p1", limit=25) == made[::-1][:25]


def test_round_entries_are_oldest_first(store: WalletStore) -> None:
    _, g1, g2, g3, g4, _, theirs = _play(store)
    assert store.round_entries("R-A") == [g1, g2, theirs]
    assert store.round_entries("R-B") == [g3, g4]
    assert store.round_entries("R-none") == []


def test_iter_accounts_and_iter_entries_see_everything(store: WalletStore) -> None:
    made = _play(store)
    assert store.start_session(session("p2"), purge_at=1_800_200_000) == SessionStarted()
    p2 = store.get_account("p2")
    assert sorted(store.iter_accounts(), key=lambda a: a.player_id) == [store.get_account("p1"), p2]
    assert p2 is not None and p2.session_hash == "h1"
    assert by_id(store.iter_entries()) == by_id(made)


# --- counters and limits: written by record(), in the movement's own write ---------------------------------------

LOSS, WAGER, DEPOSIT = LimitKind.LOSS, LimitKind.WAGER, LimitKind.DEPOSIT
DAY, WEEK, MONTH = Period.DAY, Period.WEEK, Period.MONTH
# Every slot, with every kind of amount a counter holds: whole, fractional, negative (a loss while ahead), zero.
COUNTERS = Counters(
    {
        (WAGER, DAY): Counter("2026-01-01", Decimal("12.5")),
        (WAGER, WEEK): Counter("2026-W01", Decimal(1_000_000_000_000_000)),
        (WAGER, MONTH): Counter("2026-01", Decimal("0.00000001")),
        (LOSS, DAY): Counter("2026-01-01", Decimal("-7.25")),
        (LOSS, WEEK): Counter("2025-W53", Decimal(0)),  # an earlier period's, kept as written
        (LOSS, MONTH): Counter("2026-01", Decimal(-1000)),
        (DEPOSIT, DAY): Counter("2026-01-01", Decimal(100)),
        (DEPOSIT, WEEK): Counter("2026-W01", Decimal("99.99999999")),
        (DEPOSIT, MONTH): Counter("2025-12", Decimal(3)),
    }
)
# In force, a pending raise, a pending removal, a zero limit, fractions.
LIMITS = Limits(
    {
        (LOSS, DAY): Limit(Decimal(100)),
        (LOSS, WEEK): Limit(Decimal(500), Decimal(700), 1_800_086_400),
        (WAGER, MONTH): Limit(Decimal("12.5"), None, 1_800_086_401),
        (DEPOSIT, DAY): Limit(Decimal(0)),
        (DEPOSIT, MONTH): Limit(Decimal("0.00000001"), Decimal("1000000000000000"), 1_900_000_000),
    }
)


def test_counters_and_limits_written_by_record_read_back_identically(store: WalletStore) -> None:
    read = created(store)
    bet = move(read, "t-1", "12.5")
    assert store.record(bet, read, counters=COUNTERS, limits=LIMITS) == Applied()
    after = moved(read, bet, counters=COUNTERS, limits=LIMITS)
    assert store.get_account("p1") == after
    assert store.get_account_and_entry("p1", Source.GAME, "t-1") == (after, bet)
    assert list(store.iter_accounts()) == [after]
    stored = store.get_account("p1")
    assert stored is not None
    assert stored.counters.by_slot == COUNTERS.by_slot  # every slot, in its period, to the last digit
    assert stored.limits.by_slot == LIMITS.by_slot


def test_counters_or_limits_alone_leave_the_other_alone(store: WalletStore) -> None:
    read = created(store)
    first = move(read, "t-1", 1)
    assert store.record(first, read, counters=COUNTERS, limits=LIMITS) == Applied()
    read = moved(read, first, counters=COUNTERS, limits=LIMITS)

    counters = Counters({(WAGER, DAY): Counter("2026-01-02", Decimal(1))})
    second = move(read, "t-2", 1)
    assert store.record(second, read, counters=counters) == Applied()  # the limits are not given: kept
    read = moved(read, second, counters=counters)
    assert store.get_account("p1") == read
    assert read.limits == LIMITS

    limits = Limits({(WAGER, WEEK): Limit(Decimal(5))})
    status = replace(move(read, "limits#p1#1", source=Source.OPERATOR, game_uuid=None), kind="limits")
    assert store.record(status, read, limits=limits) == Applied()  # the counters are not given: kept
    read = moved(read, status, limits=limits)
    assert store.get_account("p1") == read
    assert read.counters == counters

    third = move(read, "t-3", 1)
    assert store.record(third, read) == Applied()  # neither: both kept
    read = moved(read, third)
    assert store.get_account("p1") == read
    assert (read.counters, read.limits) == (counters, limits)


def test_every_limit_removed_reads_back_as_no_limits(store: WalletStore) -> None:
    read = created(store)
    first = move(read, "t-1", 1)
    assert store.record(first, read, limits=LIMITS) == Applied()
    read = moved(read, first, limits=LIMITS)
    second = move(read, "t-2", 1)
    assert store.record(second, read, counters=Counters(), limits=Limits()) == Applied()
    assert store.get_account("p1") == moved(read, second, counters=Counters(), limits=Limits())


def test_counters_and_limits_move_with_a_status_change(store: WalletStore) -> None:
    read = _live(store)
    change = replace(move(read, "status#p1#1", source=Source.OPERATOR, game_uuid=None), kind="status")
    assert store.record(change, read, PlayerStatus.SUSPENDED, counters=COUNTERS, limits=LIMITS) == Applied()
    assert store.get_account("p1") == moved(
        read,
        change,
        status=PlayerStatus.SUSPENDED,
        session_hash=None,
        session_expires_at=None,
        counters=COUNTERS,
        limits=LIMITS,
    )


def test_a_refused_record_writes_neither_counters_nor_limits(store: WalletStore) -> None:
    read = created(store)
    first = move(read, "t-1", 1)
    assert store.record(first, read) == Applied()
    now = moved(read, first)
    # Stale (the version moved on), and a duplicate (the slot is taken): nothing of either is written.
    stale = move(read, "t-2", 1)
    assert store.record(stale, read, counters=COUNTERS, limits=LIMITS) == StaleAccount(now)
    twin = move(now, "t-1", 1)
    assert store.record(twin, now, counters=COUNTERS, limits=LIMITS) == DuplicateEntry(first, None)
    assert store.get_account("p1") == now
    assert (now.counters, now.limits) == (Counters(), Limits())


def test_a_stale_record_hands_back_the_latest_counters_and_limits(store: WalletStore) -> None:
    read = created(store)
    first = move(read, "t-1", 1)
    assert store.record(first, read, counters=COUNTERS, limits=LIMITS) == Applied()
    latest = moved(read, first, counters=COUNTERS, limits=LIMITS)
    assert store.record(move(read, "t-2", 1), read) == StaleAccount(latest)
    assert store.record(move(read, "t-1", 1), read) == DuplicateEntry(first, latest)


# --- history pages ---------------------------------------------------------------------------------------------------


def _walk(store: WalletStore, player_id: str, limit: int) -> tuple[list[LedgerEntry], list[int]]:
    """Every page from the first to the one without a next cursor: the entries, and each page's size."""
    walked: list[LedgerEntry] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(1000):
        page, cursor = store.history_page(player_id, limit, cursor)
        walked.extend(page)
        sizes.append(len(page))
        if cursor is None:
            return walked, sizes
        assert len(page) == limit
    raise AssertionError("history pages never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 6, 7, 100])
def test_history_pages_walk_every_entry_once_newest_first(store: WalletStore, limit: int) -> None:
    opening_, g1, g2, g3, g4, deposit, theirs = _play(store)
    newest_first = [deposit, g4, g3, g2, g1, opening_]
    walked, sizes = _walk(store, "p1", limit)
    assert walked == newest_first
    assert sizes == [min(limit, 6 - start) for start in range(0, 6, limit)]  # no empty page at the end
    assert _walk(store, "p2", limit) == ([theirs], [1])


def test_history_pages_of_entries_at_the_same_time(store: WalletStore) -> None:
    read = created(store)
    same_time = "2026-01-01T00:00:01.000000Z"
    made = []
    for key in ("b", "a", "c", "a2"):
        entry = move(read, key, 1, at=same_time)
        assert store.record(entry, read) == Applied()
        made.append(entry)
        read = moved(read, entry)
    walked, _ = _walk(store, "p1", 1)
    assert walked == store.history("p1")
    assert by_id(walked) == by_id(made)


def test_history_pages_of_many_entries(store: WalletStore) -> None:
    read = created(store)
    made = []
    for i in range(30):
        entry = move(read, f"t-{i:02d}", 1, at=f"2026-01-01T00:00:{i:02d}.000000Z", game_uuid=None)
        assert store.record(entry, read) == Applied()
        made.append(entry)
        read = moved(read, entry)
    assert _walk(store, "p1", 7) == (made[::-1], [7, 7, 7, 7, 2])
    assert _walk(store, "p1", 30) == (made[::-1], [30])
    page, cursor = store.history_page("p1", 29)
    assert (page, store.history_page("p1", 29, cursor)) == (made[::-1][:29], ([made[0]], None))


def test_history_pages_of_nobody(store: WalletStore) -> None:
    assert store.history_page("ghost", 10) == ([], None)
    created(store)
    assert store.history_page("p1", 10) == ([], None)


def test_a_cursor_from_another_players_ledger_opens_only_this_players(store: WalletStore) -> None:
    _play(store)
    _, cursor = store.history_page("p1", 2)
    assert cursor is not None
    try:
        page, _ = store.history_page("p2", 100, cursor)
    except InvalidCursor:
        return
    assert all(entry.player_id == "p2" for entry in page)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("!!!", id="not-base64"),
        pytest.param("not-a-cursor", id="words"),
        pytest.param("a", id="one-character"),
        pytest.param("A" * 2048, id="zero-bytes"),
        pytest.param(_b64(b"\xff\xfe\xfd"), id="not-utf8"),
        pytest.param(_b64(b"garbage"), id="not-a-position"),
        pytest.param(_b64(b'{"pk": "ENTRY#game:p1:g-1"}'), id="half-a-position"),
        pytest.param(_b64(b"[1, 2, 3]"), id="a-list"),
    ],
)
def test_an_invalid_cursor_raises_invalid_cursor(store: WalletStore, cursor: str) -> None:
    _play(store)
    with pytest.raises(InvalidCursor):
        store.history_page("p1", 2, cursor)


# --- the chain: hashes and the head, through each store's round trip ------------------------------------------------

# What the table hands back differs from what was written (every number a Decimal, "1.50" as 1.5, map keys in an
# order of its own): the chain hashes the canonical tag, so the entry read back must hash the same.
CHAIN_TAG = {
    **TAG,
    "amounts": [Decimal("1.50"), Decimal("100.00"), Decimal("1E+2"), Decimal("-0.25"), 10**20, 0],
    "ключ": {"z": [{"y": Decimal("0.00000001")}], "a": "日本 \U0001f600"},
}


def chained(entry: LedgerEntry, previous: str) -> LedgerEntry:
    return replace(entry, chain_hash=chain_hash(entry, previous))


def rehashed(entry: LedgerEntry, previous: str) -> str:
    """The hash of an entry as read back, recomputed (what the audit does)."""
    return chain_hash(replace(entry, chain_hash=""), previous)


def test_the_chain_survives_the_round_trip(store: WalletStore) -> None:
    new = account(balance=Decimal("12.5"))
    first = chained(replace(opening(new), tag=CHAIN_TAG), "")
    new = replace(new, chain_head=first.chain_hash)
    assert store.create_account(new, first) is True
    assert store.get_account("p1") == new
    read = store.get_account("p1")
    assert read is not None and read.chain_head == first.chain_hash

    bet = chained(replace(move(read, "t-1", "2.5"), tag={**CHAIN_TAG, "game_uuid": "R-1"}), read.chain_head)
    assert store.record(bet, read) == Applied()
    after = moved(read, bet, chain_head=bet.chain_hash)
    win = chained(move(after, "t-2", 0, "0.75", at="2026-01-01T00:00:02.000000Z"), after.chain_head)
    assert store.record(win, after) == Applied()
    last = moved(after, win, chain_head=win.chain_hash)
    assert store.get_account("p1") == last
    assert list(store.iter_accounts()) == [last]

    written = [first, bet, win]
    for found in (
        sorted(store.history("p1"), key=lambda e: e.account_version),
        sorted(store.iter_entries(), key=lambda e: e.account_version),
        [first, *store.round_entries("R-1")],
        [store.get_account_and_entry("p1", e.source, e.trx_id)[1] for e in written],
    ):
        assert [e.chain_hash if e else None for e in found] == [e.chain_hash for e in written]
        previous = ""
        for entry in found:
            assert entry is not None
            assert rehashed(entry, previous) == entry.chain_hash, entry.entry_id
            assert canonical_tag(entry.tag) == canonical_tag(written[entry.account_version].tag)
            previous = entry.chain_hash
    assert store.get_account_and_entry("p1", Source.GAME, "t-2") == (last, win)


def test_the_head_is_the_last_entry_s_hash(store: WalletStore) -> None:
    read = created(store)
    assert read.chain_head == ""
    bet = chained(move(read, "t-1", 1), "")
    assert store.record(bet, read) == Applied()
    assert store.get_account("p1") == moved(read, bet, chain_head=bet.chain_hash)


def test_a_refused_write_reports_the_chain_as_stored(store: WalletStore) -> None:
    """The account and the entry a cancelled write hands back carry their hashes (the mover chains a retry to it)."""
    read = created(store)
    bet = chained(move(read, "t-1", 1), "")
    assert store.record(bet, read) == Applied()
    latest = moved(read, bet, chain_head=bet.chain_hash)
    assert store.record(chained(move(read, "t-2", 1), ""), read) == StaleAccount(latest)
    assert store.record(chained(move(read, "t-1", 1), ""), read) == DuplicateEntry(bet, latest)


def test_entries_and_accounts_from_before_the_chain_read_as_unchained(store: WalletStore) -> None:
    new = account(balance=Decimal(5))
    assert store.create_account(new, opening(new)) is True
    assert store.get_account("p1") == new
    assert store.get_account("p1").chain_head == ""  # type: ignore[union-attr]
    assert [e.chain_hash for e in store.iter_entries()] == [""]
