"""The one place that turns settings into clients and objects (cosmicpython's bootstrap): the handlers, the CLI and
the local stack ask here for a wallet, a catalogue store or the archive's sink; nothing else builds an AWS client.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from pydantic import SecretStr

from wallet.money.allowlist import SourceAllowlist
from wallet.money.dynamodb import DynamoDBStore
from wallet.money.wallet import Wallet
from wallet.settings import ArchiveSettings, CatalogueSettings, Settings

if TYPE_CHECKING:
    from botocore.session import Session as BotocoreSession
    from mypy_boto3_cloudfront.client import CloudFrontClient
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_ssm.client import SSMClient

    from wallet.catalogue.games import CachedCatalogue
    from wallet.catalogue.s3_store import S3CatalogueStore
    from wallet.operator.archive import ArchiveSink

SECRET_CACHE_SECONDS = 300
# A cold start waits on this call: fail within seconds (a 500, the provider retries) rather than botocore's 60 s.
SSM_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3})
# Short timeouts and one SDK retry: the Games Server waits on us, and its own retry with the same trx_id is always
# safe, so a slow DynamoDB call should become a quick 503 rather than outlive the Lambda's timeout.
CLIENT_CONFIG = Config(
    connect_timeout=0.5,
    read_timeout=1.5,
    retries={"total_max_attempts": 2, "mode": "standard"},  # two tries in all: one retry
    tcp_keepalive=True,
    # The store builds every request from typed code, and DynamoDB validates each one anyway: botocore's own walk of
    # the request against the model was ~1.3 ms of CPU per bet on the bench machine (docs/PERFORMANCE.md).
    parameter_validation=False,
)


@cache
def _botocore_session() -> BotocoreSession:
    """The process's botocore session: its data files (service models, endpoints) are loaded once, for every
    client made on it."""
    return botocore.session.get_session()


def aws_session() -> BotocoreSession:
    """The session the clients are made on. botocore's own, without boto3 (its import is ~150 ms of a cold start,
    with s3transfer; botocore's client is all the handlers use of it) -- unless the process has imported boto3 and
    set up its default session (the CLI, the tests, which patch boto3.DEFAULT_SESSION): then that one, as
    boto3.client() would use."""
    boto3 = sys.modules.get("boto3")
    default = getattr(boto3, "DEFAULT_SESSION", None)
    if default is not None:
        return cast("BotocoreSession", default._session)  # the boto3 session's botocore session
    return _botocore_session()


def aws_client(service: str, **kwargs: Any) -> Any:
    """A botocore client: endpoint_url None honours AWS_ENDPOINT_URL_<SERVICE> (DynamoDB Local, moto's server), and
    region_name None the environment's region, as boto3.client() does."""
    return aws_session().create_client(service, **kwargs)


def make_dynamodb_client(
    endpoint_url: str | None = None, region: str | None = None, config: Config = CLIENT_CONFIG
) -> DynamoDBClient:
    # endpoint_url None lets botocore honour AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local) as well as real AWS.
    client: DynamoDBClient = aws_client("dynamodb", endpoint_url=endpoint_url, region_name=region, config=config)
    return client


def build_wallet(settings: Settings | None = None) -> Wallet:
    """The wallet wired to DynamoDB (AWS, or DynamoDB Local through AWS_ENDPOINT_URL_DYNAMODB)."""
    settings = settings or Settings.from_env()
    return Wallet(
        DynamoDBStore(settings.table_name, make_dynamodb_client()),
        Secrets(settings),
        session_seconds=settings.session_seconds,
        credit_grace_seconds=settings.credit_grace_days * 24 * 60 * 60,
        max_write_attempts=settings.max_write_attempts,
    )


@cache
def lambda_settings() -> Settings:
    """The function's settings, read from its environment on first use, then kept for the instance."""
    return Settings.from_env()


@cache
def lambda_allowlist() -> SourceAllowlist:
    """The Games Server's addresses (WALLET_GAMES_SERVER_CIDRS), the only sources the billing answers."""
    return SourceAllowlist(lambda_settings().games_server_cidrs)


@cache
def lambda_wallet() -> Wallet:
    """The handlers' wallet: built on first use from the function's environment, then kept for the instance."""
    return build_wallet(lambda_settings())


def build_catalogue_store(settings: CatalogueSettings) -> S3CatalogueStore:
    from wallet.catalogue.s3_store import S3CatalogueStore

    # botocore honours AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_CLOUDFRONT, which point both at moto's server locally.
    cloudfront: CloudFrontClient | None = aws_client("cloudfront") if settings.distribution_id else None
    s3: S3Client = aws_client("s3")
    return S3CatalogueStore(settings.bucket, s3, cloudfront, settings.distribution_id, settings.cache_seconds)


@dataclass(frozen=True)
class LambdaCatalogue:
    """What the catalogue's handlers use: their settings, the S3 store, and the published games_config as the game
    page reads it (through a cache of `settings.cache_seconds`)."""

    settings: CatalogueSettings
    store: S3CatalogueStore
    games: CachedCatalogue


@cache
def lambda_catalogue() -> LambdaCatalogue:
    """The game page's and the games sync's catalogue: built on first use from the function's environment, then kept
    for the instance (as `lambda_wallet`)."""
    from wallet.catalogue.games import GAMES_CONFIG_KEY, CachedCatalogue

    settings = CatalogueSettings.from_env()
    store = build_catalogue_store(settings)
    games = CachedCatalogue(lambda: store.read(GAMES_CONFIG_KEY), ttl=settings.cache_seconds)
    return LambdaCatalogue(settings, store, games)


# The exporter is not on a player's path: botocore's standard retries, with their longer waits, are worth it before
# the whole stream batch is retried.
ARCHIVE_CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 4}
)


