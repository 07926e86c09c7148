"""What the wallet stores: an account per player and one ledger entry per accepted money movement."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
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

    @property
    def entry_id(self) -> str:
        """Unique per entry: a game transaction is the player's trx_id; an operator reference is global."""
        if self.source is Source.GAME:
            return f"{self.source.value}:{self.player_id}:{self.trx_id}"
        return f"{self.source.value}:{self.trx_id}"

    def as_json(self) -> dict[str, Any]:
        return {
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
