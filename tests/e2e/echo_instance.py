"""Preloaded into every local Lambda instance by test_local_front_concurrency (WALLET_LOCAL_PRELOAD): the billing
wallet echoes a number from the body, and the resolver pauses between storing the event and reading it, so that any
sharing of the current event between concurrent requests would show."""

from __future__ import annotations

import json
import time
from decimal import Decimal

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

import wallet.bootstrap
from wallet.money.games_server import Event, Outcome
from wallet.money.protocol import ok


class EchoWallet:
    def handle_do(self, body: str) -> Outcome:
        return Outcome(ok(Decimal(json.loads(body)["n"]), "FUN"), Event.BALANCE)


wallet.bootstrap.build_wallet = lambda *_: EchoWallet()  # type: ignore[assignment,misc]
_resolve = ApiGatewayResolver._resolve


def _slow_resolve(self: ApiGatewayResolver) -> object:
    time.sleep(0.002)
    return _resolve(self)


ApiGatewayResolver._resolve = _slow_resolve  # type: ignore[method-assign,assignment]
