"""The provider's Games Server (tests.support.GamesServer) against the running `wallet local`, over HTTP.

Every reply's balance is checked against a model kept here in Decimal; the ledger is read back with the real CLI.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStack, Player
from tests.support import SALT, Call, GamesServer, do_body

pytestmark = pytest.mark.e2e

START = Decimal(10000)
SLOT_TAG = {"game": "slot", "game_id": "a_op", "lines": 9, "bet": 1, "denomination": 100}


def wire_number(value: Decimal) -> int | float:
    """What `response.json()` makes of the reply's balance when the billing writes `value` exactly."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class Book:
    """The model: what the player's balance must be after each reply."""

    games: GamesServer
    player: Player
    balance: Decimal = START

    def expect(self, call: Call, status: str = "OK") -> None:
        assert call.reply == {"status": status, "balance": wire_number(self.balance), "currency": "FUN"}, (
            f"{call.trx_id}: model says {self.balance}"
        )

    def moved(self, call: Call, minus: int | str | Decimal = 0, plus: int | str | Decimal = 0) -> None:
        self.balance = self.balance - Decimal(minus) + Decimal(plus)
        self.expect(call)

    def bet(self, amount: int | str | Decimal, tag: dict[str, Any] | None = None, **kwargs: Any) -> Call:
        call = self.games.call(self.player.session, minus=amount, tag=tag or self._tag(), **kwargs)
        self.moved(call, minus=amount)
        return call

    def win(self, amount: int | str | Decimal, tag: dict[str, Any] | None = None, **kwargs: Any) -> Call:
        call = self.games.call(self.player.session, plus=amount, tag=tag or self._tag(), **kwargs)
        self.moved(call, plus=amount)
        return call

    def ask(self) -> Call:
        call = self.games.balance(self.player.session)
        self.expect(call)
        return call

    @staticmethod
    def _tag() -> dict[str, Any]:
        return {**SLOT_TAG, "game_uuid": uuid.uuid4().int % 10**12}


@pytest.fixture
def games(stack: LocalStack) -> GamesServer:
    return GamesServer(stack.base_url)


@pytest.fixture
def book(games: GamesServer, player: Player) -> Book:
    book = Book(games, player)
    book.ask()
    return book


def post_raw(stack: LocalStack, body: str) -> tuple[int, str]:
    response = requests.post(
        stack.base_url + "/do", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    return response.status_code, response.text


def cli_ok(stack: LocalStack, *args: str) -> Any:
    rc, result = stack.cli(*args)
    assert rc == 0, f"wallet {' '.join(args)}: {result}"
    return result


def ledger_sum(entries: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(str(e["plus"])) - Decimal(str(e["minus"])) for e in entries), Decimal(0))


def moves(entries: list[dict[str, Any]]) -> list[tuple[str, Decimal, Decimal]]:
    """(kind, minus, plus) of each entry."""
    return [(e["kind"], Decimal(str(e["minus"])), Decimal(str(e["plus"]))) for e in entries]


@dataclass
class Ledger:
    """What the CLI shows: each book's history (newest first) and each asked round's entries (oldest first)."""

    histories: list[list[dict[str, Any]]]
    rounds: dict[str, list[dict[str, Any]]]

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.histories[0]


def assert_ledger(stack: LocalStack, *books: Book, rounds: tuple[str, ...] = ()) -> Ledger:
    """Through the CLI (`balance`, `history`, `round`): each stored balance is the model's and each ledger adds up
    to it. One CLI process for all the commands."""
    commands = []
    for book in books:
        commands += [["balance", book.player.player], ["history", book.player.player, "--limit", "1000"]]
    commands += [["round", game_uuid] for game_uuid in rounds]
    outputs = stack.cli_batch(*commands)
    assert [rc for rc, _ in outputs] == [0] * len(commands), outputs
    histories = []
    for i, book in enumerate(books):
        account, history = outputs[2 * i][1], outputs[2 * i + 1][1]
        assert account["player"] == book.player.player
        assert Decimal(str(account["balance"])) == book.balance, f"{book.player.player}: model says {book.balance}"
        assert ledger_sum(history) == book.balance, f"{book.player.player}: ledger adds up to {ledger_sum(history)}"
        histories.append(history)
    found = {game_uuid: output for game_uuid, (_, output) in zip(rounds, outputs[2 * len(books) :], strict=True)}
    return Ledger(histories, found)


