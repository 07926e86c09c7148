"""Cost per million bets on AWS (list prices, us-east-1; verify before quoting) from the measured sizes and calls.

The pure parts (units from item sizes, dollars from units) are plain functions of their inputs so that
tests/unit/test_bench_cost.py can check the arithmetic; `per_million_bets` puts them together with what the bench
measured (handler time, log bytes, the read call a bet makes) and what the template says (memory, the archive
exporter's batch size when it exists).
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

# Prices (USD), us-east-1, list prices as summarised for this work from the AWS pricing pages on 2025-11-25 (not
# fetched live on the run date; verify before quoting). DynamoDB on-demand: the prices since AWS halved on-demand
# throughput prices on 1 Nov 2024 ($1.25 -> $0.625 per million WRU, $0.25 -> $0.125 per million RRU).
PRICES_AS_OF = "2025-11-25"
PRICES = {
    "api_gateway_rest_per_million": 3.50,  # API Gateway, REST APIs, first 333 million requests/month
    "api_gateway_http_per_million": 1.00,  # API Gateway, HTTP APIs, first 300 million/month, per 512 KB request unit
    "lambda_requests_per_million": 0.20,  # AWS Lambda, requests
    "lambda_arm64_gb_second": 0.0000133334,  # AWS Lambda, Arm, first 7.5 billion GB-s/month, billed per 1 ms
    "dynamodb_wru_per_million": 0.625,  # DynamoDB on-demand, us-east-1 (since 1 Nov 2024)
    "dynamodb_rru_per_million": 0.125,  # DynamoDB on-demand, us-east-1 (since 1 Nov 2024)
    "cloudwatch_logs_ingest_per_gb": 0.50,  # CloudWatch Logs, standard class ingestion
    "cloudwatch_metric_month": 0.30,  # CloudWatch custom metrics (EMF), first 10,000 metrics, per metric-month
    "s3_put_per_thousand": 0.005,  # S3 Standard, PUT/COPY/POST/LIST requests
    "s3_standard_gb_month": 0.023,  # S3 Standard storage, first 50 TB/month (Object Lock adds no charge of its own)
    "snapstart_cache_gb_second": 0.0000015046,  # Lambda SnapStart (Python/.NET), cache, per GB-s per active version
    "snapstart_restore_per_gb": 0.0001397998,  # Lambda SnapStart (Python/.NET), restoration, per GB restored
}
SOURCES = (
    "https://aws.amazon.com/api-gateway/pricing/, https://aws.amazon.com/lambda/pricing/, "
    "https://aws.amazon.com/dynamodb/pricing/on-demand/, https://aws.amazon.com/cloudwatch/pricing/, "
    "https://aws.amazon.com/s3/pricing/"
)
TARGET_USD = 6.00  # issue 14, target 4: cost per million bets at list prices
CHOSEN_API = "http"  # what template.yaml deploys for /do (issue 14, target 4): an HTTP API, allowlist in the function

# Assumed in-region DynamoDB latencies on AWS (not measured here: DynamoDB Local is an emulator on localhost).
AWS_GET_ITEM_MS = 4  # GetItem / BatchGetItem of two keys, strongly consistent
AWS_TRANSACT_GET_MS = 6
AWS_TRANSACT_WRITE_MS = 12
PLATFORM_LOG_BYTES = 350  # START + END + REPORT lines (REPORT carries the X-Ray trace id with Tracing: Active)
PLATFORM_LOG_EVENTS = 3  # START, END, REPORT
LOG_EVENT_OVERHEAD = 26  # CloudWatch counts 26 bytes per log event on top of the message
OWN_LOG_EVENTS = 2  # our log line and the EMF blob

# The tamper-evident chain (issue 14's helper 3) adds about this much to each entry and account item. Counted on top
# of the measured sizes until the items themselves carry it (then it is in the measurement and not added again).
CHAIN_BYTES = 64
CHAIN_ATTRIBUTE_HINTS = ("chain", "prev_hash", "entry_hash", "account_hash", "digest", "mac")

# The archive (issue 14's helper 4): a DynamoDB stream on the table feeds an exporter Lambda that writes Parquet to
# S3 (Object Lock). Reading the stream from a Lambda trigger is free; what a bet costs is its share of the exporter's
# invocations and duration, of the S3 PUTs, and the storage of its row. These are assumptions until the template has
# the exporter (then its BatchSize and MemorySize are read from it).
STREAM_RECORDS_PER_BET = 2  # the entry put and the account update (GSI writes make no stream records)
ARCHIVE_BATCH_RECORDS = 1000  # records per exporter invocation (full batches: the load-model rate fills them)
ARCHIVE_MEMORY_MB = 1024
ARCHIVE_MS_PER_BATCH = 1500  # decode 1,000 stream records, build and write one Parquet object
ARCHIVE_PUTS_PER_BATCH = 1  # one Parquet object per batch
ARCHIVE_BYTES_PER_ENTRY = 200  # one entry as a compressed Parquet row (ids, amounts, tag, chain hash)

# SnapStart (a template Parameter, off by default): restores per million requests, i.e. how many new execution
# environments a million requests start (assumed: 1 in 2,000 requests at a steady load; much higher while scaling).
SNAPSTART_RESTORES_PER_MILLION = 500
SNAPSTART_VERSIONS = 2  # published versions kept with a snapshot (the live one and the previous), cached all month
SECONDS_PER_MONTH = 30 * 24 * 3600

# The load model (docs/PERFORMANCE.md): 1,000 players spinning every 3 s, a bet and a win per spin.
LOAD_MODEL_RPS = 1000 * (1 / 3) * 2


# --- pure arithmetic ----------------------------------------------------------------------------------------------


def kb_units(size_bytes: int, unit_bytes: int) -> int:
    """DynamoDB rounds each item up to the next unit (1 KB for writes, 4 KB for reads); at least one unit."""
    return max(1, math.ceil(size_bytes / unit_bytes))


def movement_write_units(entry_bytes: int, account_bytes: int, indexes: int = 2) -> int:
    """WRU of one movement: TransactWriteItems costs 2 WRU per KB per item (the entry put, the account update); the
    entry is also written to each GSI (by_player, and by_round since bets and wins carry a game_uuid) at 1 WRU per KB,
    non-transactionally (GSI propagation is not part of the transaction)."""
    entry = kb_units(entry_bytes, 1024)
    return 2 * entry + 2 * kb_units(account_bytes, 1024) + indexes * entry


def read_units(read_call: str, account_bytes: int, entry_bytes: int) -> float:
    """RRU of the read that starts a bet or win: the account and the trx_id's entry slot (missing for a new trx_id,
    which still costs the minimum). TransactGetItems: 2 RRU per 4 KB per item; a strongly consistent BatchGetItem or
    GetItem: 1 RRU per 4 KB per item."""
    per_item = 2 if read_call == "TransactGetItems" else 1
    return per_item * (kb_units(account_bytes, 4096) + kb_units(entry_bytes, 4096))


def dynamodb_usd(wru: float, rru: float, prices: dict[str, float] = PRICES) -> float:
    """USD per million requests for `wru` write and `rru` read request units each."""
    return wru * prices["dynamodb_wru_per_million"] + rru * prices["dynamodb_rru_per_million"]


def lambda_compute_usd(memory_mb: int, billed_ms: float, prices: dict[str, float] = PRICES) -> float:
    """USD per million invocations of `billed_ms` at `memory_mb` (arm64)."""
    return 1e6 * memory_mb / 1024 * billed_ms / 1000 * prices["lambda_arm64_gb_second"]


def logs_usd(bytes_per_request: int, prices: dict[str, float] = PRICES) -> float:
    """USD per million requests that each ingest `bytes_per_request` into CloudWatch Logs."""
    return bytes_per_request * 1e6 / 2**30 * prices["cloudwatch_logs_ingest_per_gb"]


def archive_usd(
    records_per_bet: float = STREAM_RECORDS_PER_BET,
    batch_records: int = ARCHIVE_BATCH_RECORDS,
    memory_mb: int = ARCHIVE_MEMORY_MB,
    ms_per_batch: float = ARCHIVE_MS_PER_BATCH,
    puts_per_batch: int = ARCHIVE_PUTS_PER_BATCH,
    bytes_per_entry: int = ARCHIVE_BYTES_PER_ENTRY,
    prices: dict[str, float] = PRICES,
) -> dict[str, float]:
    """The archive's USD per million bets: exporter invocations and duration, S3 PUTs, one year of S3 storage of the
    bet's row. The stream itself costs nothing when a Lambda trigger reads it."""
    batches = 1e6 * records_per_bet / batch_records
    return {
        "batches": batches,
        "exporter_requests": batches * prices["lambda_requests_per_million"] / 1e6,
        "exporter_compute": lambda_compute_usd(memory_mb, ms_per_batch, prices) * batches / 1e6,
        "s3_puts": batches * puts_per_batch * prices["s3_put_per_thousand"] / 1000,
        "storage_year": 1e6 * bytes_per_entry / 2**30 * prices["s3_standard_gb_month"] * 12,
    }


