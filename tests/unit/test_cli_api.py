"""The operator CLI over the operator API (wallet.operator.remote.ApiWallet): every command prints the same JSON as
the direct path, with the operator Lambda in-process on moto; refusals map back to the wallet's own errors; history
pages with the cursor; `wallet player limits` parses its options; `wallet api` builds a curl line that carries the
signature."""

from __future__ import annotations

import io
import json
import re
import shlex
import urllib.error
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.credentials import Credentials

from tests.support import SALT, SESSION_KEY, LambdaContext, do_body, lambda_function, operator_route
from wallet.money.ledger import PlayerStatus, json_ready
from wallet.money.limits import RAISE_DELAY_SECONDS, LimitKind, Period
from wallet.money.mover import BillingContended, MoveStatus
from wallet.money.operator_moves import OperatorError, Refusal
from wallet.money.store import StoreUnavailable
from wallet.money.wallet import Wallet
from wallet.operator import cli as cli_module
from wallet.operator import remote as remote_module
from wallet.operator.api import parse_json
from wallet.operator.cli import curl_command, limit_changes, main
from wallet.operator.client import ApiError, ApiReply, OperatorClient
from wallet.operator.remote import (
    ApiFailure,
    ApiWallet,
    account_from_json,
    domain_error,
    entry_from_json,
    limits_from_json,
)
from wallet_local.front import api_gateway_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

API_URL = "https://operator.example.com/dev"
CALLER_ARN = "arn:aws:iam::123456789012:role/wallet-site"


class InProcessApi:
    """OperatorClient's contract (call -> ApiReply, ApiError for anything but 2xx) served by the operator Lambda
    in this process, with the caller API Gateway would have authenticated."""

    base_url = API_URL

    def __init__(self, module: Any) -> None:
        self.module = module
        self.requests: list[tuple[str, str, Any, dict[str, Any] | None]] = []

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> ApiReply:
        self.requests.append((method, path, body, query))
        route, parameters = operator_route(method, path)
        data = json.dumps(json_ready(body)).encode() if body is not None else b""
        wanted = {key: str(value) for key, value in (query or {}).items() if value is not None}
        event = api_gateway_event(
            route, parameters, method, path, urlencode(wanted), {"Content-Type": "application/json"}, data, "10.0.0.1"
        )
        event["requestContext"]["identity"].update(userArn=CALLER_ARN, caller="AROAEXAMPLE:site")
        reply = self.module.lambda_handler(event, LambdaContext("operator"))
        text = reply.get("body") or ""
        parsed = parse_json(text) if text else None
        status = int(reply["statusCode"])
        if status >= 300:
            error = parsed.get("error", {}) if isinstance(parsed, dict) else {}
            raise ApiError(status, str(error.get("code", "http_error")), str(error.get("message")), parsed)
        return ApiReply(status, parsed)


class Cli:
    """`wallet ...` in-process: straight on the test's wallet, or through the API (WALLET_API_URL set)."""

    def __init__(self, run: Callable[[list[str]], int], capsys: pytest.CaptureFixture[str]) -> None:
        self._run = run
        self.capsys = capsys

    def run(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = self._run(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *argv: str) -> Any:
        code, out, err = self.run(*argv)
        assert (code, err) == (0, ""), err
        return json.loads(out)


@pytest.fixture
def api(moto_client: Any, boto_session: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessApi]:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto_session)
    monkeypatch.setenv("WALLET_TABLE", "wallet-test")
    monkeypatch.setenv("WALLET_SALT", SALT)
    monkeypatch.setenv("WALLET_SESSION_KEY", SESSION_KEY)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with lambda_function("operator", "WARNING") as (module, _):
        yield InProcessApi(module)


