"""The local stand-in for API Gateway's AWS_IAM authorization (wallet_local.sigv4): a request signed by the operator
API's client (wallet.operator.client.OperatorClient) verifies; anything tampered with, mis-scoped, stale or unsigned
is refused, and through the local front an unsigned request gets 403 and never reaches the function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import serving
from wallet.operator.client import ApiError, OperatorClient
from wallet_local.dynamodb_local import free_port
from wallet_local.front import LocalFront
from wallet_local.sigv4 import (
    LOCAL_PRINCIPAL_ARN,
    MAX_SKEW_SECONDS,
    Caller,
    LocalCredentials,
    SignatureRefused,
    verify,
)
from wallet_local.stack import OPERATOR_ROUTES

BASE = "http://127.0.0.1:8080"
LOCAL = LocalCredentials()
KEYS = Credentials(LOCAL.access_key, LOCAL.secret_key)
DEPOSIT = "/operator/players/p1/deposits"
HISTORY = "/operator/players/p1/history"


@dataclass
class Sent:
    """A request as it reaches the server: what verify() is given."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    signed_at: datetime  # when the client signed it (the server's clock is set to that, unless a test says)

    def verify(self, credentials: LocalCredentials = LOCAL, now: datetime | None = None) -> Caller:
        return verify(credentials, self.method, self.url, self.headers, self.body, now=now or self.signed_at)


def _sent(request: AWSRequest) -> Sent:
    headers = dict(request.headers.items())
    # What the HTTP client adds on the way (urllib, requests): the Host header, which botocore signed from the URL.
    headers["Host"] = urlsplit(request.url).netloc
    body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
    signed_at = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return Sent(request.method, request.url, headers, body, signed_at)


def client_request(
    method: str = "POST",
    path: str = DEPOSIT,
    body: Any = None,
    query: dict[str, Any] | None = None,
    *,
    credentials: Credentials = KEYS,
    region: str = LOCAL.region,
) -> Sent:
    if body is None and method == "POST":
        body = {"amount": "12.50", "ref": "pay-1"}
    client = OperatorClient(BASE, region=region, credentials=credentials)
    return _sent(client.signed_request(method, path, body, query))


def refused(sent: Sent, reason: str, **kwargs: Any) -> None:
    with pytest.raises(SignatureRefused, match=reason):
        sent.verify(**kwargs)


# --- accepted -------------------------------------------------------------------------------------------------------


def test_a_request_signed_by_the_client_verifies() -> None:
    assert client_request().verify() == Caller("local", LOCAL_PRINCIPAL_ARN)


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", HISTORY, {"limit": 5, "cursor": "eyJwayI6ICJ4In0"}),
        ("GET", HISTORY, {"cursor": "a b/c=+&d"}),  # characters the query must encode
        ("GET", "/operator/players/p1", None),
        ("DELETE", "/operator/players/p1/sessions", None),
        ("PATCH", "/operator/players/p1", None),
        ("GET", "/operator/rounds/R%2F1", None),
    ],
)
def test_every_kind_of_request_verifies(method: str, path: str, query: dict[str, Any] | None) -> None:
    body = {"limits": {"loss": {"day": "12.50"}}} if method == "PATCH" else None
    assert client_request(method, path, body, query).verify() == Caller("local", LOCAL_PRINCIPAL_ARN)


def test_the_callers_own_credentials_and_principal() -> None:
    mine = LocalCredentials("AKIAEXAMPLE", "s3cr3t", "eu-west-1", "arn:aws:iam::111122223333:role/ops")
    sent = client_request(credentials=Credentials("AKIAEXAMPLE", "s3cr3t"), region="eu-west-1")
    assert sent.verify(mine) == Caller("AKIAEXAMPLE", "arn:aws:iam::111122223333:role/ops")
    refused(sent, "unknown access key")  # not the default local credentials


def test_a_header_name_in_any_case_verifies() -> None:
    sent = client_request()
    sent.headers = {name.lower(): value for name, value in sent.headers.items()}
    assert sent.verify().user_arn == LOCAL_PRINCIPAL_ARN


@pytest.mark.parametrize("seconds", [0, 1, MAX_SKEW_SECONDS, -MAX_SKEW_SECONDS])
def test_a_clock_skew_within_five_minutes_verifies(seconds: int) -> None:
    sent = client_request()
    assert sent.verify(now=sent.signed_at + timedelta(seconds=seconds)).access_key == "local"


def test_a_body_hash_that_matches_verifies() -> None:
    request = AWSRequest(
        method="POST",
        url=f"{BASE}{DEPOSIT}",
        data=b'{"amount": 1, "ref": "r"}',
        headers={"Content-Type": "application/json"},
    )
    import hashlib

    request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(request.data).hexdigest()
    SigV4Auth(KEYS.get_frozen_credentials(), "execute-api", LOCAL.region).add_auth(request)
    assert _sent(request).verify().access_key == "local"


