"""Per-host politeness shared by every process on one node (poller, processor workers...).

Each process keeps its own in-memory gate per host, but that alone lets the poller and a
worker each send their full share to the same publisher. So the limits also live in one small
SQLite file under the data dir (WAL, one ``BEGIN IMMEDIATE`` transaction per step, well under a
millisecond), holding per host:

- **leases**: one row per request in flight, at most ``concurrency`` per host. A lease expires
  by itself after ``lease_ttl`` seconds, so a process killed with ``kill -9`` never keeps a slot
  for long; when a host's slots are all taken, leases of processes of this machine that no
  longer exist are taken back at once (checked by PID within the same PID namespace);
- **next_start**: the earliest time the next request to the host may start (``min_gap``), and a
  wider gap a host asked for in its robots.txt ``Crawl-delay``, until that answer goes stale;
- **hold_until**: a host that answered 429/503 with ``Retry-After`` is held, for every process,
  until then (capped at ``MAX_HOLD``). Asking for a held host raises :class:`HostOnHold` at
  once instead of waiting, so a poller reschedules the feed rather than idling a task.

The limits are per node: processes on other machines do not see this file, and neither do
containers that do not mount it (``FetchSettings.host_limits_file`` names one file for every
container of a node, on a shared local volume). The file must be on a local disk (SQLite WAL
does not work over NFS).

We wrote this instead of using pyrate-limiter: its SQLite bucket limits request *rates*, but has
no notion of slots held while a request is in flight, nor of leases that expire.

The event loop never waits on a lock held by another process: it tries each step once without
waiting (tens of microseconds), and when the file is busy the step runs in the limiter's own
thread instead; checkpoints (the only fsyncs) run there too. Waiting for a slot or a gap is an
``asyncio.sleep``. If the file cannot be used (disk full, read-only...), requests go ahead
under the in-process limits only, and the failure is counted and logged: politeness degrades,
fetching never stops.

Each process checks the shared count against its own ``per_host_concurrency`` and gap, so give
every service of a node the same fetch settings. Within a process only one waiter per host asks
the file at a time, so processes contend for a busy host on roughly equal terms.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

FILE_NAME = "hostlimits.sqlite"
POLL_MIN = 0.01  # first re-ask while every slot of a host is taken; doubles up to POLL_MAX
POLL_MAX = 0.25
PRUNE_EVERY = 2000  # grants between sweeps of idle hosts and dead leases
CHECKPOINT_EVERY = 250  # grants between WAL checkpoints (in the thread, never on the loop)
IDLE_HOST_AGE = 3600.0  # a host row idle this long (and with no floor) is dropped
WARN_EVERY = 60.0
CLOCK_SLACK = 1.0  # a lease dated further ahead than its TTL plus this: the clock stepped back
MAX_HOLD = 3600.0  # longest Retry-After honoured for a whole host (a server may ask for days)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS host (
    host TEXT PRIMARY KEY,
    next_start REAL NOT NULL DEFAULT 0,   -- epoch seconds
    floor_gap REAL NOT NULL DEFAULT 0,    -- a gap the host asked for (Crawl-delay) ...
    floor_until REAL NOT NULL DEFAULT 0,  -- ... honoured until then
    hold_until REAL NOT NULL DEFAULT 0    -- no request before then (429/503 Retry-After)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    expires REAL NOT NULL,
    holder TEXT NOT NULL                  -- host name/pid namespace/pid
);
CREATE INDEX IF NOT EXISTS lease_host ON lease (host, expires);
"""


def lease_ttl(timeout: float) -> float:
    """How long a lease lives: past the request's own time budget, with room for a busy
    event loop, so a live request never loses its slot, and a dead one frees it soon."""
    return timeout * 1.25 + 1.0


def limits_path(data_dir: Path) -> Path:
    """Where the shared limits of every process using ``data_dir`` live."""
    return Path(data_dir) / FILE_NAME


class HostOnHold(Exception):
    """The host asked every client to wait (429/503 with Retry-After) and that time has not
    come: ``seconds`` left (at most ``MAX_HOLD``)."""

    def __init__(self, host: str, seconds: float) -> None:
        super().__init__(f"{host} asked us to wait (429/503 Retry-After): on hold for "
                         f"{seconds:.0f}s more")
        self.host = host
        self.seconds = seconds


def hold_left(now: float, hold_until: float) -> float:
    """Seconds a host is still held (pure). A hold further ahead than ``MAX_HOLD`` can only
    come from a clock that stepped back: it is trusted up to ``MAX_HOLD``."""
    return min(max(0.0, hold_until - now), MAX_HOLD)


@dataclass(frozen=True)
class Decision:
    granted: bool
    wait: float  # seconds before asking again (0 when granted)
    next_start: float  # the host's next_start after this decision