@pytest.fixture
def direct(wallet: Wallet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("WALLET_OPERATOR", "carol")
    return Cli(lambda argv: main(argv, wallet_factory=lambda: wallet), capsys)


@pytest.fixture
def remote(api: InProcessApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("WALLET_API_URL", API_URL)

    def run(argv: list[str]) -> int:
        def no_direct_wallet() -> Wallet:
            raise AssertionError("a remote command reached for the table")

        return main(argv, wallet_factory=no_direct_wallet, api_factory=lambda _: ApiWallet(api))

    return Cli(run, capsys)


# --- the same bytes either way -----------------------------------------------------------------------------------

TOKEN = re.compile(r"\b(p[da])\.[A-Za-z0-9_-]{20,}")
CHANGE_ID = re.compile(r"\b(status|limits)#(p[da])#[0-9a-f]{32}\b")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _normalised(text: str, player: str) -> str:
    """The output with what must differ between two players and two runs replaced: the player's id, times, session
    tokens and expiries, status/limits change ids (random), who made a change (the login, or the signer), and the
    chain hashes (over the player and the times)."""
    text = TOKEN.sub("<token>", text)
    text = CHANGE_ID.sub(r"\1#P#<id>", text)
    text = TIME.sub("<time>", text)
    text = re.sub(r'"(expires_at|session_expires_at|pending_at)": \d+', r'"\1": <n>', text)
    text = re.sub(r'"by": "[^"]*"', '"by": <who>', text)
    text = re.sub(r'"chain_hash": "[0-9a-f]{64}"', '"chain_hash": <hash>', text)
    return re.sub(rf"\b{player}\b", "P", text)


def _scenario(cli: Cli, wallet: Wallet, player: str) -> list[tuple[int, str, str]]:
    """Every remote command, successes and refusals, for `player`; a game round played in between."""
    runs = [
        cli.run("player", "create", player, "--currency", "FUN", "--balance", "12.50"),
        cli.run("player", "create", player),  # exists
        cli.run("player", "create", "bad id"),
        cli.run("player", "create", "px", "--currency", "F-N"),
        cli.run("player", "create", "px", "--balance", "abc"),
        cli.run("deposit", player, "100.25", "--ref", f"dep-{player}"),
        cli.run("deposit", player, "100.25", "--ref", f"dep-{player}"),  # a replay: 200, duplicate
        cli.run("deposit", player, "7", "--ref", f"dep-{player}"),  # conflict
        cli.run("deposit", player, "1e3", "--ref", f"dep2-{player}"),
        cli.run("deposit", player, "0", "--ref", f"dep3-{player}"),
        cli.run("deposit", player, "5", "--ref", "bad ref"),
        cli.run("withdraw", player, "10", "--ref", f"wd-{player}"),
        cli.run("withdraw", player, "1000", "--ref", f"wd2-{player}"),  # not enough money
        cli.run("deposit", "ghost", "5", "--ref", f"dep-ghost-{player}"),
        cli.run("session", "new", player),
    ]
    session = json.loads(runs[-1][1])["session"]
    tag = {"game": "slot", "game_id": "a_op", "game_uuid": f"round-{player}"}
    assert wallet.handle_do(do_body(session, "bet-1", 30, 0, tag)).reply.status == "OK"
    assert wallet.handle_do(do_body(session, "win-1", 0, "0.75", tag)).reply.status == "OK"
    runs += [
        cli.run("balance", player),
        cli.run("balance", "ghost"),
        cli.run("history", player),
        cli.run("history", player, "--limit", "2"),
        cli.run("history", player, "--limit", "0"),
        cli.run("history", "ghost"),
        cli.run("round", f"round-{player}"),
        cli.run("round", "no-such-round"),
        cli.run("player", "limits", player, "--loss-day", "100", "--wager-week", "5000", "--deposit-month", "none"),
        cli.run("player", "limits", player, "--loss-day", "200"),  # a raise: pending for a day
        cli.run("player", "limits", player, "--loss-day", "-1"),
        cli.run("player", "limits", player),
        cli.run("player", "limits", "ghost", "--loss-day", "1"),
        cli.run("player", "limits", player, "--wager-day", "40", "--ref", f"rg-{player}"),
        cli.run("player", "limits", player, "--wager-day", "40", "--ref", f"rg-{player}"),  # a retry: recorded once
        cli.run("player", "limits", player, "--wager-day", "30", "--ref", f"rg-{player}"),  # conflict
        cli.run("player", "status", player, "suspended", "--reason", "KYC documents expired"),
        cli.run("player", "status", player, "suspended", "--reason", "chargeback", "--ref", f"case-{player}"),
        cli.run("player", "status", player, "suspended", "--reason", "chargeback", "--ref", f"case-{player}"),
        cli.run("player", "status", player, "closed", "--reason", "chargeback", "--ref", f"case-{player}"),
        cli.run("player", "status", player, "closed", "--reason", "x", "--ref", "bad ref"),
        cli.run("player", "status", player, "closed", "--reason", " "),
        cli.run("player", "status", "ghost", "closed", "--reason", "why"),
        cli.run("session", "new", player),  # not allowed: suspended
        cli.run("balance", player),
        cli.run("session", "revoke", player),
        cli.run("session", "revoke", "ghost"),
        cli.run("player", "status", player, "closed", "--reason", "player request"),
        cli.run("deposit", player, "5", "--ref", f"dep4-{player}"),  # not allowed: closed
        cli.run("withdraw", player, "102.5", "--ref", f"wd3-{player}"),  # not enough money
        cli.run("withdraw", player, "73.5", "--ref", f"wd4-{player}"),  # a closed account is paid out
        cli.run("history", player, "--limit", "3"),
    ]
    return runs


def test_every_command_prints_the_same_json_through_the_api(direct: Cli, remote: Cli, wallet: Wallet) -> None:
    straight = _scenario(direct, wallet, "pd")
    through = _scenario(remote, wallet, "pa")
    assert len(straight) == len(through)
    for number, (one, other) in enumerate(zip(straight, through, strict=True)):
        left = tuple(_normalised(part, "pd") if isinstance(part, str) else part for part in one)
        right = tuple(_normalised(part, "pa") if isinstance(part, str) else part for part in other)
        assert left == right, f"command #{number}"
    codes = [code for code, _, _ in through]
    assert codes.count(0) == 22, codes
    # The scenario touched every refusal the CLI can print.
    errors = [json.loads(err)["error"] for code, _, err in through if code]
    for words in ("exists already", "player id", "currency", "different movement", "not enough money", "unknown"):
        assert any(words in error for error in errors), (words, errors)
    assert any("is suspended: no new session" in error for error in errors)
    assert any("is closed: deposits are refused" in error for error in errors)
    assert any("used before for a different status change" in error for error in errors)
    assert any("used before for a different limits change" in error for error in errors)
    # A retry with its ref printed the first change's entry, and left one entry.
    printed = [json.loads(out) for code, out, _ in through if code == 0 and out.startswith("{")]
    retried = [out["entry"] for out in printed if (out.get("entry") or {}).get("trx_id") == "status#pa#case-pa"]
    assert len(retried) == 2
    assert retried[0] == retried[1]
    assert [e.trx_id for e in wallet.history("pa", 100)].count("status#pa#case-pa") == 1


def test_the_signer_is_recorded_and_a_replay_is_a_duplicate(remote: Cli, wallet: Wallet) -> None:
    remote.ok("player", "create", "p7", "--balance", "10")
    first = remote.ok("deposit", "p7", "5", "--ref", "pay-1")
    again = remote.ok("deposit", "p7", "5", "--ref", "pay-1")
    assert (first["status"], again["status"]) == ("applied", "duplicate")
    assert first["entry"] == again["entry"]
    changed = remote.ok("player", "status", "p7", "suspended", "--reason", "chargeback")
    assert changed["entry"]["tag"] == {
        "operator": "status",
        "status": "suspended",
        "reason": "chargeback",
        "by": CALLER_ARN,
    }
    assert changed["entry"] == wallet.history("p7", 1)[0].as_json()
    assert wallet.account("p7").status is PlayerStatus.SUSPENDED


@pytest.mark.parametrize(
    "argv",
    [
        ("player", "status", "p1", "suspended", "--reason", "x", "--by", "dave"),
        ("player", "status", "p1", "suspended", "--reason", "x", "--by", "dave", "--ref", "case-1"),
        ("player", "limits", "p1", "--loss-day", "5", "--by", "dave"),
    ],
)
def test_by_is_refused_through_the_api(
    remote: Cli, api: InProcessApi, wallet: Wallet, player: tuple[str, str], argv: tuple[str, ...]
) -> None:
    code, out, err = remote.run(*argv)
    assert (code, out) == (2, "")
    assert "WALLET_API_URL" in json.loads(err)["error"]
    assert api.requests == []
    assert wallet.account("p1").version == 0


def test_audit_and_report_stay_direct(
    wallet: Wallet, player: tuple[str, str], capsys: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.setenv("WALLET_API_URL", API_URL)
    monkeypatch.setenv("WALLET_ARCHIVE_DIR", str(tmp_path))

    def no_api(url: str) -> ApiWallet:
        raise AssertionError(f"audit went to {url}")

    assert main(["audit", "--scan"], wallet_factory=lambda: wallet, api_factory=no_api) == 0
    assert json.loads(capsys.readouterr().out)["clean"] is True
    assert main(["audit"], wallet_factory=lambda: wallet, api_factory=no_api) == 0
    assert main(["report"], wallet_factory=lambda: wallet, api_factory=no_api) == 0


def test_wallet_api_url_picks_the_api_by_default(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    seen: list[str] = []

    class Fake:
        base_url = "http://api.invalid"

        def call(self, method: str, path: str, body: Any = None, query: Any = None) -> ApiReply:  # noqa: ARG002
            seen.append(f"{method} {path}")
            return ApiReply(200, _view("p1"))

    monkeypatch.setattr(ApiWallet, "from_url", classmethod(lambda cls, _: cls(Fake())))
    monkeypatch.setenv("WALLET_API_URL", "http://api.invalid")
    assert main(["balance", "p1"]) == 0
    assert json.loads(capsys.readouterr().out)["player"] == "p1"
    assert seen == ["GET /operator/players/p1"]


def test_a_bad_wallet_api_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("WALLET_API_URL", "ftp://example.com")
    assert main(["balance", "p1"]) == 2
    assert json.loads(capsys.readouterr().err) == {"error": "WALLET_API_URL: not an http(s) URL: 'ftp://example.com'"}


# --- refusals back into the wallet's errors ----------------------------------------------------------------------


class Refusing:
    """A client that answers every call with one ApiError (or another exception)."""

    base_url = "http://api.invalid"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def call(self, method: str, path: str, body: Any = None, query: Any = None) -> ApiReply:  # noqa: ARG002
        self.calls += 1
        raise self.error


def _api_error(status: int, code: str, message: str, **extra: Any) -> ApiError:
    return ApiError(status, code, message, {"error": {"code": code, "message": message, **extra}})


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (400, Refusal.INVALID),
        (404, Refusal.NOT_FOUND),
        (409, Refusal.EXISTS),
        (409, Refusal.CONFLICT),
        (409, Refusal.OVER_LIMIT),
        (409, Refusal.NOT_ALLOWED),
    ],
)
def test_a_refusal_is_the_wallets_operator_error(status: int, refusal: Refusal) -> None:
    wallet = ApiWallet(Refusing(_api_error(status, refusal.value, f"refused: {refusal.value}")))
    with pytest.raises(OperatorError) as raised:
        wallet.deposit("p1", "5", "r-1")
    assert (str(raised.value), raised.value.refusal, raised.value.balance) == (
        f"refused: {refusal.value}",
        refusal,
        None,
    )


def test_not_enough_money_carries_the_exact_balance() -> None:
    error = _api_error(409, "not_enough_money", "not enough money: balance 112.5, withdrawal 1000", balance="112.5")
    with pytest.raises(OperatorError) as raised:
        ApiWallet(Refusing(error)).withdraw("p1", "1000", "wd-1")
    assert raised.value.refusal is Refusal.NOT_ENOUGH_MONEY
    assert raised.value.balance == Decimal("112.5")


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (_api_error(503, "busy", "the player's account is busy"), BillingContended, "busy"),
        (_api_error(503, "unavailable", "the wallet is unavailable"), StoreUnavailable, "unavailable"),
        (
            ApiError(403, "http_error", "Forbidden: signature does not match", {"message": "Forbidden"}),
            ApiFailure,
            "operator API refused the request (403): Forbidden: signature does not match",
        ),
        (ApiError(429, "http_error", "Too Many Requests"), ApiFailure, "(429)"),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), ApiFailure, "does not answer"),
        (TimeoutError("timed out"), ApiFailure, "http://api.invalid does not answer: timed out"),
    ],
)
def test_other_answers(error: Exception, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind) as raised:
        ApiWallet(Refusing(error)).account("p1")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("error", "printed"),
    [
        (_api_error(404, "not_found", "unknown player p1"), "unknown player p1"),
        (
            _api_error(503, "unavailable", "the wallet is unavailable"),
            "database unavailable: the wallet is unavailable",
        ),
        (
            _api_error(503, "busy", "busy"),
            "the player's account is busy (many movements at this moment): nothing changed, try again",
        ),
        (ApiError(403, "http_error", "Forbidden"), "operator API refused the request (403): Forbidden"),
    ],
)
def test_the_cli_prints_a_refusal_as_it_prints_the_wallets(
    error: Exception, printed: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("WALLET_API_URL", API_URL)
    assert main(["balance", "p1"], api_factory=lambda _: ApiWallet(Refusing(error))) == 2
    out, err = capsys.readouterr()
    assert (out, json.loads(err)) == ("", {"error": printed})


def test_domain_error_without_an_error_object() -> None:
    failure = domain_error(ApiError(502, "http_error", "Bad Gateway", {}))
    assert isinstance(failure, ApiFailure)
    assert failure.status == 502


def test_the_wallets_own_words_before_any_call() -> None:
    client = Refusing(AssertionError("no call expected"))
    wallet = ApiWallet(client)
    with pytest.raises(ValueError, match="player id must be"):
        wallet.account("a b")
    with pytest.raises(OperatorError, match="ref must be"):
        wallet.deposit("p1", "5", "a ref")
    with pytest.raises(OperatorError, match="currency must be"):
        wallet.create_player("p1", "F-N")
    with pytest.raises(OperatorError, match="limit must be between 1 and 10000"):
        wallet.history("p1", 10_001)
    with pytest.raises(OperatorError, match="status must be one of"):
        wallet.set_status("p1", "frozen", "why")
    with pytest.raises(OperatorError, match="nothing to change"):
        wallet.set_limits("p1", {})
    assert wallet.round("") == []
    assert client.calls == 0


# --- history pages -------------------------------------------------------------------------------------------------


def _entry(number: int) -> dict[str, Any]:
    return {
        "entry_id": f"game:p1:t-{number}",
        "source": "game",
        "trx_id": f"t-{number}",
        "player": "p1",
        "kind": "bet",
        "minus": 1,
        "plus": 0,
        "balance_before": number + 1,
        "balance_after": number,
        "currency": "FUN",
        "game_uuid": f"r-{number}",
        "tag": {"game": "slot", "game_uuid": f"r-{number}"},
        "created_at": "2026-12-02T10:00:00.000000Z",
        "account_version": number,
    }


class Ledger:
    """History pages over `size` entries, newest first, with a cursor that is the next index."""

    base_url = "http://api.invalid"

    def __init__(self, size: int) -> None:
        self.entries = [_entry(number) for number in range(size, 0, -1)]
        self.queries: list[dict[str, Any]] = []

    def call(self, method: str, path: str, body: Any = None, query: Any = None) -> ApiReply:  # noqa: ARG002
        assert (method, path) == ("GET", "/operator/players/p1/history")
        self.queries.append(dict(query))
        start = int(query.get("cursor") or 0)
        end = start + int(query["limit"])
        next_cursor = str(end) if end < len(self.entries) else None
        return ApiReply(200, {"entries": self.entries[start:end], "next_cursor": next_cursor})


def test_history_follows_the_cursor_until_the_limit() -> None:
    ledger = Ledger(2600)
    entries = ApiWallet(ledger).history("p1", 2500)
    assert [entry.trx_id for entry in entries] == [f"t-{number}" for number in range(2600, 100, -1)]
    assert ledger.queries == [
        {"limit": 1000, "cursor": None},
        {"limit": 1000, "cursor": "1000"},
        {"limit": 500, "cursor": "2000"},
    ]


def test_history_stops_at_the_last_page() -> None:
    ledger = Ledger(1500)
    assert len(ApiWallet(ledger).history("p1", 10_000)) == 1500
    assert [query["limit"] for query in ledger.queries] == [1000, 1000]
    ledger = Ledger(3)
    assert [entry.trx_id for entry in ApiWallet(ledger).history("p1")] == ["t-3", "t-2", "t-1"]
    assert ledger.queries == [{"limit": 100, "cursor": None}]


def test_history_over_the_real_api_pages_like_the_table(
    direct: Cli, remote: Cli, api: InProcessApi, wallet: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote_module, "MAX_HISTORY_PAGE", 2)  # pages of 2: the real cursor, on a few entries
    wallet.create_player("p9", "FUN", Decimal(0))
    for number in range(1, 8):
        wallet.deposit("p9", "1", f"d-{number}")
    assert remote.ok("history", "p9", "--limit", "5") == direct.ok("history", "p9", "--limit", "5")
    assert [query["limit"] for _, _, _, query in api.requests if query] == [2, 2, 1]
    assert remote.ok("history", "p9", "--limit", "100") == direct.ok("history", "p9")
    assert len(direct.ok("history", "p9")) == 7


# --- JSON back into domain objects ---------------------------------------------------------------------------------


def _view(player_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "player_id": player_id,
        "balance": "12.5",
        "currency": "FUN",
        "status": "active",
        "version": 3,
        "created_at": "2026-12-02T10:00:00.000000Z",
        "session_expires_at": None,
        "limits": {},
        **changes,
    }


def test_an_entry_reads_back_to_the_same_json() -> None:
    raw = {**_entry(7), "minus": "0.00000001", "plus": 10**15, "tag": {"bets": ["[0]:1"], "x": "1.5", "n": 2}}
    entry = entry_from_json(raw)
    assert entry.minus == Decimal("0.00000001")
    assert entry.as_json() == raw
    operator = entry_from_json({**raw, "entry_id": "operator:pay-1", "source": "operator", "trx_id": "pay-1"})
    assert operator.as_json()["entry_id"] == "operator:pay-1"


def test_an_account_and_its_limits_read_back() -> None:
    limits = {
        "loss": {"day": {"amount": 100, "pending": 200, "pending_at": 2_000_000_000}},
        "wager": {"week": {"amount": "12.5", "pending": None, "pending_at": 2_000_000_000}},
        "deposit": {"month": {"amount": 0}},
    }
    account = account_from_json(_view("p1", limits=limits, session_expires_at=1_900_000_000, status="closed"))
    assert (account.balance, account.status, account.session_expires_at) == (
        Decimal("12.5"),
        PlayerStatus.CLOSED,
        1_900_000_000,
    )
    assert account.limits.effective((LimitKind.WAGER, Period.WEEK), 1_999_999_999) == Decimal("12.5")
    assert account.limits.effective((LimitKind.WAGER, Period.WEEK), 2_000_000_000) is None  # the removal, due
    assert account.limits.effective((LimitKind.LOSS, Period.DAY), 2_000_000_000) == 200
    assert json_ready(account.limits.as_json(1_000_000_000)) == {
        "deposit": {"month": {"amount": 0}},
        "loss": {"day": {"amount": 100, "pending": 200, "pending_at": 2_000_000_000}},
        "wager": {"week": {"amount": "12.5", "pending": None, "pending_at": 2_000_000_000}},
    }
    assert limits_from_json({}).by_slot == {}


def test_a_float_from_the_api_is_refused() -> None:
    with pytest.raises(ApiFailure, match="not exact"):
        account_from_json(_view("p1", balance=12.5))


def test_revoke_reads_whether_a_session_was_live() -> None:
    calls: list[str] = []

    class Api:
        base_url = "http://api.invalid"

        def __init__(self, expires: int | None) -> None:
            self.expires = expires

        def call(self, method: str, path: str, body: Any = None, query: Any = None) -> ApiReply:  # noqa: ARG002
            calls.append(f"{method} {path}")
            if method == "DELETE":
                return ApiReply(204, None)
            return ApiReply(200, _view("p1", session_expires_at=self.expires))

    assert ApiWallet(Api(1_900_000_000)).revoke_session("p1") is True
    assert ApiWallet(Api(None)).revoke_session("p1") is False
    assert calls == ["GET /operator/players/p1", "DELETE /operator/players/p1/sessions"] * 2


def test_a_movement_reply_reads_back(api: InProcessApi, wallet: Wallet, player: tuple[str, str]) -> None:
    remote = ApiWallet(api)
    first = remote.deposit("p1", "0.5", "half")
    again = remote.deposit("p1", Decimal("0.50"), "half")
    assert (first.status, again.status) == (MoveStatus.APPLIED, MoveStatus.DUPLICATE)
    assert first.balance == Decimal("1000.5")
    assert first.entry == again.entry
    assert first.entry is not None
    assert first.entry.as_json() == wallet.history("p1", 1)[0].as_json()
    issued = remote.new_session("p1")
    assert issued.token.startswith("p1.")
    assert wallet.account("p1").session_expires_at == issued.expires_at


# --- `wallet player limits` ---------------------------------------------------------------------------------------


def test_limit_options_parse_to_changes() -> None:
    options: dict[Any, str | None] = {
        (LimitKind.LOSS, Period.DAY): "100",
        (LimitKind.WAGER, Period.WEEK): "none",
        (LimitKind.DEPOSIT, Period.MONTH): " 12.50 ",
        (LimitKind.LOSS, Period.MONTH): "NONE",
        (LimitKind.DEPOSIT, Period.DAY): "0",
        (LimitKind.WAGER, Period.DAY): None,
    }
    assert limit_changes(options) == {
        (LimitKind.LOSS, Period.DAY): Decimal(100),
        (LimitKind.WAGER, Period.WEEK): None,
        (LimitKind.DEPOSIT, Period.MONTH): Decimal("12.5"),
        (LimitKind.LOSS, Period.MONTH): None,
        (LimitKind.DEPOSIT, Period.DAY): Decimal(0),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-1", "--loss-day must be a non-negative number (or none to remove the limit)"),
        ("abc", "--loss-day must be a non-negative number"),
        ("1e3", "--loss-day must be a non-negative number"),
        ("0.000000001", "--loss-day has more than 8 decimal places"),
        ("", "--loss-day must be a non-negative number"),
    ],
)
def test_a_bad_limit_option(text: str, message: str) -> None:
    with pytest.raises(OperatorError) as raised:
        limit_changes({(LimitKind.LOSS, Period.DAY): text})
    assert message in str(raised.value)


