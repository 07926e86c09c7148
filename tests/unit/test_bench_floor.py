"""The floor comparison's arithmetic (bench/floor.py, bench/common.py): the ratio against the target, and the CPU
per request that says why a ratio under it is what it is."""

from __future__ import annotations

import os
import time
from typing import Any

from bench import floor
from bench.common import process_cpu_seconds


def _run(
    rps: float, p50: float, python_ms: float, dynamodb_ms: float, busy: float, process_busy: float = 0.5
) -> dict[str, Any]:
    return {
        "clients": 8,
        "rps": rps,
        "p50_ms": p50,
        "cpu_ms_python": python_ms,
        "cpu_ms_dynamodb": dynamodb_ms,
        "cpu_busy": busy,
        "process_busy": process_busy,
    }


def test_a_met_ratio_needs_no_reason() -> None:
    [row] = floor.ratios([_run(90, 20, 6, 5, 0.95)], [_run(100, 18, 5, 5, 0.95)])
    assert row["ratio"] == 0.9
    assert row["met"] is True
    assert row["ours_cpu_ms"] == 11
    assert row["floor_cpu_ms"] == 10
    assert "why" not in row


def test_cpu_bound_the_reason_is_the_cpu_per_request() -> None:
    [row] = floor.ratios([_run(80, 100, 9, 6, 0.97)], [_run(100, 72, 6, 6, 0.99)])
    assert row["met"] is False
    assert row["cpu_ratio"] == 0.8  # 12 ms against 15 ms: the ratio's ceiling with both cores busy
    assert row["why"].startswith("CPU-bound (the cores 99% busy)")
    assert "15.0 ms of CPU (9.0 in our process, 6.0 in DynamoDB Local)" in row["why"]
    assert "floor/ours CPU = 0.80" in row["why"]


def test_gil_bound_the_reason_is_the_cpu_per_request_in_this_process() -> None:
    """32 threads in one interpreter: one core at most, whatever DynamoDB Local has left."""
    [row] = floor.ratios([_run(119, 235, 7.8, 4.4, 0.76, 0.93)], [_run(162, 171, 5.4, 4.0, 0.76, 0.87)])
    assert row["met"] is False
    assert row["why"].startswith("bound by the one core the GIL gives this process (93% busy)")
    assert "floor/ours CPU in this process = 0.69" in row["why"]


def test_latency_bound_the_reason_names_the_latencies() -> None:
    [row] = floor.ratios([_run(40, 21, 9, 6, 0.5)], [_run(50, 17, 6, 6, 0.45)])
    assert row["met"] is False
    assert row["why"].startswith("latency-bound (the cores 50% busy): p50 21.0 ms against the floor's 17.0 ms")


def test_without_cpu_figures_the_ratio_stands_alone() -> None:
    ours, base = {"clients": 1, "rps": 40.0}, {"clients": 1, "rps": 50.0}
    [row] = floor.ratios([ours], [base])
    assert row == {"clients": 1, "ratio": 0.8, "met": False}


def test_process_cpu_seconds_reads_what_the_process_used() -> None:
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn CPU so both clocks move well past /proc's 10 ms tick
        pass
    from_proc, own = process_cpu_seconds(os.getpid()), time.process_time()
    assert own >= 0.2
    assert abs(from_proc - own) < 0.1
