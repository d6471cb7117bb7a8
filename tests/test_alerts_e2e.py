"""Acceptance of the alerts issue on the whole pipeline: `newswire up` on loopback feeds.

A rule ``Iran AND (militia OR IRGC)`` filtered to the conflict ``us-iran-proxy``, created
with the CLI as a user would, with a webhook to a loopback receiver signed with a secret
named in the settings (never stored in the rule), gets exactly one
signed POST for the seed story; the same story arriving again from another outlet (a second
feed on another loopback host) only updates that alert ("also reported by"); a story that
does not match fires nothing for the rule. A second rule (``Zanzibar``) proves that the
non-matching story went through alert matching before we count.

The feeds start empty and the items appear only once the rules reached the processor, so
no story is ingested before its rule exists (a rule never fires for older stories).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newswire import runtime
from newswire.settings import load_settings
from processors.alerts.store import _read_topic
from tests.test_alerts_channels import Receiver
from tests.test_e2e_up import newswire, start_up, stop, wait_for
from tests.world import rss, story_page

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SECRET = "e2e-hook-secret-5c1d"  # noqa: S105 - a test secret

NOT_MATCHING = """Zanzibar hosted its annual spice and dhow festival this week, drawing
record numbers of visitors to Stone Town.

Organisers said more than forty thousand people attended the opening parade, where boats
from across the Indian Ocean sailed into the old harbour. Trade delegations from Oman,
India and Iran attended the accompanying business forum on cloves and cardamom.

Local hotels reported full occupancy and the ferry operators added extra crossings from
Dar es Salaam to cope with demand. The festival closes on Sunday with a music night.

Officials hope the festival will support the island's farmers, many of whom have struggled
with low clove prices in recent years, and plan to make the business forum an annual event."""


class Site:
    """A loopback web site whose pages the test changes while the pipeline runs."""

    def __init__(self, host: str) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.hits: Counter[str] = Counter()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                site.hits[path] += 1
                ctype, body = site.pages.get(path, ("text/plain", b""))
                self.send_response(200 if path in site.pages else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.base = f"http://{host}:{self.server.server_address[1]}"
        self.pages["/robots.txt"] = ("text/plain", b"User-agent: *\nAllow: /\n")
        self.feed([])

    def feed(self, items: list[tuple[str, str, str]]) -> None:
        self.pages["/feed.xml"] = ("application/rss+xml", rss(self.base, items))

    def page(self, path: str, body: bytes) -> str:
        self.pages[path] = ("text/html; charset=utf-8", body)
        return self.base + path

    def __enter__(self) -> Site:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    # two hosts = two outlets (127.0.0.0/8 is all loopback)
    with Site("127.0.0.1") as first, Site("127.0.0.2") as second:
        yield first, second


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def not_matching_page(story: str) -> bytes:
    # the same page layout as the seed story's, with another text and title
    return story_page(story).replace(b"US strikes Iran-linked facilities in eastern Syria",
                                     b"Zanzibar spice festival draws record crowds")


def test_one_signed_alert_per_story_on_newswire_up(
        sites: tuple[Site, Site], receiver: Receiver, seed_story: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    outlet, mirror = sites
    data_dir, log = tmp_path / "data", tmp_path / "up.log"
    # empty feeds are polled again every second, so revealed items are picked up quickly
    monkeypatch.setenv("NEWSWIRE_POLL__MIN_INTERVAL", "1")
    monkeypatch.setenv("NEWSWIRE_POLL__DEFAULT_INTERVAL", "1")
    # the signing key lives in the workers' settings; the rule only names it
    monkeypatch.setenv("NEWSWIRE_ALERTS__SECRETS__HOOK", SECRET)
    monkeypatch.setenv("NEWSWIRE_ALERTS__SECRETS__DEFAULT", "e2e-default-secret")
    # the receiver is on loopback: `up` and the CLI (which checks webhook addresses) allow it
    monkeypatch.setenv("NEWSWIRE_FETCH__ALLOW_PRIVATE_NETWORKS", "true")
    proc = start_up(data_dir, [f"{outlet.base}/feed.xml", f"{mirror.base}/feed.xml"], log)
    try:
        def create(*args: str) -> dict | None:
            done = newswire("alerts", "create", "--json", *args, data_dir=data_dir)
            return json.loads(done.stdout) if done.returncode == 0 else None

        iran = wait_for(lambda: create(
            "iran proxies", "Iran AND (militia OR IRGC)", "--conflict", "us-iran-proxy",
            "--webhook", f"{receiver.url}/iran", "--secret-name", "hook"),
            60, "the CLI to create the rule", proc, log)
        sentinel = create("zanzibar", "Zanzibar", "--webhook", f"{receiver.url}/sentinel")
        assert sentinel is not None
        for rule in (iran, sentinel):
            wait_for(lambda r=rule: f"alert rule updated rule={r['id']}" in log.read_text(),
                     60, f"the processor to apply rule {rule['name']}", proc, log)

        # 1. the seed story appears in the first outlet's feed
        url = outlet.page("/world/us-strikes-syria", story_page(seed_story))
        outlet.feed([("US strikes Iran-linked facilities in Syria", url + "?utm_source=rss",
                      "story-1")])
        wait_for(lambda: receiver.hits("/iran"), 60, "the alert POST", proc, log)
        [(headers, body)] = receiver.hits("/iran")
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Newswire-Signature"], expected)
        payload = json.loads(body)
        assert payload["type"] == "alert" and payload["rule"]["id"] == iran["id"]
        assert payload["story"]["url"] == url  # tracking parameters gone
        assert "us-iran-proxy" in payload["story"]["conflicts"]
        assert SECRET not in body.decode()

        # 2. the same story from another outlet, and a story the rule does not match
        copy = mirror.page("/news/iran-linked-sites-hit", story_page(seed_story))
        other = mirror.page("/news/zanzibar-festival", not_matching_page(NOT_MATCHING))
        mirror.feed([("Strikes on Iran-linked sites in Syria", copy, "m-1"),
                     ("Zanzibar spice festival draws record crowds", other, "m-2")])
        wait_for(lambda: receiver.hits("/sentinel"), 60, "the other story's alert", proc, log)

        def also_reported() -> dict | None:
            done = newswire("alerts", "show", iran["id"], data_dir=data_dir)
            if done.returncode != 0:
                return None
            assert SECRET not in done.stdout
            alerts = json.loads(done.stdout)["alerts"]
            return alerts[0] if alerts and alerts[0]["also_reported_by"] else None

        alert = wait_for(also_reported, 60, "the copy to update the alert", proc, log)
        assert [ref["url"] for ref in alert["also_reported_by"]] == [copy]
        assert alert["first"]["url"] == url and alert["status"] == "sent"
        assert len(receiver.hits("/iran")) == 1  # no second alert: not for the copy, not
        sentinel_bodies = [json.loads(b) for _, b in receiver.hits("/sentinel")]  # the other
        assert [b["story"]["url"] for b in sentinel_bodies] == [other]
        assert SECRET not in log.read_text()
        settings = runtime.with_kafka(load_settings(data_dir=data_dir))
        rules_topic = b"".join(v or b"" for _, v in
                               _read_topic(settings, settings.topic("alert-rules")))
        assert b'"secret_name":"hook"' in rules_topic and SECRET.encode() not in rules_topic
    finally:
        code = stop(proc, log)
    assert code == 0, log.read_text()[-4000:]
