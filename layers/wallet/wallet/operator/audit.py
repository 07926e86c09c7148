"""The invariant checker (`wallet audit`) and the operator's report (`wallet report`), over the whole table.

Invariants (a violation means money was lost, doubled or invented):
  - every account: balance >= 0 and balance == sum(plus) - sum(minus) over its ledger (the opening balance is an entry);
  - every entry: balance_after == balance_before - minus + plus, and balance_after >= 0;
  - per player, the entries' account versions run 0 (opening, if any), 1, 2, ... up to the account's version with no
    gap and no repeat, and each entry starts from the balance the previous one left: no lost and no doubled write;
  - every entry belongs to an existing account; one entry per key (guaranteed by the key, checked anyway);
  - per player, in version order, each entry's chain_hash is wallet.money.ledger.chain_hash of its content and the
    previous entry's chain_hash, and the account's chain_head is the last entry's: an entry edited in place after it
    was written, or a last entry removed or rewritten with the account, shows. Entries from before the chain have no
    hash: a player's unhashed entries before the first hashed one are a warning (UNCHAINED_WARNING), an unhashed entry
    after a hashed one is a violation (the chain, once started, has every entry).
Warnings (worth a look, not a proof of error): a round credited (win or cancel) with no bet in it, a round credited
more than it was bet in a betting round's cancels, a round spanning several players, and a limits counter on the
account that differs from the sum of its period's entries (COUNTER_WARNING: a lost counter update would let bets past
a limit; it is also what the first period after an upgrade to counters shows, as entries from before it are summed),
and a ledger that begins with entries from before the chain (UNCHAINED_WARNING).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from wallet.money.ledger import Account, LedgerEntry, Source, chain_hash
from wallet.money.limits import LimitKind, Period, movement_deltas, period_key
from wallet.money.store import WalletStore


@dataclass
class AuditReport:
    players: int = 0
    entries: int = 0
    total_balance: Decimal = Decimal(0)
    violations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.violations

    def as_json(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "players": self.players,
            "entries": self.entries,
            "total_balance": str(self.total_balance),
            "violations": self.violations,
            "warnings": self.warnings,
        }


def audit_store(store: WalletStore) -> AuditReport:
    """Check every invariant over the whole table (a consistent scan; for a quiet moment or a copy)."""
    return audit(store.iter_accounts(), store.iter_entries())


def report_store(store: WalletStore, now: datetime, open_after: timedelta) -> dict[str, Any]:
    """Open rounds and GGR over the whole table."""
    entries = list(store.iter_entries())
    return {"open_rounds": open_rounds(entries, now, open_after), "ggr": gross_gaming_revenue(entries)}


def audit(accounts: Iterable[Account], entries: Iterable[LedgerEntry]) -> AuditReport:
    report = AuditReport()
    by_player: dict[str, list[LedgerEntry]] = defaultdict(list)
    seen_keys: set[str] = set()
    rounds: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        report.entries += 1
        if entry.entry_id in seen_keys:
            report.violations.append(f"entry {entry.entry_id} appears twice")
        seen_keys.add(entry.entry_id)
        by_player[entry.player_id].append(entry)
        if entry.game_uuid:
            rounds[entry.game_uuid].append(entry)
        if entry.balance_after != entry.balance_before - entry.minus + entry.plus:
            report.violations.append(f"entry {entry.entry_id}: before - minus + plus != after")
        if entry.balance_after < 0:
            report.violations.append(f"entry {entry.entry_id}: balance after is negative")

    known = set()
    for account in accounts:
        known.add(account.player_id)
        report.players += 1
        report.total_balance += account.balance
        _check_account(account, by_player.get(account.player_id, []), report)
    for player_id in sorted(set(by_player) - known):
        report.violations.append(f"{len(by_player[player_id])} entries for unknown player {player_id}")
    for game_uuid, round_entries in sorted(rounds.items()):
        _check_round(game_uuid, round_entries, report)
    return report


COUNTER_WARNING = "limits counter"


def _check_counters(account: Account, entries: list[LedgerEntry], report: AuditReport) -> None:
    """Each counter on the account equals what its period's entries add up to."""
    if not account.counters.by_slot:
        return
    sums: dict[tuple[LimitKind, Period, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        deltas = movement_deltas(
            game=entry.source is Source.GAME, deposit=entry.kind == "deposit", minus=entry.minus, plus=entry.plus
        )
        if not any(deltas.values()):
            continue
        at = _parse_time(entry.created_at).timestamp()
        for period in Period:
            key = period_key(period, at)
            for kind, delta in deltas.items():
                sums[(kind, period, key)] += delta
    for (kind, period), counter in sorted(account.counters.by_slot.items()):
        summed = sums.get((kind, period, counter.period), Decimal(0))
        if summed != counter.amount:
            report.warnings.append(
                f"player {account.player_id}: {COUNTER_WARNING} {kind.value} per {period.value} ({counter.period}) is "
                f"{counter.amount}, its entries add up to {summed}"
            )


UNCHAINED_WARNING = "from before the chain"


def _check_chain(account: Account, chain: list[LedgerEntry], report: AuditReport) -> None:
    """Each entry's chain_hash recomputed from its content and the previous entry's hash; the account's head is the
    last one. Checked whatever the versions look like: an edited account_version shows here too."""
    who = f"player {account.player_id}"
    previous: str | None = ""  # None: the previous entry lost its hash, so this one cannot be checked against it
    unchained = 0
    for entry in chain:
        if not entry.chain_hash:
            if previous:
                report.violations.append(f"{who}: entry {entry.entry_id} has no chain_hash after chained entries")
                previous = None
            elif previous == "":
                unchained += 1
            continue
        if previous is not None and chain_hash(entry, previous) != entry.chain_hash:
            report.violations.append(
                f"{who}: entry {entry.entry_id} (version {entry.account_version}) breaks the chain: its chain_hash is "
                "not the hash of its content after the previous entry's (changed after it was written)"
            )
        previous = entry.chain_hash  # the hash as stored: one edited entry is one violation, not one per later entry
    last = chain[-1].chain_hash if chain else ""
    if account.chain_head != last:
        report.violations.append(
            f"{who}: chain_head {account.chain_head or '(none)'} is not the last entry's chain_hash {last or '(none)'}"
        )
    if unchained:
        report.warnings.append(f"{who}: {unchained} entries {UNCHAINED_WARNING}, not chained")


def _check_account(account: Account, entries: list[LedgerEntry], report: AuditReport) -> None:
    _check_counters(account, entries, report)
    who = f"player {account.player_id}"
    if account.balance < 0:
        report.violations.append(f"{who}: balance {account.balance} is below zero")
    ledger_sum = sum((e.plus - e.minus for e in entries), Decimal(0))
    if ledger_sum != account.balance:
        report.violations.append(f"{who}: balance {account.balance} != ledger sum {ledger_sum}")
    # entry_id breaks a tie of versions (a doubled write) the way the SQL audit does (sql/audit.sql).
    chain = sorted(entries, key=lambda e: (e.account_version, e.entry_id))
    _check_chain(account, chain, report)
    expected_versions = list(range(0 if chain and chain[0].account_version == 0 else 1, account.version + 1))
    versions = [e.account_version for e in chain]
    if versions != expected_versions:
        report.violations.append(
            f"{who}: entry versions {_span(versions)} do not run to account version {account.version} without gaps"
        )
        return
    balance = Decimal(0)
    for entry in chain:
        if entry.balance_before != balance:
            report.violations.append(
                f"{who}: entry {entry.entry_id} starts from {entry.balance_before}, the previous entry left {balance}"
            )
        balance = entry.balance_after


def _check_round(game_uuid: str, entries: list[LedgerEntry], report: AuditReport) -> None:
    players = {e.player_id for e in entries}
    if len(players) > 1:
        report.warnings.append(f"round {game_uuid} spans players {sorted(players)}")
    bets = sum((e.minus for e in entries), Decimal(0))
    credits = sum((e.plus for e in entries), Decimal(0))
    if credits > 0 and bets == 0:
        report.warnings.append(f"round {game_uuid}: credited {credits} with no bet")


def _span(versions: list[int]) -> str:
    return f"{versions[:5]}...{versions[-3:]}" if len(versions) > 8 else str(versions)


# --- the operator's report ------------------------------------------------------------------------------------------


def open_rounds(entries: Iterable[LedgerEntry], now: datetime, older_than: timedelta) -> list[dict[str, Any]]:
    """Rounds with a bet and nothing after it (no win, cancel or zero win) for longer than `older_than`."""
    rounds: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        if entry.source is Source.GAME and entry.game_uuid:
            rounds[entry.game_uuid].append(entry)
    found = []
    for game_uuid, round_entries in rounds.items():
        round_entries.sort(key=lambda e: e.created_at)
        last = round_entries[-1]
        if last.minus > 0 and last.plus == 0:
            started = _parse_time(last.created_at)
            if now - started >= older_than:
                found.append(
                    {
                        "game_uuid": game_uuid,
                        "player": last.player_id,
                        "game_id": str(last.tag.get("game_id", "")),
                        "currency": last.currency,
                        "bet": str(sum((e.minus for e in round_entries), Decimal(0))),
                        "last_bet_at": last.created_at,
                        "open_minutes": int((now - started).total_seconds() // 60),
                    }
                )
    return sorted(found, key=lambda r: r["last_bet_at"])


def gross_gaming_revenue(entries: Iterable[LedgerEntry]) -> list[dict[str, Any]]:
    """GGR (bets - wins, cancels counted as returned bets) per day and game, from the game entries."""
    totals: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for entry in entries:
        if entry.source is not Source.GAME:
            continue
        key = (entry.created_at[:10], str(entry.tag.get("game_id", "")) or "?")
        totals[key][0] += entry.minus
        totals[key][1] += entry.plus
    return [
        {"day": day, "game_id": game, "bets": str(bets), "wins": str(wins), "ggr": str(bets - wins)}
        for (day, game), (bets, wins) in sorted(totals.items())
    ]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
