"""Scheduled: fetch the provider's games_config, validate it, publish it and the lobby to S3 when they changed, and
invalidate CloudFront for what changed. Any failure keeps the last good copy, counts a metric and fails the run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from wallet.bootstrap import lambda_catalogue
from wallet.catalogue.games import CatalogueError
from wallet.catalogue.s3_store import StoreUnavailable
from wallet.catalogue.sync import sync_games_config

logger = Logger(use_rfc3339=True)  # one timestamp format in every log (functions/billing/app.py)
metrics = Metrics()
tracer = Tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del event, context  # a schedule carries nothing we need
    try:
        catalogue = lambda_catalogue()  # built on the first run, then kept
        result = sync_games_config(catalogue.settings, catalogue.store)
    except (CatalogueError, StoreUnavailable) as exc:
        logger.error("games_config sync failed: the last good copy stays published", extra={"reason": str(exc)})
        metrics.add_metric(name="GamesSyncFailures", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="GamesSyncChangedFiles", unit=MetricUnit.Count, value=len(result.changed))
    summary = {"changed": result.changed, "invalidation": result.invalidation_id, "games": result.games}
    logger.info("games_config synced", extra=summary)
    return summary
