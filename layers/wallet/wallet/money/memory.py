"""The in-memory twin of the DynamoDB store: the same reads, the same atomic writes and the same outcomes.

For the money rules' tests and the deterministic simulation, where a real table (or moto) would only add time.
tests/contract holds it and wallet.money.dynamodb to one suite, so the two cannot drift apart. Like the table, it
checks a write's conditions and applies all of it or none of it, under one lock.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Iterator
from dataclasses import replace

from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source
from wallet.money.limits import Counters, Limits
from wallet.money.sessions import SessionRecord
from wallet.money.store import (
    AccountNotActive,
    Applied,
    DuplicateEntry,
    InvalidCursor,
    NoSuchAccount,
    SessionOutcome,
    SessionStarted,
    StaleAccount,
    StoreUnavailable,
    WriteOutcome,
)

# (source, trx_id, the player whose own slot it is, or None for the trx_id's first slot): the table's (pk, sk).
Slot = tuple[Source, str, str | None]


def _slot(entry: LedgerEntry) -> Slot:
    return (entry.source, entry.trx_id, entry.player_id if entry.scoped else None)


def _index_key(entry: LedgerEntry) -> str:
    return f"{entry.created_at}#{entry.entry_id}"  # the table's gsi1sk / gsi2sk, so both sort alike


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}
        self._entries: dict[Slot, LedgerEntry] = {}
        self._sessions: dict[tuple[str, str], SessionRecord] = {}
        self.purge_at: dict[tuple[str, str], int] = {}  # what the table's TTL attribute would hold

    # --- reads --------------------------------------------------------------------------------------------------

    def get_account(self, player_id: str) -> Account | None:
        with self._lock:
            return self._accounts.get(player_id)

    def get_account_and_entry(
        self, player_id: str, source: Source, trx_id: str, scoped_to: str | None = None
    ) -> tuple[Account | None, LedgerEntry | None]:
        with self._lock:
            return self._accounts.get(player_id), self._entries.get((source, trx_id, scoped_to))

    def get_session(self, player_id: str, token_hash: str) -> SessionRecord | None:
        with self._lock:
            return self._sessions.get((player_id, token_hash))

    def history(self, player_id: str, limit: int = 100) -> list[LedgerEntry]:
        with self._lock:
            mine = [e for e in self._entries.values() if e.player_id == player_id]
        return sorted(mine, key=_index_key, reverse=True)[:limit]

    def history_page(
        self, player_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        after = _decode_cursor(cursor) if cursor is not None else None
        with self._lock:
            mine = [e for e in self._entries.values() if e.player_id == player_id]
        newest_first = sorted(mine, key=_index_key, reverse=True)
        if after is not None:
            newest_first = [e for e in newest_first if _index_key(e) < after]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        return page, _encode_cursor(_index_key(page[-1])) if more and page else None

    def round_entries(self, game_uuid: str) -> list[LedgerEntry]:
        with self._lock:
            found = [e for e in self._entries.values() if e.game_uuid == game_uuid]
        return sorted(found, key=_index_key)

    def iter_accounts(self) -> Iterator[Account]:
        with self._lock:
            accounts = list(self._accounts.values())
        yield from accounts

    def iter_entries(self) -> Iterator[LedgerEntry]:
        with self._lock:
            entries = list(self._entries.values())
        yield from entries

    # --- writes -------------------------------------------------------------------------------------------------

    def record(
        self,
        entry: LedgerEntry,
        expected: Account,
        new_status: PlayerStatus | None = None,
        *,
        same_session: bool = False,
        counters: Counters | None = None,
        limits: Limits | None = None,
    ) -> WriteOutcome:
        if entry.account_version != expected.version + 1:
            raise ValueError("an entry must produce the version after the one read")
        slot = _slot(entry)
        with self._lock:
            account = self._accounts.get(entry.player_id)
            existing = self._entries.get(slot)
            stale = (
                account is None
                or account.version != expected.version
                or account.balance != entry.balance_before
                or (same_session and (account.session_hash is None or account.session_hash != expected.session_hash))
            )
            # As DynamoDB reports a cancelled transaction: the entry's condition first, the account's item only when
            # its own condition failed.
            if existing is not None:
                return DuplicateEntry(existing, account if stale else None)
            if stale or account is None:
                return StaleAccount(account)
            moved = replace(
                account, balance=entry.balance_after, version=entry.account_version, chain_head=entry.chain_hash
            )
            if counters is not None:
                moved = replace(moved, counters=counters)
            if limits is not None:
                moved = replace(moved, limits=limits)
            if new_status is not None:
                moved = replace(moved, status=new_status)
                if new_status is not PlayerStatus.ACTIVE:
                    moved = replace(moved, session_hash=None, session_expires_at=None)
            self._entries[slot] = entry
            self._accounts[entry.player_id] = moved
            return Applied()

    def create_account(self, account: Account, opening: LedgerEntry | None) -> bool:
        with self._lock:
            if account.player_id in self._accounts:
                return False
            if opening is not None and _slot(opening) in self._entries:
                raise StoreUnavailable("transaction cancelled: ['None', 'ConditionalCheckFailed']")
            self._accounts[account.player_id] = account
            if opening is not None:
                self._entries[_slot(opening)] = opening
            return True

    def start_session(self, session: SessionRecord, purge_at: int) -> SessionOutcome:
        with self._lock:
            account = self._accounts.get(session.player_id)
            if account is None:
                return NoSuchAccount()
            if not account.is_active:
                return AccountNotActive(account.status)
            self._accounts[session.player_id] = replace(
                account, session_hash=session.token_hash, session_expires_at=session.expires_at
            )
            key = (session.player_id, session.token_hash)
            self._sessions[key] = session
            self.purge_at[key] = purge_at
            return SessionStarted()

    def end_session(self, player_id: str) -> bool | None:
        with self._lock:
            account = self._accounts.get(player_id)
            if account is None:
                return None
            self._accounts[player_id] = replace(account, session_hash=None, session_expires_at=None)
            return account.session_hash is not None


def _encode_cursor(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode("utf-8")).decode("ascii").rstrip("=")


# What _encode_cursor wraps: an entry's index key, `<created_at>#<entry_id>`. As the table refuses a cursor that is not
# one of its positions, so does the twin (lenient base64 would turn any text into some position, or into none).
_POSITION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z#(?:game|operator):.+", re.DOTALL)


def _decode_cursor(cursor: str) -> str:
    try:
        position = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidCursor("cursor is not one this ledger gave") from None
    if not _POSITION.fullmatch(position):
        raise InvalidCursor("cursor is not one this ledger gave")
    return position
