"""The provider's request signature: md5 applied 45 times to "do::{session}::{trx_id}::{salt}"."""

from __future__ import annotations

import hashlib
import hmac

SIGN_ROUNDS = 45


def compute_sign(session: str, trx_id: str, salt: str) -> str:
    text = f"do::{session}::{trx_id}::{salt}"
    for _ in range(SIGN_ROUNDS):
        # Each round hashes the previous lowercase hex digest, exactly as the provider's PHP md5() loop does.
        text = hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()
    return text


def sign_matches(received: str, session: str, trx_id: str, salt: str) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a forged sign was right."""
    expected = compute_sign(session, trx_id, salt)
    return hmac.compare_digest(received.lower().encode("utf-8"), expected.encode("ascii"))
