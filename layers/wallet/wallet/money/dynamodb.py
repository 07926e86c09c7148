"""The wallet store on DynamoDB (one table): the only module that speaks DynamoDB.

Items (see docs/TABLE.md for the access patterns):
  account  pk=PLAYER#<player>          sk=ACCOUNT  balance, currency, version, status, session_hash, session_expires_at,
                                                chain_head (the last entry's chain_hash)
  session  pk=PLAYER#<player>          sk=SESSION#<hash>  issued_at, expires_at, purge_at (TTL: expiry + grace)
  entry    pk=ENTRY#<source>:<trx_id>     sk=ENTRY    player, minus, plus, balance_before/after, tag, game_uuid, time,
                                                chain_hash (sha256 chained to the player's previous entry)
           (sk=ENTRY#<player> for a game trx_id that another player used first: that player's own transaction)
           gsi1pk=PLAYER#<player>  gsi1sk=<time>#<entry_id>   (index by_player: a player's history by time)
           gsi2pk=ROUND#<game_uuid> gsi2sk=<time>#<entry_id>  (index by_round: a round's entries; sparse)

A movement is one TransactWriteItems: put the entry if absent + update the account guarded by its version and its
balance. Both happen or neither; the account's chain_head moves to the entry's chain_hash in that same update.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from wallet.money import attribute_values
from wallet.money.amounts import parse_stored
from wallet.money.ledger import Account, LedgerEntry, PlayerStatus, Source
from wallet.money.limits import Counter, Counters, Limit, LimitKind, Limits, Period, Slot
from wallet.money.sessions import SessionRecord
from wallet.money.store import (
    AccountNotActive,
    Applied,
    Contended,
    DuplicateEntry,
    InvalidCursor,
    NoSuchAccount,
    SessionOutcome,
    SessionStarted,
    StaleAccount,
    StoreUnavailable,
    WriteOutcome,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import UpdateTypeDef

ACCOUNT_SK = "ACCOUNT"
ENTRY_SK = "ENTRY"
SESSION_SK_PREFIX = "SESSION#"
# The table's TTL attribute (template.yaml): only session records carry it; entries and accounts are never deleted.
PURGE_AT = "purge_at"
BY_PLAYER_INDEX = "by_player"
BY_ROUND_INDEX = "by_round"


def account_key(player_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"PLAYER#{player_id}"}, "sk": {"S": ACCOUNT_SK}}


def session_key(player_id: str, token_hash: str) -> dict[str, Any]:
    return {"pk": {"S": f"PLAYER#{player_id}"}, "sk": {"S": f"{SESSION_SK_PREFIX}{token_hash}"}}


def entry_key(source: Source, trx_id: str, scoped_to: str | None = None) -> dict[str, Any]:
    """The first use of a trx_id has the slot ENTRY; another player's transaction with a used game trx_id has its own
    slot under the same pk (the sort key keeps the two apart whatever characters a trx_id holds)."""
    sort_key = f"{ENTRY_SK}#{scoped_to}" if scoped_to else ENTRY_SK
    return {"pk": {"S": f"ENTRY#{source.value}:{trx_id}"}, "sk": {"S": sort_key}}


class DynamoDBStore:
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self.client = client

    # --- reads --------------------------------------------------------------------------------------------------

    def get_account(self, player_id: str) -> Account | None:
        item = self._get_item(account_key(player_id))
        return account_from_item(item) if item else None

    def get_session(self, player_id: str, token_hash: str) -> SessionRecord | None:
        """A session we issued to this player, while its record is kept (strongly consistent), or None."""
        item = self._get_item(session_key(player_id, token_hash))
        if not item:
            return None
        return SessionRecord(
            player_id=player_id,
            token_hash=token_hash,
            issued_at=int(item["issued_at"]["N"]),
            expires_at=int(item["expires_at"]["N"]),
        )

    def get_account_and_entry(
        self, player_id: str, source: Source, trx_id: str, scoped_to: str | None = None
    ) -> tuple[Account | None, LedgerEntry | None]:
        """The account and the entry with this trx_id (to detect a replay): the trx_id's first slot, or with
        `scoped_to` that player's own slot.

        One strongly consistent BatchGetItem of the two keys (2 RRU for an account under 4 KB and a missing entry),
        not a TransactGetItems (4 RRU, and cancelled whenever a write transaction on the account is in flight): the
        write that follows (entry put-if-absent + version-guarded account update) checks every condition itself, so
        the read need not be serializable.

        The two items are read one by one, so a read can meet the entry of a transaction that just committed and the
        account from before it: then the account is read again (a strongly consistent GetItem), and a replay reports
        the balance as it is now. The other way round (the account after a write, its entry not yet seen) is safe:
        the write's put-if-absent refuses the duplicate (DuplicateEntry)."""
        keys = [account_key(player_id), entry_key(source, trx_id, scoped_to)]
        found = self._batch_get(keys)
        account_item, entry_item = (found.get(_key_of(key)) for key in keys)
        account = account_from_item(account_item) if account_item else None
        entry = entry_from_item(entry_item) if entry_item else None
        if (
            account is not None
            and entry is not None
            and entry.player_id == player_id
            and entry.account_version > account.version
        ):
            again = self._get_item(keys[0])
            account = account_from_item(again) if again else None
        return account, entry

    def _batch_get(self, keys: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items with these keys, strongly consistent, by (pk, sk): BatchGetItem answers in any order and leaves
        out the missing ones. Keys it leaves unprocessed (throttling) are asked for again, a few times."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        pending = keys
        for attempt in range(BATCH_GET_ATTEMPTS):
            if attempt:
                self._pause(BATCH_GET_PAUSE * 2 ** (attempt - 1))
            try:
                response = self.client.batch_get_item(
                    RequestItems={self.table_name: {"Keys": pending, "ConsistentRead": True}}
                )
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(_describe(exc)) from exc
            reply = cast(dict[str, Any], response)
            for item in reply.get("Responses", {}).get(self.table_name, []):
                found[_key_of(item)] = item
            pending = list(reply.get("UnprocessedKeys", {}).get(self.table_name, {}).get("Keys", []))
            if not pending:
                return found
        raise StoreUnavailable(
            f"BatchGetItem left {len(pending)} key(s) unprocessed after {BATCH_GET_ATTEMPTS} attempts"
        )

    def _pause(self, seconds: float) -> None:
        time.sleep(seconds)

    def history(self, player_id: str, limit: int = 100) -> list[LedgerEntry]:
        """A player's entries, newest first."""
        return self._query(BY_PLAYER_INDEX, "gsi1pk", f"PLAYER#{player_id}", limit, newest_first=True)

    def history_page(
        self, player_id: str, limit: int, cursor: str | None = None
    ) -> tuple[list[LedgerEntry], str | None]:
        """Up to `limit` of a player's entries, newest first, after `cursor`; and the cursor of the next page (None
        at the end). One Query of limit + 1 items: the extra one only says whether there is a next page."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": BY_PLAYER_INDEX,
            "KeyConditionExpression": "gsi1pk = :key",
            "ExpressionAttributeValues": {":key": {"S": f"PLAYER#{player_id}"}},
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        if cursor is not None:
            # The player comes from the request, never from the cursor: a cursor cannot open another player's ledger.
            kwargs["ExclusiveStartKey"] = {**_decode_cursor(cursor), "gsi1pk": {"S": f"PLAYER#{player_id}"}}
        items: list[dict[str, Any]] = []
        try:
            while len(items) <= limit:
                response = self.client.query(**kwargs)
                items.extend(response.get("Items", []))
                start = response.get("LastEvaluatedKey")
                if not start:
                    break
                kwargs["ExclusiveStartKey"] = start
                kwargs["Limit"] = limit + 1 - len(items)
        except ClientError as exc:
            if cursor is not None and _error_code(exc) == "ValidationException":
                raise InvalidCursor("cursor is not one this ledger gave") from exc
            raise StoreUnavailable(_describe(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        page = items[:limit]
        more = len(items) > limit
        next_cursor = _encode_cursor(page[-1]) if more and page else None
        return [entry_from_item(item) for item in page], next_cursor

    def round_entries(self, game_uuid: str) -> list[LedgerEntry]:
        """A round's entries (bet, cancels, win), oldest first."""
        return self._query(BY_ROUND_INDEX, "gsi2pk", f"ROUND#{game_uuid}", limit=None, newest_first=False)

    def iter_accounts(self) -> Iterator[Account]:
        for item in self._scan("begins_with(pk, :prefix) AND sk = :sk", "PLAYER#", ACCOUNT_SK):
            yield account_from_item(item)

    def iter_entries(self) -> Iterator[LedgerEntry]:
        for item in self._scan("begins_with(pk, :prefix) AND begins_with(sk, :sk)", "ENTRY#", ENTRY_SK):
            yield entry_from_item(item)

    # --- writes -------------------------------------------------------------------------------------------------

    def record(
        self,
        entry: LedgerEntry,
        expected: Account,
        new_status: PlayerStatus | None = None,
        *,
        same_session: bool = False,
        counters: Counters | None = None,
        limits: Limits | None = None,
    ) -> WriteOutcome:
        """Put `entry` if its trx_id is new and move the account from `expected` to entry.balance_after (and to version
        entry.account_version, which must be expected.version + 1), atomically. With `new_status`, the account takes
        that status in the same write, and a player who is no longer active loses the live session."""
        if entry.account_version != expected.version + 1:
            raise ValueError("an entry must produce the version after the one read")
        # The chain's head rides in the same update (no extra call, no extra item): the account always names the hash
        # of the entry that produced its version.
        update = "SET balance = :after, version = :next, updated_at = :now, chain_head = :head"
        values: dict[str, Any] = {
            ":after": {"N": str(entry.balance_after)},
            ":head": {"S": entry.chain_hash},
            ":before": {"N": str(entry.balance_before)},
            ":expected": {"N": str(expected.version)},
            ":next": {"N": str(entry.account_version)},
            ":now": {"S": entry.created_at},
        }
        names: dict[str, str] = {}
        condition = "version = :expected AND balance = :before"
        if counters is not None:
            update += ", counters = :counters"  # the limits' counters move with the balance, under the same guard
            values[":counters"] = _counters_value(counters)
        if limits is not None:
            update += ", limits = :limits"
            values[":limits"] = _limits_value(limits)
        if same_session:
            # A debit was allowed for the live session read: a log-out or a new session since then (which do not move
            # the version) must refuse it too.
            condition += " AND session_hash = :session"
            values[":session"] = {"S": expected.session_hash or ""}
        if new_status is not None:
            update += ", #status = :status"
            values[":status"] = {"S": new_status.value}
            names["#status"] = "status"  # a DynamoDB reserved word
            if new_status is not PlayerStatus.ACTIVE:
                update += " REMOVE session_hash, session_expires_at"
        account_update: UpdateTypeDef = {
            "TableName": self.table_name,
            "Key": account_key(entry.player_id),
            # The new balance is computed from the version read; the version and balance guard make a concurrent
            # movement fail this one instead of being overwritten.
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            account_update["ExpressionAttributeNames"] = names
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": _entry_item(entry),
                            "ConditionExpression": "attribute_not_exists(pk)",
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {"Update": account_update},
                ]
            )
        except ClientError as exc:
            if _error_code(exc) == "TransactionCanceledException":
                return _cancelled_outcome(exc)
            raise StoreUnavailable(_describe(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        return Applied()

    def create_account(self, account: Account, opening: LedgerEntry | None) -> bool:
        """Create the account (and its opening-balance entry) unless the player exists. False if it does."""
        account_put: dict[str, Any] = {
            "Put": {
                "TableName": self.table_name,
                "Item": _account_item(account),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        items: list[Any] = [account_put]
        if opening is not None:
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": _entry_item(opening),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _error_code(exc) == "TransactionCanceledException" and _reason_codes(exc)[:1] == [
                "ConditionalCheckFailed"
            ]:
                return False
            raise StoreUnavailable(_describe(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        return True

    def start_session(self, session: SessionRecord, purge_at: int) -> SessionOutcome:
        """Make this the player's only live session (the previous hash is overwritten) if the player is active, and
        keep its record until `purge_at` (the table's TTL), in one transaction."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": account_key(session.player_id),
                            "UpdateExpression": "SET session_hash = :hash, session_expires_at = :expires",
                            # Accounts created before statuses existed have none: they are active.
                            "ConditionExpression": (
                                "attribute_exists(pk) AND (attribute_not_exists(#status) OR #status = :active)"
                            ),
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": {
                                ":hash": {"S": session.token_hash},
                                ":expires": {"N": str(session.expires_at)},
                                ":active": {"S": PlayerStatus.ACTIVE.value},
                            },
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": {
                                **session_key(session.player_id, session.token_hash),
                                "type": {"S": "session"},
                                "player_id": {"S": session.player_id},
                                "issued_at": {"N": str(session.issued_at)},
                                "expires_at": {"N": str(session.expires_at)},
                                PURGE_AT: {"N": str(purge_at)},
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _error_code(exc) == "TransactionCanceledException":
                reasons = _cancellation_reasons(exc)
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    old = reasons[0].get("Item")
                    return AccountNotActive(account_from_item(old).status) if old else NoSuchAccount()
            raise StoreUnavailable(_describe(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        return SessionStarted()

    def end_session(self, player_id: str) -> bool | None:
        """End the player's live session (log-out): True if there was one, False if not, None if no such player.
        The session's record stays, so money owed on it still lands within the grace period."""
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=account_key(player_id),
                UpdateExpression="REMOVE session_hash, session_expires_at",
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise StoreUnavailable(_describe(exc)) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        return "session_hash" in response.get("Attributes", {})

    # --- helpers ------------------------------------------------------------------------------------------------

    def _get_item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        return response.get("Item")

    def _query(
        self, index: str, key_name: str, key_value: str, limit: int | None, newest_first: bool
    ) -> list[LedgerEntry]:
        entries: list[LedgerEntry] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": f"{key_name} = :key",
            "ExpressionAttributeValues": {":key": {"S": key_value}},
            "ScanIndexForward": not newest_first,
        }
        try:
            while True:
                if limit is not None:
                    kwargs["Limit"] = limit - len(entries)
                response = self.client.query(**kwargs)
                entries.extend(entry_from_item(item) for item in response.get("Items", []))
                start = response.get("LastEvaluatedKey")
                if not start or (limit is not None and len(entries) >= limit):
                    return entries
                kwargs["ExclusiveStartKey"] = start
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(_describe(exc)) from exc

    def _scan(self, condition: str, prefix: str, sk: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("scan")
        try:
            for page in paginator.paginate(
                TableName=self.table_name,
                FilterExpression=condition,
                ExpressionAttributeValues={":prefix": {"S": prefix}, ":sk": {"S": sk}},
                ConsistentRead=True,
            ):
                yield from page.get("Items", [])
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(_describe(exc)) from exc


# --- item mapping -------------------------------------------------------------------------------------------------


def _account_item(account: Account) -> dict[str, Any]:
    item: dict[str, Any] = {
        **account_key(account.player_id),
        "type": {"S": "account"},
        "player_id": {"S": account.player_id},
        "balance": {"N": str(account.balance)},
        "currency": {"S": account.currency},
        "version": {"N": str(account.version)},
        "created_at": {"S": account.created_at},
        "status": {"S": account.status.value},
    }
    if account.chain_head:
        item["chain_head"] = {"S": account.chain_head}
    if account.limits.by_slot:
        item["limits"] = _limits_value(account.limits)
    if account.session_hash is not None and account.session_expires_at is not None:
        item["session_hash"] = {"S": account.session_hash}
        item["session_expires_at"] = {"N": str(account.session_expires_at)}
    return item


def account_from_item(item: dict[str, Any]) -> Account:
    # Read by hand rather than with attribute_values.deserialize: this runs on every request.
    return Account(
        player_id=item["player_id"]["S"],
        balance=parse_stored(item["balance"]["N"]),
        currency=item["currency"]["S"],
        version=int(item["version"]["N"]),
        created_at=item["created_at"]["S"],
        session_hash=item["session_hash"]["S"] if "session_hash" in item else None,
        session_expires_at=int(item["session_expires_at"]["N"]) if "session_expires_at" in item else None,
        status=PlayerStatus(item["status"]["S"]) if "status" in item else PlayerStatus.ACTIVE,
        limits=_limits_from_value(item["limits"]) if "limits" in item else Limits(),
        counters=_counters_from_value(item["counters"]) if "counters" in item else Counters(),
        chain_head=item["chain_head"]["S"] if "chain_head" in item else "",  # none on accounts from before the chain
    )


# Counters and limits, keyed "<kind>.<period>" (e.g. "loss.day"): the limits a map, the counters one packed string.


def _slot_name(slot: Slot) -> str:
    return f"{slot[0].value}.{slot[1].value}"


def _slot_of(name: str) -> Slot:
    kind, period = name.split(".")
    return LimitKind(kind), Period(period)


def _counters_value(counters: Counters) -> dict[str, Any]:
    # One string, compact JSON {"<kind>.<period>": ["<period key>", "<amount>"]}: every bet reads and writes the
    # counters, and as a map of maps they were 18 attribute values for botocore and DynamoDB to walk each time.
    packed = {_slot_name(slot): [c.period, str(c.amount)] for slot, c in counters.by_slot.items()}
    return {"S": json.dumps(packed, separators=(",", ":"))}


def _counters_from_value(value: dict[str, Any]) -> Counters:
    if "S" in value:
        packed = json.loads(value["S"])
        return Counters(
            {_slot_of(name): Counter(period, parse_stored(amount)) for name, (period, amount) in packed.items()}
        )
    # The map form accounts written before the packed one still hold, until their next movement rewrites it.
    return Counters(
        {
            _slot_of(name): Counter(c["M"]["period"]["S"], parse_stored(c["M"]["amount"]["N"]))
            for name, c in value["M"].items()
        }
    )


def _limits_value(limits: Limits) -> dict[str, Any]:
    mapped: dict[str, Any] = {}
    for slot, limit in limits.by_slot.items():
        fields: dict[str, Any] = {"amount": {"N": str(limit.amount)}}
        if limit.pending_at is not None:
            fields["pending_at"] = {"N": str(limit.pending_at)}
            fields["pending"] = {"N": str(limit.pending)} if limit.pending is not None else {"NULL": True}
        mapped[_slot_name(slot)] = {"M": fields}
    return {"M": mapped}


def _limits_from_value(value: dict[str, Any]) -> Limits:
    by_slot: dict[Slot, Limit] = {}
    for name, fields in value["M"].items():
        f = fields["M"]
        pending: Decimal | None = parse_stored(f["pending"]["N"]) if "N" in f.get("pending", {}) else None
        pending_at = int(f["pending_at"]["N"]) if "pending_at" in f else None
        by_slot[_slot_of(name)] = Limit(parse_stored(f["amount"]["N"]), pending, pending_at)
    return Limits(by_slot)


def _encode_cursor(item: dict[str, Any]) -> str:
    position = {name: item[name]["S"] for name in ("pk", "sk", "gsi1sk")}
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return {name: {"S": str(position[name])} for name in ("pk", "sk", "gsi1sk")}
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this ledger gave") from None


def _entry_item(entry: LedgerEntry) -> dict[str, Any]:
    sort_key = f"{entry.created_at}#{entry.entry_id}"
    item: dict[str, Any] = {
        **entry_key(entry.source, entry.trx_id, entry.player_id if entry.scoped else None),
        "type": {"S": "entry"},
        "source": {"S": entry.source.value},
        "trx_id": {"S": entry.trx_id},
        "player_id": {"S": entry.player_id},
        "kind": {"S": entry.kind},
        "minus": {"N": str(entry.minus)},
        "plus": {"N": str(entry.plus)},
        "balance_before": {"N": str(entry.balance_before)},
        "balance_after": {"N": str(entry.balance_after)},
        "currency": {"S": entry.currency},
        "created_at": {"S": entry.created_at},
        "tag": attribute_values.serialize(entry.tag),
        "fingerprint": {"S": entry.fingerprint},
        "account_version": {"N": str(entry.account_version)},
        "gsi1pk": {"S": f"PLAYER#{entry.player_id}"},
        "gsi1sk": {"S": sort_key},
    }
    if entry.chain_hash:
        item["chain_hash"] = {"S": entry.chain_hash}
    if entry.game_uuid:
        item["game_uuid"] = {"S": entry.game_uuid}
        item["gsi2pk"] = {"S": f"ROUND#{entry.game_uuid}"}
        item["gsi2sk"] = {"S": sort_key}
    return item


def entry_from_item(item: dict[str, Any]) -> LedgerEntry:
    tag = attribute_values.deserialize(item["tag"]) if "tag" in item else {}
    return LedgerEntry(
        source=Source(item["source"]["S"]),
        trx_id=item["trx_id"]["S"],
        player_id=item["player_id"]["S"],
        minus=parse_stored(item["minus"]["N"]),
        plus=parse_stored(item["plus"]["N"]),
        balance_before=parse_stored(item["balance_before"]["N"]),
        balance_after=parse_stored(item["balance_after"]["N"]),
        currency=item["currency"]["S"],
        created_at=item["created_at"]["S"],
        kind=item["kind"]["S"],
        game_uuid=item["game_uuid"]["S"] if "game_uuid" in item else None,
        tag=tag,
        fingerprint=item.get("fingerprint", {}).get("S", ""),
        account_version=int(item.get("account_version", {}).get("N", "0")),
        scoped=item["sk"]["S"] != ENTRY_SK,
        chain_hash=item["chain_hash"]["S"] if "chain_hash" in item else "",  # none on entries from before the chain
    )


def _cancelled_outcome(exc: ClientError) -> WriteOutcome:
    reasons = _cancellation_reasons(exc)
    codes = [reason.get("Code", "None") for reason in reasons]
    if len(codes) != 2:
        raise StoreUnavailable(f"transaction cancelled without reasons: {codes}") from exc
    entry_code, account_code = codes
    account_changed = account_code == "ConditionalCheckFailed" and reasons[1].get("Item")
    latest = account_from_item(reasons[1]["Item"]) if account_changed else None
    if entry_code == "ConditionalCheckFailed":
        existing = entry_from_item(reasons[0]["Item"]) if reasons[0].get("Item") else None
        return DuplicateEntry(existing, latest)
    if account_code == "ConditionalCheckFailed":
        return StaleAccount(latest)
    if "TransactionConflict" in codes:
        return Contended()
    # Throttling, validation or capacity: nothing was written, and it is not ours to retry here.
    raise StoreUnavailable(f"transaction cancelled: {codes}") from exc


def _cancellation_reasons(exc: ClientError) -> list[dict[str, Any]]:
    # botocore's error shape does not declare CancellationReasons, but DynamoDB sends them with the cancellation.
    response = cast(dict[str, Any], exc.response)
    return list(response.get("CancellationReasons", []))


def _reason_codes(exc: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in _cancellation_reasons(exc)]


# BatchGetItem's unprocessed keys (throttling): asked for again up to 3 times, after 5, 10 and 20 ms.
BATCH_GET_ATTEMPTS = 4
BATCH_GET_PAUSE = 0.005


def _key_of(item: dict[str, Any]) -> tuple[str, str]:
    """An item's (or a key's) primary key, to match BatchGetItem's answers to the keys asked for."""
    return item["pk"]["S"], item["sk"]["S"]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return f"{_error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
