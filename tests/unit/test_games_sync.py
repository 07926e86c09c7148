"""games_config sync (wallet.games_sync + wallet.games.publish + S3CatalogueStore) against moto's S3 and CloudFront,
fetching from a real HTTP server on 127.0.0.1 that plays the provider: publish once, only what changed, and never
replace the last good copy with a failed fetch or an invalid file."""

from __future__ import annotations

import copy
import hashlib
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from tests.support import LambdaContext, lambda_function
from wallet.catalogue.games import (
    GAMES_CONFIG_KEY,
    LOBBY_KEY,
    MAX_CONFIG_BYTES,
    SYNC_STATE_KEY,
    CatalogueError,
    PublishResult,
)
from wallet.catalogue.s3_store import DIGEST_METADATA, S3CatalogueStore, StoreUnavailable
from wallet.catalogue.sync import sync_games_config
from wallet.settings import CatalogueSettings
from wallet_local import stack

BUCKET = "wallet-test-site"
STATIC_CONFIG = Path(__file__).resolve().parents[2] / "local" / "wallet_local" / "static" / "provider"
FETCH_TIMEOUT = 0.5


def games_config() -> dict[str, Any]:
    """A valid games_config, modelled on the stand-in provider's file (four games, three types, one unknown field)."""
    return {
        "api": "http://flash-api.example.test:8080/",
        "applications": {
            "a_op": {
                "html5": {"app": ["a_op-201707051645"], "mainjs": "game.js"},
                "loader": "a_op",
                "name": {"en": "Ocean Pearl", "ru": "Жемчужина океана"},
                "position": "1",
                "lines": "9",
                "source": "a_op",
                "preview": "thumb/a_op.png",
                "type": "slot",
            },
            "a_ec": {
                "html5": {"app": ["a_ec-201801101200"], "mainjs": "game.js"},
                "loader": "a_ec",
                "name": [{"en": "Emerald City"}],  # the guide's list-of-objects form
                "position": "1",
                "lines": "20",
                "source": "a_ec",
                "preview": "/thumb/a_ec.png",
                "type": "slot",
            },
            "e_keno": {
                "html5": {"app": ["turbokeno-201707201722"], "mainjs": "game.js"},
                "lang": ["en", "ru"],
                "loader": "e_keno",
                "name": {"en": "Turbo Keno"},
                "position": "2",
                "source": "turbokeno",
                "preview": "thumb/e_keno.png",
                "type": "egame",
            },
            "b_1009": {
                "html5": {"app": ["bets-202001011200"], "mainjs": "game.js", "extra_html5": [1, 2]},
                "loader": "b_1009",
                "name": {"en": "Live Bets"},
                "position": "2",
                "source": "1009",
                "preview": "thumb/b_1009.png",
                "type": "betting",
                "release_channel": "kept-as-unknown-field",
            },
        },
        "container": "http://s3bucket.example.test/",
        "container_name": "flashslots",
        "provider_build": {"id": 42, "note": "an unknown top-level field"},
    }


def encode(document: Any) -> bytes:
    # Deliberately not our own canonical form: the published bytes must be the provider's bytes.
    return json.dumps(document, ensure_ascii=False, indent=3).encode("utf-8")


EXPECTED_LOBBY = {
    "count": 4,
    "types": {
        "betting": [
            {
                "id": "b_1009",
                "name": "Live Bets",
                "names": {"en": "Live Bets"},
                "type": "betting",
                "thumbnail": "/media/thumb/b_1009.png",
            }
        ],
        "egame": [
            {
                "id": "e_keno",
                "name": "Turbo Keno",
                "names": {"en": "Turbo Keno"},
                "type": "egame",
                "thumbnail": "/media/thumb/e_keno.png",
            }
        ],
        "slot": [
            {
                "id": "a_ec",
                "name": "Emerald City",
                "names": {"en": "Emerald City"},
                "type": "slot",
                "thumbnail": "/media/thumb/a_ec.png",
            },
            {
                "id": "a_op",
                "name": "Ocean Pearl",
                "names": {"en": "Ocean Pearl", "ru": "Жемчужина океана"},
                "type": "slot",
                "thumbnail": "/media/thumb/a_op.png",
            },
        ],
    },
}


# --- the provider: a real HTTP server ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass
class Provider:
    server: ThreadingHTTPServer
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/games_config.json"

    def serve(self, body: bytes, status: int = 200, delay: float = 0.0) -> None:
        self.replies["/games_config.json"] = Reply(status, body, delay)


