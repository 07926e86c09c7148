"""wallet_local.streams: the local stand-in for Lambda's event source mapping on the table's stream, against a fake
DynamoDB Streams client: the event's shape, batching, the shard chain, and the retries the exporter's reply asks for."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from wallet_local.streams import (
    FAILED_DIR,
    PROGRESS_FILE,
    MappingSettings,
    StreamReader,
    first_failure,
    lambda_record,
    mapping_settings,
    parse_iso,
    read_progress,
    stream_event,
    wait_for_archive,
)
from wallet_local.table import create_table_request

STREAM_ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/wallet-local/stream/2026-12-03T09:00:00.000"
CREATED = datetime(2026, 12, 3, 9, 15, 7, tzinfo=UTC)


def raw_record(sequence: int, name: str = "INSERT", **image: Any) -> dict[str, Any]:
    """A record as boto3's get_records gives it (the creation time a datetime)."""
    keys = {"pk": {"S": f"ENTRY#game:{sequence}"}, "sk": {"S": "ENTRY"}}
    return {
        "eventID": f"event-{sequence}",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "ddblocal",
        "dynamodb": {
            "ApproximateCreationDateTime": CREATED,
            "Keys": keys,
            "NewImage": {**keys, "n": {"N": str(sequence)}, **image},
            "SequenceNumber": f"{sequence:021d}",
            "SizeBytes": 40,
            "StreamViewType": "NEW_IMAGE",
        },
    }


