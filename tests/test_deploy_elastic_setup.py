"""deploy/compose/elastic-setup.sh `users`: run for real (bash + curl) against a loopback
HTTPS server that speaks the Elasticsearch security API, with a CA made by openssl.

Elasticsearch itself cannot run here; what is checked is the script's own behaviour: it
waits (bounded) for the cluster, verifies TLS against the CA in the certs folder, sends
the superuser's credentials, and sends passwords as valid JSON whatever they contain.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "compose" / "elastic-setup.sh"
ELASTIC_PASSWORD = "el\"astic\\pw$HOME 'x' é"
KIBANA_PASSWORD = 'kib"ana\\\\pw`id`'
NEWSWIRE_PASSWORD = "nw-{\"a\":1}\\n$(id)"


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, with the openssl CLI."""
    ca_dir = folder / "ca"
    ca_dir.mkdir(parents=True)
    ca_key, ca_crt = ca_dir / "ca.key", ca_dir / "ca.crt"
    key, csr, crt = folder / "node.key", folder / "node.csr", folder / "node.crt"
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_crt), "-days", "2",
        "-subj", "/CN=newswire test CA")
    run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, crt, key


@dataclass
class FakeSecurityApi:
    unhealthy_answers: int = 0
    fail_role: bool = False
    bodies: dict[str, Any] = field(default_factory=dict)
    health_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def handler_for(state: FakeSecurityApi) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"elastic:{ELASTIC_PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self) -> None:
            if self.headers.get("Authorization") != expected:
                return self.reply(401, {"error": "missing authentication credentials"})
            path = self.path.split("?")[0]
            if self.command == "GET" and path == "/_cluster/health":
                with state.lock:
                    state.health_calls += 1
                    sick = state.unhealthy_answers > 0
                    state.unhealthy_answers -= 1
                return self.reply(503 if sick else 200, {"status": "red" if sick else "yellow"})
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                return self.reply(400, {"error": "request body is not JSON"})
            if self.headers.get("Content-Type") != "application/json":
                return self.reply(406, {"error": "Content-Type"})
            with state.lock:
                state.bodies[f"{self.command} {path}"] = body
            if path.startswith("/_security/role/") and state.fail_role:
                return self.reply(400, {"error": "bad role"})
            self.reply(200, {})

        do_GET = do_POST = do_PUT = handle_any

    return Handler


@pytest.fixture
def security_api(tmp_path: Path) -> Iterator[tuple[str, Path, FakeSecurityApi]]:
    assert shutil.which("curl") and shutil.which("openssl"), "curl and openssl are needed"
    certs = tmp_path / "certs"
    ca_crt, crt, key = make_certs(certs)
    state = FakeSecurityApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", certs, state
    finally:
        server.shutdown()
        server.server_close()


def run_users(url: str, certs: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin", "CERTS": str(certs), "ES_URL": url,
        "ES_WAIT_ATTEMPTS": "20", "ES_WAIT_INTERVAL": "0.05",
        "ELASTIC_PASSWORD": ELASTIC_PASSWORD, "KIBANA_PASSWORD": KIBANA_PASSWORD,
        "NEWSWIRE_ES_PASSWORD": NEWSWIRE_PASSWORD, "NEWSWIRE_INDEX_PREFIX": "newswire",
        **overrides,
    }
    return subprocess.run(["bash", str(SCRIPT), "users"], env=env, capture_output=True,
                          text=True, timeout=60)


def test_users_job_sets_passwords_role_and_user_over_tls(
    security_api: tuple[str, Path, FakeSecurityApi],
) -> None:
    url, certs, state = security_api
    state.unhealthy_answers = 2
    result = run_users(url, certs)
    assert result.returncode == 0, result.stderr
    assert state.health_calls == 3  # waited through two unhealthy answers
    assert state.bodies["POST /_security/user/kibana_system/_password"] == {
        "password": KIBANA_PASSWORD}
    role = state.bodies["PUT /_security/role/newswire_writer"]
    assert role["indices"] == [{"names": ["newswire-*"], "privileges": [
        "create_index", "manage", "write", "read", "view_index_metadata"]}]
    assert "manage_index_templates" in role["cluster"]
    user = state.bodies["PUT /_security/user/newswire"]
    assert user["password"] == NEWSWIRE_PASSWORD and user["roles"] == ["newswire_writer"]
    # no password is echoed into the job's log
    for secret in (ELASTIC_PASSWORD, KIBANA_PASSWORD, NEWSWIRE_PASSWORD):
        assert secret not in result.stdout + result.stderr


def test_users_job_fails_loudly(security_api: tuple[str, Path, FakeSecurityApi],
                                tmp_path: Path) -> None:
    url, certs, state = security_api
    missing = run_users(url, certs, NEWSWIRE_ES_PASSWORD="")
    assert missing.returncode == 1 and "NEWSWIRE_ES_PASSWORD is empty" in missing.stderr
    control = run_users(url, certs, KIBANA_PASSWORD="two\nlines")
    assert control.returncode == 1 and "control character" in control.stderr
    assert not state.bodies  # nothing was sent

    state.fail_role = True
    refused = run_users(url, certs)
    assert refused.returncode != 0
    assert "PUT /_security/user/newswire" not in state.bodies  # stopped at the failed step

    # A certificate from another CA is not trusted: the job never gets an answer.
    other = make_certs(tmp_path / "other")[0].parent.parent
    untrusted = run_users(url, other, ES_WAIT_ATTEMPTS="2")
    assert untrusted.returncode == 1 and "did not answer in time" in untrusted.stderr
