"""The games_config sync use case, shared by the scheduled Lambda and `wallet games sync`."""

from __future__ import annotations

from wallet.catalogue.games import CatalogueError, CatalogueStore, PublishResult, fetch_games_config, publish
from wallet.settings import CatalogueSettings


def sync_games_config(settings: CatalogueSettings, store: CatalogueStore, url: str | None = None) -> PublishResult:
    source = url or settings.games_config_url
    if not source:
        raise CatalogueError("no games_config URL: set WALLET_GAMES_CONFIG_URL or pass one")
    raw = fetch_games_config(source, settings.fetch_timeout_seconds)
    return publish(store, raw, settings.path_to_storage)