def decide(now: float, active: int, concurrency: int, next_start: float, gap: float,
           poll: float = POLL_MIN) -> Decision:
    """May a request to a host start ``now``? Pure: the whole scheduling rule.

    ``active`` live leases of ``concurrency`` allowed; ``next_start`` as stored; ``gap`` the
    minimum seconds between starts; ``poll`` how soon to look again when every slot is taken
    (we cannot know when one frees). A stored ``next_start`` more than one gap ahead can only
    come from a clock that stepped back: it is trusted up to one gap, so a host never stalls.
    """
    gap = max(0.0, gap)
    next_start = min(next_start, now + gap)
    if active >= max(1, concurrency):
        return Decision(False, max(poll, next_start - now), next_start)
    if now < next_start:
        return Decision(False, next_start - now, next_start)
    return Decision(True, 0.0, now + gap)


@dataclass(frozen=True)
class Grant:
    lease: int | None  # lease id when granted
    wait: float  # else: seconds before asking again
    held: float = 0.0  # > 0: the host is on hold this many seconds more (no lease)


def _enable_wal(db: sqlite3.Connection, patience: float = 10.0) -> None:
    """Put the file in WAL mode (it stays so). Switching needs the file to itself, and SQLite
    answers "locked" at once, without its busy wait, while another process switches or
    creates it: several processes starting together on a new file meet exactly that. So
    wait here, or every process but one would fetch under local limits only."""
    deadline = time.monotonic() + patience
    delay = 0.005
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(0.1, delay * 2)


def _process_space() -> str | None:
    """Names the set of processes whose ids this process can check: host name plus PID
    namespace (two containers may share a host name, never a namespace). ``None`` where
    there is no /proc: leases are then only ever reclaimed by expiry."""
    try:
        return f"{socket.gethostname()}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return None


