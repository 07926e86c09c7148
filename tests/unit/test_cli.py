"""The operator CLI: every command against the moto wallet, and its errors (JSON on stderr, non-zero exit)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tests.support import do_body
from wallet.money.wallet import Wallet
from wallet.operator.cli import main
from wallet_local.cli import main as wallet_command


class Cli:
    def __init__(self, wallet: Wallet, capsys: pytest.CaptureFixture[str]) -> None:
        self.wallet = wallet
        self.capsys = capsys

    def run(self, *argv: str) -> tuple[int, Any, Any]:
        """(exit code, stdout as JSON or None, stderr as JSON or None)."""
        self.capsys.readouterr()
        code = main(list(argv), wallet_factory=lambda: self.wallet)
        out, err = self.capsys.readouterr()
        return code, json.loads(out) if out.strip() else None, json.loads(err) if err.strip() else None

    def ok(self, *argv: str) -> Any:
        code, out, err = self.run(*argv)
        assert (code, err) == (0, None)
        return out

    def fails(self, *argv: str) -> str:
        code, out, err = self.run(*argv)
        assert code != 0
        assert out is None
        assert set(err) == {"error"}
        message: str = err["error"]
        return message


@pytest.fixture
def cli(wallet: Wallet, player: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(wallet, capsys)


def test_player_create(cli: Cli) -> None:
    out = cli.ok("player", "create", "p2", "--currency", "EUR", "--balance", "12.50")
    assert (out["player"], out["balance"], out["currency"], out["version"]) == ("p2", "12.5", "EUR", 0)
    assert cli.wallet.account("p2").balance == Decimal("12.5")
    assert [e.kind for e in cli.wallet.history("p2")] == ["opening"]
    out = cli.ok("player", "create", "p3")
    assert (out["balance"], out["currency"]) == (0, "FUN")
    assert cli.wallet.history("p3") == []


def test_player_create_errors(cli: Cli) -> None:
    assert "exists" in cli.fails("player", "create", "p1")
    assert "player id" in cli.fails("player", "create", "bad id")
    assert cli.fails("player", "create", "p4", "--balance", "-1")
    assert cli.fails("player", "create", "p4", "--currency", "F-N")
    assert "balance must be a non-negative number" in cli.fails("player", "create", "p4", "--balance", "abc")
    assert cli.wallet.account("p1").balance == 1000
    assert [a.player_id for a in cli.wallet.store.iter_accounts()] == ["p1"]


def test_deposit_idempotent_by_ref(cli: Cli) -> None:
    first = cli.ok("deposit", "p1", "50.25", "--ref", "dep-1")
    assert (first["status"], first["balance"], first["currency"]) == ("applied", "1050.25", "FUN")
    assert (first["entry"]["kind"], first["entry"]["plus"], first["entry"]["trx_id"]) == ("deposit", "50.25", "dep-1")
    again = cli.ok("deposit", "p1", "50.25", "--ref", "dep-1")
    assert (again["status"], again["balance"]) == ("duplicate", "1050.25")
    assert "different" in cli.fails("deposit", "p1", "60", "--ref", "dep-1")
    assert cli.wallet.account("p1").balance == Decimal("1050.25")


def test_withdraw(cli: Cli) -> None:
    out = cli.ok("withdraw", "p1", "100", "--ref", "wd-1")
    assert (out["status"], out["balance"], out["entry"]["kind"], out["entry"]["minus"]) == (
        "applied",
        900,
        "withdrawal",
        100,
    )
    assert "not enough money" in cli.fails("withdraw", "p1", "900.01", "--ref", "wd-2")
    assert cli.wallet.account("p1").balance == 900


@pytest.mark.parametrize("amount", ["0", "-5", "1e3", "NaN", "0.000000001", "1000000000000001"])
@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_bad_amounts(cli: Cli, command: str, amount: str) -> None:
    assert cli.fails(command, "p1", amount, "--ref", "r-bad")
    assert cli.wallet.account("p1").balance == 1000


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_amount_that_is_not_a_number_is_refused(cli: Cli, command: str) -> None:
    assert "amount must be a non-negative number" in cli.fails(command, "p1", "abc", "--ref", "r")
    assert "amount must be a non-negative number" in cli.fails(command, "p1", "1e3", "--ref", "r")
    assert cli.wallet.account("p1").balance == 1000


@pytest.mark.parametrize("command", ["deposit", "withdraw"])
def test_missing_ref(cli: Cli, capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "p1", "5"], wallet_factory=lambda: cli.wallet)
    assert exited.value.code == 2
    assert "--ref" in capsys.readouterr().err
    assert cli.wallet.account("p1").balance == 1000


@pytest.mark.parametrize(
    "argv",
    [
        ("deposit", "ghost", "5", "--ref", "r"),
        ("withdraw", "ghost", "5", "--ref", "r"),
        ("session", "new", "ghost"),
        ("balance", "ghost"),
        ("history", "ghost"),
    ],
)
def test_unknown_player(cli: Cli, argv: tuple[str, ...]) -> None:
    assert cli.fails(*argv) == "unknown player ghost"


def test_session_new(cli: Cli, player: tuple[str, str]) -> None:
    _, old = player
    out = cli.ok("session", "new", "p1")
    assert set(out) == {"player", "session", "expires_at"}
    assert out["player"] == "p1"
    assert out["session"].startswith("p1.")
    assert isinstance(out["expires_at"], int)
    assert cli.wallet.handle_do(do_body(out["session"], "t-1", 10, 0)).reply.balance == 990
    assert cli.wallet.handle_do(do_body(old, "t-2", 10, 0)).reply.status == "session_not_found"
    assert cli.ok("balance", "p1")["session_expires_at"] == out["expires_at"]


def test_balance(cli: Cli) -> None:
    out = cli.ok("balance", "p1")
    assert (out["player"], out["balance"], out["currency"], out["version"]) == ("p1", 1000, "FUN", 0)
    assert "session_hash" not in out
    cli.wallet.deposit("p1", "0.5", "half")
    assert cli.ok("balance", "p1")["balance"] == "1000.5"


def test_balance_shows_the_status(cli: Cli) -> None:
    assert cli.ok("balance", "p1")["status"] == "active"


def test_player_status(cli: Cli, player: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _, session = player
    monkeypatch.setenv("WALLET_OPERATOR", "carol")
    out = cli.ok("player", "status", "p1", "suspended", "--reason", "KYC documents expired")
    assert (out["player"], out["status"], out["balance"], out["session_expires_at"]) == ("p1", "suspended", 1000, None)
    assert out["entry"]["kind"] == "status"
    assert out["entry"]["tag"] == {
        "operator": "status",
        "status": "suspended",
        "reason": "KYC documents expired",
        "by": "carol",
    }
    assert cli.ok("balance", "p1")["status"] == "suspended"
    assert cli.ok("history", "p1", "--limit", "1")[0]["tag"]["by"] == "carol"
    assert "is suspended: no new session" in cli.fails("session", "new", "p1")
    assert cli.wallet.handle_do(do_body(session, "t-1", 10, 0)).reply.status == "session_not_found"
    by = cli.ok("player", "status", "p1", "closed", "--reason", "player request", "--by", "dave")
    assert by["entry"]["tag"]["by"] == "dave"
    assert "deposits are refused" in cli.fails("deposit", "p1", "5", "--ref", "dep-closed")
    assert cli.ok("withdraw", "p1", "1000", "--ref", "wd-all")["balance"] == 0


def test_player_status_errors(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown player" in cli.fails("player", "status", "ghost", "closed", "--reason", "why")
    assert "reason must be" in cli.fails("player", "status", "p1", "closed", "--reason", " ")
    with pytest.raises(SystemExit):  # argparse: not one of the statuses, or no reason
        main(["player", "status", "p1", "frozen", "--reason", "why"], wallet_factory=lambda: cli.wallet)
    with pytest.raises(SystemExit):
        main(["player", "status", "p1", "closed"], wallet_factory=lambda: cli.wallet)
    capsys.readouterr()
    assert cli.wallet.account("p1").version == 0


def test_session_revoke(cli: Cli, player: tuple[str, str]) -> None:
    _, session = player
    tag = {"game": "slot", "game_id": "a_op", "game_uuid": "r-1"}
    cli.wallet.handle_do(do_body(session, "t-bet", 100, 0, tag))
    assert cli.ok("session", "revoke", "p1") == {"player": "p1", "revoked": True}
    assert cli.ok("session", "revoke", "p1") == {"player": "p1", "revoked": False}
    assert cli.ok("balance", "p1")["session_expires_at"] is None
    assert cli.wallet.handle_do(do_body(session, "t-2", 10, 0, tag)).reply.status == "session_not_found"
    assert cli.wallet.handle_do(do_body(session, "t-win", 0, 250, tag)).reply.balance == 1150  # money owed lands
    assert "unknown player" in cli.fails("session", "revoke", "ghost")


def test_history_and_round(cli: Cli, player: tuple[str, str]) -> None:
    _, session = player
    tag = {"game": "slot", "game_id": "a_op", "game_uuid": 4242}
    cli.wallet.handle_do(do_body(session, "t-bet", 100, 0, tag))
    cli.wallet.handle_do(do_body(session, "t-win", 0, 30, tag))
    history = cli.ok("history", "p1")
    assert [e["trx_id"] for e in history] == ["t-win", "t-bet", "opening#p1"]
    assert [e["trx_id"] for e in cli.ok("history", "p1", "--limit", "1")] == ["t-win"]
    round_ = cli.ok("round", "4242")
    assert [(e["trx_id"], e["kind"], e["minus"], e["plus"]) for e in round_] == [
        ("t-bet", "bet", 100, 0),
        ("t-win", "win", 0, 30),
    ]
    assert round_[0]["tag"] == tag
    assert round_[0]["game_uuid"] == "4242"
    assert cli.ok("round", "no-such-round") == []


def test_database_unavailable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    class Down:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise EndpointConnectionError(endpoint_url="http://localhost:8000")

            return fail

    monkeypatch.setattr(cli.wallet.store, "client", Down())
    assert cli.fails("balance", "p1").startswith("database unavailable")


def test_missing_table_with_the_default_factory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("WALLET_TABLE", "WALLET_SALT", "WALLET_SESSION_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["balance", "p1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "WALLET_TABLE" in json.loads(err)["error"]


def test_missing_session_key_with_the_default_factory(
    moto_client: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WALLET_TABLE", "wallet-test")
    for name in ("WALLET_SALT", "WALLET_SESSION_KEY", "WALLET_SALT_PARAMETER", "WALLET_SESSION_KEY_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    assert main(["session", "new", "p1"]) == 2
    assert "WALLET_SESSION_KEY" in json.loads(capsys.readouterr().err)["error"]


def test_no_command_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit) as exited:
        main([], wallet_factory=lambda: cli.wallet)
    assert exited.value.code == 2


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_history_with_a_non_positive_limit_is_a_usage_error(cli: Cli, limit: str) -> None:
    try:
        code, _, err = cli.run("history", "p1", "--limit", limit)
    except SystemExit as exited:  # an argparse refusal is fine too
        code, err = exited.code, None
    assert code != 0
    assert err is None or not err["error"].startswith("database unavailable")


@pytest.mark.parametrize("seconds", ["0", "-5", "86401", "1.5", "a day"])
def test_local_refuses_a_session_lifetime_out_of_range(seconds: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        wallet_command(["local", "--session-seconds", seconds])
    assert stopped.value.code == 2
    assert "--session-seconds: must be a whole number of seconds from 1 to 86400" in capsys.readouterr().err


def test_player_status_with_a_ref_is_recorded_once(cli: Cli) -> None:
    first = cli.ok("player", "status", "p1", "suspended", "--reason", "chargeback", "--by", "eve", "--ref", "case-77")
    again = cli.ok("player", "status", "p1", "suspended", "--reason", "chargeback", "--by", "eve", "--ref", "case-77")
    assert first["entry"] == again["entry"]
    assert [e.kind for e in cli.wallet.history("p1")] == ["status", "opening"]
    assert "used before" in cli.fails("player", "status", "p1", "closed", "--reason", "other", "--ref", "case-77")
    assert "ref must be" in cli.fails("player", "status", "p1", "closed", "--reason", "x", "--ref", "bad ref")
    assert cli.wallet.account("p1").status.value == "suspended"
