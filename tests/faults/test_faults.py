"""Fault injection on the money path: DynamoDB Local behind a faulty proxy (throttling, cancellations, timeouts, the
crash between the write and the reply).

For every fault the immediate result is either the correct reply or an exception the handler answers with 5xx
(StoreUnavailable / BillingContended) -- never an `OK` for money that did not move -- and the provider's retry
(the same body, up to 10 more attempts) converges to exactly one movement: exact balance, exact ledger, clean audit.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any, cast

import botocore.retries.standard
import pytest

from tests.faults.proxy import Action, FaultyProxy
from tests.support import SALT, SESSION_KEY, LambdaContext, api_gateway_event, do_body, lambda_function
from wallet.bootstrap import CLIENT_CONFIG
from wallet.money.dynamodb import BATCH_GET_ATTEMPTS, DynamoDBStore
from wallet.money.games_server import BillingUnavailable, Outcome
from wallet.money.ledger import Source
from wallet.money.mover import BillingContended
from wallet.money.protocol import Reply, not_enough_money, ok
from wallet.money.store import StoreUnavailable
from wallet.money.wallet import Wallet
from wallet.operator.audit import audit_store

pytestmark = pytest.mark.integration

# What handle_do raises for the handler to answer 5xx (BillingUnavailable wraps the two causes).
SERVER_FAULTS = (BillingUnavailable, StoreUnavailable, BillingContended)
MAX_RETRIES = 10  # the provider's: up to 10 more attempts with the same trx_id
# How many times botocore sends one call. `max_attempts` in the retries config counts the RETRIES (botocore's legacy
# meaning); `total_max_attempts` counts the attempts.
_RETRIES = CLIENT_CONFIG.retries or {}
SDK_ATTEMPTS = int(_RETRIES.get("total_max_attempts") or int(_RETRIES.get("max_attempts", 2)) + 1)
GET, BGET, TWRITE = "GetItem", "BatchGetItem", "TransactWriteItems"
FOUR = {"OK", "not_enough_money", "session_not_found", "sign_not_found"}
OPENING = Decimal(1000)
ROUND = "r-100001"
BET_TAG = {"game": "slot", "game_id": "a_op", "game_uuid": ROUND, "lines": 9, "bet": 1, "denomination": 100}
WIN_TAG = {"game": "slot", "game_id": "a_op", "game_uuid": ROUND}
BALANCE_TAG = {"game": "slot", "game_id": ""}
FAILURE_REASONS = (
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "ValidationError",
    "ItemCollectionSizeLimitExceeded",
)


@dataclass
class Delivery:
    """What the provider saw for one trx_id: the first answer, and the one its retries ended with."""

    first: Outcome | Exception
    final: Outcome
    attempts: int
    failures: list[Exception] = field(default_factory=list)

    @property
    def first_reply(self) -> Reply | None:
        return self.first.reply if isinstance(self.first, Outcome) else None


@dataclass
class Table:
    """The table seen without the proxy, and the player under test."""

    wallet: Wallet
    player: str
    session: str

    def entry(self, trx_id: str):  # type: ignore[no-untyped-def]
        _, entry = self.wallet.store.get_account_and_entry(self.player, Source.GAME, trx_id)
        return entry

    def game_entries(self) -> list[str]:
        return sorted(e.trx_id for e in self.wallet.history(self.player, limit=10_000) if e.source is Source.GAME)

    def balance(self) -> Decimal:
        return self.wallet.account(self.player).balance


def deliver(
    wallet: Wallet, body: str, table: Table | None = None, before_retry: Callable[[int], None] | None = None
) -> Delivery:
    """Like the Games Server: a 5xx is retried with the same body, up to MAX_RETRIES more times. With `table`, every
    OK for a money-moving trx_id is checked against the table the moment it is given: the entry must exist."""
    first: Outcome | Exception | None = None
    failures: list[Exception] = []
    trx_id = json.loads(body)["trx_id"]
    for attempt in range(1, MAX_RETRIES + 2):
        try:
            outcome = wallet.handle_do(body)
        except SERVER_FAULTS as exc:
            failures.append(exc)
            first = exc if first is None else first
            if before_retry is not None:
                before_retry(attempt)
            continue
        if table is not None and outcome.reply.status == "OK" and outcome.game_uuid is not None:
            assert table.entry(trx_id) is not None, f"OK for {trx_id} but no entry: money did not move"
        return Delivery(outcome if first is None else first, outcome, attempt, failures)
    raise AssertionError(f"no answer for {trx_id} after {MAX_RETRIES + 1} attempts: {failures}")


def cause(exc: object) -> object:
    """The database-level reason behind a 5xx: StoreUnavailable or BillingContended."""
    if isinstance(exc, BillingUnavailable) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def assert_first_is_right_or_5xx(delivery: Delivery, expected: Reply) -> None:
    if isinstance(delivery.first, Exception):
        assert isinstance(delivery.first, SERVER_FAULTS), delivery.first
    else:
        assert delivery.first.reply == expected


def assert_money(table: Table, balance: Decimal, game_entries: list[str]) -> None:
    assert table.balance() == balance
    assert table.game_entries() == sorted(game_entries)
    report = audit_store(table.wallet.store)
    assert report.violations == []
    assert report.clean


@pytest.fixture
def table(direct_wallet: Wallet) -> Table:
    direct_wallet.create_player("p1", "FUN", OPENING)
    return Table(direct_wallet, "p1", direct_wallet.new_session("p1").token)


@dataclass(frozen=True)
class Case:
    """A bet of 100 from 1000, or a win of 250 after it: the request, its reply, the balance and the ledger after."""

    name: str
    body: str
    expected: Reply
    balance: Decimal
    entries: list[str]


def _case(table: Table, kind: str) -> Case:
    if kind == "bet":
        return Case(
            kind, do_body(table.session, "bet-1", 100, 0, BET_TAG), ok(Decimal(900), "FUN"), Decimal(900), ["bet-1"]
        )
    if kind == "win":
        assert table.wallet.handle_do(do_body(table.session, "bet-1", 100, 0, BET_TAG)).reply.status == "OK"
        win = do_body(table.session, "win-1", 0, 250, WIN_TAG)
        return Case(kind, win, ok(Decimal(1150), "FUN"), Decimal(1150), ["bet-1", "win-1"])
    if kind == "zero_win":
        assert table.wallet.handle_do(do_body(table.session, "bet-1", 100, 0, BET_TAG)).reply.status == "OK"
        win = do_body(table.session, "win-0", 0, 0, WIN_TAG)
        return Case(kind, win, ok(Decimal(900), "FUN"), Decimal(900), ["bet-1", "win-0"])
    if kind == "balance":
        return Case(kind, do_body(table.session, "bal-1", 0, 0, BALANCE_TAG), ok(OPENING, "FUN"), OPENING, [])
    raise ValueError(kind)


# --- sanity: the proxy is transparent when told nothing -----------------------------------------------------------


def test_proxy_without_rules_is_transparent(faulty_wallet: Wallet, table: Table, proxy: FaultyProxy) -> None:
    requests = [
        (do_body(table.session, "bet-1", 100, 0, BET_TAG), ok(Decimal(900), "FUN")),
        (do_body(table.session, "win-1", 0, 250, WIN_TAG), ok(Decimal(1150), "FUN")),
        (do_body(table.session, "bal-1", 0, 0, BALANCE_TAG), ok(Decimal(1150), "FUN")),
    ]
    for body, expected in requests:
        delivery = deliver(faulty_wallet, body, table)
        assert delivery.first_reply == expected and delivery.attempts == 1
    assert_money(table, Decimal(1150), ["bet-1", "win-1"])
    assert {s.operation for s in proxy.seen()} >= {GET, BGET, TWRITE}
    assert all(s.forwarded and s.status == 200 for s in proxy.seen())


# --- throttling: HTTP 400 ThrottlingException / ProvisionedThroughputExceededException ----------------------------


@pytest.mark.parametrize("action", [Action.THROTTLE, Action.PROVISIONED])
@pytest.mark.parametrize(("kind", "operation"), [("bet", BGET), ("bet", TWRITE), ("win", TWRITE), ("balance", GET)])
def test_one_throttle_is_absorbed_by_the_sdk_retry(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, action: Action, kind: str, operation: str
) -> None:
    case = _case(table, kind)
    proxy.add(operation, action, count=1)
    delivery = deliver(faulty_wallet, case.body, table)
    assert delivery.first_reply == case.expected  # botocore's second attempt went through
    assert delivery.attempts == 1
    assert [s.action for s in proxy.seen(operation)][:2] == [action, Action.PASS]
    assert_money(table, case.balance, case.entries)


@pytest.mark.parametrize("action", [Action.THROTTLE, Action.PROVISIONED])
@pytest.mark.parametrize(
    ("kind", "operation"), [("bet", BGET), ("bet", TWRITE), ("win", BGET), ("win", TWRITE), ("balance", GET)]
)
def test_throttling_beyond_the_sdk_retry_is_a_5xx_then_the_retry_moves_once(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, action: Action, kind: str, operation: str
) -> None:
    case = _case(table, kind)
    before = table.balance()
    proxy.add(operation, action, count=SDK_ATTEMPTS)  # every one of botocore's attempts
    delivery = deliver(faulty_wallet, case.body, table)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert delivery.attempts == 2
    assert delivery.final.reply == case.expected
    assert len([s for s in proxy.seen(operation) if s.action is action]) == SDK_ATTEMPTS
    assert_money(table, case.balance, case.entries)
    assert before != case.balance or kind in {"balance", "zero_win"}


def test_throttling_for_a_long_time_then_clearing_converges(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy
) -> None:
    """Every call throttled until the provider's 4th attempt: three 503s, then exactly one bet."""
    case = _case(table, "bet")
    proxy.add(None, Action.THROTTLE, count=None)

    def clear_after_three(attempt: int) -> None:
        if attempt == 3:
            proxy.clear()

    delivery = deliver(faulty_wallet, case.body, table, before_retry=clear_after_three)
    assert [type(cause(f)) for f in delivery.failures] == [StoreUnavailable] * 3
    assert delivery.final.reply == case.expected and delivery.attempts == 4
    assert not [s for s in proxy.seen(TWRITE) if s.forwarded and s.action is not Action.PASS]
    assert_money(table, case.balance, case.entries)


