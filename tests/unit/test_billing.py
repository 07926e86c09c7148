"""The wallet's use cases: every reply of POST /do and every money rule of PROTOCOL.md, and the operator.

The money rules run on the in-memory twin (the `store` fixture, tests/unit/conftest.py); the tests that count DynamoDB
operations (`calls`) or read raw items (`moto_client`) run on moto's table."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.support import SALT, SESSION_KEY, do_body
from wallet.bootstrap import Secrets
from wallet.money.games_server import BillingUnavailable, Event
from wallet.money.ledger import LedgerEntry, Source
from wallet.money.mover import BACK_OFF_CAP_SECONDS, BillingContended, MoveStatus
from wallet.money.operator_moves import OperatorError
from wallet.money.protocol import SESSION_NOT_FOUND, SIGN_NOT_FOUND
from wallet.money.sessions import MAX_SESSION_SECONDS, InvalidPlayerId
from wallet.money.sign import compute_sign
from wallet.money.store import Contended, StaleAccount, WalletStore
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store
from wallet.settings import Settings

SLOT = {"game": "slot", "game_id": "a_op", "lines": 9, "bet": 1, "denomination": 100}


class Clock:
    def __init__(self, start: float = 1_800_000_000.0, step: float = 0.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def wallet_on(store: WalletStore, clock: Callable[[], float] = time.time, **kwargs: Any) -> Wallet:
    settings = Settings(table_name="wallet-test", salt=SALT, session_key=SESSION_KEY)
    return Wallet(store, Secrets(settings), clock=clock, sleep=lambda _: None, **kwargs)


@pytest.fixture
def wallet(store: WalletStore) -> Wallet:
    """tests/conftest.py's wallet (and so its `player`), on this module's store."""
    return wallet_on(store)


def do(wallet: Wallet, session: str, trx_id: str | None = None, minus: Any = 0, plus: Any = 0, tag: Any = None) -> Any:
    return wallet.handle_do(
        do_body(session, trx_id or str(uuid.uuid4()), minus, plus, tag if tag is not None else SLOT)
    )


def balance(wallet: Wallet, player_id: str = "p1") -> Decimal:
    return wallet.account(player_id).balance


def entries(wallet: Wallet, player_id: str = "p1") -> list[LedgerEntry]:
    return wallet.history(player_id)


def game_entry(wallet: Wallet, trx_id: str) -> LedgerEntry | None:
    return wallet.store.get_account_and_entry("p1", Source.GAME, trx_id)[1]


# --- the four replies ---------------------------------------------------------------------------------------------


def test_balance_request_reads_once_and_moves_nothing(
    wallet: Wallet, player: tuple[str, str], calls: list[str]
) -> None:
    _, session = player
    outcome = do(wallet, session, "b-1", 0, 0, {"game": "slot", "game_id": ""})
    assert outcome.reply.to_json() == '{"status":"OK","balance":1000,"currency":"FUN"}'
    assert outcome.event is Event.BALANCE
    assert calls == ["GetItem"]
    assert balance(wallet) == 1000
    assert [e.kind for e in entries(wallet)] == ["opening"]
    assert game_entry(wallet, "b-1") is None


def test_bet(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    outcome = do(wallet, session, "t-bet", 100, 0, SLOT)
    assert outcome.reply.to_json() == '{"status":"OK","balance":900,"currency":"FUN"}'
    assert outcome.event is Event.BET
    assert (outcome.trx_id, outcome.player_id, outcome.minus, outcome.plus) == ("t-bet", "p1", 100, 0)
    assert balance(wallet) == 900
    entry = game_entry(wallet, "t-bet")
    assert entry is not None
    assert (entry.kind, entry.minus, entry.plus, entry.balance_before, entry.balance_after) == (
        "bet",
        100,
        0,
        1000,
        900,
    )
    assert entry.tag == SLOT
    assert entry.player_id == "p1"
    assert entry.currency == "FUN"
    assert entry.created_at.endswith("Z")


def test_win(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    outcome = do(wallet, session, "t-win", 0, 250)
    assert outcome.reply.to_json() == '{"status":"OK","balance":1250,"currency":"FUN"}'
    assert outcome.event is Event.WIN
    entry = game_entry(wallet, "t-win")
    assert entry is not None
    assert (entry.kind, entry.balance_before, entry.balance_after) == ("win", 1000, 1250)


def test_bet_then_win_make_a_round(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    tag = {**SLOT, "game_uuid": 778899001122}
    assert do(wallet, session, "r-bet", 100, 0, tag).reply.balance == 900
    assert do(wallet, session, "r-win", 0, 300, {**tag, "result": [7, 7, 7]}).reply.balance == 1200
    do(wallet, session, "other", 5, 0, {**SLOT, "game_uuid": "778899001123"})
    round_ = wallet.round("778899001122")
    assert [(e.trx_id, e.kind, e.minus, e.plus) for e in round_] == [("r-bet", "bet", 100, 0), ("r-win", "win", 0, 300)]
    assert all(e.game_uuid == "778899001122" for e in round_)
    assert round_[1].tag["result"] == [7, 7, 7]
    assert round_[1].tag["game_uuid"] == 778899001122  # the tag is stored as sent


def test_bet_package_cancel_and_win_are_one_round(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    base = {"game": "bet", "game_id": "1009", "game_uuid": "BP-1", "round": 10000}
    do(wallet, session, "bp-1", 300, 0, {**base, "bets": ["[0]:100", "[1]:200"]})
    do(wallet, session, "bp-2", 0, 100, {**base, "bets": ["[0]:100"], "cancel": True})
    do(wallet, session, "bp-3", 0, 0, {**base, "result": [0]})
    assert [e.kind for e in wallet.round("BP-1")] == ["bet", "win", "zero_win"]
    assert balance(wallet) == 800


def test_bet_and_win_in_one_request(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    outcome = do(wallet, session, "bw", 100, 250, {**SLOT, "game_uuid": "R-2"})
    assert outcome.reply.balance == 1150
    assert outcome.event is Event.BET_AND_WIN
    entry = game_entry(wallet, "bw")
    assert entry is not None
    assert (entry.kind, entry.minus, entry.plus, entry.balance_after) == ("bet_and_win", 100, 250, 1150)


def test_zero_win_is_recorded(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    outcome = do(wallet, session, "zw", 0, 0, {**SLOT, "game_uuid": "R-0"})
    assert outcome.reply.to_json() == '{"status":"OK","balance":1000,"currency":"FUN"}'
    assert outcome.event is Event.ZERO_WIN
    assert [(e.trx_id, e.kind, e.minus, e.plus) for e in wallet.round("R-0")] == [("zw", "zero_win", 0, 0)]
    assert wallet.account("p1").version == 1  # the account went through the same transaction


def test_not_enough_money(wallet: Wallet, player: tuple[str, str], calls: list[str]) -> None:
    _, session = player
    outcome = do(wallet, session, "too-much", 1001, 0)
    assert outcome.reply.to_json() == '{"status":"not_enough_money","balance":1000,"currency":"FUN"}'
    assert outcome.event is Event.NOT_ENOUGH_MONEY
    assert "TransactWriteItems" not in calls
    assert balance(wallet) == 1000
    assert game_entry(wallet, "too-much") is None
    assert wallet.account("p1").version == 0


def test_not_enough_money_even_when_plus_would_cover_it(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    outcome = do(wallet, session, "bw-too-much", 1001, 5000)
    assert outcome.reply.status == "not_enough_money"
    assert balance(wallet) == 1000


def test_exactly_enough_leaves_zero_and_never_below(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    assert do(wallet, session, "all-in", 1000, 0).reply.to_json() == '{"status":"OK","balance":0,"currency":"FUN"}'
    assert balance(wallet) == 0
    tiny = do(wallet, session, "one-more", "0.00000001", 0)
    assert tiny.reply.to_json() == '{"status":"not_enough_money","balance":0,"currency":"FUN"}'
    assert balance(wallet) == 0


# --- idempotency --------------------------------------------------------------------------------------------------


def test_replay_gets_the_current_balance_and_moves_nothing(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    body = do_body(session, "t-1", 100, 0, SLOT)
    assert wallet.handle_do(body).reply.balance == 900
    do(wallet, session, "t-2", 0, 50)
    do(wallet, session, "t-3", 25, 0)
    replay = wallet.handle_do(body)
    assert replay.reply.to_json() == '{"status":"OK","balance":925,"currency":"FUN"}'
    assert replay.event is Event.DUPLICATE
    assert replay.conflict is False
    assert balance(wallet) == 925
    assert len(entries(wallet)) == 4  # opening + 3


def test_replay_with_a_different_body_is_a_conflict(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    do(wallet, session, "t-1", 100, 0, SLOT)
    version = wallet.account("p1").version
    for minus, plus, tag in ((500, 0, SLOT), (100, 7, SLOT), (100, 0, {**SLOT, "lines": 20})):
        twin = do(wallet, session, "t-1", minus, plus, tag)
        assert twin.reply.to_json() == '{"status":"OK","balance":900,"currency":"FUN"}'
        assert twin.event is Event.DUPLICATE
        assert twin.conflict is True
    assert balance(wallet) == 900
    assert wallet.account("p1").version == version
    stored = game_entry(wallet, "t-1")
    assert stored is not None
    assert (stored.minus, stored.plus, stored.tag) == (100, 0, SLOT)


def test_replay_of_an_equal_amount_written_differently_is_no_conflict(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    do(wallet, session, "t-1", 100, 0, SLOT)
    assert do(wallet, session, "t-1", "100.00", "0", SLOT).conflict is False


def test_replay_after_the_balance_dropped_is_still_ok(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    body = do_body(session, "big-bet", 600, 0, SLOT)
    assert wallet.handle_do(body).reply.balance == 400
    do(wallet, session, "drain", 400, 0)
    replay = wallet.handle_do(body)
    assert replay.reply.to_json() == '{"status":"OK","balance":0,"currency":"FUN"}'
    assert balance(wallet) == 0


def test_not_enough_money_does_not_consume_the_trx_id(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    assert do(wallet, session, "t-1", 1500, 0).reply.status == "not_enough_money"
    wallet.deposit("p1", "500", "top-up")
    assert do(wallet, session, "t-1", 1500, 0).reply.to_json() == '{"status":"OK","balance":0,"currency":"FUN"}'


def test_replay_after_the_session_was_replaced(wallet: Wallet, player: tuple[str, str]) -> None:
    _, old = player
    body = do_body(old, "t-1", 100, 0, SLOT)
    assert wallet.handle_do(body).reply.balance == 900
    new = wallet.new_session("p1").token
    do(wallet, new, "t-2", 0, 40)
    # Our decision (billing.py move()): a retry of a transaction that was accepted still gets OK, current balance.
    replay = wallet.handle_do(body)
    assert replay.reply.to_json() == '{"status":"OK","balance":940,"currency":"FUN"}'
    assert replay.event is Event.DUPLICATE
    # ...but the old session cannot start anything new.
    assert do(wallet, old, "t-3", 1, 0).reply == SESSION_NOT_FOUND
    assert do(wallet, old, "t-4", 0, 0, {"game": "slot", "game_id": ""}).reply == SESSION_NOT_FOUND
    assert balance(wallet) == 940
    assert game_entry(wallet, "t-3") is None


def test_trx_id_of_another_player_is_this_players_own_transaction(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    do(wallet, session, "shared", 100, 0)
    wallet.create_player("p2", "FUN", Decimal(500))
    p2 = wallet.new_session("p2").token
    twin = do(wallet, p2, "shared", 100, 0)
    # Not a free bet: p2's own money moves, once, and the reuse is flagged (docs/PROTOCOL.md, "a trx_id per player").
    assert twin.reply.to_json() == '{"status":"OK","balance":400,"currency":"FUN"}'
    assert (twin.event, twin.cross_player, twin.conflict) == (Event.BET, True, False)
    replay = do(wallet, p2, "shared", 100, 0)
    assert (replay.event, replay.reply.balance, replay.cross_player) == (Event.DUPLICATE, 400, True)
    assert do(wallet, session, "shared", 100, 0).event is Event.DUPLICATE
    assert (balance(wallet, "p1"), balance(wallet, "p2")) == (900, 400)
    [own] = [e for e in entries(wallet, "p2") if e.source is Source.GAME]
    assert (own.trx_id, own.player_id, own.minus, own.scoped) == ("shared", "p2", 100, True)
    assert own.entry_id == "game:p2:shared" != game_entry(wallet, "shared").entry_id  # type: ignore[union-attr]
    wallet.new_session("p2")  # p2's old session is replaced: its own replay still answers OK before the session check
    assert do(wallet, p2, "shared", 100, 0).reply.to_json() == '{"status":"OK","balance":400,"currency":"FUN"}'
    assert audit_store(wallet.store).clean


def test_game_and_operator_keys_are_separate(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    do(wallet, session, "k-1", 100, 0)
    wallet.deposit("p1", "10", "k-1")
    assert balance(wallet) == 910


# --- sessions -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "p1.not-the-right-secret",
        "p1.",
        "p1",
        ".secret",
        "bad id!.secret",
        "p1." + "x" * 250,
        "ghost.abcdefabcdefabcdef",
    ],
)
def test_unknown_or_malformed_session(wallet: Wallet, player: tuple[str, str], token: str) -> None:
    for minus, plus, tag in ((100, 0, SLOT), (0, 0, {"game": "slot", "game_id": ""})):
        outcome = do(wallet, token, None, minus, plus, tag)
        assert outcome.reply.to_json() == '{"status":"session_not_found"}'
        assert outcome.event is Event.SESSION_NOT_FOUND
    assert balance(wallet) == 1000
    assert len(entries(wallet)) == 1


def test_the_secret_of_one_player_does_not_open_another(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    wallet.create_player("p2", "FUN", Decimal(500))
    wallet.new_session("p2")
    forged = "p2." + session.partition(".")[2]
    assert do(wallet, forged, None, 100, 0).reply == SESSION_NOT_FOUND
    assert balance(wallet, "p2") == 500


def test_player_without_a_session(wallet: Wallet) -> None:
    wallet.create_player("p3", "FUN", Decimal(100))
    assert do(wallet, "p3.whatever", None, 1, 0).reply == SESSION_NOT_FOUND
    assert do(wallet, "p3.whatever", None, 0, 0, {}).reply == SESSION_NOT_FOUND


def test_expired_session(store: WalletStore) -> None:
    clock = Clock()
    wallet = wallet_on(store, clock, session_seconds=3600)
    wallet.create_player("p1", "FUN", Decimal(1000))
    issued = wallet.new_session("p1")
    assert issued.expires_at == int(clock.now) + 3600
    clock.now = issued.expires_at - 1
    assert do(wallet, issued.token, None, 1, 0).reply.balance == 999
    assert do(wallet, issued.token, None, 0, 0, {}).reply.balance == 999
    clock.now = issued.expires_at
    assert do(wallet, issued.token, None, 1, 0).reply == SESSION_NOT_FOUND
    assert do(wallet, issued.token, None, 0, 0, {}).reply == SESSION_NOT_FOUND
    assert balance(wallet) == 999


def test_session_never_lasts_more_than_a_day(store: WalletStore) -> None:
    clock = Clock()
    wallet = wallet_on(store, clock, session_seconds=10 * MAX_SESSION_SECONDS)
    wallet.create_player("p1", "FUN")
    issued = wallet.new_session("p1")
    assert issued.expires_at - int(clock.now) == MAX_SESSION_SECONDS == 86400


def test_sessions_are_stored_hashed(wallet: Wallet, player: tuple[str, str], moto_client: Any) -> None:
    _, session = player
    item = moto_client.get_item(TableName="wallet-test", Key={"pk": {"S": "PLAYER#p1"}, "sk": {"S": "ACCOUNT"}})
    assert session not in json.dumps(item["Item"])
    assert session.partition(".")[2] not in json.dumps(item["Item"])
    assert session.startswith("p1.")
    assert len(session.partition(".")[2]) >= 40  # 256 random bits


# --- sign and parse: refused before the database ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_sign",
    [
        lambda _session, _trx: "0" * 32,
        lambda session, trx: compute_sign(session, trx, "other-salt"),
        lambda session, trx: compute_sign(session, trx + "x", SALT),
        lambda session, trx: compute_sign(session + "x", trx, SALT),
    ],
)
def test_wrong_sign(wallet: Wallet, player: tuple[str, str], calls: list[str], make_sign: Any) -> None:
    _, session = player
    outcome = wallet.handle_do(do_body(session, "t-1", 100, 0, SLOT, sign=make_sign(session, "t-1")))
    assert outcome.reply.to_json() == '{"status":"sign_not_found"}'
    assert outcome.event is Event.SIGN_FAILURE
    assert calls == []
    assert balance(wallet) == 1000


@pytest.mark.parametrize(
    "body",
    [
        "",
        "garbage",
        "[]",
        '{"method":"do"}',
        '{"method":"do","session":"p1.x","sign":"0"}',
        '{"method":"do","session":"p1.x","trx_id":"1","sign":"0","minus":NaN,"plus":0}',
    ],
)
def test_unparseable_body(wallet: Wallet, player: tuple[str, str], calls: list[str], body: str) -> None:
    outcome = wallet.handle_do(body)
    assert outcome.reply == SIGN_NOT_FOUND
    assert outcome.event is Event.UNPARSEABLE
    assert calls == []


def test_signed_body_with_another_method_is_sign_not_found(
    wallet: Wallet, player: tuple[str, str], calls: list[str]
) -> None:
    _, session = player
    body = json.loads(do_body(session, "t-1", 100, 0))
    body["method"] = "withdraw"
    assert wallet.handle_do(json.dumps(body)).reply == SIGN_NOT_FOUND
    assert calls == []
    assert balance(wallet) == 1000


@pytest.mark.parametrize(
    ("minus", "plus"),
    [(-1, 0), (0, -5), ('"abc"', 0), ("1e30", 0), ("1e30", "1e30"), ("true", 0), (0, "null"), ('"1e3"', 0)],
)
def test_signed_request_with_an_invalid_amount(
    wallet: Wallet, player: tuple[str, str], calls: list[str], minus: Any, plus: Any
) -> None:
    _, session = player
    outcome = wallet.handle_do(do_body(session, "bad-amount", minus, plus, SLOT))
    assert outcome.reply.to_json() == '{"status":"session_not_found"}'
    assert outcome.event is Event.INVALID_REQUEST
    assert outcome.detail  # why, for the log
    assert calls == []
    assert balance(wallet) == 1000


def test_signed_request_with_an_unstorable_tag_number(wallet: Wallet, player: tuple[str, str]) -> None:
    _, session = player
    outcome = do(wallet, session, "big-tag", 1, 0, {**SLOT, "x": 10**40 + 1})
    assert outcome.reply == SESSION_NOT_FOUND


# --- exact amounts ------------------------------------------------------------------------------------------------


def test_decimal_amounts_are_exact(wallet: Wallet) -> None:
    wallet.create_player("d1", "EUR", Decimal(1))
    session = wallet.new_session("d1").token
    first = wallet.handle_do(do_body(session, "d-1", Decimal("0.1"), 0))
    assert first.reply.to_json() == '{"status":"OK","balance":0.9,"currency":"EUR"}'
    second = wallet.handle_do(do_body(session, "d-2", Decimal("0.2"), 0))
    assert second.reply.to_json() == '{"status":"OK","balance":0.7,"currency":"EUR"}'
    assert wallet.account("d1").balance == Decimal("0.7")
    third = wallet.handle_do(do_body(session, "d-3", 0, Decimal("0.30000001")))
    assert third.reply.to_json() == '{"status":"OK","balance":1.00000001,"currency":"EUR"}'
    fourth = wallet.handle_do(do_body(session, "d-4", Decimal("0.00000001"), 0))
    assert fourth.reply.to_json() == '{"status":"OK","balance":1,"currency":"EUR"}'
    assert str(wallet.account("d1").balance) in ("1", "1.00000000")


# --- races --------------------------------------------------------------------------------------------------------


def flaky(
    monkeypatch: pytest.MonkeyPatch, wallet: Wallet, method: str, failures: int, fail: Callable[[], Any]
) -> list[int]:
    """Make repository.<method> misbehave for its first `failures` calls; returns the running call count."""
    real = getattr(wallet.store, method)
    count = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        if count[0] <= failures:
            return fail()
        return real(*args, **kwargs)

    monkeypatch.setattr(wallet.store, method, wrapper)
    return count


@pytest.mark.parametrize("failures", [1, 3])
@pytest.mark.parametrize("lost", [lambda: StaleAccount(None), Contended])
def test_a_lost_race_is_retried(
    wallet: Wallet, player: tuple[str, str], monkeypatch: pytest.MonkeyPatch, failures: int, lost: Any
) -> None:
    _, session = player
    count = flaky(monkeypatch, wallet, "record", failures, lost)
    outcome = do(wallet, session, "race", 100, 0)
    assert outcome.reply.balance == 900
    assert outcome.attempts == failures + 1
    assert count[0] == failures + 1
    assert balance(wallet) == 900
    assert len(entries(wallet)) == 2


def test_contention_beyond_the_limit_raises(store: WalletStore, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    wallet = wallet_on(store, Clock(), max_write_attempts=4)
    wallet.sleep = slept.append
    wallet.create_player("p1", "FUN", Decimal(1000))
    session = wallet.new_session("p1").token
    count = flaky(monkeypatch, wallet, "record", 10**6, lambda: StaleAccount(None))
    with pytest.raises(BillingUnavailable) as raised:
        do(wallet, session, "race", 100, 0)
    assert isinstance(raised.value.__cause__, BillingContended)
    assert (raised.value.trx_id, raised.value.player_id) == ("race", "p1")
    assert count[0] == 4
    assert len(slept) == 4
    assert all(0 <= pause <= BACK_OFF_CAP_SECONDS for pause in slept)
    assert balance(wallet) == 1000


def test_retry_time_budget_gives_up_early(store: WalletStore, monkeypatch: pytest.MonkeyPatch) -> None:
    wallet = wallet_on(store, Clock(), max_write_attempts=10, retry_budget_seconds=-1)
    wallet.create_player("p1", "FUN", Decimal(1000))
    session = wallet.new_session("p1").token
    count = flaky(monkeypatch, wallet, "record", 10**6, lambda: StaleAccount(None))
    with pytest.raises(BillingUnavailable) as raised:
        do(wallet, session, "race", 100, 0)
    assert isinstance(raised.value.__cause__, BillingContended)
    assert (raised.value.trx_id, raised.value.player_id) == ("race", "p1")
    assert count[0] == 1
    assert balance(wallet) == 1000


def test_a_real_version_race_on_moto(
    wallet: Wallet, player: tuple[str, str], monkeypatch: pytest.MonkeyPatch, moto_client: Any
) -> None:
    """Another movement lands between our read and our write: DynamoDB refuses ours, we read again and retry."""
    _, session = player
    real = wallet.store.get_account_and_entry
    reads = [0]

    def read_then_someone_else_moves(*args: Any) -> Any:
        reads[0] += 1
        result = real(*args)
        if reads[0] == 1:
            monkeypatch.setattr(wallet.store, "get_account_and_entry", real)
            wallet.deposit("p1", "5", "concurrent")  # bumps the version after our read
            monkeypatch.setattr(wallet.store, "get_account_and_entry", read_then_someone_else_moves)
        return result

    monkeypatch.setattr(wallet.store, "get_account_and_entry", read_then_someone_else_moves)
    outcome = do(wallet, session, "loser", 100, 0)
    assert outcome.attempts == 2
    assert outcome.reply.balance == 905
    assert balance(wallet) == 905
    entry = game_entry(wallet, "loser")
    assert entry is not None
    assert (entry.balance_before, entry.balance_after) == (1005, 905)


def test_a_twin_wins_the_race_for_the_key(
    wallet: Wallet, player: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same trx_id is written by a concurrent twin between our read and our write: we move nothing, OK."""
    _, session = player
    body = do_body(session, "twin", 100, 0, SLOT)
    real = wallet.store.get_account_and_entry

    def read_then_twin_writes(*args: Any) -> Any:
        result = real(*args)
        monkeypatch.setattr(wallet.store, "get_account_and_entry", real)
        assert wallet.handle_do(body).event is Event.BET  # the twin
        return result

    monkeypatch.setattr(wallet.store, "get_account_and_entry", read_then_twin_writes)
    outcome = wallet.handle_do(body)
    assert outcome.reply.to_json() == '{"status":"OK","balance":900,"currency":"FUN"}'
    assert outcome.event is Event.DUPLICATE
    assert outcome.conflict is False
    assert balance(wallet) == 900
    assert len(entries(wallet)) == 2