def snapstart_usd(
    memory_mb: int,
    restores_per_million: float = SNAPSTART_RESTORES_PER_MILLION,
    monthly_requests: float = LOAD_MODEL_RPS * SECONDS_PER_MONTH,
    versions: int = SNAPSTART_VERSIONS,
    prices: dict[str, float] = PRICES,
) -> dict[str, float]:
    """SnapStart per million requests: the restores, and the cache (per GB-s of every cached version, all month)
    spread over the month's requests."""
    gb = memory_mb / 1024
    cache_month = versions * gb * SECONDS_PER_MONTH * prices["snapstart_cache_gb_second"]
    return {
        "restores": restores_per_million * gb * prices["snapstart_restore_per_gb"],
        "cache_month_usd": cache_month,
        "cache_per_million": cache_month / (monthly_requests / 1e6),
    }


def billed_ms(handler_ms: float, cpu_factor: float, dynamodb_ms: float) -> int:
    """Lambda bills per 1 ms: our Python work scaled to the memory's CPU share, plus the DynamoDB calls' latency."""
    return math.ceil(handler_ms * cpu_factor + dynamodb_ms)


# --- what the template and the product say --------------------------------------------------------------------------


def _template() -> dict[str, Any]:
    import yaml

    from wallet_local.paths import TEMPLATE
    from wallet_local.table import _CloudFormationLoader

    return yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


