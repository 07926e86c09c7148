"""Generate the sample events for `sam local invoke <Function> -e events/<name>.json`: API Gateway
events for BillingFunction (POST /do) and GamePageFunction (GET /play/{application}, GET /lobby), and the EventBridge
Scheduled Event of GamesSyncFunction.

Run from the repository root:  .venv/bin/python events/generate.py
It rewrites events/*.json, events/env.json and events/README.md. The output is deterministic (fixed ids and times), so
a regeneration without a change to this script leaves `git diff` empty.

Every event is signed for the sample salt `local-salt` (md5 x45 of "do::session::trx_id::salt", wallet.sign), except
bad_sign.json. The session is the sample token below: it is live only once its hash is stored on the account of player
`demo` (see the README this script writes). The game page events carry the same session in their query string.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent
sys.path.insert(0, str(EVENTS.parent / "layers" / "wallet"))

from wallet.money.sessions import hash_token  # noqa: E402 - after the path set-up
from wallet.money.sign import compute_sign  # noqa: E402

SALT = "local-salt"
SESSION_KEY = "local-session-key"
TABLE = "wallet-local"
PLAYER = "demo"
OPENING_BALANCE = 100000
SESSION = f"{PLAYER}.sam-local-invoke-session-token-000000000000000"
UNKNOWN_SESSION = f"{PLAYER}.this-token-was-never-issued-by-the-operator-0000"
SOURCE_IP = "203.0.113.10"  # TEST-NET-3: the Games Server
PLAYER_IP = "198.51.100.23"  # TEST-NET-2: a player's browser (behind CloudFront)
CATALOGUE_BUCKET = "wallet-local-site"  # as `wallet local` names it (local/wallet_local/stack.py)
MOTO_ENDPOINT = "http://host.docker.internal:5000"  # moto_server -p 5000, standing in for S3 and CloudFront
GAME = "a_op"  # an application of the sample games_config (local/wallet_local/static/provider/games_config.json)
PROVIDER_FILES = "http://host.docker.internal:8001"  # python -m http.server 8001 --directory local/wallet_local/static
REQUEST_TIME_EPOCH = 1764072000000  # 2025-11-25T12:00:00Z, fixed so the output is stable
_NAMESPACE = uuid.UUID("6f1d3c1e-6d0a-4d43-9d7e-0c5b8d7a1a00")

SLOT_ROUND = 100001  # an integer game_uuid, as in the provider's slot example
PACKAGE_ROUND = "AA-BB-CC-0001"


def trx(name: str) -> str:
    """A stable UUID per sample, the shape the Games Server sends."""
    return str(uuid.uuid5(_NAMESPACE, name))


def body(
    trx_id: str | int, minus: int, plus: int, tag: dict[str, Any], *, session: str = SESSION, salt: str = SALT
) -> dict[str, Any]:
    return {
        "method": "do",
        "session": session,
        "minus": minus,
        "plus": plus,
        "trx_id": trx_id,
        "sign": compute_sign(session, str(trx_id), salt),
        "tag": tag,
    }


def api_gateway_event(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event for POST /do on stage dev: BillingApi's."""
    request_id = str(uuid.uuid5(_NAMESPACE, f"request:{name}"))
    api_id = "abcdef1234"
    domain = f"{api_id}.execute-api.eu-west-1.amazonaws.com"
    return {
        "version": "2.0",
        "routeKey": "POST /do",
        "rawPath": "/dev/do",
        "rawQueryString": "",
        # An HTTP API hands headers over in lower case; X-Forwarded-For is the caller's to write, so the billing
        # trusts only requestContext.http.sourceIp, which API Gateway takes from the connection.
        "headers": {
            "accept": "application/json",
            "content-length": str(len(json.dumps(payload, separators=(",", ":")))),
            "content-type": "application/json",
            "host": domain,
            "user-agent": "GamesServer/1.0",
            "x-amzn-trace-id": "Root=1-69259a40-0123456789abcdef01234567",
            "x-forwarded-for": SOURCE_IP,
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": api_id,
            "http": {
                "method": "POST",
                "path": "/dev/do",
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": "GamesServer/1.0",
            },
            "requestId": request_id[:16],
            "routeKey": "POST /do",
            "stage": "dev",
            "time": "25/Nov/2025:12:00:00 +0000",
            "timeEpoch": REQUEST_TIME_EPOCH,
        },
        # The Games Server's JSON, as the raw string API Gateway hands over.
        "body": json.dumps(payload, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def page_event(
    name: str, resource: str, path: str, path_parameters: dict[str, str] | None, query: dict[str, str]
) -> dict[str, Any]:
    """An API Gateway REST proxy (payload v1) event for a GET of the site's API, as CloudFront forwards it."""
    headers = {
        "Accept": "text/html,application/xhtml+xml",
        "Accept-Language": "en-US,en;q=0.9",
        "CloudFront-Forwarded-Proto": "https",
        "Host": "site1234ab.execute-api.eu-west-1.amazonaws.com",
        "User-Agent": "Amazon CloudFront",
        "Via": "2.0 0123456789abcdef0123456789abcdef.cloudfront.net (CloudFront)",
        "X-Amz-Cf-Id": "Q2xvdWRGcm9udC1zYW1wbGUtcmVxdWVzdC1pZC0wMDAwMDA=",
        "X-Amzn-Trace-Id": "Root=1-69259a40-fedcba9876543210fedcba98",
        "X-Forwarded-For": f"{PLAYER_IP}, 130.176.0.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    event = _rest_event(
        name,
        "GET",
        resource,
        path,
        headers,
        api_id="site1234ab",
        resource_id="d4e5f6",
        source_ip="130.176.0.10",  # a CloudFront edge: the player's address is in X-Forwarded-For
    )
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {key: [value] for key, value in query.items()}
    event["pathParameters"] = path_parameters
    return event


def _rest_event(
    name: str,
    method: str,
    resource: str,
    path: str,
    headers: dict[str, str],
    *,
    api_id: str,
    resource_id: str,
    source_ip: str,
) -> dict[str, Any]:
    request_id = str(uuid.uuid5(_NAMESPACE, f"request:{name}"))
    domain = f"{api_id}.execute-api.eu-west-1.amazonaws.com"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": resource_id,
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id[:16],
            "requestTime": "25/Nov/2025:12:00:00 +0000",
            "path": f"/dev{path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "dev",
            "domainPrefix": api_id,
            "requestTimeEpoch": REQUEST_TIME_EPOCH,
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": headers["User-Agent"],
                "user": None,
            },
            "domainName": domain,
            "apiId": api_id,
        },
        "body": None,
        "isBase64Encoded": False,
    }


