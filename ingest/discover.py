"""Feed discovery from a site's HTML page (pure): ``<link rel="alternate">`` and common paths."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

FEED_TYPES = frozenset({
    "application/rss+xml", "application/atom+xml", "application/rdf+xml",
    "application/feed+json", "application/json+feed", "application/xml", "text/xml",
})
# Tried in order when a page names no feed; most CMSs serve one of these.
COMMON_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml",
                "/feeds/posts/default", "/?feed=rss2", "/rss/index.xml", "/feed/")


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[str, str]] = []  # (href, type)
        self.anchors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        elif tag == "link":
            rels = values.get("rel", "").lower().split()
            if "alternate" in rels and values.get("href"):
                self.links.append((values["href"], values.get("type", "").lower().strip()))
        elif tag == "a" and values.get("href"):
            href = values["href"]
            lowered = href.lower()
            if lowered.endswith((".rss", ".xml", ".atom", "/feed", "/rss", "/feed/", "/rss/")):
                self.anchors.append(href)


def discover_feed_links(html: bytes | str, base_url: str) -> list[str]:
    """Absolute feed URLs a page announces, best first (declared links, then likely anchors)."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    collector = _LinkCollector()
    try:
        collector.feed(text[:2_000_000])
        collector.close()
    except Exception:  # html.parser is lenient; a pathological page just yields what we have
        pass
    base = urljoin(base_url, collector.base) if collector.base else base_url
    found: list[str] = []
    for href, kind in collector.links:
        if kind in FEED_TYPES or (not kind and href.lower().endswith((".rss", ".xml", ".atom"))):
            found.append(urljoin(base, href.strip()))
    for href in collector.anchors:
        found.append(urljoin(base, href.strip()))
    unique: list[str] = []
    for url in found:
        if urlsplit(url).scheme in ("http", "https") and url not in unique:
            unique.append(url)
    return unique


def common_feed_urls(site_url: str) -> list[str]:
    return [urljoin(site_url, path) for path in COMMON_PATHS]
