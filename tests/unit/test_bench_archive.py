"""bench/archive.py at a small size: the generated archive is a valid ledger (it audits clean through the very code
`wallet audit` runs), it has what was asked for, and the Athena estimate's arithmetic is Athena's."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bench import archive
from bench.archive import MB, TB, ArchiveSpec, athena_usd
from wallet.money.ledger import LedgerEntry, Source
from wallet.operator import ledger_sql
from wallet.operator.ledger_sql import ACCOUNT_COLUMNS, ENTRY_COLUMNS, DuckDBEngine

# Every 2nd batch delivered twice, so the deduplication is exercised at this size too.
SPEC = ArchiveSpec(entries=2000, players=50, days=10, redeliver_every=2)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("bench-archive")
    folder, meta, reused = archive.ensure_archive(SPEC, root)
    assert not reused
    assert folder == root / SPEC.key()
    return folder, meta


def rows(folder: Path, table: str) -> list[dict[str, Any]]:
    with duckdb.connect() as db:
        cursor = db.execute(
            "SELECT * EXCLUDE (day) FROM read_parquet(?, hive_partitioning = true)", [str(folder / table / "**" / "*")]
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.mark.parametrize("layout", ["stream", "compacted"])
def test_the_archive_audits_clean_with_the_counts_asked_for(
    generated: tuple[Path, dict[str, Any]], layout: str
) -> None:
    folder, _ = generated
    found = ledger_sql.audit(DuckDBEngine(folder / layout))
    assert found.violations == []
    assert found.clean
    assert (found.players, found.entries) == (SPEC.players, SPEC.entries)


def test_layout_and_columns(generated: tuple[Path, dict[str, Any]]) -> None:
    folder, meta = generated
    assert meta["entries"] == SPEC.entries
    for layout in ("stream", "compacted"):
        for table, columns in (("entries", ENTRY_COLUMNS), ("accounts", ACCOUNT_COLUMNS)):
            files = sorted((folder / layout / table).glob("day=*/*.parquet"))
            assert files, (layout, table)
            assert {f.parent.name[4:] for f in files} <= {f"2026-10-{d:02d}" for d in range(1, 32)}
            with duckdb.connect() as db:
                schema = db.execute(
                    "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)", [str(files[0])]
                ).fetchall()
            assert [(name, kind.replace(",", ", ")) for name, kind, *_ in schema] == list(columns.items())
    # The stream layout: one object per batch per day, so more objects than days, and redelivered copies.
    stream = rows(folder / "stream", "entries")
    assert len({row["entry_id"] for row in stream}) == SPEC.entries
    assert len(stream) > SPEC.entries  # the batches written twice
    assert meta["files"]["stream_entries"] > meta["files"]["compacted_entries"]
    assert len(rows(folder / "compacted", "entries")) == SPEC.entries


def test_versions_contiguous_balances_linked_and_chained(generated: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = generated
    by_player: dict[str, list[dict[str, Any]]] = {}
    for row in rows(folder / "compacted", "entries"):
        by_player.setdefault(row["player_id"], []).append(row)
    assert len(by_player) == SPEC.players
    for player, entries in by_player.items():
        entries.sort(key=lambda r: r["account_version"])
        first = entries[0]["account_version"]
        assert first in (0, 1), player
        assert [r["account_version"] for r in entries] == list(range(first, first + len(entries)))
        assert (first == 0) == (entries[0]["kind"] == "opening")
        assert [r["created_at"] for r in entries] == sorted(r["created_at"] for r in entries)
        balance, head = Decimal(0), ""
        for row in entries:
            assert row["balance_before"] == balance
            assert row["balance_before"] - row["minus"] + row["plus"] == row["balance_after"] >= 0
            tag = json.loads(row["tag"])
            assert row["tag"] == archive.spec_canonical_tag(tag)
            entry = LedgerEntry(
                source=Source(row["source"]),
                trx_id=row["trx_id"],
                player_id=player,
                minus=row["minus"],
                plus=row["plus"],
                balance_before=row["balance_before"],
                balance_after=row["balance_after"],
                currency=row["currency"],
                created_at=row["created_at"],
                kind=row["kind"],
                game_uuid=row["game_uuid"],
                tag=tag,
                account_version=row["account_version"],
            )
            assert entry.entry_id == row["entry_id"]
            head = archive.spec_chain_hash(entry, head)
            assert row["chain_hash"] == head
            balance = row["balance_after"]


def test_a_realistic_mix(generated: tuple[Path, dict[str, Any]]) -> None:
    folder, meta = generated
    entries = rows(folder / "compacted", "entries")
    assert set(meta["kinds"]) == {"opening", "bet", "win", "bet_and_win", "zero_win", "deposit", "withdrawal"}
    assert sum(meta["kinds"].values()) == SPEC.entries
    assert len({r["currency"] for r in entries}) >= 2
    games = [r for r in entries if r["source"] == "game"]
    assert len({r["game_id"] for r in games}) >= 3
    for row in games:
        tag = json.loads(row["tag"])
        assert (tag["game"], tag["game_id"], tag["game_uuid"]) == (row["game_type"], row["game_id"], row["game_uuid"])
    operator = [r for r in entries if r["source"] == "operator"]
    assert all(r["game_uuid"] is None and r["game_id"] is None for r in operator)
    assert {json.loads(r["tag"])["operator"] for r in operator} == {"opening", "deposit", "withdrawal"}
    days = {r["created_at"][:10] for r in entries}
    assert len(days) >= SPEC.days // 2
    # Some rounds are left open (a bet the provider never settled), and the open_rounds report finds them.
    engine = DuckDBEngine(folder / "stream")
    open_rounds = engine.run("open_rounds", cutoff="2100-01-01")
    assert 0 < len(open_rounds) < len({r["game_uuid"] for r in games})


def test_the_latest_account_rows(generated: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = generated
    accounts = rows(folder / "compacted", "accounts")
    latest: dict[str, dict[str, Any]] = {}
    for row in accounts:
        key = row["player_id"]
        if key not in latest or (row["version"], row["changed_at"]) > (
            latest[key]["version"],
            latest[key]["changed_at"],
        ):
            latest[key] = row
    assert len(latest) == SPEC.players
    assert all(len(row["chain_head"]) == 64 and row["status"] == "active" for row in latest.values())


def test_a_second_run_reuses_the_archive(generated: tuple[Path, dict[str, Any]]) -> None:
    folder, meta = generated
    again, meta_again, reused = archive.ensure_archive(SPEC, folder.parent)
    assert (again, meta_again, reused) == (folder, meta, True)
    assert ArchiveSpec(entries=2000, players=50, days=10).key() != SPEC.key()


def test_timing_every_query_through_report_and_audit(generated: tuple[Path, dict[str, Any]]) -> None:
    folder, meta = generated
    timed = archive.time_queries(folder / "stream", SPEC, meta["heaviest_player"])
    assert set(timed["seconds"]) == set(ledger_sql.QUERIES)
    assert timed["audit"]["clean"]
    assert timed["statement_rows"] > 0


def test_allocate() -> None:
    counts = archive.allocate(1000, 37, random.Random(1))
    assert sum(counts) == 1000
    assert min(counts) >= 2
    assert max(counts) > 3 * min(counts)  # heavy-tailed
    with pytest.raises(ValueError, match="at least 2"):
        archive.allocate(10, 6, random.Random(1))


def test_athena_usd_is_five_dollars_a_terabyte_with_a_ten_megabyte_minimum() -> None:
    minimum = 10 * MB / TB * 5
    assert athena_usd(0) == athena_usd(1) == athena_usd(10 * MB) == pytest.approx(minimum)
    assert athena_usd(10 * MB + 1) == pytest.approx(11 * MB / TB * 5)  # rounded up to the next MB
    assert athena_usd(TB) == pytest.approx(5.0)
    assert athena_usd(2.5 * TB) == pytest.approx(12.5)


def test_athena_estimate(generated: tuple[Path, dict[str, Any]]) -> None:
    folder, meta = generated
    params = archive.query_params(SPEC, meta["heaviest_player"])
    estimate = {r["query"]: r for r in archive.athena_estimate(folder / "stream", SPEC.entries, params, 1_000_000)}
    assert set(estimate) == set(ledger_sql.QUERIES)
    sizes = archive.column_bytes(folder / "stream")
    for name, row in estimate.items():
        assert row["bytes"] > 0, name
        assert row["bytes_at_scale"] == pytest.approx(row["bytes"] * 1_000_000 / SPEC.entries)
        assert row["usd_at_scale"] == pytest.approx(athena_usd(row["bytes_at_scale"]))
        assert row["inlined_bytes_at_scale"] >= row["bytes_at_scale"]
    statement = estimate["statement"]
    assert list(statement["columns"]) == ["entries"]
    assert statement["bytes"] == sum(sizes["entries"][c] for c in statement["columns"]["entries"])
    assert set(estimate["audit"]["columns"]) == {"entries", "accounts"}
    assert estimate["audit"]["athena_scans"]["entries"] > estimate["audit"]["duckdb_scans"]["entries"]
    assert "balance_before" not in estimate["ggr_daily"]["columns"]["entries"]  # projection pushdown
