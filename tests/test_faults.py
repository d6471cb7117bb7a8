"""Fault injection on the real pipeline: `newswire up`, real processes, real broker.

A loopback FeedWorld (tests/feedworld.py) reveals a stream of items across many feeds, each
linking to a real news page. While articles are in flight the test kills components by PID
(kill -9), sends SIGTERM, makes web servers stall or lie, or takes the search store away,
and then checks the only thing users care about: every article is in the index exactly
once (the count equals N and every expected id is there), no alert was sent twice, nothing
was dead-lettered that should not have been, and the pipeline stopped cleanly.

Each test waits for conditions with deadlines; the only time bound asserted is the 10 s
SIGTERM contract.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from indexer.store import SearchRequest, open_store
from newswire import ops, runtime
from newswire.broker import EmbeddedServer
from newswire.records import Article
from newswire.settings import Settings, load_settings
from processors.alerts.matcher import rule_matches
from processors.alerts.rules import Rule
from tests.conftest import shared_path
from tests.feedworld import (
    HOSTILE_PATHS,
    AlertReceiver,
    FeedWorld,
    components,
    load_pages,
    run_cli,
    start_up,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ENV = {"NEWSWIRE_PROCESS__WORKERS": "1", "NEWSWIRE_LOG_LEVEL": "INFO"}
WAIT = 240.0  # seconds any one condition may take on a busy 2-core machine


@pytest.fixture(scope="module")
def pages() -> list[bytes]:
    return load_pages(shared_path("extraction-dev"))


class Pipeline:
    """One `newswire up` over a FeedWorld, observed from outside."""

    def __init__(self, tmp: Path, world: FeedWorld, env: dict[str, str] | None = None,
                 settings: Settings | None = None) -> None:
        self.data_dir = tmp / "data"
        self.log = tmp / "up.log"
        self.world = world
        self.env = {**ENV, **(env or {})}
        self.settings = settings or load_settings(data_dir=self.data_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self._store: Any = None

    def start(self) -> None:
        self.proc = start_up(self.data_dir, self.world.feed_urls(), self.log, self.env)

    def tail(self, n: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"newswire up exited early ({self.proc.returncode}):\n{self.tail()}")
            value = predicate()
            if value:
                return value
            time.sleep(0.5)
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; count={self.count()} "
                    f"status={self.status()}\nlog tail:\n{self.tail()}")

    # -- what is in the index ------------------------------------------------------------

    def store(self) -> Any:
        if self._store is None:
            if not self.settings.search.uses_elasticsearch and \
                    not (self.data_dir / "index").exists():
                return None
            self._store = open_store(self.settings)
        return self._store

    def count(self) -> int:
        try:
            store = self.store()
            if store is None:
                return 0
            store.refresh()
            return int(store.count())
        except Exception:  # noqa: BLE001 - the store may be down on purpose
            self._store = None
            return -1

    def missing(self, keys: dict[str, int]) -> list[int]:
        store = self.store()
        if store is not None:
            # Searches see what was refreshed: the last batch may be committed (so the lag is
            # 0) a moment before Elasticsearch's 1 s refresh makes it visible.
            store.refresh()
        return sorted(i for key, i in keys.items() if store is None or store.get(key) is None)

    def search_total(self) -> int:
        return self.store().search(SearchRequest(query="*", size=0, histogram=None)).total

    def status(self) -> dict[str, Any] | None:
        try:
            return ops.pipeline_status(runtime.with_kafka(self.settings))
        except Exception:  # noqa: BLE001 - broker down or not started yet
            return None

    def drained(self) -> bool:
        status = self.status()
        return status is not None and all(s["lag"] == 0 for s in status["stages"].values())

    def dead_letters(self, stage: str) -> list[ops.StoredLetter]:
        return list(ops.read_dead_letters(runtime.with_kafka(self.settings), stage))

    def settled(self, entries: int) -> bool:
        """Every stage consumed everything, and either all ``entries`` were published or the
        poller has seen the complete feeds twice (so what is missing will never come)."""
        status = self.status()
        if status is None or any(s["lag"] for s in status["stages"].values()):
            return False
        return status["stages"]["processor"]["produced"] >= entries or self.world.fully_polled()

    def all_arrived_once(self, n: int, entries: int | None = None,
                         timeout: float = WAIT) -> None:
        """Every expected article is present and nothing else: exactly once.

        Waits until the pipeline has settled (all feed entries published, no lag anywhere,
        twice in a row) rather than for the count, so a loss fails fast and clearly.
        """
        keys = self.world.keys(n)
        entries = n if entries is None else entries
        self.wait(lambda: self.settled(entries) and self.settled(entries),
                  f"{entries} entries published and every stage drained", timeout)
        missing = self.missing(keys)
        assert missing == [], f"{len(missing)} of {n} articles never indexed: {missing[:40]}"
        assert self.count() == n, f"{self.count()} documents for {n} articles: duplicates"
        assert self.search_total() == n

    # -- processes -----------------------------------------------------------------------

    def component(self, name: str) -> psutil.Process:
        assert self.proc is not None
        return self.wait(lambda: components(self.proc.pid).get(name), f"service {name}")

    def kill9(self, name: str) -> int:
        victim = self.component(name)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        return victim.pid

    def restarted(self, name: str, old_pid: int) -> psutil.Process:
        def fresh() -> psutil.Process | None:
            proc = components(self.proc.pid).get(name)  # type: ignore[union-attr]
            return proc if proc is not None and proc.pid != old_pid else None
        return self.wait(fresh, f"{name} to be restarted")

    def stop(self) -> int:
        """SIGTERM; the contract is a clean exit within 10 s."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            pytest.fail(f"newswire up did not stop within 10 s of SIGTERM:\n{self.tail()}")

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._store is not None:
            self._store.close()
        for proc in leftovers(self.data_dir.resolve()):  # e.g. a kill -9'd worker's pool
            proc.kill()