def _billing_memory_mb(document: dict[str, Any]) -> int:
    """BillingFunction's MemorySize in template.yaml (or the Globals'), so the model follows the template."""
    own = document["Resources"]["BillingFunction"]["Properties"].get("MemorySize")
    return int(own or document["Globals"]["Function"]["MemorySize"])


def _resolved(document: dict[str, Any], value: Any) -> Any:
    """A property's value with the template's parameter defaults: `!If [Condition, a, b]` (read as a list) by its
    condition, `!Equals [!Ref P, v]` by P's default; `!Ref AWS::NoValue` is None."""
    conditions = document.get("Conditions", {})
    if isinstance(value, list) and len(value) == 3 and value[0] in conditions:
        name, value_if_true, value_if_false = value
        parameter, expected = conditions[name]
        chosen = document["Parameters"][parameter].get("Default") == expected
        return _resolved(document, value_if_true if chosen else value_if_false)
    return None if value == "AWS::NoValue" else value


def billing_platform_log_lines(document: dict[str, Any]) -> bool:
    """Whether Lambda writes its START/END/REPORT lines for every billing request as the template deploys it by
    default: yes in the text log format, no at system log level WARN (template.yaml, BillingSystemLogs)."""
    config = document["Resources"]["BillingFunction"]["Properties"].get("LoggingConfig") or {}
    return _resolved(document, config.get("SystemLogLevel")) != "WARN"


def archive_settings(document: dict[str, Any]) -> dict[str, Any]:
    """The exporter as the template has it (a function with a DynamoDB stream event), else the assumptions above."""
    for name, resource in document.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if isinstance(event, dict) and event.get("Type") == "DynamoDB":
                props = event.get("Properties", {})
                batch = props.get("BatchSize")
                memory = resource["Properties"].get("MemorySize") or document["Globals"]["Function"]["MemorySize"]
                return {
                    "source": f"template.yaml {name}",
                    "batch_records": int(batch) if isinstance(batch, int) else 100,  # Lambda's default for streams
                    "memory_mb": int(memory) if isinstance(memory, int) else ARCHIVE_MEMORY_MB,
                }
    return {"source": "assumed (no exporter in template.yaml yet)", "batch_records": ARCHIVE_BATCH_RECORDS,
            "memory_mb": ARCHIVE_MEMORY_MB}  # fmt: skip