def test_no_limit_option_is_an_error() -> None:
    with pytest.raises(OperatorError, match="nothing to change; give one or more of --loss-day"):
        limit_changes({(LimitKind.LOSS, Period.DAY): None})


def test_the_limits_command(direct: Cli, wallet: Wallet, player: tuple[str, str]) -> None:
    now = wallet.clock()
    out = direct.ok("player", "limits", "p1", "--loss-day", "100", "--deposit-month", "12.5", "--wager-week", "50")
    assert out["limits"] == {
        "deposit": {"month": {"amount": "12.5"}},
        "loss": {"day": {"amount": 100}},
        "wager": {"week": {"amount": 50}},
    }
    assert out["entry"]["kind"] == "limits"
    assert out["entry"]["tag"] == {
        "operator": "limits",
        "limits": {"deposit": {"month": "12.5"}, "loss": {"day": 100}, "wager": {"week": 50}},
        "by": "carol",
    }
    raised = direct.ok("player", "limits", "p1", "--loss-day", "500", "--wager-week", "none")["limits"]
    assert raised["loss"]["day"]["amount"] == 100  # a raise waits out the cooling-off period
    assert raised["loss"]["day"]["pending"] == 500
    assert raised["wager"]["week"]["pending"] is None  # a removal, pending too
    assert raised["loss"]["day"]["pending_at"] >= int(now) + RAISE_DELAY_SECONDS
    assert direct.ok("balance", "p1")["limits"] == raised
    lowered = direct.ok("player", "limits", "p1", "--loss-day", "10", "--by", "dave", "--ref", "rg-1")
    assert lowered["limits"]["loss"]["day"] == {"amount": 10}
    assert lowered["entry"]["tag"]["by"] == "dave"
    again = direct.ok("player", "limits", "p1", "--loss-day", "10", "--by", "dave", "--ref", "rg-1")
    assert again["entry"] == lowered["entry"]


