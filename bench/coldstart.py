"""Cold start: a fresh interpreter per run (bench/coldstart_probe.py) importing a handler and serving its first
request; the median of N runs, plus one `python -X importtime` run for the breakdown."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.common import HANDLER_ENV_DROP, REPO_ROOT, handler_environment

PROBE = REPO_ROOT / "bench" / "coldstart_probe.py"
FUNCTIONS = ("billing", "game_page", "games_sync")


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in HANDLER_ENV_DROP}
    env.update(handler_environment())
    return env


def _probe(
    function: str, env: dict[str, str], importtime: bool = False, lambda_like: bool = True
) -> tuple[dict[str, Any], str, float]:
    flags = ["-X", "importtime"] if importtime else []
    command = [sys.executable, *flags, str(PROBE), function, *(["--lambda-like"] if lambda_like else [])]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    wall = (time.perf_counter() - started) * 1000
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT ")), done.stderr, wall
    raise RuntimeError(f"cold-start probe for {function} failed: {done.stderr[-2000:]}")


def _interpreter_ms(env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _importtime_rows(stderr: str) -> list[dict[str, Any]]:
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        rows.append(
            {
                "module": name.strip(),
                "cumulative_ms": int(cumulative_us) / 1000,
                "self_ms": int(self_us) / 1000,
                "depth": depth,
            }
        )
    return rows


def top_imports(stderr: str, count: int = 10) -> list[dict[str, Any]]:
    """The `count` largest cumulative times of `-X importtime` (ms), with their nesting depth."""
    return sorted(_importtime_rows(stderr), key=lambda row: row["cumulative_ms"], reverse=True)[:count]


def measure(runs: int, functions: tuple[str, ...] = FUNCTIONS) -> dict[str, Any]:
    """Billing gets `runs` runs; the other handlers (and the venv-extras variant) max(1, runs - 2)."""
    env = _environment()
    _probe("billing", env)  # warm the page cache and the .pyc files: Lambda's code is on local disk too
    results: dict[str, Any] = {"runs": runs, "python_startup_ms": round(_interpreter_ms(env, runs), 1)}
    others = max(1, runs - 2)
    for function in functions:
        if not (REPO_ROOT / "functions" / function / "app.py").exists():
            continue
        samples = [_probe(function, env) for _ in range(runs if function == "billing" else others)]
        results[function] = {
            "import_ms": round(statistics.median(s[0]["import_ms"] for s in samples), 1),
            "first_request_ms": round(statistics.median(s[0]["first_request_ms"] for s in samples), 1),
            "total_ms": round(statistics.median(s[0]["total_ms"] for s in samples), 1),
            "process_wall_ms": round(statistics.median(s[2] for s in samples), 1),
            "served": samples[0][0]["served"],
        }
    # The same venv with awscrt and pyOpenSSL importable (aws-sam-cli and moto bring them in; botocore uses them).
    venv = [_probe("billing", env, lambda_like=False)[0] for _ in range(others)]
    results["billing_with_venv_extras"] = {
        "import_ms": round(statistics.median(s["import_ms"] for s in venv), 1),
        "total_ms": round(statistics.median(s["total_ms"] for s in venv), 1),
    }
    _, stderr, _ = _probe("billing", env, importtime=True)
    results["billing_top_imports"] = top_imports(stderr)
    results["billing_imports_of_interest"] = imports_of_interest(stderr)
    return results


# Modules the billing hot path (parse -> sign -> two DynamoDB calls -> reply) does not need at import time.
INTEREST = (
    "aws_lambda_powertools.tracing",
    "aws_xray_sdk",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.logging",
    "pydantic",
    "wallet.settings",
    "wallet.audit",
    "boto3",
    "botocore.client",
    "boto3.dynamodb.types",
    "wallet.protocol",
    "wallet.repository",
)


def imports_of_interest(stderr: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for row in _importtime_rows(stderr):
        if row["module"] in INTEREST and row["module"] not in found:
            found[row["module"]] = row["cumulative_ms"]
    return found


if __name__ == "__main__":
    print(json.dumps(measure(3), indent=2))
