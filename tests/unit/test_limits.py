"""Responsible-gambling limits (wallet.money.limits and the mover that enforces them): loss, wager and deposit limits
per UTC day, ISO week and calendar month; lower at once, raise or remove after the cooling-off period.

On the in-memory twin (tests/unit/conftest.py's `store`, held to DynamoDB by tests/contract) with an injected clock,
so a day, a week or a year boundary is one assignment away."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import do_body
from tests.unit.test_billing import SLOT, Clock, wallet_on
from wallet.money.games_server import Event, Outcome
from wallet.money.ledger import Account, LedgerEntry, Source
from wallet.money.limits import (
    RAISE_DELAY_SECONDS,
    SLOTS,
    Counter,
    Counters,
    Limit,
    LimitKind,
    Limits,
    Period,
    first_breach,
    movement_deltas,
    parse_limit_changes,
    period_key,
)
from wallet.money.memory import MemoryStore
from wallet.money.mover import MoveStatus
from wallet.money.operator_moves import OperatorError, Refusal
from wallet.money.store import WalletStore
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store

LOSS, WAGER, DEPOSIT = LimitKind.LOSS, LimitKind.WAGER, LimitKind.DEPOSIT
DAY, WEEK, MONTH = Period.DAY, Period.WEEK, Period.MONTH
HOUR = 60 * 60
ONE_DAY = 24 * HOUR


def at(moment: str) -> float:
    """A UTC timestamp: at("2026-06-01T00:00:00")."""
    return datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()


# 2026-06-01 is a Monday and the first of a month: a day, a week and a month all start at this instant.
START = at("2026-06-01T00:00:00")


class Player:
    """p1 at the Games Server: bets, wins, cancels and zero wins through POST /do, with a session issued whenever the
    clock moved (a session lasts a day at most), and the operator's moves on the same wallet."""

    def __init__(self, wallet: Wallet, clock: Clock, player_id: str = "p1") -> None:
        self.wallet = wallet
        self.clock = clock
        self.player_id = player_id
        self._session: str | None = None
        self._issued_at: float | None = None

    @property
    def session(self) -> str:
        if self._session is None or self._issued_at != self.clock.now:
            self._session = self.wallet.new_session(self.player_id).token
            self._issued_at = self.clock.now
        return self._session

    def do(self, minus: Any, plus: Any, tag: dict[str, Any], trx_id: str | None = None) -> Outcome:
        return self.wallet.handle_do(do_body(self.session, trx_id or f"t-{uuid.uuid4().hex}", minus, plus, tag))

    def bet(self, amount: Any, trx_id: str | None = None, round_id: str = "R-1") -> Outcome:
        return self.do(amount, 0, {**SLOT, "game_uuid": round_id}, trx_id)

    def win(self, amount: Any, round_id: str = "R-1") -> Outcome:
        return self.do(0, amount, {**SLOT, "game_uuid": round_id, "result": [7, 7, 7]})

    def cancel(self, amount: Any, round_id: str = "B-1") -> Outcome:
        return self.do(0, amount, {"game": "bet", "game_id": "1009", "game_uuid": round_id, "cancel": True})

    def zero_win(self, round_id: str = "B-1") -> Outcome:
        return self.do(0, 0, {"game": "bet", "game_id": "1009", "game_uuid": round_id, "result": [0]})

    def limits(self, changes: dict[tuple[LimitKind, Period], Any], by: str = "ops@example") -> Any:
        return self.wallet.set_limits(self.player_id, changes, by=by)

    def counter(self, kind: LimitKind, period: Period) -> Decimal:
        return self.wallet.account(self.player_id).counters.current((kind, period), self.clock.now)

    def in_force(self, kind: LimitKind, period: Period) -> Decimal | None:
        return self.wallet.account(self.player_id).limits.effective((kind, period), self.clock.now)

    def snapshot(self) -> tuple[Any, ...]:
        """Everything a refused movement must leave alone: the money, the version, the counters, the limits, the
        ledger."""
        account = self.wallet.account(self.player_id)
        return account.balance, account.version, account.counters, account.limits, self.wallet.history(self.player_id)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def wallet(store: WalletStore, clock: Clock) -> Wallet:
    wallet = wallet_on(store, clock)
    wallet.create_player("p1", "FUN", Decimal(10_000))
    return wallet


@pytest.fixture
def p1(wallet: Wallet, clock: Clock) -> Player:
    return Player(wallet, clock)


def ok(outcome: Outcome, balance: Any) -> None:
    assert outcome.reply.to_json() == f'{{"status":"OK","balance":{balance},"currency":"FUN"}}', outcome


