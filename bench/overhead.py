"""Handler overhead: functions/billing/app.py called in-process, DynamoDB answered by botocore's Stubber.

Metrics are enabled (namespace set, as in production) and logs at INFO; stdout (the JSON log line and the EMF blob,
what Lambda ships to CloudWatch) goes to os.devnull so the terminal does not dominate. X-Ray is off. What is timed:
lambda_handler(event, context) per request with perf_counter_ns, and inside it Wallet.handle_do and the repository
calls (botocore's parameter validation and serialisation still run; only the HTTP exchange and the response parsing
are replaced by the Stubber).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.stub import Stubber

from bench.common import (
    HANDLER_ENV_DROP,
    REPO_ROOT,
    LambdaContext,
    api_gateway_event,
    do_body,
    handler_environment,
    percentile,
    slot_tag,
    stub_account_item,
)

PLAYER = "overhead"
TOKEN = f"{PLAYER}.c2Vzc2lvbi1zZWNyZXQtZm9yLXRoZS1iZW5jaG1hcmstMDAwMDAwMDAwMDA"


@contextlib.contextmanager
def _handler_environment() -> Iterator[None]:
    saved = dict(os.environ)
    for key in HANDLER_ENV_DROP:
        os.environ.pop(key, None)
    os.environ.update(handler_environment())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_billing_module(name: str = "bench_billing_app") -> Any:
    from wallet_local.front import import_file

    with _handler_environment():
        return import_file(name, REPO_ROOT / "functions" / "billing" / "app.py")


def _timed(function: Callable[..., Any], samples: list[int]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter_ns()
        try:
            return function(*args, **kwargs)
        finally:
            samples.append(time.perf_counter_ns() - started)

    return wrapper


def measure(requests: int, warmup: int) -> dict[str, Any]:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        module = load_billing_module()
        with _handler_environment():  # the wallet reads its settings from the environment on first use
            wallet = module.lambda_wallet()
        stubber = Stubber(wallet.store.client)
        stubber.activate()
        account = stub_account_item(PLAYER, TOKEN)
        # The BatchGetItem of a new bet: the account found, the trx_id's entry slot empty (left out of the reply).
        read_reply = {"Responses": {wallet.store.table_name: [account]}}
        context = LambdaContext()
        # The split: around handle_do, and around the repository (botocore + stub) inside it.
        inside: list[int] = []
        repo: list[int] = []
        repo_per_request: list[int] = []
        wallet.handle_do = _timed(wallet.handle_do, inside)
        for name in ("get_account", "get_account_and_entry", "record"):
            setattr(wallet.store, name, _timed(getattr(wallet.store, name), repo))

        def run(kind: str, count: int) -> tuple[list[int], list[dict[str, Any]]]:
            events = []
            for i in range(count):
                if kind == "bet":
                    body = do_body(TOKEN, f"ovh-{kind}-{i}-{time.time_ns()}", minus=100, tag=slot_tag(f"r{i}"))
                    stubber.add_response("batch_get_item", read_reply)
                    stubber.add_response("transact_write_items", {})
                else:
                    body = do_body(TOKEN, f"ovh-{kind}-{i}-{time.time_ns()}")
                    stubber.add_response("get_item", {"Item": account})
                events.append(api_gateway_event(body))
            samples = []
            replies = []
            for event in events:
                mark = len(repo)
                started = time.perf_counter_ns()
                reply = module.lambda_handler(event, context)
                samples.append(time.perf_counter_ns() - started)
                replies.append(reply)
                repo_per_request.append(sum(repo[mark:]))
            return samples, replies

        results: dict[str, Any] = {}
        for kind in ("bet", "balance"):
            run(kind, warmup)
            inside.clear()
            repo_per_request.clear()
            samples, replies = run(kind, requests)
            bad = [r for r in replies if r["statusCode"] != 200 or json.loads(r["body"])["status"] != "OK"]
            results[kind] = {
                "requests": requests,
                "bad_replies": len(bad),
                "p50_ms": round(percentile(samples, 0.5), 3),
                "p99_ms": round(percentile(samples, 0.99), 3),
                "handle_do_p50_ms": round(percentile(inside, 0.5), 3),
                "repository_p50_ms": round(percentile(repo_per_request, 0.5), 3),
                "powertools_p50_ms": round(percentile(samples, 0.5) - percentile(inside, 0.5), 3),
            }
        # What one bet writes to stdout (= CloudWatch Logs ingestion): the log line and the EMF metrics blob.
        buffer = io.StringIO()
        handler = module.logger.registered_handler
        previous = handler.setStream(buffer)
        with contextlib.redirect_stdout(buffer):
            stubber.add_response("batch_get_item", read_reply)
            stubber.add_response("transact_write_items", {})
            module.lambda_handler(api_gateway_event(do_body(TOKEN, "size-1", minus=100, tag=slot_tag("r"))), context)
        handler.setStream(previous)
        stubber.deactivate()
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    results["stdout_per_bet"] = {
        "log_bytes": sum(len(line) + 1 for line in lines if '"_aws"' not in line),
        "emf_bytes": sum(len(line) + 1 for line in lines if '"_aws"' in line),
        "lines": len(lines),
    }
    return results


if __name__ == "__main__":
    print(json.dumps(measure(500, 100), indent=2))
