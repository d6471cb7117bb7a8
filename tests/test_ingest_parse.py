"""Feed parsing and discovery: pure functions, tested directly and with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.sax.saxutils import escape

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.discover import common_feed_urls, discover_feed_links
from ingest.parse import defuse_entities, parse_feed, plain_text
from newswire.keys import url_key

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
     xmlns:atom="http://www.w3.org/2005/Atom">
<channel><title>World &amp; more</title><link>https://news.example.com/</link><ttl>30</ttl>
<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
<atom:link rel="hub" href="https://hub.example.net/"/>
<atom:link rel="self" href="https://news.example.com/feed.xml"/>
<item><title>Strikes &lt;b&gt;hit&lt;/b&gt; port</title>
  <link>https://news.example.com/a/1?utm_source=rss&amp;id=7</link>
  <guid isPermaLink="false">item-1</guid>
  <description>&lt;p&gt;Several &lt;a href="x"&gt;strikes&lt;/a&gt; overnight.&lt;/p&gt;</description>
  <pubDate>Mon, 01 Jan 2024 10:00:00 +0200</pubDate></item>
<item><title>Relative</title><link>/a/2</link></item>
<item><title>Guid only</title><guid>https://news.example.com/a/3</guid></item>
<item><title>No link at all</title><description>text</description></item>
<item><title>Mail</title><link>mailto:desk@example.com</link></item>
</channel></rss>"""


def test_entries_become_records_with_key_and_canonical_url() -> None:
    now = datetime(2024, 1, 2, tzinfo=UTC)
    feed = parse_feed(RSS, "https://news.example.com/feed.xml", now=now)
    assert feed.ok and feed.version == "rss20" and feed.title == "World & more"
    assert feed.total == 5 and len(feed.entries) == 3
    first = feed.entries[0]
    assert first.url == "https://news.example.com/a/1?id=7"
    assert first.key == url_key("https://news.example.com/a/1?id=7&utm_source=x")
    assert first.title == "Strikes hit port" and first.summary == "Several strikes overnight."
    assert first.published == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert first.guid == "item-1" and first.source == "news.example.com"
    assert first.feed == "https://news.example.com/feed.xml" and first.polled_at == now
    assert feed.entries[1].link == "https://news.example.com/a/2"
    assert feed.entries[2].url == "https://news.example.com/a/3"
    assert [(r.index, r.reason) for r in feed.rejected] == [(3, "no_link"), (4, "non_http_link")]
    assert feed.ttl_seconds == 1800 and feed.update_seconds == 900
    assert feed.hub == "https://hub.example.net/"
    assert feed.self_url == "https://news.example.com/feed.xml"


def test_content_hash_changes_with_title_or_summary() -> None:
    a = parse_feed(RSS, "https://news.example.com/feed.xml").entries[0]
    b = parse_feed(RSS.replace(b"overnight", b"at dawn"), "https://news.example.com/f").entries[0]
    assert a.key == b.key and a.content_hash != b.content_hash


