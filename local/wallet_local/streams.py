"""The local table's DynamoDB stream into the ledger exporter, as Lambda's event source mapping (ESM) does it in AWS.

`wallet local` has no Lambda service to poll the stream, so a StreamReader thread stands in for the mapping that
template.yaml declares on LedgerExportFunction (its BatchSize, MaximumRetryAttempts, BisectBatchOnFunctionError,
ReportBatchItemFailures and StartingPosition are read from there):

- DescribeStream on DynamoDB Local's stream (the table's LatestStreamArn), again every few seconds and whenever a
  shard closes, to find the shards a roll-over opens; a child shard is read only once its parent is drained.
- Per shard: an iterator at TRIM_HORIZON, then the GetRecords chain (NextShardIterator). An expired iterator is
  replaced by one AFTER_SEQUENCE_NUMBER of the last record read.
- Each GetRecords result (up to BatchSize records) is one batch: the event Lambda gets from the mapping,
  {"Records": [...]} with eventSourceARN added and ApproximateCreationDateTime in epoch seconds (boto3 parses the
  API's number into a datetime; the Lambda event carries the number).
- The reply: {"batchItemFailures": [{"itemIdentifier": <sequence number>}]} means the records before the first one
  named are done and the batch is retried from it; an identifier that is not in the batch, or an error raised by the
  function, fails the whole batch (which is split in two first when BisectBatchOnFunctionError is on). After
  MaximumRetryAttempts (bounded here even if the template says -1) the remaining records go to
  <archive>/_failed/<shard>-<first>-<last>.json, with a loud line on stderr, where AWS would send the batch's position
  to the OnFailure destination; then the reader moves on.
- After every round over the shards that found no new record, <archive>/_progress.json says so:
  {"caught_up_at": <ISO time the round started>, "records": archived, "failed": given up, ...}. wait_for_archive()
  waits for a caught_up_at after a given moment: every write before that moment is then in the archive (or failed).

MaximumBatchingWindowInSeconds is not honoured: locally a batch goes out as soon as it is read (an idle stream is
polled every 200 ms), so the archive trails the table by well under a second.

The exporter runs as Lambda runs it: functions/ledger_export/app.py imported in a process of its own (one instance,
one batch at a time, the stack's environment, WALLET_ARCHIVE_DIR among it), see ExporterInstance.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wallet_local.paths import FUNCTIONS, TEMPLATE
from wallet_local.table import TABLE_LOGICAL_ID, template_document

PROGRESS_FILE = "_progress.json"
FAILED_DIR = "_failed"
IDLE_SECONDS = 0.2  # DynamoDB Local answers an empty GetRecords in milliseconds
DESCRIBE_SECONDS = 5.0
GET_RECORDS_LIMIT = 1000  # the API's own maximum per call
LOCAL_MAX_RETRIES = 10  # when the template leaves retries unbounded (-1): bounded here, the stack must move on

Invoke = Callable[[dict[str, Any]], Any]


def _log(level: str, message: str, **fields: Any) -> None:
    """One JSON line on stderr, like the functions' Powertools lines (the stack's output is a log to scan)."""
    line = {"level": level, "location": "wallet_local.streams", "message": message, **fields}
    print(json.dumps(line, default=str), file=sys.stderr, flush=True)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- the mapping's settings, from template.yaml --------------------------------------------------------------------


@dataclass(frozen=True)
class MappingSettings:
    """What the event source mapping on the table's stream says (template.yaml), and the function it invokes."""

    function: str = "ledger_export"  # the folder under functions/
    handler: str = "handler"  # the attribute of its app.py
    timeout: float = 120.0
    batch_size: int = 100  # the mapping's default for DynamoDB streams
    max_retries: int = LOCAL_MAX_RETRIES
    bisect_on_error: bool = False
    report_item_failures: bool = False
    starting_position: str = "TRIM_HORIZON"