# --- the operator -------------------------------------------------------------------------------------------------


def test_create_player_records_the_opening_balance(wallet: Wallet) -> None:
    account = wallet.create_player("p9", "EUR", Decimal("12.50"))
    assert (account.player_id, account.balance, account.currency, account.version) == ("p9", Decimal("12.5"), "EUR", 0)
    [opening] = wallet.history("p9")
    assert (opening.kind, opening.source, opening.minus, opening.plus) == (
        "opening",
        Source.OPERATOR,
        0,
        Decimal("12.5"),
    )
    assert (opening.balance_before, opening.balance_after) == (0, Decimal("12.5"))
    assert wallet.account("p9").balance == Decimal("12.5")


def test_create_player_without_opening_balance_has_no_entry(wallet: Wallet) -> None:
    wallet.create_player("p0", "FUN")
    assert wallet.account("p0").balance == 0
    assert wallet.history("p0") == []


def test_duplicate_player_is_refused(wallet: Wallet, player: tuple[str, str]) -> None:
    with pytest.raises(OperatorError, match="exists"):
        wallet.create_player("p1", "FUN", Decimal(5))
    assert balance(wallet) == 1000
    assert len(entries(wallet)) == 1


@pytest.mark.parametrize(
    ("player_id", "currency", "opening", "error"),
    [
        ("bad id", "FUN", Decimal(0), InvalidPlayerId),
        ("", "FUN", Decimal(0), InvalidPlayerId),
        ("x" * 65, "FUN", Decimal(0), InvalidPlayerId),
        ("ok", "", Decimal(0), OperatorError),
        ("ok", "F-N", Decimal(0), OperatorError),
        ("ok", "X" * 17, Decimal(0), OperatorError),
        ("ok", "FUN", Decimal(-1), OperatorError),
        ("ok", "FUN", Decimal("NaN"), OperatorError),
        ("ok", "FUN", Decimal("1E+16"), OperatorError),
    ],
)
def test_create_player_refuses(wallet: Wallet, player_id: str, currency: str, opening: Decimal, error: type) -> None:
    with pytest.raises(error):
        wallet.create_player(player_id, currency, opening)
    assert list(wallet.store.iter_accounts()) == []


