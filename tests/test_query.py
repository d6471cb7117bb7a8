"""The query language: parsing, errors, in-memory matching and the alert pre-filter."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.query import (
    And,
    Exists,
    Keyword,
    MatchAll,
    Not,
    Or,
    Prefix,
    QuerySyntaxError,
    Text,
    analyze,
    doc_terms,
    matches,
    parse,
    required_terms,
    to_elasticsearch,
    to_string,
)
from newswire.records import Article, ConflictTag


def test_bare_words_default_to_and_and_are_analysed() -> None:
    q = parse("Airstrikes  Syria")
    assert q == And((Text(None, ("airstrik",), "Airstrikes"), Text(None, ("syria",), "Syria")))


def test_phrase_or_not_and_parentheses() -> None:
    q = parse('"ceasefire talks" OR (truce -gaza)')
    assert q == Or((
        Text(None, ("ceasefir", "talk"), "ceasefire talks"),
        And((Text(None, ("truce",), "truce"), Not(Text(None, ("gaza",), "gaza")))),
    ))
    assert parse("NOT gaza") == Not(Text(None, ("gaza",), "gaza"))
    assert parse("+gaza") == Text(None, ("gaza",), "gaza")


def test_implicit_and_binds_looser_than_or() -> None:
    q = parse("gaza ceasefire OR truce")
    assert isinstance(q, And) and isinstance(q.items[1], Or)


def test_fields_aliases_and_keyword_normalisation() -> None:
    assert parse("country:sy") == Keyword("countries", "SY")
    assert parse("conflict:Ukraine-Russia") == Keyword("conflicts", "ukraine-russia")
    assert parse("event_type:airstrike") == Keyword("event_types", "airstrike")
    assert parse('actors:"Israel Defense Forces"') == Keyword("actors", "israel defense forces")
    assert parse("source:WWW.BBC.CO.UK") == Keyword("source", "www.bbc.co.uk")
    assert parse("title:(gaza OR rafah)") == Or(
        (Text("title", ("gaza",), "gaza"), Text("title", ("rafah",), "rafah")))
    assert parse("conflict:*") == Exists("conflicts")


def test_star_prefix_and_empty() -> None:
    assert parse("*") == MatchAll()
    assert parse("") == MatchAll()
    assert parse("* AND gaza") == Text(None, ("gaza",), "gaza")
    assert parse("syr*") == Prefix(None, "syr")


def test_word_with_punctuation_is_a_phrase() -> None:
    assert parse("U.S.") == Text(None, ("u", "s"), "U.S.")


@pytest.mark.parametrize(("query", "message"), [
    ("gaza OR", "ends too early"),
    ("(gaza", "ends too early"),
    ("colour:red", "unknown field 'colour'"),
    ("gaza~2", "fuzzy"),
    ('"a b"~3', "proximity"),
    ("gaza^2", "boost"),
    ("[a TO b]", "ranges"),
    ("te?t", "wildcard"),
    ("g*za", "wildcard"),
    ("title:*", "only keyword fields"),
    ("country:(sy OR *x)", "wildcards"),
    ("---", "ends too early"),
    ("– —", "nothing to search"),
    ("title:a:b", "nested fields"),
    ("0^.", "cannot parse"),  # luqum itself trips over this one (decimal error)
])
def test_bad_queries_raise_clear_errors(query: str, message: str) -> None:
    with pytest.raises(QuerySyntaxError, match=message):
        parse(query)


ARTICLE = Article(
    id="k1", url="https://example.org/a", title="Airstrikes hit Aleppo",
    text="The U.S.-led coalition said ceasefire talks in Doha resumed on Tuesday.",
    source="example.org", countries=("SY", "US"), language="en",
    conflicts=(ConflictTag(id="us-iran-proxy", name="US-Iran proxy", score=0.9),),
)


@pytest.mark.parametrize(("query", "expected"), [
    ("airstrike", True),
    ("AIRSTRIKES aleppo", True),
    ("airstrikes damascus", False),
    ("airstrikes OR damascus", True),
    ('"ceasefire talks"', True),
    ('"talks ceasefire"', False),
    ('"U.S. led coalition"', True),
    ("title:ceasefire", False),
    ("text:ceasefire", True),
    ("country:sy", True),
    ("country:IR", False),
    ("conflict:us-iran-proxy -country:ir", True),
    ("NOT conflict:us-iran-proxy", False),
    ("conflict:*", True),
    ("event_type:*", False),
    ("ceasef*", True),
    ("title:ceasef*", False),
    ("*", True),
    ("source:EXAMPLE.org language:EN", True),
])
def test_matches(query: str, expected: bool) -> None:
    assert matches(parse(query), ARTICLE) is expected
    assert matches(query, ARTICLE.model_dump(mode="json")) is expected


def test_required_terms() -> None:
    assert required_terms(parse("airstrikes syria")) in ({"airstrik"}, {"syria"})
    assert required_terms(parse("gaza OR country:il")) == {"gaza", "countries=IL"}
    assert required_terms(parse("gaza OR NOT rafah")) is None
    assert required_terms(parse("*")) is None
    assert required_terms(parse("NOT gaza")) is None
    assert required_terms(parse("syr* gaza")) == {"gaza"}
    assert "countries=SY" in doc_terms(ARTICLE) and "airstrik" in doc_terms(ARTICLE)


def test_to_elasticsearch_shapes() -> None:
    body = to_elasticsearch(parse("gaza -country:il"))
    assert body["bool"]["must_not"] == [{"term": {"countries": "IL"}}]
    assert to_elasticsearch(parse("NOT gaza"))["bool"]["must"] == [{"match_all": {}}]
    assert to_elasticsearch(parse('title:"two words"')) == {
        "match_phrase": {"title": {"query": "two words", "boost": 2.0}}}


# ---- property tests: the parser never crashes on garbage, and canonical strings round-trip

words = st.sampled_from(["gaza", "Syria", "U.S.", "ceasefire", "talks", "AND", "x-y", "é",
                         "country:sy", "conflict:israel-gaza", '"two words"', "syr*", "*"])


@st.composite
def queries(draw: st.DrawFn) -> str:
    parts = draw(st.lists(words, min_size=1, max_size=5))
    ops = draw(st.lists(st.sampled_from([" ", " AND ", " OR ", " -", " NOT "]),
                        min_size=len(parts) - 1, max_size=len(parts) - 1))
    out = parts[0]
    for op, part in zip(ops, parts[1:], strict=True):
        out += op + part
    return draw(st.sampled_from([out, f"({out})", f"title:({out})"]))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_crashes_on_any_text(text: str) -> None:
    try:
        result = parse(text)
    except QuerySyntaxError as exc:
        assert str(exc)
    else:
        assert matches(result, ARTICLE) in (True, False)


@settings(max_examples=300, deadline=None)
@given(queries())
def test_canonical_string_round_trips(text: str) -> None:
    try:
        q = parse(text)
    except QuerySyntaxError:
        return
    assert parse(to_string(q)) == q


@settings(max_examples=200, deadline=None)
@given(queries(), st.sampled_from(["gaza truce talks", "Syria ceasefire", "U.S. x y é"]),
       st.sampled_from([(), ("SY",), ("IL", "PS")]))
def test_required_terms_is_a_sound_prefilter(text: str, body: str,
                                             countries: tuple[str, ...]) -> None:
    try:
        q = parse(text)
    except QuerySyntaxError:
        return
    doc = {"id": "d", "url": "u", "title": body.split()[0], "text": body,
           "countries": countries, "conflicts": [{"id": "israel-gaza"}]}
    needed = required_terms(q)
    if needed is not None and matches(q, doc):
        assert needed & doc_terms(doc)
    # with word prefixes as terms (the alerts rule index): still sound when every leading
    # part of every word is a document term
    with_prefixes = required_terms(q, prefix_term=lambda p: "^" + p.prefix)
    if with_prefixes is not None and matches(q, doc):
        words = doc_terms(doc)
        assert with_prefixes & (words | {"^" + w[:i] for w in words for i in range(1, len(w) + 1)})


def test_required_terms_prefix_terms_and_cost() -> None:
    def pre(p: Prefix) -> str:
        return "^" + p.prefix

    assert required_terms(parse("kidnap* OR massacr*")) is None
    assert required_terms(parse("kidnap* OR massacr*"), prefix_term=pre) == {"^kidnap",
                                                                               "^massacr"}
    both = parse("country:SY airstrikes")
    keywords_dear = lambda terms: 8 if any("=" in t for t in terms) else 1  # noqa: E731
    keywords_cheap = lambda terms: 1 if any("=" in t for t in terms) else 8  # noqa: E731
    assert required_terms(both, cost=keywords_dear) == {"airstrik"}
    assert required_terms(both, cost=keywords_cheap) == {"countries=SY"}


def test_analyze_is_lowercase_stemmed_split_on_punctuation() -> None:
    assert analyze("Running cities, Kyiv’s São-Paulo") == [
        "run", "citi", "kyiv", "s", "são", "paulo"]