def refused(outcome: Outcome, balance: Any) -> None:
    """The reply to a bet over a limit: not_enough_money with the real balance."""
    assert outcome.reply.to_json() == f'{{"status":"not_enough_money","balance":{balance},"currency":"FUN"}}', outcome
    assert outcome.event is Event.OVER_LIMIT, outcome


# --- period keys and roll-over ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "moment", "key"),
    [
        (DAY, "2026-06-01T00:00:00", "2026-06-01"),
        (DAY, "2026-06-01T23:59:59.999999", "2026-06-01"),
        (DAY, "2026-06-02T00:00:00", "2026-06-02"),
        (DAY, "2024-02-29T12:00:00", "2024-02-29"),
        (WEEK, "2026-06-01T00:00:00", "2026-W23"),  # a Monday
        (WEEK, "2026-06-07T23:59:59", "2026-W23"),  # its Sunday
        (WEEK, "2026-06-08T00:00:00", "2026-W24"),
        # ISO weeks across a year boundary: the week belongs to the year of its Thursday.
        (WEEK, "2020-12-31T00:00:00", "2020-W53"),
        (WEEK, "2021-01-03T23:59:59", "2020-W53"),
        (WEEK, "2021-01-04T00:00:00", "2021-W01"),
        (WEEK, "2024-12-30T00:00:00", "2025-W01"),  # a December day in next year's first week
        (WEEK, "2024-12-29T23:59:59", "2024-W52"),
        (WEEK, "2027-01-01T00:00:00", "2026-W53"),  # a January day in last year's last week
        (WEEK, "2027-01-09T00:00:00", "2027-W01"),
        (MONTH, "2026-06-30T23:59:59", "2026-06"),
        (MONTH, "2026-07-01T00:00:00", "2026-07"),
        (MONTH, "2026-12-31T23:59:59", "2026-12"),
        (MONTH, "2027-01-01T00:00:00", "2027-01"),
    ],
)
def test_period_keys_are_utc_days_iso_weeks_and_months(period: Period, moment: str, key: str) -> None:
    assert period_key(period, at(moment)) == key


def test_period_keys_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: local midnight is far from UTC's
    time.tzset()
    try:
        assert period_key(DAY, at("2026-06-01T23:00:00")) == "2026-06-01"
        assert period_key(WEEK, at("2026-06-07T23:00:00")) == "2026-W23"
        assert period_key(MONTH, at("2026-06-30T23:00:00")) == "2026-06"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_counters_roll_over_at_utc_midnight(p1: Player, clock: Clock) -> None:
    p1.limits({(WAGER, DAY): Decimal(100)})
    clock.now = at("2026-06-02T23:59:59")
    ok(p1.bet(100), 9900)
    clock.now = at("2026-06-02T23:59:59.999")
    refused(p1.bet(1), 9900)
    clock.now = at("2026-06-03T00:00:00")
    assert p1.counter(WAGER, DAY) == 0
    assert p1.counter(WAGER, WEEK) == 100  # the same week and month go on counting
    assert p1.counter(WAGER, MONTH) == 100
    ok(p1.bet(100), 9800)
    refused(p1.bet(1), 9800)
    assert p1.counter(WAGER, DAY) == 100
    assert p1.counter(WAGER, WEEK) == 200


def test_counters_roll_over_on_monday(p1: Player, clock: Clock) -> None:
    p1.limits({(WAGER, WEEK): Decimal(100), (LOSS, WEEK): Decimal(100)})
    ok(p1.bet(60), 9940)  # Monday
    clock.now = at("2026-06-07T23:59:59")  # Sunday
    ok(p1.bet(40), 9900)
    refused(p1.bet(1), 9900)
    clock.now = at("2026-06-08T00:00:00")  # the next Monday
    assert (p1.counter(WAGER, WEEK), p1.counter(LOSS, WEEK)) == (0, 0)
    ok(p1.bet(100), 9800)
    refused(p1.bet(1), 9800)


def test_counters_roll_over_at_the_month_start(p1: Player, clock: Clock) -> None:
    p1.limits({(LOSS, MONTH): Decimal(100)})
    ok(p1.bet(70), 9930)
    clock.now = at("2026-06-30T23:59:59")
    ok(p1.bet(30), 9900)
    refused(p1.bet(1), 9900)
    clock.now = at("2026-07-01T00:00:00")  # a Wednesday: the month rolls over, not the week
    assert p1.counter(LOSS, MONTH) == 0
    assert p1.counter(LOSS, WEEK) == 30
    ok(p1.bet(100), 9800)
    refused(p1.bet(1), 9800)