def scheduled_event() -> dict[str, Any]:
    """The EventBridge Scheduled Event the GamesSyncFunction rule sends (its content is not used by the handler)."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(_NAMESPACE, "games_sync_scheduled")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2025-11-25T12:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/wallet-dev-GamesSyncFunctionSchedule-0123456789AB"],
        "detail": {},
    }


# name -> (function, what it shows, the event, what to expect)
SITE_SAMPLES: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "game_page": (
        "GamePageFunction",
        f"GET /play/{GAME}?session=...&kf=100&language=en_US: the game page of guide step 2",
        page_event(
            "game_page",
            "/play/{application}",
            f"/play/{GAME}",
            {"application": GAME},
            {"session": SESSION, "kf": "100", "language": "en_US"},
        ),
        "200 text/html, the loader options with billing = WALLET_CUSTOMER_ID (403 if the session is not live, "
        "503 before the first sync)",
    ),
    "lobby": (
        "GamePageFunction",
        "GET /lobby?session=...&language=en_US: the games by type, each linking to /play/{application}",
        page_event("lobby", "/lobby", "/lobby", None, {"session": SESSION, "language": "en_US"}),
        "200 text/html (403 if the session is not live, 503 before the first sync)",
    ),
    "games_sync_scheduled": (
        "GamesSyncFunction",
        "the EventBridge Scheduled Event of the GamesSyncSchedule rule",
        scheduled_event(),
        '{"changed": ["games_config.json", "lobby.json"], ...} the first time, then {"changed": [], ...}',
    ),
}


SLOT_TAG = {"game": "slot", "game_id": "a_op", "game_uuid": SLOT_ROUND, "lines": 1, "bet": 1, "denomination": 100}
PACKAGE_BETS = ["[0]:1000", "[1]:500", "[2]:300"]

# name -> (what it shows, the body, the reply expected when replayed in the README's order)
SAMPLES: dict[str, tuple[str, dict[str, Any], str]] = {
    "balance": (
        "balance request (minus 0, plus 0, empty game_id)",
        body(trx("balance"), 0, 0, {"game": "slot", "game_id": ""}),
        '{"status":"OK","balance":100000,"currency":"FUN"}',
    ),
    "bet": (
        "slot bet of 100 (round 100001)",
        body(trx("bet"), 100, 0, SLOT_TAG),
        '{"status":"OK","balance":99900,"currency":"FUN"}',
    ),
    "win": (
        "slot win of 250 for the same round (same game_uuid as bet.json)",
        body(trx("win"), 0, 250, SLOT_TAG),
        '{"status":"OK","balance":100150,"currency":"FUN"}',
    ),
    "duplicate_retry": (
        "the Games Server retrying bet.json (same trx_id and body): nothing moves, OK with the current balance",
        body(trx("bet"), 100, 0, SLOT_TAG),
        '{"status":"OK","balance":100150,"currency":"FUN"}',
    ),
    "bad_sign": (
        "a bet signed with another salt",
        body(trx("bad_sign"), 100, 0, {**SLOT_TAG, "game_uuid": 100002}, salt="not-the-salt"),
        '{"status":"sign_not_found"}',
    ),
    "unknown_session": (
        "a correctly signed bet on a session the operator never issued",
        body(trx("unknown_session"), 100, 0, {**SLOT_TAG, "game_uuid": 100003}, session=UNKNOWN_SESSION),
        '{"status":"session_not_found"}',
    ),
    "not_enough_money": (
        "a bet far above the balance (an integer trx_id, as the protocol allows)",
        body(9000000001, 999999999999999, 0, {**SLOT_TAG, "game_uuid": 100004}),
        '{"status":"not_enough_money","balance":100150,"currency":"FUN"}',
    ),
    "bet_package": (
        "a betting game's package of three bets (1000 + 500 + 300) under one game_uuid",
        body(
            trx("bet_package"),
            1800,
            0,
            {"game": "bet", "game_id": "1009", "game_uuid": PACKAGE_ROUND, "round": 10000, "bets": PACKAGE_BETS},
        ),
        '{"status":"OK","balance":98350,"currency":"FUN"}',
    ),
    "partial_cancel": (
        "the cancel of bet [1] of the package: 500 credited back through plus, same game_uuid",
        body(
            trx("partial_cancel"),
            0,
            500,
            {"game": "bet", "game_id": "1009", "game_uuid": PACKAGE_ROUND, "round": 10000, "bets": ["[1]:500"]},
        ),
        '{"status":"OK","balance":98850,"currency":"FUN"}',
    ),
}

ENV = {
    "BillingFunction": {
        "WALLET_TABLE": TABLE,
        "WALLET_SALT": SALT,
        "WALLET_SALT_PARAMETER": "",
        "WALLET_SESSION_KEY": SESSION_KEY,
        "WALLET_SESSION_KEY_PARAMETER": "",
        # The sample events' source, and loopback: `sam local start-api` sees its clients (the Games Server
        # simulator of `make invoke`) there.
        "WALLET_GAMES_SERVER_CIDRS": f"{SOURCE_IP}/32,127.0.0.1/32",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://host.docker.internal:8000",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    },
    "GamePageFunction": {
        "WALLET_TABLE": TABLE,
        "WALLET_SESSION_KEY": SESSION_KEY,
        "WALLET_SESSION_KEY_PARAMETER": "",
        "WALLET_CATALOGUE_BUCKET": CATALOGUE_BUCKET,
        "WALLET_PATH_TO_STORAGE": "/media",
        "WALLET_CUSTOMER_ID": "local",
        "WALLET_CATALOGUE_CACHE_SECONDS": "5",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://host.docker.internal:8000",
        "AWS_ENDPOINT_URL_S3": MOTO_ENDPOINT,
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    },
    "GamesSyncFunction": {
        "WALLET_CATALOGUE_BUCKET": CATALOGUE_BUCKET,
        "WALLET_DISTRIBUTION_ID": "",
        "WALLET_GAMES_CONFIG_URL": f"{PROVIDER_FILES}/provider/games_config.json",
        "WALLET_PATH_TO_STORAGE": "/media",
        "WALLET_CUSTOMER_ID": "local",
        "WALLET_CATALOGUE_CACHE_SECONDS": "5",
        "AWS_ENDPOINT_URL_S3": MOTO_ENDPOINT,
        "AWS_ENDPOINT_URL_CLOUDFRONT": MOTO_ENDPOINT,
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    },
}

README = """\
# Sample events for `sam local invoke`

