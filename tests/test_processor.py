"""The Faust processor worker as a real process on the real broker.

Entries in, enriched articles out; a 404, a binary body and a garbage record each become a
dead letter with its reason, and the good entry still comes through.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer

from newswire.keys import canonical_url, url_key
from newswire.records import Article, FeedEntry
from newswire.settings import Settings, child_env
from newswire.topics import ensure_topics
from processors import fetch_idle
from processors.fetch_idle import idle_pause
from tests.world import World



def entry(world: World, path: str, title: str) -> FeedEntry:
    link = f"{world.base}{path}"
    return FeedEntry(key=url_key(link), url=canonical_url(link), link=link, title=title,
                     summary=title, feed=f"{world.base}/feed.xml", source="127.0.0.1")


def drain(settings: Settings, topic: str, want: int, timeout: float = 90) -> list:
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=1000,
                             **settings.kafka.client_config())
    got: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            got.extend(consumer)
    finally:
        consumer.close()
    return got


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`newswire process` with one extraction process, logging to ``log``."""
    env = {**os.environ, **child_env(settings), "NEWSWIRE_PROCESS__WORKERS": "1"}
    return subprocess.Popen([sys.executable, "-m", "newswire", "process"], env=env,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, and fail the test if the worker does not stop within 10 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("worker did not stop within 10 s of SIGTERM:\n" + log.read_text()[-3000:])


@pytest.mark.integration
def test_worker_enriches_good_entries_and_dead_letters_bad_ones(kafka_settings, seed_story,
                                                                 tmp_path: Path) -> None:
    ensure_topics(kafka_settings)
    with World(seed_story) as world:
        # The feed links to an old address that moves permanently to the story.
        world.pages["/old/us-strikes"] = (301, "text/html", b"/world/us-strikes-syria")
        good = entry(world, "/old/us-strikes?utm_source=x", "US strikes in Syria")
        gone = entry(world, "/world/gone", "gone")
        pdf = entry(world, "/files/report.pdf", "pdf")
        # The publisher refuses robots: its feed's summary is all there is to publish.
        world.pages["/members/drone-attack"] = (403, "text/html", b"Access denied")
        refused = entry(world, "/members/drone-attack", "Drone attack on US base in Syria")
        producer = KafkaProducer(**kafka_settings.kafka.client_config())
        for e in (good, gone, pdf, refused):
            producer.send(kafka_settings.topic("entries"), key=e.key.encode(), value=e.to_bytes())
        producer.send(kafka_settings.topic("entries"), key=b"junk", value=b"\x00not json")
        producer.flush()
        producer.close()

        log = tmp_path / "worker.log"
        proc = start_worker(kafka_settings, log)
        try:
            articles = drain(kafka_settings, kafka_settings.topic("articles"), 3)
            letters = drain(kafka_settings, kafka_settings.topic("dlq.process"), 2)
        finally:
            stop_worker(proc, log)

    by_key = {m.key: Article.from_bytes(m.value) for m in articles}
    assert set(by_key) == {good.key.encode(), pdf.key.encode(), refused.key.encode()}, \
        log.read_text()[-4000:]
    summary_only = by_key[refused.key.encode()]
    assert summary_only.partial and summary_only.text == "Drone attack on US base in Syria"
    assert {"fetch:http_4xx", "summary_fallback"} <= set(summary_only.flags)
    assert summary_only.conflict_related and "SY" in summary_only.countries  # still tagged
    # a PDF is not a story page: the feed's summary stands in, flagged, not dropped
    fallback = by_key[pdf.key.encode()]
    assert fallback.partial and "summary_fallback" in fallback.flags and fallback.text == "pdf"
    article = by_key[good.key.encode()]
    assert article.id == good.key and not article.partial
    assert article.url == f"{world.base}/old/us-strikes"  # the key's URL, as the feed gave it
    # where it was fetched in the end, and the trail that led there
    assert article.fetched_url == f"{world.base}/world/us-strikes-syria"
    assert article.redirects == (f"{world.base}/world/us-strikes-syria",)
    assert "21 American troops" in article.text and "Most read story" not in article.text
    assert article.conflicts and article.conflicts[0].id == "us-iran-proxy"
    assert {"US", "SY", "IQ", "IR"} <= set(article.countries)
    assert article.story_id and article.fingerprint and article.language == "en"
    # the page is archived (by the extraction process) for `newswire reprocess`
    from processors.pagestore import PageStore
    from processors.reprocess import pages_path

    archive = PageStore(pages_path(kafka_settings))
    stored = archive.get(good.key)
    archive.close()
    assert stored is not None and b"21 American troops" in stored.body
    assert stored.url == article.fetched_url and stored.redirects == article.redirects

    reasons = sorted(json.loads(m.value)["reason"] for m in letters)
    assert reasons == ["bad_record", "fetch:http_404"]
    headers = dict(letters[0].headers)
    assert headers["stage"] == b"process" and headers["original_topic"] == \
        kafka_settings.topic("entries").encode()


# -- the idle fetch backoff (processors.fetch_idle) ----------------------------------------

durations = st.floats(min_value=0, max_value=10, allow_nan=False)


@given(elapsed=durations, max_wait=durations, streak=st.integers(-3, 200),
       cap=st.floats(min_value=0.001, max_value=5))
def test_idle_pause_never_waits_longer_than_the_broker_could_have(
        elapsed: float, max_wait: float, streak: int, cap: float) -> None:
    pause = idle_pause(elapsed, max_wait, streak, cap=cap)
    assert 0.0 <= pause <= cap
    # A real Kafka holds an empty fetch for max_wait: then there is nothing left to wait.
    assert pause <= max(0.0, max_wait - elapsed)
    if streak < 1:
        assert pause == 0.0
    else:  # longer idle streaks never wait less
        assert idle_pause(elapsed, max_wait, streak + 1, cap=cap) >= pause


def test_idle_pause_grows_to_the_cap_on_a_broker_that_answers_at_once() -> None:
    pauses = [idle_pause(0.001, 1.5, n, cap=0.2) for n in range(1, 10)]
    assert pauses[0] == pytest.approx(0.01) and pauses[-1] == pytest.approx(0.2)
    assert pauses == sorted(pauses)


@pytest.mark.integration
def test_idle_consumer_stops_spinning_and_still_gets_the_next_record(kafka_settings) -> None:
    """An idle aiokafka consumer on noida (which answers empty fetches at once) sent a fetch
    every few hundred microseconds; with the backoff it sends a handful a second, and a
    record produced after the idle spell still arrives."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.consumer.fetcher import Fetcher

    fetch_idle.install()
    topic = kafka_settings.topic("idle-probe")
    producer = KafkaProducer(**kafka_settings.kafka.client_config())
    producer.send(topic, key=b"k", value=b"first")
    producer.flush()
    patched = Fetcher._proc_fetch_request
    calls = 0

    async def counting(self, *args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await patched(self, *args)

    async def run() -> tuple[int, bytes, bytes]:
        consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", enable_auto_commit=False,
                                    fetch_max_wait_ms=1500,
                                    bootstrap_servers=kafka_settings.kafka.bootstrap_servers)
        await consumer.start()
        try:
            first = await asyncio.wait_for(consumer.getone(), 30)
            nonlocal calls
            calls = 0
            idle = await consumer.getmany(timeout_ms=2000)  # nothing new on the topic
            idle_fetches = calls
            assert not any(idle.values()), idle
            await asyncio.to_thread(lambda: (producer.send(topic, key=b"k", value=b"second"),
                                             producer.flush()))
            second = await asyncio.wait_for(consumer.getone(), 30)
            return idle_fetches, first.value, second.value
        finally:
            await consumer.stop()

    Fetcher._proc_fetch_request = counting
    try:
        idle_fetches, first, second = asyncio.run(run())
    finally:
        Fetcher._proc_fetch_request = patched
        producer.close()
    assert (first, second) == (b"first", b"second")
    # Backoff: ~25 fetches in 2 s (pauses up to 0.1 s); without it thousands
    # (4,030 measured). A slow machine only lowers the count.
    assert 0 < idle_fetches < 150, idle_fetches


def test_warm_up_page_runs_the_whole_enrich_path() -> None:
    """The worker warms the pool's parent with a built-in page before forking; a page that
    extraction rejected would leave the lazy models cold and the first real pages slow."""
    from processors.enrich import init_worker
    from processors.worker import warm_up

    init_worker(None)
    done = warm_up()
    assert done.reason is None and done.clean is not None and done.tags is not None
    assert done.clean.language == "en" and "river town" in done.clean.text
    assert done.fingerprint is not None


# -- an extraction process that dies (OOM killer, a crash in a C extension) ----------------

def _pool_children(worker_pid: int) -> list:
    import psutil

    worker = psutil.Process(worker_pid)
    return [c for c in worker.children() if c.cmdline() == worker.cmdline()]


@pytest.mark.integration
def test_a_killed_extraction_process_is_replaced_and_no_page_is_lost(
        kafka_settings, seed_story, tmp_path: Path) -> None:
    from tests.world import story_page

    ensure_topics(kafka_settings)
    with World(seed_story) as world:
        entries = []
        for i in range(24):
            world.pages[f"/story/{i}"] = (200, "text/html; charset=utf-8", story_page(seed_story))
            entries.append(entry(world, f"/story/{i}", f"US strikes in Syria, copy {i}"))
        producer = KafkaProducer(**kafka_settings.kafka.client_config())

        def send(batch: list[FeedEntry]) -> None:
            for e in batch:
                producer.send(kafka_settings.topic("entries"), key=e.key.encode(),
                              value=e.to_bytes())
            producer.flush()

        log = tmp_path / "worker.log"
        proc = start_worker(kafka_settings, log)
        try:
            send(entries[:1])
            assert len(drain(kafka_settings, kafka_settings.topic("articles"), 1)) == 1, \
                log.read_text()[-3000:]
            # Killed while idle: the next page finds the pool broken.
            first = _pool_children(proc.pid)
            assert len(first) == 1, first
            first[0].kill()
            send(entries[1:12])
            assert len(drain(kafka_settings, kafka_settings.topic("articles"), 12)) >= 2
            # Killed again, now with pages of a burst in flight or queued behind it.
            again = _pool_children(proc.pid)
            assert again and again[0].pid != first[0].pid
            send(entries[12:])
            again[0].kill()
            articles = drain(kafka_settings, kafka_settings.topic("articles"), 24)
            letters = drain(kafka_settings, kafka_settings.topic("dlq.process"), 1, timeout=3)
        finally:
            producer.close()
            stop_worker(proc, log)
        text = log.read_text()
    assert {m.key for m in articles} == {e.key.encode() for e in entries}, text[-4000:]
    assert letters == [], [json.loads(m.value)["reason"] for m in letters]
    assert "replacing the pool" in text
    assert proc.returncode == 0, text[-3000:]