@pytest.fixture
def make_pipeline(tmp_path: Path) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(world: FeedWorld, **kw: Any) -> Pipeline:
        pipeline = Pipeline(tmp_path, world, **kw)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.cleanup()


# noida keeps a consumer-group member that died without leaving (kill -9) forever: a new
# member of the same group never gets partitions (real Kafka evicts it after the session
# timeout). Shown directly by test_noida_replacement_member_* below. The Faust worker joins
# with a stable group.instance.id (static membership: noida hands the partitions over at
# once); the indexer on the embedded store assigns its partitions itself (its index admits
# one writer, so there is no group to balance) and commits to the group.

# noida acknowledges a produce before it has saved it (it rewrites one JSON file now and
# then), so a kill -9 loses what was acked since the last save. Seen: the entry of item 99
# was published (acked, acks=all) 0.4 s before the kill and was not in the topic after the
# restart. Not strict: whether a publish falls in that window is a matter of timing.
# The lost offsets are then reused, which loses records downstream too. Seen: after the
# restart the articles topic held 140 records but the indexer had indexed 145 documents (it
# had read acked records that were then lost); article 11, whose produce was retried after
# the restart, landed at articles p3 offset 5, an offset the indexer's position had already
# passed, so it was never read (the committed offsets equal the end offsets). Real Kafka
# neither loses acked (acks=all) records nor reuses their offsets, and a truncation is seen
# through leader epochs (KIP-320, which kafka-python 3 checks).
NOIDA_ACKED_BEFORE_SAVED = pytest.mark.xfail(
    strict=False, reason="noida limitation: messages acked shortly before a kill -9 of the "
    "broker are lost (acks before persisting)")


def leftovers(data_dir: Path) -> list[psutil.Process]:
    """Processes still running for this data dir (services inherit NEWSWIRE_DATA_DIR)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("NEWSWIRE_DATA_DIR") == str(data_dir):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def assert_nothing_left(pipe: Pipeline) -> None:
    left = leftovers(pipe.data_dir.resolve())
    described = [(p.pid, " ".join(p.cmdline())[:60]) for p in left if p.is_running()]
    for p in left:  # ours to clean up either way
        p.kill()
    assert not described, f"processes outlived `newswire up`: {described}"


# A word most news stories use: the rule matches a share of the articles, not all of them.
ALERT_QUERY = "said"
WEBHOOK_SECRET = "faults-test-secret"  # webhooks are signed with the 'default' secret

# Alert states are written before the webhook is called, so a kill -9 of the processor
# between the two leaves an alert marked as being sent that never was (at-most-once);
# processors/alerts/ is being made at-least-once. Until then a missing alert after a kill of
# the processor makes the test xfail, after every other assertion has passed.
ALERTS_AT_MOST_ONCE = ("alerts are at-most-once across a kill -9 of the processor: matching "
                       "stories never alerted")


def create_alert_rule(pipe: Pipeline, webhook: str) -> Rule:
    """Create the rule with the CLI beside the running `up`, and wait until the processor's
    alert agent has it (a rule never fires for articles ingested before it exists)."""
    def created() -> dict[str, Any] | None:
        done = run_cli(pipe.data_dir, "alerts", "create", "faults", ALERT_QUERY,
                       "--webhook", webhook, "--json")
        if done.returncode == 0:
            return json.loads(done.stdout)
        if "no running `newswire up`" in done.stderr:  # its broker is not up yet
            return None
        pytest.fail(f"newswire alerts create failed ({done.returncode}): {done.stderr}")

    rule = Rule.model_validate(pipe.wait(created, "`newswire alerts create` to succeed"))
    listed = run_cli(pipe.data_dir, "alerts", "list", "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in listed] == [rule.id]
    pipe.wait(lambda: f"rule={rule.id}" in pipe.tail(10**7), "the processor to load the rule")
    return rule


def expected_alerts(pipe: Pipeline, rule: Rule, n: int) -> set[tuple[str, str]]:
    """(rule, story) of every indexed article the rule matches, by the matcher itself."""
    store = pipe.store()
    wanted = set()
    for key in pipe.world.keys(n):
        doc = store.get(key)
        if doc is not None and rule_matches(rule, Article.model_validate(doc)):
            wanted.add((rule.id, doc.get("story_id") or doc["id"]))
    return wanted


def wait_for_alerts(hook: AlertReceiver, wanted: set[tuple[str, str]],
                    timeout: float = 60.0) -> None:
    """Until every wanted alert came, or ``timeout``: what is missing then is asserted on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not wanted <= set(hook.alerts()):
        time.sleep(0.5)