def test_the_limits_command_through_the_api(remote: Cli, wallet: Wallet, player: tuple[str, str]) -> None:
    out = remote.ok("player", "limits", "p1", "--loss-day", "100", "--wager-week", "none", "--deposit-day", "7")
    assert out["limits"] == {"deposit": {"day": {"amount": 7}}, "loss": {"day": {"amount": 100}}}
    assert out["entry"]["tag"] == {
        "operator": "limits",
        "limits": {"deposit": {"day": 7}, "loss": {"day": 100}, "wager": {"week": None}},
        "by": CALLER_ARN,
    }
    assert wallet.account("p1").limits.effective((LimitKind.LOSS, Period.DAY), wallet.clock()) == 100


# --- `wallet api` ---------------------------------------------------------------------------------------------------


def test_the_curl_line_carries_the_signed_request() -> None:
    client = OperatorClient(
        "http://127.0.0.1:3999", region="us-east-1", credentials=Credentials("local", "local", "token-1")
    )
    body = {"player_id": "p2", "currency": "FUN", "balance": Decimal("100.50")}
    request = client.signed_request("POST", "/operator/players", body)
    line = curl_command(request)
    words = shlex.split(line)
    assert words[:5] == ["curl", "-sS", "-X", "POST", "http://127.0.0.1:3999/operator/players"]
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=local/")
    assert "/us-east-1/execute-api/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "token-1"
    assert headers["Content-Type"] == "application/json"
    assert words[-2] == "--data-binary"
    assert words[-1].encode() == request.body
    assert json.loads(words[-1]) == {"player_id": "p2", "currency": "FUN", "balance": "100.5"}
    get = curl_command(client.signed_request("GET", "/operator/players/p2/history", query={"limit": 5}))
    assert "'http://127.0.0.1:3999/operator/players/p2/history?limit=5'" in get
    assert "--data-binary" not in get


