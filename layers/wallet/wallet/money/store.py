"""The wallet's store: the interface the use cases depend on, and the typed outcomes of its writes.

Two implementations honour it: `wallet.money.dynamodb.DynamoDBStore` (the table) and `wallet.money.memory.MemoryStore`
(an in-memory twin for the money rules' tests and the simulation). tests/contract holds both to the same suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source
from wallet.money.limits import Counters, Limits
from wallet.money.sessions import SessionRecord


class StoreUnavailable(Exception):
    """The store did not give an answer we can act on (throttled, timed out, unreachable, rejected)."""


@dataclass(frozen=True)
class Applied:
    pass


@dataclass(frozen=True)
class DuplicateEntry:
    """The entry's trx_id is used already. `existing` is the stored entry; `latest` the account if it changed too."""

    existing: LedgerEntry | None
    latest: Account | None


@dataclass(frozen=True)
class StaleAccount:
    """The account changed since it was read (another movement won the race): read again and retry."""

    latest: Account | None


@dataclass(frozen=True)
class Contended:
    """DynamoDB cancelled the transaction because another one touched the same items at that moment."""


WriteOutcome = Applied | DuplicateEntry | StaleAccount | Contended


@dataclass(frozen=True)
class SessionStarted:
    pass


@dataclass(frozen=True)
class NoSuchAccount:
    pass


@dataclass(frozen=True)
class AccountNotActive:
    status: PlayerStatus


SessionOutcome = SessionStarted | NoSuchAccount | AccountNotActive


class InvalidCursor(ValueError):
    """A history cursor that this store did not give out (or for another ledger)."""


class WalletStore(Protocol):
    """Accounts, session records and ledger entries. Every read is strongly consistent; every write is atomic."""

    def get_account(self, player_id: str) -> Account | None: ...

    def get_account_and_entry(
        self, player_id: str, source: Source, trx_id: str, scoped_to: str | None = None
    ) -> tuple[Account | None, LedgerEntry | None]:
        """The account and the entry in the trx_id's first slot (or `scoped_to`'s own slot), read together."""
        ...

    def get_session(self, player_id: str, token_hash: str) -> SessionRecord | None: ...

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
        """Put `entry` if its slot is free and move the account from `expected` (same version and balance, and with
        `same_session` the same live session) to what the entry says (its balance_after, its account_version, and its
        chain_hash as the account's chain_head), atomically; or change nothing and say why.
        The account also takes `new_status`, `counters` and `limits` when they are given, in the same write."""
        ...

    def create_account(self, account: Account, opening: LedgerEntry | None) -> bool:
        """Create the account (its chain_head as given: the opening entry's chain_hash, or "") and the opening entry,
        together, unless the player exists (False)."""
        ...

    def start_session(self, session: SessionRecord, purge_at: int) -> SessionOutcome: ...

    def end_session(self, player_id: str) -> bool | None: ...

    def history(self, player_id: str, limit: int = 100) -> list[LedgerEntry]: ...

    def history_page(
        self, player_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        """Up to `limit` entries, newest first, after `cursor` (opaque, from an earlier page; InvalidCursor if not),
        and the next page's cursor, None at the end."""
        ...

    def round_entries(self, game_uuid: str) -> list[LedgerEntry]: ...

    def iter_accounts(self) -> Iterator[Account]: ...

    def iter_entries(self) -> Iterator[LedgerEntry]: ...
