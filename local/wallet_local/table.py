"""Create the wallet table from its definition in template.yaml, so local and AWS cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wallet_local.paths import TEMPLATE

TABLE_LOGICAL_ID = "WalletTable"
_CREATE_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "BillingMode",
    "StreamSpecification",
)


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as plain values; the table needs none of them."""


def _tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _tag)


def template_document(template: Path = TEMPLATE) -> dict[str, Any]:
    """The template, with its short-form tags read as plain values (!GetAtt X.Y is the text "X.Y")."""
    document = yaml.load(template.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    return dict(document)


def table_properties(template: Path = TEMPLATE) -> dict[str, Any]:
    resource = template_document(template)["Resources"][TABLE_LOGICAL_ID]
    if resource["Type"] != "AWS::DynamoDB::Table":
        raise ValueError(f"{TABLE_LOGICAL_ID} is not an AWS::DynamoDB::Table")
    return dict(resource["Properties"])


def create_table_request(table_name: str, template: Path = TEMPLATE) -> dict[str, Any]:
    properties = table_properties(template)
    request = {key: properties[key] for key in _CREATE_TABLE_KEYS if key in properties}
    if "StreamSpecification" in request:
        # CloudFormation enables the stream by the property's presence; the CreateTable API wants it said.
        request["StreamSpecification"] = {"StreamEnabled": True, **request["StreamSpecification"]}
    request["TableName"] = table_name
    return request


def create_table(client: Any, table_name: str, template: Path = TEMPLATE) -> None:
    client.create_table(**create_table_request(table_name, template))
    client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
