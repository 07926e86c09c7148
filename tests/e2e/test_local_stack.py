"""`wallet local` as a developer meets it: the banner's ready-to-paste lines work, and it answers like API Gateway."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import WALLET, LocalStack

pytestmark = pytest.mark.e2e

OK_BALANCE = {"status": "OK", "balance": 100000, "currency": "FUN"}


def _banner_lines(banner: str, prefix: str) -> list[str]:
    return [line.strip() for line in banner.splitlines() if line.strip().startswith(prefix)]


def _bash(line: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30, env=env, check=False)
    assert done.returncode == 0, f"{line!r} exited {done.returncode}: {done.stderr}"
    return done.stdout


def _reply(line: str) -> dict[str, object]:
    return json.loads(_bash(line), parse_float=Decimal)


def test_banner_names_the_stack(stack: LocalStack) -> None:
    first = stack.banner.splitlines()[0]
    assert f"POST {stack.base_url}/do" in first
    assert f"DynamoDB Local on port {stack.dynamodb_port}" in first
    assert "table wallet-local" in first
    assert "Demo player 'demo': balance 100000 FUN" in stack.banner
    # Three requests (balance, bet, win) and one export line.
    assert len(_banner_lines(stack.banner, "curl ")) == 3
    assert len(_banner_lines(stack.banner, "export ")) == 1
    # The secrets' values are the ones it was started with, never defaults.
    assert "local-salt" not in stack.banner
    assert "local-session-key" not in stack.banner


def test_banner_curl_lines_play_the_demo_round(stack: LocalStack) -> None:
    balance_line, bet_line, win_line = _banner_lines(stack.banner, "curl ")

    assert _reply(balance_line) == OK_BALANCE
    # The balance request moves nothing: asked twice, same answer.
    assert _reply(balance_line) == OK_BALANCE

    first = _reply(bet_line)
    second = _reply(bet_line)  # a replay of the same trx_id: nothing moves
    assert first == {"status": "OK", "balance": 99900, "currency": "FUN"}
    assert second == {"status": "OK", "balance": 99900, "currency": "FUN"}

    assert _reply(win_line) == {"status": "OK", "balance": 100150, "currency": "FUN"}
    assert _reply(win_line) == {"status": "OK", "balance": 100150, "currency": "FUN"}
    assert _reply(balance_line) == {"status": "OK", "balance": 100150, "currency": "FUN"}

    rc, account = stack.cli("balance", "demo")
    assert rc == 0, account
    assert account["balance"] == 100150
    assert account["currency"] == "FUN"

    rc, history = stack.cli("history", "demo")
    assert rc == 0, history
    # Newest first: win, bet, opening balance. The replays and the balance requests left no trace.
    assert [(e["kind"], e["minus"], e["plus"], e["balance_after"]) for e in history] == [
        ("win", 0, 250, 100150),
        ("bet", 100, 0, 99900),
        ("opening", 0, 100000, 100000),
    ]
    assert [e["trx_id"] for e in history[:2]] == ["demo-win-1", "demo-bet-1"]
    assert sum(Decimal(e["plus"]) - Decimal(e["minus"]) for e in history) == account["balance"]

    rc, entries = stack.cli("round", "demo-round-1")
    assert rc == 0, entries
    assert [(e["trx_id"], e["minus"], e["plus"], e["game_uuid"], e["player"]) for e in entries] == [
        ("demo-bet-1", 100, 0, "demo-round-1", "demo"),
        ("demo-win-1", 0, 250, "demo-round-1", "demo"),
    ]
    bet_tag = entries[0]["tag"]
    assert bet_tag == {
        "game": "slot",
        "game_id": "a_op",
        "game_uuid": "demo-round-1",
        "lines": 9,
        "bet": 1,
        "denomination": 100,
    }


def test_banner_cli_lines_reach_the_stack(stack: LocalStack) -> None:
    """The banner's `export ...` line plus `wallet balance demo`, pasted into a shell, talk to this stack."""
    (export_line,) = _banner_lines(stack.banner, "export ")
    (commands,) = _banner_lines(stack.banner, "wallet balance demo")
    assert commands.startswith("wallet balance demo; wallet history demo; wallet round demo-round-1")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "WALLET_"))}
    env["PATH"] = f"{Path(WALLET).parent}{os.pathsep}{env.get('PATH', '')}"
    output = _bash(f"{export_line}; wallet balance demo", env=env)
    account = json.loads(output)
    assert account["player"] == "demo"
    assert account["currency"] == "FUN"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/nope"), ("POST", "/do/extra"), ("GET", "/nope"), ("DELETE", "/do"), ("PUT", "/do")],
)
def test_unknown_route_is_refused_like_api_gateway(stack: LocalStack, method: str, path: str) -> None:
    response = requests.request(method, stack.base_url + path, data="{}", timeout=10)
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_get_do_is_not_served(stack: LocalStack) -> None:
    response = requests.get(stack.base_url + "/do", timeout=10)
    assert response.status_code != 200
    assert response.status_code == 403
    assert "status" not in response.json()


def test_unsigned_garbage_gets_sign_not_found(stack: LocalStack) -> None:
    for body in ("", "not json", "[]", '{"method":"do"}', '{"method":"do","session":"demo.x","trx_id":"1"}'):
        response = requests.post(stack.base_url + "/do", data=body, timeout=10)
        assert response.status_code == 200, body
        assert response.json() == {"status": "sign_not_found"}, body


def test_cli_creates_a_player_once(stack: LocalStack) -> None:
    """The real console script: a player is created once; the second time is an error on stderr, exit code 2."""
    player_id = f"cli-{uuid.uuid4().hex[:10]}"
    rc, created = stack.cli("player", "create", player_id, "--balance", "12.5")
    assert rc == 0, created
    assert (created["player"], created["balance"], created["currency"]) == (player_id, "12.5", "FUN")
    rc, error = stack.cli("player", "create", player_id, "--balance", "99")
    assert rc == 2
    assert json.loads(error) == {"error": f"player {player_id} exists already"}
    rc, error = stack.cli("balance", f"nobody-{uuid.uuid4().hex[:10]}")
    assert rc == 2
    assert "unknown player" in json.loads(error)["error"]