def mapping_settings(template: Path = TEMPLATE) -> MappingSettings | None:
    """The function whose DynamoDB event reads WalletTable's stream, and that event's settings; None if none does."""
    document = template_document(template)
    default_timeout = ((document.get("Globals") or {}).get("Function") or {}).get("Timeout", 3)
    for resource in document["Resources"].values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties") or {}
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "DynamoDB":
                continue
            source = event.get("Properties") or {}
            if not str(source.get("Stream", "")).startswith(f"{TABLE_LOGICAL_ID}."):
                continue
            module, _, attribute = str(properties.get("Handler", "app.handler")).partition(".")
            if module != "app":
                raise ValueError(f"the stream's function has handler {properties.get('Handler')!r}, not app.<name>")
            retries = int(source.get("MaximumRetryAttempts", -1))
            return MappingSettings(
                function=Path(str(properties["CodeUri"])).name,
                handler=attribute,
                timeout=float(properties.get("Timeout", default_timeout)),
                batch_size=int(source.get("BatchSize", 100)),
                max_retries=retries if retries >= 0 else LOCAL_MAX_RETRIES,
                bisect_on_error=bool(source.get("BisectBatchOnFunctionError", False)),
                report_item_failures="ReportBatchItemFailures" in (source.get("FunctionResponseTypes") or []),
                starting_position=str(source.get("StartingPosition", "TRIM_HORIZON")),
            )
    return None


# --- the event Lambda gets -----------------------------------------------------------------------------------------


def epoch_seconds(moment: Any) -> Any:
    """ApproximateCreationDateTime as the Lambda event carries it: epoch seconds (boto3 gives a datetime)."""
    if isinstance(moment, datetime):
        seconds = moment.timestamp()
        return int(seconds) if seconds.is_integer() else seconds
    return moment


def _json_value(value: Any) -> Any:
    """An attribute value as JSON has it: boto3 decodes B and BS into bytes, the event carries them in base64."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    return value


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """One GetRecords record as the mapping hands it to the function: the same fields in the event's order, the
    stream's ARN added, the creation time in epoch seconds, binary values in base64."""
    shaped: dict[str, Any] = {
        key: record[key]
        for key in ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion")
        if key in record
    }
    stream = dict(record.get("dynamodb") or {})
    if "ApproximateCreationDateTime" in stream:
        stream["ApproximateCreationDateTime"] = epoch_seconds(stream["ApproximateCreationDateTime"])
    shaped["dynamodb"] = _json_value(stream)
    if "userIdentity" in record:  # a TTL deletion: {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        shaped["userIdentity"] = dict(record["userIdentity"])
    shaped["eventSourceARN"] = stream_arn
    return shaped


