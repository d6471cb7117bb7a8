"""Channels against real loopback servers: signed webhooks, retries, SMTP with STARTTLS."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from newswire.broker import free_port
from processors.alerts.channels import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Deliverer,
    RetryPolicy,
    SmtpSettings,
)
from processors.alerts.decide import Notification
from processors.alerts.models import Alert, ArticleRef
from processors.alerts.rules import (
    EmailChannel,
    FileChannel,
    Rule,
    SlackChannel,
    WebhookChannel,
)
from processors.alerts.settings import AlertSettings

SECRET = "whsec-7f3a-very-secret"
SLACK_TOKEN = "T000-B000-XXXXXXXXsecretslackpath"
FAST = RetryPolicy(attempts=3, initial=0.01, maximum=0.05, timeout=5.0)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Receiver:
    """A loopback HTTP server recording requests; ``status[path]`` sets the reply code."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status: dict[str, int] = {}
        self.hold: dict[str, threading.Event] = {}  # path -> reply only once this is set
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers), body))
                if self.path in outer.hold:
                    outer.hold[self.path].wait(60)
                self.send_response(outer.status.get(self.path, 200))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def hits(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for p, h, b in self.requests if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def notification(rule: Rule, n: int = 1) -> Notification:
    alerts = tuple(
        Alert(id=f"al{i}", rule_id=rule.id, story_id=f"s{i}", first_seen=NOW,
              first=ArticleRef(id=f"a{i}", url=f"https://bbc.co.uk/{i}", title=f"Strike {i}",
                               source="bbc.co.uk", ingested=NOW),
              also_reported_by=(ArticleRef(id="b", url="https://ap.org/1", source="ap.org",
                                           ingested=NOW),))
        for i in range(n))
    return Notification("alert" if n == 1 else "digest", rule, alerts, NOW)


def settings_with(receiver_url: str = "http://127.0.0.1:9", **more: str) -> AlertSettings:
    """The workers' named secrets: the rules only name them."""
    return AlertSettings(secrets={  # type: ignore[arg-type]
        "hook": SECRET, "default": "default-secret",
        "slack_desk": f"{receiver_url}/services/{SLACK_TOKEN}", **more})


def deliver(rule: Rule, note: Notification, **kw: Any) -> list[Any]:
    kw.setdefault("settings", settings_with())
    kw.setdefault("allow_private_networks", True)  # the receivers are on loopback

    async def run() -> list[Any]:
        d = Deliverer(policy=FAST, **kw)
        try:
            return list(await d.deliver_all(rule.channels, note))
        finally:
            await d.aclose()
    return asyncio.run(run())


def test_webhook_body_is_signed_with_the_named_secret(receiver: Receiver) -> None:
    rule = Rule(name="iran", query="iran",
                channels=(WebhookChannel(url=receiver.url + "/hook", secret_name="HOOK"),))
    [outcome] = deliver(rule, notification(rule))
    assert outcome.ok and outcome.attempts == 1
    [(headers, body)] = receiver.hits("/hook")
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    wrong = "sha256=" + hmac.new(b"other", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] != wrong
    assert abs(int(headers[TIMESTAMP_HEADER]) - datetime.now(UTC).timestamp()) < 300
    payload = json.loads(body)
    assert payload["type"] == "alert" and payload["rule"]["id"] == rule.id
    assert payload["story"]["url"] == "https://bbc.co.uk/0"
    assert payload["story"]["also_reported_by"][0]["source"] == "ap.org"


def test_failing_channel_is_retried_then_given_up_while_the_other_receives(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.status["/down"] = 503
    rule = Rule(name="r", query="x", channels=(
        WebhookChannel(url=receiver.url + "/down", secret_name="hook"),
        SlackChannel(url_secret="slack_desk"),
    ))
    caplog.set_level(logging.DEBUG)
    down, slack = deliver(rule, notification(rule, 2), settings=settings_with(receiver.url))
    assert not down.ok and down.attempts == FAST.attempts and down.error == "http_503"
    assert len(receiver.hits("/down")) == FAST.attempts
    assert slack.ok
    [(_, body)] = receiver.hits(f"/services/{SLACK_TOKEN}")
    text = json.loads(body)["text"]
    assert "2 new stories" in text and "also reported by: ap.org" in text
    # secrets never reach the logs, the outcomes or the rule's public view
    for leaked in (SECRET, SLACK_TOKEN):
        assert leaked not in caplog.text
        assert leaked not in repr(down) + repr(slack)
        assert leaked not in json.dumps(rule.public())


def test_a_missing_named_secret_fails_without_sending_and_default_signs_the_rest(
        receiver: Receiver, tmp_path: Path) -> None:
    rule = Rule(name="r", query="x", channels=(
        WebhookChannel(url=receiver.url + "/named", secret_name="nowhere"),
        SlackChannel(url_secret="nowhere_either"),
        WebhookChannel(url=receiver.url + "/plain")))
    named, slack, plain = deliver(rule, notification(rule),
                                  settings=AlertSettings(secrets={"DEFAULT": "dflt"}))  # type: ignore[dict-item]
    # never sent unsigned, never retried: the operator must set the secret, then replay
    assert (named.ok, named.attempts, named.error) == (False, 1, "secret_missing:nowhere")
    assert (slack.ok, slack.error) == (False, "secret_missing:nowhere_either")
    assert receiver.hits("/named") == [] and plain.ok
    [(headers, body)] = receiver.hits("/plain")
    assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(
        b"dflt", body, hashlib.sha256).hexdigest()
    # with no default secret, a webhook naming no secret is not sent either (never unsigned)
    # and the rule's other channels still deliver
    unsigned = rule.model_copy(update={"channels": (rule.channels[2], FileChannel(
        path=str(tmp_path / "alerts.jsonl")))})
    plain, file = deliver(unsigned, notification(unsigned), settings=AlertSettings())
    assert (plain.ok, plain.attempts, plain.error) == (False, 1, "secret_missing:default")
    assert len(receiver.hits("/plain")) == 1 and file.ok
    assert (tmp_path / "alerts.jsonl").read_text().count("\n") == 1


def test_client_errors_are_not_retried(receiver: Receiver) -> None:
    receiver.status["/gone"] = 410
    rule = Rule(name="r", query="x", channels=(WebhookChannel(url=receiver.url + "/gone"),))
    [outcome] = deliver(rule, notification(rule))
    assert not outcome.ok and outcome.attempts == 1 and outcome.error == "http_410"


def test_connection_refused_is_transient_and_named_without_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook/{SLACK_TOKEN}"
    rule = Rule(name="r", query="x", channels=(WebhookChannel(url=url),))
    [outcome] = deliver(rule, notification(rule))
    assert not outcome.ok and outcome.attempts == FAST.attempts
    assert outcome.error and outcome.error.startswith("transport:")
    assert SLACK_TOKEN not in outcome.error


def test_file_channel_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    rule = Rule(name="r", query="x", channels=(FileChannel(path=str(path)),))
    deliver(rule, notification(rule))
    deliver(rule, notification(rule, 3))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["type"] for x in lines] == ["alert", "digest"]
    assert len(lines[1]["stories"]) == 3


# ------------------------------------------------------------------ e-mail over real SMTP


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[tuple[SmtpSettings, list[Any]]]:
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append((session.authenticated, envelope.rcpt_tos, envelope.content))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = auth_data.login == b"alerts" and auth_data.password == b"smtp-pass-123"
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, auth_require_tls=True,
                            authenticator=authenticator)
    controller.start()
    try:
        yield SmtpSettings(host="127.0.0.1", port=port, username="alerts",
                           password="smtp-pass-123", starttls=True, cafile=cert,
                           sender="alerts@newswire.test"), received
    finally:
        controller.stop()