@pytest.mark.parametrize("service", [
    "poll",
    # passes since the worker joins with a stable group.instance.id, and since an offset
    # handed out twice after the restart no longer stops its partition's acks (1db701a)
    "process",
    "index",  # passes since the indexer assigns its partitions (membership=assign)
    pytest.param("broker", marks=NOIDA_ACKED_BEFORE_SAVED),
])
def test_kill9_in_flight_loses_and_duplicates_nothing(
        service: str, pages: list[bytes], make_pipeline: Callable[..., Pipeline]) -> None:
    # A backlog of BURST items at once, then a steady trickle: hundreds of articles are
    # between the feeds and the index at the kill, and the poller still has new items.
    n, burst = 300, 200
    with FeedWorld(pages, n, feeds=12, rate=4.0, burst=burst, held=True) as world, \
            AlertReceiver(secret=WEBHOOK_SECRET) as hook:
        pipe = make_pipeline(world, env={"NEWSWIRE_ALERTS__SECRETS__DEFAULT": WEBHOOK_SECRET})
        pipe.start()
        rule = create_alert_rule(pipe, hook.url)
        world.release()
        pipe.wait(lambda: pipe.count() >= 15, f"15 articles before killing {service}")
        old = pipe.kill9(service)
        at_kill, revealed = pipe.count(), world.revealed()
        assert revealed < n, "the kill happened after the feeds were complete"
        assert revealed - at_kill >= 100, f"only {revealed - at_kill} articles in flight"
        pipe.restarted(service, old)
        # Fail fast when the restarted service never takes up its work again.
        pipe.wait(lambda: pipe.count() >= at_kill + 10, f"progress after kill -9 {service}",
                  timeout=90)
        # After a broker kill noida's lost records often leave a lag that never drains: a
        # shorter wait keeps that known failure from costing the suite 4 minutes.
        pipe.all_arrived_once(n, timeout=120 if service == "broker" else WAIT)
        assert pipe.dead_letters("process") == []
        assert pipe.dead_letters("index") == []
        wanted = expected_alerts(pipe, rule, n)
        assert 0 < len(wanted) < n, f"the rule should match a share: {len(wanted)} stories"
        wait_for_alerts(hook, wanted)
        alerted = hook.alerts()
        twice = {alert: times for alert, times in alerted.items() if times > 1}
        assert twice == {}, f"alerts sent more than once (rule, story): times {twice}"
        assert (hook.undecodable, hook.bad_signatures) == (0, 0)
        assert set(alerted) <= wanted, f"alerts for stories the rule does not match: " \
            f"{sorted(set(alerted) - wanted)[:10]}"
        assert pipe.dead_letters("alert") == []
        pipe.stop()  # within 10 s; the exit code is test_sigterm_exits_cleanly's
        assert_nothing_left(pipe)
        missing = sorted(wanted - set(alerted))
        print(f"kill -9 {service}: {revealed - at_kill} articles in flight; "
              f"{len(alerted)} of {len(wanted)} matching stories alerted, none twice")
        if missing and service in ("process", "broker"):
            pytest.xfail(f"{ALERTS_AT_MOST_ONCE}: {len(missing)} of {len(wanted)}")
        assert missing == [], f"{len(missing)} of {len(wanted)} matching stories never alerted"


