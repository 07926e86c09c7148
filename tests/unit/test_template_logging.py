"""template.yaml's BillingSystemLogs option: by default Lambda writes no START/END/REPORT lines for each billing
request (the JSON log format at system log level WARN), and its application log level never drops what the billing
writes (its JSON lines, and the EMF metrics blob, which has no level of its own)."""

from __future__ import annotations

from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

from wallet_local.paths import TEMPLATE

IF_WARNINGS_ONLY = "BillingSystemLogsWarningsOnly"
# Lambda's application log levels, most detail first (AWS Lambda, "Log-level filtering").
LAMBDA_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def _template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml_parse(TEMPLATE.read_text())  # intrinsics in their long form, as SAM reads them
    return loaded


def _logging_config(template: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = template["Resources"]["BillingFunction"]["Properties"]["LoggingConfig"]
    return config


def test_the_parameter_defaults_to_warnings_only() -> None:
    template = _template()
    parameter = template["Parameters"]["BillingSystemLogs"]
    assert parameter["AllowedValues"] == ["warnings", "per-request"]
    assert parameter["Default"] == "warnings"
    assert template["Conditions"][IF_WARNINGS_ONLY] == {"Fn::Equals": [{"Ref": "BillingSystemLogs"}, "warnings"]}


def test_warnings_only_is_the_json_format_at_system_level_warn_and_per_request_is_the_text_format() -> None:
    config = _logging_config(_template())
    assert config["LogGroup"] == {"Ref": "BillingLogGroup"}
    assert config["LogFormat"] == {"Fn::If": [IF_WARNINGS_ONLY, "JSON", "Text"]}
    # Lambda accepts a system log level only with the JSON format: none at all in the text format.
    assert config["SystemLogLevel"] == {"Fn::If": [IF_WARNINGS_ONLY, "WARN", {"Ref": "AWS::NoValue"}]}
    application = config["ApplicationLogLevel"]["Fn::If"]
    assert application[0] == IF_WARNINGS_ONLY
    assert application[2] == {"Ref": "AWS::NoValue"}
    assert application[1] == {"Fn::FindInMap": ["BillingApplicationLogLevel", {"Ref": "LogLevel"}, "Level"]}


@pytest.mark.parametrize("log_level", _template()["Parameters"]["LogLevel"]["AllowedValues"])
def test_the_application_level_never_drops_a_line_without_a_level(log_level: str) -> None:
    """Lambda files a JSON line without a level (the EMF blob: the billing's metrics) as INFO, and Powertools takes
    Lambda's level over POWERTOOLS_LOG_LEVEL: above INFO the metrics would be dropped. DEBUG stays DEBUG."""
    level = _template()["Mappings"]["BillingApplicationLogLevel"][log_level]["Level"]
    assert level in LAMBDA_LEVELS
    assert LAMBDA_LEVELS.index(level) <= LAMBDA_LEVELS.index("INFO")
    assert level == ("DEBUG" if log_level == "DEBUG" else "INFO")


def test_the_other_functions_keep_lambdas_text_format() -> None:
    """Only the billing is on the per-bet bill; the others keep their REPORT lines for troubleshooting."""
    template = _template()
    json_formatted = [
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and "LogFormat" in (resource["Properties"].get("LoggingConfig") or {})
    ]
    assert json_formatted == ["BillingFunction"]
    assert "LoggingConfig" not in template["Globals"]["Function"]


def test_every_logger_writes_timestamps_lambda_can_read() -> None:
    """In the JSON format Lambda reads a line's level only beside an RFC 3339 timestamp. Every function's Logger says
    so: Powertools keeps one "wallet" logger per process, formatted as the first function imported configured it."""
    import ast
    import json
    import logging
    import re

    from tests.support import lambda_function
    from wallet_local.paths import REPO_ROOT

    for app in sorted((REPO_ROOT / "functions").glob("*/app.py")):
        loggers = [
            node.value
            for node in ast.parse(app.read_text()).body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and ast.unparse(node.value.func) == "Logger"
        ]
        assert [ast.unparse(call) for call in loggers] == ["Logger(use_rfc3339=True)"], app
    with lambda_function("billing") as (module, _):
        handler = module.logger.registered_handler
        record = logging.LogRecord("wallet", logging.WARNING, __file__, 1, "source refused", None, None)
        line = json.loads(handler.formatter.format(record))
    assert line["level"] == "WARNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", line["timestamp"]), line["timestamp"]