def stream_event(records: Sequence[Mapping[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The whole event, through JSON as Lambda's is: nothing but JSON types reaches the handler."""
    event = {"Records": [lambda_record(record, stream_arn) for record in records]}
    loaded: dict[str, Any] = json.loads(json.dumps(event))
    return loaded


def first_failure(reply: Any, records: Sequence[Mapping[str, Any]], report_item_failures: bool) -> int | None:
    """Where the batch has to be retried from, as the mapping reads the reply: None when all of it is done; the index
    of the earliest sequence number named in batchItemFailures; 0 (the whole batch) when an identifier is missing or
    not in the batch. Without ReportBatchItemFailures any reply is a success."""
    if not report_item_failures or not isinstance(reply, Mapping):
        return None
    failures = reply.get("batchItemFailures")
    if failures is None:
        return None
    if not isinstance(failures, list):
        return 0
    if not failures:
        return None
    positions = {str(record["dynamodb"]["SequenceNumber"]): index for index, record in enumerate(records)}
    found = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return 0
        found.append(positions[identifier])
    return min(found)


# --- the reader ------------------------------------------------------------------------------------------------------


@dataclass
class Shard:
    shard_id: str
    parent: str | None
    iterator: str | None = None
    last_sequence: str | None = None
    drained: bool = False  # closed and read to its end (GetRecords gave no NextShardIterator)


@dataclass
class Progress:
    records: int = 0  # delivered and acknowledged by the exporter
    failed: int = 0  # given up on, written to _failed/
    batches: int = 0
    invocations: int = 0
    caught_up_at: float | None = None


@dataclass
class StreamReader:
    """Reads `stream_arn` with `client` (a boto3 'dynamodbstreams' client) and hands each batch to `invoke`."""

    client: Any
    stream_arn: str
    invoke: Invoke
    archive_dir: Path
    settings: MappingSettings = field(default_factory=MappingSettings)
    idle_seconds: float = IDLE_SECONDS
    describe_seconds: float = DESCRIBE_SECONDS
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    backoff: Callable[[int], float] = field(default=lambda attempt: min(2.0, 0.1 * 2 ** (attempt - 1)))
    progress: Progress = field(default_factory=Progress, init=False)
    shards: dict[str, Shard] = field(default_factory=dict, init=False)
    caught_up: bool = field(default=False, init=False)  # the last round found nothing new
    _finished: set[str] = field(default_factory=set, init=False)  # shards drained (or gone): their children are next
    _described_at: float | None = field(default=None, init=False)
    _describe_now: bool = field(default=True, init=False)
    _interrupted: bool = field(default=False, init=False)  # a read failed in this round
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _abort: threading.Event = field(default_factory=threading.Event, init=False)  # for good: no more retries
    _thread: threading.Thread | None = field(default=None, init=False)

    # --- one round ---

    def poll_once(self) -> int:
        """One round over the readable shards: the records read (and delivered). A round that read none and saw no
        shard close writes the progress file with the round's start time as caught_up_at."""
        started = self.clock()
        if (
            self._describe_now
            or self._described_at is None
            or (self.monotonic() - self._described_at >= self.describe_seconds)
        ):
            self.describe()
        read = 0
        settled = True
        self._interrupted = False
        for shard in self._readable():
            records = self._read(shard)
            if records:
                read += len(records)
                self.progress.batches += 1
                self._deliver(shard, records)
            if shard.drained:
                self._finished.add(shard.shard_id)
                self._describe_now = True  # a closed shard: its children are there to find
                settled = False
        # A shard whose read failed this round may hold records: not caught up.
        self.caught_up = read == 0 and settled and not self._interrupted
        if self.caught_up:
            self.progress.caught_up_at = started
            self.write_progress()
        return read

    def describe(self) -> None:
        """The stream's shards (every page); shards no longer listed and drained are forgotten."""
        listed: dict[str, str | None] = {}
        start: str | None = None
        while True:
            arguments: dict[str, Any] = {"StreamArn": self.stream_arn}
            if start:
                arguments["ExclusiveStartShardId"] = start
            description = self.client.describe_stream(**arguments)["StreamDescription"]
            for shard in description.get("Shards", []):
                listed[shard["ShardId"]] = shard.get("ParentShardId")
            start = description.get("LastEvaluatedShardId")
            if not start:
                break
        for shard_id, parent in listed.items():
            if shard_id not in self.shards and shard_id not in self._finished:
                self.shards[shard_id] = Shard(shard_id, parent)
        for shard_id in [s for s, shard in self.shards.items() if s not in listed and shard.drained]:
            del self.shards[shard_id]
        self._described_at = self.monotonic()
        self._describe_now = False

    def _readable(self) -> list[Shard]:
        """Open shards whose parent is drained, or unknown (trimmed from the stream, or never seen)."""
        return [
            shard
            for shard in self.shards.values()
            if not shard.drained
            and (shard.parent is None or shard.parent in self._finished or shard.parent not in self.shards)
        ]

    def _read(self, shard: Shard) -> list[dict[str, Any]]:
        """Up to batch_size records from the shard's iterator chain (several calls when the batch is bigger than one
        GetRecords gives)."""
        records: list[dict[str, Any]] = []
        try:
            if shard.iterator is None:
                shard.iterator = self._iterator(shard)
            while len(records) < self.settings.batch_size:
                limit = min(GET_RECORDS_LIMIT, self.settings.batch_size - len(records))
                got = self.client.get_records(ShardIterator=shard.iterator, Limit=limit)
                batch = got.get("Records", [])
                records.extend(batch)
                if batch:
                    shard.last_sequence = str(batch[-1]["dynamodb"]["SequenceNumber"])
                shard.iterator = got.get("NextShardIterator")
                if shard.iterator is None:
                    shard.drained = True
                    break
                if not batch:
                    break
        except Exception as exc:
            self._interrupted = True
            code = _error_code(exc)
            if code == "ExpiredIteratorException":
                shard.iterator = None  # a new one after the last record read, next round
            elif code == "TrimmedDataAccessException":
                _log("ERROR", "stream records trimmed before they were read", shard=shard.shard_id, error=str(exc))
                shard.iterator, shard.last_sequence = None, None
            elif code == "ResourceNotFoundException":
                shard.drained = True  # the shard is gone
            else:
                raise
        return records

    def _iterator(self, shard: Shard) -> str:
        arguments: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.last_sequence is not None:
            arguments.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_sequence)
        else:
            arguments["ShardIteratorType"] = self.settings.starting_position
        return str(self.client.get_shard_iterator(**arguments)["ShardIterator"])

    # --- delivery, as the mapping retries ---

    def _deliver(self, shard: Shard, records: list[dict[str, Any]], attempts: int = 0) -> None:
        pending = records
        while pending:
            error: str | None = None
            try:
                self.progress.invocations += 1
                reply = self.invoke(stream_event(pending, self.stream_arn))
                failed_at = first_failure(reply, pending, self.settings.report_item_failures)
            except Exception as exc:  # the function's error: the whole batch failed
                error = f"{type(exc).__name__}: {exc}"
                failed_at = 0
            if failed_at is None:
                self.progress.records += len(pending)
                return
            self.progress.records += failed_at
            if error is not None and self.settings.bisect_on_error and len(pending) > 1:
                # Split to isolate a bad record; splitting does not use up a retry.
                half = len(pending) // 2
                _log("WARNING", "ledger export failed: splitting the batch", records=len(pending), error=error)
                self._deliver(shard, pending[:half], attempts)
                self._deliver(shard, pending[half:], attempts)
                return
            pending = pending[failed_at:]
            reason = error or f"batchItemFailures from sequence {pending[0]['dynamodb']['SequenceNumber']}"
            if attempts >= self.settings.max_retries or self._abort.is_set():
                self._give_up(shard, pending, reason, attempts + 1)
                return
            attempts += 1
            _log("WARNING", "ledger export failed: retrying", attempt=attempts, records=len(pending), reason=reason)
            self._abort.wait(self.backoff(attempts))

    def _give_up(self, shard: Shard, records: list[dict[str, Any]], reason: str, attempts: int) -> None:
        """What the OnFailure destination gets in AWS (there: the batch's position; here: its records too)."""
        first = str(records[0]["dynamodb"]["SequenceNumber"])
        last = str(records[-1]["dynamodb"]["SequenceNumber"])
        folder = self.archive_dir / FAILED_DIR
        path = folder / f"{shard.shard_id}-{first}-{last}.json"
        failure = {
            "reason": reason,
            "attempts": attempts,
            "failed_at": iso(self.clock()),
            "stream_arn": self.stream_arn,
            "shard_id": shard.shard_id,
            "first_sequence_number": first,
            "last_sequence_number": last,
            "records": stream_event(records, self.stream_arn)["Records"],
        }
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, json.dumps(failure, indent=1))
        self.progress.failed += len(records)
        _log(
            "ERROR",
            "LEDGER EXPORT GAVE UP ON A BATCH: its records are NOT in the archive",
            records=len(records),
            attempts=attempts,
            reason=reason,
            written_to=str(path),
        )

    def write_progress(self) -> None:
        caught_up = self.progress.caught_up_at
        body = {
            "caught_up_at": iso(caught_up) if caught_up is not None else None,
            "records": self.progress.records,
            "failed": self.progress.failed,
            "batches": self.progress.batches,
            "invocations": self.progress.invocations,
            "shards": len(self.shards),
            "stream_arn": self.stream_arn,
        }
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.archive_dir / PROGRESS_FILE, json.dumps(body))

    # --- the thread ---

    def start(self) -> StreamReader:
        self._thread = threading.Thread(target=self._run, name="stream-reader", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                read = self.poll_once()
                failures = 0
            except Exception as exc:  # DynamoDB Local busy or going away: keep trying, quietly at first
                failures += 1
                if failures in (3, 30) or failures % 300 == 0:
                    _log("WARNING", "stream reader: cannot read the stream", error=str(exc), failures=failures)
                self._stop.wait(min(2.0, 0.2 * failures))
                continue
            if read == 0:
                self._stop.wait(self.idle_seconds)
        # Stopping: what is already in the stream still goes to the archive, unless stop() gives up waiting.
        while not self._abort.is_set():
            try:
                self.poll_once()
            except Exception:
                return
            if self.caught_up:
                return

    def stop(self, drain_seconds: float = 3.0) -> None:
        """Stop reading: first up to `drain_seconds` to archive what the stream already holds, then for good (an
        invocation under way finishes; a batch still failing is given up)."""
        self._stop.set()
        if self._thread is None:
            return
        self._thread.join(drain_seconds)
        self._abort.set()
        self._thread.join(self.settings.timeout + 5)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str((response.get("Error") or {}).get("Code", ""))
    return ""


def _write_atomically(path: Path, text: str) -> None:
    """Readers (another shell's `wallet report`, wait_for_archive) see the old file or the new one, never half."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def read_progress(archive_dir: Path | str) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = json.loads((Path(archive_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded


def wait_for_archive(
    archive_dir: Path | str, since: float, timeout: float = 30.0, poll: float = 0.05
) -> dict[str, Any]:
    """Wait until the reader has caught up after `since` (a time.time()): every write made before it has then been
    archived, or given up on (progress["failed"] counts those). Returns the progress; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    progress = None
    while True:
        progress = read_progress(archive_dir)
        if progress is not None and progress.get("caught_up_at") and parse_iso(progress["caught_up_at"]) > since:
            return progress
        if time.monotonic() >= deadline:
            raise TimeoutError(f"the archive in {archive_dir} did not catch up within {timeout}s; progress: {progress}")
        time.sleep(poll)


# --- the exporter, as a Lambda instance ----------------------------------------------------------------------------


class ExporterInstance:
    """The stream's function in a process of its own (spawned, so it starts from the stack's environment as a Lambda
    instance starts from the function's configuration), one batch at a time; a crashed instance is replaced."""

    def __init__(self, settings: MappingSettings) -> None:
        self.settings = settings
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_exporter,
            initargs=(self.settings.function, self.settings.handler),
        )

    def __call__(self, event: dict[str, Any]) -> Any:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(_invoke_exporter, event, self.settings.timeout).result()
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            raise

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_exporter: dict[str, Any] = {}