def test_the_sdk_makes_one_retry_as_configured(faulty_wallet: Wallet, table: Table, proxy: FaultyProxy) -> None:
    proxy.add(GET, Action.INTERNAL, count=None)
    with pytest.raises(SERVER_FAULTS):
        faulty_wallet.handle_do(do_body(table.session, "bal-1", 0, 0, BALANCE_TAG))
    assert len(proxy.seen(GET)) == 2  # the first attempt and one retry


# --- TransactionCanceledException with each reason code, without forwarding --------------------------------------


@pytest.mark.parametrize("reason", FAILURE_REASONS)
@pytest.mark.parametrize("position", ["entry", "account"])
@pytest.mark.parametrize("kind", ["bet", "win"])
def test_write_cancelled_for_a_failure_reason_is_a_5xx_and_writes_nothing(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, reason: str, position: str, kind: str
) -> None:
    case = _case(table, kind)
    before = table.balance()
    reasons = (reason, "None") if position == "entry" else ("None", reason)
    proxy.add(TWRITE, Action.CANCEL, count=1, reasons=reasons)
    trx_id = json.loads(case.body)["trx_id"]

    def nothing_moved(_: int) -> None:
        assert table.entry(trx_id) is None
        assert table.balance() == before

    delivery = deliver(faulty_wallet, case.body, table, before_retry=nothing_moved)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert reason in str(delivery.first)
    assert delivery.final.reply == case.expected and delivery.attempts == 2
    assert_money(table, case.balance, case.entries)