# --- rounds ---------------------------------------------------------------------------------------------------------


def test_slot_rounds(stack: LocalStack, games: GamesServer, book: Book) -> None:
    won, calls = games.slot_round(book.player.session, bet=100, win=250)
    assert len(calls) == 2
    book.moved(calls[0], minus=100)
    book.moved(calls[1], plus=250)

    lost, calls = games.slot_round(book.player.session, bet=40, win=0)
    assert len(calls) == 1  # a losing slot round has no win request
    book.moved(calls[0], minus=40)
    assert all(call.attempts == 1 for call in calls)
    book.ask()

    ledger = assert_ledger(stack, book, rounds=(won, lost))
    assert moves(ledger.rounds[won]) == [("bet", 100, 0), ("win", 0, 250)]
    assert moves(ledger.rounds[lost]) == [("bet", 40, 0)]
    entries = ledger.rounds[won]
    # The numeric game_uuid of a slot round is stored as its decimal text, the tag verbatim.
    assert {e["game_uuid"] for e in entries} == {won}
    assert entries[0]["tag"] == {**SLOT_TAG, "game_uuid": int(won)}
    assert {e["player"] for e in entries} == {book.player.player}


def test_egame_rounds(stack: LocalStack, games: GamesServer, book: Book) -> None:
    won, calls = games.egame_round(book.player.session, bet=500, win=1200)
    book.moved(calls[0], minus=500)
    book.moved(calls[1], plus=1200)
    lost, calls = games.egame_round(book.player.session, bet=300, win=0)
    assert len(calls) == 1
    book.moved(calls[0], minus=300)

    ledger = assert_ledger(stack, book, rounds=(won, lost))
    assert moves(ledger.rounds[won]) == [("bet", 500, 0), ("win", 0, 1200)]
    assert moves(ledger.rounds[lost]) == [("bet", 300, 0)]
    bet, win = ledger.rounds[won]
    assert bet["tag"]["bets"] == ["[0]:500"]
    assert win["tag"]["result"] == [7, 7, 7]


def test_bet_package_partial_cancel_then_win(stack: LocalStack, games: GamesServer, book: Book) -> None:
    game_uuid, calls = games.bet_package(book.player.session, bets=[100, 200, 300], cancelled=[1], wins=[150, 0])
    assert len(calls) == 3
    book.moved(calls[0], minus=600)
    book.moved(calls[1], plus=200)  # the cancelled bet is refunded
    book.moved(calls[2], plus=150)
    assert book.balance == START - 600 + 200 + 150

    ledger = assert_ledger(stack, book, rounds=(game_uuid,))
    assert moves(ledger.rounds[game_uuid]) == [("bet", 600, 0), ("win", 0, 200), ("win", 0, 150)]
    _, cancel, win = ledger.rounds[game_uuid]
    assert cancel["tag"]["cancel"] is True
    assert cancel["tag"]["bets"] == ["[1]:200"]
    assert win["tag"]["result"] == [150, 0]


def test_bet_package_full_cancel_has_no_win(stack: LocalStack, games: GamesServer, book: Book) -> None:
    game_uuid, calls = games.bet_package(book.player.session, bets=[250, 750], cancelled=[0, 1], wins=[0, 0])
    assert len(calls) == 2  # bet + cancel; no win request follows a full cancel
    book.moved(calls[0], minus=1000)
    book.moved(calls[1], plus=1000)
    assert book.balance == START
    ledger = assert_ledger(stack, book, rounds=(game_uuid,))
    assert moves(ledger.rounds[game_uuid]) == [("bet", 1000, 0), ("win", 0, 1000)]


def test_bet_package_all_losing_records_a_zero_win(stack: LocalStack, games: GamesServer, book: Book) -> None:
    game_uuid, calls = games.bet_package(book.player.session, bets=[100, 100, 100], cancelled=[], wins=[0, 0, 0])
    assert len(calls) == 2
    book.moved(calls[0], minus=300)
    book.moved(calls[1], plus=0)  # the zero win: OK with the balance, nothing moves...

    # ...but it is a transaction of its own, findable by game_uuid.
    ledger = assert_ledger(stack, book, rounds=(game_uuid,))
    entries = ledger.rounds[game_uuid]
    assert [(e["kind"], e["minus"], e["plus"]) for e in entries] == [("bet", 300, 0), ("zero_win", 0, 0)]
    assert entries[1]["trx_id"] == calls[1].trx_id
    assert entries[1]["balance_before"] == entries[1]["balance_after"] == int(book.balance)
    assert calls[1].trx_id in {e["trx_id"] for e in ledger.history}


