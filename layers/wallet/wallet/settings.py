"""Settings, parsed once from the environment, and the two secrets (salt, session key).

In AWS the secrets live in SSM Parameter Store as SecureString and are read through Powertools parameters (cached,
so a warm Lambda does not call SSM per request). Locally they come from WALLET_SALT / WALLET_SESSION_KEY. The values
are held as SecretStr so that a repr or a log line never shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

from botocore.config import Config
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from wallet.sessions import MAX_SESSION_SECONDS

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

SECRET_CACHE_SECONDS = 300
DEFAULT_CREDIT_GRACE_DAYS = 30
MAX_CREDIT_GRACE_DAYS = 3650
# A cold start waits on this call: fail within seconds (a 500, the provider retries) rather than botocore's 60 s.
SSM_CLIENT_CONFIG = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3})


class MissingSecret(RuntimeError):
    """Neither the secret's value nor the name of its SSM parameter is configured."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: Annotated[str, Field(min_length=3, max_length=255)]
    salt: SecretStr | None = None
    salt_parameter: str | None = None
    session_key: SecretStr | None = None
    session_key_parameter: str | None = None
    session_seconds: Annotated[int, Field(gt=0, le=MAX_SESSION_SECONDS)] = MAX_SESSION_SECONDS
    # How long after a session expired a win, cancel refund or zero win on it still lands (docs/PROTOCOL.md).
    credit_grace_days: Annotated[int, Field(ge=1, le=MAX_CREDIT_GRACE_DAYS)] = DEFAULT_CREDIT_GRACE_DAYS
    max_write_attempts: Annotated[int, Field(ge=1, le=50)] = 10
    default_currency: Annotated[str, Field(min_length=1, max_length=16)] = "FUN"

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> Settings:
        for value, parameter, name in (
            (self.salt, self.salt_parameter, "salt"),
            (self.session_key, self.session_key_parameter, "session key"),
        ):
            if value is not None and parameter:
                raise ValueError(f"set the {name} or the name of its SSM parameter, not both")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {
            "table_name": env.get("WALLET_TABLE", ""),
            "salt": env.get("WALLET_SALT") or None,
            "salt_parameter": env.get("WALLET_SALT_PARAMETER") or None,
            "session_key": env.get("WALLET_SESSION_KEY") or None,
            "session_key_parameter": env.get("WALLET_SESSION_KEY_PARAMETER") or None,
            "session_seconds": env.get("WALLET_SESSION_SECONDS") or MAX_SESSION_SECONDS,
            "credit_grace_days": env.get("WALLET_CREDIT_GRACE_DAYS") or DEFAULT_CREDIT_GRACE_DAYS,
            "max_write_attempts": env.get("WALLET_MAX_WRITE_ATTEMPTS") or 10,
            "default_currency": env.get("WALLET_DEFAULT_CURRENCY") or "FUN",
        }
        return cls.model_validate(values)


class Secrets:
    """Reads the secrets on first use and keeps them for SECRET_CACHE_SECONDS (rotation is picked up after that)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._ssm: SSMProvider | None = None

    def salt(self) -> str:
        return self._resolve(self._settings.salt, self._settings.salt_parameter, "WALLET_SALT")

    def session_key(self) -> bytes:
        return self._resolve(
            self._settings.session_key, self._settings.session_key_parameter, "WALLET_SESSION_KEY"
        ).encode("utf-8")

    def clear_cache(self) -> None:
        """Forget the values read from SSM: the next use reads them again (as after SECRET_CACHE_SECONDS)."""
        if self._ssm is not None:
            self._ssm.clear_cache()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated

    def _resolve(self, value: SecretStr | None, parameter: str | None, variable: str) -> str:
        if value is not None:
            return value.get_secret_value()
        if parameter:
            return self._from_ssm(parameter)
        raise MissingSecret(f"set {variable} or {variable}_PARAMETER")

    def _from_ssm(self, parameter: str) -> str:
        if self._ssm is None:
            # Imported here: only the AWS path needs SSM, and the imports cost cold-start time.
            import boto3
            from aws_lambda_powertools.utilities.parameters import SSMProvider

            # boto3's default session, which the DynamoDB client has already loaded: Powertools' own provider would
            # build a new session and load botocore's data files again (~60 ms of a cold start).
            self._ssm = SSMProvider(boto3_client=boto3.client("ssm", config=SSM_CLIENT_CONFIG))
        # Every SSM secret in one GetParameters call: a cold start's first request needs both.
        wanted: dict[str, dict[str, object]] = {
            name: {} for name in (self._settings.salt_parameter, self._settings.session_key_parameter) if name
        }
        values = self._ssm.get_parameters_by_name(wanted, decrypt=True, max_age=SECRET_CACHE_SECONDS)
        return str(values[parameter])


class CatalogueSettings(BaseModel):
    """The games catalogue: where games_config comes from, where it is published, and how the game page is built."""

    model_config = ConfigDict(frozen=True)

    bucket: Annotated[str, Field(min_length=3, max_length=63)]
    distribution_id: str | None = None
    games_config_url: str | None = None
    fetch_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    path_to_storage: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_\-/]*$")] = "/media"
    customer_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = "local"
    cache_seconds: Annotated[int, Field(ge=0, le=3600)] = 60

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CatalogueSettings:
        env = os.environ if environ is None else environ
        values = {
            "bucket": env.get("WALLET_CATALOGUE_BUCKET", ""),
            "distribution_id": env.get("WALLET_DISTRIBUTION_ID") or None,
            "games_config_url": env.get("WALLET_GAMES_CONFIG_URL") or None,
            "fetch_timeout_seconds": env.get("WALLET_FETCH_TIMEOUT_SECONDS") or 10.0,
            "path_to_storage": env.get("WALLET_PATH_TO_STORAGE") or "/media",
            "customer_id": env.get("WALLET_CUSTOMER_ID") or "local",
            "cache_seconds": env.get("WALLET_CATALOGUE_CACHE_SECONDS") or 60,
        }
        return cls.model_validate(values)
