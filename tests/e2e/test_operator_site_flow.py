"""The operator's site, end to end through `wallet local`: every operator call goes over HTTP to /operator/*, signed
with SigV4 by the real client (wallet.operator.client.OperatorClient, the local credentials the stack exports), and
the game is played by the Games Server simulator on /do.

The flow of a site: create a player, take a deposit (and its replay), open a game session with a play_url and load
that page, play a round (bet, win, a replayed bet), read the ledger page by page and the round, set a loss limit and
see a bet over it refused, pay out, and check the balance to the last unit. Unsigned and wrongly signed requests get
API Gateway's 403.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.credentials import Credentials

from tests.e2e.conftest import CLI_TIMEOUT, LocalStack
from tests.support import GamesServer
from wallet.operator.client import ApiError, ApiReply, OperatorClient
from wallet_local.process import WALLET

pytestmark = pytest.mark.e2e

REGION = "us-east-1"
LOCAL = Credentials("local", "local")
APPLICATION = "a_op"
LOADER_OPTIONS = re.compile(r"window\.gameLoaderOptions = (\{.*?\});</script>")


@pytest.fixture
def operator(stack: LocalStack) -> OperatorClient:
    return OperatorClient(stack.base_url, region=REGION, credentials=LOCAL)


def _ok(operator: OperatorClient, method: str, path: str, status: int, body: Any = None, **query: Any) -> Any:
    reply = operator.call(method, path, body, query or None)
    assert isinstance(reply, ApiReply)
    assert reply.status == status, (method, path, reply)
    return reply.body


def _refused(operator: OperatorClient, method: str, path: str, body: Any = None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        operator.call(method, path, body)
    return caught.value


def _all_history(operator: OperatorClient, player: str, limit: int = 2) -> tuple[list[dict[str, Any]], int]:
    """Every page of the player's ledger, `limit` at a time, until next_cursor is null: (entries, pages)."""
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = _ok(operator, "GET", f"/operator/players/{player}/history", 200, limit=limit, cursor=cursor)
        pages += 1
        assert set(page) == {"entries", "next_cursor"}, page
        assert 1 <= len(page["entries"]) <= limit, page
        entries.extend(page["entries"])
        cursor = page["next_cursor"]
        if cursor is None:
            return entries, pages
        assert isinstance(cursor, str) and cursor, page
        assert pages < 100, "the cursor never ran out"


def _assert_newest_first_and_once(entries: list[dict[str, Any]]) -> None:
    ids = [entry["entry_id"] for entry in entries]
    assert len(ids) == len(set(ids)), ids  # every entry once: no page repeats or skips one
    versions = [entry["account_version"] for entry in entries]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions), versions
    assert versions[-1] == 0 and versions == list(range(versions[0], -1, -1)), versions  # no gap: nothing skipped


def _moves(entries: list[dict[str, Any]]) -> list[tuple[str, Decimal, Decimal]]:
    return [(e["kind"], Decimal(str(e["minus"])), Decimal(str(e["plus"]))) for e in entries]


