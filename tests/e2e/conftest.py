"""End to end: the real `wallet local` (DynamoDB Local + the table + the local front) as a subprocess, once per session,
and the real `wallet` CLI as subprocesses against it."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.support import SESSION_KEY, start_test_stack
from wallet_local.dynamodb_local import LOCAL_CREDENTIALS
from wallet_local.process import WALLET, LocalStackProcess, StackFailed, clean_environ

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 30.0


class Player(NamedTuple):
    player: str
    session: str


CliResult = tuple[int, Any]

# Many CLI commands in one interpreter: the same `wallet_local.cli.main` the console script calls, without paying
# Python's and boto3's start-up (about half a second) once per command.
_BATCH = """
import contextlib, io, json, sys
from wallet_local.cli import main
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
    process: LocalStackProcess
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


def operator_environment(process: LocalStackProcess) -> dict[str, str]:
    """The CLI's environment for a running stack: a clean copy of ours, pointed at its DynamoDB Local."""
    cli_env = clean_environ()
    cli_env.update(
        AWS_ENDPOINT_URL_DYNAMODB=process.dynamodb_endpoint,
        WALLET_TABLE="wallet-local",
        WALLET_SESSION_KEY=SESSION_KEY,
        AWS_ACCESS_KEY_ID=LOCAL_CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIALS["aws_secret_access_key"],
        AWS_DEFAULT_REGION=LOCAL_CREDENTIALS["region_name"],
        AWS_REGION=LOCAL_CREDENTIALS["region_name"],
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
    )
    return cli_env


@contextlib.contextmanager
def running_stack(
    extra_args: Sequence[str] = (),
    cli_environment: Callable[[LocalStackProcess], dict[str, str]] = operator_environment,
) -> Iterator[LocalStack]:
    """`wallet local` (with `extra_args`) as a subprocess, until the block ends; then Ctrl-C, exactly as a developer
    stops it, and a check that it stopped cleanly and took DynamoDB Local and its ports with it."""
    process = start_test_stack("WARNING", START_TIMEOUT, extra_args)
    stopped = False
    try:
        assert process.process is not None
        pid = process.process.pid
        java = [child for child, cmdline in _children(pid) if "DynamoDBLocal.jar" in cmdline]
        assert len(java) == 1, f"expected one DynamoDB Local child of `wallet local`: {_children(pid)}"
        yield LocalStack(
            base_url=process.base_url,
            port=process.port,
            dynamodb_port=process.dynamodb_port,
            dynamodb_endpoint=process.dynamodb_endpoint,
            banner=process.banner,
            env=cli_environment(process),
            process=process,
            java_pid=java[0],
        )

        try:
            code, output = process.stop(STOP_TIMEOUT)
        except StackFailed as exc:
            raise AssertionError(str(exc)) from None
        stopped = True
        assert code == 0, f"`wallet local` exited {code} on SIGINT; its output:\n{output}"
        assert "stopped" in output.splitlines(), f"no 'stopped' line; its output:\n{output}"
        assert not _alive(java[0]), f"DynamoDB Local (pid {java[0]}) outlived `wallet local`"
        assert not _port_open(process.dynamodb_port), f"port {process.dynamodb_port} still answers after the stop"
        assert not _port_open(process.port), f"port {process.port} still answers after the stop"
    finally:
        if not stopped:
            process.kill()


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    with running_stack() as running:
        yield running


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


@pytest.fixture(scope="session")
def archive_dir(stack: LocalStack) -> Path:
    """The session stack's ledger archive: the folder `wallet local --archive` got from wallet_local.process (the
    table's stream -> the ledger exporter -> Parquet); `wallet report` and `wallet audit` read it with DuckDB."""
    return stack.process.archive_dir