class _ProviderHandler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        provider: Provider = self.server.provider
        provider.requests.append(self.path)
        reply = provider.replies.get(self.path, Reply(404, b'{"message":"not found"}'))
        if reply.delay:
            provider.released.wait(reply.delay)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) or stopped reading (oversized): that is the point of those tests

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProviderHandler)
    server.daemon_threads = True
    provider = Provider(server)
    server.provider = provider  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-provider", daemon=True)
    thread.start()
    yield provider
    provider.released.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


# --- the site: moto's S3 bucket and CloudFront distribution ---------------------------------------------------------


def create_distribution(cloudfront: Any, reference: str) -> str:
    return stack.create_distribution(cloudfront, BUCKET, reference)


@dataclass
class Site:
    s3: Any
    cloudfront: Any
    distribution_id: str
    store: S3CatalogueStore
    provider: Provider

    def settings(self, **overrides: Any) -> CatalogueSettings:
        values: dict[str, Any] = {
            "bucket": BUCKET,
            "distribution_id": self.distribution_id,
            "games_config_url": self.provider.url,
            "fetch_timeout_seconds": FETCH_TIMEOUT,
            "path_to_storage": "/media",
        }
        values.update(overrides)
        return CatalogueSettings(**values)

    def sync(self) -> PublishResult:
        return sync_games_config(self.settings(), self.store)

    def body(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.s3.head_object(Bucket=BUCKET, Key=key))

    def versions(self, key: str) -> list[str]:
        listed = self.s3.list_object_versions(Bucket=BUCKET, Prefix=key)
        return [version["VersionId"] for version in listed.get("Versions", []) if version["Key"] == key]

    def keys(self) -> list[str]:
        return sorted(item["Key"] for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))

    def invalidations(self) -> list[str]:
        listed = self.cloudfront.list_invalidations(DistributionId=self.distribution_id)["InvalidationList"]
        return [item["Id"] for item in listed.get("Items", [])]

    def invalidated_paths(self, invalidation_id: str) -> list[str]:
        found = self.cloudfront.get_invalidation(DistributionId=self.distribution_id, Id=invalidation_id)
        paths = found["Invalidation"]["InvalidationBatch"]["Paths"]
        assert paths["Quantity"] == len(paths.get("Items", []))
        return list(paths.get("Items", []))

    def snapshot(self) -> dict[str, Any]:
        """Everything a failed run must leave untouched."""
        return {
            "bodies": {key: self.body(key) for key in self.keys()},
            "versions": {key: self.versions(key) for key in self.keys()},
            "etags": {key: self.head(key)["ETag"] for key in self.keys()},
            "invalidations": self.invalidations(),
        }


@pytest.fixture
def site(provider: Provider, boto_session: boto3.session.Session) -> Iterator[Site]:
    with mock_aws():
        s3 = boto_session.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        # Versioning makes every put visible: "nothing written" is "no new version".
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        cloudfront = boto_session.client("cloudfront", region_name="us-east-1")
        distribution_id = create_distribution(cloudfront, f"test-{uuid.uuid4().hex}")
        store = S3CatalogueStore(BUCKET, s3, cloudfront, distribution_id, cache_seconds=60)
        yield Site(s3, cloudfront, distribution_id, store, provider)


@pytest.fixture
def published(site: Site) -> Site:
    """A site where a good games_config has been published once."""
    site.provider.serve(encode(games_config()))
    result = site.sync()
    assert result.changed == [GAMES_CONFIG_KEY, LOBBY_KEY]
    return site


# --- first publish -----------------------------------------------------------------------------------------------


