"""The alert matcher: a rule fires for exactly the articles the search returns."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.embedded import EmbeddedStore
from indexer.query import QuerySyntaxError
from indexer.store import SearchRequest
from indexer.synthetic import load_texts, synthetic_articles
from newswire.records import Article, Casualties, ConflictTag, EventTypeTag
from processors.alerts.matcher import RuleIndex, rule_matches
from processors.alerts.rules import Rule, RuleFilters
from tests.conftest import shared_path

# (query, filters) pairs: text, phrases, fields, negation, prefixes, filters alone
RULES = [
    ("police", {}),
    ("killed police", {}),
    ("drug OR cartel", {"countries": ("co", "MX")}),
    ("guerrilla -colombia", {}),
    ("NOT police", {"languages": ("fr",)}),
    ('"armed forces"', {}),
    ('"security forces" OR "armed men"', {"conflicts": ("colombia-armed-groups",)}),
    ("title:attack", {}),
    ("kidnap* OR massacr*", {}),
    ("(police OR army) AND (killed OR injured) AND NOT country:IN", {}),
    ("", {"conflicts": ("myanmar-civil-war",)}),
    ("", {"event_types": ("airstrike", "shelling"), "countries": ("SY",)}),
    ("*", {"sources": ("www.bbc.co.uk",)}),
    ("president (election OR vote)", {"sources": ("WWW.BBC.CO.UK", "apnews.com")}),
    ("El Salvador", {"languages": ("en",)}),
    ("conflict:* -event_type:*", {}),
    ("government", {"conflicts": ("sudan-civil-war", "israel-gaza"), "event_types": ("protest",)}),
]


def rule(query: str, name: str = "r", **filters: object) -> Rule:
    return Rule(name=name, query=query, filters=RuleFilters(**filters))  # type: ignore[arg-type]


def article(**kw: object) -> Article:
    base: dict[str, object] = {"id": "a1", "url": "https://example.org/a", "title": "Headline",
                               "text": "", "source": "example.org"}
    return Article(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    texts = load_texts(shared_path("conflict-dev"))
    return list(synthetic_articles(texts, 400, seed=23))


@pytest.fixture(scope="module")
def store(corpus: list[Article], tmp_path_factory: pytest.TempPathFactory) -> EmbeddedStore:
    s = EmbeddedStore(Path(tmp_path_factory.mktemp("alerts-eq")) / "index", writer=True)
    s.ensure()
    assert s.upsert(corpus) == []
    s.refresh()
    return s


def test_rules_fire_for_exactly_what_the_search_returns(corpus: list[Article],
                                                         store: EmbeddedStore) -> None:
    rules = [rule(q, name=f"r{i}", **f) for i, (q, f) in enumerate(RULES)]
    index = RuleIndex(rules)
    fired: dict[str, set[str]] = {r.id: set() for r in rules}
    for art in corpus:
        for hit in index.match(art):
            fired[hit.id].add(art.id)
    nonempty = 0
    for r in rules:
        f = r.filters
        result = store.search(SearchRequest(
            query=r.query or "*", conflicts=f.conflicts, event_types=f.event_types,
            countries=f.countries, sources=f.sources, languages=f.languages, size=500,
            facets=(), histogram=None))
        assert result.total < 500
        expected = {h["id"] for h in result.hits}
        assert fired[r.id] == expected, (r.query, r.filters)
        nonempty += bool(expected) and expected != {a.id for a in corpus}
    assert nonempty >= len(rules) - 3  # the corpus really exercises the rules


def test_most_rules_are_indexed_by_required_terms() -> None:
    index = RuleIndex(rule(q, name=f"r{i}", **f) for i, (q, f) in enumerate(RULES))
    # only "conflict:* -event_type:*" (no required term, no filter) is checked against every
    # article; "NOT police" is filed under language=fr, "kidnap* OR massacr*" by its prefixes
    assert index.unindexed == 1


seed_rule = rule("Iran AND (militia OR IRGC)", conflicts=("us-iran-proxy",))


def test_seed_story_matches_the_acceptance_rule(seed_story: str) -> None:
    tagged = article(text=seed_story, conflicts=(ConflictTag(id="us-iran-proxy", name="x",
                                                             score=0.9),))
    assert rule_matches(seed_rule, tagged)
    assert not rule_matches(seed_rule, tagged.model_copy(update={"conflicts": ()}))
    assert not rule_matches(seed_rule, article(text="Sudan: fighting in El Fasher",
                                               conflicts=tagged.conflicts))


def test_casualty_filters_apply_on_top_of_the_query() -> None:
    r = rule("", conflicts=("myanmar-civil-war",), min_killed=10)
    tags = (ConflictTag(id="myanmar-civil-war", name="Myanmar", score=1.0),)
    assert rule_matches(r, article(conflicts=tags, casualties=Casualties(killed=12)))
    assert not rule_matches(r, article(conflicts=tags, casualties=Casualties(killed=9)))
    assert not rule_matches(r, article(conflicts=tags))
    both = rule("", min_casualties=5)
    assert rule_matches(both, article(casualties=Casualties(killed=2, injured=3)))
    assert not rule_matches(both, article(casualties=Casualties(killed=2, injured=2)))


def test_event_type_filter_uses_tag_ids_and_is_case_insensitive() -> None:
    r = rule("strike", event_types=("AIRSTRIKE",))
    ev = (EventTypeTag(id="airstrike", event_type="Airstrike", score=0.8),)
    assert rule_matches(r, article(text="An air strike hit", event_types=ev))
    assert not rule_matches(r, article(text="An air strike hit"))


def test_paused_and_removed_rules_do_not_fire() -> None:
    r = rule("ceasefire")
    index = RuleIndex([r])
    art = article(text="A ceasefire was agreed")
    assert [x.id for x in index.match(art)] == [r.id]
    index.add(r.model_copy(update={"paused": True}))
    assert index.match(art) == [] and len(index) == 0
    index.add(r)
    index.remove(r.id)
    assert index.match(art) == []


def test_word_rules_keep_firing_as_other_rules_come_and_go() -> None:
    # with only facet rules the text is not analysed at all; a word rule brings that back,
    # and removing another word rule must not turn it off
    sudan = rule("conflict:sudan-civil-war", name="facet")
    strike, drone = rule("strike", name="strike"), rule("drone", name="drone")
    index = RuleIndex([sudan, strike, drone])
    art = article(text="A drone strike hit the market",
                  conflicts=(ConflictTag(id="sudan-civil-war", name="Sudan", score=1.0),))
    assert {r.id for r in index.match(art)} == {sudan.id, strike.id, drone.id}
    index.remove(drone.id)
    assert {r.id for r in index.match(art)} == {sudan.id, strike.id}
    index.add(strike.model_copy(update={"paused": True}))
    assert [r.id for r in index.match(art)] == [sudan.id]
    index.add(drone)
    assert {r.id for r in index.match(art)} == {sudan.id, drone.id}


def test_a_bad_query_is_refused_when_added() -> None:
    with pytest.raises(QuerySyntaxError):
        RuleIndex([rule("strike~2")])


# -------------------------------------------------------------- property: index == brute force

WORDS = ["strike", "strikes", "drone", "militia", "iran", "sudan", "darfur", "ceasefire",
         "killed", "army"]
word = st.sampled_from(WORDS)
leaf = st.one_of(word, word.map(lambda w: f"title:{w}"), word.map(lambda w: w[:3] + "*"),
                 st.sampled_from(["country:SY", "conflict:sudan-civil-war", "conflict:*"]))
query = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" AND ", " OR ", " "]), inner).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"),
        inner.map(lambda q: f"NOT {q}")),
    max_leaves=5)
filters = st.fixed_dictionaries({}, optional={
    "conflicts": st.lists(st.sampled_from(["sudan-civil-war", "us-iran-proxy"]), min_size=1,
                          max_size=2).map(tuple),
    "countries": st.lists(st.sampled_from(["SY", "sd", "IR"]), min_size=1, max_size=2).map(tuple),
    "min_killed": st.integers(0, 20),
})
articles = st.builds(
    lambda title, text, conflicts, countries, killed: article(
        title=" ".join(title), text=" ".join(text),
        conflicts=tuple(ConflictTag(id=c, name=c, score=1.0) for c in conflicts),
        countries=tuple(countries), casualties=Casualties(killed=killed)),
    st.lists(word, max_size=4), st.lists(word, max_size=8),
    st.lists(st.sampled_from(["sudan-civil-war", "us-iran-proxy"]), max_size=2, unique=True),
    st.lists(st.sampled_from(["SY", "SD", "IR"]), max_size=2, unique=True),
    st.none() | st.integers(0, 30))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(query, filters), min_size=1, max_size=8), articles)
def test_indexed_matching_equals_checking_every_rule(specs: list[tuple[str, dict]],
                                                     art: Article) -> None:
    rules = [rule(q, name=f"r{i}", **f) for i, (q, f) in enumerate(specs)]
    got = {r.id for r in RuleIndex(rules).match(art)}
    assert got == {r.id for r in rules if rule_matches(r, art)}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(query, filters), min_size=1, max_size=8),
       st.lists(st.integers(0, 7), max_size=6), articles)
def test_matching_after_removals_equals_checking_the_rules_left(
        specs: list[tuple[str, dict]], removed: list[int], art: Article) -> None:
    # the index skips analysing the text while no rule left needs a word: removals must
    # keep that count right, or a word rule left behind would stop firing
    rules = [rule(q, name=f"r{i}", **f) for i, (q, f) in enumerate(specs)]
    index = RuleIndex(rules)
    for i in removed:
        if i < len(rules):
            index.remove(rules[i].id)
    left = [r for r in rules if r.id in index]
    assert {r.id for r in index.match(art)} == {r.id for r in left if rule_matches(r, art)}