def test_bet_package_mixed_wins(stack: LocalStack, games: GamesServer, book: Book) -> None:
    game_uuid, calls = games.bet_package(
        book.player.session, bets=[100, 200, 300, 400], cancelled=[3], wins=[0, 500, 0]
    )
    assert len(calls) == 3
    book.moved(calls[0], minus=1000)
    book.moved(calls[1], plus=400)
    book.moved(calls[2], plus=500)
    ledger = assert_ledger(stack, book, rounds=(game_uuid,))
    assert moves(ledger.rounds[game_uuid]) == [("bet", 1000, 0), ("win", 0, 400), ("win", 0, 500)]
    assert ledger.rounds[game_uuid][2]["tag"]["result"] == [0, 500, 0]


def test_rounds_of_two_players_stay_apart(
    stack: LocalStack, games: GamesServer, book: Book, new_player: Callable[..., Player]
) -> None:
    other = Book(games, new_player(10000))
    mine, calls = games.slot_round(book.player.session, bet=10, win=20)
    book.moved(calls[0], minus=10)
    book.moved(calls[1], plus=20)
    theirs, calls = games.slot_round(other.player.session, bet=30, win=0)
    other.moved(calls[0], minus=30)
    ledger = assert_ledger(stack, book, other, rounds=(mine, theirs))
    assert {e["player"] for e in ledger.rounds[mine]} == {book.player.player}
    assert {e["player"] for e in ledger.rounds[theirs]} == {other.player.player}
    assert {e["trx_id"] for e in ledger.histories[0]}.isdisjoint(e["trx_id"] for e in ledger.histories[1])


# --- money rules ----------------------------------------------------------------------------------------------------


def test_not_enough_money_then_a_smaller_bet(stack: LocalStack, games: GamesServer, book: Book) -> None:
    refused = games.call(book.player.session, minus=START + 1, tag=Book._tag())
    book.expect(refused, status="not_enough_money")
    book.bet(START - 1)
    again_tag = Book._tag()
    refused_again = games.call(book.player.session, minus=2, tag=again_tag)
    book.expect(refused_again, status="not_enough_money")
    book.bet(1)
    assert book.balance == 0
    book.expect(games.call(book.player.session, minus=1, tag=Book._tag()), status="not_enough_money")
    book.win(5)
    # minus > balance is refused even when plus would cover it: the balance never goes below zero in between.
    book.expect(games.call(book.player.session, minus=6, plus=100, tag=Book._tag()), status="not_enough_money")
    # One request that bets and wins at once.
    both = games.call(book.player.session, minus=5, plus=100, tag=Book._tag())
    book.moved(both, minus=5, plus=100)
    book.ask()

    history = assert_ledger(stack, book).history
    recorded = {e["trx_id"] for e in history}
    assert refused.trx_id not in recorded
    assert refused_again.trx_id not in recorded
    # A refused trx_id is not burnt: the same trx_id, once the money is there, is a first request and moves money.
    retried = games.call(book.player.session, minus=2, tag=again_tag, trx_id=refused_again.trx_id)
    book.moved(retried, minus=2)
    assert_ledger(stack, book)


def test_replay_after_a_dropped_reply_moves_money_once(stack: LocalStack, games: GamesServer, book: Book) -> None:
    call = book.bet(700, drop_first_reply=True)
    assert call.attempts == 2
    assert call.statuses == [200, 200]
    win = book.win(90, drop_first_reply=True)
    assert win.attempts == 2
    book.ask()
    history = assert_ledger(stack, book).history
    assert [e["trx_id"] for e in history].count(call.trx_id) == 1
    assert [e["trx_id"] for e in history].count(win.trx_id) == 1


