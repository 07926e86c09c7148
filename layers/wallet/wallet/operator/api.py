"""The operator API's contract: request and reply models (the OpenAPI description is generated from them) and the
views of accounts and entries. The handler (functions/operator/app.py) and the client (wallet.operator.client) share
them, so both ends speak the same JSON.

Amounts are exact: a request's JSON numbers are parsed as Decimal (never float) and a reply writes an integral
amount as a JSON integer and any other as a decimal string, as `wallet history` does.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from wallet.money.ledger import Account, PlayerStatus, json_ready
from wallet.money.limits import LimitKind, Period

PLAYER_ID = r"^[A-Za-z0-9_-]{1,64}$"
CURRENCY = r"^[A-Za-z0-9]{1,16}$"
REF = r"^[A-Za-z0-9_.:-]{1,128}$"
APPLICATION = r"^[A-Za-z0-9_-]{1,64}$"

# A JSON number (parsed as Decimal) or a decimal string: exact either way; the wallet checks its precision.
Amount = Annotated[Decimal | str, Field(description='a JSON number or a decimal string, e.g. 100 or "12.50"')]


def parse_json(text: str | bytes) -> Any:
    """Request bodies: numbers with a fraction or exponent become Decimal, never float."""
    return json.loads(text, parse_float=Decimal)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewPlayer(_Request):
    player_id: Annotated[str, Field(pattern=PLAYER_ID)]
    currency: Annotated[str, Field(pattern=CURRENCY)]
    balance: Amount = Decimal(0)


PeriodLimits = dict[Period, Amount | None]


class PlayerChange(_Request):
    status: PlayerStatus | None = None
    reason: Annotated[str | None, Field(min_length=1, max_length=500)] = None
    # {"loss": {"day": 100, "week": null}, "deposit": null}: null removes one (or a whole kind).
    limits: dict[LimitKind, PeriodLimits | None] | None = None
    # A reference for this change: a retry with the same ref and body is recorded once (the status and the limits
    # change each keep their own entry under it).
    ref: Annotated[str | None, Field(pattern=REF)] = None


class NewSession(_Request):
    application: Annotated[str | None, Field(pattern=APPLICATION)] = None
    language: Literal["en_US", "ru_RU", "es_ES", "pt_PT", "pt_BR", "fr_FR"] | None = None
    kf: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    kf_list: Annotated[list[Annotated[int, Field(ge=1, le=1_000_000)]] | None, Field(min_length=1, max_length=12)] = (
        None
    )
    home_page: Annotated[str | None, Field(max_length=512)] = None


class Movement(_Request):
    amount: Amount
    ref: Annotated[str, Field(pattern=REF)]


# --- replies -------------------------------------------------------------------------------------------------------


class LimitView(BaseModel):
    amount: Decimal | int | str
    pending: Decimal | int | str | None = None
    pending_at: int | None = None


class PlayerView(BaseModel):
    player_id: str
    balance: int | str
    currency: str
    status: PlayerStatus
    version: int
    created_at: str
    session_expires_at: int | None
    limits: dict[str, dict[str, LimitView]]


class EntryView(BaseModel):
    model_config = ConfigDict(extra="allow")

    entry_id: str
    source: str
    trx_id: str
    player: str
    kind: str
    minus: int | str
    plus: int | str
    balance_before: int | str
    balance_after: int | str
    currency: str
    game_uuid: str | None
    tag: dict[str, Any]
    created_at: str
    account_version: int
    # sha256 chained to the player's previous entry (wallet.money.ledger.chain_hash); absent on entries from before
    # the chain.
    chain_hash: str | None = None


class MoveView(BaseModel):
    balance: int | str
    currency: str
    entry: EntryView


class SessionView(BaseModel):
    player_id: str
    session: str
    expires_at: int
    play_url: str | None = None


class HistoryView(BaseModel):
    entries: list[EntryView]
    next_cursor: str | None


class RoundView(BaseModel):
    entries: list[EntryView]


class ErrorBody(BaseModel):
    code: str
    message: str
    balance: int | str | None = None


class ErrorView(BaseModel):
    error: ErrorBody


def player_view(account: Account, now: float) -> dict[str, Any]:
    return {
        "player_id": account.player_id,
        "balance": json_ready(account.balance),
        "currency": account.currency,
        "status": account.status.value,
        "version": account.version,
        "created_at": account.created_at,
        "session_expires_at": account.session_expires_at,
        "limits": json_ready(account.limits.as_json(now)),
    }
