"""Kibana saved objects (deploy/kibana/newswire.ndjson) and the script that imports them.

Kibana cannot run here; the NDJSON is checked for the structure Kibana's import API
requires (and that every reference resolves inside the file), and the import script is run
as a real process against a loopback HTTP server that speaks Kibana's status and saved
objects import API.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import fnmatch
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexer.elastic import index_template
from newswire.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
KIBANA_DIR = ROOT / "deploy" / "kibana"
NDJSON = KIBANA_DIR / "newswire.ndjson"
BUILDER = KIBANA_DIR / "build_saved_objects.py"
IMPORTER = KIBANA_DIR / "import_saved_objects.py"

KNOWN_TYPES = {"index-pattern", "search", "visualization", "lens", "map", "dashboard"}
TAXONOMY_FILE = ROOT / "processors" / "taxonomy" / "conflicts.yaml"
# Conflict ids the taxonomy must carry (issue 5); the saved searches cover all of its ids.
REQUIRED_IDS = {
    "russia-ukraine", "israel-hamas", "israel-hezbollah", "us-iran-proxy", "iran-israel",
    "red-sea-houthis", "yemen", "syria", "iraq", "sudan", "south-sudan", "ethiopia", "somalia",
    "sahel", "nigeria", "drc", "mozambique", "libya", "myanmar", "afghanistan", "pakistan",
    "india-pakistan", "india-maoist", "armenia-azerbaijan", "haiti", "mexico-cartels",
    "colombia", "west-bank",
}
MAIN_CONFLICTS = {"russia-ukraine", "israel-hamas", "us-iran-proxy", "sudan", "myanmar"}


def taxonomy_conflicts(path: Path = TAXONOMY_FILE) -> dict[str, str]:
    """id -> name of the conflicts in a taxonomy file, read straight from the YAML (not
    through the builder's loader, so a loader that drops conflicts would be caught)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {c["id"]: c["name"] for c in doc["conflicts"] if not c.get("disabled")}


def conflict_search_titles(objs: list[dict[str, Any]]) -> dict[str, str]:
    """conflict id -> title of the saved searches that select one conflict."""
    out = {}
    for obj in objs:
        if obj["type"] == "search":
            match = re.fullmatch(r'conflicts : "([a-z0-9-]+)"', search_source(obj)["query"]["query"])
            if match:
                assert match.group(1) not in out, f"two saved searches for {match.group(1)}"
                out[match.group(1)] = obj["attributes"]["title"]
    return out

def mapping() -> dict[str, dict[str, Any]]:
    """Field -> mapping of the indexer's real index template (what Kibana will see)."""
    template = index_template(Settings().search.index_prefix)
    return template["template"]["mappings"]["properties"]


def field_type(name: str) -> str | None:
    return (mapping().get(name) or {}).get("type")


AGGREGATABLE = {"keyword", "date", "float", "long", "integer", "boolean"}


def objects() -> list[dict[str, Any]]:
    lines = [line for line in NDJSON.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def by_key() -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["type"], o["id"]): o for o in objects()}


def search_source(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])


def kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([A-Za-z_][\w.]*)\s*:", query))


def assert_searchable(query: str) -> None:
    for name in kql_fields(query):
        assert field_type(name) is not None, f"KQL field {name!r} is not in the index mapping"



# ---------------------------------------------------------------- structure


def test_ndjson_is_generated_from_the_builder() -> None:
    result = subprocess.run([sys.executable, str(BUILDER), "--check"], check=False,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_line_is_a_saved_object() -> None:
    seen = set()
    for number, line in enumerate(NDJSON.read_text().splitlines(), start=1):
        obj = json.loads(line)
        assert {"type", "id", "attributes", "references"} <= obj.keys(), number
        assert obj["type"] in KNOWN_TYPES, obj["type"]
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", obj["id"]), obj["id"]
        assert obj["attributes"].get("title"), obj["id"]
        assert (obj["type"], obj["id"]) not in seen, f"duplicate {obj['type']}/{obj['id']}"
        seen.add((obj["type"], obj["id"]))
        for ref in obj["references"]:
            assert {"name", "type", "id"} <= ref.keys()
        # Kibana keeps nested state as JSON strings: every one must parse.
        attrs = obj["attributes"]
        for key in ("visState", "panelsJSON", "optionsJSON", "layerListJSON", "mapStateJSON",
                    "uiStateJSON"):
            if key in attrs:
                json.loads(attrs[key])
        if "kibanaSavedObjectMeta" in attrs:
            search_source(obj)


def test_every_reference_resolves_to_an_object_in_the_file() -> None:
    known = by_key()
    for obj in objects():
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in known, f"{obj['id']} -> {ref['type']}/{ref['id']}"
        refs = {r["name"]: r for r in obj["references"]}
        attrs = obj["attributes"]
        if "kibanaSavedObjectMeta" in attrs and obj["type"] != "dashboard":
            index_ref = search_source(obj)["indexRefName"]
            assert refs[index_ref]["type"] == "index-pattern", obj["id"]
        if obj["type"] == "map":
            for layer in json.loads(attrs["layerListJSON"]):
                ref_name = layer["sourceDescriptor"].get("indexPatternRefName")
                if ref_name:
                    assert refs[ref_name]["type"] == "index-pattern", layer["id"]


def test_dashboard_panels_reference_existing_objects() -> None:
    known = by_key()
    dashboards = [o for o in objects() if o["type"] == "dashboard"]
    assert dashboards
    for dash in dashboards:
        refs = {r["name"]: r for r in dash["references"]}
        panels = json.loads(dash["attributes"]["panelsJSON"])
        kinds = set()
        cells: set[tuple[int, int]] = set()
        for panel in panels:
            ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
            assert ref["type"] == panel["type"]
            assert (ref["type"], ref["id"]) in known
            kinds.add(ref["type"])
            grid = panel["gridData"]
            assert grid["i"] == panel["panelIndex"]
            assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 48, panel
            area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                    for y in range(grid["y"], grid["y"] + grid["h"])}
            assert not area & cells, f"panel {panel['panelIndex']} overlaps another"
            cells |= area
        assert {"visualization", "map", "search"} <= kinds
        assert len(refs) == len(panels)


