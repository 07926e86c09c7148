"""A deterministic simulation of the wallet, in the spirit of TigerBeetle's VOPR: one seed, one run, one trace.

    .venv/bin/python -m tests.simulation.vopr --seed 42             # replay one seed: its summary, or its failure
    .venv/bin/python -m tests.simulation.vopr --seed 42 --trace     # ... and the whole trace
    .venv/bin/python -m tests.simulation.vopr --seeds 100000        # many seeds (make soak), with progress

What runs: the real `Wallet` (POST /do and the operator's moves) over a `MemoryStore` wrapped in a `FaultyStore`.
A seed (`random.Random`) chooses 3-8 players and 2-6 logical clients. Each client is a Games Server worker and an
operator at once: it sends bets, wins, cancel refunds, zero wins (with `tag.game_uuid`), credits without a round,
balance requests, exact replays of earlier bodies, concurrent twins (the body another client has in flight), a second
player's transaction with a trx_id another player used, a reused trx_id with another body, forged sessions; and it
issues and revokes sessions mid-round (later credits come on the old session), changes statuses, deposits and
withdraws (and reuses another player's operator ref). The provider retries a 5xx up to 10 more times with the same
body; the operator retries a failed call with the same ref.

Interleaving: every client runs in its own thread, but only one runs at a time. The store boundary is the scheduling
point: every store call first hands control back to the scheduler, which picks (from the seed) the client to run
next and advances the simulated clock, sometimes by a jump across session expiries and grace periods. A switch
"after the call lands" is the same as a switch before the client's next store call (nothing a client does between two
store calls is visible to another client), so one point per call covers both. Same seed, same trace: the threads are
a way to suspend a synchronous call stack, not a source of concurrency.

Faults, chosen by the seed at the store boundary: a read throttled or timed out (StoreUnavailable), a write
throttled, timed out before its commit (nothing applied), timed out AFTER its commit (applied, then
StoreUnavailable: the caller retries the same body), or cancelled as `Contended()`; a cancelled
write's outcome (DuplicateEntry, StaleAccount) without the items DynamoDB may leave out; session writes likewise.

The model (checked as it goes, not only at the end):
  - after every step that wrote: `audit_store(store).clean` (no lost or doubled write, versions contiguous, nothing
    below zero), at most one entry per (player, trx_id) and per operator ref, and the store's account equal to the
    model's (balance, version, status, live session) rebuilt from the writes that crossed the boundary;
  - every reply against the rules, for some state the account was in while the request ran (a linearization point):
    `OK` applied only if this very attempt wrote the entry, with the body's amounts and the balance it produced, on a
    version whose session and status allowed it; `OK` replay only if the player's entry exists, with a balance the
    account had, and `conflict` exactly when the bodies differ; `not_enough_money` only when minus > that balance
    (and the session allowed it); `session_not_found` only when the rules refused (a bet not on the live session or
    for an inactive player, a credit on a session past its grace, a forged token); a balance only on the live session;
    never a write for a refusal or a replay; the operator's refusals likewise (closed, not enough money, conflict);
  - at the end: the ledger and the store agree entry for entry, every entry was written by an attempt that either
    answered OK or failed (a timeout after commit), every OK'd transaction has its one entry, and each balance is the
    opening plus the moves the clients know landed plus those whose attempts all failed but which the ledger holds.

Findings the model accepts (neither moves money wrongly):
  - (found here, and fixed) a bet used to be authorized only on the account it read, and `start_session` /
    `end_session` do not change the account's version, so a bet read before a log-out or a new session could commit
    after it (seed 36: c0 reads p0 at step 6, c3 revokes p0's session at step 10, c0's bet lands at step 14). A debit's
    write now also requires the same live session (`record(..., same_session=True)`); strict sessions are checked by
    default (`--no-strict-sessions` turns the check off);
  - `set_status` is not idempotent: its key is a fresh uuid per call, so an operator's retry after a timeout after
    commit records the change twice (two `status` entries, two versions; seed 28, p1).

The wallet is given the simulated clock as its wall time, its sleep and its monotonic time (the retry budget), and a
seeded jitter: a stall of the machine (GC, a loaded CI box, a debugger) cannot turn an attempt into BillingContended,
and the simulated clock advances by the seed's back-off only. (These were module patches until the simulation
showed the budget read the real monotonic clock whatever clock was injected.) Two patches remain, applied only while
a seed runs (`deterministic_runtime`):
  - `wallet.money.sessions.secrets` and `wallet.money.operator_moves.uuid`: session tokens and status-change keys,
    so the store's contents (and the digest compared between two runs) are a function of the seed too.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import random
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from tests.support import SALT, SESSION_KEY, do_body
from wallet.bootstrap import Secrets
from wallet.money import operator_moves as operator_module
from wallet.money import sessions as sessions_module
from wallet.money.games_server import BillingUnavailable, Event, Outcome
from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source
from wallet.money.limits import Counters, LimitKind, Limits, Period, Slot, first_breach, movement_deltas
from wallet.money.memory import MemoryStore
from wallet.money.mover import BillingContended, MoveResult, MoveStatus
from wallet.money.operator_moves import OperatorError
from wallet.money.protocol import Reply
from wallet.money.sessions import SessionRecord
from wallet.money.store import (
    AccountNotActive,
    Applied,
    Contended,
    DuplicateEntry,
    SessionOutcome,
    SessionStarted,
    StaleAccount,
    StoreUnavailable,
    WriteOutcome,
)
from wallet.money.wallet import Wallet
from wallet.operator.audit import COUNTER_WARNING, audit_store
from wallet.settings import Settings

SESSION_SECONDS = 300  # short, so the clock's jumps cross expiries and grace periods within one run
GRACE_SECONDS = 900
EPOCH = 1_750_000_000.0
CURRENCY = "FUN"
PROVIDER_RETRIES = 10  # the Games Server sends a request that got no valid reply up to 10 more times
OPERATOR_RETRIES = 10
PROVIDER_PAUSE = 0.05
TRACE_TAIL = 60

READ_FAULTS = ("throttled", "timeout")
WRITE_FAULTS = ("throttled", "timeout_before_commit", "timeout_after_commit", "contended")
SESSION_FAULTS = ("throttled", "timeout_before_commit", "timeout_after_commit")
FAULT_RATES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35)


class Halt(BaseException):
    """Raised in a parked client when the run stops early (a violation): unwinds it past the wallet's handlers."""


class SimClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)  # simulated time only: no real sleep


def token_hash(token: str) -> str:
    """The model's own HMAC of a session token (what the account and the session record hold)."""
    return hmac.new(SESSION_KEY.encode("utf-8"), token.encode("utf-8"), hashlib.sha256).hexdigest()


def expected_kind(minus: Decimal, plus: Decimal, game_uuid: str | None) -> str:
    if minus > 0 and plus > 0:
        return "bet_and_win"
    if minus > 0:
        return "bet"
    if plus > 0:
        return "win"
    return "zero_win" if game_uuid else "none"


# --- the calls the clients make, and what happened to them ------------------------------------------------------


