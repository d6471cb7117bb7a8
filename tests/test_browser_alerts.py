"""The alerts view of the page in a real headless Chromium, against a real web server whose
alert rules live on the session's noida Kafka (``/api/alerts``, token-guarded writes).

One live server and one browser for the module; each test gets a fresh page and starts with
no rules (cleaned up through the API afterwards). See tests/browser_setup/README.md.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import png  # type: ignore[import-untyped]
import pytest
from kafka import KafkaProducer  # type: ignore[import-untyped]
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    FloatRect,
    Page,
    Request,
    expect,
    sync_playwright,
)

from indexer.web import run_web
from newswire.broker import EmbeddedServer
from newswire.settings import Settings, load_settings
from processors.alerts.models import Alert, ArticleRef, StoryAlerts
from tests.browser_setup.live import corpus, fill_store, free_port, wait_until_up

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-quic",
                 "--disable-sync"]
TOKEN = "page-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOSTILE_NAME = '<script>window.__xss=7</script><img src=x onerror="window.__xss=8">Kharkiv watch'


class Live:
    def __init__(self, base_url: str, settings: Settings) -> None:
        self.base_url = base_url
        self.settings = settings
        self.api = httpx.Client(base_url=base_url, timeout=30)

    def rules(self) -> list[dict]:  # type: ignore[type-arg]
        response = self.api.get("/api/alerts")
        assert response.status_code == 200, response.text
        return response.json()["rules"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def server(noida: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    port = free_port()
    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("web-alerts"),
        kafka={"bootstrap_servers": noida.bootstrap, "topic_prefix": "browseralerts",
               "partitions": 1},
        web={"host": "127.0.0.1", "port": port, "token": TOKEN},
        # the page's rules post to loopback receivers
        fetch={"allow_private_networks": True})
    fill_store(settings, corpus())
    stop = threading.Event()
    thread = threading.Thread(target=run_web, args=(settings, stop), daemon=True)
    thread.start()
    live = Live(f"http://127.0.0.1:{port}", settings)
    try:
        wait_until_up(live.base_url)
        yield live
    finally:
        live.api.close()
        stop.set()
        thread.join(15)


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
    """A page plus its console errors (CSP reports), JS errors and requests that left the
    server under test."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(message.text)

        def request(req: Request) -> None:
            if not (req.url.startswith(base_url) or req.url.startswith("data:")):
                self.foreign.append(req.url)

        page.on("console", console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", request)

    def expect_refused(self, *statuses: int) -> None:
        """Drop the console's 'failed resource' lines of statuses the test provoked."""
        self.errors[:] = [e for e in self.errors
                          if not any(f"status of {s}" in e for s in statuses)]


@pytest.fixture
def watched(browser: Browser, server: Live) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    w = Watched(page, server.base_url)
    try:
        yield w
    finally:
        context.close()
        for rule in server.rules():  # the next test starts with none
            server.api.delete(f"/api/alerts/{rule['id']}", headers=AUTH)
    assert w.errors == [], w.errors  # no CSP violation, no JS error, no unexpected failure
    assert w.foreign == [], w.foreign


def open_alerts(page: Page, base_url: str) -> None:
    page.goto(base_url + "/#alerts")
    page.wait_for_selector("body[data-alerts=ready]")


def reloaded(page: Page, action: object) -> None:
    """Run ``action`` (a callable) and wait for the rule list it causes to be re-read."""
    with page.expect_response(lambda r: "/api/alerts?alerts=" in r.url):
        action()  # type: ignore[operator]
    page.wait_for_selector("body[data-alerts=ready]")


def create_via_api(server: Live, **body: object) -> dict:  # type: ignore[type-arg]
    response = server.api.post("/api/alerts", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()["rule"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ tests


def test_create_pause_resume_delete_through_the_page(watched: Watched, server: Live) -> None:
    page = watched.page
    open_alerts(page, server.base_url)
    assert page.is_hidden("#search-view") and page.is_visible("#alerts-view")
    assert "No alert rules yet" in page.inner_text("#alerts-status")

    page.click("#new-rule")
    assert page.evaluate("document.activeElement.id") == "rule-name"  # focus in the dialog
    page.keyboard.type("Kharkiv strikes")
    page.fill("#rule-query", "Kharkiv AND (drones OR missiles)")
    page.fill("#rule-conflicts", "russia-ukraine")
    page.fill("#rule-countries", "UA, RU")
    page.fill("#rule-min-casualties", "3")
    page.fill("#rule-webhook", "http://127.0.0.1:9/hook/path-token-zzz")
    page.fill("#rule-webhook-secret", "ops")
    page.fill("#rule-slack", "desk_slack")
    page.fill("#rule-email", "desk@example.org")
    page.fill("#rule-file", "/var/lib/newswire/alerts.jsonl")
    page.fill("#rule-throttle", "60")
    page.select_option("#rule-digest", "hourly")
    page.press("#rule-name", "Enter")  # Enter submits; the page asks for the token first
    page.wait_for_selector("#token-dialog[open]")
    assert page.get_attribute("#token-input", "type") == "password"
    page.fill("#token-input", TOKEN)
    reloaded(page, lambda: page.press("#token-input", "Enter"))
    assert page.is_hidden("#rule-dialog")
    assert "created" in page.inner_text("#alerts-status")

    (stored,) = server.rules()
    assert stored["name"] == "Kharkiv strikes" and stored["query"].startswith("Kharkiv AND")
    assert stored["filters"]["conflicts"] == ["russia-ukraine"]
    assert stored["filters"]["countries"] == ["UA", "RU"]
    assert stored["filters"]["min_casualties"] == 3 and stored["throttle"] == 60
    assert stored["digest"] == "hourly" and stored["paused"] is False
    assert [c["type"] for c in stored["channels"]] == ["webhook", "slack", "email", "file"]
    assert stored["channels"][0]["secret_name"] == "ops"
    assert stored["channels"][1]["url_secret"] == "desk_slack"

    card = page.locator(f'.rule[data-id="{stored["id"]}"]')
    text = card.inner_text()
    assert "Kharkiv strikes" in text and "Kharkiv AND (drones OR missiles)" in text
    assert "conflict: russia-ukraine" in text and "casualties ≥ 3" in text
    assert "127.0.0.1:9" in text and "“ops”" in text and "“desk_slack”" in text
    assert "path-token-zzz" not in text  # a webhook's path is never shown
    assert "desk@example.org" in text and "hourly" in text and "60 s" in text
    assert card.locator(".badge").inner_text() == "active"

    # Pause: the token is not asked again (it is kept for the tab).
    reloaded(page, lambda: card.get_by_role("button", name="Pause rule Kharkiv strikes").click())
    assert page.is_hidden("#token-dialog")
    assert card.locator(".badge").inner_text() == "paused"
    assert server.rules()[0]["paused"] is True
    reloaded(page, lambda: card.get_by_role("button", name="Resume rule Kharkiv strikes").click())
    assert server.rules()[0]["paused"] is False and card.locator(".badge").inner_text() == "active"

    # Delete asks first; Escape backs out without deleting.
    card.locator("button.delete").click()
    page.wait_for_selector("#confirm-dialog[open]")
    assert "Kharkiv strikes" in page.inner_text("#confirm-text")
    page.keyboard.press("Escape")
    assert page.is_hidden("#confirm-dialog") and len(server.rules()) == 1
    card.locator("button.delete").click()
    reloaded(page, lambda: page.click("#confirm-delete"))
    assert server.rules() == []
    assert page.locator(".rule").count() == 0 and "deleted" in page.inner_text("#alerts-status")


def test_writes_without_a_good_token_are_refused_visibly(watched: Watched,
                                                          server: Live) -> None:
    page = watched.page
    open_alerts(page, server.base_url)
    page.click("#new-rule")
    page.fill("#rule-name", "no token")
    page.fill("#rule-query", "Sudan")
    # No token at all (the dialog left empty): the server refuses, the page says so.
    page.press("#rule-name", "Enter")
    page.wait_for_selector("#token-dialog[open]")
    with page.expect_response(lambda r: r.url.endswith("/api/alerts") and r.status == 401):
        page.press("#token-input", "Enter")
    error = page.locator("#rule-form-error")
    error.wait_for(state="visible")
    assert "401" in error.inner_text() and "bearer token is required" in error.inner_text()
    assert page.is_visible("#rule-dialog")  # the form keeps what was typed
    assert page.input_value("#rule-name") == "no token"
    # A wrong token: refused too, and forgotten, so the next write asks again.
    page.press("#rule-name", "Enter")
    page.wait_for_selector("#token-dialog[open]")
    page.fill("#token-input", "not-the-token")
    with page.expect_response(lambda r: r.url.endswith("/api/alerts") and r.status == 401):
        page.press("#token-input", "Enter")
    expect(page.locator("#rule-form-error")).to_contain_text("invalid token")
    # Escape on the token dialog: nothing is sent, and the page says why.
    page.press("#rule-name", "Enter")
    page.wait_for_selector("#token-dialog[open]")
    page.keyboard.press("Escape")
    expect(page.locator("#rule-form-error")).to_contain_text("needs the API token")
    watched.expect_refused(401)
    assert server.rules() == []

    # With the token: the API's validation messages are shown (400 and 422).
    page.fill("#rule-query", "title:(a OR")
    page.press("#rule-name", "Enter")
    page.fill("#token-input", TOKEN)
    with page.expect_response(lambda r: r.url.endswith("/api/alerts") and r.status == 400):
        page.press("#token-input", "Enter")
    expect(page.locator("#rule-form-error")).to_contain_text("(400)")
    assert "parse" in error.inner_text()
    page.fill("#rule-query", "Sudan")
    page.fill("#rule-throttle", "-5")
    with page.expect_response(lambda r: r.url.endswith("/api/alerts") and r.status == 422):
        page.press("#rule-name", "Enter")
    expect(page.locator("#rule-form-error")).to_contain_text("(422)")
    assert "throttle" in error.inner_text()
    watched.expect_refused(400, 422)
    assert server.rules() == []
    page.keyboard.press("Escape")  # Escape closes the form
    assert page.is_hidden("#rule-dialog")


def test_hostile_rule_names_and_alert_titles_stay_text(watched: Watched, server: Live) -> None:
    rule = create_via_api(server, name=HOSTILE_NAME, query="Kharkiv")
    at = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
    first = ArticleRef(id="a1", url="javascript:window.__xss=9//", source="evil.example",
                       title='<img src=x onerror="window.__xss=10">Drones over Kharkiv',
                       ingested=at)
    other = ArticleRef(id="a2", url="https://apnews.com/x", source="apnews.com", ingested=at)
    alert = Alert(id="x1", rule_id=rule["id"], story_id="s1", status="sent", first=first,
                  also_reported_by=(other,), first_seen=at)
    producer = KafkaProducer(**server.settings.kafka.client_config(), acks="all")
    producer.send(server.settings.topic("alerts"), key=b"s1",
                  value=StoryAlerts(story_id="s1", alerts={rule["id"]: alert}).to_bytes())
    producer.flush(10)
    producer.close()

    page = watched.page
    open_alerts(page, server.base_url)
    card = page.locator(".rule").first
    assert card.locator("h3").inner_text() == HOSTILE_NAME  # verbatim, as text
    latest = card.locator(".latest .alert")
    assert latest.count() == 1
    assert "Drones over Kharkiv" in latest.inner_text() and "<img" in latest.inner_text()
    assert "Also reported by apnews.com" in latest.inner_text()
    assert latest.locator("a").count() == 0  # a javascript: URL is no link
    card.hover()
    latest.click()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#rules script, #rules img").count() == 0
    # the confirmation quotes it as text too
    card.locator("button.delete").click()
    assert HOSTILE_NAME in page.inner_text("#confirm-text")
    assert page.locator("#confirm-dialog script, #confirm-dialog img").count() == 0
    page.keyboard.press("Escape")
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_save_this_search_prefills_the_form(watched: Watched, server: Live) -> None:
    page = watched.page
    page.goto(server.base_url + "/?q=drones&conflict=russia-ukraine&country=UA&country=RU")
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_visible("#search-view") and page.is_hidden("#alerts-view")
    page.click("#save-alert")
    page.wait_for_selector("#rule-dialog[open]")
    assert page.is_visible("#alerts-view") and page.url.endswith("#alerts")
    assert page.input_value("#rule-query") == "drones"
    assert page.input_value("#rule-name") == "drones"
    assert page.input_value("#rule-conflicts") == "russia-ukraine"
    assert page.input_value("#rule-countries") == "UA, RU"
    assert page.input_value("#rule-sources") == ""
    page.wait_for_selector("body[data-alerts=ready]")  # the list the view switch loads
    page.press("#rule-name", "Enter")
    page.fill("#token-input", TOKEN)
    page.press("#token-input", "Enter")
    expect(page.locator("#alerts-status")).to_contain_text("created")
    (stored,) = server.rules()
    assert stored["query"] == "drones" and stored["filters"]["countries"] == ["UA", "RU"]
    assert stored["filters"]["conflicts"] == ["russia-ukraine"]
    # A search from the header goes back to the results.
    page.fill("#q", "Sudan")
    with page.expect_response(lambda r: "/api/search" in r.url):
        page.press("#q", "Enter")
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_visible("#search-view") and page.is_hidden("#alerts-view")


def _grey(path: Path, box: FloatRect, scale: float = 1.0) -> list[int]:
    width, height, rows, _ = png.Reader(filename=str(path)).asRGBA8()
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


def test_screenshot_shows_the_rules_and_a_phone_can_read_them(
        watched: Watched, server: Live, browser: Browser, tmp_path: Path) -> None:
    page = watched.page
    open_alerts(page, server.base_url)
    empty = tmp_path / "alerts-empty.png"
    page.screenshot(path=str(empty), full_page=True)
    create_via_api(server, name="Sudan: El Fasher", query="Sudan AND (\"El Fasher\" OR Darfur)",
                   filters={"conflicts": ["sudan"], "min_killed": 10},
                   channels=[{"type": "webhook", "url": "https://hooks.example/a",
                              "secret_name": "ops"}], digest="daily")
    create_via_api(server, name="Myanmar 10+ killed", query="",
                   filters={"countries": ["MM"], "min_casualties": 10}, paused=True)
    open_alerts(page, server.base_url)
    shot = tmp_path / "alerts-list.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    box = page.locator("#rules").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150
    grey = _grey(shot, box)
    assert statistics.pstdev(grey) > 12 and len(set(grey)) > 20  # text, badges, buttons
    # The same area with no rules is flatter: the check can tell them apart.
    assert statistics.pstdev(_grey(empty, box)) < statistics.pstdev(grey)
    assert page.locator(".badge.paused").count() == 1 and page.locator(".badge.active").count() == 1

    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    try:
        phone = context.new_page()
        phone.goto(server.base_url + "/#alerts")
        phone.wait_for_selector("body[data-alerts=ready]")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert phone.locator(".rule").count() == 2
        font = phone.locator(".rule .facts").first.evaluate(
            "e => parseFloat(getComputedStyle(e).fontSize)")
        assert font >= 14
        phone.tap("#new-rule")
        dialog = phone.locator("#rule-dialog").bounding_box()
        assert dialog and dialog["x"] >= 0 and dialog["x"] + dialog["width"] <= 390
        phone.screenshot(path=str(tmp_path / "alerts-phone.png"))
    finally:
        context.close()


def test_keyboard_only_new_rule_dialog(watched: Watched, server: Live) -> None:
    page = watched.page
    open_alerts(page, server.base_url)
    for _ in range(30):  # Tab reaches the button; Enter opens the form
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "new-rule":
            break
    else:
        pytest.fail("'New alert rule' not reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector("#rule-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "rule-name"
    page.keyboard.type("by keyboard")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "rule-query"
    page.keyboard.press("Escape")  # closes without saving, focus back on the opener
    assert page.is_hidden("#rule-dialog")
    assert page.evaluate("document.activeElement.id") == "new-rule"
    page.keyboard.press("Enter")
    page.wait_for_selector("#rule-dialog[open]")
    assert page.input_value("#rule-name") == ""  # a fresh form each time
    page.keyboard.type("by keyboard")
    page.keyboard.press("Enter")
    page.wait_for_selector("#token-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "token-input"
    page.keyboard.type(TOKEN)
    page.keyboard.press("Enter")
    expect(page.locator("#alerts-status")).to_contain_text("created")
    assert [r["name"] for r in server.rules()] == ["by keyboard"]
    # every control of the page, dialogs included, has a label
    unlabeled = page.evaluate("""[...document.querySelectorAll('input, select')]
        .filter(e => !(e.labels && e.labels.length)).map(e => e.id || e.name)""")
    assert unlabeled == []
