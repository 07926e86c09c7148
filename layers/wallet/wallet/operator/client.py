"""A small client for the operator API, signed with SigV4 (service `execute-api`) from botocore's credential chain:
the same code calls API Gateway in AWS and `wallet local` on this machine (which checks the signature against its
local credentials). A site's backend can use it as it is, or any SigV4 signer.

    client = OperatorClient("http://127.0.0.1:8080")          # or the stack's OperatorApiUrl
    client.call("POST", "/operator/players", {"player_id": "p1", "currency": "EUR"})
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from wallet.money.ledger import json_ready
from wallet.operator.api import parse_json

SERVICE = "execute-api"
DEFAULT_TIMEOUT_SECONDS = 10.0


class ApiError(Exception):
    """The API refused the request: its HTTP status and the {"error": {"code", "message"}} body."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body or {}


@dataclass(frozen=True)
class ApiReply:
    status: int
    body: Any  # the parsed JSON (numbers with a fraction as Decimal), or None for 204


class OperatorClient:
    def __init__(
        self,
        base_url: str,
        *,
        region: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        session = botocore.session.get_session()
        self.region = region or session.get_config_variable("region") or "us-east-1"
        found = credentials or session.get_credentials()
        if found is None:
            raise ValueError("no AWS credentials found (botocore's chain: environment, profile, role)")
        self.credentials = found
        self.timeout = timeout

    def signed_request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> AWSRequest:
        """The request, signed: what `call` sends (and what `wallet api --print` shows)."""
        url = f"{self.base_url}{path}"
        wanted = {key: str(value) for key, value in (query or {}).items() if value is not None}
        if wanted:
            url += f"?{urlencode(wanted)}"
        data = json.dumps(json_ready(body)).encode("utf-8") if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        # Frozen credentials: a role's temporary ones are refreshed by botocore between calls, not during a signing.
        SigV4Auth(self.credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        return request

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> ApiReply:
        """Send one signed request. A 2xx reply comes back; anything else raises ApiError."""
        signed = self.signed_request(method, path, body, query)
        body_bytes = signed.body if isinstance(signed.body, bytes) else None
        request = urllib.request.Request(  # noqa: S310 - the URL's scheme is checked in __init__
            str(signed.url), data=body_bytes or None, method=method, headers=dict(signed.headers.items())
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return ApiReply(response.status, _parsed(response.read()))
        except urllib.error.HTTPError as exc:
            parsed = _parsed(exc.read())
            body = parsed if isinstance(parsed, dict) else {}
            # Our {"error": {"code", "message"}}, or API Gateway's own {"message"} (a 403 from IAM, a 429).
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            message = error.get("message") or body.get("message") or (parsed if isinstance(parsed, str) else exc.reason)
            raise ApiError(exc.code, str(error.get("code", "http_error")), str(message), body) from None


def _parsed(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return parse_json(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


__all__ = ["ApiError", "ApiReply", "OperatorClient"]
