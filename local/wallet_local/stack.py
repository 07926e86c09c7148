"""`wallet local`: DynamoDB Local + the table from template.yaml + a demo player + the local front, until Ctrl-C."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from wallet_local.dynamodb_local import LOCAL_CREDENTIALS, DynamoDBLocal
from wallet_local.front import BILLING_ROUTE, LocalFront, Route
from wallet_local.paths import new_archive_dir
from wallet_local.sigv4 import LocalCredentials
from wallet_local.streams import PROGRESS_FILE, LocalExport, start_local_export
from wallet_local.table import create_table

LOCAL_TABLE = "wallet-local"
DEMO_PLAYER = "demo"
DEMO_BALANCE = Decimal(100000)
CATALOGUE_BUCKET = "wallet-local-site"
PATH_TO_STORAGE = "/media"
STATIC = Path(__file__).parent / "static"
LOCAL_GAMES_SERVER_CIDRS = "127.0.0.0/8,::1/128"
# The operator API's routes, as template.yaml's OperatorApi has them (AWS_IAM: SigV4-signed).
OPERATOR_ROUTES = [
    Route(method, resource, "operator", signed=True)
    for method, resource in (
        ("POST", "/operator/players"),
        ("GET", "/operator/players/{player_id}"),
        ("PATCH", "/operator/players/{player_id}"),
        ("POST", "/operator/players/{player_id}/sessions"),
        ("DELETE", "/operator/players/{player_id}/sessions"),
        ("POST", "/operator/players/{player_id}/deposits"),
        ("POST", "/operator/players/{player_id}/withdrawals"),
        ("GET", "/operator/players/{player_id}/history"),
        ("GET", "/operator/rounds/{game_uuid}"),
        ("GET", "/operator/openapi.json"),
    )
]
ROUTES = [
    BILLING_ROUTE,
    Route("GET", "/play/{application}", "game_page"),
    Route("GET", "/lobby", "game_page"),
    *OPERATOR_ROUTES,
]


def local_environment(
    dynamodb_endpoint: str, aws_endpoint: str = "", distribution_id: str = "", archive_dir: str = ""
) -> dict[str, str]:
    """What the handlers and the CLI need to run against the local stack (the secrets can be overridden)."""
    return {
        # The ledger exporter writes the archive there; `wallet report` and `wallet audit` read it (DuckDB).
        "WALLET_ARCHIVE_DIR": archive_dir,
        "AWS_ENDPOINT_URL_S3": aws_endpoint,
        "AWS_ENDPOINT_URL_CLOUDFRONT": aws_endpoint,
        "WALLET_CATALOGUE_BUCKET": CATALOGUE_BUCKET,
        "WALLET_DISTRIBUTION_ID": distribution_id,
        "WALLET_PATH_TO_STORAGE": PATH_TO_STORAGE,
        "WALLET_CUSTOMER_ID": os.environ.get("WALLET_CUSTOMER_ID", "local"),
        "WALLET_CATALOGUE_CACHE_SECONDS": "5",
        "WALLET_TABLE": os.environ.get("WALLET_TABLE", LOCAL_TABLE),
        "WALLET_SALT": os.environ.get("WALLET_SALT", "local-salt"),
        "WALLET_SESSION_KEY": os.environ.get("WALLET_SESSION_KEY", "local-session-key"),
        # The front listens on loopback: the local Games Server (a test's simulator, curl) calls from there.
        "WALLET_GAMES_SERVER_CIDRS": os.environ.get("WALLET_GAMES_SERVER_CIDRS", LOCAL_GAMES_SERVER_CIDRS),
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": LOCAL_CREDENTIALS["region_name"],
        "AWS_REGION": LOCAL_CREDENTIALS["region_name"],
        "POWERTOOLS_SERVICE_NAME": "wallet",
        "POWERTOOLS_METRICS_NAMESPACE": "Wallet",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
    }


def run_local_stack(
    host: str = "127.0.0.1",
    port: int = 3000,
    dynamodb_port: int = 8000,
    max_instances: int = 8,
    session_seconds: int | None = None,
    archive_dir: Path | None = None,
) -> int:
    database = DynamoDBLocal(dynamodb_port)
    try:
        database.start()
    except Exception as exc:
        print(json.dumps({"error": f"cannot start DynamoDB Local: {exc}"}), file=sys.stderr)
        return 2
    front: LocalFront | None = None
    aws = None
    export: LocalExport | str | None = None
    try:
        aws = start_moto_server()
        aws_endpoint = f"http://127.0.0.1:{aws.port}"
        distribution_id = create_site(aws_endpoint)
        archive = local_archive_dir(archive_dir, os.environ.get("WALLET_TABLE", LOCAL_TABLE))
        environment = local_environment(database.endpoint, aws_endpoint, distribution_id, str(archive))
        if session_seconds is not None:
            # For the functions and for every `wallet session new` run with the printed environment.
            environment["WALLET_SESSION_SECONDS"] = str(session_seconds)
        # The handlers read the environment when they are imported, exactly as in Lambda.
        # The archive is the local folder only (the exporter refuses both a folder and a bucket).
        for key in ("WALLET_SALT_PARAMETER", "WALLET_SESSION_KEY_PARAMETER", "WALLET_ARCHIVE_BUCKET"):
            os.environ.pop(key, None)
        os.environ.update(environment)
        create_table(database.client(), environment["WALLET_TABLE"])
        # The stream's reader and the exporter (its own process, started from this environment), before any write.
        export = start_local_export(database.client(), database.endpoint, environment["WALLET_TABLE"], archive)
        from wallet.bootstrap import build_wallet

        wallet = build_wallet()
        wallet.create_player(DEMO_PLAYER, "FUN", DEMO_BALANCE)
        session = wallet.new_session(DEMO_PLAYER)
        # The provider's side, played by files: its games_config and, under the asset path, a stand-in loader.
        static = {PATH_TO_STORAGE: STATIC / "media", "/provider": STATIC / "provider"}
        # The operator routes check SigV4 against the local credentials, in the region the banner exports.
        credentials = LocalCredentials(
            environment["AWS_ACCESS_KEY_ID"], environment["AWS_SECRET_ACCESS_KEY"], environment["AWS_DEFAULT_REGION"]
        )
        front = LocalFront(
            (host, port),
            ROUTES,
            static=static,
            bucket=CATALOGUE_BUCKET,
            max_instances=max_instances,
            credentials=credentials,
        )
        # The operator API's play_url points at this front's game page (the instances start below, with it set).
        os.environ["WALLET_SITE_URL"] = environment["WALLET_SITE_URL"] = front.url
        front.instances.warm(min(2, max_instances))
        serving = threading.Thread(target=front.serve_forever, name="local-front", daemon=True)
        serving.start()
        os.environ["WALLET_GAMES_CONFIG_URL"] = environment["WALLET_GAMES_CONFIG_URL"] = (
            os.environ.get("WALLET_GAMES_CONFIG_URL") or f"{front.url}/provider/games_config.json"
        )
        synced = sync_catalogue()
        archived = archive if isinstance(export, LocalExport) else f"none ({export})"
        print(
            _banner(front.url, database, environment, session.token, session.expires_at, synced, archived), flush=True
        )
        _wait_for_stop()
    finally:
        if front is not None:
            front.shutdown()
            front.server_close()
        if isinstance(export, LocalExport):
            export.stop()  # after the front: what the last requests wrote is archived too
        if aws is not None:
            aws.stop()
        database.stop()
    print("stopped", flush=True)
    return 0


def local_archive_dir(given: Path | None, table: str) -> Path:
    """--archive, else WALLET_ARCHIVE_DIR, else a new folder for this run under .local/archive; absolute, since the
    banner's export line is for another shell in any directory."""
    configured = os.environ.get("WALLET_ARCHIVE_DIR", "").strip()
    folder = given or (Path(configured) if configured else new_archive_dir(table))
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class MotoServer:
    """moto's server, standing in for S3 and CloudFront."""

    def __init__(self, port: int) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 call would drown the banner
        self.port = port
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)

    def start(self) -> MotoServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


