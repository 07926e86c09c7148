"""The ledger exporter (wallet.operator.archive, functions/ledger_export): DynamoDB stream records to the Parquet
archive, read back by the SQL reports and audit (wallet.operator.ledger_sql).

The stream events in tests/unit/data/streams/ are recorded, not written by hand: the wallet itself (on moto, with a
fixed clock) makes the moves, and every item that changed in the table becomes a stream record with the table's own
NEW_IMAGE, in the shape Lambda delivers. `test_the_recordings_are_the_tables_own_items` records them again and
compares; after a change to the store's items, rewrite them with `.venv/bin/python -m tests.unit.test_ledger_export`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import duckdb
import pytest
from moto import mock_aws
from pydantic import ValidationError

from tests.support import SALT, SESSION_KEY, do_body, lambda_function
from wallet.bootstrap import Secrets, lambda_archive
from wallet.money.dynamodb import DynamoDBStore, _account_item, _entry_item, account_from_item, entry_from_item
from wallet.money.wallet import Wallet
from wallet.operator import ledger_sql
from wallet.operator.archive import (
    ACCOUNTS,
    ENTRIES,
    ArchiveRow,
    ArchiveWriteError,
    LocalFolderSink,
    PoisonRecord,
    S3Sink,
    archive_rows,
    decode_record,
    group_rows,
    object_key,
)
from wallet.operator.ledger_sql import ACCOUNT_COLUMNS, ENTRY_COLUMNS, DuckDBEngine
from wallet.settings import Settings
from wallet_local.front import LambdaContext
from wallet_local.table import create_table_request

ROOT = Path(__file__).resolve().parents[2]
STREAMS = Path(__file__).parent / "data" / "streams"
SAMPLE_EVENT = ROOT / "events" / "ledger_export.json"
TABLE = "wallet-ledger"
REGION = "eu-west-1"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-12-01T00:00:00.000"
BUCKET = "wallet-archive-test"


# --- recording the stream -------------------------------------------------------------------------------------------


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class StreamRecorder:
    """The table's stream as Lambda gets it (NEW_IMAGE): after each move, one record per item that changed, with
    the item as the table now holds it. Event ids and sequence numbers are deterministic."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.sequence = 4100000000000000000000

    def _scan(self) -> dict[tuple[str, str], dict[str, Any]]:
        items = {}
        for page in self.client.get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page["Items"]:
                items[(item["pk"]["S"], item["sk"]["S"])] = item
        return items

    def capture(self, now: float) -> list[dict[str, Any]]:
        """The records of what changed since the last capture: new items, then changed ones, then removed ones."""
        before, after = self.items, self._scan()
        self.items = after
        inserted = [after[key] for key in sorted(after.keys() - before.keys())]
        modified = [after[key] for key in sorted(after.keys() & before.keys()) if after[key] != before[key]]
        removed = [before[key] for key in sorted(before.keys() - after.keys())]
        records = [self._record("INSERT", item, now) for item in inserted]
        records += [self._record("MODIFY", item, now) for item in modified]
        records += [self.removal(item, now) for item in removed]
        return records

    def removal(self, item: dict[str, Any], now: float, ttl: bool = False) -> dict[str, Any]:
        record = self._record("REMOVE", item, now)
        if ttl:  # a deletion by the table's TTL is the DynamoDB service's own
            record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        return record

    def _record(self, name: str, item: dict[str, Any], now: float) -> dict[str, Any]:
        self.sequence += 1
        keys = {"pk": item["pk"], "sk": item["sk"]}
        stream: dict[str, Any] = {"ApproximateCreationDateTime": int(now), "Keys": keys}
        if name != "REMOVE":
            stream["NewImage"] = item
        stream["SequenceNumber"] = str(self.sequence)
        stream["SizeBytes"] = len(json.dumps(item if name != "REMOVE" else keys, separators=(",", ":")))
        stream["StreamViewType"] = "NEW_IMAGE"
        return {
            "eventID": hashlib.sha256(f"{STREAM_ARN}#{self.sequence}".encode()).hexdigest()[:32],
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": stream,
            "eventSourceARN": STREAM_ARN,
        }


