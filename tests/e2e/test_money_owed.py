"""Money owed, end to end over HTTP through `wallet local`, with the Games Server simulator (docs/PROTOCOL.md,
"Sessions" and "Player status").

A debit needs the player's one live session (and an active player). Money owed, `minus == 0` with a `tag.game_uuid`
(a win, a cancel refund credited through `plus`, a zero win), lands on any session issued to the player: replaced,
revoked, expired, or ended by a status change, within the grace period after its expiry. Replays answer OK with the
current balance. A balance request, or a credit no round ties to the session, needs the live session.

Most tests use the session's `stack`; the expiry test has a `wallet local --session-seconds 3` of its own.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from tests.e2e.conftest import CLI_TIMEOUT, CliResult, LocalStack, running_stack
from tests.support import GamesServer
from wallet_local.process import WALLET, LocalStackProcess

pytestmark = pytest.mark.e2e

SHORT_SESSION_SECONDS = 3
NOT_FOUND = {"status": "session_not_found"}
BALANCE_TAG = {"game": "slot", "game_id": ""}


def ok(balance: int | Decimal) -> dict[str, Any]:
    return {"status": "OK", "balance": int(balance), "currency": "FUN"}


def cli_ok(stack: LocalStack, *args: str) -> Any:
    rc, result = stack.cli(*args)
    assert rc == 0, f"wallet {' '.join(args)}: {result}"
    return result


def output(result: CliResult) -> Any:
    """The JSON of a command (of a `cli_batch`) that must succeed."""
    rc, out = result
    assert rc == 0, out
    return out


def error(result: CliResult) -> str:
    """The message of a command that must fail: a non-zero exit and {"error": ...} on stderr."""
    rc, stderr = result
    assert rc != 0, f"it succeeded: {stderr}"
    message = json.loads(stderr)["error"]
    assert isinstance(message, str)
    return message


def assert_audit_clean(stack: LocalStack, result: CliResult) -> None:
    """`wallet audit` over the whole table exited 0 and is "clean". On a failure, run it again for its report (the
    JSON is on stdout whatever the exit code)."""
    rc, report = result
    if rc != 0:
        done = subprocess.run(
            [str(WALLET), "audit", "--scan"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        raise AssertionError(f"wallet audit exited {rc}: {done.stdout or done.stderr}")
    assert report["clean"] is True, report
    assert report["violations"] == [], report


def moves(entries: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(e["kind"], e["minus"], e["plus"]) for e in entries]


def ledger_sum(entries: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(str(e["plus"])) - Decimal(str(e["minus"])) for e in entries), Decimal(0))


def slot_tag() -> dict[str, Any]:
    game_uuid = uuid.uuid4().int % 10**12
    return {"game": "slot", "game_id": "a_op", "game_uuid": game_uuid, "lines": 9, "bet": 1, "denomination": 100}


def betting_round() -> tuple[str, dict[str, Any]]:
    """A betting round's game_uuid and the fields every request of it carries."""
    game_uuid = f"BP-{uuid.uuid4().hex[:12]}"
    return game_uuid, {"game": "bet", "game_id": "1009", "game_uuid": game_uuid, "round": 10000}


def replay(games: GamesServer, session: str, call_trx_id: str, **request: Any) -> dict[str, Any]:
    """The Games Server sending the same request (same trx_id) again."""
    return games.call(session, trx_id=call_trx_id, **request).reply


# --- a stack whose sessions last SHORT_SESSION_SECONDS -----------------------------------------------------------


class ShortStack(NamedTuple):
    stack: LocalStack
    started_at: float


def _banner_environment(process: LocalStackProcess) -> dict[str, str]:
    """The CLI's environment as the banner's export line gives it, as an operator would paste it: it carries the
    session lifetime, so `wallet session new` issues short sessions too."""
    cli_env = process.exports()
    assert cli_env["WALLET_SESSION_SECONDS"] == str(SHORT_SESSION_SECONDS), process.banner
    cli_env.update(AWS_REGION=cli_env["AWS_DEFAULT_REGION"], POWERTOOLS_LOG_LEVEL="WARNING")
    cli_env.update(POWERTOOLS_METRICS_DISABLED="true")
    return cli_env


@pytest.fixture(scope="module")
def short_stack() -> Iterator[ShortStack]:
    """A second `wallet local`, started with `--session-seconds`, for this module only; stopped with Ctrl-C."""
    started_at = time.time()
    with running_stack(["--session-seconds", str(SHORT_SESSION_SECONDS)], _banner_environment) as stack:
        yield ShortStack(stack, started_at)


