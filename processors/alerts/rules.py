"""The alert rule: a saved search (query + filters) with delivery channels.

A rule travels on the compacted rules topic (key = rule id, tombstone = delete) and lives
in a Faust table on every worker. A rule carries no secret: a webhook names its HMAC key
(``secret_name``) and a Slack channel the secret holding its URL (``url_secret``); the
values live in the workers' settings (``processors.alerts.settings``). The inline
``secret``/``url`` fields are read only for rules written before that (the store refuses to
write them); they stay masked everywhere but the topic.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    model_validator,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    field_serializer,
    field_validator,
)

from newswire.records import Record, UTCDateTime, utcnow
from processors.alerts.settings import DEFAULT_SECRET, SECRET_NAME, AlertSettings

DIGEST_SECONDS: dict[str, int] = {"hourly": 3600, "daily": 86_400}


def new_rule_id() -> str:
    return secrets.token_hex(6)


def _secret_out(value: SecretStr | None, info: SerializationInfo) -> str | None:
    if value is None:
        return None
    if info.context and info.context.get("reveal_secrets"):
        return value.get_secret_value()
    return "**********"


def _host(url: str) -> str:
    # Only the host goes into logs and labels: webhook paths often carry tokens.
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]


class _Channel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookChannel(_Channel):
    """JSON POST, signed with HMAC-SHA256 of the body with the named secret (or 'default');
    never sent unsigned: without that secret on the worker it is a failed delivery."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(pattern=r"^https?://")
    secret_name: str | None = Field(None, pattern=SECRET_NAME,
                                    description="NEWSWIRE_ALERTS__SECRETS__<name> signs it")
    secret: SecretStr | None = Field(None, description="legacy inline secret: read, not written")

    @field_serializer("secret")
    def _ser_secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _secret_out(value, info)

    @property
    def label(self) -> str:
        return f"webhook:{_host(self.url)}"

    @property
    def signing_secret(self) -> str | None:
        """Name of the settings secret that signs it (``None``: a legacy inline secret)."""
        return None if self.secret is not None else (self.secret_name or DEFAULT_SECRET)


class SlackChannel(_Channel):
    """Slack-compatible incoming webhook; its URL is itself the credential, so the rule
    names the secret that holds it (``url_secret``)."""

    type: Literal["slack"] = "slack"
    url_secret: str | None = Field(None, pattern=SECRET_NAME,
                                   description="NEWSWIRE_ALERTS__SECRETS__<name> = the URL")
    url: SecretStr | None = Field(None, description="legacy inline URL: read, not written")

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("slack url must be http(s)")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> SlackChannel:
        if (self.url is None) == (self.url_secret is None):
            raise ValueError("a slack channel needs url_secret (the name of the secret "
                             "holding its URL)")
        return self

    @field_serializer("url")
    def _ser_url(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        return _secret_out(value, info)

    @property
    def label(self) -> str:
        if self.url_secret:
            return f"slack:{self.url_secret}"
        return f"slack:{_host(self.url.get_secret_value())}" if self.url else "slack"


class EmailChannel(_Channel):
    """Mail over SMTP; server and credentials come from ``SmtpSettings``, not the rule."""

    type: Literal["email"] = "email"
    to: tuple[str, ...] = Field(min_length=1)
    subject_prefix: str = "[newswire]"

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for addr in value:
            if "@" not in addr or any(c in addr for c in "\r\n ,;"):
                raise ValueError(f"not an e-mail address: {addr!r}")
        return value

    @property
    def label(self) -> str:
        return f"email:{len(self.to)}"


class FileChannel(_Channel):
    """JSON lines appended to a local file."""

    type: Literal["file"] = "file"
    path: str = Field(min_length=1)

    @property
    def label(self) -> str:
        return "file"


class StdoutChannel(_Channel):
    """JSON lines on the worker's standard output."""

    type: Literal["stdout"] = "stdout"

    @property
    def label(self) -> str:
        return "stdout"


Channel = Annotated[
    WebhookChannel | SlackChannel | EmailChannel | FileChannel | StdoutChannel,
    Field(discriminator="type"),
]


class RuleFilters(BaseModel):
    """The same filters as the search: each non-empty list is an any-of; lists are ANDed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conflicts: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    min_killed: int | None = Field(None, ge=0)
    min_casualties: int | None = Field(None, ge=0, description="killed + injured")

    @property
    def empty(self) -> bool:
        return not (self.conflicts or self.event_types or self.countries or self.sources
                    or self.languages) and self.min_killed is None and self.min_casualties is None


class Rule(Record):
    """A saved search that alerts. ``id`` is the Kafka key of the rules topic."""

    id: str = Field(default_factory=new_rule_id, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    query: str = Field("", max_length=4000, description="search syntax; empty = every article")
    filters: RuleFilters = RuleFilters()
    channels: tuple[Channel, ...] = ()
    throttle: float = Field(0.0, ge=0, description="min seconds between two alerts of this rule")
    digest: Literal["hourly", "daily"] | None = None
    paused: bool = False
    created: UTCDateTime = Field(default_factory=utcnow)
    updated: UTCDateTime = Field(default_factory=utcnow)

    def to_wire(self) -> bytes:
        """The rules-topic value. The store refuses rules with inline secrets; a legacy rule
        read back from the topic keeps its inline value, so it still round-trips."""
        return self.model_dump_json(context={"reveal_secrets": True}).encode()

    def inline_secrets(self) -> list[str]:
        """Labels of the channels that carry a secret value instead of a secret's name."""
        return [c.label for c in self.channels
                if (isinstance(c, WebhookChannel) and c.secret is not None)
                or (isinstance(c, SlackChannel) and c.url is not None)]

    def secret_names(self) -> list[str]:
        """Names of the settings secrets this rule's channels need (``default`` when a
        webhook names none: it signs with that one, and is not sent without it)."""
        names: list[str] = []
        for c in self.channels:
            name = None
            if isinstance(c, WebhookChannel):
                name = c.signing_secret
            elif isinstance(c, SlackChannel) and c.url is None:
                name = c.url_secret
            if name and name.lower() not in names:
                names.append(name.lower())
        return names

    def public(self) -> dict[str, Any]:
        """JSON-ready view for the API/CLI: secrets masked."""
        return self.model_dump(mode="json")

    def to_bytes(self) -> bytes:  # never let the generic path drop secrets silently
        return self.to_wire()


def secret_notes(rule: Rule, known: AlertSettings) -> list[str]:
    """Which secret signs the rule's webhooks, and any secret not set in this environment
    (the CLI or web server may run elsewhere than the workers: said, not refused)."""
    notes: list[str] = []
    for channel in rule.channels:
        if isinstance(channel, WebhookChannel) and channel.signing_secret:
            notes.append(f"{channel.label} is signed with secret {channel.signing_secret!r} "
                         f"(NEWSWIRE_ALERTS__SECRETS__{channel.signing_secret.upper()})")
    for needed in rule.secret_names():
        if known.secret(needed) is None:
            notes.append(f"warning: secret {needed!r} is not set here; the workers need "
                         f"NEWSWIRE_ALERTS__SECRETS__{needed.upper()}, or this rule's "
                         f"{'webhooks are' if needed in _webhook_secrets(rule) else 'channel is'}"
                         " not sent (dead letter secret_missing)")
    return notes


def _webhook_secrets(rule: Rule) -> set[str]:
    return {c.signing_secret.lower() for c in rule.channels
            if isinstance(c, WebhookChannel) and c.signing_secret}
