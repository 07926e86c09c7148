"""Money owed must land (docs/PROTOCOL.md, "Sessions"): credits on replaced, revoked and expired sessions within the
grace period; a trx_id per player; player status; session revoke. With an injected clock, on the in-memory twin
(tests/unit/conftest.py's `store`), and on moto for the tests that count DynamoDB operations or read raw items."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.support import do_body
from tests.unit.test_billing import SLOT, Clock, balance, do, entries, wallet_on
from wallet.money.games_server import Event
from wallet.money.ledger import PlayerStatus, Source
from wallet.money.operator_moves import OperatorError
from wallet.money.protocol import SESSION_NOT_FOUND
from wallet.money.store import WalletStore
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store

DAY = 24 * 60 * 60
ROUND = {**SLOT, "game_uuid": "R-1"}
BETTING = {"game": "bet", "game_id": "sport", "game_uuid": "B-1"}
BALANCE_REQUEST = {"game": "slot", "game_id": ""}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def owed(store: WalletStore, clock: Clock) -> Wallet:
    """A wallet with one-hour sessions and a 2-day grace, and p1 with 1000 FUN."""
    wallet = wallet_on(store, clock, session_seconds=3600, credit_grace_seconds=2 * DAY)
    wallet.create_player("p1", "FUN", Decimal(1000))
    return wallet


def game_entries(wallet: Wallet, player_id: str = "p1") -> list[Any]:
    """The player's game entries in the order they were written (the account version)."""
    return sorted((e for e in entries(wallet, player_id) if e.source is Source.GAME), key=lambda e: e.account_version)


# --- replaced, revoked, expired -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "plus", "tag", "event", "after"),
    [
        ("win", 250, ROUND, Event.WIN, 1150),
        ("cancel refund", 100, {**BETTING, "bets": ["[0]:100"], "cancel": True}, Event.WIN, 1000),
        ("zero win", 0, {**BETTING, "result": [0]}, Event.ZERO_WIN, 900),
    ],
)
def test_credits_on_a_replaced_session_land_exactly_once(
    owed: Wallet, what: str, plus: int, tag: dict[str, Any], event: Event, after: int
) -> None:
    old = owed.new_session("p1").token
    assert do(owed, old, "bet", 100, 0, {**tag, "bets": ["[0]:100"]}).reply.balance == 900
    new = owed.new_session("p1").token  # the player opened another game
    credit = do_body(old, f"credit-{what}", 0, plus, tag)
    first = owed.handle_do(credit)
    assert first.reply.to_json() == f'{{"status":"OK","balance":{after},"currency":"FUN"}}', what
    assert first.event is event
    replay = owed.handle_do(credit)
    assert (replay.event, replay.reply.balance) == (Event.DUPLICATE, after)
    # The old session starts nothing new: no bet, no balance request.
    assert do(owed, old, "bet-2", 1, 0, ROUND).reply == SESSION_NOT_FOUND
    assert do(owed, old, "ask", 0, 0, BALANCE_REQUEST).reply == SESSION_NOT_FOUND
    assert do(owed, new, "bet-3", 1, 0, ROUND).reply.balance == after - 1
    assert [e.trx_id for e in game_entries(owed)] == ["bet", f"credit-{what}", "bet-3"]
    assert audit_store(owed.store).clean


def test_a_credit_on_the_live_session_costs_no_extra_read(owed: Wallet, calls: list[str]) -> None:
    live = owed.new_session("p1").token
    calls.clear()
    assert do(owed, live, "w", 0, 5, ROUND).reply.balance == 1005
    assert calls == ["BatchGetItem", "TransactWriteItems"]


def test_a_credit_on_a_replaced_session_costs_one_read_more(owed: Wallet, calls: list[str]) -> None:
    old = owed.new_session("p1").token
    owed.new_session("p1")
    calls.clear()
    assert do(owed, old, "w", 0, 5, ROUND).reply.balance == 1005
    assert calls == ["BatchGetItem", "GetItem", "TransactWriteItems"]


