"""Cost per million bets on AWS (list prices, us-east-1; verify before quoting) from the measured sizes and calls."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from wallet.money.ledger import LedgerEntry, Source

# Prices (USD), us-east-1, as listed on the AWS pricing pages (assumed current on 2025-11-25; verify):
PRICES = {
    "api_gateway_rest_per_million": 3.50,  # API Gateway pricing page, REST APIs, first 333 million requests/month
    "lambda_requests_per_million": 0.20,  # AWS Lambda pricing page
    "lambda_arm64_gb_second": 0.0000133334,  # AWS Lambda pricing page, Arm, first 7.5 billion GB-s/month
    "dynamodb_wru_per_million": 0.625,  # AWS DynamoDB pricing page, on-demand, us-east-1 (since 1 Nov 2024)
    "dynamodb_rru_per_million": 0.125,  # AWS DynamoDB pricing page, on-demand, us-east-1 (since 1 Nov 2024)
    "cloudwatch_logs_ingest_per_gb": 0.50,  # Amazon CloudWatch pricing page, Logs, standard ingestion
}
SOURCES = (
    "https://aws.amazon.com/api-gateway/pricing/, https://aws.amazon.com/lambda/pricing/, "
    "https://aws.amazon.com/dynamodb/pricing/on-demand/, https://aws.amazon.com/cloudwatch/pricing/"
)


def _billing_memory_mb() -> int:
    """BillingFunction's MemorySize in template.yaml (or the Globals'), so the model follows the template."""
    import yaml

    from wallet_local.paths import TEMPLATE
    from wallet_local.table import _CloudFormationLoader

    document = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    own = document["Resources"]["BillingFunction"]["Properties"].get("MemorySize")
    return int(own or document["Globals"]["Function"]["MemorySize"])


MEMORY_MB = _billing_memory_mb()  # arm64 (Architectures in template.yaml)
# Assumed in-region DynamoDB latencies on AWS (not measured here: DynamoDB Local is an emulator on localhost).
AWS_TRANSACT_GET_MS = 6
AWS_TRANSACT_WRITE_MS = 12
# Lambda gives CPU in proportion to memory (1 vCPU at 1769 MB): at 1024 MB ~0.58 vCPU, so Python work is ~1.7x slower.
CPU_SHARE_FACTOR = 1769 / MEMORY_MB
PLATFORM_LOG_BYTES = 350  # START + END + REPORT lines (REPORT carries the X-Ray trace id with Tracing: Active)
LOG_EVENT_OVERHEAD = 26  # CloudWatch counts 26 bytes per log event on top of the message


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names + values (numbers ~ 1 byte per 2 digits + 1; maps/lists 3 + 1 each)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = len(inner.replace("-", "").replace(".", "").strip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    return len(str(inner))


def item_sizes() -> dict[str, int]:
    from bench.common import stub_account_item
    from wallet.money.store import _entry_item

    entry = LedgerEntry(
        source=Source.GAME,
        trx_id="7f3c2a9e-5b1d-4c8e-9a2f-0123456789ab",
        player_id="player-000123",
        minus=Decimal(100),
        plus=Decimal(0),
        balance_before=Decimal("123456.78"),
        balance_after=Decimal("123356.78"),
        currency="EUR",
        created_at="2025-11-25T17:30:00.123456Z",
        kind="bet",
        game_uuid="100001234567",
        tag={"game": "slot", "game_id": "a_op", "game_uuid": 100001234567, "lines": 9, "bet": 1, "denomination": 100},
        fingerprint="a" * 64,
        account_version=42,
    )
    account = stub_account_item("player-000123", "player-000123." + "x" * 43)
    return {"entry_bytes": item_size(_entry_item(entry)), "account_bytes": item_size(account)}


def per_million_bets(handler_p50_ms: float, log_bytes: int, emf_bytes: int) -> dict[str, Any]:
    sizes = item_sizes()
    entry_kb = math.ceil(sizes["entry_bytes"] / 1024)
    account_kb = math.ceil(sizes["account_bytes"] / 1024)
    # TransactWriteItems: 2 WRU per KB per item; the entry also goes to by_player and (bets carry a game_uuid)
    # by_round: 1 WRU per KB each, non-transactional. TransactGetItems: 2 RRU per 4 KB per item (a missing item
    # still costs the minimum).
    wru = 2 * entry_kb + 2 * account_kb + 2 * entry_kb
    rru = 2 * math.ceil(sizes["account_bytes"] / 4096) + 2
    duration_ms = math.ceil(handler_p50_ms * CPU_SHARE_FACTOR + AWS_TRANSACT_GET_MS + AWS_TRANSACT_WRITE_MS)
    log_bytes_per_bet = log_bytes + emf_bytes + PLATFORM_LOG_BYTES + 5 * LOG_EVENT_OVERHEAD  # 5 log events
    log_gb = log_bytes_per_bet * 1e6 / 2**30
    p = PRICES
    lines = [
        ("API Gateway REST", "1M x $3.50/M", p["api_gateway_rest_per_million"]),
        ("Lambda requests", "1M x $0.20/M", p["lambda_requests_per_million"]),
        (
            "Lambda compute",
            f"1M x {MEMORY_MB / 1024:g} GB x {duration_ms} ms x ${p['lambda_arm64_gb_second']:.10f}/GB-s",
            1e6 * MEMORY_MB / 1024 * duration_ms / 1000 * p["lambda_arm64_gb_second"],
        ),
        ("DynamoDB writes", f"1M x {wru} WRU x $0.625/M", wru * p["dynamodb_wru_per_million"]),
        ("DynamoDB reads", f"1M x {rru} RRU x $0.125/M", rru * p["dynamodb_rru_per_million"]),
        (
            "CloudWatch Logs",
            f"1M x {log_bytes_per_bet} B = {log_gb:.2f} GB x $0.50/GB",
            log_gb * p["cloudwatch_logs_ingest_per_gb"],
        ),
    ]
    # Baseline for comparison: GetItem session (eventually consistent, 0.5 RRU) + GetItem balance (consistent, 1 RRU)
    # + PutItem trx (1 WRU + 2 GSI WRU) + UpdateItem balance (1 WRU): 4 WRU + 1.5 RRU, and no atomicity.
    baseline_dynamodb = 4 * p["dynamodb_wru_per_million"] + 1.5 * p["dynamodb_rru_per_million"]
    return {
        "prices": p,
        "sources": SOURCES,
        "sizes": sizes,
        "wru_per_bet": wru,
        "rru_per_bet": rru,
        "assumed_billed_duration_ms": duration_ms,
        "duration_formula": (
            f"ceil(handler p50 {handler_p50_ms:.2f} ms x {CPU_SHARE_FACTOR:.1f} ({MEMORY_MB} MB CPU share) + "
            f"{AWS_TRANSACT_GET_MS} ms TransactGetItems + {AWS_TRANSACT_WRITE_MS} ms TransactWriteItems)"
        ),
        "log_bytes_per_bet": log_bytes_per_bet,
        "lines": [{"item": item, "formula": formula, "usd": round(usd, 3)} for item, formula, usd in lines],
        "total_usd": round(sum(usd for _, _, usd in lines), 2),
        "baseline_dynamodb_usd": round(baseline_dynamodb, 3),
    }
