"""``newswire up``: run every service of the pipeline on one machine, supervised.

Each service is its own child process (exactly as in docker compose), started with the
settings of this process passed through ``NEWSWIRE_*`` variables. The embedded broker is
started first when no Kafka is configured. SIGINT/SIGTERM stops the services (newest
stage first), then the broker, all within 10 s; a service that dies is restarted with
backoff, so a long-running ``up`` survives a crash of one part.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kafka.errors import KafkaError

from newswire import runtime
from newswire.broker import EmbeddedServer
from newswire.settings import Settings, child_env
from newswire.deadletters import HALTED
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
LOCK_FILE = "up.lock"


class StartError(RuntimeError):
    """``up`` cannot start; the message says why and what to do."""


@dataclass
class Child:
    name: str
    args: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    halted: bool = False  # stopped itself on the dead-letter limit: not restarted


class Supervisor:
    def __init__(self, settings: Settings, broker: EmbeddedServer | None = None,
                 stop: threading.Event | None = None) -> None:
        self.settings = settings
        self.broker = broker
        self.stop = stop or threading.Event()
        self.force = threading.Event()  # a second Ctrl-C: no more waiting for a drain
        self.children = [Child(name, args) for name, args in SERVICES]
        self.env = {**os.environ, **child_env(settings)}
        self.facts: dict[str, object] = {}  # what runtime.json says; halts are added to it

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
                if child.halted or (proc is not None and proc.poll() is None):
                    continue
                if proc is not None and proc.returncode == HALTED:
                    # Restarting would dead-letter another window of records each time: the
                    # stage waits, its input kept in Kafka, until an operator fixes the cause.
                    child.halted, child.proc = True, None
                    log.error("service halted name=%s: too many dead letters; it is not "
                              "restarted. See its log and `newswire dlq list`, fix the cause, "
                              "then restart newswire up", child.name)
                    halted = sorted(c.name for c in self.children if c.halted)
                    runtime.write(self.settings, **{**self.facts, "halted": halted})
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
        started = time.monotonic()
        running = [(c.name, c.proc) for c in reversed(self.children) if c.proc is not None]
        while running and time.monotonic() < deadline and not self.force.is_set():
            # All at once, so each one's own drain time is logged: the slow one is the news.
            for name, proc in list(running):
                code = proc.poll()
                if code is not None:
                    log.info("service stopped name=%s code=%s after=%.1fs", name, code,
                             time.monotonic() - started)
                    running.remove((name, proc))
            time.sleep(0.05)
        for name, proc in running:
            log.warning("service did not stop %s, killing name=%s pid=%s",
                        "before a second signal" if self.force.is_set()
                        else f"in {SERVICE_GRACE:.1f}s", name, proc.pid)
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: with its pool
            try:
                proc.wait(1)
            except subprocess.TimeoutExpired:
                log.error("service survived SIGKILL name=%s pid=%s", name, proc.pid)
            failed += 1
        return 1 if failed else 0


def lock_data_dir(data_dir: Path) -> int:
    """Hold ``DATA_DIR/up.lock`` for this process's life: one ``up`` per data dir.

    Two would share one broker directory, one index writer and one poller state. The lock is
    an flock, so it is released by the kernel however this process ends.
    """
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        holder = runtime.read_unchecked(data_dir)
        pid = f" (pid {holder['pid']})" if holder and holder.get("pid") else ""
        raise StartError(f"another `newswire up` is already running on {data_dir}{pid}; stop it "
                         "first, or give this one its own --data-dir") from None
    return fd


def check_port_free(host: str, port: int) -> None:
    """Fail before starting anything when the search page's port is taken.

    Otherwise the web service would crash and be restarted forever while the port answers
    with someone else's page.
    """
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StartError(f"cannot serve the search page on {host}:{port}: {exc.strerror} "
                             "(another `newswire up` or program uses it? choose one with "
                             "--port N or NEWSWIRE_WEB__PORT)") from None


def run_up(settings: Settings) -> int:
    """Run everything until SIGINT/SIGTERM; 0 after a clean stop, 1 when it cannot start or
    a service had to be killed."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_data_dir(settings.data_dir.resolve())
    except (StartError, OSError) as exc:
        log.error("newswire up cannot start: %s", exc)
        return 1
    try:
        return _run_locked(settings)
    finally:
        os.close(lock)


def configured_feeds(settings: Settings) -> list[str]:
    """The feeds this run names (--feed, --feeds, NEWSWIRE_FEEDS), as the poller reads them.

    A feeds file that cannot be read would crash the poller over and over: say so now.
    """
    urls = [u.strip() for u in settings.feeds if u.strip()]
    path = settings.feeds_file
    if path is None:
        return urls
    from ingest.opml import FeedListError, read_feed_list

    try:
        listed = read_feed_list(path)
    except (FeedListError, OSError) as exc:
        raise StartError(f"feeds file {path}: {exc}") from None
    if not listed:
        raise StartError(f"feeds file {path} names no feed (expected OPML, or one URL a line)")
    return list(dict.fromkeys(urls + [f.url for f in listed]))


def _run_locked(settings: Settings) -> int:
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    try:
        feeds = configured_feeds(settings)
        check_port_free(settings.web.host, settings.web.port)
    except StartError as exc:
        log.error("newswire up cannot start: %s", exc)
        return 1
    # Handlers first: a signal during the broker's start must not leave it running (it has
    # its own session, so it would outlive us).
    stop = threading.Event()
    force = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("second signal=%s: killing the services that still run",
                        signal.Signals(signum).name)
            force.set()
            return
        log.info("stopping on signal=%s (a second one kills what still runs)",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    broker: EmbeddedServer | None = None
    try:
        if not settings.kafka.bootstrap_servers:
            broker = EmbeddedServer(Path(settings.data_dir) / "broker")
            try:
                broker.start()
            except (RuntimeError, TimeoutError, OSError) as exc:
                log.error("newswire up cannot start: the embedded broker did not start: %s "
                          "(its log: %s)", exc, broker.log_path)
                return 1
            settings = settings.model_copy(update={
                "kafka": settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap})
            })
        try:
            ensure_topics(settings)
        except KafkaError as exc:
            log.error("newswire up cannot start: Kafka at %s: %s: %s",
                      settings.kafka.bootstrap_servers, type(exc).__name__, exc)
            return 1
        if stop.is_set():
            return 0
        supervisor = Supervisor(settings, broker, stop)
        supervisor.force = force
        store = "Elasticsearch " + str(settings.search.elasticsearch_url) \
            if settings.search.uses_elasticsearch else f"embedded index {settings.data_dir / 'index'}"
        log.info("newswire up: kafka=%s search=%s page=http://%s:%s/ data_dir=%s",
                 settings.kafka.bootstrap_servers, store, settings.web.host, settings.web.port,
                 settings.data_dir)
        # The feeds named for this run, so `status` and `feeds list` tell polled from stored.
        supervisor.facts = {"kafka": settings.kafka.bootstrap_servers,
                            "web": f"http://{settings.web.host}:{settings.web.port}/",
                            "feeds": feeds}
        runtime.write(settings, **supervisor.facts)
        return supervisor.run()
    finally:
        runtime.clear(settings)
        if broker is not None:
            broker.stop(timeout=BROKER_GRACE)
        log.info("newswire up stopped data_dir=%s", settings.data_dir)