def test_a_week_limit_spans_the_year_boundary(p1: Player, clock: Clock) -> None:
    """2026-W53 runs from Monday 28 December 2026 to Sunday 3 January 2027: the month and the year roll over in the
    middle of it, the week does not."""
    clock.now = at("2026-12-28T10:00:00")
    p1.limits({(WAGER, WEEK): Decimal(100)})
    ok(p1.bet(60), 9940)
    clock.now = at("2027-01-01T10:00:00")
    assert p1.counter(WAGER, MONTH) == 0
    assert p1.counter(WAGER, WEEK) == 60
    refused(p1.bet(41), 9940)
    clock.now = at("2027-01-03T23:59:59")
    ok(p1.bet(40), 9900)
    refused(p1.bet(1), 9900)
    clock.now = at("2027-01-04T00:00:00")  # 2027-W01
    ok(p1.bet(100), 9800)


# --- bets over a limit ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [WAGER, LOSS])
@pytest.mark.parametrize("period", [DAY, WEEK, MONTH])
def test_a_bet_over_a_limit_gets_not_enough_money_and_moves_nothing(
    p1: Player, clock: Clock, kind: LimitKind, period: Period
) -> None:
    p1.limits({(kind, period): Decimal(100)})
    clock.now += 2 * HOUR
    ok(p1.bet(60), 9940)
    before = p1.snapshot()
    outcome = p1.bet(41, trx_id="over")
    refused(outcome, 9940)
    assert outcome.detail == f"{kind.value} limit per {period.value} is 100: this would make it 101"
    assert p1.snapshot() == before  # balance, version, counters, limits and history unchanged
    assert p1.wallet.store.get_account_and_entry("p1", Source.GAME, "over")[1] is None
    # Refused, the trx_id is still free: the same bet within the limit is a new transaction, not a replay.
    ok(p1.bet(40, trx_id="over"), 9900)
    assert p1.counter(kind, period) == 100
    refused(p1.bet(Decimal("0.00000001")), 9900)
    assert audit_store(p1.wallet.store).clean


def test_a_bet_over_a_limit_and_over_the_balance_is_not_enough_money(p1: Player) -> None:
    p1.limits({(WAGER, DAY): Decimal(100)})
    outcome = p1.bet(20_000)
    assert outcome.reply.to_json() == '{"status":"not_enough_money","balance":10000,"currency":"FUN"}'
    assert outcome.event is Event.NOT_ENOUGH_MONEY


def test_the_strictest_limit_in_force_decides(p1: Player, clock: Clock) -> None:
    p1.limits({(WAGER, DAY): Decimal(500), (WAGER, WEEK): Decimal(300), (LOSS, MONTH): Decimal(1000)})
    ok(p1.bet(200), 9800)
    clock.now += ONE_DAY
    outcome = p1.bet(101)
    refused(outcome, 9800)
    assert outcome.detail == "wager limit per week is 300: this would make it 301"
    ok(p1.bet(100), 9700)


def test_a_bet_and_win_counts_its_bet_as_wager_and_its_net_as_loss(p1: Player) -> None:
    p1.limits({(WAGER, DAY): Decimal(100)})
    ok(p1.do(80, 500, {**SLOT, "game_uuid": "R-9"}), 10420)
    assert (p1.counter(WAGER, DAY), p1.counter(LOSS, DAY)) == (80, -420)
    refused(p1.do(21, 1000, {**SLOT, "game_uuid": "R-10"}), 10420)  # its wager goes over, whatever it wins


# --- wins, cancels and zero wins are never refused -------------------------------------------------------------------


def test_money_owed_lands_while_the_loss_counter_is_over_a_freshly_lowered_limit(p1: Player) -> None:
    ok(p1.bet(300, round_id="R-1"), 9700)
    ok(p1.bet(200, round_id="B-1"), 9500)
    p1.limits({(LOSS, DAY): Decimal(100), (LOSS, WEEK): Decimal(50), (WAGER, DAY): Decimal(10)})
    assert p1.counter(LOSS, DAY) == 500  # over every loss limit now
    refused(p1.bet(1), 9500)
    ok(p1.win(50, round_id="R-1"), 9550)
    ok(p1.cancel(20, round_id="B-1"), 9570)
    ok(p1.zero_win(round_id="B-1"), 9570)
    assert p1.counter(LOSS, DAY) == 430
    assert p1.counter(WAGER, DAY) == 500  # wins take nothing off the wager
    newest_first = sorted(p1.wallet.history("p1"), key=lambda e: -e.account_version)
    assert [e.kind for e in newest_first][:3] == ["zero_win", "win", "win"]
    refused(p1.bet(1), 9570)