def test_replay_of_an_old_trx_id_returns_the_current_balance(stack: LocalStack, games: GamesServer, book: Book) -> None:
    tag = Book._tag()
    old = book.bet(100, tag=tag)
    book.bet(200)
    book.win(50)
    book.bet(25)
    replay = games.call(book.player.session, minus=100, tag=tag, trx_id=old.trx_id)
    # The guide: the current balance, not the one of the first reply.
    book.expect(replay)
    assert replay.reply["balance"] != old.reply["balance"]
    assert book.balance == START - 100 - 200 + 50 - 25
    history = assert_ledger(stack, book).history
    assert len(history) == 1 + 4  # opening + four movements


def test_conflicting_replay_moves_nothing(stack: LocalStack, games: GamesServer, book: Book) -> None:
    first = book.bet(100)
    conflicting = games.call(book.player.session, minus=5000, tag=Book._tag(), trx_id=first.trx_id)
    book.expect(conflicting)  # OK with the current balance, nothing moved
    as_win = games.call(book.player.session, plus=5000, tag=Book._tag(), trx_id=first.trx_id)
    book.expect(as_win)
    history = assert_ledger(stack, book).history
    (entry,) = [e for e in history if e["trx_id"] == first.trx_id]
    assert (entry["minus"], entry["plus"]) == (100, 0)


def test_a_trx_id_belongs_to_one_player(
    stack: LocalStack, games: GamesServer, book: Book, new_player: Callable[..., Player]
) -> None:
    """A trx_id is unique per player: another player's request with a used trx_id is that player's own transaction
    (its money moves, once); it is not a replay of the first player's, which moves nothing more."""
    other = Book(games, new_player(10000))
    first = book.bet(100)
    reused = games.call(other.player.session, minus=100, tag=Book._tag(), trx_id=first.trx_id)
    other.moved(reused, minus=100)
    again = games.call(other.player.session, minus=100, tag=Book._tag(), trx_id=first.trx_id)
    other.expect(again)  # the other player's replay: nothing more moves
    replay = games.call(book.player.session, minus=100, tag=Book._tag(), trx_id=first.trx_id)
    book.expect(replay)
    other.ask()
    book.ask()
    ledger = assert_ledger(stack, book, other)
    assert [sum(1 for e in history if e["trx_id"] == first.trx_id) for history in ledger.histories] == [1, 1]


def test_exact_decimal_balances(stack: LocalStack, book: Book) -> None:
    session = book.player.session
    replies = []
    for trx_id, minus, plus in (("dec-1", "0.1", 0), ("dec-2", "0.2", 0), ("dec-3", 0, "0.3"), ("dec-4", "0.07", 0)):
        status, text = post_raw(stack, do_body(session, f"{trx_id}-{uuid.uuid4().hex}", minus, plus, Book._tag()))
        assert status == 200
        replies.append(text)
    # The exact text on the wire: no binary float residue, an integer where the value is whole.
    assert replies == [
        '{"status":"OK","balance":9999.9,"currency":"FUN"}',
        '{"status":"OK","balance":9999.7,"currency":"FUN"}',
        '{"status":"OK","balance":10000,"currency":"FUN"}',
        '{"status":"OK","balance":9999.93,"currency":"FUN"}',
    ]
    book.balance = Decimal("9999.93")
    # The real console script shows it exactly too.
    assert cli_ok(stack, "balance", book.player.player)["balance"] == "9999.93"
    history = assert_ledger(stack, book).history
    assert [e["minus"] for e in history[:4]] == ["0.07", 0, "0.2", "0.1"]
    assert [e["balance_after"] for e in history[:4]] == ["9999.93", 10000, "9999.7", "9999.9"]


def test_integer_trx_id_is_the_same_key_as_its_text(stack: LocalStack, games: GamesServer, book: Book) -> None:
    """The guide: trx_id is a string or a positive integer; the sign uses its decimal text."""
    number = uuid.uuid4().int % 10**15 + 1
    body = do_body(book.player.session, str(number), minus=250, tag=Book._tag())
    as_number = body.replace(f'"trx_id":"{number}"', f'"trx_id":{number}')
    assert as_number != body
    status, text = post_raw(stack, as_number)
    book.balance -= 250
    assert (status, json.loads(text)) == (200, {"status": "OK", "balance": int(book.balance), "currency": "FUN"})
    book.expect(games.call(book.player.session, minus=250, tag=Book._tag(), trx_id=str(number)))  # a replay
    history = assert_ledger(stack, book).history
    assert [e["trx_id"] for e in history].count(str(number)) == 1