def _start_exporter(function: str, handler: str) -> None:
    from wallet_local.front import import_file

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group; the stack stops us in order
    module = import_file(f"wallet_function_{function}", FUNCTIONS / function / "app.py")
    _exporter["handler"] = getattr(module, handler)
    _exporter["function"] = function


def _invoke_exporter(event: dict[str, Any], timeout: float) -> Any:
    from wallet_local.front import LambdaContext

    context = LambdaContext(_exporter["function"])
    context._deadline = time.monotonic() + timeout  # the function's Timeout, not the API's 10 s
    return _exporter["handler"](event, context)


# --- for the stack ---------------------------------------------------------------------------------------------------


def streams_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    from wallet_local.dynamodb_local import LOCAL_CREDENTIALS

    config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2})
    return boto3.client("dynamodbstreams", endpoint_url=endpoint, config=config, **LOCAL_CREDENTIALS)


@dataclass
class LocalExport:
    reader: StreamReader
    exporter: ExporterInstance

    def stop(self) -> None:
        try:
            self.reader.stop()
        finally:
            self.exporter.shutdown()


def start_local_export(
    dynamodb_client: Any, endpoint: str, table: str, archive_dir: Path, template: Path = TEMPLATE
) -> LocalExport | str:
    """The reader and the exporter for the local table, running; or why not (a sentence for the banner)."""
    settings = mapping_settings(template)
    if settings is None:
        return "template.yaml maps no function to the table's stream"
    if not (FUNCTIONS / settings.function / "app.py").is_file():
        return f"functions/{settings.function}/app.py is missing"
    stream_arn = dynamodb_client.describe_table(TableName=table)["Table"].get("LatestStreamArn")
    if not stream_arn:
        return f"the table {table} has no stream (StreamSpecification in template.yaml)"
    exporter = ExporterInstance(settings)
    reader = StreamReader(streams_client(endpoint), stream_arn, exporter, archive_dir, settings)
    archive_dir.mkdir(parents=True, exist_ok=True)
    return LocalExport(reader.start(), exporter)