def emf_metric_names() -> list[str]:
    """The custom metric names the billing emits (each one CloudWatch metric with the `service` dimension)."""
    from wallet_local.paths import REPO_ROOT

    source = (REPO_ROOT / "functions" / "billing" / "app.py").read_text()
    names = set(re.findall(r'name="([A-Za-z]+)"', source)) | set(re.findall(r'Event\.[A-Z_]+: "([A-Za-z]+)"', source))
    return sorted(names)


MEMORY_MB = _billing_memory_mb(_template())  # arm64 (Architectures in template.yaml)
# Lambda gives CPU in proportion to memory (1 vCPU at 1769 MB): at 1024 MB ~0.58 vCPU, so Python work is ~1.7x slower.
CPU_SHARE_FACTOR = 1769 / MEMORY_MB


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


def _has_chain(item: dict[str, Any]) -> bool:
    return any(hint in name for name in item for hint in CHAIN_ATTRIBUTE_HINTS)


def item_sizes() -> dict[str, Any]:
    """The entry of a representative slot bet and the account with a live session, serialised by the store's own
    mapping; the account with every limit and counter set is the worst case. The chain's bytes are added when the
    items do not carry them yet."""
    from wallet.money import dynamodb as store
    from wallet.money.ledger import Account, LedgerEntry, Source
    from wallet.money.limits import SLOTS, Counter, Counters, Limit, Limits

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
    account = Account(
        player_id="player-000123",
        balance=Decimal("123356.78"),
        currency="EUR",
        version=42,
        created_at="2025-01-01T00:00:00.000000Z",
        session_hash="b" * 64,
        session_expires_at=1795713785,
    )
    # The large accounts: every limit set and every counter running; then also a pending raise in every slot (a
    # transient state: a raise waits 24 h).
    counters = Counters({slot: Counter("2025-W48", Decimal("12345.67")) for slot in SLOTS})
    limited = Limits({slot: Limit(Decimal("100000.00")) for slot in SLOTS})
    pending = Limits({slot: Limit(Decimal("100000.00"), Decimal("50000.00"), 1795713785) for slot in SLOTS})
    entry_item = store._entry_item(entry)
    account_item = store._account_item(account)
    limited_item = {
        **store._account_item(replace(account, limits=limited)),
        "counters": store._counters_value(counters),
    }
    pending_item = {
        **store._account_item(replace(account, limits=pending)),
        "counters": store._counters_value(counters),
    }
    entry_chain = _has_chain(entry_item)
    account_chain = _has_chain(account_item)
    add_entry = 0 if entry_chain else CHAIN_BYTES
    add_account = 0 if account_chain else CHAIN_BYTES
    return {
        "entry_bytes": item_size(entry_item) + add_entry,
        "account_bytes": item_size(account_item) + add_account,
        "account_all_limits_bytes": item_size(limited_item) + add_account,
        "account_all_limits_pending_bytes": item_size(pending_item) + add_account,
        "chain": "measured in the items" if entry_chain and account_chain else f"+{CHAIN_BYTES} B added (planned)",
    }


# --- the model ----------------------------------------------------------------------------------------------------


def _api_line(api: str, prices: dict[str, float]) -> tuple[str, str, float]:
    if api == "http":
        price = prices["api_gateway_http_per_million"]
        return ("API Gateway", f"HTTP API: 1M x ${price:.2f}/M (one 512 KB unit each)", price)
    price = prices["api_gateway_rest_per_million"]
    return ("API Gateway", f"REST API: 1M x ${price:.2f}/M", price)


