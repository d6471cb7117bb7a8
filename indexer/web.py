"""The search page and HTTP JSON API (FastAPI), and the uvicorn runner behind ``newswire serve``.

Reads are open (the server binds to loopback unless configured otherwise); every write route
(POST/PUT/PATCH/DELETE) needs ``Authorization: Bearer <settings.web.token>``. With no token
configured, writes are refused outright (403): an unconfigured install can be read, never changed.

Everything the page shows comes from untrusted article text: the page builds its DOM with
``textContent`` only, and a Content-Security-Policy without inline script backs that up.
CORS is closed unless ``settings.web.cors_origins`` names origins.
"""

from __future__ import annotations

import hmac
import importlib
import importlib.util
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime, time as dtime, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from pydantic import BaseModel, Field

from newswire.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = FilePath(__file__).with_name("static")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALERTS_ROUTER_MODULE = "processors.alerts.api"

# No inline script or style anywhere; data: only for images the page itself draws.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

class Copy(BaseModel):
    """Another outlet's copy of a story, folded under the hit shown."""

    id: str
    url: str
    title: str | None = None
    source: str | None = None


class Place(BaseModel):
    name: str
    country: str | None = None
    lat: float
    lon: float


class Hit(BaseModel):
    id: str
    url: str
    title: str | None = None
    published: str | None = Field(None, description="ISO 8601 UTC")
    source: str | None = None
    language: str | None = None
    conflicts: list[str] = []
    event_types: list[str] = []
    countries: list[str] = []
    actors: list[str] = []
    story_id: str | None = None
    locations: list[Place] = []
    image: str | None = None
    partial: bool = Field(False, description="the text is not the full story (a teaser, a "
                          "consent page, the feed's summary instead of the page...)")
    flags: list[str] = Field([], description="what cleaning noticed: paywall, cookie_wall, "
                             "liveblog_index, summary_fallback, short_text, ...")
    score: float | None = None
    snippet: str = Field("", description="HTML: escaped text, <mark> around matched words")
    more_outlets: int | None = Field(None, description="other copies of the story (collapse)")
    duplicates: list[Copy] | None = None


class Bucket(BaseModel):
    value: str
    count: int


class DateBucket(BaseModel):
    date: str = Field(description="bucket start, ISO 8601 UTC")
    count: int


class SearchResponse(BaseModel):
    """The JSON of ``GET /api/search`` (documentation of the store's ``SearchResult``)."""

    total: int = Field(description="matching articles (copies counted, even when collapsed)")
    hits: list[Hit]
    facets: dict[str, list[Bucket]] = Field(
        description="conflicts, event_types, countries, source, language")
    histogram: list[DateBucket]
    page: int
    size: int
    took_ms: float
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next page (any depth); null at the end")


class Problem(BaseModel):
    detail: str


_bearer = HTTPBearer(auto_error=False, description="settings.web.token (NEWSWIRE_WEB__TOKEN)")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """FastAPI dependency for write routes: the configured bearer token, or 401/403."""
    settings: Settings = request.app.state.settings
    expected = settings.web.token
    if expected is None or not expected.get_secret_value():
        raise HTTPException(
            403, "writes are disabled: no API token is configured (set NEWSWIRE_WEB__TOKEN)"
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})


