"""The Elasticsearch search store (production), with the official ``elasticsearch`` client.

Layout (``P`` = ``settings.search.index_prefix``):

- index template ``P-articles`` for ``P-articles-*`` with explicit mappings (below);
- monthly indices ``P-articles-YYYY.MM`` (UTC month of *writing*), all behind the alias
  ``P-articles``; the newest is the alias's write index. ``ensure()`` and every ``upsert``
  make sure the current month's index exists and is the write index: that is a rollover
  by calendar month, done by us. To hand it to ILM instead, attach a policy with a
  ``rollover`` action to the template (``index.lifecycle.name`` +
  ``index.lifecycle.rollover_alias = P-articles``): documents are written through the alias
  either way, so nothing else changes; ILM's delete phase then gives retention per month.

Idempotent ids across months: a document id (hash of the canonical URL) lives in the index
it was first written to. Before each bulk we look the batch's ids up through the alias (one
``ids`` query per batch) and overwrite existing ones in their own index; only new ids go to
the write index. Routing by a date of the article instead (published/ingested) was rejected:
``published`` is often missing or corrected and ``ingested`` changes when a story is
re-fetched, either of which would put a second copy in another month. The lookup is a search,
so it sees documents refreshed (1 s by default) before the month turned: exact except for an id
first written in the last second of a month and rewritten in the next, an accepted edge.
Within one month every write goes to the same index and overwrites by ``_id``, no lookup needed.

Mappings: ``title``/``text`` use ``newswire_english`` (pattern tokenizer on non-alphanumerics,
lowercase, snowball English: the same terms as the embedded index and ``indexer.query``),
with a ``.std`` sub-field on the ``standard`` analyzer (and ``.english`` on the built-in
``english`` analyzer, stop words and all) for ad-hoc Kibana queries; keyword facets
``id, source, feed, language, conflicts, event_types, actors, countries, story_id``
(normalised like the embedded store); dates ``published`` (falls back to ingested) and
``ingested``; ``geo`` (``geo_point``, one per location, for Kibana maps); ``places`` (keyword
``name|country|lat|lon``, what the search page's map aggregates); ``conflict_score``;
and ``article``: the whole Article, stored but not indexed.

Writes are ``_bulk`` requests of ``chunk_size`` documents; the client itself retries a whole
request that got 502/503/504 or timed out. Then, per ``upsert``, up to ``max_retries`` more
rounds with capped exponential backoff (``initial_backoff`` doubling to ``max_backoff``)
resend only what failed: items answered 429 or 5xx, and chunks answered 429 as a whole. After
the last round:

- anything still 429 (overload), any other failure of a whole request (unreachable, 5xx),
  or item-level 5xx on every document while the cluster reports red or does not answer:
  ``StoreUnavailable``; the indexer pauses and retries the batch, with no limit (nothing is
  the documents' fault; rewriting the ones already written is an idempotent overwrite);
- item-level 5xx while other documents were written, or while the cluster reports itself
  usable: those documents fail on their own, so each becomes a ``Rejection`` of kind
  ``store_5xx`` (dead-lettered, replayable) instead of stalling the indexer forever;
- a document Elasticsearch refuses (4xx, e.g. a mapping conflict): a ``Rejection`` of kind
  ``rejected`` at once.

``newswire_store_bulk_failures_total{cause}`` counts the 429/5xx answers. Secrets come from
``SearchSettings`` as ``SecretStr`` and are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from prometheus_client import Counter

from indexer import query as q
from indexer.store import (
    SNIPPET_CHARS,
    Rejection,
    SearchRequest,
    SearchResult,
    StoreError,
    StoreUnavailable,
    aggregation_groups,
    aggregations,
    effective_published,
    hit_from_article,
    paged,
    place_keys,
    plain_snippet,
    to_iso,
    validate,
)
from newswire.records import Article
from newswire.settings import SearchSettings

log = logging.getLogger(__name__)

STORE_KIND = "elastic"  # cursors name the store kind that made them
FAILURES = Counter("newswire_store_bulk_failures_total",
                   "Retryable answers to bulk writes: per document (item_429, item_5xx) or "
                   "per request (bulk_429)", ["cause"])
_KEYWORD = {"type": "keyword"}


def index_template(prefix: str) -> dict[str, Any]:
    """The body of ``PUT _index_template/{prefix}-articles``."""
    keyword_fields = {name: dict(_KEYWORD) for name in q.KEYWORD_FIELDS}
    text_field = {
        "type": "text", "analyzer": "newswire_english",
        "fields": {"std": {"type": "text", "analyzer": "standard"},
                   "english": {"type": "text", "analyzer": "english"}},
    }
    return {
        "index_patterns": [f"{prefix}-articles-*"],
        "priority": 200,
        "template": {
            "settings": {
                "number_of_shards": 1,
                "analysis": {
                    "tokenizer": {"newswire_alnum": {"type": "pattern",
                                                     "pattern": "[^\\p{L}\\p{N}]+"}},
                    "filter": {"newswire_snowball_en": {"type": "snowball",
                                                        "language": "English"}},
                    "analyzer": {"newswire_english": {
                        "type": "custom", "tokenizer": "newswire_alnum",
                        "filter": ["lowercase", "newswire_snowball_en"]}},
                },
            },
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "title": text_field,
                    "text": text_field,
                    **keyword_fields,
                    "published": {"type": "date"},
                    "ingested": {"type": "date"},
                    "geo": {"type": "geo_point"},
                    "places": {"type": "keyword"},
                    "conflict_score": {"type": "float"},
                    "article": {"type": "object", "enabled": False},
                },
            },
        },
        "_meta": {"description": "newswire articles; monthly indices behind the alias",
                  "schema": 1},
    }


def es_document(article: Article) -> dict[str, Any]:
    """The Elasticsearch ``_source`` of an article (pure)."""
    plain = article.model_dump(mode="json")
    texts = q.text_values(plain)
    body: dict[str, Any] = {
        "title": texts["title"],
        "text": texts["text"],
        **{k: list(v) for k, v in q.keyword_values(plain).items()},
        "published": to_iso(effective_published(article)),
        "ingested": to_iso(article.ingested),
        # a bad geocode must not cost the article: out-of-range points are left off the map
        "geo": [{"lat": loc.lat, "lon": loc.lon} for loc in article.locations
                if -90 <= loc.lat <= 90 and -180 <= loc.lon <= 180],
        "places": place_keys(article),
        "conflict_score": article.conflict_score,
        "article": {k: v for k, v in plain.items() if k not in ("title", "text")},
    }
    return body


def _unavailable(exc: Exception) -> bool:
    if isinstance(exc, ApiError):
        return exc.meta.status == 429 or exc.meta.status >= 500
    return isinstance(exc, TransportError)  # connection refused, timeout, TLS...


class ElasticStore:
    """A :class:`indexer.store.SearchStore` on Elasticsearch (or noida's ES API in tests)."""

    def __init__(self, client: Elasticsearch, prefix: str = "newswire", *,
                 chunk_size: int = 500, max_retries: int = 4, initial_backoff: float = 0.5,
                 max_backoff: float = 5.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.clock = clock  # which month's index is the write index (tests move it)
        self.prefix = prefix
        self.alias = f"{prefix}-articles"
        self.template = f"{prefix}-articles"
        self.chunk_size = chunk_size
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._write_index: str | None = None

    @classmethod
    def from_settings(cls, search: SearchSettings) -> ElasticStore:
        if not search.elasticsearch_url:
            raise StoreError("search.elasticsearch_url is not set")
        kwargs: dict[str, Any] = {
            "request_timeout": 30, "max_retries": 3, "retry_on_timeout": True,
            "retry_on_status": (502, 503, 504), "verify_certs": search.verify_certs,
        }
        if search.api_key is not None:
            kwargs["api_key"] = search.api_key.get_secret_value()
        elif search.username:
            password = search.password.get_secret_value() if search.password else ""
            kwargs["basic_auth"] = (search.username, password)
        if search.ca_certs:
            kwargs["ca_certs"] = str(search.ca_certs)
        return cls(Elasticsearch(search.elasticsearch_url, **kwargs), search.index_prefix)

    def monthly_index(self, when: datetime) -> str:
        return f"{self.alias}-{when.astimezone(UTC):%Y.%m}"

    # -- lifecycle

    def ensure(self) -> None:
        try:
            self.client.indices.put_index_template(name=self.template,
                                                   **index_template(self.prefix))
            self._ensure_write_index(self.clock())
        except (ApiError, TransportError) as exc:
            if _unavailable(exc):
                raise StoreUnavailable(f"elasticsearch unavailable: {exc}") from exc
            raise StoreError(f"elasticsearch refused the template/index: {exc}") from exc

    def _ensure_write_index(self, now: datetime) -> str:
        name = self.monthly_index(now)
        if self._write_index == name:
            return name
        if not self.client.indices.exists(index=name):
            try:
                self.client.indices.create(index=name)
            except ApiError as exc:
                if "already_exists" not in str(exc):
                    raise
        actions: list[dict[str, Any]] = [
            {"add": {"index": name, "alias": self.alias, "is_write_index": True}}]
        current: Any
        try:
            current = self.client.indices.get_alias(name=self.alias)
        except NotFoundError:
            current = {}
        for other in current:
            if other != name:
                actions.append({"add": {"index": other, "alias": self.alias,
                                        "is_write_index": False}})
        self.client.indices.update_aliases(actions=actions)
        log.info("write index ready index=%s alias=%s", name, self.alias)
        self._write_index = name
        return name

    def close(self) -> None:
        self.client.close()

    # -- writes

    def _existing(self, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        try:
            found = self.client.search(index=self.alias, query={"ids": {"values": ids}},
                                       size=len(ids), source=False)
        except NotFoundError:
            return {}
        return {h["_id"]: h["_index"] for h in found["hits"]["hits"]}

    def upsert(self, articles: Sequence[Article]) -> list[Rejection]:
        rejections: list[Rejection] = []
        valid: dict[str, Article] = {}
        for article in articles:
            reason = validate(article)
            if reason is None:
                valid[article.id] = article  # last one wins within a batch
            else:
                rejections.append(Rejection(article.id, reason))
        if not valid:
            return rejections
        written = 0
        failed: dict[str, tuple[int, str]] = {}
        try:
            write_index = self._ensure_write_index(self.clock())
            existing = self._existing(list(valid))
            pending = {id_: (existing.get(id_, write_index), es_document(article))
                       for id_, article in valid.items()}
            delay = self.initial_backoff
            for round_ in range(self.max_retries + 1):
                if round_:
                    time.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
                done, refused, failed = self._bulk_round(pending)
                written += done
                rejections += refused
                pending = {id_: pending[id_] for id_ in failed}
                if not pending:
                    break
        except (ApiError, TransportError) as exc:
            if _unavailable(exc):
                raise StoreUnavailable(f"elasticsearch unavailable: {exc}") from exc
            raise StoreError(f"elasticsearch bulk failed: {exc}") from exc
        if not failed:
            return rejections
        attempts = self.max_retries + 1
        overloaded = sum(1 for status, _ in failed.values() if status == 429)
        if overloaded or (not written and not self._usable()):
            # Written in part: retrying the whole batch is safe (same ids overwrite).
            raise StoreUnavailable(f"{len(failed)} documents not written after {attempts} "
                                   f"attempts ({overloaded} answered 429)")
        for id_, (status, error) in failed.items():
            log.warning("document failed on every attempt id=%s attempts=%d status=%d error=%s",
                        id_, attempts, status, error[:200])
            rejections.append(Rejection(id_, f"status {status} on each of {attempts} "
                                             f"attempts: {error}", kind="store_5xx"))
        return rejections

    def _bulk_round(self, pending: dict[str, tuple[str, dict[str, Any]]],
                    ) -> tuple[int, list[Rejection], dict[str, tuple[int, str]]]:
        """Send every pending document once: (written, refused, failed id -> (status, error)).
        A chunk answered 429 as a whole counts as failed item by item; any other failure of
        a whole request raises."""
        written, refused, failed = 0, [], {}
        ids = list(pending)
        for start in range(0, len(ids), self.chunk_size):
            chunk = ids[start:start + self.chunk_size]
            operations: list[dict[str, Any]] = []
            for id_ in chunk:
                index, source = pending[id_]
                operations += [{"index": {"_index": index, "_id": id_}}, source]
            try:
                answer = self.client.bulk(operations=operations)
            except ApiError as exc:
                if exc.meta.status != 429:
                    raise
                FAILURES.labels("bulk_429").inc()
                failed.update({id_: (429, "bulk request answered 429") for id_ in chunk})
                continue
            for item in answer["items"]:
                info = next(iter(item.values()))
                id_, status = str(info.get("_id")), int(info.get("status", 0))
                error = info.get("error")
                kind = error.get("type") if isinstance(error, dict) else "error"
                reason = error.get("reason") if isinstance(error, dict) else str(error)
                if 200 <= status < 300:
                    written += 1
                elif status == 429 or status >= 500:
                    FAILURES.labels("item_429" if status == 429 else "item_5xx").inc()
                    failed[id_] = (status, f"{kind}: {reason}")
                else:
                    refused.append(Rejection(id_, f"{kind}: {reason}"))
        return written, refused, failed

    def _usable(self) -> bool:
        """Whether the cluster says our indices can take writes (not red). Unknown (no
        answer) counts as not usable: documents are not blamed for an outage."""
        try:
            health = self.client.cluster.health(index=self.alias, timeout="5s")
        except ApiError as exc:  # 408: timed out waiting, the body still has the status
            body = exc.body if isinstance(exc.body, dict) else {}
            return body.get("status") in ("green", "yellow")
        except TransportError:
            return False
        return health.get("status") in ("green", "yellow")

    def refresh(self) -> None:
        try:
            self.client.indices.refresh(index=self.alias)
        except NotFoundError:
            pass

    # -- reads

    def count(self) -> int:
        try:
            return int(self.client.count(index=self.alias)["count"])
        except NotFoundError:
            return 0

    def get(self, id: str) -> dict[str, Any] | None:
        try:
            found = self.client.search(index=self.alias, query={"ids": {"values": [id]}},
                                       size=1)
        except NotFoundError:
            return None
        hits = found["hits"]["hits"]
        return self._stored(hits[0]["_source"]) if hits else None

    @staticmethod
    def _stored(source: dict[str, Any]) -> dict[str, Any]:
        article = dict(source.get("article") or {})
        article["title"] = source.get("title") or None
        article["text"] = source.get("text") or ""
        return article

    def search(self, req: SearchRequest) -> SearchResult:
        started = time.perf_counter()
        parsed = q.parse(req.query)
        by_date = req.sort == "date"
        sort: list[Any] = ([{"published": "desc"}, {"id": "asc"}] if by_date
                           else ["_score", {"published": "desc"}, {"id": "asc"}])
        after = req.after()
        if after is not None:
            after.check(STORE_KIND, len(sort))
        facet_filters = {name: {"terms": {name: list(values)}}
                         for name, values in req.filters().items()}
        dates: list[dict[str, Any]] = []
        if req.since is not None or req.until is not None:
            bounds: dict[str, str] = {}
            if req.since is not None:
                bounds["gte"] = to_iso(req.since) or ""
            if req.until is not None:
                bounds["lt"] = to_iso(req.until) or ""
            dates.append({"range": {"published": bounds}})
        text = q.to_elasticsearch(parsed)
        # Facet filters go to post_filter, so each facet's aggregation can leave its own out.
        query: dict[str, Any] = {"bool": {"must": [text], "filter": dates}}
        size, offset = req.fetch_window()
        aggs = {f"__g{i}": {"filter": {"bool": {"filter": [
                    f for name, f in facet_filters.items() if name not in leave_out]}},
                            "aggs": group}
                for i, (leave_out, group) in enumerate(aggregation_groups(req))}
        body: dict[str, Any] = {"query": query, "size": size, "sort": sort,
                                "track_total_hits": True}
        if after is not None:
            body["search_after"] = list(after.key)
        else:
            body["from"] = offset
        if facet_filters:
            body["post_filter"] = {"bool": {"filter": list(facet_filters.values())}}
        if aggs:
            body["aggs"] = aggs
        positive = q.positive_text(parsed)
        if positive is not None:
            body["highlight"] = {
                "fields": {"text": {"fragment_size": SNIPPET_CHARS, "number_of_fragments": 1}},
                "pre_tags": ["<mark>"], "post_tags": ["</mark>"], "encoder": "html",
                "highlight_query": q.to_elasticsearch(positive),
            }
        found = self._call(lambda: self.client.search(index=self.alias, **body), "search")
        if found is None:
            return SearchResult(0, [], {f: [] for f in req.facets}, [], req.page, req.size)

        total = int(found["hits"]["total"]["value"])
        hits, keys = [], []
        for h in found["hits"]["hits"]:
            article = self._stored(h["_source"])
            hit = hit_from_article(article, None if by_date else h.get("_score"))
            fragments = (h.get("highlight") or {}).get("text") or []
            hit["snippet"] = fragments[0] if fragments else plain_snippet(article["text"])
            hits.append(hit)
            keys.append(tuple(h.get("sort") or ()))
        everything = {"bool": {"must": [text],
                               "filter": dates + list(facet_filters.values())}}
        hits, next_cursor = paged(req, total, hits, keys,
                                  lambda stories: self._story_counts(everything, stories),
                                  STORE_KIND)
        result_aggs: dict[str, Any] = {}
        for group in (found.get("aggregations") or {}).values():
            result_aggs.update({k: v for k, v in group.items() if isinstance(v, dict)})
        facets, histogram, places = aggregations(result_aggs, req)
        took = (time.perf_counter() - started) * 1000
        return SearchResult(total, hits, facets, histogram, req.page, req.size, round(took, 2),
                            places, next_cursor)

    def _call(self, request: Callable[[], Any], what: str) -> Any:
        """One read request; None when the alias does not exist yet (nothing indexed)."""
        try:
            return request()
        except NotFoundError:
            return None
        except (ApiError, TransportError) as exc:
            if _unavailable(exc):
                raise StoreUnavailable(f"elasticsearch unavailable: {exc}") from exc
            raise StoreError(f"elasticsearch {what} failed: {exc}") from exc

    def _story_counts(self, query: dict[str, Any], stories: list[str]) -> dict[str, int]:
        if not stories:
            return {}
        restricted = {"bool": {"must": [query], "filter": [{"terms": {"story_id": stories}}]}}
        found = self._call(lambda: self.client.search(
            index=self.alias, query=restricted, size=0,
            aggs={"s": {"terms": {"field": "story_id", "size": len(stories)}}}), "search") or {}
        buckets = (found.get("aggregations") or {}).get("s", {}).get("buckets", [])
        return {b["key"]: int(b["doc_count"]) for b in buckets}
