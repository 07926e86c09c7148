"""The wallet's use cases: the Games Server's POST /do, and the operator's players, sessions and deposits.

The money path, in order (docs/PROTOCOL.md): parse -> sign -> session -> money.
  1. one serializable read of the account and of the entry keyed by trx_id;
  2. the player's own trx_id seen before: nothing moves, OK with the current balance (a different body is flagged as
     a conflict). Another player's entry under that trx_id: this is the player's own transaction, kept in its own slot
     (one more read, counted as a cross-player reuse);
  3. no session that allows it: session_not_found (a debit needs the live session of an active player; money owed,
     a win, cancel refund or zero win of a round, lands on any session we issued within the grace period);
     minus > balance: not_enough_money; both without a write;
  4. one transaction: put the entry if absent + move the balance if the account's version is still the one read.
     A lost race (the version moved) reads again and retries, a bounded number of times.
Nothing here knows about API Gateway, and nothing here speaks DynamoDB: that is the repository's job.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wallet.audit import AuditReport
from wallet.ledger import Account, LedgerEntry, PlayerStatus, Source, entry_kind, fingerprint, utc_now_iso
from wallet.money import InvalidAmount, move_balance, parse_amount
from wallet.protocol import (
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
from wallet.repository import (
    AccountNotActive,
    Applied,
    DuplicateEntry,
    NoSuchAccount,
    ReadContended,
    RepositoryUnavailable,
    StaleAccount,
    WalletRepository,
    make_client,
)
from wallet.sessions import (
    IssuedSession,
    SessionRecord,
    check_player_id,
    hash_matches,
    hash_token,
    issue_session,
    player_of_token,
    session_is_live,
)
from wallet.settings import DEFAULT_CREDIT_GRACE_DAYS, Secrets, Settings
from wallet.sign import sign_matches


class Event(StrEnum):
    """What a /do request turned out to be: one metric each, and the `event` field of its log line."""

    BALANCE = "balance"
    BET = "bet"
    WIN = "win"
    BET_AND_WIN = "bet_and_win"
    ZERO_WIN = "zero_win"
    DUPLICATE = "duplicate"
    NOT_ENOUGH_MONEY = "not_enough_money"
    SESSION_NOT_FOUND = "session_not_found"
    INVALID_REQUEST = "invalid_request"
    SIGN_FAILURE = "sign_failure"
    UNPARSEABLE = "unparseable"


class BillingContended(Exception):
    """The account kept changing under us for every attempt: answer 5xx, the provider's retry is safe."""


class BillingUnavailable(Exception):
    """A /do request we could not answer (database failure or contention): 5xx. Carries the ids for the log."""

    def __init__(self, cause: Exception, trx_id: str, player_id: str | None) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.trx_id = trx_id
        self.player_id = player_id


class OperatorError(ValueError):
    """An operator request that cannot be done (unknown player, bad amount, not enough money)."""


class MoveStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    INSUFFICIENT = "insufficient"
    NO_ACCOUNT = "no_account"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True)
class MoveResult:
    status: MoveStatus
    account: Account | None = None  # the account as the reply should show it (after the move, or current)
    entry: LedgerEntry | None = None  # the new entry, or the earlier one with the same key
    conflict: bool = False  # a replayed key whose request differs from the one recorded
    attempts: int = 1
    cross_player: bool = False  # a game trx_id another player used first (this one is the player's own)

    @property
    def balance(self) -> Decimal:
        if self.account is None:
            raise ValueError("no account")
        return self.account.balance


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


Authorize = Callable[[Account], bool]
# Operator references share one namespace across players (a payment id is unique at the operator); the opening
# balance and status changes use a character no reference may contain, so no deposit can collide with them.
OPERATOR_REF = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
OPENING_PREFIX = "opening#"
STATUS_PREFIX = "status#"
MAX_HISTORY = 10_000
MAX_REASON_LENGTH = 500
MAX_OPERATOR_NAME_LENGTH = 128
DEFAULT_CREDIT_GRACE_SECONDS = DEFAULT_CREDIT_GRACE_DAYS * 24 * 60 * 60


def _always(_: Account) -> bool:
    return True


