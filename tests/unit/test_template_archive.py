"""template.yaml's ledger archive (issue 13): the table's stream feeds the exporter so that no record is dropped
silently, the bucket is write-once (Object Lock: GOVERNANCE in dev, COMPLIANCE in prod), and what Athena reads (the
Glue tables) is exactly the schema the SQL expects (wallet.operator.ledger_sql)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from samtranslator.yaml_helper import yaml_parse

from wallet.operator.ledger_sql import ACCOUNT_COLUMNS, ENTRY_COLUMNS
from wallet_local.paths import TEMPLATE

ROOT = TEMPLATE.parent
# DuckDB's type names (ledger_sql's columns) -> Glue's (Hive DDL) for the same Parquet column.
GLUE_TYPES = {"VARCHAR": "string", "BIGINT": "bigint", "DECIMAL(38, 8)": "decimal(38,8)"}
ALARM_TOPIC = [{"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]
STREAM_RETENTION_SECONDS = 24 * 60 * 60  # DynamoDB Streams keeps a record 24 hours


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template with its intrinsics as CloudFormation reads them ({"Ref": ...}, {"Fn::If": [...]})."""
    document: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return document


def _resource(template: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    resource = template["Resources"][name]
    assert resource["Type"] == kind, name
    properties: dict[str, Any] = resource["Properties"]
    return properties


def _choose(template: dict[str, Any], value: Any, stage: str) -> Any:
    """An {"Fn::If": [condition, a, b]} on a Stage condition, for a stack of that stage."""
    if not (isinstance(value, dict) and "Fn::If" in value):
        return value
    condition, when_true, when_false = value["Fn::If"]
    [(function, (left, right))] = template["Conditions"][condition].items()
    assert function == "Fn::Equals" and left == {"Ref": "Stage"}, condition
    return when_true if stage == right else when_false


# --- the stream and the exporter -------------------------------------------------------------------------------------


def test_the_stream_carries_new_images(template: dict[str, Any]) -> None:
    table = _resource(template, "WalletTable", "AWS::DynamoDB::Table")
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}


def test_the_stream_feeds_the_exporter_and_nothing_is_dropped_silently(template: dict[str, Any]) -> None:
    function = _resource(template, "LedgerExportFunction", "AWS::Serverless::Function")
    [event] = function["Events"].values()
    assert event["Type"] == "DynamoDB"
    source = event["Properties"]
    assert source["Stream"] == {"Fn::GetAtt": ["WalletTable", "StreamArn"]}
    assert source["StartingPosition"] == "TRIM_HORIZON"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["BisectBatchOnFunctionError"] is True
    # Finite retries (a poison record must not block its shard for a day) and an age limit below the stream's
    # retention: past it, the records would be trimmed with no failure record at all.
    assert 1 <= source["MaximumRetryAttempts"] <= 100
    assert 60 <= source["MaximumRecordAgeInSeconds"] < STREAM_RETENTION_SECONDS
    assert source["DestinationConfig"] == {
        "OnFailure": {"Type": "SQS", "Destination": {"Fn::GetAtt": ["LedgerExportDeadLetters", "Arn"]}}
    }
    assert source["BatchSize"] <= 10000 and source["MaximumBatchingWindowInSeconds"] <= 300
    # A batch must fit the function's time: the mapping retries a timed-out batch like a failed one.
    assert function["Timeout"] <= 900


def test_the_dead_letters_are_encrypted_and_kept_two_weeks(template: dict[str, Any]) -> None:
    queue = _resource(template, "LedgerExportDeadLetters", "AWS::SQS::Queue")
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": ["ArchiveKey", "Arn"]}
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 60 * 60


def test_sam_writes_the_mapping_as_declared() -> None:
    from tests.unit.test_template_iam import translated

    [mapping] = [
        r["Properties"]
        for r in translated().resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["FunctionName"] == {"Ref": "LedgerExportFunction"}
    ]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["LedgerExportDeadLetters", "Arn"]}}
    }
    # The wallet layer (Globals) and duckdb, each once.
    layers = translated().resources["LedgerExportFunction"]["Properties"]["Layers"]
    assert [next(iter(layer.values())).rstrip("0123456789abcdef") for layer in layers] == [
        "WalletLayer",
        "ArchiveLayer",
    ]