def test_loss_counts_bets_minus_wins_and_cancels(p1: Player) -> None:
    ok(p1.bet(100), 9900)
    ok(p1.win(30), 9930)
    ok(p1.bet(50, round_id="B-1"), 9880)
    ok(p1.cancel(20), 9900)
    ok(p1.zero_win(), 9900)
    for period in Period:
        assert p1.counter(LOSS, period) == 100
        assert p1.counter(WAGER, period) == 150
    p1.limits({(LOSS, DAY): Decimal(120)})
    ok(p1.bet(20), 9880)
    refused(p1.bet(1), 9880)
    # A player who is ahead has a negative loss: the limit allows that much more.
    ok(p1.win(500), 10380)
    assert p1.counter(LOSS, DAY) == -380
    ok(p1.bet(500), 9880)
    refused(p1.bet(1), 9880)


def test_deposits_and_withdrawals_do_not_count_as_loss_or_wager(p1: Player) -> None:
    p1.wallet.deposit("p1", Decimal(500), "dep-1")
    p1.wallet.withdraw("p1", Decimal(200), "wd-1")
    assert (p1.counter(LOSS, DAY), p1.counter(WAGER, DAY)) == (0, 0)
    assert p1.counter(DEPOSIT, DAY) == 500
    p1.limits({(LOSS, DAY): Decimal(10)})
    ok(p1.bet(10), 10290)


# --- changing limits --------------------------------------------------------------------------------------------------


def test_lowering_a_limit_takes_effect_at_once(p1: Player) -> None:
    p1.limits({(LOSS, DAY): Decimal(500)})
    ok(p1.bet(200), 9800)
    p1.limits({(LOSS, DAY): Decimal(250)})
    assert p1.in_force(LOSS, DAY) == 250
    refused(p1.bet(51), 9800)
    ok(p1.bet(50), 9750)
    refused(p1.bet(1), 9750)


def test_a_new_limit_takes_effect_at_once(p1: Player) -> None:
    p1.limits({(WAGER, MONTH): Decimal(10)})
    refused(p1.bet(11), 10000)
    ok(p1.bet(10), 9990)


def test_a_zero_limit_refuses_every_bet_and_no_win(p1: Player) -> None:
    p1.limits({(WAGER, DAY): Decimal(0)})
    refused(p1.bet(Decimal("0.00000001")), 10000)
    ok(p1.win(5), 10005)
    ok(p1.zero_win(), 10005)


@pytest.mark.parametrize(
    ("kind", "period"),
    [(WAGER, MONTH), (LOSS, MONTH), (LOSS, WEEK), (WAGER, WEEK)],
)
def test_raising_a_limit_takes_effect_after_24_hours(p1: Player, clock: Clock, kind: LimitKind, period: Period) -> None:
    """(Periods longer than a day: the 24 hours must not roll the counter over.)"""
    p1.limits({(kind, period): Decimal(100)})
    ok(p1.bet(100), 9900)
    clock.now += 5
    asked_at = clock.now
    p1.limits({(kind, period): Decimal(300)})
    assert p1.in_force(kind, period) == 100
    view = p1.wallet.account("p1").limits.as_json(clock.now)
    assert view == {kind.value: {period.value: {"amount": 100, "pending": 300, "pending_at": asked_at + ONE_DAY}}}
    refused(p1.bet(1), 9900)
    clock.now = asked_at + ONE_DAY - 1
    refused(p1.bet(1), 9900)
    clock.now = asked_at + ONE_DAY
    assert p1.in_force(kind, period) == 300
    ok(p1.bet(200), 9700)
    refused(p1.bet(1), 9700)
    assert p1.wallet.account("p1").limits.as_json(clock.now) == {kind.value: {period.value: {"amount": 300}}}


@pytest.mark.parametrize(("kind", "period"), [(LOSS, WEEK), (WAGER, MONTH)])
def test_removing_a_limit_takes_effect_after_24_hours(
    p1: Player, clock: Clock, kind: LimitKind, period: Period
) -> None:
    p1.limits({(kind, period): Decimal(100)})
    ok(p1.bet(100), 9900)
    clock.now += HOUR
    asked_at = clock.now
    p1.limits({(kind, period): None})
    view = p1.wallet.account("p1").limits.as_json(clock.now)
    assert view == {kind.value: {period.value: {"amount": 100, "pending": None, "pending_at": asked_at + ONE_DAY}}}
    refused(p1.bet(1), 9900)
    clock.now = asked_at + ONE_DAY - 1
    refused(p1.bet(1), 9900)
    clock.now = asked_at + ONE_DAY
    assert p1.in_force(kind, period) is None
    ok(p1.bet(5000), 4900)
    assert p1.wallet.account("p1").limits.as_json(clock.now) == {}


