"""GET /play/{application} (the game page of guide step 2) and GET /lobby, for a player's live session."""

from __future__ import annotations

import secrets
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from wallet.bootstrap import lambda_catalogue, lambda_wallet
from wallet.catalogue.games import CatalogueError, GamesConfig
from wallet.catalogue.page import (
    LANGUAGES,
    PageRequestError,
    parse_page_options,
    render_error,
    render_game_page,
    render_lobby,
)
from wallet.catalogue.s3_store import StoreUnavailable
from wallet.money.ledger import Account

logger = Logger(use_rfc3339=True)  # one timestamp format in every log (functions/billing/app.py)
metrics = Metrics()
tracer = Tracer()
app = APIGatewayRestResolver()

HTML = "text/html; charset=utf-8"


def _headers(nonce: str = "") -> dict[str, str]:
    inline = f" 'nonce-{nonce}'" if nonce else ""
    return {
        # The page carries the player's session: never cached, never sent on as a referrer.
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": f"default-src 'self'; script-src 'self'{inline}; style-src 'self'{inline}; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'",
    }


def _error(status: int, message: str, reason: str) -> Response[str]:
    metrics.add_metric(name="GamePageRefused", unit=MetricUnit.Count, value=1)
    logger.info("game page refused", extra={"reason": reason, "status": status})
    return Response(status_code=status, content_type=HTML, body=render_error(message), headers=_headers())


def _current_catalogue() -> GamesConfig | None:
    try:
        return lambda_catalogue().games.current()  # built on the first request, then kept
    except (StoreUnavailable, CatalogueError) as exc:
        # The page says "try again shortly" either way; the log says why.
        logger.warning("games catalogue unreadable", extra={"reason": str(exc)})
        return None


def _live_account(query: dict[str, str]) -> Account | None:
    token = query.get("session") or ""
    return lambda_wallet().live_account(token) if token else None


@app.get("/play/<application>")
def play(application: str) -> Response[str]:
    query = dict(app.current_event.query_string_parameters or {})
    try:
        options = parse_page_options(application, query)
    except PageRequestError as exc:
        return _error(400, str(exc), "invalid parameters")
    config = _current_catalogue()
    if config is None:
        return _error(503, "The games catalogue is not available yet. Please try again shortly.", "no catalogue")
    if options.application not in config.applications:
        return _error(404, "This game does not exist.", "unknown game")
    account = _live_account(query)
    if account is None:
        return _error(403, "Your game session has expired. Please open the game again from the site.", "session")
    nonce = secrets.token_urlsafe(16)
    settings = lambda_catalogue().settings
    page = render_game_page(options, config, account.currency, settings.path_to_storage, settings.customer_id, nonce)
    metrics.add_metric(name="GamePages", unit=MetricUnit.Count, value=1)
    return Response(status_code=200, content_type=HTML, body=page, headers=_headers(nonce))


@app.get("/lobby")
def lobby() -> Response[str]:
    query = dict(app.current_event.query_string_parameters or {})
    config = _current_catalogue()
    if config is None:
        return _error(503, "The games catalogue is not available yet. Please try again shortly.", "no catalogue")
    account = _live_account(query)
    if account is None:
        return _error(403, "Your game session has expired. Please log in again on the site.", "session")
    language = query.get("language", "en_US")
    if language not in LANGUAGES:
        return _error(400, "invalid parameters: language", "invalid parameters")
    nonce = secrets.token_urlsafe(16)
    page = render_lobby(config, query["session"], lambda_catalogue().settings.path_to_storage, nonce, language)
    return Response(status_code=200, content_type=HTML, body=page, headers=_headers(nonce))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
