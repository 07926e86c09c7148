"""`wallet local` as a child process, for the end-to-end tests, the stress test and the benchmark: started on free
ports, its output drained for its whole life (a full pipe would block it), stopped with Ctrl-C as a developer would."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from wallet_local.dynamodb_local import free_port

WALLET = Path(sys.executable).parent / "wallet"
BANNER_FIRST = "Wallet billing is up"
BANNER_LAST = "Ctrl-C stops it"
# Variables of the developer's shell that would point the stack or the CLI somewhere else, or change its demo.
FOREIGN_PREFIXES = ("WALLET_", "AWS_ENDPOINT_URL")
FOREIGN_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "PYTEST_CURRENT_TEST")


class StackFailed(RuntimeError):
    """`wallet local` did not start, or did not stop cleanly; the message carries its output."""


def clean_environ() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key not in FOREIGN_VARIABLES and not key.startswith(FOREIGN_PREFIXES)
    }


class LocalStackProcess:
    def __init__(
        self,
        environment: dict[str, str] | None = None,
        start_timeout: float = 90.0,
        extra_args: Sequence[str] = (),
        archive_dir: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.dynamodb_port = free_port()
        while self.dynamodb_port == self.port:
            self.dynamodb_port = free_port()
        self.environment = {**clean_environ(), "PYTHONUNBUFFERED": "1", **(environment or {})}
        self.start_timeout = start_timeout
        # More `wallet local` options after the ports, e.g. ["--session-seconds", "3"].
        self.extra_args = list(extra_args)
        # The ledger archive: `archive_dir`, or a temporary folder removed when the stack is stopped (not the
        # checkout's .local/archive, which would fill up with a folder per test run).
        self._own_archive = archive_dir is None and "--archive" not in self.extra_args
        if "--archive" in self.extra_args:
            self.archive_dir = Path(self.extra_args[self.extra_args.index("--archive") + 1])
        else:
            self.archive_dir = archive_dir or Path(tempfile.mkdtemp(prefix="wallet-archive-"))
            self.extra_args += ["--archive", str(self.archive_dir)]
        self.process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._banner_done = threading.Event()
        self._closed = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dynamodb_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.dynamodb_port}"

    def start(self) -> LocalStackProcess:
        self.process = subprocess.Popen(
            [
                str(WALLET),
                "local",
                "--port",
                str(self.port),
                "--dynamodb-port",
                str(self.dynamodb_port),
                *self.extra_args,
            ],
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group: a Ctrl-C on the caller does not reach it, and kill() reaches its children too.
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._banner_done.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._closed.wait(2)
                code = self.process.poll()
                self.kill()
                what = f"exited {code} before" if code is not None else f"did not print within {self.start_timeout}s"
                raise StackFailed(f"`wallet local` {what} its banner; its output:\n{self.output()}")
        return self

    def _drain(self, stream: IO[str]) -> None:
        try:
            for line in iter(stream.readline, ""):
                with self._lock:
                    self._lines.append(line.rstrip("\n"))
                if line.startswith(BANNER_LAST):
                    self._banner_done.set()
        finally:
            self._closed.set()

    def output(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    @property
    def banner(self) -> str:
        lines = self.output().splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(BANNER_FIRST))
        end = next(i for i, line in enumerate(lines) if line.startswith(BANNER_LAST))
        return "\n".join(lines[start : end + 1])

    def exports(self) -> dict[str, str]:
        """The variables the banner tells an operator to export for the CLI, over a clean copy of ours."""
        line = next(line for line in self.banner.splitlines() if line.strip().startswith("export "))
        exported = dict(word.split("=", 1) for word in shlex.split(line.strip())[1:])
        return {**clean_environ(), **exported}

    def stop(self, timeout: float = 15.0) -> tuple[int, str]:
        """Ctrl-C, then wait: (exit code, everything it printed). StackFailed if it does not stop in time."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise StackFailed(f"`wallet local` ignored SIGINT for {timeout}s; its output:\n{self.output()}") from None
        self._closed.wait(5)
        self._close_stream()
        self._remove_archive()
        return code, self.output()

    def kill(self) -> None:
        """Only our own process group: `wallet local`, its Lambda instances and the DynamoDB Local it started."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._close_stream()
        self._remove_archive()

    def _remove_archive(self) -> None:
        if self._own_archive:
            shutil.rmtree(self.archive_dir, ignore_errors=True)

    def _close_stream(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> LocalStackProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.kill()
