"""Per-host limits shared across processes (newswire.hostlimit), seen from a real server.

Fetching processes are real subprocesses (each its own Fetcher, as the poller and the workers
are); the loopback servers run in threads of this process and record, per host, when each
request arrived and how many were in flight at once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newswire.hostlimit import (
    MAX_HOLD,
    HostLimiter,
    decide,
    hold_left,
    lease_ttl,
    limits_path,
)

REPO = Path(__file__).resolve().parents[1]

# One fetching process: builds its Fetcher, says "ready", waits for "go" on stdin (so all
# processes start together), fetches every URL at once, prints the reasons as JSON.
CHILD = """
import asyncio, json, sys
from pathlib import Path
from newswire.http import Fetcher
from newswire.settings import FetchSettings

cfg = json.loads(sys.argv[1])

async def main():
    data_dir = Path(cfg["data_dir"]) if cfg["data_dir"] else None
    async with Fetcher(FetchSettings(**cfg["settings"]), data_dir=data_dir) as fetcher:
        if cfg.get("warmup"):  # first use imports and sets up lazily: keep that out of timing
            await fetcher.get(cfg["warmup"])
        print("ready", flush=True)
        sys.stdin.readline()
        results = await asyncio.gather(*(fetcher.get(u) for u in cfg["urls"]))
    print(json.dumps([r.reason for r in results]), flush=True)

