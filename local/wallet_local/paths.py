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
