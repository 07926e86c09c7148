"""The floor comparison (bench/floor.py, bench/common.py, bench/load.py): the ratio against the target, the CPU per
request that says why a ratio under it is what it is, the two load runners (a thread or a process per client), and
the verdict the table prints."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from bench import floor
from bench.__main__ import render_floor
from bench.common import LoadClient, _ClientRun, _combined, process_cpu_seconds, run_load, run_processes
from bench.load import FLOOR_KEYS


def _run(
    rps: float, p50: float, python_ms: float, dynamodb_ms: float, busy: float, process_busy: float | None = 0.5
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


# --- the load runners: a thread per client (run_load) and a process per client (run_processes) ---------------------


def _pid_client(index: int) -> LoadClient:
    """Client `index`: request 0 is an error reply, and client 0's requests 1 and 2 are 5xx (they raise); its tally
    counts its requests and names the process that ran them."""
    failing = {1, 2} if index == 0 else set()
    ran_in: list[int] = []

    def request(n: int) -> bool:
        ran_in.append(os.getpid())
        if n in failing:
            raise RuntimeError("boom") from ValueError("cause")
        return n != 0

    return LoadClient(request, lambda: {"requests": len(ran_in), **{f"pid_{pid}": 1 for pid in set(ran_in)}})


def test_run_processes_runs_every_client_in_a_process_of_its_own() -> None:
    result = run_processes(3, 4, _pid_client)
    pids = {name for name in result.tallies if name.startswith("pid_")}
    assert len(pids) == 3  # three clients, three interpreters
    assert f"pid_{os.getpid()}" not in pids  # none of them this one
    assert result.processes is True
    assert result.requests == 12
    assert len(result.latencies_ns) == 12
    assert result.errors == 3 + 2  # request 0 of each client, and client 0's two 5xx
    assert result.server_errors == 2
    assert result.error_kinds == {"RuntimeError(ValueError)": 2}
    assert result.longest_5xx_run_per_client == 2
    assert result.tallies["requests"] == 12
    assert result.seconds > 0
    assert result.cpu_seconds["python"] >= 0


def test_run_load_sums_the_clients_tallies_in_this_process() -> None:
    result = run_load(3, 4, _pid_client)
    assert result.processes is False
    assert result.tallies == {"requests": 12, f"pid_{os.getpid()}": 3}
    assert result.server_errors == 2
    assert result.longest_5xx_run_per_client == 2


def test_the_window_is_the_clients_own_from_the_first_start_to_the_last_end() -> None:
    """The thread or process that releases the clients may run after some have started (32 children on 2 cores):
    the window is what the clients timed, not when it woke."""
    runs = [
        _ClientRun(0, 1_000_000_000, [5], [False], [1_200_000_000], 0, {}, 0.1, {}),
        _ClientRun(1, 1_100_000_000, [5], [True], [1_600_000_000], 0, {}, 0.1, {}),
    ]
    result = _combined(runs, {})
    assert result.seconds == 0.6
    assert result.server_errors == 1
    assert result.rps == 2 / 0.6


def _failing_setup(index: int) -> LoadClient:
    if index == 1:
        raise OSError("no connection")
    return LoadClient(lambda _: True)


def test_a_client_that_cannot_set_up_fails_the_load_instead_of_hanging_it() -> None:
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="client 1: OSError: no connection"):
        run_processes(3, 2, _failing_setup)
    assert time.perf_counter() - started < 60


def test_with_a_process_per_client_no_one_interpreter_is_the_limit() -> None:
    """process_busy means one interpreter's share of one core: with a process per client there is none, and the
    reason a ratio is missed is the cores or the latency, never the GIL."""
    ours = _run(80, 100, 9, 6, 0.97, process_busy=None) | {"processes": True}
    base = _run(100, 72, 6, 6, 0.99, process_busy=None) | {"processes": True}
    [row] = floor.ratios([ours], [base])
    assert row["why"].startswith("CPU-bound (the cores 99% busy)")
    assert "9.0 in the clients' processes" in row["why"]


def _ratio_rows(ratios: list[float]) -> list[dict[str, Any]]:
    return [
        {
            "clients": clients,
            "ratio": ratio,
            "met": ratio >= floor.TARGET_RATIO,
            **({} if ratio >= floor.TARGET_RATIO else {"why": f"slow at {clients}"}),
        }
        for clients, ratio in zip((1, 8, 32), ratios, strict=True)
    ]


def _floor_load(thread_ratios: list[float], process_ratios: list[float]) -> dict[str, Any]:
    def runs(processes: bool) -> list[dict[str, Any]]:
        return [
            _run(100, 10, 5, 5, 0.5, None if processes else 0.5) | {"clients": c, "p99_ms": 20.0} for c in (1, 8, 32)
        ]

    load: dict[str, Any] = {"floor_rounds": 3}
    for processes, ratios in ((False, thread_ratios), (True, process_ratios)):
        floor_key, ours_key, ratio_key = FLOOR_KEYS[processes]
        load[floor_key], load[ours_key] = runs(processes), runs(processes)
        load[ratio_key] = _ratio_rows(ratios)
    return load


def test_the_floor_verdict_is_the_process_rows_with_the_thread_rows_beside() -> None:
    text = render_floor(_floor_load([0.95, 0.84, 0.75], [0.9, 0.88, 0.97]))
    assert "ours/floor >= 0.85 at 1 / 8 / 32 clients, a process per client: MET (0.90 / 0.88 / 0.97)" in text
    assert "With a thread per client (one interpreter, one GIL, for every client and the code under test): " in text
    assert "0.95 / 0.84 / 0.75 (8 clients: slow at 8; 32 clients: slow at 32)" in text
    assert "best of 3 runs each" in text


def test_a_missed_process_row_makes_the_verdict_not_met_with_its_reason() -> None:
    text = render_floor(_floor_load([0.95, 0.9, 0.9], [0.9, 0.8, 0.97]))
    assert "a process per client: NOT MET (0.90 / 0.80 / 0.97)" in text
    assert "8 clients: slow at 8" in text