asyncio.run(main())
"""


class _Recorder:
    """What the servers saw, per host (the Host header's name, as the fetcher keys limits)."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.arrivals: list[tuple[str, str, float]] = []  # (host, path+query, monotonic)
        self.stop = threading.Event()

    def arrived(self, host: str) -> list[float]:
        with self.lock:
            return sorted(t for h, _p, t in self.arrivals if h == host)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    recorder: _Recorder

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's spelling
        rec = self.recorder
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with rec.lock:
            rec.arrivals.append((host, self.path, time.monotonic()))
            rec.in_flight[host] = rec.in_flight.get(host, 0) + 1
            rec.max_in_flight[host] = max(rec.max_in_flight.get(host, 0), rec.in_flight[host])
            rec.lock.notify_all()
        try:
            if parts.path == "/hold":
                # Held until `until` requests to this host have been in flight at once (proof
                # that the limit was broken) or `hold` seconds passed.
                until = int(query.get("until", ["3"])[0])
                deadline = time.monotonic() + float(query.get("hold", ["0.4"])[0])
                with rec.lock:
                    while rec.max_in_flight[host] < until and time.monotonic() < deadline:
                        rec.lock.wait(max(0.0, deadline - time.monotonic()))
            elif parts.path == "/hang":
                rec.stop.wait(30)
        finally:
            # A request stops counting as in flight BEFORE its answer is written: once the
            # client has the answer it gives its slot back and another process may start at
            # once, possibly before this thread would reach a later decrement (seen under
            # load as 3 "in flight" against a limit of 2).
            with rec.lock:
                rec.in_flight[host] -= 1
                rec.lock.notify_all()
        status = 200
        if parts.path == "/busy":  # "too many requests, come back in `after` seconds"
            status = int(query.get("status", ["429"])[0])
        body = b"ok"
        try:
            self.send_response(status)
            if status != 200:
                self.send_header("Retry-After", query.get("after", ["120"])[0])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client went away (a killed process)


@pytest.fixture
def servers() -> Iterator[tuple[_Recorder, dict[str, str]]]:
    """Two loopback "hosts" (127.0.0.1 and 127.0.0.2), one recorder."""
    recorder = _Recorder()
    handler = type("Handler", (_Handler,), {"recorder": recorder})
    running = []
    bases = {}
    for address in ("127.0.0.1", "127.0.0.2"):
        server = ThreadingHTTPServer((address, 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append(server)
        bases[address] = f"http://{address}:{server.server_address[1]}"
    try:
        yield recorder, bases
    finally:
        recorder.stop.set()
        for server in running:
            server.shutdown()
            server.server_close()


def _start(urls: list[str], data_dir: Path | None, fetch: dict[str, object],
           warmup: str | None = None) -> subprocess.Popen[str]:
    cfg = {"urls": urls, "data_dir": str(data_dir) if data_dir else None, "warmup": warmup,
           "settings": {"allow_private_networks": True, **fetch}}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc


def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"child did not start: {line!r}"


def _run_together(procs: list[subprocess.Popen[str]]) -> list[list[str | None]]:
    for proc in procs:
        _ready(proc)
    for proc in procs:  # "go" to all at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outcomes = []
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    return outcomes


# --- the scheduling rule (pure) -----------------------------------------------------------

times = st.floats(0, 1e6, allow_nan=False)
gaps = st.floats(0, 60, allow_nan=False)


@given(now=times, active=st.integers(0, 10), concurrency=st.integers(1, 10),
       ahead=st.floats(-100, 100, allow_nan=False), gap=gaps, poll=st.floats(0.001, 1))
def test_decide_grants_exactly_when_a_slot_is_free_and_the_gap_has_passed(
        now: float, active: int, concurrency: int, ahead: float, gap: float, poll: float) -> None:
    next_start = now + ahead
    d = decide(now, active, concurrency, next_start, gap, poll)
    free = active < concurrency
    due = now >= min(next_start, now + gap)
    assert d.granted == (free and due)
    if d.granted:
        assert d.wait == 0 and d.next_start == now + gap
    else:
        assert d.wait > 0
        # never longer than one gap or one poll: a clock that stepped back cannot stall a host
        assert d.wait <= max(gap, poll) + 1e-6


# --- the shared file under any interleaving of processes (real SQLite, simulated clock) ----

ops = st.lists(st.tuples(st.sampled_from(["tick", "acquire", "acquire", "release", "kill"]),
                         st.integers(0, 2), st.sampled_from(["a.example", "b.example"]),
                         st.floats(0, 3, allow_nan=False)), max_size=50)


@settings(max_examples=60, deadline=None)
@given(steps=ops, concurrency=st.integers(1, 3), gap=st.sampled_from([0.0, 0.5, 1.0]))
def test_any_interleaving_keeps_concurrency_and_gap_and_reclaims_dead_leases(
        steps: list[tuple[str, int, str, float]], concurrency: int, gap: float) -> None:
    ttl = 5.0
    clock = [1000.0]
    with tempfile.TemporaryDirectory() as tmp:
        path = limits_path(Path(tmp))
        procs = [HostLimiter(path, lease_ttl=ttl, clock=lambda: clock[0]) for _ in range(3)]
        held: list[list[tuple[int, str, float]]] = [[], [], []]  # (lease, host, expires)
        dead: list[tuple[int, str, float]] = []  # leases of killed processes, never released
        last_grant: dict[str, float] = {}
        try:
            for op, i, host, dt in steps:
                now = clock[0]
                if op == "tick":
                    clock[0] += dt
                elif op == "release" and held[i]:
                    lease, _h, _e = held[i].pop(0)
                    procs[i].release(lease)
                elif op == "kill":  # kill -9: its leases stay in the file until they expire
                    dead.extend(held[i])
                    held[i] = []
                elif op == "acquire":
                    # A lease counts until it expires, whoever holds it (alive or dead).
                    live = sum(1 for lease in [*dead, *(x for p in held for x in p)]
                               if lease[1] == host and lease[2] >= now)
                    due = host not in last_grant or now >= last_grant[host] + gap
                    grant = procs[i].try_acquire(host, concurrency, gap)
                    assert (grant.lease is not None) == (live < concurrency and due), \
                        (live, concurrency, due)
                    if grant.lease is not None:
                        held[i].append((grant.lease, host, now + ttl))
                        last_grant[host] = now
                    else:
                        assert grant.wait > 0
        finally:
            for p in procs:
                p.close()


# --- real processes against a real server --------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("shared", [
    pytest.param(True, id="shared"),
    pytest.param(False, id="per-process"),
])
def test_processes_share_the_concurrency_limit(servers: tuple[_Recorder, dict[str, str]],
                                               tmp_path: Path, shared: bool) -> None:
    recorder, bases = servers
    # Held until 3 are in flight: only processes that ignore each other get there; otherwise
    # each request ends after `hold` seconds.
    hold = 0.4 if shared else 10.0
    procs = [
        _start([f"{base}/hold?until=3&hold={hold}&p={p}&n={n}"
                for base in bases.values() for n in range(2)],
               tmp_path if shared else None, {"per_host_concurrency": 2, "per_host_min_gap": 0.0})
        for p in range(3)
    ]
    outcomes = _run_together(procs)
    assert outcomes == [[None] * 4] * 3
    for host in bases:
        assert len(recorder.arrived(host)) == 6  # 3 processes x 2 requests
        if shared:
            assert recorder.max_in_flight[host] <= 2, recorder.max_in_flight
        else:  # the control: without the shared file the same setup breaks the limit
            assert recorder.max_in_flight[host] >= 3, recorder.max_in_flight
    if shared:  # every lease was given back
        with sqlite3.connect(limits_path(tmp_path)) as db:
            assert db.execute("SELECT COUNT(*) FROM lease").fetchone()[0] == 0


@pytest.mark.integration
def test_processes_share_the_minimum_gap(servers: tuple[_Recorder, dict[str, str]],
                                         tmp_path: Path) -> None:
    recorder, bases = servers
    gap = 0.4
    base = bases["127.0.0.1"]
    procs = [_start([f"{base}/fast?p={p}&n={n}" for n in range(4)], tmp_path,
                    {"per_host_concurrency": 8, "per_host_min_gap": gap},
                    warmup=f"{bases['127.0.0.2']}/fast")
             for p in range(2)]
    assert _run_together(procs) == [[None] * 4] * 2
    arrivals = recorder.arrived("127.0.0.1")
    assert len(arrivals) == 8
    # Starts are granted >= gap apart; the slack is only for loopback connect jitter between
    # the grant and the server seeing the request.
    spacing = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert min(spacing) >= gap - 0.15, spacing


def _hold_a_slot(recorder: _Recorder, base: str, data_dir: Path,
                 opts: dict[str, object]) -> tuple[subprocess.Popen[str], float]:
    """A process that holds the one slot of 127.0.0.1 (its request hangs); when it arrived."""
    holder = _start([f"{base}/hang"], data_dir, opts)
    _run_go(holder)
    deadline = time.monotonic() + 30
    while not recorder.arrived("127.0.0.1"):
        assert time.monotonic() < deadline, "the holder never reached the server"
        time.sleep(0.02)
    return holder, recorder.arrived("127.0.0.1")[0]


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)  # no chance to give its lease back
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.integration
def test_a_killed_process_slot_is_taken_back_at_once_on_its_machine(
        servers: tuple[_Recorder, dict[str, str]], tmp_path: Path) -> None:
    recorder, bases = servers
    timeout = 20.0  # its lease would live 26 s
    opts: dict[str, object] = {"per_host_concurrency": 1, "per_host_min_gap": 0.0,
                               "timeout": timeout}
    holder, _held_at = _hold_a_slot(recorder, bases["127.0.0.1"], tmp_path, opts)
    probe = HostLimiter(limits_path(tmp_path), lease_ttl=lease_ttl(timeout))
    try:
        assert probe.try_acquire("127.0.0.1", 1, 0.0).lease is None  # alive: it keeps its slot
        _kill(holder)
        assert probe.active("127.0.0.1") == 1  # the dead process's lease has not expired...
        assert probe.try_acquire("127.0.0.1", 1, 0.0).lease is not None  # ...but is taken back
        assert probe.reclaimed == 1
    finally:
        if holder.poll() is None:
            _kill(holder)
        probe.close()


