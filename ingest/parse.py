"""Feed bytes -> entries (pure: no network, no clock unless given, no Kafka).

feedparser does the parsing (it tolerates malformed XML and reports ``bozo``); this module
turns its output into ``FeedEntry`` records, keeps every entry accounted for (an entry that
cannot become a record is listed in ``rejected`` with a reason), and defends against XML
entity expansion, which feedparser alone does not fully stop (see ``defuse_entities``).
"""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from newswire.keys import canonical_url, text_hash, url_key
from newswire.records import FeedEntry

SUMMARY_CHARS = 600
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # older "published" dates are feed bugs
FUTURE_SLACK = timedelta(days=1)  # scheduled posts and wrong time zones, not year 9999
TITLE_CHARS = 500
# Total characters internal entities may expand to before their declarations are dropped.
MAX_ENTITY_EXPANSION = 1_000_000

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECL = re.compile(
    rb"<!ENTITY\s+(%\s+)?([^\s\"'>]+)\s*(\"[^\"]*\"|'[^']*')?[^>]*>", re.IGNORECASE
)
_TAG = re.compile(r"<[^>]*>")
_BLOCK_TAG = re.compile(
    r"</?(?:p|br|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|pre|hr|section|article|figure)"
    r"\b[^>]*>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>])",
                         re.IGNORECASE | re.DOTALL)
_UPDATE_PERIODS = {"hourly": 3600.0, "daily": 86_400.0, "weekly": 604_800.0,
                   "monthly": 2_592_000.0, "yearly": 31_536_000.0}


REASON_TEXT = {
    "html_not_feed": "the URL serves an HTML page, not a feed (try `newswire feeds add` on it)",
    "not_a_feed": "the document is neither RSS nor Atom",
    "empty_body": "the response was empty",
}
# feedparser's bozo "exceptions" that are only warnings about a well-formed document.
_HARMLESS_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


