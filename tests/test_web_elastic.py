"""The same HTTP API over the Elasticsearch store (noida's Elasticsearch API): the page and
API behave the same whichever store is configured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from indexer.web import SearchResponse, run_web
from newswire.broker import EmbeddedServer
from newswire.settings import load_settings
from tests.browser_setup.live import XSS_TITLE, LiveServer, corpus, free_port, live_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def es_server(noida: EmbeddedServer,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    search = {"backend": "elasticsearch", "elasticsearch_url": noida.elasticsearch_url,
              "index_prefix": "webapi"}
    with live_server(tmp_path_factory.mktemp("web-es"), search=search) as live:
        yield live


def test_search_over_elasticsearch(es_server: LiveServer) -> None:
    with httpx.Client(base_url=es_server.base_url, timeout=30) as client:
        health = client.get("/healthz").json()
        assert health == {"status": "ok", "articles": len(corpus())}
        body = client.get("/api/search", params={"q": "kharkiv"}).json()
        SearchResponse.model_validate(body)
        head = next(h for h in body["hits"] if h["story_id"] == "story-kharkiv-power")
        assert head["more_outlets"] == 2
        assert "<mark>" in head["snippet"]
        assert {"value": "russia-ukraine", "count": 4} in body["facets"]["conflicts"]
        assert sum(b["count"] for b in body["histogram"]) == body["total"]
        hostile = next(h for h in body["hits"] if h["source"] == "evil.example")
        assert hostile["title"] == XSS_TITLE
        narrowed = client.get("/api/search", params={"q": "kharkiv", "language": "fr"}).json()
        assert [h["source"] for h in narrowed["hits"]] == ["www.lemonde.fr"]
        bad = client.get("/api/search", params={"q": "kharkiv AND"})
        assert bad.status_code == 400 and bad.json()["detail"].startswith("query syntax error")


def test_store_down_answers_503_not_500(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there: a real refused connection
    port = free_port()
    settings = load_settings(data_dir=tmp_path, web={"port": port}, search={
        "backend": "elasticsearch", "elasticsearch_url": f"http://127.0.0.1:{dead}"})
    stop = threading.Event()
    thread = threading.Thread(target=run_web, args=(settings, stop), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        health = None
        for _ in range(200):
            try:
                health = httpx.get(base + "/healthz", timeout=30)
                break
            except httpx.TransportError:
                stop.wait(0.05)
        assert health is not None and health.status_code == 503
        assert health.json()["status"] == "unavailable"
        for path in ("/api/search?q=kharkiv", "/api/articles/abc"):
            r = httpx.get(base + path, timeout=60)
            assert r.status_code == 503, (path, r.text)
            assert r.json()["detail"] == "the search store is unavailable; retry later"
            assert r.headers["retry-after"] == "5"
        assert httpx.get(base + "/").status_code == 200  # the page itself still loads
    finally:
        stop.set()
        thread.join(15)
