"""The wallet table's DynamoDB stream (NEW_IMAGE): every new ledger entry and account change to the archive, as
Parquet by day (wallet.operator.archive). A record that cannot be decoded is reported alone (batchItemFailures); the
others are archived. A failed write fails the whole batch, which is retried: the object keys are deterministic and
the SQL dedupes rows archived twice."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wallet.bootstrap import lambda_archive
from wallet.operator.archive import (
    ACCOUNTS,
    ENTRIES,
    ArchiveRow,
    ArchiveWriteError,
    PoisonRecord,
    archive_rows,
    decode_record,
)

logger = Logger(use_rfc3339=True)  # one timestamp format in every log (functions/billing/app.py)
metrics = Metrics()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sink = lambda_archive()  # built on the first batch, then kept; a bad configuration fails here, before any record
    rows: list[ArchiveRow] = []

    def decode(record: DynamoDBRecord) -> None:
        try:
            row = decode_record(record.raw_event)
        except PoisonRecord as exc:
            # The image is not logged: an account item holds its session hash.
            logger.error("poison stream record", extra={"reason": exc.reason, "event_id": exc.event_id})
            raise
        if row is not None:
            rows.append(row)

    # Made per batch: the processor keeps the batch's records and failures between calls.
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
    response = process_partial_response(event=event, record_handler=decode, processor=processor, context=context)
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=failures)
    try:
        written = archive_rows(rows, sink)
    except ArchiveWriteError as exc:
        logger.error("archive write failed: the whole batch is retried", extra={"reason": str(exc)})
        metrics.add_metric(name="ArchiveWriteFailures", unit=MetricUnit.Count, value=1)
        raise
    entries = sum(o.rows for o in written if o.table == ENTRIES)
    accounts = sum(o.rows for o in written if o.table == ACCOUNTS)
    metrics.add_metric(name="ArchivedEntries", unit=MetricUnit.Count, value=entries)
    metrics.add_metric(name="ArchivedAccountChanges", unit=MetricUnit.Count, value=accounts)
    logger.info(
        "stream batch archived",
        extra={
            "records": len(event.get("Records", [])),
            "entries": entries,
            "account_changes": accounts,
            "poison": failures,
            "objects": [o.key for o in written],
        },
    )
    return dict(response)


handler = lambda_handler  # the name the local stream reader calls
