"""The page archive's compression: zstd now, zlib archives from before still read."""

from __future__ import annotations

import sqlite3
import zlib
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.pagestore import PageStore

WHEN = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_new_pages_are_zstd_and_smaller_than_the_page(tmp_path: Path) -> None:
    store = PageStore(tmp_path / "pages.sqlite")
    body = b"<html><body>" + b"<p>Shelling near the river town continued.</p>" * 500 + b"</body>"
    store.put("k1", "https://example.com/a", WHEN, "text/html", body, "{}")
    blob = store.db.execute("SELECT body FROM pages WHERE key='k1'").fetchone()[0]
    assert blob[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert len(blob) < len(body) // 10
    page = store.get("k1")
    assert page is not None and page.body == body
    store.close()


def test_an_archive_written_before_zstd_and_redirect_trails_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "pages.sqlite"
    old = b"<html>" + "caf\u00e9 \u0627\u0644\u0642\u0635\u0641 ".encode() * 300 + b"</html>"
    with sqlite3.connect(path) as db:  # the earlier layout: zlib bodies, no redirects column
        db.execute("CREATE TABLE pages (key TEXT PRIMARY KEY, url TEXT NOT NULL, source TEXT "
                   "NOT NULL, fetched_at REAL NOT NULL, content_type TEXT, body BLOB NOT NULL, "
                   "size INTEGER NOT NULL, feed_entry TEXT NOT NULL)")
        db.execute("INSERT INTO pages VALUES (?,?,?,?,?,?,?,?)",
                   ("old", "https://example.com/old", "example.com", WHEN.timestamp(),
                    "text/html", zlib.compress(old, 1), len(old), "{}"))
    store = PageStore(path)
    trail = ("https://example.com/moved", "https://example.com/new")
    store.put("new", "https://example.com/new", WHEN, None, b"<p>new</p>", "{}", trail)
    assert {p.key: (p.body, p.redirects) for p in store.iter()} == {
        "old": (old, ()), "new": (b"<p>new</p>", trail)}
    store.close()


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=5000))
def test_any_body_round_trips(tmp_path_factory, body: bytes) -> None:  # noqa: ANN001
    store = PageStore(tmp_path_factory.mktemp("codec") / "pages.sqlite")
    store.put("k", "https://example.com/x", WHEN, None, body, "{}")
    page = store.get("k")
    assert page is not None and page.body == body
    store.close()
