"""Which rules does an article match? Pure; rules indexed by their required terms.

A rule matches an article exactly when a search with the same query and filters would
return it: the query is parsed and evaluated by ``indexer.query`` (the one parser, the
same analysis as the index) and the filters are normalised and combined like
``indexer.store.SearchRequest`` does (any-of within a field, all fields ANDed). The alert-only
filters ``min_killed``/``min_casualties`` have no search counterpart and apply on top.

Percolator-style indexing: each rule is filed under a set of terms of which every matching
article must contain at least one (``indexer.query.required_terms``, or a filter's values
when that is smaller). An article is analysed once, its terms looked up, and only the rules
filed under one of them (plus the few that have no such set) are evaluated in full.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from indexer.query import (
    And,
    Or,
    Prefix,
    PreparedDoc,
    Query,
    QuerySyntaxError,
    doc_terms,
    matches,
    normalize_keyword,
    parse,
    prepare,
    required_terms,
)
from newswire.records import Article
from processors.alerts.rules import Rule, RuleFilters

# RuleFilters field -> the index's keyword field (as in SearchRequest.filters)
FILTER_FIELDS: dict[str, str] = {
    "conflicts": "conflicts",
    "event_types": "event_types",
    "countries": "countries",
    "sources": "source",
    "languages": "language",
}


def keyword_filters(filters: RuleFilters) -> dict[str, frozenset[str]]:
    """Filters by index field, values normalised like the indexed ones (empty ones dropped)."""
    out: dict[str, frozenset[str]] = {}
    for attr, field_name in FILTER_FIELDS.items():
        values = frozenset(v for v in (normalize_keyword(field_name, x)
                                       for x in getattr(filters, attr)) if v)
        if values:
            out[field_name] = values
    return out


PREFIX = "\x00prefix:"  # marks a word-prefix term; never produced by the analyzer


def rule_terms(query: Query) -> set[str] | None:
    """``indexer.query.required_terms``, extended to word prefixes (``kidnap*``).

    A prefix becomes the term ``PREFIX + prefix``; ``RuleIndex.candidates`` looks up every
    leading part of each article word, so prefix rules need not run against every article.
    """
    if isinstance(query, Prefix):
        return {PREFIX + query.prefix}
    if isinstance(query, And):
        options = [s for s in (rule_terms(i) for i in query.items) if s is not None]
        return min(options, key=_selectivity) if options else None
    if isinstance(query, Or):
        out: set[str] = set()
        for item in query.items:
            sub = rule_terms(item)
            if sub is None:
                return None
            out |= sub
        return out
    return required_terms(query)


def _selectivity(terms: set[str]) -> tuple[float, int]:
    """Estimated cost of filing a rule under ``terms``: the articles that will carry one of
    them. A keyword value (one of a handful of conflicts or countries) is far more common
    than a search word, a prefix somewhat more; among words, longer ones are rarer."""
    cost = sum(8.0 if "=" in t else 3.0 if t.startswith(PREFIX) else 1.0 for t in terms)
    return cost, -min(len(t) for t in terms)


def check_rule(rule: Rule) -> str | None:
    """Why a rule cannot be used (bad query), or None."""
    try:
        parse(rule.query)
    except QuerySyntaxError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    query: Query
    keywords: Mapping[str, frozenset[str]]
    terms: frozenset[str] | None  # one of these must be in the article; None = no such set

    @classmethod
    def build(cls, rule: Rule) -> CompiledRule:
        query = parse(rule.query)  # raises QuerySyntaxError
        keywords = keyword_filters(rule.filters)
        options: list[set[str]] = []
        q_terms = rule_terms(query)
        if q_terms is not None:
            options.append(q_terms)
        for field_name, values in keywords.items():
            options.append({f"{field_name}={v}" for v in values})  # doc_terms' encoding
        best: set[str] | None = min(options, key=_selectivity) if options else None
        terms = frozenset(best) if best is not None else None
        return cls(rule, query, keywords, terms)

    def accepts(self, doc: PreparedDoc, article: Article | Mapping[str, Any]) -> bool:
        for field_name, wanted in self.keywords.items():
            if wanted.isdisjoint(doc.keywords.get(field_name, ())):
                return False
        if not _casualties_ok(self.rule.filters, article):
            return False
        return matches(self.query, doc)


def _casualties_ok(filters: RuleFilters, article: Article | Mapping[str, Any]) -> bool:
    if filters.min_killed is None and filters.min_casualties is None:
        return True
    cas = article.casualties if isinstance(article, Article) else article.get("casualties")
    if isinstance(cas, Mapping):
        killed, injured = cas.get("killed"), cas.get("injured")
    elif cas is not None:
        killed, injured = cas.killed, cas.injured
    else:
        killed = injured = None
    if filters.min_killed is not None and (killed or 0) < filters.min_killed:
        return False
    return filters.min_casualties is None or \
        (killed or 0) + (injured or 0) >= filters.min_casualties


def rule_matches(rule: Rule, article: Article | Mapping[str, Any]) -> bool:
    """One rule against one article (ignores ``paused``): for dry runs and tests."""
    compiled = CompiledRule.build(rule)
    return compiled.accepts(prepare(article), article)


class RuleIndex:
    """Active rules filed by required term; ``match`` evaluates only the candidates."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, CompiledRule] = {}
        self._by_term: dict[str, set[str]] = {}
        self._always: set[str] = set()
        self._prefix_lengths: Counter[int] = Counter()  # lengths of indexed prefixes
        self._text_terms = 0  # indexed word and prefix terms: without any, no text is analysed
        for rule in rules:
            self.add(rule)

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def get(self, rule_id: str) -> Rule | None:
        compiled = self._rules.get(rule_id)
        return compiled.rule if compiled else None

    def rules(self) -> list[Rule]:
        return [c.rule for c in self._rules.values()]

    @property
    def unindexed(self) -> int:
        """Rules evaluated against every article (no required term)."""
        return len(self._always)

    def add(self, rule: Rule) -> None:
        """Add or replace a rule; a paused rule is only removed. Raises QuerySyntaxError."""
        compiled = CompiledRule.build(rule) if not rule.paused else None
        self.remove(rule.id)
        if compiled is None:
            return
        self._rules[rule.id] = compiled
        if compiled.terms is None:
            self._always.add(rule.id)
        else:
            for term in compiled.terms:
                self._by_term.setdefault(term, set()).add(rule.id)
                self._text_terms += "=" not in term
                if term.startswith(PREFIX):
                    self._prefix_lengths[len(term) - len(PREFIX)] += 1

    def remove(self, rule_id: str) -> None:
        old = self._rules.pop(rule_id, None)
        if old is None:
            return
        self._always.discard(rule_id)
        for term in old.terms or ():
            ids = self._by_term.get(term)
            self._text_terms -= "=" not in term
            if term.startswith(PREFIX):
                self._prefix_lengths[len(term) - len(PREFIX)] -= 1
                if self._prefix_lengths[len(term) - len(PREFIX)] <= 0:
                    del self._prefix_lengths[len(term) - len(PREFIX)]
            if ids is not None:
                ids.discard(rule_id)
                if not ids:
                    del self._by_term[term]

    def candidates(self, terms: Iterable[str]) -> set[str]:
        found = set(self._always)
        by_term = self._by_term
        for term in terms:
            ids = by_term.get(term)
            if ids:
                found |= ids
            if self._prefix_lengths and "=" not in term:  # a word, not a keyword term
                for n in self._prefix_lengths:
                    if n <= len(term):
                        ids = by_term.get(PREFIX + term[:n])
                        if ids:
                            found |= ids
        return found

    def match(self, article: Article | Mapping[str, Any]) -> list[Rule]:
        """The active rules the article matches, in rule-id order."""
        if not self._rules:
            return []
        doc = prepare(article)
        out = []
        for rule_id in sorted(self.candidates(doc_terms(doc, text=self._text_terms > 0))):
            compiled = self._rules[rule_id]
            if compiled.accepts(doc, article):
                out.append(compiled.rule)
        return out