def test_sigterm_exits_cleanly_within_10s(
        pages: list[bytes], make_pipeline: Callable[..., Pipeline]) -> None:
    with FeedWorld(pages, 60, feeds=6, rate=3.0) as world:
        pipe = make_pipeline(world)
        pipe.start()
        pipe.wait(lambda: pipe.count() >= 5, "articles flowing")
        assert pipe.stop() == 0, pipe.tail()  # within 10 s (stop() fails the test otherwise)
        assert_nothing_left(pipe)


def test_sigterm_in_flight_then_restart_delivers_everything_once(
        pages: list[bytes], make_pipeline: Callable[..., Pipeline]) -> None:
    n = 100
    with FeedWorld(pages, n, feeds=10, rate=3.0) as world:
        pipe = make_pipeline(world)
        pipe.start()
        pipe.wait(lambda: pipe.count() >= 15, "15 articles before SIGTERM")

        def in_flight() -> bool:
            status = pipe.status()
            return status is not None and status["stages"]["processor"]["lag"] > 0

        pipe.wait(in_flight, "entries in flight in the processor")
        before = pipe.count()
        pipe.stop()  # within 10 s, with work in flight
        assert before < n
        assert not (pipe.data_dir / runtime.FILENAME).exists()
        assert_nothing_left(pipe)
        pipe.start()  # same data dir: committed offsets and poller state carry over
        pipe.all_arrived_once(n)
        pipe.stop()


EXPECTED_REASONS = {
    "/h/slow": "fetch:timeout",
    "/h/badlen": "fetch:protocol_error",
    "/h/loop/0": "fetch:too_many_redirects",
    "/h/big": "fetch:too_large",
    "/h/bomb": "fetch:too_large",
}


def test_stalling_and_lying_servers_do_not_stall_the_rest(
        pages: list[bytes], make_pipeline: Callable[..., Pipeline]) -> None:
    n = 80
    # The hostile pages live on another host (127.0.0.2): politeness is per host by design.
    with FeedWorld(pages, n, feeds=8, hostile=HOSTILE_PATHS, hostile_host="127.0.0.2") as world:
        pipe = make_pipeline(world, env={"NEWSWIRE_FETCH__TIMEOUT": "5",
                                         "NEWSWIRE_PROCESS__STUCK_AFTER": "4"})
        pipe.start()
        pipe.all_arrived_once(n, entries=n + len(HOSTILE_PATHS))
        letters = pipe.wait(lambda: (d := pipe.dead_letters("process")) and len(d) >= 5 and d,
                            "the five hostile pages to be dead-lettered")
        by_path = {}
        for letter in letters:
            payload_url = letter.value.get("payload", "")
            path = next((p for p in HOSTILE_PATHS if p in payload_url), None)
            by_path[path] = letter.value.get("reason") or letter.headers.get("reason")
            assert letter.headers.get("stage") == "process"
            assert letter.headers.get("original_topic", "").endswith(".entries")
        assert by_path == EXPECTED_REASONS
        assert all(world.hits[p.rsplit("/", 1)[0] if "loop" in p else p] >= 1
                   for p in HOSTILE_PATHS)
        status = pipe.status()
        assert status is not None and status["dead_letters"]["process"] == 5
        # the slow page is tried three times for 5 s each: the processor's watchdog said where
        # that entry waited (the fetch), as it would for a real hang
        stuck = [line for line in pipe.log.read_text(errors="replace").splitlines()
                 if "entry in flight for" in line]
        assert stuck and any("http.py" in line and "worker.py" in line for line in stuck), stuck
        pipe.stop()
        assert_nothing_left(pipe)


OUTAGE_S = 60.0
# What the indexer's RSS may grow by while the store is away. It holds the batch it could
# not write and pauses its partitions, so the articles made meanwhile wait in Kafka. Reading
# on into memory would not stay under this: the same indexer grows ~30 MiB when it takes
# the ~400-article backlog in one batch after the outage (printed below). Neither would a
# copy of the batch kept per retry.
OUTAGE_RSS_GROWTH = 16 * 2**20


