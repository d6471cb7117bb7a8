"""The search page in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

One live server (real embedded store, real uvicorn) and one browser for the module; each test
gets a fresh page. See tests/browser_setup/README.md for the install lines.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import png
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser_setup.live import (
    KHARKIV,
    XSS_TITLE,
    LiveServer,
    corpus,
    hostile_link_articles,
    live_server,
)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("web-browser"),
                     corpus() + hostile_link_articles()) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page plus what went wrong on it: console errors (CSP reports), JS errors, and
    every request that left the server under test."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: None if r.url.startswith(base_url) or r.url.startswith(
            "data:") else self.foreign.append(r.url))


@pytest.fixture
def watched(browser: Browser, server: LiveServer) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    w = Watched(page, server.base_url)
    try:
        yield w
    finally:
        context.close()
    assert w.errors == [], w.errors  # no CSP violation, no JS error, no failed load
    assert w.foreign == [], w.foreign  # nothing fetched from anywhere else


def ready(page: Page) -> None:
    page.wait_for_selector("body[data-state=ready]")


def search_via_box(page: Page, text: str) -> None:
    page.fill("#q", text)
    with page.expect_response(lambda r: "/api/search" in r.url):
        page.press("#q", "Enter")
    ready(page)


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def facet_box(page: Page, param: str, value: str):  # noqa: ANN201 - a Playwright Locator
    return page.locator(f'input[data-param="{param}"][value="{value}"]')


# ------------------------------------------------------------------ tests


def test_search_shows_results_with_highlighted_snippets(watched: Watched,
                                                        server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/")
    ready(page)
    search_via_box(page, "power station")
    assert query_of(page)["q"] == ["power station"]  # state is in the URL
    titles = page.locator(".hit h3").all_inner_texts()
    assert "Kharkiv: drones knock out power station" in titles or any(
        "power" in t.lower() for t in titles)
    marks = {m.lower() for m in page.locator(".hit .snippet mark").all_inner_texts()}
    assert marks and marks <= {"power", "station"}
    assert "matching article" in page.inner_text("#status")
    link = page.locator(".hit h3 a").first
    assert link.get_attribute("href", timeout=1000).startswith("https://")


def test_facets_show_counts_and_a_click_narrows_the_results(watched: Watched,
                                                            server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/?collapse=false")
    ready(page)
    assert page.locator(".hit").count() == len(corpus()) + len(hostile_link_articles())
    conflict_labels = page.locator('fieldset[data-facet="conflicts"] label').all_inner_texts()
    counts = {re.sub(r"\s+", " ", t).strip() for t in conflict_labels}
    # Conflict ids are shown by their taxonomy names (/api/labels).
    assert "Russia-Ukraine war 4" in counts and "Sudan civil war (SAF vs RSF) 2" in counts
    for facet in ("event_types", "countries", "source", "language"):
        assert page.locator(f'fieldset[data-facet="{facet}"] input[type=checkbox]').count() > 0

    with page.expect_response(lambda r: "conflict=sudan" in r.url):
        facet_box(page, "conflict", "sudan").check()
    ready(page)
    assert query_of(page)["conflict"] == ["sudan"]
    assert page.locator(".hit").count() == 2
    chips = page.locator(".hit").evaluate_all(
        "hits => hits.map(h => [...h.querySelectorAll('.chip.conflict')].map(c => c.textContent))")
    assert chips and all(c == ["Sudan civil war (SAF vs RSF)"] for c in chips)
    assert facet_box(page, "conflict", "sudan").is_checked()

    # Back restores the unfiltered search from the URL.
    with page.expect_response(lambda r: "/api/search" in r.url):
        page.go_back()
    ready(page)
    assert page.locator(".hit").count() == len(corpus()) + len(hostile_link_articles())
    assert not facet_box(page, "conflict", "sudan").is_checked()


def test_keyboard_only_search_and_filter(watched: Watched, server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/")
    ready(page)
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("shelling OR retook")
    with page.expect_response(lambda r: "/api/search" in r.url):
        page.keyboard.press("Enter")
    ready(page)
    assert page.locator(".hit").count() == 2
    # Tab through the form to the first facet checkbox and tick it with Space.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.param === 'conflict'"):
            break
    else:
        pytest.fail("no facet checkbox reachable with Tab")
    value = page.evaluate("document.activeElement.value")
    with page.expect_response(lambda r: "/api/search" in r.url):
        page.keyboard.press("Space")
    ready(page)
    assert query_of(page)["conflict"] == [value]
    assert query_of(page)["q"] == ["shelling OR retook"]
    # Every form control has a label.
    unlabeled = page.evaluate("""[...document.querySelectorAll('input, select')]
        .filter(e => !(e.labels && e.labels.length)).map(e => e.id || e.name)""")
    assert unlabeled == []


def test_copies_of_a_story_fold_under_n_more_outlets(watched: Watched,
                                                     server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/?q=power+station")
    ready(page)
    assert page.locator(".hit").count() == 1
    summary = page.locator(".hit details.more summary")
    assert summary.inner_text() == "2 more outlets"
    assert not page.locator(".hit details.more ul").is_visible()
    summary.focus()
    page.keyboard.press("Enter")  # native <details>: keyboard opens it
    outlets = page.locator(".hit details.more ul a")
    assert outlets.count() == 2
    assert {urlsplit(h).hostname for h in outlets.evaluate_all("as => as.map(a => a.href)")} == {
        "www.reuters.com", "apnews.com"} - {urlsplit(page.locator(".hit h3 a").get_attribute(
            "href")).hostname}
    # Un-grouping shows every copy.
    with page.expect_response(lambda r: "collapse=false" in r.url):
        page.uncheck("#collapse")
    ready(page)
    assert page.locator(".hit").count() == 3


def test_map_plots_the_locations_on_an_offline_world(watched: Watched,
                                                     server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/")
    ready(page)
    # expect() polls from Playwright's side: a string wait_for_function needs eval, which the
    # page's CSP refuses when the condition is not already true.
    expect(page.locator("#land")).to_have_attribute("d", re.compile(r"^.{1000,}$", re.S))
    points = page.locator("#map-points circle").evaluate_all(
        "cs => cs.map(c => [c.dataset.name, +c.getAttribute('cx'), +c.getAttribute('cy')])")
    names = {name for name, _, _ in points}
    assert names == {"Kharkiv", "El Fasher", "Cairo"}
    kharkiv = next(p for p in points if p[0] == "Kharkiv")
    assert kharkiv[1] == pytest.approx(KHARKIV.lon, abs=0.01)
    assert kharkiv[2] == pytest.approx(-KHARKIV.lat, abs=0.01)
    # Narrowing the search narrows the map.
    search_via_box(page, "shelling")
    assert page.locator("#map-points circle").evaluate_all(
        "cs => cs.map(c => c.dataset.name)") == ["El Fasher"]
    assert page.locator("#histogram .bar").count() >= 1


def test_histogram_bars_match_the_dates_and_a_click_filters(watched: Watched,
                                                             server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/?collapse=false")
    ready(page)
    bars = page.locator("#histogram .bar").evaluate_all(
        "gs => gs.map(g => [g.dataset.date.slice(0, 10), +g.dataset.count])")
    # The corpus: one article each on the 15th, 17th, 18th, 21st; three on the 19th (the
    # hostile ones) and on the 20th; gaps filled with zero bars.
    assert [tuple(b) for b in bars] == [
        ("2026-11-15", 1), ("2026-11-16", 0), ("2026-11-17", 1), ("2026-11-18", 1),
        ("2026-11-19", 3), ("2026-11-20", 3), ("2026-11-21", 1)]
    heights = page.locator("#histogram .bar .value").evaluate_all(
        "rs => rs.map(r => +r.getAttribute('height'))")
    assert heights[4] == heights[5] == max(heights) and heights[1] == 0
    assert heights[0] == pytest.approx(max(heights) / 3)
    with page.expect_response(lambda r: "since=2026-11-20" in r.url):
        page.locator('#histogram .bar[data-date^="2026-11-20"]').click()
    ready(page)
    assert query_of(page)["since"] == ["2026-11-20"]
    assert query_of(page)["until"] == ["2026-11-20"]
    assert page.input_value("#since") == "2026-11-20"
    assert page.locator(".hit").count() == 3


def test_hostile_article_text_stays_inert(watched: Watched, server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/?q=kharkiv&collapse=false")
    ready(page)
    page.locator(".hit").first.wait_for()
    hostile = page.locator(".hit", has_text="exposé")
    assert hostile.count() == 1
    assert hostile.locator("h3").inner_text() == XSS_TITLE  # shown as text, verbatim
    snippet = hostile.locator(".snippet")
    assert "<b onmouseover" in snippet.inner_text()
    assert snippet.locator("mark").all_inner_texts() == ["Kharkiv", "Kharkiv"]
    hostile.hover()
    assert page.evaluate("typeof window.__xss") == "undefined"
    injected = page.locator("#results img, #results script, #results svg, #results b[onmouseover]")
    assert injected.count() == 0
    # A javascript: URL never becomes a link.
    js_hit = page.locator(".hit", has_text="Kharkiv javascript link")
    assert js_hit.count() == 1
    assert js_hit.locator("a").count() == 0
    hrefs = page.locator("#results a").evaluate_all("as => as.map(a => a.protocol)")
    assert set(hrefs) <= {"http:", "https:"}
    js_hit.locator("h3").click()
    assert page.evaluate("typeof window.__xss") == "undefined"
    relative = page.locator(".hit", has_text="Kharkiv relative link")
    assert relative.count() == 1 and relative.locator("a").count() == 0


def test_query_syntax_error_is_shown(watched: Watched, server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/")
    ready(page)
    watched.errors.clear()
    page.fill("#q", "title:(kharkiv")
    page.press("#q", "Enter")
    page.wait_for_selector("body[data-state=error]")
    assert "query syntax error" in page.inner_text("#error")
    # The 400 shows up as a console "failed resource" message; that one is expected.
    watched.errors[:] = [e for e in watched.errors if "400" not in e]


def test_shared_url_restores_the_search(watched: Watched, server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/?q=drones&country=UA&sort=date&collapse=false&since=2026-11-20")
    ready(page)
    assert page.input_value("#q") == "drones"
    assert page.input_value("#sort") == "date"
    assert page.input_value("#since") == "2026-11-20"
    assert facet_box(page, "country", "UA").is_checked()
    dates = page.locator(".hit time").evaluate_all("ts => ts.map(t => t.getAttribute('datetime'))")
    assert dates and dates == sorted(dates, reverse=True)
    assert all(d >= "2026-11-20" for d in dates)


def test_facets_are_multi_select(watched: Watched, server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/?collapse=false&conflict=sudan")
    ready(page)
    assert page.locator(".hit").count() == 2
    # The other conflicts keep their counts, so the selection can be widened.
    labels = page.locator('fieldset[data-facet="conflicts"] label').all_inner_texts()
    assert "Russia-Ukraine war 4" in {re.sub(r"\s+", " ", t).strip() for t in labels}
    with page.expect_response(lambda r: "conflict=russia-ukraine" in r.url):
        facet_box(page, "conflict", "russia-ukraine").check()
    ready(page)
    wanted = [a for a in corpus() + hostile_link_articles()
              if {c.id for c in a.conflicts} & {"sudan", "russia-ukraine"}]
    assert page.locator(".hit").count() == len(wanted) == 6
    assert sorted(query_of(page)["conflict"]) == ["russia-ukraine", "sudan"]


def test_next_follows_the_cursor_and_previous_comes_back(watched: Watched,
                                                         server: LiveServer) -> None:
    page = watched.page
    page.goto(server.base_url + "/?collapse=false&sort=date&size=3")
    ready(page)
    titles = lambda: page.locator(".hit h3").all_inner_texts()  # noqa: E731
    pages = [titles()]
    assert page.locator("#prev-page").is_disabled()
    while page.locator("#next-page").is_enabled():
        with page.expect_response(lambda r: "cursor=" in r.url and "page=" not in r.url):
            page.click("#next-page")
        ready(page)
        assert query_of(page)["page"] == [str(len(pages) + 1)] and query_of(page)["cursor"]
        pages.append(titles())
    seen = [t for p in pages for t in p]
    assert len(seen) == len(set(seen)) == len(corpus()) + len(hostile_link_articles())
    assert len(pages) >= 3
    with page.expect_response(lambda r: "/api/search" in r.url):
        page.click("#prev-page")
    ready(page)
    assert titles() == pages[-2]
    assert query_of(page)["page"] == [str(len(pages) - 1)]


def test_readable_on_a_phone(browser: Browser, server: LiveServer, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(server.base_url + "/?q=kharkiv")
        ready(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        facets = page.locator(".facets").bounding_box()
        results = page.locator("#results").bounding_box()
        assert facets and results
        assert results["y"] > facets["y"] and abs(results["x"] - facets["x"]) < 20  # stacked
        assert results["width"] > 300
        font = page.locator(".hit .snippet").first.evaluate(
            "e => parseFloat(getComputedStyle(e).fontSize)")
        assert font >= 14
        # Filters start folded so results come within the first two screens; a tap opens them.
        assert results["y"] < 2 * 844
        ukraine = facet_box(page, "conflict", "russia-ukraine")
        assert not ukraine.is_visible()
        page.tap("#facet-panel summary")
        assert ukraine.is_visible()
        with page.expect_response(lambda r: "conflict=russia-ukraine" in r.url):
            ukraine.tap()
        ready(page)
        assert query_of(page)["conflict"] == ["russia-ukraine"]
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    finally:
        context.close()


def _pixels(path: Path, box: dict[str, float], scale: float = 1.0) -> list[int]:
    """Grey levels of the screenshot inside ``box`` (CSS pixels)."""
    width, height, rows, info = png.Reader(filename=str(path)).asRGBA8()
    x0, y0 = int(box["x"] * scale), int(box["y"] * scale)
    x1 = min(width, int((box["x"] + box["width"]) * scale))
    y1 = min(height, int((box["y"] + box["height"]) * scale))
    grey = []
    for y, row in enumerate(rows):
        if y0 <= y < y1:
            for x in range(x0, x1, 2):
                r, g, b = row[4 * x], row[4 * x + 1], row[4 * x + 2]
                grey.append((r * 299 + g * 587 + b * 114) // 1000)
    return grey


def test_screenshot_shows_results_and_facets(watched: Watched, server: LiveServer,
                                             tmp_path: Path) -> None:
    page = watched.page
    page.goto(server.base_url + "/?q=kharkiv")
    ready(page)
    # expect() polls from Playwright's side: a string wait_for_function needs eval, which the
    # page's CSP refuses when the condition is not already true.
    expect(page.locator("#land")).to_have_attribute("d", re.compile(r"^.{1000,}$", re.S))
    shot = tmp_path / "search-kharkiv.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    for selector in ("#results", ".facets", "#map"):
        box = page.locator(selector).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50, selector
        grey = _pixels(shot, box)
        # A blank or single-colour area has (almost) no spread; text and bars do.
        assert statistics.pstdev(grey) > 12, (selector, statistics.pstdev(grey))
        assert len(set(grey)) > 20, selector
    # The same page with no results really is flatter: the check can tell them apart.
    page.goto(server.base_url + "/?q=zzzznotaword")
    ready(page)
    empty = tmp_path / "search-empty.png"
    page.screenshot(path=str(empty), full_page=True)
    box = page.locator(".content").bounding_box()
    before = statistics.pstdev(_pixels(shot, box))
    assert statistics.pstdev(_pixels(empty, box)) < before


def _flagged_articles() -> list:
    from datetime import UTC, datetime

    from newswire.records import Article

    day = datetime(2026, 11, 20, 9, tzinfo=UTC)
    return [
        Article(id="teaser", url="https://paper.example/world/teaser", source="paper.example",
                title="Drone strike on the port of Odesa", text="Drone strike on Odesa port. "
                "Subscribe to read the rest.", partial=True, flags=("paywall",),
                published=day, story_id="s-teaser"),
        Article(id="live", url="https://paper.example/live/odesa", source="paper.example",
                title="Odesa drone strike: live updates", text="09:10 Odesa drone strike. "
                "09:40 Air defence active over Odesa.", flags=("liveblog_index",),
                published=day, story_id="s-live"),
        Article(id="full", url="https://wire.example/odesa", source="wire.example",
                title="Drone strike hits Odesa port overnight", text="A drone strike hit the "
                "port of Odesa overnight, officials said. " * 20, published=day,
                story_id="s-full"),
    ]


def test_a_story_that_is_not_whole_says_so(browser: Browser,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    """A paywall teaser or a live blog is found like any story but marked, with why."""
    with live_server(tmp_path_factory.mktemp("web-flags"), _flagged_articles()) as live:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        watched = Watched(page, live.base_url)
        try:
            page.goto(live.base_url + "/?q=Odesa&collapse=false")
            ready(page)
            badges = {i: page.locator(f'.hit[data-id="{i}"] .badge.quality').all_inner_texts()
                      for i in ("teaser", "live", "full")}
            assert badges == {"teaser": ["Paywall teaser"], "live": ["Live blog"], "full": []}
            teaser = page.locator('.hit[data-id="teaser"] .badge.quality')
            assert "only the start" in (teaser.get_attribute("title") or "")
            assert page.locator('.hit[data-id="full"] .badge.quality').count() == 0
        finally:
            context.close()
        assert watched.errors == [] and watched.foreign == []