def test_write_cancelled_without_reasons_is_a_5xx(faulty_wallet: Wallet, table: Table, proxy: FaultyProxy) -> None:
    case = _case(table, "bet")
    proxy.add(TWRITE, Action.CANCEL, count=1, reasons=())
    delivery = deliver(faulty_wallet, case.body, table)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert delivery.final.reply == case.expected
    assert_money(table, case.balance, case.entries)


@pytest.mark.parametrize("reasons", [("TransactionConflict", "None"), ("None", "TransactionConflict")])
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("kind", ["bet", "win", "zero_win"])
def test_transaction_conflict_on_the_write_is_retried_inside(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, reasons: tuple[str, str], count: int, kind: str
) -> None:
    case = _case(table, kind)
    proxy.add(TWRITE, Action.CANCEL, count=count, reasons=reasons)
    delivery = deliver(faulty_wallet, case.body, table)
    assert delivery.first_reply == case.expected  # transparent: no 5xx reached the provider
    assert isinstance(delivery.first, Outcome) and delivery.first.attempts == count + 1
    assert_money(table, case.balance, case.entries)


def unprocess_reads(wallet: Wallet, count: int | None) -> Callable[[], int]:
    """DynamoDB's answer to a throttled BatchGetItem, on the wallet's client: the read really happens, then the reply
    leaves every key unprocessed (UnprocessedKeys) for the next `count` reads (None: every read). Gives a function
    that tells how many replies were altered."""
    altered = 0

    def leave_unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        nonlocal altered
        if count is not None and altered >= count:
            return
        altered += 1
        for table_name, items in parsed.get("Responses", {}).items():
            keys = [{"pk": item["pk"], "sk": item["sk"]} for item in items]
            unprocessed = parsed.setdefault("UnprocessedKeys", {}).setdefault(table_name, {"Keys": []})
            unprocessed["Keys"].extend(keys)
            unprocessed["ConsistentRead"] = True
            items.clear()

    store = cast(DynamoDBStore, wallet.store)
    store.client.meta.events.register("after-call.dynamodb.BatchGetItem", leave_unprocessed)
    return lambda: altered