def test_invalid_amounts_move_nothing(stack: LocalStack, games: GamesServer, book: Book) -> None:
    for minus, plus in (("-5", "0"), ("0", "-1"), ('"abc"', "0"), ("true", "0"), ("0.000000001", "0"), ("1e400", "0")):
        body = do_body(book.player.session, f"bad-{uuid.uuid4().hex}", minus=minus, plus=plus, tag=Book._tag())
        assert post_raw(stack, body) == (200, '{"status":"session_not_found"}'), (minus, plus)
    book.ask()
    assert len(assert_ledger(stack, book).history) == 1  # the opening balance only


def test_an_expired_session_is_refused(stack: LocalStack, games: GamesServer, book: Book) -> None:
    rc, issued = stack.cli("session", "new", book.player.player, extra_env={"WALLET_SESSION_SECONDS": "1"})
    assert rc == 0, issued
    assert issued["expires_at"] <= time.time() + 1
    time.sleep(max(0.0, issued["expires_at"] - time.time()) + 0.05)
    assert games.call(issued["session"], minus=1, tag=Book._tag()).reply == {"status": "session_not_found"}
    assert games.balance(issued["session"]).reply == {"status": "session_not_found"}
    assert_ledger(stack, book)


# --- authentication -------------------------------------------------------------------------------------------------


def test_sign_failure_and_unknown_sessions(
    stack: LocalStack, games: GamesServer, book: Book, new_player: Callable[..., Player]
) -> None:
    session = book.player.session
    wrong_salt = GamesServer(stack.base_url, salt="not-" + SALT)
    assert wrong_salt.call(session, minus=100, tag=Book._tag()).reply == {"status": "sign_not_found"}
    assert wrong_salt.balance(session).reply == {"status": "sign_not_found"}
    forged = do_body(session, "forged-1", minus=100, tag=Book._tag(), sign="0" * 32)
    assert post_raw(stack, forged) == (200, '{"status":"sign_not_found"}')
    not_do = do_body(session, "not-do-1", minus=100, tag=Book._tag()).replace('"method":"do"', '"method":"undo"')
    assert post_raw(stack, not_do) == (200, '{"status":"sign_not_found"}')

    # Correctly signed, but no such session.
    ghost = f"nobody-{uuid.uuid4().hex[:8]}.{uuid.uuid4().hex}"
    assert games.call(ghost, minus=100, tag=Book._tag()).reply == {"status": "session_not_found"}
    assert games.balance(ghost).reply == {"status": "session_not_found"}
    assert games.balance("no-dot-at-all").reply == {"status": "session_not_found"}
    # The right player, a made-up secret.
    forged_session = f"{book.player.player}.{uuid.uuid4().hex}"
    assert games.call(forged_session, minus=100, tag=Book._tag()).reply == {"status": "session_not_found"}
    # A signed request with an invalid amount: session_not_found, nothing moves.
    negative = do_body(session, f"neg-{uuid.uuid4().hex}", minus=-5, tag=Book._tag())
    assert post_raw(stack, negative) == (200, '{"status":"session_not_found"}')

    # A new session revokes the previous one.
    tag = Book._tag()
    before_revoke = book.bet(100, tag=tag)
    rc, issued = stack.cli("session", "new", book.player.player)
    assert rc == 0, issued
    assert games.call(session, minus=100, tag=Book._tag()).reply == {"status": "session_not_found"}
    assert games.balance(session).reply == {"status": "session_not_found"}
    # ...but the Games Server's retry of a request the billing already took still gets OK (billing.py: a replay is
    # answered before the session check for the same player), and moves nothing.
    book.expect(games.call(session, minus=100, tag=tag, trx_id=before_revoke.trx_id))
    book.player = Player(book.player.player, issued["session"])
    book.ask()
    book.bet(100)

    # Another player's live secret under this player's id is no session of this player.
    other = Book(games, new_player(10000))
    other.bet(1)
    borrowed = f"{book.player.player}.{other.player.session.partition('.')[2]}"
    assert games.call(borrowed, minus=100, tag=Book._tag()).reply == {"status": "session_not_found"}
    book.ask()
    assert_ledger(stack, book, other)