def _assert_audit_clean(stack: LocalStack) -> None:
    done = subprocess.run(
        [str(WALLET), "audit", "--scan"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout or done.stderr
    report = json.loads(done.stdout)
    assert report["clean"] is True and report["violations"] == [], report


def test_the_site_flow_over_signed_http(stack: LocalStack, operator: OperatorClient) -> None:
    player = f"site-{uuid.uuid4().hex[:10]}"
    games = GamesServer(stack.base_url)

    # --- a new player, and a deposit (its replay is the same entry, another body under its ref a conflict) ---------
    created = _ok(operator, "POST", "/operator/players", 201, {"player_id": player, "currency": "FUN", "balance": 1000})
    assert (created["player_id"], created["balance"], created["currency"]) == (player, 1000, "FUN")
    assert (created["status"], created["session_expires_at"], created["limits"]) == ("active", None, {})
    assert _refused(operator, "POST", "/operator/players", {"player_id": player, "currency": "FUN"}).status == 409

    deposit_ref = f"pay-{uuid.uuid4().hex[:12]}"
    deposit = {"amount": "500.25", "ref": deposit_ref}
    first = _ok(operator, "POST", f"/operator/players/{player}/deposits", 201, deposit)
    assert first["balance"] == "1500.25" and first["currency"] == "FUN"
    entry = first["entry"]
    assert (entry["kind"], entry["trx_id"], entry["plus"]) == ("deposit", deposit_ref, "500.25")
    replay = _ok(operator, "POST", f"/operator/players/{player}/deposits", 200, deposit)
    assert replay["entry"] == first["entry"]
    assert replay["balance"] == "1500.25"
    conflict = _refused(operator, "POST", f"/operator/players/{player}/deposits", {"amount": 600, "ref": deposit_ref})
    assert (conflict.status, conflict.code) == (409, "conflict"), conflict

    # --- a game session with the page the site opens --------------------------------------------------------------
    options = {"application": APPLICATION, "language": "en_US", "kf": 100, "home_page": "https://site.example/home"}
    issued = _ok(operator, "POST", f"/operator/players/{player}/sessions", 201, options)
    session = issued["session"]
    assert issued["player_id"] == player and session.startswith(f"{player}.")
    assert isinstance(issued["expires_at"], int)
    play_url = issued["play_url"]
    parts = urlsplit(play_url)
    assert f"{parts.scheme}://{parts.netloc}" == stack.base_url and parts.path == f"/play/{APPLICATION}", play_url
    assert parse_qs(parts.query) == {
        "session": [session],
        "language": ["en_US"],
        "kf": ["100"],
        "home_page": ["https://site.example/home"],
    }
    shown = _ok(operator, "GET", f"/operator/players/{player}", 200)
    assert shown["session_expires_at"] == issued["expires_at"]

    page = requests.get(play_url, timeout=10)
    assert page.status_code == 200, page.text[:500]
    assert page.headers["Content-Type"].startswith("text/html"), page.headers
    assert page.headers.get("Cache-Control") == "no-store"
    found = LOADER_OPTIONS.search(page.text)
    assert found is not None, page.text[:2000]
    loader = json.loads(found.group(1))
    assert (loader["game"], loader["token"], loader["language"], loader["kf"]) == (APPLICATION, session, "en_US", "100")
    assert loader["currency"] == "FUN" and loader["home_page"] == "https://site.example/home"
    assert "Ocean Pearl" in page.text  # the game's own title

    # --- a round on /do: bet, win, and the provider replaying the bet ---------------------------------------------
    assert games.balance(session).reply == {"status": "OK", "balance": Decimal("1500.25"), "currency": "FUN"}
    game_uuid = str(uuid.uuid4().int % 10**12)
    tag = {"game": "slot", "game_id": APPLICATION, "game_uuid": int(game_uuid), "lines": 9, "bet": 1, "denomination": 1}
    bet = games.call(session, minus=100, tag=tag)
    assert bet.reply == {"status": "OK", "balance": Decimal("1400.25"), "currency": "FUN"}, bet
    win = games.call(session, plus=250, tag=tag)
    assert win.reply == {"status": "OK", "balance": Decimal("1650.25"), "currency": "FUN"}, win
    again = games.call(session, minus=100, tag=tag, trx_id=bet.trx_id)
    assert again.reply == {"status": "OK", "balance": Decimal("1650.25"), "currency": "FUN"}, again  # moved nothing
    assert _ok(operator, "GET", f"/operator/players/{player}", 200)["balance"] == "1650.25"

    # --- the ledger, two entries a page, and the round ------------------------------------------------------------
    entries, pages = _all_history(operator, player)
    assert pages == 2
    _assert_newest_first_and_once(entries)
    assert _moves(entries) == [
        ("win", 0, 250),
        ("bet", 100, 0),
        ("deposit", 0, Decimal("500.25")),
        ("opening", 0, 1000),
    ]
    assert [e["trx_id"] for e in entries[:2]] == [win.trx_id, bet.trx_id]
    assert all(e["game_uuid"] == game_uuid for e in entries[:2]), entries[:2]
    assert entries[2]["entry_id"] == first["entry"]["entry_id"]

    rounds = _ok(operator, "GET", f"/operator/rounds/{game_uuid}", 200)
    assert [(e["trx_id"], e["kind"], e["minus"], e["plus"]) for e in rounds["entries"]] == [
        (bet.trx_id, "bet", 100, 0),
        (win.trx_id, "win", 0, 250),
    ]
    assert rounds["entries"] == entries[:2][::-1]  # the same entries the history shows, oldest first
    assert _ok(operator, "GET", f"/operator/rounds/{uuid.uuid4().hex}", 200) == {"entries": []}

    # --- a loss limit: the day's loss is -150 (ahead by 150); a limit of 50 lets 200 more be lost, not 201 -----------
    changed = _ok(
        operator,
        "PATCH",
        f"/operator/players/{player}",
        200,
        {"limits": {"loss": {"day": 50}}, "reason": "player asked for a daily loss limit"},
    )
    assert changed["limits"] == {"loss": {"day": {"amount": 50}}}, changed
    assert changed["balance"] == "1650.25" and changed["status"] == "active"
    limited = {**tag, "game_uuid": int(game_uuid) + 1}
    over = games.call(session, minus=201, tag=limited)
    assert over.reply == {"status": "not_enough_money", "balance": Decimal("1650.25"), "currency": "FUN"}, over
    within = games.call(session, minus=200, tag=limited)
    assert within.reply == {"status": "OK", "balance": Decimal("1450.25"), "currency": "FUN"}, within
    one_more = games.call(session, minus=1, tag=limited)
    assert one_more.reply["status"] == "not_enough_money", one_more
    # A win is never refused by a limit; it makes room for as much again.
    assert games.call(session, plus=30, tag=limited).reply["balance"] == Decimal("1480.25")
    assert games.call(session, minus=30, tag=limited).reply["balance"] == Decimal("1450.25")
    assert games.call(session, minus=1, tag=limited).reply["status"] == "not_enough_money"

    # --- a payout, and the exact balance --------------------------------------------------------------------------
    too_much = _refused(
        operator, "POST", f"/operator/players/{player}/withdrawals", {"amount": "1450.26", "ref": f"wd-{uuid.uuid4()}"}
    )
    assert (too_much.status, too_much.code) == (409, "not_enough_money"), too_much
    withdrawal_ref = f"wd-{uuid.uuid4().hex[:12]}"
    paid = _ok(
        operator, "POST", f"/operator/players/{player}/withdrawals", 201, {"amount": "450.25", "ref": withdrawal_ref}
    )
    assert paid["balance"] == 1000 and paid["entry"]["minus"] == "450.25"
    again_paid = _ok(
        operator, "POST", f"/operator/players/{player}/withdrawals", 200, {"amount": "450.25", "ref": withdrawal_ref}
    )
    assert again_paid["entry"] == paid["entry"]
    final = _ok(operator, "GET", f"/operator/players/{player}", 200)
    expected = Decimal(1000) + Decimal("500.25") - 100 + 250 - 200 + 30 - 30 - Decimal("450.25")
    assert expected == 1000
    assert final["balance"] == 1000 and final["currency"] == "FUN"
    assert games.balance(session).reply == {"status": "OK", "balance": 1000, "currency": "FUN"}

    entries, _ = _all_history(operator, player)
    _assert_newest_first_and_once(entries)
    assert _moves(entries) == [
        ("withdrawal", Decimal("450.25"), 0),
        ("bet", 30, 0),
        ("win", 0, 30),
        ("bet", 200, 0),
        ("limits", 0, 0),
        ("win", 0, 250),
        ("bet", 100, 0),
        ("deposit", 0, Decimal("500.25")),
        ("opening", 0, 1000),
    ]
    assert sum(Decimal(str(e["plus"])) - Decimal(str(e["minus"])) for e in entries) == 1000
    assert Decimal(str(entries[0]["balance_after"])) == 1000
    _assert_audit_clean(stack)


def test_unsigned_and_wrongly_signed_requests_get_403(stack: LocalStack, operator: OperatorClient) -> None:
    player = f"sig-{uuid.uuid4().hex[:10]}"
    _ok(operator, "POST", "/operator/players", 201, {"player_id": player, "currency": "FUN", "balance": 10})

    body = json.dumps({"amount": 5, "ref": f"pay-{uuid.uuid4().hex[:12]}"})
    for method, path, data in (
        ("GET", f"/operator/players/{player}", None),
        ("POST", f"/operator/players/{player}/deposits", body),
        ("GET", "/operator/openapi.json", None),
    ):
        unsigned = requests.request(
            method, f"{stack.base_url}{path}", data=data, headers={"Content-Type": "application/json"}, timeout=10
        )
        assert unsigned.status_code == 403, (path, unsigned.status_code, unsigned.text)
        assert unsigned.json()["message"].startswith("Forbidden"), unsigned.text

    wrong_secret = OperatorClient(stack.base_url, region=REGION, credentials=Credentials("local", "not-the-secret"))
    wrong_key = OperatorClient(stack.base_url, region=REGION, credentials=Credentials("someone", "local"))
    wrong_region = OperatorClient(stack.base_url, region="eu-west-1", credentials=LOCAL)
    for client in (wrong_secret, wrong_key, wrong_region):
        for method, path, payload in (
            ("GET", f"/operator/players/{player}", None),
            ("POST", f"/operator/players/{player}/deposits", json.loads(body)),
        ):
            refused = _refused(client, method, path, payload)
            assert refused.status == 403, (client.credentials.access_key, path, refused)
            assert refused.message.startswith("Forbidden"), refused

    # A signed request whose body was changed after signing: refused too.
    signed = operator.signed_request("POST", f"/operator/players/{player}/deposits", json.loads(body))
    assert isinstance(signed.body, bytes) and b'"amount": 5,' in signed.body, signed.body
    tampered = requests.post(
        str(signed.url),
        data=signed.body.replace(b'"amount": 5,', b'"amount": 50,'),
        headers=dict(signed.headers.items()),
        timeout=10,
    )
    assert tampered.status_code == 403, tampered.text

    # Nothing of it moved money: the balance is the opening one, the ledger holds only the opening entry.
    assert _ok(operator, "GET", f"/operator/players/{player}", 200)["balance"] == 10
    entries, _ = _all_history(operator, player)
    assert _moves(entries) == [("opening", 0, 10)]