def test_unprocessed_read_keys_are_read_again_inside(faulty_wallet: Wallet, table: Table, proxy: FaultyProxy) -> None:
    """A BatchGetItem that leaves keys unprocessed (throttling) is asked again for those keys, transparently; the
    read is never cancelled by a write in flight (it is not a transaction)."""
    case = _case(table, "bet")
    proxy.reset_log()
    altered = unprocess_reads(faulty_wallet, count=2)
    delivery = deliver(faulty_wallet, case.body, table)
    assert delivery.first_reply == case.expected
    assert isinstance(delivery.first, Outcome) and delivery.first.attempts == 1
    assert altered() == 2 and len(proxy.seen(BGET)) == 3
    assert_money(table, case.balance, case.entries)


def test_keys_unprocessed_every_time_are_a_5xx_then_the_retry_moves_once(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy
) -> None:
    case = _case(table, "bet")
    before = table.balance()
    proxy.reset_log()
    altered = unprocess_reads(faulty_wallet, count=BATCH_GET_ATTEMPTS)
    trx_id = json.loads(case.body)["trx_id"]

    def nothing_moved(_: int) -> None:
        assert altered() == BATCH_GET_ATTEMPTS
        assert not proxy.seen(TWRITE)
        assert table.entry(trx_id) is None and table.balance() == before

    delivery = deliver(faulty_wallet, case.body, table, before_retry=nothing_moved)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert "unprocessed" in str(delivery.first)
    assert delivery.final.reply == case.expected and delivery.attempts == 2
    assert_money(table, case.balance, case.entries)