def test_the_exporter_is_the_handler_the_other_code_writes(template: dict[str, Any]) -> None:
    function = _resource(template, "LedgerExportFunction", "AWS::Serverless::Function")
    assert function["CodeUri"] == "functions/ledger_export/"
    module, name = function["Handler"].split(".")
    app = ROOT / function["CodeUri"] / f"{module}.py"
    body = ast.parse(app.read_text()).body
    defined = {node.name for node in body if isinstance(node, ast.FunctionDef)}
    defined |= {
        target.id
        for node in body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert name in defined, f"{app} defines no {name}"
    assert function["Layers"] == [{"Ref": "ArchiveLayer"}]  # after the Globals' WalletLayer
    assert function["Environment"]["Variables"]["WALLET_ARCHIVE_BUCKET"] == {"Ref": "ArchiveBucket"}
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "LedgerExportLogGroup"}}
    log_group = _resource(template, "LedgerExportLogGroup", "AWS::Logs::LogGroup")
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-ledger-export"}
    assert log_group["RetentionInDays"] == 30
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-ledger-export"}


def test_the_archive_layer_is_built_with_the_venvs_duckdb_for_the_architecture(template: dict[str, Any]) -> None:
    layer = template["Resources"]["ArchiveLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": {"Ref": "Architecture"}}
    assert layer["Properties"]["ContentUri"] == "layers/archive/"
    requirements = [
        line.split("#")[0].strip()
        for line in (ROOT / "layers" / "archive" / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert requirements == [f"duckdb=={duckdb.__version__}"]
    makefile = (ROOT / "layers" / "archive" / "Makefile").read_text()
    assert "build-ArchiveLayer:" in makefile
    assert "--invalidation-mode unchecked-hash" in makefile
    assert "WALLET_LAYER_ARCH ?= arm64" in makefile  # scripts/invoke.sh sets x86_64 for both layers


# --- the bucket ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stage", "mode"), [("dev", "GOVERNANCE"), ("prod", "COMPLIANCE")])
def test_the_archive_is_write_once_for_the_retention_parameter(template: dict[str, Any], stage: str, mode: str) -> None:
    bucket = _resource(template, "ArchiveBucket", "AWS::S3::Bucket")
    assert bucket["ObjectLockEnabled"] is True
    lock = bucket["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert retention["Years"] == {"Ref": "ArchiveRetentionYears"} and "Days" not in retention
    assert _choose(template, retention["Mode"], stage) == mode
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    # No rule expires an archived file (the retention is a minimum, not a lifetime).
    for rule in bucket["LifecycleConfiguration"]["Rules"]:
        assert not {"ExpirationInDays", "ExpirationDate", "NoncurrentVersionExpiration", "Transitions"} & set(rule)


def test_the_retention_parameter(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["ArchiveRetentionYears"]
    assert (parameter["Type"], parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (
        "Number",
        7,
        1,
        100,
    )
    prod = yaml.safe_load((ROOT / "parameters" / "prod.yaml").read_text())
    assert prod["ArchiveRetentionYears"] >= 5  # a gaming licence's transaction records: years, not months


def _encrypted_private_tls_only(template: dict[str, Any], bucket_name: str, policy_name: str) -> None:
    bucket = _resource(template, bucket_name, "AWS::S3::Bucket")
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["ArchiveKey", "Arn"]},
    }
    assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert template["Resources"][bucket_name]["DeletionPolicy"] == "Retain"
    assert template["Resources"][bucket_name]["UpdateReplacePolicy"] == "Retain"
    policy = _resource(template, policy_name, "AWS::S3::BucketPolicy")
    assert policy["Bucket"] == {"Ref": bucket_name}
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert (deny["Principal"], deny["Action"]) == ("*", "s3:*")
    assert deny["Resource"] == [{"Fn::GetAtt": [bucket_name, "Arn"]}, {"Fn::Sub": f"${{{bucket_name}.Arn}}/*"}]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Nothing else in the policy: who reads and writes is IAM's (the exporter's role, ArchiveQueryPolicy).
    assert policy["PolicyDocument"]["Statement"] == [deny]


def test_the_archive_is_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    _encrypted_private_tls_only(template, "ArchiveBucket", "ArchiveBucketPolicy")


def test_the_query_results_are_encrypted_private_tls_only_and_expire(template: dict[str, Any]) -> None:
    _encrypted_private_tls_only(template, "AthenaResultsBucket", "AthenaResultsBucketPolicy")
    bucket = _resource(template, "AthenaResultsBucket", "AWS::S3::Bucket")
    assert "ObjectLockEnabled" not in bucket
    [expiring] = [r for r in bucket["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in r]
    assert expiring["Status"] == "Enabled" and expiring["ExpirationInDays"] <= 30 and "Prefix" not in expiring


def test_the_archive_key_is_used_only_through_s3_and_sqs(template: dict[str, Any]) -> None:
    key = _resource(template, "ArchiveKey", "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    assert template["Resources"]["ArchiveKey"]["DeletionPolicy"] == "Retain"
    statements = key["KeyPolicy"]["Statement"]
    using = [s for s in statements if any(a.startswith(("kms:Decrypt", "kms:GenerateDataKey")) for a in s["Action"])]
    [use] = using
    assert use["Condition"]["StringEquals"]["kms:ViaService"] == [
        {"Fn::Sub": "s3.${AWS::Region}.${AWS::URLSuffix}"},
        {"Fn::Sub": "sqs.${AWS::Region}.${AWS::URLSuffix}"},
    ]
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    [admin] = [s for s in statements if s is not use]
    assert not any(
        a in ("kms:*", "kms:Decrypt") or a.startswith(("kms:Encrypt", "kms:Generate")) for a in admin["Action"]
    )


# --- Athena ----------------------------------------------------------------------------------------------------------


def test_the_workgroup_enforces_its_results_encryption_and_a_scan_limit(template: dict[str, Any]) -> None:
    workgroup = _resource(template, "ArchiveWorkGroup", "AWS::Athena::WorkGroup")
    configuration = workgroup["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["PublishCloudWatchMetricsEnabled"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert configuration["EngineVersion"] == {"SelectedEngineVersion": "Athena engine version 3"}
    results = configuration["ResultConfiguration"]
    assert results["OutputLocation"] == {"Fn::Sub": "s3://${AthenaResultsBucket}/results/"}
    assert results["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": {"Fn::GetAtt": ["ArchiveKey", "Arn"]},
    }
    parameter = template["Parameters"]["AthenaBytesScannedCutoff"]
    assert parameter["Type"] == "Number"
    assert parameter["MinValue"] >= 10 * 1024 * 1024  # Athena refuses a cutoff below 10 MB
    assert parameter["MinValue"] <= parameter["Default"] <= 100 * 1024**3


@pytest.mark.parametrize(
    ("table", "prefix", "columns"),
    [("ArchiveEntriesTable", "entries", ENTRY_COLUMNS), ("ArchiveAccountsTable", "accounts", ACCOUNT_COLUMNS)],
)
def test_the_glue_tables_are_the_sqls_schema_with_projected_days(
    template: dict[str, Any], table: str, prefix: str, columns: dict[str, str]
) -> None:
    properties = _resource(template, table, "AWS::Glue::Table")
    assert properties["DatabaseName"] == {"Ref": "ArchiveDatabase"}
    entry = properties["TableInput"]
    assert entry["Name"] == prefix  # AthenaEngine's default table names
    assert entry["TableType"] == "EXTERNAL_TABLE"
    storage = entry["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [
        (name, GLUE_TYPES[kind]) for name, kind in columns.items()
    ]
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert storage["InputFormat"].endswith("MapredParquetInputFormat")
    assert storage["Location"] == {"Fn::Sub": f"s3://${{ArchiveBucket}}/{prefix}/"}
    assert entry["PartitionKeys"] == [{"Name": "day", "Type": "string"}]
    parameters = entry["Parameters"]
    assert {key: value for key, value in parameters.items() if key.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.day.type": "date",
        "projection.day.format": "yyyy-MM-dd",
        "projection.day.range": "2024-01-01,NOW",
        "projection.day.interval": "1",
        "projection.day.interval.unit": "DAYS",
    }
    # ${!day} is Fn::Sub's escape for a literal ${day}, the projected partition.
    assert parameters["storage.location.template"] == {"Fn::Sub": f"s3://${{ArchiveBucket}}/{prefix}/day=${{!day}}/"}
    # No crawler would change the schema behind the SQL's back.
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::Glue::Crawler"]


def test_the_database_name_is_an_athena_identifier(template: dict[str, Any]) -> None:
    database = _resource(template, "ArchiveDatabase", "AWS::Glue::Database")
    # The stack's name with - as _ (Athena's identifiers: lower case, digits and _).
    assert database["DatabaseInput"]["Name"] == {
        "Fn::Join": ["_", {"Fn::Split": ["-", {"Fn::Sub": "${AWS::StackName}_archive"}]}]
    }
    for stack in ("wallet-dev", "wallet-prod"):
        assert re.fullmatch(r"[a-z0-9_]+", "_".join(f"{stack}_archive".split("-"))), stack


# --- alarms and outputs ----------------------------------------------------------------------------------------------


def _alarm(template: dict[str, Any], name: str) -> dict[str, Any]:
    alarm = _resource(template, name, "AWS::CloudWatch::Alarm")
    assert alarm["AlarmActions"] == ALARM_TOPIC and alarm["OKActions"] == ALARM_TOPIC, name
    assert "docs/OPERATIONS.md#ledger-export" in alarm["AlarmDescription"], name
    return alarm


def test_the_maximum_record_age_alarm(template: dict[str, Any]) -> None:
    alarm = _alarm(template, "LedgerExportIteratorAgeAlarm")
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "IteratorAge", "Maximum")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "LedgerExportFunction"}}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] <= 5 * 60 * 1000
    # Paged long before the mapping gives up on a record (MaximumRecordAgeInSeconds).
    [event] = template["Resources"]["LedgerExportFunction"]["Properties"]["Events"].values()
    window = alarm["Period"] * alarm["EvaluationPeriods"] * 1000
    assert alarm["Threshold"] + window < event["Properties"]["MaximumRecordAgeInSeconds"] * 1000


def test_the_dead_letters_and_errors_page(template: dict[str, Any]) -> None:
    dead = _alarm(template, "LedgerExportDeadLettersAlarm")
    assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dead["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["LedgerExportDeadLetters", "QueueName"]}}
    ]
    assert (dead["ComparisonOperator"], dead["Threshold"]) == ("GreaterThanThreshold", 0)
    errors = _alarm(template, "LedgerExportErrorsAlarm")
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "LedgerExportFunction"}}]


