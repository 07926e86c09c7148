"""The operator CLI: every command against the moto wallet, and its errors (JSON on stderr, non-zero exit)."""

from __future__ import annotations

import json
import sys
import types
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from tests.support import do_body
from tests.unit.test_ledger_sql import build_book
from wallet.money.dynamodb import account_key
from wallet.money.ledger import utc_now_iso
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


# --- audit and report: SQL over the ledger archive (wallet.operator.ledger_sql) ---------------------------------------


def _reading(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, Any]:
    """`wallet audit/report ...` with no table at all: (exit code, stdout JSON, stderr JSON)."""
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, json.loads(err) if err.strip() else None


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The known archive of test_ledger_sql in WALLET_ARCHIVE_DIR, and no table or Athena settings."""
    build_book().write(tmp_path)
    monkeypatch.setenv("WALLET_ARCHIVE_DIR", str(tmp_path))
    for name in ("WALLET_ATHENA_WORKGROUP", "WALLET_ATHENA_DATABASE", "WALLET_TABLE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_report_runs_the_sql_on_duckdb_over_the_archive(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _reading(capsys, "report", "--open-minutes", "0")
    assert (code, err) == (0, None)
    assert set(out) == {"generated_at", "open_minutes", "ggr", "games", "open_rounds"}
    assert out["ggr"][0] == {
        "day": "2026-12-01",
        "game_id": "slot_a",
        "currency": "FUN",
        "bets": "14",
        "wins": "31",
        "ggr": "-17",
    }
    assert [(g["game_id"], g["currency"], g["players"]) for g in out["games"]] == [
        ("slot_a", "EUR", 1),
        ("slot_a", "FUN", 2),
        ("slot_b", "FUN", 1),
    ]
    assert [(r["game_uuid"], r["player"], r["bet"]) for r in out["open_rounds"]] == [
        ("r5", "carol", "2"),
        ("r2", "alice", "5"),
    ]
    assert out["open_minutes"] == 0


def test_audit_runs_the_sql_and_exits_1_on_a_violation(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _reading(capsys, "audit")
    assert (code, err) == (0, None)
    assert out == {"clean": True, "players": 4, "entries": 14, "total_balance": "188", "violations": [], "warnings": []}
    tampered = build_book()
    tampered.players["alice"].rows[2]["plus"] = Decimal(2500)
    tampered.write(archive / "other")
    code, out, err = _reading(capsys, "audit", "--archive", str(archive / "other"))
    assert (code, err) == (1, None)
    assert out["clean"] is False
    assert [v.split(":")[1].strip() for v in out["violations"]] == ["arithmetic", "chain_broken"]


def test_archive_option_and_engine_choice(
    archive: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any
) -> None:
    empty = tmp_path_factory.mktemp("empty-archive")
    monkeypatch.setenv("WALLET_ATHENA_WORKGROUP", "wallet-reports")  # --archive and --engine duckdb mean DuckDB
    assert _reading(capsys, "report", "--archive", str(empty))[1]["ggr"] == []
    assert _reading(capsys, "audit", "--engine", "duckdb")[1]["entries"] == 14


def test_athena_by_default_when_a_workgroup_is_set(
    archive: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws
    from moto.athena.models import athena_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    monkeypatch.setenv("WALLET_ATHENA_WORKGROUP", "wallet-reports")
    monkeypatch.setenv("WALLET_ATHENA_DATABASE", "wallet_ledger")
    with mock_aws():
        boto3.client("athena", region_name="us-east-1").create_work_group(Name="wallet-reports")
        code, out, err = _reading(capsys, "report")  # moto runs nothing: every query comes back empty
        executions = list(athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].executions.values())
    assert (code, err) == (0, None)
    assert (out["ggr"], out["games"], out["open_rounds"]) == ([], [], [])
    assert len(executions) == 3
    assert {(e.workgroup.name, e.context["Database"]) for e in executions} == {("wallet-reports", "wallet_ledger")}
    assert [e.execution_parameters for e in executions if e.execution_parameters] == [[out_cutoff(out)]]


def out_cutoff(report: dict[str, Any]) -> str:
    """The open_rounds cutoff the report sent: generated_at minus --open-minutes (60), as an Athena literal."""
    generated = datetime.fromisoformat(report["generated_at"].replace("Z", "+00:00"))
    return "'" + utc_now_iso((generated - timedelta(minutes=60)).timestamp()) + "'"


def test_report_html_writes_the_page(
    archive: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    written: list[tuple[Path, dict[str, Any]]] = []
    page = types.ModuleType("wallet.operator.html_report")
    page.write_html_report = lambda path, report: written.append((path, report))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wallet.operator.html_report", page)
    code, out, _ = _reading(capsys, "report", "--html", str(tmp_path / "report.html"))
    assert code == 0
    assert written == [(tmp_path / "report.html", out)]


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (("report",), {}, "set WALLET_ARCHIVE_DIR (or --archive DIR)"),
        (("audit",), {}, "or WALLET_ATHENA_WORKGROUP for athena"),
        (("report", "--archive", "/no/such/archive"), {}, "/no/such/archive does not exist"),
        (("audit",), {"WALLET_ARCHIVE_DIR": "/no/such/archive"}, "does not exist"),
        (("report", "--engine", "athena"), {}, "set WALLET_ATHENA_WORKGROUP"),
        (("audit",), {"WALLET_ATHENA_WORKGROUP": "wg"}, "set WALLET_ATHENA_DATABASE"),
        (("report", "--open-minutes", "-1"), {"WALLET_ARCHIVE_DIR": "."}, "--open-minutes must not be negative"),
        (("audit", "--scan", "--engine", "duckdb"), {}, "--scan checks the live table"),
    ],
)
def test_reading_errors(
    argv: tuple[str, ...],
    environ: dict[str, str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("WALLET_ARCHIVE_DIR", "WALLET_ATHENA_WORKGROUP", "WALLET_ATHENA_DATABASE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code, out, err = _reading(capsys, *argv)
    assert (code, out) == (2, None)
    assert message in err["error"]


def test_audit_scan_checks_the_live_table(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALLET_ARCHIVE_DIR", raising=False)
    out = cli.ok("audit", "--scan")
    assert (out["clean"], out["players"], out["entries"], out["total_balance"]) == (True, 1, 1, "1000")
    store: Any = cli.wallet.store
    store.client.update_item(  # the balance changed behind the ledger's back
        TableName=store.table_name,
        Key=account_key("p1"),
        UpdateExpression="SET balance = :b",
        ExpressionAttributeValues={":b": {"N": "5"}},
    )
    code, out, _ = cli.run("audit", "--scan")
    assert code == 1
    assert out["violations"]