def test_data_view_matches_the_index_alias_pattern() -> None:
    views = [o for o in objects() if o["type"] == "index-pattern"]
    assert len(views) == 1
    attrs = views[0]["attributes"]
    prefix = Settings().search.index_prefix
    assert attrs["title"] == f"{prefix}-articles*"
    # The indexer's write alias and every index its template covers match the data view.
    template = index_template(prefix)
    for pattern in template["index_patterns"]:
        assert fnmatch.fnmatchcase(pattern.replace("*", "2026.11"), attrs["title"]), pattern
    for name in (f"{prefix}-articles", f"{prefix}-articles-2026.11"):
        assert fnmatch.fnmatchcase(name, attrs["title"]), name
    assert not fnmatch.fnmatchcase(f"{prefix}-alerts", attrs["title"])
    assert attrs["timeFieldName"] == "published" and field_type("published") == "date"


def test_saved_searches_are_searchable_and_sorted_newest_first() -> None:
    searches = [o for o in objects() if o["type"] == "search"]
    assert searches
    for obj in searches:
        assert_searchable(search_source(obj)["query"]["query"])
        for column in obj["attributes"]["columns"]:
            assert field_type(column) is not None, column
        assert obj["attributes"]["sort"] == [["published", "desc"]]


def test_one_saved_search_per_taxonomy_conflict() -> None:
    taxonomy = taxonomy_conflicts()
    assert REQUIRED_IDS <= taxonomy.keys(), REQUIRED_IDS - taxonomy.keys()
    titles = conflict_search_titles(objects())
    assert titles.keys() == taxonomy.keys(), (
        f"missing: {sorted(taxonomy.keys() - titles.keys())}, "
        f"unknown: {sorted(titles.keys() - taxonomy.keys())}")
    assert MAIN_CONFLICTS <= titles.keys()
    for conflict_id, name in taxonomy.items():
        assert titles[conflict_id] == f"newswire: {name}"


