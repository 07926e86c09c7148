"""The ledger archive at scale: 1M entries over 10,000 players, every report and the audit timed on DuckDB.

What runs is the code `wallet report` and `wallet audit` run: wallet.operator.ledger_sql.report() and audit() over a
DuckDBEngine on a local folder laid out as the exporter lays out the bucket (entries/day=YYYY-MM-DD/*.parquet,
accounts/day=YYYY-MM-DD/*.parquet, the columns of ledger_sql.ENTRY_COLUMNS / ACCOUNT_COLUMNS).

The ledger is generated as the wallet writes it, player by player: versions from an opening entry (0) or 1, balances
linked and never below zero, every entry chained with the design's chain_hash, one account row per change (and one
per session issued, which changes the item but not its version). Python draws the movements and hashes them (the
chain is sequential per player); DuckDB reads them back from one tab-separated file and writes the Parquet, so no row
goes through executemany. The archive is cached under .local/bench-archive/<hash of the parameters>/ and reused.

Two layouts of the same rows are timed:
  stream     what the exporter writes: one object per stream batch (cost.ARCHIVE_BATCH_RECORDS records: an entry
             and its account change are two) per day it touches, plus a few batches delivered twice
  compacted  one object per day per table (what a compaction job would leave)
The Athena estimate: per query the columns its Parquet scans read (DuckDB's plan, after projection pushdown) times
their compressed sizes (parquet_metadata), extrapolated linearly to 100M entries, at $5 per TB with the 10 MB minimum.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from bench import cost
from bench.common import REPO_ROOT
from wallet.money.ledger import LedgerEntry, Source, json_ready, utc_now_iso
from wallet.operator import ledger_sql
from wallet.operator.ledger_sql import ACCOUNT_COLUMNS, ENTRY_COLUMNS, DuckDBEngine


def spec_canonical_tag(tag: dict[str, Any]) -> str:
    """The design's canonical tag (design-13.md, "The chain"), word for word."""
    return json.dumps(json_ready(tag), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_chain_hash(entry: LedgerEntry, previous: str) -> str:
    """The design's chain hash, word for word (tests/unit/test_ledger_sql.py has the same)."""
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


try:  # the money path's own chain, which the archive's hashes come from in production
    from wallet.money.ledger import canonical_tag, chain_hash  # type: ignore[attr-defined,unused-ignore]

    CHAIN_SOURCE = "wallet.money.ledger.chain_hash"
except ImportError:  # not in this checkout yet: chained with the design's spec, as tests/unit/test_ledger_sql.py does
    canonical_tag, chain_hash = spec_canonical_tag, spec_chain_hash
    CHAIN_SOURCE = "the design's spec (wallet.money.ledger has no chain_hash yet)"

GENERATOR_VERSION = 1  # bump when the generated ledger changes: the cache key includes it
CACHE_ROOT = REPO_ROOT / ".local" / "bench-archive"
TARGET_SECONDS = 10.0  # issue 13: each report and the audit under 10 s on 2 cores
OPEN_MINUTES = 60

# Athena: $5 per TB of data scanned (the columns read of a Parquet table), rounded up to the megabyte, at least 10 MB
# per query (us-east-1 list price, verify before quoting). TB and MB in binary units, as AWS bills them.
ATHENA_USD_PER_TB = 5.0
MB = 2**20
TB = 2**40
ATHENA_MIN_BYTES = 10 * MB
SCALE_ENTRIES = 100_000_000


@dataclass(frozen=True)
class ArchiveSpec:
    entries: int = 1_000_000
    players: int = 10_000
    days: int = 60
    start: str = "2026-10-01"
    seed: int = 13
    batch_records: int = cost.ARCHIVE_BATCH_RECORDS  # stream records per exporter invocation (= per object per day)
    redeliver_every: int = 500  # every n-th batch is written twice (a retried invocation): the SQL dedupes it

    def key(self) -> str:
        text = json.dumps({**asdict(self), "generator": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def start_time(self) -> datetime:
        return datetime.fromisoformat(self.start).replace(tzinfo=UTC)

    @property
    def end_time(self) -> datetime:
        return self.start_time + timedelta(days=self.days)


FULL_SPEC = ArchiveSpec()
QUICK_SPEC = ArchiveSpec(entries=100_000, players=1_000, days=30)


# --- the players and their movements ------------------------------------------------------------------------------

# (game_id, game type): the tag's `game_id` and `game`, as the Games Server sends them.
GAMES = (
    ("a_op", "slot"),
    ("book_of_ra", "slot"),
    ("sweet_bonanza", "slot"),
    ("roulette_eu", "egame"),
    ("blackjack", "egame"),
    ("sportsbook", "bet"),
)
GAME_WEIGHTS = (30, 20, 15, 12, 8, 15)
CURRENCIES = ("FUN", "EUR", "USD")
CURRENCY_WEIGHTS = (5, 3, 2)
# A win's multiple of the stake, and how often a round wins: the slots and egames return ~96% of the stakes.
MULTIPLES = tuple(Decimal(m) for m in ("0.5", "1", "2", "3", "5", "10", "20", "50"))
MULTIPLE_WEIGHTS = (30, 25, 20, 10, 8, 4, 2, 1)
WIN_CHANCE = 0.34
ODDS = tuple(Decimal(o) for o in ("1.45", "1.85", "2.10", "3.40"))
ABANDONED = 0.003  # a round whose provider never sent the win or zero win: open for ever
BET_AND_WIN = 0.4  # of the winning slot/egame rounds, sent as one request (minus and plus together)


@dataclass(frozen=True)
class Money:
    """A currency's amounts: FUN in kopecks (whole numbers), EUR and USD with cents."""

    step: Decimal
    denominations: tuple[int, ...]
    deposits: tuple[Decimal, ...]

    def stake(self, lines: int, bet: int, denomination: int) -> Decimal:
        return (Decimal(lines * bet * denomination) * self.step).quantize(self.step)


MONEY = {
    "FUN": Money(Decimal(1), (1, 10, 100), tuple(Decimal(d) for d in (50_000, 100_000, 200_000, 500_000))),
    "EUR": Money(Decimal("0.01"), (1, 5, 10), tuple(Decimal(d) for d in (10, 20, 50, 100, 200))),
    "USD": Money(Decimal("0.01"), (1, 5, 10), tuple(Decimal(d) for d in (10, 25, 50, 100, 250))),
}


def allocate(total: int, players: int, rng: random.Random) -> list[int]:
    """Entries per player summing to `total`, at least 2 each, heavy-tailed (a few players play far more)."""
    if players < 1 or total < 2 * players:
        raise ValueError(f"{total} entries cannot give {players} players at least 2 each")
    weights = [rng.lognormvariate(0, 1) for _ in range(players)]
    spare = total - 2 * players
    scale = spare / sum(weights)
    raw = [w * scale for w in weights]
    counts = [2 + int(r) for r in raw]
    by_fraction = sorted(range(players), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    for i in by_fraction[: total - sum(counts)]:
        counts[i] += 1
    return counts


class Ledger:
    """Writes the entries and account rows, tab-separated in ENTRY_COLUMNS / ACCOUNT_COLUMNS order plus a row number
    (`\\N` for NULL; no field can hold a tab or a newline: the tags are ASCII JSON)."""

    def __init__(self, entries: IO[str], accounts: IO[str]) -> None:
        self.entries_out = entries
        self.accounts_out = accounts
        self.entry_lines: list[str] = []
        self.account_lines: list[str] = []
        self.entry_count = 0
        self.account_count = 0
        self.kinds: Counter[str] = Counter()

    def entry(self, entry: LedgerEntry, hash_: str, tag_text: str) -> None:
        game_id = entry.tag.get("game_id")
        game_type = entry.tag.get("game")
        self.entry_lines.append(
            "\t".join(
                (
                    entry.entry_id,
                    entry.source.value,
                    entry.trx_id,
                    entry.player_id,
                    entry.kind,
                    entry.currency,
                    format(entry.minus, ".8f"),
                    format(entry.plus, ".8f"),
                    format(entry.balance_before, ".8f"),
                    format(entry.balance_after, ".8f"),
                    entry.game_uuid or "\\N",
                    "\\N" if game_id is None else str(game_id),
                    "\\N" if game_type is None else str(game_type),
                    tag_text,
                    entry.created_at,
                    str(entry.account_version),
                    hash_,
                    str(self.entry_count),
                )
            )
        )
        self.entry_count += 1
        self.kinds[entry.kind] += 1
        if len(self.entry_lines) >= 10_000:
            self.flush()

    def account(self, player_id: str, version: int, balance: Decimal, currency: str, head: str, at: str) -> None:
        self.account_lines.append(
            f"{player_id}\t{version}\t{balance:.8f}\t{currency}\tactive\t{head}\t{at}\t{self.account_count}"
        )
        self.account_count += 1

    def flush(self) -> None:
        for lines, out in ((self.entry_lines, self.entries_out), (self.account_lines, self.accounts_out)):
            if lines:
                out.write("\n".join(lines) + "\n")
                lines.clear()


class Player:
    """One player's life in the wallet: created (with an opening balance, mostly), sessions of rounds, deposits when
    the money runs out, a withdrawal now and then. Every movement goes through move(), which chains it."""

    def __init__(self, number: int, entries: int, spec: ArchiveSpec, rng: random.Random, ledger: Ledger) -> None:
        self.id = f"player-{number:06d}"
        self.rng = rng
        self.ledger = ledger
        self.left = entries
        self.currency = rng.choices(CURRENCIES, CURRENCY_WEIGHTS)[0]
        self.money = MONEY[self.currency]
        self.balance = Decimal(0)
        self.version = 0
        self.head = ""
        span = (spec.end_time - spec.start_time).total_seconds()
        start = spec.start_time.timestamp()
        self.t = start + rng.uniform(0, span / 2)  # joined some time in the first half
        sessions = max(1, round(entries / 40))
        last = start + span - 2 * 3600
        self.sessions = sorted(rng.uniform(self.t + 60, max(self.t + 60, last)) for _ in range(sessions))
        self.per_session = math.ceil(entries / sessions)
        self.in_session = 0
        self.refs = 0

    def live(self) -> None:
        at = self.at()
        if self.rng.random() < 0.9:  # created with an opening balance: entry version 0, the account's first state
            self.move(Source.OPERATOR, f"opening#{self.id}", "opening", plus=self.rng.choice(self.money.deposits),
                      tag={"operator": "opening"}, version=0, at=at)  # fmt: skip
        else:  # created empty: an account row at version 0, the first entry is version 1
            self.ledger.account(self.id, 0, Decimal(0), self.currency, "", at)
        session = 0
        self.next_session(session)
        while self.left > 0:
            if self.in_session >= self.per_session and session + 1 < len(self.sessions):
                session += 1
                self.next_session(session)
            self.step()

    def next_session(self, session: int) -> None:
        """A session issued: the account item changes (its session hash), not its version."""
        self.t = max(self.t + 1, self.sessions[session])
        self.in_session = 0
        self.ledger.account(self.id, self.version, self.balance, self.currency, self.head, self.at())

    def at(self, gap: float = 0.0) -> str:
        self.t += gap
        return utc_now_iso(self.t)

    def step(self) -> None:
        rng = self.rng
        smallest = self.money.stake(1, 1, self.money.denominations[0])
        # The last entry a deposit, so no player's ledger ends on a round cut short (only abandoned ones stay open).
        if self.left == 1 or self.balance < smallest * 20 or rng.random() < 0.01:
            self.operator("deposit", plus=rng.choice(self.money.deposits))
        elif self.balance > 2 * self.money.deposits[1] and rng.random() < 0.05:
            self.operator("withdrawal", minus=(self.balance / 2).quantize(self.money.step))
        else:
            game_id, game = rng.choices(GAMES, GAME_WEIGHTS)[0]
            if game == "bet":
                self.sports_round(game_id)
            else:
                self.round(game_id, game)

    def operator(self, kind: str, minus: Decimal = Decimal(0), plus: Decimal = Decimal(0)) -> None:
        self.refs += 1
        ref = f"pay-{self.id}-{self.refs}"
        self.move(Source.OPERATOR, ref, kind, minus, plus, tag={"operator": kind, "ref": ref}, at=self.at(30))

    def round(self, game_id: str, game: str) -> None:
        """A slot or egame round: a bet and its win (or zero win), or both in one request when it won."""
        rng = self.rng
        lines = rng.choice((1, 9, 20)) if game == "slot" else 1
        for _ in range(6):
            bet, denomination = rng.choice((1, 2, 5)), rng.choice(self.money.denominations)
            stake = self.money.stake(lines, bet, denomination)
            if stake <= self.balance:
                break
        else:
            lines, bet, denomination = 1, 1, self.money.denominations[0]
            stake = self.money.stake(1, 1, denomination)
        round_id = self.uuid()
        tag: dict[str, Any] = {"game": game, "game_id": game_id, "game_uuid": round_id, "bet": bet,
                               "denomination": denomination}  # fmt: skip
        if game == "slot":
            tag["lines"] = lines
        won = rng.random() < WIN_CHANCE
        win = (stake * rng.choices(MULTIPLES, MULTIPLE_WEIGHTS)[0]).quantize(self.money.step) if won else Decimal(0)
        at = self.at(rng.uniform(3, 12))
        if won and (self.left == 1 or rng.random() < BET_AND_WIN):
            self.game_move("bet_and_win", stake, win, round_id, tag | {"result": "win"}, at)
            return
        self.game_move("bet", stake, Decimal(0), round_id, tag, at)
        if self.left == 0 or rng.random() < ABANDONED:
            return  # the provider never settled it: an open round
        result = {"game": game, "game_id": game_id, "game_uuid": round_id, "result": "win" if won else "lose"}
        self.game_move("win" if won else "zero_win", Decimal(0), win, round_id, result, self.at(rng.uniform(0.2, 2)))

    def sports_round(self, game_id: str) -> None:
        """A betting game: a package of one to three bets under one game_uuid, settled by one win or zero win (or
        cancelled: the stakes come back through plus)."""
        rng = self.rng
        round_id = self.uuid()
        base = {"game": "bet", "game_id": game_id, "game_uuid": round_id}
        staked = Decimal(0)
        payout = Decimal(0)
        for n in range(rng.choice((1, 1, 2, 3))):
            if self.left == 0 or (n and self.left == 1):
                break  # keep the last entry for the settlement
            stake = self.money.stake(1, rng.choice((1, 2, 5)), rng.choice(self.money.denominations))
            if stake > self.balance:
                break
            odds = rng.choice(ODDS)
            bet = {"event": f"ev-{rng.getrandbits(32):08x}", "odds": str(odds), "stake": stake}
            self.game_move("bet", stake, Decimal(0), round_id, base | {"bets": [bet]}, self.at(rng.uniform(3, 30)))
            staked += stake
            if rng.random() < 0.95 / float(odds):
                payout += (stake * odds).quantize(self.money.step)
        if not staked or self.left == 0 or rng.random() < ABANDONED:
            return
        cancelled = rng.random() < 0.03
        plus = staked if cancelled else payout
        result = "cancel" if cancelled else "win" if plus else "lose"
        self.game_move("win" if plus else "zero_win", Decimal(0), plus, round_id, base | {"result": result},
                       self.at(rng.uniform(60, 3600)))  # fmt: skip

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def game_move(self, kind: str, minus: Decimal, plus: Decimal, round_id: str, tag: dict[str, Any], at: str) -> None:
        self.move(Source.GAME, self.uuid(), kind, minus, plus, tag=tag, game_uuid=round_id, at=at)

    def move(
        self,
        source: Source,
        trx_id: str,
        kind: str,
        minus: Decimal = Decimal(0),
        plus: Decimal = Decimal(0),
        *,
        tag: dict[str, Any],
        at: str,
        game_uuid: str | None = None,
        version: int | None = None,
    ) -> None:
        """One accepted movement: the entry (chained to the account's head) and the account's new state, as the
        mover writes them in one TransactWriteItems."""
        after = self.balance - minus + plus
        assert after >= 0, (self.id, kind, self.balance, minus)
        entry = LedgerEntry(
            source=source,
            trx_id=trx_id,
            player_id=self.id,
            minus=minus,
            plus=plus,
            balance_before=self.balance,
            balance_after=after,
            currency=self.currency,
            created_at=at,
            kind=kind,
            game_uuid=game_uuid,
            tag=tag,
            account_version=self.version + 1 if version is None else version,
        )
        self.head = chain_hash(entry, self.head)
        self.balance, self.version = after, entry.account_version
        self.ledger.entry(entry, self.head, canonical_tag(tag))
        self.ledger.account(self.id, self.version, after, self.currency, self.head, at)
        self.left -= 1
        self.in_session += 1


def write_ledger(spec: ArchiveSpec, entries: IO[str], accounts: IO[str]) -> Ledger:
    """Every player's ledger, in player order (the stream order is restored from the times when the files are cut)."""
    rng = random.Random(spec.seed)
    counts = allocate(spec.entries, spec.players, rng)
    ledger = Ledger(entries, accounts)
    for number, count in enumerate(counts, start=1):
        Player(number, count, spec, rng, ledger).live()
    ledger.flush()
    return ledger


# --- the Parquet files ----------------------------------------------------------------------------------------------


def _read_tsv(path: Path, columns: dict[str, str]) -> str:
    typed = {**columns, "rn": "BIGINT"}
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in typed.items())
    return (
        f"read_csv('{path}', delim = '\t', quote = '', escape = '', nullstr = '\\N', header = false, "
        f"columns = {{{spec}}})"
    )


def generate(spec: ArchiveSpec, folder: Path) -> dict[str, Any]:
    """The archive in `folder`/stream and `folder`/compacted (the same rows), and what was made, as a dict."""
    folder.mkdir(parents=True, exist_ok=True)
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (folder / "compacted").mkdir()
    started = time.perf_counter()
    with (work / "entries.tsv").open("w") as entries, (work / "accounts.tsv").open("w") as accounts:
        ledger = write_ledger(spec, entries, accounts)
    python_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with _connect() as db:
        db.execute(f"CREATE TABLE e AS SELECT * FROM {_read_tsv(work / 'entries.tsv', ENTRY_COLUMNS)}")  # noqa: S608
        db.execute(f"CREATE TABLE a AS SELECT * FROM {_read_tsv(work / 'accounts.tsv', ACCOUNT_COLUMNS)}")  # noqa: S608
        # The stream's order: every record by its time, an entry before the account change of the same movement
        # (one transaction); cut into the exporter's batches.
        db.execute(
            f"""
            CREATE TABLE batches AS
            SELECT t, rn, (ROW_NUMBER() OVER (ORDER BY ts, player_id, t DESC) - 1) // {spec.batch_records} AS batch
            FROM (
                SELECT 'e' AS t, rn, created_at AS ts, player_id FROM e
                UNION ALL SELECT 'a' AS t, rn, changed_at AS ts, player_id FROM a
            )
            """  # noqa: S608 - an int from the spec
        )
        files = {}
        for table, short, time_column, columns in (
            ("entries", "e", "created_at", ENTRY_COLUMNS),
            ("accounts", "a", "changed_at", ACCOUNT_COLUMNS),
        ):
            select = ", ".join(f"x.{c}" for c in columns)
            day = f"SUBSTR(x.{time_column}, 1, 10)"
            db.execute(
                f"""
                COPY (
                    SELECT {select}, {day} AS day, b.batch
                    FROM {short} AS x JOIN batches AS b ON b.t = '{short}' AND b.rn = x.rn
                    ORDER BY b.batch, x.{time_column}
                ) TO '{work / table}' (FORMAT parquet, PARTITION_BY (day, batch))
                """  # noqa: S608 - names from this module
            )
            files[f"stream_{table}"] = _name_batches(work / table, folder / "stream" / table, table, spec)
            db.execute(
                f"""
                COPY (SELECT {select}, {day} AS day FROM {short} AS x ORDER BY x.{time_column})
                TO '{folder / "compacted" / table}' (FORMAT parquet, PARTITION_BY (day))
                """  # noqa: S608 - names from this module
            )
            files[f"compacted_{table}"] = sum(1 for _ in (folder / "compacted" / table).rglob("*.parquet"))
    duckdb_seconds = time.perf_counter() - started
    shutil.rmtree(work)
    heavy = _heaviest_player(folder / "compacted")
    return {
        "spec": asdict(spec),
        "key": spec.key(),
        "chain": CHAIN_SOURCE,
        "entries": ledger.entry_count,
        "account_rows": ledger.account_count,
        "kinds": dict(sorted(ledger.kinds.items())),
        "files": files,
        "heaviest_player": heavy,
        "python_seconds": round(python_seconds, 1),
        "duckdb_seconds": round(duckdb_seconds, 1),
        "generation_seconds": round(python_seconds + duckdb_seconds, 1),
        "bytes": {layout: _bytes(folder / layout) for layout in ("stream", "compacted")},
    }


def _name_batches(source: Path, target: Path, table: str, spec: ArchiveSpec) -> int:
    """DuckDB's day=D/batch=B/data_0.parquet moved to day=D/<object>.parquet, the exporter's layout; every
    `redeliver_every`-th batch is written a second time under another name (an invocation retried)."""
    count = 0
    for path in sorted(source.glob("day=*/batch=*/*.parquet")):
        day, batch = path.parent.parent.name, path.parent.name.removeprefix("batch=")
        # The exporter names an object by the sha256 of its records' eventIDs; here the batch stands in for them.
        name = hashlib.sha256(f"{table}|{day}|{batch}|{path.name}|{spec.key()}".encode()).hexdigest()
        folder = target / day
        folder.mkdir(parents=True, exist_ok=True)
        path.rename(folder / f"{name}.parquet")
        count += 1
        if spec.redeliver_every and int(batch) % spec.redeliver_every == spec.redeliver_every - 1:
            shutil.copyfile(folder / f"{name}.parquet", folder / f"{name[::-1]}.parquet")
            count += 1
    return count


def _bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*.parquet"))


def _connect() -> Any:
    """A DuckDB connection for the bench's own queries (no progress bar in the bench's output)."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    return connection


def _heaviest_player(archive: Path) -> str:
    pattern = archive / "entries" / "**" / "*.parquet"
    with _connect() as db:
        row = db.execute(
            "SELECT player_id FROM read_parquet(?) GROUP BY player_id ORDER BY COUNT(*) DESC, player_id LIMIT 1",
            [str(pattern)],
        ).fetchone()
    return str(row[0]) if row else ""


def ensure_archive(spec: ArchiveSpec, root: Path = CACHE_ROOT) -> tuple[Path, dict[str, Any], bool]:
    """The cached archive for `spec` (generated first if missing): its folder, what was made, and whether reused."""
    folder = root / spec.key()
    meta_path = folder / "meta.json"
    if meta_path.exists():
        return folder, json.loads(meta_path.read_text()), True
    shutil.rmtree(folder, ignore_errors=True)  # a run stopped half way: start again
    meta = generate(spec, folder)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")  # last: marks the archive complete
    return folder, meta, False


# --- timing the reports and the audit -------------------------------------------------------------------------------


class TimedEngine:
    """The DuckDBEngine the CLI uses, with each query's wall time recorded (report() and audit() call run())."""

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}  # every thread of this process: DuckDB runs in it
        self.rows: dict[str, int] = {}

    def run(self, name: str, **params: Any) -> list[dict[str, Any]]:
        started, cpu = time.perf_counter(), time.process_time()
        rows = self.engine.run(name, **params)
        self.seconds[name] = time.perf_counter() - started
        self.cpu_seconds[name] = time.process_time() - cpu
        self.rows[name] = len(rows)
        return rows


def statement_window(spec: ArchiveSpec) -> tuple[str, str]:
    """A month of statement: the archive's first 30 days (or all of it if shorter)."""
    since = spec.start_time
    return since.date().isoformat(), (since + timedelta(days=min(30, spec.days))).date().isoformat()


def query_params(spec: ArchiveSpec, player: str) -> dict[str, dict[str, Any]]:
    """The parameters the timed queries run with (report() computes the open rounds' cutoff the same way)."""
    since, until = statement_window(spec)
    cutoff = utc_now_iso((spec.end_time - timedelta(minutes=OPEN_MINUTES)).timestamp())
    return {"open_rounds": {"cutoff": cutoff}, "statement": {"player_id": player, "since": since, "until": until}}


def time_queries(archive: Path, spec: ArchiveSpec, player: str) -> dict[str, Any]:
    """Every report and the audit once, through ledger_sql.report() / audit() as `wallet report` / `wallet audit`
    call them, plus one player's statement over a month. The audit must be clean."""
    timed = TimedEngine(DuckDBEngine(archive))
    started = time.perf_counter()
    report = ledger_sql.report(timed, spec.end_time, OPEN_MINUTES)
    report_seconds = time.perf_counter() - started
    statement = timed.run("statement", **query_params(spec, player)["statement"])
    started = time.perf_counter()
    found = ledger_sql.audit(timed)
    audit_seconds = time.perf_counter() - started
    return {
        "seconds": {name: round(s, 2) for name, s in timed.seconds.items()},
        "cpu_seconds": {name: round(s, 2) for name, s in timed.cpu_seconds.items()},
        "rows": timed.rows,
        "report_seconds": round(report_seconds, 2),
        "audit_seconds": round(audit_seconds, 2),
        "audit": found.as_json() | {"violations": found.violations[:5], "violation_count": len(found.violations)},
        "open_rounds": len(report["open_rounds"]),
        "statement_rows": len(statement),
    }


# --- the Athena estimate --------------------------------------------------------------------------------------------


def athena_usd(bytes_scanned: float) -> float:
    """One query's Athena charge: the bytes scanned rounded up to the MB, at least 10 MB, at $5 per TB."""
    billed = max(math.ceil(bytes_scanned / MB) * MB, ATHENA_MIN_BYTES)
    return billed / TB * ATHENA_USD_PER_TB


_ACCOUNT_ONLY = set(ACCOUNT_COLUMNS) - set(ENTRY_COLUMNS)


def scans(engine: DuckDBEngine, name: str, params: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The Parquet scans of query `name` in DuckDB's optimised plan: (table, the columns it reads) each, after
    projection pushdown (a Parquet reader reads only those column chunks; Athena bills the same)."""
    query = ledger_sql.render(name, engine.dialect())
    values = query.values(params)  # the real ones: bounds that cannot match (since > until) fold to no scan at all
    with _connect() as db:
        [(_, plan)] = db.execute("EXPLAIN (FORMAT json) " + query.sql, values).fetchall()
    found = []
    for node in _nodes(json.loads(plan)):
        extra = node.get("extra_info") or {}
        if extra.get("Function") != "READ_PARQUET":
            continue
        projected = extra.get("Projections", [])
        columns = set(projected.split("\n") if isinstance(projected, str) else projected)
        table = "accounts" if columns & _ACCOUNT_ONLY else "entries"  # every accounts scan reads version
        order = ENTRY_COLUMNS if table == "entries" else ACCOUNT_COLUMNS
        found.append((table, [c for c in order if c in columns]))
    return found


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, list):
        for item in tree:
            yield from _nodes(item)
    elif isinstance(tree, dict):
        yield tree
        yield from _nodes(tree.get("children", []))


def trino_scans(name: str) -> Counter[str]:
    """How many times each table is scanned by query `name` on Athena if every reference to a WITH query is
    evaluated again (Trino does not materialise CTEs; DuckDB does, so its plan scans fewer times)."""
    import sqlglot
    from sqlglot import exp

    dialect = ledger_sql.Dialect('"entries"', '"accounts"', ledger_sql.athena_sha256)

    def count(node: Any, ctes: dict[str, Counter[str]]) -> Counter[str]:  # a sqlglot node
        found: Counter[str] = Counter()
        with_ = node.args.get("with_") or node.args.get("with")
        if with_ is not None:
            ctes = dict(ctes)
            for cte in with_.expressions:
                ctes[cte.alias_or_name] = count(cte.this, ctes)
        for child in node.iter_expressions():
            if child is with_:
                continue
            if isinstance(child, exp.Table):
                found.update(ctes.get(child.name, Counter({child.name: 1})))
            else:
                found.update(count(child, ctes))
        return found

    return count(sqlglot.parse_one(ledger_sql.render(name, dialect).sql, read="trino"), {})


def column_bytes(archive: Path) -> dict[str, dict[str, int]]:
    """Compressed bytes per column of each table (every column chunk of every file), from parquet_metadata()."""
    sizes: dict[str, dict[str, int]] = {}
    with _connect() as db:
        for table in ("entries", "accounts"):
            pattern = archive / table / "**" / "*.parquet"
            rows = db.execute(
                "SELECT path_in_schema, SUM(total_compressed_size) FROM parquet_metadata(?) GROUP BY path_in_schema",
                [str(pattern)],
            ).fetchall()
            sizes[table] = {str(column): int(size) for column, size in rows}
    return sizes


def athena_estimate(
    archive: Path, entries: int, params: dict[str, dict[str, Any]], scale_entries: int = SCALE_ENTRIES
) -> list[dict[str, Any]]:
    """Per query: the columns read, the bytes DuckDB's scans read at `entries` and linearly at `scale_entries`, the
    $ per run on Athena at that size; and the same if Athena scans a table once per CTE reference (an upper bound)."""
    engine = DuckDBEngine(archive)
    sizes = column_bytes(archive)
    rows = []
    for name in ledger_sql.QUERIES:
        found = scans(engine, name, params.get(name, {}))
        scanned = sum(sizes[table].get(column, 0) for table, columns in found for column in columns)
        read: dict[str, list[str]] = {}  # per table, the columns any of its scans reads
        for table, columns in found:
            read[table] = list(dict.fromkeys([*read.get(table, []), *columns]))
        inlined = trino_scans(name)
        upper = sum(inlined[table] * sum(sizes[table].get(c, 0) for c in columns) for table, columns in read.items())
        factor = scale_entries / entries
        rows.append(
            {
                "query": name,
                "columns": read,
                "duckdb_scans": dict(Counter(table for table, _ in found)),
                "athena_scans": dict(inlined),
                "bytes": scanned,
                "bytes_at_scale": scanned * factor,
                "usd_at_scale": athena_usd(scanned * factor),
                "inlined_bytes_at_scale": upper * factor,
                "inlined_usd_at_scale": athena_usd(upper * factor),
            }
        )
    return rows


# --- the section ----------------------------------------------------------------------------------------------------


def measure(spec: ArchiveSpec = FULL_SPEC, root: Path = CACHE_ROOT) -> dict[str, Any]:
    print(f"bench: archive ({spec.entries:,} entries, {spec.players:,} players, {spec.days} days)...", file=sys.stderr,
          flush=True)  # fmt: skip
    folder, meta, reused = ensure_archive(spec, root)
    print(f"  archive {'reused' if reused else 'generated'}: {folder} ({meta['generation_seconds']} s to generate)",
          file=sys.stderr, flush=True)  # fmt: skip
    layouts = {}
    for layout in ("stream", "compacted"):
        layouts[layout] = time_queries(folder / layout, spec, meta["heaviest_player"])
        layouts[layout]["load"] = os.getloadavg()
        audit = layouts[layout]["audit"]
        if not audit["clean"] or audit["entries"] != spec.entries or audit["players"] != spec.players:
            raise AssertionError(f"the generated archive ({layout}) does not audit clean as generated: {audit}")
    return {
        "spec": asdict(spec),
        "folder": str(folder),
        "reused": reused,
        "meta": meta,
        "layouts": layouts,
        "athena": athena_estimate(folder / "stream", spec.entries, query_params(spec, meta["heaviest_player"])),
        "target_seconds": TARGET_SECONDS,
        "nproc": os.cpu_count(),
    }


TIMED = (
    ("ggr_daily", "wallet report: GGR per day"),
    ("game_totals", "wallet report: per game"),
    ("open_rounds", f"wallet report: open rounds ({OPEN_MINUTES} min)"),
    ("statement", "one player's statement, a month"),
    ("audit_totals", "wallet audit: totals"),
    ("audit", "wallet audit: violations"),
)


def _size(n: float) -> str:
    for unit, size in (("GB", 2**30), ("MB", MB), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} B"


def describe_columns(columns: dict[str, list[str]]) -> str:
    """`entries 12/17 (not trx_id, ...)`: the shorter of the columns read and the columns left."""
    parts = []
    for table, read in columns.items():
        every = list(ENTRY_COLUMNS if table == "entries" else ACCOUNT_COLUMNS)
        left = [c for c in every if c not in read]
        what = "all" if not left else f"not {', '.join(left)}" if len(left) <= len(read) else ", ".join(read)
        parts.append(f"{table} {len(read)}/{len(every)} ({what})")
    return "; ".join(parts)


def _scan_text(scans: dict[str, int]) -> str:
    return "+".join(f"{n}{table[0]}" for table, n in sorted(scans.items(), key=lambda x: x[0] != "entries")) or "0"


def render(results: dict[str, Any], table: Callable[[str, list[str], list[list[Any]]], str]) -> str:
    """The section's tables, in bench/__main__.py's style (`table` is its _table)."""
    meta, layouts, spec = results["meta"], results["layouts"], results["spec"]
    stream, compacted = layouts["stream"], layouts["compacted"]
    target = results["target_seconds"]
    rows: list[list[Any]] = []
    for name, what in TIMED:
        wall, cpu = stream["seconds"][name], stream["cpu_seconds"][name]
        rows.append([name, what, stream["rows"][name], wall, cpu, compacted["seconds"][name],
                     compacted["cpu_seconds"][name], wall < target, cpu / 2 < target])  # fmt: skip
    for label, key in (("report (3 queries)", "report_seconds"), ("audit (2 queries)", "audit_seconds")):
        rows.append([label, "ledger_sql.report() / audit() as the CLI runs them", "-", stream[key], "-",
                     compacted[key], "-", stream[key] < target, "-"])  # fmt: skip
    load = " / ".join(f"{x:.2f}" for x in stream["load"])
    files = meta["files"]
    parts = [
        table(
            f"The ledger archive at scale: DuckDB (wallet.operator.ledger_sql.DuckDBEngine, {results['nproc']} cores), "
            f"{meta['entries']:,} entries / {spec['players']:,} players / {spec['days']} days; stream = "
            f"{files['stream_entries']:,} + {files['stream_accounts']:,} files ({_size(meta['bytes']['stream'])}), "
            f"compacted = {files['compacted_entries']} + {files['compacted_accounts']} "
            f"({_size(meta['bytes']['compacted'])}); load average after the stream run {load}",
            [
                "query",
                "what",
                "rows",
                "stream s",
                "CPU s",
                "compacted s",
                "CPU s",
                f"stream < {target:g} s",
                "CPU/2 < 10 s (idle 2 cores)",
            ],
            rows,
        ),
        table(
            "Athena estimate: bytes scanned = the columns DuckDB's Parquet scans read x their compressed size "
            "(parquet_metadata, stream layout), linear in entries; $5/TB, 10 MB minimum per query. 'CTEs inlined': "
            "the same if Athena scans a table once per WITH reference (Trino does not materialise CTEs)",
            [
                "query",
                "columns read",
                "scans duckdb / inlined",
                f"bytes at {meta['entries'] / 1e6:g}M",
                "bytes at 100M",
                "$ per run at 100M",
                "inlined: bytes at 100M",
                "$",
            ],
            [
                [
                    r["query"],
                    describe_columns(r["columns"]),
                    f"{_scan_text(r['duckdb_scans'])} / {_scan_text(r['athena_scans'])}",
                    _size(r["bytes"]),
                    _size(r["bytes_at_scale"]),
                    f"{r['usd_at_scale']:.3f}",
                    _size(r["inlined_bytes_at_scale"]),
                    f"{r['inlined_usd_at_scale']:.3f}",
                ]
                for r in results["athena"]
            ],
        ),
    ]
    audit = stream["audit"]
    parts.append(
        f"Archive {'reused' if results['reused'] else 'generated'} ({results['folder']}): generation "
        f"{meta['generation_seconds']} s (Python ledger + chain {meta['python_seconds']} s, DuckDB to Parquet "
        f"{meta['duckdb_seconds']} s; chained with {meta['chain']}). Audit clean: {audit['clean']} "
        f"({audit['players']:,} players, {audit['entries']:,} entries, total balance {audit['total_balance']}). "
        f"Kinds: {', '.join(f'{k} {v:,}' for k, v in meta['kinds'].items())}. Open rounds at the end: "
        f"{stream['open_rounds']:,}; statement of {meta['heaviest_player']}: {stream['statement_rows']:,} rows."
    )
    all_met = all(stream["seconds"][name] < target for name, _ in TIMED)
    idle_met = all(stream["cpu_seconds"][name] / 2 < target for name, _ in TIMED)
    parts.append(
        f"Scale target (issue 13: each report and the audit < {target:g} s on 2 cores): {_fmt_met(all_met)} as "
        f"measured (load average {load}); {_fmt_met(idle_met)} by CPU time / 2 (the wall time on 2 idle cores if "
        "both are kept busy; CPU s is what the query cost, whatever else the machine ran)."
    )
    return "\n\n".join(parts)


def _fmt_met(value: bool) -> str:
    return "met" if value else "NOT MET"
