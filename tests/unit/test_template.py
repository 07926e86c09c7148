"""template.yaml, samconfig.toml and parameters/: what a real `sam deploy` and the first day in production would hit,
checked offline. Each test guards one mistake that lint and checkov pass (see docs/SECURITY.md, docs/SITE.md)."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from wallet_local.paths import TEMPLATE
from wallet_local.stack import OPERATOR_ROUTES
from wallet_local.table import _CloudFormationLoader

ROOT = TEMPLATE.parent
PARAMETER_FILES = {env: ROOT / "parameters" / f"{env}.yaml" for env in ("dev", "prod", "local")}
# Values that differ per environment or per operator: a default would deploy one environment's (or nobody's) value.
ENVIRONMENT_CRITICAL = {
    "Stage",
    "SaltParameterName",
    "SessionKeyParameterName",
    "OperatorPrincipalArn",
    "GamesServerCidrs",
    "CustomerId",
    "GamesConfigUrl",
}
# CloudFront, "Restrictions on all edge functions": headers an edge function may not add (502 at the edge) and the
# read-only ones it may not add, change or remove. Lower case; a trailing * is a prefix.
EDGE_DISALLOWED = {
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "trailer",
    "upgrade",
    "x-accel-buffering",
    "x-accel-charset",
    "x-accel-limit-rate",
    "x-accel-redirect",
    "x-amz-cf-*",
    "x-amzn-*",
    "x-cache",
    "x-edge-*",
    "x-forwarded-proto",
    "x-real-ip",
}
EDGE_READ_ONLY = {"content-length", "host", "transfer-encoding", "via", "accept-encoding", "if-modified-since"}
AWS_METRICS = {
    # A REST API's names, then an HTTP API's (the billing's, dimension ApiId).
    "AWS/ApiGateway": {"5XXError", "4XXError", "Count", "Latency", "IntegrationLatency", "5xx", "4xx"},
    "AWS/Lambda": {"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions", "IteratorAge"},
    "AWS/DynamoDB": {"ThrottledRequests", "ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors", "UserErrors"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"},
}


def _load(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    document: dict[str, Any] = _load(TEMPLATE)
    return document


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def accepts(parameter: dict[str, Any], value: str) -> bool:
    """Whether CloudFormation would take `value` for this parameter (pattern, allowed values, number bounds)."""
    values = [v.strip() for v in value.split(",")] if parameter["Type"] == "CommaDelimitedList" else [value]
    for item in values:
        if "AllowedPattern" in parameter and not re.fullmatch(parameter["AllowedPattern"], item):
            return False
        if "AllowedValues" in parameter and item not in [str(v) for v in parameter["AllowedValues"]]:
            return False
        if parameter["Type"] == "Number":
            try:
                number = float(item)
            except ValueError:
                return False
            if number < parameter.get("MinValue", number) or number > parameter.get("MaxValue", number):
                return False
    return True


# --- parameters: nothing environment-specific falls back to a default ---------------------------------------------


def test_environment_critical_parameters_have_no_default(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert set(parameters) >= ENVIRONMENT_CRITICAL
    assert {name for name in ENVIRONMENT_CRITICAL if "Default" in parameters[name]} == set()


def test_every_default_passes_its_own_constraints(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        if "Default" in parameter:
            assert accepts(parameter, str(parameter["Default"])), name


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_environment_file_sets_every_parameter_and_its_placeholders_fail(
    template: dict[str, Any], env: str
) -> None:
    parameters = template["Parameters"]
    values = {key: str(value) for key, value in _load(PARAMETER_FILES[env]).items()}
    assert set(values) == set(parameters), "each environment file names every parameter, and only those"
    assert values["Stage"] == env
    placeholders = {key for key, value in values.items() if value.startswith("<REPLACE")}
    assert placeholders >= {"GamesServerCidrs", "CustomerId", "GamesConfigUrl", "OperatorPrincipalArn"}
    for key, value in values.items():
        # A placeholder left in stops the deploy; every real value deploys.
        assert accepts(parameters[key], value) is (key not in placeholders), (key, value)


def test_the_local_file_deploys_nothing_real_but_passes(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    values = {key: str(value) for key, value in _load(PARAMETER_FILES["local"]).items()}
    required = {name for name, parameter in parameters.items() if "Default" not in parameter}
    assert required <= set(values)
    assert all(accepts(parameters[key], value) for key, value in values.items())


def test_the_old_placeholders_would_now_fail(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert not accepts(parameters["GamesServerCidrs"], "REPLACE-WITH-GAMES-SERVER-CIDRS")
    assert not accepts(parameters["GameServerPort"], "22")
    assert not accepts(parameters["GameServerPort"], "1023")
    assert all(accepts(parameters["GameServerPort"], port) for port in ("80", "443", "1024", "8080", "65535"))
    assert not accepts(parameters["GameServerPort"], "65536")
    assert all(
        accepts(parameters["GamesSyncSchedule"], schedule)
        for schedule in ("rate(1 hour)", "rate(15 minutes)", "rate(2 days)", "cron(0 * * * ? *)")
    )
    for schedule in ("rate(1 hours)", "rate(0 minutes)", "every hour", "rate(5 minute)"):
        assert not accepts(parameters["GamesSyncSchedule"], schedule), schedule


def test_samconfig_deploys_from_the_environment_files() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["deploy"]["parameters"]["parameter_overrides"] == "file://parameters/dev.yaml"
    assert config["prod"]["deploy"]["parameters"]["parameter_overrides"] == "file://parameters/prod.yaml"
    for command in ("local_invoke", "local_start_api"):
        assert config["default"][command]["parameters"]["parameter_overrides"] == "file://parameters/local.yaml"


def test_sam_cli_reads_the_environment_file_and_merges_what_follows_it() -> None:
    from samcli.cli.types import CfnParameterOverridesType

    values = CfnParameterOverridesType().convert(
        ("file://" + str(PARAMETER_FILES["prod"]), "LogLevel=DEBUG"), None, None
    )
    assert (values["Stage"], values["LogLevel"], values["GameServerPort"]) == ("prod", "DEBUG", "8080")


def test_the_readme_never_deploys_with_a_partial_override() -> None:
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if "sam deploy" in line and "--parameter-overrides" in line:
            assert "--parameter-overrides file://parameters/" in line, line


# --- CloudFront: edge functions ------------------------------------------------------------------------------------


def _assigned_headers(code: str) -> set[str]:
    """Header names a CloudFront Function writes: headers['x'] = ..., headers["x"] = ..., headers.x = ..."""
    found = re.findall(r"headers\s*\[\s*['\"]([^'\"]+)['\"]\s*\]\s*=(?!=)", code)
    found += re.findall(r"headers\.([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", code)
    found += re.findall(r"delete\s+[A-Za-z_.]*headers\s*\[\s*['\"]([^'\"]+)['\"]\s*\]", code)
    return {name.lower() for name in found}


def _forbidden(header: str) -> bool:
    return any(
        header.startswith(rule[:-1]) if rule.endswith("*") else header == rule
        for rule in EDGE_DISALLOWED | EDGE_READ_ONLY
    )


def test_the_header_check_can_fail() -> None:
    bad = "request.headers['x-real-ip'] = {value: ip}; request.headers['Host'] = {value: 'x'}; delete h.headers['via'];"
    assert {h for h in _assigned_headers(bad) if _forbidden(h)} == {"x-real-ip", "host", "via"}
    assert not _forbidden("x-player-region")


def test_no_edge_function_touches_a_disallowed_or_read_only_header(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::CloudFront::Function")
    assert functions, "the template has CloudFront Functions"
    for name, function in functions.items():
        written = _assigned_headers(str(function["Properties"]["FunctionCode"]))
        assert {h for h in written if _forbidden(h)} == set(), name


def test_the_game_api_keeps_the_origin_host_and_the_viewers_address(template: dict[str, Any]) -> None:
    [distribution] = resources(template, "AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    [api] = [b for b in config["CacheBehaviors"] if b["TargetOriginId"] == "game-server"]
    # Managed-AllViewerExceptHostHeader: every viewer header but Host; CloudFront itself appends the viewer's address
    # to X-Forwarded-For (docs/SITE.md: how that maps to the guide's X-Real-IP).
    assert api["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert "FunctionAssociations" not in api


def test_the_public_site_serves_only_the_catalogue(template: dict[str, Any]) -> None:
    policy = template["Resources"]["SiteBucketPolicy"]
    [read] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Sid"] == "CloudFrontReadsThroughOAC"]
    assert sorted(str(r) for r in read["Resource"]) == [
        "${SiteBucket.Arn}/games_config.json",
        "${SiteBucket.Arn}/lobby.json",
    ]  # not sync-state.json, not whatever else lands in the bucket


# --- a new account can create the stack -----------------------------------------------------------------------------


def test_no_concurrency_is_reserved_by_default(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Serverless::Function")
    for name, function in functions.items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        if reserved is None:
            continue
        # Only behind a condition whose parameter defaults to off.
        condition, _value, otherwise = reserved
        assert otherwise == "AWS::NoValue", name
        parameter, turned_on_by = template["Conditions"][condition]
        assert template["Parameters"][parameter]["Default"] == "false" != turned_on_by, name


def test_the_billing_throttle_is_a_parameter(template: dict[str, Any]) -> None:
    api = template["Resources"]["BillingApi"]["Properties"]
    settings = api["DefaultRouteSettings"]  # every route of the HTTP API, and it has one
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (
        "BillingThrottleRate",
        "BillingThrottleBurst",
    )
    assert settings["DetailedMetricsEnabled"] is True
    assert "RouteSettings" not in api  # no route with a throttle of its own
    assert template["Parameters"]["BillingThrottleRate"]["Default"] >= 700  # docs/PERFORMANCE.md's load model


def test_the_billing_api_is_an_http_api_with_payload_2(template: dict[str, Any]) -> None:
    """$1.00 per million requests instead of a REST API's $3.50 (docs/PERFORMANCE.md); the handler reads 2.0."""
    api = template["Resources"]["BillingApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    assert api["Properties"]["StageName"] == "Stage" and api["Properties"]["FailOnWarnings"] is True
    [do] = template["Resources"]["BillingFunction"]["Properties"]["Events"].values()
    assert do == {
        "Type": "HttpApi",
        "Properties": {"ApiId": "BillingApi", "Path": "/do", "Method": "POST", "PayloadFormatVersion": "2.0"},
    }
    # No default route ($default would send every other path and method to the billing) and no other route.
    routes = [
        e["Properties"]
        for f in resources(template, "AWS::Serverless::Function").values()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    ]
    assert routes == [do["Properties"]]
    assert "BillingApi" in template["Outputs"]["BillingEndpoint"]["Value"]


def test_the_function_gets_the_games_server_allowlist(template: dict[str, Any]) -> None:
    """An HTTP API has no resource policy: the function refuses every other source, from this list."""
    variables = template["Resources"]["BillingFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["WALLET_GAMES_SERVER_CIDRS"] == [",", "GamesServerCidrs"]  # !Join [",", !Ref GamesServerCidrs]
    assert "Default" not in template["Parameters"]["GamesServerCidrs"]  # the provider's addresses, never a guess


def test_the_billing_access_log_holds_no_body_or_header(template: dict[str, Any]) -> None:
    settings = template["Resources"]["BillingApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == "BillingApiAccessLogGroup.Arn"
    fields = json.loads(settings["Format"])
    variables = set(re.findall(r"\$context\.[\w.]+", settings["Format"]))
    assert {"$context.requestId", "$context.identity.sourceIp", "$context.status"} <= variables
    # The body carries the session token and the sign; headers and the query string are the caller's to fill.
    assert not {v for v in variables if v.startswith(("$context.request.", "$input", "$context.authorizer"))}
    assert "body" not in settings["Format"].lower() and len(fields) == len(variables)
    group = template["Resources"]["BillingApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == 30


# --- alarms watch what the code emits -------------------------------------------------------------------------------


def _emitted_metric_names() -> set[str]:
    """Every metric name the functions pass to Powertools' add_metric: string literals and _METRIC_NAMES' values."""
    names: set[str] = set()
    for app in (ROOT / "functions").glob("*/app.py"):
        tree = ast.parse(app.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_metric":
                for keyword in node.keywords:
                    if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                        names.add(str(keyword.value.value))
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_METRIC_NAMES" for t in node.targets
            ):
                assert isinstance(node.value, ast.Dict)
                names.update(str(v.value) for v in node.value.values if isinstance(v, ast.Constant))
    return names


def _watched_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    properties = alarm["Properties"]
    if "MetricName" in properties:
        return [properties]
    return [m["MetricStat"]["Metric"] for m in properties["Metrics"] if "MetricStat" in m]


def test_every_alarm_watches_a_metric_that_exists(template: dict[str, Any]) -> None:
    emitted = _emitted_metric_names()
    assert {"SignFailures", "Conflicts", "Unavailable", "InternalErrors", "GamesSyncFailures"} <= emitted
    environment = template["Globals"]["Function"]["Environment"]["Variables"]
    serverless = resources(template, "AWS::Serverless::Function")
    functions = set(serverless) | {f["Properties"]["FunctionName"] for f in serverless.values()}  # !Ref or the name
    apis = {a["Properties"]["Name"] for a in resources(template, "AWS::Serverless::Api").values()}
    http_apis = set(resources(template, "AWS::Serverless::HttpApi"))  # dimension ApiId: !Ref <logical id>
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 13
    for name, alarm in alarms.items():
        for metric in _watched_metrics(alarm):
            namespace, dimensions = metric["Namespace"], {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if namespace == environment["POWERTOOLS_METRICS_NAMESPACE"]:
                assert metric["MetricName"] in emitted, name
                # Powertools adds the service as the one default dimension.
                assert dimensions == {"service": environment["POWERTOOLS_SERVICE_NAME"]}, name
            else:
                assert metric["MetricName"] in AWS_METRICS[namespace], name
                if "FunctionName" in dimensions:
                    assert dimensions["FunctionName"] in functions, name
                if "ApiName" in dimensions:
                    assert dimensions["ApiName"] in apis and dimensions["Stage"] == "Stage", name
                if "ApiId" in dimensions:  # an HTTP API's metrics: its id, and only its own names
                    assert dimensions["ApiId"] in http_apis and dimensions["Stage"] == "Stage", name
                    assert metric["MetricName"] in {"5xx", "4xx", "Count", "Latency", "IntegrationLatency"}, name
                if "TableName" in dimensions:
                    assert dimensions["TableName"] == "WalletTable", name
                if "QueueName" in dimensions:  # !GetAtt <queue>.QueueName
                    queue, attribute = str(dimensions["QueueName"]).split(".")
                    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue" and attribute == "QueueName", name


def test_a_wrong_salt_pages_within_minutes_at_idle(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["SignFailuresAlarm"]["Properties"]
    # The idle poll is about one a minute: two wrong signs must be enough.
    window = alarm["Period"] * alarm["EvaluationPeriods"]
    assert window <= 300
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] * alarm.get("DatapointsToAlarm", alarm["EvaluationPeriods"]) <= 2


# --- the secrets' key -----------------------------------------------------------------------------------------------


def test_the_secrets_key_admits_only_the_functions_that_read_secrets_and_the_operators(
    template: dict[str, Any],
) -> None:
    key = template["Resources"]["SecretsKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    using = [
        s for s in statements if any(str(a).startswith(("kms:Decrypt", "kms:Encrypt")) for a in _list(s["Action"]))
    ]
    principals = sorted(str(p) for s in using for p in _list(s["Principal"]["AWS"]))
    assert principals == [
        "BillingFunctionRole.Arn",
        "GamePageFunctionRole.Arn",
        "OperatorFunctionRole.Arn",
        "OperatorPrincipalArn",
    ]
    for statement in using:
        assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "ssm.${AWS::Region}.${AWS::URLSuffix}"}}
    [admin] = [s for s in statements if s not in using]
    assert str(admin["Principal"]["AWS"]).endswith(":root")
    assert not any(
        a in ("kms:*", "kms:Decrypt") or a.startswith(("kms:Encrypt", "kms:Generate", "kms:ReEncrypt"))
        for a in admin["Action"]
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_secret_parameters_are_written_under_the_stacks_key(template: dict[str, Any]) -> None:
    for name in ("SaltParameterName", "SessionKeyParameterName"):
        assert "--key-id alias/<stack>-secrets" in template["Parameters"][name]["Description"], name
    readme = (ROOT / "README.md").read_text()
    assert readme.count("--key-id alias/wallet-") >= 2


# --- the operator API ------------------------------------------------------------------------------------------------

OPERATOR_ROUTE_SET = {(route.method, route.resource) for route in OPERATOR_ROUTES}
PATH_PARAMETER = re.compile(r"\{\w+\}")  # {player_id}, {game_uuid}


def _api_events(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["Properties"] for e in function["Properties"].get("Events", {}).values() if e["Type"] == "Api"]


def test_the_operator_function_serves_exactly_the_operator_routes(template: dict[str, Any]) -> None:
    events = _api_events(template["Resources"]["OperatorFunction"])
    assert sorted((e["Method"], e["Path"]) for e in events) == sorted(OPERATOR_ROUTE_SET)
    assert {e["RestApiId"] for e in events} == {"OperatorApi"}


def test_the_operator_api_is_its_own_and_not_the_billings(template: dict[str, Any]) -> None:
    apis = resources(template, "AWS::Serverless::Api")
    operator = apis["OperatorApi"]["Properties"]
    assert operator["Name"] not in {a["Properties"]["Name"] for name, a in apis.items() if name != "OperatorApi"}
    # No REST route sits on the billing's API (an HTTP API with POST /do only) ...
    assert all(
        e["RestApiId"] != "BillingApi"
        for f in resources(template, "AWS::Serverless::Function").values()
        for e in _api_events(f)
    )
    # ... and no operator route sits on another API, nor is the operator API open to the Games Server's allowlist.
    assert "ResourcePolicy" not in operator["Auth"]
    assert operator["EndpointConfiguration"]["Type"] == "REGIONAL"
    assert operator["TracingEnabled"] is True
    [settings] = operator["MethodSettings"]
    assert settings["MetricsEnabled"] is True
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (
        "OperatorThrottleRate",
        "OperatorThrottleBurst",
    )


def test_every_operator_route_needs_sigv4(template: dict[str, Any]) -> None:
    from tests.unit.test_template_iam import translated

    auth = template["Resources"]["OperatorApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    # No route opts out (an event's own Auth would override the default, e.g. Authorizer: NONE).
    assert all("Auth" not in e for e in _api_events(template["Resources"]["OperatorFunction"]))
    # As SAM writes the API: AWS_IAM (SigV4) on every method, and API Gateway invokes the function with its Lambda
    # permission, not with the caller's credentials (SAM's default for AWS_IAM, which would make every caller need
    # lambda:InvokeFunction too).
    body = translated().resources["OperatorApi"]["Properties"]["Body"]
    methods = {(method.upper(), path): spec for path, item in body["paths"].items() for method, spec in item.items()}
    assert set(methods) == OPERATOR_ROUTE_SET
    for route, spec in methods.items():
        assert spec["security"] == [{"AWS_IAM": []}], route
        assert "credentials" not in spec["x-amazon-apigateway-integration"], route
    assert body["components"]["securitySchemes"]["AWS_IAM"]["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_the_invoke_policy_names_exactly_the_operator_routes(template: dict[str, Any]) -> None:
    policy = template["Resources"]["OperatorApiInvokePolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    # Attached by the site's backend role (outside this stack), never to one of the stack's functions.
    assert not {"Roles", "Users", "Groups"} & set(policy["Properties"])
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "execute-api:Invoke")
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${OperatorApi}/${Stage}/"
    expected = {prefix + method + PATH_PARAMETER.sub("*", path) for method, path in OPERATOR_ROUTE_SET}
    assert sorted(str(r) for r in statement["Resource"]) == sorted(expected)
    # Each * stands for a path parameter (IAM's * also spans "/"): each grant matches an operator route of this
    # stage, and none reaches beyond /operator/.
    requests = [method + PATH_PARAMETER.sub("p-1", path) for method, path in OPERATOR_ROUTE_SET]
    for resource in statement["Resource"]:
        pattern = re.escape(str(resource).removeprefix(prefix)).replace(r"\*", ".*")
        assert [r for r in requests if re.fullmatch(pattern, r)], resource
        assert re.fullmatch(r"(GET|POST|PATCH|DELETE)/operator/.+", str(resource).removeprefix(prefix)), resource


def test_the_operator_function_reads_the_session_key_never_the_salt(template: dict[str, Any]) -> None:
    function = template["Resources"]["OperatorFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["WALLET_SESSION_KEY_PARAMETER"] == "SessionKeyParameterName"
    assert not {"WALLET_SALT", "WALLET_SALT_PARAMETER"} & set(variables)
    # play_url points at the site's game page: the same front as the SiteUrl output.
    assert variables["WALLET_SITE_URL"] == template["Outputs"]["SiteUrl"]["Value"]
    [policy] = function["Policies"]
    ssm = [s for s in policy["Statement"] if any(str(a).startswith("ssm:") for a in _list(s["Action"]))]
    assert [str(r) for s in ssm for r in _list(s["Resource"])] == [
        "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${SessionKeyParameterName}"
    ]
    assert function["LoggingConfig"]["LogGroup"] == "OperatorLogGroup"
    assert template["Resources"]["OperatorLogGroup"]["Properties"]["RetentionInDays"] == 30


def test_the_operator_api_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs["OperatorApiUrl"]["Value"] == (
        "https://${OperatorApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"
    )
    assert outputs["OperatorApiInvokePolicyArn"]["Value"] == "OperatorApiInvokePolicy"  # !Ref: the policy's ARN


def test_the_layer_is_built_with_bytecode_for_the_architecture_deployed(template: dict[str, Any]) -> None:
    """layers/wallet/Makefile builds the layer (SAM's makefile build method): wheels for Lambda's platform and
    unchecked-hash bytecode; scripts/check_build.sh and the invoke stage check the artifact itself."""
    layer = template["Resources"]["WalletLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / "layers" / "wallet" / "Makefile").read_text()
    assert "build-WalletLayer:" in makefile  # SAM runs the target named after the resource
    assert "--invalidation-mode unchecked-hash" in makefile
    assert "WALLET_LAYER_ARCH ?= arm64" in makefile  # the deployed default, as the template's Architecture
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
