"""The search store interface: one Protocol, two implementations, same behaviour.

- :class:`indexer.embedded.EmbeddedStore`: tantivy index under ``settings.data_dir / "index"``
  (the default; chosen by measurement, see ``bench/store_choice.py``).
- :class:`indexer.elastic.ElasticStore`: Elasticsearch (production), monthly indices behind
  a write alias.

Use :func:`open_store` to get the configured one. Queries use the language of
``indexer.query`` on both; facets, date histogram, snippets and story collapsing behave the
same way (the tests run the same requests on both and compare).

Search API for the web page / HTTP API::

    store = open_store(settings)          # readers never take the index writer
    result = store.search(SearchRequest(query="airstrikes", countries=("SY",), size=20))
    result.to_json()                      # {"total", "hits", "facets", "histogram", ...}

Hit dicts (``SearchResult.hits``): ``id, url, title, published (ISO-8601 UTC or None),
source, language, conflicts (ids), event_types (ids), countries, actors, story_id,
locations ([{name, country, lat, lon}]), image, snippet, score`` and, when the request
collapses stories, ``more_outlets`` (int) and ``duplicates`` ([{id, url, title, source}]).
``snippet`` is HTML: escaped text with ``<mark>...</mark>`` around matched words.

``SearchResult.places`` (for the map): the most mentioned locations over *all* matching
articles, ``[{name, country, lat, lon, count}]`` by count, ``SearchRequest.places`` of them.

Facets are multi-select: each facet's counts apply every filter but its own (see
:func:`aggregation_groups`). Deep paging: ``SearchResult.next_cursor`` goes into the next
``SearchRequest(cursor=...)`` (same query, filters, dates and sort), at any depth::

    result = store.search(SearchRequest(query="airstrikes", sort="date", size=100))
    while result.next_cursor:
        result = store.search(SearchRequest(query="airstrikes", sort="date", size=100,
                                            cursor=result.next_cursor))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from newswire.records import Article

if TYPE_CHECKING:
    from newswire.settings import Settings

FACET_FIELDS: tuple[str, ...] = ("conflicts", "event_types", "countries", "source", "language")
ALL_FACET_FIELDS: tuple[str, ...] = (*FACET_FIELDS, "actors", "feed", "story_id")
INTERVALS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),  # fixed 7-day buckets from the epoch (same on both stores)
}
MAX_WINDOW = 10_000  # page * size cap, like Elasticsearch's default max_result_window
MAX_HISTOGRAM_BUCKETS = 2_000
FACET_SIZE = 20
FACET_FETCH = 200  # terms fetched per facet before the stable sort + cut (same on both stores)
SNIPPET_CHARS = 240
COLLAPSE_FETCH_FACTOR = 5  # hits fetched per shown story when collapsing


class StoreError(Exception):
    """A bug-level failure of the store (bad mapping, corrupt index)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached right now; retry later (transient)."""


@dataclass(frozen=True)
class Rejection:
    """A document the store refused, with why (it goes to the dead-letter topic)."""

    id: str
    reason: str
    # the dead letter's reason: ``rejected`` (refused as it is) or ``store_5xx`` (failed with
    # a server error on every attempt; may well go in when replayed later)
    kind: str = "rejected"


class BadCursor(ValueError):
    """A paging cursor that is damaged, from another store, or continues another search."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the sort key of the last hit shown (``search_after``).

    ``key`` is store-specific (Elasticsearch: the hit's ``sort`` values; embedded: its own),
    ``seen`` counts the hits before this point, ``search`` is ``SearchRequest.fingerprint``.
    Opaque to clients: base64url JSON.
    """

    store: str
    sort: str
    key: tuple[Any, ...]
    seen: int
    search: str

    def encode(self) -> str:
        raw = json.dumps({"v": 1, "b": self.store, "s": self.sort, "k": list(self.key),
                          "n": self.seen, "f": self.search}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            cursor = cls(str(raw["b"]), str(raw["s"]), tuple(raw["k"]), int(raw["n"]),
                         str(raw["f"]))
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
            raise BadCursor(f"not a search cursor: {type(exc).__name__}") from None
        if raw.get("v") != 1 or cursor.seen < 0 or len(cursor.key) > 4:
            raise BadCursor("not a search cursor: unknown version or shape")
        return cursor

    def check(self, store: str, size: int) -> None:
        """A cursor works on the store kind that made it; its key has that store's shape."""
        if self.store != store or len(self.key) != size:
            raise BadCursor(f"this cursor was made by another search store ({self.store!r})")


@dataclass(frozen=True)
class SearchRequest:
    """One search. Filters within a field are ORed, across fields ANDed; all AND the query.

    ``since`` is inclusive and ``until`` exclusive, both on ``published`` (which falls back
    to ``ingested`` for articles without a date). ``page`` is 1-based.
    """

    query: str = "*"
    conflicts: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    size: int = 20
    sort: Literal["relevance", "date"] = "relevance"
    facets: tuple[str, ...] = FACET_FIELDS
    facet_size: int = FACET_SIZE
    histogram: Literal["hour", "day", "week"] | None = "day"
    collapse_stories: bool = False
    places: int = 50  # top places (for the map) over ALL matches; 0 = none
    cursor: str | None = None  # SearchResult.next_cursor of the previous page (deep paging)

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValueError("page must be >= 1")
        if self.cursor is not None:
            if self.page != 1:
                raise ValueError("a cursor replaces page: give one or the other")
            self.after()  # a cursor of another search is refused now, not half-way
        if not 0 <= self.places <= 1000:
            raise ValueError("places must be between 0 and 1000")
        if not 0 <= self.size <= 500:
            raise ValueError("size must be between 0 and 500")
        if self.page * self.size > MAX_WINDOW:
            raise ValueError(f"page * size must not exceed {MAX_WINDOW}")
        if self.sort not in ("relevance", "date"):
            raise ValueError("sort must be 'relevance' or 'date'")
        if self.histogram is not None and self.histogram not in INTERVALS:
            raise ValueError(f"histogram must be one of {sorted(INTERVALS)}")
        unknown = set(self.facets) - set(ALL_FACET_FIELDS)
        if unknown:
            raise ValueError(f"unknown facet fields: {sorted(unknown)}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                object.__setattr__(self, name, value.replace(tzinfo=UTC))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def fingerprint(self) -> str:
        """What a cursor is bound to: the search, not the page size or the facets shown."""
        what = [self.query.strip(), sorted(self.filters().items()), to_iso(self.since),
                to_iso(self.until), self.sort, self.collapse_stories]
        return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]

    def after(self) -> Cursor | None:
        """The decoded cursor (None on a first page); ``BadCursor`` if it is not one of ours
        or continues another search."""
        if self.cursor is None:
            return None
        cursor = Cursor.decode(self.cursor)
        if cursor.search != self.fingerprint() or cursor.sort != self.sort:
            raise BadCursor("this cursor continues another search (query, filters, dates or "
                            "sort changed): start again without it")
        return cursor

    def fetch_window(self) -> tuple[int, int]:
        """(how many hits, from which offset) a store fetches: collapsing fetches more, from
        the start, to fill the page with whole stories."""
        if self.collapse_stories:
            return min(MAX_WINDOW, (self.offset + self.size) * COLLAPSE_FETCH_FACTOR), 0
        return self.size, self.offset

    def filters(self) -> dict[str, tuple[str, ...]]:
        """Filters by index field name, values normalised like the indexed ones."""
        from indexer.query import normalize_keyword

        raw = {"conflicts": self.conflicts, "event_types": self.event_types,
               "countries": self.countries, "source": self.sources, "language": self.languages}
        out = {}
        for name, values in raw.items():
            norm = tuple(v for v in (normalize_keyword(name, x) for x in values) if v)
            if norm:
                out[name] = norm
        return out


@dataclass
class SearchResult:
    total: int
    hits: list[dict[str, Any]]
    facets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    histogram: list[dict[str, Any]] = field(default_factory=list)
    page: int = 1
    size: int = 20
    took_ms: float = 0.0
    places: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None  # for SearchRequest.cursor; None when nothing follows

    def to_json(self) -> dict[str, Any]:
        """The ``newswire search --json`` / API shape."""
        return asdict(self)


@runtime_checkable
class SearchStore(Protocol):
    def ensure(self) -> None:
        """Create what the store needs (index, template, alias); idempotent."""

    def upsert(self, articles: Sequence[Article]) -> list[Rejection]:
        """Write a batch (insert or overwrite by ``Article.id``), durable on return.

        Returns the documents refused with why; raises :class:`StoreUnavailable` when the
        store cannot be reached (nothing of the batch may be assumed written).
        """

    def search(self, req: SearchRequest) -> SearchResult:
        """Run a search; raises ``indexer.query.QuerySyntaxError`` for a bad query."""

    def get(self, id: str) -> dict[str, Any] | None:
        """The stored Article (JSON-mode dict) or None."""

    def count(self) -> int: ...

    def refresh(self) -> None:
        """Make everything written so far visible to searches."""

    def close(self) -> None: ...


def open_store(settings: Settings, *, writer: bool = False) -> SearchStore:
    """The configured store. ``writer=True`` only in the indexer (embedded: one writer process)."""
    if settings.search.uses_elasticsearch:
        from indexer.elastic import ElasticStore

        return ElasticStore.from_settings(settings.search)
    from indexer.embedded import EmbeddedStore

    return EmbeddedStore(settings.data_dir / "index", writer=writer,
                         num_threads=settings.index.embedded_threads)


# ---------------------------------------------------------------- shared pure helpers


def validate(article: Article) -> str | None:
    """Why an article cannot be stored, or None."""
    if not article.id or not article.id.strip():
        return "missing id"
    if len(article.id) > 256:
        return "id longer than 256 characters"
    if not article.url:
        return "missing url"
    if not (article.title or article.text or article.summary):
        return "no title, text or summary to index"
    return None


def effective_published(article: Article) -> datetime:
    """The date searches filter and sort on: published, else ingested."""
    return article.published or article.ingested


def to_iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hit_from_article(doc: Mapping[str, Any], score: float | None) -> dict[str, Any]:
    """The hit dict (without snippet) from a stored Article dict (JSON mode)."""
    from indexer.query import keyword_values

    kw = keyword_values(doc)
    return {
        "id": doc.get("id"),
        "url": doc.get("url"),
        "title": doc.get("title"),
        "published": doc.get("published") or doc.get("ingested"),
        "source": doc.get("source"),
        "language": doc.get("language"),
        "conflicts": list(kw["conflicts"]),
        "event_types": list(kw["event_types"]),
        "countries": list(kw["countries"]),
        "actors": list(doc.get("actors") or ()),
        "story_id": doc.get("story_id"),
        "locations": [dict(loc) for loc in doc.get("locations") or ()],
        "image": doc.get("image"),
        "partial": bool(doc.get("partial")),
        "flags": [str(f) for f in doc.get("flags") or ()],
        "score": None if score is None or math.isnan(score) else round(float(score), 4),
    }


def plain_snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of the text, HTML-escaped: the snippet when nothing is highlighted."""
    text = " ".join((text or "").split())
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > limit // 2 else limit] + " …"
    return html.escape(text, quote=False)


def char_ranges(text: str, byte_ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """UTF-8 byte offsets (what tantivy's snippets report) -> character offsets in ``text``.

    An offset inside a multi-byte character rounds down to that character's start.
    """
    data = text.encode("utf-8")

    def char_at(offset: int) -> int:
        offset = max(0, min(offset, len(data)))
        return len(data[:offset].decode("utf-8", errors="ignore"))

    return [(char_at(start), char_at(end)) for start, end in byte_ranges]


def mark_ranges(fragment: str, ranges: Sequence[tuple[int, int]]) -> str:
    """Escape ``fragment`` and wrap the (char) ranges in ``<mark>``."""
    out, pos = [], 0
    for start, end in sorted(ranges):
        if start < pos:
            continue
        out.append(html.escape(fragment[pos:start], quote=False))
        out.append("<mark>" + html.escape(fragment[start:end], quote=False) + "</mark>")
        pos = end
    out.append(html.escape(fragment[pos:], quote=False))
    return "".join(out)


def collapse(hits: list[dict[str, Any]], story_counts: Mapping[str, int], offset: int,
             size: int) -> list[dict[str, Any]]:
    """Group hits by ``story_id``; keep the best of each story in order, page the groups.

    ``story_counts``: how many matching documents each story has in the whole result, so
    ``more_outlets`` is exact even when not every copy was fetched.
    """
    groups: dict[str, dict[str, Any]] = {}
    order: list[dict[str, Any]] = []
    for hit in hits:
        key = hit.get("story_id") or f"id:{hit['id']}"
        head = groups.get(key)
        if head is None:
            head = {**hit, "duplicates": []}
            groups[key] = head
            order.append(head)
        elif len(head["duplicates"]) < 10:
            head["duplicates"].append({k: hit.get(k) for k in ("id", "url", "title", "source")})
    for head in order:
        story = head.get("story_id")
        total = story_counts.get(story, 1 + len(head["duplicates"])) if story else 1
        head["more_outlets"] = max(total - 1, len(head["duplicates"]))
    return order[offset: offset + size]


def collapse_cut(hits: Sequence[Mapping[str, Any]], groups: int) -> int:
    """How many hits (in order) the first ``groups`` stories take: where the next page of a
    collapsed cursor search starts (the hit that opens story ``groups + 1``)."""
    seen: set[str] = set()
    for i, hit in enumerate(hits):
        key = hit.get("story_id") or f"id:{hit['id']}"
        if key not in seen:
            if len(seen) == groups:
                return i
            seen.add(key)
    return len(hits)


def paged(req: SearchRequest, total: int, hits: list[dict[str, Any]],
          keys: Sequence[tuple[Any, ...]], story_counts: Callable[[list[str]], Mapping[str, int]],
          store: str) -> tuple[list[dict[str, Any]], str | None]:
    """The page shown and its ``next_cursor``, from the hits a store fetched in sort order
    (``req.fetch_window()`` of them) and their sort keys.

    Collapsing groups copies under the best hit of their story; with a cursor it groups the
    hits after the cursor (a story that continues past the page can show up again later,
    as with Elasticsearch's own collapse).
    """
    _, start = req.fetch_window()
    after = req.after()
    if after is not None:
        start = after.seen
    if req.collapse_stories:
        offset = 0 if after is not None else req.offset
        heads = collapse(hits, {}, offset, req.size)
        stories = sorted({h["story_id"] for h in heads if h.get("story_id")})
        page = collapse(hits, story_counts(stories), offset, req.size)
        used = collapse_cut(hits, offset + req.size)
    else:
        page, used = hits[: req.size], min(len(hits), req.size)
    if not page or not used or start + used >= total:
        return page, None
    cursor = Cursor(store, req.sort, tuple(keys[used - 1]), start + used, req.fingerprint())
    return page, cursor.encode()


HISTOGRAM_INTERVALS = {"hour": "1h", "day": "1d", "week": "7d"}


def aggregation_groups(req: SearchRequest, fetch: int = FACET_FETCH,
                       ) -> list[tuple[frozenset[str], dict[str, Any]]]:
    """The aggregations of a search (Elasticsearch JSON, which tantivy speaks too), grouped by
    the facet filters each must leave out.

    Facets are multi-select (as in Kibana): a facet's counts are computed with every filter
    but its own, so a user who picked country=SY still sees the other countries' counts to
    widen the choice. The histogram, the places and facets without a filter of their own see
    all filters (group ``frozenset()``); each filtered facet gets its own group.
    """
    filtered = req.filters()

    def terms(name: str) -> dict[str, Any]:
        return {"terms": {"field": name, "size": max(fetch, req.facet_size)}}

    main: dict[str, Any] = {f: terms(f) for f in req.facets if f not in filtered}
    if req.histogram:
        main["__histogram"] = {"date_histogram": {
            "field": "published", "fixed_interval": HISTOGRAM_INTERVALS[req.histogram],
            "min_doc_count": 1}}
    if req.places:
        main["__places"] = {"terms": {"field": "places", "size": req.places * 2}}
    groups: list[tuple[frozenset[str], dict[str, Any]]] = [(frozenset(), main)] if main else []
    groups += [(frozenset({f}), {f: terms(f)}) for f in req.facets if f in filtered]
    return groups


def histogram_buckets(counts: Mapping[datetime, int], interval: str, since: datetime | None,
                      until: datetime | None) -> list[dict[str, Any]]:
    """Gap-filled buckets ``[{"date": ISO, "count": n}]`` from bucket start -> count."""
    if not counts and (since is None or until is None):
        return []
    step = INTERVALS[interval]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def floor(t: datetime) -> datetime:
        return epoch + ((t - epoch) // step) * step

    keys = sorted(counts)
    first = floor(since) if since is not None else keys[0]
    last = floor(until - timedelta(microseconds=1)) if until is not None else keys[-1]
    if counts:
        first, last = min(first, keys[0]), max(last, keys[-1])
    if (last - first) / step > MAX_HISTOGRAM_BUCKETS:  # huge ranges: the non-empty buckets only
        return [{"date": to_iso(k), "count": counts[k]} for k in keys]
    out, t = [], first
    while t <= last:
        out.append({"date": to_iso(t), "count": int(counts.get(t, 0))})
        t += step
    return out


PLACE_SEP = "|"


def place_keys(article: Article) -> list[str]:
    """One keyword per location, ``name|country|lat|lon``: the map aggregates on these."""
    keys: dict[str, None] = {}
    for loc in article.locations:
        if -90 <= loc.lat <= 90 and -180 <= loc.lon <= 180:
            name = loc.name.replace(PLACE_SEP, " ").strip()
            keys[f"{name}{PLACE_SEP}{loc.country or ''}{PLACE_SEP}{loc.lat:.4f}"
                 f"{PLACE_SEP}{loc.lon:.4f}"] = None
    return list(keys)


def place_list(buckets: Sequence[tuple[str, int]], size: int) -> list[dict[str, Any]]:
    out = []
    for item in facet_list(buckets, size):
        parts = item["value"].split(PLACE_SEP)
        if len(parts) != 4:
            continue
        try:
            lat, lon = float(parts[2]), float(parts[3])
        except ValueError:
            continue
        out.append({"name": parts[0], "country": parts[1] or None, "lat": lat, "lon": lon,
                    "count": item["count"]})
    return out


def facet_list(buckets: Sequence[tuple[str, int]], size: int) -> list[dict[str, Any]]:
    """Facet values by count desc, then value asc (stable across stores)."""
    ordered = sorted(((str(v), int(c)) for v, c in buckets if c > 0), key=lambda x: (-x[1], x[0]))
    return [{"value": v, "count": c} for v, c in ordered[:size]]


def aggregations(
    result: Mapping[str, Any], req: SearchRequest,
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Facets, histogram and places from Elasticsearch-shaped aggregation results, which
    both stores produce (tantivy's ``searcher.aggregate`` speaks the same JSON)."""
    def buckets(name: str) -> list[Mapping[str, Any]]:
        return list(result.get(name, {}).get("buckets", []))

    facets = {f: facet_list([(b["key"], b["doc_count"]) for b in buckets(f)], req.facet_size)
              for f in req.facets}
    histogram: list[dict[str, Any]] = []
    if req.histogram:
        counts = {datetime.fromtimestamp(b["key"] / 1000, UTC): int(b["doc_count"])
                  for b in buckets("__histogram") if b["doc_count"]}
        histogram = histogram_buckets(counts, req.histogram, req.since, req.until)
    places = place_list([(b["key"], b["doc_count"]) for b in buckets("__places")], req.places)
    return facets, histogram, places
