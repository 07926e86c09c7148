"""The cold-start floor (issue 14, target 1): what any Python Lambda pays to make the billing's first request with
botocore, and nothing of ours. Loaded by bench/coldstart_probe.py like a function's app.py, from the same built layer.

Init: one botocore session, an SSM and a DynamoDB client, the secrets from SSM in one GetParameters (the design keeps
them out of the environment). The first request: the BatchGetItem and the TransactWriteItems every bet makes. No
wallet code, Powertools, pydantic or X-Ray; the event is not even read.
"""

import json
import os

import botocore.session
from botocore.config import Config

_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "max_attempts": 2})
_session = botocore.session.get_session()
_ssm = _session.create_client("ssm", config=_CONFIG)
_dynamodb = _session.create_client("dynamodb", config=_CONFIG)
_TABLE = os.environ["WALLET_TABLE"]
_secrets = _ssm.get_parameters(
    Names=[os.environ["WALLET_SALT_PARAMETER"], os.environ["WALLET_SESSION_KEY_PARAMETER"]], WithDecryption=True
)["Parameters"]


def lambda_handler(_event: object, _context: object) -> dict[str, object]:
    account = {"pk": {"S": "PLAYER#cold"}, "sk": {"S": "ACCOUNT"}}
    entry = {"pk": {"S": "TRX#cold-1"}, "sk": {"S": "ENTRY"}}
    _dynamodb.batch_get_item(RequestItems={_TABLE: {"Keys": [account, entry], "ConsistentRead": True}})
    _dynamodb.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": _TABLE,
                    "Item": {**entry, "minus": {"N": "100"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": _TABLE,
                    "Key": account,
                    "UpdateExpression": "SET balance = :after, version = :next",
                    "ConditionExpression": "version = :seen AND balance >= :minus",
                    "ExpressionAttributeValues": {
                        ":after": {"N": "99900"},
                        ":next": {"N": "1"},
                        ":seen": {"N": "0"},
                        ":minus": {"N": "100"},
                    },
                }
            },
        ]
    )
    return {"statusCode": 200, "body": json.dumps({"status": "OK", "secrets": len(_secrets)})}
