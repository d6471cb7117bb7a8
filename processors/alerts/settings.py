"""Settings of the alert stage (env ``NEWSWIRE_ALERTS__*``), built once by the worker.

Secrets live here, never in a rule: a rule names a secret (``secret_name`` of a webhook,
``url_secret`` of a Slack channel) and the worker that delivers looks the value up::

    NEWSWIRE_ALERTS__SECRETS__OPS=whsec-...          # a webhook's HMAC key, named "ops"
    NEWSWIRE_ALERTS__SECRETS__SLACK_DESK=https://hooks.slack.com/services/...
    NEWSWIRE_ALERTS__SECRETS__DEFAULT=whsec-...      # signs webhooks that name no secret

So the rules topic, the API, the CLI and the logs only ever carry names.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "default"
SECRET_NAME = r"^[A-Za-z0-9_]{1,64}$"


class AlertSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSWIRE_ALERTS__", env_nested_delimiter="__",
                                      extra="ignore")

    secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="named secrets the rules refer to (names are "
        "case-insensitive); 'default' signs webhooks that name none")
    flush_interval: float = Field(
        5.0, gt=0, description="seconds between checks for due digests and throttled alerts")
    sync_interval: float = Field(10.0, gt=0, description="seconds between rules-table re-syncs")
    hourly_window: int = Field(3600, ge=1, description="seconds of an 'hourly' digest window")
    daily_window: int = Field(86_400, ge=1, description="seconds of a 'daily' digest window")
    resend_after: float | None = Field(
        None, gt=0, description="seconds an alert may stay 'sending' before it counts as cut "
        "off by a crash and is sent again (unset = twice the longest retried delivery)")

    @field_validator("secrets")
    @classmethod
    def _lower(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return {k.lower(): v for k, v in value.items()}

    def secret(self, name: str) -> str | None:
        value = self.secrets.get(name.lower())
        return value.get_secret_value() if value is not None else None

    @property
    def digest_windows(self) -> dict[str, int]:
        return {"hourly": self.hourly_window, "daily": self.daily_window}


def load_alert_settings(**overrides: object) -> AlertSettings:
    """Built once, in the worker's or the CLI's entry point (reads the environment)."""
    return AlertSettings(**overrides)  # type: ignore[arg-type]