def slot(game_id: str, game_uuid: str, game: str = "slot") -> dict[str, Any]:
    return {"game": game, "game_id": game_id, "game_uuid": game_uuid}


def record_streams() -> dict[str, dict[str, Any]]:
    """The recorded events, by file name: two batches of moves over two days, a TTL removal and a batch with a
    poison record. Runs the wallet on moto; the session tokens are fixed so the recording is the same every time."""
    clock = [at("2026-12-01T09:00:00Z")]
    tokens = iter(f"{n:043d}" for n in range(1, 100))
    with (
        mock_aws(),
        mock.patch("wallet.money.sessions.secrets.token_urlsafe", side_effect=lambda _: next(tokens)),
    ):
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**create_table_request(TABLE))
        settings = Settings(table_name=TABLE, salt=SALT, session_key=SESSION_KEY)
        wallet = Wallet(DynamoDBStore(TABLE, client), Secrets(settings), clock=lambda: clock[0], sleep=lambda _: None)
        recorder = StreamRecorder(client, TABLE)
        sessions: dict[str, str] = {}

        def step(moment: str, move: Callable[[], object]) -> list[dict[str, Any]]:
            clock[0] = at(moment)
            move()
            return recorder.capture(clock[0])

        def session(player: str) -> None:
            sessions[player] = wallet.new_session(player).token

        def do(player: str, trx_id: str, minus: str, plus: str, tag: dict[str, Any]) -> None:
            reply = wallet.handle_do(do_body(sessions[player], trx_id, minus, plus, tag)).reply.to_json()
            assert json.loads(reply)["status"] == "OK", reply

        first = [
            *step("2026-12-01T09:00:00Z", lambda: wallet.create_player("p1", "FUN", Decimal(1000))),
            *step("2026-12-01T09:00:01Z", lambda: session("p1")),
            *step("2026-12-01T09:01:00Z", lambda: do("p1", "b-1", "100", "0", slot("a_op", "r-1001"))),
            *step("2026-12-01T09:01:05.250000Z", lambda: do("p1", "w-1", "0", "250", slot("a_op", "r-1001"))),
        ]
        second = [
            *step("2026-12-01T10:00:00Z", lambda: wallet.create_player("p2", "FUN")),
            *step("2026-12-01T10:05:00Z", lambda: wallet.deposit("p2", "500", "dep-1")),
            *step("2026-12-01T23:59:00Z", lambda: session("p2")),
            *step("2026-12-01T23:59:59Z", lambda: do("p2", "b-2", "20", "0", slot("e_keno", "k-77", "egame"))),
            *step("2026-12-02T00:00:01Z", lambda: do("p1", "bw-1", "50", "30", slot("a_op", "r-1002"))),
        ]
        third = step("2026-12-02T08:00:00Z", lambda: wallet.deposit("p1", "100.5", "dep-2"))
        # A poison record: an entry whose image lost most of its attributes (what no table item looks like).
        poison = copy.deepcopy(third[0])
        assert poison["dynamodb"]["NewImage"]["type"] == {"S": "entry"}
        poison["dynamodb"]["NewImage"] = {
            name: value
            for name, value in poison["dynamodb"]["NewImage"].items()
            if name in {"pk", "sk", "type", "player_id", "trx_id", "source"}
        }
        recorder.sequence += 1
        poison["dynamodb"]["SequenceNumber"] = str(recorder.sequence)
        poison["eventID"] = hashlib.sha256(f"{STREAM_ARN}#{recorder.sequence}".encode()).hexdigest()[:32]
        session_item = next(
            item for key, item in recorder.items.items() if key[0] == "PLAYER#p1" and "SESSION#" in key[1]
        )
        removal = recorder.removal(session_item, at("2026-12-03T09:10:00Z"), ttl=True)
    return {
        "batch_1.json": {"Records": first},
        "batch_2.json": {"Records": second},
        "poison.json": {"Records": [third[0], poison, *third[1:]]},
        "ttl_remove.json": {"Records": [removal]},
    }