@pytest.mark.parametrize("reason", ["TransactionConflict", *FAILURE_REASONS])
def test_a_read_refused_with_any_error_is_a_5xx_then_the_retry_moves_once(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, reason: str
) -> None:
    """DynamoDB does not cancel a BatchGetItem for a write in flight; whatever error the read gets anyway is a 5xx
    (never an OK), and the provider's retry moves the money once."""
    case = _case(table, "bet")
    proxy.add(BGET, Action.CANCEL, count=1, reasons=(reason, "None"))  # not an error botocore retries
    delivery = deliver(faulty_wallet, case.body, table)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert delivery.final.reply == case.expected and delivery.attempts == 2
    assert_money(table, case.balance, case.entries)


def test_endless_conflict_is_a_5xx_never_an_ok_then_clears(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy
) -> None:
    case = _case(table, "bet")
    proxy.add(TWRITE, Action.CANCEL, count=None, reasons=("None", "TransactionConflict"))
    delivery = deliver(faulty_wallet, case.body, table, before_retry=lambda _: proxy.clear())
    assert isinstance(cause(delivery.first), BillingContended)
    assert len(proxy.seen(TWRITE)) >= 2
    assert delivery.final.reply == case.expected and delivery.attempts == 2
    assert_money(table, case.balance, case.entries)


# --- timeouts: a reply slower than the client's read timeout (1.5 s) ----------------------------------------------


def test_one_slow_write_is_absorbed_by_the_sdk_retry(faulty_wallet: Wallet, table: Table, proxy: FaultyProxy) -> None:
    """The first write lands late (after the client gave up); botocore's second attempt or the late one wins, the
    other is refused by the key's condition: one movement, and the reply is right either way."""
    case = _case(table, "bet")
    proxy.add(TWRITE, Action.DELAY, count=1, delay=1.7, forward=True)
    delivery = deliver(faulty_wallet, case.body, table)
    proxy.wait_idle()
    assert delivery.first_reply == case.expected
    assert len([s for s in proxy.seen(TWRITE) if s.forwarded]) == 2
    assert_money(table, case.balance, case.entries)


@pytest.mark.parametrize("forward", [True, False], ids=["write-lands-late", "write-lost"])
def test_slow_writes_beyond_the_sdk_retry_are_a_5xx_then_one_movement(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, forward: bool
) -> None:
    case = _case(table, "win")
    proxy.add(TWRITE, Action.DELAY, count=SDK_ATTEMPTS, delay=1.7, forward=forward)
    delivery = deliver(faulty_wallet, case.body, table)
    proxy.wait_idle()
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert "timeout" in str(delivery.first).lower()
    assert delivery.final.reply == case.expected
    assert_money(table, case.balance, case.entries)


@pytest.mark.parametrize(("kind", "operation"), [("bet", BGET), ("balance", GET)])
def test_slow_reads_beyond_the_sdk_retry_are_a_5xx(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, kind: str, operation: str
) -> None:
    case = _case(table, kind)
    proxy.add(operation, Action.DELAY, count=SDK_ATTEMPTS, delay=1.7)
    delivery = deliver(faulty_wallet, case.body, table)
    proxy.wait_idle()
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert delivery.final.reply == case.expected and delivery.attempts == 2
    assert_money(table, case.balance, case.entries)