def start_moto_server() -> MotoServer:
    from wallet_local.dynamodb_local import free_port

    return MotoServer(free_port()).start()


def create_site(aws_endpoint: str) -> str:
    """The site's bucket and its CloudFront distribution in moto; returns the distribution id."""
    import boto3

    credentials = dict(LOCAL_CREDENTIALS)
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, **credentials)
    s3.create_bucket(Bucket=CATALOGUE_BUCKET)
    cloudfront = boto3.client("cloudfront", endpoint_url=aws_endpoint, **credentials)
    return create_distribution(cloudfront, CATALOGUE_BUCKET, "wallet-local")


def create_distribution(cloudfront: Any, bucket: str, reference: str) -> str:
    """A minimal distribution in front of the bucket (what moto needs to take invalidations); returns its id."""
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": reference,
            "Comment": "wallet local site",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "site",
                        "DomainName": f"{bucket}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "site",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )
    return str(distribution["Distribution"]["Id"])


def sync_catalogue() -> dict[str, Any]:
    from wallet.bootstrap import build_catalogue_store
    from wallet.catalogue.sync import sync_games_config
    from wallet.settings import CatalogueSettings

    settings = CatalogueSettings.from_env()
    result = sync_games_config(settings, build_catalogue_store(settings))
    return {"changed": result.changed, "invalidation": result.invalidation_id, "games": result.games}