def write_recordings(recorded: dict[str, dict[str, Any]]) -> None:
    STREAMS.mkdir(parents=True, exist_ok=True)
    for name, event in recorded.items():
        (STREAMS / name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
    # The sample event for `sam local invoke LedgerExportFunction -e events/ledger_export.json`: the first batch.
    SAMPLE_EVENT.write_text(json.dumps(recorded["batch_1.json"], indent=2) + "\n", encoding="utf-8")


def stream(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((STREAMS / name).read_text(encoding="utf-8"))
    return event


def records(*names: str) -> list[dict[str, Any]]:
    return [record for name in names for record in stream(name)["Records"]]


# --- what the archive must give -------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
EXPECTED_GGR = [
    {"day": "2026-12-01", "game_id": "a_op", "currency": "FUN", "bets": "100", "wins": "250", "ggr": "-150"},
    {"day": "2026-12-01", "game_id": "e_keno", "currency": "FUN", "bets": "20", "wins": "0", "ggr": "20"},
    {"day": "2026-12-02", "game_id": "a_op", "currency": "FUN", "bets": "50", "wins": "30", "ggr": "20"},
]
EXPECTED_GAMES = [
    {"game_id": "a_op", "currency": "FUN", "bets": "150", "wins": "280", "ggr": "-130", "players": 1, "rounds": 2},
    {"game_id": "e_keno", "currency": "FUN", "bets": "20", "wins": "0", "ggr": "20", "players": 1, "rounds": 1},
]
EXPECTED_OPEN = [
    {
        "game_uuid": "k-77",
        "player_id": "p2",
        "game_id": "e_keno",
        "currency": "FUN",
        "bet": "20",
        "last_bet_at": "2026-12-01T23:59:59.000000Z",
        "player": "p2",
        "open_minutes": 600,
    }
]


def assert_the_book(folder: Path, *, deposit: bool = True) -> None:
    """The figures of the recorded moves, from the archive in `folder`: the reports and a clean audit."""
    engine = DuckDBEngine(folder)
    report = ledger_sql.report(engine, NOW, 60)
    assert report["ggr"] == EXPECTED_GGR
    assert report["games"] == EXPECTED_GAMES
    assert report["open_rounds"] == EXPECTED_OPEN
    audit = ledger_sql.audit(engine)
    assert audit.violations == []
    assert audit.players == 2
    assert audit.entries == (7 if deposit else 6)
    assert audit.total_balance == (Decimal("1710.5") if deposit else Decimal(1610))


def read(folder: Path, columns: str, where: str = "") -> list[tuple[Any, ...]]:
    """A query over every Parquet file under `folder`."""
    with duckdb.connect() as connection:
        connection.execute(f"CREATE VIEW archive AS SELECT * FROM read_parquet('{folder}/**/*.parquet')")  # noqa: S608
        rows: list[tuple[Any, ...]] = connection.execute(f"SELECT {columns} FROM archive {where}").fetchall()  # noqa: S608
    return rows


def parquet_files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.parquet"))


def decoded(*names: str) -> list[ArchiveRow]:
    rows = []
    for record in records(*names):
        try:
            row = decode_record(record)
        except PoisonRecord:
            continue
        if row is not None:
            rows.append(row)
    return rows


# --- the recordings ---------------------------------------------------------------------------------------------------


def test_the_recordings_are_the_tables_own_items() -> None:
    recorded = record_streams()
    for name, event in recorded.items():
        assert stream(name) == event, f"{name} is stale: .venv/bin/python -m tests.unit.test_ledger_export"
    assert json.loads(SAMPLE_EVENT.read_text(encoding="utf-8")) == recorded["batch_1.json"]


def test_the_recordings_have_the_shape_lambda_delivers() -> None:
    for record in records("batch_1.json", "batch_2.json", "poison.json", "ttl_remove.json"):
        assert set(record) >= {"eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb"}
        assert (record["eventVersion"], record["eventSource"], record["eventSourceARN"]) == (
            "1.1",
            "aws:dynamodb",
            STREAM_ARN,
        )
        body = record["dynamodb"]
        assert body["StreamViewType"] == "NEW_IMAGE"
        assert isinstance(body["ApproximateCreationDateTime"], int)
        assert body["SequenceNumber"].isdigit() and set(body["Keys"]) == {"pk", "sk"}
        assert ("NewImage" in body) == (record["eventName"] != "REMOVE")
    kinds = [(r["eventName"], r["dynamodb"]["NewImage"]["type"]["S"]) for r in records("batch_1.json")]
    assert kinds == [
        ("INSERT", "entry"),  # the opening entry and its account, in one transaction
        ("INSERT", "account"),
        ("INSERT", "session"),
        ("MODIFY", "account"),
        ("INSERT", "entry"),
        ("MODIFY", "account"),
        ("INSERT", "entry"),
        ("MODIFY", "account"),
    ]
    ids = [r["eventID"] for r in records("batch_1.json", "batch_2.json", "poison.json", "ttl_remove.json")]
    assert len(ids) == len(set(ids))


def test_recorded_entry_images_are_what_the_store_maps() -> None:
    """The images hold the store's own item mapping (_entry_item / _account_item) of what they decode to."""
    for record in records("batch_1.json", "batch_2.json"):
        image = record["dynamodb"]["NewImage"]
        if image["type"]["S"] == "entry":
            assert _entry_item(entry_from_item(image)) == image
        elif image["type"]["S"] == "account" and record["eventName"] == "INSERT":
            assert _account_item(account_from_item(image)) == image


# --- decoding ---------------------------------------------------------------------------------------------------------


def test_an_entry_insert_is_an_entries_row_in_the_archive_schema() -> None:
    record = records("batch_1.json")[4]  # the bet
    row = decode_record(record)
    assert row is not None
    assert (row.table, row.event_id, row.day) == (ENTRIES, record["eventID"], "2026-12-01")
    assert list(row.values) == list(ENTRY_COLUMNS)
    image = record["dynamodb"]["NewImage"]
    assert row.values == {
        "entry_id": "game:p1:b-1",
        "source": "game",
        "trx_id": "b-1",
        "player_id": "p1",
        "kind": "bet",
        "currency": "FUN",
        "minus": Decimal(100),
        "plus": Decimal(0),
        "balance_before": Decimal(1000),
        "balance_after": Decimal(900),
        "game_uuid": "r-1001",
        "game_id": "a_op",
        "game_type": "slot",
        "tag": '{"game":"slot","game_id":"a_op","game_uuid":"r-1001"}',
        "created_at": "2026-12-01T09:01:00.000000Z",
        "account_version": 1,
        "chain_hash": image["chain_hash"]["S"],
    }
    assert len(row.values["chain_hash"]) == 64


def test_an_account_change_is_an_accounts_row() -> None:
    batch = records("batch_1.json")
    created, session_modify, after_bet = (decode_record(batch[i]) for i in (1, 3, 5))
    assert created is not None and session_modify is not None and after_bet is not None
    assert list(created.values) == list(ACCOUNT_COLUMNS)
    opening_hash = batch[0]["dynamodb"]["NewImage"]["chain_hash"]["S"]
    assert created.values == {
        "player_id": "p1",
        "version": 0,
        "balance": Decimal(1000),
        "currency": "FUN",
        "status": "active",
        "chain_head": opening_hash,
        "changed_at": "2026-12-01T09:00:00.000000Z",  # no updated_at yet: its created_at
    }
    # A session changes the item, not its version: same row content, archived again.
    assert session_modify.values == created.values
    assert after_bet.values["changed_at"] == "2026-12-01T09:01:00.000000Z"  # updated_at
    assert (after_bet.table, after_bet.values["version"], after_bet.values["balance"]) == (ACCOUNTS, 1, Decimal(900))


def test_an_account_without_times_changed_at_the_stream_records_time() -> None:
    record = copy.deepcopy(records("batch_1.json")[1])
    del record["dynamodb"]["NewImage"]["created_at"]
    record["dynamodb"]["ApproximateCreationDateTime"] = int(at("2026-12-02T09:00:00Z"))
    row = decode_record(record)
    assert row is not None and row.values["changed_at"] == "2026-12-02T09:00:00.000000Z"


def test_sessions_and_removals_are_not_archived() -> None:
    session_insert = records("batch_1.json")[2]
    assert session_insert["dynamodb"]["NewImage"]["type"] == {"S": "session"}
    assert decode_record(session_insert) is None
    [ttl_removal] = records("ttl_remove.json")
    assert ttl_removal["userIdentity"]["principalId"] == "dynamodb.amazonaws.com"
    assert decode_record(ttl_removal) is None


def test_an_entry_modify_is_archived_for_the_audit_to_see() -> None:
    record = copy.deepcopy(records("batch_1.json")[4])
    record["eventName"] = "MODIFY"
    record["dynamodb"]["NewImage"]["minus"] = {"N": "1"}
    row = decode_record(record)
    assert row is not None and row.table == ENTRIES and row.values["minus"] == Decimal(1)


def test_an_item_without_a_type_is_known_by_its_key() -> None:
    entry, account = (copy.deepcopy(records("batch_1.json")[i]) for i in (4, 5))
    for record in (entry, account):
        del record["dynamodb"]["NewImage"]["type"]
    assert [getattr(decode_record(r), "table", None) for r in (entry, account)] == [ENTRIES, ACCOUNTS]


def poisoned(change: Callable[[dict[str, Any]], object], index: int = 4) -> dict[str, Any]:
    record = copy.deepcopy(records("batch_1.json")[index])
    change(record)
    return record


def image(**changes: Any) -> Callable[[dict[str, Any]], object]:
    return lambda record: record["dynamodb"]["NewImage"].update(changes)


def without(name: str) -> Callable[[dict[str, Any]], object]:
    return lambda record: record["dynamodb"]["NewImage"].pop(name)


@pytest.mark.parametrize(
    ("change", "index", "reason"),
    [
        (lambda r: r["dynamodb"].pop("NewImage"), 4, "no dynamodb.NewImage"),
        (without("balance_after"), 4, "missing attribute 'balance_after'"),
        (without("version"), 5, "missing attribute 'version'"),
        (lambda r: r.update(eventName="UPSERT"), 4, "eventName 'UPSERT'"),
        (image(minus={"N": "0.000000001"}), 4, "8 decimal places"),
        (image(minus={"N": "1e31"}), 4, "does not fit"),
        (image(source={"S": "casino"}), 4, "ValueError"),
        (image(created_at={"S": "../../etc"}), 4, "start with a day"),
        (image(type={"N": "1"}), 4, "type is not a string"),
        (image(tag={"SS": ["a"]}), 4, "tag is not a map"),
        (lambda r: r["dynamodb"]["NewImage"].update(pk={"S": "X"}, sk={"S": "Y"}) or without("type")(r), 4, "neither"),
    ],
)
def test_a_record_that_cannot_be_decoded_is_poison(
    change: Callable[[dict[str, Any]], object], index: int, reason: str
) -> None:
    record = poisoned(change, index)
    with pytest.raises(PoisonRecord, match=reason) as raised:
        decode_record(record)
    assert raised.value.event_id == record["eventID"]
    assert raised.value.sequence_number == record["dynamodb"]["SequenceNumber"]


def test_a_record_without_an_event_id_is_poison() -> None:
    record = poisoned(lambda r: r.pop("eventID"))
    with pytest.raises(PoisonRecord, match="no eventID"):
        decode_record(record)
    with pytest.raises(PoisonRecord, match="not a stream record"):
        decode_record([])  # type: ignore[arg-type]


def test_an_unknown_item_type_with_the_shape_of_a_session_is_ignored() -> None:
    record = poisoned(lambda r: r["dynamodb"]["NewImage"].update(type={"S": "limits_audit"}))
    assert decode_record(record) is None


# --- writing ----------------------------------------------------------------------------------------------------------


def test_rows_are_grouped_by_table_and_day_and_a_redelivered_event_counts_once() -> None:
    rows = decoded("batch_1.json", "batch_2.json", "batch_1.json")
    groups = group_rows(rows)
    assert sorted(groups) == [
        (ACCOUNTS, "2026-12-01"),
        (ACCOUNTS, "2026-12-02"),
        (ENTRIES, "2026-12-01"),
        (ENTRIES, "2026-12-02"),
    ]
    assert [len(groups[(ENTRIES, day)]) for day in ("2026-12-01", "2026-12-02")] == [5, 1]
    assert sum(len(group) for group in groups.values()) == len(decoded("batch_1.json", "batch_2.json"))


def test_the_object_key_is_the_sha256_of_the_table_and_the_sorted_event_ids() -> None:
    ids = ["c", "a", "b"]
    digest = hashlib.sha256(b"entries\na\nb\nc").hexdigest()
    assert object_key(ENTRIES, "2026-12-01", ids) == f"entries/day=2026-12-01/{digest}.parquet"
    assert object_key(ENTRIES, "2026-12-01", reversed(ids)) == object_key(ENTRIES, "2026-12-01", ids)
    assert object_key(ACCOUNTS, "2026-12-01", ids) != object_key(ENTRIES, "2026-12-01", ids)
    with pytest.raises(ValueError, match="not a day"):
        object_key(ENTRIES, "../x", ids)
    with pytest.raises(ValueError, match="no archive table"):
        object_key("sessions", "2026-12-01", ids)


def test_the_archive_in_a_folder_gives_the_reports_and_a_clean_audit(tmp_path: Path) -> None:
    written = archive_rows(decoded("batch_1.json", "batch_2.json", "poison.json"), LocalFolderSink(tmp_path))
    assert [(o.table, o.day, o.rows) for o in written] == [
        (ACCOUNTS, "2026-12-01", 8),
        (ACCOUNTS, "2026-12-02", 2),
        (ENTRIES, "2026-12-01", 5),
        (ENTRIES, "2026-12-02", 2),
    ]
    assert parquet_files(tmp_path) == sorted(o.key for o in written)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".parquet")] == []
    assert_the_book(tmp_path)