def test_first_publish_writes_both_files_and_one_invalidation(site: Site) -> None:
    raw = encode(games_config())
    site.provider.serve(raw)

    result = site.sync()

    assert result.changed == [GAMES_CONFIG_KEY, LOBBY_KEY]
    assert result.games == 4
    assert site.provider.requests == ["/games_config.json"]
    assert site.keys() == sorted([GAMES_CONFIG_KEY, LOBBY_KEY, SYNC_STATE_KEY])
    # The state records what CloudFront was told about, written only after the invalidation succeeded.
    assert json.loads(site.body(SYNC_STATE_KEY)) == {
        GAMES_CONFIG_KEY: hashlib.sha256(raw).hexdigest(),
        LOBBY_KEY: hashlib.sha256(site.body(LOBBY_KEY)).hexdigest(),
    }

    # games_config.json: the provider's bytes, verbatim (unknown fields, indentation, non-ASCII and all).
    assert site.body(GAMES_CONFIG_KEY) == raw
    lobby_raw = site.body(LOBBY_KEY)
    for key, content in ((GAMES_CONFIG_KEY, raw), (LOBBY_KEY, lobby_raw)):
        head = site.head(key)
        assert head["Metadata"] == {DIGEST_METADATA: hashlib.sha256(content).hexdigest()}
        assert head["ContentType"] == "application/json"
        assert head["CacheControl"] == "public, max-age=60"
        assert len(site.versions(key)) == 1

    # lobby.json: grouped by type, names and thumbnails under the asset path.
    assert json.loads(lobby_raw) == EXPECTED_LOBBY
    assert "Жемчужина океана".encode() in lobby_raw  # UTF-8, not \u escapes

    # One invalidation naming exactly the two files.
    assert site.invalidations() == [result.invalidation_id]
    assert sorted(site.invalidated_paths(result.invalidation_id)) == ["/games_config.json", "/lobby.json"]


def test_unknown_fields_are_kept_verbatim(site: Site) -> None:
    site.provider.serve(encode(games_config()))
    site.sync()
    published = json.loads(site.body(GAMES_CONFIG_KEY))
    assert published == games_config()
    assert published["provider_build"] == {"id": 42, "note": "an unknown top-level field"}
    assert published["applications"]["b_1009"]["release_channel"] == "kept-as-unknown-field"
    assert published["applications"]["b_1009"]["html5"]["extra_html5"] == [1, 2]
    assert published["applications"]["a_ec"]["name"] == [{"en": "Emerald City"}]  # not normalised to a mapping


def test_the_stand_in_providers_file_is_valid(site: Site) -> None:
    raw = (STATIC_CONFIG / "games_config.json").read_bytes()
    site.provider.serve(raw)
    result = site.sync()
    assert result.games == 4
    assert site.body(GAMES_CONFIG_KEY) == raw
    lobby = json.loads(site.body(LOBBY_KEY))
    assert {game["id"]: game["thumbnail"] for games in lobby["types"].values() for game in games} == {
        "a_op": "/media/thumb/a_op.svg",
        "a_ec": "/media/thumb/a_ec.svg",
        "e_keno": "/media/thumb/e_keno.svg",
        "b_1009": "/media/thumb/b_1009.svg",
    }


def test_path_to_storage_shapes_the_thumbnails(site: Site) -> None:
    site.provider.serve(encode(games_config()))
    sync_games_config(site.settings(path_to_storage="/assets/games/"), site.store)
    lobby = json.loads(site.body(LOBBY_KEY))
    assert lobby["types"]["slot"][0]["thumbnail"] == "/assets/games/thumb/a_ec.png"


# --- publish only what changed -------------------------------------------------------------------------------------


def test_unchanged_file_writes_nothing_and_invalidates_nothing(published: Site) -> None:
    before = published.snapshot()

    result = published.sync()

    assert result.changed == []
    assert result.invalidation_id is None
    assert result.games == 4
    assert published.snapshot() == before
    assert published.provider.requests == ["/games_config.json", "/games_config.json"]