@dataclass(eq=False)
class Call:
    """One logical request: a /do body with the provider's retries, or an operator call with the operator's."""

    cid: int
    op: str
    player: str
    trx_id: str = ""  # the game's trx_id, or the operator's ref
    minus: Decimal = Decimal(0)
    plus: Decimal = Decimal(0)
    tag: dict[str, Any] = field(default_factory=dict)
    token: str = ""
    body: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    final: str = "pending"  # ok | refused | gave_up | error

    @property
    def game_uuid(self) -> str | None:
        value = self.tag.get("game_uuid")
        return None if value in (None, "") else str(value)

    @property
    def is_balance(self) -> bool:
        return self.op.startswith("do") and self.minus == 0 and self.plus == 0 and self.game_uuid is None

    @property
    def movement(self) -> tuple[Decimal, Decimal, str]:
        return self.minus, self.plus, json.dumps(self.tag, sort_keys=True)

    def ledger_key(self) -> tuple[str, str, str]:
        if self.op.startswith("do"):
            return ("game", self.player, self.trx_id)
        return ("operator", "", self.trx_id)


@dataclass(eq=False)
class Attempt:
    call: Call
    number: int
    first_snap: int  # the index of the player's snapshot current when the attempt started
    t0: float
    step0: int
    result: str = "pending"  # applied | duplicate | refused | 5xx | error
    writes: list[LedgerEntry] = field(default_factory=list)


@dataclass(frozen=True)
class Snap:
    """The account as the model knows it from the writes that crossed the boundary, from time `t` on."""

    t: float
    balance: Decimal
    version: int
    status: PlayerStatus
    session_hash: str | None
    expires: int | None
    limits: Limits = field(default_factory=Limits)
    counters: Counters = field(default_factory=Counters)


Span = tuple[Snap, float, float]  # an account state, and the part of a request's time it held


@dataclass
class Landed:
    entry: LedgerEntry
    attempt: Attempt | None
    step: int


@dataclass
class Round:
    player: str
    token: str
    game_uuid: str
    bet: Decimal
    game: str


# --- the scheduler: one client at a time, chosen by the seed ---------------------------------------------------


def _closed_gate() -> threading.Lock:
    gate = threading.Lock()
    gate.acquire()
    return gate


