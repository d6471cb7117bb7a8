"""The conflict taxonomy: versioned data files, loaded and checked once.

The built-in files beside this module are package data. An operator's file
(``Settings.taxonomy_file``) replaces the built-in conflicts, or extends them when it says
``extends: builtin``; it may also carry ``actors`` (merged by id), ``sub_types``, ``groups``,
``conflict_vocabulary`` and ``non_conflict`` sections. No code change is needed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is there
ACLED_SUB_TYPES = (
    "armed_clash", "government_regains_territory", "non_state_actor_overtakes_territory",
    "chemical_weapon", "air_drone_strike", "suicide_bomb", "shelling_artillery_missile_attack",
    "remote_explosive_landmine_ied", "grenade", "sexual_violence", "attack",
    "abduction_forced_disappearance", "peaceful_protest", "protest_with_intervention",
    "excessive_force_against_protesters", "violent_demonstration", "mob_violence", "agreement",
    "arrests", "change_to_group_activity", "disrupted_weapons_use",
    "headquarters_or_base_established", "looting_property_destruction",
    "non_violent_transfer_of_territory", "other",
)  # fmt: skip


class TaxonomyError(ValueError):
    """The taxonomy file is missing, unreadable or malformed (message says where)."""


@dataclass(frozen=True)
class Taxonomy:
    version: str
    conflicts: list[dict[str, Any]]
    actors: dict[str, dict[str, Any]]
    sub_types: dict[str, dict[str, Any]]
    groups: dict[str, list[str]]
    conflict_vocabulary: dict[str, float]
    non_conflict: dict[str, float]
    places: dict[str, Any]
    source: str = "builtin"
    notes: list[str] = field(default_factory=list)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 (safe loader)
    except OSError as exc:
        raise TaxonomyError(f"cannot read taxonomy file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"taxonomy file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TaxonomyError(f"taxonomy file {path} must be a mapping with a `version:` field")
    return data


def _check_conflicts(conflicts: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(conflicts, list):
        raise TaxonomyError(f"{where}: `conflicts` must be a list")
    seen: set[str] = set()
    out = []
    for i, c in enumerate(conflicts):
        if not isinstance(c, dict) or not c.get("id") or not c.get("name"):
            raise TaxonomyError(f"{where}: conflict #{i} needs at least `id` and `name`")
        if c.get("disabled"):
            continue
        if c["id"] in seen:
            raise TaxonomyError(f"{where}: duplicate conflict id {c['id']!r}")
        seen.add(c["id"])
        for key in ("aliases", "terms", "cs_terms", "countries", "sides"):
            if c.get(key) is not None and not isinstance(c[key], list):
                raise TaxonomyError(f"{where}: conflict {c['id']!r}: `{key}` must be a list")
        out.append(c)
    return out


def _check_actors(actors: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(actors, list):
        raise TaxonomyError(f"{where}: `actors` must be a list")
    out: dict[str, dict[str, Any]] = {}
    for i, a in enumerate(actors):
        if not isinstance(a, dict) or not a.get("id") or not a.get("name"):
            raise TaxonomyError(f"{where}: actor #{i} needs `id` and `name`")
        out[a["id"]] = a
    return out


def load_places() -> dict[str, Any]:
    """The built-in gazetteer extras (places.yaml): not replaceable by an operator's file."""
    return _read(BUILTIN_DIR / "places.yaml")


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    """The built-in taxonomy, or the operator's file layered on it."""
    conflicts_doc = _read(BUILTIN_DIR / "conflicts.yaml")
    actors_doc = _read(BUILTIN_DIR / "actors.yaml")
    events_doc = _read(BUILTIN_DIR / "events.yaml")
    places_doc = _read(BUILTIN_DIR / "places.yaml")
    conflicts = _check_conflicts(conflicts_doc.get("conflicts"), "builtin conflicts.yaml")
    actors = _check_actors(actors_doc.get("actors"), "builtin actors.yaml")
    sub_types = dict(events_doc["sub_types"])
    groups = dict(events_doc.get("groups") or {})
    vocab = dict(events_doc["conflict_vocabulary"]["terms"])
    non_conflict = dict(events_doc["non_conflict"]["terms"])
    version = f"builtin-{conflicts_doc.get('version')}"
    source = "builtin"
    if path is not None:
        path = Path(path)
        doc = _read(path)
        where = str(path)
        if "version" not in doc:
            raise TaxonomyError(f"{where}: a `version:` field is required")
        if "actors" in doc:
            actors = {**actors, **_check_actors(doc["actors"], where)}
        if "conflicts" in doc:
            mine = _check_conflicts(doc["conflicts"], where)
            if doc.get("extends") == "builtin":
                by_id = {c["id"]: c for c in conflicts}
                by_id.update({c["id"]: c for c in mine})
                conflicts = list(by_id.values())
            else:
                conflicts = mine
        if isinstance(doc.get("sub_types"), dict):
            sub_types.update(doc["sub_types"])
        if isinstance(doc.get("groups"), dict):
            groups.update(doc["groups"])
        if isinstance(doc.get("conflict_vocabulary"), dict):
            vocab.update(doc["conflict_vocabulary"].get("terms") or {})
        if isinstance(doc.get("non_conflict"), dict):
            non_conflict.update(doc["non_conflict"].get("terms") or {})
        version = f"{path.name}-{doc['version']}"
        source = str(path)
    unknown = [k for k in sub_types if k not in ACLED_SUB_TYPES]
    notes = [f"sub-types outside the ACLED list: {unknown}"] if unknown else []
    for c in conflicts:
        for side in c.get("sides") or []:
            for actor_id in side.get("actors") or []:
                if actor_id not in actors:
                    raise TaxonomyError(f"conflict {c['id']!r} names unknown actor {actor_id!r}")
    log.info("taxonomy loaded source=%s version=%s conflicts=%d actors=%d", source, version,
             len(conflicts), len(actors))
    return Taxonomy(version=version, conflicts=conflicts, actors=actors, sub_types=sub_types,
                    groups=groups, conflict_vocabulary=vocab, non_conflict=non_conflict,
                    places=places_doc, source=source, notes=notes)
