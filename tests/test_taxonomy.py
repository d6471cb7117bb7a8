"""The taxonomy data files: required conflicts, ACLED ids, references, operator files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from processors.taxonomy import ACLED_SUB_TYPES, BUILTIN_DIR, TaxonomyError, load_taxonomy

REQUIRED = {
    "russia-ukraine", "israel-hamas", "israel-hezbollah", "us-iran-proxy", "iran-israel",
    "red-sea-houthis", "yemen", "syria", "iraq", "sudan", "south-sudan", "ethiopia", "somalia",
    "sahel", "nigeria", "drc", "mozambique", "libya", "myanmar", "afghanistan", "pakistan",
    "india-pakistan", "india-maoist", "armenia-azerbaijan", "haiti", "mexico-cartels", "colombia",
    "west-bank",
}  # fmt: skip


def test_builtin_has_required_conflicts_and_is_versioned() -> None:
    doc = yaml.safe_load((BUILTIN_DIR / "conflicts.yaml").read_text(encoding="utf-8"))
    assert doc["version"]
    tx = load_taxonomy()
    ids = {c["id"] for c in tx.conflicts}
    assert REQUIRED <= ids
    assert len(ids) >= 30
    for c in tx.conflicts:
        assert c["name"] and c.get("aliases") and c.get("sides"), c["id"]
        assert c.get("period", {}).get("start"), c["id"]
        assert all(len(cc) == 2 and cc.isupper() for cc in c["countries"]), c["id"]


def test_every_acled_sub_type_is_defined_with_its_parent() -> None:
    tx = load_taxonomy()
    assert set(tx.sub_types) == set(ACLED_SUB_TYPES)
    parents = {st["event_type"] for st in tx.sub_types.values()}
    assert parents == {"battles", "explosions_remote_violence", "violence_against_civilians",
                       "protests", "riots", "strategic_developments"}
    assert not tx.notes


def test_multilingual_names_present() -> None:
    tx = load_taxonomy()
    hamas = tx.actors["hamas"]["aliases"]
    assert "حماس" in hamas and "חמאס" in hamas and "हमास" in hamas
    houthis = tx.actors["houthis"]["aliases"]
    assert "Ansar Allah" in houthis


def test_operator_file_must_be_versioned_and_valid(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("conflicts: []\n")
    with pytest.raises(TaxonomyError, match="version"):
        load_taxonomy(bad)
    bad.write_text("version: 1\nconflicts:\n  - {id: x}\n")
    with pytest.raises(TaxonomyError, match="needs at least"):
        load_taxonomy(bad)
    bad.write_text("version: 1\nconflicts:\n  - {id: x, name: X, sides: [{actors: [nobody]}]}\n")
    with pytest.raises(TaxonomyError, match="unknown actor"):
        load_taxonomy(bad)
    bad.write_text("version: [unclosed\n")
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        load_taxonomy(bad)
    with pytest.raises(TaxonomyError, match="cannot read"):
        load_taxonomy(tmp_path / "missing.yaml")


def test_operator_file_extends_builtin(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("version: 7\nextends: builtin\nconflicts:\n  - {id: atlantis, name: Atlantis war}\n")
    tx = load_taxonomy(f)
    ids = {c["id"] for c in tx.conflicts}
    assert "atlantis" in ids and "sudan" in ids
    assert tx.version == "t.yaml-7"


def test_every_builtin_name_is_a_string() -> None:
    # YAML turns bare yes/no/on/1027 into bools and ints; a name must stay text to be matched
    tx = load_taxonomy()
    names: list[object] = []
    for c in tx.conflicts:
        for key in ("aliases", "terms", "cs_terms"):
            names += c.get(key) or []
    for a in tx.actors.values():
        names += (a.get("aliases") or []) + (a.get("cs_aliases") or [])
    for st in tx.sub_types.values():
        names += list(st.get("terms") or {})
    names += list(tx.conflict_vocabulary) + list(tx.non_conflict)
    for words in tx.groups.values():
        names += words
    assert names and all(isinstance(n, str) and n.strip() for n in names)