def test_raising_a_deposit_limit_waits_too(p1: Player, clock: Clock) -> None:
    p1.limits({(DEPOSIT, MONTH): Decimal(100)})
    p1.wallet.deposit("p1", Decimal(100), "dep-1")
    p1.limits({(DEPOSIT, MONTH): Decimal(1000)})
    with pytest.raises(OperatorError) as refusal:
        p1.wallet.deposit("p1", Decimal(1), "dep-2")
    assert refusal.value.refusal is Refusal.OVER_LIMIT
    clock.now += RAISE_DELAY_SECONDS
    assert p1.wallet.deposit("p1", Decimal(1), "dep-2").status is MoveStatus.APPLIED


def test_a_pending_raise_is_dropped_by_a_lower_value(p1: Player, clock: Clock) -> None:
    p1.limits({(WAGER, MONTH): Decimal(100)})
    p1.limits({(WAGER, MONTH): Decimal(300)})
    clock.now += HOUR
    p1.limits({(WAGER, MONTH): Decimal(80)})
    assert p1.wallet.account("p1").limits.by_slot == {(WAGER, MONTH): Limit(Decimal(80))}
    clock.now += 2 * ONE_DAY
    assert p1.in_force(WAGER, MONTH) == 80
    ok(p1.bet(80), 9920)
    refused(p1.bet(1), 9920)


def test_a_pending_removal_is_dropped_by_a_lower_value_and_the_same_value_withdraws_a_raise(
    p1: Player, clock: Clock
) -> None:
    p1.limits({(LOSS, MONTH): Decimal(100), (WAGER, MONTH): Decimal(100)})
    p1.limits({(LOSS, MONTH): None, (WAGER, MONTH): Decimal(500)})
    p1.limits({(LOSS, MONTH): Decimal(90), (WAGER, MONTH): Decimal(100)})
    clock.now += 2 * ONE_DAY
    assert (p1.in_force(LOSS, MONTH), p1.in_force(WAGER, MONTH)) == (90, 100)


def test_a_raise_asked_again_restarts_the_cooling_off(p1: Player, clock: Clock) -> None:
    p1.limits({(WAGER, MONTH): Decimal(100)})
    p1.limits({(WAGER, MONTH): Decimal(300)})
    clock.now += 12 * HOUR
    p1.limits({(WAGER, MONTH): Decimal(200)})
    clock.now += 12 * HOUR  # 24 h after the first raise: the second one still waits
    assert p1.in_force(WAGER, MONTH) == 100
    clock.now += 12 * HOUR
    assert p1.in_force(WAGER, MONTH) == 200


def test_the_limits_entry_in_the_ledger(p1: Player, clock: Clock) -> None:
    p1.limits({(LOSS, WEEK): Decimal(50)})
    before = p1.wallet.account("p1")
    result = p1.wallet.set_limits(
        "p1", {(LOSS, DAY): Decimal("100.5"), (LOSS, WEEK): None, (DEPOSIT, MONTH): Decimal(0)}, by="alice@ops"
    )
    assert result.status is MoveStatus.APPLIED
    entry = result.entry
    assert entry is not None
    assert (entry.kind, entry.source, entry.minus, entry.plus) == ("limits", Source.OPERATOR, 0, 0)
    assert (entry.balance_before, entry.balance_after) == (10_000, 10_000)
    assert entry.account_version == before.version + 1
    assert entry.trx_id.startswith("limits#p1#")
    assert entry.tag == {
        "operator": "limits",
        "limits": {"deposit": {"month": Decimal(0)}, "loss": {"day": Decimal("100.5"), "week": None}},
        "by": "alice@ops",
    }
    assert entry.as_json()["tag"] == {
        "operator": "limits",
        "limits": {"deposit": {"month": 0}, "loss": {"day": "100.5", "week": None}},
        "by": "alice@ops",
    }
    assert entry in p1.wallet.history("p1")
    after = p1.wallet.account("p1")
    assert (after.balance, after.version) == (10_000, before.version + 1)
    assert after.limits.as_json(clock.now) == {
        "deposit": {"month": {"amount": 0}},
        "loss": {
            "day": {"amount": Decimal("100.5")},
            "week": {"amount": 50, "pending": None, "pending_at": 1780358400},
        },
    }
    assert audit_store(p1.wallet.store).clean


def test_a_limits_change_with_a_ref_is_recorded_once(p1: Player) -> None:
    first = p1.wallet.set_limits("p1", {(LOSS, DAY): Decimal(100)}, by="alice", ref="lim-1")
    again = p1.wallet.set_limits("p1", {(LOSS, DAY): Decimal(100)}, by="alice", ref="lim-1")
    assert (first.status, again.status) == (MoveStatus.APPLIED, MoveStatus.DUPLICATE)
    assert again.entry == first.entry
    with pytest.raises(OperatorError) as conflict:
        p1.wallet.set_limits("p1", {(LOSS, DAY): Decimal(10)}, by="alice", ref="lim-1")
    assert conflict.value.refusal is Refusal.CONFLICT
    assert p1.in_force(LOSS, DAY) == 100
    assert sorted(e.kind for e in p1.wallet.history("p1")) == ["limits", "opening"]


