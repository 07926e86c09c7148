"""POST /do, the Games Server's billing call: parse -> sign -> session -> money (docs/PROTOCOL.md).

- parse the signed envelope, check the sign, then parse the movement (an invalid amount on a signed request is
  session_not_found);
- a balance request reads the account with the live session;
- anything else goes to the one mover with the session rule as its `authorize`: a debit needs the player's live
  session and an active player; money owed (a win, cancel refund or zero win of a round) lands on any session we
  issued to the player within the grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from wallet.money.ledger import Account, Source
from wallet.money.mover import Authorize, BillingContended, Mover, MoveRequest, MoveStatus
from wallet.money.protocol import (
    SESSION_NOT_FOUND,
    SIGN_NOT_FOUND,
    InvalidRequest,
    Movement,
    Reply,
    not_enough_money,
    ok,
    parse_do_request,
    parse_movement,
)
from wallet.money.sessions import SessionRecord, hash_matches, hash_token, player_of_token
from wallet.money.sign import sign_matches
from wallet.money.store import StoreUnavailable


class Event(StrEnum):
    """What a /do request turned out to be: one metric each, and the `event` field of its log line."""

    BALANCE = "balance"
    BET = "bet"
    WIN = "win"
    BET_AND_WIN = "bet_and_win"
    ZERO_WIN = "zero_win"
    DUPLICATE = "duplicate"
    NOT_ENOUGH_MONEY = "not_enough_money"
    OVER_LIMIT = "over_limit"  # a bet over a responsible-gambling limit: not_enough_money, nothing moves
    SESSION_NOT_FOUND = "session_not_found"
    INVALID_REQUEST = "invalid_request"
    SIGN_FAILURE = "sign_failure"
    UNPARSEABLE = "unparseable"


class BillingUnavailable(Exception):
    """A /do request we could not answer (database failure or contention): 5xx. Carries the ids for the log."""

    def __init__(self, cause: Exception, trx_id: str, player_id: str | None) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.trx_id = trx_id
        self.player_id = player_id


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    event: Event
    trx_id: str | None = None
    player_id: str | None = None
    minus: Decimal | None = None
    plus: Decimal | None = None
    game_uuid: str | None = None
    detail: str | None = None
    conflict: bool = False
    attempts: int = 0
    cross_player: bool = False


class GamesServerBilling(Mover):
    """The Games Server's use case."""

    def handle_do(self, raw_body: str | bytes) -> Outcome:
        """Answer one /do request. Raises BillingUnavailable (-> 5xx) when the database cannot give an answer."""
        try:
            request = parse_do_request(raw_body)
        except InvalidRequest as exc:
            return Outcome(SIGN_NOT_FOUND, Event.UNPARSEABLE, detail=str(exc))
        envelope = request.envelope
        trx_id = envelope.trx_id
        if not sign_matches(envelope.sign, envelope.session, trx_id, self.secrets.salt()):
            return Outcome(SIGN_NOT_FOUND, Event.SIGN_FAILURE, trx_id=trx_id)

        player_id = player_of_token(envelope.session)
        if player_id is None:
            return Outcome(SESSION_NOT_FOUND, Event.SESSION_NOT_FOUND, trx_id=trx_id, detail="malformed session")
        try:
            movement = parse_movement(request.body)
        except InvalidRequest as exc:
            return Outcome(SESSION_NOT_FOUND, Event.INVALID_REQUEST, trx_id, player_id, detail=str(exc))
        try:
            return self._apply_do(envelope.session, trx_id, player_id, movement)
        except (StoreUnavailable, BillingContended) as exc:
            raise BillingUnavailable(exc, trx_id, player_id) from exc

    def _apply_do(self, session: str, trx_id: str, player_id: str, movement: Movement) -> Outcome:
        common: dict[str, Any] = {
            "trx_id": trx_id,
            "player_id": player_id,
            "minus": movement.minus,
            "plus": movement.plus,
            "game_uuid": movement.game_uuid,
        }
        if movement.is_balance_request:
            account = self.live_account(session)
            if account is None:
                return Outcome(SESSION_NOT_FOUND, Event.SESSION_NOT_FOUND, **common, attempts=1)
            return Outcome(ok(account.balance, account.currency), Event.BALANCE, **common, attempts=1)

        request = MoveRequest(
            player_id,
            Source.GAME,
            trx_id,
            movement.minus,
            movement.plus,
            movement.tag,
            movement.game_uuid,
            # Whatever needs the live session needs it still when it is written.
            same_session=movement.needs_live_session,
        )
        result = self.move(request, authorize=self._session_allows(session, movement))
        extra: dict[str, Any] = {
            "conflict": result.conflict,
            "attempts": result.attempts,
            "cross_player": result.cross_player,
        }
        match result.status:
            case MoveStatus.APPLIED | MoveStatus.DUPLICATE:
                assert result.account is not None and result.entry is not None
                event = Event.DUPLICATE if result.status is MoveStatus.DUPLICATE else Event(result.entry.kind)
                return Outcome(ok(result.account.balance, result.account.currency), event, **common, **extra)
            case MoveStatus.INSUFFICIENT:
                assert result.account is not None
                reply = not_enough_money(result.account.balance, result.account.currency)
                return Outcome(reply, Event.NOT_ENOUGH_MONEY, **common, **extra)
            case MoveStatus.OVER_LIMIT:
                # The one reply of the four that tells the game "no bet", with the real balance.
                assert result.account is not None
                reply = not_enough_money(result.account.balance, result.account.currency)
                return Outcome(reply, Event.OVER_LIMIT, **common, **extra, detail=str(result.breach))
            case _:
                return Outcome(SESSION_NOT_FOUND, Event.SESSION_NOT_FOUND, **common, **extra)

    def _session_allows(self, token: str, movement: Movement) -> Authorize:
        """Whether the session may do this movement on the account read (docs/PROTOCOL.md, "Sessions")."""
        if movement.needs_live_session:
            # A debit, or a credit we cannot tie to a round: the player's one live session; a debit, an active player.
            return lambda account: (
                (movement.minus == 0 or account.is_active) and self.holds_live_session(token, account)
            )
        return self._owed_money_allowed(token)

    def _owed_money_allowed(self, token: str) -> Authorize:
        """Money owed (a win, cancel refund or zero win of a round) lands on any session we issued to the player,
        live, replaced, revoked or expired, until the grace period after its expiry; whatever the player's status.
        The live session is on the account already read; an older one costs one read of its record, once."""
        token_hash = hash_token(token, self.secrets.session_key())
        records: dict[str, SessionRecord | None] = {}

        def allowed(account: Account) -> bool:
            now = self.clock()
            if account.session_hash is not None and hash_matches(token_hash, account.session_hash):
                return account.session_expires_at is not None and now < (
                    account.session_expires_at + self.credit_grace_seconds
                )
            if account.player_id not in records:
                records[account.player_id] = self.store.get_session(account.player_id, token_hash)
            record = records[account.player_id]
            return record is not None and record.covers_credit_at(now, self.credit_grace_seconds)

        return allowed
