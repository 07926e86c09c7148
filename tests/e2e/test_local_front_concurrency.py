"""The local front serves concurrent requests from threads; each must be handled with its own body.

A Lambda instance handles one event at a time, and the handlers rely on it: Powertools keeps per-request state in
module-level objects (the logger's correlation id and keys, the pending metrics; the REST handlers' resolver keeps
the current event in a class attribute). The local front therefore keeps a pool of handler instances, one event at a
time each, as Lambda does; this test shows no request is answered with another one's body. Run in a subprocess (its
own interpreter, its own environment) with a wallet that echoes a number from the body after a 2 ms pause, so that
a shared instance would show every time instead of once in a few thousand requests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PROBE = r"""
import json
from concurrent.futures import ThreadPoolExecutor
import threading

import requests

from wallet_local.front import LocalFront
from wallet_local.stack import ROUTES

front = LocalFront(("127.0.0.1", 0), [route for route in ROUTES if route.function == "billing"], max_instances=4)
threading.Thread(target=front.serve_forever, daemon=True).start()


def client(k):
    wrong = 0
    with requests.Session() as http:
        for i in range(25):
            n = k * 1000 + i
            reply = http.post(front.url + "/do", data=json.dumps({"n": n}), timeout=30)
            wrong += reply.status_code != 200 or reply.json().get("balance") != n
    return wrong


with ThreadPoolExecutor(8) as pool:
    wrong = sum(pool.map(client, range(1, 9)))
front.shutdown()
front.server_close()
print(json.dumps({"wrong": wrong, "requests": 8 * 25}))
"""


def test_concurrent_requests_each_get_their_own_body() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("WALLET_", "AWS_ENDPOINT"))}
    env.update(
        WALLET_TABLE="wallet-probe",
        WALLET_SALT="probe-salt",
        WALLET_SESSION_KEY="probe-key",
        WALLET_GAMES_SERVER_CIDRS="127.0.0.1/32",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="CRITICAL",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="Wallet",
        POWERTOOLS_SERVICE_NAME="wallet",
        POWERTOOLS_TRACE_DISABLED="true",
        WALLET_LOCAL_PRELOAD="tests.e2e.echo_instance",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"wrong": 0, "requests": 200}