def _demo_session(banner: str) -> tuple[str, int]:
    """The demo session and its expiry from the banner line "Demo player 'demo': ..., session T (expires at N)"."""
    line = next(line for line in banner.splitlines() if line.startswith("Demo player"))
    token = line.split("session ", 1)[1].split(" ", 1)[0]
    expires_at = int(line.rsplit("(expires at ", 1)[1].rstrip(")"))
    return token, expires_at


# --- tests ----------------------------------------------------------------------------------------------------------


def test_betting_round_settles_on_the_replaced_session(stack: LocalStack) -> None:
    """The player opened a new game (a new session) before the betting round settled: its cancel, its win and
    another round's zero win land on the old session; bets and balance polls there do not."""
    games = GamesServer(stack.base_url)
    player = stack.new_player(10000)
    s1 = player.session
    round_id, base = betting_round()
    other_id, other = betting_round()

    bet_request = {"minus": 300, "tag": {**base, "bets": ["[0]:100", "[1]:200"]}}
    bet = games.call(s1, **bet_request)
    assert bet.reply == ok(9700)
    other_bet = games.call(s1, minus=50, tag={**other, "bets": ["[0]:50"]})
    assert other_bet.reply == ok(9650)

    issued = cli_ok(stack, "session", "new", player.player)
    s2 = issued["session"]
    assert s2 != s1
    assert games.balance(s1).reply == NOT_FOUND  # the game on S1 learns another session exists
    assert games.balance(s2).reply == ok(9650)

    cancel_request = {"plus": 100, "tag": {**base, "bets": ["[0]:100"], "cancel": True}}
    cancel = games.call(s1, **cancel_request)
    assert cancel.reply == ok(9750)
    win_request = {"plus": 250, "tag": {**base, "result": [0, 250]}}
    win = games.call(s1, **win_request)
    assert win.reply == ok(10000)
    zero_request = {"plus": 0, "tag": {**other, "result": [0]}}
    zero = games.call(s1, **zero_request)
    assert zero.reply == ok(10000)

    # Replays on the old session: OK with the current balance, nothing moves.
    assert replay(games, s1, cancel.trx_id, **cancel_request) == ok(10000)
    assert replay(games, s1, win.trx_id, **win_request) == ok(10000)
    assert replay(games, s1, zero.trx_id, **zero_request) == ok(10000)
    assert replay(games, s1, bet.trx_id, **bet_request) == ok(10000)
    # The reply to a retried win gets lost once: the Games Server sends it again, it still moves nothing.
    retried = games.call(s1, trx_id=win.trx_id, drop_first_reply=True, **win_request)
    assert (retried.reply, retried.attempts) == (ok(10000), 2)

    # Debits, and credits no round ties to S1, need the live session.
    assert games.call(s1, minus=10, tag={**base, "bets": ["[2]:10"]}).reply == NOT_FOUND
    assert games.call(s1, minus=10, tag=slot_tag()).reply == NOT_FOUND
    assert games.call(s1, minus=10, plus=20, tag=slot_tag()).reply == NOT_FOUND  # a bet and win at once is a debit
    assert games.call(s1, plus=5, tag=BALANCE_TAG).reply == NOT_FOUND  # a credit without game_uuid
    assert games.balance(s1).reply == NOT_FOUND

    # The new session plays.
    new_round = slot_tag()
    assert games.call(s2, minus=40, tag=new_round).reply == ok(9960)
    assert games.call(s2, plus=15, tag=new_round).reply == ok(9975)
    assert games.balance(s2).reply == ok(9975)

    account, history, entries, other_entries, audit = stack.cli_batch(
        ["balance", player.player],
        ["history", player.player, "--limit", "1000"],
        ["round", round_id],
        ["round", other_id],
        ["audit", "--scan"],
    )
    account, history, entries, other_entries = map(output, (account, history, entries, other_entries))
    assert (account["balance"], account["status"]) == (9975, "active")
    assert account["session_expires_at"] == issued["expires_at"]
    assert ledger_sum(history) == 9975
    assert moves(entries) == [("bet", 300, 0), ("win", 0, 100), ("win", 0, 250)]
    assert [e["trx_id"] for e in entries] == [bet.trx_id, cancel.trx_id, win.trx_id]
    assert entries[1]["tag"]["cancel"] is True
    assert entries[1]["tag"]["bets"] == ["[0]:100"]
    assert entries[2]["tag"]["result"] == [0, 250]
    assert {e["player"] for e in entries} == {player.player}
    assert moves(other_entries) == [("bet", 50, 0), ("zero_win", 0, 0)]
    assert other_entries[1]["trx_id"] == zero.trx_id
    # Opening, two bets, cancel, win, zero win, the new round's bet and win: each once, the replays left no trace.
    assert len(history) == 8
    assert len({e["trx_id"] for e in history}) == 8
    assert_audit_clean(stack, audit)


