"""The tag stage on non-English and short reporting (issue 5): native-script names, event
words and casualty figures in Arabic, Hebrew, Hindi, French, Russian/Ukrainian, Spanish and
Persian; acronyms that are also ordinary words; headline lead-ins; ACLED's battle/attack line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.casualties import extract_casualties, parse_number
from processors.tag import Tagger, normalize

ROOT = Path(__file__).resolve().parents[1]
MULTILINGUAL_SET = ROOT / "tests" / "test_tag_multilingual.yaml"
MULTILINGUAL_BLIND_SET = ROOT / "tests" / "test_tag_multilingual_blind.yaml"
ARTICLES_SET = ROOT / "tests" / "test_tag_multilingual_articles.yaml"
SHORT_SET = ROOT / "tests" / "test_tag_multilingual_short.yaml"
WARS_SET = ROOT / "tests" / "test_tag_multilingual_wars.yaml"
HEADLINES2_SET = ROOT / "tests" / "test_tag_headlines2.yaml"
HEADLINES3_SET = ROOT / "tests" / "test_tag_headlines3.yaml"
ROUND6_SET = ROOT / "tests" / "test_tag_round6.yaml"
ROUND7_SET = ROOT / "tests" / "test_tag_round7.yaml"
ROUND8_SET = ROOT / "tests" / "test_tag_round8.yaml"
ROUND9_SET = ROOT / "tests" / "test_tag_round9.yaml"
ROUND10_SET = ROOT / "tests" / "test_tag_round10.yaml"


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger()


def _score(tagger: Tagger, path: Path) -> tuple[float, float, float]:
    items = yaml.safe_load(path.read_text(encoding="utf-8"))["items"]
    rel_ok = first_ok = ev_ok = n_conf = n_ev = 0
    for it in items:
        snippet = len(it["text"]) > 160
        if it.get("title"):
            tags = tagger.tag(it["title"], it["text"])
        else:
            tags = tagger.tag(None, it["text"]) if snippet else tagger.tag(it["text"], "")
        rel_ok += tags.conflict_related == (it["conflict"] is not None)
        if it["conflict"]:
            n_conf += 1
            first_ok += bool(tags.conflicts) and tags.conflicts[0].id == it["conflict"]
        if it.get("event"):
            n_ev += 1
            ev_ok += bool(tags.event_types) and tags.event_types[0].id == it["event"]
    return rel_ok / len(items), first_ok / n_conf, ev_ok / n_ev


def test_multilingual_set_quality_floor(tagger: Tagger) -> None:
    # 139 items in 8 languages; bench/conflict_eval.py --only multilingual prints per language
    relevance, first, event = _score(tagger, MULTILINGUAL_SET)
    assert relevance >= 0.97 and first >= 0.95 and event >= 0.90, (relevance, first, event)


@pytest.mark.parametrize("path", [MULTILINGUAL_BLIND_SET, ARTICLES_SET, SHORT_SET, WARS_SET, HEADLINES2_SET,
                                  HEADLINES3_SET, ROUND6_SET, ROUND7_SET, ROUND8_SET, ROUND9_SET,
                                  ROUND10_SET],
                         ids=["blind", "articles", "short", "wars", "headlines2", "headlines3", "round6",
                              "round7", "round8", "round9", "round10"])
def test_later_multilingual_sets_quality_floor(tagger: Tagger, path: Path) -> None:
    # written after a tuning round each; floors a little under their first-run scores
    relevance, first, event = _score(tagger, path)
    assert relevance >= 0.95 and first >= 0.90 and event >= 0.85, (relevance, first, event)


@pytest.mark.parametrize("title,text", [
    ("Download the PDF of the annual report", ""),
    ("Annual results", "The company posted record profits. Download the PDF here. Shares rose 3%."),
    ("KIA unveils new electric SUV at the motor show", ""),
    ("RSF publishes its annual press freedom index", ""),
    ("ADF launches a campaign for the school board", ""),
])  # fmt: skip
def test_acronyms_that_are_also_words_need_conflict_context(tagger: Tagger, title: str, text: str) -> None:
    tags = tagger.tag(title, text)
    assert not tags.conflict_related and tags.conflicts == () and tags.actors == ()


@pytest.mark.parametrize("headline,expected", [
    ("PDF fighters seize town in Sagaing", "myanmar"),
    ("RSF kills 40 in village raid", "sudan"),
    ("ADF rebels kill 12 civilians near Beni", "drc"),
])  # fmt: skip
def test_acronyms_in_a_war_story_still_name_the_actor(tagger: Tagger, headline: str, expected: str) -> None:
    tags = tagger.tag(headline, "")
    assert tags.conflict_related and tags.conflicts[0].id == expected


@pytest.mark.parametrize("headline,expected,event", [
    ("حزب‌الله با پهپاد به شمال اسرائیل حمله کرد", "israel-hezbollah", "air_drone_strike"),
    ("Hezbola lanza cohetes contra el norte de Israel", "israel-hezbollah", "shelling_artillery_missile_attack"),
    ("Les FSR s'emparent d'une ville du Kordofan", "sudan", "non_state_actor_overtakes_territory"),
    ("Hamas acepta la tregua y el canje de prisioneros", "israel-hamas", "agreement"),
    ("قوات الاحتلال تعتقل عشرة شبان في جنين", "west-bank", "arrests"),
    ("मुठभेड़ में दो आतंकी ढेर, कुपवाड़ा में तलाशी अभियान जारी", "india-pakistan", "armed_clash"),
    ("Росія атакувала Київ ударними дронами", "russia-ukraine", "air_drone_strike"),
])  # fmt: skip
def test_native_script_and_accentless_names(tagger: Tagger, headline: str, expected: str, event: str) -> None:
    tags = tagger.tag(headline, "")
    assert tags.conflict_related, headline
    assert tags.conflicts[0].id == expected, [c.id for c in tags.conflicts]
    assert tags.event_types[0].id == event, [e.id for e in tags.event_types]


@pytest.mark.parametrize("headline", [
    "Динамо Київ перемогло Шахтар у матчі чемпіонату",
    "La guerre des prix fait rage entre les géants de la distribution",
    "ريال مدريد يفوز على برشلونة في الكلاسيكو",
    "Un terremoto de magnitud 6 sacude el sur de Perú",
    "زلزله ۵ ریشتری کرمان را لرزاند",
    "उत्तराखंड में बादल फटने से बाढ़, 10 लोगों की मौत",
])  # fmt: skip
def test_sport_markets_and_disasters_in_other_languages_are_not_war(tagger: Tagger, headline: str) -> None:
    tags = tagger.tag(headline, "")
    assert not tags.conflict_related and tags.conflicts == ()


@pytest.mark.parametrize("title,text", [
    ("Le PSG écrase Lyon", "Grâce à une frappe splendide de Mbappé à la 30e minute et un doublé de "
     "Dembélé, Paris s'est imposé 4-1. L'attaque parisienne a été redoutable."),
    ("برشلونة يكتسح إشبيلية", "سجل ليفاندوفسكي هدفين وقاد هجوم برشلونة في المباراة، فيما أطلق يامال "
     "قذيفة صاروخية سكنت الشباك."),
    ("भारत ने पाकिस्तान को हराया", "विराट कोहली की शानदार पारी की बदौलत भारत ने एशिया कप में पाकिस्तान को "
     "छह विकेट से हरा दिया।"),
    ("Ole Miss Rebels beat Alabama", "The Rebels scored 21 points in the second half of the college "
     "basketball game."),
])  # fmt: skip
def test_match_reports_with_war_words_are_not_war(tagger: Tagger, title: str, text: str) -> None:
    # a "frappe" (shot), a "قذيفة صاروخية" (screamer), "Rebels" (a team) in a match report
    tags = tagger.tag(title, text)
    assert not tags.conflict_related and tags.conflicts == ()


def test_an_attack_on_a_base_is_a_battle_an_attack_on_villagers_is_not(tagger: Tagger) -> None:
    on_base = tagger.tag("Colombia: disidencias de las FARC atacan una base militar en el Cauca", "")
    assert on_base.event_types[0].id == "armed_clash"
    on_village = tagger.tag("Des hommes armés attaquent un village et tuent 20 civils au Burkina Faso", "")
    assert on_village.event_types[0].id == "attack"


def test_headline_lead_in_names_where_it_happened(tagger: Tagger) -> None:
    # "russes" is a side of the Russia-Ukraine war, but "Mali :" says where this happened
    tags = tagger.tag("Mali : des civils tués par l'armée et ses alliés russes dans un village", "")
    assert tags.conflicts[0].id == "sahel"


def test_persian_letters_and_latin_accents_fold_for_matching() -> None:
    assert normalize("کشته")[0] == normalize("كشته")[0]  # Persian kaf = Arabic kaf
    assert normalize("Hezbolá")[0] == "hezbola"
    norm, index = normalize("Líbano y Hezbolá")
    assert norm == "libano y hezbola" and index is None  # one character for one: no map needed


def test_casualties_in_other_scripts_and_languages() -> None:
    cases = {
        "سقوط ٣ قتلى و١٢ جريحا في قصف على خان يونس": (3, 12),
        "استشهد ٧ فلسطينيين وأصيب ١٢ آخرون في غارة على خيمة للنازحين": (7, 12),
        "حمله هوایی اسرائیل به غزه ۲۵ کشته و ۴۰ زخمی برجای گذاشت": (25, 40),
        "مقتل ١٬٢٠٠ شخص منذ بداية الحرب": (1200, None),
        "В результате ракетного удара по Днепру погибли девять человек": (9, None),
        "Окупанти обстріляли Херсон з артилерії: поранено трьох людей": (None, 3),
        "Enfrentamiento deja seis muertos y quince heridos en Culiacán": (6, 15),
        "Nord-Kivu : les ADF tuent une quarantaine de civils, une vingtaine de blessés": (40, 20),
        "पहलगाम में आतंकी हमला, 26 पर्यटकों की मौत": (26, None),
        "12 people were killed and 30 wounded in the raid": (12, 30),
    }
    for text, (killed, injured) in cases.items():
        c = extract_casualties(text)
        assert c is not None, text
        assert (c.killed, c.injured) == (killed, injured), text


_DIGITS = {"ascii": "0123456789", "arabic": "٠١٢٣٤٥٦٧٨٩", "persian": "۰۱۲۳۴۵۶۷۸۹",
           "devanagari": "०१२३४५६७८९"}


@settings(max_examples=80, deadline=None)
@given(n=st.integers(min_value=1, max_value=99_999).filter(lambda v: not 1900 <= v <= 2100),
       script=st.sampled_from(sorted(_DIGITS)))
def test_a_toll_reads_the_same_in_every_digit_script(n: int, script: str) -> None:
    digits = str(n).translate(str.maketrans("0123456789", _DIGITS[script]))
    assert parse_number(digits) == n
    for text in (f"مقتل {digits} شخصا في الهجوم", f"{digits} लोगों की मौत", f"{digits} کشته شدند"):
        c = extract_casualties(text)
        assert c is not None and c.killed == n, text


def test_untuned_headline_set_quality_floor(tagger: Tagger) -> None:
    # headlines3 is kept untuned (the README's honest figure); event top-1 was 0.826 at first run
    relevance, first, event = _score(tagger, HEADLINES3_SET)
    assert relevance >= 0.95 and first >= 0.90 and event >= 0.80, (relevance, first, event)


@pytest.mark.parametrize("headline,expected", [
    ("Fighting in Myrnohrad", "russia-ukraine"),
    ("Бої тривають у Мирнограді", "russia-ukraine"),
    ("Шахеди атакували Одесу вночі", "russia-ukraine"),
    ("פיגוע ירי בצומת תפוח", "west-bank"),
    ("اشتباكات في طمون", "west-bank"),
    ("غارة على بنت جبيل", "israel-hezbollah"),
    ("معارك في كادقلي", "sudan"),
    ("Attaque jihadiste près de Diapaga", "sahel"),
    ("Combats à Walikale", "drc"),
    ("Fighting in Kyaukme", "myanmar"),
    ("IED blast in Lakki Marwat kills two policemen", "pakistan"),
    ("Gang attack on Kenscoff", "haiti"),
    ("Balacera en Apatzingán", "mexico-cartels"),
    ("कुपवाड़ा में मुठभेड़", "india-pakistan"),
    ("सुकमा में मुठभेड़", "india-maoist"),
    ("معارك في بوكروفسك", "russia-ukraine"),
    ("קרבות בפוקרובסק", "russia-ukraine"),
    ("Удар по Хан-Юнису", "israel-hamas"),
    ("Combats à El-Facher", "sudan"),
    ("Теракт в Белуджистане", "pakistan"),
])  # fmt: skip
def test_a_town_alone_names_the_war(tagger: Tagger, headline: str, expected: str) -> None:
    # round 5: front-line towns in native script and their case forms are the only clue
    tags = tagger.tag(headline, "")
    assert tags.conflict_related and tags.conflicts and tags.conflicts[0].id == expected, tags.conflicts


@pytest.mark.parametrize("headline", [
    "Heatwave kills 12 in Madrid",
    "Storm Amy batters Scotland, thousands without power",
    "Penalty shoot-out sends Morocco into semi-final",
    "Late strike sinks Leeds in relegation battle",
    "Odesa opera season opens with Verdi",
])  # fmt: skip
def test_weather_sport_and_culture_headlines_are_not_conflict(tagger: Tagger, headline: str) -> None:
    tags = tagger.tag(headline, "")
    assert not tags.conflict_related and tags.conflicts == ()
