"""Throughput and latency: end to end through `wallet local` (HTTP -> the Lambda handler -> DynamoDB Local), and
in-process (Wallet.handle_do against the naive baseline, and the hot-player version race)."""

from __future__ import annotations

import http.client
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from bench import floor
from bench.baseline import NaiveBilling
from bench.common import (
    SALT,
    SESSION_KEY,
    CallCounter,
    LoadClient,
    LoadResult,
    ServerError,
    bet_and_win_bodies,
    create_players,
    dynamodb_client,
    dynamodb_local_pid,
    local_wallet,
    run_load,
    run_processes,
    with_cpu,
)
from wallet_local.dynamodb_local import DynamoDBLocal, free_port
from wallet_local.process import LocalStackProcess
from wallet_local.table import create_table

LOCAL_TABLE = "wallet-local"
BASELINE_TABLE = "wallet-baseline"
WRITE_CALLS = frozenset({"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})


class LocalStack:
    """`wallet local` as a subprocess on free ports (wallet_local.process); its output is scanned for urllib3's
    'pool is full' warnings, which would mean the bench's clients, not the service, were the bottleneck."""

    def __init__(self) -> None:
        self._process = LocalStackProcess(
            {"POWERTOOLS_LOG_LEVEL": "ERROR", "WALLET_SALT": SALT, "WALLET_SESSION_KEY": SESSION_KEY}
        )
        self.url = self._process.base_url
        self.dynamodb_endpoint = self._process.dynamodb_endpoint

    @property
    def pool_full_warnings(self) -> int:
        return self._process.output().count("Connection pool is full")

    def wait_ready(self, timeout: float = 120) -> None:
        self._process.start_timeout = timeout
        self._process.start()

    def stop(self) -> None:
        try:
            self._process.stop(30)
        finally:
            self._process.kill()


# --- end to end over HTTP -----------------------------------------------------------------------------------------


def _http_worker(url: str, bodies: list[str]) -> Callable[[int], bool]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}

    def request(n: int) -> bool:
        connection.request("POST", "/do", bodies[n], headers)
        response = connection.getresponse()
        data = response.read()
        if response.status >= 500:
            raise ServerError(response.status)
        return response.status == 200 and b'"status":"OK"' in data

    return request


def http_load(url: str, sessions: list[str], clients: int, per_client: int) -> LoadResult:
    """`clients` connections, client i playing sessions[i % len(sessions)] (one session: the hot player)."""
    bodies = [bet_and_win_bodies(sessions[i % len(sessions)], per_client) for i in range(clients)]
    return run_load(clients, per_client, lambda i: _http_worker(url, bodies[i]))


# --- in-process: our Wallet and the naive baseline, each client its own DynamoDB client (one Lambda instance each) ---


def wallet_load(
    endpoint: str, sessions: list[str], clients: int, per_client: int, *, processes: bool = False
) -> LoadResult:
    """Our Wallet.handle_do, client i playing sessions[i % len(sessions)]: a thread each, or with `processes` an
    interpreter each (bench.common.run_processes)."""
    bodies = [bet_and_win_bodies(sessions[i % len(sessions)], per_client) for i in range(clients)]

    def make(index: int) -> LoadClient:
        wallet = local_wallet(endpoint, LOCAL_TABLE)
        counter = CallCounter(wallet.store.client)
        retries = 0

        def request(n: int) -> bool:
            nonlocal retries
            outcome = wallet.handle_do(bodies[index][n])  # raises on a 5xx answer: counted by kind
            retries += max(0, outcome.attempts - 1)
            return outcome.reply.status == "OK"

        def tally() -> dict[str, int]:
            calls = counter.take()
            return {"calls": len(calls), "writes": calls.count("TransactWriteItems"), "retries": retries}

        return LoadClient(request, tally)

    result = (run_processes if processes else run_load)(clients, per_client, make)
    requests, tallies = max(1, result.requests), result.tallies
    result.extra = {
        "calls_per_request": round(tallies["calls"] / requests, 2),
        # The cost of the retries: every attempt is one TransactWriteItems (a lost race is a failed one).
        "writes_per_request": round(tallies["writes"] / requests, 2),
        "retries": tallies["retries"],
        "retries_per_request": round(tallies["retries"] / requests, 3),
        "gave_up_503": sum(n for kind, n in result.error_kinds.items() if "Contended" in kind),
    }
    return result


def baseline_load(endpoint: str, sessions: list[str], clients: int, per_client: int) -> LoadResult:
    bodies = [bet_and_win_bodies(sessions[i % len(sessions)], per_client) for i in range(clients)]
    counters: list[CallCounter] = []

    def make(index: int) -> Callable[[int], bool]:
        client = dynamodb_client(endpoint)
        counters.append(CallCounter(client))
        billing = NaiveBilling(client, BASELINE_TABLE)

        def request(n: int) -> bool:
            return billing.handle_do(bodies[index][n], time.time()).status == "OK"

        return request

    result = run_load(clients, per_client, make)
    calls = [call for counter in counters for call in counter.take()]
    result.extra = {
        "calls_per_request": round(len(calls) / result.requests, 2),
        "writes_per_request": round(sum(call in WRITE_CALLS for call in calls) / result.requests, 2),
    }
    return result


def baseline_players(endpoint: str, count: int, prefix: str) -> list[str]:
    client = dynamodb_client(endpoint)
    billing = NaiveBilling(client, BASELINE_TABLE)
    sessions = []
    for index in range(count):
        player = f"{prefix}{index}"
        token = f"{player}.{uuid.uuid4().hex}{uuid.uuid4().hex}"
        billing.create_player(player, token, int(time.time()) + 3600)
        sessions.append(token)
    return sessions


def _each(requests: int, clients: int) -> int:
    return max(1, requests // clients)


def hot_rows(
    endpoint: str, hot_ours: list[str], hot_base: list[str], hot_levels: dict[int, int], out: dict[str, Any]
) -> None:
    """The in-process hot-player rows: every client on the one player, ours then the baseline at each level."""
    for clients, requests in hot_levels.items():
        out["ours_hot"].append(wallet_load(endpoint, hot_ours, clients, _each(requests, clients)).summary())
        out["baseline_hot"].append(baseline_load(endpoint, hot_base, clients, _each(requests, clients)).summary())


def measure_hot(hot_levels: dict[int, int]) -> dict[str, Any]:
    """Only the in-process hot-player rows (`python -m bench hot`), on a DynamoDB Local of their own."""
    with DynamoDBLocal(free_port()) as dynamodb:
        endpoint = dynamodb.endpoint
        create_table(dynamodb_client(endpoint), LOCAL_TABLE)
        create_table(dynamodb_client(endpoint), BASELINE_TABLE)
        wallet = local_wallet(endpoint, LOCAL_TABLE)
        warm = create_players(wallet, "ip", 4)
        hot_ours = create_players(wallet, "hot-ip", 1)
        hot_base = baseline_players(endpoint, 1, "hot-base")
        # Warm-up: connections and DynamoDB Local's JIT.
        wallet_load(endpoint, warm, 4, 25)
        baseline_load(endpoint, baseline_players(endpoint, 4, "base"), 4, 25)
        out: dict[str, Any] = {"ours_hot": [], "baseline_hot": []}
        hot_rows(endpoint, hot_ours, hot_base, hot_levels, out)
    return out


FLOOR_KEYS = {False: ("floor", "ours_vs_floor", "floor_ratio"), True: ("floor_p", "ours_vs_floor_p", "floor_ratio_p")}


def floor_rows(
    endpoint: str,
    ours_sessions: list[str],
    floor_players: list[str],
    levels: dict[int, int],
    out: dict[str, Any],
    rounds: int,
    base_sessions: list[str] | None = None,
) -> None:
    """Ours against the floor (bench/floor.py) at each level, with a thread per client (one interpreter for all) and
    with a process per client (an interpreter each, as Lambda runs them), into out[FLOOR_KEYS[processes]].

    At each level the floor and ours take turns, `rounds` runs each in A-B-B-A-A-B order, and the best run of each is
    kept, so that a burst of other work on the machine (or a pause of DynamoDB Local's) during one run does not
    decide the ratio. With `base_sessions` the naive baseline's thread row runs after the first round (out["ours"],
    out["baseline"]: the in-process table).
    """
    dynamodb = dynamodb_local_pid(endpoint)  # its CPU per request, beside ours and the floor's
    out["floor_rounds"] = rounds
    for processes, (floor_key, ours_key, ratio_key) in FLOOR_KEYS.items():
        out[floor_key], out[ours_key] = [], []
        for clients, requests in levels.items():
            n = _each(requests, clients)
            run_floor = partial(floor.floor_load, endpoint, LOCAL_TABLE, floor_players, clients, n, processes=processes)
            run_ours = partial(wallet_load, endpoint, ours_sessions, clients, n, processes=processes)
            floors: list[dict[str, Any]] = []
            ours: list[dict[str, Any]] = []
            for round_ in range(rounds):
                for run, into in ((run_floor, floors), (run_ours, ours))[:: 1 if round_ % 2 == 0 else -1]:
                    into.append(with_cpu(run, dynamodb))
                if round_ == 0 and base_sessions is not None and not processes:
                    out["ours"].append(ours[0])
                    out["baseline"].append(baseline_load(endpoint, base_sessions, clients, n).summary())
            out[floor_key].append(max(floors, key=lambda r: r["rps"]))
            out[ours_key].append(max(ours, key=lambda r: r["rps"]))
        out[ratio_key] = floor.ratios(out[ours_key], out[floor_key])


def measure_floor(levels: dict[int, int], rounds: int) -> dict[str, Any]:
    """Only ours against the floor (`python -m bench floor`), on a DynamoDB Local of its own."""
    with DynamoDBLocal(free_port()) as dynamodb:
        endpoint = dynamodb.endpoint
        create_table(dynamodb_client(endpoint), LOCAL_TABLE)
        players = max(levels)
        ours_sessions = create_players(local_wallet(endpoint, LOCAL_TABLE), "ip", players)
        floor_players = floor.create_accounts(floor.bare_client(endpoint), LOCAL_TABLE, "floor", players)
        wallet_load(endpoint, ours_sessions, 4, 25)  # warm-up: connections and DynamoDB Local's JIT
        floor.floor_load(endpoint, LOCAL_TABLE, floor_players, 4, 25)
        out: dict[str, Any] = {}
        floor_rows(endpoint, ours_sessions, floor_players, levels, out, rounds)
    return out


def measure(stack: LocalStack, levels: dict[int, int], hot_levels: dict[int, int], floor_rounds: int) -> dict[str, Any]:
    """levels: clients -> requests at that level (split evenly over the clients)."""
    endpoint = stack.dynamodb_endpoint
    create_table(dynamodb_client(endpoint), BASELINE_TABLE)
    players = max(levels)
    wallet = local_wallet(endpoint, LOCAL_TABLE)
    e2e_sessions = create_players(wallet, "e2e", players)
    ours_sessions = create_players(wallet, "ip", players)
    hot_e2e = create_players(wallet, "hot-e2e", 1)
    hot_ours = create_players(wallet, "hot-ip", 1)
    base_sessions = baseline_players(endpoint, players, "base")
    hot_base = baseline_players(endpoint, 1, "hot-base")
    floor_players = floor.create_accounts(floor.bare_client(endpoint), LOCAL_TABLE, "floor", players)

    # Warm-up: connections, DynamoDB Local's JIT, the handler's first requests.
    http_load(stack.url, e2e_sessions, 4, 25)
    wallet_load(endpoint, ours_sessions, 4, 25)
    baseline_load(endpoint, base_sessions, 4, 25)
    floor.floor_load(endpoint, LOCAL_TABLE, floor_players, 4, 25)

    out: dict[str, Any] = {"e2e": [], "e2e_hot": [], "ours": [], "baseline": [], "ours_hot": [], "baseline_hot": []}
    before = stack.pool_full_warnings
    for clients, requests in levels.items():
        out["e2e"].append(http_load(stack.url, e2e_sessions, clients, _each(requests, clients)).summary())
    for clients, requests in hot_levels.items():
        out["e2e_hot"].append(http_load(stack.url, hot_e2e, clients, _each(requests, clients)).summary())
    out["front_pool_full_warnings"] = stack.pool_full_warnings - before
    floor_rows(endpoint, ours_sessions, floor_players, levels, out, floor_rounds, base_sessions=base_sessions)
    hot_rows(endpoint, hot_ours, hot_base, hot_levels, out)
    return out
