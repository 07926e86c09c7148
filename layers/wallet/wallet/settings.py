"""Settings, parsed once from the environment, and the two secrets (salt, session key).

In AWS the secrets live in SSM Parameter Store as SecureString and are read through Powertools parameters (cached,
so a warm Lambda does not call SSM per request). Locally they come from WALLET_SALT / WALLET_SESSION_KEY. The values
are held as SecretStr so that a repr or a log line never shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from wallet.sessions import MAX_SESSION_SECONDS

SECRET_CACHE_SECONDS = 300


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
            "max_write_attempts": env.get("WALLET_MAX_WRITE_ATTEMPTS") or 10,
            "default_currency": env.get("WALLET_DEFAULT_CURRENCY") or "FUN",
        }
        return cls.model_validate(values)


class Secrets:
    """Reads each secret on first use and keeps it for SECRET_CACHE_SECONDS (rotation is picked up after that)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def salt(self) -> str:
        return self._resolve(self._settings.salt, self._settings.salt_parameter, "WALLET_SALT")

    def session_key(self) -> bytes:
        return self._resolve(
            self._settings.session_key, self._settings.session_key_parameter, "WALLET_SESSION_KEY"
        ).encode("utf-8")

    @staticmethod
    def _resolve(value: SecretStr | None, parameter: str | None, variable: str) -> str:
        if value is not None:
            return value.get_secret_value()
        if parameter:
            # Imported here: only the AWS path needs SSM, and the import costs cold-start time.
            from aws_lambda_powertools.utilities import parameters

            secret = parameters.get_parameter(parameter, decrypt=True, max_age=SECRET_CACHE_SECONDS)
            return str(secret)
        raise MissingSecret(f"set {variable} or {variable}_PARAMETER")


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
