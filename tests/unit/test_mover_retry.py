"""The mover's retry after a lost race (issue 14, target 3, a busy player): bounded by its time budget, not by a small
count; full-jitter pauses within [0, cap]; a lost version race retried at once, without a pause or a read, from the
account the failed write returned.

Everything runs on the in-memory twin with the Mover's injected clock, sleep, monotonic time and jitter: the simulated
time advances by the pauses (and by a simulated write latency), never by the machine's."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from tests.support import SALT, SESSION_KEY
from wallet.bootstrap import Secrets
from wallet.money.ledger import Source
from wallet.money.memory import MemoryStore
from wallet.money.mover import (
    BACK_OFF_BASE_SECONDS,
    BACK_OFF_CAP_SECONDS,
    SENIORITY_RANKS,
    SENIORITY_STEP_SECONDS,
    BillingContended,
    MoveRequest,
    MoveStatus,
    back_off_seconds,
    seniority_pause_seconds,
)
from wallet.money.store import Contended, StaleAccount
from wallet.money.wallet import Wallet
from wallet.settings import DEFAULT_MAX_WRITE_ATTEMPTS, Settings

PLAYER = "p1"


class SimTime:
    """The wallet's clock, sleep and monotonic time at once: it moves by the pauses slept and by `write_latency` per
    write, nothing else."""

    def __init__(self, write_latency: float = 0.0) -> None:
        self.now = 1_800_000_000.0
        self.write_latency = write_latency
        self.pauses: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class Highest(random.Random):
    """A jitter that always draws the top of its window, so that the window itself can be checked."""

    def uniform(self, a: float, b: float) -> float:
        return max(a, b)


def wallet_on(sim: SimTime, jitter: random.Random | None = None, **kwargs: Any) -> Wallet:
    settings = Settings(table_name="wallet-test", salt=SALT, session_key=SESSION_KEY)
    wallet = Wallet(
        MemoryStore(),
        Secrets(settings),
        clock=sim.time,
        sleep=sim.sleep,
        monotonic=sim.time,
        jitter=jitter or random.Random("test_mover_retry"),
        **kwargs,
    )
    wallet.create_player(PLAYER, "FUN", Decimal(1000))
    return wallet


def losing(wallet: Wallet, sim: SimTime, losses: int, outcome: Any = None) -> list[int]:
    """The first `losses` writes lose (by default a version race that hands back the current account, as ALL_OLD
    does); every write takes sim.write_latency. Returns the running count of writes."""
    real = wallet.store.record
    count = [0]

    def record(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        sim.now += sim.write_latency
        if count[0] <= losses:
            if outcome is not None:
                return outcome()
            return StaleAccount(wallet.store.get_account(PLAYER))
        return real(*args, **kwargs)

    wallet.store.record = record  # type: ignore[method-assign]
    return count


def bet(trx_id: str = "t-1") -> MoveRequest:
    return MoveRequest(PLAYER, Source.GAME, trx_id, minus=Decimal(100), plus=Decimal(0))


def test_the_default_cap_is_generous() -> None:
    """The count is a safety cap, far above what the 2 s budget allows at even 10 ms per attempt."""
    assert DEFAULT_MAX_WRITE_ATTEMPTS >= 200
    assert wallet_on(SimTime()).max_write_attempts == DEFAULT_MAX_WRITE_ATTEMPTS


def test_keeps_retrying_past_ten_attempts_within_the_budget() -> None:
    sim = SimTime(write_latency=0.01)
    wallet = wallet_on(sim)
    count = losing(wallet, sim, 40)
    result = wallet.move(bet())
    assert result.status is MoveStatus.APPLIED
    assert result.attempts == 41
    assert count[0] == 41
    assert wallet.store.get_account(PLAYER).balance == 900  # type: ignore[union-attr]
    assert sim.now - 1_800_000_000.0 < wallet.retry_budget_seconds


def test_stops_at_the_budget_with_billing_contended() -> None:
    sim = SimTime(write_latency=0.02)
    wallet = wallet_on(sim)
    started = sim.now
    count = losing(wallet, sim, 10**6)
    with pytest.raises(BillingContended, match="gave up after"):
        wallet.move(bet())
    spent = sim.now - started
    # It gives up at the first attempt that would start past the budget: no sooner, and at most one write and one
    # pause later.
    assert (
        wallet.retry_budget_seconds <= spent <= wallet.retry_budget_seconds + sim.write_latency + BACK_OFF_CAP_SECONDS
    )
    assert 10 < count[0] < wallet.max_write_attempts  # the budget ended it, not the cap
    assert wallet.store.get_account(PLAYER).balance == 1000  # type: ignore[union-attr]


@pytest.mark.parametrize("budget", [0.1, 0.5, 2.0])
def test_the_budget_decides_how_long(budget: float) -> None:
    sim = SimTime(write_latency=0.015)
    wallet = wallet_on(sim, retry_budget_seconds=budget)
    losing(wallet, sim, 10**6)
    with pytest.raises(BillingContended):
        wallet.move(bet())
    assert budget <= sim.now - 1_800_000_000.0 <= budget + sim.write_latency


def test_a_clock_that_does_not_move_is_stopped_by_the_cap() -> None:
    sim = SimTime()
    wallet = wallet_on(sim, max_write_attempts=200)
    wallet.sleep = lambda _: None  # the simulated time never moves: only the count ends it
    count = losing(wallet, sim, 10**6)
    with pytest.raises(BillingContended, match="after 200 attempts"):
        wallet.move(bet())
    assert count[0] == 200


@pytest.mark.parametrize("lost", [lambda: StaleAccount(None), Contended])
def test_the_pauses_are_full_jitter_within_zero_and_the_cap(lost: Any) -> None:
    sim = SimTime(write_latency=0.001)
    wallet = wallet_on(sim, jitter=random.Random(7))
    losing(wallet, sim, 10**6, lost)
    with pytest.raises(BillingContended):
        wallet.move(bet())
    assert len(sim.pauses) > 50
    assert all(0 <= pause <= BACK_OFF_CAP_SECONDS for pause in sim.pauses)
    assert max(sim.pauses) > BACK_OFF_CAP_SECONDS / 2  # it reaches the cap's range
    assert min(sim.pauses) < BACK_OFF_CAP_SECONDS / 10  # full jitter: down to about nothing


def test_the_window_doubles_from_the_base_up_to_the_cap() -> None:
    sim = SimTime()
    wallet = wallet_on(sim, jitter=Highest())
    losing(wallet, sim, 8, Contended)
    assert wallet.move(bet()).attempts == 9
    expected = [min(BACK_OFF_CAP_SECONDS, BACK_OFF_BASE_SECONDS * 2**k) for k in range(1, 9)]
    assert sim.pauses == pytest.approx(expected)
    assert sim.pauses[:4] == pytest.approx([0.002, 0.004, 0.008, 0.016])
    assert sim.pauses[4:] == pytest.approx([BACK_OFF_CAP_SECONDS] * 4)


@pytest.mark.parametrize("pauses", [0, 1, 3, 5, 40, 10**4])
def test_back_off_seconds_stays_within_its_window(pauses: int) -> None:
    jitter = random.Random(pauses)
    window = min(BACK_OFF_CAP_SECONDS, BACK_OFF_BASE_SECONDS * 2 ** min(pauses + 1, 32))
    draws = [back_off_seconds(pauses, jitter) for _ in range(200)]
    assert all(0 <= draw <= window for draw in draws)
    assert back_off_seconds(pauses, Highest()) == pytest.approx(window)


def count_reads(wallet: Wallet) -> list[int]:
    """A one-item list that counts the store's account-and-entry reads from now on."""
    reads = [0]
    real_read = wallet.store.get_account_and_entry

    def read(*args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        return real_read(*args, **kwargs)

    wallet.store.get_account_and_entry = read  # type: ignore[method-assign]
    return reads


def test_a_lost_version_race_goes_again_from_the_account_returned_sooner_the_more_it_lost() -> None:
    """StaleAccount with the winner's account: no read, and a pause that shrinks with every loss (seniority: the
    oldest loser reaches the account first), none from the SENIORITY_RANKS-th loss on."""
    sim = SimTime()
    wallet = wallet_on(sim, jitter=Highest())
    reads = count_reads(wallet)
    losing(wallet, sim, 30)
    result = wallet.move(bet())
    assert result.attempts == 31
    assert reads[0] == 1  # the one read before the first attempt: every retry started from the returned account
    expected = [SENIORITY_STEP_SECONDS * (SENIORITY_RANKS - k) for k in range(1, SENIORITY_RANKS)]
    assert sim.pauses == pytest.approx(expected)
    assert sim.pauses == sorted(sim.pauses, reverse=True) and sim.pauses[-1] > 0
    assert sum(sim.pauses) < 0.05  # shorter than a newcomer's read, in all: newcomers do not jump the queue
    assert seniority_pause_seconds(SENIORITY_RANKS) == seniority_pause_seconds(10**6) == 0


def test_a_lost_race_without_the_account_reads_again_after_a_pause() -> None:
    sim = SimTime()
    wallet = wallet_on(sim, jitter=Highest())
    reads = count_reads(wallet)
    losing(wallet, sim, 2, lambda: StaleAccount(None))
    assert wallet.move(bet()).status is MoveStatus.APPLIED
    assert reads[0] == 3
    assert sim.pauses == pytest.approx([0.002, 0.004])


# --- a refusal is confirmed: the two halves of the read are not one snapshot --------------------------------------


def _hiding_the_entry_once(wallet: Wallet) -> list[int]:
    """The first read finds the account as it is but the trx_id's slot empty, as a BatchGetItem can when the twin of
    this request commits between its two reads; later reads are the store's own. Returns the read count."""
    real = wallet.store.get_account_and_entry
    reads = [0]

    def get_account_and_entry(*args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        account, entry = real(*args, **kwargs)
        return (account, None) if reads[0] == 1 else (account, entry)

    wallet.store.get_account_and_entry = get_account_and_entry  # type: ignore[method-assign]
    return reads


def test_a_twin_that_landed_between_the_reads_is_a_replay_not_a_refusal() -> None:
    """The stress run's concurrent pair: the twin took the balance to below the bet; the account read shows that, the
    slot read before it did not. Answering not_enough_money would refuse money already moved."""
    sim = SimTime()
    wallet = wallet_on(sim)
    everything = MoveRequest(PLAYER, Source.GAME, "all-in", minus=Decimal(1000), plus=Decimal(0))
    assert wallet.move(everything).status is MoveStatus.APPLIED  # the twin landed: balance 0
    reads = _hiding_the_entry_once(wallet)
    result = wallet.move(everything)
    assert result.status is MoveStatus.DUPLICATE
    assert result.conflict is False
    assert reads[0] == 2
    assert wallet.store.get_account(PLAYER).balance == 0  # type: ignore[union-attr]


def test_a_real_refusal_reads_the_slot_once_more_and_stands() -> None:
    sim = SimTime()
    wallet = wallet_on(sim)
    reads = _hiding_the_entry_once(wallet)  # nothing to hide: the slot is empty in both reads
    result = wallet.move(MoveRequest(PLAYER, Source.GAME, "too-big", minus=Decimal(1001), plus=Decimal(0)))
    assert result.status is MoveStatus.INSUFFICIENT
    assert reads[0] == 2
    assert wallet.store.get_account(PLAYER).balance == 1000  # type: ignore[union-attr]
