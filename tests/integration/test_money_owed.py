"""Money owed, a trx_id per player and player status against DynamoDB Local (docs/PROTOCOL.md, "Sessions" and
"Player status"): real condition, transaction and cancellation semantics, concurrent requests, an injected clock."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import make_wallet
from tests.support import do_body
from wallet.bootstrap import make_dynamodb_client
from wallet.money.dynamodb import account_key, session_key
from wallet.money.games_server import BillingUnavailable, Event, Outcome
from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source
from wallet.money.mover import BillingContended, MoveResult, MoveStatus
from wallet.money.operator_moves import OperatorError
from wallet.money.sessions import IssuedSession
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store
from wallet_local.dynamodb_local import DynamoDBLocal
from wallet_local.table import create_table

pytestmark = pytest.mark.integration

HOUR = 60 * 60
DAY = 24 * HOUR
SLOT = {"game": "slot", "game_id": "a_op", "lines": 9, "bet": 1, "denomination": 100}
BALANCE_REQUEST = {"game": "slot", "game_id": ""}
FORGED = "p1." + "x" * 43


class Clock:
    """An injected wall clock, moved by hand. Starts at the real time so the records' TTL (purge_at) lies ahead."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


# --- fixtures and helpers -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def production_client(dynamodb_local: DynamoDBLocal) -> Any:
    """One client with the production settings (timeouts, one SDK retry) for the whole module."""
    return make_dynamodb_client(endpoint_url=dynamodb_local.endpoint)


@pytest.fixture
def table(production_client: Any) -> str:
    name = f"owed-{uuid.uuid4().hex[:10]}"
    create_table(production_client, name)
    return name


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def wallet_factory(production_client: Any, table: str, clock: Clock) -> Callable[..., Wallet]:
    """Wallets on this test's table with one-hour sessions and the injected clock; kwargs override (the grace)."""

    def build(**kwargs: Any) -> Wallet:
        options: dict[str, Any] = {"session_seconds": HOUR, "credit_grace_seconds": 2 * DAY, "clock": clock}
        return make_wallet(production_client, table, **{**options, **kwargs})

    return build


@pytest.fixture
def owed(wallet_factory: Callable[..., Wallet]) -> Wallet:
    """p1 with 1000 FUN, no session yet."""
    wallet = wallet_factory()
    wallet.create_player("p1", "FUN", Decimal(1000))
    return wallet


def send(wallet: Wallet, body: str) -> Outcome:
    """Like the Games Server: a 5xx (BillingUnavailable) is retried with the same body, up to 10 more times."""
    for _ in range(11):
        try:
            return wallet.handle_do(body)
        except BillingUnavailable:
            continue
    raise AssertionError("still unavailable after 11 attempts")


def race(wallet: Wallet, bodies: list[str], *others: Callable[[], Any]) -> tuple[list[Outcome], list[Any]]:
    """Every body (and every extra callable) at once, one thread each, released together by a barrier. The bodies'
    outcomes in body order, and the callables' results."""
    start = threading.Barrier(len(bodies) + len(others))

    def play(body: str) -> Outcome:
        start.wait()
        return send(wallet, body)

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(bodies) + len(others)) as pool:
        extra = [pool.submit(run, call) for call in others]
        outcomes = list(pool.map(play, bodies))
        return outcomes, [future.result() for future in extra]


def change_status(wallet: Wallet, player_id: str, status: PlayerStatus, reason: str) -> MoveResult:
    """Like an operator: a status change that gave up under contention (nothing written) is simply tried again."""
    for _ in range(20):
        try:
            return wallet.set_status(player_id, status, reason, "ops")
        except BillingContended:
            continue
    raise AssertionError("the status change kept losing to the bets")


def game_entries(wallet: Wallet, player_id: str = "p1") -> list[LedgerEntry]:
    """The player's game entries in the order they were written (the account version)."""
    return sorted(
        (e for e in wallet.history(player_id, limit=10_000) if e.source is Source.GAME),
        key=lambda e: e.account_version,
    )


def ledger(wallet: Wallet, player_id: str = "p1") -> list[LedgerEntry]:
    return sorted(wallet.history(player_id, limit=10_000), key=lambda e: e.account_version)


