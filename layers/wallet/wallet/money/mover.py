"""The one money mover, for games and operators alike: `-minus +plus` on a player's account exactly once per key.

  1. one serializable read of the account and of the entry under the key;
  2. the player's own key seen before: nothing moves, the result is a replay (a different body is a conflict).
     Another player's entry under a game trx_id: this is the player's own transaction, in its own slot;
  3. not allowed (the caller's `authorize`), minus > balance, or over one of the player's limits: nothing moves;
  4. one atomic write: put the entry if its slot is free + move the balance if the account's version is still the one
     read. A lost race starts again from the account the failed write returned (or reads again), within a time
     budget (retry_budget_seconds): a busy player's burst of bets converges instead of answering 5xx.
The use cases build on it: POST /do (games_server.py) and the operator's moves (operator_moves.py). Nothing here knows
about API Gateway or DynamoDB: the store does (store.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from wallet.money.amounts import move_balance
from wallet.money.ledger import (
    Account,
    LedgerEntry,
    PlayerStatus,
    Source,
    chained,
    entry_kind,
    fingerprint,
    utc_now_iso,
)
from wallet.money.limits import Breach, Counters, LimitKind, Limits, Slot, first_breach, movement_deltas
from wallet.money.sessions import player_of_token, session_is_live
from wallet.money.store import Applied, DuplicateEntry, StaleAccount, WalletStore
from wallet.settings import DEFAULT_CREDIT_GRACE_DAYS, DEFAULT_MAX_WRITE_ATTEMPTS, SecretSource


class BillingContended(Exception):
    """The account kept changing under us for the whole retry budget: answer 5xx, the provider's retry is safe."""


class MoveStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    INSUFFICIENT = "insufficient"
    NO_ACCOUNT = "no_account"
    UNAUTHORIZED = "unauthorized"
    OVER_LIMIT = "over_limit"  # a responsible-gambling limit refused it (see limits.py)


@dataclass(frozen=True)
class MoveResult:
    status: MoveStatus
    account: Account | None = None  # the account as the reply should show it (after the move, or current)
    entry: LedgerEntry | None = None  # the new entry, or the earlier one with the same key
    conflict: bool = False  # a replayed key whose request differs from the one recorded
    attempts: int = 1
    cross_player: bool = False  # a game trx_id another player used first (this one is the player's own)
    breach: Breach | None = None  # with OVER_LIMIT: which limit

    @property
    def balance(self) -> Decimal:
        if self.account is None:
            raise ValueError("no account")
        return self.account.balance


Authorize = Callable[[Account], bool]


@dataclass(frozen=True)
class MoveRequest:
    """One movement to make exactly once: `-minus +plus` for this key (a game's trx_id, an operator's reference)."""

    player_id: str
    source: Source
    trx_id: str
    minus: Decimal
    plus: Decimal
    tag: dict[str, Any] = field(default_factory=dict)
    game_uuid: str | None = None
    kind: str | None = None  # the entry's kind, when the amounts alone do not say it (deposit, status...)
    new_status: PlayerStatus | None = None  # the account takes this status in the same write
    same_session: bool = False  # allowed for the live session read: it must still be the live one when written
    limit_changes: dict[Slot, Decimal | None] | None = None  # the account's limits change in the same write


DEFAULT_CREDIT_GRACE_SECONDS = DEFAULT_CREDIT_GRACE_DAYS * 24 * 60 * 60
# Back-off between attempts: full jitter, the k-th pause of a movement uniform in [0, min(cap, base * 2**k)].
BACK_OFF_BASE_SECONDS = 0.001
BACK_OFF_CAP_SECONDS = 0.025
# After a lost version race the loser pauses (SENIORITY_RANKS - losses) x SENIORITY_STEP_SECONDS, nothing from its
# SENIORITY_RANKS-th loss on. Why: with every loser going again at once each round is a lottery, and a request that
# kept losing was no likelier to win than one that lost once (8 clients on one player: 1.5-3% hit the 2 s budget while
# the mean request took ~0.5 s). Staggered by losses, the oldest loser's write reaches the account first and wins:
# nearly first come, first served. The pauses stay shorter than a newcomer's read, so newcomers do not jump ahead.
SENIORITY_STEP_SECONDS = 0.001
SENIORITY_RANKS = 8


def _always(_: Account) -> bool:
    return True