def sequence(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


def expired() -> ClientError:
    return ClientError({"Error": {"Code": "ExpiredIteratorException", "Message": "expired"}}, "GetRecords")


class FakeStreams:
    """DynamoDB Streams for one stream: shards of records, closed or open; an iterator is "<shard>|<position>"."""

    def __init__(self) -> None:
        self.shards: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.expire_next = 0  # GetRecords calls to refuse with ExpiredIteratorException
        self.lock = threading.Lock()

    def add_shard(self, shard_id: str, parent: str | None = None) -> None:
        with self.lock:
            self.shards[shard_id] = {"parent": parent, "records": [], "closed": False}

    def put(self, shard_id: str, *records: dict[str, Any]) -> None:
        with self.lock:
            self.shards[shard_id]["records"].extend(records)

    def close(self, shard_id: str) -> None:
        self.shards[shard_id]["closed"] = True

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str | None = None) -> dict[str, Any]:
        assert StreamArn == STREAM_ARN
        self.calls.append(("describe_stream", {"ExclusiveStartShardId": ExclusiveStartShardId}))
        ids = list(self.shards)
        start = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        page = ids[start : start + 1]  # one shard a page: the reader must follow LastEvaluatedShardId
        shards = []
        for shard_id in page:
            shard: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
            if self.shards[shard_id]["parent"]:
                shard["ParentShardId"] = self.shards[shard_id]["parent"]
            shards.append(shard)
        description: dict[str, Any] = {"StreamArn": STREAM_ARN, "Shards": shards}
        if start + 1 < len(ids):
            description["LastEvaluatedShardId"] = page[-1]
        return {"StreamDescription": description}

    def get_shard_iterator(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(("get_shard_iterator", arguments))
        records = self.shards[arguments["ShardId"]]["records"]
        if arguments["ShardIteratorType"] == "TRIM_HORIZON":
            position = 0
        else:
            assert arguments["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
            position = (
                next(i for i, r in enumerate(records) if r["dynamodb"]["SequenceNumber"] == arguments["SequenceNumber"])
                + 1
            )
        return {"ShardIterator": f"{arguments['ShardId']}|{position}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls.append(("get_records", {"ShardIterator": ShardIterator, "Limit": Limit}))
        if self.expire_next:
            self.expire_next -= 1
            raise expired()
        shard_id, position_text = ShardIterator.split("|")
        with self.lock:
            shard = self.shards[shard_id]
            position = int(position_text)
            records = shard["records"][position : position + Limit]
            reply: dict[str, Any] = {"Records": records}
            end = position + len(records)
            if not (shard["closed"] and end >= len(shard["records"])):
                reply["NextShardIterator"] = f"{shard_id}|{end}"
        return reply

    def count(self, name: str) -> int:
        return sum(call == name for call, _ in self.calls)


class Exporter:
    """The function: records every event; `replies` (or exceptions) are given out in order, then success."""

    def __init__(self, *replies: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.replies = list(replies)

    def __call__(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        reply = self.replies.pop(0) if self.replies else {"batchItemFailures": []}
        if callable(reply):
            reply = reply(event)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def sequences(self) -> list[list[int]]:
        return [[int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]] for event in self.events]


SETTINGS = MappingSettings(batch_size=4, max_retries=2, report_item_failures=True, bisect_on_error=True)


@pytest.fixture
def streams() -> FakeStreams:
    fake = FakeStreams()
    fake.add_shard("shard-1")
    return fake


def reader(streams: FakeStreams, exporter: Exporter, archive: Path, **settings: Any) -> StreamReader:
    chosen = MappingSettings(**{**vars(SETTINGS), **settings})
    return StreamReader(streams, STREAM_ARN, exporter, archive, chosen, backoff=lambda _: 0.0)


def drain(stream_reader: StreamReader, rounds: int = 50) -> None:
    """Rounds until one finds nothing new."""
    for _ in range(rounds):
        stream_reader.poll_once()
        if stream_reader.caught_up:
            return
    raise AssertionError("the reader never caught up")


# --- the event ---------------------------------------------------------------------------------------------------


def test_a_record_is_shaped_as_the_mapping_hands_it_to_lambda() -> None:
    record = raw_record(7, blob={"B": b"\x00\xffraw"}, blobs={"BS": [b"a", b"b"]}, nested={"M": {"x": {"B": b"z"}}})

    shaped = lambda_record(record, STREAM_ARN)

    assert list(shaped) == [
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    ]
    assert shaped["eventSourceARN"] == STREAM_ARN
    assert shaped["eventSource"] == "aws:dynamodb"
    stream = shaped["dynamodb"]
    # Epoch seconds, a number, as in Lambda's event (boto3 gave a datetime).
    assert stream["ApproximateCreationDateTime"] == int(CREATED.timestamp()) == 1796289307
    assert isinstance(stream["ApproximateCreationDateTime"], int)
    assert set(stream) == {
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    }
    assert stream["SequenceNumber"] == "000000000000000000007"
    assert stream["Keys"] == {"pk": {"S": "ENTRY#game:7"}, "sk": {"S": "ENTRY"}}
    # Binary values in base64, as the event's JSON carries them.
    assert stream["NewImage"]["blob"] == {"B": base64.b64encode(b"\x00\xffraw").decode()}
    assert stream["NewImage"]["blobs"] == {"BS": ["YQ==", "Yg=="]}
    assert stream["NewImage"]["nested"] == {"M": {"x": {"B": "eg=="}}}
    # The record it came from is left as it was.
    assert record["dynamodb"]["ApproximateCreationDateTime"] is CREATED


def test_a_fractional_creation_time_keeps_its_fraction_and_a_ttl_removal_keeps_its_identity() -> None:
    record = raw_record(1, "REMOVE")
    record["dynamodb"]["ApproximateCreationDateTime"] = datetime(2026, 12, 3, 9, 15, 7, 250000, tzinfo=UTC)
    record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

    shaped = lambda_record(record, STREAM_ARN)

    assert shaped["dynamodb"]["ApproximateCreationDateTime"] == 1796289307.25
    assert shaped["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert list(shaped)[-2:] == ["userIdentity", "eventSourceARN"]


def test_the_event_is_plain_json() -> None:
    event = stream_event([raw_record(1), raw_record(2)], STREAM_ARN)

    assert json.loads(json.dumps(event)) == event
    assert [r["eventID"] for r in event["Records"]] == ["event-1", "event-2"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (None, None),
        ({}, None),
        ({"batchItemFailures": []}, None),
        ({"batchItemFailures": [{"itemIdentifier": "000000000000000000003"}]}, 2),
        # The earliest named, whatever the order of the list.
        (
            {
                "batchItemFailures": [
                    {"itemIdentifier": "000000000000000000004"},
                    {"itemIdentifier": "000000000000000000002"},
                ]
            },
            1,
        ),
        # Not in the batch, empty, missing or malformed: the whole batch failed.
        ({"batchItemFailures": [{"itemIdentifier": "999"}]}, 0),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, 0),
        ({"batchItemFailures": [{}]}, 0),
        ({"batchItemFailures": "000000000000000000002"}, 0),
        ("not a dict", None),
    ],
)
def test_where_a_reply_says_to_retry_from(reply: Any, expected: int | None) -> None:
    records = [raw_record(n) for n in range(1, 5)]

    assert first_failure(reply, records, report_item_failures=True) == expected


def test_without_report_batch_item_failures_any_reply_is_a_success() -> None:
    reply = {"batchItemFailures": [{"itemIdentifier": "000000000000000000001"}]}

    assert first_failure(reply, [raw_record(1)], report_item_failures=False) is None


# --- reading -----------------------------------------------------------------------------------------------------


def test_records_go_out_in_order_in_batches_of_batch_size(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", *(raw_record(n) for n in range(1, 11)))
    exporter = Exporter()
    stream_reader = reader(streams, exporter, tmp_path)

    drain(stream_reader)

    assert exporter.sequences() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert all(r["eventSourceARN"] == STREAM_ARN for e in exporter.events for r in e["Records"])
    assert all(
        isinstance(r["dynamodb"]["ApproximateCreationDateTime"], int) for e in exporter.events for r in e["Records"]
    )
    # One iterator at TRIM_HORIZON, then only the NextShardIterator chain.
    [(_, iterator)] = [call for call in streams.calls if call[0] == "get_shard_iterator"]
    assert iterator["ShardIteratorType"] == "TRIM_HORIZON"
    progress = read_progress(tmp_path)
    assert progress is not None
    assert progress["records"] == 10 and progress["failed"] == 0 and progress["batches"] == 3
    assert progress["stream_arn"] == STREAM_ARN


def test_a_batch_bigger_than_one_get_records_call_is_read_in_several(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", *(raw_record(n) for n in range(1, 2502)))
    exporter = Exporter()
    stream_reader = reader(streams, exporter, tmp_path, batch_size=2000)

    drain(stream_reader)

    assert [len(batch) for batch in exporter.sequences()] == [2000, 501]
    limits = [call[1]["Limit"] for call in streams.calls if call[0] == "get_records"]
    assert limits[:2] == [1000, 1000]  # GetRecords gives at most 1,000 a call


def test_caught_up_is_written_only_after_a_round_with_nothing_new(streams: FakeStreams, tmp_path: Path) -> None:
    now = [1000.0]
    stream_reader = StreamReader(streams, STREAM_ARN, Exporter(), tmp_path, SETTINGS, clock=lambda: now[0])
    streams.put("shard-1", raw_record(1))

    stream_reader.poll_once()
    assert not (tmp_path / PROGRESS_FILE).exists()  # that round read a record: not caught up yet

    now[0] = 1001.5
    stream_reader.poll_once()
    progress = read_progress(tmp_path)
    assert progress is not None
    assert parse_iso(progress["caught_up_at"]) == 1001.5  # when the empty round started
    assert progress["records"] == 1


def test_a_closed_shard_is_drained_before_its_child_is_read(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", raw_record(1), raw_record(2))
    exporter = Exporter()
    stream_reader = reader(streams, exporter, tmp_path)
    drain(stream_reader)
    # The shard rolls over: more records in the parent, then it closes and a child takes the writes.
    streams.put("shard-1", raw_record(3))
    streams.close("shard-1")
    streams.add_shard("shard-2", parent="shard-1")
    streams.put("shard-2", raw_record(4), raw_record(5))
    describes = streams.count("describe_stream")

    drain(stream_reader)

    assert exporter.sequences() == [[1, 2], [3], [4, 5]]
    assert streams.count("describe_stream") > describes  # the closed shard sent it looking for children
    # The parent is still listed (until the stream trims it) but drained: never read again.
    assert stream_reader.shards["shard-1"].drained
    calls = len(streams.calls)
    drain(stream_reader)
    assert not any("shard-1|" in call[1].get("ShardIterator", "") for call in streams.calls[calls:])


def test_a_child_listed_before_its_parent_closes_waits_for_it(streams: FakeStreams, tmp_path: Path) -> None:
    streams.add_shard("shard-2", parent="shard-1")
    streams.put("shard-2", raw_record(10))
    streams.put("shard-1", raw_record(1))
    exporter = Exporter()
    stream_reader = reader(streams, exporter, tmp_path)

    for _ in range(3):
        stream_reader.poll_once()
    assert exporter.sequences() == [[1]]  # the parent is still open: its child waits

    streams.close("shard-1")
    drain(stream_reader)
    assert exporter.sequences() == [[1], [10]]


def test_an_expired_iterator_resumes_after_the_last_record_read(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", raw_record(1), raw_record(2))
    exporter = Exporter()
    stream_reader = reader(streams, exporter, tmp_path)
    drain(stream_reader)
    streams.put("shard-1", raw_record(3))
    streams.expire_next = 1

    drain(stream_reader)

    assert exporter.sequences() == [[1, 2], [3]]
    last_iterator = [call[1] for call in streams.calls if call[0] == "get_shard_iterator"][-1]
    assert last_iterator["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert last_iterator["SequenceNumber"] == "000000000000000000002"


# --- retries -----------------------------------------------------------------------------------------------------


def test_batch_item_failures_retry_from_the_first_failed_record(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", *(raw_record(n) for n in range(1, 5)))
    exporter = Exporter({"batchItemFailures": [{"itemIdentifier": "000000000000000000003"}]})
    stream_reader = reader(streams, exporter, tmp_path)

    drain(stream_reader)

    # 1 and 2 were done; the retry starts at 3, and is the same records (the exporter's keys depend on them).
    assert exporter.sequences() == [[1, 2, 3, 4], [3, 4]]
    progress = read_progress(tmp_path)
    assert progress is not None
    assert progress["records"] == 4 and progress["failed"] == 0 and progress["invocations"] == 2
    assert not (tmp_path / FAILED_DIR).exists()


def test_a_record_failing_every_retry_goes_to_failed_and_the_reader_moves_on(
    streams: FakeStreams, tmp_path: Path
) -> None:
    streams.put("shard-1", *(raw_record(n) for n in range(1, 7)))
    stuck = {"batchItemFailures": [{"itemIdentifier": "000000000000000000002"}]}
    exporter = Exporter(stuck, stuck, stuck)  # the first try and both retries (max_retries=2)
    stream_reader = reader(streams, exporter, tmp_path)

    drain(stream_reader)

    assert exporter.sequences() == [[1, 2, 3, 4], [2, 3, 4], [2, 3, 4], [5, 6]]
    [failed] = (tmp_path / FAILED_DIR).iterdir()
    assert failed.name == "shard-1-000000000000000000002-000000000000000000004.json"
    written = json.loads(failed.read_text())
    assert written["attempts"] == 3
    assert written["shard_id"] == "shard-1" and written["stream_arn"] == STREAM_ARN
    assert "batchItemFailures from sequence 000000000000000000002" in written["reason"]
    # The records themselves, as the function got them: they can be replayed into it.
    assert [sequence(r) for r in written["records"]] == [2, 3, 4]
    assert written["records"][0]["eventSourceARN"] == STREAM_ARN
    progress = read_progress(tmp_path)
    assert progress is not None
    assert progress["records"] == 3 and progress["failed"] == 3


def test_an_unknown_identifier_retries_the_whole_batch(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", raw_record(1), raw_record(2))
    exporter = Exporter({"batchItemFailures": [{"itemIdentifier": "nope"}]})
    stream_reader = reader(streams, exporter, tmp_path)

    drain(stream_reader)

    assert exporter.sequences() == [[1, 2], [1, 2]]


def test_a_function_error_splits_the_batch_to_isolate_the_bad_record(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", *(raw_record(n) for n in range(1, 5)))

    def fails_on_3(event: dict[str, Any]) -> Any:
        if any(sequence(r) == 3 for r in event["Records"]):
            return RuntimeError("cannot archive 3")
        return None

    exporter = Exporter(*[fails_on_3] * 20)
    stream_reader = reader(streams, exporter, tmp_path)

    drain(stream_reader)

    batches = exporter.sequences()
    assert batches[:4] == [[1, 2, 3, 4], [1, 2], [3, 4], [3]]  # split, split again; the halves without 3 pass
    assert batches[4:] == [[3], [3], [4]]  # 3 alone: two retries, given up; then 4
    [failed] = (tmp_path / FAILED_DIR).iterdir()
    written = json.loads(failed.read_text())
    assert [sequence(r) for r in written["records"]] == [3]
    assert written["reason"] == "RuntimeError: cannot archive 3"
    progress = read_progress(tmp_path)
    assert progress is not None
    assert progress["records"] == 3 and progress["failed"] == 1


def test_without_bisect_a_function_error_retries_the_whole_batch(streams: FakeStreams, tmp_path: Path) -> None:
    streams.put("shard-1", raw_record(1), raw_record(2))
    exporter = Exporter(RuntimeError("S3 is down"))
    stream_reader = reader(streams, exporter, tmp_path, bisect_on_error=False)

    drain(stream_reader)

    assert exporter.sequences() == [[1, 2], [1, 2]]
    assert not (tmp_path / FAILED_DIR).exists()


# --- the thread, and waiting for it ------------------------------------------------------------------------------


def test_the_thread_follows_new_records_and_drains_when_stopped(streams: FakeStreams, tmp_path: Path) -> None:
    exporter = Exporter()
    stream_reader = StreamReader(streams, STREAM_ARN, exporter, tmp_path, SETTINGS, idle_seconds=0.01).start()
    try:
        streams.put("shard-1", raw_record(1))
        since = time.time()
        progress = wait_for_archive(tmp_path, since, timeout=10)
        assert progress["records"] == 1
        assert parse_iso(progress["caught_up_at"]) > since
        streams.put("shard-1", raw_record(2))
    finally:
        stream_reader.stop(drain_seconds=5)
    assert exporter.sequences()[-1] == [2]  # written just before the stop: archived on the way out
    assert stream_reader._thread is not None and not stream_reader._thread.is_alive()


def test_wait_for_archive_times_out_naming_the_progress(tmp_path: Path) -> None:
    (tmp_path / PROGRESS_FILE).write_text(json.dumps({"caught_up_at": "2026-12-03T09:00:00.000000Z", "records": 5}))

    with pytest.raises(TimeoutError, match="'records': 5"):
        wait_for_archive(tmp_path, parse_iso("2026-12-03T09:00:01.000000Z"), timeout=0.1)

    assert wait_for_archive(tmp_path, parse_iso("2026-12-03T08:59:59.000000Z"), timeout=0.1)["records"] == 5


# --- from template.yaml ------------------------------------------------------------------------------------------


def test_the_mapping_is_read_from_the_template() -> None:
    settings = mapping_settings()

    assert settings is not None
    assert settings.function == "ledger_export"
    assert settings.handler == "handler"
    assert settings.starting_position == "TRIM_HORIZON"
    assert settings.report_item_failures is True
    assert settings.batch_size >= 1 and settings.max_retries >= 0 and settings.timeout > 0


def test_the_local_table_gets_the_template_stream() -> None:
    request = create_table_request("wallet-local")

    assert request["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