def test_the_outputs_name_what_the_cli_needs_and_the_runbook_says_so(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["ArchiveBucketName"]["Value"] == {"Ref": "ArchiveBucket"}
    assert outputs["AthenaWorkGroup"]["Value"] == {"Ref": "ArchiveWorkGroup"}
    assert outputs["GlueDatabase"]["Value"] == {"Ref": "ArchiveDatabase"}
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    section = operations[operations.index("## The ledger archive") :]
    for needed in (
        "WALLET_ATHENA_WORKGROUP",
        "WALLET_ATHENA_DATABASE",
        "AthenaWorkGroup",
        "GlueDatabase",
        "wallet report --engine athena",
        "COMPLIANCE",
        "GOVERNANCE",
        "AthenaBytesScannedCutoff",
        "ledger-export",
    ):
        assert needed in section, needed


def test_the_operations_anchor_exists() -> None:
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    assert re.search(r"^### ledger-export$", operations, re.MULTILINE)


def test_every_environment_file_sets_the_archive_parameters() -> None:
    for env in ("dev", "prod", "local"):
        values = yaml.safe_load(Path(ROOT / "parameters" / f"{env}.yaml").read_text())
        assert {"ArchiveRetentionYears", "AthenaBytesScannedCutoff"} <= set(values), env