def balance(wallet: Wallet, player_id: str = "p1") -> Decimal:
    return wallet.account(player_id).balance


def slots_of(wallet: Wallet, trx_id: str) -> dict[str, str]:
    """The stored items under one game trx_id, straight from the table: sort key -> player."""
    repository = wallet.store
    response = repository.client.query(
        TableName=repository.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ENTRY#game:{trx_id}"}},
        ConsistentRead=True,
    )
    return {item["sk"]["S"]: item["player_id"]["S"] for item in response["Items"]}


def session_records(wallet: Wallet, player_id: str) -> list[dict[str, Any]]:
    repository = wallet.store
    response = repository.client.query(
        TableName=repository.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
        ExpressionAttributeValues={":pk": {"S": f"PLAYER#{player_id}"}, ":sk": {"S": "SESSION#"}},
        ConsistentRead=True,
    )
    return list(response["Items"])


def assert_audit_clean(wallet: Wallet) -> None:
    report = audit_store(wallet.store)
    assert report.violations == []
    assert report.clean


def assert_refused(outcome: Outcome) -> None:
    assert outcome.reply.to_json() == '{"status":"session_not_found"}'
    assert outcome.event is Event.SESSION_NOT_FOUND


def assert_ok(outcome: Outcome, balance_after: int | Decimal, event: Event) -> None:
    assert outcome.reply.to_json() == f'{{"status":"OK","balance":{balance_after},"currency":"FUN"}}'
    assert outcome.event is event


def end_session(wallet: Wallet, clock: Clock, old: IssuedSession, how: str) -> None:
    """The ways a session stops being the live one. Replacing and revoking happen well before its own expiry."""
    if how == "replaced":
        clock.now += 50 * 60
        wallet.new_session(old.player_id)
    elif how == "revoked":
        clock.now += 50 * 60
        assert wallet.revoke_session(old.player_id) is True
    else:
        clock.now = old.expires_at  # the first second it is no longer live
    assert wallet.live_account(old.token) is None


def bet_tag(kind: str, game_uuid: str) -> dict[str, Any]:
    """The bet of 100 FUN that opens a round, for each kind of credit that may close it."""
    if kind == "win":
        return {**SLOT, "game_uuid": game_uuid}
    return {"game": "bet", "game_id": "1009", "game_uuid": game_uuid, "round": 10000, "bets": ["[0]:100"]}


def round_tag(kind: str, game_uuid: str) -> dict[str, Any]:
    """The tag of the credit (money owed) that closes a round of 100 FUN, for each kind of credit."""
    if kind == "win":
        return {**SLOT, "game_uuid": game_uuid}
    base = {"game": "bet", "game_id": "1009", "game_uuid": game_uuid, "round": 10000}
    if kind == "cancel refund":
        return {**base, "bets": ["[0]:100"], "cancel": True}
    return {**base, "result": [0]}  # zero win


CREDITS = [("win", 250, Event.WIN), ("cancel refund", 100, Event.WIN), ("zero win", 0, Event.ZERO_WIN)]
ENDINGS = ["replaced", "revoked", "expired"]


# --- money owed on a session that is no longer live -----------------------------------------------------------------


