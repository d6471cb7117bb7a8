"""Loopback front-ends that add TLS and authentication to noida's plain Kafka and ES API.

noida-db speaks neither TLS nor SASL nor HTTP auth, so the connection settings
(``KafkaSettings.security_protocol``/``ssl_*``/``sasl_*``, ``SearchSettings.api_key``/
``username``/``ca_certs``) are proven against these real proxies:

- :func:`make_certs`: a test CA and a server certificate for 127.0.0.1 (openssl CLI);
- :class:`ElasticAuthProxy`: HTTPS in front of noida's ES API that requires
  ``Authorization: ApiKey ...`` or ``Basic ...`` and answers 401 otherwise;
- :class:`KafkaTlsProxy`: TLS in front of noida's Kafka port. Kafka clients reconnect to the
  broker address the metadata advertises (noida's plain port; it has no advertised-listener
  option), so the proxy rewrites that port to its own in Metadata and FindCoordinator
  answers. The host stays ``127.0.0.1`` and a port is 4 bytes either way, so the rewrite is a
  same-length byte replacement and no frame needs re-encoding. With ``sasl_users`` it also
  plays the broker's side of SASL/PLAIN (handshake and authenticate) before forwarding.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import ssl
import struct
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

HOST = "127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_certs(folder: Path) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
        "-subj", "/CN=newswire test CA")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return TlsFiles(ca_crt, crt, key)


def make_client_cert(tls: TlsFiles, folder: Path) -> tuple[Path, Path]:
    """A client certificate (mutual TLS) signed by the test CA: (certificate, key)."""
    key, csr, crt = folder / "client.key", folder / "client.csr", folder / "client.crt"
    ext = folder / "client.ext"
    ext.write_text("extendedKeyUsage=clientAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (["req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=newswire"],
                 ["x509", "-req", "-in", str(csr), "-CA", str(tls.ca),
                  "-CAkey", str(tls.ca.with_suffix(".key")), "-CAcreateserial", "-out", str(crt),
                  "-days", "2", "-extfile", str(ext)]):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    return crt, key


def server_context(tls: TlsFiles, *, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls.cert), str(tls.key))
    if client_ca is not None:  # mutual TLS: a client without a certificate from it is refused
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca))
    return context


# -- Elasticsearch


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "host", "authorization",
               "content-length"}


class ElasticAuthProxy:
    """HTTPS + auth in front of a plain Elasticsearch API (noida's), on a loopback port."""

    def __init__(self, upstream_url: str, tls: TlsFiles, *, api_key: str,
                 username: str, password: str) -> None:
        self.upstream = upstream_url.removeprefix("http://").rstrip("/")
        self.accepted = {f"ApiKey {api_key}": "api_key",
                         "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode():
                         "basic"}
        self.outcomes: Counter[str] = Counter()  # api_key / basic / refused / tls_failed
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._server.daemon_threads = True
        self._server.socket = server_context(tls).wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self._server.server_address[1]}"

    def count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                # the handshake runs here, in the connection's thread, so a client that
                # refuses our certificate is counted instead of stalling the accept loop
                try:
                    self.request.do_handshake()
                except (ssl.SSLError, OSError):
                    proxy.count("tls_failed")
                    raise
                super().setup()

            def handle(self) -> None:
                try:
                    super().handle()
                except (ssl.SSLError, OSError):
                    pass

            def forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                who = proxy.accepted.get(self.headers.get("Authorization", ""))
                if who is None:
                    proxy.count("refused")
                    self.reply(401, {"error": {"type": "security_exception",
                                               "reason": "unable to authenticate"},
                                     "status": 401}, {"WWW-Authenticate": "ApiKey, Basic"})
                    return
                proxy.count(who)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in _HOP_BY_HOP}
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    extra = {k: v for k, v in answer.getheaders()
                             if k.lower() not in _HOP_BY_HOP}
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


# -- Kafka

API_METADATA, API_FIND_COORDINATOR = 3, 10
API_SASL_HANDSHAKE, API_API_VERSIONS, API_SASL_AUTHENTICATE = 17, 18, 36
ERR_UNSUPPORTED_SASL_MECHANISM, ERR_SASL_AUTHENTICATION_FAILED = 33, 58


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _put_uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _request_body(frame: bytes) -> tuple[int, int, int, bytes]:
    """api key, version, correlation id and the body of a request header v1 frame.

    SASL requests before authentication use header v1 (v2 adds tagged fields only for
    flexible versions: SaslAuthenticate v2, handled by the caller)."""
    api_key, version, corr, client_len = struct.unpack(">hhih", frame[:10])
    pos = 10 + max(client_len, 0)
    return api_key, version, corr, frame[pos:]


