"""A fault-injecting HTTP proxy on loopback in front of a real Elasticsearch API (noida's).

A real server: the Elasticsearch client under test talks HTTP to it, and it forwards to
the upstream, except where a rule says otherwise:

- ``fail_bulk(status, times)``: answer the next ``times`` ``_bulk`` requests (every one
  while ``times`` is None, until :meth:`clear`) with ``status`` and an Elasticsearch-shaped
  error, without forwarding them;
- ``fail_item(doc_id, status, times)``: in ``_bulk`` requests, take the action for
  ``doc_id`` out of the body forwarded upstream (so it is really not written) and answer it
  with item-level ``status``, ``times`` times (None: every time); the other items are
  forwarded and their real answers kept, in the original order.

``attempts[doc_id]`` counts how often a document was sent in a ``_bulk``, ``bulk_requests``
the ``_bulk`` requests received, ``faulted_bulks`` those answered by a rule.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

ERROR_TYPES = {429: "es_rejected_execution_exception", 500: "illegal_state_exception",
               503: "unavailable_shards_exception"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length",
               "content-encoding", "accept-encoding", "host"}


@dataclass
class ItemRule:
    status: int
    times: int | None  # None: every time


def error_body(status: int, what: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "exception")
    return {"type": kind, "reason": f"injected {status} for {what}"}


def parse_bulk(body: bytes) -> list[tuple[dict[str, Any], bytes | None]]:
    """NDJSON bulk body -> (action, source line or None for delete)."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    out: list[tuple[dict[str, Any], bytes | None]] = []
    i = 0
    while i < len(lines):
        action = json.loads(lines[i])
        op = next(iter(action))
        if op == "delete":
            out.append((action, None))
            i += 1
        else:
            out.append((action, lines[i + 1]))
            i += 2
    return out


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.lock = threading.Lock()
        self.bulk_rule: tuple[int, int | None] | None = None
        self.item_rules: dict[str, ItemRule] = {}
        self.attempts: Counter[str] = Counter()
        self.bulk_requests = 0
        self.faulted_bulks = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest captures the indexer's own log

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = proxy.handle(self.command, self.path,
                                                     dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- rules

    def fail_bulk(self, status: int, times: int | None) -> None:
        with self.lock:
            self.bulk_rule = (status, times)

    def fail_item(self, doc_id: str, status: int, times: int | None = None) -> None:
        with self.lock:
            self.item_rules[doc_id] = ItemRule(status, times)

    def clear(self) -> None:
        with self.lock:
            self.bulk_rule = None
            self.item_rules.clear()

    # -- lifecycle

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    # -- forwarding

    def forward(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
            sent["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_HEADERS}
            return response.status, kept, data
        finally:
            conn.close()

    def handle(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        if method not in ("POST", "PUT") or not path.split("?")[0].endswith("/_bulk"):
            return self.forward(method, path, headers, body)
        items = parse_bulk(body)
        with self.lock:
            self.bulk_requests += 1
            for action, _ in items:
                self.attempts[str(next(iter(action.values())).get("_id"))] += 1
            if self.bulk_rule is not None:
                status, times = self.bulk_rule
                if times is not None:
                    self.bulk_rule = (status, times - 1) if times > 1 else None
                self.faulted_bulks += 1
                answer = {"error": {"root_cause": [error_body(status, "_bulk")],
                                    **error_body(status, "_bulk")}, "status": status}
                return status, {"content-type": "application/json",
                                "x-elastic-product": "Elasticsearch"}, \
                    json.dumps(answer).encode()
            injected: dict[int, int] = {}  # position in the request -> item status
            for n, (action, _) in enumerate(items):
                rule = self.item_rules.get(str(next(iter(action.values())).get("_id")))
                if rule is None:
                    continue
                injected[n] = rule.status
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self.item_rules[str(next(iter(action.values())).get("_id"))]
        if not injected:
            return self.forward(method, path, headers, body)
        kept = [pair for n, pair in enumerate(items) if n not in injected]
        upstream_items: list[dict[str, Any]] = []
        took = 0
        if kept:
            lines = []
            for action, source in kept:
                lines.append(json.dumps(action).encode())
                if source is not None:
                    lines.append(source)
            status, out_headers, data = self.forward(method, path, headers,
                                                     b"\n".join(lines) + b"\n")
            if status != 200:
                return status, out_headers, data
            answer = json.loads(data)
            upstream_items, took = answer["items"], answer.get("took", 0)
        merged, upstream = [], iter(upstream_items)
        for n, (action, _) in enumerate(items):
            if n in injected:
                op, meta = next(iter(action.items()))
                merged.append({op: {"_index": meta.get("_index"), "_id": meta.get("_id"),
                                    "status": injected[n],
                                    "error": error_body(injected[n], str(meta.get("_id")))}})
            else:
                merged.append(next(upstream))
        return 200, {"content-type": "application/json", "x-elastic-product": "Elasticsearch"}, \
            json.dumps({"took": took, "errors": True, "items": merged}).encode()
