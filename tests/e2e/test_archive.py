"""The ledger archive end to end: moves played through `wallet local` reach the archive by the table's stream (the
local stand-in for Lambda's event source mapping, wallet_local.streams) and the ledger exporter; `wallet report` and
`wallet audit` over it (DuckDB, no --scan) give the figures that were played; a rewritten archive file fails the
audit, naming the entry."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CLI_TIMEOUT, WALLET, LocalStack, Player
from tests.support import GamesServer
from wallet_local.streams import wait_for_archive

pytestmark = pytest.mark.e2e

ARCHIVE_TIMEOUT = 30.0


def create_player(stack: LocalStack, currency: str, balance: int) -> Player:
    player_id = f"arch-{currency.lower()}-{uuid.uuid4().hex[:10]}"
    (rc, created), (rc_session, issued) = stack.cli_batch(
        ["player", "create", player_id, "--currency", currency, "--balance", str(balance)],
        ["session", "new", player_id],
    )
    assert rc == 0, created
    assert rc_session == 0, issued
    player = Player(player_id, issued["session"])
    stack.created.append(player)
    return player


def archive_cli(stack: LocalStack, archive: Path, *args: str) -> tuple[int, Any]:
    """`wallet <args>` with WALLET_ARCHIVE_DIR as the banner exports it: (exit code, its JSON output)."""
    done = subprocess.run(
        [str(WALLET), *args],
        env={**stack.env, "WALLET_ARCHIVE_DIR": str(archive)},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.stdout.strip(), f"wallet {' '.join(args)} exited {done.returncode} with no output: {done.stderr}"
    return done.returncode, json.loads(done.stdout, parse_float=Decimal)


class Played:
    """What the test moved, per (game_id, currency): accepted bets and wins, players and rounds."""

    def __init__(self, slot: str, keno: str) -> None:
        self.slot, self.keno = slot, keno  # this run's game ids
        self.bets: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.wins: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        self.players: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.rounds: dict[tuple[str, str], set[str]] = defaultdict(set)

    def move(
        self,
        games: GamesServer,
        player: Player,
        currency: str,
        minus: int | str,
        plus: int | str,
        tag: dict[str, Any],
        status: str = "OK",
    ) -> None:
        reply = games.call(player.session, minus=minus, plus=plus, tag=tag).reply
        assert reply["status"] == status, reply
        if status == "OK":
            key = (str(tag["game_id"]), currency)
            self.bets[key] += Decimal(str(minus))
            self.wins[key] += Decimal(str(plus))
            self.players[key].add(player.player)
            self.rounds[key].add(str(tag["game_uuid"]))

    def games(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            key: {
                "bets": self.bets[key],
                "wins": self.wins[key],
                "ggr": self.bets[key] - self.wins[key],
                "players": len(self.players[key]),
                "rounds": len(self.rounds[key]),
            }
            for key in self.bets
        }


@pytest.fixture(scope="module")
def played(stack: LocalStack, archive_dir: Path) -> Played:
    """Slot and keno rounds (bets, wins, a bet-and-win, a zero win, a bet too big) and deposits, for players in
    two currencies, on game ids of this run only; then the archive caught up with all of it."""
    games = GamesServer(stack.base_url)
    run = uuid.uuid4().hex[:8]
    slot, keno = f"arch-slot-{run}", f"arch-keno-{run}"
    played = Played(slot, keno)
    players = [
        ("FUN", create_player(stack, "FUN", 5000)),
        ("FUN", create_player(stack, "FUN", 800)),
        ("EUR", create_player(stack, "EUR", 1200)),
    ]
    for index, (currency, player) in enumerate(players):
        for round_number in range(3):
            tag = {"game": "slot", "game_id": slot, "game_uuid": f"{run}-{index}-{round_number}", "lines": 9}
            played.move(games, player, currency, 40 + 10 * round_number, 0, tag)
            played.move(games, player, currency, 0, (25 * round_number) if round_number else 0, tag)
        keno_tag = {"game": "egame", "game_id": keno, "game_uuid": f"EG-{run}-{index}", "bets": ["[0]:15"]}
        played.move(games, player, currency, 15, 0, keno_tag)
        played.move(games, player, currency, "0.5", "12.25", {**keno_tag, "result": [7, 7, 7]})  # bet and win at once
        too_big = {"game": "slot", "game_id": slot, "game_uuid": f"{run}-{index}-big"}
        played.move(games, player, currency, 10**7, 0, too_big, status="not_enough_money")
        rc, deposit = stack.cli("deposit", player.player, "99.5", "--ref", f"arch-dep-{run}-{index}")
        assert rc == 0, deposit
    since = time.time()
    progress = wait_for_archive(archive_dir, since, ARCHIVE_TIMEOUT)
    print(f"\narchive caught up {time.time() - since:.2f} s after the last write: {progress}")
    assert progress["failed"] == 0, progress
    return played


def test_the_report_over_the_archive_is_what_was_played(stack: LocalStack, archive_dir: Path, played: Played) -> None:
    rc, report = archive_cli(stack, archive_dir, "report")

    assert rc == 0, report
    ours = {
        (row["game_id"], row["currency"]): {
            "bets": Decimal(row["bets"]),
            "wins": Decimal(row["wins"]),
            "ggr": Decimal(row["ggr"]),
            "players": row["players"],
            "rounds": row["rounds"],
        }
        for row in report["games"]
        if row["game_id"] in (played.slot, played.keno)
    }
    assert ours == played.games()
    assert set(ours) == {(played.slot, "FUN"), (played.slot, "EUR"), (played.keno, "FUN"), (played.keno, "EUR")}
    # Per day too (the run may straddle midnight): the days add up to the totals.
    daily: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for row in report["ggr"]:
        key = (row["game_id"], row["currency"])
        if key in ours:
            daily[key] = [
                total + Decimal(row[name]) for total, name in zip(daily[key], ("bets", "wins", "ggr"), strict=True)
            ]
    assert {key: tuple(value) for key, value in daily.items()} == {
        key: (value["bets"], value["wins"], value["ggr"]) for key, value in ours.items()
    }
    # Every round of ours was closed by a win or a zero win, except the refused bet's, which left nothing.
    assert not [r for r in report["open_rounds"] if r["game_id"] in (played.slot, played.keno)]


def test_the_audit_over_the_archive_is_clean_and_covers_the_table(
    stack: LocalStack, archive_dir: Path, played: Played
) -> None:
    del played
    # What the other tests of the session wrote meanwhile is archived too.
    wait_for_archive(archive_dir, time.time(), ARCHIVE_TIMEOUT)
    rc, audit = archive_cli(stack, archive_dir, "audit")
    rc_scan, scan = stack.cli("audit", "--scan")

    assert rc == 0, audit
    assert audit["clean"] is True and audit["violations"] == []
    assert rc_scan == 0, scan
    assert (audit["players"], audit["entries"]) == (scan["players"], scan["entries"])
    assert Decimal(audit["total_balance"]) == Decimal(scan["total_balance"])


def _entry_file(archive: Path, player_id: str) -> tuple[Path, str]:
    """An entries Parquet file holding a bet of `player_id`, and that entry's id."""
    import duckdb

    for path in sorted((archive / "entries").rglob("*.parquet")):
        with duckdb.connect() as connection:
            found = connection.execute(
                "SELECT entry_id FROM read_parquet(?) WHERE player_id = ? AND kind = 'bet' ORDER BY entry_id LIMIT 1",
                [str(path), player_id],
            ).fetchone()
        if found:
            return path, str(found[0])
    raise AssertionError(f"no archived bet of {player_id}")


