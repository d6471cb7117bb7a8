"""The one safe HTTP fetcher, shared by the feed poller and the article processor.

Everything a feed names is untrusted, so every fetch here:

- goes only to http/https, and only to public addresses: the address is checked after DNS
  resolution, inside the connection step, and the socket is opened to the very address that
  was checked (DNS pinning, no rebinding window); redirects are followed by hand, so every hop
  goes through the same check (``FetchSettings.allow_private_networks`` lifts it);
- has a total time budget, and a body cap counted on *decompressed* bytes while streaming
  (we decode gzip/deflate/br ourselves with an output limit, so a bomb stops at the cap);
- is polite: one identifying User-Agent, at most ``per_host_concurrency`` requests in flight
  per host and at least ``per_host_min_gap`` seconds between request starts to one host,
  shared by every request of one :class:`Fetcher` and, given the data dir, by every process
  of this node (poller and workers: :mod:`newswire.hostlimit`); robots.txt on request (fetched
  once per host, cached; a Crawl-delay widens the host's gap node-wide);
- never raises on network or server misbehaviour: the outcome is a :class:`FetchResult` whose
  ``reason`` is a short stable code (``None`` = ok; a 304 is ok too).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http.cookiejar
import ipaddress
import logging
import select
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from newswire.hostlimit import MAX_HOLD, HostLimiter, HostOnHold, lease_ttl, limits_path
from newswire.settings import FetchSettings

try:  # optional: without it we simply do not advertise "br"
    import brotli
except ImportError:  # pragma: no cover - brotli is a declared dependency
    brotli = None

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
ROBOTS_MAX_BYTES = 512_000
ROBOTS_TTL = 24 * 3600.0
ROBOTS_ERROR_TTL = 600.0
ROBOTS_CACHE_SIZE = 20_000
MAX_CRAWL_DELAY = 30.0  # a larger Crawl-delay is honoured as this (and said in the docs)
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
# Cloud metadata endpoints. Most are already non-global (link-local / shared ranges), but
# naming them keeps the intent explicit if the ipaddress tables ever change.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


@dataclass(frozen=True)
class FetchResult:
    url: str  # as asked
    final_url: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    redirects: tuple[str, ...] = ()  # every URL redirected to, in order
    reason: str | None = None  # None = ok (a 304 is ok); else a short stable code
    error: str | None = None  # human text
    elapsed: float = 0.0
    retry_after: float | None = None  # seconds, from a Retry-After header
    permanent_url: str | None = None  # final URL when every redirect hop was permanent
    # Not sent at all: the host is on hold after a 429/503 Retry-After (to this or another
    # process); reason is then "http_429" (a transient error) and retry_after the time left.
    on_hold: bool = False

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# --- errors inside the fetcher (never leave it) --------------------------------------------


class _FetchProblem(Exception):
    reason = "fetch_error"


class BlockedAddress(_FetchProblem):
    reason = "blocked_address"


class _DnsError(_FetchProblem):
    reason = "dns_error"


class _TooLarge(_FetchProblem):
    reason = "too_large"


class _DecodeError(_FetchProblem):
    reason = "decode_error"


# --- address policy --------------------------------------------------------------------------


def blocked_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why this address may not be fetched (``None`` = it is a public unicast address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Addresses that embed an IPv4 address are judged by it too.
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None and (why := blocked_reason(inner)):
                return why
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    for name in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(ip, f"is_{name}"):
            return f"{name.replace('_', '-')} address"
    if not ip.is_global:  # shared (100.64/10), documentation, benchmarking ranges...
        return "non-global address"
    return None


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be fetched: public ones, plus any listed exception networks."""

    allow_private: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def refuses(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        if self.allow_private:
            return None
        why = blocked_reason(ip)
        if why and any(ip in net for net in self.allowed_networks):
            return None
        return why


def _readable(sock: socket.socket | None) -> bool:
    """Would a read return at once (data, or the end a server that closed sends)? A socket
    that is gone counts as readable, so the connection is dropped."""
    fd = None if sock is None else sock.fileno()
    if fd is None or fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _SocketInfoStream(httpcore.AsyncNetworkStream):
    """An anyio stream whose raw socket is looked up once.

    httpcore asks every pooled connection ``get_extra_info("is_readable")`` on every request
    (to drop connections the server closed); anyio answers by building its whole attribute
    table each time. With tens of connections to busy hosts that was a quarter of the
    processor's event-loop CPU (py-spy, pipeline bench)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: Any = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _SocketInfoStream(
            await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def _raw_socket(self) -> Any:
        if self._socket is None:
            self._socket = self._inner.get_extra_info("socket")
        return self._socket

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._raw_socket()
        if info == "is_readable":
            return _readable(self._raw_socket())
        return self._inner.get_extra_info(info)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every resolved address, then connects to a checked address.

    Because the check happens in the connection step itself, the socket goes to the very IP
    that passed the check: a second DNS answer (rebinding) never gets a say.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._policy = policy

    async def _addresses(self, host: str, port: int) -> list[str]:
        literal = _ip_literal(host)
        if literal is not None:
            return [str(literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise _DnsError(f"cannot resolve {host}: {exc}") from exc
        seen: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            address = str(sockaddr[0]).split("%", 1)[0]
            if address not in seen:
                seen.append(address)
        if not seen:
            raise _DnsError(f"no address for {host}")
        return seen

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port)
        # Refuse the host if ANY answer is refused: a mixed answer is a rebinding attempt.
        for address in addresses:
            why = self._policy.refuses(ipaddress.ip_address(address))
            if why:
                raise BlockedAddress(f"{host} resolves to {address} ({why})")
        last: Exception | None = None
        for address in addresses:
            try:
                return _SocketInfoStream(await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                ))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: AddressPolicy, max_connections: int) -> None:
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections, keepalive_expiry=30.0)
        super().__init__(limits=limits, trust_env=False)
        # httpx builds its connection pool without a way to name the network backend; we
        # rebuild it with the same options plus our guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedNetworkBackend(policy),
        )


# --- decoding with an output cap --------------------------------------------------------------


class _CappedDecoder:
    """Decodes a Content-Encoding stream, refusing to produce more than ``cap`` bytes."""

    def __init__(self, encoding: str, cap: int) -> None:
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise _DecodeError(f"stacked content encodings not supported: {encoding}")
        self.coding = codings[0] if codings else "identity"
        if self.coding in ("gzip", "x-gzip"):
            self._zlib: Any = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        elif self.coding == "deflate":
            self._zlib = None  # zlib-wrapped or raw: decided on the first bytes
        elif self.coding == "br" and brotli is not None:
            self._br = brotli.Decompressor()
        elif self.coding != "identity":
            raise _DecodeError(f"unsupported content encoding: {encoding}")
        self.cap = cap
        self._done = False
        self.size = 0
        self.parts: list[bytes] = []

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.cap:
            raise _TooLarge(f"body exceeds {self.cap} bytes after decoding")
        self.parts.append(data)

    def _room(self) -> int:
        return self.cap - self.size + 1  # one byte over the cap is enough to know

    def _feed_zlib(self, data: bytes) -> None:
        while data:
            out = self._zlib.decompress(data, self._room())
            self._emit(out)
            data = self._zlib.unconsumed_tail
            if self._zlib.eof:  # a second gzip member may follow; other trailing bytes are junk
                rest = self._zlib.unused_data
                if not rest.startswith(b"\x1f\x8b"):
                    self._done = True
                    return
                self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)
                data = rest + data

    def feed(self, data: bytes) -> None:
        try:
            if self.coding == "identity":
                self._emit(data)
            elif self.coding == "br":
                self._emit(self._br.process(data, output_buffer_limit=self._room()))
                while not self._br.can_accept_more_data():
                    out = self._br.process(b"", output_buffer_limit=self._room())
                    if not out:
                        break
                    self._emit(out)
            elif not self._done:
                if self._zlib is None:  # deflate: try the zlib wrapper, else raw deflate
                    probe = zlib.decompressobj()
                    try:
                        probe.decompress(data[:2])
                        self._zlib = zlib.decompressobj()
                    except zlib.error:
                        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                self._feed_zlib(data)
        except _FetchProblem:
            raise
        except Exception as exc:  # zlib.error, brotli.error
            raise _DecodeError(f"cannot decode {self.coding} body: {exc}") from exc

    def body(self) -> bytes:
        return b"".join(self.parts)


def accept_encoding() -> str:
    return "gzip, deflate, br" if brotli is not None else "gzip, deflate"


# --- small helpers ------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, delta)


def status_reason(status: int) -> str | None:
    if status < 300 or status == 304:
        return None
    if status in (404, 410, 429):
        return f"http_{status}"
    return f"http_{status // 100}xx"


def robots_agent(user_agent: str) -> str:
    """The product token robots.txt groups are matched against (``newswire/0.1 (...)`` -> newswire)."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"


class _HostGate:
    """Politeness towards one host: bounded concurrency and a minimum gap between starts.

    In-process limits always apply; with a shared :class:`HostLimiter` the same limits are
    also taken from the node-wide file, so the poller and every worker share one budget.
    Waiters of one process queue on ``lock``, so only one of them at a time asks the file.
    """

    def __init__(self, host: str, concurrency: int, gap: float,
                 shared: HostLimiter | None = None) -> None:
        self.host = host
        self.concurrency = concurrency
        self.semaphore = asyncio.Semaphore(concurrency)
        self.lock = asyncio.Lock()
        self.gap = gap
        self.next_start = 0.0
        self.users = 0
        self.shared = shared
        self.hold_until = 0.0  # wall clock: the shared file holds the same time

    def check_hold(self) -> None:
        """Raise :class:`HostOnHold` while this process knows the host is held."""
        left = min(self.hold_until - time.time(), MAX_HOLD)
        if left > 0:
            raise HostOnHold(self.host, left)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        self.check_hold()
        self.users += 1
        try:
            async with self.semaphore:
                self.check_hold()  # set while we queued
                lease = None
                async with self.lock:
                    if self.shared is not None:
                        try:
                            lease = await self.shared.acquire(self.host, self.concurrency,
                                                              self.gap)
                        except HostOnHold as exc:  # another process was told: remember it here
                            self.hold_until = max(self.hold_until, time.time() + exc.seconds)
                            raise
                    if lease is None and self.gap > 0:  # no shared file (or it failed): pace here
                        wait = self.next_start - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                        self.next_start = time.monotonic() + self.gap
                try:
                    yield
                finally:
                    if lease is not None and self.shared is not None:
                        self.shared.release_soon(lease)
        finally:
            self.users -= 1


@dataclass
class _Robots:
    expires: float
    parser: RobotFileParser | None  # None with allow=True/False below
    allow_all: bool = False
    disallow_all: bool = False
    crawl_delay: float = 0.0

    def allows(self, agent: str, url: str) -> bool:
        if self.allow_all:
            return True
        if self.disallow_all or self.parser is None:
            return False
        return self.parser.can_fetch(agent, url)


class Fetcher:
    """The shared safe fetcher. One per process (or per service); use as an async context."""

    def __init__(self, settings: FetchSettings, *, max_connections: int = 200,
                 allowed_networks: Iterable[str] = (), data_dir: Path | None = None) -> None:
        """``allowed_networks`` (e.g. ``["10.1.2.0/24"]``) are exceptions to the address guard
        for closed networks; ``settings.allow_private_networks`` lifts the guard entirely.
        With ``data_dir`` (``Settings.data_dir``) and ``settings.share_host_limits``, per-host
        limits are shared with every process on this node using the same data dir (or the same
        ``settings.host_limits_file``); without either they hold within this Fetcher only."""
        self.settings = settings
        self.limiter: HostLimiter | None = None
        path = settings.host_limits_file or (limits_path(data_dir) if data_dir else None)
        if path is not None and settings.share_host_limits:
            self.limiter = HostLimiter(path, lease_ttl=lease_ttl(settings.timeout))
        self.policy = AddressPolicy(
            settings.allow_private_networks,
            tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks),
        )
        self._client = httpx.AsyncClient(
            transport=GuardedTransport(self.policy, max_connections),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(settings.timeout),
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": accept_encoding()},
            # No cookies: one client serves thousands of hosts for months, and a jar would
            # grow without bound (and carry tracking state between fetches).
            cookies=http.cookiejar.CookieJar(
                policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        )
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, _Robots] = {}
        self._robots_pending: dict[str, asyncio.Future[_Robots]] = {}
        self._agent = robots_agent(settings.user_agent)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
        if self.limiter is not None:  # its thread may wait on another process's lock
            await asyncio.to_thread(self.limiter.close)

    # -- public ------------------------------------------------------------------------------

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        respect_robots: bool = False,
        accept: str | None = None,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """Fetch ``url``; never raises for anything the network or the server does."""
        started = time.monotonic()
        trail: list[str] = []
        state: dict[str, Any] = {"final": url, "permanent": True}
        return await self._guarded(url, trail, state, started, self._get(
            url, trail, state, started, etag=etag, last_modified=last_modified,
            respect_robots=respect_robots, accept=accept,
            max_bytes=max_bytes or self.settings.max_bytes))

    async def post_form(self, url: str, data: dict[str, str]) -> FetchResult:
        """POST a form (e.g. a WebSub subscription) under the same guard; redirects are not
        followed (a 3xx is returned as it is). Never raises for network or server trouble."""
        started = time.monotonic()
        state: dict[str, Any] = {"final": url, "permanent": False}
        return await self._guarded(url, [], state, started, self._post(url, data, state, started))

    async def _guarded(self, url: str, trail: list[str], state: dict[str, Any], started: float,
                       work: Any) -> FetchResult:
        try:
            return await work
        except HostOnHold as exc:
            # Shaped as the 429 the host would answer, so callers' transient-error paths
            # (retry after ``retry_after``) apply; ``on_hold`` tells it was never sent.
            return replace(self._failed(url, state, trail, started, "http_429", str(exc)),
                           retry_after=exc.seconds, on_hold=True)
        except _FetchProblem as exc:
            return self._failed(url, state, trail, started, exc.reason, str(exc))
        except (TimeoutError, httpx.TimeoutException) as exc:
            return self._failed(url, state, trail, started, "timeout",
                                f"no complete answer within {self.settings.timeout:g}s ({exc!r})")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            return self._failed(url, state, trail, started, "bad_url", str(exc))
        except httpx.ConnectError as exc:
            text = str(exc)
            reason = "tls_error" if "SSL" in text or "certificate" in text else "connect_error"
            return self._failed(url, state, trail, started, reason, text)
        except (httpx.RemoteProtocolError, httpx.LocalProtocolError) as exc:
            return self._failed(url, state, trail, started, "protocol_error", str(exc))
        except (httpx.TransportError, OSError) as exc:
            return self._failed(url, state, trail, started, "network_error", str(exc) or repr(exc))
        except Exception as exc:  # a server found a way we did not foresee: still a value
            log.exception("fetch failed unexpectedly url=%s", url)
            return self._failed(url, state, trail, started, "fetch_error", repr(exc))

    async def _post(self, url: str, data: dict[str, str], state: dict[str, Any],
                    started: float) -> FetchResult:
        _scheme, host = self._check_url(url)
        async with self._gate(host).slot(), asyncio.timeout(self.settings.timeout):
            response = await self._client.send(
                self._client.build_request("POST", url, data=data), stream=True)
            try:
                headers = {k.lower(): v for k, v in response.headers.items()}
                body = await self._read_body(response, headers, 65_536)
            finally:
                await response.aclose()
        reason = status_reason(response.status_code)
        return FetchResult(url=url, final_url=url, status=response.status_code, headers=headers,
                           body=body, reason=reason,
                           error=None if reason is None else f"HTTP {response.status_code}",
                           elapsed=time.monotonic() - started,
                           retry_after=parse_retry_after(headers.get("retry-after")))

    # -- internals ---------------------------------------------------------------------------

    def _failed(self, url: str, state: dict[str, Any], trail: list[str], started: float,
                reason: str, error: str) -> FetchResult:
        return FetchResult(url=url, final_url=state["final"], status=state.get("status"),
                           headers=state.get("headers", {}), redirects=tuple(trail),
                           reason=reason, error=error, elapsed=time.monotonic() - started,
                           retry_after=state.get("retry_after"))

    def _check_url(self, url: str) -> tuple[str, str]:
        """(scheme, host) of a URL we may try, or raise a problem."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise _BadUrl(f"bad URL {url!r}: {exc}") from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise _Unsupported(f"only http and https are fetched, not {scheme or 'no scheme'!r}")
        host = (parts.hostname or "").lower()
        if not host:
            raise _BadUrl(f"URL has no host: {url!r}")
        if not self.policy.allow_private:
            literal = _ip_literal(host)
            if literal is not None and (why := self.policy.refuses(literal)):
                raise BlockedAddress(f"{host} is a {why}")
            if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
                raise BlockedAddress(f"{host} names a local host")
        return scheme, host

    def _gate(self, host: str) -> _HostGate:
        gate = self._gates.get(host)
        if gate is None:
            if len(self._gates) > 4096:  # keep the table bounded: drop idle hosts
                now = time.monotonic()
                for name in [h for h, g in self._gates.items()
                             if g.users == 0 and g.next_start < now
                             and g.hold_until < time.time()]:
                    del self._gates[name]
            gate = self._gates[host] = _HostGate(host, self.settings.per_host_concurrency,
                                                 self.settings.per_host_min_gap, self.limiter)
        return gate

    async def _get(self, url: str, trail: list[str], state: dict[str, Any], started: float, *,
                   etag: str | None, last_modified: str | None, respect_robots: bool,
                   accept: str | None, max_bytes: int) -> FetchResult:
        current = url
        budget = self.settings.timeout
        headers: dict[str, str] = {"Accept": accept or "*/*"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _hop in range(self.settings.max_redirects + 1):
            state["final"] = current
            _scheme, host = self._check_url(current)
            if respect_robots and not await self._robots_allow(current):
                return self._failed(url, state, trail, started, "robots_disallowed",
                                    f"robots.txt of {host} disallows {current}")
            async with self._gate(host).slot():
                hop_started = time.monotonic()
                async with asyncio.timeout(max(0.001, budget)):
                    response = await self._client.send(
                        self._client.build_request("GET", current, headers=headers), stream=True)
                    try:
                        status = response.status_code
                        resp_headers = {k.lower(): v for k, v in response.headers.items()}
                        state.update(status=status, headers=resp_headers,
                                     retry_after=parse_retry_after(resp_headers.get("retry-after")))
                        if status in (429, 503) and state["retry_after"]:
                            await self._hold(host, state["retry_after"])
                        location = resp_headers.get("location")
                        if status in REDIRECT_STATUSES and location:
                            next_url = urljoin(current, location.strip())
                            trail.append(next_url)
                            if status not in PERMANENT_REDIRECTS:
                                state["permanent"] = False
                            current = next_url
                            body = None
                        elif 200 <= status < 300:
                            body = await self._read_body(response, resp_headers, max_bytes)
                        else:
                            body = b""
                    finally:
                        await response.aclose()
                budget -= time.monotonic() - hop_started
            if body is None:
                continue
            reason = status_reason(status)
            return FetchResult(
                url=url, final_url=current, status=status, headers=resp_headers, body=body,
                redirects=tuple(trail), reason=reason,
                error=None if reason is None else f"HTTP {status} from {current}",
                elapsed=time.monotonic() - started, retry_after=state.get("retry_after"),
                permanent_url=current if trail and state["permanent"] else None,
            )
        state["final"] = current
        return self._failed(url, state, trail, started, "too_many_redirects",
                            f"more than {self.settings.max_redirects} redirects")

    async def _hold(self, host: str, seconds: float) -> None:
        """The host asked to be left alone: hold it here and for every process sharing the
        limits file (capped: a server cannot switch us off for days)."""
        seconds = min(seconds, MAX_HOLD)
        gate = self._gate(host)
        gate.hold_until = max(gate.hold_until, time.time() + seconds)
        log.info("host on hold host=%s seconds=%.0f", host, seconds)
        if self.limiter is not None:
            await self.limiter.ahold(host, seconds)

    async def _read_body(self, response: httpx.Response, headers: dict[str, str],
                         cap: int) -> bytes:
        decoder = _CappedDecoder(headers.get("content-encoding", ""), cap)
        declared = headers.get("content-length", "")
        if decoder.coding == "identity" and declared.isdigit() and int(declared) > cap:
            raise _TooLarge(f"declared length {declared} exceeds {cap} bytes")
        async for chunk in response.aiter_raw():
            decoder.feed(chunk)
        return decoder.body()

    async def _robots_allow(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        entry = self._robots.get(origin)
        if entry is None or entry.expires < time.monotonic():
            pending = self._robots_pending.get(origin)
            if pending is None:  # first asker fetches; everyone else waits for that answer
                pending = asyncio.get_running_loop().create_future()
                self._robots_pending[origin] = pending
                try:
                    entry = await self._fetch_robots(origin)
                    if entry.crawl_delay and self.limiter is not None:  # tell the whole node
                        await self.limiter.awiden_gap((parts.hostname or "").lower(),
                                                      entry.crawl_delay, ROBOTS_TTL)
                    if len(self._robots) >= ROBOTS_CACHE_SIZE:  # bounded: expired first, then oldest
                        now = time.monotonic()
                        for name in [o for o, r in self._robots.items() if r.expires < now]:
                            del self._robots[name]
                        while len(self._robots) >= ROBOTS_CACHE_SIZE:
                            del self._robots[next(iter(self._robots))]
                    self._robots[origin] = entry
                    pending.set_result(entry)
                except BaseException as exc:
                    pending.set_exception(exc)
                    pending.exception()  # mark retrieved: waiters may be gone
                    raise
                finally:
                    del self._robots_pending[origin]
            else:
                entry = await asyncio.shield(pending)
        if entry.crawl_delay:  # the site asked for a slower pace: widen this host's gap
            gate = self._gate((parts.hostname or "").lower())
            gate.gap = max(gate.gap, entry.crawl_delay)
        return entry.allows(self._agent, url)

    async def _fetch_robots(self, origin: str) -> _Robots:
        result = await self.get(f"{origin}/robots.txt", accept="text/plain, */*;q=0.5",
                                max_bytes=ROBOTS_MAX_BYTES)
        if result.on_hold:  # not an answer about robots.txt: ask again once the hold ends
            raise HostOnHold(urlsplit(origin).hostname or origin, result.retry_after or 0.0)
        now = time.monotonic()
        if result.status is not None and 400 <= result.status < 500 and result.status != 429:
            # RFC 9309: an unavailable robots.txt (4xx) means no restriction.
            return _Robots(now + ROBOTS_TTL, None, allow_all=True)
        if result.reason is not None or result.status is None:
            # Unreachable or server error: assume complete disallow for a short while.
            log.info("robots.txt unreachable origin=%s reason=%s", origin, result.reason)
            return _Robots(now + ROBOTS_ERROR_TTL, None, disallow_all=True)
        parser = RobotFileParser()
        parser.parse(result.body.decode("utf-8", "replace").splitlines())
        try:
            delay = float(parser.crawl_delay(self._agent) or 0.0)
        except (TypeError, ValueError):
            delay = 0.0
        return _Robots(now + ROBOTS_TTL, parser, crawl_delay=min(max(delay, 0.0), MAX_CRAWL_DELAY))


class _BadUrl(_FetchProblem):
    reason = "bad_url"


class _Unsupported(_FetchProblem):
    reason = "unsupported_scheme"
