"""The billing Lambda (functions/billing/app.py) driven with API Gateway events, on moto."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from tests.support import SALT, SESSION_KEY, LambdaContext, api_gateway_event, do_body, lambda_function
from wallet.bootstrap import lambda_allowlist, lambda_settings, lambda_wallet
from wallet.money.store import StaleAccount

APP = Path(__file__).resolve().parents[2] / "functions" / "billing" / "app.py"
FOUR = {"OK", "not_enough_money", "session_not_found", "sign_not_found"}
SLOT = {"game": "slot", "game_id": "a_op"}


class Billing:
    def __init__(
        self, module: ModuleType, session: str, log_buffer: io.StringIO, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.module = module
        self.session = session
        self.log_buffer = log_buffer
        self.capsys = capsys

    def output(self) -> str:
        """Everything the handler wrote since the last call: log lines and EMF metrics."""
        logged = self.log_buffer.getvalue()
        self.log_buffer.seek(0)
        self.log_buffer.truncate()
        return logged + self.capsys.readouterr().out

    @property
    def wallet(self) -> Any:
        return lambda_wallet()

    def call(self, body: str | None, **event: Any) -> dict[str, Any]:
        request = api_gateway_event(body)
        request.update(event)
        response: dict[str, Any] = self.module.lambda_handler(request, LambdaContext())
        return response

    def do(self, trx_id: str, minus: Any = 0, plus: Any = 0, tag: Any = None, **kwargs: Any) -> dict[str, Any]:
        return self.call(do_body(self.session, trx_id, minus, plus, tag if tag is not None else SLOT, **kwargs))

    def balance(self) -> Decimal:
        return Decimal(self.wallet.account("p1").balance)


@pytest.fixture
def billing(
    moto_client: Any, boto_session: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Billing]:
    """The billing function's module (imported once per process), its wallet built inside this test's moto, with p1
    holding 1000 FUN."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto_session)  # its boto3.client() then skips reloading models
    monkeypatch.setenv("WALLET_TABLE", "wallet-test")
    monkeypatch.setenv("WALLET_SALT", SALT)
    monkeypatch.setenv("WALLET_SESSION_KEY", SESSION_KEY)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    # Metrics print to sys.stdout, which capsys holds; the logger's lines go to log_buffer.
    with lambda_function("billing") as (module, log_buffer):
        lambda_wallet().create_player("p1", "FUN", Decimal(1000))
        session = lambda_wallet().new_session("p1").token
        capsys.readouterr()
        yield Billing(module, session, log_buffer, capsys)


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def metric_names(out: str) -> set[str]:
    names: set[str] = set()
    for line in lines(out):
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "Wallet"
            names.update(metric["Name"] for metric in directive["Metrics"])
    return names


def logs(out: str) -> list[dict[str, Any]]:
    return [line for line in lines(out) if "_aws" not in line]


# --- the four replies over HTTP -----------------------------------------------------------------------------------


def assert_reply(response: dict[str, Any], body: str) -> None:
    assert response["statusCode"] == 200
    assert response["body"] == body
    headers = {**response.get("headers", {}), **{k: v[-1] for k, v in response.get("multiValueHeaders", {}).items()}}
    assert headers["Content-Type"] == "application/json"


def test_ok(billing: Billing) -> None:
    assert_reply(
        billing.do("t-1", 0, 0, {"game": "slot", "game_id": ""}), '{"status":"OK","balance":1000,"currency":"FUN"}'
    )
    assert_reply(billing.do("t-2", 100, 0), '{"status":"OK","balance":900,"currency":"FUN"}')
    assert_reply(billing.do("t-3", 0, Decimal("0.5")), '{"status":"OK","balance":900.5,"currency":"FUN"}')


def test_not_enough_money(billing: Billing) -> None:
    assert_reply(billing.do("t-1", 1001, 0), '{"status":"not_enough_money","balance":1000,"currency":"FUN"}')
    assert billing.balance() == 1000


def test_session_not_found(billing: Billing) -> None:
    billing.session = "p1.unknown"
    assert_reply(billing.do("t-1", 1, 0), '{"status":"session_not_found"}')


def test_sign_not_found(billing: Billing) -> None:
    assert_reply(billing.do("t-1", 1, 0, salt="wrong-salt"), '{"status":"sign_not_found"}')
    assert_reply(billing.call("not json"), '{"status":"sign_not_found"}')
    assert_reply(billing.call(None), '{"status":"sign_not_found"}')
    assert billing.balance() == 1000


