"""`newswire status`, `newswire dlq` and `newswire up`'s start checks, against the real broker
and the real CLI."""

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer

from ingest.state import StateStore
from newswire import ops
from newswire.cli import main
from newswire.keys import url_key
from newswire.records import DeadLetter, FeedEntry
from newswire.runner import lock_data_dir
from newswire.topics import ensure_topics

pytestmark = pytest.mark.integration


def cli(settings, *args, code=0):
    env = {"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
           "NEWSWIRE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix}
    result = CliRunner().invoke(main, ["--data-dir", str(settings.data_dir), *args], env=env)
    assert result.exit_code == code, result.output
    return result.output


def send_letters(settings, letters):
    producer = KafkaProducer(**settings.kafka.client_config())
    for key, letter in letters:
        producer.send(settings.topic("dlq.process"), key=key.encode(), value=letter.to_bytes(),
                      headers=[("original_topic", letter.topic.encode()),
                               ("reason", letter.reason.encode())])
    producer.flush()
    producer.close()


def test_dead_letters_listed_shown_and_replayed(kafka_settings):
    ensure_topics(kafka_settings)
    entries = kafka_settings.topic("entries")
    send_letters(kafka_settings, [
        (f"k{i}", DeadLetter(stage="process", reason=reason, key=f"k{i}", topic=entries,
                             partition=1, offset=40 + i, payload=json.dumps({"n": i})))
        for i, reason in enumerate(["fetch:http_404", "fetch:http_404", "clean:binary_content"])
    ] + [  # a stage keeps only the head of a huge value: it can no longer be replayed
        ("k3", DeadLetter(stage="process", reason="fetch:timeout", key="k3", topic=entries,
                          payload='{"n": 3, "summary": "cut sh'))
    ])

    listed = cli(kafka_settings, "dlq", "list")
    assert "process: 4" in listed
    assert "2  fetch:http_404" in listed and "1  clean:binary_content" in listed
    assert "poll: 0" in listed
    # A long dead-letter topic: the total stays true, the reasons come from the newest.
    sampled = cli(kafka_settings, "dlq", "list", "--sample", "2")
    assert "process: 4\n  reasons of the newest 2:\n" in sampled
    assert "1  clean:binary_content" in sampled and "1  fetch:timeout" in sampled
    assert "fetch:http_404" not in sampled

    shown = [json.loads(line) for line in cli(kafka_settings, "dlq", "show", "process").splitlines()]
    assert [s["reason"] for s in shown] == ["fetch:http_404", "fetch:http_404",
                                           "clean:binary_content", "fetch:timeout"]
    assert shown[0]["headers"]["original_topic"] == entries
    # The original's place and the letter's own place are both there, not one over the other.
    assert (shown[1]["partition"], shown[1]["offset"]) == (1, 41)
    assert (shown[1]["dlq_partition"], shown[1]["dlq_offset"]) == (0, 1)

    assert "replayed 2 message(s)" in cli(kafka_settings, "dlq", "replay", "process",
                                          "--reason", "fetch:")
    consumer = KafkaConsumer(entries, auto_offset_reset="earliest", consumer_timeout_ms=3000,
                             **kafka_settings.kafka.client_config())
    replayed = [(m.key, json.loads(m.value)) for m in consumer]
    consumer.close()
    assert sorted(replayed) == [(b"k0", {"n": 0}), (b"k1", {"n": 1})]
    assert "skipped 1 that cannot be replayed" in cli(kafka_settings, "dlq", "replay", "process",
                                                      "--reason", "fetch:timeout")

    status = json.loads(cli(kafka_settings, "status", "--json"))
    assert status["dead_letters"]["process"] == 4
    assert status["stages"]["processor"]["produced"] == 2
    assert status["stages"]["processor"]["lag"] == 2  # nobody consumed them yet
    assert status["stages"]["processor"]["per_minute"] == pytest.approx(2 / 15, abs=0.01)
    assert status["stages"]["alerts"]["topic"] == kafka_settings.topic("articles")


def test_dlq_show_of_an_empty_stage_says_so(kafka_settings):
    ensure_topics(kafka_settings)
    result = CliRunner().invoke(main, ["--data-dir", str(kafka_settings.data_dir), "dlq", "show",
                                       "poll"],
                                env={"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS":
                                     kafka_settings.kafka.bootstrap_servers,
                                     "NEWSWIRE_KAFKA__TOPIC_PREFIX": kafka_settings.kafka.topic_prefix})
    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"no dead letters in {kafka_settings.topic('dlq.poll')}" in result.stderr


def entry(url, feed):
    return FeedEntry(key=url_key(url), url=url, link=url, feed=feed, source="a.example",
                     title="t", content_hash="h" + url[-1])


def test_status_summarises_feed_health_and_intake(kafka_settings):
    ensure_topics(kafka_settings)
    now = time.time()
    with StateStore.open(kafka_settings) as store:
        for url in ("https://a.example/ok", "https://a.example/failing", "https://a.example/new"):
            store.add_feed(url, "cli", now=now - 7200)
        # Named by an earlier run's --feed, and the built-in list: stored, no longer polled.
        store.add_feed("https://a.example/earlier", "config", now=now - 7200)
        store.add_feed("https://a.example/builtin", "default", now=now - 7200)
        store.save_feed(replace(store.feed("https://a.example/ok"), polls=4, not_modified=3,
                                last_poll=now - 60, last_success=now - 60, next_poll=now + 240,
                                entries_published=3))
        store.save_feed(replace(store.feed("https://a.example/failing"), polls=2, errors=2,
                                error_count=2, last_poll=now - 30, next_poll=now + 900))
        store.mark_seen([entry("https://a.example/1", "https://a.example/ok")], now - 3600)
        store.mark_seen([entry("https://a.example/2", "https://a.example/ok"),
                         entry("https://a.example/3", "https://a.example/ok")], now - 60)

    status = json.loads(cli(kafka_settings, "status", "--json"))
    feeds = status["feeds"]
    assert (feeds["feeds"], feeds["ok"], feeds["failing"], feeds["new"]) == (3, 1, 1, 1)
    assert feeds["not_polled"] == 2
    assert feeds["not_modified_share"] == pytest.approx(3 / 6)
    assert feeds["new_entries"] == 2  # the one first seen an hour ago is not recent
    assert feeds["next_poll"] == pytest.approx(now + 240)
    assert status["up"] is None  # no `newswire up` on this data dir

    text = cli(kafka_settings, "status")
    assert ("feeds: 3 (1 ok, 1 failing, 0 unhealthy, 1 not polled yet; 2 more stored but not "
            "in the settings); 304 share 50%") in text
    assert "2 new in the last 15 min" in text and "newswire feeds status" in text
    assert "newswire up: not running" in text

    # A running `up` (this process stands in for it) that names the earlier feed polls it.
    (kafka_settings.data_dir / "runtime.json").write_text(json.dumps(
        {"pid": os.getpid(), "kafka": kafka_settings.kafka.bootstrap_servers,
         "web": "http://127.0.0.1:1/", "feeds": ["https://a.example/earlier"]}))
    status = json.loads(cli(kafka_settings, "status", "--json"))
    assert (status["feeds"]["feeds"], status["feeds"]["new"], status["feeds"]["not_polled"]) \
        == (4, 2, 1)
    assert status["up"]["pid"] == os.getpid()
    listed = [json.loads(line) for line in cli(kafka_settings, "feeds", "list", "--json")
              .splitlines()]
    assert {r["url"] for r in listed if not r["polled"]} == {"https://a.example/builtin"}
    text = cli(kafka_settings, "feeds", "status")
    assert "https://a.example/builtin\n  not polled" in text


def test_status_without_a_pipeline_says_what_to_do(tmp_path):
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "none"), "status"],
                                env={"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": ""})
    assert result.exit_code == 1
    assert "no running `newswire up` found" in result.stderr
    assert "feeds: none polled" in result.stdout
    assert not (tmp_path / "none").exists()  # looking created nothing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_up(data_dir: Path, port: int, *feeds: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWIRE_")}
    feeds = feeds or ("--feed", "http://127.0.0.1:9/x.xml")
    try:
        return subprocess.run([sys.executable, "-m", "newswire", "up", "--data-dir", str(data_dir),
                               "--port", str(port), *feeds],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:  # it started instead of refusing
        raise AssertionError(f"`newswire up` did not refuse to start: {exc.stderr}") from exc


def test_second_up_on_the_same_data_dir_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "runtime.json").write_text(json.dumps({"pid": 4242}))
    lock = lock_data_dir(data_dir)  # what a running `up` holds
    try:
        done = run_up(data_dir, free_port())
    finally:
        os.close(lock)
    assert done.returncode == 1
    assert f"another `newswire up` is already running on {data_dir} (pid 4242)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (data_dir / "broker").exists()  # nothing was started