def test_deposit_and_withdraw(wallet: Wallet, player: tuple[str, str]) -> None:
    deposit = wallet.deposit("p1", "250.5", "dep-1")
    assert (deposit.status, deposit.balance) == (MoveStatus.APPLIED, Decimal("1250.5"))
    withdrawal = wallet.withdraw("p1", Decimal("0.5"), "wd-1")
    assert (withdrawal.status, withdrawal.balance) == (MoveStatus.APPLIED, Decimal(1250))
    kinds = {e.trx_id: e.kind for e in entries(wallet)}
    assert kinds == {"opening#p1": "opening", "dep-1": "deposit", "wd-1": "withdrawal"}


@pytest.mark.parametrize("operation", ["deposit", "withdraw"])
def test_operator_moves_are_idempotent_by_ref(wallet: Wallet, player: tuple[str, str], operation: str) -> None:
    move = getattr(wallet, operation)
    first = move("p1", "100", "ref-1")
    again = move("p1", "100.00", "ref-1")
    assert first.status is MoveStatus.APPLIED
    assert again.status is MoveStatus.DUPLICATE
    assert again.balance == first.balance
    assert len(entries(wallet)) == 2
    with pytest.raises(OperatorError, match="different"):
        move("p1", "101", "ref-1")
    assert balance(wallet) == first.balance
    assert len(entries(wallet)) == 2