class Wallet:
    def __init__(
        self,
        repository: WalletRepository,
        secrets: Secrets,
        *,
        session_seconds: int = 24 * 60 * 60,
        credit_grace_seconds: int = DEFAULT_CREDIT_GRACE_SECONDS,
        max_write_attempts: int = 10,
        retry_budget_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repository = repository
        self.secrets = secrets
        self.session_seconds = session_seconds
        self.credit_grace_seconds = credit_grace_seconds
        self.max_write_attempts = max_write_attempts
        self.retry_budget_seconds = retry_budget_seconds
        self.clock = clock
        self.sleep = sleep

    # --- the Games Server -----------------------------------------------------------------------------------------

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
        except (RepositoryUnavailable, BillingContended) as exc:
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

        result = self.move(
            player_id,
            Source.GAME,
            trx_id,
            movement.minus,
            movement.plus,
            movement.tag,
            movement.game_uuid,
            authorize=self._session_allows(session, movement),
        )
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
            case _:
                return Outcome(SESSION_NOT_FOUND, Event.SESSION_NOT_FOUND, **common, **extra)

    def _session_allows(self, token: str, movement: Movement) -> Authorize:
        """Whether the session may do this movement on the account read (docs/PROTOCOL.md, "Sessions")."""
        if movement.minus > 0 or movement.game_uuid is None:
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
                records[account.player_id] = self.repository.get_session(account.player_id, token_hash)
            record = records[account.player_id]
            return record is not None and record.covers_credit_at(now, self.credit_grace_seconds)

        return allowed

    # --- the one money mover, for games and operators alike ---------------------------------------------------------

    def move(
        self,
        player_id: str,
        source: Source,
        key: str,
        minus: Decimal,
        plus: Decimal,
        tag: dict[str, Any],
        game_uuid: str | None,
        *,
        authorize: Authorize = _always,
        kind: str | None = None,
        new_status: PlayerStatus | None = None,
    ) -> MoveResult:
        """Move `-minus +plus` on the player's account exactly once for this key: (player, trx_id) for a game,
        the global reference for an operator. With `new_status` the account also takes that status."""
        request_print = fingerprint(player_id, minus, plus, tag)
        give_up_at = time.monotonic() + self.retry_budget_seconds
        # After a lost version race the failed write hands back the account as it now is (ALL_OLD), so the next
        # attempt starts from that instead of reading again: half the calls per retry, and a shorter race window.
        account: Account | None = None
        scoped = False  # another player used this game trx_id first: this player's entry goes in its own slot
        for attempt in range(1, self.max_write_attempts + 1):
            if attempt > 1 and time.monotonic() > give_up_at:
                break  # a 503 now beats a Lambda timeout later: the provider retries either way
            if account is None:
                found = self._read_for_move(player_id, source, key, request_print, attempt)
                if isinstance(found, MoveResult):
                    return found
                if found is None:
                    self._back_off(attempt)
                    continue
                account, scoped = found
            if not authorize(account):
                return MoveResult(MoveStatus.UNAUTHORIZED, account, attempts=attempt, cross_player=scoped)
            if minus > account.balance:
                return MoveResult(MoveStatus.INSUFFICIENT, account, attempts=attempt, cross_player=scoped)

            now = self.clock()
            entry = LedgerEntry(
                source=source,
                key=key,
                player_id=player_id,
                minus=minus,
                plus=plus,
                balance_before=account.balance,
                balance_after=move_balance(account.balance, minus, plus),
                currency=account.currency,
                created_at=utc_now_iso(now),
                kind=kind or entry_kind(minus, plus, source, game_uuid),
                game_uuid=game_uuid,
                tag=tag,
                fingerprint=request_print,
                account_version=account.version + 1,
                scoped=scoped,
            )
            outcome = self.repository.record(entry, account, new_status)
            match outcome:
                case Applied():
                    after = _account_after(account, entry, new_status)
                    return MoveResult(MoveStatus.APPLIED, after, entry, attempts=attempt, cross_player=scoped)
                case DuplicateEntry(existing=existing, latest=latest):
                    # A twin won the race for this key between our read and our write.
                    if existing is None or (existing.player_id != player_id and source is Source.GAME and not scoped):
                        # Whose entry it is decides what this is; or another player's transaction took the trx_id's
                        # first slot in between: read again, which finds this player's own slot.
                        account = None
                        continue
                    return self._duplicate(latest or account, existing, request_print, attempt, scoped)
                case StaleAccount(latest=latest):
                    account = latest  # None (no item came back) reads again
                    self._back_off(attempt)
                case _:  # Contended: DynamoDB cancelled it for a concurrent transaction; read again
                    account = None
                    self._back_off(attempt)
        raise BillingContended(f"account {player_id} kept changing: gave up after {attempt} attempts")

    def _read_for_move(
        self, player_id: str, source: Source, key: str, request_print: str, attempt: int
    ) -> tuple[Account, bool] | MoveResult | None:
        """The account to move and whether the entry goes in the player's own slot; or a final result (no account, a
        replay); or None when a write was in flight."""
        try:
            account, earlier = self.repository.get_account_and_entry(player_id, source, key)
        except ReadContended:
            return None
        if account is None:
            return MoveResult(MoveStatus.NO_ACCOUNT, attempts=attempt)
        scoped = False
        if earlier is not None and earlier.player_id != player_id and source is Source.GAME:
            # Another player's transaction holds this trx_id (a provider whose ids are unique per player, or a
            # provider bug). A retry always comes for the same player, so this one is the player's own transaction:
            # read the account again with the player's own slot, in one read, so a replay shows the current balance.
            scoped = True
            try:
                account, earlier = self.repository.get_account_and_entry(player_id, source, key, scoped_to=player_id)
            except ReadContended:
                return None
            if account is None:
                return MoveResult(MoveStatus.NO_ACCOUNT, attempts=attempt)
        if earlier is not None:
            # A replay. It moves nothing and reports the current balance; the protocol puts that before the
            # session check, so a retry after the session was replaced still sees OK.
            return self._duplicate(account, earlier, request_print, attempt, scoped)
        return account, scoped

    def _duplicate(
        self, account: Account, earlier: LedgerEntry, request_print: str, attempt: int, cross_player: bool
    ) -> MoveResult:
        conflict = bool(earlier.fingerprint) and earlier.fingerprint != request_print
        return MoveResult(
            MoveStatus.DUPLICATE, account, earlier, conflict=conflict, attempts=attempt, cross_player=cross_player
        )

    def _back_off(self, attempt: int) -> None:
        # Full jitter, capped: contention is per player, so a few milliseconds usually clear it.
        self.sleep(random.uniform(0, min(0.05, 0.002 * 2**attempt)))  # noqa: S311 - jitter, not security

    # --- the operator ---------------------------------------------------------------------------------------------

    def create_player(self, player_id: str, currency: str, opening_balance: Decimal | str = Decimal(0)) -> Account:
        check_player_id(player_id)
        opening = _operator_amount(opening_balance, "balance", allow_zero=True)
        if not currency or len(currency) > 16 or not currency.isalnum():
            raise OperatorError("currency must be 1-16 letters or digits")
        created_at = utc_now_iso(self.clock())
        account = Account(player_id, opening, currency, version=0, created_at=created_at)
        entry = None
        if opening > 0:
            tag = {"operator": "opening"}
            entry = LedgerEntry(
                source=Source.OPERATOR,
                key=f"{OPENING_PREFIX}{player_id}",
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
        if not self.repository.create_account(account, entry):
            raise OperatorError(f"player {player_id} exists already")
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
        result = self.move(
            player_id,
            Source.OPERATOR,
            ref,
            minus,
            plus,
            {"operator": kind, "ref": ref},
            None,
            authorize=authorize,
            kind=kind,
        )
        if result.status is MoveStatus.NO_ACCOUNT:
            raise OperatorError(f"unknown player {player_id}")
        if result.status is MoveStatus.UNAUTHORIZED:
            assert result.account is not None
            raise OperatorError(f"player {player_id} is {result.account.status}: {kind}s are refused")
        if result.status is MoveStatus.INSUFFICIENT:
            raise OperatorError(f"not enough money: balance {result.balance}, withdrawal {minus}")
        if result.conflict:
            raise OperatorError(f"ref {ref} was used before for a different movement")
        return result

    def set_status(self, player_id: str, status: PlayerStatus | str, reason: str, by: str) -> MoveResult:
        """Set the player's status, as a ledger entry that moves no money (who, when, why). A player who is no
        longer active loses the live session at once; money owed on their sessions still lands."""
        check_player_id(player_id)
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
        key = f"{STATUS_PREFIX}{player_id}#{uuid.uuid4().hex}"
        zero = Decimal(0)
        result = self.move(player_id, Source.OPERATOR, key, zero, zero, tag, None, kind="status", new_status=new_status)
        if result.status is MoveStatus.NO_ACCOUNT:
            raise OperatorError(f"unknown player {player_id}")
        return result

    def new_session(self, player_id: str) -> IssuedSession:
        """A new live session for an active player; the previous one is replaced (money owed on it still lands)."""
        issued = issue_session(player_id, self.secrets.session_key(), self.clock(), self.session_seconds)
        # The record is kept (the table's TTL) for as long as money owed on the session may still land.
        match self.repository.start_session(issued.record, issued.expires_at + self.credit_grace_seconds):
            case NoSuchAccount():
                raise OperatorError(f"unknown player {player_id}")
            case AccountNotActive(status=status):
                raise OperatorError(f"player {player_id} is {status}: no new session")
        return issued

    def revoke_session(self, player_id: str) -> bool:
        """End the player's live session (log-out). True if there was one. Money owed on it still lands."""
        check_player_id(player_id)
        revoked = self.repository.end_session(player_id)
        if revoked is None:
            raise OperatorError(f"unknown player {player_id}")
        return revoked

    def account(self, player_id: str) -> Account:
        check_player_id(player_id)
        account = self.repository.get_account(player_id)
        if account is None:
            raise OperatorError(f"unknown player {player_id}")
        return account

    def live_account(self, token: str) -> Account | None:
        """The account a session token belongs to, if that session is the player's live one (for the game page)."""
        player_id = player_of_token(token)
        if player_id is None:
            return None
        account = self.repository.get_account(player_id)
        return account if account is not None and self.holds_live_session(token, account) else None

    def holds_live_session(self, token: str, account: Account) -> bool:
        """True if `token` is the account's one live session (not replaced, not expired)."""
        return session_is_live(
            token, self.secrets.session_key(), account.session_hash, account.session_expires_at, self.clock()
        )

    def history(self, player_id: str, limit: int = 100) -> list[LedgerEntry]:
        if not 1 <= limit <= MAX_HISTORY:
            raise OperatorError(f"limit must be between 1 and {MAX_HISTORY}")
        self.account(player_id)
        return self.repository.history(player_id, limit)

    def round(self, game_uuid: str) -> list[LedgerEntry]:
        return self.repository.round_entries(game_uuid)

    def audit(self) -> AuditReport:
        """Check every invariant over the whole table (a consistent scan; for a quiet moment or a copy)."""
        from wallet.audit import audit  # operator-only: kept off the Lambda's import path

        return audit(self.repository.iter_accounts(), self.repository.iter_entries())

    def report(self, open_after: timedelta) -> dict[str, Any]:
        from wallet.audit import gross_gaming_revenue, open_rounds

        entries = list(self.repository.iter_entries())
        now = datetime.fromtimestamp(self.clock(), UTC)
        return {
            "open_rounds": open_rounds(entries, now, open_after),
            "ggr": gross_gaming_revenue(entries),
        }


def _account_after(account: Account, entry: LedgerEntry, new_status: PlayerStatus | None) -> Account:
    """The account as `entry` left it (what repository.record wrote)."""
    after = replace(account, balance=entry.balance_after, version=entry.account_version)
    if new_status is None:
        return after
    if new_status is PlayerStatus.ACTIVE:
        return replace(after, status=new_status)
    return replace(after, status=new_status, session_hash=None, session_expires_at=None)


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


def build_wallet(settings: Settings | None = None) -> Wallet:
    """The wallet wired to DynamoDB (AWS, or DynamoDB Local through AWS_ENDPOINT_URL_DYNAMODB)."""
    settings = settings or Settings.from_env()
    return Wallet(
        WalletRepository(settings.table_name, make_client()),
        Secrets(settings),
        session_seconds=settings.session_seconds,
        credit_grace_seconds=settings.credit_grace_days * 24 * 60 * 60,
        max_write_attempts=settings.max_write_attempts,
    )
