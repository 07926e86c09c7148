"""`make invoke`: every sample event of events/ through SAM's own emulator, then a `sam local start-api` round.

scripts/invoke.sh prepares what this needs (our own dockerd on a bridge with no way out, the Lambda base image, the
x86_64 build) and runs `python -m wallet_local.invoke`. This module:

1. starts the local services in their own network namespace, on the bridge only: DynamoDB Local, moto's server (S3,
   CloudFront) and a file server for the provider's games_config, on the ports events/env.json names (the functions
   reach them as host.docker.internal, which `--add-host` maps to the namespace's address);
2. creates the table (from template.yaml), the demo player with the sample session the events are signed for, and
   the site's bucket;
3. runs `sam local invoke --skip-pull-image -e events/<event> <Function>` for every entry of events/expected.json,
   in its order, and checks each reply;
4. serves the same build with `sam local start-api` on a loopback port and plays a Games Server round on it (bet,
   win, the bet's replay): the replies and the ledger must be exact;
5. prints the table (event, expected, got, seconds) and exits 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wallet_local.dynamodb_local import LOCAL_CREDENTIALS, free_port
from wallet_local.paths import REPO_ROOT, dynamodb_local_dir
from wallet_local.stack import STATIC, signed_body

EVENTS = REPO_ROOT / "events"
MANIFEST = EVENTS / "expected.json"
ENV_VARS = EVENTS / "env.json"
CONTAINER_HOST = "host.docker.internal"  # the name events/env.json uses for the services
INVOKE_TIMEOUT = 300.0
EMULATOR_LOST_REPLY = "No response from invoke container"
SMOKE_PLAYER = "smoke"
SMOKE_OPENING = 1000


# --- the manifest and the checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expectation:
    """One line of events/expected.json."""

    event: str
    function: str
    label: str = ""  # the row's name, when an event is sent twice (default: the event's file name)
    chain: str = "main"
    env_vars: str = "env.json"
    status_code: int | None = None
    body: Any = None
    body_has: dict[str, Any] | None = None
    content_type: str | None = None
    contains: tuple[str, ...] = ()
    result: dict[str, Any] | None = None
    # What a second send gets when it differs from the first (the same keys): an operator deposit replayed is 200,
    # not 201; a player created twice is 409. Used only when the emulator lost the first reply.
    replayed: dict[str, Any] | None = None

    _KEYS = {
        "event": "event",
        "label": "label",
        "function": "function",
        "chain": "chain",
        "envVars": "env_vars",
        "statusCode": "status_code",
        "body": "body",
        "bodyHas": "body_has",
        "contentType": "content_type",
        "contains": "contains",
        "result": "result",
        "replayed": "replayed",
    }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Expectation:
        if unknown := set(item) - set(cls._KEYS):
            raise ValueError(f"{item.get('event')}: unknown keys {sorted(unknown)}")
        values = {cls._KEYS[key]: value for key, value in item.items()}
        values["contains"] = tuple(values.get("contains", ()))
        if (replayed := values.get("replayed")) is not None and (unknown := set(replayed) - set(cls._KEYS)):
            raise ValueError(f"{item.get('event')}: unknown keys in replayed {sorted(unknown)}")
        return cls(**values)

    def sent_again(self) -> Expectation:
        """What the event must get when it is sent a second time: itself, or with its `replayed` keys."""
        if not self.replayed:
            return self
        return replace(self, **{self._KEYS[key]: value for key, value in self.replayed.items()}, replayed=None)

    @property
    def name(self) -> str:
        return self.label or self.event

    def describe(self) -> str:
        if self.status_code is None:
            return _compact(self.result)
        parts = [str(self.status_code)]
        if self.body is not None:
            parts.append(_compact(self.body))
        if self.body_has is not None:
            parts.append(_compact(self.body_has).removesuffix("}") + ",...}")
        if self.content_type:
            parts.append(self.content_type)
        if self.contains:
            parts.append(f"{len(self.contains)}/{len(self.contains)} strings")
        return " ".join(parts)


@dataclass(frozen=True)
class Manifest:
    player: dict[str, Any]  # the demo player the billing and page events are signed for
    replay: list[Expectation]
    ledger: list[dict[str, Any]]  # {"player", "balance", "entries"} once every event was sent


def load_manifest(path: Path = MANIFEST) -> Manifest:
    document = json.loads(path.read_text(encoding="utf-8"))
    replay = [Expectation.from_json(item) for item in document["replay"]]
    return Manifest(document["player"], replay, document["ledger"])


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _header(reply: dict[str, Any], name: str) -> str | None:
    for key, value in (reply.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (reply.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower() and values:
            return str(values[0])
    return None


def check(expectation: Expectation, reply: Any) -> tuple[bool, str]:
    """Whether `reply` (what the function returned) is the expected one, and a short text of what it was."""
    if expectation.status_code is None:
        if not isinstance(reply, dict) or expectation.result is None:
            return False, _compact(reply)
        got = {key: reply.get(key) for key in expectation.result}
        extra = {key: reply[key] for key in reply if key not in expectation.result}
        return got == expectation.result, _compact({**got, **extra})
    if not isinstance(reply, dict) or "statusCode" not in reply:
        return False, _compact(reply)[:200]
    ok = reply["statusCode"] == expectation.status_code
    parts = [str(reply["statusCode"])]
    text = reply.get("body") or ""
    if expectation.body is not None or expectation.body_has is not None:
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        if expectation.body is not None:
            ok = ok and body == expectation.body
            parts.append(_compact(body) if not isinstance(body, str) else body[:120])
        else:
            wanted = expectation.body_has or {}
            has = {key: body.get(key, "(missing)") for key in wanted} if isinstance(body, dict) else body
            ok = ok and has == wanted
            parts.append(_compact(has).removesuffix("}") + ",...}" if isinstance(has, dict) else str(has)[:120])
    if expectation.content_type:
        content_type = _header(reply, "Content-Type") or "(no Content-Type)"
        ok = ok and content_type.startswith(expectation.content_type)
        parts.append(content_type.split(";")[0])
    if expectation.contains:
        found = [needle for needle in expectation.contains if needle in text]
        ok = ok and len(found) == len(expectation.contains)
        parts.append(f"{len(found)}/{len(expectation.contains)} strings")
    return ok, " ".join(parts)


def parse_invoke_output(stdout: str) -> Any:
    """The function's result as `sam local invoke` prints it on stdout (the last JSON document there)."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for raw in reversed(text.splitlines()):
        line = raw.strip()
        if line.startswith(("{", "[", '"')):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError(f"no JSON result in sam's output: {text[-300:]!r}")