@pytest.mark.parametrize("how", ENDINGS)
@pytest.mark.parametrize(("kind", "plus", "event"), CREDITS)
def test_money_owed_on_an_ended_session_lands_exactly_once(
    owed: Wallet, clock: Clock, how: str, kind: str, plus: int, event: Event
) -> None:
    old = owed.new_session("p1")
    # Two rounds of 100 are open on the session when it stops being the live one.
    bets = {game_uuid: do_body(old.token, f"bet-{game_uuid}", 100, 0, bet_tag(kind, game_uuid)) for game_uuid in "12"}
    assert_ok(send(owed, bets["1"]), 900, Event.BET)
    assert_ok(send(owed, bets["2"]), 800, Event.BET)
    end_session(owed, clock, old, how)

    # The first credit, sent twice: it lands once, the replay moves nothing.
    credit = do_body(old.token, "credit-1", 0, plus, round_tag(kind, "1"))
    assert_ok(send(owed, credit), 800 + plus, event)
    assert_ok(send(owed, credit), 800 + plus, Event.DUPLICATE)

    # The second credit, 16 copies at once: one lands, 15 are replays, all answer the same balance.
    twins, _ = race(owed, [do_body(old.token, "credit-2", 0, plus, round_tag(kind, "2"))] * 16)
    after = 800 + 2 * plus
    assert {o.reply.to_json() for o in twins} == {f'{{"status":"OK","balance":{after},"currency":"FUN"}}'}
    assert Counter(o.event for o in twins) == {event: 1, Event.DUPLICATE: 15}

    # The ended session starts nothing new: no bet, no bet-and-win, no balance request, no credit without a round.
    assert_refused(send(owed, do_body(old.token, "bet-3", 1, 0, {**SLOT, "game_uuid": "R-3"})))
    assert_refused(send(owed, do_body(old.token, "bw-3", 1, 5, {**SLOT, "game_uuid": "R-3"})))
    assert_refused(send(owed, do_body(old.token, "ask", 0, 0, BALANCE_REQUEST)))
    assert_refused(send(owed, do_body(old.token, "loose-credit", 0, 5, BALANCE_REQUEST)))
    # A replay of a bet made on it still answers OK with the current balance (replays come before the session check).
    replay = send(owed, bets["1"])
    assert_ok(replay, after, Event.DUPLICATE)
    assert replay.conflict is False

    assert balance(owed) == after
    assert [(e.trx_id, e.minus, e.plus) for e in game_entries(owed)] == [
        ("bet-1", 100, 0),
        ("bet-2", 100, 0),
        ("credit-1", 0, plus),
        ("credit-2", 0, plus),
    ]
    assert len(ledger(owed)) == 5  # and the opening balance
    assert_audit_clean(owed)


@pytest.mark.parametrize("how", ENDINGS)
def test_money_owed_past_the_grace_period_is_refused(
    wallet_factory: Callable[..., Wallet], clock: Clock, how: str
) -> None:
    grace = 600
    wallet = wallet_factory(credit_grace_seconds=grace)
    wallet.create_player("p1", "FUN", Decimal(1000))
    old = wallet.new_session("p1")
    for game_uuid in ("R-1", "R-2"):
        send(wallet, do_body(old.token, f"bet-{game_uuid}", 100, 0, {**SLOT, "game_uuid": game_uuid}))
    end_session(wallet, clock, old, how)
    if how == "replaced":
        # The window runs from the old session's own expiry, not from its replacement's (still live then).
        assert wallet.account("p1").session_expires_at == old.expires_at + 50 * 60

    clock.now = old.expires_at + grace - 1  # the last second of the grace period
    assert_ok(send(wallet, do_body(old.token, "win-R-1", 0, 50, {**SLOT, "game_uuid": "R-1"})), 850, Event.WIN)

    clock.now = old.expires_at + grace  # the grace period is over
    for kind, plus, _ in CREDITS:
        assert_refused(send(wallet, do_body(old.token, f"late-{kind}", 0, plus, round_tag(kind, "R-2"))))
    assert_refused(send(wallet, do_body(old.token, "late-bet", 10, 0, {**SLOT, "game_uuid": "R-3"})))
    # An earlier credit's replay still answers OK: it moved its money when the window was open.
    assert_ok(send(wallet, do_body(old.token, "win-R-1", 0, 50, {**SLOT, "game_uuid": "R-1"})), 850, Event.DUPLICATE)

    assert balance(wallet) == 850
    assert [e.trx_id for e in game_entries(wallet)] == ["bet-R-1", "bet-R-2", "win-R-1"]
    assert len(ledger(wallet)) == 4
    assert_audit_clean(wallet)


def test_a_token_we_never_issued_gets_nothing(owed: Wallet) -> None:
    owed.new_session("p1")
    live = owed.new_session("p1")  # p1 has a replaced session too: no forged token matches either
    owed.create_player("p2", "FUN", Decimal(500))
    p2 = owed.new_session("p2")
    assert_ok(send(owed, do_body(live.token, "bet-R-1", 100, 0, bet_tag("win", "R-1"))), 900, Event.BET)
    tokens = [
        FORGED,  # the right player, a wrong secret
        "p1." + p2.token.partition(".")[2],  # another player's secret under p1's id
        "ghost." + "x" * 43,  # no such player
    ]
    for token in tokens:
        for kind, plus, _ in CREDITS:
            assert_refused(send(owed, do_body(token, f"{token[:6]}-{kind}", 0, plus, round_tag(kind, "R-1"))))
        assert_refused(send(owed, do_body(token, f"{token[:6]}-bet", 10, 0, {**SLOT, "game_uuid": "R-1"})))
        assert_refused(send(owed, do_body(token, f"{token[:6]}-ask", 0, 0, BALANCE_REQUEST)))
    assert (balance(owed, "p1"), balance(owed, "p2")) == (900, 500)
    assert [e.trx_id for e in game_entries(owed, "p1")] == ["bet-R-1"]
    assert game_entries(owed, "p2") == []
    assert_audit_clean(owed)


