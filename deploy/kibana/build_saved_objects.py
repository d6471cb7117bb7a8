"""Write deploy/kibana/newswire.ndjson: the Kibana saved objects of the compose deployment.

    python deploy/kibana/build_saved_objects.py          # rewrite newswire.ndjson
    python deploy/kibana/build_saved_objects.py --check  # exit 1 if the file is stale
    python deploy/kibana/build_saved_objects.py --taxonomy FILE --output my.ndjson
                                                         # for an operator's taxonomy file

There is one saved search per conflict of the taxonomy (``processors/taxonomy/conflicts.yaml``,
read through the tagger's own loader so ids and disabled entries are exactly the tagger's);
rerun this script after the taxonomy changes.

Kibana keeps nested state (search sources, panels, map layers) as JSON *strings* inside
the saved object; writing them by hand is error-prone, so they are built here from plain
dicts. The objects carry no migration version: Kibana migrates them on import.

Fields used, all from the indexer's index template (``indexer.elastic.index_template``):
``published`` (date), ``conflicts``, ``event_types``, ``countries``, ``source`` (keyword),
``title`` (text) and ``geo`` (geo_point: one point per location the tagger found).
"Conflict stories" are those tagged with at least one named conflict (``conflicts : *``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run as a script from a checkout

from processors.taxonomy import load_taxonomy

OUTPUT = HERE / "newswire.ndjson"

INDEX_PATTERN_ID = "newswire-articles"
INDEX_PATTERN_TITLE = "newswire-articles*"  # the write alias and its monthly indices
TIME_FIELD = "published"
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"

LIST_COLUMNS = ["title", "source", "conflicts", "event_types", "countries"]
CONFLICT_STORIES = "conflicts : *"  # at least one named conflict
GEO_FIELD = "geo"


def source_json(query: str = "", *, with_index: bool = True) -> str:
    source: dict[str, Any] = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if with_index:
        source["indexRefName"] = INDEX_REF
    return json.dumps(source, separators=(",", ":"))


def index_reference(name: str = INDEX_REF) -> dict[str, str]:
    return {"name": name, "type": "index-pattern", "id": INDEX_PATTERN_ID}


def data_view() -> dict[str, Any]:
    return {
        "type": "index-pattern",
        "id": INDEX_PATTERN_ID,
        "attributes": {
            "title": INDEX_PATTERN_TITLE,
            "name": "newswire articles",
            "timeFieldName": TIME_FIELD,
            "allowNoIndex": True,  # importable before the indexer made its first index
        },
        "references": [],
    }


def saved_search(obj_id: str, title: str, query: str, description: str) -> dict[str, Any]:
    return {
        "type": "search",
        "id": obj_id,
        "attributes": {
            "title": title,
            "description": description,
            "columns": LIST_COLUMNS,
            "sort": [[TIME_FIELD, "desc"]],
            "grid": {},
            "hideChart": False,
            "isTextBasedQuery": False,
            "kibanaSavedObjectMeta": {"searchSourceJSON": source_json(query)},
        },
        "references": [index_reference()],
    }


def taxonomy_conflicts(path: Path | None = None) -> list[tuple[str, str]]:
    """(id, name) of every conflict the tagger can name, in the taxonomy's order."""
    return [(c["id"], c["name"]) for c in load_taxonomy(path).conflicts]


def conflict_searches(conflicts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    out = [saved_search("newswire-search-conflict-stories", "newswire: all conflict stories",
                        CONFLICT_STORIES,
                        "Every article tagged with at least one named armed conflict.")]
    for conflict_id, name in conflicts:
        out.append(saved_search(
            f"newswire-search-{conflict_id}", f"newswire: {name}",
            f'conflicts : "{conflict_id}"',
            f"Articles tagged with conflict {conflict_id} ({name}), newest first.",
        ))
    return out


def _xy_params(chart: str, mode: str) -> dict[str, Any]:
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [{
            "id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
            "scale": {"type": "linear"}, "labels": {"show": True, "filter": True, "truncate": 100},
            "title": {},
        }],
        "valueAxes": [{
            "id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left",
            "show": True, "scale": {"type": "linear", "mode": "normal"},
            "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
            "title": {"text": "Articles"},
        }],
        "seriesParams": [{
            "show": True, "type": chart, "mode": mode, "data": {"label": "Articles", "id": "1"},
            "valueAxis": "ValueAxis-1", "drawLinesBetweenPoints": True, "lineWidth": 2,
            "showCircles": True, "interpolate": "linear",
        }],
        "addTooltip": True, "addLegend": True, "legendPosition": "right", "times": [],
        "addTimeMarker": False, "labels": {"show": False},
    }