def test_wallet_api_prints_the_curl_line(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("WALLET_API_URL", "http://127.0.0.1:3999")
    body = '{"player_id":"p2","currency":"FUN","balance":100}'
    assert main(["api", "post", "/operator/players", body, "--print-curl"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("curl -sS -X POST http://127.0.0.1:3999/operator/players -H ")
    assert "Authorization: AWS4-HMAC-SHA256" in out
    assert main(["api", "GET", "/operator/players/p2/history?limit=5&cursor=abc", "--print-curl"]) == 0
    assert "/operator/players/p2/history?limit=5&cursor=abc'" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["api", "GET", "/operator/players/p1"], "set WALLET_API_URL (or --url)"),
        (["api", "GET", "operator/players/p1", "--url", "http://x"], "PATH must start with /"),
        (["api", "POST", "/operator/players", "{nope", "--url", "http://x"], "the body is not JSON"),
        (["api", "GET", "/operator/players/p1", "--url", "ftp://x"], "not an http(s) URL"),
    ],
)
def test_wallet_api_refuses_bad_input(argv: list[str], message: str, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.delenv("WALLET_API_URL", raising=False)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in json.loads(err)["error"]


def test_wallet_api_sends_and_prints(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    sent: list[tuple[str, str, Any, Any]] = []

    def call(self: OperatorClient, method: str, path: str, body: Any = None, query: Any = None) -> ApiReply:
        sent.append((method, path, body, query))
        if method == "DELETE":
            return ApiReply(204, None)
        if path.endswith("ghost"):
            raise _api_error(404, "not_found", "unknown player ghost")
        return ApiReply(201, {"balance": Decimal("1.5"), "entry": {"plus": 1}})

    monkeypatch.setattr(OperatorClient, "call", call)
    monkeypatch.setenv("WALLET_API_URL", "http://127.0.0.1:3999")
    monkeypatch.setattr(cli_module.sys, "stdin", io.StringIO('{"amount": 1.50, "ref": "r"}'))
    assert main(["api", "POST", "/operator/players/p1/deposits", "-"]) == 0
    assert json.loads(capsys.readouterr().out) == {"balance": "1.5", "entry": {"plus": 1}}
    assert sent[-1] == ("POST", "/operator/players/p1/deposits", {"amount": Decimal("1.50"), "ref": "r"}, None)
    assert main(["api", "DELETE", "/operator/players/p1/sessions"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["api", "GET", "/operator/players/ghost"]) == 2
    err = json.loads(capsys.readouterr().err)
    assert err == {
        "error": "not_found: unknown player ghost",
        "status": 404,
        "reply": {"error": {"code": "not_found", "message": "unknown player ghost"}},
    }


def test_wallet_api_with_no_answer(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    def call(self: OperatorClient, *args: Any, **kwargs: Any) -> ApiReply:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(OperatorClient, "call", call)
    assert main(["api", "GET", "/operator/players/p1", "--url", "http://127.0.0.1:9"]) == 2
    assert "operator API at http://127.0.0.1:9 does not answer" in json.loads(capsys.readouterr().err)["error"]


def test_a_retried_change_finds_its_entry_far_back() -> None:
    """With a ref, the entry the PATCH answers for may be the first attempt's, older than many movements since."""

    class Api:
        base_url = "http://api.invalid"

        def __init__(self) -> None:
            self.entries = [_entry(number) for number in range(1500, 0, -1)]
            first = {**_entry(0), "entry_id": "operator:status#p1#case-9", "source": "operator", "kind": "status"}
            first["trx_id"] = "status#p1#case-9"
            first["tag"] = {"by": "arn", "reason": "why", "operator": "status", "status": "suspended"}
            self.entries.append(first)
            self.bodies: list[Any] = []

        def call(self, method: str, path: str, body: Any = None, query: Any = None) -> ApiReply:  # noqa: ARG002
            if method == "PATCH":
                self.bodies.append(body)
                return ApiReply(200, _view("p1", status="suspended", version=1501))
            start = int(query.get("cursor") or 0)
            end = start + int(query["limit"])
            more = str(end) if end < len(self.entries) else None
            return ApiReply(200, {"entries": self.entries[start:end], "next_cursor": more})

    api = Api()
    result = ApiWallet(api).set_status("p1", "suspended", "why", ref="case-9")
    assert api.bodies == [{"status": "suspended", "reason": "why", "ref": "case-9"}]
    assert result.entry is not None
    assert result.entry.trx_id == "status#p1#case-9"
    assert result.account is not None
    assert result.account.version == 1501
