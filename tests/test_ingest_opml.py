"""Feed lists in and out: URL lines and OPML (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.opml import FeedListError, ListedFeed, parse_feed_list, parse_opml, to_opml

OPML = b"""<?xml version="1.0"?><opml version="2.0"><head><title>mine</title></head><body>
<outline text="World">
  <outline type="rss" text="BBC" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
  <outline text="Deeper"><outline type="rss" title="UN" xmlUrl="https://news.un.org/rss.xml"/></outline>
</outline>
<outline type="rss" text="dup" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
<outline text="a folder without a feed"/>
</body></opml>"""


def test_opml_outlines_at_any_depth_once_each() -> None:
    assert parse_opml(OPML) == [
        ListedFeed("https://feeds.bbci.co.uk/news/world/rss.xml", "BBC"),
        ListedFeed("https://news.un.org/rss.xml", "UN"),
    ]


def test_plain_lists_skip_comments_and_blanks() -> None:
    text = b"# my feeds\n\nhttps://a.example/rss\n  https://b.example/atom  \n# off\nhttps://a.example/rss\n"
    assert [f.url for f in parse_feed_list(text)] == ["https://a.example/rss", "https://b.example/atom"]
    assert parse_feed_list(OPML)[0].title == "BBC"  # OPML recognised by its first character


def test_bad_opml_is_a_clear_error() -> None:
    with pytest.raises(FeedListError):
        parse_opml(b"<opml><body><outline xmlUrl='x'></body>")
    with pytest.raises(FeedListError):
        parse_opml(b'<!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body/></opml>')


@given(st.lists(st.tuples(st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9/&?=]{0,20}",
                                        fullmatch=True),
                          st.one_of(st.none(), st.text(max_size=30).filter(
                              lambda t: all(c.isprintable() for c in t)))),
                max_size=10, unique_by=lambda t: t[0]))
def test_export_then_import_round_trips(feeds: list[tuple[str, str | None]]) -> None:
    listed = [ListedFeed(url, title) for url, title in feeds]
    back = parse_opml(to_opml(listed).encode())
    assert [f.url for f in back] == [f.url for f in listed]