def test_limits_of_an_unknown_player_or_nothing_to_change(wallet: Wallet) -> None:
    with pytest.raises(OperatorError) as unknown:
        wallet.set_limits("ghost", {(LOSS, DAY): Decimal(1)}, by="alice")
    assert unknown.value.refusal is Refusal.NOT_FOUND
    with pytest.raises(OperatorError) as empty:
        wallet.set_limits("p1", {}, by="alice")
    assert empty.value.refusal is Refusal.INVALID


# --- deposit limits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", [DAY, WEEK, MONTH])
def test_a_deposit_over_the_deposit_limit_is_refused_and_moves_nothing(
    p1: Player, clock: Clock, period: Period
) -> None:
    p1.limits({(DEPOSIT, period): Decimal(500)})
    assert p1.wallet.deposit("p1", Decimal(300), "dep-1").balance == 10_300
    clock.now += HOUR
    before = p1.snapshot()
    with pytest.raises(OperatorError) as refusal:
        p1.wallet.deposit("p1", Decimal(201), "dep-2")
    assert refusal.value.refusal is Refusal.OVER_LIMIT
    assert refusal.value.balance == 10_300
    assert f"deposit limit per {period.value} is 500" in str(refusal.value)
    assert p1.snapshot() == before
    assert p1.wallet.store.get_account_and_entry("p1", Source.OPERATOR, "dep-2")[1] is None
    # Exactly up to the limit is allowed; the refused ref was not used up.
    assert p1.wallet.deposit("p1", Decimal(200), "dep-2").balance == 10_500
    # A replay of an accepted deposit is still answered (replays come before the limits).
    assert p1.wallet.deposit("p1", Decimal(300), "dep-1").status is MoveStatus.DUPLICATE
    # Withdrawals and game wins are not deposits.
    p1.wallet.withdraw("p1", Decimal(100), "wd-1")
    ok(p1.win(100), 10_500)
    assert p1.counter(DEPOSIT, period) == 500


# --- replays, and counters for every player -------------------------------------------------------------------------


def test_a_replayed_bet_after_the_limit_is_reached_is_still_ok(p1: Player) -> None:
    p1.limits({(WAGER, DAY): Decimal(100)})
    ok(p1.bet(100, trx_id="t-1"), 9900)
    refused(p1.bet(1, trx_id="t-2"), 9900)
    replay = p1.bet(100, trx_id="t-1")
    ok(replay, 9900)
    assert replay.event is Event.DUPLICATE
    p1.limits({(WAGER, DAY): Decimal(1)})  # lowered below what the replayed bet itself counted
    ok(p1.bet(100, trx_id="t-1"), 9900)
    assert p1.counter(WAGER, DAY) == 100


def test_counters_run_without_limits_so_a_limit_set_mid_day_counts_the_mornings_bets(p1: Player, clock: Clock) -> None:
    clock.now = at("2026-06-03T09:00:00")
    ok(p1.bet(200), 9800)
    ok(p1.bet(100), 9700)
    assert p1.wallet.account("p1").limits == Limits()
    assert p1.counter(WAGER, DAY) == 300
    assert p1.counter(LOSS, DAY) == 300
    clock.now = at("2026-06-03T12:00:00")
    p1.limits({(WAGER, DAY): Decimal(350)})
    refused(p1.bet(51), 9700)
    ok(p1.bet(50), 9650)
    refused(p1.bet(1), 9650)


def test_a_balance_request_and_a_zero_win_leave_the_counters_alone(p1: Player) -> None:
    ok(p1.bet(10), 9990)
    counters = p1.wallet.account("p1").counters
    ok(p1.do(0, 0, {"game": "slot", "game_id": ""}), 9990)
    ok(p1.zero_win(), 9990)
    assert p1.wallet.account("p1").counters == counters


# --- the pure functions ---------------------------------------------------------------------------------------------


def test_movement_deltas() -> None:
    d = Decimal
    assert movement_deltas(game=True, deposit=False, minus=d(5), plus=d(2)) == {WAGER: 5, LOSS: 3}
    assert movement_deltas(game=True, deposit=False, minus=d(0), plus=d(7)) == {WAGER: 0, LOSS: -7}
    assert movement_deltas(game=False, deposit=True, minus=d(0), plus=d(9)) == {DEPOSIT: 9}
    assert movement_deltas(game=False, deposit=False, minus=d(4), plus=d(0)) == {}


