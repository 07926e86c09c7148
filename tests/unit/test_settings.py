"""Settings from the environment, and the two secrets: from the settings, or from SSM (one botocore GetParameters)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from wallet import bootstrap
from wallet.bootstrap import SECRET_CACHE_SECONDS, MissingSecret, Secrets, SecretUnavailable, build_archive_sink
from wallet.settings import DEFAULT_MAX_WRITE_ATTEMPTS, ArchiveSettings, Settings

BASE = {"WALLET_TABLE": "wallet-test"}


def test_defaults() -> None:
    settings = Settings.from_env(BASE)
    assert settings.table_name == "wallet-test"
    assert (settings.salt, settings.salt_parameter, settings.session_key, settings.session_key_parameter) == (
        None,
        None,
        None,
        None,
    )
    assert settings.session_seconds == 86400
    assert settings.credit_grace_days == 30
    assert settings.max_write_attempts == DEFAULT_MAX_WRITE_ATTEMPTS == 200  # a safety cap: the 2 s budget ends retries
    assert settings.default_currency == "FUN"


def test_everything_from_env() -> None:
    settings = Settings.from_env(
        {
            **BASE,
            "WALLET_SALT": "s4lt",
            "WALLET_SESSION_KEY_PARAMETER": "/wallet/session-key",
            "WALLET_SESSION_SECONDS": "3600",
            "WALLET_MAX_WRITE_ATTEMPTS": "5",
            "WALLET_DEFAULT_CURRENCY": "EUR",
            "WALLET_CREDIT_GRACE_DAYS": "90",
        }
    )
    assert settings.credit_grace_days == 90
    assert settings.salt is not None and settings.salt.get_secret_value() == "s4lt"
    assert settings.session_key is None
    assert settings.session_key_parameter == "/wallet/session-key"
    assert (settings.session_seconds, settings.max_write_attempts, settings.default_currency) == (3600, 5, "EUR")


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLET_TABLE", "from-os-environ")
    monkeypatch.setenv("WALLET_SESSION_SECONDS", "60")
    settings = Settings.from_env()
    assert (settings.table_name, settings.session_seconds) == ("from-os-environ", 60)


def test_empty_values_mean_unset() -> None:
    settings = Settings.from_env({**BASE, "WALLET_SALT": "", "WALLET_SALT_PARAMETER": "", "WALLET_SESSION_SECONDS": ""})
    assert settings.salt is None
    assert settings.salt_parameter is None
    assert settings.session_seconds == 86400


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WALLET_TABLE": ""},
        {"WALLET_TABLE": "ab"},
        {**BASE, "WALLET_SALT": "x", "WALLET_SALT_PARAMETER": "/wallet/salt"},
        {**BASE, "WALLET_SESSION_KEY": "x", "WALLET_SESSION_KEY_PARAMETER": "/wallet/key"},
        {**BASE, "WALLET_SESSION_SECONDS": "86401"},
        {**BASE, "WALLET_SESSION_SECONDS": "0"},
        {**BASE, "WALLET_SESSION_SECONDS": "-5"},
        {**BASE, "WALLET_SESSION_SECONDS": "a day"},
        {**BASE, "WALLET_CREDIT_GRACE_DAYS": "0"},
        {**BASE, "WALLET_CREDIT_GRACE_DAYS": "3651"},
        {**BASE, "WALLET_MAX_WRITE_ATTEMPTS": "0"},
        {**BASE, "WALLET_MAX_WRITE_ATTEMPTS": "1001"},
        {**BASE, "WALLET_DEFAULT_CURRENCY": "X" * 17},
    ],
)
def test_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings.from_env(env)


def test_both_a_secret_and_its_parameter_is_an_error_that_names_it() -> None:
    with pytest.raises(ValidationError, match="salt"):
        Settings.from_env({**BASE, "WALLET_SALT": "x", "WALLET_SALT_PARAMETER": "/wallet/salt"})


def test_largest_session_is_a_day() -> None:
    assert Settings.from_env({**BASE, "WALLET_SESSION_SECONDS": "86400"}).session_seconds == 86400


def test_secrets_never_in_repr_or_str() -> None:
    settings = Settings.from_env({**BASE, "WALLET_SALT": "very-secret-salt", "WALLET_SESSION_KEY": "very-secret-key"})
    for text in (repr(settings), str(settings), settings.model_dump_json(), repr(Secrets(settings).__dict__)):
        assert "very-secret-salt" not in text
        assert "very-secret-key" not in text
    assert "very-secret-salt" not in repr(Settings.from_env({**BASE, "WALLET_SALT": "very-secret-salt"}).salt)


def test_secrets_from_settings() -> None:
    secrets = Secrets(Settings.from_env({**BASE, "WALLET_SALT": "s4lt", "WALLET_SESSION_KEY": "k3y"}))
    assert secrets.salt() == "s4lt"
    assert secrets.session_key() == b"k3y"


@pytest.mark.parametrize(("method", "variable"), [("salt", "WALLET_SALT"), ("session_key", "WALLET_SESSION_KEY")])
def test_missing_secret(method: str, variable: str) -> None:
    secrets = Secrets(Settings.from_env(BASE))
    with pytest.raises(MissingSecret, match=f"{variable} or {variable}_PARAMETER"):
        getattr(secrets, method)()


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def test_secrets_from_ssm_secure_strings(ssm: Any) -> None:
    salt_name, key_name = f"/wallet/{uuid.uuid4().hex}/salt", f"/wallet/{uuid.uuid4().hex}/session-key"
    ssm.put_parameter(Name=salt_name, Value="ssm-salt-value", Type="SecureString")
    ssm.put_parameter(Name=key_name, Value="ssm-key-value", Type="SecureString")
    settings = Settings.from_env({**BASE, "WALLET_SALT_PARAMETER": salt_name, "WALLET_SESSION_KEY_PARAMETER": key_name})
    secrets = Secrets(settings)
    assert secrets.salt() == "ssm-salt-value"
    assert secrets.session_key() == b"ssm-key-value"
    assert "ssm-salt-value" not in repr(settings)


def test_ssm_secrets_are_cached(ssm: Any) -> None:
    name = f"/wallet/{uuid.uuid4().hex}/salt"
    ssm.put_parameter(Name=name, Value="first", Type="SecureString")
    secrets = Secrets(Settings.from_env({**BASE, "WALLET_SALT_PARAMETER": name}))
    assert secrets.salt() == "first"
    ssm.put_parameter(Name=name, Value="rotated", Type="SecureString", Overwrite=True)
    assert secrets.salt() == "first"  # a warm Lambda does not call SSM per request
    assert SECRET_CACHE_SECONDS == 300
    secrets.clear_cache()
    assert secrets.salt() == "rotated"


def test_both_ssm_secrets_come_in_one_call_on_the_default_session(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    salt_name, key_name = f"/wallet/{uuid.uuid4().hex}/salt", f"/wallet/{uuid.uuid4().hex}/session-key"
    ssm.put_parameter(Name=salt_name, Value="s", Type="SecureString")
    ssm.put_parameter(Name=key_name, Value="k", Type="SecureString")
    default_session = boto3.session.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", default_session)  # the one boto3.client() uses, restored after
    calls: list[str] = []
    default_session.events.register("before-call.ssm", lambda model, **_: calls.append(model.name))
    secrets = Secrets(
        Settings.from_env({**BASE, "WALLET_SALT_PARAMETER": salt_name, "WALLET_SESSION_KEY_PARAMETER": key_name})
    )
    assert (secrets.salt(), secrets.session_key()) == ("s", b"k")
    assert secrets.salt() == "s"
    assert calls == ["GetParameters"]  # one call for both, on the session the DynamoDB client already loaded


def test_missing_ssm_parameter_is_an_error(ssm: Any) -> None:
    name = f"/wallet/{uuid.uuid4().hex}/none"
    secrets = Secrets(Settings.from_env({**BASE, "WALLET_SALT_PARAMETER": name}))
    with pytest.raises(SecretUnavailable, match=f"Failed to fetch parameters: .*{name}"):
        secrets.salt()


def test_ssm_secrets_expire_after_the_cache_time(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"/wallet/{uuid.uuid4().hex}/salt"
    ssm.put_parameter(Name=name, Value="first", Type="SecureString")
    now = [1000.0]
    monkeypatch.setattr(bootstrap.time, "monotonic", lambda: now[0])
    secrets = Secrets(Settings.from_env({**BASE, "WALLET_SALT_PARAMETER": name}))
    assert secrets.salt() == "first"
    ssm.put_parameter(Name=name, Value="rotated", Type="SecureString", Overwrite=True)
    now[0] += SECRET_CACHE_SECONDS - 1
    assert secrets.salt() == "first"
    now[0] += 1
    assert secrets.salt() == "rotated"  # read again once SECRET_CACHE_SECONDS have passed


def test_ssm_secrets_are_asked_for_decrypted_and_kept_out_of_reprs(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    salt_name, key_name = f"/wallet/{uuid.uuid4().hex}/salt", f"/wallet/{uuid.uuid4().hex}/session-key"
    ssm.put_parameter(Name=salt_name, Value="ssm-salt-value", Type="SecureString")
    ssm.put_parameter(Name=key_name, Value="ssm-key-value", Type="SecureString")
    default_session = boto3.session.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", default_session)
    calls: list[dict[str, Any]] = []
    default_session.events.register("provide-client-params.ssm.GetParameters", lambda params, **_: calls.append(params))
    secrets = Secrets(
        Settings.from_env({**BASE, "WALLET_SALT_PARAMETER": salt_name, "WALLET_SESSION_KEY_PARAMETER": key_name})
    )
    assert (secrets.salt(), secrets.session_key()) == ("ssm-salt-value", b"ssm-key-value")
    assert calls == [{"Names": [salt_name, key_name], "WithDecryption": True}]
    for text in (repr(secrets.__dict__), repr(vars(secrets).get("_cached"))):
        assert "ssm-salt-value" not in text
        assert "ssm-key-value" not in text


# --- the ledger archive -----------------------------------------------------------------------------------------------


def test_the_archive_is_a_bucket_or_a_folder_exactly_one() -> None:
    assert ArchiveSettings.from_env({"WALLET_ARCHIVE_BUCKET": "wallet-archive"}).bucket == "wallet-archive"
    assert ArchiveSettings.from_env({"WALLET_ARCHIVE_DIR": "/srv/archive"}).folder == "/srv/archive"
    with pytest.raises(ValidationError, match="not both"):
        ArchiveSettings.from_env({"WALLET_ARCHIVE_BUCKET": "wallet-archive", "WALLET_ARCHIVE_DIR": "/srv/archive"})
    with pytest.raises(ValidationError, match="no archive configured: set WALLET_ARCHIVE_BUCKET"):
        ArchiveSettings.from_env({"WALLET_ARCHIVE_BUCKET": " ", "WALLET_ARCHIVE_DIR": ""})
    with pytest.raises(ValidationError, match="bucket"):
        ArchiveSettings.from_env({"WALLET_ARCHIVE_BUCKET": "Not_A_Bucket"})


def test_the_archive_sink_follows_the_settings(tmp_path: Path) -> None:
    from wallet.operator.archive import LocalFolderSink, S3Sink

    folder = build_archive_sink(ArchiveSettings(folder=str(tmp_path)))
    assert isinstance(folder, LocalFolderSink) and folder.root == tmp_path
    with mock_aws():
        bucket = build_archive_sink(ArchiveSettings(bucket="wallet-archive"))
    assert isinstance(bucket, S3Sink) and bucket.bucket == "wallet-archive"
