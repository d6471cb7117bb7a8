"""matches() in memory == the embedded index, query by query, on a corpus of real texts."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.embedded import EmbeddedStore
from indexer.query import matches, parse, prepare
from indexer.store import SearchRequest
from indexer.synthetic import load_texts, synthetic_articles
from newswire.records import Article
from tests.conftest import shared_path

QUERIES = [
    "*",
    "police",
    "killed police",
    "killing",  # stems to "kill", like "kills"
    "drug OR cartel",
    "guerrilla -colombia",
    "NOT police",
    '"armed forces"',
    '"national liberation"',
    '"security forces" OR "armed men"',
    "title:attack",
    "text:(bomb OR bombing OR bombs)",
    "country:SY",
    "country:co conflict:colombia-armed-groups",
    "conflict:* -event_type:*",
    "actors:hamas OR actors:\"rapid support forces\"",
    "source:www.bbc.co.uk music",
    "language:fr",
    "kidnap* OR massacr*",
    "terror*",
    "U.S.",
    "president (election OR vote) -minister",
    "(police OR army) AND (killed OR injured) AND NOT country:IN",
    "muc OR farabundo",
    "El Salvador",
    "story_id:story-11-0 OR story:story-11-1",
]


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    texts = load_texts(shared_path("conflict-dev"))
    return list(synthetic_articles(texts, 450, seed=11))


@pytest.fixture(scope="module")
def store(corpus: list[Article], tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    s = EmbeddedStore(Path(tmp_path_factory.mktemp("eq")) / "index", writer=True)
    s.ensure()
    for i in range(0, len(corpus), 200):
        assert s.upsert(corpus[i: i + 200]) == []
    s.refresh()
    return s


def _index_ids(store: EmbeddedStore, query: str) -> set[str]:
    result = store.search(SearchRequest(query=query, size=500, facets=(), histogram=None))
    ids = {h["id"] for h in result.hits}
    assert result.total == len(ids), "corpus queries must fit in one page"
    return ids


@pytest.fixture(scope="module")
def expected(corpus: list[Article]) -> dict[str, set[str]]:
    """Each query's matches, by filtering the corpus in memory."""
    prepared = [(a.id, prepare(a)) for a in corpus]
    return {q: {id_ for id_, doc in prepared if matches(parse(q), doc)} for q in QUERIES}


@pytest.mark.parametrize("query", QUERIES)
def test_index_and_matches_agree(query: str, expected: dict[str, set[str]],
                                 store: EmbeddedStore) -> None:
    assert _index_ids(store, query) == expected[query]


def test_corpus_queries_are_discriminating(corpus: list[Article],
                                           expected: dict[str, set[str]]) -> None:
    # The equivalence above is only meaningful if the queries split the corpus.
    sizes = [len(expected[q]) for q in QUERIES]
    assert sum(0 < s < len(corpus) for s in sizes) >= len(QUERIES) - 1