@pytest.mark.integration
def test_a_dead_lease_from_another_machine_expires(
        servers: tuple[_Recorder, dict[str, str]], tmp_path: Path) -> None:
    recorder, bases = servers
    base = bases["127.0.0.1"]
    timeout = 4.0  # the holder is killed well before its own request would time out
    opts: dict[str, object] = {"per_host_concurrency": 1, "per_host_min_gap": 0.0,
                               "timeout": timeout}
    holder, held_at = _hold_a_slot(recorder, base, tmp_path, opts)
    _kill(holder)
    with sqlite3.connect(limits_path(tmp_path)) as db:
        # As if it had run in another container: no PID of ours can tell whether it lives.
        assert db.execute("UPDATE lease SET holder='elsewhere/pid:[1]/1'").rowcount == 1
    probe = HostLimiter(limits_path(tmp_path), lease_ttl=lease_ttl(timeout))
    try:
        assert probe.try_acquire("127.0.0.1", 1, 0.0).lease is None  # still held
    finally:
        probe.close()

    waiter = _start([f"{base}/fast?after-kill"], tmp_path, opts)
    assert _run_together([waiter]) == [[None]]  # expired: the slot is usable again
    after = [t for h, p, t in recorder.arrivals if p == "/fast?after-kill"]
    assert len(after) == 1
    # ...but only once the dead lease expired (slack for the holder's connect time)
    assert after[0] - held_at >= lease_ttl(timeout) - 0.5


