"""WebSub: a loopback hub verifies our subscription and pushes content; signed pushes are
published to Kafka, unsigned or wrongly signed ones are dropped."""

from __future__ import annotations

import hashlib
import hmac
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kafka import KafkaConsumer

from ingest.poller import run_poller
from ingest.state import StateStore
from ingest.websub import WebSubConfig, signature_ok, subscription_form
from newswire.broker import free_port
from newswire.records import FeedEntry
from newswire.settings import Settings


def rss(hub: str, self_url: str, items: list[str]) -> bytes:
    body = "".join(f"<item><title>{i}</title><link>https://push.example.com/{i}</link></item>"
                   for i in items)
    return (f'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>P</title>'
            f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{self_url}"/>'
            f"{body}</channel></rss>").encode()


class Hub(ThreadingHTTPServer):
    """Serves the feed at /feed.xml and acts as its hub at /hub."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HubHandler)
        self.subscribed = threading.Event()
        self.verified_challenge: str | None = None
        self.form: dict[str, str] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def verify(self) -> None:
        query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.topic": self.form["hub.topic"],
                                        "hub.challenge": "c-123", "hub.lease_seconds": "86400"})
        with urllib.request.urlopen(f"{self.form['hub.callback']}?{query}", timeout=10) as answer:
            self.verified_challenge = answer.read().decode()
        self.subscribed.set()

    def push(self, body: bytes, secret: str | None) -> int:
        headers = {"Content-Type": "application/rss+xml"}
        if secret is not None:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature"] = f"sha256={digest}"
        request = urllib.request.Request(self.form["hub.callback"], data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code


class HubHandler(BaseHTTPRequestHandler):
    server: Hub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        base = self.server.base
        self._send(200, rss(f"{base}/hub", f"{base}/feed.xml", ["first"]))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        self.server.form = form
        self._send(202)
        threading.Thread(target=self.server.verify, daemon=True).start()


@pytest.fixture
def hub() -> Iterator[Hub]:
    server = Hub()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def entries(settings: Settings) -> list[str]:
    consumer = KafkaConsumer(settings.topic("entries"), auto_offset_reset="earliest",
                             consumer_timeout_ms=1500, group_id=None, **settings.kafka.client_config())
    try:
        return sorted(FeedEntry.from_bytes(m.value).url for m in consumer)
    finally:
        consumer.close()


@pytest.mark.integration
def test_subscribe_verify_and_receive_signed_pushes(kafka_settings: Settings, hub: Hub) -> None:
    port = free_port()
    settings = kafka_settings.model_copy(update={"feeds": [f"{hub.base}/feed.xml"]})
    stop = threading.Event()
    thread = threading.Thread(target=run_poller, args=(settings, stop), kwargs={
        "websub": WebSubConfig(callback_base=f"http://127.0.0.1:{port}", port=port)})
    thread.start()
    try:
        assert hub.subscribed.wait(30), "the poller never subscribed"
        assert hub.verified_challenge == "c-123"
        assert hub.form["hub.topic"] == f"{hub.base}/feed.xml"
        assert hub.form["hub.callback"].startswith(f"http://127.0.0.1:{port}/websub/")
        secret = hub.form["hub.secret"]
        pushed = rss(f"{hub.base}/hub", f"{hub.base}/feed.xml", ["pushed"])
        forged = rss(f"{hub.base}/hub", f"{hub.base}/feed.xml", ["forged"])
        assert hub.push(forged, secret="not-the-secret") == 202  # acknowledged, dropped
        assert hub.push(forged, secret=None) == 202
        assert hub.push(pushed, secret=secret) == 202
        urls = entries(settings)
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert urls == ["https://push.example.com/first", "https://push.example.com/pushed"]
    with StateStore.open(settings) as store:
        feed = store.feed(f"{hub.base}/feed.xml")
    assert feed is not None and feed.websub_lease_until and feed.hub == f"{hub.base}/hub"
    assert feed.entries_published == 2


def test_signature_check_and_form() -> None:
    body = b"<rss/>"
    good = "sha1=" + hmac.new(b"s", body, hashlib.sha1).hexdigest()
    assert signature_ok("s", body, good)
    assert not signature_ok("s", body + b" ", good)
    assert not signature_ok("s", body, "md5=abc") and not signature_ok("s", body, None)
    form = subscription_form("https://t.example/f", "https://cb.example/websub/x", "s", 60)
    assert form["hub.mode"] == "subscribe" and form["hub.lease_seconds"] == "60"


def test_websub_is_a_setting_that_reaches_the_poller_under_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # `newswire up` starts `poll` with child_env(settings): a WebSub callback set in the
    # config or environment must survive that hop, and a malformed listen address is refused.
    from pydantic import ValidationError

    from newswire.settings import child_env, load_settings

    monkeypatch.setenv("NEWSWIRE_POLL__WEBSUB_CALLBACK", "https://news.example.org/cb")
    settings = load_settings()
    assert settings.poll.websub_callback == "https://news.example.org/cb"
    env = child_env(settings)
    assert env["NEWSWIRE_POLL__WEBSUB_CALLBACK"] == "https://news.example.org/cb"
    assert env["NEWSWIRE_POLL__WEBSUB_LISTEN"] == "127.0.0.1:8601"
    monkeypatch.setenv("NEWSWIRE_POLL__WEBSUB_LISTEN", "no port here")
    with pytest.raises(ValidationError):
        load_settings()
