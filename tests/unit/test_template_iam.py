"""Least privilege, checked against the code: every Lambda function's IAM policy in template.yaml (as SAM translates
it) against the AWS calls its handler really makes.

How:
  1. template.yaml goes through samtranslator (what `sam deploy` runs), which yields the functions' AWS::IAM::Role
     resources with their inline policies and the managed policies SAM attaches on its own. Intrinsics are resolved
     here with test parameter values and test physical names (the table, the bucket, moto's distribution id).
  2. Each handler (functions/<name>/app.py) is imported fresh, with exactly the environment the template gives it,
     and driven under moto through its meaningful paths. A botocore hook on the boto3 session the code uses records
     every API call (service, operation, parameters, and the error it got).
  3. Each call is mapped to the IAM actions and resources AWS authorises it as (TransactWriteItems per item kind,
     HeadObject as s3:GetObject, Query on the index it names, ...), with the item's partition key as
     dynamodb:LeadingKeys.
     s3:ListBucket, which moto does not enforce, is read off the answers: a read that got 404 needs it (S3 answers
     403 without it, and the code relies on the 404).
  4. Per function: every needed (action, resource, keys) is allowed by its policy, and every granted (action,
     resource, leading-key pattern) is used by some recorded call; a grant that is needed but cannot be observed
     would need an explicit rule in NOT_OBSERVABLE (none does today).
  5. The managed policies SAM attaches on its own are listed apart: only Lambda's basic execution role and X-Ray's
     write policy, plus the stream's read policy for a function a DynamoDB stream feeds; and the secrets key's policy
     admits exactly the roles of the functions that decrypt through SSM.
The checker is tested on doctored policies too, so that a green run means something.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore.handlers
import pytest
import yaml
from moto import mock_aws

from tests.support import (
    SALT,
    SESSION_KEY,
    LambdaContext,
    api_gateway_event,
    do_body,
    lambda_function,
    new_lambda_instance,
)
from wallet.bootstrap import Secrets
from wallet.money.dynamodb import DynamoDBStore
from wallet.money.wallet import Wallet
from wallet.settings import Settings
from wallet_local import front
from wallet_local.stack import OPERATOR_ROUTES, create_distribution
from wallet_local.table import create_table

# A lobby or game page publishes no metric of its own (only refusals count): Powertools warns about an empty flush.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
PARAMETER_FILE = ROOT / "parameters" / "local.yaml"

# Pseudo parameters: moto's account and the tests' region, so the ARNs built from recorded calls are comparable.
PARTITION, REGION, ACCOUNT, URL_SUFFIX, STACK = "aws", "us-east-1", "123456789012", "amazonaws.com", "wallet-iam"
# Values for the parameters without defaults when parameters/local.yaml does not give them.
TEST_PARAMETERS: dict[str, Any] = {
    "Stage": "dev",
    "SaltParameterName": "/wallet/test/salt",
    "SessionKeyParameterName": "/wallet/test/session-key",
    "OperatorPrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/wallet-operators",
    "GamesServerCidrs": "203.0.113.10/32",
    "CustomerId": "casino_42",
    "GamesConfigUrl": "http://127.0.0.1:9/games_config.json",
}
# The physical names the stack's resources get in this test (the distribution's is moto's, known once it exists).
TABLE = "wallet-iam-wallettable"
BUCKET = "wallet-iam-sitebucket"
ARCHIVE_BUCKET = "wallet-iam-archivebucket"
DEAD_LETTERS = "wallet-iam-ledgerexportdeadletters"
STREAM_ARN = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}/stream/2026-01-01T00:00:00.000"
# The stream's read policy SAM attaches to the role of a function a DynamoDB stream feeds (its event source mapping
# reads the stream with that role; the function's code never calls DynamoDB Streams).
STREAM_READ = "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole"

# What the Lambda runtime needs for any function: its logs (Powertools' log lines and EMF metrics go to stdout, which
# Lambda ships to CloudWatch Logs). SAM attaches it to every role it creates.
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
# Tracing: Active (or PassThrough). SAM attaches AWSXrayWriteOnlyAccess in the aws partition and
# AWSXRayDaemonWriteAccess (its successor: PutTraceSegments, PutTelemetryRecords, the sampling rules) elsewhere; the
# X-Ray SDK sends segments to the Lambda-provided daemon over UDP, so there is no API call to record.
XRAY_POLICIES = {
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


# =====================================================================================================================
# The template, as SAM translates it
# =====================================================================================================================


@dataclass(frozen=True)
class Translated:
    resources: dict[str, Any]
    conditions: dict[str, Any]
    parameters: dict[str, Any]
    code_dirs: dict[str, str]  # function logical id -> its CodeUri before packaging, e.g. "billing"


def _parameter_values(template: dict[str, Any]) -> dict[str, Any]:
    values = dict(TEST_PARAMETERS)
    if PARAMETER_FILE.exists():
        values.update(yaml.safe_load(PARAMETER_FILE.read_text()) or {})
    for name, definition in template.get("Parameters", {}).items():
        if name not in values and "Default" in definition:
            values[name] = definition["Default"]
    return values


@functools.cache
def translated() -> Translated:
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse(TEMPLATE.read_text())
    code_dirs: dict[str, str] = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        # What `sam package` does: the code goes to S3, and SAM only accepts an S3 URI.
        if resource["Type"] == "AWS::Serverless::Function":
            code_dirs[logical_id] = Path(properties["CodeUri"]).name
            properties["CodeUri"] = f"s3://packaged/{logical_id}.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"s3://packaged/{logical_id}.zip"
    parameters = _parameter_values(template)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # feature-toggle chatter
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    # None of the policies names a managed policy that SAM's bundled map would not know; an unknown one stays a name.
    output = translator.translate(
        copy.deepcopy(template), parameter_values=dict(parameters), get_managed_policy_map=lambda: {}
    )
    return Translated(output["Resources"], output.get("Conditions", {}), parameters, code_dirs)


_NO_VALUE = object()


class Resolver:
    """CloudFormation intrinsics, resolved the way the deployed stack would, with `names` as the physical names."""

    def __init__(self, template: Translated, names: dict[str, str]) -> None:
        self.template = template
        self.names = names
        self.pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": STACK,
        }

    def __call__(self, node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                ((function, argument),) = node.items()
                if function == "Ref" or function.startswith("Fn::") or function == "Condition":
                    return self._intrinsic(function, argument)
            resolved = {key: self(value) for key, value in node.items()}
            return {key: value for key, value in resolved.items() if value is not _NO_VALUE}
        if isinstance(node, list):
            return [value for value in (self(item) for item in node) if value is not _NO_VALUE]
        return node

    def _intrinsic(self, function: str, argument: Any) -> Any:
        match function:
            case "Ref":
                return self.ref(argument)
            case "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(logical_id, attribute)
            case "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self.sub(text, {key: self(value) for key, value in variables.items()})
            case "Fn::Join":
                separator, items = argument
                values = self(items)
                if isinstance(values, str):  # a CommaDelimitedList parameter: kept as given on the command line
                    values = values.split(",")
                return separator.join(str(item) for item in values)
            case "Fn::If":
                condition, when_true, when_false = argument
                return self(when_true if self.condition(condition) else when_false)
            case "Fn::Select":
                index, items = argument
                return self(items)[int(self(index))]
            case "Fn::Split":
                separator, text = argument
                return str(self(text)).split(separator)
        raise NotImplementedError(f"intrinsic {function} is not resolved by this test")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.template.parameters:
            value = self.template.parameters[name]
            return value if isinstance(value, str) else str(value)
        if name in self.names:
            return self.names[name]
        raise KeyError(f"no physical name for {name} in this test")

    def get_att(self, logical_id: str, attribute: str) -> str:
        if f"{logical_id}.{attribute}" in self.names:  # an attribute only the mocked resource knows (a domain name)
            return self.names[f"{logical_id}.{attribute}"]
        kind = self.template.resources[logical_id]["Type"]
        name = self.ref(logical_id)
        if attribute == "Arn":
            arns = {
                "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
                "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
                "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
                "AWS::KMS::Key": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{name}",
                "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}",
            }
            if kind in arns:
                return arns[kind]
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return str(self.names[logical_id])
        raise NotImplementedError(f"!GetAtt {logical_id}.{attribute} ({kind}) is not resolved by this test")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def condition(self, name_or_node: Any) -> bool:
        node = self.template.conditions[name_or_node] if isinstance(name_or_node, str) else name_or_node
        ((function, argument),) = node.items()
        match function:
            case "Fn::Equals":
                left, right = (self(value) for value in argument)
                return str(left) == str(right)
            case "Fn::Not":
                return not self.condition(argument[0])
            case "Fn::And":
                return all(self.condition(item) for item in argument)
            case "Fn::Or":
                return any(self.condition(item) for item in argument)
            case "Condition":
                return self.condition(argument)
        raise NotImplementedError(f"condition function {function}")


def _role_of(function_id: str) -> str:
    role = translated().resources[function_id]["Properties"]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function_id} uses a role this test cannot read: {role}"
    return str(role["Fn::GetAtt"][0])


def _refers_to(node: Any, logical_id: str) -> bool:
    return node in ({"Ref": logical_id}, logical_id)


def function_environment(function_id: str, names: dict[str, str]) -> dict[str, str]:
    """The function's environment as deployed (Globals merged by SAM), with this test's physical names."""
    variables = translated().resources[function_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {key: str(value) for key, value in Resolver(translated(), names)(variables).items()}


# =====================================================================================================================
# Policies
# =====================================================================================================================


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parse_statements(document: dict[str, Any], origin: str) -> list[Statement]:
    statements = []
    for index, raw in enumerate(_as_list(document.get("Statement", []))):
        unsupported = {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(raw)
        assert not unsupported, f"{origin}: {sorted(unsupported)} is not understood by this checker: extend it"
        statements.append(
            Statement(
                sid=f"{origin}/{raw.get('Sid', index)}",
                effect=raw["Effect"],
                actions=tuple(_as_list(raw["Action"])),
                resources=tuple(str(resource) for resource in _as_list(raw["Resource"])),
                condition=raw.get("Condition", {}),
            )
        )
    return statements


def role_statements(function_id: str, names: dict[str, str]) -> list[Statement]:
    """Every statement that applies to the function's role: its inline policies and any AWS::IAM::Policy (or
    customer-managed policy) of the template attached to it."""
    template = translated()
    resolve = Resolver(template, names)
    role_id = _role_of(function_id)
    role = template.resources[role_id]["Properties"]
    statements: list[Statement] = []
    for policy in role.get("Policies", []):
        statements += parse_statements(resolve(policy["PolicyDocument"]), policy["PolicyName"])
    for logical_id, resource in template.resources.items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and any(
            _refers_to(role_ref, role_id) for role_ref in resource["Properties"].get("Roles", [])
        ):
            statements += parse_statements(resolve(resource["Properties"]["PolicyDocument"]), logical_id)
    return statements


def managed_policy_arns(function_id: str, names: dict[str, str]) -> set[str]:
    role = translated().resources[_role_of(function_id)]["Properties"]
    return {str(arn) for arn in Resolver(translated(), names)(role.get("ManagedPolicyArns", []))}


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: * any run of characters, ? one character, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": str.__eq__,
    "StringLike": _like,
    "Bool": lambda pattern, value: pattern.lower() == value.lower(),
}


def _condition_holds(condition: dict[str, Any], context: dict[str, list[str]]) -> bool:
    for operator, tests in condition.items():
        qualifier, _, base = operator.rpartition(":")
        if_exists = base.endswith("IfExists")
        base = base.removesuffix("IfExists")
        compare = _COMPARE.get(base)
        if compare is None:
            raise NotImplementedError(f"condition operator {operator}: extend this checker")
        for key, expected in tests.items():
            patterns = [str(pattern) for pattern in _as_list(expected)]
            values = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            matches = [any(compare(pattern, value) for pattern in patterns) for value in values or []]
            if qualifier == "ForAllValues":
                holds = all(matches)  # an absent or empty key passes, as in IAM
            elif qualifier == "ForAnyValue":
                holds = any(matches)
            elif qualifier:
                raise NotImplementedError(f"condition qualifier {qualifier}")
            else:
                holds = if_exists if values is None else bool(matches) and all(matches)
            if not holds:
                return False
    return True


@dataclass(frozen=True)
class Need:
    """One IAM authorisation an API call needs: action on resource, with its request context."""

    action: str
    resource: str
    context: tuple[tuple[str, tuple[str, ...]], ...]
    origin: str  # scenario and call, for the failure message

    @property
    def context_dict(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self.context}

    def __str__(self) -> str:
        keys = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{keys}  [{self.origin}]"


def _statement_matches(statement: Statement, action: str, resource: str, need: Need) -> bool:
    return (
        _like(action, need.action, ignore_case=True)
        and _like(resource, need.resource)
        and _condition_holds(statement.condition, need.context_dict)
    )


def is_allowed(statements: list[Statement], need: Need) -> bool:
    def applies(statement: Statement) -> bool:
        return any(
            _statement_matches(statement, action, resource, need)
            for action in statement.actions
            for resource in statement.resources
        )

    if any(applies(s) for s in statements if s.effect == "Deny"):
        return False
    return any(applies(s) for s in statements if s.effect == "Allow")


# =====================================================================================================================
# Recording the calls
# =====================================================================================================================


@dataclass
class Call:
    function: str
    scenario: str
    service: str  # botocore's service name: dynamodb, s3, ssm, cloudfront, ...
    operation: str
    params: dict[str, Any]
    error: str | None = None  # the error code AWS (moto) answered, if any

    def __str__(self) -> str:
        return f"{self.function} / {self.scenario}: {self.service}.{self.operation}"


class Recorder:
    """botocore hooks on the session the handlers' code uses (boto3.DEFAULT_SESSION is patched to it)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.function: str | None = None
        self.scenario = ""
        # Called once, just before the next TransactWriteItems goes out: a concurrent writer for the lost-race path.
        self.before_next_write: Callable[[], object] | None = None

    def before_parameter_build(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if self.function is None:
            raise AssertionError(f"an AWS call outside any scenario: {model.service_model.service_name}.{model.name}")
        call = Call(
            self.function,
            self.scenario,
            model.service_model.service_name,
            model.name,
            {key: value for key, value in params.items() if key != "Body"},
        )
        self.calls.append(call)
        context["iam_test_call"] = call
        if model.name == "TransactWriteItems" and self.before_next_write is not None:
            interleave, self.before_next_write = self.before_next_write, None
            interleave()

    def after_call(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get("iam_test_call")
        if call is not None and "Error" in parsed:
            call.error = str(parsed["Error"].get("Code"))


RECORDER = Recorder()
# Calls the code makes through a session of its own (boto3.session.Session(), a library's private one) would bypass
# the recording hook: botocore gives every session created while the scenarios run this handler, which reports them.
ELSEWHERE: list[str] = []


def _call_on_another_session(model: Any, **_: Any) -> None:
    ELSEWHERE.append(f"{RECORDER.function} / {RECORDER.scenario}: {model.service_model.service_name}.{model.name}")


# The handlers' session: its clients are created by the code under test only (setup uses SETUP_SESSION), so every
# call it records is one the function makes.
RECORDING_SESSION = boto3.session.Session(region_name=REGION)
RECORDING_SESSION.events.register("before-parameter-build", RECORDER.before_parameter_build, "iam-test-before")
RECORDING_SESSION.events.register("after-call", RECORDER.after_call, "iam-test-after")
SETUP_SESSION = boto3.session.Session(region_name=REGION)


def _dynamodb_value(attribute: dict[str, Any]) -> str:
    ((_kind, value),) = attribute.items()
    return str(value)


def _table_arn(name: str) -> str:
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


@functools.cache
def _hash_key_of_tables() -> dict[str, str]:
    """Physical table name -> its partition key attribute, from the template's tables."""
    keys = {}
    for logical_id, resource in translated().resources.items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            [hash_key] = [k["AttributeName"] for k in resource["Properties"]["KeySchema"] if k["KeyType"] == "HASH"]
            keys[PHYSICAL_NAMES[logical_id]] = hash_key
    return keys


def _item_need(action: str, table: str, key: dict[str, Any], origin: str) -> Need:
    hash_key = _hash_key_of_tables()[table]
    return Need(action, _table_arn(table), (("dynamodb:LeadingKeys", (_dynamodb_value(key[hash_key]),)),), origin)


MISSING_KEY_ERRORS = {"404", "NoSuchKey", "NotFound"}  # HeadObject answers a bare 404, GetObject NoSuchKey
_TRANSACT_WRITE_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
_ITEM_ACTIONS = {
    "GetItem": "dynamodb:GetItem",
    "PutItem": "dynamodb:PutItem",
    "UpdateItem": "dynamodb:UpdateItem",
    "DeleteItem": "dynamodb:DeleteItem",
}


class Unmapped(Exception):
    """An operation this test does not know how IAM authorises: add it to needs_of()."""


def needs_of(call: Call) -> list[Need]:
    """The IAM authorisations AWS checks for one call (docs: "Actions, resources, and condition keys" per service)."""
    origin = f"{call.scenario}: {call.operation}"
    mapper = _MAPPERS.get(call.service)
    needs = mapper(call.operation, call.params, call.error, origin) if mapper else None
    if needs is None:
        raise Unmapped(f"{call}: no IAM mapping for this operation in needs_of()")
    return needs


def _dynamodb_needs(operation: str, params: dict[str, Any], _error: str | None, origin: str) -> list[Need] | None:
    if operation in _ITEM_ACTIONS:
        key = params.get("Key") or params["Item"]
        return [_item_need(_ITEM_ACTIONS[operation], params["TableName"], key, origin)]
    if operation == "BatchGetItem":  # one authorisation per table, with every key's partition key as LeadingKeys
        needs = []
        for table, request in params["RequestItems"].items():
            hash_key = _hash_key_of_tables()[table]
            keys = tuple(sorted({_dynamodb_value(key[hash_key]) for key in request["Keys"]}))
            needs.append(Need("dynamodb:BatchGetItem", _table_arn(table), (("dynamodb:LeadingKeys", keys),), origin))
        return needs
    if operation == "Query":  # on the table, or on the index it names (the index's own ARN)
        index = params.get("IndexName")
        resource = _table_arn(params["TableName"]) + (f"/index/{index}" if index else "")
        return [Need("dynamodb:Query", resource, (), origin)]
    if operation == "TransactWriteItems":  # authorised per item, by its kind
        needs = []
        for i, item in enumerate(params["TransactItems"]):
            ((kind, request),) = item.items()
            key = request.get("Key") or request["Item"]
            needs.append(_item_need(_TRANSACT_WRITE_ACTIONS[kind], request["TableName"], key, f"{origin}[{i}] {kind}"))
        return needs
    return None


def _s3_needs(operation: str, params: dict[str, Any], error: str | None, origin: str) -> list[Need] | None:
    bucket = f"arn:{PARTITION}:s3:::{params['Bucket']}"
    obj = f"{bucket}/{params.get('Key')}"
    if operation in ("HeadObject", "GetObject"):
        # HeadObject is authorised as s3:GetObject; a given version as s3:GetObjectVersion.
        needs = [Need("s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject", obj, (), origin)]
        if error in MISSING_KEY_ERRORS:
            # The key does not exist, and the code relies on hearing so (catalogue_store: only a 404 is "not
            # published yet"). S3 answers 404 only to a caller with s3:ListBucket on the bucket, 403 otherwise; moto
            # answers 404 regardless, so the need is read off the answer.
            needs.append(Need("s3:ListBucket", bucket, (), f"{origin} of a missing key (404, not 403)"))
        return needs
    if operation == "PutObject":
        needs = [Need("s3:PutObject", obj, (), origin)]
        # SSE-KMS (the bucket's default, or asked for): S3 asks KMS for a data key on the caller's behalf, authorised
        # as the caller's kms:GenerateDataKey through S3. moto encrypts nothing, so the need is read off the request
        # and the template's bucket.
        key = params.get("SSEKMSKeyId") or (
            None if params.get("ServerSideEncryption") == "AES256" else _bucket_kms_keys().get(params["Bucket"])
        )
        if key:
            needs.append(Need("kms:GenerateDataKey", key, (("kms:ViaService", (_via("s3"),)),), f"{origin} (SSE-KMS)"))
        if params.get("ACL"):
            needs.append(Need("s3:PutObjectAcl", obj, (), origin))
        if params.get("Tagging"):
            needs.append(Need("s3:PutObjectTagging", obj, (), origin))
        return needs
    if operation == "DeleteObject":
        return [Need("s3:DeleteObject", obj, (), origin)]
    if operation in ("ListObjects", "ListObjectsV2"):
        return [Need("s3:ListBucket", bucket, (), origin)]
    return None


def _cloudfront_needs(operation: str, params: dict[str, Any], _error: str | None, origin: str) -> list[Need] | None:
    if operation == "CreateInvalidation":
        resource = f"arn:{PARTITION}:cloudfront::{ACCOUNT}:distribution/{params['DistributionId']}"
        return [Need("cloudfront:CreateInvalidation", resource, (), origin)]
    return None


def _ssm_needs(operation: str, params: dict[str, Any], _error: str | None, origin: str) -> list[Need] | None:
    if operation in ("GetParameters", "GetParameter"):  # authorised per parameter
        names = params.get("Names") or [params["Name"]]
        return [Need(f"ssm:{operation}", _parameter_arn(name), (), origin) for name in names]
    return None


_MAPPERS = {"dynamodb": _dynamodb_needs, "s3": _s3_needs, "cloudfront": _cloudfront_needs, "ssm": _ssm_needs}


def _via(service: str) -> str:
    return f"{service}.{REGION}.{URL_SUFFIX}"


@functools.cache
def _bucket_kms_keys() -> dict[str, str]:
    """Physical bucket name -> the ARN of the KMS key of its default encryption, for the template's SSE-KMS buckets."""
    resolve = Resolver(translated(), PHYSICAL_NAMES)
    keys = {}
    for logical_id, resource in translated().resources.items():
        if resource["Type"] != "AWS::S3::Bucket" or logical_id not in PHYSICAL_NAMES:
            continue
        encryption = resource["Properties"].get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        for rule in encryption:
            default = rule["ServerSideEncryptionByDefault"]
            if default["SSEAlgorithm"] == "aws:kms":
                keys[PHYSICAL_NAMES[logical_id]] = str(resolve(default["KMSMasterKeyID"]))
    return keys


def _parameter_arn(name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter{name if name.startswith('/') else '/' + name}"


# =====================================================================================================================
# The check
# =====================================================================================================================


@dataclass(frozen=True)
class Grant:
    statement: Statement
    action: str
    resource: str

    def __str__(self) -> str:
        return f"{self.statement.sid}: {self.action} on {self.resource}"


@dataclass(frozen=True)
class Allowance:
    """A grant the function needs but whose use moto cannot show, and the rule that says when it is justified."""

    action: str
    reason: str
    justified: Callable[[Grant, list[Call]], bool]


def _on_failure_destinations() -> dict[str, str]:
    """Each stream event source mapping's OnFailure destination (an SQS queue's ARN) -> the ARN of the queue's KMS key
    ("" when the queue has none), resolved with this test's physical names."""
    resolve = Resolver(translated(), PHYSICAL_NAMES)
    queues = {
        resolve({"Fn::GetAtt": [logical_id, "Arn"]}): str(resolve(resource["Properties"].get("KmsMasterKeyId", "")))
        for logical_id, resource in translated().resources.items()
        if resource["Type"] == "AWS::SQS::Queue" and logical_id in PHYSICAL_NAMES
    }
    destinations = {}
    for resource in translated().resources.values():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            on_failure = resource["Properties"].get("DestinationConfig", {}).get("OnFailure", {})
            if "Destination" in on_failure:
                arn = str(resolve(on_failure["Destination"]))
                destinations[arn] = queues.get(arn, "")
    return destinations


def _sends_to_a_failure_destination(grant: Grant, _calls: list[Call]) -> bool:
    return grant.resource in _on_failure_destinations()


def _a_failure_destinations_key_through_sqs(grant: Grant, _calls: list[Call]) -> bool:
    via = grant.statement.condition.get("StringEquals", {}).get("kms:ViaService")
    return via == _via("sqs") and grant.resource in set(_on_failure_destinations().values()) - {""}


# Grants a function needs although no recorded call shows it, each with the rule that justifies it. s3:ListBucket
# (S3's 404 instead of 403 for a missing key, which moto does not enforce) and kms:GenerateDataKey for an SSE-KMS
# upload are read off the recorded calls in needs_of() instead, so they are checked both ways (missing, and granted
# for nothing). What Lambda itself does with the role of a stream-fed function cannot be recorded: it sends the
# failure records of its event source mapping to the OnFailure queue, encrypted under the queue's key.
NOT_OBSERVABLE: tuple[Allowance, ...] = (
    Allowance(
        "sqs:SendMessage",
        "the event source mapping sends its failure records to its OnFailure queue with the function's role",
        _sends_to_a_failure_destination,
    ),
    Allowance(
        "kms:GenerateDataKey",
        "the failure records are encrypted under the OnFailure queue's key (through SQS only)",
        _a_failure_destinations_key_through_sqs,
    ),
    Allowance(
        "kms:Decrypt",
        "SQS decrypts the queue's data key to encrypt a failure record with it (through SQS only)",
        _a_failure_destinations_key_through_sqs,
    ),
)


@dataclass
class Report:
    denied: list[Need]
    unused: list[Grant]
    # A dynamodb:LeadingKeys pattern of a statement that none of the statement's actions used ...
    idle_key_patterns: list[str]
    # ... and, finer, an (action, pattern) of such a statement that no call used (the pattern serves another action)
    idle_action_key_patterns: list[str]


def _leading_key_patterns(statement: Statement) -> list[str]:
    patterns = []
    for operator, tests in statement.condition.items():
        for key, expected in tests.items():
            if key.lower() == "dynamodb:leadingkeys" and operator.endswith("StringLike"):
                patterns += [str(pattern) for pattern in _as_list(expected)]
    return patterns


def check(
    statements: list[Statement],
    needs: list[Need],
    calls: list[Call],
    allowances: tuple[Allowance, ...] = NOT_OBSERVABLE,
) -> Report:
    denied = [need for need in needs if not is_allowed(statements, need)]
    used_by: dict[Grant, list[Need]] = {}
    for statement in statements:
        if statement.effect != "Allow":
            continue
        for action in statement.actions:
            for resource in statement.resources:
                grant = Grant(statement, action, resource)
                used_by[grant] = [n for n in needs if _statement_matches(statement, action, resource, n)]
    unused = [
        grant
        for grant, users in used_by.items()
        if not users
        and not any(
            _like(allowance.action, grant.action, ignore_case=True) and allowance.justified(grant, calls)
            for allowance in allowances
        )
    ]
    idle_patterns, idle_action_patterns = [], []
    for statement in {grant.statement for grant in used_by}:
        patterns = _leading_key_patterns(statement)
        for pattern in patterns:
            keys_by_action = {
                action: [
                    key
                    for grant, users in used_by.items()
                    if grant.statement == statement and grant.action == action
                    for need in users
                    for key in need.context_dict.get("dynamodb:LeadingKeys", [])
                ]
                for action in statement.actions
            }
            if not any(_like(pattern, key) for keys in keys_by_action.values() for key in keys):
                idle_patterns.append(f"{statement.sid}: {pattern}")
            idle_action_patterns += [
                f"{statement.sid}: {action} on {pattern}"
                for action, keys in keys_by_action.items()
                if not any(_like(pattern, key) for key in keys)
            ]
    return Report(denied, unused, sorted(idle_patterns), sorted(idle_action_patterns))


# =====================================================================================================================
# Driving the handlers through their paths
# =====================================================================================================================

PHYSICAL_NAMES = {
    "WalletTable": TABLE,
    "WalletTable.StreamArn": STREAM_ARN,
    "SiteBucket": BUCKET,
    "ArchiveBucket": ARCHIVE_BUCKET,
    "LedgerExportDeadLetters": DEAD_LETTERS,
    # The key's id as the template resolves it: S3 under moto encrypts nothing, so only the ARN in the needs counts.
    "ArchiveKey": "archive-key",
}


@dataclass
class Stack:
    names: dict[str, str]
    setup_wallet: Wallet
    provider: Provider


@dataclass
class Provider:
    """The provider's games_config URL: a real HTTP server on 127.0.0.1 (the sync fetches with urllib)."""

    body: bytes = b""
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/games_config.json"


@contextmanager
def provider_server() -> Iterator[Provider]:
    provider = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(provider.body)))
            self.end_headers()
            self.wfile.write(provider.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    provider.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.server.daemon_threads = True
    thread = threading.Thread(target=provider.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.server.shutdown()
        provider.server.server_close()
        thread.join(5)


def _every_template_variable() -> set[str]:
    return {
        name
        for resource in translated().resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
        for name in resource["Properties"].get("Environment", {}).get("Variables", {})
    }


@contextmanager
def cold_start(stack: Stack, function_id: str, scenario: str, **overrides: str) -> Iterator[ModuleType]:
    """A new Lambda instance of the function: its wallet and catalogue built anew, in the environment the template
    gives it (an empty value is unset in AWS too, as the template's comments say), its calls recorded under
    `scenario`."""
    environment = {**function_environment(function_id, stack.names), **overrides}
    with pytest.MonkeyPatch.context() as env:
        for name in _every_template_variable() | set(environment):
            env.delenv(name, raising=False)
        for name, value in environment.items():
            if value:
                env.setenv(name, value)
        RECORDER.function, RECORDER.scenario = function_id, scenario
        # A new instance builds its own wallet and catalogue, in this scenario's environment.
        new_lambda_instance()
        try:
            with lambda_function(translated().code_dirs[function_id]) as (module, _):
                yield module
        finally:
            RECORDER.function, RECORDER.scenario = None, ""


# --- the billing ------------------------------------------------------------------------------------------------------


def _do(module: ModuleType, token: str, trx_id: str, minus: Any = 0, plus: Any = 0, **tag: Any) -> dict[str, Any]:
    body = do_body(token, trx_id, minus, plus, {"game": "slot", "game_id": "a_op", **tag})
    response = module.lambda_handler(api_gateway_event(body), LambdaContext())
    assert response["statusCode"] == 200, response
    return dict(json.loads(response["body"]))


def drive_billing(stack: Stack, function_id: str) -> None:
    wallet = stack.setup_wallet
    for player in ("b1", "b2", "b3", "b4", "b5"):
        wallet.create_player(player, "FUN", Decimal(1000))
    live = {player: wallet.new_session(player).token for player in ("b1", "b2", "b3", "b5")}
    replaced = wallet.new_session("b4").token
    live["b4"] = wallet.new_session("b4").token
    ok = {"status": "OK", "currency": "FUN"}

    with cold_start(stack, function_id, "balance request") as app:
        assert _do(app, live["b1"], "bal-1", game_id="") == {**ok, "balance": 1000}
    with cold_start(stack, function_id, "bet, then its win") as app:
        assert _do(app, live["b1"], "bet-1", 100, game_uuid=1001) == {**ok, "balance": 900}
        assert _do(app, live["b1"], "win-1", 0, 250, game_uuid=1001) == {**ok, "balance": 1150}
    with cold_start(stack, function_id, "replayed bet") as app:
        assert _do(app, live["b1"], "bet-1", 100, game_uuid=1001) == {**ok, "balance": 1150}
    with cold_start(stack, function_id, "not_enough_money") as app:
        assert _do(app, live["b2"], "big-1", 5000, game_uuid=2001)["status"] == "not_enough_money"
    with cold_start(stack, function_id, "unknown session and wrong sign") as app:
        assert _do(app, "b1.not-a-session", "bad-1", 10, game_uuid=3001) == {"status": "session_not_found"}
        body = do_body(live["b1"], "bad-2", 10, 0, {"game": "slot", "game_id": "a_op"}, salt="wrong-salt")
        reply = app.lambda_handler(api_gateway_event(body), LambdaContext())
        assert json.loads(reply["body"]) == {"status": "sign_not_found"}
    with cold_start(stack, function_id, "win on a replaced session") as app:
        assert _do(app, live["b4"], "bet-4", 100, game_uuid=4001) == {**ok, "balance": 900}
        # Money owed lands on the session the round was played on, although b4 has a newer one: a session-record read.
        assert _do(app, replaced, "win-4", 0, 40, game_uuid=4001) == {**ok, "balance": 940}
    with cold_start(stack, function_id, "trx_id used before by another player") as app:
        assert _do(app, live["b3"], "shared-1", 10, game_uuid=5001) == {**ok, "balance": 990}
        assert _do(app, live["b2"], "shared-1", 10, game_uuid=5002) == {**ok, "balance": 990}
    with cold_start(stack, function_id, "lost version race") as app:
        # A deposit lands between the bet's read and its write: the write fails its version guard and is redone.
        RECORDER.before_next_write = lambda: wallet.deposit("b5", "5", "race-deposit-1")
        assert _do(app, live["b5"], "race-1", 100, game_uuid=6001) == {**ok, "balance": 905}
        assert RECORDER.before_next_write is None
    race_writes = [
        c for c in RECORDER.calls if c.scenario == "lost version race" and c.operation == "TransactWriteItems"
    ]
    assert len(race_writes) == 2 and race_writes[0].error, "the race scenario did not lose a race"
    session_reads = [
        c
        for c in RECORDER.calls
        if c.scenario == "win on a replaced session" and c.operation == "GetItem" and "SESSION#" in str(c.params)
    ]
    assert session_reads, "the replaced-session win did not read the session record"


# --- the game page ----------------------------------------------------------------------------------------------------


def _page(module: ModuleType, path: str, resource: str, query: dict[str, str]) -> tuple[int, str]:
    event = {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Accept": "text/html"},
        "multiValueHeaders": {"Accept": ["text/html"]},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {key: [value] for key, value in query.items()} or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": f"/dev{path}",
            "stage": "dev",
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "test",
            "identity": {"sourceIp": "203.0.113.10"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    response = module.lambda_handler(event, LambdaContext("game-page"))
    return int(response["statusCode"]), str(response.get("body") or "")


def drive_game_page_before_publish(stack: Stack, function_id: str) -> None:
    wallet = stack.setup_wallet
    wallet.create_player("g0", "EUR", Decimal(10))
    token = wallet.new_session("g0").token
    with cold_start(stack, function_id, "catalogue not published yet") as app:
        assert _page(app, "/lobby", "/lobby", {"session": token})[0] == 503
        assert _page(app, "/play/a_op", "/play/{application}", {"session": token})[0] == 503


def drive_game_page(stack: Stack, function_id: str) -> None:
    wallet = stack.setup_wallet
    wallet.create_player("g1", "EUR", Decimal(1000))
    token = wallet.new_session("g1").token
    with cold_start(stack, function_id, "play page for a live session") as app:
        status, body = _page(app, "/play/a_op", "/play/{application}", {"session": token, "language": "en_US"})
        assert status == 200, body
    with cold_start(stack, function_id, "lobby for a live session") as app:
        status, body = _page(app, "/lobby", "/lobby", {"session": token, "language": "en_US"})
        assert status == 200, body
        assert "Ocean Pearl" in body
    wallet.new_session("g1")
    with cold_start(stack, function_id, "replaced session") as app:
        assert _page(app, "/lobby", "/lobby", {"session": token})[0] == 403


# --- the games sync ---------------------------------------------------------------------------------------------------


def games_config(**names: str) -> bytes:
    def app(app_id: str, name: str, game_type: str) -> dict[str, Any]:
        return {
            "html5": {"app": [f"{app_id}-1"], "mainjs": "game.js"},
            "loader": app_id,
            "name": {"en": names.get(app_id, name)},
            "position": "1",
            "source": app_id,
            "preview": f"thumb/{app_id}.png",
            "type": game_type,
        }

    document = {
        "api": "http://flash-api.example.test:8080/",
        "applications": {"a_op": app("a_op", "Ocean Pearl", "slot"), "e_keno": app("e_keno", "Turbo Keno", "egame")},
        "container": "http://s3bucket.example.test/",
        "container_name": "flashslots",
    }
    return json.dumps(document, indent=2).encode()


def drive_games_sync(stack: Stack, function_id: str) -> None:
    url = {"WALLET_GAMES_CONFIG_URL": stack.provider.url}  # the provider's address, not an AWS resource
    stack.provider.body = games_config()
    with cold_start(stack, function_id, "first publish", **url) as app:
        summary = app.lambda_handler({"source": "aws.events"}, LambdaContext("games-sync"))
        assert summary["changed"] == ["games_config.json", "lobby.json"] and summary["invalidation"]
    with cold_start(stack, function_id, "unchanged re-run", **url) as app:
        summary = app.lambda_handler({"source": "aws.events"}, LambdaContext("games-sync"))
        assert summary["changed"] == [] and summary["invalidation"] is None
    stack.provider.body = games_config(a_op="Ocean Pearl Deluxe")
    with cold_start(stack, function_id, "changed content", **url) as app:
        summary = app.lambda_handler({"source": "aws.events"}, LambdaContext("games-sync"))
        assert summary["changed"] == ["games_config.json", "lobby.json"] and summary["invalidation"]


# --- the operator API -------------------------------------------------------------------------------------------------

# Who API Gateway says signed the request (AWS_IAM): the site's backend role, which attaches OperatorApiInvokePolicy.
OPERATOR_CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/site-backend/wallet-site"


def _operator(
    module: ModuleType, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One request to the operator function, as API Gateway hands it over after checking the SigV4 signature: the
    route's resource and path parameters (wallet_local.stack.OPERATOR_ROUTES) and the caller's identity."""
    [(route, parameters)] = [
        (route, found) for route in OPERATOR_ROUTES if (found := route.match(method, path)) is not None
    ]
    raw = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    event = front.api_gateway_event(
        route, parameters, method, path, urlencode(query or {}), headers, raw, "198.51.100.50"
    )
    event["requestContext"]["identity"].update(
        accessKey="ASIAEXAMPLEOPERATOR1", caller="AROAEXAMPLEOPERATOR1:wallet-site", userArn=OPERATOR_CALLER
    )
    response = module.lambda_handler(event, LambdaContext("operator"))
    text = response.get("body") or ""
    return int(response["statusCode"]), json.loads(text) if text else None


def drive_operator(stack: Stack, function_id: str) -> None:
    site = "https://" + stack.names["SiteDistribution.DomainName"]
    players = "/operator/players"
    with cold_start(stack, function_id, "create a player with an opening balance") as app:
        status, player = _operator(app, "POST", players, {"player_id": "o1", "currency": "EUR", "balance": 1000})
        assert (status, player["balance"], player["status"]) == (201, 1000, "active"), player
        # Without an opening balance the account is the only item written.
        assert _operator(app, "POST", players, {"player_id": "o2", "currency": "EUR"})[0] == 201
    with cold_start(stack, function_id, "create a player who exists") as app:
        status, reply = _operator(app, "POST", players, {"player_id": "o1", "currency": "EUR", "balance": 5})
        assert (status, reply["error"]["code"]) == (409, "exists"), reply
    with cold_start(stack, function_id, "get a player") as app:
        status, player = _operator(app, "GET", f"{players}/o1")
        assert (status, player["balance"], player["currency"]) == (200, 1000, "EUR"), player
    with cold_start(stack, function_id, "set a deposit limit") as app:
        status, player = _operator(app, "PATCH", f"{players}/o1", {"limits": {"deposit": {"day": 1000}}})
        assert (status, player["limits"]["deposit"]["day"]["amount"]) == (200, 1000), player
    with cold_start(stack, function_id, "open a session with an application") as app:
        status, session = _operator(app, "POST", f"{players}/o1/sessions", {"application": "a_op", "language": "en_US"})
        assert status == 201, session
        assert session["play_url"].startswith(f"{site}/play/a_op?session=o1."), session
    with cold_start(stack, function_id, "revoke the session") as app:
        assert _operator(app, "DELETE", f"{players}/o1/sessions") == (204, None)
    with cold_start(stack, function_id, "deposit") as app:
        status, move = _operator(app, "POST", f"{players}/o1/deposits", {"amount": 300, "ref": "pay-1"})
        assert (status, move["balance"]) == (201, 1300), move
    with cold_start(stack, function_id, "replayed deposit") as app:
        status, replay = _operator(app, "POST", f"{players}/o1/deposits", {"amount": 300, "ref": "pay-1"})
        assert (status, replay["balance"], replay["entry"]) == (200, 1300, move["entry"]), replay
    with cold_start(stack, function_id, "deposit over the limit") as app:
        status, reply = _operator(app, "POST", f"{players}/o1/deposits", {"amount": 800, "ref": "pay-2"})
        assert (status, reply["error"]["code"]) == (409, "over_limit"), reply
    with cold_start(stack, function_id, "withdraw") as app:
        status, move = _operator(app, "POST", f"{players}/o1/withdrawals", {"amount": 200, "ref": "wd-1"})
        assert (status, move["balance"]) == (201, 1100), move
    with cold_start(stack, function_id, "suspend the player") as app:
        status, player = _operator(app, "PATCH", f"{players}/o1", {"status": "suspended", "reason": "KYC expired"})
        assert (status, player["status"]) == (200, "suspended"), player
        status, reply = _operator(app, "POST", f"{players}/o1/sessions", {})
        assert (status, reply["error"]["code"]) == (409, "not_allowed"), reply
    with cold_start(stack, function_id, "history, two pages") as app:
        status, page = _operator(app, "GET", f"{players}/o1/history", query={"limit": "3"})
        assert (status, len(page["entries"])) == (200, 3) and page["next_cursor"], page
        status, rest = _operator(
            app, "GET", f"{players}/o1/history", query={"limit": "3", "cursor": page["next_cursor"]}
        )
        # opening, limits, deposit, withdrawal, status: newest first, and no entry twice.
        kinds = [entry["kind"] for entry in page["entries"] + rest["entries"]]
        assert (status, kinds, rest["next_cursor"]) == (
            200,
            ["status", "withdrawal", "deposit", "limits", "opening"],
            None,
        )
        # The status change records who made it: the IAM principal API Gateway authenticated.
        assert page["entries"][0]["tag"]["by"] == OPERATOR_CALLER, page["entries"][0]
    # A round the Games Server played (through the setup wallet: the billing's own calls are its scenarios).
    wallet = stack.setup_wallet
    wallet.create_player("o3", "EUR", Decimal(100))
    token = wallet.new_session("o3").token
    outcome = wallet.handle_do(
        do_body(token, "op-bet-1", 10, 0, {"game": "slot", "game_id": "a_op", "game_uuid": 7001})
    )
    assert outcome.reply.status == "OK", outcome
    with cold_start(stack, function_id, "a round's entries") as app:
        status, round_ = _operator(app, "GET", "/operator/rounds/7001")
        assert (status, [entry["trx_id"] for entry in round_["entries"]]) == (200, ["op-bet-1"]), round_
    with cold_start(stack, function_id, "the OpenAPI description") as app:
        status, schema = _operator(app, "GET", "/operator/openapi.json")
        assert status == 200 and "/operator/players/{player_id}/deposits" in schema["paths"], status
    served = {(c.operation, c.scenario) for c in RECORDER.calls if c.function == function_id}
    assert ("Query", "a round's entries") in served and ("UpdateItem", "revoke the session") in served, served


# --- the ledger exporter ----------------------------------------------------------------------------------------------


def stream_records(items: list[dict[str, Any]], event_name: str = "INSERT") -> list[dict[str, Any]]:
    """DynamoDB stream records (NEW_IMAGE) for these items, as Lambda's event source mapping hands them over."""
    records = []
    for item in items:
        sequence = f"{len(RECORDER.calls):06d}{uuid.uuid4().int % 10**15:015d}"
        records.append(
            {
                "eventID": uuid.uuid4().hex,
                "eventName": event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": {
                    "ApproximateCreationDateTime": 1767225600,
                    "Keys": {"pk": item["pk"], "sk": item["sk"]},
                    "NewImage": item,  # a scan gives the same attribute-value JSON
                    "SequenceNumber": sequence,
                    "SizeBytes": 512,
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": STREAM_ARN,
            }
        )
    return records


def drive_ledger_export(stack: Stack, function_id: str) -> None:
    wallet = stack.setup_wallet
    wallet.create_player("x1", "EUR", Decimal(100))
    wallet.deposit("x1", "25.5", "archive-deposit-1")
    wallet.new_session("x1")
    dynamodb = SETUP_SESSION.client("dynamodb")
    items = [
        item
        for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE)
        for item in page["Items"]
        if item.get("player_id", {}).get("S") == "x1"
    ]
    kinds = {item.get("type", {}).get("S") for item in items}
    assert {"account", "entry"} <= kinds, kinds  # the records the exporter archives, and the session it skips
    batch = {"Records": stream_records(items)}
    with cold_start(stack, function_id, "archive a batch of entries, an account and a session") as app:
        assert app.handler(batch, LambdaContext("ledger-export")) == {"batchItemFailures": []}
    with cold_start(stack, function_id, "the same batch delivered again") as app:
        assert app.handler(batch, LambdaContext("ledger-export")) == {"batchItemFailures": []}
    account = [item for item in items if item.get("type", {}).get("S") == "account"]
    with cold_start(stack, function_id, "an account's new version") as app:
        modified = {"Records": stream_records(account, "MODIFY")}
        assert app.handler(modified, LambdaContext("ledger-export")) == {"batchItemFailures": []}
    written = [c.params["Key"] for c in RECORDER.calls if c.function == function_id and c.operation == "PutObject"]
    assert any(key.startswith("entries/day=") for key in written), written
    assert any(key.startswith("accounts/day=") for key in written), written


# The order matters: the game page first sees no catalogue, then the one the sync published.
DRIVERS: list[tuple[str, Callable[[Stack, str], None]]] = [
    ("billing", drive_billing),
    ("game_page", drive_game_page_before_publish),
    ("games_sync", drive_games_sync),
    ("game_page", drive_game_page),
    ("operator", drive_operator),
    ("ledger_export", drive_ledger_export),
]
DRIVEN = sorted({code_dir for code_dir, _ in DRIVERS})


@dataclass
class Recording:
    names: dict[str, str]
    calls: dict[str, list[Call]]  # function logical id -> its calls

    def needs(self, function_id: str) -> list[Need]:
        return [need for call in self.calls[function_id] for need in needs_of(call)]


def _function_id(code_dir: str) -> str:
    [function_id] = [fid for fid, directory in translated().code_dirs.items() if directory == code_dir]
    return function_id


@pytest.fixture(scope="module")
def recording() -> Iterator[Recording]:
    with mock_aws(), provider_server() as provider, pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", RECORDING_SESSION)
        monkeypatch.setattr(
            botocore.handlers,
            "BUILTIN_HANDLERS",
            [*botocore.handlers.BUILTIN_HANDLERS, ("before-parameter-build", _call_on_another_session)],
        )
        dynamodb = SETUP_SESSION.client("dynamodb")
        create_table(dynamodb, TABLE)
        s3 = SETUP_SESSION.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        # The archive as the template makes it: Object Lock (which requires a checksum on every upload) and SSE-KMS.
        s3.create_bucket(Bucket=ARCHIVE_BUCKET, ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(
            Bucket=ARCHIVE_BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            },
        )
        archive_key = SETUP_SESSION.client("kms").create_key()["KeyMetadata"]["Arn"]
        s3.put_bucket_encryption(
            Bucket=ARCHIVE_BUCKET,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": archive_key}}
                ]
            },
        )
        cloudfront = SETUP_SESSION.client("cloudfront")
        distribution_id = create_distribution(cloudfront, BUCKET, f"iam-{uuid.uuid4().hex}")
        domain = cloudfront.get_distribution(Id=distribution_id)["Distribution"]["DomainName"]
        names = {**PHYSICAL_NAMES, "SiteDistribution": distribution_id, "SiteDistribution.DomainName": domain}
        # The secrets, as SecureStrings under the names the template gives the functions.
        secret_values = {"WALLET_SALT_PARAMETER": SALT, "WALLET_SESSION_KEY_PARAMETER": SESSION_KEY}
        ssm = SETUP_SESSION.client("ssm")
        parameters = {
            environment[variable]: value
            for function_id in translated().code_dirs
            for environment in [function_environment(function_id, names)]
            for variable, value in secret_values.items()
            if environment.get(variable)
        }
        for name, value in parameters.items():
            ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        settings = Settings(table_name=TABLE, salt=SALT, session_key=SESSION_KEY)
        setup_wallet = Wallet(DynamoDBStore(TABLE, dynamodb), Secrets(settings), sleep=lambda _: None)
        stack = Stack(names, setup_wallet, provider)
        RECORDER.calls = []
        ELSEWHERE.clear()
        for code_dir, drive in DRIVERS:
            drive(stack, _function_id(code_dir))
        calls: dict[str, list[Call]] = {function_id: [] for function_id in translated().code_dirs}
        for call in RECORDER.calls:
            calls[call.function].append(call)
        yield Recording(names, calls)


# =====================================================================================================================
# The tests
# =====================================================================================================================


def test_every_function_of_the_template_is_driven() -> None:
    assert sorted(translated().code_dirs.values()) == DRIVEN
    for function_id in translated().code_dirs:
        assert translated().resources[function_id]["Type"] == "AWS::Lambda::Function"


@pytest.mark.parametrize("code_dir", DRIVEN)
def test_every_call_is_allowed_by_the_functions_policy(recording: Recording, code_dir: str) -> None:
    function_id = _function_id(code_dir)
    calls = recording.calls[function_id]
    assert calls, f"{function_id} made no AWS call: the scenarios did not run"
    elsewhere = [call for call in ELSEWHERE if call.startswith(f"{function_id} /")]
    assert not elsewhere, f"calls through a session the recorder does not see: {elsewhere}"
    unmapped = []
    for call in calls:
        try:
            needs_of(call)
        except Unmapped as exc:
            unmapped.append(str(exc))
    assert not unmapped, unmapped
    report = check(role_statements(function_id, recording.names), recording.needs(function_id), calls)
    assert not report.denied, f"{function_id} needs what its policy does not grant:\n" + "\n".join(
        map(str, report.denied)
    )
    # No call failed for a reason other than the paths' own (a missing key, a lost condition).
    expected_errors = {None, "404", "NoSuchKey", "TransactionCanceledException"}
    assert {call.error for call in calls} <= expected_errors, [str(c) + f" {c.error}" for c in calls]


@pytest.mark.parametrize("code_dir", DRIVEN)
def test_nothing_is_granted_that_no_path_uses(recording: Recording, code_dir: str) -> None:
    function_id = _function_id(code_dir)
    statements = role_statements(function_id, recording.names)
    report = check(statements, recording.needs(function_id), recording.calls[function_id])
    assert not report.unused, f"{function_id} is granted what no recorded call uses:\n" + "\n".join(
        map(str, report.unused)
    )
    assert not report.idle_key_patterns, f"{function_id}: leading-key patterns no call used: {report.idle_key_patterns}"


@pytest.mark.parametrize("code_dir", DRIVEN)
def test_each_action_uses_each_of_its_leading_key_patterns(recording: Recording, code_dir: str) -> None:
    function_id = _function_id(code_dir)
    report = check(
        role_statements(function_id, recording.names), recording.needs(function_id), recording.calls[function_id]
    )
    assert not report.idle_action_key_patterns, report.idle_action_key_patterns


def stream_read_policies(function_id: str) -> set[str]:
    """AWSLambdaDynamoDBExecutionRole when one of the function's event source mappings reads a table's stream (SAM
    attaches it; its DescribeStream / GetRecords / GetShardIterator / ListStreams are on every stream of the account,
    as AWS wrote it), else nothing."""
    for resource in translated().resources.values():
        properties = resource["Properties"]
        if (
            resource["Type"] == "AWS::Lambda::EventSourceMapping"
            and _refers_to(properties["FunctionName"], function_id)
            and str(properties["EventSourceArn"].get("Fn::GetAtt", ["", ""])[1]) == "StreamArn"
        ):
            return {STREAM_READ}
    return set()


def test_only_the_exporter_reads_the_stream() -> None:
    readers = {function_id for function_id in translated().code_dirs if stream_read_policies(function_id)}
    assert readers == {"LedgerExportFunction"}


@pytest.mark.parametrize("code_dir", DRIVEN)
def test_sam_attaches_only_the_lambda_basics(recording: Recording, code_dir: str) -> None:
    function_id = _function_id(code_dir)
    attached = managed_policy_arns(function_id, recording.names)
    tracing = translated().resources[function_id]["Properties"].get("TracingConfig", {}).get("Mode")
    xray = attached & XRAY_POLICIES
    assert attached - xray == {BASIC_EXECUTION} | stream_read_policies(function_id), attached
    if tracing in ("Active", "PassThrough"):  # PassThrough still sends segments for requests sampled upstream
        assert len(xray) == 1, f"{function_id} traces (Tracing: {tracing}) without an X-Ray write policy: {attached}"
    else:
        assert not xray, f"{function_id} does not trace, yet has {xray}"
    # X-Ray and CloudWatch need no grant of ours: no recorded call went to them (EMF metrics are log lines).
    assert not {c.service for c in recording.calls[function_id]} & {"xray", "cloudwatch", "logs"}


def test_the_secrets_key_lets_exactly_the_functions_that_decrypt_read_through_ssm(recording: Recording) -> None:
    """SSM decrypts a SecureString with the caller's KMS permissions. The template grants kms:Decrypt on SecretsKey
    in the key's own policy (through SSM only): the roles there must be those of the functions that read secrets."""
    decrypting = {
        _role_of(function_id)
        for function_id, calls in recording.calls.items()
        for call in calls
        if call.service == "ssm" and call.params.get("WithDecryption")
    }
    resolve = Resolver(translated(), recording.names)
    function_roles = {_role_of(function_id) for function_id in translated().code_dirs}
    admitted: set[str] = set()
    keys = [r for r in translated().resources.values() if r["Type"] == "AWS::KMS::Key"]
    for key in keys:
        for statement in _as_list(key["Properties"]["KeyPolicy"]["Statement"]):
            actions = _as_list(statement["Action"])
            if statement["Effect"] != "Allow" or not any(_like(a, "kms:Decrypt", ignore_case=True) for a in actions):
                continue
            principals = _as_list(statement.get("Principal", {}).get("AWS", []))
            roles = {p["Fn::GetAtt"][0] for p in principals if isinstance(p, dict) and "Fn::GetAtt" in p}
            if roles & function_roles:
                condition = resolve(statement.get("Condition", {}))
                assert condition == {"StringEquals": {"kms:ViaService": f"ssm.{REGION}.{URL_SUFFIX}"}}, condition
                admitted |= roles & function_roles
    assert decrypting, "no function read a SecureString: the SSM scenarios did not run"
    if keys:
        assert admitted == decrypting, f"key policy admits {sorted(admitted)}, functions that decrypt: {decrypting}"


# --- the checker can fail ---------------------------------------------------------------------------------------------
# On a least-privilege policy made from the recorded needs themselves (not from the template, so these tests keep
# testing the checker whatever the template says), doctored one way or another.


def least_privilege(needs: list[Need]) -> list[Statement]:
    """One statement per action, on exactly the resources recorded for it; DynamoDB writes keyed to the exact items'
    partition keys."""
    statements = []
    for action in sorted({n.action for n in needs}):
        users = [n for n in needs if n.action == action]
        keys = sorted({k for n in users for k in n.context_dict.get("dynamodb:LeadingKeys", [])})
        condition = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": keys}} if keys else {}
        resources = tuple(sorted({n.resource for n in users}))
        statements.append(Statement(action, "Allow", (action,), resources, condition))
    return statements


def _recorded(recording: Recording, code_dir: str) -> tuple[list[Need], list[Call]]:
    function_id = _function_id(code_dir)
    return recording.needs(function_id), recording.calls[function_id]


def test_the_checker_reports_a_missing_and_an_extra_action(recording: Recording) -> None:
    needs, calls = _recorded(recording, "billing")
    exact = least_privilege(needs)
    report = check(exact, needs, calls)
    assert (report.denied, report.unused, report.idle_key_patterns, report.idle_action_key_patterns) == ([], [], [], [])

    doctored = [s for s in exact if s.actions != ("dynamodb:UpdateItem",)]
    doctored.append(Statement("Extra", "Allow", ("dynamodb:DeleteItem",), (_table_arn(TABLE),)))
    report = check(doctored, needs, calls)
    assert report.denied and {need.action for need in report.denied} == {"dynamodb:UpdateItem"}
    assert [str(grant) for grant in report.unused] == [f"Extra: dynamodb:DeleteItem on {_table_arn(TABLE)}"]


def test_the_checker_enforces_resources_leading_keys_and_denies(recording: Recording) -> None:
    needs, calls = _recorded(recording, "billing")
    exact = least_privilege(needs)
    # Another table: every DynamoDB need is denied.
    elsewhere = [replace(s, resources=tuple(r.replace(TABLE, "other-table") for r in s.resources)) for s in exact]
    assert {n.action for n in check(elsewhere, needs, calls).denied} == {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    # dynamodb:LeadingKeys: every key of the request must match one of the patterns.
    entries = Statement(
        "Entries",
        "Allow",
        ("dynamodb:PutItem",),
        (_table_arn(TABLE),),
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ENTRY#game:*"]}},
    )
    put = Need("dynamodb:PutItem", _table_arn(TABLE), (("dynamodb:LeadingKeys", ("ENTRY#game:t-1",)),), "doctored")
    session_put = replace(put, context=(("dynamodb:LeadingKeys", ("PLAYER#b1",)),))
    mixed_put = replace(put, context=(("dynamodb:LeadingKeys", ("ENTRY#game:t-1", "PLAYER#b1")),))
    assert is_allowed([entries], put)
    assert not is_allowed([entries], session_put)
    assert not is_allowed([entries], mixed_put)
    assert not is_allowed([entries], replace(put, action="dynamodb:UpdateItem"))
    assert not is_allowed([entries], replace(put, resource=_table_arn(TABLE) + "/index/by_player"))
    # An explicit Deny wins; wildcards grant.
    assert not is_allowed([entries, Statement("Deny", "Deny", ("dynamodb:Put*",), ("*",))], put)
    assert is_allowed([Statement("All", "Allow", ("dynamodb:*",), ("arn:aws:dynamodb:*:*:table/*",))], session_put)
    # An unused leading-key pattern is reported, per statement and per action.
    wider = replace(entries, condition={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ENTRY#game:*", "X#*"]}})
    report = check([wider], [put], [])
    assert (report.idle_key_patterns, report.idle_action_key_patterns) == (
        ["Entries: X#*"],
        ["Entries: dynamodb:PutItem on X#*"],
    )


def test_the_checker_derives_list_bucket_from_a_missing_key_and_honours_allowances(recording: Recording) -> None:
    needs, calls = _recorded(recording, "games_sync")
    assert any(n.action == "s3:ListBucket" for n in needs), "no read of a missing key was recorded"
    exact = least_privilege(needs)
    without_list = [s for s in exact if "s3:ListBucket" not in s.actions]
    assert {n.action for n in check(without_list, needs, calls).denied} == {"s3:ListBucket"}
    # Granted, but with no read of a missing key behind it (the runs after the first publish): unused ...
    found = [c for c in calls if c.error is None]
    present = [n for c in found for n in needs_of(c)]
    assert [g.action for g in check(exact, present, found).unused] == ["s3:ListBucket"]
    # ... unless an allowance's rule justifies it.
    allowance = Allowance("s3:List*", "a test rule", lambda grant, _: grant.resource.endswith(BUCKET))
    assert check(exact, present, found, (allowance,)).unused == []


def test_the_checker_tells_the_indexes_apart(recording: Recording) -> None:
    needs, calls = _recorded(recording, "operator")
    exact = least_privilege(needs)
    assert check(exact, needs, calls).denied == []

    def queries_on(resources: tuple[str, ...]) -> list[Statement]:
        return [replace(s, resources=resources) if s.actions == ("dynamodb:Query",) else s for s in exact]

    by_player = _table_arn(TABLE) + "/index/by_player"
    denied = check(queries_on((by_player,)), needs, calls).denied
    assert {(n.action, n.resource) for n in denied} == {("dynamodb:Query", _table_arn(TABLE) + "/index/by_round")}
    # The table's own ARN does not cover its indexes: IAM matches the whole ARN.
    assert {n.action for n in check(queries_on((_table_arn(TABLE),)), needs, calls).denied} == {"dynamodb:Query"}


def test_the_failure_destination_allowances_cover_only_that_queue_and_its_key_through_sqs() -> None:
    [(queue, key)] = _on_failure_destinations().items()
    assert queue.endswith(f":{DEAD_LETTERS}") and key == _bucket_kms_keys()[ARCHIVE_BUCKET]
    send, data_key, _decrypt = NOT_OBSERVABLE
    through = {"StringEquals": {"kms:ViaService": _via("sqs")}}

    def grant(action: str, resource: str, condition: dict[str, Any]) -> Grant:
        return Grant(Statement("Doctored", "Allow", (action,), (resource,), condition), action, resource)

    assert send.justified(grant("sqs:SendMessage", queue, {}), [])
    assert not send.justified(grant("sqs:SendMessage", queue.replace(DEAD_LETTERS, "another-queue"), {}), [])
    assert data_key.justified(grant("kms:GenerateDataKey", key, through), [])
    assert not data_key.justified(grant("kms:GenerateDataKey", key, {}), [])  # not only through SQS
    assert not data_key.justified(grant("kms:GenerateDataKey", key.replace("archive-key", "other"), through), [])


def test_the_exporter_only_adds_files_under_the_two_prefixes(recording: Recording) -> None:
    statements = role_statements(_function_id("ledger_export"), recording.names)
    archive = f"arn:{PARTITION}:s3:::{ARCHIVE_BUCKET}"
    assert is_allowed(statements, Need("s3:PutObject", f"{archive}/entries/day=2026-01-01/a.parquet", (), "doctored"))
    assert is_allowed(statements, Need("s3:PutObject", f"{archive}/accounts/day=2026-01-01/a.parquet", (), "doctored"))
    for action, key in (
        ("s3:PutObject", "other/a.parquet"),
        ("s3:GetObject", "entries/day=2026-01-01/a.parquet"),
        ("s3:DeleteObject", "entries/day=2026-01-01/a.parquet"),
        ("s3:DeleteObjectVersion", "entries/day=2026-01-01/a.parquet"),
        ("s3:BypassGovernanceRetention", "entries/day=2026-01-01/a.parquet"),
        ("s3:PutObjectRetention", "entries/day=2026-01-01/a.parquet"),
    ):
        assert not is_allowed(statements, Need(action, f"{archive}/{key}", (), "doctored")), (action, key)
    # The key only through S3 (to write) and SQS (the dead letters): never a direct decrypt.
    key = _bucket_kms_keys()[ARCHIVE_BUCKET]
    assert is_allowed(statements, Need("kms:GenerateDataKey", key, (("kms:ViaService", (_via("s3"),)),), "doctored"))
    assert not is_allowed(statements, Need("kms:Decrypt", key, (("kms:ViaService", (_via("s3"),)),), "doctored"))
    assert not is_allowed(statements, Need("kms:Decrypt", key, (), "doctored"))
    assert not {"dynamodb", "ssm"} & {c.service for c in recording.calls[_function_id("ledger_export")]}


def test_the_operator_function_cannot_touch_game_entries_the_salt_or_delete(recording: Recording) -> None:
    statements = role_statements(_function_id("operator"), recording.names)

    def keyed(action: str, key: str) -> Need:
        return Need(action, _table_arn(TABLE), (("dynamodb:LeadingKeys", (key,)),), "doctored")

    assert is_allowed(statements, keyed("dynamodb:PutItem", "ENTRY#operator:pay-9"))
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert not is_allowed(statements, keyed(action, "ENTRY#game:bet-1")), action
    assert not is_allowed(statements, keyed("dynamodb:UpdateItem", "ENTRY#operator:pay-9"))  # entries are immutable
    # The mover's BatchGetItem: an account and an operator entry, never a game entry beside the account.
    batch = Need(
        "dynamodb:BatchGetItem",
        _table_arn(TABLE),
        (("dynamodb:LeadingKeys", ("ENTRY#operator:pay-9", "PLAYER#o1")),),
        "doctored",
    )
    assert is_allowed(statements, batch)
    assert not is_allowed(
        statements, replace(batch, context=(("dynamodb:LeadingKeys", ("ENTRY#game:bet-1", "PLAYER#o1")),))
    )
    assert not is_allowed(statements, keyed("dynamodb:GetItem", "ENTRY#operator:pay-9"))  # only in the batch
    assert not is_allowed(statements, keyed("dynamodb:DeleteItem", "PLAYER#o1"))
    assert not is_allowed(statements, Need("dynamodb:Scan", _table_arn(TABLE), (), "doctored"))
    assert not is_allowed(statements, Need("dynamodb:Query", _table_arn(TABLE), (), "doctored"))
    salt = _parameter_arn(str(translated().parameters["SaltParameterName"]))
    assert not is_allowed(statements, Need("ssm:GetParameters", salt, (), "doctored"))
