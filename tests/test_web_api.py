"""The HTTP JSON API over a real embedded store, spoken to with httpx over loopback."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends
from hypothesis import given
from hypothesis import strategies as st

from indexer.web import (
    CSP,
    SearchResponse,
    create_app,
    histogram_interval,
    parse_bound,
    require_token,
    require_token_for_writes,
    run_web,
    taxonomy_labels,
)
from newswire.settings import load_settings
from tests.browser_setup.live import (
    XSS_TITLE,
    LiveServer,
    corpus,
    fill_store,
    free_port,
    live_server,
    wait_until_up,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("web-api")) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


# ------------------------------------------------------------------ search


def test_search_json_shape_and_highlight(client: httpx.Client) -> None:
    r = client.get("/api/search", params={"q": "power station", "collapse": "false"})
    assert r.status_code == 200, r.text
    body = r.json()
    SearchResponse.model_validate(body)  # the documented OpenAPI shape is the real one
    assert set(body) >= {"total", "hits", "facets", "histogram"}
    assert body["total"] == 3
    hit = body["hits"][0]
    assert set(hit) >= {"id", "url", "title", "published", "source", "conflicts", "event_types",
                        "countries", "story_id", "snippet", "locations"}
    assert "<mark>power</mark>" in hit["snippet"] or "<mark>station</mark>" in hit["snippet"]
    assert set(body["facets"]) == {"conflicts", "event_types", "countries", "source", "language"}
    assert {"value": "russia-ukraine", "count": 3} in body["facets"]["conflicts"]
    assert all(set(b) == {"date", "count"} for b in body["histogram"])
    assert sum(b["count"] for b in body["histogram"]) == 3


def test_empty_query_matches_everything(client: httpx.Client) -> None:
    body = client.get("/api/search", params={"collapse": "false", "size": 50}).json()
    assert body["total"] == len(corpus())
    assert len(body["hits"]) == len(corpus())


def test_story_copies_collapse_under_one_hit(client: httpx.Client) -> None:
    body = client.get("/api/search", params={"q": "kharkiv"}).json()
    SearchResponse.model_validate(body)
    stories = [h["story_id"] for h in body["hits"]]
    assert stories.count("story-kharkiv-power") == 1
    head = next(h for h in body["hits"] if h["story_id"] == "story-kharkiv-power")
    assert head["more_outlets"] == 2
    assert len(head["duplicates"]) == 2
    flat = client.get("/api/search", params={"q": "kharkiv", "collapse": "false"}).json()
    assert [h["story_id"] for h in flat["hits"]].count("story-kharkiv-power") == 3


def test_facet_filters_narrow_and_combine(client: httpx.Client) -> None:
    sudan = client.get("/api/search", params={"conflict": "sudan", "collapse": "false"}).json()
    assert sudan["total"] == 2
    assert all("sudan" in h["conflicts"] for h in sudan["hits"])
    both = client.get("/api/search", params={"conflict": "sudan", "source": "www.aljazeera.com",
                                             "country": "sd"}).json()
    assert [h["source"] for h in both["hits"]] == ["www.aljazeera.com"]
    either = client.get("/api/search", params=[("conflict", "sudan"), ("conflict", "israel-hamas"),
                                               ("collapse", "false")]).json()
    assert either["total"] == 3
    french = client.get("/api/search", params={"language": "fr"}).json()
    assert [h["language"] for h in french["hits"]] == ["fr"]


def test_date_range_bare_until_covers_the_whole_day(client: httpx.Client) -> None:
    body = client.get("/api/search", params={"since": "2026-11-18", "until": "2026-11-18"}).json()
    assert [h["source"] for h in body["hits"]] == ["www.aljazeera.com"]
    later = client.get("/api/search", params={"since": "2026-11-20T08:00:00Z",
                                              "collapse": "false"}).json()
    assert sorted(h["source"] for h in later["hits"]) == ["www.bbc.co.uk", "www.lemonde.fr"]


def test_sort_by_date_is_newest_first(client: httpx.Client) -> None:
    body = client.get("/api/search", params={"sort": "date", "collapse": "false",
                                             "size": 50}).json()
    dates = [h["published"] for h in body["hits"]]
    assert dates == sorted(dates, reverse=True)
    assert body["hits"][0]["source"] == "www.lemonde.fr"


def test_paging(client: httpx.Client) -> None:
    params = {"sort": "date", "collapse": "false", "size": 3}
    first = client.get("/api/search", params={**params, "page": 1}).json()["hits"]
    second = client.get("/api/search", params={**params, "page": 2}).json()["hits"]
    assert len(first) == len(second) == 3
    assert not {h["id"] for h in first} & {h["id"] for h in second}


@pytest.mark.parametrize("collapse", ["false", "true"])
def test_cursor_pages_reach_every_article_once(client: httpx.Client, collapse: str) -> None:
    params = {"sort": "date", "collapse": collapse, "size": 2}
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        body = client.get("/api/search", params={**params, **({"cursor": cursor} if cursor
                                                               else {})}).json()
        SearchResponse.model_validate(body)
        for hit in body["hits"]:
            seen += [hit["id"]] + [d["id"] for d in hit.get("duplicates") or ()]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(a.id for a in corpus())  # all once, copies folded or not


@pytest.mark.parametrize("change", [{"q": "drones"}, {"country": "UA"}, {"sort": "relevance"},
                                    {"page": "2"}])
def test_a_cursor_continues_only_its_own_search(client: httpx.Client,
                                                change: dict[str, str]) -> None:
    params = {"sort": "date", "size": 2}
    cursor = client.get("/api/search", params=params).json()["next_cursor"]
    assert cursor
    assert client.get("/api/search", params={**params, "cursor": cursor}).status_code == 200
    r = client.get("/api/search", params={**params, **change, "cursor": cursor})
    assert r.status_code == 400, r.text
    assert "cursor" in r.json()["detail"]
    junk = client.get("/api/search", params={**params, "cursor": "eyJ2IjoxfQ"})
    assert junk.status_code == 400 and "not a search cursor" in junk.json()["detail"]


@pytest.mark.parametrize("q", ["title:(kharkiv", "kharkiv AND", "drone~2"])
def test_query_syntax_error_is_a_clear_400(client: httpx.Client, q: str) -> None:
    r = client.get("/api/search", params={"q": q})
    assert r.status_code == 400
    assert r.json()["detail"].startswith("query syntax error:")


@pytest.mark.parametrize("params", [{"since": "yesterday"}, {"until": "2026-13-01"}])
def test_bad_date_is_a_400(client: httpx.Client, params: dict[str, str]) -> None:
    r = client.get("/api/search", params=params)
    assert r.status_code == 400
    assert "bad date" in r.json()["detail"]


@pytest.mark.parametrize("params", [{"size": "1000"}, {"page": "0"}, {"sort": "random"},
                                    {"interval": "decade"}])
def test_out_of_range_parameters_are_refused(client: httpx.Client,
                                              params: dict[str, str]) -> None:
    assert client.get("/api/search", params=params).status_code == 422


def test_page_beyond_the_window_is_a_400(client: httpx.Client) -> None:
    r = client.get("/api/search", params={"page": 500, "size": 100})
    assert r.status_code == 400
    assert "10000" in r.json()["detail"]


# ------------------------------------------------------------------ other routes


def test_article_by_id(client: httpx.Client) -> None:
    article = corpus()[4]
    r = client.get(f"/api/articles/{article.id}")
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == article.title
    assert body["locations"][0]["name"] == "El Fasher"
    assert client.get("/api/articles/0000000000000000").status_code == 404
    assert client.get("/api/articles/a.b").status_code == 422


def test_labels_name_the_conflicts_of_the_taxonomy(client: httpx.Client) -> None:
    body = client.get("/api/labels").json()
    assert body["conflicts"]["russia-ukraine"] == "Russia-Ukraine war"
    assert body["conflicts"]["sudan"].startswith("Sudan civil war")


def test_labels_degrade_to_empty_on_a_broken_taxonomy(tmp_path: Path) -> None:
    broken = tmp_path / "taxonomy.yaml"
    broken.write_text("conflicts: [this is: not, valid")
    assert taxonomy_labels(load_settings(taxonomy_file=broken)) == {"conflicts": {}}


def test_healthz_reports_the_store(client: httpx.Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "articles": len(corpus())}


def test_metrics_count_requests(client: httpx.Client) -> None:
    client.get("/api/search", params={"q": "kharkiv"})
    client.get("/api/search", params={"q": "title:("})
    text = client.get("/metrics").text
    assert 'newswire_web_requests_total{method="GET",route="/api/search",status="200"}' in text
    assert 'newswire_web_search_errors_total{reason="query_syntax"}' in text


def test_openapi_lists_the_routes_and_parameters(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert {"/api/search", "/api/articles/{article_id}", "/healthz", "/metrics"} <= set(
        doc["paths"])
    names = {p["name"] for p in doc["paths"]["/api/search"]["get"]["parameters"]}
    assert names >= {"q", "conflict", "event_type", "country", "source", "language", "since",
                     "until", "page", "size", "sort", "cursor"}
    ok = doc["paths"]["/api/search"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/SearchResponse")
    hit_fields = set(doc["components"]["schemas"]["Hit"]["properties"])
    assert hit_fields >= {"snippet", "more_outlets", "duplicates", "locations", "story_id"}
    assert "400" in doc["paths"]["/api/search"]["get"]["responses"]
    # The Swagger/ReDoc pages would pull scripts from a CDN: they are off.
    assert client.get("/docs").status_code == 404


def test_page_and_static_assets_are_served_locally(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for asset in ("/static/app.js", "/static/app.css", "/static/world-land.json"):
        assert client.get(asset).status_code == 200, asset
    # Nothing the page references lives elsewhere.
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/app.css").text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
    assert "<script>" not in page.text  # no inline script (CSP forbids it anyway)


# ------------------------------------------------------------------ security


@pytest.mark.parametrize("path", ["/", "/api/search?q=kharkiv", "/static/app.js", "/healthz",
                                  "/api/articles/nope"])
def test_security_headers_on_every_response(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.headers["content-security-policy"] == CSP
    assert "default-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert "script-src 'self'" in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"


def test_article_text_is_returned_as_data_not_markup(client: httpx.Client) -> None:
    # The API returns the hostile title verbatim in JSON (the page escapes it); the snippet
    # is escaped by the store except for the <mark> it adds.
    body = client.get("/api/search", params={"q": "exposé OR dark", "collapse": "false"}).json()
    hostile = next(h for h in body["hits"] if h["source"] == "evil.example")
    assert hostile["title"] == XSS_TITLE
    assert "<b " not in hostile["snippet"] and "&lt;b onmouseover" in hostile["snippet"]
    r = client.get("/api/search", params={"q": "kharkiv"})
    assert r.headers["content-type"] == "application/json"


def test_cors_closed_by_default(client: httpx.Client) -> None:
    r = client.get("/api/search", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = client.options("/api/search", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in pre.headers


def test_cors_only_for_configured_origins(tmp_path: Path) -> None:
    with live_server(tmp_path, [], cors_origins=["https://dash.example"]) as live:
        ok = httpx.get(live.base_url + "/api/search", headers={"Origin": "https://dash.example"})
        assert ok.headers["access-control-allow-origin"] == "https://dash.example"
        other = httpx.get(live.base_url + "/api/search",
                          headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_binds_to_loopback_by_default(server: LiveServer) -> None:
    assert load_settings().web.host == "127.0.0.1"
    port = int(server.base_url.rsplit(":", 1)[1])
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, hexport = local.split(":")
        if state == "0A" and int(hexport, 16) == port:  # LISTEN
            listening.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    assert listening == {"127.0.0.1"}


def _write_probe_router() -> APIRouter:
    """A router like the alerts one: a read route and write routes, no auth of its own."""
    router = APIRouter(prefix="/api/probe")

    @router.get("/rules")
    def list_rules() -> dict[str, list[str]]:
        return {"rules": []}

    @router.post("/rules")
    def add_rule(rule: dict[str, str]) -> dict[str, str]:
        return {"added": rule.get("name", "")}

    @router.delete("/rules/{name}")
    def delete_rule(name: str) -> dict[str, str]:
        return {"deleted": name}

    @router.put("/explicit", dependencies=[Depends(require_token)])
    def explicit() -> dict[str, bool]:
        return {"ok": True}

    return router


def _serve_with_probe(tmp_path: Path, token: str | None) -> tuple[str, threading.Event,
                                                                     threading.Thread]:
    port = free_port()
    web = {"host": "127.0.0.1", "port": port}
    if token is not None:
        web["token"] = token
    settings = load_settings(data_dir=tmp_path, web=web)
    fill_store(settings, corpus()[:1])
    app = create_app(settings)
    app.include_router(_write_probe_router(), dependencies=[Depends(require_token_for_writes)])
    stop = threading.Event()
    thread = threading.Thread(target=run_web, args=(settings, stop), kwargs={"app": app},
                              daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base)
    return base, stop, thread


def test_writes_refused_when_no_token_is_configured(tmp_path: Path) -> None:
    base, stop, thread = _serve_with_probe(tmp_path, token=None)
    try:
        assert httpx.get(base + "/api/probe/rules").status_code == 200  # reads stay open
        r = httpx.post(base + "/api/probe/rules", json={"name": "x"},
                       headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403
        assert "no API token is configured" in r.json()["detail"]
        assert httpx.put(base + "/api/probe/explicit").status_code == 403
    finally:
        stop.set()
        thread.join(15)


def test_writes_need_the_configured_token(tmp_path: Path) -> None:
    base, stop, thread = _serve_with_probe(tmp_path, token="s3cret-token")
    try:
        assert httpx.get(base + "/api/probe/rules").status_code == 200
        missing = httpx.post(base + "/api/probe/rules", json={"name": "x"})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.delete(base + "/api/probe/rules/x",
                             headers={"Authorization": "Bearer s3cret-tokeN"})
        assert wrong.status_code == 401
        basic = httpx.post(base + "/api/probe/rules", json={"name": "x"},
                           auth=("user", "s3cret-token"))
        assert basic.status_code == 401
        good = {"Authorization": "Bearer s3cret-token"}
        assert httpx.post(base + "/api/probe/rules", json={"name": "x"},
                          headers=good).json() == {"added": "x"}
        assert httpx.delete(base + "/api/probe/rules/x", headers=good).json() == {"deleted": "x"}
        assert httpx.put(base + "/api/probe/explicit", headers=good).json() == {"ok": True}
        assert httpx.put(base + "/api/probe/explicit").status_code == 401
    finally:
        stop.set()
        thread.join(15)


def test_every_write_route_of_the_real_app_needs_the_token(server: LiveServer) -> None:
    # Whatever routers are mounted (the alerts API when present), none writes without a token.
    app = create_app(server.settings)
    # The OpenAPI document lists every mounted route, including those of included routers
    # (which FastAPI keeps as nested router objects in app.routes).
    writes = [(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops
              if m.upper() in {"POST", "PUT", "PATCH", "DELETE"}]
    if importlib.util.find_spec("processors.alerts") and importlib.util.find_spec(
            "processors.alerts.api"):
        assert writes, "the alerts router is present but mounted no write route"
    for method, path in writes:
        url = server.base_url + path.replace("{", "").replace("}", "")
        r = httpx.request(method, url, json={})
        assert r.status_code == 403, (method, path, r.status_code)


# ------------------------------------------------------------------ the runner


def test_run_web_returns_0_when_stopped(tmp_path: Path) -> None:
    with live_server(tmp_path, corpus()[:1]) as live:
        assert httpx.get(live.base_url + "/healthz").status_code == 200
    assert not live.thread.is_alive()
    assert live.exit_codes == [0]


def test_serves_before_the_indexer_wrote_anything(tmp_path: Path) -> None:
    # `newswire up` starts the web server beside a fresh indexer: no index directory yet.
    port = free_port()
    settings = load_settings(data_dir=tmp_path / "fresh", web={"port": port})
    stop = threading.Event()
    thread = threading.Thread(target=run_web, args=(settings, stop), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        assert httpx.get(base + "/healthz").json() == {"status": "ok", "articles": 0}
        body = httpx.get(base + "/api/search", params={"q": "kharkiv"}).json()
        assert body["total"] == 0 and body["hits"] == []
        assert httpx.get(base + "/").status_code == 200
        # The indexer's first batch becomes visible to the running server.
        fill_store(settings, corpus()[:2])
        assert httpx.get(base + "/api/search", params={"q": "kharkiv"}).json()["total"] == 2
    finally:
        stop.set()
        thread.join(15)


def test_run_web_returns_1_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(data_dir=tmp_path, web={"port": port})
        assert run_web(settings, threading.Event()) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_newswire_serve_exits_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "NEWSWIRE_DATA_DIR": str(tmp_path), "NEWSWIRE_WEB__PORT": str(port),
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "newswire", "serve"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


# ------------------------------------------------------------------ pure helpers


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)))
def test_bare_dates_cover_exactly_one_day(day: date) -> None:
    start = parse_bound(day.isoformat(), end=False)
    end = parse_bound(day.isoformat(), end=True)
    assert start is not None and end is not None
    assert start.tzinfo is not None and end - start == timedelta(days=1)
    assert start.date() == day


@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1),
                    timezones=st.sampled_from([UTC, None])))
def test_datetimes_are_read_as_utc(moment: datetime) -> None:
    parsed = parse_bound(moment.isoformat(), end=True)
    assert parsed is not None and parsed.utcoffset() == timedelta(0)
    assert parsed == (moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@given(st.text(max_size=40))
def test_parse_bound_never_crashes_on_junk(text: str) -> None:
    from fastapi import HTTPException

    try:
        parse_bound(text, end=False)
    except HTTPException as exc:
        assert exc.status_code == 400


def test_histogram_interval_fits_the_range() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert histogram_interval("auto", t, t + timedelta(days=2)) == "hour"
    assert histogram_interval("auto", t, t + timedelta(days=30)) == "day"
    assert histogram_interval("auto", t, t + timedelta(days=400)) == "week"
    assert histogram_interval("auto", None, None) == "day"
    assert histogram_interval("week", t, t + timedelta(hours=1)) == "week"


def test_concurrent_searches_all_answer_the_same(server: LiveServer) -> None:
    # Sync routes run in a thread pool: many readers on one store at once must all be right.
    from concurrent.futures import ThreadPoolExecutor

    queries = ["kharkiv", "shelling", "ceasefire", "drones", "power station"] * 8
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        expected = {q: c.get("/api/search", params={"q": q}).json()["total"] for q in set(queries)}
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(lambda q: (q, c.get("/api/search", params={"q": q})), queries))
    for q, r in got:
        assert r.status_code == 200
        assert r.json()["total"] == expected[q] > 0


def test_a_broken_embedded_index_answers_503_with_a_clear_error(tmp_path: Path) -> None:
    with live_server(tmp_path, corpus()[:2]) as live:
        assert httpx.get(live.base_url + "/api/search", params={"q": "kharkiv"}).json()["total"]
        # The index breaks under the running server (a full disk, an operator's mistake).
        (tmp_path / "index" / "meta.json").write_text("not json", encoding="utf-8")
        for path in ("/api/search?q=kharkiv", f"/api/articles/{corpus()[0].id}"):
            r = httpx.get(live.base_url + path, timeout=10)
            assert r.status_code == 503, (path, r.text)
            assert r.headers["content-type"] == "application/json"
            assert "search store cannot answer" in r.json()["detail"]
            assert "Traceback" not in r.text and str(tmp_path) not in r.text
        assert httpx.get(live.base_url + "/healthz").status_code == 503
        metrics = httpx.get(live.base_url + "/metrics").text
        assert 'newswire_web_search_errors_total{reason="store_error"} 2.0' in metrics
