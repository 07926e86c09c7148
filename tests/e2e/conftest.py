"""End to end: the real `wallet local` (DynamoDB Local + the table + the local front) as a subprocess, once per session,
and the real `wallet` CLI as subprocesses against it."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.support import SALT, SESSION_KEY
from wallet_local.dynamodb_local import LOCAL_CREDENTIALS, free_port

WALLET = Path(sys.executable).parent / "wallet"
BANNER_FIRST = "Wallet billing is up"
BANNER_LAST = "Ctrl-C stops it"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 30.0
# Variables of the developer's shell that would point the stack or the CLI somewhere else.
_FOREIGN = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "WALLET_TABLE",
    "WALLET_SALT_PARAMETER",
    "WALLET_SESSION_KEY_PARAMETER",
    "WALLET_SALT",
    "WALLET_SESSION_KEY",
)


class Player(NamedTuple):
    player: str
    session: str


CliResult = tuple[int, Any]

# Many CLI commands in one interpreter: the same `wallet.cli.main` the console script calls, without paying Python's
# and boto3's start-up (about half a second) once per command.
_BATCH = """
import contextlib, io, json, sys
from wallet.cli import main
results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    results.append([code, out.getvalue(), err.getvalue()])
json.dump(results, sys.stdout)
"""


def _clean_environ() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _FOREIGN}
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


class _OutputPump:
    """Drains the stack's stdout+stderr for its whole life (its log lines must never fill the pipe) and notices the
    banner."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.banner_done = threading.Event()
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(stream,), name="wallet-local-output", daemon=True)
        self._thread.start()

    def _run(self, stream: Any) -> None:
        try:
            for line in iter(stream.readline, ""):
                with self._lock:
                    self.lines.append(line.rstrip("\n"))
                if line.startswith(BANNER_LAST):
                    self.banner_done.set()
        finally:
            self.closed.set()

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def banner(self) -> str:
        with self._lock:
            lines = list(self.lines)
        start = next(i for i, line in enumerate(lines) if line.startswith(BANNER_FIRST))
        end = next(i for i, line in enumerate(lines) if line.startswith(BANNER_LAST))
        return "\n".join(lines[start : end + 1])

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def _alive(pid: int) -> bool:
    """True for a running process; False once it is gone (or only a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalStack:
    base_url: str
    port: int
    dynamodb_port: int
    dynamodb_endpoint: str
    banner: str
    env: dict[str, str]
    process: subprocess.Popen[str]
    java_pid: int
    created: list[Player] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> CliResult:
        """Run the `wallet` CLI against this stack: (exit code, its JSON output) or (exit code, its stderr)."""
        done = subprocess.run(
            [str(WALLET), *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            return done.returncode, done.stderr
        return 0, json.loads(done.stdout, parse_float=Decimal)

    def cli_batch(self, *commands: list[str]) -> list[CliResult]:
        """Like `cli` for each command, in one subprocess (see _BATCH)."""
        done = subprocess.run(
            [sys.executable, "-c", _BATCH],
            input=json.dumps(commands),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT + 2 * len(commands),
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return [
            (code, json.loads(out, parse_float=Decimal)) if code == 0 else (code, err)
            for code, out, err in json.loads(done.stdout)
        ]

    def new_player(self, balance: int | str | Decimal = 10000) -> Player:
        player_id = f"p{next(self._ids)}-{uuid.uuid4().hex[:10]}"
        (rc, created), (rc_session, issued) = self.cli_batch(
            ["player", "create", player_id, "--balance", str(balance)], ["session", "new", player_id]
        )
        assert rc == 0, created
        assert Decimal(str(created["balance"])) == Decimal(str(balance)), created
        assert rc_session == 0, issued
        assert issued["player"] == player_id, issued
        player = Player(player_id, issued["session"])
        self.created.append(player)
        return player


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    port, dynamodb_port = free_port(), free_port()
    while dynamodb_port == port:
        dynamodb_port = free_port()
    env = _clean_environ()
    env.update(
        WALLET_SALT=SALT,
        WALLET_SESSION_KEY=SESSION_KEY,
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [str(WALLET), "local", "--port", str(port), "--dynamodb-port", str(dynamodb_port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group: a Ctrl-C on pytest does not reach it, and cleanup can reach it and its java child.
        start_new_session=True,
    )
    assert process.stdout is not None
    pump = _OutputPump(process.stdout)
    stopped = False
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not pump.banner_done.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                pump.closed.wait(2)
                code = process.poll()
                what = f"exited {code} before" if code is not None else f"did not print within {START_TIMEOUT}s"
                raise AssertionError(f"`wallet local` {what} its banner; its output:\n{pump.text()}")
        java = [pid for pid, cmdline in _children(process.pid) if "DynamoDBLocal.jar" in cmdline]
        assert len(java) == 1, f"expected one DynamoDB Local child of `wallet local`: {_children(process.pid)}"
        dynamodb_endpoint = f"http://127.0.0.1:{dynamodb_port}"
        cli_env = _clean_environ()
        cli_env.update(
            AWS_ENDPOINT_URL_DYNAMODB=dynamodb_endpoint,
            WALLET_TABLE="wallet-local",
            WALLET_SESSION_KEY=SESSION_KEY,
            AWS_ACCESS_KEY_ID=LOCAL_CREDENTIALS["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIALS["aws_secret_access_key"],
            AWS_DEFAULT_REGION=LOCAL_CREDENTIALS["region_name"],
            AWS_REGION=LOCAL_CREDENTIALS["region_name"],
            POWERTOOLS_LOG_LEVEL="WARNING",
            POWERTOOLS_METRICS_DISABLED="true",
        )
        yield LocalStack(
            base_url=f"http://127.0.0.1:{port}",
            port=port,
            dynamodb_port=dynamodb_port,
            dynamodb_endpoint=dynamodb_endpoint,
            banner=pump.banner(),
            env=cli_env,
            process=process,
            java_pid=java[0],
        )

        # Teardown: Ctrl-C, exactly as a developer stops it.
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"`wallet local` did not stop within {STOP_TIMEOUT}s of SIGINT; its output:\n{pump.text()}"
            ) from None
        stopped = True
        pump.closed.wait(5)
        output = pump.text()
        assert code == 0, f"`wallet local` exited {code} on SIGINT; its output:\n{output}"
        assert "stopped" in output.splitlines(), f"no 'stopped' line; its output:\n{output}"
        assert not _alive(java[0]), f"DynamoDB Local (pid {java[0]}) outlived `wallet local`"
        assert not _port_open(dynamodb_port), f"port {dynamodb_port} still answers after the stop"
        assert not _port_open(port), f"port {port} still answers after the stop"
    finally:
        if not stopped and process.poll() is None:
            # Only our own process group: `wallet local` and the DynamoDB Local it started.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        if process.stdout is not None:
            pump.join(5)
            process.stdout.close()


@pytest.fixture(scope="session")
def cli(stack: LocalStack) -> Callable[..., CliResult]:
    """`cli("balance", "demo") -> (rc, json)`; on a non-zero exit, (rc, stderr)."""
    return stack.cli


@pytest.fixture
def player(stack: LocalStack) -> Player:
    """A fresh player with 10000 FUN (`wallet player create`) and a session from `wallet session new`."""
    return stack.new_player(10000)


@pytest.fixture
def new_player(stack: LocalStack) -> Callable[..., Player]:
    return stack.new_player
