"""A real search server for the web tests: an embedded (tantivy) store in a tmp data dir,
filled with a few real-looking articles, served by ``indexer.web.run_web`` on a free
loopback port in a thread. Nothing is mocked: the tests talk HTTP to it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from indexer.store import open_store
from indexer.web import run_web
from newswire.keys import url_key
from newswire.records import Article, ConflictTag, EventTypeTag, Location
from newswire.settings import Settings, load_settings

XSS_TITLE = '<img src=x onerror="window.__xss=1">Kharkiv <script>window.__xss=2</script> exposé'
XSS_TEXT = ('Residents of Kharkiv said <b onmouseover="window.__xss=3">nothing</b> and '
            '<svg onload="window.__xss=4"></svg> again; Kharkiv stays dark.')

UKRAINE = ConflictTag(id="russia-ukraine", name="Russia-Ukraine war", score=0.92)
SUDAN = ConflictTag(id="sudan", name="Sudan civil war (SAF vs RSF)", score=0.88)
GAZA = ConflictTag(id="israel-hamas", name="Israel-Hamas war (Gaza)", score=0.9)
KHARKIV = Location(name="Kharkiv", country="UA", lat=49.99, lon=36.23)
EL_FASHER = Location(name="El Fasher", country="SD", lat=13.63, lon=25.35)
CAIRO = Location(name="Cairo", country="EG", lat=30.04, lon=31.24)


def _article(url: str, title: str, text: str, published: str, *, source: str,
             language: str = "en", conflicts: tuple[ConflictTag, ...] = (),
             events: tuple[str, ...] = (), countries: tuple[str, ...] = (),
             locations: tuple[Location, ...] = (), story: str | None = None) -> Article:
    return Article(
        id=url_key(url), url=url, title=title, text=text, source=source, language=language,
        published=datetime.fromisoformat(published).replace(tzinfo=UTC),
        conflict_related=bool(conflicts), conflict_score=conflicts[0].score if conflicts else 0,
        conflicts=conflicts,
        event_types=tuple(EventTypeTag(id=e, event_type=e, score=0.8) for e in events),
        countries=countries, locations=locations, story_id=story,
    )


def corpus() -> list[Article]:
    """Eight articles: one story told by three outlets, others apart, one hostile title."""
    kharkiv_text = (
        "A wave of Russian drones struck the main power station in Kharkiv overnight, "
        "regional governor Oleh Syniehubov said, leaving tens of thousands of homes without "
        "electricity as temperatures fell below freezing. Air defence units shot down most of "
        "the drones, the Ukrainian air force said.")
    reuters = "https://www.reuters.com/world/europe/drones-hit-kharkiv-power-station-2026-11-20/"
    return [
        _article(reuters,
                 "Russian drones hit Kharkiv power station, thousands without heat",
                 kharkiv_text, "2026-11-20T06:10:00", source="www.reuters.com",
                 conflicts=(UKRAINE,),
                 events=("air_drone_strike", "looting_property_destruction"),
                 countries=("UA", "RU"), locations=(KHARKIV,), story="story-kharkiv-power"),
        _article("https://apnews.com/article/ukraine-kharkiv-drone-power-plant-7d1e",
                 "Drone attack on Kharkiv power plant leaves homes dark",
                 kharkiv_text.replace("A wave of", "Dozens of"), "2026-11-20T07:45:00",
                 source="apnews.com", conflicts=(UKRAINE,), events=("air_drone_strike",),
                 countries=("UA",), locations=(KHARKIV,), story="story-kharkiv-power"),
        _article("https://www.bbc.co.uk/news/articles/kharkiv-drones-power",
                 "Kharkiv: drones knock out power station",
                 kharkiv_text + " Repairs could take weeks.", "2026-11-20T09:00:00",
                 source="www.bbc.co.uk", conflicts=(UKRAINE,), events=("air_drone_strike",),
                 countries=("UA",), locations=(KHARKIV,), story="story-kharkiv-power"),
        _article("https://www.lemonde.fr/international/article/2026/11/21/kharkiv-frappes.html",
                 "Ukraine : nouvelles frappes de drones sur Kharkiv",
                 "De nouvelles frappes de drones russes ont visé Kharkiv dans la nuit, a indiqué "
                 "le gouverneur régional, sans faire de victimes selon un premier bilan.",
                 "2026-11-21T05:30:00", source="www.lemonde.fr", language="fr",
                 conflicts=(UKRAINE,), events=("air_drone_strike",), countries=("UA",),
                 locations=(KHARKIV,), story="story-kharkiv-lemonde"),
        _article("https://www.aljazeera.com/news/2026/11/18/rsf-shelling-el-fasher",
                 "RSF shelling of El Fasher camp kills at least 12 civilians",
                 "Shelling by the paramilitary Rapid Support Forces hit a displacement camp on the "
                 "edge of El Fasher in North Darfur, killing at least 12 civilians, medics said.",
                 "2026-11-18T14:00:00", source="www.aljazeera.com", conflicts=(SUDAN,),
                 events=("shelling_artillery_missile_attack",), countries=("SD",),
                 locations=(EL_FASHER,),
                 story="story-el-fasher"),
        _article("https://www.france24.com/en/africa/20261117-sudan-army-retakes-town",
                 "Sudanese army says it retook town south of El Obeid",
                 "The Sudanese army said on Monday it had retaken a town south of El Obeid from "
                 "the RSF after days of fighting, a claim that could not be independently checked.",
                 "2026-11-17T10:20:00", source="www.france24.com", conflicts=(SUDAN,),
                 events=("government_regains_territory",), countries=("SD",),
                 story="story-el-obeid"),
        _article("https://www.theguardian.com/world/2026/nov/15/gaza-ceasefire-talks-cairo",
                 "Gaza ceasefire talks resume in Cairo",
                 "Negotiators returned to Cairo for a new round of ceasefire talks, mediators "
                 "said, as strikes continued across the Gaza Strip.",
                 "2026-11-15T18:30:00", source="www.theguardian.com", conflicts=(GAZA,),
                 events=("agreement",), countries=("PS", "EG", "IL"), locations=(CAIRO,),
                 story="story-cairo-talks"),
        _article("https://evil.example/kharkiv-xss", XSS_TITLE, XSS_TEXT,
                 "2026-11-19T12:00:00", source="evil.example", countries=("UA",),
                 story="story-xss"),
    ]


def hostile_link_articles() -> list[Article]:
    """Articles whose URL must never become a live link: a javascript: URL and a relative
    one (which would point into the search site itself)."""
    day = datetime(2026, 11, 19, 13, tzinfo=UTC)
    return [
        Article(id="js-url-article", url="javascript:window.__xss=5//kharkiv",
                title="Kharkiv javascript link", text="Kharkiv link bait", source="evil.example",
                published=day, story_id="story-js"),
        Article(id="relative-url-article", url="/api/articles/js-url-article",
                title="Kharkiv relative link", text="Kharkiv relative bait",
                source="evil.example", published=day, story_id="story-relative"),
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill_store(settings: Settings, articles: list[Article]) -> None:
    store = open_store(settings, writer=True)
    try:
        store.ensure()
        rejected = store.upsert(articles)
        assert not rejected, rejected
        store.refresh()
    finally:
        store.close()


@dataclass
class LiveServer:
    base_url: str
    settings: Settings
    stop: threading.Event
    thread: threading.Thread
    exit_codes: list[int]


def wait_until_up(base_url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"web server at {base_url} did not come up: {last!r}")


@contextmanager
def live_server(data_dir: Path, articles: list[Article] | None = None,
                search: dict[str, object] | None = None, **web: object) -> Iterator[LiveServer]:
    """Fill a store (embedded under ``data_dir``, or as ``search`` settings say) and serve it
    with ``run_web`` until the block ends."""
    port = free_port()
    settings = load_settings(data_dir=data_dir, web={"host": "127.0.0.1", "port": port, **web},
                             search=search)
    fill_store(settings, corpus() if articles is None else articles)
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(run_web(settings, stop)),
                              name="web-test-server", daemon=True)
    thread.start()
    server = LiveServer(f"http://127.0.0.1:{port}", settings, stop, thread, codes)
    try:
        wait_until_up(server.base_url)
        yield server
    finally:
        stop.set()
        thread.join(15)
