"""The floor of this design on this machine (issue 14, target 5): the same two DynamoDB calls per bet or win as our
billing, made by a bare botocore client with no wallet code, so that ours/floor is what our code costs on top of
DynamoDB itself.

Per request: a strongly consistent BatchGetItem of the account and of the trx_id's entry slot (what the wallet reads
with, wallet.money.dynamodb; `read_call="TransactGetItems"` is its read before issue 14, for comparison), then one
TransactWriteItems: put the entry if absent + update the account guarded by its version and balance. The entry has
the same attributes and about the same size as ours (bench/cost.item_sizes); the body is not parsed, no sign, no
session check, no pydantic, no Decimal: only what any implementation of these two calls must do.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import botocore.session

from bench.common import BET, OPENING_BALANCE, WIN, LoadClient, LoadResult, run_load, run_processes
from wallet.bootstrap import CLIENT_CONFIG
from wallet_local.dynamodb_local import LOCAL_CREDENTIALS

TARGET_RATIO = 0.85  # ours/floor throughput, in-process (issue 14, target 5)


def bare_client(endpoint: str) -> Any:
    """A DynamoDB client from botocore alone (no boto3 session, no resource layer), configured like the product's."""
    session = botocore.session.get_session()
    return session.create_client("dynamodb", endpoint_url=endpoint, config=CLIENT_CONFIG, **LOCAL_CREDENTIALS)


def _account_key(player: str) -> dict[str, Any]:
    return {"pk": {"S": f"PLAYER#{player}"}, "sk": {"S": "ACCOUNT"}}


def create_accounts(client: Any, table: str, prefix: str, count: int) -> list[str]:
    players = [f"{prefix}{index}" for index in range(count)]
    for player in players:
        client.put_item(
            TableName=table,
            Item={
                **_account_key(player),
                "type": {"S": "account"},
                "player_id": {"S": player},
                "balance": {"N": str(OPENING_BALANCE)},
                "currency": {"S": "FUN"},
                "version": {"N": "0"},
                "created_at": {"S": "2025-01-01T00:00:00.000000Z"},
                "status": {"S": "active"},
                "session_hash": {"S": "b" * 64},
                "session_expires_at": {"N": str(int(time.time()) + 3600)},
            },
        )
    return players


class FloorBilling:
    """The two calls and nothing else. A lost version race (another writer on the account) re-reads and tries again,
    as any implementation must; with one player per client it never happens."""

    def __init__(self, client: Any, table: str, player: str, read_call: str = "BatchGetItem") -> None:
        self.client = client
        self.table = table
        self.player = player
        self.account_key = _account_key(player)
        self.read_call = read_call  # "TransactGetItems": the read the wallet made before issue 14 (for comparison)
        self.retries = 0

    def _read(self, entry_key: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        if self.read_call == "TransactGetItems":
            keys = (self.account_key, entry_key)
            response = self.client.transact_get_items(
                TransactItems=[{"Get": {"TableName": self.table, "Key": key}} for key in keys]
            )
            return [r["Item"] for r in response["Responses"] if r.get("Item")], True
        read = self.client.batch_get_item(
            RequestItems={self.table: {"Keys": [self.account_key, entry_key], "ConsistentRead": True}}
        )
        return read["Responses"][self.table], not read.get("UnprocessedKeys")

    def move(self, trx_id: str, minus: int, plus: int, game_uuid: str) -> bool:
        entry_key = {"pk": {"S": f"ENTRY#game:{trx_id}"}, "sk": {"S": "ENTRY"}}
        for _ in range(10):
            items, complete = self._read(entry_key)
            account = next((i for i in items if i["sk"]["S"] == "ACCOUNT"), None)
            if account is None or not complete:
                return False
            if len(items) == 2:
                return True  # a replay: answered from the read
            balance = int(account["balance"]["N"])
            version = int(account["version"]["N"])
            after = balance - minus + plus
            if after < 0:
                return False
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            sort_key = f"{now}#game:{self.player}:{trx_id}"
            entry = {
                **entry_key,
                "type": {"S": "entry"},
                "source": {"S": "game"},
                "trx_id": {"S": trx_id},
                "player_id": {"S": self.player},
                "kind": {"S": "bet" if minus else "win"},
                "minus": {"N": str(minus)},
                "plus": {"N": str(plus)},
                "balance_before": {"N": str(balance)},
                "balance_after": {"N": str(after)},
                "currency": {"S": account["currency"]["S"]},
                "created_at": {"S": now},
                "tag": {
                    "M": {
                        "game": {"S": "slot"},
                        "game_id": {"S": "a_op"},
                        "game_uuid": {"S": game_uuid},
                        "lines": {"N": "9"},
                        "bet": {"N": "1"},
                        "denomination": {"N": "100"},
                    }
                },
                "fingerprint": {"S": "f" * 64},
                "account_version": {"N": str(version + 1)},
                "gsi1pk": {"S": f"PLAYER#{self.player}"},
                "gsi1sk": {"S": sort_key},
                "game_uuid": {"S": game_uuid},
                "gsi2pk": {"S": f"ROUND#{game_uuid}"},
                "gsi2sk": {"S": sort_key},
            }
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": entry,
                                "ConditionExpression": "attribute_not_exists(pk)",
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            }
                        },
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": self.account_key,
                                "UpdateExpression": "SET balance = :after, version = :next, updated_at = :now",
                                "ConditionExpression": "version = :expected AND balance = :before",
                                "ExpressionAttributeValues": {
                                    ":after": {"N": str(after)},
                                    ":before": {"N": str(balance)},
                                    ":expected": {"N": str(version)},
                                    ":next": {"N": str(version + 1)},
                                    ":now": {"S": now},
                                },
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                            }
                        },
                    ]
                )
            except self.client.exceptions.TransactionCanceledException:
                self.retries += 1
                continue
            return True
        return False