def test_slot_win_lands_after_the_session_expired(short_stack: ShortStack) -> None:
    """`wallet local --session-seconds 3`: its demo session and the CLI's sessions last 3 s; a round's win that
    arrives after that still lands, a bet and a balance request do not."""
    stack, started_at = short_stack
    games = GamesServer(stack.base_url)

    # The stack's own demo session is short: issued by `wallet local` while it started.
    demo_session, demo_expires_at = _demo_session(stack.banner)
    assert started_at + SHORT_SESSION_SECONDS - 1 < demo_expires_at <= time.time() + SHORT_SESSION_SECONDS

    # `wallet session new` with the printed environment issues short sessions too: bet at once (2-3 s to live).
    issued_after = time.time()
    player = stack.new_player(10000)
    session = player.session
    tag = slot_tag()
    for _ in range(3):
        bet = games.call(session, minus=100, tag=tag)
        answered_at = time.time()
        expires_at = cli_ok(stack, "balance", player.player)["session_expires_at"]
        if bet.reply != NOT_FOUND or answered_at < expires_at:
            break
        # A host so slow that the bet came after the session's 2-3 s: a fresh session, once more.
        issued_after = time.time()
        session = cli_ok(stack, "session", "new", player.player)["session"]
    assert bet.reply == ok(9900), f"answered {expires_at - answered_at:.2f}s before the session's expiry"
    assert issued_after + SHORT_SESSION_SECONDS - 1 < expires_at <= time.time() + SHORT_SESSION_SECONDS

    wait = max(expires_at, demo_expires_at) - time.time() + 0.2
    assert wait <= SHORT_SESSION_SECONDS + 0.5
    time.sleep(max(0.0, wait))

    win = games.call(session, plus=250, tag=tag)
    assert win.reply == ok(10150)
    assert replay(games, session, win.trx_id, plus=250, tag=tag) == ok(10150)
    assert replay(games, session, bet.trx_id, minus=100, tag=tag) == ok(10150)
    assert games.call(session, minus=100, tag=slot_tag()).reply == NOT_FOUND
    assert games.call(session, minus=100, tag=tag).reply == NOT_FOUND  # not even in the same round
    assert games.balance(session).reply == NOT_FOUND
    assert games.call(session, plus=5, tag=BALANCE_TAG).reply == NOT_FOUND  # no round ties it to the session
    assert games.balance(demo_session).reply == NOT_FOUND  # the demo session ran out as well

    account, history, entries, audit = stack.cli_batch(
        ["balance", player.player], ["history", player.player], ["round", str(tag["game_uuid"])], ["audit", "--scan"]
    )
    account, history, entries = map(output, (account, history, entries))
    assert account["balance"] == 10150
    assert account["session_expires_at"] == expires_at
    assert ledger_sum(history) == 10150
    assert len(history) == 3  # opening, bet, win
    assert moves(entries) == [("bet", 100, 0), ("win", 0, 250)]
    assert [e["trx_id"] for e in entries] == [bet.trx_id, win.trx_id]
    assert_audit_clean(stack, audit)


def test_win_lands_on_a_revoked_session(stack: LocalStack) -> None:
    games = GamesServer(stack.base_url)
    player = stack.new_player(10000)
    tag = slot_tag()
    bet = games.call(player.session, minus=200, tag=tag)
    assert bet.reply == ok(9800)

    assert cli_ok(stack, "session", "revoke", player.player) == {"player": player.player, "revoked": True}
    assert games.balance(player.session).reply == NOT_FOUND

    win = games.call(player.session, plus=500, tag=tag)
    assert win.reply == ok(10300)
    assert replay(games, player.session, win.trx_id, plus=500, tag=tag) == ok(10300)
    assert games.call(player.session, minus=100, tag=slot_tag()).reply == NOT_FOUND
    assert games.call(player.session, minus=100, tag=tag).reply == NOT_FOUND  # not even in the same round

    again, account, unknown, fresh = stack.cli_batch(
        ["session", "revoke", player.player],
        ["balance", player.player],
        ["session", "revoke", "nobody-at-all"],
        ["session", "new", player.player],
    )
    assert output(again) == {"player": player.player, "revoked": False}  # nothing live left to end
    assert (output(account)["balance"], output(account)["session_expires_at"]) == (10300, None)
    assert "unknown player" in error(unknown)
    # Logging in again gives a session that bets.
    assert games.call(output(fresh)["session"], minus=300, tag=slot_tag()).reply == ok(10000)

    entries, history, audit = stack.cli_batch(
        ["round", str(tag["game_uuid"])], ["history", player.player], ["audit", "--scan"]
    )
    assert moves(output(entries)) == [("bet", 200, 0), ("win", 0, 500)]
    assert ledger_sum(output(history)) == 10000
    assert len(output(history)) == 4  # opening, bet, win, the new bet
    assert_audit_clean(stack, audit)


