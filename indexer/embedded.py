"""The embedded search store: a tantivy index in a directory (the default store).

Schema (mirrors the Elasticsearch mapping in ``indexer.elastic``):

- ``title``, ``text``: analysed with ``indexer.query.text_analyzer`` (registered as
  ``newswire_en``), positions indexed (phrases), stored (snippets);
- keyword fields ``id, source, feed, language, conflicts, event_types, actors, countries,
  story_id``: raw tokenizer, fast (facets), values normalised by ``query.keyword_values``;
- ``published`` (falls back to ``ingested``) and ``ingested``: dates, indexed + fast;
- ``places``: raw fast keyword ``name|country|lat|lon`` per location (the map's aggregation);
- ``article``: stored bytes, the full Article JSON minus ``title``/``text`` (those are stored
  in their own fields), so ``get()`` returns the whole record, locations included (the map).

Concurrency: ONE writer process (the indexer, ``writer=True``; tantivy's lock file refuses a
second one) and any number of reader processes (CLI, web API) that see each commit after
``refresh()``, which every ``search()`` does. An upsert is delete-by-id + add, then one
commit per batch, so a replay overwrites instead of duplicating.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import tantivy

from indexer import query as q
from indexer.store import (
    SNIPPET_CHARS,
    Cursor,
    Rejection,
    SearchRequest,
    SearchResult,
    StoreError,
    aggregation_groups,
    aggregations,
    char_ranges,
    effective_published,
    hit_from_article,
    mark_ranges,
    paged,
    place_keys,
    plain_snippet,
    validate,
)
from newswire.records import Article

log = logging.getLogger(__name__)

MAX_TIE_IDS = 65_000  # tantivy's bucket limit: articles sharing one timestamp, read by id
STORE_KIND = "embedded"  # cursors name the store kind that made them
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_ns(value: int) -> datetime:
    """A date fast-field value (ns since the epoch) as the datetime tantivy queries take."""
    return _EPOCH + timedelta(microseconds=value // 1000)


def _count(found: Any) -> int:
    """The hit count of a search made with ``count=True``."""
    return int(getattr(found, "count", 0) or 0)


def _address_key(address: tantivy.DocAddress) -> tuple[int, int]:
    return address.segment_ord, address.doc


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    for name in q.TEXT_FIELDS:
        sb.add_text_field(name, stored=True, tokenizer_name=q.ANALYZER_NAME,
                          index_option="position")
    for name in q.KEYWORD_FIELDS:
        sb.add_text_field(name, stored=False, fast=True, tokenizer_name="raw",
                          index_option="basic")
    sb.add_text_field("places", stored=False, fast=True, tokenizer_name="raw",
                      index_option="basic")
    sb.add_date_field("published", indexed=True, fast=True)
    sb.add_date_field("ingested", indexed=True, fast=True)
    sb.add_bytes_field("article", stored=True)
    return sb.build()


def article_document(article: Article) -> tantivy.Document:
    """The tantivy document of an article (pure)."""
    doc = tantivy.Document()
    body = article.model_dump(mode="json")  # once: the helpers below take the dict
    texts = q.text_values(body)
    for name in q.TEXT_FIELDS:
        doc.add_text(name, texts[name])
    for name, values in q.keyword_values(body).items():
        for value in values:
            doc.add_text(name, value)
    for place in place_keys(article):
        doc.add_text("places", place)
    doc.add_date("published", effective_published(article))
    doc.add_date("ingested", article.ingested)
    del body["title"], body["text"]
    doc.add_bytes("article", json.dumps(body, ensure_ascii=False).encode())
    return doc


class EmbeddedStore:
    """A :class:`indexer.store.SearchStore` on a tantivy index directory."""

    def __init__(self, path: Path | str, *, writer: bool = False,
                 heap_size: int = 128_000_000, num_threads: int = 1) -> None:
        self.path = Path(path)
        self.schema = build_schema()
        self._want_writer = writer
        self._heap_size = heap_size
        self._num_threads = num_threads
        self._index: tantivy.Index | None = None
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()

    # -- lifecycle

    def ensure(self) -> None:
        """Create the index if missing; a writer store also takes the writer lock now, so a
        second indexer fails at start (``StoreError``) rather than at its first batch."""
        self._open(create=True)
        if self._want_writer:
            with self._lock:
                self._get_writer()

    def _open(self, create: bool) -> tantivy.Index | None:
        if self._index is not None:
            return self._index
        meta = self.path / "meta.json"
        if not meta.exists():
            if not create:
                return None
            self.path.mkdir(parents=True, exist_ok=True)
        try:
            index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        except ValueError as exc:
            hint = ""
            if "schema does not match" in str(exc):
                hint = (" (written by another version of newswire: remove the directory and "
                        "reset the indexer's consumer group to rebuild it from Kafka)")
            raise StoreError(f"cannot open index at {self.path}: {exc}{hint}") from exc
        index.register_tokenizer(q.ANALYZER_NAME, q.text_analyzer())
        self._index = index
        return index

    def _get_writer(self) -> tantivy.IndexWriter:
        if not self._want_writer:
            raise StoreError("this store was opened read-only (open_store(..., writer=True))")
        if self._writer is None:
            index = self._open(create=True)
            assert index is not None
            try:
                self._writer = index.writer(self._heap_size, self._num_threads)
            except ValueError as exc:
                raise StoreError(f"index at {self.path} is locked by another writer: {exc}") \
                    from exc
        return self._writer

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                try:
                    self._writer.wait_merging_threads()
                except (ValueError, RuntimeError) as exc:  # merges are best effort
                    log.warning("index merge on close failed path=%s error=%s", self.path, exc)
                self._writer = None
            self._index = None

    # -- writes

    def upsert(self, articles: Sequence[Article]) -> list[Rejection]:
        rejections: list[Rejection] = []
        with self._lock:
            writer = self._get_writer()
            for article in articles:
                reason = validate(article)
                if reason is not None:
                    rejections.append(Rejection(article.id, reason))
                    continue
                try:
                    doc = article_document(article)
                except (ValueError, TypeError, OverflowError) as exc:
                    rejections.append(Rejection(article.id, f"cannot build document: {exc}"))
                    continue
                writer.delete_documents_by_term("id", article.id)
                writer.add_document(doc)
            writer.commit()
        return rejections

    def refresh(self) -> None:
        index = self._open(create=False)
        if index is not None:
            index.reload()

    # -- reads

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """tantivy says ValueError for a corrupt or vanished index: that is the store failing
        (StoreError, the API's 503), not a bad request."""
        try:
            yield
        except q.QuerySyntaxError:
            raise
        except (ValueError, OSError) as exc:
            raise StoreError(f"cannot read index at {self.path}: {exc}") from exc

    def _searcher(self) -> tantivy.Searcher | None:
        """The newest committed state, or None before the first commit."""
        index = self._open(create=False)
        if index is None:
            return None
        index.reload()
        return index.searcher()

    def count(self) -> int:
        with self._reading():
            searcher = self._searcher()
            return 0 if searcher is None else int(searcher.num_docs)

    def get(self, id: str) -> dict[str, Any] | None:
        with self._reading():
            searcher = self._searcher()
            if searcher is None:
                return None
            found = searcher.search(tantivy.Query.term_query(self.schema, "id", id), 1)
            if not found.hits:
                return None
            return self._stored(searcher.doc(found.hits[0][1]))

    @staticmethod
    def _stored(doc: tantivy.Document) -> dict[str, Any]:
        article: dict[str, Any] = json.loads(doc.get_first("article") or b"{}")
        article["title"] = doc.get_first("title") or None
        article["text"] = doc.get_first("text") or ""
        return article

    def _filtered(self, parsed: q.Query, req: SearchRequest,
                  leave_out: frozenset[str] = frozenset()) -> tantivy.Query:
        Q, Occur = tantivy.Query, tantivy.Occur
        clauses = [(Occur.Must, q.to_tantivy(parsed, self.schema))]
        for name, values in req.filters().items():
            if name not in leave_out:
                clauses.append((Occur.Must, Q.term_set_query(self.schema, name, list(values))))
        if req.since is not None or req.until is not None:
            clauses.append((Occur.Must, self._published_range(
                req.since or tantivy.MIN_DATETIME, req.until or tantivy.MAX_DATETIME,
                include_upper=req.until is None)))
        return clauses[0][1] if len(clauses) == 1 else Q.boolean_query(clauses)

    def _published_range(self, lower: datetime, upper: datetime, *,
                         include_upper: bool) -> tantivy.Query:
        return tantivy.Query.range_query(self.schema, "published", tantivy.FieldType.Date,
                                         lower, upper, include_lower=True,
                                         include_upper=include_upper)

    def search(self, req: SearchRequest) -> SearchResult:
        parsed = q.parse(req.query)  # QuerySyntaxError goes to the caller
        after = req.after()
        if after is not None:
            after.check(STORE_KIND, 2)
        with self._reading():
            return self._search(parsed, req)

    def _search(self, parsed: q.Query, req: SearchRequest) -> SearchResult:
        started = time.perf_counter()
        searcher = self._searcher()
        if searcher is None:
            return SearchResult(0, [], {f: [] for f in req.facets}, [], req.page, req.size)
        query = self._filtered(parsed, req)
        by_date = req.sort == "date"
        limit, _ = req.fetch_window()
        entries, total = self._ordered(searcher, query, req, limit)

        fetched = []
        docs: dict[str, tuple[tantivy.Document, str]] = {}
        for value, address in entries:
            doc = searcher.doc(address)
            article = self._stored(doc)
            hit = hit_from_article(article, None if by_date else value)
            docs[hit["id"]] = (doc, article["text"])
            fetched.append(((value, hit["id"]), hit))
        if by_date:  # newest first, ties by id (as Elasticsearch sorts, and as cursors resume)
            fetched.sort(key=lambda kh: (-kh[0][0], kh[0][1]))
        hits, next_cursor = paged(
            req, total, [h for _, h in fetched], [k for k, _ in fetched],
            lambda stories: self._story_counts(searcher, query, stories), STORE_KIND)
        snippets = self._snippet_generator(searcher, parsed) if hits else None
        for hit in hits:  # only for the hits shown (collapsing fetches more)
            doc, text = docs[hit["id"]]
            hit["snippet"] = self._snippet(snippets, doc, text)

        result_aggs: dict[str, Any] = {}
        for leave_out, aggs in aggregation_groups(req):
            if leave_out:  # a facet's counts without its own filter (multi-select)
                result_aggs.update(searcher.aggregate(
                    self._filtered(parsed, req, leave_out), aggs))
            elif total:
                result_aggs.update(searcher.aggregate(query, aggs))
        facets, histogram, places = aggregations(result_aggs, req)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(total, hits, facets, histogram, req.page, req.size, round(took, 2),
                            places, next_cursor)

    # -- ordering and cursors: entries are (sort value, address) in the order shown

    def _ordered(self, searcher: tantivy.Searcher, query: tantivy.Query, req: SearchRequest,
                 limit: int) -> tuple[list[tuple[Any, tantivy.DocAddress]], int]:
        after = req.after()
        if req.sort == "date" and (after is not None or req.offset == 0):
            return self._by_date_after(searcher, query, after, limit)
        if after is not None:
            return self._by_score_after(searcher, query, after, limit)
        _, offset = req.fetch_window()
        found = searcher.search(
            query, max(limit, 1), count=True, offset=offset,
            order_by_field="published" if req.sort == "date" else None,
            order=tantivy.Order.Desc)
        return (list(found.hits) if limit else []), _count(found)

    def _by_date_after(self, searcher: tantivy.Searcher, query: tantivy.Query,
                       after: Cursor | None, n: int,
                       ) -> tuple[list[tuple[Any, tantivy.DocAddress]], int]:
        """Keyset paging on (published desc, id asc): exact however deep, and new articles
        arriving at the top do not shift the pages after the cursor."""
        Q, Occur = tantivy.Query, tantivy.Occur
        total = _count(searcher.search(query, 1, count=True))
        entries: list[tuple[Any, tantivy.DocAddress]] = []
        rest = query
        if after is not None:
            moment, last_id = int(after.key[0]), str(after.key[1])
            later = [i for i in self._ids_at(searcher, query, moment) if i > last_id][:n]
            entries += self._addresses(searcher, later, moment)
            rest = Q.boolean_query([(Occur.Must, query), (Occur.Must, self._published_range(
                tantivy.MIN_DATETIME, _from_ns(moment), include_upper=False))])
        want = n - len(entries)
        if want > 0:
            found = list(searcher.search(rest, want, order_by_field="published",
                                         order=tantivy.Order.Desc).hits)
            if len(found) == want:  # the oldest timestamp may hold more than fit: take by id
                oldest = found[-1][0]
                found = [(v, a) for v, a in found if v > oldest]
                ids = self._ids_at(searcher, rest, oldest)[: want - len(found)]
                found += self._addresses(searcher, ids, oldest)
            entries += found
        return entries, total

    def _ids_at(self, searcher: tantivy.Searcher, query: tantivy.Query, moment: int,
                ) -> list[str]:
        """Ids (ascending) of the matches published at exactly ``moment`` (ns)."""
        Q, Occur = tantivy.Query, tantivy.Occur
        at = _from_ns(moment)
        same = Q.boolean_query([(Occur.Must, query), (Occur.Must, self._published_range(
            at, at, include_upper=True))])
        count = _count(searcher.search(same, 1, count=True))
        if not count:
            return []
        agg = searcher.aggregate(same, {"ids": {"terms": {
            "field": "id", "size": min(count, MAX_TIE_IDS), "order": {"_key": "asc"}}}})
        return [str(b["key"]) for b in agg.get("ids", {}).get("buckets", [])]

    def _addresses(self, searcher: tantivy.Searcher, ids: list[str], value: int,
                   ) -> list[tuple[Any, tantivy.DocAddress]]:
        if not ids:
            return []
        found = searcher.search(tantivy.Query.term_set_query(self.schema, "id", ids), len(ids))
        return [(value, address) for _, address in found.hits]

    def _by_score_after(self, searcher: tantivy.Searcher, query: tantivy.Query, after: Cursor,
                        n: int) -> tuple[list[tuple[Any, tantivy.DocAddress]], int]:
        """Relevance has no keyset in tantivy (no filter on a score): take the top hits down
        to the cursor and continue right after the cursor's own hit, found again by id, so
        articles added above it since do not repeat. Deep pages cost a longer top-k, no cap."""
        score, last_id = float(after.key[0]), str(after.key[1])
        found = searcher.search(query, after.seen + 2 * n + 1, count=True)
        hits = list(found.hits)
        mine = searcher.search(tantivy.Query.term_query(self.schema, "id", last_id), 1).hits
        start = None
        if mine:
            where = _address_key(mine[0][1])
            start = next((i + 1 for i, (_, a) in enumerate(hits) if _address_key(a) == where),
                         None)
        if start is None:  # gone or moved far: continue below its score
            start = next((i for i, (s, _) in enumerate(hits) if s < score), len(hits))
        return hits[start: start + n], _count(found)

    def _story_counts(self, searcher: tantivy.Searcher, query: tantivy.Query,
                      stories: list[str]) -> dict[str, int]:
        if not stories:
            return {}
        Q, Occur = tantivy.Query, tantivy.Occur
        restricted = Q.boolean_query([
            (Occur.Must, query),
            (Occur.Must, Q.term_set_query(self.schema, "story_id", stories))])
        agg = searcher.aggregate(
            restricted, {"s": {"terms": {"field": "story_id", "size": len(stories)}}})
        return {b["key"]: int(b["doc_count"]) for b in agg.get("s", {}).get("buckets", [])}

    def _snippet_generator(self, searcher: tantivy.Searcher,
                           parsed: q.Query) -> tantivy.SnippetGenerator | None:
        # Highlight the positive text terms only (a NOT term is never in a hit).
        positive = q.positive_text(parsed)
        if positive is None:
            return None
        gen = tantivy.SnippetGenerator.create(searcher, q.to_tantivy(positive, self.schema),
                                              self.schema, "text")
        gen.set_max_num_chars(SNIPPET_CHARS)
        return gen

    @staticmethod
    def _snippet(gen: tantivy.SnippetGenerator | None, doc: tantivy.Document, text: str) -> str:
        if gen is not None:
            snippet = gen.snippet_from_doc(doc)
            fragment = snippet.fragment()
            # tantivy reports UTF-8 byte offsets; Python slices by character
            ranges = char_ranges(fragment, [(r.start, r.end) for r in snippet.highlighted()])
            if ranges:
                return mark_ranges(fragment, ranges)
        return plain_snippet(text)
