"""The cleaning stage on real pages, charsets, bad input, flags, and the extract CLI contract."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newswire.records import CleanArticle, FeedEntry, Tags
from processors.charset import decode_html, detect_encoding
from processors.clean import Rejected, build_article, clean, extract_record
from tests.conftest import shared_path

URL = "https://news.example.com/2024/03/story"
STORY = (
    "Rescue teams searched through the night for survivors after the river burst its banks "
    "and flooded three villages in the valley, officials said on Tuesday. "
    "The regional governor said more than two hundred homes had been damaged and that "
    "temporary shelters had been opened in schools and sports halls across the district. "
)


def page(body: str, head: str = "", lang: str = "en") -> str:
    return (f"<!doctype html><html lang='{lang}'><head><title>Floods hit valley villages</title>"
            f"{head}</head><body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
            f"<article><h1>Floods hit valley villages</h1>{body}</article>"
            "<footer>Copyright 2024 Example News. All rights reserved.</footer></body></html>")


def paragraphs(text: str, times: int = 3) -> str:
    return "".join(f"<p>{text} Paragraph {i}.</p>" for i in range(times))


# ------------------------------------------------------------------ real pages

def _tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def _f1(pred: str, ref: str) -> float:
    p, r = _tokens(pred), _tokens(ref)
    overlap = sum((p & r).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(p.values()), overlap / sum(r.values())
    return 2 * precision * recall / (precision + recall)


FUNDUS = ["APNews_0", "Reuters_1", "TheGuardian_0", "LATimes_1", "FoxNews_0", "CNBC_2"]


@pytest.mark.parametrize("name", FUNDUS)
def test_real_news_pages_give_the_story_text(name: str) -> None:
    root = shared_path("extraction-dev", "fundus-evaluation")
    truth = json.loads((root / "ground_truth.json").read_text())[f"{name}.html.gz"]
    raw = gzip.decompress((root / "html" / f"{name}.html.gz").read_bytes())
    result = clean(raw, truth["url"], content_type="text/html")
    assert isinstance(result, CleanArticle)
    assert _f1(result.text, "\n".join(truth["body"])) > 0.9
    assert result.title and len(result.title) > 10
    assert result.language == "en"
    assert not result.partial
    assert result.canonical_url and result.canonical_url.startswith("https://")


def test_liveblog_page_is_flagged() -> None:
    root = shared_path("extraction-dev", "fundus-evaluation")
    raw = gzip.decompress((root / "html" / "TheTelegraph_1.html.gz").read_bytes())
    result = clean(raw, "https://www.telegraph.co.uk/live")
    assert isinstance(result, CleanArticle)
    assert "liveblog_index" in result.flags


def test_readability_page_metadata() -> None:
    root = shared_path("extraction-dev", "readability-pages", "bbc-1")
    expected = json.loads((root / "expected-metadata.json").read_text())
    raw = gzip.decompress((root / "source.html.gz").read_bytes())
    result = clean(raw, "http://www.bbc.com/news/world-us-canada-33646542")
    assert isinstance(result, CleanArticle)
    assert result.title == expected["title"]
    assert result.language == "en"
    assert result.published is not None
    assert result.published.date().isoformat() == expected["publishedTime"][:10]
    assert "gun" in result.text.lower()


def test_language_codes_normalise_and_three_letter_only_languages_keep_theirs() -> None:
    from processors.clean import normalise_language

    assert [normalise_language(c) for c in ("en-US", "EN", "eng", "pt_BR", "fra")] == \
        ["en", "en", "en", "pt", "fr"]
    # no ISO 639-1 code: the ISO 639-3 one, not "unknown"
    assert [normalise_language(c) for c in ("pcm", "yue-HK", "arz")] == ["pcm", "yue", "arz"]
    assert [normalise_language(c) for c in ("x", "", None, "zzz", "12")] == [None] * 5


def test_non_latin_scripts_get_their_language() -> None:
    cases = {
        "ru": "Спасатели всю ночь искали выживших после того, как река вышла из берегов и "
              "затопила три деревни в долине, сообщили официальные лица во вторник.",
        "ar": "بحثت فرق الإنقاذ طوال الليل عن ناجين بعد أن فاض النهر وأغرق ثلاث قرى في الوادي، "
              "حسبما قال مسؤولون يوم الثلاثاء.",
        "zh": "救援队连夜搜寻幸存者，此前河水决堤，淹没了山谷中的三个村庄，官员周二表示。"
              "地区州长说，两百多所房屋受损，学校和体育馆已开放临时避难所。",
        "uk": "Рятувальники всю ніч шукали тих, хто вижив, після того як річка вийшла з берегів "
              "і затопила три села в долині, повідомили в уряді у вівторок.",
    }
    for lang, text in cases.items():
        result = clean(page(paragraphs(text), lang="x"), URL)
        assert isinstance(result, CleanArticle), lang
        assert result.language == lang, (lang, result.language)


# ------------------------------------------------------------------ charsets

def test_charset_from_content_type_header() -> None:
    raw = page(paragraphs("Überschwemmungen in drei Dörfern; die Straße ist gesperrt. " * 3))
    result = clean(raw.encode("iso-8859-1"), URL, content_type="text/html; charset=ISO-8859-1")
    assert isinstance(result, CleanArticle)
    assert "Überschwemmungen" in result.text and "Straße" in result.text


def test_charset_from_meta_tag() -> None:
    raw = page(paragraphs("Наводнение затопило три деревни в долине, сообщили власти. " * 3),
               head='<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">')
    result = clean(raw.encode("cp1251"), URL)
    assert isinstance(result, CleanArticle)
    assert "Наводнение" in result.text
    assert result.language == "ru"


def test_charset_sniffed_when_undeclared() -> None:
    text = ("Самые сильные наводнения за последние сто лет затопили три деревни в долине, "
            "сообщили в среду представители местной администрации и спасательных служб. ") * 4
    raw = f"<html><body><article><p>{text}</p><p>{text}</p></article></body></html>"
    encoding, strict = detect_encoding(raw.encode("koi8-r"))
    assert strict and encoding in ("koi8-r", "koi8_r")


def test_declared_utf8_that_is_really_latin1_is_not_trusted() -> None:
    body = "Café crème brûlée and the naïve façade of the old town hall. " * 10
    raw = page(f"<p>{body}</p>", head='<meta charset="utf-8">').encode("latin-1")
    text, encoding = decode_html(raw, "text/html; charset=utf-8")
    assert encoding == "cp1252"
    assert "crème brûlée" in text


def test_utf8_bom_and_broken_bytes_never_crash() -> None:
    good = page(paragraphs(STORY)).encode()
    assert isinstance(clean(b"\xef\xbb\xbf" + good, URL), CleanArticle)
    broken = good.replace(b"Rescue", b"Res\xff\xfecue")
    result = clean(broken, URL, content_type="text/html; charset=utf-8")
    assert isinstance(result, CleanArticle)
    assert "survivors" in result.text


def test_unknown_charset_label_is_ignored() -> None:
    raw = page(paragraphs(STORY)).encode()
    result = clean(raw, URL, content_type="text/html; charset=x-no-such-charset")
    assert isinstance(result, CleanArticle)


# ------------------------------------------------------------------ bad input

def test_empty_page_is_rejected_with_reason() -> None:
    for raw in (b"", b"   \n\t", ""):
        result = clean(raw, URL)
        assert isinstance(result, Rejected) and result.reason == "empty_body"


def test_empty_page_with_feed_summary_falls_back() -> None:
    result = clean(b"", URL, feed_title="Floods", feed_summary="Rivers flooded three villages.")
    assert isinstance(result, CleanArticle)
    assert result.partial and "summary_fallback" in result.flags
    assert result.text == "Rivers flooded three villages."


@pytest.mark.parametrize("raw", [
    b"%PDF-1.7\n" + bytes(range(256)) * 20,
    b"\x89PNG\r\n\x1a\n" + b"\x00" * 500,
    gzip.compress(b"<html>" * 10_000),  # a compressed body that reached us still compressed
    bytes(range(256)) * 50,
])
def test_binary_content_is_rejected(raw: bytes) -> None:
    result = clean(raw, URL)
    assert isinstance(result, Rejected) and result.reason == "binary_content"


def test_fifty_megabyte_page_is_rejected_without_parsing() -> None:
    raw = b"<html><body>" + b"<p>word word</p>" * 3_300_000
    result = clean(raw, URL)
    assert isinstance(result, Rejected) and result.reason == "too_large"


def test_huge_markup_is_bounded() -> None:
    # Like a gzip bomb's payload: megabytes of tiny repeated elements.
    raw = b"<html><body>" + b"<div><span>x</span></div>" * 400_000
    result = clean(raw, URL, feed_summary="The feed's own summary of the story.")
    assert isinstance(result, CleanArticle)
    assert result.partial and "summary_fallback" in result.flags
    assert "too_complex" in result.flags


def test_big_page_with_scripts_is_shrunk_not_dropped() -> None:
    script = "<script>" + "var x = 1;" * 300_000 + "</script>"
    raw = page(script + paragraphs(STORY, 5)).encode()
    assert len(raw) > 2_500_000
    result = clean(raw, URL)
    assert isinstance(result, CleanArticle)
    assert "survivors" in result.text and "var x" not in result.text


def test_huge_page_of_unclosed_scripts_is_handled() -> None:
    # A lazy regex over this would be quadratic; the linear pass must cut it at the first one.
    raw = page(paragraphs(STORY)).encode().replace(b"</body>", b"<script>x" * 1_500_000)
    result = clean(raw, URL)
    assert isinstance(result, CleanArticle)
    assert "survivors" in result.text


def test_hundred_thousand_nested_tags() -> None:
    raw = b"<html><body><p>Lead " + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000 + b"</p>"
    result = clean(raw, URL)
    assert isinstance(result, (CleanArticle, Rejected))
    if isinstance(result, Rejected):
        assert result.reason in ("no_text", "too_complex")


def test_javascript_shell_is_recognised() -> None:
    raw = (b"<html><head><script src='/static/app.js'></script></head><body>"
           b"<div id='root'></div><noscript>You need to enable JavaScript to run this app."
           b"</noscript></body></html>")
    result = clean(raw, URL)
    assert isinstance(result, Rejected) and result.reason == "javascript_shell"
    with_summary = clean(raw, URL, feed_summary="Floods hit three villages in the valley.")
    assert isinstance(with_summary, CleanArticle)
    assert {"javascript_shell", "summary_fallback"} <= set(with_summary.flags)


def test_short_extraction_falls_back_to_longer_feed_summary() -> None:
    summary = STORY + " More than two hundred homes were damaged."
    result = clean(page("<p>Floods.</p>"), URL, feed_summary=summary, feed_title="Floods")
    assert isinstance(result, CleanArticle)
    assert result.partial and "summary_fallback" in result.flags
    assert "survivors" in result.text


def test_paywall_teaser_is_flagged_partial() -> None:
    head = ('<script type="application/ld+json">{"@context":"https://schema.org",'
            '"@type":"NewsArticle","headline":"Floods","isAccessibleForFree":false}</script>')
    result = clean(page(f"<p>{STORY}</p><div class='paywall'>Subscribe to read on.</div>",
                        head=head), URL)
    assert isinstance(result, CleanArticle)
    assert "paywall" in result.flags and result.partial


def test_short_free_brief_marked_not_free_is_not_a_teaser() -> None:
    # Wire briefs are short and some publishers mark everything isAccessibleForFree=false.
    head = ('<script type="application/ld+json">{"@type":"NewsArticle","isAccessibleForFree":'
            f'false,"articleBody":"{STORY}"}}</script>')
    result = clean(page(f"<p>{STORY}</p>", head=head), URL)
    assert isinstance(result, CleanArticle)
    assert "paywall" not in result.flags


def test_not_free_page_showing_a_teaser_takes_the_stated_body() -> None:
    body = " ".join([STORY] * 6)
    head = ('<script type="application/ld+json">{"@type":"NewsArticle","isAccessibleForFree":'
            f'"False","articleBody":"{body}"}}</script>')
    result = clean(page(f"<p>{STORY}</p>", head=head), URL)
    assert isinstance(result, CleanArticle)
    assert "paywall" in result.flags  # readers hit a wall ...
    assert len(result.text.split()) > 5 * len(STORY.split()) - 5  # ... search gets the story
    assert not result.partial


def test_live_blog_needs_structured_data_or_many_updates() -> None:
    badge = page(paragraphs(STORY, 4) + "<a class='liveblog-badge' href='/live'>Live</a>")
    assert "liveblog_index" not in clean(badge, URL).flags  # type: ignore[union-attr]
    updates = "".join(f"<div class='live-update'><p>{STORY} Update {i}.</p></div>"
                      for i in range(6))
    assert "liveblog_index" in clean(page(updates), URL).flags  # type: ignore[union-attr]
    head = '<script type="application/ld+json">{"@type":"LiveBlogPosting"}</script>'
    assert "liveblog_index" in clean(page(paragraphs(STORY), head=head), URL).flags  # type: ignore[union-attr]


def test_live_blog_updates_from_structured_data_are_kept() -> None:
    updates = ",".join(
        f'{{"@type":"BlogPosting","headline":"Update {i}","articleBody":"{STORY} Number {i}."}}'
        for i in range(8))
    head = ('<script type="application/ld+json">{"@type":"LiveBlogPosting",'
            f'"liveBlogUpdate":[{updates}]}}</script>')
    result = clean(page("<p>Follow our live coverage of the floods.</p>", head=head), URL)
    assert isinstance(result, CleanArticle)
    assert "liveblog_index" in result.flags
    assert "Number 7." in result.text and "Number 0." in result.text


def test_page_laid_out_in_tables_still_gives_its_text() -> None:
    cells = "".join(f"<tr><td>{STORY} Row {i}.</td></tr>" for i in range(6))
    raw = (f"<html><head><title>Old table page</title></head><body><table>"
           f"<tr><td><a href='/'>Home</a></td></tr>{cells}</table></body></html>")
    result = clean(raw, URL)
    assert isinstance(result, CleanArticle)
    assert "survivors" in result.text and not result.partial


def test_cjk_page_is_not_mistaken_for_a_javascript_shell() -> None:
    text = "救援队连夜搜寻幸存者，此前河水决堤，淹没了山谷中的三个村庄，官员周二表示。" * 8
    raw = (f"<html><head><script src='/a.js'></script></head><body><table><tr><td>{text}"
           "</td></tr></table></body></html>")
    result = clean(raw.encode(), URL)
    assert isinstance(result, CleanArticle)
    assert result.language == "zh" and "幸存者" in result.text


def test_lines_that_are_only_a_link_are_dropped_inline_links_kept() -> None:
    body = (f"<p>{STORY}</p><p><a href='/other-story'>MAN SAVES DOG FROM RIVER IN DRAMATIC "
            f"RESCUE</a></p><p>The <a href='/gov'>regional governor</a> visited. {STORY}</p>"
            "<p><strong><a href='/app'>CLICK HERE TO GET THE NEWS APP</a></strong></p>"
            f"<p>{STORY}</p>")
    result = clean(page(body), URL)
    assert isinstance(result, CleanArticle)
    assert "DRAMATIC" not in result.text and "CLICK HERE" not in result.text
    assert "The regional governor visited." in result.text
    assert "](" not in result.text


def test_free_long_article_is_not_flagged() -> None:
    result = clean(page(paragraphs(STORY, 6)), URL)
    assert isinstance(result, CleanArticle)
    assert result.flags == () and not result.partial


def test_cookie_wall_uses_feed_summary() -> None:
    wall = ("<div><p>We value your privacy. We and our partners use cookies to store and access "
            "information on your device. Click Accept all to consent to cookies, or manage your "
            "preferences in privacy settings.</p><p>Accept all</p><p>Manage preferences</p></div>")
    result = clean(f"<html><body>{wall}</body></html>", URL,
                   feed_summary="Floods hit three villages in the valley overnight.")
    assert isinstance(result, CleanArticle)
    assert "cookie_wall" in result.flags and result.partial
    assert result.text.startswith("Floods hit")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_clean_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    result = clean(raw, URL, content_type="text/html")
    assert isinstance(result, (CleanArticle, Rejected))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000), st.one_of(st.none(), st.text(max_size=60)))
def test_decoding_never_raises_and_gives_text(raw: bytes, content_type: str | None) -> None:
    text, encoding = decode_html(raw, content_type)
    assert isinstance(text, str) and encoding
    assert "\x00" not in text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=2000), st.one_of(st.none(), st.text(max_size=40)))
def test_clean_never_raises_on_arbitrary_text(html: str, content_type: str | None) -> None:
    result = clean(f"<html><body><p>{html}</p></body></html>", URL, content_type=content_type)
    assert isinstance(result, (CleanArticle, Rejected))
    if isinstance(result, Rejected):
        assert result.reason and re.fullmatch(r"[a-z_]+", result.reason)


# ------------------------------------------------------------------ metadata and assembly

def test_metadata_from_page_and_feed_date_fallback() -> None:
    head = ('<link rel="canonical" href="/2024/03/story?id=1">'
            '<meta property="og:image" content="/img/floods.jpg">'
            '<meta property="article:section" content="World">'
            '<meta property="article:tag" content="Floods">'
            '<meta name="author" content="Jane Doe">')
    feed_date = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
    result = clean(page(paragraphs(STORY), head=head), URL, feed_published=feed_date)
    assert isinstance(result, CleanArticle)
    assert result.canonical_url == "https://news.example.com/2024/03/story?id=1"
    assert result.image == "https://news.example.com/img/floods.jpg"
    assert result.published == feed_date
    assert {"World", "Floods"} <= set(result.tags)
    assert result.author == "Jane Doe"

    dated = clean(page(paragraphs(STORY), head='<meta property="article:published_time" '
                       'content="2024-03-04T08:15:00+01:00">'), URL, feed_published=feed_date)
    assert isinstance(dated, CleanArticle)
    assert dated.published == datetime(2024, 3, 4, 7, 15, tzinfo=UTC)


def test_build_article_combines_entry_clean_and_tags() -> None:
    entry = FeedEntry(key="k1", url=URL, link=URL + "?utm_source=x", title="Feed title",
                      summary="Feed summary", feed="https://news.example.com/rss",
                      source="news.example.com",
                      published=datetime(2024, 3, 5, tzinfo=UTC))
    cleaned = CleanArticle(url=URL, title=None, text="Body text", language="en",
                           tags=("World",), flags=("paywall",), partial=True)
    tags = Tags(conflict_related=True, conflict_score=0.8, countries=("SY",))
    now = datetime(2024, 3, 6, tzinfo=UTC)
    article = build_article(entry, cleaned, tags, story_id="s1", fingerprint="00ff", ingested=now)
    assert article.id == "k1" and article.key == "k1"
    assert article.title == "Feed title" and article.summary == "Feed summary"
    assert article.published == entry.published and article.ingested == now
    assert article.section_tags == ("World",) and article.flags == ("paywall",)
    assert article.partial and article.countries == ("SY",) and article.conflict_related
    assert article.story_id == "s1" and article.fingerprint == "00ff"
    assert article.source == "news.example.com"


# ------------------------------------------------------------------ CLI contract

def test_extract_cli_contract() -> None:
    from newswire.cli import main

    root = shared_path("extraction-dev", "fundus-evaluation")
    truth = json.loads((root / "ground_truth.json").read_text())["APNews_0.html.gz"]
    html = gzip.decompress((root / "html" / "APNews_0.html.gz").read_bytes()).decode()
    lines = [
        json.dumps({"id": "a", "url": truth["url"], "html": html}),
        "not json",
        json.dumps({"id": "b", "url": URL, "html": ""}),
        json.dumps({"id": "c", "url": URL}),
        json.dumps({"id": "d", "url": URL, "html": page(paragraphs(STORY))}),
    ]
    result = CliRunner().invoke(main, ["extract"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 5
    first = out[0]
    assert set(first) == {"id", "url", "canonical_url", "title", "text", "author", "published",
                          "language", "sitename", "image"}
    assert first["id"] == "a" and "Mossad" in first["text"] and first["language"] == "en"
    assert first["published"] and datetime.fromisoformat(first["published"]).year == 2024
    assert "error" in out[1]
    assert out[2] == {"id": "b", "error": "empty_body: no bytes"}
    assert out[3]["id"] == "c" and "error" in out[3]
    assert out[4]["id"] == "d" and "survivors" in out[4]["text"]


def test_extract_record_never_raises() -> None:
    assert "error" in extract_record({})
    assert "error" in extract_record({"id": 1, "url": 5, "html": None})
    assert "error" in extract_record({"id": 1, "url": URL, "html": "\x00\x01"})


# ------------------------------------------------------------------ flags on the labelled set

def _flag_pages() -> list:  # type: ignore[type-arg]
    from tests.flag_pages import fresh_pages, heldout_pages, labelled_pages
    from tests.flag_pages2 import batch2_pages

    # The one known miss of tests/flag_pages2.py stays visible (strict: fixing it shows).
    known_misses = {"batch2-paywall-custom-arabic": "paywall named only by a tp-modal box "
                    "and Arabic wording; no structural signal covers it yet"}
    return [*labelled_pages(), *heldout_pages(), *fresh_pages(), *(
        pytest.param(page, marks=pytest.mark.xfail(reason=known_misses[page.name],
                                                   strict=True))
        if page.name in known_misses else page for page in batch2_pages())]


@pytest.mark.parametrize("page", _flag_pages(), ids=lambda p: p.name)
def test_labelled_pages_get_exactly_their_flags(page) -> None:  # type: ignore[no-untyped-def]
    """tests/flag_pages.py: paywall teasers, cookie walls, live blogs and partial pages are
    flagged, and normal articles (incl. a brief about cookies, a story with a subscribe box
    or a "live" badge) are not. bench/flags_eval.py reports precision/recall on the same set
    plus the real fundus pages."""
    from tests.flag_pages import FLAGS

    result = clean(page.html.encode(), page.url, content_type="text/html",
                   feed_summary=page.feed_summary, feed_title=page.feed_title)
    got = {"partial"} if isinstance(result, Rejected) else (
        set(result.flags) | ({"partial"} if result.partial else set()))
    assert got & set(FLAGS) == set(page.labels)
    if isinstance(result, CleanArticle) and "paywall" in page.labels and result.partial:
        assert len(result.text.split()) < 250  # a teaser, not indexed as a full story


def test_byline_search_gives_trafilaturas_answer_on_every_real_page() -> None:
    """processors.clean._byline is trafilatura's extract_author as one pass in Python (its
    XPaths were ~8 ms a page): the same byline, or the same None, on all 210 real pages."""
    from trafilatura.metadata import extract_author

    from processors.charset import to_utf8
    from processors.clean import _byline, _parse, _strip_code

    root = shared_path("extraction-dev")
    pages = [gzip.decompress(p.read_bytes()) for p in sorted(root.rglob("*.html.gz"))]
    pages += [p.read_bytes() for p in sorted(root.rglob("source.html"))]
    assert len(pages) >= 200
    found = 0
    for page in pages:
        tree = _parse(to_utf8(page, None)[0])
        if tree is None:
            continue
        _strip_code(tree)
        ours = _byline(tree)
        assert ours == extract_author(tree)
        found += ours is not None
    assert found >= 80  # the pages really exercise the search


def test_byline_search_skips_what_trafilatura_prunes() -> None:
    from processors.clean import _byline, _parse

    page = (b"<html><body><div class='comments'><span class='author'>Commenter Name</span>"
            b"</div><p class='byline'>By Jane Doe <time>2 hours ago</time> in Kyiv</p>"
            b"</body></html>")
    from trafilatura.metadata import extract_author

    # the commenter is in pruned comments; the byline's <time> is pruned out of its text
    assert _byline(_parse(page)) == extract_author(_parse(page)) == "Jane Doe"


def test_link_markup_never_reaches_the_text() -> None:
    """Citation links ("[1]" anchors, escaped by trafilatura) and targets in angle brackets
    (parentheses in the URL) become their plain anchor text like any link."""
    from processors.clean import _drop_link_lines

    line = ('Mozilla is a community.[\\[1\\]](#cite_note-1) A blend of "[Mosaic]'
            '(<http://host/wiki/Mosaic_(web_browser)>) and Godzilla".')
    assert _drop_link_lines(line) == 'Mozilla is a community.[1] A blend of "Mosaic and Godzilla".'
    assert _drop_link_lines("[\\[Read more\\]](/more)\nKept.") == "Kept."  # a link-only line
