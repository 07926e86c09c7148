"""Shared pieces: percentiles, signed /do bodies, wallets on a DynamoDB Local endpoint, thread-pool load runs."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import boto3
from pydantic import SecretStr

from wallet.bootstrap import CLIENT_CONFIG, Secrets
from wallet.money.dynamodb import DynamoDBStore
from wallet.money.wallet import Wallet
from wallet.settings import Settings
from wallet_local.dynamodb_local import LOCAL_CREDENTIALS
from wallet_local.front import (
    LambdaContext,  # noqa: F401 - re-exported for the tests and the bench
    billing_event,
)
from wallet_local.stack import signed_body

REPO_ROOT = Path(__file__).resolve().parents[1]
SALT = "bench-salt"
SESSION_KEY = "bench-session-key"
GAMES_SERVER_CIDRS = "203.0.113.0/24"  # billing_event()'s source address is in it
OPENING_BALANCE = Decimal(10) ** 12
BET = 100
WIN = 100


def percentile(samples_ns: list[int], q: float) -> float:
    """The q-th percentile (0..1) of nanosecond samples, in milliseconds (nearest rank)."""
    if not samples_ns:
        return float("nan")
    ordered = sorted(samples_ns)
    rank = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))
    return ordered[rank] / 1e6


def do_body(session: str, trx_id: str, minus: int = 0, plus: int = 0, tag: dict[str, Any] | None = None) -> str:
    """A /do body as the Games Server sends it, signed with the bench salt."""
    return signed_body(session, trx_id, SALT, minus, plus, tag if tag is not None else {"game": "slot", "game_id": ""})


def slot_tag(game_uuid: str) -> dict[str, Any]:
    return {"game": "slot", "game_id": "a_op", "game_uuid": game_uuid, "lines": 9, "bet": 1, "denomination": 100}


def bet_and_win_bodies(session: str, count: int) -> list[str]:
    """`count` bodies alternating a bet and the win of the same round, each with a fresh trx_id."""
    bodies: list[str] = []
    while len(bodies) < count:
        round_id = uuid.uuid4().hex[:16]
        bodies.append(do_body(session, f"b-{round_id}", minus=BET, tag=slot_tag(round_id)))
        bodies.append(do_body(session, f"w-{round_id}", plus=WIN, tag=slot_tag(round_id)))
    return bodies[:count]


def dynamodb_client(endpoint: str) -> Any:
    """A client configured like the product's (CLIENT_CONFIG), pointed at DynamoDB Local."""
    return boto3.client("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG, **LOCAL_CREDENTIALS)


def settings(table: str) -> Settings:
    return Settings(table_name=table, salt=SecretStr(SALT), session_key=SecretStr(SESSION_KEY))


def local_wallet(endpoint: str, table: str) -> Wallet:
    """The product's Wallet, wired like build_wallet() but with an explicit endpoint and the bench secrets."""
    return Wallet(DynamoDBStore(table, dynamodb_client(endpoint)), Secrets(settings(table)))


def create_players(wallet: Wallet, prefix: str, count: int) -> list[str]:
    """Players with a large balance and a live session; returns their session tokens."""
    sessions = []
    for index in range(count):
        player = f"{prefix}{index}"
        wallet.create_player(player, "FUN", OPENING_BALANCE)
        sessions.append(wallet.new_session(player).token)
    return sessions


class CallCounter:
    """Counts DynamoDB API calls on a client with botocore's event hooks (one `before-call` per API call)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.calls.append(event_name.rsplit(".", 1)[-1])

    def take(self) -> list[str]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


@dataclass
class LoadResult:
    clients: int
    requests: int
    seconds: float
    latencies_ns: list[int]
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)
    # A worker that raises is a 5xx (the Lambda answers 5xx for what escapes it; http workers raise ServerError).
    server_errors: int = 0
    # CPU seconds each of WINDOW_CLOCKS moved from the clients' set-up being done to their end (with_cpu sets them).
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    longest_5xx_run: int = 0  # the longest run of consecutive 5xx over all clients, in completion order
    longest_5xx_run_per_client: int = 0  # the longest run one client saw in its own requests
    processes: bool = False  # run_processes: a process per client, not a thread
    tallies: dict[str, int] = field(default_factory=dict)  # the LoadClients' counters, summed

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "requests": self.requests,
            "errors": self.errors,
            "5xx": self.server_errors,
            "5xx_run": self.longest_5xx_run,
            "5xx_run_client": self.longest_5xx_run_per_client,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(percentile(self.latencies_ns, 0.50), 2),
            "p99_ms": round(percentile(self.latencies_ns, 0.99), 2),
            **({"error_kinds": self.error_kinds} if self.error_kinds else {}),
            **self.extra,
        }


class ServerError(Exception):
    """A 5xx answer, for a worker that sees status codes rather than exceptions (the HTTP one)."""


def summed(counters: list[dict[str, int]]) -> dict[str, int]:
    """Counters by name, added up."""
    total: Counter[str] = Counter()
    for counter in counters:
        total.update(counter)
    return dict(total)


def longest_run(flags: list[bool]) -> int:
    """The longest run of True in `flags`."""
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


class LoadClient(NamedTuple):
    """One client of a load (run_load's thread or run_processes' process): its request, and the counters it reports
    at the end, summed over the clients into the result's `tallies`."""

    request: Callable[[int], bool]
    tally: Callable[[], dict[str, int]] = dict


# CPU clocks the runners read once the clients are set up and again once they are all done, so that the set-up (a
# botocore client each: ~0.1 s of CPU) is not counted; with_cpu sets them for one load.
WINDOW_CLOCKS: dict[str, Callable[[], float]] = {}


class _ClientRun(NamedTuple):
    """One client's run: what the load keeps of it (a thread's, or sent back by a child of run_processes)."""

    client_index: int
    started_ns: int  # perf_counter_ns as its first request started
    latencies_ns: list[int]
    failed: list[bool]  # per request: was it a 5xx
    done_at_ns: list[int]  # perf_counter_ns at each completion: CLOCK_MONOTONIC, one clock for all processes
    errors: int
    error_kinds: dict[str, int]
    cpu_seconds: float  # this client's thread or process CPU over its requests
    tally: dict[str, int]
    failure: str | None = None  # run_processes: the child's set-up or run failed


def _run_client(index: int, client: LoadClient, per_client: int, cpu_clock: Callable[[], float]) -> _ClientRun:
    """`per_client` requests, each timed; a request that raises is a 5xx, counted by its kind."""
    latencies: list[int] = []
    failed: list[bool] = []
    done_at: list[int] = []
    errors = 0
    kinds: dict[str, int] = {}
    cpu_started = cpu_clock()
    first_started = time.perf_counter_ns()
    for n in range(per_client):
        started = time.perf_counter_ns()
        server_error = False
        try:
            good = client.request(n)
        except Exception as exc:
            good = False
            server_error = True
            cause = exc.__cause__
            name = type(exc).__name__ + (f"({type(cause).__name__})" if cause is not None else "")
            kinds[name] = kinds.get(name, 0) + 1
        ended = time.perf_counter_ns()
        latencies.append(ended - started)
        failed.append(server_error)
        done_at.append(ended)
        errors += not good
    cpu = cpu_clock() - cpu_started
    return _ClientRun(index, first_started, latencies, failed, done_at, errors, kinds, cpu, client.tally())


def _combined(runs: list[_ClientRun], cpu_seconds: dict[str, float]) -> LoadResult:
    """The clients' runs as one load. Its window runs from the first client's first request to the last one's end, as
    the clients timed them: the thread or process that released them may be scheduled after some have started."""
    runs = sorted(runs, key=lambda r: r.client_index)
    ended = [r.done_at_ns[-1] for r in runs if r.done_at_ns]
    seconds = (max(ended) - min(r.started_ns for r in runs)) / 1e9 if ended else 0.0
    merged = [sample for r in runs for sample in r.latencies_ns]
    in_completion_order = sorted((at, flag) for r in runs for at, flag in zip(r.done_at_ns, r.failed, strict=True))
    completed = [flag for _, flag in in_completion_order]
    result = LoadResult(len(runs), len(merged), seconds, merged, sum(r.errors for r in runs))
    result.error_kinds = summed([r.error_kinds for r in runs])
    result.tallies = summed([r.tally for r in runs])
    result.cpu_seconds = cpu_seconds
    result.server_errors = sum(completed)
    result.longest_5xx_run = longest_run(completed)
    result.longest_5xx_run_per_client = max((longest_run(r.failed) for r in runs), default=0)
    return result


def _as_client(made: Callable[[int], bool] | LoadClient) -> LoadClient:
    return made if isinstance(made, LoadClient) else LoadClient(made)


def run_load(
    clients: int, per_client: int, make_worker: Callable[[int], Callable[[int], bool] | LoadClient]
) -> LoadResult:
    """Run `clients` threads, each doing `per_client` requests; the worker returns False for an error reply and
    raises for a 5xx.

    make_worker(i) is called before the clock starts (set-up: connections, clients, bodies); each request is timed
    with perf_counter_ns, and the window is the clients' own (_combined).
    """
    made = [_as_client(make_worker(i)) for i in range(clients)]
    runs: list[_ClientRun] = []
    barrier = threading.Barrier(clients + 1)

    def run(index: int) -> None:
        barrier.wait()
        runs.append(_run_client(index, made[index], per_client, time.thread_time))  # list.append is atomic

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    cpu_started = {name: clock() for name, clock in WINDOW_CLOCKS.items()}  # the clients are set up and waiting
    barrier.wait()
    for thread in threads:
        thread.join()
    cpu_seconds = {name: clock() - cpu_started[name] for name, clock in WINDOW_CLOCKS.items()}
    return _combined(runs, cpu_seconds)


class _CollectorClock:
    """Wall time spent in the garbage collector (gc.callbacks): what a child's requests lost to it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


def _process_client(
    make_client: Callable[[int], LoadClient], index: int, per_client: int, barrier: Any, results: Any
) -> None:
    """A child of run_processes: set up, wait for the others, run, send back its _ClientRun (its tally with the
    time its collector took, `gc_us`)."""
    try:
        client = make_client(index)
        collector = _CollectorClock()
        gc.callbacks.append(collector)
        barrier.wait()
        run = _run_client(index, client, per_client, time.process_time)
        results.put(run._replace(tally={**run.tally, "gc_us": round(collector.seconds * 1e6)}))
    except BaseException as exc:  # the parent must hear of it, or it waits for a result that never comes
        barrier.abort()
        results.put(_ClientRun(index, 0, [], [], [], 0, {}, 0.0, {}, f"{type(exc).__name__}: {exc}"))


def run_processes(clients: int, per_client: int, make_client: Callable[[int], LoadClient]) -> LoadResult:
    """run_load with each client in a process of its own, as Lambda runs one request per instance at a time: the
    clients' Python is not serialized by one GIL, so the throughput is what the code under test and DynamoDB cost
    on the machine's cores, not what one interpreter can run.

    The children are forked from this process, which has imported the code under test; make_client(i) runs in the
    child (its own botocore client and connections). `cpu_seconds["python"]` is the children's CPU over their
    requests, the other WINDOW_CLOCKS are read here.
    """
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    children = [
        context.Process(target=_process_client, args=(make_client, i, per_client, barrier, results), daemon=True)
        for i in range(clients)
    ]
    # The children's collectors must not walk (and so copy, page by page) this process's heap, which a Lambda
    # instance does not have: what is alive now is frozen before the fork (gc.freeze's documented use).
    gc.collect()
    gc.freeze()
    try:
        for child in children:
            child.start()
    finally:
        gc.unfreeze()
    # Read before the release: the children's set-up does not call DynamoDB, and once released 32 children can keep
    # this process off the cores for a while.
    clocks = {name: clock for name, clock in WINDOW_CLOCKS.items() if name != "python"}
    cpu_started = {name: clock() for name, clock in clocks.items()}
    with contextlib.suppress(threading.BrokenBarrierError):  # a child failed to set up: its failure is in results
        barrier.wait(timeout=300)
    runs: list[_ClientRun] = [results.get(timeout=600) for _ in children]
    cpu_seconds = {name: clock() - cpu_started[name] for name, clock in clocks.items()}
    for child in children:
        child.join(timeout=30)
    broken = [f"client {r.client_index}: {r.failure}" for r in runs if r.failure]
    if broken:
        raise RuntimeError("run_processes: " + "; ".join(broken))
    result = _combined(runs, {"python": sum(r.cpu_seconds for r in runs), **cpu_seconds})
    result.processes = True
    return result


def process_cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process `pid` has used so far, from /proc (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "(command)", which may hold spaces: state is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dynamodb_local_pid(endpoint: str) -> int | None:
    """The DynamoDB Local serving `endpoint` (http://127.0.0.1:<port>): its java process, found by its -port."""
    port = endpoint.rsplit(":", 1)[-1].strip("/")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        jar = any(arg.endswith(b"DynamoDBLocal.jar") for arg in argv)
        if jar and b"-port" in argv and argv[argv.index(b"-port") + 1].decode() == port:
            return int(proc.name)
    return None


def with_cpu(load: Callable[[], LoadResult], dynamodb_pid: int | None) -> dict[str, Any]:
    """A load's summary plus the CPU it cost per request over its timed window: this process's (the clients and,
    in-process, the code under test: the wallet or the floor) and DynamoDB Local's. On 2 shared cores, once both
    are busy, throughput is the inverse of their sum."""
    WINDOW_CLOCKS["python"] = time.process_time
    if dynamodb_pid:
        WINDOW_CLOCKS["dynamodb"] = partial(process_cpu_seconds, dynamodb_pid)
    try:
        result = load()
    finally:
        WINDOW_CLOCKS.clear()
    own, dynamodb = result.cpu_seconds["python"], result.cpu_seconds.get("dynamodb")
    per_request = 1000 / max(1, result.requests)
    summary = result.summary()
    summary["cpu_ms_python"] = round(own * per_request, 2)
    summary["cpu_ms_dynamodb"] = round(dynamodb * per_request, 2) if dynamodb is not None else None
    busy = (own + (dynamodb or 0.0)) / (result.seconds * (os.cpu_count() or 1)) if result.seconds else 0.0
    summary["cpu_busy"] = round(busy, 2)
    if result.processes:
        summary["processes"] = True  # an interpreter per client: no one process's GIL to be bound by
        summary["process_busy"] = None
        summary["gc_ms_per_request"] = round(result.tallies.get("gc_us", 0) / 1000 * per_request / 1000, 3)
    else:
        # The clients and the code under test share one interpreter: under the GIL they get one core at most.
        summary["process_busy"] = round(own / result.seconds, 2) if result.seconds else 0.0
    return summary


def handler_environment(table: str = "wallet-bench") -> dict[str, str]:
    """The billing Lambda's environment as in template.yaml (metrics on, INFO logs), with dummy AWS credentials and
    local secrets; X-Ray off (no daemon here: with `Tracing: Active` AWS adds the SDK's own overhead)."""
    return {
        "WALLET_TABLE": table,
        "WALLET_SALT": SALT,
        "WALLET_SESSION_KEY": SESSION_KEY,
        "WALLET_GAMES_SERVER_CIDRS": GAMES_SERVER_CIDRS,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "wallet",
        "POWERTOOLS_METRICS_NAMESPACE": "Wallet",
        "POWERTOOLS_METRICS_DISABLED": "false",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "WALLET_CATALOGUE_BUCKET": "wallet-bench-site",
    }


# Variables that would change what the handler does if inherited from the caller's shell.
HANDLER_ENV_DROP = (
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "WALLET_SALT_PARAMETER",
    "WALLET_SESSION_KEY_PARAMETER",
    "POWERTOOLS_DEV",
    "_X_AMZN_TRACE_ID",
)


def stub_account_item(player: str, token: str, balance: int = 10**9) -> dict[str, Any]:
    """The account item as DynamoDB returns it, with a live session for `token`."""
    from wallet.money.sessions import hash_token

    return {
        "pk": {"S": f"PLAYER#{player}"},
        "sk": {"S": "ACCOUNT"},
        "type": {"S": "account"},
        "player_id": {"S": player},
        "balance": {"N": str(balance)},
        "currency": {"S": "FUN"},
        "version": {"N": "7"},
        "created_at": {"S": "2025-01-01T00:00:00.000000Z"},
        "session_hash": {"S": hash_token(token, SESSION_KEY.encode())},
        "session_expires_at": {"N": str(int(time.time()) + 3600)},
    }


def api_gateway_event(body: str) -> dict[str, Any]:
    return billing_event(body)