# --- the crash between the write and the reply ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bet", "win", "zero_win"])
def test_write_then_dropped_reply_is_healed_by_the_sdk_retry(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, kind: str
) -> None:
    """The write happened, the reply was lost; botocore sends the same transaction again, which finds the entry:
    OK with the balance after the one movement."""
    case = _case(table, kind)
    proxy.add(TWRITE, Action.FORWARD_DROP, count=1)
    delivery = deliver(faulty_wallet, case.body, table)
    assert delivery.first_reply == case.expected and delivery.attempts == 1
    writes = proxy.seen(TWRITE)
    assert [(s.action, s.forwarded) for s in writes] == [(Action.FORWARD_DROP, True), (Action.PASS, True)]
    # botocore's retry carries the same ClientRequestToken, so DynamoDB answers it idempotently (200, nothing
    # applied twice); without the token it would be refused by the entry's condition (400). One movement either way.
    assert writes[0].token is not None and writes[0].token == writes[1].token
    assert writes[1].status in (200, 400)
    assert_money(table, case.balance, case.entries)


@pytest.mark.parametrize("kind", ["bet", "win"])
def test_write_then_dropped_reply_twice_is_a_5xx_then_the_replay_answers_ok(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, kind: str
) -> None:
    case = _case(table, kind)
    proxy.add(TWRITE, Action.FORWARD_DROP, count=SDK_ATTEMPTS)
    trx_id = json.loads(case.body)["trx_id"]

    def money_moved_already(_: int) -> None:
        entry = table.entry(trx_id)
        assert entry is not None and entry.balance_after == case.balance

    delivery = deliver(faulty_wallet, case.body, table, before_retry=money_moved_already)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert delivery.final.reply == case.expected and delivery.attempts == 2
    assert len([s for s in proxy.seen(TWRITE) if s.forwarded]) == SDK_ATTEMPTS  # the replay needed no write at all
    assert_money(table, case.balance, case.entries)


def test_replay_after_a_lost_reply_reports_the_current_balance(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy
) -> None:
    """The bet moved but both replies were lost; a win lands before the provider's retry of the bet: the retry gets
    OK with the balance after both (the current one), and the bet is still recorded once."""
    bet = do_body(table.session, "bet-1", 100, 0, BET_TAG)
    proxy.add(TWRITE, Action.FORWARD_DROP, count=SDK_ATTEMPTS)

    def a_win_lands_meanwhile(attempt: int) -> None:
        if attempt == 1:
            win = do_body(table.session, "win-1", 0, 250, WIN_TAG)
            assert table.wallet.handle_do(win).reply == ok(Decimal(1150), "FUN")

    delivery = deliver(faulty_wallet, bet, table, before_retry=a_win_lands_meanwhile)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert delivery.final.reply == ok(Decimal(1150), "FUN")
    assert_money(table, Decimal(1150), ["bet-1", "win-1"])


def test_replayed_bet_after_a_lost_reply_is_ok_even_when_it_no_longer_fits(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy
) -> None:
    """A bet of the whole balance moved, its reply was lost; the provider's retry must get OK (balance 0), not
    not_enough_money (which it would read as a refused bet)."""
    bet = do_body(table.session, "all-in", 1000, 0, BET_TAG)
    proxy.add(TWRITE, Action.FORWARD_DROP, count=SDK_ATTEMPTS)
    delivery = deliver(faulty_wallet, bet, table)
    assert isinstance(cause(delivery.first), StoreUnavailable)
    assert delivery.final.reply == ok(Decimal(0), "FUN")
    assert_money(table, Decimal(0), ["all-in"])


@pytest.mark.parametrize(("operation", "action"), [(BGET, Action.FORWARD_DROP), (GET, Action.FORWARD_DROP)])
def test_dropped_read_replies_are_absorbed(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, operation: str, action: Action
) -> None:
    case = _case(table, "bet" if operation == BGET else "balance")
    proxy.add(operation, action, count=1)
    delivery = deliver(faulty_wallet, case.body, table)
    assert delivery.first_reply == case.expected and delivery.attempts == 1
    assert_money(table, case.balance, case.entries)