def test_renamed_game_rewrites_both_files_with_one_invalidation(published: Site) -> None:
    before = published.snapshot()
    renamed = games_config()
    renamed["applications"]["a_op"]["name"]["en"] = "Ocean Pearl Deluxe"
    raw = encode(renamed)
    published.provider.serve(raw)

    result = published.sync()

    assert result.changed == [GAMES_CONFIG_KEY, LOBBY_KEY]
    for key in (GAMES_CONFIG_KEY, LOBBY_KEY):
        assert len(published.versions(key)) == 2
        content = published.body(key)
        assert content != before["bodies"][key]
        assert published.head(key)["Metadata"][DIGEST_METADATA] == hashlib.sha256(content).hexdigest()
    assert published.body(GAMES_CONFIG_KEY) == raw
    slots = json.loads(published.body(LOBBY_KEY))["types"]["slot"]
    assert [(game["id"], game["name"]) for game in slots] == [("a_ec", "Emerald City"), ("a_op", "Ocean Pearl Deluxe")]

    invalidations = published.invalidations()
    assert len(invalidations) == len(before["invalidations"]) + 1
    assert result.invalidation_id in invalidations
    assert result.invalidation_id not in before["invalidations"]
    assert sorted(published.invalidated_paths(result.invalidation_id)) == ["/games_config.json", "/lobby.json"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda doc: doc["provider_build"].update(id=43), id="unknown-top-level-field"),
        pytest.param(
            lambda doc: doc["applications"]["b_1009"].update(release_channel="beta"), id="unknown-application-field"
        ),
        pytest.param(lambda doc: doc["applications"]["a_op"].update(lines="10"), id="field-the-lobby-does-not-show"),
    ],
)
def test_change_outside_the_lobby_republishes_only_games_config(published: Site, change: Any) -> None:
    before = published.snapshot()
    document = copy.deepcopy(games_config())
    change(document)
    raw = encode(document)
    published.provider.serve(raw)

    result = published.sync()

    assert result.changed == [GAMES_CONFIG_KEY]
    assert published.body(GAMES_CONFIG_KEY) == raw
    assert len(published.versions(GAMES_CONFIG_KEY)) == 2
    assert published.versions(LOBBY_KEY) == before["versions"][LOBBY_KEY]
    assert published.body(LOBBY_KEY) == before["bodies"][LOBBY_KEY]
    assert published.head(LOBBY_KEY)["ETag"] == before["etags"][LOBBY_KEY]
    assert len(published.invalidations()) == len(before["invalidations"]) + 1
    assert published.invalidated_paths(result.invalidation_id) == ["/games_config.json"]


def test_whitespace_only_change_is_a_new_games_config_but_not_a_new_lobby(published: Site) -> None:
    published.provider.serve(json.dumps(games_config(), ensure_ascii=False).encode())
    result = published.sync()
    assert result.changed == [GAMES_CONFIG_KEY]
    assert published.invalidated_paths(result.invalidation_id) == ["/games_config.json"]


def test_a_file_at_the_size_limit_is_accepted(site: Site) -> None:
    raw = encode(games_config())
    raw = raw[:-1] + b" " * (MAX_CONFIG_BYTES - len(raw)) + raw[-1:]
    assert len(raw) == MAX_CONFIG_BYTES
    site.provider.serve(raw)
    assert site.sync().changed == [GAMES_CONFIG_KEY, LOBBY_KEY]
    assert site.body(GAMES_CONFIG_KEY) == raw


# --- failures keep the last good copy ------------------------------------------------------------------------------


def _without(path: str) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _setting(path: str, value: Any) -> Any:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _schema_error(change: Any) -> bytes:
    document = games_config()
    change(document)
    return encode(document)


def _oversized() -> bytes:
    raw = encode(games_config())
    return raw[:-1] + b" " * (MAX_CONFIG_BYTES + 1 - len(raw)) + raw[-1:]


BAD_FETCHES = [
    pytest.param(Reply(200, b'{"api": "x", "applications": {'), id="invalid-json"),
    pytest.param(Reply(200, b"<html>maintenance</html>", content_type="text/html"), id="html-instead-of-json"),
    pytest.param(Reply(200, b""), id="empty-body"),
    pytest.param(Reply(200, b"[]"), id="json-array"),
    pytest.param(Reply(200, _schema_error(_without("applications"))), id="missing-applications"),
    pytest.param(Reply(200, _schema_error(_setting("applications", {}))), id="no-applications"),
    pytest.param(Reply(200, _schema_error(_without("api"))), id="missing-api"),
    pytest.param(Reply(200, _schema_error(_setting("applications.a_op.type", "lottery"))), id="bad-type-value"),
    pytest.param(Reply(200, _schema_error(_without("applications.e_keno.preview"))), id="missing-preview"),
    pytest.param(Reply(200, _schema_error(_setting("applications.a_op.html5.app", []))), id="empty-html5-app"),
    pytest.param(
        Reply(200, _schema_error(lambda doc: doc["applications"].update({"a op<x>": doc["applications"]["a_op"]}))),
        id="bad-application-id",
    ),
    pytest.param(Reply(500, b"oops"), id="http-500"),
    pytest.param(Reply(503, b""), id="http-503"),
    pytest.param(Reply(404, b"{}"), id="http-404"),
    pytest.param(Reply(200, encode(games_config()), delay=1.5), id="timeout"),
    pytest.param(Reply(200, _oversized()), id="oversized"),
]