def _terms(agg_id: str, field: str, schema: str, size: int) -> dict[str, Any]:
    return {
        "id": agg_id, "enabled": True, "type": "terms", "schema": schema,
        "params": {"field": field, "size": size, "order": "desc", "orderBy": "1",
                   "otherBucket": True, "otherBucketLabel": "Other", "missingBucket": False},
    }


COUNT = {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}
OVER_TIME = {
    "id": "2", "enabled": True, "type": "date_histogram", "schema": "segment",
    "params": {"field": TIME_FIELD, "interval": "auto", "min_doc_count": 1, "extended_bounds": {}},
}


def visualization(obj_id: str, title: str, vis_type: str, params: dict[str, Any],
                  aggs: list[dict[str, Any]], query: str = "") -> dict[str, Any]:
    vis_state = {"title": title, "type": vis_type, "params": params, "aggs": aggs}
    return {
        "type": "visualization",
        "id": obj_id,
        "attributes": {
            "title": title,
            "description": "",
            "version": 1,
            "uiStateJSON": "{}",
            "visState": json.dumps(vis_state, separators=(",", ":")),
            "kibanaSavedObjectMeta": {"searchSourceJSON": source_json(query)},
        },
        "references": [index_reference()],
    }


def visualizations() -> list[dict[str, Any]]:
    return [
        visualization(
            "newswire-vis-conflicts-over-time", "newswire: articles per conflict over time",
            "histogram", _xy_params("histogram", "stacked"),
            [COUNT, OVER_TIME, _terms("3", "conflicts", "group", 10)],
            CONFLICT_STORIES,
        ),
        visualization(
            "newswire-vis-event-types-over-time", "newswire: event types over time",
            "area", _xy_params("area", "stacked"),
            [COUNT, OVER_TIME, _terms("3", "event_types", "group", 10)],
            CONFLICT_STORIES,
        ),
        visualization(
            "newswire-vis-conflict-share", "newswire: conflicts",
            "pie", {"type": "pie", "addTooltip": True, "addLegend": True,
                    "legendPosition": "right", "isDonut": True,
                    "labels": {"show": False, "values": True, "last_level": True,
                               "truncate": 100}},
            [COUNT, _terms("2", "conflicts", "segment", 15)],
        ),
        visualization(
            "newswire-vis-event-types-by-conflict", "newswire: event types by conflict",
            "table", {"perPage": 20, "showPartialRows": False, "showMetricsAtAllLevels": False,
                      "showTotal": True, "totalFunc": "sum", "percentageCol": ""},
            [COUNT, _terms("2", "conflicts", "bucket", 15),
             _terms("3", "event_types", "bucket", 8)],
        ),
        visualization(
            "newswire-vis-countries", "newswire: countries in conflict stories",
            "table", {"perPage": 20, "showPartialRows": False, "showMetricsAtAllLevels": False,
                      "showTotal": False, "totalFunc": "sum", "percentageCol": ""},
            [COUNT, _terms("2", "countries", "bucket", 30)],
            CONFLICT_STORIES,
        ),
    ]