def test_up_refuses_a_taken_web_port_before_starting_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_up(tmp_path / "data", port)
    assert done.returncode == 1
    assert f"cannot serve the search page on 127.0.0.1:{port}" in done.stderr
    assert "--port N" in done.stderr
    assert not (tmp_path / "data" / "broker").exists()
    assert not (tmp_path / "data" / "runtime.json").exists()


def test_up_refuses_a_feeds_file_it_cannot_use(tmp_path):
    done = run_up(tmp_path / "data", free_port(), "--feeds", str(tmp_path / "missing.txt"))
    assert done.returncode == 1
    assert f"feeds file {tmp_path / 'missing.txt'}: " in done.stderr
    assert "No such file" in done.stderr and "Traceback" not in done.stderr
    rss = tmp_path / "feed.xml"
    rss.write_text('<rss version="2.0"><channel><title>x</title></channel></rss>')
    done = run_up(tmp_path / "data", free_port(), "--feeds", str(rss))
    assert done.returncode == 1 and "this is a feed (<rss>)" in done.stderr
    assert not (tmp_path / "data" / "broker").exists()


def test_shutdown_kills_only_the_service_that_ignores_sigterm(tmp_path, monkeypatch, caplog):
    import logging

    from newswire import runner
    from newswire.settings import load_settings

    monkeypatch.setattr(runner, "SERVICE_GRACE", 1.5)
    supervisor = runner.Supervisor(load_settings(data_dir=tmp_path))
    polite = "import time\ntime.sleep(60)"
    stubborn = ("import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
                "print(kid.pid, flush=True)\ntime.sleep(60)")
    for child in supervisor.children:  # real processes in their own sessions, as up starts them
        code = stubborn if child.name == "processor" else polite
        child.proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                                      stdout=subprocess.PIPE, text=True)
    grandchild = int(next(c for c in supervisor.children if c.name == "processor")
                     .proc.stdout.readline())
    time.sleep(0.3)  # let the stubborn one install its handler before the signal
    with caplog.at_level(logging.INFO, logger="newswire.runner"):
        assert supervisor.shutdown() == 1
    stopped = {r.args[0] for r in caplog.records if r.msg.startswith("service stopped")}
    assert stopped == {"web", "indexer", "poller"}
    assert any("killing name=processor" in r.getMessage() for r in caplog.records)
    for child in supervisor.children:
        assert child.proc.poll() is not None
        child.proc.stdout.close()
    assert gone(grandchild)  # the stubborn one's own child went with it (its process group)


