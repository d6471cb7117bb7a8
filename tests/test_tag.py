"""The pure `tag` stage: conflicts, event types, actors, places, casualties."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.casualties import extract_casualties, parse_number
from processors import tag as tag_module
from processors.tag import Tagger, normalize, tag, tag_record

ROOT = Path(__file__).resolve().parents[1]
EVAL_SET = ROOT / "tests" / "test_tag_eval.yaml"
HELDOUT_SET = ROOT / "tests" / "test_tag_heldout.yaml"
BLIND_SET = ROOT / "tests" / "test_tag_blind.yaml"
BLIND_ML_SET = ROOT / "tests" / "test_tag_blind_ml.yaml"
BLIND_NOTES_SET = ROOT / "tests" / "test_tag_blind_notes.yaml"


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


def test_seed_story(seed_story: str, tagger: Tagger) -> None:
    tags = tagger.tag(None, seed_story)
    assert tags.conflict_related
    assert tags.conflicts[0].id == "us-iran-proxy"
    # Israel-Hamas is only context in this story: it may appear, but below
    assert all(c.id != "israel-hamas" for c in tags.conflicts[:1])
    assert tags.event_types[0].id == "air_drone_strike"
    assert tags.event_types[0].event_type == "explosions_remote_violence"
    assert {"US", "SY", "IQ", "IR"} <= set(tags.countries)
    assert "Islamic Revolutionary Guard Corps" in tags.actors
    assert "Iran-backed militias" in tags.actors
    assert tags.casualties is not None and tags.casualties.injured == 21
    assert "21 American troops" in (tags.casualties.injured_sentence or "")
    assert "Iran-backed militias" in tags.conflicts[0].evidence
    # "Austin said" is the defence secretary, not Austin, Texas
    assert all(loc.name != "Austin" for loc in tags.locations)


@pytest.mark.parametrize("title,text", [
    ("Labour holds seat in by-election as turnout falls", "Voters went to the polls on Thursday. "
     "The candidate thanked her campaign team after the count, and the party said the result "
     "showed its message on the economy was working."),
    ("Striker's late goal wins the derby", "The home side attacked from the first whistle and the "
     "striker shot past the goalkeeper in the 89th minute. The coach praised the squad's battle "
     "in a tough league fixture."),
    ("Stocks rally as tech shares surge", "Shares rallied on Wall Street as investors cheered "
     "strong earnings. The Nasdaq closed at a record and bond yields fell."),
])  # fmt: skip
def test_not_about_armed_conflict(tagger: Tagger, title: str, text: str) -> None:
    tags = tagger.tag(title, text)
    assert not tags.conflict_related
    assert tags.conflicts == ()
    assert tags.conflict_score < 0.5
    assert tags.casualties is None


HEADLINES = [
    ("Russian glide bombs pound Kharkiv as Ukrainian forces brace for offensive", "russia-ukraine"),
    ("Israeli strikes kill 30 across Gaza Strip, health ministry says", "israel-hamas"),
    ("Hezbollah drone hits northern Israel; IDF strikes Nabatieh", "israel-hezbollah"),
    ("Iran fires missiles at Israel after strike on Isfahan", "iran-israel"),
    ("Houthi missile hits bulk carrier in Gulf of Aden", "red-sea-houthis"),
    ("RSF fighters storm Zamzam camp near El Fasher", "sudan"),
    ("Al-Shabaab militants attack army base in Lower Shabelle", "somalia"),
    ("JNIM fighters kill dozens of soldiers in Burkina Faso's Djibo", "sahel"),
    ("M23 rebels advance on Bukavu in eastern Congo", "drc"),
    ("Myanmar junta airstrike kills villagers in Sagaing", "myanmar"),
    ("Taliban say IS-Khorasan gunmen killed in Kabul raid", "afghanistan"),
    ("Maoists kill two CRPF jawans in IED blast in Sukma", "india-maoist"),
    ("Gangs of Viv Ansanm attack Mirebalais prison in Haiti", "haiti"),
    ("CJNG gunmen ambush police convoy in Michoacan", "mexico-cartels"),
    ("ELN attack on army base in Arauca kills two soldiers", "colombia"),
    ("Israeli troops raid Tulkarm camp; two Palestinians killed", "west-bank"),
]  # fmt: skip


@pytest.mark.parametrize("headline,expected", HEADLINES)
def test_headline_ranks_the_right_war_first(tagger: Tagger, headline: str, expected: str) -> None:
    tags = tagger.tag(headline, "")
    assert tags.conflict_related, headline
    assert tags.conflicts and tags.conflicts[0].id == expected, [c.id for c in tags.conflicts]


@pytest.mark.parametrize("headline,expected,event", [
    ("غارات إسرائيلية على رفح تسفر عن مقتل 12 فلسطينيا", "israel-hamas", "air_drone_strike"),
    ("الجيش السوداني يستعيد السيطرة على مدينة ود مدني من قوات الدعم السريع", "sudan",
     "government_regains_territory"),
    ("צה\"ל תקף מטרות של חיזבאללה בדרום לבנון", "israel-hezbollah", None),
    ("सुकमा में नक्सलियों ने आईईडी विस्फोट किया, दो जवान घायल", "india-maoist",
     "remote_explosive_landmine_ied"),
    ("Syrie : des affrontements entre forces de sécurité et combattants druzes à Soueïda font 30 morts",
     "syria", "armed_clash"),
    ("Обстрел Херсона: ранены пять мирных жителей", "russia-ukraine",
     "shelling_artillery_missile_attack"),
    ("Enfrentamiento entre sicarios del CJNG y militares deja 12 muertos en Michoacán",
     "mexico-cartels", "armed_clash"),
    ("Disidencias de las FARC secuestran a dos soldados en el Cauca", "colombia",
     "abduction_forced_disappearance"),
])  # fmt: skip
def test_multilingual_headlines(tagger: Tagger, headline: str, expected: str, event: str | None) -> None:
    tags = tagger.tag(headline, "")
    assert tags.conflict_related, headline
    assert tags.conflicts[0].id == expected, [c.id for c in tags.conflicts]
    if event:
        assert tags.event_types[0].id == event, [e.id for e in tags.event_types]


@pytest.mark.parametrize(
    "path", [EVAL_SET, HELDOUT_SET, BLIND_SET, BLIND_ML_SET, BLIND_NOTES_SET],
    ids=["headlines", "snippets", "paragraphs", "non-english-headlines", "event-notes"])
def test_eval_set_quality_floor(tagger: Tagger, path: Path) -> None:
    # the hand-written sets in tests/; bench/conflict_eval.py prints the detail per language
    items = yaml.safe_load(path.read_text(encoding="utf-8"))["items"]
    first_ok = rel_ok = ev_ok = n_conf = n_ev = 0
    for it in items:
        snippet = len(it["text"]) > 160
        tags = tagger.tag(None, it["text"]) if snippet else tagger.tag(it["text"], "")
        rel_ok += tags.conflict_related == (it["conflict"] is not None)
        if it["conflict"]:
            n_conf += 1
            first_ok += bool(tags.conflicts) and tags.conflicts[0].id == it["conflict"]
        if it.get("event"):
            n_ev += 1
            ev_ok += bool(tags.event_types) and tags.event_types[0].id == it["event"]
    assert rel_ok / len(items) >= 0.95
    assert first_ok / n_conf >= 0.95
    assert ev_ok / n_ev >= 0.85


@pytest.mark.parametrize("headline", [
    "Trade war escalates as Washington slaps new tariffs on Chinese steel",
    "Earthquake kills 12 in eastern Turkey, rescuers search rubble",
    "Hackers claim cyber attack on airline booking system",
    "Star Wars sequel tops box office in opening weekend",
    "Russia's economy slows as oil revenues fall",
])  # fmt: skip
def test_metaphors_and_disasters_are_not_armed_conflict(tagger: Tagger, headline: str) -> None:
    tags = tagger.tag(headline, "")
    assert not tags.conflict_related and tags.conflicts == ()


def test_short_hebrew_words_do_not_match_inside_longer_ones(tagger: Tagger) -> None:
    # "הודיע" (announced) starts like "הודי" (Indian): no India here
    tags = tagger.tag(None, 'צה"ל הודיע כי הטיל יורט')
    assert "IN" not in tags.countries


def test_burmese_is_matched_without_spaces_between_words(tagger: Tagger) -> None:
    # Burmese writes no space between words: "the junta's troops" + "with artillery" + "Rakhine
    # State" are glued together, and none of these keys is a whole space-delimited word
    text = ("စစ်ကောင်စီတပ်က လက်နက်ကြီးဖြင့်ပစ်ခတ်မှုကြောင့် ရခိုင်ပြည်နယ်ကျောက်တော်မြို့နယ်ရှိ"
            "ကျေးရွာတစ်ရွာတွင် ဒေသခံ ၃ ဦး သေဆုံးပြီး ၅ ဦး ဒဏ်ရာရရှိခဲ့သည်။")
    tags = tagger.tag(None, text)
    assert tags.conflict_related and tags.conflicts[0].id == "myanmar"
    assert tags.event_types[0].id == "shelling_artillery_missile_attack"
    assert "Myanmar military (Tatmadaw)" in tags.actors
    assert tags.casualties is not None and (tags.casualties.killed, tags.casualties.injured) == (3, 5)
    # the same words in a Latin-script story still need their word boundaries
    assert not tagger.tag(None, "Shanghai's Sagaingly market rallied").conflict_related


@pytest.mark.parametrize(("headline", "event"), [
    ("Police shot dead three protesters in Nairobi as demonstrations turned deadly",
     "excessive_force_against_protesters"),
    ("Troops fired live rounds at protesters in Khartoum, killing four",
     "excessive_force_against_protesters"),
    # a protest ABOUT a killing or a crackdown is still a peaceful protest
    ("Thousands protest killing of teenager by police in Paris", "peaceful_protest"),
    ("Protesters rally against government crackdown on media in Tbilisi", "peaceful_protest"),
])
def test_protesters_killed_by_the_state_is_excessive_force(tagger: Tagger, headline: str,
                                                           event: str) -> None:
    assert tagger.tag(headline, "").event_types[0].id == event


def test_actor_aliases_resolve_to_canonical_names(tagger: Tagger) -> None:
    text = ("The IRGC and Iranian-backed militias were blamed. Later Ansar Allah claimed the "
            "attack, while Daesh and al-Shabab were not involved. Wagner mercenaries, now the "
            "Africa Corps, fought JNIM. The RSF and the SAF clashed in Omdurman.")
    actors = set(tagger.tag("Regional wars", text).actors)
    assert {"Islamic Revolutionary Guard Corps", "Iran-backed militias", "Houthis (Ansar Allah)",
            "Islamic State", "Al-Shabaab", "Wagner Group (Africa Corps)",
            "Jama'at Nusrat al-Islam wal-Muslimin", "Rapid Support Forces",
            "Sudanese Armed Forces"} <= actors
    # "Iran-backed militia groups" is the same actor as "Iranian-backed militias"
    tags = tagger.tag("Iran-backed militia groups fire rockets at US base", "")
    assert "Iran-backed militias" in tags.actors


def test_places_and_disambiguation(tagger: Tagger) -> None:
    tags = tagger.tag("Clashes in Tripoli", "Rival Libyan militias fought in Tripoli overnight, "
                      "residents said, as the Government of National Unity called for calm.")
    tripoli = [loc for loc in tags.locations if loc.name == "Tripoli"]
    assert tripoli and tripoli[0].country == "LY"
    assert tags.countries[0] == "LY"
    tags = tagger.tag("Strikes near Tripoli", "Israeli drones struck a car near Tripoli in "
                      "northern Lebanon, killing a Hamas official.")
    assert [loc.country for loc in tags.locations if loc.name == "Tripoli"] == ["LB"]
    # a common word that is also a town is not a place
    tags = tagger.tag("Reading list", "Reading the report, police said the mobile unit was nice.")
    assert tags.locations == ()


def test_casualty_numbers() -> None:
    c = extract_casualties("At least 12 people were killed and dozens wounded in the raid.")
    assert c is not None and (c.killed, c.injured) == (12, 12)
    c = extract_casualties("The strike killed twenty-one soldiers. Officials said 5 others were hurt.")
    assert c is not None and (c.killed, c.injured) == (21, 5)
    assert "twenty-one" in (c.killed_sentence or "")
    c = extract_casualties("The death toll rose to 1,204 on Monday, the ministry said.")
    assert c is not None and c.killed == 1204
    assert extract_casualties("The minister, 64, spoke for 20 minutes in 2024.") is None
    assert extract_casualties("Talks resumed in Doha.") is None
    assert extract_casualties("استشهاد 15 فلسطينيا وإصابة 40 آخرين") == extract_casualties(
        "استشهاد 15 فلسطينيا وإصابة 40 آخرين")
    c = extract_casualties("استشهاد 15 فلسطينيا وإصابة 40 آخرين")
    assert c is not None and (c.killed, c.injured) == (15, 40)
    c = extract_casualties("Security forces killed 13 militants; the clash also left three soldiers dead.")
    assert c is not None and c.killed == 13  # the first figure in the sentence
    c = extract_casualties("Des tirs ont fait au moins quatre morts et une vingtaine de blessés.")
    assert c is not None and (c.killed, c.injured) == (4, 20)
    c = extract_casualties("שלושה לוחמים נפצעו בקרב בצפון הרצועה")
    assert c is not None and c.injured == 3
    c = extract_casualties("सेना ने मुठभेड़ में दो आतंकवादियों को मार गिराया")
    assert c is not None and c.killed == 2
    assert parse_number("two dozen") == 24 and parse_number("hundreds of") == 100
    assert parse_number("forty-two") == 42 and parse_number("1.500") == 1500


def test_operator_taxonomy_override_tags_a_new_conflict(tagger: Tagger, tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text(
        "version: 2\n"
        "extends: builtin\n"
        "actors:\n"
        "  - {id: zorg, name: Zorgan Liberation Front, aliases: [Zorgan Liberation Front, ZLF fighters]}\n"
        "conflicts:\n"
        "  - id: zorgania\n"
        "    name: Zorgania insurgency\n"
        "    countries: []\n"
        "    sides: [{name: ZLF, actors: [zorg]}]\n"
        "    aliases: [Zorgania insurgency]\n"
        "    terms: [Zorgania, Port Zorg]\n",
        encoding="utf-8",
    )
    headline = "ZLF fighters kill 12 soldiers in ambush near Port Zorg, Zorgania"
    assert all(c.id != "zorgania" for c in tagger.tag(headline, "").conflicts)
    tags = Tagger(f).tag(headline, "")
    assert tags.conflict_related
    assert tags.conflicts[0].id == "zorgania"
    assert "Zorgan Liberation Front" in tags.actors
    assert tags.casualties is not None and tags.casualties.killed == 12


def test_configure_switches_the_process_default(tmp_path: Path) -> None:
    f = tmp_path / "only.yaml"
    f.write_text("version: 1\nconflicts:\n  - id: solo\n    name: Solo war\n"
                 "    aliases: [Solo war]\n    terms: [Soloville]\n", encoding="utf-8")
    saved = tag_module._default, tag_module._default_path
    try:
        tag_module.configure(f)
        tags = tag("Shelling in Soloville kills 4 as the Solo war escalates", "")
        assert [c.id for c in tags.conflicts] == ["solo"]  # the built-in conflicts are replaced
        assert tag_module.default_tagger().taxonomy.version == "only.yaml-1"
    finally:
        tag_module._default, tag_module._default_path = saved
    assert all(c.id != "solo" for c in tag("Shelling in Soloville kills 4", "").conflicts)


def test_tag_record_contract() -> None:
    out = tag_record({"id": "a1", "title": "Houthis fire missiles at ship in Red Sea", "text": ""})
    assert out["id"] == "a1" and out["conflict_related"] is True
    assert out["conflicts"][0]["id"] == "red-sea-houthis"
    assert set(out["conflicts"][0]) >= {"id", "name", "score"}
    assert set(out["event_types"][0]) >= {"id", "score", "event_type"}
    assert {"actors", "countries", "locations", "casualties"} <= set(out)
    json.dumps(out)
    assert tag_record({"id": "b", "text": 5})["error"]
    assert tag_record({"id": "c", "title": None, "text": "  "})["error"]
    assert tag_record({"id": "d", "title": ["x"], "text": "ok"})["error"]


def test_cli_tag_reads_and_writes_json_lines() -> None:
    lines = "\n".join([
        json.dumps({"id": "1", "title": "Sudanese army retakes Khartoum palace from RSF", "text": ""}),
        "not json",
        json.dumps({"id": "2", "text": 3}),
    ]) + "\n"  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "newswire", "tag"], input=lines, text=True,
                          capture_output=True, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    outs = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    assert len(outs) == 3, proc.stderr[-2000:]
    assert outs[0]["conflicts"][0]["id"] == "sudan"
    assert "error" in outs[1] and outs[2]["error"]


def test_tagger_pickles_and_runs_in_a_process_pool(tagger: Tagger, seed_story: str) -> None:
    t = pickle.loads(pickle.dumps(tagger))
    assert t.tag(None, seed_story).conflicts[0].id == "us-iran-proxy"
    assert pickle.loads(pickle.dumps(tagger)) is t  # compiled once per process, not per message
    with ProcessPoolExecutor(max_workers=1) as pool:
        tags = pool.submit(tag, None, seed_story).result(timeout=120)
    assert tags.conflicts[0].id == "us-iran-proxy"


def test_normalize_keeps_a_map_back_to_the_original() -> None:
    text = "Iran\u2013backed  militias in   حَلَب"
    norm, index = normalize(text)
    assert "iran backed militias" in norm and "حلب" in norm
    assert index is not None and len(index) == len(norm)
    assert text[index[norm.index("حلب")]] == "ح"


def _normalize_reference(text: str) -> tuple[str, list[int]]:
    """normalize() spelled out the slow, obvious way: one translate, a per-character map."""
    low = text.lower()
    if len(low) != len(text):
        low = "".join(c.lower()[0] for c in text)
    low = low.translate(tag_module._ONE_TO_ONE)
    out, index = [], []
    i = 0
    while i < len(low):
        c = low[i]
        if c in tag_module._DELETE:
            i += 1
        elif c == " " and i + 1 < len(low) and low[i + 1] == " ":
            out.append(" ")
            index.append(i)
            while i < len(low) and low[i] == " ":
                i += 1
        else:
            out.append(c)
            index.append(i)
            i += 1
    return "".join(out), index


_NEWS_CHARS = st.sampled_from(list("aZé ßİ.,-\u2013\u2019\u201c  \u00a0حَلَبأةیک\u064b\u0640שלוםך\u05b0\u200cनक़ж"))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=200), st.lists(_NEWS_CHARS, max_size=200).map("".join)))
def test_normalize_matches_the_plain_definition(text: str) -> None:
    # the fast path (ASCII table, regexes, runs) must say exactly what the definition says
    norm, index = normalize(text)
    want, want_index = _normalize_reference(text)
    assert norm == want
    assert (list(index) if index is not None else list(range(len(norm)))) == want_index


_ACRONYMS = ["US", "IS", "IS fighters", "IS cell", "IS cells", "RSF", "PDF", "PDFs", "LoC", "БПЛА"]


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(st.one_of(st.sampled_from(_ACRONYMS),
                                 st.sampled_from(list(" .,-_x1éДs\n "))), max_size=30))
def test_acronyms_are_found_as_the_plain_regex_finds_them(pieces: list[str]) -> None:
    # whole words, longest first, left to right: what `(?<![\w.])(?:longest|...)(?![\w])` finds
    text = "".join(pieces)
    words = tag_module._WholeWords(_ACRONYMS)
    alternation = "|".join(re.escape(w) for w in sorted(_ACRONYMS, key=len, reverse=True))
    reference = re.compile(rf"(?<![\w.])(?:{alternation})(?![\w])")
    assert words.find(text) == [(m.start(), m.end(), m.group()) for m in reference.finditer(text)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.one_of(st.none(), st.text(max_size=80)), text=st.text(max_size=600))
def test_tag_never_raises_and_scores_are_sane(tagger: Tagger, title: str | None, text: str) -> None:
    tags = tagger.tag(title, text)
    assert 0.0 <= tags.conflict_score <= 1.0
    scores = [c.score for c in tags.conflicts]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    ev = [e.score for e in tags.event_types]
    assert all(0.0 <= s <= 1.0 for s in ev) and ev == sorted(ev, reverse=True)
    assert all(len(cc) == 2 for cc in tags.countries)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from([
    "Hamas", "Gaza", "killed", "IRGC", "U.S.", "airstrike", "حماس", "غارة", "צה\"ל", "हमला",
    "US", "IS", "ceasefire", "Kyiv", "drone", "12", "dozens", "injured", "\u0651", "  ", "-",
    "İstanbul", "Ὀδυσσεύς", "\n"]), max_size=40))
def test_tag_on_conflict_word_salad(tagger: Tagger, words: list[str]) -> None:
    tags = tagger.tag(" ".join(words[:5]), " ".join(words))
    assert 0.0 <= tags.conflict_score <= 1.0
    scores = [c.score for c in tags.conflicts]
    assert scores == sorted(scores, reverse=True)
