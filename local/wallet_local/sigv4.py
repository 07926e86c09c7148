"""What API Gateway's AWS_IAM authorization does for the operator routes, done by `wallet local`: check a request's
SigV4 signature against the local credentials, so an unsigned or wrongly signed request gets 403 here as it would in
AWS, and a client's code is the same in both places.

The canonical request is rebuilt with botocore's own signer (the headers the request says it signed, its X-Amz-Date)
and the signature compared in constant time. Not checked here, as API Gateway would: IAM policies (there is one
local principal, allowed everything).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SERVICE = "execute-api"
MAX_SKEW_SECONDS = 5 * 60  # API Gateway refuses a signature more than 5 minutes from its clock
LOCAL_ACCESS_KEY = "local"
LOCAL_SECRET_KEY = "local"  # noqa: S105 - the documented local credentials, not a secret
LOCAL_PRINCIPAL_ARN = "arn:aws:iam::000000000000:user/local"

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


class SignatureRefused(Exception):
    """Why a request's signature is not accepted (API Gateway answers 403 without saying as much)."""


@dataclass(frozen=True)
class Caller:
    access_key: str
    user_arn: str


@dataclass(frozen=True)
class LocalCredentials:
    access_key: str = LOCAL_ACCESS_KEY
    secret_key: str = LOCAL_SECRET_KEY
    region: str = "us-east-1"
    user_arn: str = LOCAL_PRINCIPAL_ARN


def verify(
    credentials: LocalCredentials,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime | None = None,
) -> Caller:
    """The caller of a correctly signed request; SignatureRefused otherwise. `url` is what the client asked for:
    scheme, Host header and the path with its query string as sent."""
    lower = {name.lower(): value for name, value in headers.items()}
    authorization = lower.get("authorization", "")
    found = _AUTHORIZATION.fullmatch(authorization.strip())
    if found is None:
        raise SignatureRefused("missing or malformed Authorization header")
    if found["key"] != credentials.access_key:
        raise SignatureRefused("unknown access key")
    if found["service"] != SERVICE or found["region"] != credentials.region:
        raise SignatureRefused(f"credential scope must be <date>/{credentials.region}/{SERVICE}/aws4_request")
    amz_date = lower.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRefused("missing or malformed X-Amz-Date") from None
    if amz_date[:8] != found["date"]:
        raise SignatureRefused("X-Amz-Date and the credential scope's date differ")
    if abs(((now or datetime.now(UTC)) - signed_at).total_seconds()) > MAX_SKEW_SECONDS:
        raise SignatureRefused("signature expired or from the future")
    signed_names = found["signed"].split(";")
    if "host" not in signed_names:
        raise SignatureRefused("the Host header must be signed")
    missing = [name for name in signed_names if name not in lower]
    if missing:
        raise SignatureRefused(f"signed headers missing from the request: {', '.join(missing)}")
    claimed_hash = lower.get("x-amz-content-sha256")
    if claimed_hash is not None and claimed_hash != hashlib.sha256(body).hexdigest():
        raise SignatureRefused("X-Amz-Content-SHA256 does not match the body")
    # Exactly the headers the client signed, as it sent them.
    request = AWSRequest(method=method, url=url, data=body, headers={name: lower[name] for name in signed_names})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(credentials.access_key, credentials.secret_key), SERVICE, credentials.region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, found["signature"]):
        raise SignatureRefused("signature does not match")
    return Caller(credentials.access_key, credentials.user_arn)