def test_the_files_have_the_designs_exact_types(tmp_path: Path) -> None:
    archive_rows(decoded("batch_1.json"), LocalFolderSink(tmp_path))
    for table, columns in ((ENTRIES, ENTRY_COLUMNS), (ACCOUNTS, ACCOUNT_COLUMNS)):
        [path] = (tmp_path / table).rglob("*.parquet")
        with duckdb.connect() as connection:
            described = connection.execute(
                f"DESCRIBE SELECT * FROM read_parquet('{path}', hive_partitioning = false)"  # noqa: S608
            ).fetchall()
        assert [(name, kind) for name, kind, *_ in described] == [
            (name, kind.replace(" ", "")) for name, kind in columns.items()
        ]
    [opening] = read(tmp_path / ENTRIES, "game_uuid, game_id, game_type, plus", "WHERE kind = 'opening'")
    assert opening == (None, None, None, Decimal(1000))  # no round, no game: NULL, not ""


def test_a_redelivered_batch_overwrites_its_own_objects(tmp_path: Path) -> None:
    sink = LocalFolderSink(tmp_path)
    first = archive_rows(decoded("batch_1.json", "batch_2.json"), sink)
    files = parquet_files(tmp_path)
    again = archive_rows(decoded("batch_1.json", "batch_2.json"), sink)
    assert [o.key for o in again] == [o.key for o in first]
    assert parquet_files(tmp_path) == files
    assert_the_book(tmp_path, deposit=False)