def test_first_breach_ignores_movements_that_do_not_add() -> None:
    now = START
    limits = Limits({(LOSS, DAY): Limit(Decimal(10))})
    counters = Counters({(LOSS, DAY): Counter(period_key(DAY, now), Decimal(50))})
    assert first_breach(limits, counters, {WAGER: Decimal(0), LOSS: Decimal(-5)}, now) is None
    breach = first_breach(limits, counters, {WAGER: Decimal(1), LOSS: Decimal(1)}, now)
    assert breach is not None
    assert (breach.kind, breach.period, breach.limit, breach.would_be) == (LOSS, DAY, 10, 50)


def test_a_counter_of_an_earlier_period_counts_as_zero() -> None:
    counters = Counters({(WAGER, DAY): Counter("2026-05-31", Decimal(999))})
    assert counters.current((WAGER, DAY), START) == 0
    after = counters.after({WAGER: Decimal(5)}, START)
    assert after.by_slot[(WAGER, DAY)] == Counter("2026-06-01", Decimal(5))
    assert after.by_slot[(WAGER, WEEK)] == Counter("2026-W23", Decimal(5))
    assert after.by_slot[(WAGER, MONTH)] == Counter("2026-06", Decimal(5))
    assert counters.after({WAGER: Decimal(0)}, START) is counters


def test_parse_limit_changes() -> None:
    d = Decimal
    assert parse_limit_changes({"loss": {"day": d(100), "week": None}, "deposit": None}) == {
        (LOSS, DAY): 100,
        (LOSS, WEEK): None,
        (DEPOSIT, DAY): None,
        (DEPOSIT, WEEK): None,
        (DEPOSIT, MONTH): None,
    }
    assert parse_limit_changes({"wager": {"month": d(0)}}) == {(WAGER, MONTH): 0}  # a limit of 0 is allowed
    assert parse_limit_changes({}) == {}


@pytest.mark.parametrize(
    ("amount", "parsed"),
    [(Decimal("12.50"), "12.5"), ("12.50", "12.5"), (100, "100"), ("0.00000001", "0.00000001"), (10**15, "1E+15")],
)
def test_a_limit_is_an_exact_amount_however_it_is_written(amount: Any, parsed: str) -> None:
    [(slot, limit)] = parse_limit_changes({"loss": {"day": amount}}).items()
    assert slot == (LOSS, DAY)
    assert isinstance(limit, Decimal)
    assert limit == Decimal(parsed)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "limits must be an object"),
        ({"bonus": {"day": Decimal(1)}}, "limits.bonus: unknown limit"),
        ({"loss": {"year": Decimal(1)}}, "limits.loss.year: unknown period"),
        ({"loss": [1]}, "limits.loss must be an object"),
        ({"loss": {"day": Decimal(-1)}}, "limits.loss.day must not be negative"),
        ({"loss": {"day": "-1"}}, "limits.loss.day must be a non-negative number"),
        ({"loss": {"day": Decimal("NaN")}}, "limits.loss.day must be finite"),
        ({"loss": {"day": Decimal("Infinity")}}, "limits.loss.day must be finite"),
        ({"loss": {"day": 1.5}}, "limits.loss.day must be a non-negative number"),
        ({"loss": {"day": True}}, "limits.loss.day must be a number, not a boolean"),
        ({"loss": {"day": Decimal("0.123456789")}}, "limits.loss.day has more than 8 decimal places"),
        ({"loss": {"day": 10**15 + 1}}, "limits.loss.day exceeds"),
        ({"loss": {"day": Decimal("1." + "0" * 38 + "1")}}, "limits.loss.day has more than 38 significant digits"),
    ],
)
def test_parse_limit_changes_names_the_field(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace(".", r"\.")):
        parse_limit_changes(raw)


# --- the property: accepted movements never go over a limit in force; counters are the ledger's sums ---------------


@dataclass(frozen=True)
class Step:
    action: str  # bet, win, cancel, deposit, limit, wait
    amount: int = 0
    kind: LimitKind = WAGER
    period: Period = DAY
    limit: int | None = None
    seconds: int = 0


STEPS = st.one_of(
    st.builds(Step, action=st.just("bet"), amount=st.integers(1, 400)),
    st.builds(Step, action=st.just("win"), amount=st.integers(0, 300)),
    st.builds(Step, action=st.just("cancel"), amount=st.integers(1, 200)),
    st.builds(Step, action=st.just("deposit"), amount=st.integers(1, 400)),
    st.builds(
        Step,
        action=st.just("limit"),
        kind=st.sampled_from(list(LimitKind)),
        period=st.sampled_from(list(Period)),
        limit=st.none() | st.integers(0, 1500),
    ),
    st.builds(
        Step,
        action=st.just("wait"),
        seconds=st.sampled_from([1, 600, HOUR, 6 * HOUR, ONE_DAY - 1, ONE_DAY, 3 * ONE_DAY, 9 * ONE_DAY]),
    ),
)