def floor_load(
    endpoint: str,
    table: str,
    players: list[str],
    clients: int,
    per_client: int,
    read_call: str = "BatchGetItem",
    *,
    processes: bool = False,
) -> LoadResult:
    """`clients` threads (or with `processes` an interpreter each, bench.common.run_processes), client i moving
    players[i % len(players)]'s money: a bet and the win of its round, in turn (the same mix as
    bench.load.wallet_load)."""

    def make(index: int) -> LoadClient:
        billing = FloorBilling(bare_client(endpoint), table, players[index % len(players)], read_call)
        rounds = [uuid.uuid4().hex[:16] for _ in range(per_client // 2 + 1)]

        def request(n: int) -> bool:
            round_id = rounds[n // 2]
            if n % 2 == 0:
                return billing.move(f"fb-{round_id}", BET, 0, round_id)
            return billing.move(f"fw-{round_id}", 0, WIN, round_id)

        return LoadClient(request, lambda: {"retries": billing.retries})

    result = (run_processes if processes else run_load)(clients, per_client, make)
    retries = result.tallies["retries"]
    result.extra = {
        "calls_per_request": round(2 + 2 * retries / max(1, result.requests), 2),
        "retries_per_request": round(retries / max(1, result.requests), 3),
    }
    return result


def ratios(ours: list[dict[str, Any]], floor: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ours/floor throughput per client level, against TARGET_RATIO."""
    rows = []
    for o, f in zip(ours, floor, strict=True):
        ratio = o["rps"] / f["rps"] if f["rps"] else 0.0
        row: dict[str, Any] = {"clients": o["clients"], "ratio": round(ratio, 2), "met": ratio >= TARGET_RATIO}
        row.update(_cpu_comparison(o, f, met=row["met"]))
        rows.append(row)
    return rows


def cpu_ms(run: dict[str, Any]) -> float | None:
    """A run's CPU per request, this process's and DynamoDB Local's together (bench.common.with_cpu)."""
    if run.get("cpu_ms_python") is None or run.get("cpu_ms_dynamodb") is None:
        return None
    return float(run["cpu_ms_python"] + run["cpu_ms_dynamodb"])


def _cpu_comparison(ours: dict[str, Any], floor: dict[str, Any], *, met: bool) -> dict[str, Any]:
    """What a request costs in CPU, ours against the floor's, and why a ratio under the target is what it is: with
    the cores busy, throughput is the inverse of CPU per request; otherwise it is latency."""
    ours_cpu, floor_cpu = cpu_ms(ours), cpu_ms(floor)
    if ours_cpu is None or floor_cpu is None or not ours_cpu:
        return {}
    busy = max(ours.get("cpu_busy") or 0.0, floor.get("cpu_busy") or 0.0)
    process_busy = max(ours.get("process_busy") or 0.0, floor.get("process_busy") or 0.0)
    out: dict[str, Any] = {
        "ours_cpu_ms": round(ours_cpu, 2),
        "floor_cpu_ms": round(floor_cpu, 2),
        "cpu_ratio": round(floor_cpu / ours_cpu, 2),  # the ratio's ceiling once CPU-bound
        "cpu_busy": busy,
        "process_busy": process_busy,
    }
    if not met:
        where = "in the clients' processes" if ours.get("processes") else "in our process"
        parts = (
            f"a request of ours costs {ours_cpu:.1f} ms of CPU ({ours['cpu_ms_python']:.1f} {where}, "
            f"{ours['cpu_ms_dynamodb']:.1f} in DynamoDB Local), the floor's {floor_cpu:.1f} ms "
            f"({floor['cpu_ms_python']:.1f} + {floor['cpu_ms_dynamodb']:.1f})"
        )
        if process_busy >= 0.85:
            # One interpreter runs every client thread and the code under test: its one core is the limit, and
            # throughput is the inverse of the CPU a request costs in it.
            python_ratio = floor["cpu_ms_python"] / ours["cpu_ms_python"] if ours["cpu_ms_python"] else 0.0
            out["why"] = (
                f"bound by the one core the GIL gives this process ({process_busy:.0%} busy): {parts}; "
                f"floor/ours CPU in this process = {python_ratio:.2f}"
            )
        elif busy >= 0.9:
            out["why"] = f"CPU-bound (the cores {busy:.0%} busy): {parts}; floor/ours CPU = {floor_cpu / ours_cpu:.2f}"
        else:
            out["why"] = (
                f"latency-bound (the cores {busy:.0%} busy): p50 {ours['p50_ms']:.1f} ms against the floor's "
                f"{floor['p50_ms']:.1f} ms; {parts}"
            )
    return out