API Gateway HTTP API (payload format 2.0) events for `POST /do`, as the provider's Games Server sends them (from
`203.0.113.10`, the address `env.json` and `parameters/local.yaml` admit), and the REST API (payload 1.0) events of
the site's functions (below). They are written by `events/generate.py` (`.venv/bin/python events/generate.py`):
edit the script, not the JSON.

Every event is signed for the sample salt `{salt}` except `bad_sign.json`, and all but `unknown_session.json` use the
sample session of player `{player}`:

    {session}

| event | what it shows | reply (in this order, from a balance of {opening}) |
|---|---|---|
{rows}

## Run them: `make invoke`

    make invoke

One command replays every event of this directory through SAM's own emulator, offline, and checks each reply against
[`expected.json`](expected.json), the machine-readable list of the replies in these tables (CI runs it as the
`invoke` stage of `make test`). It needs root (its own dockerd, bridge and network namespace); where docker cannot
run at all (not root, no kernel support) it prints `SKIPPED: <reason>` and exits 77, and `make test` shows the stage
as SKIPPED. scripts/invoke.sh, then local/wallet_local/invoke.py:

1. installs `docker.io`, `iptables` and `debootstrap` from Debian when missing;
2. builds the application for x86_64 (`sam build --parameter-overrides file://parameters/local.yaml
   Architecture=x86_64` into `.local/sam-x86_64/build`; the deployed stack stays arm64, which would run here under
   qemu at ~55 s an invoke);