@pytest.mark.parametrize("action", [Action.DROP, Action.INTERNAL])
@pytest.mark.parametrize("count", [1, SDK_ATTEMPTS], ids=["once", "every-sdk-attempt"])
def test_lost_requests_and_server_errors(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, action: Action, count: int
) -> None:
    case = _case(table, "win")
    proxy.add(TWRITE, action, count=count)
    delivery = deliver(faulty_wallet, case.body, table)
    if count == 1:
        assert delivery.first_reply == case.expected and delivery.attempts == 1
    else:
        assert isinstance(cause(delivery.first), StoreUnavailable)
        assert delivery.final.reply == case.expected and delivery.attempts == 2
    assert_money(table, case.balance, case.entries)


def test_operator_deposit_after_lost_replies_is_credited_once(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy
) -> None:
    """The operator's deposit is the same money path: its ref is the key, so rerunning it after an error is safe."""
    proxy.add(TWRITE, Action.FORWARD_DROP, count=SDK_ATTEMPTS)
    with pytest.raises(StoreUnavailable):
        faulty_wallet.deposit(table.player, "75.5", "pay-1")
    assert table.balance() == Decimal("1075.5")  # it did move
    again = faulty_wallet.deposit(table.player, "75.5", "pay-1")
    assert again.status.value == "duplicate" and again.balance == Decimal("1075.5")
    assert table.balance() == Decimal("1075.5")
    deposits = [e for e in table.wallet.history(table.player) if e.source is Source.OPERATOR and e.kind == "deposit"]
    assert len(deposits) == 1
    report = audit_store(table.wallet.store)
    assert report.violations == [] and report.clean


# --- not_enough_money and session checks under faults: never turned into OK ---------------------------------------


@pytest.mark.parametrize("action", [Action.THROTTLE, Action.FORWARD_DROP, Action.DROP])
def test_refused_bet_under_faults_stays_refused(
    faulty_wallet: Wallet, table: Table, proxy: FaultyProxy, action: Action
) -> None:
    proxy.add(BGET, action, count=SDK_ATTEMPTS)
    delivery = deliver(faulty_wallet, do_body(table.session, "too-big", 1001, 0, BET_TAG), table)
    assert_first_is_right_or_5xx(delivery, not_enough_money(OPENING, "FUN"))
    assert delivery.final.reply == not_enough_money(OPENING, "FUN")
    assert_money(table, OPENING, [])


# --- a seeded storm: random faults on every operation, a model of every reply -------------------------------------