@pytest.mark.parametrize("reply", BAD_FETCHES)
def test_failed_or_invalid_fetch_keeps_the_last_good_copy(published: Site, reply: Reply) -> None:
    before = published.snapshot()
    published.provider.replies["/games_config.json"] = reply

    with pytest.raises(CatalogueError):
        published.sync()

    assert published.snapshot() == before
    assert published.body(GAMES_CONFIG_KEY) == encode(games_config())


@pytest.mark.parametrize("reply", BAD_FETCHES[:1] + BAD_FETCHES[4:5] + BAD_FETCHES[11:12])
def test_failed_first_fetch_publishes_nothing(site: Site, reply: Reply) -> None:
    site.provider.replies["/games_config.json"] = reply
    with pytest.raises(CatalogueError):
        site.sync()
    assert site.keys() == []
    assert site.invalidations() == []


def test_timeout_is_bounded_by_fetch_timeout_seconds(published: Site) -> None:
    import time

    published.provider.serve(encode(games_config()), delay=5.0)
    started = time.monotonic()
    with pytest.raises(CatalogueError, match="fetch failed"):
        published.sync()
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.test/games_config.json", "games_config.json"])
def test_only_http_urls_are_fetched(site: Site, url: str) -> None:
    with pytest.raises(CatalogueError, match="http"):
        sync_games_config(site.settings(), site.store, url)
    assert site.keys() == []


def test_no_url_is_an_error(site: Site) -> None:
    with pytest.raises(CatalogueError, match="no games_config URL"):
        sync_games_config(site.settings(games_config_url=None), site.store)


def test_a_good_file_after_a_failure_publishes_again(published: Site) -> None:
    published.provider.serve(b"not json")
    with pytest.raises(CatalogueError):
        published.sync()
    renamed = games_config()
    renamed["applications"]["e_keno"]["name"]["en"] = "Turbo Keno 2"
    published.provider.serve(encode(renamed))
    result = published.sync()
    assert result.changed == [GAMES_CONFIG_KEY, LOBBY_KEY]
    assert len(published.invalidations()) == 2


# --- a store that fails half-way ---------------------------------------------------------------------------------


class FailingOnce:
    """A boto3 client whose `operation` raises once (a throttled or unavailable AWS API), then works again."""

    def __init__(self, real: Any, operation: str, key: str | None = None) -> None:
        self.real = real
        self.operation = operation
        self.key = key
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if name != self.operation:
            return method

        def failing(**kwargs: Any) -> Any:
            if not self.failed and (self.key is None or kwargs.get("Key") == self.key):
                self.failed = True
                raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, name)
            return method(**kwargs)

        return failing


def _renamed() -> bytes:
    renamed = games_config()
    renamed["applications"]["a_op"]["name"]["en"] = "Ocean Pearl II"
    return encode(renamed)


def test_failed_invalidation_fails_the_run(published: Site) -> None:
    published.store.cloudfront = FailingOnce(published.cloudfront, "create_invalidation")  # type: ignore[assignment]
    published.provider.serve(_renamed())
    with pytest.raises(StoreUnavailable):
        published.sync()


def test_invalidation_is_retried_after_a_failed_run(published: Site) -> None:
    published.store.cloudfront = FailingOnce(published.cloudfront, "create_invalidation")  # type: ignore[assignment]
    published.provider.serve(_renamed())
    with pytest.raises(StoreUnavailable):
        published.sync()
    before = len(published.invalidations())

    result = published.sync()  # same file, CloudFront answers again

    assert len(published.invalidations()) == before + 1
    assert result.invalidation_id is not None
    assert sorted(published.invalidated_paths(result.invalidation_id)) == ["/games_config.json", "/lobby.json"]


def test_partial_publish_invalidates_both_files_on_the_next_run(published: Site) -> None:
    published.store.s3 = FailingOnce(published.s3, "put_object", key=LOBBY_KEY)  # type: ignore[assignment]
    published.provider.serve(_renamed())
    with pytest.raises(StoreUnavailable):
        published.sync()
    assert published.body(GAMES_CONFIG_KEY) == _renamed()  # written before the failure

    result = published.sync()

    assert result.invalidation_id is not None
    assert sorted(published.invalidated_paths(result.invalidation_id)) == ["/games_config.json", "/lobby.json"]


# --- a provider that does not even speak HTTP properly -----------------------------------------------------------


class RawProvider:
    """A TCP server that answers every connection with fixed bytes (a broken proxy, a half-sent reply)."""

    def __init__(self) -> None:
        self.payload = b""
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raw-provider", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}/games_config.json"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    connection.recv(65536)
                    connection.sendall(self.payload)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()


