"""The cost model's arithmetic (bench/cost.py) with known inputs: units from item sizes, dollars from units."""

from __future__ import annotations

import pytest

from bench import cost

P = cost.PRICES


def test_write_units_at_the_on_demand_price() -> None:
    # 4 WRU at $0.625 per million -> $2.50 per million requests
    assert cost.dynamodb_usd(4, 0) == pytest.approx(2.50)
    assert cost.dynamodb_usd(0, 2) == pytest.approx(0.25)
    assert cost.dynamodb_usd(6, 4) == pytest.approx(3.75 + 0.50)


def test_units_round_each_item_up() -> None:
    assert cost.kb_units(0, 1024) == 1  # a missing item still costs the minimum
    assert cost.kb_units(1024, 1024) == 1
    assert cost.kb_units(1025, 1024) == 2
    assert cost.kb_units(4097, 4096) == 2


def test_a_movement_under_one_kb_is_six_write_units() -> None:
    # transaction: 2 x entry + 2 x account; GSIs: 1 per KB of the entry each (by_player, by_round)
    assert cost.movement_write_units(722, 309) == 6
    assert cost.movement_write_units(722, 1154) == 8  # the account over 1 KB: 4 WRU for its update
    assert cost.movement_write_units(1100, 309) == 2 * 2 + 2 + 2 * 2  # the entry over 1 KB, in the GSIs too
    assert cost.movement_write_units(722, 309, indexes=1) == 5


def test_the_batch_read_halves_the_transactional_one() -> None:
    assert cost.read_units("TransactGetItems", 309, 0) == 4
    assert cost.read_units("BatchGetItem", 309, 0) == 2
    assert cost.read_units("BatchGetItem", 5000, 722) == 3


def test_lambda_compute_and_logs() -> None:
    # 1M x 1 GB x 20 ms x $0.0000133334 = $0.267
    assert cost.lambda_compute_usd(1024, 20) == pytest.approx(0.266668)
    assert cost.lambda_compute_usd(512, 20) == pytest.approx(0.133334)
    # 1,144 B per request: 1.07 GB per million at $0.50/GB
    assert cost.logs_usd(1144) == pytest.approx(0.5327, abs=1e-4)
    assert cost.billed_ms(0.7, 1769 / 1024, 16) == 18  # ceil(1.21 + 16)


def test_archive_per_million_bets() -> None:
    a = cost.archive_usd(records_per_bet=2, batch_records=1000, memory_mb=1024, ms_per_batch=1000, bytes_per_entry=0)
    assert a["batches"] == 2000
    assert a["exporter_requests"] == pytest.approx(2000 * 0.20 / 1e6)
    assert a["exporter_compute"] == pytest.approx(2000 * 1 * 1.0 * P["lambda_arm64_gb_second"])
    assert a["s3_puts"] == pytest.approx(2000 * 0.005 / 1000)
    assert a["storage_year"] == 0
    # 200 B a row: 0.186 GB per million bets, x $0.023 x 12 months
    assert cost.archive_usd(bytes_per_entry=200)["storage_year"] == pytest.approx(200e6 / 2**30 * 0.023 * 12)


def test_snapstart_restores_and_cache() -> None:
    s = cost.snapstart_usd(1024, restores_per_million=1000, monthly_requests=1e9, versions=1)
    assert s["restores"] == pytest.approx(1000 * P["snapstart_restore_per_gb"])
    assert s["cache_month_usd"] == pytest.approx(30 * 24 * 3600 * P["snapstart_cache_gb_second"])
    assert s["cache_per_million"] == pytest.approx(s["cache_month_usd"] / 1000)


def test_request_lines_add_up() -> None:
    lines = cost.request_lines(
        "http", duration_ms=20, wru=4, rru=2, log_bytes=0, memory_mb=1024, archive=None, prices=P
    )
    assert lines[0][:1] == ("API Gateway",) and "HTTP API" in lines[0][1]
    total = sum(usd for _, _, usd in lines)
    assert total == pytest.approx(1.00 + 0.20 + 0.266668 + 2.50 + 0.25)
    rest = cost.request_lines("rest", duration_ms=20, wru=4, rru=2, log_bytes=0, memory_mb=1024, archive=None)
    assert sum(usd for _, _, usd in rest) - total == pytest.approx(2.50)


def test_the_model_prices_both_apis_and_every_kind() -> None:
    model = cost.per_million_bets(0.7, 456, 184, balance_p50_ms=0.3, read_call="BatchGetItem")
    assert model["rru_per_bet"] == 2
    assert model["wru_per_bet"] == 6
    http, rest = model["apis"]["http"], model["apis"]["rest"]
    assert set(http) == {"bet", "win", "replay", "balance"}
    assert rest["bet"]["total_usd"] - http["bet"]["total_usd"] == pytest.approx(2.50, abs=0.011)
    assert http["replay"]["total_usd"] < http["bet"]["total_usd"]
    assert model["total_usd"] == http["bet"]["total_usd"]
    assert model["met"] is (model["total_usd"] <= cost.TARGET_USD)
    transactional = cost.per_million_bets(0.7, 456, 184, read_call="TransactGetItems")
    assert transactional["rru_per_bet"] == 4


def test_the_cost_model_prices_the_api_the_template_deploys() -> None:
    from wallet_local.paths import TEMPLATE
    from wallet_local.table import template_document

    kind = template_document(TEMPLATE)["Resources"]["BillingApi"]["Type"]
    assert {"AWS::Serverless::HttpApi": "http", "AWS::Serverless::Api": "rest"}[kind] == cost.CHOSEN_API


def _logging_document(system_logs_default: str) -> dict[str, object]:
    """The template's shape for BillingSystemLogs, as the bench's loader reads it (!If and !Equals as lists)."""
    return {
        "Parameters": {"BillingSystemLogs": {"Default": system_logs_default}},
        "Conditions": {"WarningsOnly": ["BillingSystemLogs", "warnings"]},
        "Resources": {
            "BillingFunction": {
                "Properties": {"LoggingConfig": {"SystemLogLevel": ["WarningsOnly", "WARN", "AWS::NoValue"]}}
            }
        },
    }


def test_lambdas_own_log_lines_follow_the_templates_default() -> None:
    assert cost.billing_platform_log_lines(_logging_document("warnings")) is False
    assert cost.billing_platform_log_lines(_logging_document("per-request")) is True
    no_config: dict[str, object] = {"Resources": {"BillingFunction": {"Properties": {}}}}
    assert cost.billing_platform_log_lines(no_config) is True  # Lambda's default: text with START/END/REPORT


def test_the_deployed_template_has_no_per_request_platform_lines_and_prices_it() -> None:
    from wallet_local.table import template_document

    assert cost.billing_platform_log_lines(template_document()) is False
    model = cost.per_million_bets(0.7, 456, 184)
    # Our line and the EMF blob, each with CloudWatch's per-event overhead; no START/END/REPORT.
    assert model["log_bytes_per_bet"] == 456 + 184 + 2 * cost.LOG_EVENT_OVERHEAD
    lever = next(lever for lever in model["levers"] if "START/END/REPORT" in lever["lever"])
    assert lever["taken"] is True
    platform = cost.PLATFORM_LOG_BYTES + cost.PLATFORM_LOG_EVENTS * cost.LOG_EVENT_OVERHEAD
    assert lever["saves_usd"] == pytest.approx(cost.logs_usd(platform), abs=0.001)