def _counted(entry: LedgerEntry) -> dict[LimitKind, Decimal]:
    if entry.source is Source.GAME:
        return {WAGER: entry.minus, LOSS: entry.minus - entry.plus}
    if entry.kind == "deposit":
        return {DEPOSIT: entry.plus}
    return {}


def _entry_time(entry: LedgerEntry) -> float:
    return datetime.fromisoformat(entry.created_at.replace("Z", "+00:00")).timestamp()


def _sums_from_the_ledger(entries: list[LedgerEntry], now: float) -> dict[tuple[LimitKind, Period], Decimal]:
    sums = {slot: Decimal(0) for slot in SLOTS}
    for entry in entries:
        moment = _entry_time(entry)
        for kind, amount in _counted(entry).items():
            for period in Period:
                if period_key(period, moment) == period_key(period, now):
                    sums[(kind, period)] += amount
    return sums


def _within_limits(account: Account, kinds: tuple[LimitKind, ...], now: float) -> bool:
    """No counter of these kinds is over its limit in force."""
    for kind in kinds:
        for period in Period:
            limit = account.limits.effective((kind, period), now)
            if limit is not None and account.counters.current((kind, period), now) > limit:
                return False
    return True


def _would_go_over(account: Account, kinds: tuple[LimitKind, ...], amount: int, now: float) -> bool:
    """Adding `amount` to these kinds' counters would take one over its limit in force."""
    return any(
        limit is not None and account.counters.current((kind, period), now) + amount > limit
        for kind in kinds
        for period in Period
        for limit in [account.limits.effective((kind, period), now)]
    )


def _deposit_step(wallet: Wallet, step: Step, ref: str) -> None:
    now, before = wallet.clock(), wallet.account("p1")
    refusal: Refusal | None = None
    try:
        wallet.deposit("p1", Decimal(step.amount), ref)
    except OperatorError as exc:
        refusal = exc.refusal
    after = wallet.account("p1")
    if refusal is None:
        assert _within_limits(after, (DEPOSIT,), now)
    else:
        assert refusal is Refusal.OVER_LIMIT
        assert after == before
        assert _would_go_over(before, (DEPOSIT,), step.amount, now)  # refused only for a reason


def _bet_step(player: Player, step: Step) -> None:
    now, before = player.clock.now, player.wallet.account("p1")
    outcome = player.bet(step.amount)
    after = player.wallet.account("p1")
    if outcome.reply.status == "OK":
        # Accepted: no wager or loss counter is over its limit in force.
        assert _within_limits(after, (WAGER, LOSS), now)
        return
    assert outcome.reply.status == "not_enough_money"
    assert (after.balance, after.version, after.counters) == (before.balance, before.version, before.counters)
    # Refused only for a reason: too little money, or a limit it would go over.
    short = step.amount > before.balance
    assert short or _would_go_over(before, (WAGER, LOSS), step.amount, now)
    assert outcome.event is (Event.NOT_ENOUGH_MONEY if short else Event.OVER_LIMIT)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEPS, min_size=1, max_size=40), start=st.integers(0, 400 * ONE_DAY))
def test_accepted_movements_never_exceed_a_limit_and_counters_are_the_ledgers_sums(
    steps: list[Step], start: int
) -> None:
    clock = Clock(at("2026-01-01T00:00:00") + start + 0.25)
    wallet = wallet_on(MemoryStore(), clock)
    wallet.create_player("p1", "FUN", Decimal(2000))
    player = Player(wallet, clock)
    for number, step in enumerate(steps):
        if step.action == "wait":
            clock.now += step.seconds
        elif step.action == "limit":
            player.limits({(step.kind, step.period): None if step.limit is None else Decimal(step.limit)})
        elif step.action == "deposit":
            _deposit_step(wallet, step, f"dep-{number}")
        elif step.action == "bet":
            _bet_step(player, step)
        else:
            outcome = player.win(step.amount) if step.action == "win" else player.cancel(step.amount)
            assert outcome.reply.status == "OK", outcome  # money owed is never refused
        # After every step the counters are what the ledger says for the current periods.
        account = wallet.account("p1")
        sums = _sums_from_the_ledger(wallet.history("p1", limit=1000), clock.now)
        for slot in SLOTS:
            assert account.counters.current(slot, clock.now) == sums[slot], (slot, number, step)
    assert audit_store(wallet.store).clean