def test_every_issued_session_has_its_record_written_with_it(owed: Wallet, clock: Clock) -> None:
    issued = []
    for _ in range(3):
        issued.append(owed.new_session("p1"))
        clock.now += 60
    records = {item["sk"]["S"]: item for item in session_records(owed, "p1")}
    assert set(records) == {f"SESSION#{s.token_hash}" for s in issued}
    for session in issued:
        item = records[f"SESSION#{session.token_hash}"]
        assert (int(item["issued_at"]["N"]), int(item["expires_at"]["N"])) == (session.issued_at, session.expires_at)
        assert int(item["purge_at"]["N"]) == session.expires_at + 2 * DAY  # the TTL: expiry + grace
    assert owed.account("p1").session_hash == issued[-1].token_hash
    # A refused session (the player is not active) writes no record either: both items or neither.
    owed.set_status("p1", PlayerStatus.SUSPENDED, "checks", "ops")
    with pytest.raises(OperatorError):
        owed.new_session("p1")
    assert len(session_records(owed, "p1")) == 3
    with pytest.raises(OperatorError):
        owed.new_session("nobody")
    assert session_records(owed, "nobody") == []
    assert "Item" not in owed.store.client.get_item(
        TableName=owed.store.table_name, Key=account_key("nobody"), ConsistentRead=True
    )


# --- a trx_id per player --------------------------------------------------------------------------------------------


def test_two_players_with_one_trx_id_each_move_their_own_money_once(owed: Wallet, clock: Clock) -> None:
    p1 = owed.new_session("p1").token
    owed.create_player("p2", "FUN", Decimal(500))
    p2 = owed.new_session("p2").token
    owed.create_player("p3", "FUN", Decimal(0))
    p3_old = owed.new_session("p3").token
    clock.now += 60
    owed.new_session("p3")  # p3's round is owed on a replaced session

    bet = {**SLOT, "game_uuid": "R-1"}
    first = send(owed, do_body(p1, "shared", 100, 0, bet))
    assert_ok(first, 900, Event.BET)
    assert first.cross_player is False
    second = send(owed, do_body(p2, "shared", 100, 0, {**SLOT, "game_uuid": "R-2"}))
    assert_ok(second, 400, Event.BET)
    assert second.cross_player is True
    third = send(owed, do_body(p3_old, "shared", 0, 70, {**SLOT, "game_uuid": "R-3"}))
    assert_ok(third, 70, Event.WIN)
    assert third.cross_player is True

    # Each replay moves nothing and answers its own player's balance.
    for _ in range(2):
        assert_ok(send(owed, do_body(p1, "shared", 100, 0, bet)), 900, Event.DUPLICATE)
        replay = send(owed, do_body(p2, "shared", 100, 0, {**SLOT, "game_uuid": "R-2"}))
        assert_ok(replay, 400, Event.DUPLICATE)
        assert replay.cross_player is True
        assert_ok(send(owed, do_body(p3_old, "shared", 0, 70, {**SLOT, "game_uuid": "R-3"})), 70, Event.DUPLICATE)

    assert slots_of(owed, "shared") == {"ENTRY": "p1", "ENTRY#p2": "p2", "ENTRY#p3": "p3"}
    assert (balance(owed, "p1"), balance(owed, "p2"), balance(owed, "p3")) == (900, 400, 70)
    for player_id, scoped in (("p1", False), ("p2", True), ("p3", True)):
        [entry] = game_entries(owed, player_id)
        assert (entry.trx_id, entry.player_id, entry.scoped) == ("shared", player_id, scoped)
        assert entry.entry_id == f"game:{player_id}:shared"
    _, own = owed.store.get_account_and_entry("p2", Source.GAME, "shared", scoped_to="p2")
    assert own is not None and own.player_id == "p2"
    assert_audit_clean(owed)