def require_token_for_writes(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Router-wide guard: reads pass, writes need the token (so no write route can forget it)."""
    if request.method.upper() in WRITE_METHODS:
        require_token(request, credentials)


class _Metrics:
    def __init__(self) -> None:
        # One registry per app, so several apps (tests) never collide on metric names.
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "newswire_web_requests_total", "HTTP requests by route, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "newswire_web_request_seconds", "HTTP request duration by route",
            ["route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.search_errors = Counter(
            "newswire_web_search_errors_total", "Searches refused or failed, by reason",
            ["reason"], registry=self.registry,
        )


def get_store(request: Request) -> Any:
    """Dependency: the app's SearchStore (module level, so string annotations resolve)."""
    return request.app.state.store


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    return jsonable_encoder(value)


def parse_bound(value: str | None, *, end: bool) -> datetime | None:
    """'2024-05-01' or an ISO datetime -> UTC datetime.

    The store's ``until`` is exclusive, so a bare date as the end bound becomes the next
    midnight: ``until=2024-05-01`` includes all of May 1st.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, dtime.min, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"bad date {value!r}: use YYYY-MM-DD or an ISO 8601 datetime")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def histogram_interval(interval: str, since: datetime | None,
                       until: datetime | None) -> str:
    """The histogram bucket: as asked, or for 'auto' one that gives a readable number of bars."""
    if interval != "auto":
        return interval
    if since is not None and until is not None:
        span = until - since
        if span <= timedelta(days=3):
            return "hour"
        if span > timedelta(days=180):
            return "week"
    return "day"


def taxonomy_labels(settings: Settings) -> dict[str, dict[str, str]]:
    """Conflict names by id from the taxonomy in use; empty (ids shown as they are) if the
    taxonomy cannot be loaded: labels are a nicety, never a reason to fail a page."""
    try:
        from processors.taxonomy import load_taxonomy

        taxonomy = load_taxonomy(settings.taxonomy_file)
        conflicts = {str(c["id"]): str(c["name"]) for c in taxonomy.conflicts}
    except Exception as exc:  # ImportError, TaxonomyError, a broken operator file...
        log.warning("web labels=unavailable error=%r", exc)
        conflicts = {}
    return {"conflicts": conflicts}


def _add_store_error_handlers(app: FastAPI, metrics: _Metrics) -> None:
    """A store that is down answers 503 (retry later), never a 500 with a traceback."""
    from indexer.store import StoreError, StoreUnavailable

    unavailable: list[type[BaseException]] = [StoreUnavailable]
    try:  # the Elasticsearch client's own connection errors, when it is installed
        from elastic_transport import ConnectionError as ESConnectionError
        from elastic_transport import ConnectionTimeout

        unavailable += [ESConnectionError, ConnectionTimeout]
    except ImportError:
        pass

    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        metrics.search_errors.labels("store_unavailable").inc()
        log.warning("web store=unavailable path=%s error=%s", request.url.path, exc)
        return JSONResponse({"detail": "the search store is unavailable; retry later"}, 503,
                            headers={"Retry-After": "5"})

    async def store_failed(request: Request, exc: Exception) -> JSONResponse:
        # Still 503, not 500: the API itself is fine, the store behind it cannot answer (a
        # corrupt or foreign index, a refused mapping); the operator's log says which.
        metrics.search_errors.labels("store_error").inc()
        log.error("web store=error path=%s error=%s", request.url.path, exc)
        return JSONResponse({"detail": "the search store cannot answer; the operator log says "
                                       "why (web store=error)"}, 503)

    for cls in unavailable:
        app.add_exception_handler(cls, store_down)
    app.add_exception_handler(StoreError, store_failed)


def _include_alerts_router(app: FastAPI) -> bool:
    try:
        if importlib.util.find_spec(ALERTS_ROUTER_MODULE) is None:
            return False
    except ModuleNotFoundError:  # processors or processors.alerts not there yet
        return False
    router = importlib.import_module(ALERTS_ROUTER_MODULE).router
    app.include_router(router, dependencies=[Depends(require_token_for_writes)])
    log.info("web alerts_router=included module=%s", ALERTS_ROUTER_MODULE)
    return True


def create_app(settings: Settings, store: Any | None = None) -> FastAPI:
    """The FastAPI app: page at ``/``, JSON API under ``/api``, ``/healthz``, ``/metrics``.

    ``store`` is a ``SearchStore``; by default ``indexer.store.open_store(settings)`` at startup.
    """
    metrics = _Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = None
        if app.state.store is None:
            from indexer.store import open_store

            owned = app.state.store = await run_in_threadpool(open_store, settings)
        try:
            yield
        finally:
            close = getattr(owned, "close", None)
            if callable(close):
                await run_in_threadpool(close)

    app = FastAPI(
        title="newswire search API",
        version="1",
        description="Search enriched news articles: full text, facets, date histogram. "
        "Reads are open; write routes need `Authorization: Bearer <token>`.",
        lifespan=lifespan,
        # The bundled Swagger/ReDoc pages load from a CDN: off. /openapi.json stays.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    app.state.labels = None
    _add_store_error_handlers(app, metrics)

    @app.middleware("http")
    async def headers_and_metrics(request: Request, call_next: Callable[..., Any]) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        route = request.scope.get("route")
        label = getattr(route, "path", None) or ("/static" if request.url.path.startswith(
            "/static/") else "unmatched")
        metrics.requests.labels(label, request.method, str(response.status_code)).inc()
        metrics.latency.labels(label).observe(time.perf_counter() - started)
        return response

    if settings.web.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.web.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.get("/", include_in_schema=False)
    def index_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    @app.get("/healthz", tags=["ops"], summary="Liveness and store reachability")
    def healthz(store: Annotated[Any, Depends(get_store)]) -> JSONResponse:
        try:
            count = store.count()
        except Exception as exc:  # the store being down is the answer, not a crash
            log.warning("web healthz=failed error=%r", exc)
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok", "articles": count})

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    def metrics_page() -> Response:
        body = generate_latest(metrics.registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/search", tags=["search"], summary="Full-text search with facets and histogram",
             responses={200: {"model": SearchResponse},
                        400: {"model": Problem, "description": "bad query or parameters"},
                        503: {"model": Problem, "description": "search store unavailable"}})
    def search(
        store: Annotated[Any, Depends(get_store)],
        q: Annotated[str, Query(max_length=2000, description="query string; empty = all")] = "",
        conflict: Annotated[list[str], Query(description="conflict id (repeatable)")] = [],
        event_type: Annotated[list[str], Query(description="event type id (repeatable)")] = [],
        country: Annotated[list[str], Query(description="ISO country code (repeatable)")] = [],
        source: Annotated[list[str], Query(description="source host (repeatable)")] = [],
        language: Annotated[list[str], Query(description="language code (repeatable)")] = [],
        since: Annotated[str | None, Query(description="YYYY-MM-DD or ISO datetime, inclusive")]
        = None,
        until: Annotated[str | None, Query(description="YYYY-MM-DD (that whole day) or ISO "
                                                        "datetime (exclusive)")] = None,
        page: Annotated[int, Query(ge=1, le=500)] = 1,
        size: Annotated[int, Query(ge=1, le=100)] = 20,
        sort: Literal["relevance", "date"] = "relevance",
        interval: Annotated[
            Literal["auto", "hour", "day", "week"], Query(description="histogram bucket")
        ] = "auto",
        collapse: Annotated[bool, Query(description="fold near-duplicates under their story")]
        = True,
        cursor: Annotated[str | None, Query(
            max_length=2000, description="`next_cursor` of the previous page: deep paging "
            "(search_after) past the page window; same q, filters, dates and sort; no `page`")]
        = None,
    ) -> JSONResponse:
        from indexer.query import QuerySyntaxError
        from indexer.store import BadCursor, SearchRequest

        lower, upper = parse_bound(since, end=False), parse_bound(until, end=True)
        try:
            request = SearchRequest(
                query=q.strip() or "*",
                conflicts=tuple(conflict),
                event_types=tuple(event_type),
                countries=tuple(country),
                sources=tuple(source),
                languages=tuple(language),
                since=lower,
                until=upper,
                page=page,
                size=size,
                sort=sort,
                histogram=histogram_interval(interval, lower, upper),
                collapse_stories=collapse,
                cursor=cursor or None,
            )
        except ValueError as exc:
            metrics.search_errors.labels("bad_request").inc()
            return JSONResponse({"detail": str(exc)}, 400)
        try:
            result = store.search(request)
        except QuerySyntaxError as exc:
            metrics.search_errors.labels("query_syntax").inc()
            return JSONResponse({"detail": f"query syntax error: {exc}"}, 400)
        except BadCursor as exc:  # e.g. made by the other store kind before a switch
            metrics.search_errors.labels("bad_request").inc()
            return JSONResponse({"detail": str(exc)}, 400)
        return JSONResponse(_jsonable(result))

    @app.get("/api/labels", tags=["search"],
             summary="Display names of facet values (conflict ids -> names) from the taxonomy")
    def labels() -> JSONResponse:
        if app.state.labels is None:
            app.state.labels = taxonomy_labels(settings)
        return JSONResponse(app.state.labels, headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/articles/{article_id}", tags=["search"], summary="One stored article",
             responses={404: {"model": Problem}, 503: {"model": Problem}})
    def get_article(
        article_id: Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9_-]+$")],
        store: Annotated[Any, Depends(get_store)],
    ) -> JSONResponse:
        article = store.get(article_id)
        if article is None:
            raise HTTPException(404, "no such article")
        return JSONResponse(_jsonable(article))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.alerts_router = _include_alerts_router(app)
    return app


def _server_class() -> type:
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # SIGTERM/SIGINT is the normal way to stop `newswire serve`: shut down gracefully and
            # return 0 (uvicorn's own handler re-raises the signal after shutdown instead).
            if self.should_exit:
                self.force_exit = True
            else:
                self.should_exit = True

    return _Server


def run_web(settings: Settings, stop: threading.Event | None = None, *,
            app: FastAPI | None = None) -> int:
    """Serve the page and API on ``settings.web.host:port`` until SIGTERM/SIGINT or ``stop``.

    Returns 0 after a clean shutdown, 1 if the server could not start (e.g. port in use).
    ``app`` defaults to ``create_app(settings)``.
    """
    import uvicorn

    if app is None:
        app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_config=None,  # keep the process's logging setup
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    server = _server_class()(config)
    done = threading.Event()

    if stop is not None:
        def watch() -> None:
            while not done.is_set():
                if stop.wait(0.2):
                    server.should_exit = True
                    return

        threading.Thread(target=watch, name="web-stop-watch", daemon=True).start()

    log.info("web starting host=%s port=%s", settings.web.host, settings.web.port)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits the process when it cannot bind
        log.error("web failed_to_start host=%s port=%s code=%s", settings.web.host,
                  settings.web.port, exc.code)
        return 1
    finally:
        done.set()
    if not server.started:
        log.error("web failed_to_start host=%s port=%s", settings.web.host, settings.web.port)
        return 1
    log.info("web stopped host=%s port=%s", settings.web.host, settings.web.port)
    return 0


__all__ = ["create_app", "histogram_interval", "parse_bound", "require_token",
           "require_token_for_writes", "run_web", "taxonomy_labels"]