class KafkaTlsProxy:
    """TLS (and optionally SASL/PLAIN) in front of one plain Kafka broker, on loopback."""

    def __init__(self, upstream: str, tls: TlsFiles, sasl_users: dict[str, str] | None = None,
                 *, require_client_cert: bool = False) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream_host, self.upstream_port = host, int(port)
        self.context = server_context(tls, client_ca=tls.ca if require_client_cert else None)
        self.sasl_users = sasl_users
        self.port = 0
        self.outcomes: Counter[str] = Counter()  # rewrites, connections, sasl_ok, sasl_failed
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, HOST, 0, ssl=self.context), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _rewrite(self, frame: bytes) -> bytes:
        advertised = self.upstream_host.encode()
        old = advertised + struct.pack(">i", self.upstream_port)
        new = advertised + struct.pack(">i", self.port)
        if old in frame:
            self.outcomes["rewrites"] += 1
        return frame.replace(old, new)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.outcomes["connections"] += 1
        up_reader = up_writer = None
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port)
            pending: dict[int, tuple[int, int]] = {}  # correlation id -> (api key, version)
            if self.sasl_users is not None and not await self._authenticate(
                    reader, writer, up_reader, up_writer):
                return
            await asyncio.gather(self._requests(reader, up_writer, pending),
                                 self._responses(up_reader, writer, pending))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.close()

    async def _requests(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter,
                        pending: dict[int, tuple[int, int]]) -> None:
        while True:
            frame = await _read_frame(reader)
            api_key, version, corr = struct.unpack(">hhi", frame[:8])
            pending[corr] = (api_key, version)
            up.write(struct.pack(">i", len(frame)) + frame)
            await up.drain()

    async def _responses(self, up: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         pending: dict[int, tuple[int, int]]) -> None:
        while True:
            frame = await _read_frame(up)
            (corr,) = struct.unpack(">i", frame[:4])
            api_key, _version = pending.pop(corr, (-1, -1))
            if api_key in (API_METADATA, API_FIND_COORDINATOR):
                frame = self._rewrite(frame)
            writer.write(struct.pack(">i", len(frame)) + frame)
            await writer.drain()

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            up_reader: asyncio.StreamReader,
                            up_writer: asyncio.StreamWriter) -> bool:
        """The broker's side of SASL/PLAIN (KIP-152); ApiVersions goes to the real broker."""
        assert self.sasl_users is not None
        while True:
            frame = await _read_frame(reader)
            api_key, version, corr, body = _request_body(frame)

            if api_key == API_API_VERSIONS:
                up_writer.write(struct.pack(">i", len(frame)) + frame)
                await up_writer.drain()
                reply = await _read_frame(up_reader)  # noida lists the SASL APIs already
                writer.write(struct.pack(">i", len(reply)) + reply)
                await writer.drain()
            elif api_key == API_SASL_HANDSHAKE:
                (size,) = struct.unpack(">h", body[:2])
                mechanism = body[2:2 + size].decode()
                error = 0 if mechanism == "PLAIN" else ERR_UNSUPPORTED_SASL_MECHANISM
                mechanisms = struct.pack(">ih", 1, 5) + b"PLAIN"
                await _answer(writer, corr, struct.pack(">h", error) + mechanisms)
                if error:
                    self.outcomes["sasl_failed"] += 1
                    return False
            elif api_key == API_SASL_AUTHENTICATE:
                flexible = version >= 2
                if flexible:
                    _tags, pos = _uvarint(body, 0)  # request header tagged fields
                    size, pos = _uvarint(body, pos)
                    token = body[pos:pos + size - 1]
                else:
                    (size,) = struct.unpack(">i", body[:4])
                    token = body[4:4 + size]
                _authzid, user, password = token.decode(errors="replace").split("\0", 2)
                ok = self.sasl_users.get(user) == password
                self.outcomes["sasl_ok" if ok else "sasl_failed"] += 1
                error = 0 if ok else ERR_SASL_AUTHENTICATION_FAILED
                message = b"" if ok else b"Authentication failed: invalid credentials"
                if flexible:
                    msg = b"\0" if ok else _put_uvarint(len(message) + 1) + message
                    payload = struct.pack(">h", error) + msg + b"\x01" + struct.pack(">q", 0)
                    await _answer(writer, corr, payload + b"\0", flexible=True)
                else:
                    msg = struct.pack(">h", -1) if ok else struct.pack(">h", len(message)) + message
                    payload = struct.pack(">h", error) + msg + struct.pack(">i", 0)
                    lifetime = struct.pack(">q", 0) if version >= 1 else b""
                    await _answer(writer, corr, payload + lifetime)
                return ok
            else:  # anything else before authentication is refused, as a broker does
                self.outcomes["sasl_failed"] += 1
                return False


async def _answer(writer: asyncio.StreamWriter, corr: int, payload: bytes,
                  flexible: bool = False) -> None:
    head = struct.pack(">i", corr) + (b"\0" if flexible else b"")  # response header v0/v1
    writer.write(struct.pack(">i", len(head) + len(payload)) + head + payload)
    await writer.drain()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)