def test_deposit_and_withdraw_with_the_same_ref_conflict(wallet: Wallet, player: tuple[str, str]) -> None:
    wallet.deposit("p1", "100", "ref-1")
    with pytest.raises(OperatorError):
        wallet.withdraw("p1", "100", "ref-1")
    assert balance(wallet) == 1100


def test_withdraw_more_than_the_balance(wallet: Wallet, player: tuple[str, str]) -> None:
    with pytest.raises(OperatorError, match="not enough money"):
        wallet.withdraw("p1", "1000.01", "wd-big")
    assert balance(wallet) == 1000
    assert len(entries(wallet)) == 1
    assert wallet.withdraw("p1", "1000", "wd-all").balance == 0


def test_operator_unknown_player(wallet: Wallet) -> None:
    for call in (
        lambda: wallet.deposit("ghost", "1", "r"),
        lambda: wallet.withdraw("ghost", "1", "r"),
        lambda: wallet.new_session("ghost"),
        lambda: wallet.account("ghost"),
        lambda: wallet.history("ghost"),
    ):
        with pytest.raises(OperatorError, match="unknown player"):
            call()
    assert list(wallet.store.iter_entries()) == []


@pytest.mark.parametrize("amount", ["0", 0, Decimal(0), "-1", Decimal(-5), "abc", "1e3", "NaN", "", "0.000000001"])
@pytest.mark.parametrize("operation", ["deposit", "withdraw"])
def test_operator_bad_amounts(wallet: Wallet, player: tuple[str, str], operation: str, amount: Any) -> None:
    with pytest.raises(OperatorError):
        getattr(wallet, operation)("p1", amount, "r-bad")
    assert balance(wallet) == 1000