def _run_go(proc: subprocess.Popen[str]) -> None:
    _ready(proc)
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


@pytest.mark.integration
def test_a_crawl_delay_paces_every_process_of_the_node(tmp_path: Path) -> None:
    """One process learns Crawl-delay from robots.txt; the shared file makes others wait."""
    import asyncio

    from newswire.http import Fetcher
    from newswire.settings import FetchSettings

    class Robots(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = b"User-agent: *\nCrawl-delay: 2\n" if self.path == "/robots.txt" else b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Robots)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        async def go() -> str | None:
            settings_ = FetchSettings(allow_private_networks=True, per_host_min_gap=0.0)
            async with Fetcher(settings_, data_dir=tmp_path) as fetcher:
                result = await fetcher.get(f"http://127.0.0.1:{server.server_address[1]}/a",
                                           respect_robots=True)
                return result.reason

        assert asyncio.run(go()) is None
    finally:
        server.shutdown()
        server.server_close()
    other = HostLimiter(limits_path(tmp_path), lease_ttl=10.0)  # e.g. the poller, gap 0
    try:
        # The page was fetched a moment ago; asking with no gap of its own, this process still
        # has to wait about the 2 s the host asked for.
        grant = other.try_acquire("127.0.0.1", 5, 0.0)
        assert grant.lease is None and grant.wait > 1.0, grant
    finally:
        other.close()


@pytest.mark.integration
def test_an_unusable_limits_file_degrades_to_local_limits(
        servers: tuple[_Recorder, dict[str, str]], tmp_path: Path) -> None:
    import asyncio

    from newswire.http import Fetcher
    from newswire.settings import FetchSettings

    _recorder, bases = servers
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")

    async def go() -> tuple[list[str | None], int]:
        settings_ = FetchSettings(allow_private_networks=True, per_host_min_gap=0.0)
        async with Fetcher(settings_, data_dir=not_a_dir) as fetcher:
            results = await asyncio.gather(*(fetcher.get(f"{bases['127.0.0.1']}/fast?{n}")
                                             for n in range(3)))
            assert fetcher.limiter is not None
            return [r.reason for r in results], fetcher.limiter.failures

    reasons, failures = asyncio.run(go())
    assert reasons == [None] * 3
    assert failures >= 1