def request_lines(
    api: str,
    *,
    duration_ms: int,
    wru: float,
    rru: float,
    log_bytes: int,
    memory_mb: int,
    archive: dict[str, float] | None,
    prices: dict[str, float] = PRICES,
) -> list[tuple[str, str, float]]:
    """The lines of one request kind, USD per million requests."""
    gb_s = prices["lambda_arm64_gb_second"]
    lines = [
        _api_line(api, prices),
        ("Lambda requests", f"1M x ${prices['lambda_requests_per_million']:.2f}/M",
         prices["lambda_requests_per_million"]),
        ("Lambda compute", f"1M x {memory_mb / 1024:g} GB x {duration_ms} ms x ${gb_s:.10f}/GB-s",
         lambda_compute_usd(memory_mb, duration_ms, prices)),
        ("DynamoDB writes", f"1M x {wru:g} WRU x ${prices['dynamodb_wru_per_million']}/M",
         wru * prices["dynamodb_wru_per_million"]),
        ("DynamoDB reads", f"1M x {rru:g} RRU x ${prices['dynamodb_rru_per_million']}/M",
         rru * prices["dynamodb_rru_per_million"]),
        ("CloudWatch Logs", f"1M x {log_bytes} B = {log_bytes * 1e6 / 2**30:.2f} GB x $0.50/GB",
         logs_usd(log_bytes, prices)),
    ]  # fmt: skip
    if archive is not None:
        lines.append(
            (
                "Archive (stream -> Parquet on S3)",
                f"{archive['batches']:.0f} batches: exporter, S3 PUTs, 1 year of storage",
                archive["exporter_requests"] + archive["exporter_compute"] + archive["s3_puts"]
                + archive["storage_year"],
            )
        )  # fmt: skip
    return lines


