"""The provider's games catalogue (games_config): its schema, the lobby we derive from it, and the publishing rule.

games_config is validated before anything is published, and published only when its content changed: a failed fetch
or an invalid file never replaces the last good copy.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

APPLICATION_ID = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_CONFIG_BYTES = 5 * 1024 * 1024
GAMES_CONFIG_KEY = "games_config.json"
LOBBY_KEY = "lobby.json"
# The digests whose CloudFront invalidation succeeded. Written last, so a run that wrote S3 but failed to invalidate
# leaves it stale, and the next run invalidates again even though S3 is already up to date.
SYNC_STATE_KEY = "sync-state.json"


class CatalogueError(Exception):
    """games_config could not be fetched or is not valid; the last good copy stays published."""


class Html5(BaseModel):
    model_config = ConfigDict(extra="allow")

    app: Annotated[list[str], Field(min_length=1)]
    mainjs: Annotated[str, Field(min_length=1)]


class Application(BaseModel):
    """One entry of `applications`. Unknown fields are kept: the provider adds fields as it releases games."""

    model_config = ConfigDict(extra="allow")

    html5: Html5
    loader: Annotated[str, Field(min_length=1)]
    name: dict[str, str]
    position: str | int | None = None
    lines: str | int | None = None
    source: Annotated[str, Field(min_length=1)]
    preview: Annotated[str, Field(min_length=1)]
    type: Literal["slot", "egame", "betting"]
    lang: list[str] | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name_as_mapping(cls, value: object) -> object:
        # The guide shows the names as a list of {"lang": "name"} objects as well as one object: accept both.
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            merged: dict[str, object] = {}
            for item in value:
                merged.update(item)
            return merged
        return value

    def display_name(self, language: str = "en") -> str:
        return self.name.get(language) or self.name.get("en") or next(iter(self.name.values()), self.source)


class GamesConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    api: Annotated[str, Field(min_length=1)]
    applications: Annotated[dict[Annotated[str, Field(pattern=APPLICATION_ID)], Application], Field(min_length=1)]
    container: Annotated[str, Field(min_length=1)]
    container_name: Annotated[str, Field(min_length=1)]


def parse_games_config(raw: bytes) -> GamesConfig:
    if len(raw) > MAX_CONFIG_BYTES:
        raise CatalogueError(f"games_config larger than {MAX_CONFIG_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CatalogueError(f"games_config is not JSON: {exc}") from None
    try:
        return GamesConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
        raise CatalogueError(f"games_config does not match the schema: {problems}") from None


def fetch_games_config(url: str, timeout: float) -> bytes:
    """GET the provider's file. Any HTTP error, timeout or oversized answer is a CatalogueError."""
    if not url.startswith(("https://", "http://")):
        raise CatalogueError("games_config URL must be http(s)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, headers={"Accept": "application/json", "User-Agent": "wallet-games-sync"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
            raw: bytes = response.read(MAX_CONFIG_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise CatalogueError(f"games_config fetch failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
        # HTTPException: a malformed reply (bad status line, truncated chunked body, oversized header).
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        raise CatalogueError(f"games_config fetch failed: {reason}") from None
    return raw


def lobby_index(config: GamesConfig, path_to_storage: str) -> dict[str, Any]:
    """Games grouped by type, with display names and thumbnail paths under the asset path."""
    storage = path_to_storage.rstrip("/")
    groups: dict[str, list[dict[str, Any]]] = {}
    for application_id, application in config.applications.items():
        groups.setdefault(application.type, []).append(
            {
                "id": application_id,
                "name": application.display_name(),
                "names": application.name,
                "type": application.type,
                "thumbnail": f"{storage}/{application.preview.lstrip('/')}",
            }
        )
    for games in groups.values():
        games.sort(key=lambda game: (game["name"].lower(), game["id"]))
    return {"types": dict(sorted(groups.items())), "count": len(config.applications)}


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class CatalogueStore(Protocol):
    """Where the catalogue is published (S3 behind CloudFront in AWS)."""

    def stored_digest(self, key: str) -> str | None: ...

    def put(self, key: str, content: bytes, content_digest: str) -> None: ...

    def read(self, key: str) -> bytes | None: ...

    def invalidate(self, paths: list[str]) -> str: ...


@dataclass(frozen=True)
class PublishResult:
    changed: list[str]
    invalidation_id: str | None
    games: int


def publish(store: CatalogueStore, raw: bytes, path_to_storage: str) -> PublishResult:
    """Validate, write only the files whose content changed, then one invalidation naming every file whose current
    content CloudFront has not yet been told about (including any a previous failed run left behind)."""
    config = parse_games_config(raw)
    lobby = json.dumps(lobby_index(config, path_to_storage), ensure_ascii=False, sort_keys=True).encode("utf-8")
    invalidated = _sync_state(store)
    changed: list[str] = []
    digests: dict[str, str] = {}
    for key, content in ((GAMES_CONFIG_KEY, raw), (LOBBY_KEY, lobby)):
        digests[key] = content_digest = digest(content)
        if store.stored_digest(key) != content_digest:
            store.put(key, content, content_digest)
            changed.append(key)
    stale = [key for key, content_digest in digests.items() if invalidated.get(key) != content_digest]
    invalidation = None
    if stale:
        invalidation = store.invalidate([f"/{key}" for key in stale])
        state = json.dumps(digests, sort_keys=True).encode("utf-8")
        store.put(SYNC_STATE_KEY, state, digest(state))
    return PublishResult(changed, invalidation, len(config.applications))


def _sync_state(store: CatalogueStore) -> dict[str, str]:
    raw = store.read(SYNC_STATE_KEY)
    try:
        state = json.loads(raw) if raw else {}
    except ValueError:
        state = {}  # unreadable state only costs one extra invalidation
    return {str(k): str(v) for k, v in state.items()} if isinstance(state, dict) else {}


class CachedCatalogue:
    """The published games_config as the game page sees it: read from the store at most once per `ttl` seconds."""

    def __init__(
        self, read: Callable[[], bytes | None], ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._config: GamesConfig | None = None
        self._loaded_at: float | None = None

    def current(self) -> GamesConfig | None:
        now = self._clock()
        if self._loaded_at is None or now - self._loaded_at >= self._ttl:
            raw = self._read()
            self._config = parse_games_config(raw) if raw is not None else None
            self._loaded_at = now
        return self._config
