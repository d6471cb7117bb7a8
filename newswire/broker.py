"""The embedded Kafka-protocol (and, for tests, Elasticsearch-API) server: noida-db.

Started as a child process we own by PID, ready when it answers on its ports, stopped by
SIGTERM (then SIGKILL after a grace period). Its data lives under the given directory.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from importlib.resources import files
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _binary() -> str:
    path = files("noida_db").joinpath("noida-db")
    if not path.is_file():
        raise RuntimeError(f"noida-db binary not found at {path}; is noida-db installed?")
    os.chmod(str(path), 0o755)
    return str(path)


class EmbeddedServer:
    """One noida-db process serving Kafka and optionally Elasticsearch on loopback."""

    def __init__(
        self,
        data_dir: Path,
        *,
        kafka_port: int | None = None,
        elasticsearch_port: int | None = None,
        with_elasticsearch: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.kafka_port = kafka_port or free_port(host)
        self.with_elasticsearch = with_elasticsearch
        self.elasticsearch_port = (elasticsearch_port or free_port(host)) if with_elasticsearch else None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def elasticsearch_url(self) -> str | None:
        return f"http://{self.host}:{self.elasticsearch_port}" if self.elasticsearch_port else None

    @property
    def exited(self) -> bool:
        """True when the server was started and its process has died since."""
        return self.proc is not None and self.proc.poll() is not None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "noida.log"

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._wait_for_previous_owner()
        services = "kafka,elasticsearch" if self.with_elasticsearch else "kafka"
        cmd = [_binary(), "start", "--data-dir", str(self.data_dir), "--host", self.host,
               "--only", services, "--kafka-port", str(self.kafka_port)]
        if self.elasticsearch_port:
            cmd += ["--elasticsearch-port", str(self.elasticsearch_port)]
        logfile = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        logfile.close()
        (self.data_dir / "newswire-broker.pid").write_text(str(self.proc.pid))
        try:
            self._wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        log.info("embedded server ready pid=%s kafka=%s elasticsearch=%s",
                 self.proc.pid, self.bootstrap, self.elasticsearch_url)

    def _wait_for_previous_owner(self) -> None:
        # noida keeps one JSON file per data dir: a previous process must be gone first.
        pidfile = self.data_dir / "newswire-broker.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().strip())
        except ValueError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(pid) and _is_noida(pid):
            time.sleep(0.1)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"noida-db exited with {self.proc.returncode}:\n{tail}")
            if self._kafka_ready() and self._es_ready():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"noida-db not ready on {self.bootstrap} within {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def _kafka_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.kafka_port), timeout=1):
                return True
        except OSError:
            return False

    def _es_ready(self) -> bool:
        if not self.elasticsearch_url:
            return True
        try:
            return httpx.get(self.elasticsearch_url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 8.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("noida-db did not stop in %ss, killing pid=%s", timeout, proc.pid)
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_noida(pid: int) -> bool:
    try:
        return b"noida" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