def test_a_batch_retried_with_other_boundaries_is_counted_once(tmp_path: Path) -> None:
    sink = LocalFolderSink(tmp_path)
    rows = decoded("batch_1.json", "batch_2.json")
    archive_rows(rows[:5], sink)
    archive_rows(rows[3:], sink)  # rows 3 and 4 again, in a file of another name
    archive_rows(rows, sink)
    assert_the_book(tmp_path, deposit=False)


def test_nothing_to_archive_writes_nothing(tmp_path: Path) -> None:
    assert archive_rows(decoded("ttl_remove.json"), LocalFolderSink(tmp_path)) == []
    assert list(tmp_path.iterdir()) == []


def test_the_local_sink_replaces_a_file_whole(tmp_path: Path) -> None:
    sink = LocalFolderSink(tmp_path / "archive")
    sink.put("entries/day=2026-12-01/x.parquet", b"old")
    sink.put("entries/day=2026-12-01/x.parquet", b"new")
    folder = tmp_path / "archive" / "entries" / "day=2026-12-01"
    assert [p.name for p in folder.iterdir()] == ["x.parquet"]
    assert (folder / "x.parquet").read_bytes() == b"new"
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ArchiveWriteError, match="file"):
        LocalFolderSink(tmp_path / "file").put("entries/day=2026-12-01/y.parquet", b"data")