# --- refused ---------------------------------------------------------------------------------------------------------


def test_no_authorization_header() -> None:
    sent = client_request()
    del sent.headers["Authorization"]
    refused(sent, "missing or malformed Authorization")


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Basic bG9jYWw6bG9jYWw=",
        "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request",
        "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host, "
        "Signature=not-hex",
    ],
)
def test_a_malformed_authorization_header(authorization: str) -> None:
    sent = client_request()
    sent.headers["Authorization"] = authorization
    refused(sent, "missing or malformed Authorization")


def test_a_wrong_access_key() -> None:
    refused(client_request(credentials=Credentials("someone-else", LOCAL.secret_key)), "unknown access key")


def test_a_wrong_secret() -> None:
    refused(client_request(credentials=Credentials(LOCAL.access_key, "not-the-secret")), "signature does not match")


def test_a_wrong_region() -> None:
    refused(client_request(region="eu-west-1"), "credential scope")


def test_a_wrong_service() -> None:
    request = AWSRequest(method="GET", url=f"{BASE}/operator/players/p1", data=b"", headers={})
    SigV4Auth(KEYS.get_frozen_credentials(), "s3", LOCAL.region).add_auth(request)
    refused(_sent(request), "credential scope")


def test_a_tampered_body() -> None:
    sent = client_request()
    sent.body = sent.body.replace(b"12.50", b"1250")
    refused(sent, "signature does not match")


def test_a_body_added_to_a_request_signed_without_one() -> None:
    sent = client_request("GET", "/operator/players/p1")
    sent.body = b'{"x": 1}'
    refused(sent, "signature does not match")


def test_a_body_hash_that_does_not_match_the_body() -> None:
    sent = client_request()
    sent.headers["X-Amz-Content-SHA256"] = "0" * 64
    refused(sent, "X-Amz-Content-SHA256 does not match")


def test_a_tampered_path() -> None:
    sent = client_request()
    sent.url = sent.url.replace("/players/p1/", "/players/p2/")
    refused(sent, "signature does not match")


@pytest.mark.parametrize(
    ("query", "tampered"),
    [
        ({"limit": 5}, "?limit=500"),
        ({"limit": 5}, "?limit=5&cursor=x"),
        ({"limit": 5, "cursor": "abc"}, "?limit=5"),
        (None, "?limit=1000"),
    ],
)
def test_a_tampered_query(query: dict[str, Any] | None, tampered: str) -> None:
    sent = client_request("GET", HISTORY, query=query)
    sent.url = sent.url.split("?")[0] + tampered
    refused(sent, "signature does not match")


def test_a_tampered_method() -> None:
    sent = client_request()
    sent.method = "PUT"
    refused(sent, "signature does not match")


def test_a_tampered_host() -> None:
    sent = client_request()
    sent.headers["Host"] = "evil.example.com:8080"
    refused(sent, "signature does not match")


def test_a_tampered_signed_header() -> None:
    sent = client_request()
    sent.headers["Content-Type"] = "text/plain"
    refused(sent, "signature does not match")


@pytest.mark.parametrize("header", ["Content-Type", "Host", "X-Amz-Date"])
def test_a_signed_header_missing(header: str) -> None:
    sent = client_request()
    del sent.headers[header]
    # Without its X-Amz-Date the request has no signing time at all.
    refused(
        sent, "X-Amz-Date" if header == "X-Amz-Date" else f"signed headers missing from the request: {header.lower()}"
    )


@pytest.mark.parametrize("seconds", [MAX_SKEW_SECONDS + 1, -(MAX_SKEW_SECONDS + 1), 86_400, -86_400])
def test_an_x_amz_date_skew_over_five_minutes(seconds: int) -> None:
    sent = client_request()
    refused(sent, "expired or from the future", now=sent.signed_at + timedelta(seconds=seconds))


def test_an_x_amz_date_that_is_malformed() -> None:
    sent = client_request()
    sent.headers["X-Amz-Date"] = "yesterday"
    refused(sent, "malformed X-Amz-Date")


def test_an_x_amz_date_that_differs_from_the_scope_date() -> None:
    sent = client_request()
    day = sent.signed_at.strftime("%Y%m%d")
    other_day = (sent.signed_at - timedelta(days=1)).strftime("%Y%m%d")
    sent.headers["Authorization"] = sent.headers["Authorization"].replace(f"/{day}/", f"/{other_day}/")
    refused(sent, "X-Amz-Date and the credential scope's date differ")


def test_an_x_amz_date_changed_after_signing() -> None:
    """Within the same day and the skew (so only the signature can tell)."""
    sent = client_request()
    later = sent.signed_at + timedelta(seconds=1)
    if later.date() != sent.signed_at.date():  # pragma: no cover - signed in the last second of a UTC day
        later = sent.signed_at - timedelta(seconds=1)
    sent.headers["X-Amz-Date"] = later.strftime("%Y%m%dT%H%M%SZ")
    refused(sent, "signature does not match")


