"""The page archive, and `newswire reprocess` over it to a real (noida) Kafka."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from newswire.keys import url_key
from newswire.records import Article, FeedEntry
from newswire.settings import Settings
from processors.fingerprint import StoryIndex
from processors.pagestore import PageStore
from processors.reprocess import pages_path, reprocess, stories_path
from tests.conftest import shared_path

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def _entry(url: str, title: str = "A title", summary: str | None = None) -> FeedEntry:
    return FeedEntry(key=url_key(url), url=url, link=url, title=title, summary=summary,
                     feed="https://example.com/rss", source=url.split("/")[2], published=T0)


def test_put_get_roundtrip_is_compressed(tmp_path: Path) -> None:
    store = PageStore(tmp_path / "pages.sqlite")
    body = b"<html><body>" + b"<p>The same paragraph of news text, repeated.</p>" * 2000 + b"</body>"
    entry = _entry("https://www.example.com/a")
    store.put(entry.key, entry.url, T0, "text/html; charset=utf-8", body, entry.model_dump_json())
    page = store.get(entry.key)
    assert page is not None
    assert page.body == body and page.url == entry.url and page.source == "www.example.com"
    assert page.fetched_at == T0 and page.content_type == "text/html; charset=utf-8"
    assert FeedEntry.model_validate_json(page.feed_entry_json) == entry
    assert store.get("missing") is None
    store.close()
    assert (tmp_path / "pages.sqlite").stat().st_size < len(body) / 4


def test_put_replaces_and_iter_filters(tmp_path: Path) -> None:
    store = PageStore(tmp_path / "pages.sqlite")
    urls = [f"https://{host}/{i}" for i in range(300)
            for host in ("www.reuters.com", "apnews.com")]
    for n, url in enumerate(urls):
        store.put(url_key(url), url, T0 + timedelta(minutes=n), None, f"<p>{n}</p>".encode(),
                  _entry(url).model_dump_json())
    store.put(url_key(urls[0]), urls[0], T0 + timedelta(days=1), None, b"<p>new</p>",
              _entry(urls[0]).model_dump_json())
    assert store.count() == 600
    assert store.get(url_key(urls[0])).body == b"<p>new</p>"  # type: ignore[union-attr]
    got = list(store.iter())
    assert len(got) == 600 and len({p.key for p in got}) == 600
    assert [p.fetched_at for p in got] == sorted(p.fetched_at for p in got)
    assert store.count(source="reuters.com") == 300
    assert {p.source for p in store.iter(source="reuters.com")} == {"www.reuters.com"}
    since = T0 + timedelta(minutes=500)
    assert store.count(since=since) == len(list(store.iter(since=since))) == 101
    assert store.count(since=since, source="apnews.com") == 50
    assert store.count(source="example.org") == 0


def test_concurrent_reader_process_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "pages.sqlite"
    store = PageStore(path)
    store.put("k0", "https://a.com/0", T0, None, b"<p>0</p>", "{}")
    reader = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; from processors.pagestore import PageStore\n"
         f"s = PageStore(__import__('pathlib').Path({str(path)!r}))\n"
         "seen = 0\n"
         "for _ in range(400):\n"
         "    seen = max(seen, s.count()); assert s.get('k0').body == b'<p>0</p>'\n"
         "    if seen >= 51: break\n"
         "    time.sleep(0.01)\n"
         "print(seen)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    for i in range(1, 51):
        store.put(f"k{i}", f"https://a.com/{i}", T0, None, b"<p>x</p>" * 100, "{}")
    out, _ = reader.communicate(timeout=30)
    assert reader.returncode == 0
    assert int(out.strip()) == 51


# ------------------------------------------------------------------ reprocess

def _fill(store: PageStore) -> list[FeedEntry]:
    root = shared_path("extraction-dev", "fundus-evaluation")
    truth = json.loads((root / "ground_truth.json").read_text())
    entries = []
    for n, name in enumerate(["APNews_0", "Reuters_1", "TheGuardian_0"]):
        url = truth[f"{name}.html.gz"]["url"]
        entry = _entry(url, title=f"Feed title {n}", summary="Feed summary.")
        body = gzip.decompress((root / "html" / f"{name}.html.gz").read_bytes())
        store.put(entry.key, url, T0 + timedelta(hours=n), "text/html", body,
                  entry.model_dump_json())
        entries.append(entry)
    binary = _entry("https://apnews.com/broken", summary=None)
    store.put(binary.key, binary.url, T0, "application/pdf", b"%PDF-1.4\x00\x01", binary.model_dump_json())
    return entries


def test_reprocess_turns_stored_pages_into_articles(tmp_path: Path) -> None:
    store = PageStore(tmp_path / "pages.sqlite")
    entries = _fill(store)
    stories = StoryIndex(None)
    sent: list[Article] = []
    stats = reprocess(store, stories, sent.append, progress=False)
    assert stats.seen == 4 and stats.published == 3
    assert stats.rejected == {"binary_content": 1}
    assert {a.id for a in sent} == {e.key for e in entries}
    for article in sent:
        assert article.text and article.language == "en" and article.fingerprint
        assert article.ingested.date() == T0.date()  # the fetch time, not the rerun's
        assert article.story_id == article.id  # three different stories
    # Running again keeps story ids (assign is idempotent by article id).
    again: list[Article] = []
    reprocess(store, stories, again.append, source="apnews.com", progress=False)
    assert [a.id for a in again] == [entries[0].key]
    assert again[0].story_id == entries[0].key
    later: list[Article] = []
    reprocess(store, stories, later.append, since=T0 + timedelta(minutes=30), progress=False)
    assert {a.id for a in later} == {entries[1].key, entries[2].key}


@pytest.mark.integration
def test_reprocess_command_publishes_to_kafka(kafka_settings: Settings) -> None:
    from kafka import KafkaConsumer

    from newswire.cli import main

    store = PageStore(pages_path(kafka_settings))
    entries = _fill(store)
    store.close()
    env = {"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.kafka.bootstrap_servers or "",
           "NEWSWIRE_KAFKA__TOPIC_PREFIX": kafka_settings.kafka.topic_prefix}
    result = CliRunner().invoke(
        main, ["--data-dir", str(kafka_settings.data_dir), "reprocess", "--since", "2024-03-01"],
        env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "reprocess: 100%" in result.output  # the progress bar
    assert "3 articles published" in result.output and "binary_content=1" in result.output
    assert stories_path(kafka_settings).exists()

    consumer = KafkaConsumer(kafka_settings.topic("articles"), auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000, **kafka_settings.kafka.client_config())
    got: dict[str, Article] = {}
    for message in consumer:
        article = Article.from_bytes(message.value)
        assert message.key.decode() == article.id
        got[article.id] = article
        if len(got) == 3:
            break
    consumer.close()
    assert set(got) == {e.key for e in entries}
    assert all(a.text and a.story_id for a in got.values())