def _rewrite(source: Path, target: Path, entry_id: str) -> None:
    """`source` with one more unit of `plus` on `entry_id`, written to `target` by DuckDB with the same types."""
    import duckdb

    quoted = entry_id.replace("'", "''")
    partial = target.with_name(f".{target.name}.tmp")
    with duckdb.connect() as connection:
        connection.execute(
            f"COPY (SELECT * REPLACE (CASE WHEN entry_id = '{quoted}' THEN CAST(plus + 1 AS DECIMAL(38, 8)) "  # noqa: S608
            f"ELSE plus END AS plus) FROM read_parquet('{source}')) TO '{partial}' (FORMAT parquet)"
        )
    partial.replace(target)


def test_a_rewritten_archive_file_fails_the_audit_naming_the_entry(
    stack: LocalStack, archive_dir: Path, played: Played, tmp_path: Path
) -> None:
    del played
    [victim] = [p for p in stack.created if p.player.startswith("arch-eur-")][-1:]
    wait_for_archive(archive_dir, time.time(), ARCHIVE_TIMEOUT)
    copy = tmp_path / "archive"
    shutil.copytree(archive_dir, copy)
    path, entry_id = _entry_file(copy, victim.player)

    # In place: the file now says the bet also paid 1 more.
    _rewrite(path, path, entry_id)
    rc, audit = archive_cli(stack, copy, "audit", "--archive", str(copy))

    assert rc == 1, audit
    assert audit["clean"] is False
    named = [v for v in audit["violations"] if f"entry {entry_id}" in v]
    kinds = {v.split(": ")[1] for v in named}
    assert {"arithmetic", "chain_broken"} <= kinds, audit["violations"]
    assert all(v.startswith(f"player {victim.player} ") for v in named), named
    # Only that entry: the rest of the archive still checks out.
    assert all(entry_id in v or v.startswith(f"player {victim.player} ") for v in audit["violations"]), audit

    # A second copy of the entry, rewritten, beside the true one: the audit sees two contents for one entry.
    again = tmp_path / "again"
    shutil.copytree(archive_dir, again)
    original, _ = _entry_file(again, victim.player)
    _rewrite(original, original.with_name("rewritten-copy.parquet"), entry_id)
    rc, audit = archive_cli(stack, again, "audit", "--archive", str(again))

    assert rc == 1, audit
    assert any(f"entry_rewritten: entry {entry_id} " in v for v in audit["violations"]), audit["violations"]

    # The stack's own archive was not touched.
    rc, clean = archive_cli(stack, archive_dir, "audit")
    assert rc == 0, clean
