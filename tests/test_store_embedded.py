"""The embedded (tantivy) search store: upsert, facets, dates, histogram, collapse, readers."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from indexer.embedded import EmbeddedStore
from indexer.query import QuerySyntaxError, analyze
from indexer.store import (
    BadCursor,
    Cursor,
    SearchRequest,
    SearchStore,
    StoreError,
    open_store,
)
from newswire.records import Article, ConflictTag, EventTypeTag, Location
from newswire.settings import load_settings

REPO = Path(__file__).resolve().parents[1]


def art(i: int, **kw: object) -> Article:
    base: dict[str, object] = {
        "id": f"id{i}", "url": f"https://news{i % 3}.example/{i}",
        "title": f"Airstrikes reported near Aleppo, story {i}",
        "text": "Residents said warplanes struck the market. <Officials> & medics counted "
                "the dead as ceasefire talks stalled.",
        "source": f"news{i % 3}.example", "language": "en",
        "published": datetime(2026, 3, 1 + i, 12, tzinfo=UTC),
        "countries": ("SY",),
        "conflicts": (ConflictTag(id="us-iran-proxy", name="US-Iran", score=0.8),),
        "event_types": (EventTypeTag(id="airstrike", event_type="Airstrike", score=0.9),),
        "locations": (Location(name="Aleppo", country="SY", lat=36.2, lon=37.15),),
    }
    base.update(kw)
    return Article(**base)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "index", writer=True)
    s.ensure()
    yield s
    s.close()


def test_is_a_search_store_and_open_store_picks_embedded(tmp_path: Path) -> None:
    store = open_store(load_settings(data_dir=tmp_path))
    assert isinstance(store, SearchStore) and isinstance(store, EmbeddedStore)
    assert store.path == tmp_path / "index"
    assert store.search(SearchRequest()).total == 0  # no index yet: empty, not an error


def test_upsert_is_idempotent_by_id(store: EmbeddedStore) -> None:
    assert store.upsert([art(1), art(2)]) == []
    assert store.upsert([art(1), art(2)]) == []
    assert store.upsert([art(1, title="Updated title about shelling")]) == []
    store.refresh()
    assert store.count() == 2
    assert store.get("id1")["title"] == "Updated title about shelling"
    assert store.search(SearchRequest(query="shelling")).total == 1
    assert store.search(SearchRequest(query="title:airstrikes")).total == 1


def test_get_returns_the_whole_article(store: EmbeddedStore) -> None:
    article = art(1, actors=("Police",), story_id="s9", feed="https://news1.example/rss")
    store.upsert([article])
    doc = store.get("id1")
    assert doc is not None
    assert Article.model_validate(doc) == article
    assert store.get("missing") is None


def test_rejections_name_the_document_and_reason(store: EmbeddedStore) -> None:
    rejected = store.upsert([art(1), art(2, title=None, text="", summary=None),
                             Article(id="", url="https://x.example/", title="t")])
    assert {(r.id, r.reason) for r in rejected} == {
        ("id2", "no title, text or summary to index"), ("", "missing id")}
    assert store.count() == 1


def test_hits_shape_snippet_and_facets(store: EmbeddedStore) -> None:
    store.upsert([art(1), art(2, countries=("SY", "TR"), language="fr"),
                  art(3, text="Unrelated sports report", title="Football",
                      conflicts=(), event_types=(), countries=("GB",))])
    result = store.search(SearchRequest(query="ceasefire"))
    assert result.total == 2
    hit = result.hits[0]
    assert {"id", "url", "title", "published", "source", "conflicts", "event_types",
            "countries", "story_id", "snippet", "score", "locations"} <= set(hit)
    assert hit["conflicts"] == ["us-iran-proxy"] and hit["event_types"] == ["airstrike"]
    assert hit["locations"][0]["lat"] == 36.2
    assert "<mark>ceasefire</mark>" in hit["snippet"]
    assert "&lt;Officials&gt; &amp;" in hit["snippet"]  # the text is escaped, marks are not
    assert result.facets["countries"] == [{"value": "SY", "count": 2}, {"value": "TR", "count": 1}]
    assert result.facets["language"] == [{"value": "en", "count": 1}, {"value": "fr", "count": 1}]
    assert result.facets["conflicts"] == [{"value": "us-iran-proxy", "count": 2}]
    assert result.places == [{"name": "Aleppo", "country": "SY", "lat": 36.2, "lon": 37.15,
                              "count": 2}]


def test_filters_are_ored_within_and_anded_across(store: EmbeddedStore) -> None:
    store.upsert([art(1, countries=("SY",)), art(2, countries=("TR",)),
                  art(3, countries=("IQ",), language="ar")])
    ids = lambda r: sorted(h["id"] for h in r.hits)  # noqa: E731
    assert ids(store.search(SearchRequest(countries=("sy", "tr")))) == ["id1", "id2"]
    assert ids(store.search(SearchRequest(countries=("SY", "IQ"), languages=("ar",)))) == ["id3"]
    assert ids(store.search(SearchRequest(query="country:TR OR language:ar"))) == ["id2", "id3"]


def test_date_filter_sort_and_histogram(store: EmbeddedStore) -> None:
    store.upsert([art(i) for i in range(1, 6)] + [art(9, published=None,
                 ingested=datetime(2026, 3, 20, 8, tzinfo=UTC))])
    req = SearchRequest(since=datetime(2026, 3, 2, tzinfo=UTC),
                        until=datetime(2026, 3, 4, 12, tzinfo=UTC), sort="date")
    result = store.search(req)
    assert [h["id"] for h in result.hits] == ["id2", "id1"]  # id3 at 03-04 12:00 is excluded
    assert result.histogram == [
        {"date": "2026-03-02T00:00:00Z", "count": 1},
        {"date": "2026-03-03T00:00:00Z", "count": 1},
        {"date": "2026-03-04T00:00:00Z", "count": 0},
    ]
    everything = store.search(SearchRequest(sort="date"))
    assert everything.hits[0]["id"] == "id9"  # no published date: sorted by ingested
    assert everything.hits[0]["published"] == "2026-03-20T08:00:00Z"
    counts = [b["count"] for b in everything.histogram]
    assert sum(counts) == 6 and len(counts) == 19  # 03-02 .. 03-20, gaps filled with 0


def test_paging(store: EmbeddedStore) -> None:
    store.upsert([art(i) for i in range(1, 8)])
    pages = [store.search(SearchRequest(sort="date", size=3, page=p)) for p in (1, 2, 3)]
    ids = [h["id"] for p in pages for h in p.hits]
    assert ids == [f"id{i}" for i in range(7, 0, -1)]
    assert all(p.total == 7 for p in pages)


def test_collapse_stories(store: EmbeddedStore) -> None:
    store.upsert([art(1, story_id="s1"), art(2, story_id="s1"), art(3, story_id="s1"),
                  art(4, story_id="s2"), art(5)])
    result = store.search(SearchRequest(query="aleppo", collapse_stories=True, sort="date"))
    assert result.total == 5  # articles, not stories
    heads = [(h["id"], h["more_outlets"], len(h["duplicates"])) for h in result.hits]
    assert heads == [("id5", 0, 0), ("id4", 0, 0), ("id3", 2, 2)]
    assert {d["id"] for d in result.hits[2]["duplicates"]} == {"id1", "id2"}


def test_bad_query_raises(store: EmbeddedStore) -> None:
    with pytest.raises(QuerySyntaxError):
        store.search(SearchRequest(query="gaza AND"))
    with pytest.raises(ValueError):
        SearchRequest(page=0)


def test_second_writer_is_refused_readers_are_not(store: EmbeddedStore, tmp_path: Path) -> None:
    store.upsert([art(1)])
    with pytest.raises(StoreError, match="locked"):
        EmbeddedStore(tmp_path / "index", writer=True).upsert([art(2)])
    reader = EmbeddedStore(tmp_path / "index")
    assert reader.search(SearchRequest()).total == 1
    with pytest.raises(StoreError, match="read-only"):
        reader.upsert([art(2)])


def _cli_search(data_dir: Path, *args: str) -> dict:
    env = {**os.environ, "NEWSWIRE_LOG_LEVEL": "WARNING"}
    out = subprocess.run(
        [str(Path(sys.executable).with_name("newswire")), "search", "--json", "--data-dir",
         str(data_dir), *args], capture_output=True, text=True, timeout=60, cwd=REPO, env=env, check=True)
    return json.loads(out.stdout)


def test_reader_processes_see_commits_while_the_writer_is_open(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    writer = open_store(load_settings(data_dir=data_dir), writer=True)
    writer.ensure()
    try:
        writer.upsert([art(1), art(2, countries=("TR",))])
        first = _cli_search(data_dir, "*")
        assert first["total"] == 2
        writer.upsert([art(3, title="Shelling in Kharkiv", countries=("UA",))])
        second = _cli_search(data_dir, "kharkiv", "--country", "ua")
        assert second["total"] == 1
        assert second["hits"][0]["id"] == "id3"
        assert set(second["hits"][0]) >= {"id", "url", "title", "published", "source",
                                          "conflicts", "event_types", "countries"}
        assert "facets" in second
    finally:
        writer.close()


_QUERY_BITS = st.sampled_from(list('ab01é :"()*?~^[]{}+-!&|\\/.,\'') + [
    "AND", "OR", "NOT", " title:", " country:", " actors:", " conflict:"])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_QUERY_BITS, max_size=12).map("".join) | st.text(max_size=30))
def test_any_query_string_searches_or_is_a_syntax_error(store: EmbeddedStore, text: str) -> None:
    if store.count() == 0:
        store.upsert([art(1, title="a b é", text="c d 0")])
    try:
        result = store.search(SearchRequest(query=text))
    except QuerySyntaxError:
        return
    assert result.total in (0, 1)


# ---- snippets on non-ASCII text: tantivy reports byte offsets, the page needs characters

_WORDS = ["café", "frappe", "aérienne", "élèves", "Alep", "حلب", "غارة", "جوية", "قصف",
          "Київ", "обстріл", "München", "naïve", "ceasefire", "talks", "🚀", "🇸🇾", "—", "«", "»",
          "l'armée", "北京", "x"]
_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=40), st.data())
def test_snippet_marks_exactly_the_query_terms_in_non_ascii_text(
        store: EmbeddedStore, words: list[str], data: st.DataObject) -> None:
    searchable = [w for w in words if analyze(w) and len(analyze(w)) == 1]
    assume(searchable)
    term = data.draw(st.sampled_from(searchable))
    text = " ".join(words)
    store.upsert([art(1, title="t", text=text)])
    hits = store.search(SearchRequest(query=f'"{term}"', histogram=None, facets=())).hits
    assert [h["id"] for h in hits] == ["id1"]
    snippet = hits[0]["snippet"]
    marked = [html.unescape(m) for m in _MARK.findall(snippet)]
    assert marked, snippet
    assert all(analyze(m) == analyze(term) for m in marked), (snippet, term)
    # nothing lost or shifted: without the tags the snippet is the (escaped) text itself
    assert html.unescape(_MARK.sub(r"\1", snippet)) in text


# ---- multi-select facets: a facet's counts leave out its own filter


def test_facets_leave_out_their_own_filter(store: EmbeddedStore) -> None:
    store.upsert([art(1, countries=("SY",), language="en"), art(2, countries=("SY",), language="fr"),
                  art(3, countries=("TR",), language="en"), art(4, countries=("IQ",), language="en"),
                  art(5, countries=("IQ",), language="ar")])
    result = store.search(SearchRequest(countries=("SY",), languages=("en",)))
    assert [h["id"] for h in result.hits] == ["id1"] and result.total == 1
    # countries: every filter but countries (language=en) -> the others stay selectable
    assert result.facets["countries"] == [{"value": "IQ", "count": 1}, {"value": "SY", "count": 1},
                                          {"value": "TR", "count": 1}]
    # language: every filter but language (countries=SY)
    assert result.facets["language"] == [{"value": "en", "count": 1}, {"value": "fr", "count": 1}]
    # a facet with no filter of its own, the histogram and the map see all filters
    assert result.facets["source"] == [{"value": "news1.example", "count": 1}]
    assert sum(b["count"] for b in result.histogram) == 1
    assert result.places[0]["count"] == 1
    # a selection that matches nothing still offers the values that would widen it
    none = store.search(SearchRequest(countries=("SY",), languages=("ar",)))
    assert none.total == 0 and {"value": "IQ", "count": 1} in none.facets["countries"]


# ---- cursor paging (search_after)


def _all_pages(store: EmbeddedStore, **kw: object) -> list[str]:
    ids, cursor, first = [], None, True
    while first or cursor:
        result = store.search(SearchRequest(cursor=cursor, **kw))  # type: ignore[arg-type]
        ids += [h["id"] for h in result.hits]
        cursor, first = result.next_cursor, False
        assert len(ids) <= result.total
    return ids


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.integers(1, 7))
def test_date_cursor_pages_give_every_hit_once_in_order(store: EmbeddedStore,
                                                        days: list[int], size: int) -> None:
    # Few distinct timestamps: pages end inside groups of equal dates (ties by id).
    store.upsert([art(i, published=datetime(2026, 3, 1 + d, tzinfo=UTC))
                  for i, d in enumerate(days)])
    try:
        expected = sorted(range(len(days)), key=lambda i: (-days[i], f"id{i}"))
        assert _all_pages(store, sort="date", size=size) == [f"id{i}" for i in expected]
    finally:
        for i in range(len(days)):
            store._get_writer().delete_documents_by_term("id", f"id{i}")
        store._get_writer().commit()


def test_relevance_cursor_pages_match_offset_pages(store: EmbeddedStore) -> None:
    store.upsert([art(i, title=" ".join(["Aleppo"] * (1 + i % 5)) + f" story {i}")
                  for i in range(23)])
    by_offset = [h["id"] for p in range(1, 5)
                 for h in store.search(SearchRequest(query="aleppo", size=6, page=p)).hits]
    assert len(by_offset) == 23
    assert _all_pages(store, query="aleppo", size=6) == by_offset


def test_new_articles_do_not_shift_the_next_page(store: EmbeddedStore) -> None:
    store.upsert([art(i) for i in range(1, 9)])
    for sort in ("date", "relevance"):
        first = store.search(SearchRequest(query="aleppo", sort=sort, size=4))  # type: ignore[arg-type]
        store.upsert([art(20 + len(sort), published=datetime(2026, 4, 1, tzinfo=UTC))])
        second = store.search(SearchRequest(query="aleppo", sort=sort, size=4,  # type: ignore[arg-type]
                                            cursor=first.next_cursor))
        shown = [h["id"] for h in first.hits + second.hits]
        assert len(set(shown)) == 8, (sort, shown)


def test_cursor_of_another_search_or_store_is_refused(store: EmbeddedStore) -> None:
    store.upsert([art(i) for i in range(1, 6)])
    cursor = store.search(SearchRequest(query="aleppo", size=2)).next_cursor
    assert cursor
    for bad in ({"query": "market", "cursor": cursor}, {"query": "aleppo", "cursor": cursor,
                                                         "countries": ("SY",)},
                {"query": "aleppo", "cursor": cursor, "page": 2},
                {"query": "aleppo", "cursor": "bm90IGEgY3Vyc29y"}):
        with pytest.raises(ValueError):
            store.search(SearchRequest(**bad))  # type: ignore[arg-type]
    foreign = Cursor.decode(cursor)
    elastic_made = Cursor("elastic", foreign.sort, (1.0, 5, "x"), 2, foreign.search).encode()
    with pytest.raises(BadCursor):
        store.search(SearchRequest(query="aleppo", cursor=elastic_made))
    last = store.search(SearchRequest(query="aleppo", size=5))
    assert len(last.hits) == 5 and last.next_cursor is None  # nothing follows