@pytest.mark.parametrize("ref", ["", "x" * 129])
def test_operator_bad_ref(wallet: Wallet, player: tuple[str, str], ref: str) -> None:
    with pytest.raises(OperatorError, match="ref"):
        wallet.deposit("p1", "1", ref)
    assert balance(wallet) == 1000


def test_new_session_revokes_the_previous(wallet: Wallet, player: tuple[str, str]) -> None:
    _, first = player
    second = wallet.new_session("p1").token
    assert second != first
    assert do(wallet, first, None, 1, 0).reply == SESSION_NOT_FOUND
    assert do(wallet, second, None, 1, 0).reply.balance == 999
    third = wallet.new_session("p1").token
    assert do(wallet, second, None, 1, 0).reply == SESSION_NOT_FOUND
    assert do(wallet, third, None, 1, 0).reply.balance == 998


# --- history and the ledger ---------------------------------------------------------------------------------------


def test_history_newest_first_and_the_ledger_adds_up(store: WalletStore) -> None:
    wallet = wallet_on(store, Clock(step=1.0))
    wallet.create_player("p1", "FUN", Decimal(1000))
    session = wallet.new_session("p1").token
    steps = [(100, 0), (0, 40), ("0.25", 0), (0, "0.75"), (50, 150), (0, 0)]
    for i, (minus, plus) in enumerate(steps):
        assert do(wallet, session, f"h-{i}", minus, plus, {**SLOT, "game_uuid": f"R-{i}"}).reply.status == "OK"
    wallet.deposit("p1", "10", "dep")
    wallet.withdraw("p1", "20", "wd")
    assert do(wallet, session, "nem", 10**6, 0).reply.status == "not_enough_money"
    do(wallet, session, "h-0", 100, 0, {**SLOT, "game_uuid": "R-0"})  # a replay adds nothing

    history = wallet.history("p1")
    assert [e.trx_id for e in history] == ["wd", "dep", "h-5", "h-4", "h-3", "h-2", "h-1", "h-0", "opening#p1"]
    assert [e.created_at for e in history] == sorted((e.created_at for e in history), reverse=True)
    assert [e.trx_id for e in wallet.history("p1", limit=2)] == ["wd", "dep"]

    account = wallet.account("p1")
    assert sum(e.plus for e in history) - sum(e.minus for e in history) == account.balance == Decimal("1030.5")
    chronological = list(reversed(history))
    assert chronological[0].balance_before == 0
    for earlier, later in itertools.pairwise(chronological):
        assert later.balance_before == earlier.balance_after
    for entry in history:
        assert entry.balance_after == entry.balance_before - entry.minus + entry.plus
        assert entry.balance_after >= 0
    assert chronological[-1].balance_after == account.balance
    assert account.version == len(history) - 1  # every movement after the opening bumped the version once