def per_million_bets(
    handler_p50_ms: float,
    log_bytes: int,
    emf_bytes: int,
    *,
    balance_p50_ms: float | None = None,
    read_call: str = "BatchGetItem",
    retries_per_request: float = 0.0,
) -> dict[str, Any]:
    """The bill per million requests of each kind, for the HTTP API and the REST API side by side.

    handler_p50_ms: a bet's lambda_handler p50 in-process (bench/overhead.py); read_call: what a bet reads with (the
    bench's calls section: BatchGetItem in the design, TransactGetItems before it); retries_per_request: measured
    write retries, each one more TransactWriteItems.
    """
    p = PRICES
    document = _template()
    memory_mb = _billing_memory_mb(document)
    cpu = 1769 / memory_mb
    sizes = item_sizes()
    wru = movement_write_units(sizes["entry_bytes"], sizes["account_bytes"])
    rru = read_units(read_call, sizes["account_bytes"], 0)
    read_ms = AWS_TRANSACT_GET_MS if read_call == "TransactGetItems" else AWS_GET_ITEM_MS
    transact_wru = 2 * kb_units(sizes["entry_bytes"], 1024) + 2 * kb_units(sizes["account_bytes"], 1024)
    platform_lines = billing_platform_log_lines(document)
    platform_bytes = PLATFORM_LOG_BYTES + PLATFORM_LOG_EVENTS * LOG_EVENT_OVERHEAD
    log_bytes_per_request = (
        log_bytes + emf_bytes + OWN_LOG_EVENTS * LOG_EVENT_OVERHEAD + (platform_bytes if platform_lines else 0)
    )
    settings = archive_settings(document)
    archive = archive_usd(batch_records=settings["batch_records"], memory_mb=settings["memory_mb"], prices=p)
    # A retry is one more TransactWriteItems (a cancelled transaction is billed like a committed one: conservative)
    # and its latency; what it re-reads comes back with the failure (ReturnValuesOnConditionCheckFailure).
    retry_wru = retries_per_request * transact_wru
    bet_ms = billed_ms(handler_p50_ms, cpu, read_ms + AWS_TRANSACT_WRITE_MS * (1 + retries_per_request))
    balance_ms = billed_ms(balance_p50_ms if balance_p50_ms is not None else handler_p50_ms, cpu, AWS_GET_ITEM_MS)
    replay_ms = billed_ms(handler_p50_ms, cpu, read_ms)
    kinds = {
        # A win is a movement like a bet (it carries the round's game_uuid: by_round too).
        "bet": {"duration_ms": bet_ms, "wru": wru + retry_wru, "rru": rru, "archive": archive},
        "win": {"duration_ms": bet_ms, "wru": wru + retry_wru, "rru": rru, "archive": archive},
        # A replay (same trx_id) is answered from the read: no write, nothing to archive.
        "replay": {"duration_ms": replay_ms, "wru": 0, "rru": rru, "archive": None},
        # A balance request: one GetItem of the account (strongly consistent), no write.
        "balance": {
            "duration_ms": balance_ms,
            "wru": 0,
            "rru": kb_units(sizes["account_bytes"], 4096),
            "archive": None,
        },
    }
    apis: dict[str, Any] = {}
    for api in ("http", "rest"):
        per_kind = {}
        for kind, k in kinds.items():
            lines = request_lines(
                api,
                duration_ms=k["duration_ms"],
                wru=k["wru"],
                rru=k["rru"],
                log_bytes=log_bytes_per_request,
                memory_mb=memory_mb,
                archive=k["archive"],
                prices=p,
            )
            per_kind[kind] = {
                "lines": [{"item": item, "formula": formula, "usd": round(usd, 3)} for item, formula, usd in lines],
                "total_usd": round(sum(usd for _, _, usd in lines), 2),
            }
        apis[api] = per_kind
    metrics = emf_metric_names()
    metrics_month = len(metrics) * p["cloudwatch_metric_month"]
    snapstart = snapstart_usd(memory_mb, prices=p)
    chosen = apis[CHOSEN_API]["bet"]
    # Baseline for comparison: GetItem session (eventually consistent, 0.5 RRU) + GetItem balance (consistent, 1 RRU)
    # + PutItem trx (1 WRU + 2 GSI WRU) + UpdateItem balance (1 WRU): 4 WRU + 1.5 RRU, and no atomicity.
    # What else would cut a bet's bill (USD per million bets saved), for the decision in docs/PERFORMANCE.md.
    half_memory_ms = billed_ms(handler_p50_ms, 1769 / (memory_mb / 2), read_ms + AWS_TRANSACT_WRITE_MS)
    # (lever, USD per million bets it saves, taken in the template as deployed by default)
    levers = [
        ("REST API -> HTTP API for /do", p["api_gateway_rest_per_million"] - p["api_gateway_http_per_million"],
         CHOSEN_API == "http"),
        ("Lambda's START/END/REPORT lines off (BillingSystemLogs: warnings)", logs_usd(platform_bytes, p),
         not platform_lines),
        ("one GSI fewer (by_round: a round's entries found another way)",
         kb_units(sizes["entry_bytes"], 1024) * p["dynamodb_wru_per_million"], False),
        (f"BillingFunction at {memory_mb // 2} MB ({half_memory_ms} ms; slower cold start)",
         lambda_compute_usd(memory_mb, bet_ms, p) - lambda_compute_usd(memory_mb // 2, half_memory_ms, p), False),
    ]  # fmt: skip
    return {
        "levers": [{"lever": name, "saves_usd": round(usd, 3), "taken": taken} for name, usd, taken in levers],
        "platform_log_lines": platform_lines,
        "prices": p,
        "prices_as_of": PRICES_AS_OF,
        "sources": SOURCES,
        "sizes": sizes,
        "read_call": read_call,
        "wru_per_bet": wru,
        "rru_per_bet": rru,
        "retries_per_request": retries_per_request,
        "assumed_billed_duration_ms": bet_ms,
        "duration_formula": (
            f"ceil(handler p50 {handler_p50_ms:.2f} ms x {cpu:.1f} ({memory_mb} MB CPU share) + "
            f"{read_ms} ms {read_call} + {AWS_TRANSACT_WRITE_MS} ms TransactWriteItems)"
        ),
        "log_bytes_per_bet": log_bytes_per_request,
        "archive": {**settings, **{k: round(v, 4) for k, v in archive.items()}},
        "apis": apis,
        "chosen_api": CHOSEN_API,
        "lines": chosen["lines"],
        "total_usd": chosen["total_usd"],
        "rest_total_usd": apis["rest"]["bet"]["total_usd"],
        "target_usd": TARGET_USD,
        "met": chosen["total_usd"] <= TARGET_USD,
        "emf": {
            "metrics": len(metrics),
            "names": metrics,
            "usd_month": round(metrics_month, 2),
            "per_million_at_load_model": round(metrics_month / (LOAD_MODEL_RPS * SECONDS_PER_MONTH / 1e6), 4),
        },
        "snapstart": {k: round(v, 4) for k, v in snapstart.items()},
        "retry_usd_per_million": round(
            transact_wru * p["dynamodb_wru_per_million"] + lambda_compute_usd(memory_mb, AWS_TRANSACT_WRITE_MS, p), 3
        ),
        "baseline_dynamodb_usd": round(dynamodb_usd(4, 1.5, p), 3),
    }
