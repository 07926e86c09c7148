"""POST /do: the Games Server's billing call. Parse the event, call the wallet, shape the reply; nothing else."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from wallet.bootstrap import lambda_wallet
from wallet.money.games_server import BillingUnavailable, Event, Outcome

logger = Logger()
metrics = Metrics()
tracer = Tracer()
app = APIGatewayRestResolver()

JSON = "application/json"
# One metric name per event: bets, wins, duplicates, conflicts, sign failures, not enough money...
_METRIC_NAMES = {
    Event.BALANCE: "BalanceRequests",
    Event.BET: "Bets",
    Event.WIN: "Wins",
    Event.BET_AND_WIN: "BetsWithWin",
    Event.ZERO_WIN: "ZeroWins",
    Event.DUPLICATE: "Duplicates",
    Event.NOT_ENOUGH_MONEY: "NotEnoughMoney",
    Event.OVER_LIMIT: "LimitRefusals",
    Event.SESSION_NOT_FOUND: "SessionNotFound",
    Event.INVALID_REQUEST: "InvalidRequests",
    Event.SIGN_FAILURE: "SignFailures",
    Event.UNPARSEABLE: "UnparseableRequests",
}


def _raw_body() -> str | bytes:
    """The body as sent. A base64 body stays bytes (the wallet reads UTF-8/16/32 JSON or refuses it): decoding it to
    str here would turn a non-UTF-8 body into a 500 instead of sign_not_found."""
    event = app.current_event
    body = event.body or ""
    if not event.is_base64_encoded:
        return body
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return b""  # not even base64: nothing to authenticate


@app.post("/do")
def do() -> Response[str]:
    outcome = lambda_wallet().handle_do(_raw_body())  # built on the first request, then kept
    _observe(outcome)
    return Response(status_code=200, content_type=JSON, body=outcome.reply.to_json())


@app.exception_handler(BillingUnavailable)
def billing_unavailable(exc: BillingUnavailable) -> Response[str]:
    # Never one of the four replies: the provider retries with the same trx_id, which is safe.
    logger.set_correlation_id(exc.trx_id)
    logger.warning("billing unavailable", extra={"reason": str(exc), "player": exc.player_id})
    metrics.add_metric(name="Unavailable", unit=MetricUnit.Count, value=1)
    return Response(status_code=503, content_type=JSON, body='{"message":"billing temporarily unavailable"}')


@app.exception_handler(Exception)
def internal_error(exc: Exception) -> Response[str]:
    logger.exception("unexpected error", extra={"error": type(exc).__name__})
    metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
    return Response(status_code=500, content_type=JSON, body='{"message":"internal error"}')


def _observe(outcome: Outcome) -> None:
    if outcome.trx_id:
        logger.set_correlation_id(outcome.trx_id)
    metrics.add_metric(name=_METRIC_NAMES[outcome.event], unit=MetricUnit.Count, value=1)
    if outcome.conflict:
        metrics.add_metric(name="Conflicts", unit=MetricUnit.Count, value=1)
    if outcome.cross_player:
        metrics.add_metric(name="CrossPlayerTrxIds", unit=MetricUnit.Count, value=1)
    if outcome.attempts > 1:
        metrics.add_metric(name="WriteRetries", unit=MetricUnit.Count, value=outcome.attempts - 1)
    # Never the session token, the sign or the salt: ids, amounts and what happened.
    fields = {
        "event": outcome.event.value,
        "status": outcome.reply.status,
        "player": outcome.player_id,
        "minus": str(outcome.minus) if outcome.minus is not None else None,
        "plus": str(outcome.plus) if outcome.plus is not None else None,
        "balance": str(outcome.reply.balance) if outcome.reply.balance is not None else None,
        "game_uuid": outcome.game_uuid,
        "attempts": outcome.attempts,
        "detail": outcome.detail,
    }
    if outcome.conflict:
        logger.warning("trx_id replayed with a different body", extra=fields)
    elif outcome.cross_player:
        logger.warning("trx_id used before by another player: kept as this player's own transaction", extra=fields)
    elif outcome.event is Event.OVER_LIMIT:
        logger.info("bet refused by the player's limit", extra=fields)
    elif outcome.event in (Event.SIGN_FAILURE, Event.UNPARSEABLE, Event.INVALID_REQUEST):
        logger.warning("request refused", extra=fields)
    else:
        logger.info("billing", extra=fields)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
