"""/operator/*: the API the operator's site and back office call (SigV4, AWS_IAM on API Gateway). Parse and validate
(pydantic, through Powertools), call the wallet, shape the reply; nothing else. docs/OPERATOR_API.md says what each
route does."""

from __future__ import annotations

import json
import warnings
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from wallet.bootstrap import lambda_settings, lambda_wallet
from wallet.catalogue.page import GamePageOptions, PageRequestError, game_page_url, parse_page_options
from wallet.money.ledger import LedgerEntry, json_ready
from wallet.money.limits import parse_limit_changes
from wallet.money.mover import BillingContended, MoveResult, MoveStatus
from wallet.money.operator_moves import OperatorError, Refusal
from wallet.money.sessions import InvalidPlayerId
from wallet.money.store import StoreUnavailable
from wallet.operator.api import (
    APPLICATION,
    PLAYER_ID,
    ErrorView,
    HistoryView,
    Movement,
    MoveView,
    NewPlayer,
    NewSession,
    PlayerChange,
    PlayerView,
    RoundView,
    SessionView,
    parse_json,
    player_view,
)

logger = Logger(use_rfc3339=True)  # one timestamp format in every log (functions/billing/app.py)
metrics = Metrics()
# Most operator requests count nothing (a read, a session): Powertools would warn on each flush without a metric.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
tracer = Tracer()
app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=parse_json)

JSON = "application/json"
STATUS_OF = {
    Refusal.INVALID: 400,
    Refusal.NOT_FOUND: 404,
    Refusal.EXISTS: 409,
    Refusal.CONFLICT: 409,
    Refusal.NOT_ENOUGH_MONEY: 409,
    Refusal.OVER_LIMIT: 409,
    Refusal.NOT_ALLOWED: 409,
}
PlayerId = Annotated[str, Path(pattern=PLAYER_ID)]


def _reply(status: int, body: Any) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps(json_ready(body)))


def _error(status: int, code: str, message: str, **extra: Any) -> Response[str]:
    return _reply(status, {"error": {"code": code, "message": message, **extra}})


def _responses(ok: int, model: type | None, *errors: int, replay: bool = False) -> dict[int, dict[str, Any]]:
    """What a route answers, for the OpenAPI description: its success (and a replay's 200), and its refusals."""
    described: dict[int, dict[str, Any]] = {
        ok: {"description": "done", "content": {JSON: {"model": model}} if model is not None else {}}
    }
    if replay:
        described[200] = {"description": "a replay of the same ref and body", "content": {JSON: {"model": model}}}
    for status in (400, 403, *errors):
        described[status] = {"description": "refused", "content": {JSON: {"model": ErrorView}}}
    return described


def _caller() -> str:
    """Who called, for the ledger: the IAM principal API Gateway authenticated (SigV4)."""
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "operator-api"


def _move_reply(result: MoveResult) -> Response[str]:
    assert result.account is not None and result.entry is not None
    body = {"balance": result.account.balance, "currency": result.account.currency, "entry": result.entry.as_json()}
    # A replay of the same ref and body: the same entry, 200 instead of 201.
    return _reply(201 if result.status is MoveStatus.APPLIED else 200, body)


