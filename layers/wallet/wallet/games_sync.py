"""The games_config sync use case, shared by the scheduled Lambda and `wallet games sync`."""

from __future__ import annotations

import boto3

from wallet.catalogue_store import S3CatalogueStore
from wallet.games import CatalogueError, PublishResult, fetch_games_config, publish
from wallet.settings import CatalogueSettings


def build_catalogue_store(settings: CatalogueSettings) -> S3CatalogueStore:
    # boto3 honours AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_CLOUDFRONT, which point both at moto's server locally.
    cloudfront = boto3.client("cloudfront") if settings.distribution_id else None
    return S3CatalogueStore(
        settings.bucket, boto3.client("s3"), cloudfront, settings.distribution_id, settings.cache_seconds
    )


def sync_games_config(settings: CatalogueSettings, store: S3CatalogueStore, url: str | None = None) -> PublishResult:
    source = url or settings.games_config_url
    if not source:
        raise CatalogueError("no games_config URL: set WALLET_GAMES_CONFIG_URL or pass one")
    raw = fetch_games_config(source, settings.fetch_timeout_seconds)
    return publish(store, raw, settings.path_to_storage)