def many_rows(count: int) -> list[ArchiveRow]:
    template = decode_record(records("batch_1.json")[4])
    assert template is not None
    return [
        ArchiveRow(ENTRIES, f"{n:032x}", {**template.values, "entry_id": f"game:p1:t-{n}", "trx_id": f"t-{n}"})
        for n in range(count)
    ]


def test_a_thousand_rows_are_written_well_within_a_second(tmp_path: Path) -> None:
    rows = many_rows(1000)
    archive_rows(rows[:1], LocalFolderSink(tmp_path / "warm"))  # duckdb imported, as in a warm Lambda
    started = time.perf_counter()
    [written] = archive_rows(rows, LocalFolderSink(tmp_path / "archive"))
    elapsed = time.perf_counter() - started
    assert written.rows == 1000
    assert elapsed < 1.0, f"{elapsed:.3f} s"
    [(count, bets)] = read(tmp_path / "archive", "COUNT(DISTINCT entry_id), SUM(minus)")
    assert (count, bets) == (1000, Decimal(100000))


# --- S3 ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        # As the stack's archive bucket: versioned, with Object Lock (which needs a checksum on every PutObject).
        client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
        yield client


def download(client: Any, folder: Path) -> list[str]:
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    for key in keys:
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return keys


def test_the_s3_sink_puts_each_object_with_a_sha256_checksum(s3: Any, tmp_path: Path) -> None:
    sent: list[dict[str, str]] = []
    s3.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(dict(request.headers)))
    written = archive_rows(decoded("batch_1.json", "batch_2.json", "poison.json"), S3Sink(BUCKET, s3))
    keys = download(s3, tmp_path)
    assert keys == sorted(o.key for o in written)
    assert len(sent) == len(written) == 4
    for headers in sent:
        names = {name.lower(): value.decode() if isinstance(value, bytes) else value for name, value in headers.items()}
        # botocore sends the checksum as a header or, for a streamed body, as a trailer it announces.
        assert "x-amz-checksum-sha256" in names or names.get("x-amz-trailer") == "x-amz-checksum-sha256", names
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        body = (tmp_path / key).read_bytes()
        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert head["ContentType"] == "application/vnd.apache.parquet"
    assert_the_book(tmp_path)