@pytest.mark.parametrize("b_request", ["bet on the live session", "win on a replaced session"])
def test_two_players_racing_the_first_use_of_one_trx_id(owed: Wallet, clock: Clock, b_request: str) -> None:
    a = owed.new_session("p1").token
    owed.create_player("p2", "FUN", Decimal(500))
    b = owed.new_session("p2").token
    if b_request == "win on a replaced session":
        clock.now += 60
        owed.new_session("p2")
        b_minus, b_plus, b_after, b_event = 0, 70, 570, Event.WIN
    else:
        b_minus, b_plus, b_after, b_event = 100, 0, 400, Event.BET
    for trx_id in ("race-1", "race-2"):
        a_body = do_body(a, trx_id, 100, 0, {**SLOT, "game_uuid": f"A-{trx_id}"})
        b_body = do_body(b, trx_id, b_minus, b_plus, {**SLOT, "game_uuid": f"B-{trx_id}"})
        outcomes, _ = race(owed, [a_body, b_body] * 16)

        by_player: dict[str, list[Outcome]] = {"p1": [], "p2": []}
        for outcome in outcomes:
            assert outcome.player_id is not None
            by_player[outcome.player_id].append(outcome)
        rounds = 1 if trx_id == "race-1" else 2
        balances = {"p1": 1000 - 100 * rounds, "p2": 500 + (b_after - 500) * rounds}
        assert Counter(o.event for o in by_player["p1"]) == {Event.BET: 1, Event.DUPLICATE: 15}
        assert Counter(o.event for o in by_player["p2"]) == {b_event: 1, Event.DUPLICATE: 15}
        assert {o.reply.status for o in outcomes} == {"OK"}
        # Whoever wrote first owns the slot ENTRY; every answer to the other player is flagged as a cross-player use.
        slots = slots_of(owed, trx_id)
        owner = slots["ENTRY"]
        other = "p2" if owner == "p1" else "p1"
        assert slots == {"ENTRY": owner, f"ENTRY#{other}": other}
        assert {o.cross_player for o in by_player[owner]} == {False}
        assert {o.cross_player for o in by_player[other]} == {True}
        # Every answer, the one move's and every replay's, shows the player's balance after its one move.
        assert {o.reply.balance for o in by_player[owner]} == {balances[owner]}
        [moved] = [o for o in by_player[other] if o.event is not Event.DUPLICATE]
        assert moved.reply.balance == balances[other]
        assert {o.reply.balance for o in by_player[other]} == {balances[other]}
        assert (balance(owed, "p1"), balance(owed, "p2")) == (balances["p1"], balances["p2"])

    assert [e.trx_id for e in game_entries(owed, "p1")] == ["race-1", "race-2"]
    assert [e.trx_id for e in game_entries(owed, "p2")] == ["race-1", "race-2"]
    assert_audit_clean(owed)


def test_a_scoped_replay_answers_the_current_balance(owed: Wallet) -> None:
    """Rule: a replay answers OK with the current balance. Deterministic version of what the race above can hit: the
    other player's twin lands between the read of (account, ENTRY) and the read of the player's own slot."""
    p1 = owed.new_session("p1").token
    owed.create_player("p2", "FUN", Decimal(500))
    p2 = owed.new_session("p2").token
    assert_ok(send(owed, do_body(p1, "shared", 100, 0, {**SLOT, "game_uuid": "A"})), 900, Event.BET)
    body = do_body(p2, "shared", 100, 0, {**SLOT, "game_uuid": "B"})
    repository = owed.store
    read = repository.get_account_and_entry
    twins: list[Outcome] = []
    started: list[bool] = []

    def twin_lands_first(
        player_id: str, source: Source, key: str, scoped_to: str | None = None
    ) -> tuple[Account | None, LedgerEntry | None]:
        if scoped_to is not None and not started:
            started.append(True)
            twins.append(owed.handle_do(body))  # the provider's retry, answered while this request is between reads
        return read(player_id, source, key, scoped_to)

    repository.get_account_and_entry = twin_lands_first  # type: ignore[method-assign]
    replay = owed.handle_do(body)
    repository.get_account_and_entry = read  # type: ignore[method-assign]

    assert_ok(twins[0], 400, Event.BET)
    assert balance(owed, "p2") == 400
    assert len(game_entries(owed, "p2")) == 1
    assert_ok(replay, 400, Event.DUPLICATE)  # the account is read again with the player's own slot