class Mover:
    """The store, the secrets and the clock the use cases share, the session checks, and the one money mover."""

    def __init__(
        self,
        store: WalletStore,
        secrets: SecretSource,
        *,
        session_seconds: int = 24 * 60 * 60,
        credit_grace_seconds: int = DEFAULT_CREDIT_GRACE_SECONDS,
        max_write_attempts: int = DEFAULT_MAX_WRITE_ATTEMPTS,
        retry_budget_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: random.Random | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.session_seconds = session_seconds
        self.credit_grace_seconds = credit_grace_seconds
        # The time budget ends the retries; the count only stops a clock that does not move from spinning forever.
        self.max_write_attempts = max_write_attempts
        self.retry_budget_seconds = retry_budget_seconds
        self.clock = clock  # wall time: session expiry, entry times
        self.sleep = sleep
        self.monotonic = monotonic  # the retry budget (a simulation injects its clock for all three)
        self.jitter = jitter or random.Random()  # noqa: S311 - back-off jitter, not security

    def live_account(self, token: str) -> Account | None:
        """The account a session token belongs to, if that session is the player's live one (for the game page)."""
        player_id = player_of_token(token)
        if player_id is None:
            return None
        account = self.store.get_account(player_id)
        return account if account is not None and self.holds_live_session(token, account) else None

    def holds_live_session(self, token: str, account: Account) -> bool:
        """True if `token` is the account's one live session (not replaced, not expired)."""
        return session_is_live(
            token, self.secrets.session_key(), account.session_hash, account.session_expires_at, self.clock()
        )

    # --- the one money mover ----------------------------------------------------------------------------------------

    def move(self, request: MoveRequest, authorize: Authorize = _always) -> MoveResult:
        """Move `-minus +plus` on the player's account exactly once for this key: (player, trx_id) for a game,
        the global reference for an operator. With `new_status` the account also takes that status."""
        player_id, source, trx_id, minus, plus = (
            request.player_id,
            request.source,
            request.trx_id,
            request.minus,
            request.plus,
        )
        request_print = fingerprint(player_id, minus, plus, request.tag)
        give_up_at = self.monotonic() + self.retry_budget_seconds
        # After a lost version race the failed write hands back the account as it now is (ALL_OLD), so the next
        # attempt starts from that instead of reading again: half the calls per retry, and a shorter race window.
        account: Account | None = None
        scoped = False  # another player used this game trx_id first: this player's entry goes in its own slot
        backoff = _Backoff(self.sleep, self.jitter)
        stale_losses = 0  # version races lost so far: the more, the sooner this request goes again (seniority)
        for attempt in range(1, self.max_write_attempts + 1):
            if attempt > 1 and self.monotonic() > give_up_at:
                break  # a 503 now beats a Lambda timeout later: the provider retries either way
            if account is None:
                found = self._read_for_move(player_id, source, trx_id, request_print, attempt)
                if isinstance(found, MoveResult):
                    return found
                account, scoped = found
            now = self.clock()
            deltas = movement_deltas(
                game=source is Source.GAME, deposit=request.kind == "deposit", minus=minus, plus=plus
            )
            counters = account.counters.after(deltas, now)
            refused = _refusal(account, authorize, minus, self._limit_breach(account, counters, deltas, now))
            if refused is not None:
                return self._confirmed(replace(refused, attempts=attempt, cross_player=scoped), request, request_print)
            limits = account.limits.changed(request.limit_changes, now) if request.limit_changes is not None else None

            entry = LedgerEntry(
                source=source,
                trx_id=trx_id,
                player_id=player_id,
                minus=minus,
                plus=plus,
                balance_before=account.balance,
                balance_after=move_balance(account.balance, minus, plus),
                currency=account.currency,
                created_at=utc_now_iso(now),
                kind=request.kind or entry_kind(minus, plus, source, request.game_uuid),
                game_uuid=request.game_uuid,
                tag=request.tag,
                fingerprint=request_print,
                account_version=account.version + 1,
                scoped=scoped,
            )
            # Chained to the head of the account as read: a lost race rebuilds the entry from the account that won,
            # so the chain stays one line however many writers race (the version guard decides, not the hash).
            entry = chained(entry, account.chain_head)
            outcome = self.store.record(
                entry,
                account,
                request.new_status,
                same_session=request.same_session,
                counters=counters if counters is not account.counters else None,
                limits=limits,
            )
            match outcome:
                case Applied():
                    after = _account_after(account, entry, request.new_status, counters, limits)
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
                    # The failed write handed back the account that won: go again with no read, after a pause that
                    # shrinks with every loss (SENIORITY_STEP_SECONDS), so the oldest loser writes first; the loser
                    # stays ahead of the newcomers, which still read first (2-6% 5xx with a jittered pause instead).
                    account = latest
                    stale_losses += 1
                    if latest is None:  # no item came back: read again, after a pause
                        backoff.pause()
                    elif stale_losses < SENIORITY_RANKS:
                        self.sleep(seniority_pause_seconds(stale_losses))
                case _:  # Contended: DynamoDB cancelled it for a concurrent transaction; read again
                    account = None
                    backoff.pause()
        raise BillingContended(
            f"account {player_id} kept changing: gave up after {attempt} attempts"
            f" ({self.retry_budget_seconds:g} s budget)"
        )

    def _read_for_move(
        self, player_id: str, source: Source, trx_id: str, request_print: str, attempt: int
    ) -> tuple[Account, bool] | MoveResult:
        """The account to move and whether the entry goes in the player's own slot; or a final result (no account, a
        replay)."""
        account, earlier = self.store.get_account_and_entry(player_id, source, trx_id)
        if account is None:
            return MoveResult(MoveStatus.NO_ACCOUNT, attempts=attempt)
        scoped = False
        if earlier is not None and earlier.player_id != player_id and source is Source.GAME:
            # Another player's transaction holds this trx_id (a provider whose ids are unique per player, or a
            # provider bug). A retry always comes for the same player, so this one is the player's own transaction:
            # read the account again with the player's own slot, in one read, so a replay shows the current balance.
            scoped = True
            account, earlier = self.store.get_account_and_entry(player_id, source, trx_id, scoped_to=player_id)
            if account is None:
                return MoveResult(MoveStatus.NO_ACCOUNT, attempts=attempt)
        if earlier is not None:
            # A replay. It moves nothing and reports the current balance; the protocol puts that before the
            # session check, so a retry after the session was replaced still sees OK.
            return self._duplicate(account, earlier, request_print, attempt, scoped)
        return account, scoped

    def _confirmed(self, refused: MoveResult, request: MoveRequest, request_print: str) -> MoveResult:
        """The refusal, or the replay it would have hidden. The read is the account and the entry slot side by side,
        not one snapshot: the account may already show this very trx_id landing (its twin, sent at the same moment)
        while the slot was read a moment before, empty. A refusal on the balance or a limit is only given once the
        slot, read again after that account, is still empty: money that moved is never answered as refused."""
        if refused.status not in _MOVEMENT_REFUSALS:
            return refused
        again = self._read_for_move(request.player_id, request.source, request.trx_id, request_print, refused.attempts)
        return again if isinstance(again, MoveResult) else refused

    def _duplicate(
        self, account: Account, earlier: LedgerEntry, request_print: str, attempt: int, cross_player: bool
    ) -> MoveResult:
        conflict = bool(earlier.fingerprint) and earlier.fingerprint != request_print
        return MoveResult(
            MoveStatus.DUPLICATE, account, earlier, conflict=conflict, attempts=attempt, cross_player=cross_player
        )

    def _limit_breach(
        self, account: Account, counters: Counters, deltas: dict[LimitKind, Decimal], now: float
    ) -> Breach | None:
        """The responsible-gambling limit this movement would breach, if any (limits.py)."""
        return first_breach(account.limits, counters, deltas, now)


@dataclass
class _Backoff:
    """The pauses between one movement's attempts: full jitter, the window doubling with each pause up to the cap.
    Contention is per player, so a few milliseconds usually clear it."""

    sleep: Callable[[float], None]
    jitter: random.Random
    pauses: int = 0

    def pause(self) -> None:
        self.sleep(back_off_seconds(self.pauses, self.jitter))
        self.pauses += 1


def back_off_seconds(pauses: int, jitter: random.Random) -> float:
    """The pause after `pauses` earlier ones: uniform in [0, min(cap, base * 2**(pauses + 1))]."""
    return jitter.uniform(0, min(BACK_OFF_CAP_SECONDS, BACK_OFF_BASE_SECONDS * 2 ** min(pauses + 1, 32)))


def seniority_pause_seconds(losses: int) -> float:
    """The pause after the `losses`-th lost version race: shorter the more races this request has lost, none from
    SENIORITY_RANKS on (see SENIORITY_STEP_SECONDS)."""
    return SENIORITY_STEP_SECONDS * max(0, SENIORITY_RANKS - losses)


# The refusals a movement landing could have caused (it changes the balance and the counters, never the session).
_MOVEMENT_REFUSALS = (MoveStatus.INSUFFICIENT, MoveStatus.OVER_LIMIT)


def _refusal(account: Account, authorize: Authorize, minus: Decimal, breach: Breach | None) -> MoveResult | None:
    """Why the movement cannot be made on this account, in the order the replies are decided; None if it can."""
    if not authorize(account):
        return MoveResult(MoveStatus.UNAUTHORIZED, account)
    if minus > account.balance:
        return MoveResult(MoveStatus.INSUFFICIENT, account)
    if breach is not None:
        return MoveResult(MoveStatus.OVER_LIMIT, account, breach=breach)
    return None


def _account_after(
    account: Account,
    entry: LedgerEntry,
    new_status: PlayerStatus | None,
    counters: Counters,
    limits: Limits | None,
) -> Account:
    """The account as `entry` left it (what store.record wrote)."""
    after = replace(
        account,
        balance=entry.balance_after,
        version=entry.account_version,
        counters=counters,
        limits=limits if limits is not None else account.limits,
        chain_head=entry.chain_hash,
    )
    if new_status is None:
        return after
    if new_status is PlayerStatus.ACTIVE:
        return replace(after, status=new_status)
    return replace(after, status=new_status, session_hash=None, session_expires_at=None)
