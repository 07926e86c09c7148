"""Responsible-gambling limits: a player's loss, wager and deposit limits per UTC day, week and month.

The account carries the limits and one counter per (kind, period), written in the same transaction as the movement
they count, so a limit is as race-proof as the balance (the account's version guards both). A counter belongs to a
period (`2026-12-02`, `2026-W49`, `2026-12`): one from an earlier period counts as zero, so counters roll over without
a job. Counters run for every player, limited or not: a limit set at noon counts the morning's bets too.

  wager    the sum of bets (a game movement's minus)
  loss     bets minus wins and cancels (minus - plus of game movements); negative while the player is ahead
  deposit  the sum of the operator's deposits

A bet that would take a wager or loss counter over its limit is refused (the Games Server gets not_enough_money); a
deposit over the deposit limit is refused. Wins, cancels and zero wins are never refused: they only count.

Lowering a limit (or setting a new one) takes effect at once; raising or removing one takes effect after
RAISE_DELAY_SECONDS (a cooling-off period: a player cannot lift a limit on impulse mid-session).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from wallet.money.amounts import InvalidAmount, parse_amount

RAISE_DELAY_SECONDS = 24 * 60 * 60


class LimitKind(StrEnum):
    LOSS = "loss"
    WAGER = "wager"
    DEPOSIT = "deposit"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_key(period: Period, now: float) -> str:
    """The UTC period `now` falls in: a day, an ISO week (Monday to Sunday) or a calendar month."""
    moment = datetime.fromtimestamp(now, UTC)
    if period is Period.DAY:
        return moment.strftime("%Y-%m-%d")
    if period is Period.WEEK:
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")


Slot = tuple[LimitKind, Period]
SLOTS: tuple[Slot, ...] = tuple((kind, period) for kind in LimitKind for period in Period)


@dataclass(frozen=True)
class Limit:
    """One limit. `pending` takes over at `pending_at` (a raise, or with `pending` None a removal, waiting out the
    cooling-off period); until then `amount` holds."""

    amount: Decimal
    pending: Decimal | None = None
    pending_at: int | None = None

    def effective(self, now: float) -> Decimal | None:
        """The limit in force at `now`; None once a pending removal has taken effect."""
        if self.pending_at is not None and now >= self.pending_at:
            return self.pending
        return self.amount

    def settled(self, now: float) -> Limit | None:
        """The same limit with a pending change that is due folded in (None: it was removed)."""
        if self.pending_at is None or now < self.pending_at:
            return self
        return Limit(self.pending) if self.pending is not None else None


@dataclass(frozen=True)
class Limits:
    """A player's limits, by (kind, period)."""

    by_slot: dict[Slot, Limit] = field(default_factory=dict, hash=False)

    def effective(self, slot: Slot, now: float) -> Decimal | None:
        limit = self.by_slot.get(slot)
        return limit.effective(now) if limit is not None else None

    def changed(self, changes: dict[Slot, Decimal | None], now: float) -> Limits:
        """These limits after `changes` (None removes one): lower at once, higher or removed after the delay."""
        result: dict[Slot, Limit] = {}
        for slot, limit in self.by_slot.items():
            settled = limit.settled(now)
            if settled is not None:
                result[slot] = settled
        for slot, wanted in changes.items():
            current = result.get(slot)
            in_force = current.amount if current is not None else None
            if wanted is not None and (in_force is None or wanted <= in_force):
                result[slot] = Limit(wanted)  # stricter (or new): at once, and any pending raise is dropped
            elif in_force is not None and wanted != in_force:
                result[slot] = Limit(in_force, wanted, int(now) + RAISE_DELAY_SECONDS)
            elif in_force is not None:
                result[slot] = Limit(in_force)  # the same amount again: a pending change is withdrawn
        return Limits(result)

    def as_json(self, now: float) -> dict[str, dict[str, Any]]:
        """{"loss": {"day": {"amount": 100, "pending": 200, "pending_at": 1764..}}, ...} (settled at `now`)."""
        shown: dict[str, dict[str, Any]] = {}
        for (kind, period), limit in sorted(self.by_slot.items()):
            settled = limit.settled(now)
            if settled is None:
                continue
            view: dict[str, Any] = {"amount": settled.amount}
            if settled.pending_at is not None:
                view["pending"] = settled.pending
                view["pending_at"] = settled.pending_at
            shown.setdefault(kind.value, {})[period.value] = view
        return shown


