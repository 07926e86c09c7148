"""The operator's use cases on the money: players, their status and sessions, deposits and withdrawals, the ledger.

Deposits and withdrawals go through the same mover as /do, idempotent by the operator's reference.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from wallet.money.amounts import InvalidAmount, format_number, parse_amount
from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source, chained, fingerprint, utc_now_iso
from wallet.money.limits import Slot
from wallet.money.mover import Authorize, Mover, MoveRequest, MoveResult, MoveStatus, _always
from wallet.money.sessions import IssuedSession, check_player_id, issue_session
from wallet.money.store import AccountNotActive, InvalidCursor, NoSuchAccount


class Refusal(StrEnum):
    """Why an operator request was refused: the API's error code (and HTTP status) follows from it."""

    INVALID = "invalid_request"  # the request itself is wrong: a field's value
    NOT_FOUND = "not_found"  # no such player
    EXISTS = "exists"  # the player exists already
    CONFLICT = "conflict"  # a reference used before for something else
    NOT_ENOUGH_MONEY = "not_enough_money"
    OVER_LIMIT = "over_limit"  # the player's deposit limit
    NOT_ALLOWED = "not_allowed"  # the player's status forbids it


class OperatorError(ValueError):
    """An operator request that cannot be done, and why (`refusal`); `balance` when money was short."""

    def __init__(self, message: str, refusal: Refusal = Refusal.INVALID, balance: Decimal | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.balance = balance


# Operator references share one namespace across players (a payment id is unique at the operator); the opening
# balance and status changes use a character no reference may contain, so no deposit can collide with them.
OPERATOR_REF = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

OPENING_PREFIX = "opening#"

STATUS_PREFIX = "status#"

LIMITS_PREFIX = "limits#"

MAX_HISTORY_PAGE = 1000

MAX_HISTORY = 10_000

MAX_REASON_LENGTH = 500

MAX_OPERATOR_NAME_LENGTH = 128


class OperatorMoves(Mover):
    """The operator's use cases."""

    def create_player(self, player_id: str, currency: str, opening_balance: Decimal | str = Decimal(0)) -> Account:
        check_player_id(player_id)
        opening = _operator_amount(opening_balance, "balance", allow_zero=True)
        if not currency or len(currency) > 16 or not currency.isalnum():
            raise OperatorError("currency must be 1-16 letters or digits")
        created_at = utc_now_iso(self.clock())
        account = Account(player_id, opening, currency, version=0, created_at=created_at)
        entry: LedgerEntry | None = None
        if opening > 0:
            tag = {"operator": "opening"}
            entry = LedgerEntry(
                source=Source.OPERATOR,
                trx_id=f"{OPENING_PREFIX}{player_id}",
                player_id=player_id,
                minus=Decimal(0),
                plus=opening,
                balance_before=Decimal(0),
                balance_after=opening,
                currency=currency,
                created_at=created_at,
                kind="opening",
                tag=tag,
                fingerprint=fingerprint(player_id, Decimal(0), opening, tag),
            )
            # The opening entry (version 0) starts the player's chain: nothing comes before it.
            entry = chained(entry, "")
            account = replace(account, chain_head=entry.chain_hash)
        if not self.store.create_account(account, entry):
            raise OperatorError(f"player {player_id} exists already", Refusal.EXISTS)
        return account

    def deposit(self, player_id: str, amount: Decimal | str, ref: str) -> MoveResult:
        value = _operator_amount(amount, "amount")
        # A closed account takes no new money; what remains can still be withdrawn.
        return self._operator_move(
            player_id, ref, Decimal(0), value, "deposit", authorize=lambda a: a.status is not PlayerStatus.CLOSED
        )

    def withdraw(self, player_id: str, amount: Decimal | str, ref: str) -> MoveResult:
        value = _operator_amount(amount, "amount")
        return self._operator_move(player_id, ref, value, Decimal(0), "withdrawal")

    def _operator_move(
        self, player_id: str, ref: str, minus: Decimal, plus: Decimal, kind: str, authorize: Authorize = _always
    ) -> MoveResult:
        check_player_id(player_id)
        if not OPERATOR_REF.fullmatch(ref):
            raise OperatorError("ref must be 1-128 characters of letters, digits, '_', '-', '.' or ':'")
        tag = {"operator": kind, "ref": ref}
        result = self.move(MoveRequest(player_id, Source.OPERATOR, ref, minus, plus, tag, kind=kind), authorize)
        if result.status is MoveStatus.NO_ACCOUNT:
            raise OperatorError(f"unknown player {player_id}", Refusal.NOT_FOUND)
        if result.status is MoveStatus.UNAUTHORIZED:
            assert result.account is not None
            raise OperatorError(
                f"player {player_id} is {result.account.status}: {kind}s are refused", Refusal.NOT_ALLOWED
            )
        if result.status is MoveStatus.INSUFFICIENT:
            raise OperatorError(
                f"not enough money: balance {format_number(result.balance)}, withdrawal {format_number(minus)}",
                Refusal.NOT_ENOUGH_MONEY,
                balance=result.balance,
            )
        if result.status is MoveStatus.OVER_LIMIT:
            raise OperatorError(f"refused by the player's limit: {result.breach}", Refusal.OVER_LIMIT, result.balance)
        if result.conflict:
            raise OperatorError(f"ref {ref} was used before for a different movement", Refusal.CONFLICT)
        return result

    def set_status(
        self, player_id: str, status: PlayerStatus | str, reason: str, by: str, ref: str | None = None
    ) -> MoveResult:
        """Set the player's status, as a ledger entry that moves no money (who, when, why). A player who is no
        longer active loses the live session at once; money owed on their sessions still lands. With `ref`, a retry
        of the same change (after a timeout, say) is recognised and recorded once."""
        check_player_id(player_id)
        if ref is not None and not OPERATOR_REF.fullmatch(ref):
            raise OperatorError("ref must be 1-128 characters of letters, digits, '_', '-', '.' or ':'")
        try:
            new_status = PlayerStatus(status)
        except ValueError:
            raise OperatorError(f"status must be one of {', '.join(s.value for s in PlayerStatus)}") from None
        tag = {
            "operator": "status",
            "status": new_status.value,
            "reason": _operator_text(reason, "reason", MAX_REASON_LENGTH),
            "by": _operator_text(by, "by", MAX_OPERATOR_NAME_LENGTH),
        }
        return self._account_change(player_id, STATUS_PREFIX, ref, tag, "status", new_status=new_status)

    def set_limits(
        self, player_id: str, changes: dict[Slot, Decimal | None], by: str, ref: str | None = None
    ) -> MoveResult:
        """Change the player's limits (None removes one), as a ledger entry that moves no money: lower or new ones
        at once, higher or removed ones after the cooling-off period (limits.py)."""
        check_player_id(player_id)
        if ref is not None and not OPERATOR_REF.fullmatch(ref):
            raise OperatorError("ref must be 1-128 characters of letters, digits, '_', '-', '.' or ':'")
        if not changes:
            raise OperatorError("limits: nothing to change")
        asked: dict[str, dict[str, Any]] = {}
        for (kind, period), amount in sorted(changes.items()):
            asked.setdefault(kind.value, {})[period.value] = amount
        tag = {"operator": "limits", "limits": asked, "by": _operator_text(by, "by", MAX_OPERATOR_NAME_LENGTH)}
        return self._account_change(player_id, LIMITS_PREFIX, ref, tag, "limits", limit_changes=changes)

    def _account_change(
        self, player_id: str, prefix: str, ref: str | None, tag: dict[str, Any], kind: str, **change: Any
    ) -> MoveResult:
        """A change of the account that moves no money (its status, its limits), as a ledger entry of `kind`:
        recorded once per `ref` (a fresh id without one)."""
        trx_id = f"{prefix}{player_id}#{ref or uuid.uuid4().hex}"
        zero = Decimal(0)
        result = self.move(MoveRequest(player_id, Source.OPERATOR, trx_id, zero, zero, tag, kind=kind, **change))
        if result.status is MoveStatus.NO_ACCOUNT:
            raise OperatorError(f"unknown player {player_id}", Refusal.NOT_FOUND)
        if result.conflict:
            raise OperatorError(f"ref {ref} was used before for a different {kind} change", Refusal.CONFLICT)
        return result

    def new_session(self, player_id: str) -> IssuedSession:
        """A new live session for an active player; the previous one is replaced (money owed on it still lands)."""
        issued = issue_session(player_id, self.secrets.session_key(), self.clock(), self.session_seconds)
        # The record is kept (the table's TTL) for as long as money owed on the session may still land.
        match self.store.start_session(issued.record, issued.expires_at + self.credit_grace_seconds):
            case NoSuchAccount():
                raise OperatorError(f"unknown player {player_id}", Refusal.NOT_FOUND)
            case AccountNotActive(status=status):
                raise OperatorError(f"player {player_id} is {status}: no new session", Refusal.NOT_ALLOWED)
        return issued

    def revoke_session(self, player_id: str) -> bool:
        """End the player's live session (log-out). True if there was one. Money owed on it still lands."""
        check_player_id(player_id)
        revoked = self.store.end_session(player_id)
        if revoked is None:
            raise OperatorError(f"unknown player {player_id}", Refusal.NOT_FOUND)
        return revoked

    def account(self, player_id: str) -> Account:
        check_player_id(player_id)
        account = self.store.get_account(player_id)
        if account is None:
            raise OperatorError(f"unknown player {player_id}", Refusal.NOT_FOUND)
        return account

    def history(self, player_id: str, limit: int = 100) -> list[LedgerEntry]:
        if not 1 <= limit <= MAX_HISTORY:
            raise OperatorError(f"limit must be between 1 and {MAX_HISTORY}")
        self.account(player_id)
        return self.store.history(player_id, limit)

    def history_page(
        self, player_id: str, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        """One page of the ledger, newest first, and the cursor of the next page (None at the end)."""
        if not 1 <= limit <= MAX_HISTORY_PAGE:
            raise OperatorError(f"limit must be between 1 and {MAX_HISTORY_PAGE}")
        self.account(player_id)
        try:
            return self.store.history_page(player_id, limit, cursor)
        except InvalidCursor as exc:
            raise OperatorError(f"cursor: {exc}") from None

    def round(self, game_uuid: str) -> list[LedgerEntry]:
        return self.store.round_entries(game_uuid)


def _operator_text(value: str, field: str, max_length: int) -> str:
    text = value.strip()
    if not 1 <= len(text) <= max_length:
        raise OperatorError(f"{field} must be 1-{max_length} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise OperatorError(f"{field} is not valid text") from None
    return text


def _operator_amount(value: Decimal | str, field: str, *, allow_zero: bool = False) -> Decimal:
    try:
        amount = parse_amount(value, field)
    except InvalidAmount as exc:
        raise OperatorError(str(exc)) from None
    if amount == 0 and not allow_zero:
        raise OperatorError(f"{field} must be greater than zero")
    return amount