@dataclass
class Row:
    name: str
    expected: str
    got: str
    seconds: float
    ok: bool
    detail: str = ""


def format_table(rows: Sequence[Row], width: int = 64) -> str:
    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 3] + "..."

    name_width = max([len("event"), *(len(row.name) for row in rows)])
    lines = [f"{'event':<{name_width}}  {'expected':<{width}}  {'got':<{width}}  {'seconds':>7}  result"]
    for row in rows:
        lines.append(
            f"{row.name:<{name_width}}  {cut(row.expected):<{width}}  {cut(row.got):<{width}}  "
            f"{row.seconds:>7.1f}  {'ok' if row.ok else 'MISMATCH'}"
        )
    return "\n".join(lines)


# --- the services: DynamoDB Local, moto, the provider's files, in their own network namespace --------------------


@dataclass(frozen=True)
class Endpoints:
    """The services' ports, as events/env.json names them for the functions (http://host.docker.internal:<port>)."""

    dynamodb: int
    aws: int
    provider: int
    table: str
    bucket: str
    salt: str
    session_key: str

    @classmethod
    def from_env_vars(cls, env_vars: dict[str, dict[str, str]]) -> Endpoints:
        billing, site, sync = env_vars["BillingFunction"], env_vars["GamePageFunction"], env_vars["GamesSyncFunction"]

        def port(url: str) -> int:
            parts = urlsplit(url)
            if parts.hostname != CONTAINER_HOST or parts.port is None:
                raise ValueError(f"events/env.json: {url} is not http://{CONTAINER_HOST}:<port>")
            return parts.port

        aws = {port(site["AWS_ENDPOINT_URL_S3"]), port(sync["AWS_ENDPOINT_URL_S3"])}
        aws.add(port(sync["AWS_ENDPOINT_URL_CLOUDFRONT"]))
        if len(aws) != 1:
            raise ValueError(f"events/env.json: S3 and CloudFront on one moto server, not on ports {sorted(aws)}")
        return cls(
            dynamodb=port(billing["AWS_ENDPOINT_URL_DYNAMODB"]),
            aws=aws.pop(),
            provider=port(sync["WALLET_GAMES_CONFIG_URL"]),
            table=billing["WALLET_TABLE"],
            bucket=sync["WALLET_CATALOGUE_BUCKET"],
            salt=billing["WALLET_SALT"],
            session_key=billing["WALLET_SESSION_KEY"],
        )


