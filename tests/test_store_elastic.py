"""The Elasticsearch store against noida's Elasticsearch API, and parity with the embedded one."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from indexer.elastic import ElasticStore, es_document, index_template
from indexer.embedded import EmbeddedStore
from indexer.store import SearchRequest, SearchStore, StoreUnavailable, open_store
from indexer.synthetic import load_texts, synthetic_articles
from newswire.broker import EmbeddedServer, free_port
from newswire.records import Article, Location
from newswire.settings import load_settings
from tests.conftest import shared_path

pytestmark = pytest.mark.integration

_prefixes = itertools.count()


def art(i: int, **kw: object) -> Article:
    base: dict[str, object] = {
        "id": f"id{i}", "url": f"https://news.example/{i}", "title": f"Shelling in Kharkiv {i}",
        "text": "Artillery hit residential blocks overnight.", "source": "news.example",
        "published": datetime(2026, 2, 1 + i, tzinfo=UTC), "countries": ("UA",),
    }
    base.update(kw)
    return Article(**base)  # type: ignore[arg-type]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def es(noida: EmbeddedServer) -> Elasticsearch:
    assert noida.elasticsearch_url
    return Elasticsearch(noida.elasticsearch_url)


@pytest.fixture
def store(es: Elasticsearch) -> Iterator[ElasticStore]:
    s = ElasticStore(es, f"es{next(_prefixes)}t", clock=Clock(datetime(2026, 1, 15, tzinfo=UTC)))
    s.ensure()
    yield s


def test_open_store_picks_elasticsearch_from_settings(noida: EmbeddedServer) -> None:
    settings = load_settings(search={"elasticsearch_url": noida.elasticsearch_url,
                                     "api_key": "not-logged", "index_prefix": "os1"})
    store = open_store(settings)
    assert isinstance(store, ElasticStore) and isinstance(store, SearchStore)
    assert store.alias == "os1-articles"
    assert "not-logged" not in repr(settings)


def test_ensure_creates_template_monthly_index_and_write_alias(store: ElasticStore,
                                                               es: Elasticsearch) -> None:
    store.ensure()  # idempotent
    template = es.indices.get_index_template(name=store.template)["index_templates"][0]
    props = template["index_template"]["template"]["mappings"]["properties"]
    assert props["geo"]["type"] == "geo_point" and props["countries"]["type"] == "keyword"
    assert props["text"]["fields"]["std"]["analyzer"] == "standard"
    aliases = es.indices.get_alias(name=store.alias)
    assert aliases == {f"{store.alias}-2026.01": {"aliases": {
        store.alias: {"is_write_index": True}}}}
    mapping = es.indices.get_mapping(index=f"{store.alias}-2026.01")
    assert mapping[f"{store.alias}-2026.01"]["mappings"]["properties"]["published"]["type"] \
        == "date"


def test_upsert_idempotent_across_monthly_indices(store: ElasticStore,
                                                  es: Elasticsearch) -> None:
    assert store.upsert([art(1), art(2)]) == []
    store.refresh()  # a month passes (Elasticsearch refreshes every second on its own)
    store.clock.now = datetime(2026, 2, 3, tzinfo=UTC)  # type: ignore[attr-defined]
    assert store.upsert([art(1, title="Corrected: shelling in Kharkiv"), art(3)]) == []
    store.refresh()
    assert store.count() == 3
    january, february = f"{store.alias}-2026.01", f"{store.alias}-2026.02"
    assert es.count(index=january)["count"] == 2  # id1 stayed (and was updated) in January
    assert es.count(index=february)["count"] == 1
    assert es.indices.get_alias(name=store.alias)[february]["aliases"][store.alias][
        "is_write_index"] is True
    assert store.get("id1")["title"] == "Corrected: shelling in Kharkiv"
    assert Article.model_validate(store.get("id3")) == art(3, ingested=Article.model_validate(
        store.get("id3")).ingested)
    assert store.get("nope") is None


def test_a_document_elasticsearch_refuses_is_a_rejection(es: Elasticsearch) -> None:
    prefix = f"es{next(_prefixes)}rej"
    # An index whose mapping disagrees with ours (created before the template applies).
    es.indices.create(index=f"{prefix}-articles-2026.01",
                      mappings={"properties": {"language": {"type": "ip"}}})
    store = ElasticStore(es, prefix, clock=Clock(datetime(2026, 1, 2, tzinfo=UTC)))
    store.ensure()
    rejected = store.upsert([art(1, language=None), art(2, language="en"),
                             art(3, title=None, text="")])
    reasons = {r.id: r.reason for r in rejected}
    assert set(reasons) == {"id2", "id3"}
    assert "language" in reasons["id2"]
    assert reasons["id3"] == "no title, text or summary to index"
    store.refresh()
    assert store.count() == 1


def test_bad_geocodes_are_left_off_the_map_not_the_index() -> None:
    body = es_document(art(1, locations=(Location(name="x", lat=95.0, lon=0.0),
                                         Location(name="Kyiv", lat=50.45, lon=30.52))))
    assert body["geo"] == [{"lat": 50.45, "lon": 30.52}]
    assert set(body) <= set(index_template("p")["template"]["mappings"]["properties"])


def test_unreachable_elasticsearch_raises_store_unavailable() -> None:
    client = Elasticsearch(f"http://127.0.0.1:{free_port()}", max_retries=0, request_timeout=2)
    store = ElasticStore(client, "down")
    with pytest.raises(StoreUnavailable):
        store.ensure()
    with pytest.raises(StoreUnavailable):
        store.upsert([art(1)])
    with pytest.raises(StoreUnavailable):
        store.search(SearchRequest(query="kharkiv"))


# ---- parity: the same requests give the same answers on both stores

PARITY_QUERIES = [
    "*", "police", "killed police", '"armed forces"', "drug OR cartel", "guerrilla -colombia",
    "NOT police", "title:attack", "kidnap* OR massacr*", "country:SY", "U.S.",
    "conflict:* -event_type:*", 'actors:"rapid support forces" OR actors:hamas',
    "(police OR army) AND (killed OR injured) AND NOT country:IN",
]


@pytest.fixture(scope="module")
def both(noida: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory,
         ) -> tuple[EmbeddedStore, ElasticStore]:
    corpus = list(synthetic_articles(load_texts(shared_path("conflict-dev")), 160, seed=5))
    embedded = EmbeddedStore(Path(tmp_path_factory.mktemp("parity")) / "index", writer=True)
    embedded.ensure()
    assert embedded.upsert(corpus) == []
    elastic = ElasticStore(Elasticsearch(noida.elasticsearch_url), "parity")
    elastic.ensure()
    assert elastic.upsert(corpus) == []
    elastic.refresh()
    return embedded, elastic


@pytest.mark.parametrize("query", PARITY_QUERIES)
def test_same_hits_facets_and_histogram(query: str,
                                        both: tuple[EmbeddedStore, ElasticStore]) -> None:
    embedded, elastic = both
    req = SearchRequest(query=query, size=200, facets=("conflicts", "event_types", "countries",
                                                       "source", "language", "actors"))
    a, b = embedded.search(req), elastic.search(req)
    assert a.total == b.total
    assert {h["id"] for h in a.hits} == {h["id"] for h in b.hits}
    assert a.facets == b.facets
    assert a.histogram == b.histogram
    assert a.places == b.places


def test_same_order_by_date_filters_and_collapse(both: tuple[EmbeddedStore, ElasticStore]) -> None:
    embedded, elastic = both
    req = SearchRequest(query="police OR army", sort="date", size=15, page=2,
                        countries=("SY", "CO", "IN"), since=datetime(2026, 1, 10, tzinfo=UTC),
                        until=datetime(2026, 2, 20, tzinfo=UTC), histogram="week")
    a, b = embedded.search(req), elastic.search(req)
    assert a.total == b.total > 15
    assert [h["id"] for h in a.hits] == [h["id"] for h in b.hits]
    assert a.histogram == b.histogram
    collapsed = SearchRequest(query="*", sort="date", size=30, collapse_stories=True)
    a, b = embedded.search(collapsed), elastic.search(collapsed)
    heads = lambda r: [(h["id"], h["more_outlets"]) for h in r.hits]
    assert heads(a) == heads(b)
    assert any(h["more_outlets"] for h in a.hits)
    for hit in b.hits:
        assert hit["snippet"] and "<script" not in hit["snippet"]


FILTERED = [
    {"countries": ("SY", "CO")},
    {"countries": ("IN",), "languages": ("en",), "conflicts": ("colombia-armed-groups",)},
    {"event_types": ("kidnapping", "arrest"), "sources": ("insightcrime.org",)},
    {"languages": ("xx",)},  # matches nothing: the facets still offer the way out
]


@pytest.mark.parametrize("filters", FILTERED)
def test_same_multi_select_facets(filters: dict[str, tuple[str, ...]],
                                  both: tuple[EmbeddedStore, ElasticStore]) -> None:
    embedded, elastic = both
    req = SearchRequest(query="police OR army OR killed", size=50, **filters)  # type: ignore[arg-type]
    a, b = embedded.search(req), elastic.search(req)
    assert a.total == b.total
    assert {h["id"] for h in a.hits} == {h["id"] for h in b.hits}
    assert a.facets == b.facets
    assert a.histogram == b.histogram and a.places == b.places
    # each filtered facet counts as if its own filter were not there
    for name, field in (("countries", "countries"), ("languages", "language"),
                        ("conflicts", "conflicts"), ("event_types", "event_types"),
                        ("sources", "source")):
        if name in filters:
            without = SearchRequest(query=req.query, size=0,
                                    **{k: v for k, v in filters.items() if k != name})  # type: ignore[arg-type]
            assert a.facets[field] == elastic.search(without).facets[field]


@pytest.mark.parametrize("sort", ["date", "relevance"])
def test_cursor_pages_walk_every_hit_once_on_both(sort: str,
                                                  both: tuple[EmbeddedStore, ElasticStore]) -> None:
    def walk(store: SearchStore) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            result = store.search(SearchRequest(query="police OR army", sort=sort,  # type: ignore[arg-type]
                                                size=7, cursor=cursor, countries=("SY", "IN")))
            ids += [h["id"] for h in result.hits]
            cursor = result.next_cursor
            if cursor is None:
                return ids

    embedded, elastic = both
    total = elastic.search(SearchRequest(query="police OR army", countries=("SY", "IN"),
                                         size=0)).total
    a, b = walk(embedded), walk(elastic)
    assert len(b) == len(set(b)) == total > 7 * 2
    assert len(a) == len(set(a)) == total
    if sort == "date":  # (published desc, id asc) on both, however the pages fall
        assert a == b
    else:
        assert set(a) == set(b)
    with pytest.raises(ValueError):  # an Elasticsearch cursor means nothing to the embedded store
        first = elastic.search(SearchRequest(query="police OR army", sort=sort, size=3))  # type: ignore[arg-type]
        embedded.search(SearchRequest(query="police OR army", sort=sort, size=3,  # type: ignore[arg-type]
                                      cursor=first.next_cursor))


def test_same_answer_shape_with_locations_on_both(
        both: tuple[EmbeddedStore, ElasticStore]) -> None:
    """The embedded index keeps places as one keyword per location and has neither a
    geo_point nor monthly indices; the answers must not show it: the same JSON, hit by hit
    (locations included), the same map places, the same keys."""
    embedded, elastic = both
    req = SearchRequest(query="*", sort="date", size=60, places=30, histogram="day",
                        facets=("conflicts", "countries"))
    a, b = embedded.search(req).to_json(), elastic.search(req).to_json()
    assert set(a) == set(b)
    located = [h for h in a["hits"] if h["locations"]]
    assert len(located) >= 10 and a["places"]  # the corpus puts things on the map
    strip = lambda hit: {k: v for k, v in hit.items() if k not in ("score", "snippet")}
    assert [strip(h) for h in a["hits"]] == [strip(h) for h in b["hits"]]
    assert [set(h) for h in a["hits"]] == [set(h) for h in b["hits"]]
    for name in ("total", "facets", "histogram", "places", "page", "size"):
        assert a[name] == b[name], name
    assert set(a["places"][0]) == {"name", "country", "lat", "lon", "count"}
    assert (a["next_cursor"] is None) == (b["next_cursor"] is None)
    doc = located[0]["id"]
    assert embedded.get(doc)["locations"] == elastic.get(doc)["locations"]