class Scheduler:
    """Runs one client at a time. The hand-off uses plain locks as binary semaphores (a locked lock is a closed
    gate, and CPython lets any thread release it): cheaper than threading.Semaphore, which ~130 hand-offs a seed feel.
    """

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.rng = random.Random(f"vopr:{sim.seed}:schedule")
        self.stickiness = self.rng.choice((0.0, 0.3, 0.7))
        self.jump_rate = self.rng.choice((0.0, 0.01, 0.03))
        self.back = _closed_gate()  # opened by the running client when it parks or ends
        self.turns: dict[int, threading.Lock] = {}  # each client's gate, opened by the scheduler
        self.parked: list[int] = []
        self.threads: list[threading.Thread] = []
        self.current = -1
        self.halted = False
        self.crash: str | None = None
        self.steps = 0

    def spawn(self, cid: int, body: Callable[[], None]) -> None:
        self.turns[cid] = _closed_gate()
        self.parked.append(cid)
        thread = threading.Thread(target=self._client, args=(cid, body), name=f"vopr-client-{cid}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _client(self, cid: int, body: Callable[[], None]) -> None:
        self.turns[cid].acquire()
        try:
            if not self.halted:
                body()
        except Halt:
            pass
        except BaseException:  # a crash in the client or the wallet: the run fails with it
            self.crash = f"client {cid} crashed:\n{traceback.format_exc()}"
        finally:
            if not self.halted:  # after a halt nobody waits for the hand-back
                self.back.release()

    def point(self) -> None:
        """A store call is about to be made by the running client: hand control back, wait until chosen again."""
        cid = self.current
        if cid < 0:
            return  # the set-up, on the main thread
        self.parked.append(cid)
        self.back.release()
        self.turns[cid].acquire()
        if self.halted:
            raise Halt

    def run(self, after_step: Callable[[], bool]) -> None:
        last = -1
        while self.parked and not self.halted:
            if last in self.parked and self.rng.random() < self.stickiness:
                cid = last
            else:
                cid = self.rng.choice(sorted(self.parked))
            self.parked.remove(cid)
            self.steps += 1
            self._advance_clock()
            self.current = cid
            self.turns[cid].release()
            if not self.back.acquire(timeout=60):
                self.crash = f"client {cid} did not hand back within 60 s"
                self.halt()
                return
            self.current = -1
            last = cid
            if self.crash is not None or not after_step():
                self.halt()
        for thread in self.threads:
            thread.join(10)

    def _advance_clock(self) -> None:
        clock = self.sim.clock
        clock.now += self.rng.uniform(0.0, 0.02)  # a store call's latency
        if self.rng.random() < self.jump_rate:
            jump = self.rng.uniform(0.0, 2.5 * SESSION_SECONDS)
            clock.now += jump
            self.sim.log(f"clock +{jump:.1f}s")

    def halt(self) -> None:
        self.halted = True
        for cid in list(self.parked):
            self.turns[cid].release()
        for thread in self.threads:
            thread.join(10)


# --- the store boundary: faults, scheduling points, and the model's eye -----------------------------------------


class FaultyStore:
    """The WalletStore the wallet sees: each call a scheduling point, with faults chosen by the seed."""

    def __init__(self, inner: MemoryStore, sim: Simulation) -> None:
        self.inner = inner
        self.sim = sim
        self.rng = random.Random(f"vopr:{sim.seed}:faults")
        self.fault_rate = self.rng.choice(FAULT_RATES)
        self.armed = False

    def _enter(self, call: str, what: str, faults: tuple[str, ...]) -> str | None:
        self.sim.scheduler.point()
        fault = None
        if self.armed and self.rng.random() < self.fault_rate:
            fault = self.rng.choice(faults)
        self.sim.log(f"{call} {what}" + (f" !{fault}" if fault else ""))
        return fault

    # --- reads ------------------------------------------------------------------------------------------------

    def get_account(self, player_id: str) -> Account | None:
        if self._enter("get_account", player_id, READ_FAULTS):
            raise StoreUnavailable("simulated: read failed")
        return self.inner.get_account(player_id)

    def get_account_and_entry(
        self, player_id: str, source: Source, trx_id: str, scoped_to: str | None = None
    ) -> tuple[Account | None, LedgerEntry | None]:
        scope = " scoped" if scoped_to else ""
        what = f"{player_id} {source.value}:{trx_id}{scope}"
        if self._enter("get_account_and_entry", what, READ_FAULTS):
            raise StoreUnavailable("simulated: read failed")
        return self.inner.get_account_and_entry(player_id, source, trx_id, scoped_to)

    def get_session(self, player_id: str, token_hash: str) -> SessionRecord | None:
        if self._enter("get_session", f"{player_id} {token_hash[:8]}", READ_FAULTS):
            raise StoreUnavailable("simulated: read failed")
        return self.inner.get_session(player_id, token_hash)

    def history(self, player_id: str, limit: int = 100) -> list[LedgerEntry]:
        return self.inner.history(player_id, limit)

    def round_entries(self, game_uuid: str) -> list[LedgerEntry]:
        return self.inner.round_entries(game_uuid)

    def iter_accounts(self) -> Iterator[Account]:
        return self.inner.iter_accounts()

    def iter_entries(self) -> Iterator[LedgerEntry]:
        return self.inner.iter_entries()

    # --- writes -----------------------------------------------------------------------------------------------

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
        what = (
            f"{entry.player_id} {entry.source.value}:{entry.trx_id} "
            f"v{entry.account_version} -{entry.minus}+{entry.plus}"
        )
        if new_status is not None:
            what += f" ->{new_status.value}"
        fault = self._enter("record", what, WRITE_FAULTS)
        if fault in ("throttled", "timeout_before_commit"):
            raise StoreUnavailable(f"simulated: {fault}")
        if fault == "contended":
            return Contended()
        outcome = self.inner.record(
            entry, expected, new_status, same_session=same_session, counters=counters, limits=limits
        )
        if isinstance(outcome, DuplicateEntry | StaleAccount) and self.armed and self.rng.random() < self.fault_rate:
            # DynamoDB may cancel a transaction without handing back the items (no ALL_OLD): the mover reads again.
            outcome = DuplicateEntry(None, None) if isinstance(outcome, DuplicateEntry) else StaleAccount(None)
            self.sim.log(f"  = {type(outcome).__name__} !no_item")
        else:
            self.sim.log(f"  = {type(outcome).__name__}")
        if isinstance(outcome, Applied):
            self.sim.model.recorded(entry, new_status, counters, limits)
        if fault == "timeout_after_commit":
            raise StoreUnavailable("simulated: timeout after commit")
        return outcome

    def create_account(self, account: Account, opening: LedgerEntry | None) -> bool:
        created = self.inner.create_account(account, opening)
        if created:
            self.sim.model.created(account, opening)
        return created

    def start_session(self, session: SessionRecord, purge_at: int) -> SessionOutcome:
        fault = self._enter("start_session", f"{session.player_id} {session.token_hash[:8]}", SESSION_FAULTS)
        if fault in ("throttled", "timeout_before_commit"):
            raise StoreUnavailable(f"simulated: {fault}")
        outcome = self.inner.start_session(session, purge_at)
        self.sim.log(f"  = {type(outcome).__name__}")
        self.sim.model.session_started(session, purge_at, outcome)
        if fault == "timeout_after_commit":
            raise StoreUnavailable("simulated: timeout after commit")
        return outcome

    def end_session(self, player_id: str) -> bool | None:
        fault = self._enter("end_session", player_id, SESSION_FAULTS)
        if fault in ("throttled", "timeout_before_commit"):
            raise StoreUnavailable(f"simulated: {fault}")
        ended = self.inner.end_session(player_id)
        self.sim.log(f"  = {ended}")
        self.sim.model.session_ended(player_id, ended)
        if fault == "timeout_after_commit":
            raise StoreUnavailable("simulated: timeout after commit")
        return ended


# --- the model --------------------------------------------------------------------------------------------------


def entry_ledger_key(entry: LedgerEntry) -> tuple[str, str, str]:
    if entry.source is Source.GAME:
        return ("game", entry.player_id, entry.trx_id)
    return ("operator", "", entry.trx_id)


def entry_time(entry: LedgerEntry) -> float:
    return datetime.fromisoformat(entry.created_at.replace("Z", "+00:00")).timestamp()


def _over_limit(call: Call, snap: Snap, start: float, end: float) -> bool:
    """Whether the call would take one of the account's counters over a limit in force at some moment of the span."""
    deltas = movement_deltas(
        game=call.op.startswith("do"), deposit=call.op == "deposit", minus=call.minus, plus=call.plus
    )
    return any(first_breach(snap.limits, snap.counters.after(deltas, t), deltas, t) is not None for t in (start, end))


class Model:
    """What the store must hold, rebuilt from the writes that crossed the boundary, and the accounts' history."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.snaps: dict[str, list[Snap]] = {}
        self.ledger: dict[tuple[str, str, str], Landed] = {}
        self.records: dict[tuple[str, str], SessionRecord] = {}
        self.openings: dict[str, Decimal] = {}
        self.wrote = False  # a write landed during this step: check the store's invariants after it

    def violate(self, text: str) -> None:
        self.sim.violate(text)

    def created(self, account: Account, opening: LedgerEntry | None) -> None:
        self.snaps[account.player_id] = [
            Snap(self.sim.clock.now, account.balance, account.version, account.status, None, None, account.limits)
        ]
        self.openings[account.player_id] = account.balance
        if opening is not None:
            self.ledger[entry_ledger_key(opening)] = Landed(opening, None, 0)
        self.wrote = True

    def recorded(
        self, entry: LedgerEntry, new_status: PlayerStatus | None, counters: Counters | None, limits: Limits | None
    ) -> None:
        player = entry.player_id
        last = self.snaps[player][-1]
        counters_after, limits_after = self._limits_after(entry, last, counters, limits)
        if entry.account_version != last.version + 1 or entry.balance_before != last.balance:
            self.violate(
                f"write applied on a stale account: {player} at v{last.version} balance {last.balance}, entry "
                f"v{entry.account_version} from {entry.balance_before}"
            )
        key = entry_ledger_key(entry)
        if key in self.ledger:
            self.violate(f"a second entry was written for {key}")
        attempt = self.sim.current_attempt()
        if attempt is not None:
            attempt.writes.append(entry)
        self.ledger[key] = Landed(entry, attempt, self.sim.scheduler.steps)
        status = new_status or last.status
        session_hash, expires = last.session_hash, last.expires
        if new_status is not None and new_status is not PlayerStatus.ACTIVE:
            session_hash, expires = None, None
        self._push(
            player,
            Snap(
                self.sim.clock.now,
                entry.balance_after,
                entry.account_version,
                status,
                session_hash,
                expires,
                limits_after,
                counters_after,
            ),
        )

    def _limits_after(
        self, entry: LedgerEntry, last: Snap, counters: Counters | None, limits: Limits | None
    ) -> tuple[Counters, Limits]:
        """The counters and limits a write leaves, checked against what the model computes on its own: the
        entry's amounts added in the periods of its time, and no accepted bet over a limit in force."""
        at = entry_time(entry)
        deltas = movement_deltas(
            game=entry.source is Source.GAME, deposit=entry.kind == "deposit", minus=entry.minus, plus=entry.plus
        )
        expected = last.counters.after(deltas, at)
        written = counters if counters is not None else last.counters
        if written != expected:
            self.violate(f"{entry.entry_id}: counters written {written}, the model computes {expected}")
        breach = first_breach(last.limits, expected, deltas, at)
        if breach is not None:
            self.violate(f"{entry.entry_id}: accepted over a limit: {breach}")
        if limits is not None and entry.kind != "limits":
            self.violate(f"{entry.entry_id}: a {entry.kind} changed the limits")
        return expected, limits if limits is not None else last.limits

    def session_started(self, record: SessionRecord, purge_at: int, outcome: SessionOutcome) -> None:
        player = record.player_id
        last = self.snaps[player][-1]
        expected = SessionStarted if last.status is PlayerStatus.ACTIVE else AccountNotActive
        if not isinstance(outcome, expected):
            self.violate(f"start_session for {player} ({last.status}) returned {outcome}")
        if not isinstance(outcome, SessionStarted):
            return
        if purge_at != record.expires_at + GRACE_SECONDS:
            self.violate(f"session record for {player} purged at {purge_at}, not expiry + grace")
        if record.expires_at != record.issued_at + SESSION_SECONDS or record.issued_at > self.sim.clock.now:
            self.violate(f"session for {player} issued in the future or with the wrong lifetime: {record}")
        self.records[(player, record.token_hash)] = record
        self._push(
            player,
            replace(last, t=self.sim.clock.now, session_hash=record.token_hash, expires=record.expires_at),
        )

    def session_ended(self, player: str, ended: bool | None) -> None:
        last = self.snaps[player][-1]
        if ended is not (last.session_hash is not None):
            self.violate(f"end_session for {player} returned {ended}, the model had session {last.session_hash}")
        self._push(player, replace(last, t=self.sim.clock.now, session_hash=None, expires=None))

    def _push(self, player: str, snap: Snap) -> None:
        self.snaps[player].append(snap)
        self.wrote = True
        account = self.sim.inner.get_account(player)
        seen = (
            None
            if account is None
            else (
                account.balance,
                account.version,
                account.status,
                account.session_hash,
                account.session_expires_at,
                account.limits,
                account.counters,
            )
        )
        wanted = (snap.balance, snap.version, snap.status, snap.session_hash, snap.expires, snap.limits, snap.counters)
        if seen != wanted:
            self.violate(f"store's account {player} is {seen}, the model expects {wanted}")

    def window(self, player: str, first: int, t0: float, t1: float) -> list[Span]:
        """The states the account was in while an attempt ran, each with the span of time it held in that window."""
        snaps = self.snaps[player]
        spans = []
        for index in range(first, len(snaps)):
            start = max(snaps[index].t, t0)
            end = min(snaps[index + 1].t, t1) if index + 1 < len(snaps) else t1
            spans.append((snaps[index], start, max(start, end)))
        return spans


# --- the clients ------------------------------------------------------------------------------------------------


OPS: tuple[tuple[str, int], ...] = (
    ("bet", 24),
    ("win", 12),
    ("cancel", 5),
    ("zero_win", 5),
    ("bet_and_win", 2),
    ("credit_no_round", 2),
    ("balance", 8),
    ("replay", 6),
    ("twin", 6),
    ("cross_player", 4),
    ("conflict", 2),
    ("forged", 1),
    ("new_session", 6),
    ("revoke_session", 2),
    ("set_status", 3),
    ("set_limits", 3),
    ("deposit", 4),
    ("withdraw", 3),
    ("ref_of_another", 1),
)
STATUSES = (
    PlayerStatus.ACTIVE,
    PlayerStatus.ACTIVE,
    PlayerStatus.ACTIVE,
    PlayerStatus.SUSPENDED,
    PlayerStatus.SELF_EXCLUDED,
    PlayerStatus.CLOSED,
)


class Client:
    """A logical client: a Games Server worker and an operator, one call at a time, each step a store call."""

    def __init__(self, sim: Simulation, cid: int, ops: int) -> None:
        self.sim = sim
        self.cid = cid
        self.ops = ops
        self.attempt: Attempt | None = None

    def run(self) -> None:
        rng = self.sim.rng
        names = [name for name, _ in OPS]
        weights = [weight for _, weight in OPS]
        for _ in range(self.ops):
            op = rng.choices(names, weights)[0]
            getattr(self, f"op_{op}")()
            if self.sim.violations:
                return

    # --- workload ---------------------------------------------------------------------------------------------

    def _amount(self) -> Decimal:
        rng = self.sim.rng
        if rng.random() < 0.15:
            return Decimal(rng.randint(1, 40_000)) / 100
        return Decimal(rng.randint(1, 400))

    def _player(self) -> str:
        return self.sim.rng.choice(self.sim.players)

    def _token(self, player: str) -> str:
        """The session a game of this player runs on: mostly the latest issued, sometimes an older one."""
        world = self.sim
        tokens = world.tokens[player]
        if not tokens:
            return f"{player}.never-issued"
        if len(tokens) > 1 and world.rng.random() < 0.15:
            return world.rng.choice(tokens[:-1])
        return tokens[-1]

    def op_bet(self, player: str | None = None, trx: str | None = None, op: str = "do:bet") -> None:
        sim = self.sim
        player = player or self._player()
        token = self._token(player)
        game = sim.rng.choice(("slot", "egame", "bet"))
        game_uuid = sim.new_id("R")
        tag: dict[str, Any] = {"game": game, "game_id": f"g{sim.rng.randint(1, 3)}", "game_uuid": game_uuid}
        amount = self._amount()
        call = self.do(op, player, token, trx or sim.new_id("T"), amount, Decimal(0), tag)
        if call.final == "ok":
            sim.rounds.append(Round(player, token, game_uuid, amount, game))

    def op_bet_and_win(self) -> None:
        sim = self.sim
        player = self._player()
        tag = {"game": "slot", "game_id": "g1", "game_uuid": sim.new_id("R"), "lines": 9}
        self.do("do:bet_and_win", player, self._token(player), sim.new_id("T"), self._amount(), self._amount(), tag)

    def _round(self) -> Round | None:
        return self.sim.rng.choice(self.sim.rounds) if self.sim.rounds else None

    def op_win(self) -> None:
        round_ = self._round()
        if round_ is None:
            self.op_bet()
            return
        tag = {"game": round_.game, "game_id": "g1", "game_uuid": round_.game_uuid, "result": [7, 7, 7]}
        self.do("do:win", round_.player, round_.token, self.sim.new_id("T"), Decimal(0), self._amount(), tag)
        self._maybe_close(round_)

    def op_cancel(self) -> None:
        round_ = self._round()
        if round_ is None:
            self.op_bet()
            return
        tag = {"game": "bet", "game_id": "1009", "game_uuid": round_.game_uuid, "cancel": True, "bets": ["[0]:x"]}
        self.do("do:cancel", round_.player, round_.token, self.sim.new_id("T"), Decimal(0), round_.bet, tag)
        self._maybe_close(round_)

    def op_zero_win(self) -> None:
        round_ = self._round()
        if round_ is None:
            self.op_balance()
            return
        tag = {"game": round_.game, "game_id": "g1", "game_uuid": round_.game_uuid, "result": []}
        self.do("do:zero_win", round_.player, round_.token, self.sim.new_id("T"), Decimal(0), Decimal(0), tag)
        self._maybe_close(round_)

    def _maybe_close(self, round_: Round) -> None:
        if self.sim.rng.random() < 0.5 and round_ in self.sim.rounds:
            self.sim.rounds.remove(round_)

    def op_credit_no_round(self) -> None:
        player = self._player()
        tag = {"game": "slot", "game_id": "g2"}
        self.do("do:credit", player, self._token(player), self.sim.new_id("T"), Decimal(0), self._amount(), tag)

    def op_balance(self) -> None:
        player = self._player()
        tag = {"game": "slot", "game_id": ""}
        self.do("do:balance", player, self._token(player), self.sim.new_id("B"), Decimal(0), Decimal(0), tag)

    def op_replay(self, earlier: Call | None = None, op: str = "do:replay") -> None:
        sim = self.sim
        if earlier is None:
            if not sim.sent:
                self.op_bet()
                return
            earlier = sim.rng.choice(sim.sent)
        e = earlier
        self.do(op, e.player, e.token, e.trx_id, e.minus, e.plus, e.tag, e.body)

    def op_twin(self) -> None:
        sim = self.sim
        others = [cid for cid in sorted(sim.inflight) if cid != self.cid]
        if not others:
            self.op_replay()
            return
        self.op_replay(sim.inflight[sim.rng.choice(others)], "do:twin")

    def op_cross_player(self) -> None:
        sim = self.sim
        if not sim.sent:
            self.op_bet()
            return
        # Another client's call still in flight, so the two players race for the trx_id's first slot; or an old one.
        racing = [sim.inflight[cid] for cid in sorted(sim.inflight) if cid != self.cid]
        earlier = sim.rng.choice(racing) if racing and sim.rng.random() < 0.5 else sim.rng.choice(sim.sent)
        others = [p for p in sim.players if p != earlier.player]
        if sim.rng.random() < 0.5:
            self.op_bet(sim.rng.choice(others), earlier.trx_id, "do:cross_bet")
            return
        player = sim.rng.choice(others)
        round_ = next((r for r in sim.rounds if r.player == player), None)
        game_uuid = round_.game_uuid if round_ else sim.new_id("R")
        token = round_.token if round_ else self._token(player)
        tag = {"game": "slot", "game_id": "g1", "game_uuid": game_uuid}
        self.do("do:cross_win", player, token, earlier.trx_id, Decimal(0), self._amount(), tag)

    def op_conflict(self) -> None:
        sim = self.sim
        moves = [c for c in sim.sent if not c.is_balance]
        if not moves:
            self.op_bet()
            return
        earlier = sim.rng.choice(moves)
        tag = {**earlier.tag, "conflict": True}
        self.do("do:conflict", earlier.player, earlier.token, earlier.trx_id, earlier.minus, earlier.plus + 1, tag)

    def op_forged(self) -> None:
        sim = self.sim
        player = self._player()
        victim = sim.rng.choice(sim.players)
        secret = self._token(victim).partition(".")[2] or "x"
        tag = {"game": "slot", "game_id": "g1", "game_uuid": sim.new_id("R")}
        self.do("do:forged", player, f"{player}.{secret}x", sim.new_id("T"), self._amount(), Decimal(0), tag)

    # --- the operator ---------------------------------------------------------------------------------------------

    def op_new_session(self) -> None:
        player = self._player()
        call = Call(self.cid, "new_session", player)
        issued = self.operate(call, lambda: self.sim.wallet.new_session(player))
        if issued is not None:
            self.sim.tokens[player].append(issued.token)

    def op_revoke_session(self) -> None:
        player = self._player()
        self.operate(Call(self.cid, "revoke_session", player), lambda: self.sim.wallet.revoke_session(player))

    def op_set_status(self) -> None:
        player = self._player()
        status = self.sim.rng.choice(STATUSES)
        call = Call(self.cid, f"set_status:{status.value}", player)
        self.operate(call, lambda: self.sim.wallet.set_status(player, status, "simulated", "vopr"))

    def op_set_limits(self) -> None:
        """Random limits on a player: mostly set or lowered, sometimes raised or removed (those wait 24 h)."""
        rng = self.sim.rng
        player = self._player()
        changes: dict[Slot, Decimal | None] = {}
        for _ in range(rng.randint(1, 3)):
            slot = (rng.choice(list(LimitKind)), rng.choice(list(Period)))
            changes[slot] = None if rng.random() < 0.15 else Decimal(rng.randint(0, 800))
        call = Call(self.cid, "set_limits", player, self.sim.new_id("L"))
        self.operate(call, lambda: self.sim.wallet.set_limits(player, changes, "vopr", ref=call.trx_id))

    def op_deposit(self, player: str | None = None, ref: str | None = None, amount: Decimal | None = None) -> None:
        player = player or self._player()
        call = Call(self.cid, "deposit", player, ref or self.sim.new_id("D"), plus=amount or self._amount())
        self.operate(call, lambda: self.sim.wallet.deposit(player, call.plus, call.trx_id))

    def op_withdraw(self) -> None:
        player = self._player()
        call = Call(self.cid, "withdraw", player, self.sim.new_id("W"), minus=self._amount())
        self.operate(call, lambda: self.sim.wallet.withdraw(player, call.minus, call.trx_id))

    def op_ref_of_another(self) -> None:
        sim = self.sim
        done = [c for c in sim.operator_moves if c.final in ("ok", "refused")]
        if not done:
            self.op_deposit()
            return
        earlier = sim.rng.choice(done)
        others = [p for p in sim.players if p != earlier.player]
        self.op_deposit(sim.rng.choice(others), earlier.trx_id, earlier.plus or earlier.minus)

    # --- sending, retrying, checking ----------------------------------------------------------------------------

    def _start(self, call: Call, number: int) -> Attempt:
        sim = self.sim
        attempt = Attempt(call, number, len(sim.model.snaps[call.player]) - 1, sim.clock.now, sim.scheduler.steps)
        call.attempts.append(attempt)
        self.attempt = attempt
        return attempt

    def do(
        self,
        op: str,
        player: str,
        token: str,
        trx: str,
        minus: Decimal,
        plus: Decimal,
        tag: dict[str, Any],
        body: str | None = None,
    ) -> Call:
        sim = self.sim
        call = Call(self.cid, op, player, trx, minus, plus, tag, token, body or do_body(token, trx, minus, plus, tag))
        sim.calls.append(call)
        sim.inflight[self.cid] = call
        try:
            for number in range(PROVIDER_RETRIES + 1):
                attempt = self._start(call, number)
                try:
                    outcome = sim.wallet.handle_do(call.body)
                except BillingUnavailable as exc:
                    attempt.result = "5xx"
                    sim.log(f"{op} {player} {trx} -> 5xx ({exc})")
                    sim.clock.sleep(PROVIDER_PAUSE)
                    continue
                except Exception as exc:  # a 500: a bug, never an answer
                    attempt.result = "error"
                    call.final = "error"
                    sim.violate(f"/do {op} {player} {trx} raised {type(exc).__name__}: {exc}")
                    return call
                reply = outcome.reply
                sim.log(
                    f"{op} {player} {trx} -{minus}+{plus} -> {reply.status} {reply.balance} "
                    f"({outcome.event.value}{' conflict' if outcome.conflict else ''})"
                )
                sim.check_do(attempt, outcome)
                call.final = "ok" if reply.status == "OK" else "refused"
                break
            else:
                call.final = "gave_up"
                sim.log(f"{op} {player} {trx}: the provider gave up after {PROVIDER_RETRIES + 1} attempts")
        finally:
            self.attempt = None
            sim.inflight.pop(self.cid, None)
        sim.sent.append(call)
        return call

    def operate(self, call: Call, action: Callable[[], Any]) -> Any:
        sim = self.sim
        sim.calls.append(call)
        if call.op in ("deposit", "withdraw"):
            sim.operator_moves.append(call)
        try:
            for number in range(OPERATOR_RETRIES + 1):
                attempt = self._start(call, number)
                try:
                    result = action()
                except (StoreUnavailable, BillingContended) as exc:
                    attempt.result = "5xx"
                    sim.log(f"{call.op} {call.player} {call.trx_id} -> failed ({type(exc).__name__})")
                    continue
                except OperatorError as exc:
                    attempt.result = "refused"
                    call.final = "refused"
                    sim.log(f"{call.op} {call.player} {call.trx_id} -> refused: {exc}")
                    sim.check_operator(attempt, None, str(exc))
                    return None
                except Exception as exc:
                    attempt.result = "error"
                    call.final = "error"
                    sim.violate(f"operator {call.op} {call.player} raised {type(exc).__name__}: {exc}")
                    return None
                call.final = "ok"
                shown = result.status.value if isinstance(result, MoveResult) else result
                if call.op == "new_session":
                    shown = f"session {result.token_hash[:8]}"
                sim.log(f"{call.op} {call.player} {call.trx_id} -> {shown}")
                sim.check_operator(attempt, result, None)
                return result
            call.final = "gave_up"
            return None
        finally:
            self.attempt = None


# --- the simulation ---------------------------------------------------------------------------------------------


@dataclass
class SimResult:
    seed: int
    trace: list[str]
    violations: list[str]
    digest: str
    stats: dict[str, int]
    flags: str = ""  # the command-line flags that reproduce the run besides --seed

    @property
    def ok(self) -> bool:
        return not self.violations

    def report(self, tail: int = TRACE_TAIL) -> str:
        lines = [f"VOPR seed {self.seed}: {'ok' if self.ok else 'FAILED'} {self.stats}"]
        if self.violations:
            lines += ["violations:", *(f"  {v}" for v in self.violations[:10])]
            lines.append(f"trace tail ({min(tail, len(self.trace))} of {len(self.trace)} lines):")
            lines += [f"  {line}" for line in self.trace[-tail:]]
            lines.append(f"replay: .venv/bin/python -m tests.simulation.vopr --seed {self.seed}{self.flags} --trace")
        return "\n".join(lines)


@contextlib.contextmanager
def deterministic_runtime(seed: int) -> Iterator[None]:
    """The wallet's hidden inputs taken from the seed for the run (see the module's docstring)."""
    rng = random.Random(f"vopr:{seed}:runtime")
    saved = (sessions_module.secrets, operator_module.uuid)
    sessions_module.secrets = SimpleNamespace(  # type: ignore[assignment]
        token_urlsafe=lambda n: base64.urlsafe_b64encode(rng.randbytes(n)).rstrip(b"=").decode("ascii")
    )
    operator_module.uuid = SimpleNamespace(uuid4=lambda: uuid.UUID(int=rng.getrandbits(128), version=4))  # type: ignore[assignment]
    try:
        yield
    finally:
        sessions_module.secrets, operator_module.uuid = saved


StoreFactory = Callable[[], MemoryStore]
DEFAULT_OPS = (20, 40)


class Simulation:
    def __init__(
        self,
        seed: int,
        ops: tuple[int, int] = DEFAULT_OPS,
        store_factory: StoreFactory = MemoryStore,
        wallet_class: type[Wallet] = Wallet,
        strict_sessions: bool = True,
    ) -> None:
        self.seed = seed
        self.ops = ops
        self.strict_sessions = strict_sessions
        self.rng = random.Random(f"vopr:{seed}:workload")
        self.clock = SimClock(EPOCH)
        self.trace: list[str] = []
        self.violations: list[str] = []
        self.scheduler = Scheduler(self)
        self.model = Model(self)
        self.inner = store_factory()
        self.store = FaultyStore(self.inner, self)
        settings = Settings(table_name="sim", salt=SALT, session_key=SESSION_KEY)
        self.wallet = wallet_class(
            self.store,  # type: ignore[arg-type]  # a structural WalletStore
            Secrets(settings),
            session_seconds=SESSION_SECONDS,
            credit_grace_seconds=GRACE_SECONDS,
            clock=self.clock.time,
            sleep=self.clock.sleep,
            monotonic=self.clock.time,
            jitter=random.Random(f"vopr:{seed}:jitter"),
        )
        self.players = [f"p{i}" for i in range(self.rng.randint(3, 8))]
        self.n_clients = self.rng.randint(2, 6)
        self.n_ops = self.rng.randint(*ops)
        self.clients: dict[int, Client] = {}
        self.tokens: dict[str, list[str]] = {p: [] for p in self.players}
        self.rounds: list[Round] = []
        self.calls: list[Call] = []
        self.sent: list[Call] = []
        self.inflight: dict[int, Call] = {}
        self.operator_moves: list[Call] = []
        self._ids = 0

    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def log(self, text: str) -> None:
        elapsed = self.clock.now - EPOCH
        self.trace.append(f"{self.scheduler.steps:5d} {elapsed:10.4f} c{self.scheduler.current} {text}")

    def violate(self, text: str) -> None:
        self.violations.append(text)
        self.log(f"VIOLATION: {text}")

    def current_attempt(self) -> Attempt | None:
        client = self.clients.get(self.scheduler.current)
        return client.attempt if client else None

    # --- running ------------------------------------------------------------------------------------------------

    def run(self) -> SimResult:
        with deterministic_runtime(self.seed):
            self._set_up()
            self.store.armed = True
            per_client = [self.n_ops // self.n_clients] * self.n_clients
            for i in range(self.n_ops % self.n_clients):
                per_client[i] += 1
            for cid, ops in enumerate(per_client):
                self.clients[cid] = client = Client(self, cid, ops)
                self.scheduler.spawn(cid, client.run)
            self.scheduler.run(self._after_step)
            if self.scheduler.crash:
                self.violate(self.scheduler.crash)
            if not self.violations:
                self._final_checks()
        flags = "" if self.ops == DEFAULT_OPS else f" --ops {self.ops[0]} {self.ops[1]}"
        flags += "" if self.strict_sessions else " --no-strict-sessions"
        return SimResult(self.seed, self.trace, self.violations, self._digest(), self._stats(), flags)

    def _set_up(self) -> None:
        for player in self.players:
            self.wallet.create_player(player, CURRENCY, Decimal(self.rng.randint(0, 1500)))
            if self.rng.random() < 0.9:
                self.tokens[player].append(self.wallet.new_session(player).token)
        self.log(f"players {self.players}, clients {self.n_clients}, ops {self.n_ops}, faults {self.store.fault_rate}")

    def _after_step(self) -> bool:
        if self.model.wrote and not self.violations:
            self.model.wrote = False
            self.check_store()
        return not self.violations

    def check_store(self) -> None:
        report = audit_store(self.inner)
        for violation in report.violations:
            self.violate(f"audit: {violation}")
        for warning in report.warnings:
            if COUNTER_WARNING in warning:  # every counter here was written from the first entry on: must match
                self.violate(f"audit: {warning}")
        keys: set[tuple[str, str, str]] = set()
        for entry in self.inner.iter_entries():
            key = entry_ledger_key(entry)
            if key in keys:
                self.violate(f"two entries for {key}")
            keys.add(key)

    # --- the oracle -----------------------------------------------------------------------------------------------

    def _may_move(self, call: Call, snap: Snap, t: float) -> bool:
        """The session and status rules (docs/PROTOCOL.md, "Sessions" and "Player status") on one account state."""
        hashed = token_hash(call.token)
        live = snap.session_hash == hashed and snap.expires is not None and t < snap.expires
        if call.minus > 0 or call.game_uuid is None:
            return (call.minus == 0 or snap.status is PlayerStatus.ACTIVE) and live
        if snap.session_hash == hashed:
            return snap.expires is not None and t < snap.expires + GRACE_SECONDS
        record = self.model.records.get((call.player, hashed))
        return record is not None and t < record.expires_at + GRACE_SECONDS

    def _span_allows(self, call: Call, span: Span, allowed: bool) -> bool:
        """Whether, at some moment of the span, the rules give `allowed` for this call."""
        snap, start, end = span
        return any(self._may_move(call, snap, t) is allowed for t in (start, end))

    def _entry_exists(self, attempt: Attempt, landed: Landed | None) -> Callable[[Snap], bool]:
        """Whether the call's key had its entry in a given state of the player's account."""

        def exists_at(snap: Snap) -> bool:
            if landed is None:
                return False
            if landed.entry.player_id == attempt.call.player:
                return landed.entry.account_version <= snap.version
            return landed.step <= attempt.step0  # an operator ref another player's movement took before we began

        return exists_at

    def check_do(self, attempt: Attempt, outcome: Outcome) -> None:
        call = attempt.call
        reply = outcome.reply
        spans = self.model.window(call.player, attempt.first_snap, attempt.t0, self.clock.now)
        landed = self.model.ledger.get(call.ledger_key())
        exists_at = self._entry_exists(attempt, landed)
        what = f"{call.op} {call.player} {call.trx_id} -{call.minus}+{call.plus} got {reply.status} {reply.balance}"
        if reply.balance is not None and reply.currency != CURRENCY:
            self.violate(f"{what}: currency {reply.currency}")
        if attempt.writes and (reply.status != "OK" or outcome.event in (Event.DUPLICATE, Event.BALANCE)):
            self.violate(f"{what}: wrote {attempt.writes}")
        attempt.result = "refused"
        if call.is_balance:
            if reply.status == "OK":
                fits = any(s.balance == reply.balance and self._span_allows(call, (s, a, b), True) for s, a, b in spans)
            else:
                fits = reply.status == "session_not_found" and any(self._span_allows(call, x, False) for x in spans)
            if not fits:
                self.violate(f"{what}: no state of the account allows this balance reply")
        elif reply.status != "OK":
            self._check_refusal(call, reply, spans, exists_at, what)
        elif reply.status == "OK" and outcome.event is Event.DUPLICATE:
            attempt.result = "duplicate"
            self._check_replay(call, outcome, landed, spans, exists_at, what)
        elif reply.status == "OK":
            attempt.result = "applied"
            if landed is None or landed.attempt is not attempt:
                self.violate(f"{what}: OK ({outcome.event}) for money this request did not move")
                return
            self._check_applied(call, landed.entry, spans, what, reply.balance)
            if outcome.event.value != landed.entry.kind or outcome.conflict:
                self.violate(f"{what}: event {outcome.event} (conflict {outcome.conflict}) for {landed.entry}")

    def _check_refusal(
        self, call: Call, reply: Reply, spans: list[Span], exists_at: Callable[[Snap], bool], what: str
    ) -> None:
        if reply.status == "not_enough_money":
            if not any(
                not exists_at(s)
                and s.balance == reply.balance
                and (call.minus > s.balance or _over_limit(call, s, a, b))
                and self._span_allows(call, (s, a, b), True)
                for s, a, b in spans
            ):
                self.violate(f"{what}: no state of the account makes this not_enough_money")
        elif reply.status == "session_not_found":
            if not any(not exists_at(s) and self._span_allows(call, (s, a, b), False) for s, a, b in spans):
                self.violate(f"{what}: session_not_found, but every state the account was in allowed it")
        else:
            self.violate(f"{what}: a signed body answered {reply.status}")

    def _check_replay(
        self,
        call: Call,
        outcome: Outcome,
        landed: Landed | None,
        spans: list[Span],
        exists_at: Callable[[Snap], bool],
        what: str,
    ) -> None:
        if landed is None:
            self.violate(f"{what}: OK as a replay but the player has no entry for it")
            return
        if not any(exists_at(s) and s.balance == outcome.reply.balance for s, _, _ in spans):
            self.violate(f"{what}: replay balance is none the account had while it ran")
        creator = landed.attempt.call if landed.attempt else None
        differs = creator is not None and creator.movement != call.movement
        if outcome.conflict != differs:
            self.violate(f"{what}: conflict={outcome.conflict}, but the bodies differ: {differs}")

    def _check_applied(self, call: Call, entry: LedgerEntry, spans: list[Span], what: str, balance: Any) -> None:
        game = call.op.startswith("do")
        wanted = (call.player, call.minus, call.plus, call.game_uuid if game else None)
        if (entry.player_id, entry.minus, entry.plus, entry.game_uuid) != wanted:
            self.violate(f"{what}: the entry is {entry}")
        if game and (entry.tag != call.tag or entry.kind != expected_kind(call.minus, call.plus, call.game_uuid)):
            self.violate(f"{what}: the entry's tag or kind is wrong: {entry}")
        if balance is not None and balance != entry.balance_after:
            self.violate(f"{what}: the reply's balance is not the entry's {entry.balance_after}")
        based = [span for span in spans if span[0].version == entry.account_version - 1]
        if not based:
            self.violate(f"{what}: the entry's version {entry.account_version} was not written during the request")
        elif game and not any(self._span_allows(call, span, True) for span in based):
            self.violate(f"{what}: money moved on an account state whose session or status refused it")
        elif game and self.strict_sessions and (call.minus > 0 or call.game_uuid is None):
            # The live session when the write committed, not only when the account was read (see the docstring).
            if based[-1][0].session_hash != token_hash(call.token):
                self.violate(f"{what}: strict sessions: the debit committed after its session was replaced or ended")
        elif call.op == "deposit" and all(s.status is PlayerStatus.CLOSED for s, _, _ in based):
            self.violate(f"{what}: a deposit landed on a closed account")

    def check_operator(self, attempt: Attempt, result: Any, refusal: str | None) -> None:
        call = attempt.call
        what = f"{call.op} {call.player} {call.trx_id}"
        spans = self.model.window(call.player, attempt.first_snap, attempt.t0, self.clock.now)
        attempt.result = "refused" if refusal is not None else "applied"
        if call.op == "new_session":
            self._check_new_session(result, refusal, spans, what)
        elif refusal is not None and call.op not in ("deposit", "withdraw"):
            self.violate(f"{what}: refused: {refusal}")
        elif call.op == "set_limits":
            if result.status not in (MoveStatus.APPLIED, MoveStatus.DUPLICATE) or result.entry is None:
                self.violate(f"{what}: a limits change that did not write its entry: {result}")
        elif call.op.startswith("set_status"):
            if result.status is not MoveStatus.APPLIED or result.entry is None or attempt.writes != [result.entry]:
                self.violate(f"{what}: a status change that did not write its entry: {result}")
        elif call.op in ("deposit", "withdraw"):
            self._check_money_move(attempt, result, refusal, spans, what)

    def _check_new_session(self, issued: Any, refusal: str | None, spans: list[Span], what: str) -> None:
        if refusal is not None:
            if "no new session" not in refusal or all(s.status is PlayerStatus.ACTIVE for s, _, _ in spans):
                self.violate(f"{what}: refused ({refusal}) though the player was active throughout")
        elif (issued.player_id, issued.token_hash) not in self.model.records:
            self.violate(f"{what}: returned a session the store never started")

    def _check_money_move(
        self, attempt: Attempt, result: MoveResult | None, refusal: str | None, spans: list[Span], what: str
    ) -> None:
        call = attempt.call
        landed = self.model.ledger.get(call.ledger_key())
        if refusal is not None:
            self._check_money_refusal(attempt, landed, refusal, spans, what)
            return
        assert result is not None
        if result.status is MoveStatus.APPLIED:
            if landed is None or landed.attempt is not attempt:
                self.violate(f"{what}: applied, but this attempt wrote no entry")
            else:
                self._check_applied(call, landed.entry, spans, what, None)
        elif result.status is MoveStatus.DUPLICATE:
            attempt.result = "duplicate"
            if landed is None or landed.entry.player_id != call.player or attempt.writes:
                self.violate(f"{what}: a duplicate with no entry of the player's, or one that wrote: {landed}")
            elif (landed.entry.minus, landed.entry.plus) != (call.minus, call.plus) or result.conflict:
                self.violate(f"{what}: a duplicate of another movement was not refused as a conflict")
        else:
            self.violate(f"{what}: returned {result}")

    def _check_money_refusal(
        self, attempt: Attempt, landed: Landed | None, refusal: str, spans: list[Span], what: str
    ) -> None:
        call = attempt.call
        exists_at = self._entry_exists(attempt, landed)
        if attempt.writes:
            self.violate(f"{what}: refused ({refusal}) but wrote {attempt.writes}")
        if "used before" in refusal:
            first = None if landed is None else (landed.entry.player_id, landed.entry.minus, landed.entry.plus)
            fits = first is not None and first != (call.player, call.minus, call.plus)
        elif "are refused" in refusal:
            fits = call.op == "deposit" and any(
                not exists_at(s) and s.status is PlayerStatus.CLOSED for s, _, _ in spans
            )
        elif "not enough money" in refusal:
            fits = call.op == "withdraw" and any(not exists_at(s) and call.minus > s.balance for s, _, _ in spans)
        elif "limit" in refusal:
            fits = call.op == "deposit" and any(not exists_at(s) and _over_limit(call, s, a, b) for s, a, b in spans)
        else:
            fits = False
        if not fits:
            self.violate(f"{what}: refused ({refusal}), which no state of the account explains")

    # --- the end ------------------------------------------------------------------------------------------------

    def _final_checks(self) -> None:
        self.check_store()
        if not self.violations:
            self._check_ledger()
        if not self.violations:
            self._check_balances()

    def _check_ledger(self) -> None:
        """The store holds exactly the writes that crossed the boundary, each by an attempt that could not lie."""
        stored = {entry_ledger_key(e): e for e in self.inner.iter_entries()}
        if sorted(stored) != sorted(self.model.ledger):
            missing = sorted(set(self.model.ledger) - set(stored))[:5]
            extra = sorted(set(stored) - set(self.model.ledger))[:5]
            self.violate(f"the store's ledger differs from the writes that landed: missing {missing}, extra {extra}")
            return
        for key, landed in sorted(self.model.ledger.items()):
            if stored[key] != landed.entry:
                self.violate(f"entry {key} changed after it was written: {stored[key]}")
            if landed.attempt is not None and landed.attempt.result not in ("applied", "5xx"):
                self.violate(f"entry {key} written by an attempt that answered {landed.attempt.result}")

    def _check_balances(self) -> None:
        """From the clients' side: the opening, plus what they know landed (an OK), plus what the ledger holds for
        calls that only ever failed (a timeout after commit whose retries all failed too)."""
        by_key: dict[tuple[str, str, str], list[Call]] = {}
        for call in self.calls:
            if (call.op.startswith("do") and not call.is_balance) or call.op in ("deposit", "withdraw"):
                by_key.setdefault(call.ledger_key(), []).append(call)
        expected = dict(self.model.openings)
        for key, calls in sorted(by_key.items()):
            landed = self.model.ledger.get(key)
            answered_ok = any(c.final == "ok" for c in calls)
            if landed is None:
                if answered_ok:
                    self.violate(f"{key} was answered OK but has no entry")
                continue
            if not answered_ok and not any(a.result == "5xx" for c in calls for a in c.attempts):
                self.violate(f"{key} was refused every time, yet it has an entry")
            expected[landed.entry.player_id] += landed.entry.plus - landed.entry.minus
        for player in self.players:
            account = self.inner.get_account(player)
            balance = account.balance if account else None
            if balance != expected[player] or balance != self.model.snaps[player][-1].balance:
                self.violate(f"{player}: balance {balance}, the clients' ledger says {expected[player]}")

    def _digest(self) -> str:
        entries = sorted(json.dumps(e.as_json(), sort_keys=True) for e in self.inner.iter_entries())
        accounts = sorted(repr(a) for a in self.inner.iter_accounts())
        return hashlib.sha256("\n".join(entries + accounts).encode("utf-8")).hexdigest()

    def _stats(self) -> dict[str, int]:
        attempts = [a for c in self.calls for a in c.attempts]
        return {
            "players": len(self.players),
            "clients": self.n_clients,
            "calls": len(self.calls),
            "attempts": len(attempts),
            "failed_attempts": sum(a.result == "5xx" for a in attempts),
            "gave_up": sum(c.final == "gave_up" for c in self.calls),
            "entries": len(self.model.ledger),
            "steps": self.scheduler.steps,
        }


def run_seed(
    seed: int,
    ops: tuple[int, int] = DEFAULT_OPS,
    store_factory: StoreFactory = MemoryStore,
    wallet_class: type[Wallet] = Wallet,
    strict_sessions: bool = True,
) -> SimResult:
    """Run one seed: the same seed (and arguments) always gives the same trace and the same store."""
    return Simulation(seed, ops, store_factory, wallet_class, strict_sessions).run()


# --- the command line -----------------------------------------------------------------------------------------


def _run_range(args: tuple[int, int, tuple[int, int]]) -> tuple[int, int | None, str]:
    start, count, ops = args
    for seed in range(start, start + count):
        result = run_seed(seed, ops)
        if not result.ok:
            return count, seed, result.report()
    return count, None, ""


def soak(start: int, seeds: int, ops: tuple[int, int], jobs: int, every: int) -> int:
    """Seeds start..start+seeds-1, in chunks over `jobs` processes; stops at the first failing seed (exit 1)."""
    chunk = 100
    work = [(s, min(chunk, start + seeds - s), ops) for s in range(start, start + seeds, chunk)]
    began = time.monotonic()
    done = 0
    last_print = 0
    if jobs > 1:
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(jobs)
        results: Iterator[tuple[int, int | None, str]] = pool.imap(_run_range, work)
    else:
        pool = None
        results = map(_run_range, work)
    try:
        for count, failed, report in results:
            done += count
            if failed is not None:
                print(report, flush=True)
                print(f"FAILED at seed {failed} after {done} seeds", flush=True)
                return 1
            if done - last_print >= every or done == seeds:
                last_print = done
                elapsed = time.monotonic() - began
                print(f"{done}/{seeds} seeds ok, {done / elapsed:.0f} seeds/s, {elapsed:.0f} s", flush=True)
    finally:
        if pool is not None:
            pool.terminate()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation.vopr", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="run this one seed and print its summary (and trace tail on failure)")
    parser.add_argument("--trace", action="store_true", help="with --seed: print the whole trace")
    parser.add_argument("--seeds", type=int, default=1000, help="how many seeds to run (from --start)")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--ops", type=int, nargs=2, default=DEFAULT_OPS, metavar=("MIN", "MAX"), help="calls per seed")
    parser.add_argument("--jobs", type=int, default=1, help="processes for --seeds")
    parser.add_argument("--every", type=int, default=1000, help="print progress every this many seeds")
    parser.add_argument(
        "--strict-sessions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="require a debit's session to be live when its write commits (the default; see the docstring)",
    )
    args = parser.parse_args(argv)
    ops = (args.ops[0], args.ops[1])
    if args.seed is not None:
        result = run_seed(args.seed, ops, strict_sessions=args.strict_sessions)
        if args.trace:
            print("\n".join(result.trace))
        print(result.report())
        print(f"digest {result.digest}")
        return 0 if result.ok else 1
    return soak(args.start, args.seeds, ops, args.jobs, args.every)


if __name__ == "__main__":
    sys.exit(main())