# --- player status --------------------------------------------------------------------------------------------------

ACTIVE, SUSPENDED, SELF_EXCLUDED, CLOSED = (
    PlayerStatus.ACTIVE,
    PlayerStatus.SUSPENDED,
    PlayerStatus.SELF_EXCLUDED,
    PlayerStatus.CLOSED,
)
NOT_ACTIVE = (SUSPENDED, SELF_EXCLUDED, CLOSED)
REFUSED = "refused"  # session_not_found for /do, OperatorError for the operator
# The request, and the balance it leaves from 900 (a session issued while active, a bet of 100 in round R-1) or REFUSED.
STATUS_MATRIX: dict[str, dict[PlayerStatus, int | str]] = {
    "bet": {ACTIVE: 890, SUSPENDED: REFUSED, SELF_EXCLUDED: REFUSED, CLOSED: REFUSED},
    "bet_and_win": {ACTIVE: 920, SUSPENDED: REFUSED, SELF_EXCLUDED: REFUSED, CLOSED: REFUSED},
    "win": {ACTIVE: 950, SUSPENDED: 950, SELF_EXCLUDED: 950, CLOSED: 950},
    "cancel refund": {ACTIVE: 1000, SUSPENDED: 1000, SELF_EXCLUDED: 1000, CLOSED: 1000},
    "zero win": {ACTIVE: 900, SUSPENDED: 900, SELF_EXCLUDED: 900, CLOSED: 900},
    "credit without round": {ACTIVE: 905, SUSPENDED: REFUSED, SELF_EXCLUDED: REFUSED, CLOSED: REFUSED},
    "balance request": {ACTIVE: 900, SUSPENDED: REFUSED, SELF_EXCLUDED: REFUSED, CLOSED: REFUSED},
    "deposit": {ACTIVE: 1000, SUSPENDED: 1000, SELF_EXCLUDED: 1000, CLOSED: REFUSED},
    "withdrawal": {ACTIVE: 800, SUSPENDED: 800, SELF_EXCLUDED: 800, CLOSED: 800},
    "new_session": {ACTIVE: 900, SUSPENDED: REFUSED, SELF_EXCLUDED: REFUSED, CLOSED: REFUSED},
}
BETTING = {"game": "bet", "game_id": "1009", "game_uuid": "R-1", "round": 10000}
DO_REQUESTS: dict[str, tuple[int, int, dict[str, Any], Event]] = {
    "bet": (10, 0, {**SLOT, "game_uuid": "R-2"}, Event.BET),
    "bet_and_win": (10, 30, {**SLOT, "game_uuid": "R-2"}, Event.BET_AND_WIN),
    "win": (0, 50, {**BETTING, "result": [50]}, Event.WIN),
    "cancel refund": (0, 100, {**BETTING, "bets": ["[0]:100"], "cancel": True}, Event.WIN),
    "zero win": (0, 0, {**BETTING, "result": [0]}, Event.ZERO_WIN),
    "credit without round": (0, 5, BALANCE_REQUEST, Event.WIN),
    "balance request": (0, 0, BALANCE_REQUEST, Event.BALANCE),
}


@pytest.fixture(scope="module")
def status_wallet(production_client: Any) -> Iterator[Wallet]:
    """One table for the whole matrix (a player per case): table creation is the slow part on DynamoDB Local."""
    name = f"status-{uuid.uuid4().hex[:10]}"
    create_table(production_client, name)
    wallet = make_wallet(production_client, name, session_seconds=HOUR)
    yield wallet
    assert_audit_clean(wallet)


