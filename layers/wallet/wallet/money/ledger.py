"""What the wallet stores: an account per player and one ledger entry per accepted money movement."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from wallet.money.amounts import format_number
from wallet.money.limits import Counters, Limits


class Source(StrEnum):
    """Who asked for the movement; each source has its own idempotency-key namespace."""

    GAME = "game"  # the provider's Games Server, keyed by the player and its trx_id
    OPERATOR = "operator"  # deposits, withdrawals, opening balances and status changes, keyed by a global reference


class PlayerStatus(StrEnum):
    """Set by the operator. Only an active player gets new sessions and can be debited by a game."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    SELF_EXCLUDED = "self_excluded"
    CLOSED = "closed"


@dataclass(frozen=True)
class Account:
    player_id: str
    balance: Decimal
    currency: str
    version: int
    created_at: str
    session_hash: str | None = None
    session_expires_at: int | None = None
    status: PlayerStatus = PlayerStatus.ACTIVE
    limits: Limits = field(default_factory=Limits)
    counters: Counters = field(default_factory=Counters)
    # The chain_hash of the entry that produced this version ("" before the first chained entry): written in the same
    # transaction as the entry, so the audit can tell a rewritten or removed last entry from an honest ledger.
    chain_head: str = ""

    @property
    def is_active(self) -> bool:
        return self.status is PlayerStatus.ACTIVE


@dataclass(frozen=True)
class LedgerEntry:
    source: Source
    trx_id: str  # the idempotency key: the game's trx_id, or the operator's reference
    player_id: str
    minus: Decimal
    plus: Decimal
    balance_before: Decimal
    balance_after: Decimal
    currency: str
    created_at: str
    kind: str
    game_uuid: str | None = None
    tag: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    # The account version this entry produced: per player the entries' versions run 1, 2, 3... with no gap, so a
    # lost or doubled write shows as a break in the chain (see wallet.audit).
    account_version: int = 0
    # A game trx_id that another player had used first: this player's own transaction, stored in its own slot
    # (see PROTOCOL.md, "a trx_id per player").
    scoped: bool = False
    # sha256 of this entry's content and the player's previous entry's chain_hash (chain_hash() below): an entry
    # edited in place no longer matches it, and rehashing it breaks the next entry's. "" on entries from before it.
    chain_hash: str = ""

    @property
    def entry_id(self) -> str:
        """Unique per entry: a game transaction is the player's trx_id; an operator reference is global."""
        if self.source is Source.GAME:
            return f"{self.source.value}:{self.player_id}:{self.trx_id}"
        return f"{self.source.value}:{self.trx_id}"

    def as_json(self) -> dict[str, Any]:
        shown = {
            "entry_id": self.entry_id,
            "source": self.source.value,
            "trx_id": self.trx_id,
            "player": self.player_id,
            "kind": self.kind,
            "minus": _plain(self.minus),
            "plus": _plain(self.plus),
            "balance_before": _plain(self.balance_before),
            "balance_after": _plain(self.balance_after),
            "currency": self.currency,
            "game_uuid": self.game_uuid,
            "tag": _plain(self.tag),
            "created_at": self.created_at,
            "account_version": self.account_version,
        }
        if self.chain_hash:  # absent for an entry from before the chain, as the table has no attribute for it
            shown["chain_hash"] = self.chain_hash
        return shown


def entry_kind(minus: Decimal, plus: Decimal, source: Source, game_uuid: str | None) -> str:
    if source is Source.OPERATOR:
        return "deposit" if plus > 0 else "withdrawal"
    if minus > 0 and plus > 0:
        return "bet_and_win"
    if minus > 0:
        return "bet"
    if plus > 0:
        return "win"
    return "zero_win" if game_uuid else "none"


def fingerprint(player_id: str, minus: Decimal, plus: Decimal, tag: dict[str, Any]) -> str:
    """A digest of what a request asked for, to tell an honest retry from a different request reusing a trx_id."""
    canonical = json.dumps(
        {"player": player_id, "minus": format_number(minus), "plus": format_number(plus), "tag": tag},
        sort_keys=True,
        separators=(",", ":"),
        default=_decimal_text,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def canonical_tag(tag: dict[str, Any]) -> str:
    """The tag as one text: what the chain hashes and the archive stores. Decimals as int or exact string, as
    json_ready writes them, so the tag a request parsed and the tag DynamoDB gives back (every number a Decimal)
    come out the same; keys sorted; ASCII only (\\u escapes), so the text does not depend on an encoding."""
    return json.dumps(json_ready(tag), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def chain_hash(entry: LedgerEntry, previous: str) -> str:
    """sha256 hex of the entry's content and `previous` (the player's previous entry's chain_hash, "" for the first).

    Each field is written "<length>:<text>" so no two different entries give the same input, whatever their texts
    hold. Amounts with 8 decimals, as DECIMAL(38, 8) prints them: the archive's SQL audit (sql/audit.sql) computes
    the same string. entry.chain_hash itself is not part of it."""
    fields = [
        entry.player_id,
        str(entry.account_version),
        entry.source.value,
        entry.trx_id,
        entry.kind,
        format(entry.minus, ".8f"),
        format(entry.plus, ".8f"),
        format(entry.balance_before, ".8f"),
        format(entry.balance_after, ".8f"),
        entry.currency,
        entry.game_uuid or "",
        canonical_tag(entry.tag),
        entry.created_at,
        previous,
    ]
    return hashlib.sha256("".join(f"{len(f)}:{f}" for f in fields).encode("utf-8")).hexdigest()


def chained(entry: LedgerEntry, previous: str) -> LedgerEntry:
    """`entry` with its chain_hash after `previous` (the account's chain_head)."""
    return replace(entry, chain_hash=chain_hash(entry, previous))


def utc_now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _decimal_text(value: object) -> str:
    if isinstance(value, Decimal):
        return format_number(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def json_ready(value: Any) -> Any:
    """Decimals to int or exact string for JSON output (never float)."""
    return _plain(value)


def _plain(value: Any) -> Any:
    """Decimals to int or exact string for JSON output (never float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else format_number(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