def _wait_for_stop() -> None:
    stop = threading.Event()

    def request_stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stop.wait()


def signed_body(session: str, trx_id: str, salt: str, minus: int, plus: int, tag: dict[str, Any]) -> str:
    from wallet.money.sign import compute_sign

    body = {
        "method": "do",
        "session": session,
        "minus": minus,
        "plus": plus,
        "trx_id": trx_id,
        "sign": compute_sign(session, trx_id, salt),
        "tag": tag,
    }
    return json.dumps(body, separators=(",", ":"))


def _banner(
    url: str,
    database: DynamoDBLocal,
    environment: dict[str, str],
    token: str,
    expires_at: int,
    synced: dict[str, Any],
    archive: Path | str,
) -> str:
    salt = environment["WALLET_SALT"]
    balance = signed_body(token, "demo-balance-1", salt, 0, 0, {"game": "slot", "game_id": ""})
    bet = signed_body(
        token,
        "demo-bet-1",
        salt,
        100,
        0,
        {"game": "slot", "game_id": "a_op", "game_uuid": "demo-round-1", "lines": 9, "bet": 1, "denomination": 100},
    )
    win = signed_body(
        token, "demo-win-1", salt, 0, 250, {"game": "slot", "game_id": "a_op", "game_uuid": "demo-round-1"}
    )
    curl = f"curl -s -X POST {url}/do -H 'Content-Type: application/json' -d "
    api_url = shlex.quote(url)
    new_player = json.dumps({"player_id": "p2", "currency": "FUN", "balance": 100}, separators=(",", ":"))
    exports = " ".join(
        f"{key}={shlex.quote(environment[key])}"
        for key in (
            "AWS_ENDPOINT_URL_DYNAMODB",
            "WALLET_TABLE",
            "WALLET_SESSION_KEY",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_CLOUDFRONT",
            "WALLET_CATALOGUE_BUCKET",
            "WALLET_DISTRIBUTION_ID",
            "WALLET_GAMES_CONFIG_URL",
            "WALLET_SESSION_SECONDS",
            "WALLET_ARCHIVE_DIR",
        )
        if key in environment
    )
    return "\n".join(
        [
            f"Wallet billing is up: POST {url}/do  (DynamoDB Local on port {database.port}, table "
            f"{environment['WALLET_TABLE']}, salt from WALLET_SALT)",
            f"Demo player {DEMO_PLAYER!r}: balance {DEMO_BALANCE} FUN, session {token} (expires at {expires_at})",
            "",
            "Ask the balance:",
            f"  {curl}{shlex.quote(balance)}",
            "Bet 100 in round demo-round-1 (send it twice: the second moves nothing):",
            f"  {curl}{shlex.quote(bet)}",
            "Win 250 in the same round:",
            f"  {curl}{shlex.quote(win)}",
            "",
            f"Lobby ({synced['games']} games; published: {', '.join(synced['changed']) or 'nothing new'}):",
            f"  {url}/lobby?session={token}",
            f"A game page: {url}/play/a_op?session={token}&kf=100&language=en_US",
            "",
            "Operator CLI against this stack, in another shell:",
            f"  export {exports}",
            f"  wallet balance {DEMO_PLAYER}; wallet history {DEMO_PLAYER}; wallet round demo-round-1",
            f"  wallet session new {DEMO_PLAYER}; wallet session revoke {DEMO_PLAYER}",
            f"  wallet player status {DEMO_PLAYER} suspended --reason 'cool-off requested'",
            "  wallet games sync",
            "",
            f"The ledger archive (the table's stream, read as Lambda reads it, into the ledger exporter): {archive}",
            f"  wallet report; wallet audit    (DuckDB over WALLET_ARCHIVE_DIR; {PROGRESS_FILE} there says when it "
            "caught up)",
            "",
            f"Operator API: {url}/operator/... (SigV4, service execute-api: AWS_ACCESS_KEY_ID="
            f"{environment['AWS_ACCESS_KEY_ID']} AWS_SECRET_ACCESS_KEY={environment['AWS_SECRET_ACCESS_KEY']} "
            f"AWS_DEFAULT_REGION={environment['AWS_DEFAULT_REGION']}; the description: {url}/operator/openapi.json)",
            f"With the exports above plus WALLET_API_URL={api_url}, the player, session, deposit, withdraw, balance, "
            "history and round commands go through it:",
            f"  WALLET_API_URL={api_url} wallet api POST /operator/players {shlex.quote(new_player)}",
            f"  WALLET_API_URL={api_url} wallet deposit p2 50 --ref site-pay-1",
            "",
            "Ctrl-C stops it (the in-memory database goes with it).",
        ]
    )