# --- concurrency ----------------------------------------------------------------------------------------------------


def _race(stack: LocalStack, requests_: list[dict[str, Any]]) -> list[Call]:
    """Each request from its own thread and its own Games Server connection, all released at once."""
    start = threading.Barrier(len(requests_))

    def send(kwargs: dict[str, Any]) -> Call:
        games = GamesServer(stack.base_url)
        start.wait(timeout=30)
        return games.call(**kwargs)

    with ThreadPoolExecutor(max_workers=len(requests_)) as pool:
        return list(pool.map(send, requests_))


def test_racing_duplicates_move_money_once(stack: LocalStack, book: Book) -> None:
    trx_id = str(uuid.uuid4())
    request = {"session": book.player.session, "minus": 333, "tag": Book._tag(), "trx_id": trx_id}
    calls = _race(stack, [request] * 16)
    book.balance -= 333
    for call in calls:
        book.expect(call)
        assert call.statuses == [200], call.statuses
    history = assert_ledger(stack, book).history
    assert [e["trx_id"] for e in history].count(trx_id) == 1
    assert len(history) == 2  # opening + the one bet


def test_racing_distinct_bets_on_one_player(stack: LocalStack, book: Book) -> None:
    before = {e["trx_id"] for e in assert_ledger(stack, book).history}
    requests_ = [{"session": book.player.session, "minus": 7, "tag": Book._tag()} for _ in range(32)]
    calls = _race(stack, requests_)
    assert all(call.reply["status"] == "OK" for call in calls), [call.reply for call in calls]
    # Contention may cost a 5xx and a retry (the protocol allows it, rarely); never a wrong answer.
    assert all(call.statuses[-1] == 200 for call in calls)
    if all(call.attempts == 1 for call in calls):
        # Serialised, the 32 moves reported 32 different balances, one step of 7 apart.
        assert sorted(call.reply["balance"] for call in calls) == [int(START) - 7 * k for k in range(32, 0, -1)]
    book.balance -= 7 * 32
    book.ask()
    history = assert_ledger(stack, book).history
    new = [e for e in history if e["trx_id"] not in before]
    assert len(new) == 32
    assert sorted(e["trx_id"] for e in new) == sorted(call.trx_id for call in calls)
    assert all((e["minus"], e["plus"]) == (7, 0) for e in new)
    # The entries chain: each one's balance_before is the balance_after of the one before it.
    chain = sorted(history, key=lambda e: Decimal(str(e["balance_after"])), reverse=True)
    for older, newer in itertools.pairwise(chain):
        assert Decimal(str(newer["balance_before"])) == Decimal(str(older["balance_after"]))


# --- the ledger of everyone ------------------------------------------------------------------------------------------


def test_every_player_balance_is_the_sum_of_its_ledger(stack: LocalStack, games: GamesServer, book: Book) -> None:
    """Last in the module: for every player these tests created, balance == sum(plus - minus) over its history."""
    _, calls = games.bet_package(book.player.session, bets=[10, 20], cancelled=[0], wins=[0])
    book.moved(calls[0], minus=30)
    book.moved(calls[1], plus=10)
    book.moved(calls[2], plus=0)
    assert len(stack.created) >= 1

    commands = []
    for player in stack.created:
        commands += [["balance", player.player], ["history", player.player, "--limit", "1000"]]
    outputs = stack.cli_batch(*commands)
    assert all(rc == 0 for rc, _ in outputs), [out for rc, out in outputs if rc != 0]
    results = [
        (player.player, Decimal(str(account["balance"])), ledger_sum(history), len(history))
        for player, (_, account), (_, history) in zip(stack.created, outputs[::2], outputs[1::2], strict=True)
    ]
    mismatches = [(player, balance, total) for player, balance, total, _ in results if balance != total]
    assert mismatches == []
    assert all(count >= 1 for *_, count in results)  # at least the opening balance
    # And the operator's own invariant checker, over the whole table (the demo player included), finds nothing.
    rc, audit = stack.cli("audit", "--scan")
    assert rc == 0, audit
    assert audit["violations"] == []
    assert audit["clean"] is True
    assert audit["players"] >= len(stack.created) + 1