def test_base64_encoded_body(billing: Billing) -> None:
    body = do_body(billing.session, "b64", 10, 0, SLOT)
    response = billing.call(base64.b64encode(body.encode()).decode(), isBase64Encoded=True)
    assert_reply(response, '{"status":"OK","balance":990,"currency":"FUN"}')


def test_replay_over_http(billing: Billing) -> None:
    billing.do("t-1", 100, 0)
    billing.do("t-2", 0, 7)
    assert_reply(billing.do("t-1", 100, 0), '{"status":"OK","balance":907,"currency":"FUN"}')
    assert billing.balance() == 907


# --- only the Games Server: the source allowlist (an HTTP API has no resource policy) ------------------------------


def _from(billing: Billing, source_ip: str, trx_id: str = "t-stranger") -> dict[str, Any]:
    body = do_body(billing.session, trx_id, 100, 0, SLOT)  # a valid, signed bet: only the source is wrong
    response: dict[str, Any] = billing.module.lambda_handler(api_gateway_event(body, source_ip), LambdaContext())
    return response


@pytest.mark.parametrize("source_ip", ["198.51.100.9", "203.0.114.10", "2001:db8::1", "", "not-an-address"])
def test_a_source_outside_the_allowlist_is_refused_and_moves_nothing(
    billing: Billing, capsys: pytest.CaptureFixture[str], source_ip: str
) -> None:
    billing.output()
    response = _from(billing, source_ip)
    assert (response["statusCode"], json.loads(response["body"])) == (403, {"message": "Forbidden"})
    assert billing.balance() == 1000
    out = billing.output()
    assert "ForbiddenSources" in metric_names(out)
    [refused] = [line for line in logs(out) if line["message"] == "source refused"]
    assert refused["source_ip"] == source_ip and refused["reason"] == "not in GamesServerCidrs"
    # The same bet from the Games Server lands: the refusal left no trace of the trx_id.
    assert_reply(_from(billing, "203.0.113.10"), '{"status":"OK","balance":900,"currency":"FUN"}')


def test_an_ipv4_mapped_ipv6_source_is_its_ipv4_address(billing: Billing) -> None:
    assert_reply(_from(billing, "::ffff:203.0.113.10"), '{"status":"OK","balance":900,"currency":"FUN"}')
    assert _from(billing, "::ffff:198.51.100.9", "t-2")["statusCode"] == 403


def test_an_empty_allowlist_admits_nobody(
    billing: Billing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WALLET_GAMES_SERVER_CIDRS", "")
    new_settings()
    billing.output()
    assert _from(billing, "203.0.113.10")["statusCode"] == 403
    assert billing.balance() == 1000
    [refused] = [line for line in logs(billing.output()) if line["message"] == "source refused"]
    assert refused["reason"] == "GamesServerCidrs is empty: nobody is admitted"


def test_a_malformed_allowlist_is_a_500_that_names_the_entry(
    billing: Billing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WALLET_GAMES_SERVER_CIDRS", "203.0.113.0/24, 203.0.113.300/32")
    new_settings()
    billing.output()
    assert_unavailable(_from(billing, "203.0.113.10"), 500)
    assert billing.balance() == 1000
    out = billing.output()
    assert "InternalErrors" in metric_names(out) and "203.0.113.300/32" in out


def test_another_route_is_not_found(billing: Billing) -> None:
    response = billing.call(do_body(billing.session, "t-get", 100, 0, SLOT), routeKey="GET /do")
    assert (response["statusCode"], json.loads(response["body"])) == (404, {"message": "Not Found"})
    assert billing.balance() == 1000


def new_settings() -> None:
    """The function's next request reads its settings again (as a new instance would), keeping the test's wallet."""
    lambda_settings.cache_clear()
    lambda_allowlist.cache_clear()


# --- our own failures: 5xx, never one of the four -----------------------------------------------------------------


class FailingClient:
    """The real (moto) client, except that the named operations raise `error` (after doing the call if `after`)."""

    def __init__(self, real: Any, error: Exception, operations: set[str] | None = None, after: bool = False) -> None:
        self.real = real
        self.error = error
        self.operations = operations
        self.after = after

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if self.operations is not None and name not in self.operations:
            return method

        def failing(*args: Any, **kwargs: Any) -> Any:
            if self.after:
                method(*args, **kwargs)
            raise self.error

        return failing


def client_error(code: str, operation: str = "TransactWriteItems") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, operation)  # type: ignore[typeddict-item]


FAILURES = [
    client_error("ThrottlingException"),
    client_error("ProvisionedThroughputExceededException"),
    client_error("InternalServerError"),
    ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
]


def assert_unavailable(response: dict[str, Any], status: int = 503) -> None:
    assert response["statusCode"] == status
    body = json.loads(response["body"])
    assert body.get("status") not in FOUR
    assert "balance" not in body


def _failure_id(error: Exception) -> str:
    return error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__


@pytest.mark.parametrize("error", FAILURES, ids=_failure_id)
@pytest.mark.parametrize("operations", [None, {"transact_write_items"}], ids=["every-call", "the-write"])
def test_database_failure_is_503(
    billing: Billing,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    operations: set[str] | None,
) -> None:
    real = billing.wallet.store.client
    monkeypatch.setattr(billing.wallet.store, "client", FailingClient(real, error, operations))
    assert_unavailable(billing.do("t-fail", 100, 0))
    if operations is None:
        assert_unavailable(billing.do("t-balance", 0, 0, {}))
    out = billing.output()
    assert "Unavailable" in metric_names(out)
    monkeypatch.setattr(billing.wallet.store, "client", real)
    assert billing.balance() == 1000
    assert billing.wallet.history("p1")[0].kind == "opening"


def test_throttled_transaction_cancellation_is_503(billing: Billing, monkeypatch: pytest.MonkeyPatch) -> None:
    real = billing.wallet.store.client
    error = ClientError(
        {  # type: ignore[typeddict-item]
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "None"}, {"Code": "ThrottlingError"}],
        },
        "TransactWriteItems",
    )
    monkeypatch.setattr(billing.wallet.store, "client", FailingClient(real, error, {"transact_write_items"}))
    assert_unavailable(billing.do("t-fail", 100, 0))
    monkeypatch.setattr(billing.wallet.store, "client", real)
    assert billing.balance() == 1000