@pytest.mark.parametrize("request_kind", list(STATUS_MATRIX))
@pytest.mark.parametrize("status", list(PlayerStatus))
def test_status_matrix(status_wallet: Wallet, status: PlayerStatus, request_kind: str) -> None:
    wallet = status_wallet
    player = f"{status.value}-{request_kind.replace(' ', '_')}"
    wallet.create_player(player, "FUN", Decimal(1000))
    session = wallet.new_session(player)
    bet = do_body(session.token, f"{player}-bet", 100, 0, {**BETTING, "bets": ["[0]:100"]})
    assert_ok(send(wallet, bet), 900, Event.BET)

    changed = wallet.set_status(player, status, "  responsible gaming check ", "ops@casino")
    assert changed.status is MoveStatus.APPLIED
    entry = changed.entry
    assert entry is not None
    assert (entry.kind, entry.minus, entry.plus, entry.account_version) == ("status", 0, 0, 2)
    assert entry.tag == {
        "operator": "status",
        "status": status.value,
        "reason": "responsible gaming check",
        "by": "ops@casino",
    }
    account = wallet.account(player)
    assert (account.status, account.version, account.balance) == (status, 2, 900)
    assert (account.session_hash is None) is (status is not ACTIVE)  # leaving active ends the live session

    expected = STATUS_MATRIX[request_kind][status]
    if request_kind in DO_REQUESTS:
        minus, plus, tag, event = DO_REQUESTS[request_kind]
        outcome = send(wallet, do_body(session.token, f"{player}-req", minus, plus, tag))
        if expected == REFUSED:
            assert_refused(outcome)
        else:
            assert_ok(outcome, expected, event)  # type: ignore[arg-type]
    elif request_kind == "new_session":
        if expected == REFUSED:
            with pytest.raises(OperatorError, match=f"is {status.value}: no new session"):
                wallet.new_session(player)
            assert wallet.account(player).session_hash is None
        else:
            fresh = wallet.new_session(player)
            assert wallet.live_account(fresh.token) is not None
            assert wallet.live_account(session.token) is None
    else:
        move = wallet.deposit if request_kind == "deposit" else wallet.withdraw
        if expected == REFUSED:
            with pytest.raises(OperatorError, match="closed: deposits are refused"):
                move(player, "100", f"{player}-ref")
        else:
            assert move(player, "100", f"{player}-ref").balance == expected

    after = wallet.account(player)
    moved = expected != REFUSED and request_kind not in ("balance request", "new_session")
    assert after.balance == (900 if expected == REFUSED else expected)
    assert after.status is status
    assert after.version == 2 + moved
    assert len(ledger(wallet, player)) == 3 + moved  # opening, bet, status (+ the request)


def test_money_owed_lands_after_a_return_to_active_and_new_sessions_work_again(owed: Wallet) -> None:
    old = owed.new_session("p1")
    send(owed, do_body(old.token, "bet", 100, 0, {**SLOT, "game_uuid": "R-1"}))
    owed.set_status("p1", CLOSED, "player request", "ops")
    owed.set_status("p1", ACTIVE, "reopened", "ops")
    assert owed.live_account(old.token) is None  # closing ended it; reopening does not bring it back
    assert_refused(send(owed, do_body(old.token, "bet-2", 1, 0, {**SLOT, "game_uuid": "R-2"})))
    assert_ok(send(owed, do_body(old.token, "win", 0, 40, {**SLOT, "game_uuid": "R-1"})), 940, Event.WIN)
    fresh = owed.new_session("p1").token
    assert_ok(send(owed, do_body(fresh, "bet-3", 40, 0, {**SLOT, "game_uuid": "R-3"})), 900, Event.BET)
    statuses = [(e.kind, e.tag.get("status"), e.account_version) for e in ledger(owed) if e.kind == "status"]
    assert statuses == [("status", "closed", 2), ("status", "active", 3)]
    assert_audit_clean(owed)