@pytest.fixture
def raw_provider() -> Iterator[RawProvider]:
    provider = RawProvider()
    yield provider
    provider.close()


MALFORMED_REPLIES = [
    pytest.param(b"HELLO WORLD\r\n\r\n", id="garbage-status-line"),
    pytest.param(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{"api":', id="truncated-chunked-body"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", id="bad-chunk-size"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n{}", id="header-line-too-long"),
]


@pytest.mark.parametrize("payload", MALFORMED_REPLIES)
def test_malformed_http_reply_never_replaces_the_last_good_copy(
    published: Site, raw_provider: RawProvider, payload: bytes
) -> None:
    before = published.snapshot()
    raw_provider.payload = payload
    with pytest.raises(CatalogueError):
        sync_games_config(published.settings(), published.store, raw_provider.url)
    assert published.snapshot() == before


@pytest.mark.parametrize("payload", MALFORMED_REPLIES)
def test_malformed_http_reply_is_a_catalogue_error(site: Site, raw_provider: RawProvider, payload: bytes) -> None:
    # Regression: http.client.HTTPException (BadStatusLine, IncompleteRead, LineTooLong) used to escape uncounted.
    raw_provider.payload = payload
    with pytest.raises(CatalogueError, match="fetch failed"):
        sync_games_config(site.settings(), site.store, raw_provider.url)


# --- the scheduled Lambda ------------------------------------------------------------------------------------------


def emf_metrics(out: str) -> dict[str, Any]:
    """Metric name -> value, from the EMF lines Powertools printed."""
    found: dict[str, Any] = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "Wallet"  # POWERTOOLS_METRICS_NAMESPACE, as the template sets it
            for metric in directive["Metrics"]:
                found[metric["Name"]] = document[metric["Name"]]
    return found


@pytest.fixture
def handler_module(
    site: Site, monkeypatch: pytest.MonkeyPatch, boto_session: boto3.session.Session, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto_session)
    monkeypatch.setenv("WALLET_CATALOGUE_BUCKET", BUCKET)
    monkeypatch.setenv("WALLET_DISTRIBUTION_ID", site.distribution_id)
    monkeypatch.setenv("WALLET_GAMES_CONFIG_URL", site.provider.url)
    monkeypatch.setenv("WALLET_FETCH_TIMEOUT_SECONDS", str(FETCH_TIMEOUT))
    monkeypatch.setenv("WALLET_PATH_TO_STORAGE", "/media")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_CLOUDFRONT"):
        monkeypatch.delenv(name, raising=False)
    with lambda_function("games_sync") as (module, _):
        capsys.readouterr()
        yield module


def test_handler_success_publishes_and_counts(
    site: Site, handler_module: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    site.provider.serve(encode(games_config()))

    summary = handler_module.lambda_handler({"source": "aws.events"}, LambdaContext())

    assert summary["changed"] == [GAMES_CONFIG_KEY, LOBBY_KEY]
    assert summary["games"] == 4
    assert site.invalidations() == [summary["invalidation"]]
    assert site.body(GAMES_CONFIG_KEY) == encode(games_config())
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics.get("GamesSyncChangedFiles") in (2, 2.0, [2], [2.0])
    assert "GamesSyncFailures" not in metrics


def test_handler_failure_raises_and_counts(site: Site, handler_module: Any, capsys: pytest.CaptureFixture[str]) -> None:
    site.provider.serve(encode(games_config()))
    handler_module.lambda_handler({}, LambdaContext())
    before = site.snapshot()
    capsys.readouterr()
    site.provider.serve(b"oops", status=500)

    with pytest.raises(CatalogueError, match="HTTP 500"):
        handler_module.lambda_handler({}, LambdaContext())

    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics.get("GamesSyncFailures") in (1, 1.0, [1], [1.0])
    assert site.snapshot() == before


def test_handler_counts_a_truncated_reply_as_a_failure(
    site: Site,
    handler_module: Any,
    raw_provider: RawProvider,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw_provider.payload = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{"
    monkeypatch.setenv("WALLET_GAMES_CONFIG_URL", raw_provider.url)  # read on the instance's first run
    with pytest.raises(CatalogueError, match="fetch failed"):
        handler_module.lambda_handler({}, LambdaContext())
    assert "GamesSyncFailures" in emf_metrics(capsys.readouterr().out)
