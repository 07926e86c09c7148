"""The `wallet` command of a source checkout: the operator CLI (wallet.operator.cli) plus `wallet local`.

`wallet local` lives here, beside the local stack, so the deployed package (layers/wallet) never imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wallet.money.sessions import MAX_SESSION_SECONDS
from wallet.operator import cli


def _session_seconds(text: str) -> int:
    seconds = int(text) if text.isdigit() else 0
    if not 1 <= seconds <= MAX_SESSION_SECONDS:
        raise argparse.ArgumentTypeError(f"must be a whole number of seconds from 1 to {MAX_SESSION_SECONDS}")
    return seconds


def _run_local(args: argparse.Namespace) -> int:
    from wallet_local.stack import run_local_stack

    return run_local_stack(
        host=args.host,
        port=args.port,
        dynamodb_port=args.dynamodb_port,
        max_instances=args.instances,
        session_seconds=args.session_seconds,
        archive_dir=args.archive,
    )


def add_local_command(commands: Any) -> None:
    local = commands.add_parser("local", help="run the service locally on DynamoDB Local (source checkout only)")
    local.add_argument("--port", type=int, default=3000)
    local.add_argument("--dynamodb-port", type=int, default=8000)
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--instances", type=int, default=8, help="Lambda instances per function (processes)")
    local.add_argument(
        "--session-seconds", type=_session_seconds, help="session lifetime, 1-86400 s (default a day; short for tests)"
    )
    local.add_argument(
        "--archive",
        type=Path,
        metavar="DIR",
        help="the ledger archive's folder (default: WALLET_ARCHIVE_DIR, else a new one under .local/archive/)",
    )
    local.set_defaults(run_alone=_run_local)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, more_commands=[add_local_command])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
