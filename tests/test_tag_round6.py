"""Tagging round 6 (issue 5): a lone weak word of violence in a story that names no war is a
metaphor, history or crime; anniversaries, primaries and match reports are not war stories;
shots fired at positions are a battle; taxonomy entries with an inner '*' are reported."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from processors.tag import Tagger


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


@pytest.mark.parametrize("headline", [
    "Inflation is the war nobody is winning",  # one weak word, no war named
    "Bayern bombard the Dortmund goal but settle for a draw",
    "Man charged after stabbing outside nightclub",
    "Ukraine marks 80th anniversary of the end of the Second World War",
    "La France commémore le 80e anniversaire de la Libération",
    "Primaries: candidates go on the attack in final debate",
    "الذكرى الخمسون لحرب أكتوبر: احتفالات في القاهرة",
])  # fmt: skip
def test_metaphor_history_and_crime_are_not_conflict(tagger: Tagger, headline: str) -> None:
    tags = tagger.tag(headline, "")
    assert not tags.conflict_related, (headline, tags.conflict_score, tags.event_types)


@pytest.mark.parametrize("headline,conflict", [
    ("Gunmen kill 12 villagers in Zamfara", "nigeria"),  # one strong word stands alone
    ("Airstrike hits market in Sagaing", "myanmar"),
    ("Russian drone strike on Kharkiv kills three", "russia-ukraine"),
    ("War in Sudan: RSF shells El Fasher", "sudan"),
])  # fmt: skip
def test_short_war_headlines_stay_conflict(tagger: Tagger, headline: str, conflict: str) -> None:
    tags = tagger.tag(headline, "")
    assert tags.conflict_related and tags.conflicts and tags.conflicts[0].id == conflict


@pytest.mark.parametrize("headline,event", [
    ("Azerbaijan says Armenian troops fired on its positions near the border", "armed_clash"),
    ("Gunmen opened fire at villagers in Plateau State, killing 9", "attack"),
    ("Congolese troops and M23 rebels exchanged heavy fire near Sake", "armed_clash"),
    ("Detienen a jefe de plaza del CJNG en Jalisco", "arrests"),
    ("Protesters stormed the embassy in Kinshasa over the fall of Goma", "violent_demonstration"),
    ("Армения и Азербайджан парафировали мирное соглашение", "agreement"),
])  # fmt: skip
def test_event_wording(tagger: Tagger, headline: str, event: str) -> None:
    tags = tagger.tag(headline, "")
    assert tags.event_types and tags.event_types[0].id == event, (headline, tags.event_types)


def test_inner_wildcard_entry_is_reported_not_silently_dropped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("version: 1\nextends: builtin\nconflicts:\n"
                 "  - {id: atlantis, name: Atlantis war, terms: ['siege* of Poseidonis', Poseidonis]}\n",
                 encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="processors.tag"):
        tagger = Tagger(f)
    assert any("siege* of Poseidonis" in r.getMessage() for r in caplog.records)
    tags = tagger.tag("Heavy fighting in Poseidonis, soldiers killed", "")
    assert tags.conflicts and tags.conflicts[0].id == "atlantis"
