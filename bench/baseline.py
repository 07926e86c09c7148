"""The straightforward design, for comparison only (never product code): separate calls, no transaction.

Per bet or win: GetItem session -> GetItem balance -> PutItem trx (if absent) -> UpdateItem balance (conditional on
`balance >= :minus` for a bet). DynamoDB rejects `SET balance = balance - :m + :p` (two operators in one action), so
a bet-and-win takes two updates. A balance request is GetItem session + GetItem balance.

Its flaws, which is why we do not ship it:
  * not atomic: a crash (Lambda timeout, throttle, network) between the PutItem and the UpdateItem records the trx
    without moving the money; the provider's retry then sees the trx and answers OK: a bet never charged, a win
    never paid. Writing the balance first instead doubles the money on retry.
  * the balance it answers for a replay is read before the write of a concurrent request: not a consistent view;
    no version chain, so nothing can audit a lost or doubled write afterwards.
  * the session is a separate item read separately: it can be revoked between the check and the write.
It uses the product's parsing and sign check, so only the storage calls differ, on a table with the same indexes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from bench.common import OPENING_BALANCE, SALT, SESSION_KEY
from wallet.money.protocol import (
    SESSION_NOT_FOUND,
    SIGN_NOT_FOUND,
    InvalidRequest,
    Reply,
    not_enough_money,
    ok,
    parse_do_request,
    parse_movement,
)
from wallet.money.sessions import hash_token, session_is_live
from wallet.money.sign import sign_matches

_KEY = SESSION_KEY.encode()


class NaiveBilling:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def create_player(self, player: str, token: str, expires_at: int) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"BALANCE#{player}"},
                "sk": {"S": "BALANCE"},
                "balance": {"N": str(OPENING_BALANCE)},
                "currency": {"S": "FUN"},
            },
        )
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"SESSION#{token}"},
                "sk": {"S": "SESSION"},
                "player": {"S": player},
                "hash": {"S": hash_token(token, _KEY)},
                "expires_at": {"N": str(expires_at)},
            },
        )

    def handle_do(self, raw_body: str, now: float) -> Reply:  # noqa: PLR0912 - the straight line, on purpose
        try:
            request = parse_do_request(raw_body)
        except InvalidRequest:
            return SIGN_NOT_FOUND
        envelope = request.envelope
        if not sign_matches(envelope.sign, envelope.session, envelope.trx_id, SALT):
            return SIGN_NOT_FOUND
        try:
            movement = parse_movement(request.body)
        except InvalidRequest:
            return SESSION_NOT_FOUND
        # 1. the session
        session = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"SESSION#{envelope.session}"}, "sk": {"S": "SESSION"}}
        ).get("Item")
        if not session or not session_is_live(
            envelope.session, _KEY, session["hash"]["S"], int(session["expires_at"]["N"]), now
        ):
            return SESSION_NOT_FOUND
        player = session["player"]["S"]
        balance_key = {"pk": {"S": f"BALANCE#{player}"}, "sk": {"S": "BALANCE"}}
        # 2. the balance
        account = self.client.get_item(TableName=self.table, Key=balance_key, ConsistentRead=True)["Item"]
        balance, currency = Decimal(account["balance"]["N"]), account["currency"]["S"]
        if movement.is_balance_request:
            return ok(balance, currency)
        if movement.minus > balance:
            return not_enough_money(balance, currency)
        # 3. the trx, if new (a replay answers with the balance read above)
        item = {
            "pk": {"S": f"TRX#{envelope.trx_id}"},
            "sk": {"S": "TRX"},
            "player_id": {"S": player},
            "minus": {"N": str(movement.minus)},
            "plus": {"N": str(movement.plus)},
            "gsi1pk": {"S": f"PLAYER#{player}"},
            "gsi1sk": {"S": f"{now}#{envelope.trx_id}"},
        }
        if movement.game_uuid:
            item["game_uuid"] = {"S": movement.game_uuid}
            item["gsi2pk"] = {"S": f"ROUND#{movement.game_uuid}"}
            item["gsi2sk"] = {"S": f"{now}#{envelope.trx_id}"}
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return ok(balance, currency)
            raise
        # 4. the balance, one operator per update
        if movement.minus > 0:
            try:
                updated = self.client.update_item(
                    TableName=self.table,
                    Key=balance_key,
                    UpdateExpression="SET balance = balance - :m",
                    ConditionExpression="balance >= :m",
                    ExpressionAttributeValues={":m": {"N": str(movement.minus)}},
                    ReturnValues="UPDATED_NEW",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    # The trx is recorded but no money moved: exactly the inconsistency described above.
                    return not_enough_money(balance, currency)
                raise
            balance = Decimal(updated["Attributes"]["balance"]["N"])
        if movement.plus > 0:
            updated = self.client.update_item(
                TableName=self.table,
                Key=balance_key,
                UpdateExpression="SET balance = balance + :p",
                ExpressionAttributeValues={":p": {"N": str(movement.plus)}},
                ReturnValues="UPDATED_NEW",
            )
            balance = Decimal(updated["Attributes"]["balance"]["N"])
        return ok(balance, currency)
