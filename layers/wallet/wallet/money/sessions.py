"""Game sessions: a random public token bound to one player, stored only as a keyed hash.

The token is "<player_id>.<secret>" so the billing finds the account with one read: the player id is public anyway
(the provider sees it), the 256-bit secret is what proves the session. The account keeps only HMAC(session_key, token)
and the expiry, so a copy of the table does not hand out live sessions, and one hash per account means one live
session per player: issuing a new one replaces (revokes) the previous one.

Every issued session is also kept as a record of its own (hash, player, expiry) for a grace period after it expires:
a win, a cancel refund or a zero win for a round played on it must still land after the player opened another game
or the session ran out (PROTOCOL.md, "money owed"). Debits need the live one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

MAX_SESSION_SECONDS = 24 * 60 * 60
PLAYER_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET_BYTES = 32
_MAX_TOKEN_LENGTH = 256


class InvalidPlayerId(ValueError):
    """A player id outside [A-Za-z0-9_-]{1,64}."""


def check_player_id(player_id: str) -> str:
    if not PLAYER_ID_PATTERN.fullmatch(player_id):
        raise InvalidPlayerId("player id must be 1-64 characters of letters, digits, '_' or '-'")
    return player_id


@dataclass(frozen=True)
class SessionRecord:
    """A session we issued, as stored: never the token, only its keyed hash."""

    player_id: str
    token_hash: str
    issued_at: int
    expires_at: int

    def covers_credit_at(self, now: float, grace_seconds: int) -> bool:
        """Money owed on this session lands until `grace_seconds` after it expired (replaced or revoked alike)."""
        return now < self.expires_at + grace_seconds


@dataclass(frozen=True)
class IssuedSession:
    player_id: str
    token: str
    token_hash: str
    issued_at: int
    expires_at: int

    @property
    def record(self) -> SessionRecord:
        return SessionRecord(self.player_id, self.token_hash, self.issued_at, self.expires_at)


def issue_session(player_id: str, session_key: bytes, now: float, lifetime_seconds: int) -> IssuedSession:
    check_player_id(player_id)
    lifetime = min(lifetime_seconds, MAX_SESSION_SECONDS)
    token = f"{player_id}.{secrets.token_urlsafe(_SECRET_BYTES)}"
    return IssuedSession(player_id, token, hash_token(token, session_key), int(now), int(now) + lifetime)


def hash_token(token: str, session_key: bytes) -> str:
    return hmac.new(session_key, token.encode("utf-8"), hashlib.sha256).hexdigest()


def player_of_token(token: str) -> str | None:
    """The player a token claims to belong to, or None for a malformed token. Claims are checked against the hash."""
    if len(token) > _MAX_TOKEN_LENGTH:
        return None
    player_id, dot, secret = token.partition(".")
    if not dot or not secret or not PLAYER_ID_PATTERN.fullmatch(player_id):
        return None
    return player_id


def hash_matches(token_hash: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash, stored_hash)


def session_is_live(
    token: str, session_key: bytes, stored_hash: str | None, expires_at: int | None, now: float
) -> bool:
    if not stored_hash or expires_at is None or now >= expires_at:
        return False
    return hash_matches(hash_token(token, session_key), stored_hash)
