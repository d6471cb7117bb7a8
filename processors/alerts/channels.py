"""Delivery of a notification to one channel, with retries and backoff (I/O edge).

Every channel returns a ``ChannelOutcome`` instead of raising, so one failing channel never
stops the others. Transient failures (timeouts, connection errors, 5xx, 429, SMTP 4xx) are
retried with exponential backoff up to ``RetryPolicy.attempts``; permanent ones (other 4xx,
SMTP 5xx, bad address) stop at once. Error texts name the failure, never a URL or a secret.

A webhook always goes out signed (HMAC-SHA256 of the body, ``X-Newswire-Signature``) with the
secret it names, or ``default``: without that secret it is not sent at all
(``secret_missing:<name>``, permanent). Webhook and Slack URLs are user input: they get the
fetcher's address guard (``newswire.http``: no loopback, private, link-local or metadata
address unless ``fetch.allow_private_networks``), checked on the resolved address at
connect time. Both carry ``X-Newswire-Delivery`` (``Notification.delivery_id``), the same
on every re-delivery of one notification to one channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import smtplib
import socket
import ssl
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from newswire.http import AddressPolicy, BlockedAddress, GuardedTransport
from processors.alerts.decide import Notification
from processors.alerts.models import ChannelOutcome
from processors.alerts.rules import (
    Channel,
    EmailChannel,
    FileChannel,
    SlackChannel,
    StdoutChannel,
    WebhookChannel,
)
from processors.alerts.settings import DEFAULT_SECRET, AlertSettings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Newswire-Signature"
TIMESTAMP_HEADER = "X-Newswire-Timestamp"
ALERT_ID_HEADER = "X-Newswire-Alert-Id"
DELIVERY_HEADER = "X-Newswire-Delivery"


class SmtpSettings(BaseSettings):
    """SMTP server for the e-mail channel (env ``NEWSWIRE_SMTP_*``)."""

    model_config = SettingsConfigDict(env_prefix="NEWSWIRE_SMTP_", extra="ignore")

    host: str | None = Field(None, description="SMTP server; unset = e-mail channel fails")
    port: int = Field(587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = Field(True, description="upgrade the connection with STARTTLS")
    ssl: bool = Field(False, description="implicit TLS (port 465) instead of STARTTLS")
    cafile: Path | None = Field(None, description="CA bundle to verify the server with")
    sender: str = "newswire@localhost"
    timeout: float = Field(20.0, gt=0)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    initial: float = 0.5  # seconds before the 2nd attempt, doubling up to ``maximum``
    maximum: float = 8.0
    timeout: float = 10.0  # one HTTP request

    def total_seconds(self, smtp_timeout: float = 0.0) -> float:
        """The longest one delivery can take: every attempt timing out, every wait."""
        waits = sum(min(self.initial * 2 ** i, self.maximum) for i in range(self.attempts - 1))
        return self.attempts * max(self.timeout, smtp_timeout) + waits


class _RedactUrls(logging.Filter):
    """httpx logs every request URL at INFO; webhook paths often carry tokens: keep the host."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                a.copy_with(path="/...", query=None) if isinstance(a, httpx.URL) else a
                for a in record.args)
        return True


def _redact_http_logs() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrls) for f in logger.filters):
        logger.addFilter(_RedactUrls())


class Transient(Exception):
    """Worth another try."""


class Permanent(Exception):
    """Trying again will not help."""


