"""The reports and the audit as SQL (wallet.operator.ledger_sql, wallet/operator/sql/) over a hand-built archive.

The archive is written the way the design lays it out (Parquet, entries/day=.../ and accounts/day=.../), its entries
built and chained the way the wallet builds them, so every figure below is known in advance. The same SQL files run
on Athena: they parse as Trino SQL, and the Athena engine's requests and result typing are checked against moto and
a botocore Stubber.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
import sqlglot
from botocore.stub import Stubber
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from sqlglot import exp

from wallet.money.ledger import LedgerEntry, Source, canonical_tag, chain_hash, json_ready
from wallet.operator import ledger_sql
from wallet.operator.ledger_sql import (
    ACCOUNT_COLUMNS,
    ENTRY_COLUMNS,
    QUERIES,
    AthenaEngine,
    DuckDBEngine,
    EngineError,
    open_engine,
    render,
)


def spec_canonical_tag(tag: dict[str, Any]) -> str:
    """The design's canonical tag (design-13.md, "The chain"), word for word."""
    return json.dumps(json_ready(tag), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_chain_hash(entry: LedgerEntry, previous: str) -> str:
    """The design's chain hash, word for word: the SQL must agree with it and with the money path's own."""
    fields = [
        entry.player_id,
        str(entry.account_version),
        entry.source.value,
        entry.trx_id,
        entry.kind,
        format(entry.minus, ".8f"),
        format(entry.plus, ".8f"),
        format(entry.balance_before, ".8f"),
        format(entry.balance_after, ".8f"),
        entry.currency,
        entry.game_uuid or "",
        spec_canonical_tag(entry.tag),
        entry.created_at,
        previous,
    ]
    return hashlib.sha256("".join(f"{len(f)}:{f}" for f in fields).encode("utf-8")).hexdigest()


# --- the hand-built archive -----------------------------------------------------------------------------------------


def entry_row(entry: LedgerEntry, hash_: str) -> dict[str, Any]:
    """An entry as the exporter archives it."""
    game_id = entry.tag.get("game_id")
    game_type = entry.tag.get("game")
    return {
        "entry_id": entry.entry_id,
        "source": entry.source.value,
        "trx_id": entry.trx_id,
        "player_id": entry.player_id,
        "kind": entry.kind,
        "currency": entry.currency,
        "minus": entry.minus,
        "plus": entry.plus,
        "balance_before": entry.balance_before,
        "balance_after": entry.balance_after,
        "game_uuid": entry.game_uuid,
        "game_id": None if game_id is None else str(game_id),
        "game_type": None if game_type is None else str(game_type),
        "tag": canonical_tag(entry.tag),
        "created_at": entry.created_at,
        "account_version": entry.account_version,
        "chain_hash": hash_,
    }


@dataclass
class Player:
    """A player's ledger built as the wallet builds it: versions one by one, balances linked, every entry chained."""

    player_id: str
    currency: str = "FUN"
    balance: Decimal = Decimal(0)
    version: int = 0
    head: str = ""
    status: str = "active"
    rows: list[dict[str, Any]] = field(default_factory=list)

    def move(
        self,
        at: str,
        *,
        minus: str = "0",
        plus: str = "0",
        trx_id: str | None = None,
        game: tuple[str, str] | None = None,  # (game_id, game_uuid)
        source: Source = Source.GAME,
        kind: str | None = None,
        tag: dict[str, Any] | None = None,
        version: int | None = None,
        balance_before: str | None = None,
        balance_after: str | None = None,
    ) -> dict[str, Any]:
        """One entry; `version`, `balance_before` and `balance_after` force a value the wallet would not write."""
        low, high = Decimal(minus), Decimal(plus)
        if kind is None:
            kind = ("bet_and_win" if low and high else "bet" if low else "win" if high else "zero_win") if game else ""
        before = Decimal(balance_before) if balance_before is not None else self.balance
        after = Decimal(balance_after) if balance_after is not None else before - low + high
        if tag is None:
            tag = {"game": "slot", "game_id": game[0], "game_uuid": game[1]} if game else {}
        entry = LedgerEntry(
            source=source,
            trx_id=trx_id or f"t-{len(self.rows) + 1}",
            player_id=self.player_id,
            minus=low,
            plus=high,
            balance_before=before,
            balance_after=after,
            currency=self.currency,
            created_at=at,
            kind=kind,
            game_uuid=game[1] if game else None,
            tag=tag,
            account_version=self.version + 1 if version is None else version,
        )
        self.head = chain_hash(entry, self.head)
        self.balance, self.version = after, entry.account_version
        row = entry_row(entry, self.head)
        self.rows.append(row)
        return row

    def opening(self, at: str, amount: str) -> dict[str, Any]:
        return self.move(
            at, plus=amount, source=Source.OPERATOR, kind="opening", trx_id=f"opening#{self.player_id}", version=0
        )

    def account(self, changed_at: str, **changes: Any) -> dict[str, Any]:
        """The account item as it stands now (the latest account row)."""
        return {
            "player_id": self.player_id,
            "version": self.version,
            "balance": self.balance,
            "currency": self.currency,
            "status": self.status,
            "chain_head": self.head,
            "changed_at": changed_at,
        } | changes


def write_table(root: Path, table: str, rows: list[dict[str, Any]], name: str = "batch") -> None:
    """Rows as Parquet files by day (hive style: <table>/day=YYYY-MM-DD/<name>.parquet), with the design's types."""
    columns = ENTRY_COLUMNS if table == "entries" else ACCOUNT_COLUMNS
    time_column = "created_at" if table == "entries" else "changed_at"
    days: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        days.setdefault(row[time_column][:10], []).append(row)
    with duckdb.connect() as connection:
        for day, day_rows in days.items():
            folder = root / table / f"day={day}"
            folder.mkdir(parents=True, exist_ok=True)
            connection.execute("DROP TABLE IF EXISTS batch")
            connection.execute(f"CREATE TABLE batch ({', '.join(f'{c} {t}' for c, t in columns.items())})")
            connection.executemany(
                f"INSERT INTO batch VALUES ({', '.join('?' for _ in columns)})",  # noqa: S608 - placeholders only
                [[row[column] for column in columns] for row in day_rows],
            )
            connection.execute(f"COPY batch TO '{folder / f'{name}.parquet'}' (FORMAT parquet)")


@dataclass
class Book:
    """The known archive: four players, two days, two games, two currencies."""

    players: dict[str, Player]
    accounts: list[dict[str, Any]]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [row for player in self.players.values() for row in player.rows]

    def write(self, root: Path, name: str = "batch") -> DuckDBEngine:
        write_table(root, "entries", self.entries, name)
        write_table(root, "accounts", self.accounts, name)
        return DuckDBEngine(root)


T = "2026-12-0{}T{}:00.000000Z"  # T.format(day, "hh:mm")


def build_book() -> Book:
    alice = Player("alice")
    alice.opening(T.format(1, "09:00"), "100")
    alice.move(T.format(1, "10:00"), minus="10", game=("slot_a", "r1"))
    alice.move(T.format(1, "10:01"), plus="25", game=("slot_a", "r1"))
    alice.move(T.format(2, "10:00"), minus="5", game=("slot_b", "r2"))  # open: nothing after it
    alice.move(T.format(2, "11:00"), plus="50", source=Source.OPERATOR, kind="deposit", trx_id="dep-a1")

    bob = Player("bob")  # created with no opening balance: his first entry is version 1, from 0
    bob.move(T.format(1, "12:00"), plus="20", source=Source.OPERATOR, kind="deposit", trx_id="dép-€1")
    bob.move(T.format(1, "12:05"), minus="4", plus="6", game=("slot_a", "r3"))
    bob.move(T.format(2, "09:00"), minus="3", game=("slot_a", "r4"))
    bob.move(T.format(2, "09:01"), game=("slot_a", "r4"))  # a zero win closes the round
    bob.status = "suspended"
    bob.move(
        T.format(2, "12:00"),
        source=Source.OPERATOR,
        kind="status",
        trx_id="status-b1",
        tag={"operator": "status", "status": "suspended", "reason": "KYC überprüft", "by": "carol"},
    )

    carol = Player("carol", currency="EUR")
    carol.opening(T.format(2, "07:00"), "10")
    carol.move(T.format(2, "08:00"), minus="1.5", game=("slot_a", "r5"))
    carol.move(T.format(2, "08:10"), minus="0.5", game=("slot_a", "r5"))  # open, two bets

    quote = Player("o'brien")  # an id no wallet would issue: the parameter must still only be a value
    quote.opening(T.format(2, "06:00"), "1")

    players = {p.player_id: p for p in (alice, bob, carol, quote)}
    accounts = []
    for player in players.values():
        accounts.append(player.account(player.rows[-1]["created_at"]))
    # An account change with no new version (a session issued), archived later, and an older version's row.
    accounts.append(bob.account(T.format(2, "13:00"), status="suspended"))
    accounts.append(alice.account(T.format(2, "10:00"), version=3, balance=Decimal("110"), chain_head="older"))
    return Book(players, accounts)


@pytest.fixture
def book() -> Book:
    return build_book()


@pytest.fixture
def engine(book: Book, tmp_path: Path) -> DuckDBEngine:
    return book.write(tmp_path)


def amounts(rows: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in rows]


# --- the reports ----------------------------------------------------------------------------------------------------


def test_ggr_daily(engine: DuckDBEngine) -> None:
    rows = engine.run("ggr_daily")
    assert amounts(rows, "day", "game_id", "currency", "bets", "wins", "ggr") == [
        ("2026-12-01", "slot_a", "FUN", Decimal(14), Decimal(31), Decimal(-17)),
        ("2026-12-02", "slot_a", "EUR", Decimal(2), Decimal(0), Decimal(2)),
        ("2026-12-02", "slot_a", "FUN", Decimal(3), Decimal(0), Decimal(3)),
        ("2026-12-02", "slot_b", "FUN", Decimal(5), Decimal(0), Decimal(5)),
    ]
    assert all(isinstance(row[c], Decimal) for row in rows for c in ("bets", "wins", "ggr"))


def test_game_totals(engine: DuckDBEngine) -> None:
    rows = engine.run("game_totals")
    assert amounts(rows, "game_id", "currency", "bets", "wins", "ggr", "players", "rounds") == [
        ("slot_a", "EUR", Decimal(2), Decimal(0), Decimal(2), 1, 1),
        ("slot_a", "FUN", Decimal(17), Decimal(31), Decimal(-14), 2, 3),
        ("slot_b", "FUN", Decimal(5), Decimal(0), Decimal(5), 1, 1),
    ]


@pytest.mark.parametrize(
    ("cutoff", "expected"),
    [
        (
            T.format(2, "12:00"),
            [
                ("r5", "carol", "slot_a", Decimal(2), T.format(2, "08:10")),
                ("r2", "alice", "slot_b", Decimal(5), T.format(2, "10:00")),
            ],
        ),
        (
            T.format(2, "10:00"),
            [
                ("r5", "carol", "slot_a", Decimal(2), T.format(2, "08:10")),
                ("r2", "alice", "slot_b", Decimal(5), T.format(2, "10:00")),
            ],
        ),
        (T.format(2, "09:59"), [("r5", "carol", "slot_a", Decimal(2), T.format(2, "08:10"))]),
        (T.format(2, "08:00"), []),  # carol's round had a bet after 08:00: its last entry is newer
    ],
)
def test_open_rounds(engine: DuckDBEngine, cutoff: str, expected: list[tuple[Any, ...]]) -> None:
    rows = engine.run("open_rounds", cutoff=cutoff)
    assert amounts(rows, "game_uuid", "player_id", "game_id", "bet", "last_bet_at") == expected
    assert [row["currency"] for row in rows] == [{"carol": "EUR", "alice": "FUN"}[row["player_id"]] for row in rows]


def test_statement_bounds(engine: DuckDBEngine) -> None:
    def statement(player: str, since: str, until: str) -> list[str]:
        return [row["trx_id"] for row in engine.run("statement", player_id=player, since=since, until=until)]

    # since inclusive, until exclusive: alice's 10:00 bet on day 2 is out, her day-1 10:00 bet is in.
    assert statement("alice", T.format(1, "10:00"), T.format(2, "10:00")) == ["t-2", "t-3"]
    assert statement("alice", "2026-12-02", "2026-12-03") == ["t-4", "dep-a1"]  # bare dates as bounds
    assert statement("alice", "2026-12-01", "2026-12-03") == ["opening#alice", "t-2", "t-3", "t-4", "dep-a1"]
    assert statement("alice", "2026-12-03", "2026-12-04") == []
    assert statement("bob", "2026-12-01", "2026-12-02") == ["dép-€1", "t-2"]


def test_statement_rows_are_typed(engine: DuckDBEngine) -> None:
    [opening] = engine.run("statement", player_id="carol", since="2026-12-02T07:00", until="2026-12-02T07:01")
    assert opening == {
        "entry_id": "operator:opening#carol",
        "source": "operator",
        "trx_id": "opening#carol",
        "player_id": "carol",
        "kind": "opening",
        "currency": "EUR",
        "minus": Decimal(0),
        "plus": Decimal(10),
        "balance_before": Decimal(0),
        "balance_after": Decimal(10),
        "game_uuid": None,
        "game_id": None,
        "game_type": None,
        "tag": "{}",
        "created_at": T.format(2, "07:00"),
        "account_version": 0,
        "chain_hash": opening["chain_hash"],
    }
    assert isinstance(opening["account_version"], int)
    assert len(opening["chain_hash"]) == 64


@pytest.mark.parametrize("player", ["o'brien", "x' OR '1'='1", "alice' --"])
def test_parameters_are_bound_not_formatted(engine: DuckDBEngine, player: str) -> None:
    query = render("statement", engine.dialect())
    assert query.sql.count("?") == 3
    assert query.parameters == ("player_id", "since", "until")
    rows = engine.run("statement", player_id=player, since="2026-12-01", until="2026-12-03")
    assert [row["player_id"] for row in rows] == (["o'brien"] if player == "o'brien" else [])


def test_parameters_must_all_be_given_and_used(engine: DuckDBEngine) -> None:
    with pytest.raises(EngineError, match="missing \\['until'\\]"):
        engine.run("statement", player_id="alice", since="2026-12-01")
    with pytest.raises(EngineError, match="not used \\['player'\\]"):
        engine.run("ggr_daily", player="alice")
    with pytest.raises(EngineError, match="no query"):
        engine.run("../../etc/passwd")


def test_redelivered_copies_count_once(book: Book, tmp_path: Path) -> None:
    """A batch retried with other boundaries: the same rows in a second object, and part of them in a third."""
    engine = book.write(tmp_path)
    expected = {name: engine.run(name) for name in ("ggr_daily", "game_totals", "audit", "audit_totals")}
    book.write(tmp_path, name="retry-1")
    write_table(tmp_path, "entries", book.entries[3:9], name="retry-2")
    write_table(tmp_path, "accounts", book.accounts[:2], name="retry-2")
    assert {name: engine.run(name) for name in expected} == expected
    assert expected["audit"] == []
    assert expected["audit_totals"] == [{"players": 4, "entries": 14, "total_balance": Decimal(188)}]


def test_an_empty_or_missing_archive_reads_as_empty(tmp_path: Path) -> None:
    engine = DuckDBEngine(tmp_path / "nothing-yet")
    for name in QUERIES:
        params = dict.fromkeys(render(name, engine.dialect()).parameters, "2026-12-01")
        rows = engine.run(name, **params)
        assert rows == ([{"players": 0, "entries": 0, "total_balance": Decimal(0)}] if name == "audit_totals" else [])
    assert ledger_sql.report(engine, datetime(2026, 12, 2, tzinfo=UTC), 60) == {
        "generated_at": "2026-12-02T00:00:00.000000Z",
        "open_minutes": 60,
        "ggr": [],
        "games": [],
        "open_rounds": [],
    }


def test_accounts_without_entries_yet(book: Book, tmp_path: Path) -> None:
    """The entries' files not there yet (only accounts archived): each player's account has no entries."""
    write_table(tmp_path, "accounts", book.accounts)
    kinds = {(row["player_id"], row["kind"]) for row in DuckDBEngine(tmp_path).run("audit")}
    assert ("alice", "account_mismatch") in kinds
    assert ("alice", "chain_head_mismatch") in kinds


def test_report_as_the_cli_prints_it(engine: DuckDBEngine) -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    report = ledger_sql.report(engine, now, 60)
    assert set(report) == {"generated_at", "open_minutes", "ggr", "games", "open_rounds"}
    assert report["generated_at"] == "2026-12-02T12:00:00.000000Z"
    assert report["ggr"][0] == {
        "day": "2026-12-01",
        "game_id": "slot_a",
        "currency": "FUN",
        "bets": "14",
        "wins": "31",
        "ggr": "-17",
    }
    assert report["games"][0] == {
        "game_id": "slot_a",
        "currency": "EUR",
        "bets": "2",
        "wins": "0",
        "ggr": "2",
        "players": 1,
        "rounds": 1,
    }
    assert report["open_rounds"] == [
        {
            "game_uuid": "r5",
            "player_id": "carol",
            "player": "carol",
            "game_id": "slot_a",
            "currency": "EUR",
            "bet": "2",
            "last_bet_at": T.format(2, "08:10"),
            "open_minutes": 230,
        },
        {
            "game_uuid": "r2",
            "player_id": "alice",
            "player": "alice",
            "game_id": "slot_b",
            "currency": "FUN",
            "bet": "5",
            "last_bet_at": T.format(2, "10:00"),
            "open_minutes": 120,
        },
    ]
    assert [r["game_uuid"] for r in ledger_sql.report(engine, now, 121)["open_rounds"]] == ["r5"]
    json.dumps(report)  # JSON as it is: no Decimal, no float


# --- the audit ------------------------------------------------------------------------------------------------------


def test_the_python_chain_passes_the_sql_audit(engine: DuckDBEngine) -> None:
    """The SQL recomputes every hash the Python chain wrote (a non-ASCII trx_id and tag, empty game_uuid included)."""
    assert engine.run("audit") == []
    report = ledger_sql.audit(engine)
    assert report.as_json() == {
        "clean": True,
        "players": 4,
        "entries": 14,
        "total_balance": "188",
        "violations": [],
        "warnings": [],
    }


def test_the_money_path_chain_is_the_spec(book: Book) -> None:
    """The hashes in the book come from wallet.money.ledger.chain_hash; byte for byte the design's form."""
    for player in book.players.values():
        previous = ""
        for row in player.rows:
            entry = row_entry(row)
            assert canonical_tag(entry.tag) == spec_canonical_tag(entry.tag) == row["tag"]
            assert chain_hash(entry, previous) == spec_chain_hash(entry, previous) == row["chain_hash"]
            previous = row["chain_hash"]


def row_entry(row: dict[str, Any]) -> LedgerEntry:
    """An archived row back as the LedgerEntry it was made from."""
    return LedgerEntry(
        source=Source(row["source"]),
        trx_id=row["trx_id"],
        player_id=row["player_id"],
        minus=row["minus"],
        plus=row["plus"],
        balance_before=row["balance_before"],
        balance_after=row["balance_after"],
        currency=row["currency"],
        created_at=row["created_at"],
        kind=row["kind"],
        game_uuid=row["game_uuid"],
        tag=json.loads(row["tag"]),
        account_version=row["account_version"],
    )


def test_editing_one_archived_amount_is_caught(book: Book, tmp_path: Path) -> None:
    book.players["alice"].rows[2]["plus"] = Decimal("2500")  # the win of 25, now 2500; nothing else changed
    rows = book.write(tmp_path).run("audit")
    assert {(row["player_id"], row["account_version"], row["kind"]) for row in rows} == {
        ("alice", 2, "chain_broken"),
        ("alice", 2, "arithmetic"),
    }


def audit_kinds(book: Book, root: Path) -> set[tuple[str, int, str]]:
    rows = book.write(root).run("audit")
    assert all(row["detail"] for row in rows)
    return {(row["player_id"], row["account_version"], row["kind"]) for row in rows}


def rebuild(book: Book, player_id: str, *, changed_at: str = T.format(3, "00:00"), **account: Any) -> Book:
    """The book with `player_id`'s latest account row as its ledger now stands (after a forced entry)."""
    player = book.players[player_id]
    accounts = [a for a in book.accounts if a["player_id"] != player_id]
    return Book(book.players, [*accounts, player.account(changed_at, **account)])


def test_version_gap(book: Book, tmp_path: Path) -> None:
    bob = book.players["bob"]
    bob.move(
        T.format(2, "14:00"), plus="1", source=Source.OPERATOR, kind="deposit", trx_id="d2", version=bob.version + 2
    )
    assert audit_kinds(rebuild(book, "bob"), tmp_path) == {("bob", 7, "version_gap")}


def test_version_gap_at_the_start(tmp_path: Path) -> None:
    eve = Player("eve")
    eve.move(T.format(1, "10:00"), plus="5", source=Source.OPERATOR, kind="deposit", trx_id="e1", version=2)
    assert audit_kinds(Book({"eve": eve}, [eve.account(T.format(1, "10:00"))]), tmp_path) == {("eve", 2, "version_gap")}


def test_a_repeated_version(book: Book, tmp_path: Path) -> None:
    bob = book.players["bob"]
    bob.move(T.format(2, "14:00"), plus="1", source=Source.OPERATOR, kind="deposit", trx_id="d2", version=bob.version)
    # A doubled write: the two entries of version 5 have no order, so the links after the first are wrong too.
    assert ("bob", 5, "version_gap") in audit_kinds(rebuild(book, "bob"), tmp_path)


def test_balance_link(book: Book, tmp_path: Path) -> None:
    carol = book.players["carol"]
    carol.move(T.format(2, "14:00"), minus="1", game=("slot_a", "r6"), balance_before="9")  # the last left 8
    assert audit_kinds(rebuild(book, "carol"), tmp_path) == {("carol", 3, "balance_link")}


def test_arithmetic(book: Book, tmp_path: Path) -> None:
    carol = book.players["carol"]
    carol.move(T.format(2, "14:00"), minus="1", game=("slot_a", "r6"), balance_after="17")  # 8 - 1 is not 17
    assert audit_kinds(rebuild(book, "carol"), tmp_path) == {("carol", 3, "arithmetic")}


def test_negative_balance(book: Book, tmp_path: Path) -> None:
    carol = book.players["carol"]
    carol.move(T.format(2, "14:00"), minus="9", game=("slot_a", "r6"))  # 8 - 9
    kinds = audit_kinds(rebuild(book, "carol"), tmp_path)
    assert kinds == {("carol", 3, "negative_balance")}
    assert [row["detail"] for row in DuckDBEngine(tmp_path).run("audit")] == [
        "account balance -1.00000000 is below zero",
        "entry game:carol:t-4: balance after -1.00000000 is below zero",
    ]


def test_account_mismatch(book: Book, tmp_path: Path) -> None:
    assert audit_kinds(rebuild(book, "carol", balance=Decimal(999)), tmp_path) == {("carol", 2, "account_mismatch")}
    assert audit_kinds(rebuild(book, "carol", version=3), tmp_path / "v") == {("carol", 3, "account_mismatch")}


def test_entries_of_a_player_with_no_account(book: Book, tmp_path: Path) -> None:
    accounts = [a for a in book.accounts if a["player_id"] != "carol"]
    assert audit_kinds(Book(book.players, accounts), tmp_path) == {("carol", 2, "account_mismatch")}


def test_an_account_with_money_and_no_entries(book: Book, tmp_path: Path) -> None:
    ghost = {**book.accounts[0], "player_id": "ghost", "version": 0, "balance": Decimal(5), "chain_head": ""}
    assert audit_kinds(Book(book.players, [*book.accounts, ghost]), tmp_path) == {("ghost", 0, "account_mismatch")}


def test_chain_broken(book: Book, tmp_path: Path) -> None:
    book.players["bob"].rows[1]["created_at"] = T.format(1, "12:06")  # a field the other checks do not read
    assert audit_kinds(book, tmp_path) == {("bob", 2, "chain_broken")}


def test_a_rewritten_entry_rehashed_breaks_the_next_link(book: Book, tmp_path: Path) -> None:
    """Whoever changes an entry and recomputes its hash breaks the next entry's hash, or the account's head."""
    row = book.players["bob"].rows[1]
    row["trx_id"] = "t-2-edited"
    row["chain_hash"] = chain_hash(row_entry(row), book.players["bob"].rows[0]["chain_hash"])
    assert audit_kinds(book, tmp_path) == {("bob", 3, "chain_broken")}


def test_chain_head_mismatch(book: Book, tmp_path: Path) -> None:
    assert audit_kinds(rebuild(book, "carol", chain_head="0" * 64), tmp_path) == {("carol", 2, "chain_head_mismatch")}


def test_entry_rewritten(book: Book, tmp_path: Path) -> None:
    """The live item changed after it was written: its MODIFY archives a second, different copy of the entry."""
    engine = book.write(tmp_path)
    changed = replace_row(book.players["alice"].rows[1], minus=Decimal(1))
    write_table(tmp_path, "entries", [changed], name="modify")
    [rewritten] = [row for row in engine.run("audit") if row["kind"] == "entry_rewritten"]
    assert (rewritten["player_id"], rewritten["account_version"]) == ("alice", 1)
    assert rewritten["detail"] == "entry game:alice:t-2 was archived with 2 different contents"
    assert engine.run("audit_totals")[0]["entries"] == 14  # still one entry


def replace_row(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**row, **changes}


def test_audit_report_lists_each_violation_as_a_sentence(book: Book, tmp_path: Path) -> None:
    report = ledger_sql.audit(rebuild(book, "carol", balance=Decimal(999)).write(tmp_path))
    assert not report.clean
    assert report.as_json()["violations"] == [
        "player carol version 2: account_mismatch: account at version 2 with balance 999.00000000, "
        "its last entry is version 2 leaving 8.00000000"
    ]
    assert report.as_json()["total_balance"] == "1179"


# --- the same SQL on Athena -----------------------------------------------------------------------------------------


def athena_dialect() -> ledger_sql.Dialect:
    return AthenaEngine("wg", "ledger", client=None).dialect()


@pytest.mark.parametrize("name", QUERIES)
def test_every_query_is_trino_sql(name: str) -> None:
    rendered = render(name, athena_dialect()).sql
    tree = sqlglot.parse_one(rendered, read="trino")
    unknown = sorted({f.name for f in tree.find_all(exp.Anonymous)})
    assert unknown == [], f"functions sqlglot does not know as Trino's: {unknown}"
    assert "lower(to_hex(sha256(to_utf8(" in rendered or name != "audit"
    assert "read_parquet" not in rendered


def test_every_sql_file_is_a_query_or_a_partial() -> None:
    files = {path.stem for path in ledger_sql.SQL_DIR.glob("*.sql")}
    assert files == {*QUERIES, "_relations"}


@dataclass
class Athena:
    client: Any
    backend: Any

    def queue(self, columns: list[tuple[str, str]], rows: list[list[str | None]]) -> None:
        """A result the next query gets, as Athena gives it: a header row, then every value as text."""
        header = {"Data": [{"VarCharValue": name} for name, _ in columns]}
        data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
        info = [{"Name": name, "Label": name, "Type": kind} for name, kind in columns]
        self.backend.query_results_queue.append(QueryResults(rows=[header, *data], column_info=info))


@pytest.fixture
def athena(boto_session: boto3.session.Session) -> Iterator[Athena]:
    with mock_aws():
        client = boto_session.client("athena", region_name="us-east-1")
        client.create_work_group(
            Name="wallet-reports", Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/"}}
        )
        yield Athena(client, athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"])


def test_athena_request_and_result_typing(athena: Athena) -> None:
    engine = AthenaEngine("wallet-reports", "wallet_ledger", athena.client, sleep=lambda _: None)
    athena.queue(
        [("entry_id", "varchar"), ("minus", "decimal"), ("account_version", "bigint"), ("game_uuid", "varchar")],
        [["game:o'brien:t-1", "12.50000000", "7", None]],
    )
    rows = engine.run("statement", player_id="o'brien", since="2026-12-01", until="2026-12-02")
    assert rows == [{"entry_id": "game:o'brien:t-1", "minus": Decimal("12.5"), "account_version": 7, "game_uuid": None}]
    assert isinstance(rows[0]["minus"], Decimal)
    [execution] = athena.backend.executions.values()
    assert execution.workgroup.name == "wallet-reports"
    assert execution.context == {"Database": "wallet_ledger"}
    assert execution.execution_parameters == ["'o''brien'", "'2026-12-01'", "'2026-12-02'"]
    assert execution.query == render("statement", engine.dialect()).sql
    assert "o'brien" not in execution.query


def test_athena_query_without_parameters_sends_none(athena: Athena) -> None:
    engine = AthenaEngine("wallet-reports", "wallet_ledger", athena.client)
    athena.queue([("players", "bigint"), ("entries", "bigint"), ("total_balance", "decimal(38,8)")], [["2", "9", "5"]])
    assert engine.run("audit_totals") == [{"players": 2, "entries": 9, "total_balance": Decimal(5)}]
    [execution] = athena.backend.executions.values()
    assert execution.execution_parameters is None
    assert '"entries"' in execution.query
    with pytest.raises(EngineError, match="audit_totals gave 0 rows"):  # no result queued: moto gives no row
        ledger_sql.audit(engine)


def test_athena_audit_and_report_over_canned_results(athena: Athena) -> None:
    engine = AthenaEngine("wallet-reports", "wallet_ledger", athena.client)
    athena.queue([("players", "bigint"), ("entries", "bigint"), ("total_balance", "decimal")], [["1", "3", "8"]])
    athena.queue(
        [("player_id", "varchar"), ("account_version", "bigint"), ("kind", "varchar"), ("detail", "varchar")],
        [["carol", "2", "chain_broken", "entry game:carol:t-2: ..."]],
    )
    assert ledger_sql.audit(engine).as_json() == {
        "clean": False,
        "players": 1,
        "entries": 3,
        "total_balance": "8",
        "violations": ["player carol version 2: chain_broken: entry game:carol:t-2: ..."],
        "warnings": [],
    }


class Stubbed:
    """A botocore Stubber over a real client: the exact requests, in order, and the answers to give."""

    def __init__(self) -> None:
        self.client = boto3.client("athena", region_name="us-east-1")
        self.stubber = Stubber(self.client)
        self.sleeps: list[float] = []
        self.now = 0.0

    def engine(self, timeout: float = 60.0) -> AthenaEngine:
        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.now += seconds

        return AthenaEngine("wg", "db", self.client, timeout_seconds=timeout, sleep=sleep, clock=lambda: self.now)

    def start(self, sql: str) -> None:
        self.stubber.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {"QueryString": sql, "WorkGroup": "wg", "QueryExecutionContext": {"Database": "db"}},
        )

    def state(self, state: str, reason: str | None = None) -> None:
        status: dict[str, Any] = {"State": state} | ({"StateChangeReason": reason} if reason else {})
        self.stubber.add_response(
            "get_query_execution", {"QueryExecution": {"Status": status}}, {"QueryExecutionId": "q-1"}
        )

    def page(self, values: list[str], token: str | None, after: str | None, header: bool) -> None:
        rows = [{"Data": [{"VarCharValue": "ggr"}]}] if header else []
        rows += [{"Data": [{"VarCharValue": v}]} for v in values]
        answer: dict[str, Any] = {
            "ResultSet": {"Rows": rows, "ResultSetMetadata": {"ColumnInfo": [{"Name": "ggr", "Type": "decimal"}]}}
        }
        if token:
            answer["NextToken"] = token
        expected = {"QueryExecutionId": "q-1", "MaxResults": 1000} | ({"NextToken": after} if after else {})
        self.stubber.add_response("get_query_results", answer, expected)


def test_athena_polls_until_done_and_reads_every_page() -> None:
    stubbed = Stubbed()
    engine = stubbed.engine()
    stubbed.start(render("ggr_daily", engine.dialect()).sql)
    for state in ("QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"):
        stubbed.state(state)
    stubbed.page(["1.50000000", "2"], token="page-2", after=None, header=True)
    stubbed.page(["-3.25"], token=None, after="page-2", header=False)  # later pages have no header
    with stubbed.stubber:
        assert engine.run("ggr_daily") == [{"ggr": Decimal("1.5")}, {"ggr": Decimal(2)}, {"ggr": Decimal("-3.25")}]
    stubbed.stubber.assert_no_pending_responses()
    assert stubbed.sleeps == [0.1, 0.2, 0.4]


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_athena_failure_is_an_engine_error(state: str) -> None:
    stubbed = Stubbed()
    engine = stubbed.engine()
    stubbed.start(render("ggr_daily", engine.dialect()).sql)
    stubbed.state(state, "Query exhausted resources at this scale factor")
    with stubbed.stubber, pytest.raises(EngineError, match=f"{state}: Query exhausted"):
        engine.run("ggr_daily")


def test_athena_wait_is_bounded() -> None:
    stubbed = Stubbed()
    engine = stubbed.engine(timeout=1.0)
    stubbed.start(render("ggr_daily", engine.dialect()).sql)
    for _ in range(5):  # 0.1 + 0.2 + 0.4 + 0.8 s: past the second at the fifth look
        stubbed.state("RUNNING")
    stubbed.stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-1"})
    with stubbed.stubber, pytest.raises(EngineError, match="still RUNNING after 1 s; stopped"):
        engine.run("ggr_daily")
    stubbed.stubber.assert_no_pending_responses()


def test_athena_refusal_is_an_engine_error() -> None:
    stubbed = Stubbed()
    stubbed.stubber.add_client_error("start_query_execution", "InvalidRequestException", "workgroup wg is disabled")
    with stubbed.stubber, pytest.raises(EngineError, match="workgroup wg is disabled"):
        stubbed.engine().run("ggr_daily")


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("decimal(38,8)", "0.00000001", Decimal("0.00000001")),
        ("double", "0.1", Decimal("0.1")),  # never a float, even where Athena has one
        ("bigint", "9007199254740993", 9007199254740993),
        ("integer", "-4", -4),
        ("boolean", "true", True),
        ("varchar", "012", "012"),
        ("varchar", None, None),
    ],
)
def test_athena_values_by_column_type(kind: str, text: str | None, value: Any) -> None:
    assert ledger_sql.athena_value(kind, text) == value
    assert type(ledger_sql.athena_value(kind, text)) is type(value)


