"""Unit-level override of `moto_client`: same contract (a fresh moto DynamoDB with the table "wallet-test" per test),
but the client comes from one long-lived boto3 session, so botocore does not reload its JSON models for every test
(that alone made each test's setup ~0.3 s)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from wallet_local.table import create_table

_SESSION = boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def boto_session() -> boto3.session.Session:
    """The long-lived session, for code that calls boto3.client() itself (patch boto3.DEFAULT_SESSION with it)."""
    return _SESSION


@pytest.fixture
def moto_client() -> Iterator[object]:
    with mock_aws():
        client = _SESSION.client("dynamodb", region_name="us-east-1")
        create_table(client, "wallet-test")
        yield client