def test_timeout_after_the_write_then_the_retry_gets_ok(billing: Billing, monkeypatch: pytest.MonkeyPatch) -> None:
    """The write landed but its answer was lost: 503, and the provider's retry with the same trx_id gets OK once."""
    real = billing.wallet.store.client
    timeout = ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")
    monkeypatch.setattr(
        billing.wallet.store, "client", FailingClient(real, timeout, {"transact_write_items"}, after=True)
    )
    assert_unavailable(billing.do("t-lost", 100, 0))
    monkeypatch.setattr(billing.wallet.store, "client", real)
    assert_reply(billing.do("t-lost", 100, 0), '{"status":"OK","balance":900,"currency":"FUN"}')
    assert billing.balance() == 900
    assert len(billing.wallet.history("p1")) == 2


def test_contention_is_503(billing: Billing, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(billing.wallet.store, "record", lambda _entry, _expected, _status=None, **_: StaleAccount(None))
    monkeypatch.setattr(billing.wallet, "sleep", lambda _: None)
    assert_unavailable(billing.do("t-race", 100, 0))
    monkeypatch.undo()
    assert billing.balance() == 1000


def test_unexpected_exception_is_500(
    billing: Billing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = billing.wallet.store.client
    monkeypatch.setattr(billing.wallet.store, "client", FailingClient(real, RuntimeError("boom")))
    response = billing.do("t-boom", 100, 0)
    assert_unavailable(response, status=500)
    assert "InternalErrors" in metric_names(billing.output())


# --- logs and metrics ---------------------------------------------------------------------------------------------


def assert_no_secrets(out: str, *secrets: str) -> None:
    assert out  # something was logged
    for secret in (SALT, SESSION_KEY, *secrets):
        assert secret not in out


def test_logs_carry_the_trx_id_and_no_secrets(billing: Billing, capsys: pytest.CaptureFixture[str]) -> None:
    body = do_body(billing.session, "trx-log-1", 100, 0, SLOT)
    sign = json.loads(body)["sign"]
    billing.call(body)
    out = billing.output()
    [line] = [line for line in logs(out) if line["message"] == "billing"]
    assert line["correlation_id"] == "trx-log-1"
    assert (line["event"], line["status"], line["player"], line["minus"], line["balance"]) == (
        "bet",
        "OK",
        "p1",
        "100",
        "900",
    )
    assert_no_secrets(out, billing.session, billing.session.partition(".")[2], sign)


@pytest.mark.parametrize(
    "case",
    ["bad-sign", "bad-amount", "unknown-session", "bad-envelope", "bad-method", "conflict", "not-enough"],
)
def test_refused_requests_log_no_secrets(billing: Billing, capsys: pytest.CaptureFixture[str], case: str) -> None:
    session = billing.session
    if case == "bad-sign":
        body = do_body(session, "trx-r", 100, 0, SLOT, sign="0" * 32)
    elif case == "bad-amount":
        body = do_body(session, "trx-r", '"abc"', 0, SLOT)
    elif case == "unknown-session":
        session = "p1.SomeOtherSecretValue12345"
        body = do_body(session, "trx-r", 100, 0, SLOT)
    elif case == "bad-envelope":
        body = json.dumps({"method": "do", "session": session, "trx_id": True, "sign": "feedface" * 4})
    elif case == "bad-method":
        body = json.dumps({**json.loads(do_body(session, "trx-r", 1, 0)), "method": "undo"})
    elif case == "conflict":
        billing.do("trx-r", 1, 0)
        body = do_body(session, "trx-r", 2, 0, SLOT)
    else:
        body = do_body(session, "trx-r", 10**6, 0, SLOT)
    sign = json.loads(body)["sign"]
    response = billing.call(body)
    assert response["statusCode"] == 200
    out = billing.output()
    assert logs(out)
    assert_no_secrets(out, session, session.partition(".")[2], sign)
    if case not in ("bad-envelope", "bad-method"):
        assert all(line.get("correlation_id") == "trx-r" for line in logs(out))


def test_5xx_logs_no_secrets(
    billing: Billing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = billing.wallet.store.client
    monkeypatch.setattr(billing.wallet.store, "client", FailingClient(real, RuntimeError("boom")))
    body = do_body(billing.session, "trx-5xx", 100, 0, SLOT)
    billing.call(body)
    out = billing.output()
    assert_no_secrets(out, billing.session, billing.session.partition(".")[2], json.loads(body)["sign"])


def test_5xx_log_carries_the_trx_id(
    billing: Billing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = billing.wallet.store.client
    monkeypatch.setattr(billing.wallet.store, "client", FailingClient(real, client_error("ThrottlingException")))
    assert billing.do("trx-503", 100, 0)["statusCode"] == 503
    [line] = [line for line in logs(billing.output()) if line["message"] == "billing unavailable"]
    assert line.get("correlation_id") == "trx-503"


def test_metrics(billing: Billing, capsys: pytest.CaptureFixture[str]) -> None:
    def names(*args: Any, **kwargs: Any) -> set[str]:
        billing.output()
        billing.do(*args, **kwargs)
        return metric_names(billing.output())

    assert "Bets" in names("m-1", 100, 0)
    assert "Wins" in names("m-2", 0, 5)
    assert "BalanceRequests" in names("m-3", 0, 0, {})
    assert "ZeroWins" in names("m-4", 0, 0, {"game_uuid": "R"})
    assert "BetsWithWin" in names("m-5", 1, 2)
    replay = names("m-1", 100, 0)
    assert "Duplicates" in replay
    assert "Conflicts" not in replay
    conflict = names("m-1", 55, 0)
    assert {"Duplicates", "Conflicts"} <= conflict
    assert "SignFailures" in names("m-6", 1, 0, salt="nope")
    assert "NotEnoughMoney" in names("m-7", 10**6, 0)
    assert "InvalidRequests" in names("m-8", -1, 0)
    billing.output()
    billing.call("{")
    assert "UnparseableRequests" in metric_names(billing.output())
    billing.session = "p1.gone"
    assert "SessionNotFound" in names("m-9", 1, 0)


def test_cross_player_trx_id_is_counted_and_logged(billing: Billing, capsys: pytest.CaptureFixture[str]) -> None:
    billing.do("shared-1", 100, 0)
    billing.wallet.create_player("p2", "FUN", Decimal(300))
    billing.session = billing.wallet.new_session("p2").token
    billing.output()
    assert_reply(billing.do("shared-1", 100, 0), '{"status":"OK","balance":200,"currency":"FUN"}')
    out = billing.output()
    assert "CrossPlayerTrxIds" in metric_names(out)
    [line] = [line for line in logs(out) if line["message"].startswith("trx_id used before by another player")]
    assert (line["player"], line["event"], line["level"]) == ("p2", "bet", "WARNING")
    billing.do("own-1", 1, 0)
    assert "CrossPlayerTrxIds" not in metric_names(billing.output())


def test_write_retries_metric(
    billing: Billing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = billing.wallet.store.record
    calls = [0]

    def stale_once(entry: Any, expected: Any, new_status: Any = None, **guards: Any) -> Any:
        calls[0] += 1
        return StaleAccount(None) if calls[0] == 1 else real(entry, expected, new_status, **guards)

    monkeypatch.setattr(billing.wallet.store, "record", stale_once)
    monkeypatch.setattr(billing.wallet, "sleep", lambda _: None)
    assert_reply(billing.do("retry", 100, 0), '{"status":"OK","balance":900,"currency":"FUN"}')
    out = billing.output()
    emf = [line for line in lines(out) if "WriteRetries" in line]
    assert emf and emf[0]["WriteRetries"] in (1, 1.0, [1.0])