class _WithoutHost(SigV4Auth):
    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        del headers["host"]
        return headers


def test_a_request_whose_host_is_not_signed() -> None:
    """A genuine signature over everything but the Host header: it could be replayed against another host."""
    request = AWSRequest(
        method="POST", url=f"{BASE}{DEPOSIT}", data=b"{}", headers={"Content-Type": "application/json"}
    )
    _WithoutHost(KEYS.get_frozen_credentials(), "execute-api", LOCAL.region).add_auth(request)
    sent = _sent(request)
    assert "host" not in sent.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    refused(sent, "the Host header must be signed")


# --- through the local front ------------------------------------------------------------------------------------------


class RecordingInstances:
    """Stands in for the front's Lambda instances: records what reaches the function."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append((function, event))
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"reached": true}'}

    def shutdown(self) -> None:
        pass


@dataclass
class Front:
    url: str
    reached: RecordingInstances


@pytest.fixture
def front() -> Iterator[Front]:
    server = LocalFront(("127.0.0.1", free_port()), OPERATOR_ROUTES, max_instances=1)
    server.instances.shutdown()  # no process was started: nothing was submitted yet
    reached = RecordingInstances()
    server.instances = reached  # type: ignore[assignment]
    with serving(server):
        yield Front(server.url, reached)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/operator/players", {"player_id": "p9", "currency": "FUN"}),
        ("GET", "/operator/players/p1", None),
        ("POST", DEPOSIT, {"amount": 1, "ref": "r"}),
        ("GET", "/operator/openapi.json", None),
    ],
)
def test_an_unsigned_request_gets_403_and_never_reaches_the_function(
    front: Front, method: str, path: str, body: Any
) -> None:
    reply = requests.request(method, front.url + path, json=body, timeout=10)
    assert reply.status_code == 403
    assert reply.json()["message"].startswith("Forbidden")
    assert front.reached.events == []


def test_a_wrongly_signed_request_gets_403_and_never_reaches_the_function(front: Front) -> None:
    client = OperatorClient(front.url, region=LOCAL.region, credentials=Credentials("local", "wrong"))
    with pytest.raises(ApiError) as refusal:
        client.call("POST", DEPOSIT, {"amount": 1, "ref": "r"})
    assert refusal.value.status == 403
    assert "signature does not match" in refusal.value.message
    assert front.reached.events == []


def test_a_replayed_signature_on_another_path_gets_403(front: Front) -> None:
    client = OperatorClient(front.url, region=LOCAL.region, credentials=KEYS)
    signed = client.signed_request("POST", DEPOSIT, {"amount": 1, "ref": "r"})
    headers = dict(signed.headers.items())
    reply = requests.post(front.url + "/operator/players/p2/deposits", data=signed.body, headers=headers, timeout=10)
    assert reply.status_code == 403
    assert front.reached.events == []


def test_a_signed_request_reaches_the_function_with_the_caller(front: Front) -> None:
    client = OperatorClient(front.url, region=LOCAL.region, credentials=KEYS)
    reply = client.call("POST", DEPOSIT, {"amount": "12.50", "ref": "r"}, {"note": "x y"})
    assert (reply.status, reply.body) == (200, {"reached": True})
    [(function, event)] = front.reached.events
    assert function == "operator"
    assert (event["resource"], event["path"], event["httpMethod"]) == (
        "/operator/players/{player_id}/deposits",
        DEPOSIT,
        "POST",
    )
    assert event["pathParameters"] == {"player_id": "p1"}
    assert event["queryStringParameters"] == {"note": "x y"}
    assert json.loads(event["body"]) == {"amount": "12.50", "ref": "r"}
    identity = event["requestContext"]["identity"]
    assert (identity["userArn"], identity["accessKey"], identity["caller"]) == (LOCAL_PRINCIPAL_ARN, "local", "local")


def test_an_unknown_route_is_api_gateways_403(front: Front) -> None:
    reply = requests.get(front.url + "/operator/nothing", timeout=10)
    assert reply.status_code == 403
    assert reply.json() == {"message": "Missing Authentication Token"}
    assert front.reached.events == []


def test_the_real_function_behind_the_front(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator function in a Lambda-like instance (a spawned process): a signed request for the OpenAPI document
    (which needs no table) is answered by it; the same request unsigned is not."""
    monkeypatch.setenv("WALLET_TABLE", "wallet-unused")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with serving(LocalFront(("127.0.0.1", free_port()), OPERATOR_ROUTES, max_instances=1)) as server:
        unsigned = requests.get(server.url + "/operator/openapi.json", timeout=60)
        assert unsigned.status_code == 403
        reply = OperatorClient(server.url, region=LOCAL.region, credentials=KEYS, timeout=60).call(
            "GET", "/operator/openapi.json"
        )
        assert reply.status == 200
        assert "/operator/players/{player_id}/deposits" in reply.body["paths"]
