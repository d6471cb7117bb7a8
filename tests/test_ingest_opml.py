"""Feed lists in and out: URL lines and OPML (pure), and the `newswire feeds` commands on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from ingest.opml import (FeedListError, ListedFeed, parse_feed_list, parse_opml, to_opml,
                         url_problem)
from newswire.cli import main

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


def test_a_feed_handed_over_as_a_feed_list_is_named_as_such() -> None:
    rss = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'
    atom = b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>'
    for data in (rss, atom):
        with pytest.raises(FeedListError, match=r"this is a feed .*`newswire feeds add"):
            parse_feed_list(data)
    with pytest.raises(FeedListError, match="not OPML"):
        parse_feed_list(b"<html><body>hi</body></html>")


@pytest.mark.parametrize(("url", "ok"), [
    ("https://a.example/rss", True), ("http://127.0.0.1:8765/world.xml", True),
    ("not-a-url", False), ("ftp://a.example/rss", False), ("https:///rss", False),
    ("javascript:alert(1)", False), ("https://a.example/a b", False), ("http://[::1", False),
])
def test_url_problem(url: str, ok: bool) -> None:
    assert (url_problem(url) is None) is ok


@given(st.text(max_size=80))
def test_url_problem_never_raises(text: str) -> None:
    problem = url_problem(text)
    assert problem is None or isinstance(problem, str)


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"NEWSWIRE_KAFKA__BOOTSTRAP_SERVERS": ""})


def test_feeds_import_skips_non_urls_and_refuses_a_file_with_no_feed(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    listing = tmp_path / "mine.txt"
    listing.write_text("# mine\nhttps://a.example/rss\nnot a url\nftp://b.example/x\n")
    done = run_cli("--data-dir", data, "feeds", "import", str(listing))
    assert done.exit_code == 0, done.output
    assert "imported 1 new feed(s), 0 already present, 2 skipped" in done.stdout
    assert "skipped: not a url: not an http(s) URL" in done.stderr
    listed = run_cli("--data-dir", data, "feeds", "list").stdout
    assert listed.splitlines() == ["https://a.example/rss\topml\t"]

    feed = tmp_path / "world.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>'
                    "<item><link>https://a.example/1</link></item></channel></rss>")
    done = run_cli("--data-dir", data, "feeds", "import", str(feed))
    assert done.exit_code == 1
    assert "this is a feed (<rss>), not a feed list" in done.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    done = run_cli("--data-dir", data, "feeds", "import", str(empty))
    assert done.exit_code == 1 and "no feed URLs in it" in done.stderr


def test_feeds_add_refuses_what_is_not_a_url_without_fetching(tmp_path: Path) -> None:
    done = run_cli("--data-dir", str(tmp_path / "data"), "feeds", "add", "--no-discover",
                   "not-a-url")
    assert done.exit_code == 2
    assert "not-a-url: not an http(s) URL" in done.stderr
    assert not (tmp_path / "data" / "ingest").exists()


@pytest.mark.integration
def test_feeds_add_on_loopback_says_how_to_allow_it(tmp_path: Path) -> None:
    # A real (refused) address: the refusal happens before any connection.
    done = run_cli("--data-dir", str(tmp_path / "data"), "feeds", "add", "http://127.0.0.1:9/")
    assert done.exit_code == 1
    assert "blocked_address" in done.stderr and "--allow-private-networks" in done.stderr


def test_feeds_remove_warns_when_the_settings_bring_the_feed_back(tmp_path: Path) -> None:
    from ingest.state import StateStore

    data = tmp_path / "data"
    with StateStore(data / "ingest" / "state.sqlite3") as store:
        store.add_feed("https://a.example/rss", "config")  # as `up --feed URL` stores it
        store.add_feed("https://b.example/rss", "cli")
    done = run_cli("--data-dir", str(data), "feeds", "remove", "https://a.example/rss")
    assert done.exit_code == 0 and "removed: https://a.example/rss" in done.stdout
    assert "comes back when newswire starts with them again" in done.stderr
    done = run_cli("--data-dir", str(data), "feeds", "remove", "https://b.example/rss")
    assert done.exit_code == 0 and done.stderr == ""
    done = run_cli("--data-dir", str(data), "feeds", "remove", "https://b.example/rss")
    assert done.exit_code == 1 and "not a known feed" in done.stderr


def test_polled_follows_the_pollers_rule() -> None:
    from ingest.state import FeedState, polled

    def feed(url: str, origin: str) -> FeedState:
        return FeedState(url=url, fetch_url=url, origin=origin, added_at=0.0)

    builtin, earlier, mine = feed("d", "default"), feed("c", "config"), feed("m", "opml")
    assert polled([builtin, earlier], []) == [builtin]  # nothing named: the built-in list
    assert polled([builtin, earlier], ["c", "x"]) == [earlier]
    assert polled([builtin, earlier, mine], []) == [mine]  # the user's own feeds replace it