def test_athena_literals() -> None:
    assert ledger_sql.athena_literal("o'brien") == "'o''brien'"
    assert ledger_sql.athena_literal(7) == "7"
    assert ledger_sql.athena_literal(Decimal("1.5")) == "DECIMAL '1.5'"
    with pytest.raises(EngineError):
        ledger_sql.athena_literal(1.5)
    with pytest.raises(EngineError, match="not a table name"):
        AthenaEngine("wg", "db", None, entries_table="entries; DROP")


# --- choosing the engine --------------------------------------------------------------------------------------------


def test_open_engine(tmp_path: Path) -> None:
    athena = open_engine(
        environ={"WALLET_ATHENA_WORKGROUP": "wg", "WALLET_ATHENA_DATABASE": "db"}, athena_client=lambda: "client"
    )
    assert isinstance(athena, AthenaEngine)
    assert (athena.workgroup, athena.database, athena.client) == ("wg", "db", "client")
    local = open_engine(environ={"WALLET_ARCHIVE_DIR": str(tmp_path)})
    assert isinstance(local, DuckDBEngine)
    assert local.archive_dir == tmp_path
    both = {"WALLET_ATHENA_WORKGROUP": "wg", "WALLET_ARCHIVE_DIR": str(tmp_path)}
    assert isinstance(open_engine("duckdb", environ=both), DuckDBEngine)
    assert isinstance(open_engine(archive_dir=tmp_path, environ=both), DuckDBEngine)  # --archive means duckdb


@pytest.mark.parametrize(
    ("engine", "environ", "message"),
    [
        (None, {}, "set WALLET_ARCHIVE_DIR"),
        ("duckdb", {"WALLET_ARCHIVE_DIR": "/no/such/archive"}, "/no/such/archive does not exist"),
        ("athena", {}, "set WALLET_ATHENA_WORKGROUP"),
        (None, {"WALLET_ATHENA_WORKGROUP": "wg"}, "set WALLET_ATHENA_DATABASE"),
        ("athena", {"WALLET_ATHENA_WORKGROUP": "wg", "WALLET_ATHENA_DATABASE": "db"}, "--archive is the local folder"),
    ],
)
def test_open_engine_errors(engine: str | None, environ: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=message):
        open_engine(engine, tmp_path if "--archive" in message else None, environ=environ)


def test_a_corrupt_file_is_an_engine_error(tmp_path: Path) -> None:
    (tmp_path / "entries" / "day=2026-12-01").mkdir(parents=True)
    (tmp_path / "entries" / "day=2026-12-01" / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(EngineError, match="duckdb: ggr_daily"):
        DuckDBEngine(tmp_path).run("ggr_daily")
