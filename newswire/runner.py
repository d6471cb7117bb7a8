"""``newswire up``: run every service of the pipeline on one machine, supervised.

Each service is its own child process (exactly as in docker compose), started with the
settings of this process passed through ``NEWSWIRE_*`` variables. The embedded broker is
started first when no Kafka is configured. SIGINT/SIGTERM stops the services (newest
stage first), then the broker, all within 10 s; a service that dies is restarted with
backoff, so a long-running ``up`` survives a crash of one part.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from newswire import runtime
from newswire.broker import EmbeddedServer
from newswire.settings import Settings, child_env
from newswire.topics import ensure_topics

log = logging.getLogger(__name__)

SERVICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("web", ("serve",)),
    ("indexer", ("index",)),
    ("processor", ("process",)),
    ("poller", ("poll",)),
)
SERVICE_GRACE = 7.5  # seconds for services to drain; the broker gets the rest of the 10 s
BROKER_GRACE = 1.5


@dataclass
class Child:
    name: str
    args: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    def __init__(self, settings: Settings, broker: EmbeddedServer | None = None) -> None:
        self.settings = settings
        self.broker = broker
        self.stop = threading.Event()
        self.children = [Child(name, args) for name, args in SERVICES]
        self.env = {**os.environ, **child_env(settings)}

    def spawn(self, child: Child) -> None:
        cmd = [sys.executable, "-m", "newswire", *child.args]
        env = self.env
        if self.settings.metrics_port:  # one port each: base, base+1, ... in SERVICES order
            offset = [c.name for c in self.children].index(child.name)
            env = {**env, "NEWSWIRE_METRICS_PORT": str(self.settings.metrics_port + offset)}
        # Own session: a terminal's Ctrl-C reaches only us, and we stop the children in order.
        child.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        child.started_at = time.monotonic()
        log.info("service started name=%s pid=%s", child.name, child.proc.pid)

    def run(self) -> int:
        try:
            self._supervise()
        finally:
            code = self.shutdown()  # whatever happened above, no child outlives us
        return code

    def _supervise(self) -> None:
        for child in self.children:
            self.spawn(child)
        while not self.stop.wait(0.5):
            if self.broker is not None and self.broker.exited:
                # Same ports and data dir: the services' clients reconnect by themselves.
                log.error("embedded broker exited code=%s; restarting",
                          self.broker.proc.returncode if self.broker.proc else None)
                try:
                    self.broker.start()
                except (RuntimeError, TimeoutError, OSError):
                    log.exception("embedded broker restart failed; trying again")
            now = time.monotonic()
            for child in self.children:
                proc = child.proc
                if proc is not None and proc.poll() is None:
                    continue
                if proc is not None:
                    # Restart with backoff; a service that ran a while starts over at 1 s.
                    uptime = now - child.started_at
                    child.restarts = 0 if uptime > 60 else child.restarts + 1
                    delay = min(60.0, 2.0 ** child.restarts)
                    log.error("service exited name=%s code=%s restart_in=%.0fs",
                              child.name, proc.returncode, delay)
                    child.proc = None
                    child.next_start = now + delay
                if now >= child.next_start:
                    self.spawn(child)

    def shutdown(self) -> int:
        deadline = time.monotonic() + SERVICE_GRACE
        # Poller first, web last: upstream stops feeding while downstream drains.
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        failed = 0
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("service did not stop in time, killing name=%s pid=%s",
                            child.name, child.proc.pid)
                os.killpg(child.proc.pid, signal.SIGKILL)  # its own session: with its pool
                child.proc.wait(1)
                failed += 1
        return 1 if failed else 0


def run_up(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    broker: EmbeddedServer | None = None
    if not settings.kafka.bootstrap_servers:
        broker = EmbeddedServer(Path(settings.data_dir) / "broker")
        broker.start()
        settings = settings.model_copy(update={
            "kafka": settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap})
        })
    supervisor = Supervisor(settings, broker)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping on signal=%s", signal.Signals(signum).name)
        supervisor.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        ensure_topics(settings)
        store = "Elasticsearch " + str(settings.search.elasticsearch_url) \
            if settings.search.uses_elasticsearch else f"embedded index {settings.data_dir / 'index'}"
        log.info("newswire up: kafka=%s search=%s page=http://%s:%s/ data_dir=%s",
                 settings.kafka.bootstrap_servers, store, settings.web.host, settings.web.port,
                 settings.data_dir)
        runtime.write(settings, kafka=settings.kafka.bootstrap_servers,
                      web=f"http://{settings.web.host}:{settings.web.port}/")
        return supervisor.run()
    finally:
        runtime.clear(settings)
        if broker is not None:
            broker.stop(timeout=BROKER_GRACE)
