"""The safe fetcher against a real HTTP server on loopback (a thread in this process)."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import brotli
import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from newswire.http import (
    AddressPolicy,
    _CappedDecoder,
    BlockedAddress,
    Fetcher,
    GuardedNetworkBackend,
    blocked_reason,
    parse_retry_after,
    robots_agent,
)
from newswire.settings import FetchSettings

pytestmark = pytest.mark.integration

BOMB = gzip.compress(b"\0" * 20_000_000, compresslevel=9)  # ~20 KB on the wire, 20 MB decoded


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if "Content_Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: C901 - a small router
        path = self.path.split("?")[0]
        with self.server.lock:
            self.server.hits[path] = self.server.hits.get(path, 0) + 1
        port = self.server.server_address[1]
        if path == "/ok":
            self._send(200, b"hello", Content_Type="text/plain",
                       X_Agent=self.headers.get("User-Agent", ""))
        elif path == "/set-cookie":
            self._send(200, b"set", Set_Cookie="session=abc; Path=/")
        elif path == "/echo-cookie":
            self._send(200, self.headers.get("Cookie", "").encode())
        elif path == "/feed":
            if self.headers.get("If-None-Match") == '"v1"':
                self._send(304, ETag='"v1"')
            else:
                self._send(200, b"<rss/>", ETag='"v1"', Last_Modified="Mon, 01 Jan 2024 00:00:00 GMT")
        elif path == "/big":
            self._send(200, b"x" * 2_000_000)
        elif path == "/big-undeclared":  # no length: the cap must count while streaming
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"y" * 50_000)
        elif path == "/bomb":
            self._send(200, BOMB, Content_Encoding="gzip")
        elif path == "/gzip":
            self._send(200, gzip.compress(b"squeezed " * 100), Content_Encoding="gzip")
        elif path == "/deflate":
            self._send(200, zlib.compress(b"deflated " * 100), Content_Encoding="deflate")
        elif path == "/br":
            self._send(200, brotli.compress(b"brotli " * 100), Content_Encoding="br")
        elif path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"partial")
            self.wfile.flush()
            self.server.release.wait(10)
        elif path == "/loop-a":
            self._send(302, Location="/loop-b")
        elif path == "/loop-b":
            self._send(302, Location="/loop-a")
        elif path == "/moved":
            self._send(301, Location="/ok")
        elif path == "/found":
            self._send(302, Location=f"{self.server.base}/ok")
        elif path == "/to-private":
            self._send(302, Location=f"http://127.0.0.2:{port}/ok")
        elif path == "/to-metadata":
            self._send(302, Location="http://169.254.169.254/latest/meta-data/")
        elif path == "/to-file":
            self._send(302, Location="file:///etc/passwd")
        elif path == "/busy":
            self._send(503, Retry_After="120")
        elif path == "/missing":
            self._send(404, b"nope")
        elif path == "/robots.txt":
            self._send(200, b"User-agent: newswire\nDisallow: /private\nCrawl-delay: 2\n\n"
                            b"User-agent: *\nAllow: /\n")
        elif path in ("/private/page", "/public/page"):
            self._send(200, b"page")
        elif path == "/slow":
            with self.server.lock:
                self.server.in_flight += 1
                self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
            time.sleep(0.15)
            with self.server.lock:
                self.server.in_flight -= 1
            self._send(200, b"slow")
        else:
            self._send(404)


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def fetch(url: str, *, allow_private: bool = True, networks: tuple[str, ...] = (),
          **kwargs: object) -> object:
    options = {"allow_private_networks": allow_private, "per_host_min_gap": 0.0,
               **{k: kwargs.pop(k) for k in list(kwargs) if k in FetchSettings.model_fields}}

    async def go() -> object:
        async with Fetcher(FetchSettings(**options), allowed_networks=networks) as fetcher:
            return await fetcher.get(url, **kwargs)

    return asyncio.run(go())


def test_loopback_refused_by_default_and_allowed_by_setting(server: _Server) -> None:
    refused = fetch(f"{server.base}/ok", allow_private=False)
    assert refused.reason == "blocked_address" and refused.status is None
    before = server.hits.get("/ok", 0)
    fetch(f"{server.base}/ok", allow_private=False)
    assert server.hits.get("/ok", 0) == before

    ok = fetch(f"{server.base}/ok", allow_private=True)
    assert ok.reason is None and ok.status == 200 and ok.body == b"hello"
    assert ok.headers["x-agent"].startswith("newswire/")


def test_names_are_checked_after_dns_resolution(server: _Server) -> None:
    # "localhost" is resolved by the system resolver; the address it gives is what is refused.
    backend = GuardedNetworkBackend(AddressPolicy(allow_private=False))

    async def go() -> None:
        await backend.connect_tcp("localhost", server.server_address[1], timeout=2)

    with pytest.raises(BlockedAddress):
        asyncio.run(go())

    allowed = GuardedNetworkBackend(AddressPolicy(allow_private=True))

    async def go_allowed() -> None:
        stream = await allowed.connect_tcp("127.0.0.1", server.server_address[1], timeout=2)
        await stream.aclose()

    asyncio.run(go_allowed())


@pytest.mark.parametrize("path", ["/to-private", "/to-metadata"])
def test_redirect_to_a_private_address_is_refused(server: _Server, path: str) -> None:
    # The first hop is allowed (127.0.0.1/32 listed as an exception); the redirect target is not.
    result = fetch(f"{server.base}{path}", allow_private=False, networks=("127.0.0.1/32",))
    assert result.reason == "blocked_address"
    assert len(result.redirects) == 1 and result.final_url == result.redirects[0]
    start = fetch(f"{server.base}/ok", allow_private=False, networks=("127.0.0.1/32",))
    assert start.reason is None


def test_redirect_to_another_scheme_is_refused(server: _Server) -> None:
    assert fetch(f"{server.base}/to-file").reason == "unsupported_scheme"
    assert fetch("file:///etc/passwd").reason == "unsupported_scheme"
    assert fetch("gopher://example.com/").reason == "unsupported_scheme"
    assert fetch("http:///nohost").reason == "bad_url"


def test_size_cap_declared_and_streamed(server: _Server) -> None:
    declared = fetch(f"{server.base}/big", max_bytes=1_000_000)
    assert declared.reason == "too_large" and declared.body == b""
    streamed = fetch(f"{server.base}/big-undeclared", max_bytes=1_000_000)
    assert streamed.reason == "too_large"
    whole = fetch(f"{server.base}/big-undeclared", max_bytes=3_000_000)
    assert whole.reason is None and len(whole.body) == 2_000_000


def test_gzip_bomb_stops_at_the_cap(server: _Server) -> None:
    assert len(BOMB) < 100_000
    result = fetch(f"{server.base}/bomb", max_bytes=1_000_000)
    assert result.reason == "too_large" and result.body == b""


@pytest.mark.parametrize("path,text", [("/gzip", b"squeezed "), ("/deflate", b"deflated "),
                                       ("/br", b"brotli ")])
def test_compressed_bodies_are_decoded(server: _Server, path: str, text: bytes) -> None:
    result = fetch(f"{server.base}{path}")
    assert result.reason is None and result.body == text * 100


def test_stalled_server_times_out(server: _Server) -> None:
    result = fetch(f"{server.base}/stall", timeout=0.5)
    assert result.reason == "timeout" and result.error


def test_redirect_loop_stops(server: _Server) -> None:
    result = fetch(f"{server.base}/loop-a", max_redirects=4)
    assert result.reason == "too_many_redirects"
    assert len(result.redirects) == 5


def test_permanent_redirect_is_reported(server: _Server) -> None:
    moved = fetch(f"{server.base}/moved")
    assert moved.reason is None and moved.permanent_url == f"{server.base}/ok"
    found = fetch(f"{server.base}/found")
    assert found.reason is None and found.permanent_url is None
    assert found.final_url == f"{server.base}/ok"


def test_conditional_get_gives_304_without_error(server: _Server) -> None:
    first = fetch(f"{server.base}/feed")
    assert first.status == 200 and first.headers["etag"] == '"v1"'
    again = fetch(f"{server.base}/feed", etag=first.headers["etag"],
                  last_modified=first.headers["last-modified"])
    assert again.status == 304 and again.reason is None and again.not_modified
    assert again.body == b""


def test_http_errors_and_retry_after(server: _Server) -> None:
    busy = fetch(f"{server.base}/busy")
    assert busy.reason == "http_5xx" and busy.status == 503 and busy.retry_after == 120
    assert fetch(f"{server.base}/missing").reason == "http_404"


def test_unreachable_port_is_a_value_not_an_exception(server: _Server) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as closed:
        port = closed.server_address[1]
    result = fetch(f"http://127.0.0.1:{port}/")
    assert result.reason == "connect_error"
    assert fetch("http://name.invalid/").reason == "dns_error"


def test_robots_txt_is_honoured_and_fetched_once(server: _Server) -> None:
    gaps: list[float] = []

    async def go() -> list[object]:
        settings = FetchSettings(allow_private_networks=True, per_host_min_gap=0.0)
        async with Fetcher(settings) as fetcher:
            results = list(await asyncio.gather(
                fetcher.get(f"{server.base}/private/page", respect_robots=True),
                fetcher.get(f"{server.base}/public/page", respect_robots=True),
                fetcher.get(f"{server.base}/public/page", respect_robots=True),
                fetcher.get(f"{server.base}/private/page"),  # not asked to respect: fetched
            ))
            gaps.append(fetcher._gate("127.0.0.1").gap)
            return results

    before = server.hits.get("/robots.txt", 0)
    private, public, public2, unasked = asyncio.run(go())
    assert gaps == [2.0]  # Crawl-delay widened the host's minimum gap
    assert private.reason == "robots_disallowed"
    assert public.reason is None and public2.reason is None and unasked.reason is None
    assert server.hits["/robots.txt"] - before == 1


def test_per_host_concurrency_is_bounded(server: _Server) -> None:
    async def go() -> list[object]:
        settings = FetchSettings(allow_private_networks=True, per_host_min_gap=0.0,
                                 per_host_concurrency=2)
        async with Fetcher(settings) as fetcher:
            return list(await asyncio.gather(*(fetcher.get(f"{server.base}/slow")
                                               for _ in range(6))))

    server.max_in_flight = 0
    results = asyncio.run(go())
    assert all(r.reason is None for r in results)
    assert 1 <= server.max_in_flight <= 2


def test_retry_after_forms() -> None:
    assert parse_retry_after("30") == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert robots_agent("newswire/0.1 (+https://x)") == "newswire"


@given(st.ip_addresses(v=4, network="10.0.0.0/8") | st.ip_addresses(v=4, network="127.0.0.0/8")
       | st.ip_addresses(v=4, network="169.254.0.0/16")
       | st.ip_addresses(v=4, network="192.168.0.0/16") | st.ip_addresses(v=6, network="fc00::/7")
       | st.ip_addresses(v=6, network="fe80::/10"))
def test_private_ranges_are_blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert blocked_reason(ip)
    if isinstance(ip, ipaddress.IPv4Address):  # and their IPv6 spellings
        assert blocked_reason(ipaddress.IPv6Address(f"::ffff:{ip}"))


def test_public_and_special_addresses() -> None:
    assert blocked_reason(ipaddress.ip_address("93.184.216.34")) is None
    assert blocked_reason(ipaddress.ip_address("2606:2800:220:1::1")) is None
    for bad in ("169.254.169.254", "::1", "0.0.0.0", "100.100.100.200", "224.0.0.1",
                "fd00:ec2::254", "::ffff:127.0.0.1", "2002:7f00:1::"):
        assert blocked_reason(ipaddress.ip_address(bad)), bad


def test_connect_error_type_is_httpcore_for_unreachable() -> None:
    # The guarded backend passes real connect failures through as httpcore errors.
    backend = GuardedNetworkBackend(AddressPolicy(allow_private=True))
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as closed:
        port = closed.server_address[1]

    async def go() -> None:
        await backend.connect_tcp("127.0.0.1", port, timeout=2)

    with pytest.raises(httpcore.ConnectError):
        asyncio.run(go())


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "identity"])
@given(data=st.binary(max_size=5000), cap=st.integers(1, 6000), chunk=st.integers(1, 700))
def test_capped_decoder_round_trips_or_stops_at_the_cap(coding: str, data: bytes, cap: int,
                                                        chunk: int) -> None:
    from newswire.http import _TooLarge

    encoded = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
               "identity": bytes}[coding](data)
    decoder = _CappedDecoder(coding, cap)
    try:
        for i in range(0, len(encoded), chunk):
            decoder.feed(encoded[i:i + chunk])
    except _TooLarge:
        assert len(data) > cap
        return
    assert len(data) <= cap and decoder.body() == data


def test_no_cookies_are_kept_between_fetches(server: _Server) -> None:
    async def go() -> bytes:
        async with Fetcher(FetchSettings(allow_private_networks=True, per_host_min_gap=0.0)) as f:
            await f.get(f"{server.base}/set-cookie")
            return (await f.get(f"{server.base}/echo-cookie")).body

    assert asyncio.run(go()) == b""


# -- kept-alive connections: reused, and dropped once the server closed them ---------------

class _CountingServer:
    """Raw HTTP/1.1 on loopback that counts TCP connections; after ``close_after`` answers on
    a connection it closes it without saying so (no ``Connection: close``), as servers do
    when their keep-alive timeout passes."""

    def __init__(self, close_after: int) -> None:
        import socket as sock_mod

        self.close_after = close_after
        self.connections = 0
        self.sock = sock_mod.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn) -> None:  # noqa: ANN001
        with conn:
            for _ in range(self.close_after):
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("close_after", [100, 1])
def test_kept_alive_connections_are_reused_and_closed_ones_replaced(close_after: int) -> None:
    server = _CountingServer(close_after)

    async def run() -> list[int]:
        settings = FetchSettings(allow_private_networks=True, per_host_min_gap=0.0)
        async with Fetcher(settings) as fetcher:
            statuses = []
            for _ in range(4):
                result = await fetcher.get(f"http://127.0.0.1:{server.port}/x")
                statuses.append(result.status)
                await asyncio.sleep(0.05)  # the server's close reaches us before the next
            return statuses

    try:
        assert asyncio.run(run()) == [200] * 4  # a closed connection never fails a request
    finally:
        server.close()
    assert server.connections == (1 if close_after == 100 else 4)
