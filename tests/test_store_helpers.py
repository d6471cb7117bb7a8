"""Pure helpers shared by both stores: histogram gap filling, story collapsing, facets, places."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.store import (
    char_ranges,
    INTERVALS,
    MAX_HISTOGRAM_BUCKETS,
    SearchRequest,
    collapse,
    facet_list,
    histogram_buckets,
    mark_ranges,
    place_keys,
    place_list,
    plain_snippet,
    validate,
)
from newswire.records import Article, Location

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
days = st.integers(min_value=20_000, max_value=20_400)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(days, st.integers(1, 50), max_size=30),
       st.sampled_from(sorted(INTERVALS)))
def test_histogram_keeps_counts_and_fills_gaps(counts_by_day: dict[int, int],
                                               interval: str) -> None:
    step = INTERVALS[interval]
    counts: dict[datetime, int] = {}
    for day, n in counts_by_day.items():
        t = EPOCH + timedelta(days=day)
        start = EPOCH + ((t - EPOCH) // step) * step
        counts[start] = counts.get(start, 0) + n
    buckets = histogram_buckets(counts, interval, None, None)
    assert sum(b["count"] for b in buckets) == sum(counts.values())
    dates = [datetime.fromisoformat(b["date"].replace("Z", "+00:00")) for b in buckets]
    if counts and (max(counts) - min(counts)) / step <= MAX_HISTOGRAM_BUCKETS:
        assert all(b - a == step for a, b in zip(dates, dates[1:], strict=False))
    else:  # too many buckets to fill: the non-empty ones, in order
        assert all(b["count"] > 0 for b in buckets) and dates == sorted(dates)


def test_histogram_spans_the_requested_range() -> None:
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
    buckets = histogram_buckets({datetime(2026, 3, 2, tzinfo=UTC): 3}, "day", since, until)
    assert [b["count"] for b in buckets] == [0, 3, 0]
    assert histogram_buckets({}, "day", None, None) == []


hits_strategy = st.lists(st.tuples(st.integers(0, 40), st.sampled_from([None, "s1", "s2", "s3"])),
                         max_size=40, unique_by=lambda t: t[0])


@settings(max_examples=200, deadline=None)
@given(hits_strategy, st.integers(0, 5), st.integers(1, 10))
def test_collapse_shows_each_story_once_in_order(raw: list[tuple[int, str | None]], offset: int,
                                                 size: int) -> None:
    hits = [{"id": f"d{i}", "story_id": s, "url": "u", "title": "t", "source": "x"}
            for i, s in raw]
    out = collapse(hits, {}, offset, size)
    stories = [h["story_id"] for h in out if h["story_id"]]
    assert len(stories) == len(set(stories))
    assert len(out) <= size
    order = [h["id"] for h in hits]
    assert [order.index(h["id"]) for h in out] == sorted(order.index(h["id"]) for h in out)
    for head in out:
        assert head["more_outlets"] >= len(head["duplicates"])


def test_collapse_uses_exact_story_counts() -> None:
    hits = [{"id": "a", "story_id": "s"}, {"id": "b", "story_id": "s"}]
    assert collapse(hits, {"s": 7}, 0, 10)[0]["more_outlets"] == 6


def test_facets_sorted_by_count_then_value_and_cut() -> None:
    assert facet_list([("b", 2), ("a", 2), ("c", 5), ("z", 0)], 2) == [
        {"value": "c", "count": 5}, {"value": "a", "count": 2}]


def test_places_round_trip_and_skip_bad_points() -> None:
    article = Article(id="x", url="u", title="t", locations=(
        Location(name="Gaza City", country="PS", lat=31.5, lon=34.47),
        Location(name="Nowhere|x", country=None, lat=91.0, lon=0.0),
        Location(name="Pipe|Town", country=None, lat=1.0, lon=2.0)))
    keys = place_keys(article)
    assert len(keys) == 2
    places = place_list([(k, 3) for k in keys], 10)
    assert {(p["name"], p["country"], p["lat"], p["lon"]) for p in places} == {
        ("Gaza City", "PS", 31.5, 34.47), ("Pipe Town", None, 1.0, 2.0)}


def test_snippets_escape_text_and_mark_ranges() -> None:
    assert mark_ranges("a <b> c", [(4, 5)]) == "a &lt;b<mark>&gt;</mark> c"
    assert plain_snippet("x " * 300).endswith("…")
    assert plain_snippet("<i>") == "&lt;i&gt;"


def test_validation_and_request_bounds() -> None:
    assert validate(Article(id="x", url="u", summary="only a summary")) is None
    assert validate(Article(id=" ", url="u", title="t")) == "missing id"
    req = SearchRequest(since=datetime(2026, 1, 1), countries=("sy", " "), sources=("BBC.co.uk",))
    assert req.since is not None and req.since.tzinfo is UTC
    assert req.filters() == {"countries": ("SY",), "source": ("bbc.co.uk",)}
    for bad in ({"size": 501}, {"page": 100, "size": 200}, {"sort": "best"},
                {"histogram": "year"}, {"facets": ("colour",)}, {"places": -1}):
        try:
            SearchRequest(**bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.data())
def test_char_ranges_turn_utf8_byte_offsets_into_character_offsets(text: str,
                                                                    data: st.DataObject) -> None:
    n = len(text)
    start = data.draw(st.integers(0, n))
    end = data.draw(st.integers(start, n))
    as_bytes = (len(text[:start].encode()), len(text[:end].encode()))
    assert char_ranges(text, [as_bytes]) == [(start, end)]
