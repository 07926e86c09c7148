"""Settings, parsed once from the environment: the money path's (Settings), the catalogue's (CatalogueSettings) and
the ledger archive's (ArchiveSettings).

The secrets (salt, session key) are SecretStr values or the names of their SSM parameters; wallet.bootstrap.Secrets
reads them. A repr or a log line never shows a value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from wallet.money.allowlist import Network, parse_networks
from wallet.money.sessions import MAX_SESSION_SECONDS

DEFAULT_CREDIT_GRACE_DAYS = 30
MAX_CREDIT_GRACE_DAYS = 3650
# The attempts of one movement (money/mover.py): its 2 s time budget ends the retries, long before this cap, which
# only keeps a clock that does not move from spinning forever (WALLET_MAX_WRITE_ATTEMPTS).
DEFAULT_MAX_WRITE_ATTEMPTS = 200
MAX_WRITE_ATTEMPTS_LIMIT = 1000


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
    max_write_attempts: Annotated[int, Field(ge=1, le=MAX_WRITE_ATTEMPTS_LIMIT)] = DEFAULT_MAX_WRITE_ATTEMPTS
    default_currency: Annotated[str, Field(min_length=1, max_length=16)] = "FUN"
    # The site's front (CloudFront in AWS, `wallet local` here): the operator API's play_url points at its game page.
    site_url: Annotated[str | None, Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")] = None
    # The Games Server's addresses, the only sources the billing answers (money/allowlist.py); none admits nobody.
    games_server_cidrs: tuple[Network, ...] = ()

    @field_validator("games_server_cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        return parse_networks(value) if isinstance(value, str) else value

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
            "max_write_attempts": env.get("WALLET_MAX_WRITE_ATTEMPTS") or DEFAULT_MAX_WRITE_ATTEMPTS,
            "default_currency": env.get("WALLET_DEFAULT_CURRENCY") or "FUN",
            "site_url": env.get("WALLET_SITE_URL") or None,
            "games_server_cidrs": env.get("WALLET_GAMES_SERVER_CIDRS") or "",
        }
        return cls.model_validate(values)


class SecretSource(Protocol):
    """Where the use cases get the two secrets (wallet.bootstrap.Secrets reads them from SSM or the environment)."""

    def salt(self) -> str: ...

    def session_key(self) -> bytes: ...


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


ARCHIVE_BUCKET_VARIABLE = "WALLET_ARCHIVE_BUCKET"
ARCHIVE_DIR_VARIABLE = "WALLET_ARCHIVE_DIR"


class ArchiveSettings(BaseModel):
    """Where the ledger exporter writes the archive: the S3 bucket (AWS) or a local folder (`wallet local`), exactly
    one of them (the same layout in both; wallet.operator.archive)."""

    model_config = ConfigDict(frozen=True)

    bucket: Annotated[str | None, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.\-]*[a-z0-9]$")] = None
    folder: Annotated[str | None, Field(min_length=1)] = None

    @model_validator(mode="after")
    def _exactly_one_destination(self) -> ArchiveSettings:
        if self.bucket and self.folder:
            raise ValueError(
                f"set {ARCHIVE_BUCKET_VARIABLE} (the S3 bucket) or {ARCHIVE_DIR_VARIABLE} (a local folder), not both"
            )
        if not self.bucket and not self.folder:
            raise ValueError(
                f"no archive configured: set {ARCHIVE_BUCKET_VARIABLE} (the S3 bucket) or {ARCHIVE_DIR_VARIABLE} "
                "(a local folder)"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ArchiveSettings:
        env = os.environ if environ is None else environ
        return cls.model_validate(
            {
                "bucket": env.get(ARCHIVE_BUCKET_VARIABLE, "").strip() or None,
                "folder": env.get(ARCHIVE_DIR_VARIABLE, "").strip() or None,
            }
        )