class HostLimiter:
    """Cross-process per-host limits in one SQLite file. Thread-safe; async wrappers below.

    Two connections: a *waiting* one (busy timeout 10 s) used by the sync API and by this
    limiter's thread, and a *quick* one (busy timeout 0, no auto-checkpoint) that the event
    loop tries first: a step there costs tens of microseconds and never waits on another
    process; when the file is busy the step goes to the thread instead. Checkpoints (the
    only fsyncs) and sweeps always run in the thread.
    """

    def __init__(self, path: Path, *, lease_ttl: float, clock: Callable[[], float] = time.time,
                 ) -> None:
        self.path = Path(path)
        self.lease_ttl = lease_ttl
        self.clock = clock
        self._here = _process_space()  # leases of dead processes of this space are reclaimed
        self.holder = f"{self._here or socket.gethostname() + '/?'}/{os.getpid()}"
        self.failures = 0  # DB steps that failed (fetches then went on local limits only)
        self.steps = 0  # asks of the file (granted or told to wait)
        self.grants = 0
        self.quick_steps = 0  # of which taken on the caller's thread without waiting
        self.reclaimed = 0  # leases of dead processes of this machine taken back early
        self._lock = threading.Lock()  # guards _db
        self._db: sqlite3.Connection | None = None
        self._quick_lock = threading.Lock()  # guards _quick
        self._quick: sqlite3.Connection | None = None
        self._schema_ready = False
        self._held: set[int] = set()  # leases granted here and not yet given back
        self._last_warning = 0.0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # -- synchronous core (one short transaction each) -------------------------------------

    def _open(self, *, waiting: bool) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10.0 if waiting else 0.0, isolation_level=None,
                             check_same_thread=False)
        try:
            if waiting:
                _enable_wal(db)
            # Advisory state: a commit lost in a power cut only costs one early request.
            db.execute("PRAGMA synchronous=NORMAL")
            if waiting:
                db.executescript(SCHEMA)
                columns = {row[1] for row in db.execute("PRAGMA table_info(host)")}
                if "hold_until" not in columns:  # a file written before holds existed
                    db.execute("ALTER TABLE host ADD COLUMN hold_until REAL NOT NULL DEFAULT 0")
            else:  # its commits never checkpoint (fsync); the thread does that
                db.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            db.close()
            raise
        return db

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = self._open(waiting=True)
            self._schema_ready = True
        return self._db

    def _step(self, db: sqlite3.Connection, host: str, concurrency: int, gap: float,
              poll: float) -> Grant:
        db.execute("BEGIN IMMEDIATE")
        try:
            # The clock is read holding the lock: read before, while another process waited
            # its turn, it lags every lease granted meanwhile, which then looked dated ahead
            # (dropped below as a clock step) or a gap looked passed.
            now = self.clock()
            # Expired leases are reclaimed here; one dated well beyond a full TTL ahead can
            # only come from a clock that stepped back, and is dropped too.
            db.execute("DELETE FROM lease WHERE host=? AND (expires<? OR expires>?)",
                       (host, now, now + self.lease_ttl + CLOCK_SLACK))
            active = db.execute("SELECT COUNT(*) FROM lease WHERE host=?", (host,)).fetchone()[0]
            row = db.execute("SELECT next_start, floor_gap, floor_until, hold_until FROM host "
                             "WHERE host=?", (host,)).fetchone()
            next_start, floor_gap, floor_until, hold_until = row if row else (0.0, 0.0, 0.0, 0.0)
            held = hold_left(now, hold_until)
            if held > 0:
                db.execute("COMMIT")
                self.steps += 1
                return Grant(None, held, held)
            if floor_until > now:
                gap = max(gap, floor_gap)
            decision = decide(now, active, concurrency, next_start, gap, poll)
            if not decision.granted and active >= concurrency and self._here:
                # Full: a holder killed on this machine need not be waited out for its TTL.
                dead = [(lease_id,) for lease_id, holder in db.execute(
                    "SELECT id, holder FROM lease WHERE host=?", (host,)) if self._dead(holder)]
                if dead:
                    db.executemany("DELETE FROM lease WHERE id=?", dead)
                    self.reclaimed += len(dead)
                    decision = decide(now, active - len(dead), concurrency, next_start, gap, poll)
            lease = None
            if decision.granted:
                lease = db.execute(
                    "INSERT INTO lease (host, expires, holder) VALUES (?,?,?)",
                    (host, now + self.lease_ttl, self.holder)).lastrowid
                db.execute(
                    "INSERT INTO host (host, next_start) VALUES (?,?) ON CONFLICT (host) "
                    "DO UPDATE SET next_start=excluded.next_start",
                    (host, decision.next_start))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.steps += 1
        if lease is not None:
            self._held.add(lease)
            self.grants += 1
            if self.grants % PRUNE_EVERY == 0:
                self._in_background(self.prune)
            elif self.grants % CHECKPOINT_EVERY == 0:
                self._in_background(self._checkpoint)
        return Grant(lease, decision.wait)

    def _dead(self, holder: str) -> bool:
        """Is ``holder`` a process of this machine's process space that no longer exists?"""
        space, _, pid = holder.rpartition("/")
        if space != self._here or not pid.isdigit() or int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, not ours to signal
            return False
        return False

    def try_acquire(self, host: str, concurrency: int, gap: float,
                    poll: float = POLL_MIN) -> Grant:
        """Take a slot for ``host`` now if its limits allow, else say how long to wait."""
        with self._lock:
            return self._step(self._conn(), host, concurrency, gap, poll)

    def try_acquire_quick(self, host: str, concurrency: int, gap: float,
                          poll: float = POLL_MIN) -> Grant | None:
        """Like :meth:`try_acquire`, but never waits for another process: ``None`` when the
        file is busy (or not set up yet); then ask :meth:`try_acquire` from a thread."""
        if not self._schema_ready or not self._quick_lock.acquire(blocking=False):
            return None
        try:
            if self._quick is None:
                self._quick = self._open(waiting=False)
            grant = self._step(self._quick, host, concurrency, gap, poll)
        except (sqlite3.Error, OSError):
            return None  # busy, or worse: the waiting path decides (and counts a failure)
        finally:
            self._quick_lock.release()
        self.quick_steps += 1
        return grant

    def release(self, lease: int) -> None:
        with self._lock:
            self._conn().execute("DELETE FROM lease WHERE id=?", (lease,))
        self._held.discard(lease)

    def _release_quick(self, lease: int) -> bool:
        if self._quick is None or not self._quick_lock.acquire(blocking=False):
            return False
        try:
            self._quick.execute("DELETE FROM lease WHERE id=?", (lease,))
        except (sqlite3.Error, OSError):
            return False
        finally:
            self._quick_lock.release()
        self._held.discard(lease)
        return True

    def widen_gap(self, host: str, gap: float, for_seconds: float) -> None:
        """The host asked for ``gap`` seconds between requests (robots.txt Crawl-delay)."""
        with self._lock:
            now = self.clock()
            self._conn().execute(
                "INSERT INTO host (host, floor_gap, floor_until) VALUES (?,?,?) "
                "ON CONFLICT (host) DO UPDATE SET floor_gap=excluded.floor_gap, "
                "floor_until=excluded.floor_until", (host, gap, now + for_seconds))

    def hold(self, host: str, seconds: float) -> float:
        """Hold ``host`` for every process sharing the file: no request starts for
        ``seconds`` (capped at ``MAX_HOLD``; an existing longer hold stays). Returns the cap."""
        seconds = min(max(0.0, seconds), MAX_HOLD)
        with self._lock:
            until = self.clock() + seconds
            self._conn().execute(
                "INSERT INTO host (host, hold_until) VALUES (?,?) ON CONFLICT (host) DO UPDATE "
                "SET hold_until=max(hold_until, excluded.hold_until)", (host, until))
        return seconds

    def held(self, host: str) -> float:
        """Seconds ``host`` is still on hold (0 = not held)."""
        with self._lock:
            row = self._conn().execute("SELECT hold_until FROM host WHERE host=?",
                                       (host,)).fetchone()
            return hold_left(self.clock(), row[0]) if row else 0.0

    def active(self, host: str) -> int:
        """Live leases of ``host`` (for tests and status)."""
        with self._lock:
            return self._conn().execute("SELECT COUNT(*) FROM lease WHERE host=? AND expires>=?",
                                        (host, self.clock())).fetchone()[0]

    def prune(self) -> None:
        """Keep the file bounded over months: dead leases, hosts not asked for an hour."""
        with self._lock:
            db, now = self._conn(), self.clock()
            db.execute("DELETE FROM lease WHERE expires<?", (now,))
            db.execute("DELETE FROM host WHERE next_start<? AND floor_until<? AND hold_until<? "
                       "AND host NOT IN (SELECT host FROM lease)", (now - IDLE_HOST_AGE, now, now))

    def _checkpoint(self) -> None:
        with self._lock:
            self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _in_background(self, fn: Callable[[], None]) -> None:
        def run() -> None:
            try:
                fn()
            except (sqlite3.Error, OSError) as exc:
                self._failed(fn.__name__, exc)

        try:
            self._thread().submit(run)
        except RuntimeError:  # shutting down
            pass

    def close(self) -> None:
        """Give back this limiter's slots still held, finish pending steps, close the file."""
        log.info("host limits closed path=%s steps=%d quick=%d grants=%d failures=%d",
                 self.path, self.steps, self.quick_steps, self.grants, self.failures)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for lease in list(self._held):
            self._release_quietly(lease)
        with self._quick_lock:
            if self._quick is not None:
                self._quick.close()
                self._quick = None
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- async: quick step on the loop, else the DB step in this limiter's own thread ------

    def _thread(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="hostlimit")
        return self._executor

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._thread(), fn, *args)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning("shared host limits unavailable, local limits only what=%s path=%s "
                        "failures=%d error=%s", what, self.path, self.failures, exc)

    async def acquire(self, host: str, concurrency: int, gap: float) -> int | None:
        """Wait (asleep) until ``host`` has a free slot and its gap has passed; the lease id,
        or ``None`` when the shared file failed (the caller's local limits still apply).
        Raises :class:`HostOnHold` at once when the host is on hold."""
        poll = POLL_MIN
        while True:
            grant = self.try_acquire_quick(host, concurrency, gap, poll)
            if grant is None:
                future = self._submit(self.try_acquire, host, concurrency, gap, poll)
                try:
                    grant = await asyncio.shield(future)
                except asyncio.CancelledError:
                    # The step may still grant in its thread: give that slot straight back.
                    future.add_done_callback(self._release_orphan)
                    raise
                except (sqlite3.Error, OSError) as exc:
                    self._failed("acquire", exc)
                    return None
            if grant.lease is not None:
                return grant.lease
            if grant.held > 0:
                raise HostOnHold(host, grant.held)
            await asyncio.sleep(grant.wait)
            poll = min(POLL_MAX, poll * 2)

    def _release_orphan(self, future: asyncio.Future[Grant]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        lease = future.result().lease
        if lease is not None:
            self.release_soon(lease)

    def _release_quietly(self, lease: int) -> None:
        try:
            self.release(lease)
        except (sqlite3.Error, OSError) as exc:  # it expires by itself
            self._failed("release", exc)

    def release_soon(self, lease: int) -> None:
        """Give a slot back now if the file is free, else in this limiter's thread; nothing
        to await, so nothing to cancel."""
        if self._release_quick(lease):
            return
        try:
            self._thread().submit(self._release_quietly, lease)
        except RuntimeError:  # closing right now: close() gives back what is still held
            pass

    async def ahold(self, host: str, seconds: float) -> None:
        """:meth:`hold` off the event loop; a failing file is counted, never raised."""
        try:
            await self._submit(self.hold, host, seconds)
        except (sqlite3.Error, OSError) as exc:
            self._failed("hold", exc)

    async def awiden_gap(self, host: str, gap: float, for_seconds: float) -> None:
        try:
            await self._submit(self.widen_gap, host, gap, for_seconds)
        except (sqlite3.Error, OSError) as exc:
            self._failed("widen_gap", exc)