@dataclass(frozen=True)
class Rejection:
    """An entry of the feed that did not become a record, and why."""

    index: int
    reason: str  # "no_link", "non_http_link", "bad_link"
    title: str | None = None
    link: str | None = None
    guid: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    url: str
    entries: tuple[FeedEntry, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    total: int = 0  # entries feedparser found = len(entries) + len(rejected)
    title: str | None = None
    version: str | None = None  # feedparser's name of the format ("rss20", "atom10", ...)
    # None = a feed; "html_not_feed", "not_a_feed", "empty_body", "malformed_feed" (bozo and
    # not one entry recovered: the bozo text says why)
    reason: str | None = None
    bozo: str | None = None  # what feedparser found malformed (entries may still be there)
    ttl_seconds: float | None = None  # RSS <ttl>
    update_seconds: float | None = None  # sy:updatePeriod / sy:updateFrequency
    hub: str | None = None  # WebSub hub
    self_url: str | None = None  # the feed's own URL (rel="self")
    site_url: str | None = None  # the site the feed belongs to
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. "entity declarations removed"

    @property
    def ok(self) -> bool:
        return self.reason is None


def defuse_entities(body: bytes) -> tuple[bytes, bool]:
    """Drop internal entity declarations whose expansion could blow up the parser.

    feedparser keeps "safe" declarations (no nested references), but one 100 KB entity
    referenced 30,000 times still expands to gigabytes (a quadratic blow-up). We estimate the
    expansion (value length x references) and, past ``MAX_ENTITY_EXPANSION``, remove every
    declaration: the references are then left as text by feedparser's loose parser.
    """
    head_match = _DOCTYPE.search(body, 0, 8192)
    if head_match is None:
        return body, False
    end = body.find(b"]>", head_match.start())
    if end < 0:
        return body, False
    subset = body[head_match.start():end]
    declarations = list(_ENTITY_DECL.finditer(subset))
    if not declarations:
        return body, False
    rest = body[end:]
    expansion = 0
    for decl in declarations:
        value = decl.group(3) or b""
        name = decl.group(2)
        refs = rest.count(b"&" + name + b";") + subset.count(b"&" + name + b";")
        expansion += max(len(value), 1) * max(refs, 1) * (10 if b"&" in value else 1)
    if expansion <= MAX_ENTITY_EXPANSION:
        return body, False
    cleaned = _ENTITY_DECL.sub(b"", subset)
    return body[:head_match.start()] + cleaned + rest, True


def plain_text(value: str | None, limit: int) -> str | None:
    """HTML fragment -> short plain text (tags dropped, entities decoded, spaces collapsed)."""
    if not value:
        return None
    text = _SPACE.sub(" ", html.unescape(_TAG.sub("", _BLOCK_TAG.sub(" ", value)))).strip()
    if not text:
        return None
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > limit // 2 else limit].rstrip() + "…"
    return text


def _struct_to_datetime(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _http(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme.lower() in ("http", "https")


def _resolve(base: str, link: str) -> str:
    """Resolve a relative link against the feed; a link that names a scheme or starts with
    `//` but has no host ("http://", "https:///x", "//") stays as written, so it is rejected
    instead of silently becoming the feed's own URL or host."""
    parts = urlsplit(link)
    if (parts.scheme or link.startswith("//")) and not parts.netloc:
        return link
    return urljoin(base, link)


def _link_candidates(entry: Any) -> list[str]:
    found: list[str] = []
    if entry.get("link"):
        found.append(entry["link"])
    for link in entry.get("links") or ():
        if link.get("href") and link.get("rel", "alternate") == "alternate":
            found.append(link["href"])
    guid = entry.get("id")
    if isinstance(guid, str) and guid.lower().startswith(("http://", "https://")):
        found.append(guid)
    return [c.strip() for c in found if isinstance(c, str) and c.strip()]


def _feed_links(feed: Any) -> tuple[str | None, str | None, str | None]:
    hub = self_url = site = None
    for link in feed.get("links") or ():
        rel, href = link.get("rel"), link.get("href")
        if not href:
            continue
        if rel == "hub" and hub is None:
            hub = href
        elif rel == "self" and self_url is None:
            self_url = href
        elif rel == "alternate" and site is None:
            site = href
    return hub, self_url, site or feed.get("link")


def _number(value: Any) -> float | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml"):
        return True
    return bool(_HTML_START.match(body[:2048]))


def parse_feed(body: bytes, url: str, *, headers: dict[str, str] | None = None,
               now: datetime | None = None, feed_url: str | None = None) -> ParsedFeed:
    """Parse one feed document fetched from (or read as) ``url``.

    Never raises for bad input: a document that is not a feed gives ``reason``; entries that
    cannot become records are listed in ``rejected``. ``now`` stamps ``polled_at``;
    ``feed_url`` (default ``url``) names the feed in the records when ``url`` is where the
    document was finally fetched from after redirects.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not body.strip():
        return ParsedFeed(url=url, reason="empty_body")
    body, defused = defuse_entities(body)
    notes = ("entity declarations removed",) if defused else ()
    # No content-location: feedparser would resolve "//" to the feed's own URL; relative
    # links are resolved below by _resolve, which rejects links that name no host.
    response_headers = {"content-type": headers.get("content-type", "application/xml")}
    parsed = feedparser.parse(body, response_headers=response_headers, sanitize_html=True,
                              resolve_relative_uris=True)
    feed = parsed.get("feed", {})
    bozo = str(parsed.get("bozo_exception") or "") or None if parsed.get("bozo") else None
    hub, self_url, site = _feed_links(feed)
    raw_entries = parsed.get("entries") or []
    if not raw_entries and (not parsed.get("version") or looks_like_html(body, headers.get("content-type"))):
        reason = "html_not_feed" if looks_like_html(body, headers.get("content-type")) else "not_a_feed"
        return ParsedFeed(url=url, reason=reason, bozo=bozo, notes=notes,
                          title=plain_text(feed.get("title"), TITLE_CHARS))
    if not raw_entries and bozo and not isinstance(parsed.get("bozo_exception"), _HARMLESS_BOZO):
        # Broken XML that yielded nothing (a truncated body, an undefined entity...): an
        # error of the feed, not an empty success, so the feed shows it and backs off.
        return ParsedFeed(url=url, reason="malformed_feed", bozo=bozo, notes=notes,
                          version=parsed.get("version") or None,
                          title=plain_text(feed.get("title"), TITLE_CHARS))

    # Relative links left after feedparser's own xml:base handling are resolved against the
    # feed's URL, or when that is not http (a local file) against the feed's self/site link.
    base = url if _http(url) else (self_url if _http(self_url) else (site if _http(site) else url))
    stamp = {"polled_at": now} if now is not None else {}
    latest = (now or datetime.now(UTC)) + FUTURE_SLACK
    entries: list[FeedEntry] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(raw_entries):
        title = plain_text(item.get("title"), TITLE_CHARS)
        guid = item.get("id") if isinstance(item.get("id"), str) else None
        candidates = [_resolve(base, c) for c in _link_candidates(item)]
        link = next((c for c in candidates if _http(c)), None)
        if link is None:
            reason = "non_http_link" if candidates else "no_link"
            rejected.append(Rejection(index, reason, title, candidates[0] if candidates else None,
                                      guid))
            continue
        try:
            canonical = canonical_url(link)
            key = url_key(link)
        except ValueError:
            rejected.append(Rejection(index, "bad_link", title, link, guid))
            continue
        summary = plain_text(item.get("summary") or item.get("description"), SUMMARY_CHARS)
        published = None
        for name in ("published_parsed", "updated_parsed", "created_parsed"):
            published = _struct_to_datetime(item.get(name))
            if published is not None:
                break
        if published is not None and not (EARLIEST <= published <= latest):
            # A date the feed cannot mean (year 1, 9999) would sort above every real story
            # forever: unknown is the honest answer.
            published = None
        entries.append(FeedEntry(
            key=key, url=canonical, link=link, guid=guid, title=title, summary=summary,
            published=published, feed=feed_url or url, source=urlsplit(canonical).hostname or "",
            content_hash=text_hash(title, summary), **stamp,
        ))

    ttl = _number(feed.get("ttl"))
    period = _UPDATE_PERIODS.get(str(feed.get("sy_updateperiod", "")).strip().lower())
    frequency = _number(feed.get("sy_updatefrequency")) or 1.0
    return ParsedFeed(
        url=url, entries=tuple(entries), rejected=tuple(rejected), total=len(raw_entries),
        title=plain_text(feed.get("title"), TITLE_CHARS), version=parsed.get("version") or None,
        reason=None, bozo=bozo, ttl_seconds=ttl * 60 if ttl else None,
        update_seconds=period / frequency if period else None,
        hub=hub, self_url=self_url, site_url=site, notes=notes,
    )