def test_seeded_fault_storm_keeps_the_books_exact(
    faulty_wallet: Wallet, direct_wallet: Wallet, proxy: FaultyProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """80 requests on three players, each with up to three random faults; the model predicts every final reply.
    botocore's retry jitter (up to 1 s, then 2 s) is waved off here only: this test is about convergence, every other
    test runs with the real backoff."""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda *_: 0.0)
    rng = random.Random(20260101)
    players = {}
    for i in range(3):
        player = f"storm{i}"
        direct_wallet.create_player(player, "FUN", Decimal(500))
        players[player] = [direct_wallet.new_session(player).token, Decimal(500), []]
    # Cheap faults (botocore backs off 25 ms scale) often; throttling (1 s scale backoff) rarely, to keep it quick.
    menu = [
        (Action.THROTTLE, {}, 1),
        (Action.PROVISIONED, {}, 1),
        *[(Action.INTERNAL, {}, n) for n in (1, 2)],
        *[(Action.DROP, {}, n) for n in (1, 2)],
        *[(Action.FORWARD_DROP, {}, n) for n in (1, 2, 3)],
        *[(Action.CANCEL, {"reasons": ("None", "TransactionConflict")}, n) for n in (1, 2)],
        (Action.CANCEL, {"reasons": ("TransactionConflict", "None")}, 1),
        (Action.CANCEL, {"reasons": ("ThrottlingError", "None")}, 1),
        (Action.CANCEL, {"reasons": ("None", "ValidationError")}, 1),
        (Action.CANCEL, {"reasons": ("ItemCollectionSizeLimitExceeded", "None")}, 1),
    ]
    sent: list[tuple[str, str, Decimal, Decimal]] = []
    first_failures = 0
    for step in range(80):
        player = rng.choice(sorted(players))
        session, balance, accepted = players[player]
        roll = rng.random()
        if roll < 0.1 and sent:
            owner, trx_id, minus, plus = rng.choice([s for s in sent if s[0] == player] or [sent[0]])
            if owner != player:
                continue
            expected = ok(balance, "FUN")
            body = do_body(session, trx_id, minus, plus, {"game": "slot", "game_uuid": f"g-{trx_id}"})
        elif roll < 0.2:
            trx_id = f"bal-{step}"
            minus = plus = Decimal(0)
            body = do_body(session, trx_id, 0, 0, BALANCE_TAG)
            expected = ok(balance, "FUN")
        else:
            trx_id = f"t-{step}"
            minus = Decimal(rng.choice([0, 5, 50, 200, 700]))
            plus = Decimal(rng.choice([0, 0, 10, 120]))
            body = do_body(session, trx_id, minus, plus, {"game": "slot", "game_uuid": f"g-{trx_id}"})
            if minus > balance:
                expected = not_enough_money(balance, "FUN")
            else:
                balance = balance - minus + plus
                accepted.append(trx_id)
                sent.append((player, trx_id, minus, plus))
                expected = ok(balance, "FUN")
        proxy.clear()
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            action, options, count = rng.choice(menu)
            operation = GET if trx_id.startswith("bal") else rng.choice([BGET, TWRITE])
            proxy.add(operation, action, count=count, **options)
        delivery = deliver(faulty_wallet, body)
        first_failures += bool(delivery.failures)
        assert_first_is_right_or_5xx(delivery, expected)
        assert delivery.final.reply == expected, (step, trx_id)
        players[player][1] = balance
    proxy.clear()
    for player, (_, balance, accepted) in players.items():
        assert direct_wallet.account(player).balance == balance
        games = sorted(e.trx_id for e in direct_wallet.history(player, 10_000) if e.source is Source.GAME)
        assert games == sorted(accepted)
    report = audit_store(direct_wallet.store)
    assert report.violations == [] and report.clean
    assert first_failures > 0  # the storm did reach the provider sometimes


# --- the Lambda handler under throttling ---------------------------------------------------------------------------


@pytest.fixture
def billing_module(
    proxy: FaultyProxy,
    local_table,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> Iterator[ModuleType]:
    _, table_name = local_table
    monkeypatch.setenv("WALLET_TABLE", table_name)
    monkeypatch.setenv("WALLET_SALT", SALT)
    monkeypatch.setenv("WALLET_SESSION_KEY", SESSION_KEY)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with lambda_function("billing", log_level="ERROR") as (module, _):
        yield module


def test_lambda_handler_answers_503_under_throttling_then_ok_once(
    billing_module: ModuleType, table: Table, proxy: FaultyProxy
) -> None:
    event = api_gateway_event(do_body(table.session, "lambda-bet-1", 100, 0, BET_TAG))
    proxy.add(TWRITE, Action.THROTTLE, count=None)
    response = billing_module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 503
    assert json.loads(response["body"]).get("status") not in FOUR
    assert "OK" not in response["body"]
    assert table.entry("lambda-bet-1") is None and table.balance() == OPENING
    assert len(proxy.seen(TWRITE)) == SDK_ATTEMPTS  # every one of botocore's attempts were throttled, none forwarded

    proxy.clear()
    response = billing_module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "OK", "balance": 900, "currency": "FUN"}
    again = billing_module.lambda_handler(event, LambdaContext())  # a late retry of the same event
    assert again["statusCode"] == 200 and json.loads(again["body"])["balance"] == 900
    assert_money(table, Decimal(900), ["lambda-bet-1"])
