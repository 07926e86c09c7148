"""The operator's money under concurrency on DynamoDB Local: deposit twins keyed by one ref, and the responsible
gambling limits (layers/wallet/wallet/money/limits.py) under racing bets and deposits.

A limit's counters live on the account and are written in the movement's own conditional transaction (the account's
version guard), so racing movements can never take a counter over its limit: every movement that would is refused
(a bet gets not_enough_money, a deposit OVER_LIMIT) and moves nothing. Each test ends with the ledger audit.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from tests.support import do_body
from wallet.money.games_server import BillingUnavailable, Event
from wallet.money.ledger import LedgerEntry, Source
from wallet.money.limits import LimitKind, Period, period_key
from wallet.money.mover import BillingContended, MoveResult, MoveStatus
from wallet.money.operator_moves import OperatorError, Refusal
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store

pytestmark = pytest.mark.integration

T = TypeVar("T")
RETRIES = 11  # the Games Server's 1 + 10 attempts; an operator's client retrying a 503 the same way


def _race(calls: list[Callable[[], T]]) -> list[T]:
    """Every call at once, one thread each, released together by a barrier; the results in call order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _retrying(call: Callable[[], T], retried: tuple[type[Exception], ...]) -> T:
    """A 5xx (contention) is retried with the very same request, as the callers do."""
    for _ in range(RETRIES):
        try:
            return call()
        except retried:
            continue
    raise AssertionError(f"still contended after {RETRIES} attempts")


def _play(wallet: Wallet, body: str) -> dict[str, Any]:
    outcome = _retrying(lambda: wallet.handle_do(body), (BillingUnavailable,))
    return {"status": outcome.reply.status, "balance": outcome.reply.balance, "event": outcome.event}


def _deposit(wallet: Wallet, player: str, amount: Decimal, ref: str) -> MoveResult | OperatorError:
    def once() -> MoveResult | OperatorError:
        try:
            return wallet.deposit(player, amount, ref)
        except OperatorError as exc:
            return exc

    return _retrying(once, (BillingContended,))


def _ledger(wallet: Wallet, player: str) -> list[LedgerEntry]:
    """The player's entries in the order they were written (account version 0 is the opening balance)."""
    return sorted(wallet.history(player, limit=10_000), key=lambda entry: entry.account_version)


def _assert_audit_clean(wallet: Wallet) -> None:
    report = audit_store(wallet.store)
    assert report.violations == []
    assert report.clean