def service_commands(endpoints: Endpoints, ip: str, python: str = sys.executable) -> dict[str, list[str]]:
    directory = dynamodb_local_dir()
    return {
        # DynamoDB Local listens on every address of its namespace (it has no bind option): that namespace has only
        # loopback and its end of the bridge.
        "dynamodb-local": [
            "java",
            "-Xms64m",
            "-Xmx1g",
            f"-Djava.library.path={directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(directory / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(endpoints.dynamodb),
        ],
        "moto": [python, "-m", "moto.server", "-H", ip, "-p", str(endpoints.aws)],
        "provider-files": [python, "-m", "http.server", str(endpoints.provider), "--bind", ip, "-d", str(STATIC)],
    }


def wait_for_port(host: str, port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the process for {host}:{port} exited")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing answered on {host}:{port} within {timeout:.0f}s")


@contextmanager
def services(endpoints: Endpoints, netns: str, ip: str, logs: Path) -> Iterator[None]:
    processes: list[tuple[str, subprocess.Popen[bytes], Any]] = []
    try:
        for name, command in service_commands(endpoints, ip).items():
            log = (logs / f"{name}.log").open("wb")
            # `ip netns exec` execs the command in the namespace: the pid is the service's own.
            process = subprocess.Popen(
                ["ip", "netns", "exec", netns, *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=dynamodb_local_dir() if name == "dynamodb-local" else None,
            )
            processes.append((name, process, log))
        for (name, process, _), port in zip(
            processes, (endpoints.dynamodb, endpoints.aws, endpoints.provider), strict=True
        ):
            try:
                wait_for_port(ip, port, 60, alive=lambda p=process: p.poll() is None)  # type: ignore[misc]
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{name}: {exc} (log: {logs / (name + '.log')})") from exc
        yield
    finally:
        for _, process, log in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


# --- the data the events expect ----------------------------------------------------------------------------------


def local_environment(endpoints: Endpoints, ip: str) -> dict[str, str]:
    """For this process (the seeding and the ledger checks) and for SAM, which hands the credentials on."""
    return {
        "WALLET_TABLE": endpoints.table,
        "WALLET_SALT": endpoints.salt,
        "WALLET_SESSION_KEY": endpoints.session_key,
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://{ip}:{endpoints.dynamodb}",
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": LOCAL_CREDENTIALS["region_name"],
        "AWS_REGION": LOCAL_CREDENTIALS["region_name"],
        # SAM: no STS retries offline (they cost ~11 s per invoke), no telemetry.
        "AWS_MAX_ATTEMPTS": "1",
        "SAM_CLI_TELEMETRY": "0",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


def seed(endpoints: Endpoints, ip: str, player: dict[str, Any]) -> Any:
    """The table, the demo player with the sample session the events are signed for, the site's bucket. Returns the
    wallet (this process's, on the same DynamoDB Local)."""
    import boto3

    from wallet.bootstrap import build_wallet
    from wallet.money.sessions import SessionRecord, hash_token
    from wallet_local.table import create_table

    credentials = dict(LOCAL_CREDENTIALS)
    dynamodb = boto3.client("dynamodb", endpoint_url=f"http://{ip}:{endpoints.dynamodb}", **credentials)
    create_table(dynamodb, endpoints.table)
    s3 = boto3.client("s3", endpoint_url=f"http://{ip}:{endpoints.aws}", **credentials)
    s3.create_bucket(Bucket=endpoints.bucket)
    wallet = build_wallet()
    wallet.create_player(player["id"], player["currency"], Decimal(player["opening_balance"]))
    # The sample token is fixed (events/generate.py), so it is stored as `wallet session new` would store a new one.
    now = int(time.time())
    token_hash = hash_token(player["session"], endpoints.session_key.encode("utf-8"))
    record = SessionRecord(player["id"], token_hash, now, now + 24 * 60 * 60)
    wallet.store.start_session(record, record.expires_at + wallet.credit_grace_seconds)
    return wallet


# --- SAM ---------------------------------------------------------------------------------------------------------


@dataclass
class Sam:
    template: Path
    parameter_overrides: list[str]
    services_ip: str
    logs: Path
    environment: dict[str, str]
    executable: str = field(default_factory=lambda: str(Path(sys.executable).with_name("sam")))
    # `stop()` (SIGTERM, Ctrl-C): the running sam processes end, no more are started.
    stopping: threading.Event = field(default_factory=threading.Event)
    _running: set[subprocess.Popen[str]] = field(default_factory=set)

    def stop(self) -> None:
        self.stopping.set()
        for process in list(self._running):
            process.terminate()

    def common(self) -> list[str]:
        return [
            "--template",
            str(self.template),
            "--skip-pull-image",
            "--parameter-overrides",
            *self.parameter_overrides,
            "--add-host",
            f"{CONTAINER_HOST}:{self.services_ip}",
        ]

    def invoke_command(self, expectation: Expectation) -> list[str]:
        event = EVENTS / expectation.event
        env_vars = EVENTS / expectation.env_vars
        return [
            *(self.executable, "local", "invoke", *self.common(), "--env-vars", str(env_vars)),
            *("--event", str(event), expectation.function),
        ]

    def invoke(self, expectation: Expectation) -> Row:
        """One event through the emulator. When the emulator itself loses the reply (the function logged its END, sam
        reports no response from the container: aws-sam-cli#3714, seen ~1 in 40 invokes on a loaded 2-core machine),
        the event is sent once more and the row says so. Every event is safe to send twice: that is the protocol's
        idempotency (and the operator API's, by ref). The second reply must be what a replay gets: the same reply, or
        the entry's `replayed` one, since the first send landed (the function logged its END)."""
        row = self._invoke_once(expectation)
        if row.ok or self.stopping.is_set() or EMULATOR_LOST_REPLY not in row.detail:
            return row
        retried = self._invoke_once(expectation.sent_again(), attempt=2)
        return replace(
            retried,
            got=f"{retried.got} (sent twice: the emulator lost the first reply)",
            seconds=row.seconds + retried.seconds,
            detail=retried.detail or f"first attempt: {row.detail}",
        )

    def _invoke_once(self, expectation: Expectation, attempt: int = 1) -> Row:
        start = time.monotonic()
        if self.stopping.is_set():
            return Row(expectation.name, expectation.describe(), "not run (stopped)", 0.0, False)
        suffix = "" if attempt == 1 else f"-attempt{attempt}"
        log = self.logs / f"invoke-{expectation.name.removesuffix('.json').replace(' ', '-')}{suffix}.log"
        process = subprocess.Popen(
            self.invoke_command(expectation),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environment,
            cwd=REPO_ROOT,
        )
        self._running.add(process)
        try:
            stdout, stderr = process.communicate(timeout=INVOKE_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            log.write_text(stderr, encoding="utf-8")
            return Row(expectation.name, expectation.describe(), "timed out", time.monotonic() - start, False, stderr)
        finally:
            self._running.discard(process)
        seconds = time.monotonic() - start
        log.write_text(stderr + "\n--- stdout ---\n" + stdout, encoding="utf-8")
        try:
            reply = parse_invoke_output(stdout)
        except ValueError as exc:
            got = f"exit {process.returncode}, no result"
            return Row(expectation.name, expectation.describe(), got, seconds, False, f"{exc}\n{_tail(stderr)}")
        ok, got = check(expectation, reply)
        ok = ok and process.returncode == 0
        detail = "" if ok else f"reply: {_compact(reply)[:2000]}\n{_tail(stderr)}"
        return Row(expectation.name, expectation.describe(), got, seconds, ok, detail)

    @contextmanager
    def start_api(self, port: int) -> Iterator[str]:
        command = [
            self.executable,
            "local",
            "start-api",
            *self.common(),
            "--env-vars",
            str(ENV_VARS),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--warm-containers",
            "LAZY",  # one container for the billing, kept for the whole round
        ]
        log = (self.logs / "start-api.log").open("wb")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.environment, cwd=REPO_ROOT, start_new_session=True
        )
        try:
            wait_for_port("127.0.0.1", port, 120, alive=lambda: process.poll() is None)
            yield f"http://127.0.0.1:{port}"
        finally:
            # Ctrl-C, as a person would: SAM stops its warm containers.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- the network: what a function container can reach --------------------------------------------------------------

PROBE = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def probe(target):
    host, port = target
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "blocked"
    except OSError as exc:
        return "blocked" if exc.errno in (101, 113) else f"error {exc.errno}"

targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps(dict(zip((f"{h}:{p}" for h, p in targets), pool.map(probe, targets)))))
"""
PUBLIC_ADDRESS = ("1.1.1.1", 443)  # any address off this machine


def default_gateway() -> str | None:
    """The host's own default gateway (the first router a packet leaving this machine would reach)."""
    done = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True, check=False)
    words = done.stdout.split()
    return words[words.index("via") + 1] if "via" in words else None


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    expected: str  # "open", or "blocked" (no answer at all: a refused connection means the address is reachable)