def test_builder_writes_searches_for_an_operators_taxonomy(tmp_path: Path) -> None:
    own = tmp_path / "taxonomy.yaml"
    own.write_text("version: 1\nextends: builtin\nconflicts:\n"
                   "  - {id: atlantis-civil-war, name: Atlantis civil war, terms: [Atlantis]}\n"
                   "  - {id: haiti, name: Haiti, disabled: true}\n")
    out = tmp_path / "own.ndjson"
    built = subprocess.run([sys.executable, str(BUILDER), "--taxonomy", str(own), "--output",
                            str(out)], check=False, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    titles = conflict_search_titles([json.loads(line) for line in out.read_text().splitlines()])
    # extends: builtin keeps every built-in conflict; a disabled entry of the operator's file
    # does not remove the built-in one it names (the loader's rule).
    assert titles.keys() == taxonomy_conflicts().keys() | {"atlantis-civil-war"}
    assert titles["atlantis-civil-war"] == "newswire: Atlantis civil war"
    stale = subprocess.run([sys.executable, str(BUILDER), "--check", "--taxonomy", str(own)],
                           check=False, capture_output=True, text=True)
    assert stale.returncode == 1 and "stale" in stale.stderr


def test_visualizations_break_down_conflicts_and_event_types_over_time() -> None:
    over_time: set[str] = set()
    for obj in objects():
        if obj["type"] != "visualization":
            continue
        state = json.loads(obj["attributes"]["visState"])
        assert state["title"] == obj["attributes"]["title"]
        for agg in state["aggs"]:
            if "field" in agg["params"]:
                assert field_type(agg["params"]["field"]) in AGGREGATABLE, agg
        assert_searchable(search_source(obj)["query"]["query"])
        ids = [a["id"] for a in state["aggs"]]
        assert len(ids) == len(set(ids))
        for agg in state["aggs"]:
            if agg["type"] == "terms":
                assert agg["params"]["orderBy"] in ids
        if any(a["type"] == "date_histogram" and a["params"]["field"] == "published"
               for a in state["aggs"]):
            over_time |= {a["params"]["field"] for a in state["aggs"] if a["type"] == "terms"}
    assert {"conflicts", "event_types"} <= over_time


def test_map_plots_the_location_geo_points() -> None:
    maps = [o for o in objects() if o["type"] == "map"]
    assert maps
    layers = json.loads(maps[0]["attributes"]["layerListJSON"])
    geo = [layer["sourceDescriptor"] for layer in layers
           if layer["sourceDescriptor"].get("geoField")]
    assert geo and all(field_type(s["geoField"]) == "geo_point" for s in geo)
    for source in geo:
        for name in source.get("tooltipProperties", []):
            assert field_type(name) is not None, name
        assert source.get("sortField") is None or field_type(source["sortField"]) == "date"
    state = json.loads(maps[0]["attributes"]["mapStateJSON"])
    assert_searchable(state["query"]["query"])


# ---------------------------------------------------------------- the import script


@dataclass
class FakeKibanaState:
    """What the loopback server answers and what it received."""

    not_ready_answers: int = 0
    import_answer: dict[str, Any] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_handler(state: FakeKibanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self) -> bool:
            expected = "Basic " + base64.b64encode(b"elastic:s3cret pass").decode()
            return self.headers.get("Authorization") == expected

        def do_GET(self) -> None:
            if self.path != "/api/status":
                return self.reply(404, {})
            if not self.authorized():
                return self.reply(401, {"message": "unauthorized"})
            with state.lock:
                state.requests.append({"path": self.path})
                waiting = state.not_ready_answers > 0
                state.not_ready_answers -= 1
            if waiting:
                return self.reply(503, {"status": {"overall": {"level": "unavailable"}}})
            self.reply(200, {"status": {"overall": {"level": "available"}}})

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length)
            if self.headers.get("kbn-xsrf") is None:
                return self.reply(400, {"message": "Request must contain a kbn-xsrf header."})
            if not self.authorized():
                return self.reply(401, {"message": "unauthorized"})
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
            )
            files = [p for p in message.iter_parts()
                     if p.get_param("name", header="content-disposition") == "file"]
            content = files[0].get_payload(decode=True) if files else b""
            lines = [json.loads(x) for x in content.decode().splitlines() if x.strip()]
            with state.lock:
                state.requests.append({"path": self.path, "content": content})
            answer = state.import_answer or {
                "success": True, "successCount": len(lines),
                "successResults": [{"type": o["type"], "id": o["id"]} for o in lines],
            }
            self.reply(200, answer)

    return Handler


@pytest.fixture
def fake_kibana() -> Iterator[tuple[str, FakeKibanaState]]:
    state = FakeKibanaState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def run_importer(url: str, *args: str, password: str = "s3cret pass",
                 wait: str = "20") -> subprocess.CompletedProcess[str]:
    env = {"KIBANA_URL": url, "KIBANA_USERNAME": "elastic", "KIBANA_PASSWORD": password,
           "KIBANA_WAIT_SECONDS": wait, "KIBANA_POLL_SECONDS": "0.05", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(IMPORTER), *args], check=False, env=env,
                          capture_output=True, text=True, timeout=60)


def test_importer_waits_for_kibana_then_imports_every_object(
    fake_kibana: tuple[str, FakeKibanaState],
) -> None:
    url, state = fake_kibana
    state.not_ready_answers = 3
    result = run_importer(url, str(NDJSON))
    assert result.returncode == 0, result.stderr
    status_calls = [r for r in state.requests if r["path"] == "/api/status"]
    imports = [r for r in state.requests if r["path"].startswith("/api/saved_objects/_import")]
    assert len(status_calls) == 4
    assert len(imports) == 1 and "overwrite=true" in imports[0]["path"]
    assert imports[0]["content"] == NDJSON.read_bytes()
    assert f"{len(objects())} saved objects" in result.stdout


def test_importer_fails_when_kibana_rejects_objects(
    fake_kibana: tuple[str, FakeKibanaState],
) -> None:
    url, state = fake_kibana
    state.import_answer = {
        "success": False, "successCount": len(objects()) - 1,
        "errors": [{"type": "map", "id": "newswire-map-locations",
                    "error": {"type": "missing_references"}}],
    }
    result = run_importer(url, str(NDJSON))
    assert result.returncode == 1
    assert "newswire-map-locations" in result.stderr and "missing_references" in result.stderr


def test_importer_stops_on_bad_credentials_and_unreachable_kibana(
    fake_kibana: tuple[str, FakeKibanaState], tmp_path: Path,
) -> None:
    url, state = fake_kibana
    refused = run_importer(url, str(NDJSON), password="wrong")
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    assert not [r for r in state.requests if "content" in r]

    # A closed port: bounded wait, then a clear failure.
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    unreachable = run_importer(f"http://127.0.0.1:{port}", str(NDJSON), wait="0.3")
    assert unreachable.returncode == 1 and "not available in time" in unreachable.stderr

    # A broken file is refused before anything is sent.
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"type": "search", "id": "x"}\n')
    broken = run_importer(url, str(bad))
    assert broken.returncode == 1 and "needs type, id and attributes" in broken.stderr