def test_a_bet_on_the_live_session_is_unchanged(owed: Wallet, calls: list[str]) -> None:
    live = owed.new_session("p1").token
    calls.clear()
    assert do(owed, live, "b", 5, 0, ROUND).reply.balance == 995
    assert calls == ["BatchGetItem", "TransactWriteItems"]


def test_credits_after_revoke(owed: Wallet) -> None:
    session = owed.new_session("p1").token
    do(owed, session, "bet", 100, 0, ROUND)
    assert owed.revoke_session("p1") is True
    assert owed.revoke_session("p1") is False  # nothing live any more: still fine
    assert do(owed, session, "win", 0, 300, ROUND).reply.balance == 1200
    assert do(owed, session, "bet-2", 1, 0, ROUND).reply == SESSION_NOT_FOUND
    assert do(owed, session, "ask", 0, 0, BALANCE_REQUEST).reply == SESSION_NOT_FOUND
    assert owed.account("p1").session_hash is None


def test_revoke_an_unknown_player(owed: Wallet) -> None:
    with pytest.raises(OperatorError, match="unknown player"):
        owed.revoke_session("ghost")


@pytest.mark.parametrize("replaced", [False, True])
def test_credits_after_expiry_until_the_grace_period_ends(owed: Wallet, clock: Clock, replaced: bool) -> None:
    issued = owed.new_session("p1")
    do(owed, issued.token, "bet", 100, 0, ROUND)
    if replaced:
        owed.new_session("p1")
    clock.now = issued.expires_at  # expired
    assert do(owed, issued.token, "bet-late", 1, 0, ROUND).reply == SESSION_NOT_FOUND
    assert do(owed, issued.token, "win", 0, 50, ROUND).reply.balance == 950
    clock.now = issued.expires_at + 2 * DAY - 1  # the last second of the grace period
    assert do(owed, issued.token, "zero", 0, 0, {**ROUND, "game_uuid": "R-2"}).event is Event.ZERO_WIN
    clock.now = issued.expires_at + 2 * DAY  # past it
    late = do(owed, issued.token, "win-too-late", 0, 70, {**ROUND, "game_uuid": "R-3"})
    assert late.reply == SESSION_NOT_FOUND
    assert balance(owed) == 950
    assert [e.trx_id for e in game_entries(owed)] == ["bet", "win", "zero"]


def test_a_forged_token_gets_nothing(owed: Wallet, calls: list[str]) -> None:
    owed.new_session("p1")
    forged = "p1." + "A" * 43  # the right player, a secret we never issued
    calls.clear()
    for minus, plus, tag in ((0, 500, ROUND), (0, 0, ROUND), (5, 0, ROUND), (0, 0, BALANCE_REQUEST)):
        assert do(owed, forged, None, minus, plus, tag).reply == SESSION_NOT_FOUND
    assert balance(owed) == 1000
    assert "TransactWriteItems" not in calls


def test_another_players_session_pays_nothing_to_this_one(owed: Wallet) -> None:
    owed.create_player("p2", "FUN", Decimal(0))
    p2_old = owed.new_session("p2").token
    owed.new_session("p2")
    # p2's old secret with p1's id: a session we never issued to p1.
    forged = "p1." + p2_old.partition(".")[2]
    assert do(owed, forged, None, 0, 500, ROUND).reply == SESSION_NOT_FOUND
    assert (balance(owed, "p1"), balance(owed, "p2")) == (1000, 0)


def test_a_credit_without_a_round_needs_the_live_session(owed: Wallet) -> None:
    old = owed.new_session("p1").token
    owed.new_session("p1")
    # plus > 0 with no game_uuid cannot be tied to a round played on that session: treated like any new request.
    assert do(owed, old, None, 0, 10, {"game": "slot", "game_id": "a_op"}).reply == SESSION_NOT_FOUND
    assert balance(owed) == 1000


def test_a_bet_and_win_in_one_request_is_a_debit(owed: Wallet) -> None:
    old = owed.new_session("p1").token
    owed.new_session("p1")
    assert do(owed, old, None, 10, 50, ROUND).reply == SESSION_NOT_FOUND
    assert balance(owed) == 1000