def test_status_change_mid_round(stack: LocalStack) -> None:
    """Suspended mid-round: the pending win lands, nothing else plays. Closed: no deposits, withdrawals paid out; a
    round left open still settles."""
    games = GamesServer(stack.base_url)
    player = stack.new_player(10000)
    session = player.session
    tag = slot_tag()
    late_id, late = betting_round()
    assert games.call(session, minus=400, tag=tag).reply == ok(9600)
    assert games.call(session, minus=200, tag={**late, "bets": ["[0]:200"]}).reply == ok(9400)

    reason = "cool-off requested by the player"
    suspended = cli_ok(stack, "player", "status", player.player, "suspended", "--reason", reason, "--by", "risk-desk")
    assert (suspended["status"], suspended["balance"], suspended["session_expires_at"]) == ("suspended", 9400, None)
    assert suspended["entry"]["kind"] == "status"
    assert games.balance(session).reply == NOT_FOUND  # the game stops at once

    win = games.call(session, plus=1000, tag=tag)
    assert win.reply == ok(10400)
    assert replay(games, session, win.trx_id, plus=1000, tag=tag) == ok(10400)
    assert games.call(session, minus=100, tag=slot_tag()).reply == NOT_FOUND

    closing = "account closed at the player's request"
    refused_session, account, history, closed, refused_deposit, refused_again = stack.cli_batch(
        ["session", "new", player.player],
        ["balance", player.player],
        ["history", player.player],
        ["player", "status", player.player, "closed", "--reason", closing, "--by", "support"],
        ["deposit", player.player, "50", "--ref", f"dep-{uuid.uuid4().hex}"],
        ["session", "new", player.player],
    )
    assert "suspended" in error(refused_session)
    account, history = output(account), output(history)
    assert (account["balance"], account["status"]) == (10400, "suspended")
    assert [e["kind"] for e in history] == ["win", "status", "bet", "bet", "opening"]
    status_entry = history[1]
    assert (status_entry["minus"], status_entry["plus"]) == (0, 0)
    assert status_entry["balance_before"] == status_entry["balance_after"] == 9400
    assert status_entry["tag"] == {"operator": "status", "status": "suspended", "reason": reason, "by": "risk-desk"}
    assert status_entry["source"] == "operator"
    assert output(closed)["status"] == "closed"
    assert "closed" in error(refused_deposit)
    assert "closed" in error(refused_again)

    # The betting round left open settles even now (its zero win), and a bet still does not play.
    assert games.call(session, plus=0, tag={**late, "result": [0]}).reply == ok(10400)
    assert games.call(session, minus=1, tag={**late, "bets": ["[1]:1"]}).reply == NOT_FOUND

    withdrawal, account, history, late_entries, audit = stack.cli_batch(
        ["withdraw", player.player, "10400", "--ref", f"wd-{uuid.uuid4().hex}"],
        ["balance", player.player],
        ["history", player.player],
        ["round", late_id],
        ["audit", "--scan"],
    )
    assert (output(withdrawal)["status"], output(withdrawal)["balance"]) == ("applied", 0)
    assert output(withdrawal)["entry"]["kind"] == "withdrawal"
    account, history = output(account), output(history)
    assert (account["balance"], account["status"]) == (0, "closed")
    kinds = ["withdrawal", "zero_win", "status", "win", "status", "bet", "bet", "opening"]
    assert [e["kind"] for e in history] == kinds
    assert history[2]["tag"] == {"operator": "status", "status": "closed", "reason": closing, "by": "support"}
    assert ledger_sum(history) == 0
    assert moves(output(late_entries)) == [("bet", 200, 0), ("zero_win", 0, 0)]
    assert_audit_clean(stack, audit)
