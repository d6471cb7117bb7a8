"""WebSub (W3C) subscriber: feeds that advertise a hub push their new entries to us.

The poller subscribes (a form POST to the hub through the safe fetcher) after a successful
poll of a feed whose document names ``rel="hub"``; the hub verifies our intent with a GET to the
callback (we echo ``hub.challenge`` only for subscriptions we asked for), then POSTs new content
to the callback signed with a per-feed secret (``X-Hub-Signature``). Content with a missing or
wrong signature is acknowledged (the spec asks for 2xx) and dropped. Subscribed feeds are still
polled, rarely, as a safety net. The callback must be reachable by the hub: ``callback_base``
is the public URL of the listener (behind a reverse proxy in production).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from newswire.keys import text_hash

log = logging.getLogger(__name__)

DEFAULT_LEASE = 7 * 86_400
RENEW_BEFORE = 86_400.0  # renew a lease a day before it ends
PENDING_FOR = 3600.0  # a hub that has not verified within this is asked again
PUSH_SAFETY_POLL = 6 * 3600.0  # a pushed feed is still polled this often (at most max_interval)
_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
               "sha512": hashlib.sha512}


@dataclass(frozen=True)
class WebSubConfig:
    callback_base: str  # public base URL the hub can reach, e.g. https://newswire.example.org
    host: str = "127.0.0.1"  # where the callback listener binds
    port: int = 8601
    lease_seconds: int = DEFAULT_LEASE


def feed_id(feed_url: str) -> str:
    return text_hash(feed_url)


def load_root_secret(data_dir: Path) -> bytes:
    """The key every per-feed secret is derived from; made once, kept under the data dir."""
    path = data_dir / "ingest" / "websub.key"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.hex())
    return key


def feed_secret(root: bytes, feed_url: str) -> str:
    return hmac.new(root, feed_url.encode(), hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Check ``X-Hub-Signature: method=hexdigest`` (sha1/sha256/sha384/sha512)."""
    if not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    algorithm = _ALGORITHMS.get(method.strip().lower())
    if algorithm is None:
        return False
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected, given.strip().lower())


def subscription_form(topic: str, callback: str, secret: str, lease_seconds: int,
                      mode: str = "subscribe") -> dict[str, str]:
    return {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback,
            "hub.secret": secret, "hub.lease_seconds": str(lease_seconds)}


@dataclass
class _Subscription:
    feed_url: str
    topic: str
    hub: str
    lease_until: float | None = None  # None while the hub has not verified it
    asked_at: float = 0.0


OnContent = Callable[[str, bytes, dict[str, str]], Awaitable[None]]
OnVerified = Callable[[str, float], None]


class WebSubReceiver:
    """The callback listener (aiohttp) plus the subscriptions we asked for."""

    def __init__(self, config: WebSubConfig, root_secret: bytes, *, on_content: OnContent,
                 on_verified: OnVerified, max_bytes: int) -> None:
        self.config = config
        self.root = root_secret
        self.on_content = on_content
        self.on_verified = on_verified
        self.max_bytes = max_bytes
        self.subscriptions: dict[str, _Subscription] = {}
        self._runner: object | None = None

    def callback_for(self, feed_url: str) -> str:
        return f"{self.config.callback_base.rstrip('/')}/websub/{feed_id(feed_url)}"

    def secret_for(self, feed_url: str) -> str:
        return feed_secret(self.root, feed_url)

    def expect(self, feed_url: str, topic: str, hub: str) -> None:
        """We are about to ask ``hub`` for ``topic``: accept its verification request."""
        current = self.subscriptions.get(feed_id(feed_url))
        lease = current.lease_until if current and current.topic == topic else None
        self.subscriptions[feed_id(feed_url)] = _Subscription(feed_url, topic, hub, lease,
                                                              time.time())

    def needs_subscription(self, feed_url: str, now: float) -> bool:
        """True unless a subscription is pending or verified in THIS process with time left
        (a stored lease from an earlier run is not trusted: the listener did not know it)."""
        current = self.subscriptions.get(feed_id(feed_url))
        if current is None:
            return True
        if current.lease_until is None:
            return now - current.asked_at > PENDING_FOR  # asked; waiting for verification
        return current.lease_until - now < RENEW_BEFORE

    async def start(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=self.max_bytes)
        app.router.add_get("/websub/{id}", self._verify)
        app.router.add_post("/websub/{id}", self._content)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.config.host, self.config.port).start()
        self._runner = runner
        log.info("websub callback listening host=%s port=%d base=%s", self.config.host,
                 self.config.port, self.config.callback_base)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # type: ignore[attr-defined]
            self._runner = None

    async def _verify(self, request: object) -> object:
        from aiohttp import web

        query = request.query  # type: ignore[attr-defined]
        sub = self.subscriptions.get(request.match_info["id"])  # type: ignore[attr-defined]
        mode, topic = query.get("hub.mode", ""), query.get("hub.topic", "")
        if mode == "denied":
            if sub is not None:
                log.warning("websub subscription denied feed=%s reason=%s", sub.feed_url,
                            query.get("hub.reason", "-"))
                del self.subscriptions[request.match_info["id"]]  # type: ignore[attr-defined]
            return web.Response(status=200)
        if sub is None or topic != sub.topic or mode != "subscribe" or "hub.challenge" not in query:
            return web.Response(status=404, text="no such subscription")
        try:
            lease = float(query.get("hub.lease_seconds", self.config.lease_seconds))
        except ValueError:
            lease = float(self.config.lease_seconds)
        sub.lease_until = time.time() + lease
        self.on_verified(sub.feed_url, sub.lease_until)
        log.info("websub subscription verified feed=%s lease_s=%.0f", sub.feed_url, lease)
        return web.Response(status=200, text=query["hub.challenge"])

    async def _content(self, request: object) -> object:
        from aiohttp import web

        sub = self.subscriptions.get(request.match_info["id"])  # type: ignore[attr-defined]
        if sub is None:
            return web.Response(status=410, text="not subscribed")  # the hub may drop us
        body = await request.content.read(self.max_bytes + 1)  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in request.headers.items()}  # type: ignore[attr-defined]
        signature = headers.get("x-hub-signature") or headers.get("x-hub-signature-256")
        if len(body) > self.max_bytes:
            log.warning("websub push too large feed=%s", sub.feed_url)
        elif not signature_ok(self.secret_for(sub.feed_url), body, signature):
            log.warning("websub push with a bad or missing signature dropped feed=%s", sub.feed_url)
        else:
            try:
                await self.on_content(sub.feed_url, body, headers)
            except Exception as exc:  # not delivered: a 5xx makes the hub try again later
                log.warning("websub push not delivered feed=%s error=%r", sub.feed_url, exc)
                return web.Response(status=503, text="try again later")
        return web.Response(status=202)