def network_targets(
    services_ip: str, port: int, host_ip: str, gateway: str | None, host_reachable: bool
) -> list[Target]:
    """Where a function container connects: the services answer; the host through the bridge, the host's gateway and
    a public address are out of reach."""
    targets = [Target("services", services_ip, port, "open")]
    if not host_reachable:
        targets.append(Target("host", host_ip, port, "blocked"))
    if gateway:
        targets.append(Target("gateway", gateway, 80, "blocked"))
    targets.append(Target("internet", *PUBLIC_ADDRESS, "blocked"))
    return targets


def network_row(image: str, targets: Sequence[Target]) -> Row:
    """One container on the bridge, as SAM starts them, tries every target."""
    start = time.monotonic()
    command = ["docker", "run", "--rm", "--entrypoint", "/usr/bin/python3.13", image, "-c", PROBE]
    done = subprocess.run(
        [*command, json.dumps([[target.host, target.port] for target in targets])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    try:
        outcomes = json.loads(done.stdout)
    except ValueError:
        outcomes = {}
    got = {target.name: outcomes.get(f"{target.host}:{target.port}", "?") for target in targets}
    expected = {target.name: target.expected for target in targets}
    where = ", ".join(f"{target.name} {target.host}:{target.port}" for target in targets)
    detail = f"{where}\n{done.stderr.strip()[-500:]}"
    return Row(
        "network (a container)", _brief(expected), _brief(got), time.monotonic() - start, got == expected, detail
    )


def _brief(outcomes: dict[str, str]) -> str:
    return ", ".join(f"{name} {outcome}" for name, outcome in outcomes.items())


# --- the start-api round ---------------------------------------------------------------------------------------------


class GamesServer:
    """The provider's Games Server, as far as one round needs: signed bodies, and the same body again (same trx_id)
    while a reply does not arrive (5xx, timeout, a dropped connection), up to 10 more times."""

    def __init__(self, url: str, salt: str, timeout: float = 120.0) -> None:
        import requests

        self.url = url.rstrip("/") + "/do"
        self.salt = salt
        self.timeout = timeout
        self.http = requests.Session()

    def send(self, body: str) -> tuple[int, Any, int]:
        import requests

        statuses: list[int] = []
        for attempt in range(1, 12):
            try:
                response = self.http.post(
                    self.url, data=body, headers={"Content-Type": "application/json"}, timeout=self.timeout
                )
            except requests.RequestException:
                statuses.append(0)
                time.sleep(0.5)
                continue
            if response.status_code >= 500:
                statuses.append(response.status_code)
                time.sleep(0.5)
                continue
            try:
                reply = response.json()
            except ValueError:
                reply = response.text[:200]
            return response.status_code, reply, attempt
        raise RuntimeError(f"no reply after 11 attempts: {statuses}")


def smoke_round(url: str, wallet: Any, endpoints: Endpoints, currency: str) -> list[Row]:
    """A fresh player (its own session from `new_session`) plays a slot round through start-api."""
    wallet.create_player(SMOKE_PLAYER, currency, Decimal(SMOKE_OPENING))
    session = wallet.new_session(SMOKE_PLAYER).token
    server = GamesServer(url, endpoints.salt)
    tag = {"game": "slot", "game_id": "a_op", "game_uuid": 900001, "lines": 1, "bet": 1, "denomination": 100}
    bet = signed_body(session, "smoke-bet-1", endpoints.salt, 100, 0, tag)
    steps = [
        ("balance", signed_body(session, "smoke-balance-1", endpoints.salt, 0, 0, {"game": "slot", "game_id": ""})),
        ("bet 100", bet),
        ("win 250", signed_body(session, "smoke-win-1", endpoints.salt, 0, 250, tag)),
        ("bet replayed", bet),
    ]
    balances = [SMOKE_OPENING, SMOKE_OPENING - 100, SMOKE_OPENING + 150, SMOKE_OPENING + 150]
    rows = []
    for (name, body), balance in zip(steps, balances, strict=True):
        expected = {"status": "OK", "balance": balance, "currency": currency}
        start = time.monotonic()
        try:
            status, reply, attempts = server.send(body)
        except RuntimeError as exc:
            rows.append(Row(f"start-api {name}", f"200 {_compact(expected)}", str(exc), 0.0, False))
            continue
        got = f"{status} {_compact(reply)}" + (f" ({attempts} attempts)" if attempts > 1 else "")
        ok = status == 200 and reply == expected
        rows.append(Row(f"start-api {name}", f"200 {_compact(expected)}", got, time.monotonic() - start, ok))
    rows.append(ledger_row(wallet, SMOKE_PLAYER, SMOKE_OPENING + 150, entries=3))  # the opening, the bet, the win
    return rows


def ledger_row(wallet: Any, player_id: str, balance: int, entries: int) -> Row:
    """The player's account and ledger after the round: exact balance, one entry per movement (the replay none),
    and the whole table passes the audit (wallet.operator.audit)."""
    from wallet.operator.audit import audit_store

    start = time.monotonic()
    account = wallet.account(player_id)
    written = len(wallet.history(player_id))
    report = audit_store(wallet.store)
    expected = f"balance {balance}, {entries} entries, audit clean"
    got = f"balance {account.balance}, {written} entries, audit {'clean' if report.clean else 'NOT clean'}"
    ok = account.balance == balance and written == entries and report.clean
    detail = "" if report.clean else "\n".join(report.violations[:20])
    return Row(f"ledger {player_id}", expected, got, time.monotonic() - start, ok, detail)


# --- main ----------------------------------------------------------------------------------------------------------


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m wallet_local.invoke", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, required=True, help="the built template (sam build's output)")
    parser.add_argument("--parameter-overrides", required=True, help="as for sam, space separated")
    parser.add_argument("--services-netns", required=True, help="the network namespace for the local services")
    parser.add_argument("--services-ip", required=True, help="the services' address on the bridge")
    parser.add_argument("--logs", type=Path, required=True, help="a directory for every process's output")
    parser.add_argument("--network-probe", metavar="IMAGE", help="check what a container on the bridge can reach")
    parser.add_argument("--host-ip", help="the host's address on the bridge (--network-probe)")
    parser.add_argument("--host-reachable", action="store_true", help="no firewall: the host is reachable")
    parser.add_argument("--jobs", type=int, default=2, help="chains of events run side by side (1: one by one)")
    parser.add_argument("--chain", action="append", help="only this chain of the manifest (repeatable)")
    parser.add_argument("--no-start-api", action="store_true", help="only the sam local invoke replay")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest()
    endpoints = Endpoints.from_env_vars(json.loads(ENV_VARS.read_text(encoding="utf-8")))
    for key in ("WALLET_SALT_PARAMETER", "WALLET_SESSION_KEY_PARAMETER"):
        os.environ.pop(key, None)
    os.environ.update(local_environment(endpoints, args.services_ip))
    sam = Sam(args.template, args.parameter_overrides.split(), args.services_ip, args.logs, dict(os.environ))

    def stop(signum: int, _: Any) -> None:
        # Unwinds through every `finally`: the sam processes, start-api and the services stop; then the exit code.
        sam.stop()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    start = time.monotonic()
    with services(endpoints, args.services_netns, args.services_ip, args.logs):
        rows = run(args, manifest, endpoints, sam)
    print()
    print(format_table(rows))
    for row in rows:
        if not row.ok and row.detail:
            print(f"\n--- {row.name} ---\n{row.detail}")
    failed = sum(not row.ok for row in rows)
    print(f"\n{len(rows) - failed} passed, {failed} failed in {time.monotonic() - start:.0f}s (logs: {args.logs})")
    return 1 if failed else 0


def run(args: argparse.Namespace, manifest: Manifest, endpoints: Endpoints, sam: Sam) -> list[Row]:
    """With the services up: the data, the network probe, every event, the ledger, the start-api round."""
    player = manifest.player
    wallet = seed(endpoints, args.services_ip, player)
    print(
        f"[invoke] services up on {args.services_ip} (ports {endpoints.dynamodb}, {endpoints.aws}, "
        f"{endpoints.provider}); player {player['id']} with the sample session",
        flush=True,
    )
    rows: list[Row] = []
    if args.network_probe:
        gateway = default_gateway()
        targets = network_targets(args.services_ip, endpoints.dynamodb, args.host_ip, gateway, args.host_reachable)
        rows.append(network_row(args.network_probe, targets))
        where = ", ".join(f"{target.name} {target.host}:{target.port}" for target in targets)
        print(f"[invoke] from a container on the bridge: {where}: {rows[-1].got}", flush=True)
    expectations = [e for e in manifest.replay if not args.chain or e.chain in args.chain]
    rows.extend(replay(sam, expectations, args.jobs))
    if not args.chain:
        rows.extend(ledger_row(wallet, item["player"], item["balance"], item["entries"]) for item in manifest.ledger)
    if not args.no_start_api and not sam.stopping.is_set():
        port = free_port()
        print(f"[invoke] sam local start-api on 127.0.0.1:{port}", flush=True)
        try:
            with sam.start_api(port) as url:
                rows.extend(smoke_round(url, wallet, endpoints, player["currency"]))
        except (RuntimeError, TimeoutError) as exc:
            rows.append(Row("start-api", "serves POST /do", f"failed: {exc}", 0.0, False, _tail(_read(args.logs))))
    return rows


def chains(expectations: Sequence[Expectation]) -> list[list[Expectation]]:
    """The manifest's chains, each in the manifest's order, in the order they first appear."""
    grouped: dict[str, list[Expectation]] = {}
    for expectation in expectations:
        grouped.setdefault(expectation.chain, []).append(expectation)
    return list(grouped.values())


def replay(sam: Sam, expectations: Sequence[Expectation], jobs: int) -> list[Row]:
    """Every event through `sam local invoke`: each chain in its order, up to `jobs` chains at a time. The rows come
    back in the manifest's order."""
    from concurrent.futures import ThreadPoolExecutor

    def run(chain: list[Expectation]) -> list[Row]:
        rows = []
        for expectation in chain:
            row = sam.invoke(expectation)
            outcome = "ok" if row.ok else "stopped" if sam.stopping.is_set() else "MISMATCH"
            print(f"[invoke] {row.name}: {outcome} in {row.seconds:.1f}s", flush=True)
            rows.append(row)
        return rows

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = [row for rows in pool.map(run, chains(expectations)) for row in rows]
    order = {expectation.name: index for index, expectation in enumerate(expectations)}
    return sorted(done, key=lambda row: order[row.name])


def _read(logs: Path) -> str:
    path = logs / "start-api.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
