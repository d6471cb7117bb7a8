"""The one query language of newswire: used by search (both stores) and by alerts.

Syntax (Lucene-like, parsed with ``luqum`` into a small frozen AST of our own):

- ``airstrikes syria``: bare words; **the default operator is AND** (every word must match,
  what people expect of news search). A word matches the title or the text.
- ``"ceasefire talks"``: a phrase (consecutive words, after analysis).
- ``a AND b``, ``a OR b``, ``NOT a``, ``+a`` (= required), ``-a`` (= NOT a), parentheses.
  Precedence: NOT, then AND, then OR, then the implicit AND of juxtaposed words, so
  ``gaza ceasefire OR truce`` means ``gaza AND (ceasefire OR truce)``.
- ``field:value`` and ``field:(a OR b)``, ``field:"two words"``. Text fields: ``title``, ``text``.
  Keyword fields (exact value, normalised): ``source``, ``feed``, ``language`` (alias ``lang``),
  ``conflicts`` (``conflict``), ``event_types`` (``event_type``), ``actors`` (``actor``),
  ``countries`` (``country``), ``story_id`` (``story``), ``id``.
- ``field:*``: the keyword field has any value (``conflict:*`` = tagged with some conflict).
- ``syr*``: a word prefix (matched against the analysed terms).
- ``*`` alone: everything.

Fuzzy (``~``), proximity, boosts (``^``), ranges and ``?`` wildcards are refused with a
clear :class:`QuerySyntaxError` (dates are filtered with ``since``/``until``, not in the query).

Analysis, identical everywhere: text is split on every non-alphanumeric character, lowercased
and stemmed with the Snowball English (Porter2) stemmer, no stop words. The embedded tantivy
index registers :func:`text_analyzer` under :data:`ANALYZER_NAME`; :func:`matches` uses the
very same tantivy analyzer object in Python; Elasticsearch gets the equivalent custom analyzer
(pattern tokenizer ``[^\\p{L}\\p{N}]+`` + lowercase + snowball English), see ``indexer.elastic``.

Keyword values are normalised by :func:`normalize_keyword` both when a document is stored and
when a query is parsed (countries upper-case, everything else but ids/feeds lower-case).

Public API (for the search API and the alerts matcher):

- ``parse(q) -> Query`` (raises ``QuerySyntaxError``),
- ``matches(query, doc) -> bool`` where ``doc`` is an Article, an Article-shaped mapping or a
  :class:`PreparedDoc` (``prepare(doc)`` once when testing many queries against one document),
- ``required_terms(query) -> set[str] | None`` and ``doc_terms(doc) -> frozenset[str]``: if
  ``required_terms`` is not None, a document can only match when the two sets intersect
  (percolator-style pre-filter for alert rules),
- ``to_tantivy(query, schema)`` and ``to_elasticsearch(query)`` compilers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import tantivy
from luqum import tree
from luqum.exceptions import ParseError
from luqum.parser import parser as _luqum_parser

ANALYZER_NAME = "newswire_en"
TEXT_FIELDS: tuple[str, ...] = ("title", "text")
KEYWORD_FIELDS: tuple[str, ...] = (
    "id", "source", "feed", "language", "conflicts", "event_types", "actors", "countries",
    "story_id",
)
FIELD_ALIASES: dict[str, str] = {
    "conflict": "conflicts",
    "event_type": "event_types",
    "eventtype": "event_types",
    "actor": "actors",
    "country": "countries",
    "lang": "language",
    "story": "story_id",
    "body": "text",
}
TITLE_BOOST = 2.0


class QuerySyntaxError(ValueError):
    """The query cannot be understood; the message says why, for the user."""


# ---------------------------------------------------------------- AST (frozen, hashable)


@dataclass(frozen=True)
class MatchAll:
    pass


@dataclass(frozen=True)
class Text:
    """Analysed words in ``field`` (None = title or text); several tokens = a phrase."""

    field: str | None
    tokens: tuple[str, ...]
    raw: str


@dataclass(frozen=True)
class Prefix:
    """A word prefix (lower-case, unstemmed) matched against analysed terms."""

    field: str | None
    prefix: str


@dataclass(frozen=True)
class Keyword:
    field: str
    value: str  # normalised


@dataclass(frozen=True)
class Exists:
    field: str  # a keyword field


@dataclass(frozen=True)
class And:
    items: tuple[Query, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Query, ...]


@dataclass(frozen=True)
class Not:
    item: Query


Query: TypeAlias = MatchAll | Text | Prefix | Keyword | Exists | And | Or | Not


# ---------------------------------------------------------------- analysis


@functools.cache
def text_analyzer() -> tantivy.TextAnalyzer:
    """The analyzer of title/text: simple tokenizer, lowercase, Snowball English stemmer.

    No filter drops tokens, so a token's position is its index in ``analyze()``'s list.
    """
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def analyze(text: str) -> list[str]:
    if not text:
        return []
    return text_analyzer().analyze(text)


_KEYWORD_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "id": str.strip,
    "feed": str.strip,
    "story_id": str.strip,
    "countries": lambda v: v.strip().upper(),
}


def normalize_keyword(field_name: str, value: str) -> str:
    """The stored and queried form of a keyword value (same function on both sides)."""
    fn = _KEYWORD_NORMALIZERS.get(field_name)
    if fn is not None:
        return fn(value)
    return value.strip().lower()


def _tag_ids(items: Iterable[Any]) -> list[str]:
    out = []
    for item in items or ():
        if isinstance(item, Mapping):
            value = item.get("id")
        else:
            value = getattr(item, "id", item)
        if value:
            out.append(str(value))
    return out


def _plain(doc: Any) -> Mapping[str, Any]:
    if hasattr(doc, "model_dump"):
        return doc.model_dump(mode="json")
    return doc


def keyword_values(doc: Any) -> dict[str, tuple[str, ...]]:
    """Normalised keyword values of an Article (object or mapping): what the stores index.

    ``conflicts``/``event_types`` may be tag objects (``{"id": ...}``) or plain ids.
    """
    d = _plain(doc)
    raw: dict[str, list[str]] = {
        "id": [d.get("id") or ""],
        "source": [d.get("source") or ""],
        "feed": [d.get("feed") or ""],
        "language": [d.get("language") or ""],
        "story_id": [d.get("story_id") or ""],
        "conflicts": _tag_ids(d.get("conflicts") or ()),
        "event_types": _tag_ids(d.get("event_types") or ()),
        "actors": [str(a) for a in d.get("actors") or ()],
        "countries": [str(c) for c in d.get("countries") or ()],
    }
    out: dict[str, tuple[str, ...]] = {}
    for name, values in raw.items():
        seen: dict[str, None] = {}
        for v in values:
            n = normalize_keyword(name, v)
            if n:
                seen[n] = None
        out[name] = tuple(seen)
    return out


def text_values(doc: Any) -> dict[str, str]:
    """The text fields as the stores index them (text falls back to the summary)."""
    d = _plain(doc)
    return {"title": d.get("title") or "", "text": d.get("text") or d.get("summary") or ""}


# ---------------------------------------------------------------- parsing

_UNSUPPORTED = {
    tree.Fuzzy: "fuzzy search (~) is not supported",
    tree.Proximity: "proximity search (\"...\"~N) is not supported",
    tree.Boost: "boosts (^) are not supported",
    tree.Range: "ranges ([a TO b]) are not supported; use the date filters",
    tree.Regex: "regular expressions are not supported",
}


def _canonical_field(name: str) -> str:
    key = name.strip().lower()
    key = FIELD_ALIASES.get(key, key)
    if key not in TEXT_FIELDS and key not in KEYWORD_FIELDS:
        known = ", ".join(sorted({*TEXT_FIELDS, *KEYWORD_FIELDS, *FIELD_ALIASES}))
        raise QuerySyntaxError(f"unknown field {name!r}; known fields: {known}")
    return key


_ESCAPE = re.compile(r"\\(.)")


def _unescape(value: str) -> str:
    return _ESCAPE.sub(r"\1", value)


def _leaf(field_name: str | None, value: str, is_phrase: bool) -> Query | None:
    """A word or phrase in a field (None = the default text fields); None if nothing to search."""
    if field_name in KEYWORD_FIELDS:
        if value == "*" and not is_phrase:
            return Exists(field_name)
        if "*" in value or "?" in value:
            raise QuerySyntaxError(f"wildcards are not supported in {field_name}:{value}")
        norm = normalize_keyword(field_name, value)
        if not norm:
            raise QuerySyntaxError(f"empty value for field {field_name!r}")
        return Keyword(field_name, norm)
    if not is_phrase:
        if value == "*":
            if field_name is None:
                return MatchAll()
            raise QuerySyntaxError(f"{field_name}:* is not supported (only keyword fields)")
        if "?" in value or "*" in value[:-1]:
            raise QuerySyntaxError(
                f"wildcard in {value!r}: only a trailing * (word prefix) is supported")
        if value.endswith("*"):
            stem = value[:-1]
            if len(analyze(stem)) != 1 or not stem.isalnum():
                raise QuerySyntaxError(f"a prefix must be one word followed by *: {value!r}")
            return Prefix(field_name, stem.lower())
    tokens = tuple(analyze(value))
    if not tokens:
        return None  # punctuation only: nothing to search, dropped like Lucene does
    return Text(field_name, tokens, value)


def _convert(node: tree.Item, field_name: str | None) -> Query | None:
    for kind, message in _UNSUPPORTED.items():
        if isinstance(node, kind):
            raise QuerySyntaxError(message)
    if isinstance(node, tree.SearchField):
        if field_name is not None:
            raise QuerySyntaxError(f"nested fields are not allowed: {node}")
        return _convert(node.expr, _canonical_field(node.name))
    if isinstance(node, (tree.Group, tree.FieldGroup)):
        return _convert(node.expr, field_name)
    if isinstance(node, tree.Phrase):
        return _leaf(field_name, _unescape(node.value[1:-1]), True)
    if isinstance(node, tree.Word):
        return _leaf(field_name, _unescape(node.value), False)
    if isinstance(node, (tree.Not, tree.Prohibit)):
        inner = _convert(node.a, field_name)
        return None if inner is None else Not(inner)
    if isinstance(node, tree.Plus):
        return _convert(node.a, field_name)
    if isinstance(node, (tree.AndOperation, tree.UnknownOperation)):
        return _combine(And, [_convert(c, field_name) for c in node.children])
    if isinstance(node, tree.OrOperation):
        return _combine(Or, [_convert(c, field_name) for c in node.children])
    raise QuerySyntaxError(f"unsupported query element: {node}")


def _combine(kind: type[And] | type[Or], children: list[Query | None]) -> Query | None:
    items: list[Query] = []
    for child in children:
        if child is None:
            continue
        if isinstance(child, kind):  # flatten a AND (b AND c)
            items.extend(child.items)
        else:
            items.append(child)
    if not items:
        return None
    if kind is And and len(items) > 1:
        # "* AND x" is just x
        items = [i for i in items if not isinstance(i, MatchAll)] or [MatchAll()]
    if kind is Or and any(isinstance(i, MatchAll) for i in items):
        return MatchAll()
    if len(items) == 1:
        return items[0]
    return kind(tuple(items))


MAX_QUERY_LENGTH = 2000


def parse(q: str) -> Query:
    """Parse a user query into the AST. Empty/blank -> everything (``*``)."""
    if q is None:
        return MatchAll()
    text = q.strip()
    if not text:
        return MatchAll()
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(f"query longer than {MAX_QUERY_LENGTH} characters")
    try:
        luq = _luqum_parser.parse(text)
    except ParseError as exc:
        raise QuerySyntaxError(f"cannot parse query {text!r}: {_friendly(str(exc))}") from None
    except RecursionError:
        raise QuerySyntaxError("query nests too deeply") from None
    except (ValueError, ArithmeticError, TypeError, AttributeError) as exc:
        # luqum builds nodes while parsing and some garbage trips them (e.g. "0^." raises
        # decimal.InvalidOperation): still the user's query, not our bug.
        raise QuerySyntaxError(f"cannot parse query {text!r}: {type(exc).__name__}") from None
    result = _convert(luq, None)
    if result is None:
        raise QuerySyntaxError(f"nothing to search for in {text!r}")
    return result


def _friendly(message: str) -> str:
    message = message.replace("Syntax error in input : ", "")
    if "unexpected end of expression" in message:
        return "it ends too early (an operator without operand, or an unclosed parenthesis/quote?)"
    return message


def _quote(value: str) -> str:
    if value.isalnum() and value not in ("AND", "OR", "NOT", "TO"):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_string(query: Query) -> str:
    """A canonical query string: ``parse(to_string(q)) == q``."""
    if isinstance(query, MatchAll):
        return "*"
    if isinstance(query, Text):
        body = _quote(query.raw)  # several tokens => raw has a separator => quoted phrase
        return f"{query.field}:{body}" if query.field else body
    if isinstance(query, Prefix):
        return f"{query.field}:{query.prefix}*" if query.field else f"{query.prefix}*"
    if isinstance(query, Keyword):
        return f"{query.field}:{_quote(query.value)}"
    if isinstance(query, Exists):
        return f"{query.field}:*"
    if isinstance(query, Not):
        return f"NOT ({to_string(query.item)})"
    joiner = " AND " if isinstance(query, And) else " OR "
    return "(" + joiner.join(to_string(i) for i in query.items) + ")"


# ---------------------------------------------------------------- in-memory evaluation


@dataclass(frozen=True)
class PreparedDoc:
    """A document analysed once, to be tested against many queries."""

    texts: Mapping[str, str]  # text field -> its text
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @functools.cached_property
    def tokens(self) -> Mapping[str, tuple[str, ...]]:
        """Text field -> analysed tokens, on first need: rules that only test facets
        (conflict, country, event type) never need the text analysed."""
        return {name: tuple(analyze(value)) for name, value in self.texts.items()}

    @functools.cached_property
    def vocabulary(self) -> Mapping[str, frozenset[str]]:
        """Text field -> its distinct tokens: all that one-word queries and prefixes need
        (a set is built at C speed; positions only for phrases)."""
        return {name: frozenset(toks) for name, toks in self.tokens.items()}

    @functools.cached_property
    def positions(self) -> Mapping[str, Mapping[str, tuple[int, ...]]]:
        """Text field -> token -> positions, built on first need: most articles meet no rule
        whose terms they hold, and then nothing is evaluated (a fifth of the alert stage's
        CPU went here)."""
        positions: dict[str, dict[str, tuple[int, ...]]] = {}
        for name, toks in self.tokens.items():
            pos: dict[str, list[int]] = {}
            for i, tok in enumerate(toks):
                pos.setdefault(tok, []).append(i)
            positions[name] = {k: tuple(v) for k, v in pos.items()}
        return positions


def prepare(doc: Any) -> PreparedDoc:
    if isinstance(doc, PreparedDoc):
        return doc
    return PreparedDoc(text_values(doc), keyword_values(doc))


def _text_matches(doc: PreparedDoc, field_name: str, tokens: tuple[str, ...]) -> bool:
    if len(tokens) == 1:
        return tokens[0] in doc.vocabulary.get(field_name, ())
    pos = doc.positions.get(field_name, {})
    first = pos.get(tokens[0])
    if not first:
        return False
    rest = [set(pos.get(t, ())) for t in tokens[1:]]
    return any(all(start + i + 1 in s for i, s in enumerate(rest)) for start in first)


def _eval(query: Query, doc: PreparedDoc) -> bool:
    if isinstance(query, MatchAll):
        return True
    if isinstance(query, Text):
        fields = (query.field,) if query.field else TEXT_FIELDS
        return any(_text_matches(doc, f, query.tokens) for f in fields)
    if isinstance(query, Prefix):
        fields = (query.field,) if query.field else TEXT_FIELDS
        return any(t.startswith(query.prefix) for f in fields for t in doc.vocabulary.get(f, ()))
    if isinstance(query, Keyword):
        return query.value in doc.keywords.get(query.field, ())
    if isinstance(query, Exists):
        return bool(doc.keywords.get(query.field))
    if isinstance(query, And):
        return all(_eval(i, doc) for i in query.items)
    if isinstance(query, Or):
        return any(_eval(i, doc) for i in query.items)
    if isinstance(query, Not):
        return not _eval(query.item, doc)
    raise TypeError(f"not a query node: {query!r}")


def matches(query: Query | str, doc: Any) -> bool:
    """Does ``doc`` (Article, Article-shaped mapping or PreparedDoc) match ``query``?

    Same analysis and semantics as the stores: a query returns from the embedded index
    exactly the documents for which this is True (checked by tests on a corpus).
    """
    if isinstance(query, str):
        query = parse(query)
    return _eval(query, prepare(doc))


# ---------------------------------------------------------------- percolator-style pre-filter


def _text_term(token: str) -> str:
    return token


def _keyword_term(field_name: str, value: str) -> str:
    return f"{field_name}={value}"


def required_terms(query: Query, *, prefix_term: Callable[[Prefix], str] | None = None,
                   cost: Callable[[set[str]], Any] = len) -> set[str] | None:
    """Terms of which a matching document must contain at least one, or None if unknown.

    Text terms are analysed tokens (``"airstrik"``); keyword terms are ``"field=value"``
    (``"countries=SY"``). Compare with :func:`doc_terms`: if this returns a set ``S``, every
    document ``d`` with ``matches(query, d)`` has ``S & doc_terms(d)`` non-empty. None means
    the query can match documents without any particular term (``*``, ``NOT x``, prefixes).

    For a rule index (alerts): ``prefix_term`` names a word prefix as a term of its own
    (the index then looks up every leading part of each word), and ``cost`` ranks the
    options of an AND (cheapest = fewest documents carrying one of them; default: fewest terms).
    """
    if isinstance(query, Text):
        # every token of a phrase is required: keep the longest (likely the rarest)
        return {_text_term(max(query.tokens, key=len))}
    if isinstance(query, Keyword):
        return {_keyword_term(query.field, query.value)}
    if isinstance(query, Prefix):
        return None if prefix_term is None else {prefix_term(query)}
    if isinstance(query, And):
        candidates = [s for s in (required_terms(i, prefix_term=prefix_term, cost=cost)
                                  for i in query.items) if s is not None]
        return min(candidates, key=cost) if candidates else None
    if isinstance(query, Or):
        out: set[str] = set()
        for item in query.items:
            sub = required_terms(item, prefix_term=prefix_term, cost=cost)
            if sub is None:
                return None
            out |= sub
        return out
    return None  # MatchAll, Not, Exists


def doc_terms(doc: Any, *, text: bool = True) -> frozenset[str]:
    """All terms of a document in the encoding of :func:`required_terms`; with
    ``text=False`` only its keyword terms (no text analysed)."""
    prepared = prepare(doc)
    terms: set[str] = set()
    for toks in prepared.vocabulary.values() if text else ():
        terms.update(map(_text_term, toks))
    for name, values in prepared.keywords.items():
        terms.update(_keyword_term(name, v) for v in values)
    return frozenset(terms)


def positive_text(query: Query) -> Query | None:
    """The text parts of a query outside any NOT, as one OR: what snippets highlight."""
    parts: list[Query] = []

    def walk(node: Query) -> None:
        if isinstance(node, (Text, Prefix)):
            parts.append(node)
        elif isinstance(node, (And, Or)):
            for item in node.items:
                walk(item)

    walk(query)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else Or(tuple(parts))


# ---------------------------------------------------------------- compilers


def to_tantivy(query: Query, schema: tantivy.Schema) -> tantivy.Query:
    """Compile to a tantivy query over the embedded schema (see ``indexer.embedded``)."""
    Q, Occur = tantivy.Query, tantivy.Occur
    if isinstance(query, MatchAll):
        return Q.all_query()
    if isinstance(query, Text):
        fields = (query.field,) if query.field else TEXT_FIELDS
        subs = []
        for f in fields:
            if len(query.tokens) == 1:
                q = Q.term_query(schema, f, query.tokens[0])
            else:
                q = Q.phrase_query(schema, f, list(enumerate(query.tokens)))
            if f == "title":
                q = Q.boost_query(q, TITLE_BOOST)
            subs.append(q)
        return subs[0] if len(subs) == 1 else Q.boolean_query([(Occur.Should, s) for s in subs])
    if isinstance(query, Prefix):
        fields = (query.field,) if query.field else TEXT_FIELDS
        pattern = re.escape(query.prefix) + ".*"
        subs = [Q.regex_query(schema, f, pattern) for f in fields]
        return subs[0] if len(subs) == 1 else Q.boolean_query([(Occur.Should, s) for s in subs])
    if isinstance(query, Keyword):
        return Q.term_query(schema, query.field, query.value)
    if isinstance(query, Exists):
        return Q.exists_query(query.field)
    if isinstance(query, And):
        clauses = []
        for item in query.items:
            if isinstance(item, Not):
                clauses.append((Occur.MustNot, to_tantivy(item.item, schema)))
            else:
                clauses.append((Occur.Must, to_tantivy(item, schema)))
        if all(occ == Occur.MustNot for occ, _ in clauses):
            clauses.append((Occur.Must, Q.all_query()))
        return Q.boolean_query(clauses)
    if isinstance(query, Or):
        return Q.boolean_query([(Occur.Should, to_tantivy(i, schema)) for i in query.items])
    if isinstance(query, Not):
        return Q.boolean_query(
            [(Occur.Must, Q.all_query()), (Occur.MustNot, to_tantivy(query.item, schema))])
    raise TypeError(f"not a query node: {query!r}")


def to_elasticsearch(query: Query) -> dict[str, Any]:
    """Compile to Elasticsearch query DSL over the mapping in ``indexer.elastic``.

    Text uses ``match``/``match_phrase`` with the raw words, so Elasticsearch's analyzer
    (equivalent to ours) does the analysis and highlighting sees the query.
    """
    if isinstance(query, MatchAll):
        return {"match_all": {}}
    if isinstance(query, Text):
        fields = (query.field,) if query.field else TEXT_FIELDS
        subs = []
        for f in fields:
            boost = TITLE_BOOST if f == "title" else 1.0
            if len(query.tokens) == 1:
                subs.append({"match": {f: {"query": query.raw, "boost": boost}}})
            else:
                subs.append({"match_phrase": {f: {"query": query.raw, "boost": boost}}})
        return subs[0] if len(subs) == 1 else {"bool": {"should": subs, "minimum_should_match": 1}}
    if isinstance(query, Prefix):
        fields = (query.field,) if query.field else TEXT_FIELDS
        subs = [{"prefix": {f: {"value": query.prefix}}} for f in fields]
        return subs[0] if len(subs) == 1 else {"bool": {"should": subs, "minimum_should_match": 1}}
    if isinstance(query, Keyword):
        return {"term": {query.field: query.value}}
    if isinstance(query, Exists):
        return {"exists": {"field": query.field}}
    if isinstance(query, And):
        must = [to_elasticsearch(i) for i in query.items if not isinstance(i, Not)]
        must_not = [to_elasticsearch(i.item) for i in query.items if isinstance(i, Not)]
        body: dict[str, Any] = {}
        if must:
            body["must"] = must
        if must_not:
            body["must_not"] = must_not
            if not must:
                body["must"] = [{"match_all": {}}]
        return {"bool": body}
    if isinstance(query, Or):
        return {"bool": {"should": [to_elasticsearch(i) for i in query.items],
                         "minimum_should_match": 1}}
    if isinstance(query, Not):
        return {"bool": {"must": [{"match_all": {}}],
                         "must_not": [to_elasticsearch(query.item)]}}
    raise TypeError(f"not a query node: {query!r}")
