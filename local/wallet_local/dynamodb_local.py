"""Start and stop DynamoDB Local, AWS's own emulator (a jar shipped in the npm package amplify-dynamodb-simulator)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3
from botocore.config import Config

from wallet_local.paths import dynamodb_local_dir

LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": "us-east-1"}


class DynamoDBLocalMissing(RuntimeError):
    pass


class DynamoDBLocal:
    """One in-memory DynamoDB Local process. `-sharedDb` so that every client sees the same tables whatever its
    access key and region (DynamoDB Local otherwise keeps a database per key and region)."""

    def __init__(self, port: int, directory: Path | None = None) -> None:
        self.port = port
        self.directory = directory or dynamodb_local_dir()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> DynamoDBLocal:
        jar = self.directory / "DynamoDBLocal.jar"
        java = shutil.which("java")
        if not jar.exists():
            raise DynamoDBLocalMissing(f"{jar} not found: run `make install` (scripts/install.sh)")
        if java is None:
            raise DynamoDBLocalMissing("java not found on PATH (DynamoDB Local needs Java 17+)")
        if _port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is in use: pass another --dynamodb-port")
        command = [
            java,
            "-Xms64m",
            "-Xmx1g",
            f"-Djava.library.path={self.directory / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        # cwd: DynamoDB Local writes a metadata file into its working directory; keep it out of the checkout.
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.directory)
        self._wait_until_ready(timeout)
        return self

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "dynamodb", endpoint_url=self.endpoint, config=Config(retries={"max_attempts": 2}), **LOCAL_CREDENTIALS
        )

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"DynamoDB Local exited: {error.strip()[-2000:]}")
            try:
                client.list_tables()
                return
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"DynamoDB Local did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
