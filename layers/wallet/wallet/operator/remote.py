"""`ApiWallet`: the operator CLI's wallet over the operator API (SigV4, wallet.operator.client) instead of DynamoDB.

It has the methods the CLI calls on a Wallet and gives back the same domain objects (Account, MoveResult,
LedgerEntry, IssuedSession), rebuilt from the API's JSON, so `wallet balance alice` prints the same bytes whether it
went through the API (WALLET_API_URL set) or straight to the table. A refusal comes back as the OperatorError the
wallet itself would have raised (its message, its Refusal code and, for not_enough_money, the balance); the API's
busy and unavailable answers as BillingContended and StoreUnavailable; anything else (a 403 from IAM, a 429, an
address that does not answer) as ApiFailure.

What the API does not carry, and what takes its place here:
  - a movement's reply has the balance and currency, not the account: its Account has the entry's account version
    and no created_at;
  - a session's reply has the token and expiry, not its hash (the server's business) nor when it was issued;
  - PATCH answers with the player, not the ledger entry it wrote: the entry is read back from the player's history
    (under its ref's key when there is one); and it takes no `by`: the ledger records who signed the request (the
    IAM principal), so a `by` is refused rather than dropped;
  - DELETE .../sessions answers 204 either way: whether a session was live is read just before.
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import quote

from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source
from wallet.money.limits import Limit, LimitKind, Limits, Period, Slot
from wallet.money.mover import BillingContended, MoveResult, MoveStatus
from wallet.money.operator_moves import (
    LIMITS_PREFIX,
    MAX_HISTORY,
    MAX_HISTORY_PAGE,
    OPERATOR_REF,
    STATUS_PREFIX,
    OperatorError,
    Refusal,
)
from wallet.money.sessions import IssuedSession, check_player_id
from wallet.money.store import StoreUnavailable
from wallet.operator.client import ApiError, ApiReply, OperatorClient

API_URL_VARIABLE = "WALLET_API_URL"
# How far back in a player's history the entry a PATCH wrote is looked for (other movements may land meanwhile).
ENTRY_LOOKBACK = 50
_REFUSALS = {refusal.value: refusal for refusal in Refusal}


class ApiFailure(Exception):
    """The API did not do it, for a reason that is not the wallet's: IAM refused the signature (403), throttling
    (429), an error of the service (5xx), an address that does not answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiCaller(Protocol):
    """What ApiWallet needs of OperatorClient (a test passes a fake, or the operator Lambda in-process)."""

    base_url: str

    def call(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> ApiReply: ...  # pragma: no cover - a protocol


class ApiWallet:
    """The operator's use cases the CLI runs, as calls to the operator API."""

    def __init__(self, client: ApiCaller, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock  # the CLI shows limits as they stand at this time, as the wallet's own clock does

    @classmethod
    def from_url(cls, base_url: str) -> ApiWallet:
        """Signed with botocore's credential chain and region (AWS_ACCESS_KEY_ID..., AWS_DEFAULT_REGION)."""
        return cls(OperatorClient(base_url))

    # --- players ---------------------------------------------------------------------------------------------------

    def create_player(self, player_id: str, currency: str, opening_balance: Decimal | str = Decimal(0)) -> Account:
        check_player_id(player_id)
        if not currency or len(currency) > 16 or not currency.isalnum():
            raise OperatorError("currency must be 1-16 letters or digits")  # the wallet's words, not pydantic's
        body = {"player_id": player_id, "currency": currency, "balance": opening_balance}
        return account_from_json(self._call("POST", "/operator/players", body).body)

    def account(self, player_id: str) -> Account:
        return account_from_json(self._call("GET", _player_path(player_id)).body)

    def set_status(
        self, player_id: str, status: PlayerStatus | str, reason: str, by: str | None = None, ref: str | None = None
    ) -> MoveResult:
        """PATCH the status (with `ref`, a retry is recorded once); the reply's player and the status entry it wrote
        (or, for a retry, wrote the first time), read back from the history."""
        _checked(player_id, by, ref)
        try:
            wanted = PlayerStatus(status)
        except ValueError:
            raise OperatorError(f"status must be one of {', '.join(s.value for s in PlayerStatus)}") from None
        body = {"status": wanted.value, "reason": reason, **({"ref": ref} if ref is not None else {})}
        account = account_from_json(self._call("PATCH", _player_path(player_id), body).body)
        trx_id = f"{STATUS_PREFIX}{player_id}#{ref}" if ref is not None else None
        entry = self._written_entry(
            player_id, "status", account.version, trx_id, lambda tag: tag.get("status") == wanted.value
        )
        return MoveResult(MoveStatus.APPLIED, account, entry)

    def set_limits(
        self, player_id: str, changes: Mapping[Slot, Decimal | None], by: str | None = None, ref: str | None = None
    ) -> MoveResult:
        """PATCH the limits ({"loss": {"day": 100, "week": null}}: null removes one); the reply's player and the
        limits entry it wrote."""
        _checked(player_id, by, ref)
        if not changes:
            raise OperatorError("limits: nothing to change")
        asked: dict[str, dict[str, Decimal | None]] = {}
        for (kind, period), amount in sorted(changes.items()):
            asked.setdefault(kind.value, {})[period.value] = amount
        body = {"limits": asked, **({"ref": ref} if ref is not None else {})}
        account = account_from_json(self._call("PATCH", _player_path(player_id), body).body)
        trx_id = f"{LIMITS_PREFIX}{player_id}#{ref}" if ref is not None else None
        entry = self._written_entry(player_id, "limits", account.version, trx_id, lambda tag: _same_limits(tag, asked))
        return MoveResult(MoveStatus.APPLIED, account, entry)

    # --- sessions --------------------------------------------------------------------------------------------------

    def new_session(self, player_id: str) -> IssuedSession:
        reply = self._call("POST", f"{_player_path(player_id)}/sessions", {}).body
        # The token's hash stays with the wallet; the API does not say when it was issued (now, give or take).
        return IssuedSession(reply["player_id"], reply["session"], "", int(self.clock()), int(reply["expires_at"]))

    def revoke_session(self, player_id: str) -> bool:
        """True if there was a live session (the API answers 204 either way: the player is read just before)."""
        had_one = self.account(player_id).session_expires_at is not None
        self._call("DELETE", f"{_player_path(player_id)}/sessions")
        return had_one

    # --- money -----------------------------------------------------------------------------------------------------

    def deposit(self, player_id: str, amount: Decimal | str, ref: str) -> MoveResult:
        return self._move(player_id, "deposits", amount, ref)

    def withdraw(self, player_id: str, amount: Decimal | str, ref: str) -> MoveResult:
        return self._move(player_id, "withdrawals", amount, ref)

    def _move(self, player_id: str, what: str, amount: Decimal | str, ref: str) -> MoveResult:
        if not OPERATOR_REF.fullmatch(ref):
            raise OperatorError("ref must be 1-128 characters of letters, digits, '_', '-', '.' or ':'")
        reply = self._call("POST", f"{_player_path(player_id)}/{what}", {"amount": amount, "ref": ref})
        entry = entry_from_json(reply.body["entry"])
        # 201: it moved now; 200: the same ref and body seen before (the earlier entry, the current balance).
        status = MoveStatus.APPLIED if reply.status == 201 else MoveStatus.DUPLICATE
        account = Account(
            player_id, _amount(reply.body["balance"]), reply.body["currency"], entry.account_version, created_at=""
        )
        return MoveResult(status, account, entry)

    # --- the ledger ------------------------------------------------------------------------------------------------

    def history(self, player_id: str, limit: int = 100) -> list[LedgerEntry]:
        """The newest `limit` entries, newest first, in pages of at most MAX_HISTORY_PAGE, following the cursor."""
        if not 1 <= limit <= MAX_HISTORY:
            raise OperatorError(f"limit must be between 1 and {MAX_HISTORY}")
        path = f"{_player_path(player_id)}/history"
        entries: list[LedgerEntry] = []
        cursor: str | None = None
        while len(entries) < limit:
            query = {"limit": min(limit - len(entries), MAX_HISTORY_PAGE), "cursor": cursor}
            page = self._call("GET", path, query=query).body
            entries.extend(entry_from_json(entry) for entry in page["entries"])
            cursor = page.get("next_cursor")
            if not cursor or not page["entries"]:
                break
        return entries[:limit]

    def round(self, game_uuid: str) -> list[LedgerEntry]:
        if not game_uuid:
            return []  # no round has an empty id (and the route needs one)
        reply = self._call("GET", f"/operator/rounds/{quote(game_uuid, safe='')}")
        return [entry_from_json(entry) for entry in reply.body["entries"]]

    # --- the wire --------------------------------------------------------------------------------------------------

    def _written_entry(
        self,
        player_id: str,
        kind: str,
        version: int,
        trx_id: str | None,
        matches: Callable[[dict[str, Any]], bool],
    ) -> LedgerEntry:
        """The entry a PATCH wrote: the one under its ref's key (a retry's may be old: up to MAX_HISTORY back), or
        without a ref the newest `kind` entry at or below the account `version` the PATCH answered with that
        `matches` (within the newest ENTRY_LOOKBACK: other movements may land meanwhile)."""
        path = f"{_player_path(player_id)}/history"
        lookback = MAX_HISTORY if trx_id is not None else ENTRY_LOOKBACK
        cursor: str | None = None
        seen = 0
        while seen < lookback:
            query = {"limit": min(lookback - seen, MAX_HISTORY_PAGE), "cursor": cursor}
            page = self._call("GET", path, query=query).body
            for raw in page["entries"]:
                entry = entry_from_json(raw)
                if trx_id is not None and entry.trx_id == trx_id:
                    return entry
                if trx_id is None and entry.kind == kind and entry.account_version <= version and matches(entry.tag):
                    return entry
            seen += len(page["entries"])
            cursor = page.get("next_cursor")
            if not cursor or not page["entries"]:
                break
        raise ApiFailure(f"the {kind} change was made but its ledger entry is not among the newest {seen}")

    def _call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> ApiReply:
        try:
            return self.client.call(method, path, body, query)
        except ApiError as exc:
            raise domain_error(exc) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise ApiFailure(f"operator API at {self.client.base_url} does not answer: {reason}") from None


def domain_error(exc: ApiError) -> Exception:
    """The exception the wallet would have raised for the API's {"error": {"code", "message", "balance"?}}."""
    found = exc.body.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    refusal = _REFUSALS.get(exc.code)
    if refusal is not None:
        balance = error.get("balance")
        return OperatorError(exc.message, refusal, _amount(balance) if balance is not None else None)
    if exc.code == "busy":
        return BillingContended(exc.message)
    if exc.code == "unavailable":
        return StoreUnavailable(exc.message)
    return ApiFailure(f"operator API refused the request ({exc.status}): {exc.message}", exc.status)


# --- the JSON back into domain objects ---------------------------------------------------------------------------


def account_from_json(view: Mapping[str, Any]) -> Account:
    """A player view ({player_id, balance, currency, status, version, created_at, session_expires_at, limits})."""
    expires = view.get("session_expires_at")
    return Account(
        player_id=view["player_id"],
        balance=_amount(view["balance"]),
        currency=view["currency"],
        version=int(view["version"]),
        created_at=view["created_at"],
        session_expires_at=int(expires) if expires is not None else None,
        status=PlayerStatus(view["status"]),
        limits=limits_from_json(view.get("limits") or {}),
    )


def limits_from_json(view: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Limits:
    """{"loss": {"day": {"amount": 100, "pending": 200, "pending_at": 1764..}}} (a pending null: a removal)."""
    by_slot: dict[Slot, Limit] = {}
    for kind, periods in view.items():
        for period, limit in periods.items():
            pending = limit.get("pending")
            pending_at = limit.get("pending_at")
            by_slot[(LimitKind(kind), Period(period))] = Limit(
                _amount(limit["amount"]),
                _amount(pending) if pending is not None else None,
                int(pending_at) if pending_at is not None else None,
            )
    return Limits(by_slot)


def entry_from_json(data: Mapping[str, Any]) -> LedgerEntry:
    """LedgerEntry.as_json() read back (its fingerprint is the wallet's business and stays there)."""
    return LedgerEntry(
        source=Source(data["source"]),
        trx_id=str(data["trx_id"]),
        player_id=data["player"],
        minus=_amount(data["minus"]),
        plus=_amount(data["plus"]),
        balance_before=_amount(data["balance_before"]),
        balance_after=_amount(data["balance_after"]),
        currency=data["currency"],
        created_at=data["created_at"],
        kind=data["kind"],
        game_uuid=data.get("game_uuid"),
        tag=dict(data.get("tag") or {}),
        account_version=int(data.get("account_version", 0)),
        chain_hash=str(data.get("chain_hash") or ""),
    )


def _amount(value: Any) -> Decimal:
    """An amount as the API writes it: a JSON integer or an exact decimal string (never a float)."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise ApiFailure(f"the operator API sent an amount that is not exact: {value!r}")
    return Decimal(value)


def _player_path(player_id: str) -> str:
    # The wallet's own check and words first (the id becomes part of the path, so it must be checked anyway).
    return f"/operator/players/{check_player_id(player_id)}"


def _checked(player_id: str, by: str | None, ref: str | None) -> None:
    """A status or limits change's arguments, refused in the wallet's own words before any call."""
    check_player_id(player_id)
    if ref is not None and not OPERATOR_REF.fullmatch(ref):
        raise OperatorError("ref must be 1-128 characters of letters, digits, '_', '-', '.' or ':'")
    if by is not None:
        raise OperatorError(
            f"--by: through the operator API the ledger records who signed the request; unset {API_URL_VARIABLE} "
            "to record another name"
        )


def _same_limits(tag: Mapping[str, Any], asked: Mapping[str, Mapping[str, Decimal | None]]) -> bool:
    recorded = tag.get("limits")
    if not isinstance(recorded, Mapping) or set(recorded) != set(asked):
        return False
    for kind, periods in asked.items():
        written = recorded[kind]
        if not isinstance(written, Mapping) or set(written) != set(periods):
            return False
        for period, amount in periods.items():
            value = written[period]
            if (value is None) != (amount is None) or (amount is not None and _amount(value) != amount):
                return False
    return True


__all__ = [
    "API_URL_VARIABLE",
    "ApiCaller",
    "ApiFailure",
    "ApiWallet",
    "account_from_json",
    "domain_error",
    "entry_from_json",
    "limits_from_json",
]