def test_the_session_record_is_kept_for_the_grace_period(owed: Wallet, moto_client: Any) -> None:
    issued = owed.new_session("p1")
    item = moto_client.get_item(
        TableName="wallet-test", Key={"pk": {"S": "PLAYER#p1"}, "sk": {"S": f"SESSION#{issued.token_hash}"}}
    )["Item"]
    assert int(item["expires_at"]["N"]) == issued.expires_at
    assert int(item["purge_at"]["N"]) == issued.expires_at + 2 * DAY
    assert issued.token not in str(item)


# --- a trx_id per player --------------------------------------------------------------------------------------------


def test_a_win_on_another_players_trx_id_is_not_swallowed(owed: Wallet) -> None:
    owed.create_player("p2", "FUN", Decimal(0))
    p1 = owed.new_session("p1").token
    p2 = owed.new_session("p2").token
    do(owed, p1, "7", 0, 40, ROUND)
    outcome = do(owed, p2, "7", 0, 40, {**ROUND, "game_uuid": "R-p2"})
    assert (outcome.reply.balance, outcome.event, outcome.cross_player) == (40, Event.WIN, True)
    assert (balance(owed, "p1"), balance(owed, "p2")) == (1040, 40)


def test_a_third_player_on_the_same_trx_id(owed: Wallet) -> None:
    sessions = {"p1": owed.new_session("p1").token}
    for player in ("p2", "p3"):
        owed.create_player(player, "FUN", Decimal(100))
        sessions[player] = owed.new_session(player).token
    for player, session in sessions.items():
        assert do(owed, session, "1", 10, 0, ROUND).event is Event.BET, player
        assert do(owed, session, "1", 10, 0, ROUND).event is Event.DUPLICATE, player
    assert [balance(owed, p) for p in sessions] == [990, 90, 90]
    assert audit_store(owed.store).clean


def test_another_players_trx_id_that_does_not_fit_is_not_enough_money(owed: Wallet) -> None:
    owed.create_player("p2", "FUN", Decimal(5))
    do(owed, owed.new_session("p1").token, "t", 100, 0, ROUND)
    refused = do(owed, owed.new_session("p2").token, "t", 100, 0, ROUND)
    assert (refused.reply.status, refused.reply.balance, refused.cross_player) == ("not_enough_money", 5, True)


def test_operator_refs_stay_global(owed: Wallet) -> None:
    owed.create_player("p2", "FUN", Decimal(0))
    owed.deposit("p1", "10", "pay-1")
    with pytest.raises(OperatorError, match="used before"):
        owed.deposit("p2", "10", "pay-1")
    assert (balance(owed, "p1"), balance(owed, "p2")) == (1010, 0)


# --- player status ------------------------------------------------------------------------------------------------

NOT_ACTIVE = [PlayerStatus.SUSPENDED, PlayerStatus.SELF_EXCLUDED, PlayerStatus.CLOSED]


@pytest.mark.parametrize("status", NOT_ACTIVE)
def test_a_player_who_is_not_active(owed: Wallet, status: PlayerStatus) -> None:
    session = owed.new_session("p1").token
    do(owed, session, "bet", 100, 0, ROUND)
    owed.set_status("p1", status, "responsible gambling review", "alice")
    account = owed.account("p1")
    assert (account.status, account.session_hash, account.balance) == (status, None, 900)
    # Every debit and balance request is refused; money owed for their rounds still lands.
    assert do(owed, session, "bet-2", 1, 0, ROUND).reply == SESSION_NOT_FOUND
    assert do(owed, session, "bw", 1, 5, ROUND).reply == SESSION_NOT_FOUND
    assert do(owed, session, "ask", 0, 0, BALANCE_REQUEST).reply == SESSION_NOT_FOUND
    assert do(owed, session, "win", 0, 300, ROUND).reply.balance == 1200
    assert do(owed, session, "zero", 0, 0, {**ROUND, "game_uuid": "R-2"}).reply.balance == 1200
    assert do(owed, session, "bet", 100, 0, ROUND).event is Event.DUPLICATE  # a replay still answers OK
    with pytest.raises(OperatorError, match=f"is {status.value}: no new session"):
        owed.new_session("p1")
    assert owed.withdraw("p1", "200", "wd-1").balance == 1000
    if status is PlayerStatus.CLOSED:
        with pytest.raises(OperatorError, match="is closed: deposits are refused"):
            owed.deposit("p1", "50", "dep-1")
        assert balance(owed) == 1000
    else:
        assert owed.deposit("p1", "50", "dep-1").balance == 1050
    assert audit_store(owed.store).clean