class PeakRss:
    """The highest RSS of a process, sampled every 0.2 s in a thread until ``stop()``."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.peak = proc, proc.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        self._done.set()
        self._thread.join(5)
        return self.peak


def test_search_store_outage_pauses_then_catches_up(
        pages: list[bytes], make_pipeline: Callable[..., Pipeline], tmp_path: Path) -> None:
    n = 480
    es = EmbeddedServer(tmp_path / "es", with_elasticsearch=True)
    es.start()
    try:
        settings = load_settings(data_dir=tmp_path / "data",
                                 search={"elasticsearch_url": es.elasticsearch_url})
        # 8 new articles a second for 60 s: most of them are made while the store is away.
        with FeedWorld(pages, n, feeds=12, rate=8.0) as world:
            pipe = make_pipeline(world, settings=settings,
                                 env={"NEWSWIRE_SEARCH__ELASTICSEARCH_URL": es.elasticsearch_url})
            pipe.start()
            pipe.wait(lambda: pipe.count() >= 15, "15 articles before the outage")
            indexer = pipe.component("index")
            rss_before = indexer.memory_info().rss
            before = pipe.wait(pipe.status, "the pipeline status")
            es.stop()
            outage = PeakRss(indexer)
            outage_end = time.monotonic() + OUTAGE_S
            while time.monotonic() < outage_end:
                assert pipe.proc is not None and pipe.proc.poll() is None, pipe.tail()
                time.sleep(0.5)
            peak = outage.stop()
            during = pipe.status()
            assert during is not None
            # Only the indexer paused: articles kept coming and waited in Kafka for the store.
            produced = (during["stages"]["indexer"]["produced"]  # articles topic
                        - before["stages"]["indexer"]["produced"])
            assert produced >= 100, f"only {produced} articles made during the outage"
            assert during["stages"]["indexer"]["lag"] >= produced // 2, during
            assert peak - rss_before < OUTAGE_RSS_GROWTH, (
                f"indexer RSS grew {(peak - rss_before) / 2**20:.1f} MiB during the outage "
                f"({produced} articles waiting)")
            catch_up = PeakRss(indexer)
            es.start()
            pipe.all_arrived_once(n)
            catch_up_peak = catch_up.stop()
            # The indexer paused and retried; it neither crashed nor dead-lettered the batch.
            assert components(pipe.proc.pid)["index"].pid == indexer.pid
            assert pipe.dead_letters("index") == []
            print(f"outage {OUTAGE_S:.0f}s: {produced} articles waited; indexer RSS "
                  f"{rss_before / 2**20:.1f} MiB before, peak {peak / 2**20:.1f} MiB during, "
                  f"peak {catch_up_peak / 2**20:.1f} MiB while catching up")
            pipe.stop()
            assert_nothing_left(pipe)
    finally:
        es.stop()


# ---------------------------------------------------------------- what noida does with a dead member

MEMBER = r"""
import asyncio, sys
from aiokafka import AIOKafkaConsumer
async def main():
    consumer = AIOKafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], group_id=sys.argv[3],
                                auto_offset_reset="earliest", session_timeout_ms=6000,
                                heartbeat_interval_ms=2000, group_instance_id=sys.argv[4] or None)
    await consumer.start()
    async for message in consumer:
        print(message.value.decode(), flush=True)
asyncio.run(main())
"""


def _replacement_receives(noida: EmbeddedServer, topic: str, instance: str) -> bool:
    """A member takes a message, is killed -9; does a new member of the group get the next?"""
    import sys

    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=noida.bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=noida.bootstrap, acks="all")
    args = [sys.executable, "-c", MEMBER, noida.bootstrap, topic, f"{topic}-group", instance]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    second: subprocess.Popen[str] | None = None
    try:
        producer.send(topic, b"one").get(10)
        assert first.stdout is not None and first.stdout.readline().strip() == "one"
        first.kill()
        first.wait(10)
        producer.send(topic, b"two").get(10)
        second = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        # 5x the session timeout: real Kafka has evicted the dead member long before.
        # ("one" may come again first: at-least-once, its offset was not committed yet.)
        import queue
        import threading

        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x.strip()) for x in second.stdout],  # type: ignore[union-attr]
                         daemon=True).start()
        deadline = time.monotonic() + 30
        while (left := deadline - time.monotonic()) > 0:
            try:
                if lines.get(timeout=left) == "two":
                    return True
            except queue.Empty:
                break
        return False
    finally:
        producer.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.mark.xfail(strict=True, reason="noida limitation: a kill -9'd dynamic group member "
                   "is never evicted after its session timeout")
def test_noida_replacement_member_gets_partitions_after_kill9(noida: EmbeddedServer) -> None:
    assert _replacement_receives(noida, f"fault-dynamic-{os.getpid()}", "")


def test_noida_static_member_replacement_gets_partitions_after_kill9(noida: EmbeddedServer) -> None:
    """The workaround: a stable group.instance.id takes the dead member's place at once."""
    assert _replacement_receives(noida, f"fault-static-{os.getpid()}", "worker-1")
