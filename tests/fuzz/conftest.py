"""The fuzz suite's `moto_client`: the same contract as tests/conftest.py's (a fresh moto DynamoDB with the table
"wallet-test" per test), with the client made from one long-lived boto3 session, so botocore does not reload its
models for each of the many small tests here."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from wallet_local.table import create_table

_SESSION = boto3.session.Session(region_name="us-east-1")


@pytest.fixture
def boto_session() -> boto3.session.Session:
    return _SESSION


@pytest.fixture
def moto_client() -> Iterator[object]:
    with mock_aws():
        client = _SESSION.client("dynamodb", region_name="us-east-1")
        create_table(client, "wallet-test")
        yield client
