"""Where things are in a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"
FUNCTIONS = REPO_ROOT / "functions"


def dynamodb_local_dir() -> Path:
    """The unpacked DynamoDB Local (DynamoDBLocal.jar + DynamoDBLocal_lib), put there by scripts/install.sh."""
    configured = os.environ.get("WALLET_DYNAMODB_LOCAL_DIR")
    return Path(configured) if configured else REPO_ROOT / ".local" / "dynamodb-local"


def local_archive_root() -> Path:
    """Where `wallet local` keeps its ledger archives, one folder per run (DynamoDB Local is in memory: each run
    starts a new ledger, and an archive mixing two runs would fail its own audit)."""
    return REPO_ROOT / ".local" / "archive"


def new_archive_dir(table: str, now: float | None = None) -> Path:
    """A fresh folder name for this run's archive: <root>/<table>-<UTC time>-<pid> (not created)."""
    import time

    moment = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return local_archive_root() / f"{table}-{moment}-{os.getpid()}"
