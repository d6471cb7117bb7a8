"""Feed lists: plain text (one URL a line, '#' comments) or OPML, in and out (pure)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr


@dataclass(frozen=True)
class ListedFeed:
    url: str
    title: str | None = None


class FeedListError(ValueError):
    """The file is neither a URL list nor readable OPML."""


def parse_opml(data: bytes) -> list[ListedFeed]:
    """Every outline with an ``xmlUrl``, at any depth (categories are folders)."""
    if b"<!ENTITY" in data[:65_536]:  # a feed list has no use for entities: refuse expansion tricks
        raise FeedListError("OPML with entity declarations is not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise FeedListError(f"not readable OPML: {exc}") from exc
    kind = root.tag.rsplit("}", 1)[-1].lower()
    if kind in ("rss", "feed", "rdf"):  # people do hand a feed itself to `feeds import`
        raise FeedListError(f"this is a feed (<{kind}>), not a feed list: add its URL with "
                            "`newswire feeds add URL`")
    if kind != "opml":
        raise FeedListError(f"not OPML: the document is <{kind}>, OPML is <opml>")
    found: dict[str, ListedFeed] = {}  # first one wins; a dict keeps 10,000 feeds linear
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url and url not in found:
            found[url] = ListedFeed(url, outline.get("title") or outline.get("text"))
    return list(found.values())


def parse_feed_list(data: bytes) -> list[ListedFeed]:
    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    if text.lstrip().startswith("<"):
        return parse_opml(data)
    urls: dict[str, ListedFeed] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if line and line not in urls:
            urls[line] = ListedFeed(line)
    return list(urls.values())


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a feed address, or None when it can."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return "not an http(s) URL"
    if not parts.hostname:
        return "no host in the URL"
    if any(c.isspace() for c in url):
        return "spaces in the URL"
    return None


def read_feed_list(path: Path) -> list[ListedFeed]:
    return parse_feed_list(Path(path).read_bytes())


def to_opml(feeds: list[ListedFeed], title: str = "newswire feeds") -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">',
             f"  <head><title>{_text(title)}</title></head>", "  <body>"]
    for feed in feeds:
        label = quoteattr(feed.title or feed.url)
        lines.append(f'    <outline type="rss" text={label} title={label} xmlUrl={quoteattr(feed.url)}/>')
    lines += ["  </body>", "</opml>"]
    return "\n".join(lines) + "\n"


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
