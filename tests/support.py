"""Shared test helpers: signed /do bodies and a Games Server simulator that behaves like the provider's."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any

import requests

from wallet.bootstrap import lambda_allowlist, lambda_archive, lambda_catalogue, lambda_settings, lambda_wallet
from wallet.money.sign import compute_sign
from wallet_local.front import (
    LambdaContext,  # noqa: F401 - re-exported for the tests and the bench
    LocalFront,
    Route,
    billing_event,
    load_function,
)
from wallet_local.process import LocalStackProcess, StackFailed
from wallet_local.stack import OPERATOR_ROUTES

SALT = "test-salt"
SESSION_KEY = "test-session-key"
GAMES_SERVER_IP = "203.0.113.10"  # inside the tests' WALLET_GAMES_SERVER_CIDRS (tests/conftest.py)


@contextmanager
def serving(front: LocalFront) -> Iterator[LocalFront]:
    """`front` answering on its port from a thread for the block; shut down and closed after it."""
    thread = threading.Thread(target=front.serve_forever, name="local-front", daemon=True)
    thread.start()
    try:
        yield front
    finally:
        front.shutdown()  # waits for serve_forever
        front.server_close()


def new_lambda_instance() -> None:
    """Forget what the handlers built on first use (settings, wallet, catalogue): the next request builds them again
    from the environment, as a new Lambda instance would."""
    for factory in (lambda_settings, lambda_allowlist, lambda_wallet, lambda_catalogue, lambda_archive):
        factory.cache_clear()


def operator_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    """The operator API's route for a request and its path parameters, as the front and API Gateway match them (an
    unknown route: one of the path itself, which the function answers 404)."""
    for route in OPERATOR_ROUTES:
        parameters = route.match(method, path)
        if parameters is not None:
            return route, parameters
    return Route(method, path, "operator", signed=True), {}


@contextmanager
def lambda_function(function: str, log_level: str = "INFO") -> Iterator[tuple[ModuleType, io.StringIO]]:
    """functions/<function>/app.py as a Lambda instance for one test: the module is imported once per test process,
    and the autouse `fresh_lambda_wallet` fixture makes each test's first request build the wallet and catalogue
    anew from that test's environment (its moto or DynamoDB Local). Powertools keeps one "wallet" logging.Logger
    whose handlers hold the stdout of the first import: for the test, its lines go to the buffer given back, at
    `log_level`. The instance starts with no pending metrics."""
    module = load_function(function)
    buffer = io.StringIO()
    streams = [(handler, handler.stream) for handler in module.logger.handlers]
    level = module.logger.log_level
    for handler, _ in streams:
        handler.stream = buffer
    module.logger.setLevel(log_level)
    metrics = getattr(module, "metrics", None)
    if metrics is not None:
        # Powertools' Metrics instances share one pending set per process: what an earlier test added and never
        # flushed would be flushed by this test's first invocation, as if this instance had emitted it.
        metrics.clear_metrics()
    try:
        yield module, buffer
    finally:
        module.logger.setLevel(level)
        for handler, stream in streams:
            handler.stream = stream


def do_body(
    session: str,
    trx_id: str,
    minus: int | str | Decimal = 0,
    plus: int | str | Decimal = 0,
    tag: dict[str, Any] | None = None,
    salt: str = SALT,
    sign: str | None = None,
) -> str:
    """A /do body exactly as the Games Server sends it (numbers as JSON numbers, never floats)."""
    body = {
        "method": "do",
        "session": session,
        "minus": "__MINUS__",
        "plus": "__PLUS__",
        "trx_id": trx_id,
        "sign": sign if sign is not None else compute_sign(session, trx_id, salt),
        "tag": tag if tag is not None else {"game": "slot", "game_id": ""},
    }
    text = json.dumps(body, separators=(",", ":"))
    # Amounts are spliced in as raw JSON numbers so a Decimal like 0.1 goes over the wire exactly as written.
    return text.replace('"__MINUS__"', str(minus)).replace('"__PLUS__"', str(plus))


def api_gateway_event(body: str | None, source_ip: str = GAMES_SERVER_IP) -> dict[str, Any]:
    """The HTTP API event (payload 2.0) API Gateway gives the billing Lambda for one POST /do (the local front's)."""
    return billing_event(body, source_ip)


@dataclass
class Call:
    trx_id: str
    reply: dict[str, Any]
    attempts: int
    statuses: list[int] = field(default_factory=list)


class GamesServer:
    """The provider's Games Server as the billing sees it: signs every request, and when a reply does not arrive
    (5xx, timeout, dropped connection) makes up to 10 more attempts with the same trx_id."""

    MAX_RETRIES = 10

    def __init__(self, base_url: str, salt: str = SALT, timeout: float = 10.0, retry_pause: float = 0.05) -> None:
        self.url = base_url.rstrip("/") + "/do"
        self.salt = salt
        self.timeout = timeout
        self.retry_pause = retry_pause
        self.http = requests.Session()

    def call(
        self,
        session: str,
        minus: int | str | Decimal = 0,
        plus: int | str | Decimal = 0,
        tag: dict[str, Any] | None = None,
        trx_id: str | None = None,
        drop_first_reply: bool = False,
    ) -> Call:
        trx_id = trx_id or str(uuid.uuid4())
        body = do_body(session, trx_id, minus, plus, tag, self.salt)
        statuses: list[int] = []
        for attempt in range(1, self.MAX_RETRIES + 2):
            try:
                response = self.http.post(
                    self.url, data=body, headers={"Content-Type": "application/json"}, timeout=self.timeout
                )
            except requests.RequestException:
                statuses.append(0)
                time.sleep(self.retry_pause)
                continue
            statuses.append(response.status_code)
            if response.status_code >= 500:
                time.sleep(self.retry_pause)
                continue
            if drop_first_reply and attempt == 1:
                # The billing processed it, but the reply never reached the Games Server: it sends the same again.
                continue
            return Call(trx_id, response.json(), attempt, statuses)
        raise AssertionError(f"no reply for {trx_id} after {self.MAX_RETRIES + 1} attempts: {statuses}")

    def balance(self, session: str) -> Call:
        return self.call(session, 0, 0, {"game": "slot", "game_id": ""})

    # --- rounds as the provider plays them ---------------------------------------------------------------------

    def slot_round(self, session: str, bet: int, win: int, game_id: str = "a_op") -> tuple[str, list[Call]]:
        """One bet and, if it won, one win with the same game_uuid."""
        game_uuid = str(uuid.uuid4().int % 10**12)
        tag = {
            "game": "slot",
            "game_id": game_id,
            "game_uuid": int(game_uuid),
            "lines": 9,
            "bet": 1,
            "denomination": 100,
        }
        calls = [self.call(session, minus=bet, tag=tag)]
        if calls[0].reply["status"] == "OK" and win > 0:
            calls.append(self.call(session, plus=win, tag=tag))
        return game_uuid, calls

    def egame_round(self, session: str, bet: int, win: int, game_id: str = "turbokeno") -> tuple[str, list[Call]]:
        game_uuid = f"EG-{uuid.uuid4().hex[:12]}"
        tag = {
            "game": "egame",
            "game_id": game_id,
            "game_uuid": game_uuid,
            "bets": [f"[0]:{bet}"],
            "result": [1, 2, 3, 4, 5],
        }
        calls = [self.call(session, minus=bet, tag=tag)]
        if calls[0].reply["status"] == "OK" and win > 0:
            calls.append(self.call(session, plus=win, tag={**tag, "result": [7, 7, 7]}))
        return game_uuid, calls

    def bet_package(
        self, session: str, bets: list[int], cancelled: list[int], wins: list[int] | None, game_id: str = "1009"
    ) -> tuple[str, list[Call]]:
        """A package of bets under one game_uuid; cancel some (refunded through plus); then a win for the rest,
        possibly 0. If every bet was cancelled, no win request follows (as the guide says)."""
        game_uuid = f"BP-{uuid.uuid4().hex[:12]}"
        base = {"game": "bet", "game_id": game_id, "game_uuid": game_uuid, "round": 10000}
        package = {**base, "bets": [f"[{i}]:{amount}" for i, amount in enumerate(bets)]}
        calls = [self.call(session, minus=sum(bets), tag=package)]
        if calls[0].reply["status"] != "OK":
            return game_uuid, calls
        if cancelled:
            refund = sum(bets[i] for i in cancelled)
            calls.append(
                self.call(
                    session, plus=refund, tag={**base, "bets": [f"[{i}]:{bets[i]}" for i in cancelled], "cancel": True}
                )
            )
        if wins is not None and len(cancelled) < len(bets):
            calls.append(self.call(session, plus=sum(wins), tag={**base, "result": wins}))
        return game_uuid, calls


def start_test_stack(log_level: str, start_timeout: float = 90.0, extra_args: Sequence[str] = ()) -> LocalStackProcess:
    """`wallet local` on free ports with the tests' salt and session key (and `extra_args`, more `wallet local`
    options); a failed start fails the test with the stack's output."""
    process = LocalStackProcess(
        {
            "WALLET_SALT": SALT,
            "WALLET_SESSION_KEY": SESSION_KEY,
            "POWERTOOLS_LOG_LEVEL": log_level,
            "POWERTOOLS_METRICS_DISABLED": "true",
        },
        start_timeout=start_timeout,
        extra_args=extra_args,
    )
    try:
        return process.start()
    except StackFailed as exc:
        raise AssertionError(str(exc)) from None