def locations_map() -> dict[str, Any]:
    ref_name = "layer_1_source_index_pattern"
    layers = [
        {
            "id": "newswire-basemap", "type": "EMS_VECTOR_TILE", "label": None,
            "sourceDescriptor": {"type": "EMS_TMS", "isAutoSelect": True},
            "style": {"type": "EMS_VECTOR_TILE"}, "visible": True, "alpha": 1,
            "minZoom": 0, "maxZoom": 24,
        },
        {
            "id": "newswire-locations", "type": "GEOJSON_VECTOR", "label": "Article locations",
            "sourceDescriptor": {
                "type": "ES_SEARCH", "id": "newswire-locations-source",
                "geoField": GEO_FIELD, "indexPatternRefName": ref_name,
                "scalingType": "CLUSTERS", "sortField": TIME_FIELD, "sortOrder": "desc",
                "tooltipProperties": ["title", "source", "conflicts", "event_types"],
                "applyGlobalQuery": True, "applyGlobalTime": True,
            },
            "style": {"type": "VECTOR", "properties": {}, "isTimeAware": True},
            "visible": True, "alpha": 0.8, "minZoom": 0, "maxZoom": 24,
        },
    ]
    map_state = {
        "zoom": 1.6, "center": {"lon": 25.0, "lat": 25.0},
        "timeFilters": {"from": "now-7d", "to": "now"},
        "refreshConfig": {"isPaused": False, "interval": 60000},
        "query": {"query": CONFLICT_STORIES, "language": "kuery"}, "filters": [],
    }
    return {
        "type": "map",
        "id": "newswire-map-locations",
        "attributes": {
            "title": "newswire: where conflict stories happen",
            "description": "Locations named in conflict stories (gazetteer points).",
            "mapStateJSON": json.dumps(map_state, separators=(",", ":")),
            "layerListJSON": json.dumps(layers, separators=(",", ":")),
            "uiStateJSON": json.dumps({"isLayerTOCOpen": True, "openTOCDetails": []}),
        },
        "references": [index_reference(ref_name)],
    }


# Dashboard grid: 48 columns wide. (object, x, y, w, h)
LAYOUT: tuple[tuple[str, str, int, int, int, int], ...] = (
    ("visualization", "newswire-vis-conflicts-over-time", 0, 0, 32, 14),
    ("visualization", "newswire-vis-conflict-share", 32, 0, 16, 14),
    ("visualization", "newswire-vis-event-types-over-time", 0, 14, 32, 14),
    ("visualization", "newswire-vis-countries", 32, 14, 16, 14),
    ("map", "newswire-map-locations", 0, 28, 28, 20),
    ("visualization", "newswire-vis-event-types-by-conflict", 28, 28, 20, 20),
    ("search", "newswire-search-conflict-stories", 0, 48, 48, 18),
)


def dashboard() -> dict[str, Any]:
    panels, references = [], []
    for n, (obj_type, obj_id, x, y, w, h) in enumerate(LAYOUT, start=1):
        panel_index = f"p{n}"
        panels.append({
            "type": obj_type, "panelIndex": panel_index,
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": panel_index},
            "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{panel_index}",
        })
        references.append({"name": f"{panel_index}:panel_{panel_index}", "type": obj_type,
                           "id": obj_id})
    return {
        "type": "dashboard",
        "id": "newswire-dashboard-conflicts",
        "attributes": {
            "title": "newswire: armed conflicts in the news",
            "description": "Conflict and event-type breakdowns over time, and where it happens.",
            "panelsJSON": json.dumps(panels, separators=(",", ":")),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False,
                                       "syncCursor": True, "syncTooltips": False,
                                       "hidePanelTitles": False}),
            "timeRestore": True, "timeFrom": "now-7d", "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 60000},
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": source_json("", with_index=False),
            },
        },
        "references": references,
    }


def saved_objects(conflicts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Referenced objects first, so a reader (or an importer) meets them in order."""
    return [data_view(), *conflict_searches(conflicts), *visualizations(), locations_map(),
            dashboard()]


def render(conflicts: list[tuple[str, str]]) -> str:
    lines = (json.dumps(o, ensure_ascii=False, sort_keys=True) for o in saved_objects(conflicts))
    return "".join(line + "\n" for line in lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write the Kibana saved objects (NDJSON).")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--taxonomy", type=Path,
                        help="an operator's taxonomy file (as NEWSWIRE_TAXONOMY_FILE)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(taxonomy_conflicts(args.taxonomy))
    if args.check:
        if not args.output.exists() or args.output.read_text() != text:
            print(f"{args.output} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {len(text.splitlines())} saved objects to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
