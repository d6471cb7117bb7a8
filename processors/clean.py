"""The cleaning stage: one fetched page -> ``CleanArticle`` (or a ``Rejected`` reason).

Pure and picklable (the worker runs it in a process pool): no I/O, no clock, no globals
beyond lazily loaded read-only models. Bad input never raises; it gets a stable reason.

How the text is made (measured on fundus-evaluation with ``bench/extraction_bench.py``):
trafilatura in fast mode without comments and tables, then a second opinion from the
publisher's own schema.org ``articleBody`` (JSON-LD) where there is one: it rescues pages
where the extractor lost most of the story and trims boilerplate paragraphs at the edges.
When both give too little, the feed's summary stands in and the article is ``partial``.
Tables stay out: with them F1 drops on fundus (0.960 -> 0.956, one page of market data).

Pathological markup is bounded before and after parsing (``processors.markup_guard``); what
was cut is named in ``flags`` (attributes_trimmed, long_values_emptied, runs_collapsed,
nesting_flattened, truncated). Flags for readers: paywall, cookie_wall, liveblog_index,
summary_fallback, short_text; measured on a labelled set with ``bench/flags_eval.py``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

from newswire.records import Article, CleanArticle, FeedEntry, Tags
from processors.charset import to_utf8
from processors.markup_guard import collapse_runs, flatten_nesting, guard_markup

log = logging.getLogger(__name__)

MAX_BYTES = 16_000_000  # above this a page is refused outright (the fetcher caps at 10 MB)
SOFT_BYTES = 2_000_000  # above this scripts/styles are stripped and the rest truncated
MAX_ELEMENTS = 30_000  # above this extraction takes seconds (news pages: 1-10k elements)
MIN_WORDS = 40  # fewer words than this is not a story on its own
TEASER_WORDS = 250  # a paywall/cookie marker with less text than this is a teaser, not a story


@dataclass(frozen=True)
class Rejected:
    """Why a page gave nothing usable. ``reason`` is a stable short code for counting."""

    reason: str  # empty_body | binary_content | too_large | no_text | javascript_shell | ...
    detail: str = ""


# ---------------------------------------------------------------- input guards

_MAGIC = (
    (b"%PDF", "pdf"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"\xff\xd8\xff", "jpeg"),
    (b"PK\x03\x04", "zip"), (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ", "xz"),
    (b"(\xb5/\xfd", "zstd"), (b"RIFF", "riff"), (b"\x00\x00\x00", "iso-media"),
    (b"OggS", "ogg"), (b"ID3", "mp3"), (b"wOFF", "woff"), (b"wOF2", "woff2"),
    (b"\x7fELF", "elf"), (b"MZ", "exe"), (b"Rar!", "rar"), (b"7z\xbc\xaf", "7z"),
)
_BINARY_TYPES = re.compile(
    r"^\s*(image|audio|video|font)/|^\s*application/(pdf|zip|gzip|x-gzip|octet-stream|"
    r"x-tar|x-7z|vnd\.|msword|x-shockwave|wasm)", re.I)
_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_CONTROL_BYTES = bytes(b for b in range(256) if b < 9 or 13 < b < 32 or b == 127)


def binary_reason(raw: bytes, content_type: str | None = None) -> str | None:
    """Why ``raw`` is not a text page, or None. Looks at magic numbers and control bytes."""
    head = raw[:4096]
    if head.startswith(_TEXT_BOMS):
        return None
    stripped = head.lstrip()
    for magic, name in _MAGIC:
        if stripped.startswith(magic):
            return f"{name} signature"
    if content_type and _BINARY_TYPES.search(content_type) and b"<" not in head[:512]:
        return f"content type {content_type.split(';')[0].strip()}"
    if not head:
        return None
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))  # counted in C
    if controls * 10 > len(head):  # >10% control bytes: not text in any 8-bit charset
        return f"{controls} control bytes in the first {len(head)}"
    return None


_CODE_OPEN = re.compile(rb"<(script|style|svg|noscript)\b")


def _strip_code_blocks(raw: bytes) -> bytes:
    """Remove <script>/<style>/<svg>/<noscript> blocks in one linear pass (a regex with a
    lazy body is quadratic on unclosed tags); an unclosed block ends the page."""
    lower = raw.lower()
    out, pos = [], 0
    while True:
        match = _CODE_OPEN.search(lower, pos)
        if match is None:
            out.append(raw[pos:])
            break
        out.append(raw[pos:match.start()])
        end = lower.find(b"</" + match.group(1), match.end())
        if end < 0:
            break
        close = lower.find(b">", end)
        pos = len(raw) if close < 0 else close + 1
    return b"".join(out)


def _shrink(raw: bytes) -> tuple[bytes, list[str]]:
    """Bound the work on huge pages before anything parses them: drop scripts/styles, then
    huge attribute values, collapse runs of empty elements (a million ``<br>``), and only
    then keep the first SOFT_BYTES. Returns the page and flags naming what was cut."""
    flags: list[str] = []
    if len(raw) <= SOFT_BYTES:
        return raw, flags
    raw = _strip_code_blocks(raw)
    for guard in (guard_markup, collapse_runs):
        if len(raw) > SOFT_BYTES:
            guarded = guard(raw)
            raw = guarded.data
            flags.extend(guarded.repairs)
    if len(raw) > SOFT_BYTES:
        raw = raw[:SOFT_BYTES]
        flags.append("truncated")
    return raw, flags


# ---------------------------------------------------------------- language

_LANG_RE = re.compile(r"^[a-z]{2,3}")


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def normalise_language(code: str | None) -> str | None:
    """'en-US' / 'EN' / 'eng' -> 'en' (ISO 639-1); a language with no two-letter code keeps
    its ISO 639-3 code ('pcm' Nigerian Pidgin, 'yue' Cantonese); None when not a language."""
    if not code:
        return None
    match = _LANG_RE.match(code.strip().lower().replace("_", "-"))
    if not match:
        return None
    value = match.group(0)
    if len(value) == 2:
        return value
    import pycountry

    lang = pycountry.languages.get(alpha_3=value)
    return (getattr(lang, "alpha_2", None) or value) if lang else None


def detect_language(text: str, hint: str | None = None) -> str | None:
    """Language of ``text`` (offline, py3langid), trusting the page's lang hint when the
    text is too short or the model unsure."""
    hint = normalise_language(hint)
    sample = text[:600]
    if len(sample.strip()) < 20:
        return hint
    lang, prob = _identifier().classify(sample)
    lang = normalise_language(lang)
    if prob < 0.5 and hint:
        return hint
    return lang or hint


# ---------------------------------------------------------------- page facts (JSON-LD, meta)

_ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle", "blogposting",
    "opinionnewsarticle", "reviewnewsarticle", "backgroundnewsarticle", "report",
    "socialmediaposting", "scholarlyarticle", "techarticle", "webpage", "liveblogposting",
}


@dataclass
class PageFacts:
    bodies: list[str] = field(default_factory=list)  # articleBody of article objects
    updates: list[str] = field(default_factory=list)  # live-blog updates (headline + body)
    types: set[str] = field(default_factory=set)
    free: bool | None = None  # schema.org isAccessibleForFree
    published: str | None = None
    sections: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    canonical: str | None = None
    lang: str | None = None
    paywall_markup: bool = False
    gated_selectors: list[str] = field(default_factory=list)  # hasPart not free: cssSelector
    gated_parts: int = 0  # hasPart entries not free (with or without a cssSelector)
    liveblog_markup: bool = False
    live_title: bool = False  # the title or URL says "live", "as it happened", "Liveticker"...
    timestamps: int = 0  # <time> elements: a live blog stamps every update
    scripts: int = 0
    visible_chars: int = 0


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _is_false(value: Any) -> bool:
    return value is not None and str(value).strip().lower() in ("false", "0", "no")


def _walk_ld(obj: Any, facts: PageFacts, depth: int = 0) -> None:
    if depth > 8:
        return
    if isinstance(obj, list):
        for item in obj[:50]:
            _walk_ld(item, facts, depth + 1)
        return
    if not isinstance(obj, dict):
        return
    types = {str(t).lower() for t in _as_list(obj.get("@type"))}
    facts.types |= types
    if obj.get("liveBlogUpdate"):  # updates listed under any type: a running page
        facts.liveblog_markup = True
    if types & _ARTICLE_TYPES:
        body = obj.get("articleBody")
        if isinstance(body, str) and "liveblogposting" not in types and depth < 3:
            facts.bodies.append(body)
        for update in _as_list(obj.get("liveBlogUpdate"))[:500]:
            if isinstance(update, dict) and isinstance(update.get("articleBody"), str):
                headline = update.get("headline")
                headline = headline if isinstance(headline, str) else ""
                facts.updates.append(f"{headline}\n{update['articleBody']}".strip())
        for part in _as_list(obj.get("hasPart"))[:20]:
            if isinstance(part, dict) and _is_false(part.get("isAccessibleForFree")):
                facts.gated_parts += 1
                selector = part.get("cssSelector")
                if isinstance(selector, str):
                    facts.gated_selectors.append(selector)
        free = obj.get("isAccessibleForFree")
        if free is not None and facts.free is not False:
            facts.free = str(free).strip().lower() not in ("false", "0", "no")
        if facts.published is None and isinstance(obj.get("datePublished"), str):
            facts.published = obj["datePublished"]
        for sec in _as_list(obj.get("articleSection")):
            if isinstance(sec, str):
                facts.sections.append(sec)
        kw = obj.get("keywords")
        if isinstance(kw, str):
            facts.keywords.extend(k for k in kw.split(","))
        elif isinstance(kw, list):
            facts.keywords.extend(k for k in kw if isinstance(k, str))
    for key in ("@graph", "mainEntity", "mainEntityOfPage"):
        if key in obj:
            _walk_ld(obj[key], facts, depth + 1)


# Class/id names that mark paywalls and live blogs, searched in the joined attribute values.
_MARKERS = re.compile(
    r"paywall|piano-|subscriber-only|premium-content|meteredcontent|regwall|article-locked|"
    r"liveblog|live-blog|live-update")
_LIVEBLOG_MARKERS = frozenset({"liveblog", "live-blog", "live-update"})
_MARKER_BYTES = (b"aywall", b"piano-", b"ubscriber-only", b"remium-content", b"eteredContent",
                 b"egwall", b"rticle-locked", b"iveblog", b"ive-blog", b"ive-update",
                 b"iveBlog", b"ive-Blog")


# Titles and URLs of live pages, in the languages of the sources we poll.
_LIVE_TITLE = re.compile(
    r"\blive\b(?!\s+(?:music|concert|show|stream|tv|album|review|performance))|"
    r"\blatest\s*:|: latest\b|as it happened|minute[- ]by[- ]minute|\bliveticker|\bticker\b|"
    r"en direct|in diretta|en vivo|ao vivo|на живо|онлайн-трансляция|[/-]live[/-]", re.I)
_CONSENT_BUTTON = re.compile(
    r"\baccept|\bagree|\bconsent|i'?m happy|\ballow all|akzeptieren|zustimmen|einverstanden|"
    r"accepter|j'accepte|accetta|acconsento|aceptar|acepto|aceitar|accepteren|akceptuj|"
    r"godkänn|hyväksy|akkoord|d'accord|zgadzam|souhlasím|\bgot it\b|^\s*ok\s*$", re.I)
# A text that is only a clock time: how live blogs stamp each update ("14:05", "9.32am",
# "10:15 GMT", "14:05 Uhr", "20h15").
_CLOCK = re.compile(r"^\s*\d{1,2}\s?[:.h]\s?\d{2}\s*"
                    r"(?:[ap]\.?m\.?|gmt|bst|utc|cet|cest|edt|est|et|pt|uhr|h)?\s*$", re.I)


_SIMPLE_SELECTOR = re.compile(r"^\s*([a-z][a-z0-9]*)?([.#])([\w-]+)\s*$", re.I)


def _withheld(tree: Any, selector: str) -> bool:
    """The paywalled part the publisher names (schema.org hasPart cssSelector) is in the
    page with (almost) no text: readers and we get only what precedes it. When the part
    holds the text (hidden from readers by CSS, shown to crawlers), nothing is withheld
    from us. Simple selectors only (".cls", "#id", "div.cls"), as publishers write them."""
    for one in selector.split(",")[:5]:
        match = _SIMPLE_SELECTOR.match(one)
        if not match:
            continue
        tag, kind, name = match.group(1) or "*", match.group(2), match.group(3)
        test = (f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"
                if kind == "." else f"@id='{name}'")
        nodes = tree.xpath(f"//body//{tag}[{test}]")
        if nodes and all(len(n.text_content().split()) < 20 for n in nodes):
            return True
    return False


def _page_facts(tree: Any, markup: bytes = b"", url: str = "") -> PageFacts:
    facts = PageFacts()
    for script in tree.iterfind(".//script"):
        facts.scripts += 1
        if (script.get("type") or "").lower() != "application/ld+json":
            continue
        raw = (script.text or "").strip()
        if not raw or len(raw) > 2_000_000:
            continue
        try:
            _walk_ld(json.loads(raw), facts)
        except (ValueError, RecursionError):
            continue
    for link in tree.iterfind(".//link"):
        rel = (link.get("rel") or "").lower().split()
        if "canonical" in rel and link.get("href"):
            facts.canonical = link.get("href")
            break
    metas: dict[str, str] = {}
    for meta in tree.iterfind(".//meta"):
        name = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        content = meta.get("content")
        if not name or not content:
            continue
        if name in ("article:tag", "article:section", "news_keywords"):
            (facts.sections if name == "article:section" else facts.keywords).extend(
                content.split(",") if name == "news_keywords" else [content])
        metas.setdefault(name, content)
    if facts.canonical is None and metas.get("og:url"):
        facts.canonical = metas["og:url"]
    for key in ("article:published_time", "og:article:published_time", "datepublished",
                "publishdate", "pubdate", "date", "dc.date.issued", "sailthru.date"):
        if metas.get(key):
            facts.published = facts.published or metas[key]
            break
    if _is_false(metas.get("isaccessibleforfree")):  # microdata <meta itemprop=...>
        facts.free = False
    if metas.get("og:type", "").lower() in ("liveblog", "article:liveblog"):
        facts.liveblog_markup = True
    facts.lang = tree.get("lang") or metas.get("content-language") or metas.get("og:locale")
    found: list[str] = []
    # Most pages name none of the markers anywhere: skip the attribute scan for them.
    if not markup or any(m in markup for m in _MARKER_BYTES):
        found = _MARKERS.findall(" ".join(tree.xpath("//@class|//@id")).lower())
    facts.paywall_markup = any(m not in _LIVEBLOG_MARKERS for m in found)
    # A live blog says so in its structured data; without it, only a page with many
    # update-like elements counts (a "live" badge on a related link does not).
    facts.liveblog_markup = (facts.liveblog_markup or "liveblogposting" in facts.types
                             or sum(m in _LIVEBLOG_MARKERS for m in found) >= 5)
    title = tree.find("head/title")  # a direct path: ".//" walks the tree in Python
    facts.live_title = bool(_LIVE_TITLE.search(" ".join((
        metas.get("og:title", ""), title.text_content() if title is not None else "",
        url))))
    if facts.live_title:  # rare: the cost of looking at short texts is paid only here
        facts.timestamps = max(sum(1 for _ in tree.iter("time")), sum(
            1 for node in tree.iter("span", "div", "p", "small", "strong", "b", "h3", "h4")
            if node.text and len(node.text) < 20 and _CLOCK.match(node.text)
            and len(node) == 0))
    return facts


# ---------------------------------------------------------------- text helpers

_WORD = re.compile(r"\w+")
_COOKIE = re.compile(
    r"\bcookies?\b|\bconsent\b|accept all|manage (your )?(privacy|preferences)|"
    r"privacy settings|we value your privacy|\bGDPR\b|personali[sz]ed (ads|advertising)|"
    r"\b(we|nous|wir|wij) (and|et|und|en) (our|nos|unsere|onze) partner|datenschutz|"
    r"einwilligung|personali[sz]e (content|ads)|analy[sz]e (our|site) traffic|"
    r"alle akzeptieren|consentement|vos choix|\bconsenso\b|informativa|privacidad", re.I)
# Every _PAYWALL_TEXT phrase holds one of these (lower case): the regex runs only then.
_PAYWALL_STEMS = ("subscri", "member", "regist", "sign ", "log in", "join", "continue read",
                  "reached your", "free article", "abonn", "abbonat", "suscript", "assinant",
                  "read the full", "free trial", "unlock", "weiterlesen")
# What a paywall or registration wall tells readers, in the languages of our sources. Only
# looked for on pages that gave little text (a full story with a subscribe box is a story).
_PAYWALL_TEXT = re.compile(
    r"subscribers? only|exclusive(ly)? (to|for) subscribers|available (only )?to (members|"
    r"subscribers)|(subscribe|sign up|register|log in|sign in|join|become a (member|"
    r"subscriber)) (now |today |for free )?to (continue|read|keep reading|unlock)|"
    r"(story|article) is (only )?for (members|subscribers)|for (paying )?members only|"
    r"to continue reading|continue reading with (a|your) subscription|reached your (monthly )?"
    r"(limit|maximum)|free articles? (this|per|a) month|register (for free |now )?to "
    r"(continue|read)|nur für abonnenten|weiterlesen mit \w*\s?(plus|abo)|réservé aux "
    r"abonnés|abonnez-vous pour (lire|continuer)|riservato agli abbonati|(solo|exclusivo) "
    r"para suscriptores|exclusivo para assinantes|to read the full (article|story)|"
    r"(start|begin) your free trial|unlock (this|the full|unlimited)", re.I)
_JS_REQUIRED = re.compile(
    r"enable javascript|javascript (is )?(required|disabled)|turn on javascript|"
    r"browser (does not|doesn't) support javascript", re.I)
_TAGS_RE = re.compile(r"<[^>]{0,500}>")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _body_to_text(body: str) -> str:
    """An ``articleBody`` as plain paragraphs (some publishers put HTML in it)."""
    if "<" in body and ">" in body:
        body = re.sub(r"(?i)</p>|<br\s*/?>", "\n", body)
        body = _TAGS_RE.sub("", body)
    import html

    body = html.unescape(body)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in body.splitlines()]
    return "\n".join(line for line in lines if line)


def _coverage(part: Counter[str], whole: Counter[str]) -> float:
    total = sum(part.values())
    return sum((part & whole).values()) / total if total else 0.0


def _second_opinion(text: str, bodies: list[str]) -> tuple[str, str | None]:
    """Reconcile the extractor's text with the publisher's ``articleBody``.

    Returns the text to keep and a note (for logs/tests) of what was done.
    """
    if not bodies:
        return text, None
    body = _body_to_text(max(bodies, key=len))
    body_words = Counter(_words(body))
    if sum(body_words.values()) < 80:
        return text, None
    text_words = Counter(_words(text))
    # The extractor lost most of a story the publisher itself states: take the publisher's
    # (only when the page states one body: several are a list of stories, not this one).
    if len(set(bodies)) == 1 and _coverage(body_words, text_words) < 0.6 and sum(
            body_words.values()) > sum(text_words.values()):
        return body, "ld_body"
    # Edge paragraphs sharing little with the stated body are boilerplate (related links,
    # newsletter boxes, captions); the middle is left alone, a body may be abridged.
    paras = text.split("\n")
    start, end = 0, len(paras)
    while start < end and _coverage(Counter(_words(paras[start])), body_words) < 0.5:
        start += 1
    while end > start and _coverage(Counter(_words(paras[end - 1])), body_words) < 0.5:
        end -= 1
    if start == 0 and end == len(paras):
        return text, None
    kept = "\n".join(paras[start:end])
    if len(_words(kept)) < 0.5 * sum(text_words.values()):
        return text, None  # trimming that much means the two disagree: trust neither edit
    return kept, "ld_trim"


def _with_updates(text: str, updates: list[str]) -> str:
    """A live blog whose updates (schema.org liveBlogUpdate) say far more than the extracted
    text: keep the text (the intro) and add the updates it does not already contain."""
    if not updates:
        return text
    known = set(text.split("\n"))
    extra = [u for u in (_body_to_text(u) for u in updates) if u and u not in known]
    if sum(len(u.split()) for u in extra) <= 2 * len(text.split()):
        return text
    return "\n".join([text, *extra]) if text else "\n".join(extra)


# ---------------------------------------------------------------- dates, urls, tags

def _parse_date(value: str | None) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value[:10])
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed if 1990 <= parsed.year <= 2100 else None


def _published(page: str | None, extractor: str | None,
               feed: datetime | None) -> datetime | None:
    """The page's declared date (meta/JSON-LD), else the feed's, else the extractor's guess.

    The extractor (htmldate) also guesses from URLs and text: "/2024/03/" becomes March 1st,
    so a timestamp the feed declares beats it.
    """
    feed_utc = None if feed is None else (
        feed.astimezone(UTC) if feed.tzinfo else feed.replace(tzinfo=UTC))
    declared = _parse_date(page)
    if declared is not None:
        # A day-only declaration that matches the feed's day: the feed's time is more precise.
        if len((page or "").strip()) <= 10 and feed_utc and feed_utc.date() == declared.date():
            return feed_utc
        return declared
    return feed_utc or _parse_date(extractor)


def _absolute_http(candidate: str | None, base: str) -> str | None:
    if not candidate:
        return None
    try:
        resolved = urljoin(base, candidate.strip())
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return resolved


def _section_tags(*groups: Any) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for group in groups:
        for raw in _as_list(group):
            if not isinstance(raw, str):
                continue
            value = re.sub(r"\s+", " ", raw).strip()
            if not value or len(value) > 60 or value.lower() in seen:
                continue
            seen[value.lower()] = value
    return tuple(seen.values())[:20]


# ---------------------------------------------------------------- the stage

@lru_cache(maxsize=1)
def _parser() -> Any:
    from lxml.html import HTMLParser

    # trafilatura's own parser settings; fed valid UTF-8 bytes, libxml2 decodes in C.
    return HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8",
                      remove_comments=True, remove_pis=True)


def _parse(data: bytes) -> Any:
    return _parse_checked(data)[0]


def _parse_checked(data: bytes) -> tuple[Any, bool]:
    """The parsed page (None when unparseable) and whether the parser stopped at its
    nesting-depth limit (everything after that point is missing from the tree)."""
    from lxml.etree import ParserError
    from lxml.html import document_fromstring

    parser = _parser()
    try:
        tree = document_fromstring(data, parser=parser)
    except (ParserError, ValueError):
        return None, False
    too_deep = any(e.type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in e.message
                   for e in parser.error_log)
    return tree, too_deep


def _strip_code(tree: Any) -> None:
    """Drop scripts and styles (not JSON-LD, which the metadata reads): less for the
    extractor to copy and walk. Tails are text and are kept."""
    for node in list(tree.iter("script", "style", "noscript", "template")):
        if (node.get("type") or "").lower() == "application/ld+json":
            continue
        parent = node.getparent()
        if parent is None:
            continue
        if node.tail:
            prev = node.getprevious()
            if prev is not None:
                prev.tail = (prev.tail or "") + node.tail
            else:
                parent.text = (parent.text or "") + node.tail
        parent.remove(node)


_OPTIONS: dict[str, Any] = {
    "include_comments": False,  # reader comments are not the story
    "include_tables": False,  # news tables are mostly sidebars, score boxes, market data
    "deduplicate": False,
    "with_metadata": False,  # ours is cheaper: see _metadata
    "include_links": True,  # to recognise lines that are only a link: _drop_link_lines
}


# Elements trafilatura deletes anyway with our options (its MANUALLY_CLEANED list plus tables,
# minus <form> and <math>, which it treats specially). Deleting them once, in C, before it
# copies and walks the tree makes the extraction cheaper and the result the same.
_UNWANTED = ("aside", "embed", "footer", "iframe", "menu", "object", "applet", "audio",
             "canvas", "figure", "map", "picture", "svg", "video", "area", "blink", "button",
             "datalist", "dialog", "frame", "frameset", "fieldset", "input", "label", "legend",
             "marquee", "menuitem", "nav", "noindex", "optgroup", "select", "textarea",
             "table", "td", "th", "tr")


def _drop_unwanted(tree: Any) -> None:
    from lxml.etree import strip_elements

    strip_elements(tree, *_UNWANTED, with_tail=False)


def _run_extractor(tree: Any, url: str, *, fast: bool = True, tables: bool = False) -> str:
    import trafilatura

    options = {**_OPTIONS, "include_tables": tables}
    # No URL: with one, trafilatura makes every link target absolute (courlan, ~2 ms a page);
    # we keep links only to tell link-only lines, and drop their targets anyway.
    doc = trafilatura.bare_extraction(tree, url=None, fast=fast, **options)
    raw_text = getattr(doc, "text", None) or ""  # a Document (never a dict: as_dict is off)
    text = _drop_link_lines(raw_text)
    # The fallback extractors keep the page's source layout (indentation, blank lines).
    return "\n".join(" ".join(line.split()) for line in text.split("\n") if line.strip())


# trafilatura renders kept links as [anchor](target) when include_links is on, with brackets
# in the anchor escaped ("[\[1\]](#cite_note-1)") and a target holding spaces, < > or
# parentheses in angle brackets ("[Mosaic](<https://host/wiki/Mosaic_(web_browser)>)").
_LINK = re.compile(r"\[((?:\\.|[^\[\]\\\n]){0,500})\]"
                   r"\((<(?:\\.|[^<>\\\n]){0,2000}>|[^()\s]{0,2000})\)")
_ESCAPED = re.compile(r"\\(.)")


def _anchor(match: re.Match[str]) -> str:
    return _ESCAPED.sub(r"\1", match.group(1))


def _drop_link_lines(text: str) -> str:
    """Drop lines that are nothing but a link (related-story headlines, "CLICK HERE TO GET THE
    APP", section crumbs), then turn the remaining links back into their plain anchor text."""
    if "](" not in text:
        return text
    kept = []
    for line in text.split("\n"):
        plain = _LINK.sub(_anchor, line)
        if plain != line:
            linked = sum(len(_anchor(m)) for m in _LINK.finditer(line))
            if linked >= 0.9 * len(plain.strip(" .:;-|")):
                continue
        kept.append(plain)
    return "\n".join(kept)


def _metadata(tree: Any, url: str, need_date: bool) -> Any:
    """trafilatura's metadata steps minus the costly ones we get elsewhere (categories and
    tags from links, licence) and minus the date guess when the page or feed has a date."""
    from trafilatura import metadata as tm

    meta = tm.examine_meta(tree)
    if meta.author and " " not in meta.author:
        meta.author = None  # a single token is a handle or a site, not a byline
    try:
        meta = tm.extract_meta_json(tree, meta)
    except Exception:  # noqa: BLE001 - publishers' JSON-LD is often malformed
        log.debug("json-ld metadata failed url=%s", url)
    if not meta.title:
        meta.title = _title_without_meta(tree, tm.extract_title(tree))
    if not meta.author:
        meta.author = _byline(tree)
    if not meta.url:
        meta.url = tm.extract_url(tree, url)
    if need_date:
        from htmldate import find_date

        meta.date = find_date(tree, **tm.set_date_params(False), url=meta.url or url)
    if not meta.sitename:
        meta.sitename = tm.extract_sitename(tree)
    if meta.sitename:
        meta.sitename = meta.sitename.lstrip("@")
    meta.clean_and_trim()
    if meta.title and meta.sitename:
        meta.title = _strip_site(meta.title, meta.sitename)
    meta.author = _plausible_author(meta.author)
    return meta


# trafilatura's byline XPaths (xpaths.AUTHOR_DISCARD_XPATHS, AUTHOR_XPATHS) as one pass in
# Python: its XPaths call back into Python for every `re:test`, ~2 ms each a page, so its
# extract_author cost ~8 ms a page, a seventh of cleaning. tests/test_clean.py checks that this
# pass gives the same byline as trafilatura on every page of ../shared/data/extraction-dev.
_DISCARD_ID = re.compile(r"^comments|comment-?list|ProductReviews")
_DISCARD_CLASS = re.compile(r"^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|"
                            r"embedly-instagram|article-(?:share|support)|print|category|"
                            r"meta-date|meta-reviewer")
_AUTHOR_CLASS_1 = re.compile(r"author-?name|AuthorName|authorName")
_AUTHOR_ID_2 = re.compile(r"author|zuozhe|bianji|xiaobian")
_AUTHOR_CLASS_2 = re.compile(r"author|channel-name|zuozhe|bianji|xiaobian|submitted-by|"
                             r"posted-by|journalist-name")
_AUTHOR_ID_3 = re.compile(r"[Aa]uthor")
_AUTHOR_CLASS_3 = re.compile(r"[Aa]uthor|screenname|writer|[Bb]yline")
_TAGS_1 = frozenset({"a", "address", "div", "link", "p", "span", "strong"})
_TAGS_2 = frozenset({"a", "div", "h3", "h4", "p", "span"})
_DISCARD_TAGS = frozenset({"a", "div", "section", "span"})


def _byline_tiers(tree: Any) -> tuple[set[Any], list[list[Any]]]:
    """The nodes the byline search prunes, and its candidates by tier in document order."""
    pruned: set[Any] = set()
    tiers: list[list[Any]] = [[], [], []]
    for node in tree.iter():
        tag = node.tag
        if not isinstance(tag, str):  # comments, processing instructions
            continue
        get = node.get
        cls, ident = get("class"), get("id")
        itemprop, component = get("itemprop") or "", get("data-component") or ""
        if tag in ("time", "figure") or (tag in _DISCARD_TAGS and (
                ident == "comments" or cls in ("comments", "title", "date")
                or (ident is not None and _DISCARD_ID.search(ident))
                or (cls is not None and _DISCARD_CLASS.search(cls)) or "Figure" in component)):
            pruned.add(node)
        if tag == "author" or (tag in _TAGS_1 and (
                get("rel") == "author" or ident == "author" or cls == "author"
                or itemprop == "author name" or get("data-testid") in ("AuthorCard", "AuthorURL")
                or (cls is not None and _AUTHOR_CLASS_1.search(cls))
                or any(r.text_content() == "me" for r in node.iterchildren("rel")))):
            tiers[0].append(node)
        if tag in _TAGS_2 and (
                cls in ("byline", "username", "byl", "BBL") or "author" in itemprop
                or (ident is not None and _AUTHOR_ID_2.search(ident))
                or (cls is not None and _AUTHOR_CLASS_2.search(cls))):
            tiers[1].append(node)
        if ("Byline" in component or "author" in itemprop
                or (ident is not None and _AUTHOR_ID_3.search(ident))
                or (cls is not None and _AUTHOR_CLASS_3.search(cls))):
            tiers[2].append(node)
    return pruned, tiers


def _byline(tree: Any) -> str | None:
    """trafilatura's ``metadata.extract_author``, same answer, without its XPaths' cost and
    without copying the page: what its pruning would remove is skipped instead; a byline's
    text leaves out pruned parts and keeps their tails."""
    from trafilatura.json_metadata import normalize_authors
    from trafilatura.utils import trim

    pruned, tiers = _byline_tiers(tree)

    def texts(node: Any) -> Iterator[str]:
        if node.text:
            yield node.text
        for child in node:
            if child not in pruned:
                yield from texts(child)
            if child.tail:
                yield child.tail

    for tier in tiers:
        for node in tier:
            if node in pruned or any(a in pruned for a in node.iterancestors()):
                continue
            content = trim(" ".join(texts(node)))
            if content and 2 < len(content) < 120:
                return normalize_authors(None, content)
    return None


_TITLE_SEPARATORS = re.compile(r"\s+(?:\||-|–|—|·|::|_|»|/)\s+")
_NOT_AUTHOR = re.compile(r"\b(updated|username|published|posted|last|share|\d{4})\b", re.I)


def _fold(text: str) -> str:
    return re.sub(r"\W+", " ", text.casefold()).strip()


def _title_without_meta(tree: Any, heading: str | None) -> str | None:
    """No og:title or JSON-LD headline: trafilatura takes a heading, which on many pages is a
    promo box or section name. Trust the heading only when <title> agrees with it."""
    node = tree.find(".//head/title")
    html_title = re.sub(r"\s+", " ", node.text_content()).strip() if node is not None else ""
    if not html_title or (heading and _fold(heading) in _fold(html_title)):
        return heading or html_title or None
    parts = _TITLE_SEPARATORS.split(html_title)
    if len(parts) > 1:
        # "Story headline - Section | Site": the longest part is the headline.
        best = max(parts, key=len)
        if len(best.split()) >= 3:
            return best
    return html_title


def _strip_site(title: str, sitename: str) -> str:
    """"Headline | Site" -> "Headline" when Site is the page's own site name."""
    parts = _TITLE_SEPARATORS.split(title)
    if len(parts) < 2:
        return title
    site = _fold(sitename)
    if _fold(parts[-1]) == site or (site and _fold(parts[-1]) in site):
        kept = title[: title.rfind(parts[-1])].rstrip()
        kept = _TITLE_SEPARATORS.sub(" - ", kept)
        kept = re.sub(r"\s+(?:\||-|–|—|·|::|_|»|/)$", "", kept).strip()
        return kept if len(kept.split()) >= 2 else title
    return title


def _plausible_author(author: str | None) -> str | None:
    """Drop bylines that are dates, UI labels or handles picked up by the heuristics."""
    if not author or _NOT_AUTHOR.search(author) or len(author) > 120:
        return None
    return author


def _size(text: str) -> int:
    """Words, or for scripts written without spaces (CJK, Thai) the equivalent in characters."""
    words = len(text.split())
    # Few spaces for its length: count two characters as a word (CJK words are 1-3 characters).
    return words if len(text) <= 12 * words else len(text) // 2


def _recall_pass(data: bytes, url: str, body: str) -> str:
    """Fast mode gave little. On a fresh tree (ours lost its tables), measure what the page
    holds in paragraphs and in tables; when that is much more, run the full cascade
    (readability/jusText comparison), with tables for table-laid-out pages."""
    tree = _parse(data)
    if tree is None:
        return body
    _strip_code(tree)
    for node in _HIDDEN(tree):  # what readers never see must not count, nor be extracted
        node.drop_tree()
    have = _size(body)
    in_paragraphs = _size(" ".join(tree.xpath("//p//text()")))
    in_tables = _size(" ".join(tree.xpath("//td//text()"))) if have < 100 else 0
    if in_paragraphs > 300 and have < 0.4 * in_paragraphs:
        fuller = _run_extractor(tree, url, fast=False)
    elif in_tables > max(3 * have, 40):
        fuller = _run_extractor(tree, url, fast=False, tables=True)
    else:
        return body
    log.debug("recall pass url=%s size=%d paragraphs=%d tables=%d got=%d", url, have,
              in_paragraphs, in_tables, _size(fuller))
    return fuller if _size(fuller) > have else body


def _hidden_xpath() -> Any:
    from lxml.etree import XPath

    return XPath(
        "//body//*[@hidden or @aria-hidden='true' or contains(translate(@style, ' ', ''),"
        " 'display:none') or contains(translate(@style, ' ', ''), 'visibility:hidden')]")


_HIDDEN = _hidden_xpath()


def _wall_message(visible: str, body: str) -> bool:
    """A paywall message in the page but not in the story (a story may say "subscribers
    only" about something else)."""
    low = visible.lower()
    if not any(stem in low for stem in _PAYWALL_STEMS):  # substring tests in C: most pages
        return False
    flat_body = " ".join(body.split())
    for match in _PAYWALL_TEXT.finditer(visible):
        around = " ".join(visible[max(0, match.start() - 40):match.end() + 40].split())
        if " ".join(match.group(0).split()) not in flat_body or around not in flat_body:
            return True
    return False


def _consent_box_xpath() -> Any:
    from lxml.etree import XPath

    names = ("consent", "cookie", "gdpr", "onetrust", "didomi", "sp_message", "qc-cmp",
             "usercentrics", "cookiebot", "iubenda", "truste", "cmpbox")
    named = " or ".join(f"contains(@class, '{n}') or contains(@id, '{n}')" for n in names)
    return XPath("boolean(//body//*[not(self::a)][@role='dialog' or @role='alertdialog' or "
                 f"@aria-modal='true' or {named}])")


_CONSENT_BOX = _consent_box_xpath()


# The consent platforms publishers use name their dialogs and stubs (OneTrust, Didomi,
# Cookiebot, Usercentrics, Sourcepoint, Quantcast, the IAB TCF API): with almost no story
# text, the page is their wall whatever language the dialog speaks (or if it is an iframe).
_CMP_MARKUP = re.compile(
    rb"(?:id|class)\s*=\s*[\"'][^\"'>]{0,200}(?:onetrust|didomi|cookiebot|usercentrics|"
    rb"sp_message|qc-cmp)|__tcfapi", re.I)


def _cookie_wall(tree: Any, buttons: list[Any], body: str, visible: str, words: int,
                 markup: bytes = b"") -> bool:
    """A consent dialog instead of the story: consent language in what was extracted (or,
    when almost nothing was, anywhere in what is left of the page) and a consent dialog or
    controls. A short story about cookies has neither; a full story with a banner is long."""
    if words < MIN_WORDS and _CMP_MARKUP.search(markup):
        return True
    if len(_COOKIE.findall(body)) < 2 and not (words < MIN_WORDS and _COOKIE.search(visible)):
        return False
    # A dialog, or a container its own markup names a consent box (by purpose or by the
    # consent platforms most publishers use).
    if _CONSENT_BOX(tree):
        return True
    # Consent controls: buttons, or links and plain elements whose short text is only
    # "Accept all", "Zustimmen", "OK, got it"...
    for node in buttons:
        if _CONSENT_BUTTON.search((node.text_content() or node.get("value") or "")[:80]):
            return True
    return any(len(text) <= 40 and _CONSENT_BUTTON.search(text)
               for text in (" ".join(n.text_content().split())
                            for n in tree.iter("a", "p", "span", "div", "li")
                            if len(n.text_content()) <= 60))


def _paywalled(facts: PageFacts, words: int) -> bool:
    """A teaser: paywall markup in the page, or the publisher says the article is not free
    and states a body (JSON-LD) much longer than what readers get."""
    if facts.paywall_markup:
        return True
    if facts.free is False and facts.bodies:
        return len(max(facts.bodies, key=len).split()) > 2 * max(words, 1)
    # The publisher says the article is not free (schema.org isAccessibleForFree false,
    # JSON-LD bool or string, or microdata) and readers got a teaser's worth of text. When
    # it describes the gated part (hasPart), that part decides instead (_withheld): the
    # page often holds the whole text for crawlers (Reuters' briefs say not free, hasPart).
    return facts.free is False and not facts.gated_parts


def clean(
    html: bytes | str,
    url: str,
    *,
    content_type: str | None = None,
    feed_title: str | None = None,
    feed_summary: str | None = None,
    feed_published: datetime | None = None,
) -> CleanArticle | Rejected:
    """Extract one article from a fetched page. Pure; never raises for bad input."""
    try:
        return _clean(html, url, content_type, feed_title, feed_summary, feed_published)
    except Exception as exc:  # noqa: BLE001 - a bug on one page must not stop the worker
        log.exception("clean failed url=%s", url)
        return _fallback(url, feed_title, feed_summary, feed_published, "extractor_error",
                         f"{type(exc).__name__}: {exc}"[:300], ())


def feed_fallback(url: str, feed_title: str | None, feed_summary: str | None,
                  feed_published: datetime | None, reason: str,
                  detail: str) -> CleanArticle | Rejected:
    """No page to clean (its fetch was refused): the feed's summary, flagged, or why not."""
    return _fallback(url, feed_title, feed_summary, feed_published, reason, detail, ())


def _fallback(url: str, feed_title: str | None, feed_summary: str | None,
              feed_published: datetime | None, reason: str, detail: str,
              flags: tuple[str, ...]) -> CleanArticle | Rejected:
    """Nothing usable in the page: the feed's summary stands in, or the page is rejected."""
    summary = _body_to_text(feed_summary or "")
    if not summary.strip():
        return Rejected(reason, detail)
    return CleanArticle(
        url=url, title=feed_title, text=summary, published=_published(None, None, feed_published),
        language=detect_language(f"{feed_title or ''}\n{summary}"), partial=True,
        flags=tuple(dict.fromkeys((*flags, reason, "summary_fallback"))),
    )


def _clean(html: bytes | str, url: str, content_type: str | None, feed_title: str | None,
           feed_summary: str | None, feed_published: datetime | None) -> CleanArticle | Rejected:
    flags: list[str] = []
    fallback_args = (url, feed_title, feed_summary, feed_published)
    if isinstance(html, str):
        raw = html.encode("utf-8", "replace")  # lone surrogates become "?"
    else:
        raw = bytes(html)
    if len(raw) > MAX_BYTES:
        return Rejected("too_large", f"{len(raw)} bytes > {MAX_BYTES}")
    if not raw.strip():
        return _fallback(*fallback_args, "empty_body", "no bytes", ())
    why = binary_reason(raw, content_type)
    if why:
        return _fallback(*fallback_args, "binary_content", why, ())
    raw, cuts = _shrink(raw)
    flags.extend(cuts)
    # A str was ours already; bytes get their charset from header, markup or sniffing.
    data, _encoding = to_utf8(raw, "text/html; charset=utf-8" if isinstance(html, str)
                              else content_type)
    # On the decoded page (UTF-16 markup hides from byte scans); long values only matter to
    # _shrink, and emptying them here would flag ordinary pages with big data-* blobs.
    guarded = guard_markup(data, long_values=False)
    data = guarded.data
    flags.extend(guarded.repairs)
    tags = data.count(b"<")  # an upper bound of the elements, counted in C
    if tags > MAX_ELEMENTS:
        guarded = collapse_runs(data)
        data = guarded.data
        flags.extend(guarded.repairs)
        tags = data.count(b"<")
    tree, too_deep = _parse_checked(data)
    if too_deep:
        # libxml2 dropped everything after depth 256: flatten the excess and parse again.
        data, dropped = flatten_nesting(data)
        log.info("nesting flattened url=%s dropped_tags=%d", url, dropped)
        flags.append("nesting_flattened")
        tree = _parse(data)
    if flags:  # what the guards cut, one line per page (the flags travel with the article)
        log.info("markup bounded url=%s cuts=%s bytes=%d", url, ",".join(flags), len(data))
    if tree is not None and tags > MAX_ELEMENTS:  # only then the exact count
        elements = sum(1 for _ in tree.iter())
        if elements > MAX_ELEMENTS:
            return _fallback(*fallback_args, "too_complex", f"{elements} elements", tuple(flags))
    if tree is None:
        return _fallback(*fallback_args, "no_text", "not parseable as HTML", tuple(flags))
    facts = _page_facts(tree, raw, url)
    _strip_code(tree)  # before the metadata pass too: its author search copies the tree
    meta = _metadata(tree, url, need_date=not facts.published and feed_published is None)
    # Detached by _drop_unwanted but kept alive here: a consent wall is known by its buttons,
    # looked at only when the page gave little text.
    buttons = list(tree.iter("button", "input"))
    _drop_unwanted(tree)

    body = _run_extractor(tree, url)
    body, _note = _second_opinion(body, facts.bodies)
    body = _with_updates(body, facts.updates)
    if _size(body) < 300:
        body = _recall_pass(data, url, body)
    words = _size(body)
    title = meta.title or feed_title

    # Live: structured data or many update elements, or a live title with many timestamps.
    if facts.liveblog_markup or (facts.live_title and facts.timestamps >= 5):
        flags.append("liveblog_index")
    # What is left of the page after extraction (navigation, asides, footers are gone):
    # where the wall's own message is, when the extractor kept only the teaser.
    visible = (tree.text_content() or "") if words < TEASER_WORDS else ""
    if words < TEASER_WORDS and (
            _paywalled(facts, words) or _wall_message(visible, body)
            or any(_withheld(tree, sel) for sel in facts.gated_selectors[:5])):
        flags.append("paywall")
    elif _note == "ld_body" and facts.free is False:
        flags.append("paywall")  # readers see a teaser; the full text came from the JSON-LD
    if words < TEASER_WORDS and _cookie_wall(tree, buttons, body, visible, words, raw):
        flags.append("cookie_wall")

    if words == 0:
        if facts.scripts and (_size(visible) < 300 or _JS_REQUIRED.search(visible)):
            return _fallback(*fallback_args, "javascript_shell",
                             f"{facts.scripts} scripts, no text", tuple(flags))
        return _fallback(*fallback_args, "no_text", "extractor found no text", tuple(flags))

    partial = False
    summary = _body_to_text(feed_summary or "")
    if "cookie_wall" in flags and summary:
        body, partial = summary, True
        flags.append("summary_fallback")
    elif words < MIN_WORDS:
        partial = True
        if _size(summary) > words:
            body = summary
            flags.append("summary_fallback")
        else:
            flags.append("short_text")
    elif "paywall" in flags and words < TEASER_WORDS and _note != "ld_body":
        partial = True  # (the publisher's stated body is the story, not a teaser)

    canonical = _absolute_http(facts.canonical, url) or _absolute_http(meta.url, url)
    return CleanArticle(
        url=url,
        canonical_url=canonical,
        title=(title or "").strip() or None,
        text=body,
        author=meta.author or None,
        published=_published(facts.published, meta.date, feed_published),
        language=detect_language(f"{title or ''}\n{body}", facts.lang),
        sitename=meta.sitename or None,
        image=_absolute_http(meta.image, url),
        tags=_section_tags(facts.sections, meta.categories, facts.keywords, meta.tags),
        partial=partial,
        flags=tuple(dict.fromkeys(flags)),
    )


# ---------------------------------------------------------------- CLI contract and assembly

def extract_record(rec: dict[str, Any]) -> dict[str, Any]:
    """``newswire extract``: ``{"id","url","html"}`` -> the article fields, or ``{"id","error"}``."""
    rec_id = rec.get("id")
    url, html = rec.get("url"), rec.get("html")
    if not isinstance(url, str) or not url:
        return {"id": rec_id, "error": "missing url"}
    if not isinstance(html, str):
        return {"id": rec_id, "error": "missing html"}
    result = clean(html, url)
    if isinstance(result, Rejected):
        return {"id": rec_id, "error": f"{result.reason}: {result.detail}"}
    return {
        "id": rec_id,
        "url": result.url,
        "canonical_url": result.canonical_url,
        "title": result.title,
        "text": result.text,
        "author": result.author,
        "published": result.published.isoformat() if result.published else None,
        "language": result.language,
        "sitename": result.sitename,
        "image": result.image,
    }


def build_article(entry: FeedEntry, clean: CleanArticle, tags: Tags, *, story_id: str | None,
                  fingerprint: str | None, ingested: datetime, fetched_url: str | None = None,
                  redirects: tuple[str, ...] = ()) -> Article:
    """Assemble the enriched record the indexer stores (pure)."""
    return Article(
        id=entry.key,
        url=entry.url,
        canonical_url=clean.canonical_url,
        title=clean.title or entry.title,
        text=clean.text,
        summary=entry.summary,
        author=clean.author,
        published=clean.published or entry.published,
        ingested=ingested,
        language=clean.language,
        sitename=clean.sitename,
        source=entry.source,
        feed=entry.feed,
        image=clean.image,
        fetched_url=fetched_url,
        redirects=redirects,
        section_tags=clean.tags,
        partial=clean.partial,
        flags=clean.flags,
        fingerprint=fingerprint,
        story_id=story_id,
        conflict_related=tags.conflict_related,
        conflict_score=tags.conflict_score,
        conflicts=tags.conflicts,
        event_types=tags.event_types,
        actors=tags.actors,
        countries=tags.countries,
        locations=tags.locations,
        casualties=tags.casualties,
    )
