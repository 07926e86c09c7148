"""Stress: 10,000 requests from 32 concurrent provider-like clients through the real `wallet local`, every reply
predicted by a model.

Each player belongs to exactly one client thread, so the model of its balance is deterministic whatever the
interleaving across players. The mix: slot and egame rounds (bet, then maybe a win with the same game_uuid), bet
packages with partial and full cancels and zero wins, bets larger than the balance, replays of earlier trx_ids
(nothing moves, OK with the CURRENT balance, even a bet that no longer fits), concurrent duplicate pairs (two
connections post the same body at the same moment), dropped replies (the provider retries the same body), and balance
requests. Sessions rotate mid-round: between a bet and its win, or a bet package and its cancels and zero win, the
client issues its player a new session; the round's remaining credits still come on the old session and land (money
owed), new bets use the new one, and a bet or a balance request on a replaced session is refused (session_not_found,
nothing moves); replays keep the session their original carried. At the end: every balance equals the model, `wallet
audit` is clean, and the ledger holds exactly the accepted trx_ids plus the opening entries. Then the ledger archive
(the table's stream into the ledger exporter, wallet_local.streams) catches up: `wallet report` over it gives the
model's bets, wins and GGR per game and currency, and `wallet audit` over it is clean and counts what the table holds.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import requests
from botocore.config import Config

from tests.conftest import make_wallet
from tests.support import do_body, start_test_stack
from wallet.bootstrap import make_dynamodb_client
from wallet.money.ledger import Source
from wallet.money.wallet import Wallet
from wallet_local.process import WALLET, LocalStackProcess, clean_environ
from wallet_local.stack import DEMO_PLAYER, LOCAL_TABLE, local_environment
from wallet_local.streams import wait_for_archive

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
ARCHIVE_TIMEOUT = 300.0  # the exporter trails the load on a busy machine; once it ends, the rest goes in seconds
PLAYERS = 200
CLIENTS = 32
REQUESTS = 10_000
MAX_RETRIES = 10  # the provider's: up to 10 more attempts with the same body
HTTP_TIMEOUT = 30.0
CURRENCIES = ("FUN", "EUR", "USD")
SEED = 20261125
ROTATE = 0.04  # per round whose bet landed: a new session between the bet and the rest (~3% of steps)
STALE_AT_ROTATION = 0.3  # right after a rotation: a bet on the replaced session, as if the provider had not seen it
STALE = 0.02  # per step, for a player with a replaced session: a bet or a balance request on one of them


# --- the stack -----------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    url: str
    dynamodb_endpoint: str
    process: LocalStackProcess

    def cli_env(self) -> dict[str, str]:
        """The environment the banner tells the operator to export, over a clean copy of ours."""
        env = self.process.exports()
        exported = set(env) - set(clean_environ())
        assert exported <= set(local_environment(self.dynamodb_endpoint)) | {"WALLET_GAMES_CONFIG_URL"}
        env.update(POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true")
        return env


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    process = start_test_stack("ERROR", START_TIMEOUT)
    try:
        yield Stack(process.base_url, process.dynamodb_endpoint, process)
        code, output = process.stop(STOP_TIMEOUT)
        assert code == 0, f"`wallet local` exited {code} on SIGINT:\n{output}"
        assert output.splitlines()[-1:] == ["stopped"], output
    finally:
        process.kill()


# --- the model -----------------------------------------------------------------------------------------------------


@dataclass
class Player:
    player_id: str
    session: str  # the live one: a rotation replaces it
    currency: str
    balance: Decimal
    accepted: list[tuple[str, str, Decimal]] = field(default_factory=list)  # (trx_id, body, minus) that moved
    # What moved, per game_id as the report groups it (the player has one currency): accepted bets, accepted wins.
    bets: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    wins: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    replaced: list[str] = field(default_factory=list)  # every session a rotation replaced, oldest first


@dataclass
class Tally:
    posts: int = 0
    retries: int = 0  # 5xx or a connection error, retried with the same body
    replays: int = 0
    replays_over_balance: int = 0
    pairs: int = 0
    drops: int = 0
    not_enough: int = 0
    balances: int = 0
    cancels: int = 0
    zero_wins: int = 0
    rotations: int = 0  # a new session issued mid-round
    old_session_credits: int = 0  # money owed sent on a replaced session: lands
    old_session_replays: int = 0  # replays whose original carried a session replaced since
    refused: int = 0  # a bet or a balance request on a replaced session: session_not_found
    mismatches: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name, value in vars(other).items():
            if name == "mismatches":
                self.mismatches.extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)


Expected = tuple[str, Decimal, str]
REFUSED = {"status": "session_not_found"}  # the whole reply: no balance, no currency


def _amount(rng: random.Random, low: int, high: int) -> Decimal:
    """Whole amounts mostly, some with cents: the billing must stay exact."""
    whole = Decimal(rng.randint(low, max(low, high)))
    return whole + Decimal(rng.randint(1, 99)) / 100 if rng.random() < 0.2 else whole


class Client:
    """One provider connection (plus a twin for the concurrent pairs) playing its own players."""

    def __init__(self, index: int, url: str, wallet: Wallet, players: list[Player], quota: int) -> None:
        self.index = index
        self.wallet = wallet  # the operator's side: issues the new sessions
        self.url = url + "/do"
        self.players = players
        self.quota = quota
        self.rng = random.Random(SEED + index)
        self.http = requests.Session()
        self.twin_http = requests.Session()
        self.twins = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"twin-{index}")
        self.tally = Tally()
        self.serial = 0

    # --- HTTP, like the provider ----------------------------------------------------------------------------------

    def _send(self, http: requests.Session, body: str) -> requests.Response | None:
        self.tally.posts += 1
        try:
            return http.post(self.url, data=body, headers={"Content-Type": "application/json"}, timeout=HTTP_TIMEOUT)
        except requests.RequestException:
            return None

    def post(self, body: str, http: requests.Session | None = None, attempts: int = MAX_RETRIES + 1) -> dict[str, Any]:
        """Send until a reply that is not 5xx (and not a broken connection) arrives, up to `attempts` times."""
        for attempt in range(attempts):
            if attempt:
                self.tally.retries += 1
            response = self._send(http or self.http, body)
            if response is None or response.status_code >= 500:
                time.sleep(0.02)
                continue
            assert response.status_code == 200, response.text
            reply: dict[str, Any] = json.loads(response.text, parse_float=Decimal)
            return reply
        raise AssertionError(f"no reply after {attempts} attempts: {body}")

    def check(self, what: str, reply: dict[str, Any], expected: Expected | None) -> None:
        """`expected` None: refused for the session, exactly {"status": "session_not_found"}."""
        if expected is None:
            if reply != REFUSED:
                self.tally.mismatches.append(f"client {self.index} {what}: got {reply}, expected {REFUSED}")
            return
        status, balance, currency = expected
        got = (reply.get("status"), Decimal(str(reply.get("balance"))), reply.get("currency"))
        if set(reply) != {"status", "balance", "currency"} or got != (status, balance, currency):
            self.tally.mismatches.append(f"client {self.index} {what}: got {reply}, expected {expected}")

    # --- requests -------------------------------------------------------------------------------------------------

    def trx_id(self) -> str:
        self.serial += 1
        return f"c{self.index}-{self.serial}"

    def money(
        self,
        player: Player,
        minus: Decimal,
        plus: Decimal,
        tag: dict[str, Any],
        how: str = "plain",
        session: str | None = None,
    ) -> bool:
        """A new trx_id on `session` (the live one by default): the model decides the reply and moves its balance;
        True when the money moved. On a replaced session only money owed (minus 0, a game_uuid) lands; the rest is
        refused before the balance is looked at."""
        trx_id = self.trx_id()
        session = session or player.session
        body = do_body(session, trx_id, minus, plus, tag)
        expected: Expected | None
        if session != player.session and (minus > 0 or tag.get("game_uuid") in (None, "")):
            expected = None
            self.tally.refused += 1
            moved = False
        elif minus > player.balance:
            expected = ("not_enough_money", player.balance, player.currency)
            self.tally.not_enough += 1
            moved = False
        else:
            player.balance = player.balance - minus + plus
            player.accepted.append((trx_id, body, minus))
            game_id = str(tag.get("game_id") or "?")  # the report's COALESCE(NULLIF(game_id, ''), '?')
            player.bets[game_id] += minus
            player.wins[game_id] += plus
            expected = ("OK", player.balance, player.currency)
            moved = True
            self.tally.old_session_credits += session != player.session
        if how == "pair":
            self.tally.pairs += 1
            start = threading.Barrier(2)

            def twin(http: requests.Session) -> dict[str, Any]:
                start.wait()
                return self.post(body, http)

            for reply in list(self.twins.map(twin, [self.http, self.twin_http])):
                self.check(f"pair {trx_id}", reply, expected)
        elif how == "drop":
            self.tally.drops += 1
            self._send(self.http, body)  # processed (or not), but the reply never reaches the provider
            self.check(f"retry after a lost reply {trx_id}", self.post(body, attempts=MAX_RETRIES), expected)
        else:
            self.check(trx_id, self.post(body), expected)
        return moved

    def replay(self, player: Player) -> None:
        """An earlier accepted trx_id again: nothing moves, OK with the current balance."""
        over = [a for a in player.accepted if a[2] > player.balance]
        trx_id, body, minus = (
            self.rng.choice(over) if over and self.rng.random() < 0.5 else self.rng.choice(player.accepted)
        )
        self.tally.replays += 1
        self.tally.replays_over_balance += minus > player.balance
        self.tally.old_session_replays += json.loads(body)["session"] != player.session
        self.check(f"replay {trx_id}", self.post(body), ("OK", player.balance, player.currency))

    def balance(self, player: Player, session: str | None = None) -> None:
        """A balance request: OK with the balance on the live session, refused on a replaced one."""
        session = session or player.session
        body = do_body(session, self.trx_id(), 0, 0, {"game": "slot", "game_id": ""})
        if session == player.session:
            self.tally.balances += 1
            self.check("balance", self.post(body), ("OK", player.balance, player.currency))
        else:
            self.tally.refused += 1
            self.check("balance on a replaced session", self.post(body), None)

    def rotate(self, player: Player, session: str, tag: dict[str, Any]) -> None:
        """Mid-round, after the bet on `session` landed: sometimes the player gets a new session (opened another
        game); the round goes on on `session`, and the provider may still try a bet on it."""
        if self.rng.random() >= ROTATE:
            return
        self.tally.rotations += 1
        player.replaced.append(player.session)
        player.session = self.wallet.new_session(player.player_id).token
        if self.rng.random() < STALE_AT_ROTATION:
            self.money(player, self.bet_size(player), Decimal(0), tag, session=session)

    def stale(self, player: Player) -> None:
        """A bet or a balance request on one of the player's replaced sessions: refused, nothing moves."""
        session = self.rng.choice(player.replaced)
        if self.rng.random() < 0.5:
            self.balance(player, session)
        else:
            tag = {"game": "slot", "game_id": "a_op", "game_uuid": f"stale-{self.index}-{self.serial}"}
            self.money(player, self.bet_size(player), Decimal(0), tag, session=session)

    def bet_size(self, player: Player) -> Decimal:
        ceiling = int(player.balance // 4) if player.balance >= 8 else 20
        return _amount(self.rng, 1, ceiling)

    def slot_round(self, player: Player, how: str) -> None:
        game_uuid = int(f"{self.index + 1}{self.serial:07d}")
        tag = {"game": "slot", "game_id": "a_op", "game_uuid": game_uuid, "lines": 9, "bet": 1, "denomination": 100}
        bet = self.bet_size(player)
        session = player.session
        if not self.money(player, bet, Decimal(0), tag, how):
            return
        self.rotate(player, session, tag)
        if self.rng.random() < 0.45:
            self.money(player, Decimal(0), _amount(self.rng, 1, int(bet) * 3 + 1), tag, how, session)

    def egame_round(self, player: Player) -> None:
        game_uuid = f"EG-{self.index}-{self.serial}"
        bet = self.bet_size(player)
        tag = {"game": "egame", "game_id": "turbokeno", "game_uuid": game_uuid, "bets": [f"[0]:{bet}"], "result": [1]}
        session = player.session
        if not self.money(player, bet, Decimal(0), tag):
            return
        self.rotate(player, session, tag)
        if self.rng.random() < 0.4:
            win = _amount(self.rng, 1, int(bet) * 5 + 1)
            self.money(player, Decimal(0), win, {**tag, "result": [7, 7, 7]}, session=session)

    def bet_package(self, player: Player) -> None:
        game_uuid = f"BP-{self.index}-{self.serial}"
        base = {"game": "bet", "game_id": "1009", "game_uuid": game_uuid, "round": 10000}
        bets = [_amount(self.rng, 1, max(1, int(player.balance // 12))) for _ in range(self.rng.randint(2, 4))]
        package = {**base, "bets": [f"[{i}]:{amount}" for i, amount in enumerate(bets)]}
        session = player.session
        if not self.money(player, sum(bets, Decimal(0)), Decimal(0), package):
            return
        self.rotate(player, session, package)
        roll = self.rng.random()
        cancelled = (
            []
            if roll < 0.4
            else list(range(len(bets)))
            if roll < 0.6
            else sorted(self.rng.sample(range(len(bets)), self.rng.randint(1, len(bets) - 1)))
        )
        if cancelled:
            self.tally.cancels += 1
            refund = sum((bets[i] for i in cancelled), Decimal(0))
            cancel_tag = {**base, "bets": [f"[{i}]:{bets[i]}" for i in cancelled], "cancel": True}
            self.money(player, Decimal(0), refund, cancel_tag, session=session)
        if len(cancelled) < len(bets):
            win = Decimal(0) if self.rng.random() < 0.5 else _amount(self.rng, 1, int(sum(bets)) * 2 + 1)
            self.tally.zero_wins += win == 0
            self.money(player, Decimal(0), win, {**base, "result": [str(win)]}, session=session)

    def too_big(self, player: Player) -> None:
        self.money(
            player,
            player.balance + _amount(self.rng, 1, 500),
            Decimal(0),
            {"game": "slot", "game_uuid": f"big-{self.index}-{self.serial}"},
        )

    # --- the loop -------------------------------------------------------------------------------------------------

    def run(self) -> Tally:
        try:
            while self.tally.posts < self.quota:
                player = self.rng.choice(self.players)
                if player.replaced and self.rng.random() < STALE:
                    self.stale(player)
                    continue
                roll = self.rng.random()
                # Per step; a round is 1-3 requests, so these come out near 10% replays and 5% pairs of requests.
                if roll < 0.16 and player.accepted:
                    self.replay(player)
                elif roll < 0.21:
                    self.slot_round(player, "pair")
                elif roll < 0.26:
                    self.slot_round(player, "drop")
                elif roll < 0.30:
                    self.balance(player)
                elif roll < 0.35:
                    self.too_big(player)
                elif roll < 0.64:
                    self.slot_round(player, "plain")
                elif roll < 0.82:
                    self.egame_round(player)
                else:
                    self.bet_package(player)
        except Exception as exc:  # reported by the main thread, with the others' results
            self.tally.mismatches.append(f"client {self.index} crashed: {type(exc).__name__}: {exc}")
        finally:
            self.twins.shutdown()
            self.http.close()
            self.twin_http.close()
        return self.tally


# --- the test ------------------------------------------------------------------------------------------------------


def _create_players(wallet: Wallet, rng: random.Random) -> list[Player]:
    specs = [
        (
            f"s{i:03d}",
            CURRENCIES[i % len(CURRENCIES)],
            _amount(rng, 50, 20_000) if i % 10 else Decimal(rng.randint(1, 40)),
        )
        for i in range(PLAYERS)
    ]

    def create(spec: tuple[str, str, Decimal]) -> Player:
        player_id, currency, opening = spec
        wallet.create_player(player_id, currency, opening)
        return Player(player_id, wallet.new_session(player_id).token, currency, opening)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(create, specs))


def test_ten_thousand_requests_from_32_clients_match_the_model(stack: Stack) -> None:
    # The test's own operator wallet (players, session rotations, the final scans) waits longer than the billing's
    # 1.5 s: on a loaded 2-core machine DynamoDB Local can take that long, and this client is not under test.
    patient = Config(connect_timeout=5, read_timeout=30, retries={"total_max_attempts": 5, "mode": "standard"})
    wallet = make_wallet(make_dynamodb_client(endpoint_url=stack.dynamodb_endpoint, config=patient), LOCAL_TABLE)
    rng = random.Random(SEED)
    players = _create_players(wallet, rng)
    rng.shuffle(players)
    clients = [
        Client(i, stack.url, wallet, players[i::CLIENTS], REQUESTS // CLIENTS + (i < REQUESTS % CLIENTS))
        for i in range(CLIENTS)
    ]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="provider") as pool:
        tallies = list(pool.map(Client.run, clients))
    elapsed = time.monotonic() - started
    total = Tally()
    for tally in tallies:
        total.add(tally)

    assert total.mismatches == [], f"{len(total.mismatches)} replies differ from the model:\n" + "\n".join(
        total.mismatches[:30]
    )
    assert total.posts >= REQUESTS
    # The mix really happened.
    assert total.replays_over_balance > 0 and total.pairs > 100 and total.drops > 100 and total.not_enough > 100
    assert total.cancels > 0 and total.zero_wins > 0 and total.balances > 0
    # Sessions rotated mid-round: credits landed on replaced sessions, bets and balance requests on them were refused.
    assert total.rotations > 0 and total.old_session_credits > 0
    assert total.refused > 0 and total.old_session_replays > 0

    # Every balance is the model's.
    model = {p.player_id: p for p in players}
    accounts = {a.player_id: a for a in wallet.store.iter_accounts()}
    assert set(accounts) == set(model) | {DEMO_PLAYER}
    wrong = [(pid, accounts[pid].balance, p.balance) for pid, p in model.items() if accounts[pid].balance != p.balance]
    assert wrong == []
    assert all(accounts[pid].currency == p.currency for pid, p in model.items())

    # The ledger: one entry per accepted trx_id, plus the opening entries (the demo player's too).
    entries = list(wallet.store.iter_entries())
    games = [e for e in entries if e.source is Source.GAME]
    accepted = {trx_id for p in players for trx_id, _, _ in p.accepted}
    assert len(games) == len({e.trx_id for e in games}) == len(accepted)
    assert {e.trx_id for e in games} == accepted
    openings = [e for e in entries if e.source is Source.OPERATOR]
    assert len(openings) == PLAYERS + 1
    assert len(entries) == len(accepted) + PLAYERS + 1

    # `wallet audit`, as the operator runs it against the stack.
    done = subprocess.run(
        [str(WALLET), "audit", "--scan"], env=stack.cli_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["clean"] is True and report["violations"] == []
    assert report["entries"] == len(accepted) + PLAYERS + 1
    assert report["players"] == PLAYERS + 1

    # The archive: everything written so far reaches it through the stream and the exporter.
    env = stack.cli_env()
    archive = env["WALLET_ARCHIVE_DIR"]
    since = time.time()
    progress = wait_for_archive(archive, since, ARCHIVE_TIMEOUT)
    caught_up = time.time() - since
    assert progress["failed"] == 0, progress

    # `wallet report` over it (DuckDB): the model's bets, wins and GGR per game and currency.
    done = subprocess.run([str(WALLET), "report"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    games_report = json.loads(done.stdout)["games"]
    expected: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for p in players:
        for game_id in p.bets:
            totals = expected[(game_id, p.currency)]
            totals[0] += p.bets[game_id]
            totals[1] += p.wins[game_id]
    got = {
        (row["game_id"], row["currency"]): (Decimal(row["bets"]), Decimal(row["wins"]), Decimal(row["ggr"]))
        for row in games_report
    }
    assert got == {key: (bets, wins, bets - wins) for key, (bets, wins) in expected.items()}
    assert {currency for _, currency in got} == set(CURRENCIES)

    # `wallet audit` over the archive: clean, and the same players and entries as the scan of the table.
    done = subprocess.run([str(WALLET), "audit"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    archived = json.loads(done.stdout)
    assert archived["clean"] is True and archived["violations"] == []
    assert (archived["players"], archived["entries"]) == (report["players"], report["entries"])
    assert Decimal(archived["total_balance"]) == Decimal(report["total_balance"])

    # Captured (so shown only with -s).
    print(
        f"\nstress: {total.posts} requests in {elapsed:.1f} s = {total.posts / elapsed:.0f} req/s from {CLIENTS} "
        f"clients on {PLAYERS} players; retries seen {total.retries}; {len(accepted)} movements, "
        f"{total.replays} replays ({total.replays_over_balance} over the balance), {total.pairs} pairs, "
        f"{total.drops} dropped replies, {total.not_enough} not_enough_money; {total.rotations} session rotations "
        f"mid-round, {total.old_session_credits} credits on a replaced session, {total.old_session_replays} replays "
        f"on one, {total.refused} refused on one (session_not_found); the archive caught up {caught_up:.1f} s after "
        f"the audit ({progress['records']} stream records in {progress['batches']} batches)"
    )