def test_xml_base_and_feed_url_resolve_relative_links() -> None:
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"
      xml:base="https://base.example.org/blog/"><title>t</title>
      <entry><title>one</title><link href="posts/1"/><id>urn:1</id></entry></feed>"""
    feed = parse_feed(atom, "https://elsewhere.example.net/atom.xml")
    assert feed.entries[0].link == "https://base.example.org/blog/posts/1"
    plain = b"<rss version='2.0'><channel><item><link>x/2</link></item></channel></rss>"
    assert parse_feed(plain, "https://h.example.com/f/rss").entries[0].link == \
        "https://h.example.com/f/x/2"


def test_a_local_file_resolves_against_the_self_link() -> None:
    feed = parse_feed(RSS, "/tmp/some/file.xml")
    assert feed.entries[1].link == "https://news.example.com/a/2"


def test_malformed_xml_still_yields_entries() -> None:
    broken = RSS.replace(b"</channel></rss>", b"<item><title>cut").replace(b"&amp; more", b"& more")
    feed = parse_feed(broken, "https://news.example.com/feed.xml")
    assert feed.ok and feed.bozo and len(feed.entries) >= 3


def test_html_instead_of_a_feed_has_a_clear_reason() -> None:
    page = b"<!DOCTYPE html><html><head><title>Home</title></head><body>news</body></html>"
    feed = parse_feed(page, "https://news.example.com/", headers={"Content-Type": "text/html"})
    assert feed.reason == "html_not_feed" and feed.entries == ()
    assert parse_feed(b"   ", "https://x.example/").reason == "empty_body"
    assert parse_feed(b"just some words", "https://x.example/").reason == "not_a_feed"


def test_malformed_feed_with_no_entry_is_an_error_not_an_empty_success() -> None:
    truncated = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x &nope; </title>'
    feed = parse_feed(truncated, "https://e.example/feed")
    assert feed.reason == "malformed_feed" and not feed.ok and feed.bozo
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'
    assert parse_feed(empty, "https://e.example/feed").ok  # well-formed and empty: fine
    # A charset warning alone on a well-formed empty feed is not an error either.
    latin = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Caf\u00e9' \
            '</title></channel></rss>'
    assert parse_feed(latin.encode("latin-1"), "https://e.example/feed").ok


def test_wrong_charset_declaration_still_parses() -> None:
    latin = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
             '<item><title>Caf\u00e9 d\u00e9j\u00e0</title><link>https://e.example/1</link></item>'
             '</channel></rss>').encode("latin-1")
    feed = parse_feed(latin, "https://e.example/feed")
    assert len(feed.entries) == 1 and feed.entries[0].title


def test_quadratic_entity_expansion_is_defused() -> None:
    # One 20 KB entity referenced 5,000 times would expand to 100 MB.
    attack = (b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + b"x" * 20_000
              + b'">\n]>\n<rss version="2.0"><channel><item><title>' + b"&a;" * 5_000
              + b"</title><link>https://e.example/1</link></item></channel></rss>")
    cleaned, removed = defuse_entities(attack)
    assert removed and b"<!ENTITY" not in cleaned
    feed = parse_feed(attack, "https://e.example/feed")
    assert "entity declarations removed" in feed.notes
    assert len(feed.entries) == 1 and len(feed.entries[0].title or "") < 1_000


def test_billion_laughs_does_not_expand() -> None:
    levels = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    attack = ('<?xml version="1.0"?><!DOCTYPE rss [' + "".join(levels) + ']><rss version="2.0">'
              '<channel><title>&l9;</title><item><title>t &l9;</title>'
              '<link>https://e.example/1</link></item></channel></rss>').encode()
    feed = parse_feed(attack, "https://e.example/feed")
    assert len(feed.entries) == 1 and len(feed.entries[0].title or "") < 1_000


def test_small_harmless_entities_are_kept() -> None:
    doc = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY org "Example News">]>'
           b'<rss version="2.0"><channel><item><title>By &org;</title>'
           b'<link>https://e.example/1</link></item></channel></rss>')
    assert defuse_entities(doc) == (doc, False)
    assert parse_feed(doc, "https://e.example/f").entries[0].title == "By Example News"


def test_plain_text_is_short_and_clean() -> None:
    assert plain_text("<p>a&amp;b</p>\n\n<i>c</i>", 100) == "a&b c"
    long = plain_text("word " * 500, 50)
    assert long is not None and len(long) <= 51 and long.endswith("…")
    assert plain_text("<br/>", 10) is None


def test_hostless_links_are_rejected_not_resolved_to_the_feed() -> None:
    # urljoin would turn "//" into the feed's own URL: an entry that names no host must be
    # rejected, not invented. ("https:///x" is read as host "x", as browsers do.)
    feed = parse_feed(_rss([("a", "//"), ("c", "http://"), ("d", "/ok/4")]),
                      "https://feeds.example/rss.xml")
    assert [e.link for e in feed.entries] == ["https://feeds.example/ok/4"]
    assert sorted(r.title for r in feed.rejected) == ["a", "c"]
    assert all(r.reason in ("non_http_link", "bad_link") for r in feed.rejected)


def _rss(items: list[tuple[str, str]]) -> bytes:
    body = "".join(f"<item><title>{escape(t)}</title><link>{escape(link)}</link></item>"
                   for t, link in items)
    return f'<rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=40),
                          st.one_of(st.just("https://ok.example/p"), st.text(max_size=30),
                                    st.just("javascript:alert(1)"), st.just(""))),
                max_size=8))
def test_every_entry_is_accounted_for(items: list[tuple[str, str]]) -> None:
    feed = parse_feed(_rss(items), "https://ok.example/feed")
    assert len(feed.entries) + len(feed.rejected) == feed.total
    for entry in feed.entries:
        assert entry.url.startswith(("http://", "https://")) and len(entry.key) == 16


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(body: bytes) -> None:
    feed = parse_feed(body, "https://x.example/feed")
    assert feed.total == len(feed.entries) + len(feed.rejected)


def test_discovery_finds_declared_feeds_first() -> None:
    page = b"""<html><head><base href="https://site.example/news/">
      <link rel="alternate" type="application/rss+xml" href="rss.xml">
      <link rel="alternate" type="application/atom+xml" href="https://site.example/atom">
      <link rel="alternate" hreflang="fr" href="/fr/">
      <link rel="stylesheet" href="/s.css"></head>
      <body><a href="/world/feed">World feed</a><a href="/about">About</a></body></html>"""
    assert discover_feed_links(page, "https://site.example/") == [
        "https://site.example/news/rss.xml", "https://site.example/atom",
        "https://site.example/world/feed"]
    assert discover_feed_links(b"<html><body>nothing</body></html>", "https://s.example/") == []
    assert common_feed_urls("https://s.example/x/")[0] == "https://s.example/feed"


def test_absurd_dates_become_unknown() -> None:
    def dated(date: str) -> bytes:
        return (f'<rss version="2.0"><channel><item><link>https://e.example/1</link>'
                f"<pubDate>{date}</pubDate></item></channel></rss>").encode()

    now = datetime(2024, 6, 1, tzinfo=UTC)
    for absurd in ("Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 1900 00:00:00 GMT",
                   "Sat, 01 Jun 2024 00:00:00 GMT".replace("2024", "2025")):
        assert parse_feed(dated(absurd), "https://e.example/f", now=now).entries[0].published is None
    fine = parse_feed(dated("Fri, 31 May 2024 10:00:00 GMT"), "https://e.example/f", now=now)
    assert fine.entries[0].published == datetime(2024, 5, 31, 10, tzinfo=UTC)