@pytest.mark.parametrize("status", NOT_ACTIVE)
def test_a_status_change_racing_32_bets_lets_none_land_after_it(owed: Wallet, status: PlayerStatus) -> None:
    owed.deposit("p1", "99000", "top-up")
    session = owed.new_session("p1").token
    bodies = [do_body(session, f"bet-{i}", 10, 0, {**SLOT, "game_uuid": f"R-{i}"}) for i in range(32)]

    def change() -> MoveResult:
        # The change comes in the thick of it: once a few bets have landed, while the others are still arriving.
        deadline = time.monotonic() + 5
        while owed.account("p1").version < 2 + 4 and time.monotonic() < deadline:
            time.sleep(0.001)
        return change_status(owed, "p1", status, "risk team")

    outcomes, [changed] = race(owed, bodies, change)

    status_version = changed.entry.account_version
    accepted = {o.trx_id for o in outcomes if o.event is Event.BET}
    for outcome in outcomes:
        if outcome.event is Event.BET:
            assert outcome.reply.status == "OK"
        else:
            assert_refused(outcome)
    bets = game_entries(owed)
    assert {e.trx_id for e in bets} == accepted
    assert all(e.account_version < status_version for e in bets), [(e.trx_id, e.account_version) for e in bets]
    account = owed.account("p1")
    assert (account.version, account.status, account.session_hash) == (status_version, status, None)
    assert account.balance == 100_000 - 10 * len(accepted)
    assert len(ledger(owed)) == 2 + len(accepted) + 1  # opening, top-up, the accepted bets, the status entry
    assert_audit_clean(owed)


def test_a_status_change_racing_32_wins_lets_every_win_land(owed: Wallet, clock: Clock) -> None:
    old = owed.new_session("p1").token
    for i in range(32):
        send(owed, do_body(old, f"bet-{i}", 10, 0, {**SLOT, "game_uuid": f"R-{i}"}))
    clock.now += 60
    owed.new_session("p1")  # the player opened another game, then the account is closed while the wins arrive
    bodies = [do_body(old, f"win-{i}", 0, 25, {**SLOT, "game_uuid": f"R-{i}"}) for i in range(32)]

    outcomes, [changed] = race(owed, bodies, lambda: change_status(owed, "p1", CLOSED, "closed by player"))

    assert Counter(o.event for o in outcomes) == {Event.WIN: 32}
    assert all(o.reply.status == "OK" for o in outcomes)
    account = owed.account("p1")
    assert (account.balance, account.status) == (1000 - 320 + 800, CLOSED)
    assert account.version == 64 + 1
    assert changed.entry.account_version <= account.version
    assert len([e for e in game_entries(owed) if e.kind == "win"]) == 32
    assert_audit_clean(owed)


def test_session_record_key_matches_the_repository(owed: Wallet) -> None:
    """The record the credit check reads is the one start_session wrote (pk PLAYER#<id>, sk SESSION#<hmac>)."""
    issued = owed.new_session("p1")
    item = owed.store.client.get_item(
        TableName=owed.store.table_name, Key=session_key("p1", issued.token_hash), ConsistentRead=True
    )["Item"]
    assert (item["pk"]["S"], item["sk"]["S"]) == ("PLAYER#p1", f"SESSION#{issued.token_hash}")
    assert owed.store.get_session("p1", issued.token_hash) == issued.record


@pytest.mark.parametrize("session_change", ["revoked", "replaced"])
def test_a_bet_read_before_a_session_change_does_not_land_after_it(owed: Wallet, session_change: str) -> None:
    """A log-out or a new session moves no account version: a debit's write also requires the live session it read
    (found by tests/simulation, seed 36), so the bet in flight is refused while a win in flight still lands."""
    session = owed.new_session("p1").token
    read = owed.store.get_account_and_entry
    changed: list[str] = []

    def change_after_read(*args: Any, **kwargs: Any) -> tuple[Account | None, LedgerEntry | None]:
        found = read(*args, **kwargs)
        if not changed:  # the session changes between this request's read and its write
            changed.append(session_change)
            owed.revoke_session("p1") if session_change == "revoked" else owed.new_session("p1")
        return found

    owed.store.get_account_and_entry = change_after_read  # type: ignore[method-assign]
    refused = send(owed, do_body(session, "bet-in-flight", 100, 0, {**SLOT, "game_uuid": "R-1"}))
    changed.clear()
    landed = send(owed, do_body(session, "win-in-flight", 0, 40, {**SLOT, "game_uuid": "R-0"}))
    owed.store.get_account_and_entry = read  # type: ignore[method-assign]

    assert refused.reply.to_json() == '{"status":"session_not_found"}'
    assert_ok(landed, 1040, Event.WIN)
    assert balance(owed) == 1040
    assert [e.trx_id for e in game_entries(owed, "p1")] == ["win-in-flight"]
    assert_audit_clean(owed)
