"""POST /do: the Games Server's billing call. Check the source, parse the event, call the wallet, shape the reply.

The event is an HTTP API's (payload format 2.0) for its one route. No Powertools event handler: one route needs no
router, and its import is tens of milliseconds of every cold start (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from wallet.bootstrap import lambda_allowlist, lambda_wallet
from wallet.money.games_server import BillingUnavailable, Event, Outcome

# RFC 3339 timestamps: Lambda's JSON log format reads each line's level only beside a timestamp it can parse
# (template.yaml, BillingSystemLogs); otherwise it files the line as INFO and adds a timestamp of its own.
logger = Logger(use_rfc3339=True)
metrics = Metrics()
tracer = Tracer()

ROUTE = "POST /do"
JSON = {"Content-Type": "application/json"}
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


def _reply(status: int, body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": JSON, "body": body, "isBase64Encoded": False}


def _raw_body(event: dict[str, Any]) -> str | bytes:
    """The body as sent. A base64 body stays bytes (the wallet reads UTF-8/16/32 JSON or refuses it): decoding it to
    str here would turn a non-UTF-8 body into a 500 instead of sign_not_found."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return b""  # not even base64: nothing to authenticate


def _source_ip(event: dict[str, Any]) -> str | None:
    # Set by API Gateway from the connection, not from any header (X-Forwarded-For is the client's to write).
    source = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
    return source if isinstance(source, str) else None


def do(event: dict[str, Any]) -> dict[str, Any]:
    source = _source_ip(event)
    allowlist = lambda_allowlist()
    if not allowlist.admits(source):
        # The answer API Gateway's resource policy gave on the REST API: nothing read, nothing moved.
        metrics.add_metric(name="ForbiddenSources", unit=MetricUnit.Count, value=1)
        reason = "not in GamesServerCidrs" if allowlist.networks else "GamesServerCidrs is empty: nobody is admitted"
        logger.warning("source refused", extra={"source_ip": source, "reason": reason})
        return _reply(403, '{"message":"Forbidden"}')
    if event.get("routeKey") != ROUTE:  # the API routes only POST /do here; anything else is a wiring mistake
        return _reply(404, '{"message":"Not Found"}')
    outcome = lambda_wallet().handle_do(_raw_body(event))  # built on the first request, then kept
    _observe(outcome)
    return _reply(200, outcome.reply.to_json())


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
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001 - Lambda's
    try:
        return do(event)
    except BillingUnavailable as exc:
        # Never one of the four replies: the provider retries with the same trx_id, which is safe.
        logger.set_correlation_id(exc.trx_id)
        logger.warning("billing unavailable", extra={"reason": str(exc), "player": exc.player_id})
        metrics.add_metric(name="Unavailable", unit=MetricUnit.Count, value=1)
        return _reply(503, '{"message":"billing temporarily unavailable"}')
    except Exception as exc:
        logger.exception("unexpected error", extra={"error": type(exc).__name__})
        metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
        return _reply(500, '{"message":"internal error"}')