def sign(body: bytes, secret: str) -> str:
    """The signature header value: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return bool(header) and hmac.compare_digest(sign(body, secret), header or "")


def encode(notification: Notification) -> bytes:
    return json.dumps(notification.payload(), ensure_ascii=False, sort_keys=True).encode()


def text_summary(notification: Notification) -> tuple[str, str]:
    """(subject, plain text body) for e-mail and chat channels."""
    rule = notification.rule
    lines = []
    for alert in notification.alerts:
        first = alert.first
        lines.append(f"- {first.title or first.url}\n  {first.url}\n  source: {first.source}"
                     + (f"; killed: {alert.killed}" if alert.killed is not None else ""))
        if alert.also_reported_by:
            lines.append("  also reported by: "
                         + ", ".join(r.source or r.url for r in alert.also_reported_by))
    if notification.kind == "alert":
        subject = f"{rule.name}: {notification.alerts[0].first.title or 'new story'}"
    else:
        subject = f"{rule.name}: {len(notification.alerts)} new stories"
    body = f"Alert rule '{rule.name}' (query: {rule.query or '*'})\n\n" + "\n".join(lines) + "\n"
    return subject, body


def _http_error(response: httpx.Response) -> Exception:
    code = response.status_code
    if code in (408, 425, 429) or code >= 500:
        return Transient(f"http_{code}")
    return Permanent(f"http_{code}")


def refused_destination(url: str, allow_private: bool) -> str | None:
    """Why a webhook URL may not be posted to (``None`` = fine, as far as can be told here).

    For rule creation: the same address rule as at delivery, on an IP literal or on what the
    host resolves to here. A host that does not resolve here passes: the worker resolves it
    again and checks then (and a name may resolve differently there).
    """
    policy = AddressPolicy(allow_private)
    host = (httpx.URL(url).host or "").strip("[]")
    if not host:
        return "no host"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        why = policy.refuses(address)
        if why:
            return f"{host} is a {why}" if str(address) == host else \
                f"{host} resolves to a {why}"
    return None


def _blocked(exc: BaseException) -> str:
    # BlockedAddress says "<host> resolves to <ip> (<why>)": keep only the why (no host/IP:
    # a Slack URL is a secret)
    found = re.search(r"\(([^()]*)\)\s*$", str(exc))
    return "blocked_address:" + (found.group(1).replace(" ", "_") if found else "refused")


class Deliverer:
    """Sends notifications; one per worker, owns the HTTP client of the running loop.

    ``allow_private_networks`` (the fetch setting of the same name) lifts the address guard
    on webhook/Slack URLs; a ``client`` given here is used as it is (no guard).
    """

    def __init__(self, smtp: SmtpSettings | None = None, policy: RetryPolicy | None = None,
                 client: httpx.AsyncClient | None = None,
                 settings: AlertSettings | None = None,
                 allow_private_networks: bool = False) -> None:
        self.smtp = smtp or SmtpSettings()
        self.policy = policy or RetryPolicy()
        self.settings = settings or AlertSettings()
        self.address_policy = AddressPolicy(allow_private_networks)
        self._client = client
        _redact_http_logs()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=GuardedTransport(self.address_policy, max_connections=100),
                timeout=self.policy.timeout, follow_redirects=False, trust_env=False,
                headers={"User-Agent": "newswire-alerts/0.1"})
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def deliver_all(self, channels: tuple[Channel, ...], notification: Notification,
                          indexes: tuple[int, ...] | None = None) -> tuple[ChannelOutcome, ...]:
        """``indexes``: each channel's position in the rule (default 0, 1, ...)."""
        positions = indexes if indexes is not None else tuple(range(len(channels)))
        results = await asyncio.gather(*(self.deliver(c, notification, i)
                                         for c, i in zip(channels, positions, strict=True)))
        return tuple(results)

    async def deliver(self, channel: Channel, notification: Notification,
                      index: int = 0) -> ChannelOutcome:
        attempts = 0
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=wait_exponential(multiplier=self.policy.initial, max=self.policy.maximum),
            retry=retry_if_exception_type(Transient),
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    await self._send_once(channel, notification, index)
        except RetryError as exc:
            error = str(exc.last_attempt.exception())
            log.warning("alert delivery gave up channel=%s rule=%s alert=%s attempts=%d error=%s",
                        channel.label, notification.rule.id, notification.id, attempts, error)
            return ChannelOutcome(channel=channel.label, ok=False, attempts=attempts, error=error)
        except Permanent as exc:
            log.warning("alert delivery refused channel=%s rule=%s alert=%s attempts=%d error=%s",
                        channel.label, notification.rule.id, notification.id, attempts, exc)
            return ChannelOutcome(channel=channel.label, ok=False, attempts=attempts,
                                  error=str(exc))
        except Exception as exc:  # a bug in a channel must not stop the others
            log.exception("alert channel bug channel=%s rule=%s", channel.label,
                          notification.rule.id)
            return ChannelOutcome(channel=channel.label, ok=False, attempts=attempts,
                                  error=f"exception:{type(exc).__name__}")
        log.info("alert delivered channel=%s rule=%s alert=%s attempts=%d",
                 channel.label, notification.rule.id, notification.id, attempts)
        return ChannelOutcome(channel=channel.label, ok=True, attempts=attempts)

    async def _send_once(self, channel: Channel, notification: Notification,
                         index: int) -> None:
        if isinstance(channel, WebhookChannel):
            await self._webhook(channel, notification, index)
        elif isinstance(channel, SlackChannel):
            await self._slack(channel, notification, index)
        elif isinstance(channel, EmailChannel):
            await asyncio.to_thread(self._email, channel, notification)
        elif isinstance(channel, FileChannel):
            await asyncio.to_thread(_append_line, Path(channel.path), encode(notification))
        elif isinstance(channel, StdoutChannel):
            sys.stdout.write(encode(notification).decode() + "\n")
            sys.stdout.flush()
        else:  # pragma: no cover - the union is closed
            raise Permanent(f"unknown channel type {type(channel).__name__}")

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except BlockedAddress as exc:  # raised by the guarded connect, not wrapped by httpx
            raise Permanent(_blocked(exc)) from None
        except httpx.TimeoutException as exc:
            raise Transient(f"timeout:{type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise Transient(f"transport:{type(exc).__name__}") from None
        if response.status_code >= 300:
            raise _http_error(response)

    async def _webhook(self, channel: WebhookChannel, notification: Notification,
                       index: int) -> None:
        body = encode(notification)
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(int(time.time())),
            ALERT_ID_HEADER: notification.id,
            DELIVERY_HEADER: notification.delivery_id(index),
            SIGNATURE_HEADER: sign(body, self._webhook_secret(channel)),
        }
        await self._post(channel.url, body, headers)

    def _webhook_secret(self, channel: WebhookChannel) -> str:
        if channel.secret is not None:  # a legacy rule with its secret inline
            return channel.secret.get_secret_value()
        name = channel.secret_name or DEFAULT_SECRET
        value = self.settings.secret(name)
        if value is None:  # a webhook is never sent unsigned
            raise Permanent(f"secret_missing:{name}")
        return value

    async def _slack(self, channel: SlackChannel, notification: Notification,
                     index: int) -> None:
        if channel.url is not None:  # legacy inline URL
            url = channel.url.get_secret_value()
        else:
            assert channel.url_secret is not None  # the model requires one of the two
            found = self.settings.secret(channel.url_secret)
            if found is None:
                raise Permanent(f"secret_missing:{channel.url_secret}")
            if not found.startswith(("http://", "https://")):
                raise Permanent(f"secret_not_a_url:{channel.url_secret}")
            url = found
        subject, text = text_summary(notification)
        body = json.dumps({"text": f"*{subject}*\n{text}"}, ensure_ascii=False).encode()
        await self._post(url, body, {"Content-Type": "application/json",
                                     DELIVERY_HEADER: notification.delivery_id(index)})

    def _email(self, channel: EmailChannel, notification: Notification) -> None:
        smtp = self.smtp
        if not smtp.host:
            raise Permanent("smtp_not_configured")
        subject, text = text_summary(notification)
        msg = EmailMessage()
        msg["From"] = smtp.sender
        msg["To"] = ", ".join(channel.to)
        msg["Subject"] = f"{channel.subject_prefix} {subject}".strip()
        msg["Message-ID"] = make_msgid(idstring=notification.id[:16], domain="newswire")
        msg.set_content(text)
        context = ssl.create_default_context(cafile=str(smtp.cafile) if smtp.cafile else None)
        try:
            if smtp.ssl:
                server: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port,
                                                        timeout=smtp.timeout, context=context)
            else:
                server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
            with server:
                if smtp.starttls and not smtp.ssl:
                    server.starttls(context=context)
                if smtp.username:
                    server.login(smtp.username,
                                 smtp.password.get_secret_value() if smtp.password else "")
                server.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise Permanent(f"smtp_auth_{exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused:
            raise Permanent("smtp_recipients_refused") from None
        except smtplib.SMTPNotSupportedError:
            raise Permanent("smtp_starttls_not_supported") from None
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise Transient(f"smtp_{exc.smtp_code}") from None
            raise Permanent(f"smtp_{exc.smtp_code}") from None
        except ssl.SSLError as exc:
            raise Permanent(f"smtp_tls:{exc.reason}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Transient(f"smtp:{type(exc).__name__}") from None


def _append_line(path: Path, line: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as fh:
            fh.write(line + b"\n")
    except OSError as exc:
        raise Transient(f"file:{type(exc).__name__}") from None


def describe(channel: Channel) -> dict[str, Any]:
    """Public view of a channel (secrets masked)."""
    return channel.model_dump(mode="json")