3. starts its own dockerd (state in `.local/sam-invoke/`, on a tmpfs; its own socket; stopped by pid at the end);
4. builds once, with no registry, the image SAM asks for (`public.ecr.aws/lambda/python:3.13-x86_64`): Debian
   trixie's Python 3.13 (`debootstrap`) with AWS's runtime interface client (`awslambdaric` from PyPI) in
   `/var/runtime`, cached as `.local/sam-invoke/<image>-<recipe>.tar` and only `docker load`ed after that (SAM adds
   its own runtime interface emulator and the layer on top, as for AWS's image);
5. starts DynamoDB Local, moto's server (S3, CloudFront) and a file server for `local/wallet_local/static` (the
   provider's games_config) on the ports `env.json` names; creates the table (from template.yaml), the player `demo`
   with the sample session above (its hash stored as `wallet session new` would) and the site's bucket;
6. runs `sam local invoke --skip-pull-image -e events/<event> <Function>` for every entry of `expected.json`: the
   billing events in the order of the table above, the site's (sync first) and the operator's in their own chains,
   side by side; then checks the ledger (each player's balance and entries, and the whole table's audit);
7. serves the same build with `sam local start-api --warm-containers LAZY` on a loopback port, where a Games Server
   plays a round for a fresh player: balance, bet 100, win 250, the bet replayed (nothing moves), and the ledger is
   exact;
8. prints a table (event, expected, got, seconds) and exits 1 on any mismatch. Every process's output is in
   `.local/sam-invoke/logs/`.

`bash scripts/invoke.sh --chain billing --no-start-api` runs one chain only.

What it proves: the built artifact (the layer with its x86_64 wheels, the handlers, the template's environment
declarations and these events) works in the Lambda runtime as SAM emulates it, not only in-process as the tests
import the handlers; every reply is the protocol's, the ledger is exact, and API Gateway's emulator routes POST /do.

### The network: nothing leaves the machine

    host ── wsam0 bridge 10.213.7.0/24 (host 10.213.7.1) ─┬─ function containers 10.213.7.128-254
                                                          └─ veth ─ namespace wallet-sam-svc 10.213.7.2:
                                                               DynamoDB Local :8000, moto :5000, files :8001

- dockerd runs with `--iptables=false --ip-masq=false --ip-forward=false` on its own bridge `wsam0`: no NAT, no
  forwarding; iptables rules drop anything between the bridge and any other interface and every connection a
  container opens to the host itself. Published ports (SAM's to each container) are on 127.0.0.1 only, and
  `sam local start-api` listens on 127.0.0.1.
- The services run in their own network namespace, which has only loopback and its end of the bridge and no default
  route: DynamoDB Local (which cannot bind to one address) is reachable through the bridge only, never on the
  machine's external interfaces. `--add-host host.docker.internal:10.213.7.2` makes `env.json`'s endpoints point
  there.
- The run checks it: a container on the bridge must reach the services and must not reach the host, the host's
  gateway or a public address (the `network` row of the table). `WALLET_INVOKE_NET=10.x.y` moves the /24.
- On the way: `AWS_MAX_ATTEMPTS=1` (SAM otherwise spends ~11 s an invoke retrying an STS call that cannot succeed
  offline) and `SAM_CLI_TELEMETRY=0`.

## env.json

`sam local invoke --env-vars` only sets variables the template declares for the function; that is why
`template.yaml` declares `WALLET_SALT`, `WALLET_SESSION_KEY` and `AWS_ENDPOINT_URL_DYNAMODB` empty (empty means unset
for the code and for boto3). In AWS the secrets come from SSM through `WALLET_SALT_PARAMETER` and
`WALLET_SESSION_KEY_PARAMETER`. The code refuses a secret configured both ways, so `env.json` sets the
`*_PARAMETER` variables to `""` when it sets `WALLET_SALT` / `WALLET_SESSION_KEY`: keep them empty.

The site's functions follow the same rule: `GamePageFunction` declares `WALLET_SESSION_KEY`,
`AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_S3` empty, `GamesSyncFunction` declares `AWS_ENDPOINT_URL_S3` and
`AWS_ENDPOINT_URL_CLOUDFRONT` empty; their `WALLET_CATALOGUE_BUCKET`, `WALLET_DISTRIBUTION_ID`, ... are `!Ref`s in the
template, which `env.json` replaces with local values. `WALLET_DISTRIBUTION_ID` is `""` locally: the sync then
publishes without an invalidation.

## The site's functions

| event | function | what it shows | expect |
|---|---|---|---|
{site_rows}

They need S3 (and, for an invalidation, CloudFront): `env.json` points both at moto's server on port 5000, and the
sync fetches the sample games_config from a plain file server over `local/wallet_local/static` on port 8001; the
pages need DynamoDB Local, the player and the sample session. `make invoke` provides all of them. `wallet local` runs
the same without Docker: its own moto server, the sync at start-up, and the pages on http://127.0.0.1:3000/lobby.
"""


def write_json(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    for name, (_, payload, _) in SAMPLES.items():
        write_json(EVENTS / f"{name}.json", api_gateway_event(name, payload))
    for name, (_, _, event, _) in SITE_SAMPLES.items():
        write_json(EVENTS / f"{name}.json", event)
    write_json(EVENTS / "env.json", ENV)
    site_rows = "\n".join(
        f"| `{name}.json` | `{function}` | {what} | {expect} |"
        for name, (function, what, _, expect) in SITE_SAMPLES.items()
    )
    rows = "\n".join(f"| `{name}.json` | {what} | `{reply}` |" for name, (what, _, reply) in SAMPLES.items())
    (EVENTS / "README.md").write_text(
        README.format(
            salt=SALT,
            player=PLAYER,
            session=SESSION,
            opening=OPENING_BALANCE,
            rows=rows,
            table=TABLE,
            session_key=SESSION_KEY,
            session_hash=hash_token(SESSION, SESSION_KEY.encode("utf-8")),
            site_rows=site_rows,
            bucket=CATALOGUE_BUCKET,
        ),
        encoding="utf-8",
    )
    print(f"wrote {len(SAMPLES) + len(SITE_SAMPLES)} events, env.json and README.md to {EVENTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