def _entries(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    return [entry.as_json() for entry in entries]


@app.post("/operator/players", responses=_responses(201, PlayerView, 409))
def create_player(player: Annotated[NewPlayer, Body()]) -> Response[str]:
    wallet = lambda_wallet()
    account = wallet.create_player(player.player_id, player.currency, player.balance)
    return _reply(201, player_view(account, wallet.clock()))


@app.get("/operator/players/<player_id>", responses=_responses(200, PlayerView, 404))
def get_player(player_id: PlayerId) -> Response[str]:
    wallet = lambda_wallet()
    return _reply(200, player_view(wallet.account(player_id), wallet.clock()))


@app.patch("/operator/players/<player_id>", responses=_responses(200, PlayerView, 404, 409))
def change_player(player_id: PlayerId, change: Annotated[PlayerChange, Body()]) -> Response[str]:
    wallet = lambda_wallet()
    if change.status is None and change.limits is None:
        raise OperatorError("status or limits: nothing to change")
    if change.limits is not None:
        try:
            changes = parse_limit_changes({kind.value: periods for kind, periods in change.limits.items()})
        except ValueError as exc:
            raise OperatorError(str(exc)) from None
        result = wallet.set_limits(player_id, changes, by=_caller(), ref=change.ref)
        metrics.add_metric(name="LimitChanges", unit=MetricUnit.Count, value=1)
    if change.status is not None:
        reason = change.reason or "set through the operator API"
        result = wallet.set_status(player_id, change.status, reason, by=_caller(), ref=change.ref)
    # The account as the last change left it (or, for a replay, as it is now): no second read.
    assert result.account is not None
    return _reply(200, player_view(result.account, wallet.clock()))


@app.post("/operator/players/<player_id>/sessions", responses=_responses(201, SessionView, 404, 409))
def open_session(player_id: PlayerId, options: Annotated[NewSession, Body()]) -> Response[str]:
    # The game page's options are checked before the session is issued: a new session replaces the live one, and a
    # refusal after it would leave the site with neither.
    page = _page_options(options) if options.application is not None else None
    issued = lambda_wallet().new_session(player_id)
    body: dict[str, Any] = {"player_id": player_id, "session": issued.token, "expires_at": issued.expires_at}
    if page is not None:
        site = lambda_settings().site_url
        assert site is not None  # checked by _page_options
        body["play_url"] = game_page_url(site, page.model_copy(update={"session": issued.token}))
    return _reply(201, body)


def _page_options(options: NewSession) -> GamePageOptions:
    if lambda_settings().site_url is None:
        raise OperatorError("application: no site is configured for game pages (WALLET_SITE_URL)")
    asked = options.model_dump(exclude_none=True, exclude={"application"})
    try:
        # The same check GET /play/{application} makes, so a play_url is always one the page accepts.
        return parse_page_options(str(options.application), {**asked, "session": "to-be-issued"})
    except PageRequestError as exc:
        raise OperatorError(str(exc)) from None


@app.delete("/operator/players/<player_id>/sessions", responses=_responses(204, None, 404))
def revoke_session(player_id: PlayerId) -> Response[str]:
    lambda_wallet().revoke_session(player_id)
    return Response(status_code=204, body="")


@app.post("/operator/players/<player_id>/deposits", responses=_responses(201, MoveView, 404, 409, replay=True))
def deposit(player_id: PlayerId, movement: Annotated[Movement, Body()]) -> Response[str]:
    return _move_reply(lambda_wallet().deposit(player_id, movement.amount, movement.ref))


@app.post("/operator/players/<player_id>/withdrawals", responses=_responses(201, MoveView, 404, 409, replay=True))
def withdraw(player_id: PlayerId, movement: Annotated[Movement, Body()]) -> Response[str]:
    return _move_reply(lambda_wallet().withdraw(player_id, movement.amount, movement.ref))


@app.get("/operator/players/<player_id>/history", responses=_responses(200, HistoryView, 404))
def history(
    player_id: PlayerId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    entries, next_cursor = lambda_wallet().history_page(player_id, limit, cursor)
    return _reply(200, {"entries": _entries(entries), "next_cursor": next_cursor})


@app.get("/operator/rounds/<game_uuid>", responses=_responses(200, RoundView))
def round_entries(game_uuid: Annotated[str, Path(min_length=1, max_length=128)]) -> Response[str]:
    return _reply(200, {"entries": _entries(lambda_wallet().round(game_uuid))})


def openapi_document() -> str:
    """The API's OpenAPI description, generated from the routes and their models."""
    schema = json.loads(app.get_openapi_json_schema(title="Wallet operator API", version="1"))
    # Powertools lists its own 422 for validation errors; this API answers those 400 {"error": ...} (documented).
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    return json.dumps(schema)


@app.get("/operator/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=JSON, body=openapi_document())


# --- errors: {"error": {"code", "message"}} ----------------------------------------------------------------------


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[str]:
    fields = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        fields.append(f"{'.'.join(location) or 'body'}: {error.get('msg', 'invalid')}")
    return _error(400, "invalid_request", "; ".join(fields) or "invalid request")


@app.exception_handler(OperatorError)
def refused(exc: OperatorError) -> Response[str]:
    if exc.refusal is Refusal.OVER_LIMIT:
        metrics.add_metric(name="DepositLimitRefusals", unit=MetricUnit.Count, value=1)
    extra = {"balance": exc.balance} if exc.balance is not None else {}
    return _error(STATUS_OF[exc.refusal], exc.refusal.value, str(exc), **extra)


@app.exception_handler(UnicodeDecodeError)
def not_text(_: UnicodeDecodeError) -> Response[str]:
    return _error(400, "invalid_request", "body: not UTF-8 text")


@app.exception_handler(InvalidPlayerId)
def invalid_player(exc: InvalidPlayerId) -> Response[str]:
    return _error(400, "invalid_request", f"player_id: {exc}")


@app.exception_handler(BillingContended)
def contended(exc: BillingContended) -> Response[str]:
    logger.warning("account busy", extra={"reason": str(exc)})
    return _error(503, "busy", "the player's account is busy: nothing changed, try again")


@app.exception_handler(StoreUnavailable)
def unavailable(exc: StoreUnavailable) -> Response[str]:
    logger.warning("store unavailable", extra={"reason": str(exc)})
    metrics.add_metric(name="OperatorUnavailable", unit=MetricUnit.Count, value=1)
    return _error(503, "unavailable", "the wallet is unavailable: nothing changed, try again")


@app.not_found
def no_route(_: Exception) -> Response[str]:
    return _error(404, "not_found", "no such route")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


__all__ = ["APPLICATION", "lambda_handler"]