def test_email_goes_over_starttls_with_login(smtp_server: tuple[SmtpSettings, list[Any]],
                                             caplog: pytest.LogCaptureFixture) -> None:
    smtp, received = smtp_server
    caplog.set_level(logging.DEBUG)
    rule = Rule(name="sudan", query="darfur",
                channels=(EmailChannel(to=("ops@example.org", "desk@example.org")),))
    [outcome] = deliver(rule, notification(rule), smtp=smtp)
    assert outcome.ok, outcome
    [(authenticated, rcpts, content)] = received
    assert authenticated and rcpts == ["ops@example.org", "desk@example.org"]
    msg = message_from_bytes(content)
    assert msg["Subject"] == "[newswire] sudan: Strike 0"
    assert "https://bbc.co.uk/0" in msg.get_payload(decode=True).decode()
    assert "smtp-pass-123" not in caplog.text


def test_email_with_wrong_password_fails_permanently(
        smtp_server: tuple[SmtpSettings, list[Any]]) -> None:
    smtp, received = smtp_server
    rule = Rule(name="r", query="x", channels=(EmailChannel(to=("ops@example.org",)),))
    [outcome] = deliver(rule, notification(rule),
                        smtp=SmtpSettings(**{**smtp.model_dump(), "password": "wrong"}))
    assert not outcome.ok and outcome.attempts == 1
    assert outcome.error and outcome.error.startswith("smtp_auth")
    assert received == []