@dataclass(frozen=True)
class Counter:
    period: str  # the period_key it counts
    amount: Decimal


@dataclass(frozen=True)
class Counters:
    """What the player did in the current periods, by (kind, period)."""

    by_slot: dict[Slot, Counter] = field(default_factory=dict, hash=False)

    def current(self, slot: Slot, now: float) -> Decimal:
        counter = self.by_slot.get(slot)
        if counter is None or counter.period != period_key(slot[1], now):
            return Decimal(0)  # nothing yet, or an earlier period's: rolled over
        return counter.amount

    def after(self, deltas: dict[LimitKind, Decimal], now: float) -> Counters:
        """The counters with `deltas` added in the periods of `now` (earlier periods roll over to zero)."""
        if not any(deltas.values()):
            return self
        updated = dict(self.by_slot)
        for kind, delta in deltas.items():
            if not delta:
                continue
            for period in Period:
                slot = (kind, period)
                updated[slot] = Counter(period_key(period, now), self.current(slot, now) + delta)
        return Counters(updated)


def movement_deltas(*, game: bool, deposit: bool, minus: Decimal, plus: Decimal) -> dict[LimitKind, Decimal]:
    """What a movement adds to the counters: a game's bets and wins, or an operator's deposit."""
    if game:
        return {LimitKind.WAGER: minus, LimitKind.LOSS: minus - plus}
    if deposit:
        return {LimitKind.DEPOSIT: plus}
    return {}


@dataclass(frozen=True)
class Breach:
    kind: LimitKind
    period: Period
    limit: Decimal
    would_be: Decimal

    def __str__(self) -> str:
        return f"{self.kind.value} limit per {self.period.value} is {self.limit}: this would make it {self.would_be}"


def first_breach(limits: Limits, after: Counters, deltas: dict[LimitKind, Decimal], now: float) -> Breach | None:
    """The first limit the movement would take a counter over. Only a movement that adds to a counter can breach
    its limit: a win (a negative loss delta) never does, even while the counter is over a freshly lowered limit."""
    for kind, delta in deltas.items():
        if delta <= 0:
            continue
        for period in Period:
            limit = limits.effective((kind, period), now)
            if limit is None:
                continue
            would_be = after.current((kind, period), now)
            if would_be > limit:
                return Breach(kind, period, limit, would_be)
    return None


def parse_limit_changes(raw: Any) -> dict[Slot, Decimal | None]:
    """{"loss": {"day": 100, "week": null}, ...} -> {(LOSS, DAY): 100, (LOSS, WEEK): None}. A limit is an amount like
    any other (amounts.parse_amount: a Decimal, an int or a decimal string; >= 0, bounded, at most 8 decimal places);
    anything else is a ValueError naming the field."""
    if not isinstance(raw, dict):
        raise ValueError("limits must be an object")
    changes: dict[Slot, Decimal | None] = {}
    for kind_name, periods in raw.items():
        try:
            kind = LimitKind(kind_name)
        except ValueError:
            raise ValueError(f"limits.{kind_name}: unknown limit (loss, wager or deposit)") from None
        if periods is None:
            changes.update({(kind, period): None for period in Period})
            continue
        if not isinstance(periods, dict):
            raise ValueError(f"limits.{kind_name} must be an object")
        for period_name, amount in periods.items():
            try:
                period = Period(period_name)
            except ValueError:
                raise ValueError(f"limits.{kind_name}.{period_name}: unknown period (day, week or month)") from None
            field = f"limits.{kind_name}.{period_name}"
            try:
                changes[(kind, period)] = None if amount is None else parse_amount(amount, field)
            except InvalidAmount as exc:
                raise ValueError(f"{exc} (a limit is a number >= 0, or null to remove it)") from None
    return changes