def test_reactivation_allows_play_again(owed: Wallet) -> None:
    owed.set_status("p1", "suspended", "chargeback", "alice")
    owed.set_status("p1", "active", "resolved", "bob")
    session = owed.new_session("p1").token
    assert do(owed, session, "bet", 10, 0, ROUND).reply.balance == 990


def test_a_status_change_is_a_ledger_event(owed: Wallet, clock: Clock) -> None:
    result = owed.set_status("p1", "self_excluded", "  player asked for 6 months  ", "support-7")
    assert result.entry is not None
    [status, opening] = entries(owed)
    assert status == result.entry
    assert (status.kind, status.minus, status.plus, status.balance_before, status.balance_after) == (
        "status",
        0,
        0,
        1000,
        1000,
    )
    assert status.tag == {
        "operator": "status",
        "status": "self_excluded",
        "reason": "player asked for 6 months",
        "by": "support-7",
    }
    assert status.account_version == 1 and owed.account("p1").version == 1
    assert status.created_at.startswith("2027-01-15")  # the injected clock
    assert opening.kind == "opening"
    assert audit_store(owed.store).clean


@pytest.mark.parametrize(
    ("status", "reason", "by", "error"),
    [
        ("frozen", "why", "me", "status must be one of active, suspended, self_excluded, closed"),
        ("closed", "   ", "me", "reason must be 1-500 characters"),
        ("closed", "x" * 501, "me", "reason must be 1-500 characters"),
        ("closed", "why", "", "by must be 1-128 characters"),
        ("closed", "bad \udcff", "me", "reason is not valid text"),
    ],
)
def test_bad_status_changes_change_nothing(owed: Wallet, status: str, reason: str, by: str, error: str) -> None:
    with pytest.raises(OperatorError, match=error):
        owed.set_status("p1", status, reason, by)
    assert owed.account("p1").version == 0
    assert len(entries(owed)) == 1


def test_status_of_an_unknown_player(owed: Wallet) -> None:
    with pytest.raises(OperatorError, match="unknown player ghost"):
        owed.set_status("ghost", "closed", "why", "me")


def test_a_session_for_an_unknown_player(owed: Wallet) -> None:
    with pytest.raises(OperatorError, match="unknown player ghost"):
        owed.new_session("ghost")


@pytest.mark.parametrize(
    ("what", "minus", "plus", "tag"),
    [("a bet", 10, 0, ROUND), ("a credit with no round", 0, 10, {"game": "slot", "game_id": "a_op"})],
)
def test_what_needs_the_live_session_needs_it_when_written(
    owed: Wallet, what: str, minus: int, plus: int, tag: dict[str, Any]
) -> None:
    """A new session lands between the request's read and its write (found by tests/simulation): refused, not booked."""
    session = owed.new_session("p1").token
    read = owed.store.get_account_and_entry

    def new_session_after_read(*args: Any, **kwargs: Any) -> Any:
        found = read(*args, **kwargs)
        owed.store.get_account_and_entry = read  # type: ignore[method-assign]
        owed.new_session("p1")
        return found

    owed.store.get_account_and_entry = new_session_after_read  # type: ignore[method-assign]
    assert do(owed, session, None, minus, plus, tag).reply == SESSION_NOT_FOUND, what
    assert balance(owed) == 1000
    assert game_entries(owed) == []