def build_archive_sink(settings: ArchiveSettings) -> ArchiveSink:
    """The ledger archive's destination: the S3 bucket, or the local folder of `wallet local`."""
    from wallet.operator.archive import LocalFolderSink, S3Sink

    if settings.folder:
        return LocalFolderSink(settings.folder)
    assert settings.bucket  # ArchiveSettings holds exactly one of the two
    # botocore honours AWS_ENDPOINT_URL_S3 (moto's server locally).
    s3: S3Client = aws_client("s3", config=ARCHIVE_CLIENT_CONFIG)
    return S3Sink(settings.bucket, s3)


@cache
def lambda_archive() -> ArchiveSink:
    """The ledger exporter's sink: built on first use from the function's environment (WALLET_ARCHIVE_BUCKET or
    WALLET_ARCHIVE_DIR, exactly one: a pydantic ValidationError saying so otherwise), then kept for the instance."""
    return build_archive_sink(ArchiveSettings.from_env())


class MissingSecret(RuntimeError):
    """Neither the secret's value nor the name of its SSM parameter is configured."""


class SecretUnavailable(RuntimeError):
    """SSM does not have (or would not decrypt) a configured secret's parameter: GetParameters named it invalid."""


class _Cached:
    """The values read from SSM and until when (time.monotonic) they are good. Its repr shows neither."""

    __slots__ = ("expires", "values")

    def __init__(self, values: dict[str, str], expires: float) -> None:
        self.values, self.expires = values, expires


class Secrets:
    """Reads the secrets on first use and keeps them for SECRET_CACHE_SECONDS (rotation is picked up after that)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ssm: SSMClient | None = None
        self._cached: _Cached | None = None

    def salt(self) -> str:
        return self._resolve(self._settings.salt, self._settings.salt_parameter, "WALLET_SALT")

    def session_key(self) -> bytes:
        return self._resolve(
            self._settings.session_key, self._settings.session_key_parameter, "WALLET_SESSION_KEY"
        ).encode("utf-8")

    def clear_cache(self) -> None:
        """Forget the values read from SSM: the next use reads them again (as after SECRET_CACHE_SECONDS)."""
        self._cached = None

    def _resolve(self, value: SecretStr | None, parameter: str | None, variable: str) -> str:
        if value is not None:
            return value.get_secret_value()
        if parameter:
            return self._from_ssm(parameter)
        raise MissingSecret(f"set {variable} or {variable}_PARAMETER")

    def _from_ssm(self, parameter: str) -> str:
        cached = self._cached
        if cached is None or time.monotonic() >= cached.expires or parameter not in cached.values:
            cached = self._cached = _Cached(self._read_ssm(), time.monotonic() + SECRET_CACHE_SECONDS)
        return cached.values[parameter]

    def _read_ssm(self) -> dict[str, str]:
        """Every SSM secret in one GetParameters call, decrypted: a cold start's first request needs both. A direct
        botocore call, not Powertools' SSMProvider (whose package imports boto3: ~150 ms of a cold start)."""
        if self._ssm is None:
            # The session the DynamoDB client has already loaded: a new one would load botocore's data files again.
            self._ssm = cast("SSMClient", aws_client("ssm", config=SSM_CLIENT_CONFIG))
        names = [name for name in (self._settings.salt_parameter, self._settings.session_key_parameter) if name]
        response = self._ssm.get_parameters(Names=names, WithDecryption=True)
        if response.get("InvalidParameters"):
            raise SecretUnavailable(f"Failed to fetch parameters: {response['InvalidParameters']}")
        return {parameter["Name"]: parameter["Value"] for parameter in response["Parameters"]}