def _created(entry: LedgerEntry) -> float:
    return datetime.strptime(entry.created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _assert_counters(
    wallet: Wallet, player: str, kind: LimitKind, entries: list[LedgerEntry], count: Callable[[LedgerEntry], Decimal]
) -> None:
    """The account's counters of `kind`, for every period, equal what its entries of that period add up to
    (`count(entry)` each); exact even if the test ran across a UTC midnight."""
    account = wallet.account(player)
    for period in Period:
        counter = account.counters.by_slot.get((kind, period))
        assert counter is not None, (kind, period, account.counters)
        expected = sum(
            (count(entry) for entry in entries if period_key(period, _created(entry)) == counter.period), Decimal(0)
        )
        assert counter.amount == expected, (kind, period, counter, expected)


# --- (a) deposit twins: one ref, one entry ------------------------------------------------------------------------


def test_32_concurrent_twins_of_one_deposit_move_money_once(local_wallet: Wallet) -> None:
    """32 copies of the same deposit (same ref, same amount) at once: one entry, the balance moved once, and every
    copy answered with that one entry, APPLIED for exactly one and DUPLICATE for the 31 others."""
    local_wallet.create_player("dep", "FUN", Decimal(100))
    ref = f"pay-{uuid.uuid4().hex[:12]}"
    results = _race([lambda: _deposit(local_wallet, "dep", Decimal("250.50"), ref)] * 32)

    assert all(isinstance(result, MoveResult) for result in results), results
    moved = [result for result in results if isinstance(result, MoveResult)]
    assert Counter(result.status for result in moved) == {MoveStatus.APPLIED: 1, MoveStatus.DUPLICATE: 31}
    assert not any(result.conflict for result in moved)
    entry = moved[0].entry
    assert entry is not None
    # Every twin got the very same entry, equal in every field (the stored one, as the winner wrote it).
    assert all(result.entry == entry for result in moved), [r.entry for r in moved if r.entry != entry]
    assert (entry.trx_id, entry.kind, entry.minus, entry.plus) == (ref, "deposit", 0, Decimal("250.50"))
    assert (entry.balance_before, entry.balance_after) == (100, Decimal("350.50"))
    assert all(result.balance == Decimal("350.50") for result in moved)

    assert local_wallet.account("dep").balance == Decimal("350.50")
    deposits = [e for e in _ledger(local_wallet, "dep") if e.kind == "deposit"]
    assert deposits == [entry]

    # Later twins with another amount under the same ref: a conflict each, nothing moves.
    conflicts = _race([lambda: _deposit(local_wallet, "dep", Decimal(999), ref)] * 16)
    assert all(isinstance(c, OperatorError) and c.refusal is Refusal.CONFLICT for c in conflicts), conflicts
    assert local_wallet.account("dep").balance == Decimal("350.50")
    assert [e for e in _ledger(local_wallet, "dep") if e.kind == "deposit"] == [entry]
    _assert_audit_clean(local_wallet)


def test_racing_deposits_of_different_amounts_under_one_ref(local_wallet: Wallet) -> None:
    """16 copies of 40 and 16 of 70 race under one new ref: one of them lands; the copies of its amount get that
    entry (DUPLICATE), every copy of the other amount a conflict; the balance moved once, by the winner's amount."""
    local_wallet.create_player("mix", "FUN", Decimal(0))
    ref = f"pay-{uuid.uuid4().hex[:12]}"
    amounts = [Decimal(40), Decimal(70)] * 16
    results = _race([lambda amount=amount: _deposit(local_wallet, "mix", amount, ref) for amount in amounts])

    applied = [r for r in results if isinstance(r, MoveResult) and r.status is MoveStatus.APPLIED]
    assert len(applied) == 1, results
    winner = applied[0].entry
    assert winner is not None
    for amount, result in zip(amounts, results, strict=True):
        if amount == winner.plus:
            assert isinstance(result, MoveResult), result
            assert result.entry == winner
            assert not result.conflict
        else:
            assert isinstance(result, OperatorError), result
            assert result.refusal is Refusal.CONFLICT
    assert local_wallet.account("mix").balance == winner.plus
    assert [e for e in _ledger(local_wallet, "mix") if e.kind == "deposit"] == [winner]
    _assert_audit_clean(local_wallet)


# --- (b) bets against a wager or a loss limit ---------------------------------------------------------------------


def _bets_race(wallet: Wallet, player: str, amounts: list[int]) -> list[tuple[int, dict[str, Any]]]:
    session = wallet.new_session(player).token
    bodies = [
        do_body(session, f"bet-{i}-{uuid.uuid4().hex[:8]}", amount, 0, {"game": "slot", "game_uuid": f"r-{i}"})
        for i, amount in enumerate(amounts)
    ]
    replies = _race([lambda body=body: _play(wallet, body) for body in bodies])
    return list(zip(amounts, replies, strict=True))


def test_64_concurrent_bets_never_overshoot_a_wager_day_limit(local_wallet: Wallet) -> None:
    """A balance of 10000 but a wager limit of 1000 a day: of 64 racing bets of 25, exactly 40 fit; the 24 others get
    not_enough_money with the real balance; the wager counters hold exactly the 1000 accepted."""
    local_wallet.create_player("wager", "FUN", Decimal(10000))
    local_wallet.set_limits("wager", {(LimitKind.WAGER, Period.DAY): Decimal(1000)}, by="test")
    results = _bets_race(local_wallet, "wager", [25] * 64)

    statuses = Counter(reply["status"] for _, reply in results)
    assert statuses == {"OK": 40, "not_enough_money": 24}
    refused = [reply for _, reply in results if reply["status"] == "not_enough_money"]
    assert all(reply["event"] is Event.OVER_LIMIT for reply in refused)
    assert all(9000 <= reply["balance"] <= 10000 for reply in refused)  # the real balance, never zero

    bets = [e for e in _ledger(local_wallet, "wager") if e.source is Source.GAME]
    assert len(bets) == 40 and sum(e.minus for e in bets) == 1000
    assert local_wallet.account("wager").balance == 10000 - 1000
    # The wager counter, replayed over the entries in write order, never passed the limit.
    running = Decimal(0)
    for entry in bets:
        running += entry.minus
        assert running <= 1000
    _assert_counters(local_wallet, "wager", LimitKind.WAGER, bets, lambda e: e.minus)
    _assert_counters(local_wallet, "wager", LimitKind.LOSS, bets, lambda e: e.minus - e.plus)
    _assert_audit_clean(local_wallet)


def test_64_concurrent_bets_of_many_sizes_never_overshoot_a_loss_day_limit(local_wallet: Wallet) -> None:
    """64 racing bets of 1..13 (sum 448) against a loss limit of 200 a day: the accepted ones add up to at most 200,
    every refused one would have taken the final counter over 200, and the loss counters equal the accepted sum."""
    local_wallet.create_player("loss", "FUN", Decimal(5000))
    local_wallet.set_limits("loss", {(LimitKind.LOSS, Period.DAY): Decimal(200)}, by="test")
    amounts = [i % 13 + 1 for i in range(64)]
    results = _bets_race(local_wallet, "loss", amounts)

    accepted = [amount for amount, reply in results if reply["status"] == "OK"]
    refused = [(amount, reply) for amount, reply in results if reply["status"] != "OK"]
    assert {reply["status"] for _, reply in refused} <= {"not_enough_money"}
    assert all(reply["event"] is Event.OVER_LIMIT for _, reply in refused)
    assert refused, "the limit allowed every bet: the test proves nothing"
    total = sum(accepted)
    assert total <= 200
    # A refused bet was refused on a counter no higher than the final one: it would not fit now either.
    assert all(total + amount > 200 for amount, _ in refused), (total, sorted(a for a, _ in refused))

    bets = [e for e in _ledger(local_wallet, "loss") if e.source is Source.GAME]
    assert sorted(e.minus for e in bets) == sorted(Decimal(a) for a in accepted)
    running = Decimal(0)
    for entry in bets:
        running += entry.minus
        assert running <= 200
    assert local_wallet.account("loss").balance == 5000 - total
    _assert_counters(local_wallet, "loss", LimitKind.LOSS, bets, lambda e: e.minus - e.plus)
    _assert_counters(local_wallet, "loss", LimitKind.WAGER, bets, lambda e: e.minus)
    _assert_audit_clean(local_wallet)


def test_64_concurrent_bets_and_wins_under_a_loss_limit(local_wallet: Wallet) -> None:
    """Bets and wins race under a loss limit: wins are never refused and lower the counter; after every accepted bet
    (in write order) the loss counter is within the limit; the counters equal the ledger's bets minus wins."""
    local_wallet.create_player("swing", "FUN", Decimal(5000))
    local_wallet.set_limits("swing", {(LimitKind.LOSS, Period.DAY): Decimal(150)}, by="test")
    session = local_wallet.new_session("swing").token
    movements = [(10, 0) if i % 4 else (0, 7) for i in range(64)]  # 48 bets of 10, 16 wins of 7
    bodies = [
        do_body(session, f"m-{i}-{uuid.uuid4().hex[:8]}", minus, plus, {"game": "slot", "game_uuid": f"r-{i}"})
        for i, (minus, plus) in enumerate(movements)
    ]
    replies = _race([lambda body=body: _play(local_wallet, body) for body in bodies])

    for (minus, _), reply in zip(movements, replies, strict=True):
        if minus == 0:
            assert reply["status"] == "OK", reply  # a win is never refused by a limit
        else:
            assert reply["status"] in ("OK", "not_enough_money"), reply
            if reply["status"] == "not_enough_money":
                assert reply["event"] is Event.OVER_LIMIT
    moves = [e for e in _ledger(local_wallet, "swing") if e.source is Source.GAME]
    assert sum(1 for e in moves if e.plus) == 16
    refused = [reply for reply in replies if reply["status"] == "not_enough_money"]
    assert refused, "no bet was refused: the test proves nothing"
    loss = Decimal(0)
    for entry in moves:
        loss += entry.minus - entry.plus
        if entry.minus:
            assert loss <= 150, entry
    assert local_wallet.account("swing").balance == 5000 - loss
    _assert_counters(local_wallet, "swing", LimitKind.LOSS, moves, lambda e: e.minus - e.plus)
    _assert_counters(local_wallet, "swing", LimitKind.WAGER, moves, lambda e: e.minus)
    _assert_audit_clean(local_wallet)


# --- (c) deposits against a deposit limit -------------------------------------------------------------------------


def test_32_concurrent_deposits_never_overshoot_a_deposit_day_limit(local_wallet: Wallet) -> None:
    """A deposit limit of 1000 a day and 32 racing deposits of 50 with different refs: exactly 20 land, 12 are
    refused over_limit and move nothing; the deposit counters hold exactly 1000. The opening balance is not a
    deposit, and a replay of an accepted ref after the limit is full is still its entry, not a refusal."""
    local_wallet.create_player("cap", "FUN", Decimal(300))
    local_wallet.set_limits("cap", {(LimitKind.DEPOSIT, Period.DAY): Decimal(1000)}, by="test")
    refs = [f"cap-{i}-{uuid.uuid4().hex[:8]}" for i in range(32)]
    results = _race([lambda ref=ref: _deposit(local_wallet, "cap", Decimal(50), ref) for ref in refs])

    applied = [(ref, r) for ref, r in zip(refs, results, strict=True) if isinstance(r, MoveResult)]
    refused = [r for r in results if isinstance(r, OperatorError)]
    assert len(applied) == 20 and all(r.status is MoveStatus.APPLIED for _, r in applied), results
    assert len(refused) == 12 and all(r.refusal is Refusal.OVER_LIMIT for r in refused), refused
    assert local_wallet.account("cap").balance == 300 + 1000

    deposits = [e for e in _ledger(local_wallet, "cap") if e.kind == "deposit"]
    assert sorted(e.trx_id for e in deposits) == sorted(ref for ref, _ in applied)
    running = Decimal(0)
    for entry in deposits:
        running += entry.plus
        assert running <= 1000
    _assert_counters(local_wallet, "cap", LimitKind.DEPOSIT, deposits, lambda e: e.plus)

    replay = _deposit(local_wallet, "cap", Decimal(50), applied[0][0])
    assert isinstance(replay, MoveResult) and replay.status is MoveStatus.DUPLICATE, replay
    assert replay.entry == applied[0][1].entry
    one_more = _deposit(local_wallet, "cap", Decimal("0.01"), f"cap-more-{uuid.uuid4().hex[:8]}")
    assert isinstance(one_more, OperatorError) and one_more.refusal is Refusal.OVER_LIMIT
    assert local_wallet.account("cap").balance == 1300
    _assert_audit_clean(local_wallet)
