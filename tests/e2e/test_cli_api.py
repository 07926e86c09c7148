"""The operator CLI through the operator API, end to end: the real `wallet local` (its front checks SigV4 against the
local credentials) and the real `wallet` CLI run every command twice, once with WALLET_API_URL (signed calls to the
front) and once without (straight to DynamoDB Local), and print the same bytes; `wallet api` signs, prints a curl
line that works, and gets API Gateway's 403 with wrong credentials; the banner's operator-API lines work as pasted."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import _BATCH, CLI_TIMEOUT, LocalStack
from tests.support import GamesServer
from wallet_local.process import WALLET

pytestmark = pytest.mark.e2e

Run = tuple[int, str, str]  # exit code, stdout, stderr: the bytes, not the parsed JSON
TOKEN = re.compile(r"\b(c[da]-[0-9a-f]{8})\.[A-Za-z0-9_-]{20,}")
CHANGE_ID = re.compile(r"\b(status|limits)#(c[da]-[0-9a-f]{8})#[0-9a-f]{32}\b")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _env(stack: LocalStack, through_api: bool, **extra: str) -> dict[str, str]:
    env = {**stack.env, "WALLET_OPERATOR": "e2e-operator", **extra}
    if through_api:
        env["WALLET_API_URL"] = stack.base_url
    return env


def _batch(stack: LocalStack, through_api: bool, *commands: list[str]) -> list[Run]:
    """Each command as `wallet ...` would run it, in one interpreter (tests/e2e/conftest.py's batch): raw output."""
    done = subprocess.run(
        [sys.executable, "-c", _BATCH],
        input=json.dumps(commands),
        env=_env(stack, through_api),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT + 2 * len(commands),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [(code, out, err) for code, out, err in json.loads(done.stdout)]


def _wallet(stack: LocalStack, *args: str, through_api: bool = True, **extra: str) -> Run:
    """The installed `wallet` console script, as an operator types it."""
    done = subprocess.run(
        [str(WALLET), *args],
        env=_env(stack, through_api, **extra),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def _normalised(run: Run, player: str) -> Run:
    """What must differ between two players and two runs: ids, times, tokens and expiries, the random id of a
    status or limits change, the entries' chain hashes (over the player and the time), and who made it (the login
    name directly, the signer's ARN through the API)."""

    def clean(text: str) -> str:
        text = TOKEN.sub("<token>", text)
        text = CHANGE_ID.sub(r"\1#P#<id>", text)
        text = TIME.sub("<time>", text)
        text = re.sub(r'"(expires_at|session_expires_at|pending_at)": \d+', r'"\1": <n>', text)
        text = re.sub(r'"by": "[^"]*"', '"by": <who>', text)
        text = re.sub(r'"chain_hash": "[0-9a-f]{64}"', '"chain_hash": <hash>', text)  # over the player and the time
        return text.replace(player, "P")

    code, out, err = run
    return code, clean(out), clean(err)


def _first_phase(player: str) -> list[list[str]]:
    return [
        ["player", "create", player, "--currency", "FUN", "--balance", "1000.50"],
        ["player", "create", player],
        ["player", "create", "bad id"],
        ["player", "create", f"{player}-x", "--currency", "F-N"],
        ["deposit", player, "250.25", "--ref", f"{player}-dep-1"],
        ["deposit", player, "250.25", "--ref", f"{player}-dep-1"],  # the same again: nothing moves
        ["deposit", player, "9", "--ref", f"{player}-dep-1"],  # the ref used for something else
        ["deposit", player, "0.000000001", "--ref", f"{player}-dep-2"],
        ["withdraw", player, "50", "--ref", f"{player}-wd-1"],
        ["withdraw", player, "100000", "--ref", f"{player}-wd-2"],
        ["deposit", "ghost-player", "1", "--ref", f"{player}-ghost"],
        ["session", "new", player],
    ]


def _second_phase(player: str, round_id: str) -> list[list[str]]:
    return [
        ["balance", player],
        ["balance", "ghost-player"],
        ["history", player],
        ["history", player, "--limit", "2"],
        ["history", "ghost-player"],
        ["round", round_id],
        ["round", "no-such-round"],
        ["player", "limits", player, "--loss-day", "500", "--wager-week", "2000", "--deposit-month", "none"],
        ["player", "limits", player, "--loss-day", "800"],  # a raise: pending for 24 hours
        ["player", "limits", player, "--loss-day", "abc"],
        ["player", "limits", player, "--wager-day", "400", "--ref", f"{player}-rg"],
        ["player", "limits", player, "--wager-day", "400", "--ref", f"{player}-rg"],  # a retry: recorded once
        ["player", "status", player, "suspended", "--reason", "KYC documents expired", "--ref", f"{player}-kyc"],
        ["player", "status", player, "suspended", "--reason", "KYC documents expired", "--ref", f"{player}-kyc"],
        ["player", "status", player, "closed", "--reason", "other", "--ref", f"{player}-kyc"],  # conflict
        ["session", "new", player],  # refused: not active
        ["session", "revoke", player],
        ["session", "revoke", player],
        ["player", "status", player, "closed", "--reason", "player request"],
        ["deposit", player, "5", "--ref", f"{player}-dep-3"],  # refused: closed
        ["withdraw", player, "10", "--ref", f"{player}-wd-3"],  # a closed account is paid out
        ["balance", player],
        ["history", player, "--limit", "4"],
    ]


def _scenario(stack: LocalStack, games: GamesServer, through_api: bool) -> tuple[str, list[Run]]:
    player = f"c{'a' if through_api else 'd'}-{uuid.uuid4().hex[:8]}"
    runs = _batch(stack, through_api, *_first_phase(player))
    code, out, err = runs[-1]
    assert code == 0, err
    session = json.loads(out)["session"]
    # A round the Games Server plays in between: the history and the round have game entries too.
    round_id = f"{player}-round"
    tag = {"game": "slot", "game_id": "a_op", "game_uuid": round_id, "lines": 9, "bet": 1, "denomination": 100}
    assert games.call(session, minus=120, tag=tag, trx_id=f"{player}-bet").reply["status"] == "OK"
    assert games.call(session, plus="35.5", tag=tag, trx_id=f"{player}-win").reply["status"] == "OK"
    runs += _batch(stack, through_api, *_second_phase(player, round_id))
    return player, runs


def test_every_command_prints_the_same_bytes_with_and_without_the_api(stack: LocalStack) -> None:
    games = GamesServer(stack.base_url)
    direct_player, direct = _scenario(stack, games, through_api=False)
    api_player, through = _scenario(stack, games, through_api=True)
    assert len(direct) == len(through)
    commands = _first_phase("P") + _second_phase("P", "P-round")
    for command, one, other in zip(commands, direct, through, strict=True):
        assert _normalised(one, direct_player) == _normalised(other, api_player), f"wallet {' '.join(command)}"
    codes = [code for code, _, _ in through]
    assert codes.count(0) == 22, [(code, err) for code, _, err in through]
    assert set(codes) == {0, 2}

    # The two players' own records, read both ways: the very same bytes, nothing normalised.
    for player in (direct_player, api_player):
        reads = [["balance", player], ["history", player, "--limit", "50"], ["round", f"{player}-round"]]
        assert _batch(stack, False, *reads) == _batch(stack, True, *reads)

    # Who made a change: the operator's login directly, the signer (the local principal) through the API.
    (_, out, _), *_ = _batch(stack, True, ["history", api_player, "--limit", "50"])
    by = {entry["tag"]["by"] for entry in json.loads(out) if entry["kind"] in ("status", "limits")}
    assert by == {"arn:aws:iam::000000000000:user/local"}
    (_, out, _), *_ = _batch(stack, False, ["history", direct_player, "--limit", "50"])
    assert {entry["tag"]["by"] for entry in json.loads(out) if entry["kind"] in ("status", "limits")} == {
        "e2e-operator"
    }


def test_the_console_script_goes_through_the_api(stack: LocalStack) -> None:
    player = f"cs-{uuid.uuid4().hex[:8]}"
    code, out, err = _wallet(stack, "player", "create", player, "--balance", "10")
    assert code == 0, err
    created = json.loads(out)
    # It reached the API: the API's own refusal of a second create, the same words as the table's.
    assert (
        _wallet(stack, "player", "create", player)[2]
        == _wallet(stack, "player", "create", player, through_api=False)[2]
    )
    assert _wallet(stack, "balance", player) == _wallet(stack, "balance", player, through_api=False)
    assert json.loads(_wallet(stack, "balance", player)[1]) == created
    # Wrong credentials: API Gateway's 403 (the local front's SigV4 check), as the CLI's error; nothing moved.
    code, out, err = _wallet(stack, "deposit", player, "5", "--ref", f"{player}-d", AWS_SECRET_ACCESS_KEY="wrong")
    assert (code, out) == (2, "")
    assert json.loads(err) == {"error": "operator API refused the request (403): Forbidden: signature does not match"}
    assert json.loads(_wallet(stack, "balance", player, through_api=False)[1])["balance"] == 10
    # --by cannot be honoured through the API (the ledger records the signer): refused, not ignored.
    code, _, err = _wallet(stack, "player", "status", player, "suspended", "--reason", "x", "--by", "dave")
    assert code == 2
    assert "WALLET_API_URL" in json.loads(err)["error"]


def test_wallet_api_sends_one_signed_request(stack: LocalStack) -> None:
    player = f"wa-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"player_id": player, "currency": "FUN", "balance": "100.50"})
    code, out, err = _wallet(stack, "api", "POST", "/operator/players", body)
    assert code == 0, err
    created = json.loads(out, parse_float=Decimal)
    assert (created["player_id"], created["balance"], created["limits"]) == (player, "100.5", {})

    deposit = json.dumps({"amount": 12.25, "ref": f"{player}-pay"})
    first = _wallet(stack, "api", "POST", f"/operator/players/{player}/deposits", deposit)
    again = _wallet(stack, "api", "POST", f"/operator/players/{player}/deposits", deposit)
    assert first[0] == again[0] == 0, (first, again)
    assert json.loads(first[1]) == json.loads(again[1])  # the same entry: a replay moved nothing
    assert json.loads(first[1])["balance"] == "112.75"

    code, out, err = _wallet(stack, "api", "GET", f"/operator/players/{player}/history?limit=1")
    assert code == 0, err
    page = json.loads(out)
    assert [entry["trx_id"] for entry in page["entries"]] == [f"{player}-pay"]
    assert page["next_cursor"]

    code, out, err = _wallet(stack, "api", "DELETE", f"/operator/players/{player}/sessions")
    assert (code, out) == (0, "")

    code, out, err = _wallet(stack, "api", "GET", "/operator/players/ghost-player")
    assert (code, out) == (2, "")
    assert json.loads(err) == {
        "error": "not_found: unknown player ghost-player",
        "status": 404,
        "reply": {"error": {"code": "not_found", "message": "unknown player ghost-player"}},
    }


def test_wallet_api_with_bad_credentials_gets_403(stack: LocalStack) -> None:
    for wrong in ({"AWS_SECRET_ACCESS_KEY": "wrong"}, {"AWS_ACCESS_KEY_ID": "someone-else"}):
        code, out, err = _wallet(stack, "api", "GET", "/operator/players/demo", **wrong)
        assert (code, out) == (2, ""), wrong
        refused = json.loads(err)
        assert refused["status"] == 403, refused
        assert refused["reply"]["message"].startswith("Forbidden")
    # A region other than the stack's is a different credential scope: refused too.
    code, _, err = _wallet(
        stack, "api", "GET", "/operator/players/demo", AWS_DEFAULT_REGION="eu-west-1", AWS_REGION="eu-west-1"
    )
    assert code == 2
    assert json.loads(err)["status"] == 403
    # The right ones: the demo player.
    code, out, err = _wallet(stack, "api", "GET", "/operator/players/demo")
    assert code == 0, err
    assert json.loads(out)["player_id"] == "demo"


def test_the_printed_curl_line_works(stack: LocalStack) -> None:
    player = f"pc-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"player_id": player, "currency": "FUN", "balance": 7})
    code, line, err = _wallet(stack, "api", "POST", "/operator/players", body, "--print-curl")
    assert code == 0, err
    assert line.startswith(f"curl -sS -X POST {stack.base_url}/operator/players "), line
    assert _wallet(stack, "balance", player, through_api=False)[0] == 2
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["player_id"] == player
    assert json.loads(_wallet(stack, "balance", player, through_api=False)[1])["balance"] == 7
    # The same line with a changed body no longer matches its signature.
    tampered = line.replace('"balance": 7', '"balance": 7000')
    assert tampered != line
    done = subprocess.run(["bash", "-c", tampered], capture_output=True, text=True, timeout=30, check=False)
    assert json.loads(done.stdout)["message"].startswith("Forbidden")


def test_the_banner_shows_the_operator_api(stack: LocalStack) -> None:
    """The banner's operator-API lines, pasted after its export line into a shell, reach the API."""
    lines = [line.strip() for line in stack.banner.splitlines()]
    assert any(line.startswith(f"Operator API: {stack.base_url}/operator/") for line in lines), stack.banner
    assert "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1" in stack.banner
    (export_line,) = [line for line in lines if line.startswith("export ")]
    (create_line,) = [line for line in lines if line.startswith("WALLET_API_URL=") and " wallet api POST " in line]
    assert create_line == (
        f"WALLET_API_URL={shlex.quote(stack.base_url)} wallet api POST /operator/players "
        """'{"player_id":"p2","currency":"FUN","balance":100}'"""
    )
    (deposit_line,) = [line for line in lines if line.startswith("WALLET_API_URL=") and " wallet deposit " in line]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "WALLET_"))}
    env["PATH"] = f"{Path(WALLET).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", f"{export_line}; {create_line} && {deposit_line}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    created, deposited = _json_documents(done.stdout)
    assert (created["player_id"], created["balance"]) == ("p2", 100)
    assert (deposited["status"], deposited["balance"]) == ("applied", 150)


def _json_documents(text: str) -> list[Any]:
    """The JSON documents the CLI printed one after the other."""
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    text = text.strip()
    position = 0
    while position < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
        while position < len(text) and text[position].isspace():
            position += 1
    return documents