def test_where_the_shared_limits_live(tmp_path: Path) -> None:
    from newswire.http import Fetcher
    from newswire.settings import FetchSettings

    assert Fetcher(FetchSettings()).limiter is None
    assert Fetcher(FetchSettings(share_host_limits=False), data_dir=tmp_path).limiter is None
    shared = Fetcher(FetchSettings(), data_dir=tmp_path).limiter
    assert shared is not None and shared.path == tmp_path / "hostlimits.sqlite"
    assert not shared.path.exists()  # opened lazily, on the first request
    # one file named for every container of a node (a shared local volume) wins over data_dir
    named = Fetcher(FetchSettings(host_limits_file=tmp_path / "node" / "limits.sqlite"),
                    data_dir=tmp_path).limiter
    assert named is not None and named.path == tmp_path / "node" / "limits.sqlite"


def test_a_busy_file_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """Another process mid-transaction: the loop keeps running, the step waits in the thread."""
    import asyncio

    limiter = HostLimiter(limits_path(tmp_path), lease_ttl=10.0)
    limiter.release(limiter.try_acquire("h", 1, 0.0).lease or 0)  # file set up
    other = sqlite3.connect(limits_path(tmp_path), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock, as a busy process would
    assert limiter.try_acquire_quick("h", 1, 0.0) is None  # no waiting on the caller's thread

    async def go() -> tuple[int | None, int]:
        ticks = 0
        task = asyncio.create_task(limiter.acquire("h", 1, 0.0))
        while not task.done():
            ticks += 1
            if ticks == 5:  # the loop ran while the file was locked: let the other go
                await asyncio.to_thread(other.execute, "COMMIT")
            await asyncio.sleep(0.02)
        return await task, ticks

    try:
        lease, ticks = asyncio.run(go())
        assert lease is not None and ticks >= 5
        assert limiter.active("h") == 1
    finally:
        other.close()
        limiter.close()


def test_closing_gives_back_the_slots_still_held(tmp_path: Path) -> None:
    first = HostLimiter(limits_path(tmp_path), lease_ttl=60.0)
    assert first.try_acquire("h", 1, 0.0).lease is not None
    second = HostLimiter(limits_path(tmp_path), lease_ttl=60.0)
    try:
        assert second.try_acquire("h", 1, 0.0).lease is None  # taken
        first.close()  # a process stopping cleanly does not make others wait out the TTL
        assert second.try_acquire("h", 1, 0.0).lease is not None
    finally:
        second.close()


@given(now=times, until=st.floats(-1e7, 1e7, allow_nan=False))
def test_a_hold_is_never_negative_nor_longer_than_the_cap(now: float, until: float) -> None:
    left = hold_left(now, now + until)
    assert 0.0 <= left <= MAX_HOLD
    assert left == pytest.approx(min(max(until, 0.0), MAX_HOLD), abs=1e-6)


@pytest.mark.integration
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_holds_the_host_for_every_process(
        servers: tuple[_Recorder, dict[str, str]], tmp_path: Path, status: int) -> None:
    """One process is told 429/503 Retry-After; another process then sends nothing to that
    host (it gets a transient http_429 "on hold" at once), while other hosts go ahead."""
    recorder, bases = servers
    one, two = bases["127.0.0.1"], bases["127.0.0.2"]
    told = _start([f"{one}/busy?status={status}&after=120"], tmp_path, {"per_host_min_gap": 0.0})
    expected = "http_429" if status == 429 else "http_5xx"
    assert _run_together([told]) == [[expected]]
    other = _start([f"{one}/fast?held", f"{two}/fast?free"], tmp_path, {"per_host_min_gap": 0.0})
    assert _run_together([other]) == [["http_429", None]]
    paths = [p for _h, p, _t in recorder.arrivals]
    assert "/fast?held" not in paths and "/fast?free" in paths
    limiter = HostLimiter(limits_path(tmp_path), lease_ttl=10.0)
    try:
        assert 100 < limiter.held("127.0.0.1") <= 120 and limiter.held("127.0.0.2") == 0
        assert limiter.try_acquire("127.0.0.1", 5, 0.0).held > 100
        # A server asking for a week is capped; a shorter ask never shortens a hold.
        assert limiter.hold("127.0.0.2", 7 * 86_400) == MAX_HOLD
        limiter.hold("127.0.0.2", 5)
        assert limiter.held("127.0.0.2") > MAX_HOLD - 60
    finally:
        limiter.close()


@pytest.mark.integration
def test_an_on_hold_answer_in_process_says_how_long(
        servers: tuple[_Recorder, dict[str, str]]) -> None:
    """Without a shared file the hold still holds within the process, as a transient 429."""
    import asyncio

    from newswire.http import Fetcher
    from newswire.settings import FetchSettings

    recorder, bases = servers

    async def go() -> list[object]:
        fetch = FetchSettings(allow_private_networks=True, per_host_min_gap=0.0)
        async with Fetcher(fetch) as fetcher:
            first = await fetcher.get(f"{bases['127.0.0.1']}/busy?after=30")
            second = await fetcher.get(f"{bases['127.0.0.1']}/fast?again")
        return [first, second]

    first, second = asyncio.run(go())
    assert first.reason == "http_429" and not first.on_hold and first.retry_after == 30
    assert second.reason == "http_429" and second.on_hold and 20 < second.retry_after <= 30
    assert "on hold" in (second.error or "")
    assert "/fast?again" not in [p for _h, p, _t in recorder.arrivals]


def test_a_process_opening_the_file_while_another_writes_it_still_shares_the_limits(
        tmp_path: Path) -> None:
    # Processes starting together on a new file: one is still writing it (schema, first
    # grant) while another switches it to WAL, which SQLite refuses at once, without waiting.
    # That refusal once sent every request of the late process out under local limits only
    # (3 in flight against a shared limit of 2 in the full suite).
    path = limits_path(tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    finish = threading.Timer(0.3, writer.execute, ("COMMIT",))
    finish.start()
    limiter = HostLimiter(path, lease_ttl=30.0)
    try:
        assert limiter.try_acquire("a.example", 1, 0.0).lease is not None
        assert limiter.failures == 0
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        finish.join()
        writer.close()
        limiter.close()


def test_a_process_whose_clock_reads_a_moment_behind_keeps_the_other_leases(
        tmp_path: Path) -> None:
    # Two processes' readings of one wall clock differ by how long each waited for the file;
    # a lease granted a moment "ahead" of a reader must still count, not be taken for a
    # clock that stepped back (that once let a third request in against a limit of 2).
    path = limits_path(tmp_path)
    first = HostLimiter(path, lease_ttl=5.0, clock=lambda: 1e6)
    behind = HostLimiter(path, lease_ttl=5.0, clock=lambda: 1e6 - 0.4)
    try:
        assert first.try_acquire("a.example", 1, 0.0).lease is not None
        assert behind.try_acquire("a.example", 1, 0.0).lease is None
        assert first.active("a.example") == 1
        # A clock that really stepped back (an hour) does not keep a host blocked for an hour.
        stepped = HostLimiter(path, lease_ttl=5.0, clock=lambda: 1e6 - 3600)
        try:
            assert stepped.try_acquire("a.example", 1, 0.0).lease is not None
        finally:
            stepped.close()
    finally:
        first.close()
        behind.close()


def test_a_limits_file_from_before_holds_gains_the_column(tmp_path: Path) -> None:
    path = limits_path(tmp_path)
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE host (host TEXT PRIMARY KEY, next_start REAL NOT NULL DEFAULT 0, "
                "floor_gap REAL NOT NULL DEFAULT 0, floor_until REAL NOT NULL DEFAULT 0) "
                "WITHOUT ROWID")
    assert "hold_until" not in {r[1] for r in old.execute("PRAGMA table_info(host)")}
    old.close()
    limiter = HostLimiter(path, lease_ttl=10.0)
    try:
        limiter.hold("a.example", 60)
        assert limiter.try_acquire("a.example", 2, 0.0).lease is None
        assert limiter.try_acquire("b.example", 2, 0.0).lease is not None
    finally:
        limiter.close()