def test_an_s3_failure_is_an_archive_write_error(s3: Any) -> None:
    with pytest.raises(ArchiveWriteError, match="NoSuchBucket"):
        archive_rows(decoded("batch_1.json"), S3Sink("no-such-bucket", s3))


# --- the handler ------------------------------------------------------------------------------------------------------


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, io.StringIO]]:
    """functions/ledger_export/app.py as a fresh Lambda instance (its sink built from this test's environment)."""
    for name in ("WALLET_ARCHIVE_BUCKET", "WALLET_ARCHIVE_DIR", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):
        monkeypatch.delenv(name, raising=False)
    lambda_archive.cache_clear()
    with lambda_function("ledger_export") as loaded:
        yield loaded
    lambda_archive.cache_clear()


def invoke(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = module.handler(event, LambdaContext("ledger_export"))
    return reply


def emitted(out: str) -> dict[str, int]:
    """The metrics' values in Powertools' EMF lines on stdout."""
    values: dict[str, int] = {}
    for line in out.splitlines():
        if line.startswith("{") and "_aws" in line:
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = values.get(metric["Name"], 0) + int(
                    sum(value) if isinstance(value, list) else value
                )
    return values


def test_the_handler_archives_each_batch_to_the_folder(
    exporter: tuple[ModuleType, io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module, log = exporter
    monkeypatch.setenv("WALLET_ARCHIVE_DIR", str(tmp_path))
    for name in ("batch_1.json", "ttl_remove.json", "batch_2.json", "batch_1.json"):  # the last one redelivered
        assert invoke(module, stream(name)) == {"batchItemFailures": []}
    assert invoke(module, stream("poison.json")) == {
        "batchItemFailures": [{"itemIdentifier": stream("poison.json")["Records"][1]["dynamodb"]["SequenceNumber"]}]
    }
    assert_the_book(tmp_path)  # the poison record's neighbours were archived
    assert len(parquet_files(tmp_path)) == 2 + 4 + 2  # the redelivery rewrote batch_1's two objects
    metrics = emitted(capsys.readouterr().out)
    assert metrics == {
        "ArchivedEntries": 3 + 0 + 3 + 3 + 1,
        "ArchivedAccountChanges": 4 + 0 + 5 + 4 + 1,
        "PoisonRecords": 1,
    }
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    [poison] = [line for line in lines if line["message"] == "poison stream record"]
    assert poison["level"] == "ERROR" and "missing attribute" in poison["reason"]
    assert "NewImage" not in json.dumps(lines)  # no item is logged


def test_the_handler_writes_to_the_bucket(
    exporter: tuple[ModuleType, io.StringIO], monkeypatch: pytest.MonkeyPatch, s3: Any, tmp_path: Path
) -> None:
    module, _ = exporter
    monkeypatch.setenv("WALLET_ARCHIVE_BUCKET", BUCKET)
    for name in ("batch_1.json", "batch_2.json", "poison.json"):
        invoke(module, stream(name))
    download(s3, tmp_path)
    assert_the_book(tmp_path)


def test_a_batch_of_poison_only_reports_every_record(
    exporter: tuple[ModuleType, io.StringIO], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module, _ = exporter
    monkeypatch.setenv("WALLET_ARCHIVE_DIR", str(tmp_path))
    [poison] = [r for r in records("poison.json") if len(r["dynamodb"]["NewImage"]) < 10]
    reply = invoke(module, {"Records": [poison]})
    assert reply == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    assert parquet_files(tmp_path) == []


def test_a_failed_write_fails_the_whole_batch(
    exporter: tuple[ModuleType, io.StringIO],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module, log = exporter
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("WALLET_ARCHIVE_DIR", str(tmp_path / "file"))
    with pytest.raises(ArchiveWriteError):
        invoke(module, stream("batch_1.json"))
    assert emitted(capsys.readouterr().out) == {"ArchiveWriteFailures": 1}
    assert "archive write failed" in log.getvalue()


@pytest.mark.parametrize(
    "environment",
    [{}, {"WALLET_ARCHIVE_BUCKET": BUCKET, "WALLET_ARCHIVE_DIR": "/srv/archive"}],
    ids=["neither", "both"],
)
def test_a_misconfigured_exporter_fails_before_any_record(
    exporter: tuple[ModuleType, io.StringIO], monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    module, _ = exporter
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="WALLET_ARCHIVE_BUCKET"):
        invoke(module, stream("batch_1.json"))


def test_the_sample_event_archives_the_first_batch(
    exporter: tuple[ModuleType, io.StringIO], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module, _ = exporter
    monkeypatch.setenv("WALLET_ARCHIVE_DIR", str(tmp_path))
    assert invoke(module, json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))) == {"batchItemFailures": []}
    assert [p.split("/")[0] for p in parquet_files(tmp_path)] == [ACCOUNTS, ENTRIES]


if __name__ == "__main__":  # rewrite the recordings: .venv/bin/python -m tests.unit.test_ledger_export
    for _name, _value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(_name, _value)
    write_recordings(record_streams())