def gone(pid: int) -> bool:
    import psutil

    for _ in range(40):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True  # dead, waiting for whoever adopted it to reap it
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_second_signal_ends_the_wait_for_a_slow_service(tmp_path, monkeypatch):
    import threading

    from newswire import runner
    from newswire.settings import load_settings

    monkeypatch.setattr(runner, "SERVICE_GRACE", 600.0)  # only the second signal can end it
    supervisor = runner.Supervisor(load_settings(data_dir=tmp_path))
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" \
               "print('ready', flush=True)\ntime.sleep(600)"
    for child in supervisor.children:
        child.proc = subprocess.Popen([sys.executable, "-c", stubborn], start_new_session=True,
                                      stdout=subprocess.PIPE, text=True)
    for child in supervisor.children:
        assert child.proc.stdout.readline() == "ready\n"
    result: list[int] = []
    waiter = threading.Thread(target=lambda: result.append(supervisor.shutdown()), daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive()  # the first signal waits for the drain
    supervisor.force.set()  # what the second Ctrl-C does
    waiter.join(30)
    assert result == [1]
    for child in supervisor.children:
        assert child.proc.poll() is not None
        child.proc.stdout.close()


# ---- dead letters of long articles (index stage): kept whole, or re-read from the original


def long_article(i, min_bytes=60_000):
    """A real-text article far past the 20 kB the stages used to keep of a dead letter."""
    from datetime import UTC, datetime

    from indexer.synthetic import load_texts
    from newswire.records import Article
    from tests.conftest import shared_path

    texts, text = load_texts(shared_path("conflict-dev")), ""
    for t in texts[i:]:
        text += t + "\n\n"
        if len(text.encode()) > min_bytes:
            break
    return Article(id=f"long{i:04d}", url=f"https://news.example/long/{i}",
                   title=f"Long report {i}", text=text, source="news.example",
                   published=datetime(2026, 3, 1, tzinfo=UTC))


def articles_in_topic(settings):
    consumer = KafkaConsumer(settings.topic("articles"), auto_offset_reset="earliest",
                             consumer_timeout_ms=3000, **settings.kafka.client_config())
    try:
        return [(m.key, m.value) for m in consumer]
    finally:
        consumer.close()


def test_a_long_article_dead_lettered_by_the_indexer_replays_whole(kafka_settings, noida):
    """The store answers 500 for one long article every time (through the fault proxy):
    it is dead-lettered whole, and once the store is well, `dlq replay index` sends the
    original back and the indexer stores every byte of its text."""
    import threading

    from elasticsearch import Elasticsearch

    from indexer.consumer import IndexerOptions, run_indexer
    from indexer.elastic import ElasticStore
    from tests.faultproxy import FaultProxy

    ensure_topics(kafka_settings)
    article = long_article(3)
    assert len(article.to_bytes()) > 3 * 20_000
    prefix = f"{kafka_settings.kafka.topic_prefix}-long"
    reader = ElasticStore(Elasticsearch(noida.elasticsearch_url), prefix)
    with FaultProxy("127.0.0.1", noida.elasticsearch_port) as proxy:
        writer = ElasticStore(Elasticsearch(proxy.url), prefix, max_retries=1,
                              initial_backoff=0.05)
        producer = KafkaProducer(acks="all", **kafka_settings.kafka.client_config())
        producer.send(kafka_settings.topic("articles"), key=article.key.encode(),
                      value=article.to_bytes())
        producer.flush()
        producer.close()

        def index_everything():
            stop = threading.Event()
            thread = threading.Thread(target=run_indexer, args=(kafka_settings, stop),
                                      kwargs={"store": writer, "options": IndexerOptions(
                                          batch_size=10, linger=0.2)}, daemon=True)
            thread.start()
            deadline = time.monotonic() + 60
            while ops.pipeline_status(kafka_settings)["stages"]["indexer"]["lag"]:
                assert time.monotonic() < deadline, "the indexer did not catch up"
                time.sleep(0.2)
            stop.set()
            thread.join(20)

        proxy.fail_item(article.id, 500)
        index_everything()
        letters = list(ops.read_dead_letters(kafka_settings, "index"))
        assert [letter.value["reason"] for letter in letters] == ["store_5xx"]
        assert letters[0].value["payload"].encode() == article.to_bytes()  # not cut
        assert "payload_truncated" not in letters[0].headers

        proxy.clear()
        assert "replayed 1 message(s) from dlq.index" in cli(kafka_settings, "dlq", "replay",
                                                             "index")
        index_everything()
    reader.refresh()
    assert reader.get(article.id)["text"] == article.text


def test_a_cut_payload_is_re_read_from_the_original_or_refused_counted(kafka_settings):
    """Letters from before stages kept whole values (cut at 20,000 bytes, no header), and
    letters that say they were cut: sent from the original message while the topic holds
    it; refused, and counted by why, when it does not."""
    from newswire.records import DeadLetter

    ensure_topics(kafka_settings)
    topic = kafka_settings.topic("articles")
    articles = [long_article(i, 30_000) for i in (5, 9)]
    producer = KafkaProducer(acks="all", **kafka_settings.kafka.client_config())
    placed = [producer.send(topic, key=a.key.encode(), value=a.to_bytes()).get(30)
              for a in articles]
    letters = []
    for article, meta in zip(articles, placed):
        value = article.to_bytes()
        letters.append((DeadLetter(stage="index", reason="rejected", key=article.key,
                                   topic=topic, partition=meta.partition, offset=meta.offset,
                                   payload=value[:20_000].decode()),
                        [("payload_truncated", b"1"), ("payload_bytes", str(len(value)).encode())]
                        if article is articles[1] else []))
    gone = DeadLetter(stage="index", reason="rejected", key="nokey", topic=topic,
                      partition=placed[0].partition, offset=10_000,
                      payload=articles[0].to_bytes()[:20_000].decode())
    letters.append((gone, [("payload_truncated", b"1")]))
    for letter, extra in letters:
        producer.send(kafka_settings.topic("dlq.index"), key=letter.key.encode(),
                      value=letter.to_bytes(),
                      headers=[("original_topic", topic.encode()), ("stage", b"index"),
                               ("original_partition", str(letter.partition).encode()),
                               ("original_offset", str(letter.offset).encode()), *extra])
    producer.flush()
    producer.close()

    result = ops.replay(kafka_settings, "index")
    assert (result.sent, result.from_original, result.unreplayable) == (2, 2, 1)
    assert result.refused == {ops.CUT_ORIGINAL_GONE: 1}
    replayed = articles_in_topic(kafka_settings)[2:]
    assert sorted(replayed) == sorted((a.key.encode(), a.to_bytes()) for a in articles)
    output = cli(kafka_settings, "dlq", "replay", "index")
    assert "replayed 2 message(s)" in output and "skipped 1 that cannot be replayed" in output
