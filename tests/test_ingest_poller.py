"""The poller against real servers: a loopback feed server and the session's noida Kafka."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer

from ingest.poller import run_poller
from ingest.state import StateStore
from newswire.cli import main
from newswire.records import FeedEntry
from newswire.settings import Settings

pytestmark = pytest.mark.integration


def rss(items: list[tuple[str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>Mon, 01 Jan 2024 10:0{i}:00 GMT</pubDate></item>"
        for i, (title, link) in enumerate(items)
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Loop news</title>'
            f"{body}</channel></rss>").encode()


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FeedHandler)
        self.feed = rss([("Strikes hit port", "https://news.example.com/a/1?utm_source=rss"),
                         ("Talks resume", "https://news.example.com/a/2")])
        self.version = 1
        self.hits: dict[str, int] = {}
        self.not_modified = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FeedHandler(BaseHTTPRequestHandler):
    server: FeedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", ctype: str = "application/rss+xml",
              **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        etag = f'"v{self.server.version}"'
        if self.path == "/feed.xml":
            if self.headers.get("If-None-Match") == etag:
                self.server.not_modified += 1
                self._send(304, ETag=etag)
            else:
                self._send(200, self.server.feed, ETag=etag)
        elif self.path == "/no-validators.xml":  # always 200: the seen set must stop repeats
            self._send(200, rss([("Quiet", "https://other.example.org/q/1")]))
        elif self.path == "/old.xml":
            self.send_response(301)
            self.send_header("Location", "/feed.xml")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/rejects.xml":  # two entries that cannot become records
            self._send(200, b'<?xml version="1.0"?><rss version="2.0"><channel><title>R</title>'
                            b'<item><title>Good</title><link>https://news.example.com/g</link></item>'
                            b'<item><title>No link</title><guid isPermaLink="false">n1</guid></item>'
                            b'<item><title>Mail</title><link>mailto:desk@example.com</link></item>'
                            b'</channel></rss>')
        elif self.path == "/limited.xml":  # the publisher asks every client to wait
            self._send(429, b"slow down", "text/plain", **{"Retry-After": "600"})
        elif self.path == "/truncated.xml":  # broken XML that yields no entry at all
            self._send(200, b'<?xml version="1.0"?><rss version="2.0"><channel><title>T &x;')
        elif self.path == "/broken.xml":
            self._send(200, b"<rss><channel><item><title>half")
        elif self.path == "/page":
            self._send(200, b'<html><head><link rel="alternate" type="application/rss+xml" '
                            b'href="/feed.xml"></head><body>hi</body></html>', "text/html")
        else:
            self._send(404, b"not here", "text/plain")


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def consume(settings: Settings) -> list[tuple[bytes, FeedEntry]]:
    consumer = KafkaConsumer(settings.topic("entries"), auto_offset_reset="earliest",
                             consumer_timeout_ms=1500, enable_auto_commit=False, group_id=None,
                             **settings.kafka.client_config())
    try:
        return [(m.key, FeedEntry.from_bytes(m.value)) for m in consumer]
    finally:
        consumer.close()


def with_feeds(settings: Settings, *urls: str) -> Settings:
    return settings.model_copy(update={"feeds": list(urls)})


def test_poll_publishes_once_then_only_updates(kafka_settings: Settings,
                                               feed_server: FeedServer) -> None:
    base = feed_server.base
    settings = with_feeds(kafka_settings, f"{base}/feed.xml", f"{base}/no-validators.xml",
                          f"{base}/missing.xml", f"{base}/broken.xml", f"{base}/page",
                          "http://127.0.0.1:9/unreachable.xml")
    assert run_poller(settings, once=True) == 0
    first = consume(settings)
    urls = sorted(e.url for _, e in first)
    assert urls == ["https://news.example.com/a/1", "https://news.example.com/a/2",
                    "https://other.example.org/q/1"]
    assert all(key == e.key.encode() and not e.update for key, e in first)
    assert {e.feed for _, e in first} == {f"{base}/feed.xml", f"{base}/no-validators.xml"}

    # A re-poll: 304 for the feed with validators, the same body for the other: nothing new.
    assert run_poller(settings, once=True) == 0
    assert feed_server.not_modified == 1
    assert len(consume(settings)) == 3

    # The feed changes: one entry updated, one added.
    feed_server.feed = rss([("Strikes hit port, dozens hurt", "https://news.example.com/a/1"),
                            ("Talks resume", "https://news.example.com/a/2"),
                            ("Ceasefire", "https://news.example.com/a/3")])
    feed_server.version = 2
    assert run_poller(settings, once=True) == 0
    everything = sorted((e.url, e.update) for _, e in consume(settings))
    assert everything == [
        ("https://news.example.com/a/1", False), ("https://news.example.com/a/1", True),
        ("https://news.example.com/a/2", False), ("https://news.example.com/a/3", False),
        ("https://other.example.org/q/1", False)]

    with StateStore.open(settings) as store:
        status = {f.url: f for f in store.feeds()}
    good = status[f"{base}/feed.xml"]
    assert good.polls == 3 and good.not_modified == 1 and good.entries_published == 4
    assert good.etag == '"v2"' and good.error_count == 0
    assert status[f"{base}/missing.xml"].last_error_reason == "http_404"
    assert status[f"{base}/page"].last_error_reason == "html_not_feed"
    assert status["http://127.0.0.1:9/unreachable.xml"].last_error_reason == "connect_error"
    assert status[f"{base}/broken.xml"].error_count == 0  # malformed, but its entry was read
    assert all(f.error_count == 3 for u, f in status.items()
               if u.endswith(("missing.xml", "page", "unreachable.xml")))


def test_private_addresses_are_refused_unless_allowed(kafka_settings: Settings,
                                                      feed_server: FeedServer) -> None:
    strict = with_feeds(kafka_settings, f"{feed_server.base}/feed.xml")
    strict = strict.model_copy(update={"fetch": strict.fetch.model_copy(
        update={"allow_private_networks": False})})
    assert run_poller(strict, once=True) == 0
    assert consume(strict) == [] and feed_server.hits.get("/feed.xml") is None
    with StateStore.open(strict) as store:
        feed = store.feed(f"{feed_server.base}/feed.xml")
    assert feed is not None and feed.last_error_reason == "blocked_address"


def test_service_stops_cleanly_on_stop(kafka_settings: Settings, feed_server: FeedServer) -> None:
    settings = with_feeds(kafka_settings, f"{feed_server.base}/feed.xml")
    stop = threading.Event()
    outcome: list[int] = []
    thread = threading.Thread(target=lambda: outcome.append(run_poller(settings, stop)))
    thread.start()
    try:
        for _ in range(50):  # wait (bounded) until the first poll published
            if consume(settings):
                break
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive() and outcome == [0]
    assert len(consume(settings)) == 2


def test_feeds_cli_add_discovers_list_status_export_import_remove(
        kafka_settings: Settings, feed_server: FeedServer, tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "d")]

    def run(*args: str) -> object:
        return runner.invoke(main, [*data, *args], catch_exceptions=False)

    refused = run("feeds", "add", f"{feed_server.base}/page")
    assert refused.exit_code == 1 and "blocked_address" in refused.stderr
    added = run("feeds", "add", "--allow-private-networks", f"{feed_server.base}/page")
    assert added.exit_code == 0 and f"added: {feed_server.base}/feed.xml" in added.stdout
    listed = run("feeds", "list", "--json")
    assert [json.loads(line)["url"] for line in listed.stdout.splitlines()] == [
        f"{feed_server.base}/feed.xml"]
    status = run("feeds", "status", "--json")
    row = json.loads(status.stdout.splitlines()[0])
    assert row["polls"] == 0 and row["next_poll"] == "now" and row["origin"] == "cli"
    assert row["last_success"] is None and row["entries_per_day"] == 0

    # Polled for real, twice (200 then 304), by `newswire poll --once` on the same data dir.
    before = time.time()
    for _ in range(2):
        polled = runner.invoke(main, [*data, "poll", "--once", "--allow-private-networks"],
                               env=cli_env(kafka_settings), catch_exceptions=False)
        assert polled.exit_code == 0, polled.output
    after = time.time()
    assert feed_server.hits["/feed.xml"] == 2 + 1 and feed_server.not_modified == 1  # +1: add
    row = json.loads(run("feeds", "status", "--json").stdout.splitlines()[0])
    assert row["polls"] == 2 and row["errors_in_row"] == 0 and row["last_error"] is None
    assert row["not_modified_share"] == 0.5
    assert row["entries_published"] == 2 and row["entries_per_day"] == 2.0  # < 1 day: per day
    last_success = datetime.fromisoformat(row["last_success"]).timestamp()
    next_poll = datetime.fromisoformat(row["next_poll"]).timestamp()
    assert int(before) <= last_success <= after
    assert next_poll - last_success >= 0.9 * kafka_settings.poll.min_interval
    text = run("feeds", "status").stdout
    assert f"{feed_server.base}/feed.xml\n  ok  polls=2  304=50%  entries/day=2.0  " in text
    assert f"last_success={row['last_success']}  next_poll={row['next_poll']}" in text
    exported = run("feeds", "export")
    assert f'xmlUrl="{feed_server.base}/feed.xml"' in exported.stdout
    opml = tmp_path / "feeds.opml"
    opml.write_text(exported.stdout.replace("/feed.xml", "/other.xml"))
    imported = run("feeds", "import", str(opml))
    assert "imported 1 new feed(s)" in imported.stdout
    assert run("feeds", "remove", f"{feed_server.base}/feed.xml").exit_code == 0
    assert run("feeds", "remove", f"{feed_server.base}/feed.xml").exit_code == 1
    remaining = run("feeds", "list", "--json").stdout.splitlines()
    assert [json.loads(line)["origin"] for line in remaining] == ["opml"]


def test_dry_run_fetches_a_url_and_publishes_nothing(feed_server: FeedServer,
                                                     tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--data-dir", str(tmp_path), "poll", "--once", "--dry-run",
                                  "--allow-private-networks", f"{feed_server.base}/feed.xml"])
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [set(line) for line in lines] == [{"id", "url", "title", "published", "summary",
                                              "feed"}] * 2
    assert lines[0]["url"] == "https://news.example.com/a/1"
    assert lines[0]["published"] == "2024-01-01T10:00:00Z"
    assert not (tmp_path / "ingest").exists()
    failed = runner.invoke(main, ["poll", "--dry-run", "--allow-private-networks",
                                  f"{feed_server.base}/missing.xml"])
    assert failed.exit_code == 1 and "http_404" in failed.stderr


def test_permanent_redirect_updates_the_stored_url(kafka_settings: Settings,
                                                   feed_server: FeedServer) -> None:
    settings = with_feeds(kafka_settings, f"{feed_server.base}/old.xml")
    assert run_poller(settings, once=True) == 0
    with StateStore.open(settings) as store:
        feed = store.feed(f"{feed_server.base}/old.xml")
    assert feed is not None and feed.fetch_url == f"{feed_server.base}/feed.xml"
    assert len(consume(settings)) == 2
    before = feed_server.hits.get("/old.xml", 0)
    assert run_poller(settings, once=True) == 0  # goes straight to the new URL now
    assert feed_server.hits.get("/old.xml", 0) == before and feed_server.not_modified >= 1


def test_poll_service_stops_on_sigterm(kafka_settings: Settings, feed_server: FeedServer,
                                       tmp_path: Path) -> None:
    env = {**os.environ, "NEWSWIRE_DATA_DIR": str(tmp_path / "d"),
           "NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.kafka.bootstrap_servers or "",
           "NEWSWIRE_KAFKA__TOPIC_PREFIX": kafka_settings.kafka.topic_prefix}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from newswire.cli import main; main()", "poll",
         "--allow-private-networks", "--feed", f"{feed_server.base}/feed.xml"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(60):  # bounded wait for the first poll to be published
            if consume(kafka_settings):
                break
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert len(consume(kafka_settings)) == 2


def dead_letters(settings: Settings) -> list[tuple[dict[str, str], dict[str, object]]]:
    consumer = KafkaConsumer(settings.topic("dlq.poll"), auto_offset_reset="earliest",
                             consumer_timeout_ms=1500, enable_auto_commit=False, group_id=None,
                             **settings.kafka.client_config())
    try:
        return [({k: v.decode() for k, v in m.headers}, json.loads(m.value)) for m in consumer]
    finally:
        consumer.close()


def cli_env(settings: Settings) -> dict[str, str]:
    return {"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "",
            "NEWSWIRE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix}


def test_rejected_entries_are_dead_lettered_once_and_not_replayed(
        kafka_settings: Settings, feed_server: FeedServer) -> None:
    feed = f"{feed_server.base}/rejects.xml"
    settings = with_feeds(kafka_settings, feed)
    assert run_poller(settings, once=True) == 0
    assert run_poller(settings, once=True) == 0  # the same body again: no second letter
    letters = dead_letters(settings)
    assert sorted(v["reason"] for _, v in letters) == ["no_link", "non_http_link"]
    for headers, value in letters:
        assert headers["original_topic"] == feed and headers["stage"] == "poll"
        assert headers["reason"] == value["reason"] and headers["exception"]
        assert value["stage"] == "poll" and value["topic"] == feed
    mail = next(v for _, v in letters if v["reason"] == "non_http_link")
    assert "mailto:desk@example.com" in str(mail["error"])
    assert json.loads(str(mail["payload"]))["title"] == "Mail"
    assert [e.url for _, e in consume(settings)] == ["https://news.example.com/g"]

    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    listed = runner.invoke(main, [*data, "dlq", "list"], env=cli_env(settings))
    assert listed.exit_code == 0, listed.output
    assert "poll: 2" in listed.stdout and "1  no_link" in listed.stdout
    assert "1  non_http_link" in listed.stdout
    replay = runner.invoke(main, [*data, "dlq", "replay", "poll"], env=cli_env(settings))
    assert replay.exit_code == 1 and "cannot replay" in replay.output
    assert "nothing to send back" in replay.output
    assert len(consume(settings)) == 1  # nothing was sent anywhere
    with StateStore.open(settings) as store:
        state = store.feed(feed)
        assert store.summary(9e9, [feed], window=1e10)["new_entries"] == 1
    assert state is not None and state.entries_rejected == 4 and state.error_count == 0


def test_malformed_feed_with_no_entry_is_an_error_that_backs_off(
        kafka_settings: Settings, feed_server: FeedServer) -> None:
    feed = f"{feed_server.base}/truncated.xml"
    settings = with_feeds(kafka_settings, feed)
    intervals = []
    for _ in range(2):
        assert run_poller(settings, once=True) == 0
        with StateStore.open(settings) as store:
            state = store.feed(feed)
        assert state is not None
        intervals.append(state.interval or 0)
    assert state.last_error_reason == "malformed_feed" and state.error_count == 2
    assert state.last_error and "undefined entity" in state.last_error
    assert state.last_success is None
    assert intervals[1] > intervals[0]  # backs off like any failing feed
    runner = CliRunner()
    status = runner.invoke(main, ["--data-dir", str(settings.data_dir), "feeds", "status",
                                  "--json"], env=cli_env(settings))
    row = json.loads(status.stdout.splitlines()[0])
    assert "undefined entity" in json.dumps(row)


def test_a_host_on_hold_puts_off_its_other_feeds_without_an_error(
        kafka_settings: Settings, feed_server: FeedServer) -> None:
    limited, other = f"{feed_server.base}/limited.xml", f"{feed_server.base}/feed.xml"
    assert run_poller(with_feeds(kafka_settings, limited), once=True) == 0
    before = time.time()
    # Another run (a new Fetcher, as another process would have) shares the limits file.
    assert run_poller(with_feeds(kafka_settings, other), once=True) == 0
    assert feed_server.hits.get("/feed.xml") is None and consume(kafka_settings) == []
    with StateStore.open(kafka_settings) as store:
        told, put_off = store.feed(limited), store.feed(other)
    assert told is not None and told.last_error_reason == "http_429"
    assert told.next_poll - before > 500  # Retry-After: 600 is honoured for the feed itself
    assert put_off is not None and put_off.polls == 0 and put_off.error_count == 0
    assert put_off.last_error is None and put_off.next_poll - before > 550
