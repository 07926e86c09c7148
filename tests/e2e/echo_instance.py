"""Preloaded into every local Lambda instance by test_local_front_concurrency (WALLET_LOCAL_PRELOAD): the billing
wallet echoes a number from the body after a pause, so that any sharing of one request's state between concurrent
requests would show."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import wallet.bootstrap
from wallet.money.games_server import Event, Outcome
from wallet.money.protocol import ok


class EchoWallet:
    def handle_do(self, body: str) -> Outcome:
        number = Decimal(json.loads(body)["n"])
        time.sleep(0.002)  # the window in which another request's state could replace this one's
        return Outcome(ok(number, "FUN"), Event.BALANCE)


wallet.bootstrap.build_wallet = lambda *_: EchoWallet()  # type: ignore[assignment,misc]
