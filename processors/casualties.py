"""Casualty figures: how many were killed and injured, with the sentence each number came from.

Pure and rule-based. Numbers may be digits ("1,200"), words ("twenty-one", "a dozen") or vague
quantities mapped to the conservative counts event datasets use ("dozens" = 12, "scores" = 20,
"hundreds" = 100, "thousands" = 1000). The first figure in story order wins: the lead states
the event's toll, later figures are often totals for the whole war.
"""

from __future__ import annotations

import re

from newswire.records import Casualties

_UNITS = {
    "one": 1, "a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_VAGUE = {"dozen": 12, "a dozen": 12, "dozens": 12, "dozens of": 12, "scores": 20,
          "scores of": 20, "hundreds": 100, "hundreds of": 100, "thousands": 1000,
          "thousands of": 1000, "several": 3, "a number of": 3}
_MULT = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_WORD_NUM = (r"(?:(?:" + "|".join(sorted(_TENS, key=len, reverse=True)) + r")(?:[- ](?:"
             + "|".join(k for k in _UNITS if len(k) > 2) + r"))?|"
             + "|".join(sorted((k for k in _UNITS if len(k) > 2), key=len, reverse=True)) + r")")
NUM = (r"(?P<num>\d{1,3}(?:[,.\u202f \u066c]\d{3})+|\d+|(?:a |two |three )?dozens?(?: of)?|scores of|"
       r"hundreds(?: of)?|thousands(?: of)?|" + _WORD_NUM + r"(?: (?:hundred|thousand))?)")
QUAL = r"(?:(?:at least|more than|over|nearly|almost|about|around|some|up to|roughly|an estimated) )?"
# up to three words between the number and the verb ("21 American troops were injured")
GAP = r"(?:[\w'’.-]+ ){0,3}?"
AUX = r"(?:(?:were|was|have been|had been|are|has been|got|being|reportedly|also|) ?)"
KILL_V = r"(?:killed|dead|died|slain|shot dead|lost their lives|perished|executed|massacred)"
INJ_V = r"(?:injured|wounded|hurt|maimed)"
KILL_N = r"(?:deaths|fatalities|people dead|dead)"
INJ_N = r"(?:injuries|wounded|injured)"

_EN = [
    ("killed", re.compile(rf"\b{QUAL}{NUM} {GAP}{AUX}{KILL_V}\b", re.I)),
    ("injured", re.compile(rf"\b{QUAL}{NUM} {GAP}{AUX}{INJ_V}\b", re.I)),
    ("killed", re.compile(rf"\b(?:killing|killed|kills|kill|left|leaving) {QUAL}{NUM}\b(?! (?:years?|days?|hours?|km|kilometres|miles|percent|%))", re.I)),
    ("injured", re.compile(rf"\b(?:injuring|wounding|injured|wounded|injures|wounds) {QUAL}{NUM}\b(?! (?:years?|days?|hours?|km|percent|%))", re.I)),
    ("injured", re.compile(rf"\binjur(?:y|ies) to {QUAL}{NUM}\b", re.I)),
    ("killed", re.compile(rf"\b(?:death toll|toll|number of dead)\b[^.;]{{0,40}}?\b(?:to|of|at|reached|hit) {QUAL}{NUM}\b", re.I)),
    ("killed", re.compile(rf"\b{QUAL}{NUM} {KILL_N}\b", re.I)),
    ("injured", re.compile(rf"\b{QUAL}{NUM} (?:others |people |more )?{INJ_N}\b", re.I)),
]
# number words of the other languages we read (small counts are often spelled out)
_ML_WORDS = {
    # French
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
    "huit": 8, "neuf": 9, "dix": 10, "onze": 11, "douze": 12, "quinze": 15, "vingt": 20,
    "trente": 30, "quarante": 40, "cinquante": 50, "cent": 100, "une dizaine": 10,
    "une douzaine": 12, "une quinzaine": 15, "une vingtaine": 20, "une trentaine": 30,
    "une cinquantaine": 50, "une centaine": 100, "des dizaines": 12, "plusieurs dizaines": 12,
    "des centaines": 100,
    # Spanish
    "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10,
    "doce": 12, "veinte": 20, "treinta": 30, "decenas": 12, "una docena": 12, "cientos": 100,
    "seis": 6, "quince": 15, "cuarenta": 40, "cincuenta": 50, "cien": 100, "una veintena": 20,
    "una decena": 10, "soixante": 60, "une quarantaine": 40, "une soixantaine": 60,
    # Arabic
    "اثنان": 2, "اثنين": 2, "ثلاثة": 3, "أربعة": 4, "خمسة": 5, "ستة": 6, "سبعة": 7, "ثمانية": 8,
    "تسعة": 9, "عشرة": 10, "عشرات": 12, "مئات": 100, "عشرين": 20, "عشرون": 20, "ثلاثين": 30,
    "أربعين": 40, "خمسين": 50, "مئة": 100, "مائة": 100, "أربع": 4, "خمس": 5, "ست": 6, "سبع": 7,
    # Persian (Arabic-script digits are digits to the regex and to int() already)
    "دو": 2, "سه": 3, "چهار": 4, "پنج": 5, "شش": 6, "هفت": 7, "هشت": 8, "ده": 10, "بیست": 20,
    "سی": 30, "دهها": 12, "ده‌ها": 12, "صدها": 100,
    # Hebrew
    "שניים": 2, "שני": 2, "שתי": 2, "שלושה": 3, "שלוש": 3, "ארבעה": 4, "ארבע": 4, "חמישה": 5,
    "חמש": 5, "שישה": 6, "שש": 6, "שבעה": 7, "שמונה": 8, "תשעה": 9, "עשרה": 10, "עשרות": 12,
    # Hindi
    "एक": 1, "दो": 2, "तीन": 3, "चार": 4, "पांच": 5, "पाँच": 5, "छह": 6, "सात": 7, "आठ": 8,
    "नौ": 9, "दस": 10, "दर्जनों": 12, "सैकड़ों": 100, "बारह": 12, "पंद्रह": 15, "बीस": 20,
    "तीस": 30, "चालीस": 40, "पचास": 50, "सौ": 100,
    # Russian / Ukrainian
    "два": 2, "двое": 2, "двоє": 2, "три": 3, "трое": 3, "троє": 3, "четыре": 4, "чотири": 4,
    "пять": 5, "пятеро": 5, "п'ять": 5, "шесть": 6, "шість": 6, "десять": 10, "десятки": 12,
    "семь": 7, "сім": 7, "восемь": 8, "вісім": 8, "девять": 9, "дев'ять": 9, "двадцать": 20,
    "двадцять": 20, "тридцать": 30, "тридцять": 30, "сто": 100, "сотни": 100, "сотні": 100,
    "двух": 2, "двох": 2, "трех": 3, "трёх": 3, "трьох": 3, "четырех": 4, "чотирьох": 4,
}  # fmt: skip
_ML_ALT = "|".join(re.escape(w) for w in sorted(_ML_WORDS, key=len, reverse=True))
D = rf"(?P<num>\d{{1,3}}(?:[,.\u202f \u066c]\d{{3}})+|\d+|(?<!\w)(?:{_ML_ALT})(?!\w))"
_OTHER = [
    # French
    ("killed", re.compile(rf"{D} (?:[\w']+ ){{0,4}}?(?:morts|tués|tuées|tué|mort)\b", re.I)),
    ("injured", re.compile(rf"{D} (?:[\w']+ ){{0,4}}?(?:blessés|blessées|blessé)\b", re.I)),
    ("killed", re.compile(rf"\b(?:tuant|tuent|tue|ont tué|a tué|massacrent|coûté la vie à|fait) (?:au moins )?{D}\b", re.I)),
    # Spanish
    ("killed", re.compile(rf"{D} (?:[\w']+ ){{0,3}}?(?:muertos|asesinados|fallecidos|muertas|asesinadas)\b", re.I)),
    ("injured", re.compile(rf"{D} (?:[\w']+ ){{0,3}}?(?:heridos|heridas)\b", re.I)),
    # Arabic
    ("killed", re.compile(rf"(?:مقتل|استشهاد|استشهد|قتل) (?:نحو |أكثر من |ما لا يقل عن )?{D}")),
    ("killed", re.compile(rf"{D} (?:\S+ ){{0,3}}?(?:قتيلا|قتيلاً|قتلى|شهيدا|شهيداً|شهداء|استشهدوا|قتلوا|لقوا حتفهم)")),
    ("injured", re.compile(rf"(?:إصابة|جرح|أصيب|اصيب) (?:نحو |أكثر من )?{D}")),
    ("injured", re.compile(rf"{D} (?:\S+ ){{0,3}}?(?:جريحا|جريحاً|جرحى|مصابا|مصابين|أصيبوا|اصيبوا)")),
    # Hebrew
    ("killed", re.compile(rf"{D} (?:\S+ ){{0,2}}?(?:הרוגים|הרוגות|חללים|נהרגו|נרצחו)")),
    ("killed", re.compile(rf"(?:נהרגו|נרצחו) (?:\S+ ){{0,2}}?{D}")),
    ("injured", re.compile(rf"{D} (?:\S+ ){{0,2}}?(?:פצועים|פצועות|נפצעו)")),
    ("injured", re.compile(rf"(?:נפצעו) (?:\S+ ){{0,2}}?{D}")),
    # Hindi
    ("killed", re.compile(rf"{D} (?:\S+ ){{0,3}}?(?:की मौत|मारे गए|मारे गये|शहीद|मौत)")),
    ("injured", re.compile(rf"{D} (?:\S+ ){{0,3}}?(?:घायल)")),
    ("killed", re.compile(rf"{D} (?:\S+ ){{0,2}}?(?:को मार गिराया|को ढेर|ढेर)")),
    # Russian / Ukrainian
    ("killed", re.compile(rf"\b{D} (?:\w+ ){{0,2}}?(?:погибли|погибших|убиты|убитых|загинули|загиблих|вбиті)", re.I)),
    ("injured", re.compile(rf"\b{D} (?:\w+ ){{0,2}}?(?:ранены|раненых|пострадали|поранені|поранених)", re.I)),
    # verb first: "погибли девять человек", "поранено трьох людей"
    ("killed", re.compile(rf"\b(?:погибли|погибло|убиты|загинули|загинуло|вбито) (?:\w+ ){{0,2}}?{D}", re.I)),
    ("injured", re.compile(rf"\b(?:ранены|ранено|пострадали|поранено|поранені|постраждали) (?:\w+ ){{0,2}}?{D}", re.I)),
    # Persian
    ("killed", re.compile(rf"{D} (?:\S+ ){{0,3}}?(?:کشته|شهید|جان باختند|جان خود را از دست)")),
    ("injured", re.compile(rf"{D} (?:\S+ ){{0,3}}?(?:زخمی|مجروح)")),
    # Burmese: number, the classifier for people (ဦး), then the verb ("၃ ဦး သေဆုံး")
    ("killed", re.compile(rf"{D} ?ဦး ?(?:\S+ )?(?:သေဆုံး|ကျဆုံး|အသက်ဆုံးရှုံး)")),
    ("injured", re.compile(rf"{D} ?ဦး ?(?:\S+ )?ဒဏ်ရာ")),
]
# a pattern is only tried on a sentence holding one of its needles (lower-cased): the number
# alternatives are costly to try at every position of every sentence
_NEEDLES = [
    ("kill", "dead", "died", "slain", "lives", "perish", "execut", "massacr"),
    ("injur", "wound", "hurt", "maim"),
    ("kill", "left ", "leaving"),
    ("injur", "wound"),
    ("injur",),
    ("toll", "number of dead"),
    ("death", "fatalit", "dead"),
    ("injur", "wounded"),
    ("mort", "tué"), ("bless",), ("tuant", "tue", "tué", "massacr", "coûté", "fait "),
    ("muert", "asesina", "fallec"), ("herid",),
    ("مقتل", "استشهاد", "استشهد", "قتل"), ("قتي", "قتل", "شهي", "شهد", "حتف"), ("إصابة", "جرح", "أصيب", "اصيب"),
    ("جري", "جرح", "مصاب", "صيبوا"),
    ("הרוג", "חלל", "נהרג", "נרצח"), ("נהרג", "נרצח"), ("פצוע", "נפצע"), ("נפצע",),
    ("मौत", "मारे", "शहीद"), ("घायल",), ("मार गिरा", "ढेर"),
    ("погиб", "убит", "загин", "вбит"), ("ранен", "пострада", "поранен"),
    ("погиб", "убит", "загин", "вбит"), ("ранен", "пострада", "поранен", "постражд"),
    ("کشته", "شهید", "جان"), ("زخمی", "مجروح"),
    ("သေဆုံး", "ကျဆုံး", "ဆုံးရှုံး"), ("ဒဏ်ရာ",),
]  # fmt: skip
_ALL_NEEDLES = tuple(sorted({n for needles in _NEEDLES for n in needles}))
_DIGIT = re.compile(r"\d")
# every number form, to find the one nearest the verb inside a match: in "3 killed and 12
# wounded" the injured pattern spans both figures, and 12 is the injured one
_ANY_NUM = re.compile(NUM.replace("?P<num>", "") + "|" + D.replace("?P<num>", ""), re.I)
_PATTERNS = [(kind, rx, needles) for (kind, rx), needles in zip(_EN + _OTHER, _NEEDLES, strict=True)]
SCAN_CHARS = 6000
SCAN_SENTENCES = 40
# a sentence with no digit and no number word cannot carry a figure
_HAS_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                         r"twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|dozen|scores|"
                         r"hundreds|thousands|several|a number)|teen\b|" + _ML_ALT, re.I)
_BREAK = re.compile(r"[.!?।؟]+[\"”’')]*\s+|[။።]+\s*|\n+")  # Burmese, Ethiopic full stops need no space
_ABBREV = {"jan", "feb", "mar", "apr", "aug", "sep", "sept", "oct", "nov", "dec", "mr", "mrs",
           "ms", "dr", "gen", "col", "lt", "sgt", "capt", "sen", "rep", "gov", "st", "no", "vs",
           "u.s", "u.k", "u.n", "jr", "sr", "inc", "co", "corp", "approx", "est"}


def sentences(text: str) -> list[str]:
    """Sentences of a story; abbreviations such as "Oct." or "U.S." do not end one."""
    out, start = [], 0
    for m in _BREAK.finditer(text):
        if m.group()[0] == ".":
            word = text[max(0, m.start() - 6):m.start()].split()[-1:]
            tail = word[0].lower().lstrip("(\"'") if word else ""
            if tail in _ABBREV or (len(tail) == 1 and tail.isalpha()):
                continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    if start < len(text):
        out.append(text[start:].strip())
    return [s for s in out if s]


def parse_number(raw: str) -> int | None:
    s = " ".join(raw.strip().lower().split())
    if not s:
        return None
    if s in _ML_WORDS:
        return _ML_WORDS[s]
    digits = re.sub(r"[,.\u202f \u066c]", "", s)
    if digits.isdecimal():  # not isdigit(): superscripts are digits int() refuses
        return int(digits)
    for prefix, mult in (("two ", 2), ("three ", 3)):
        if s.startswith(prefix) and "dozen" in s:
            return 12 * mult
    if s in _VAGUE:
        return _VAGUE[s]
    s = s.removesuffix(" of")
    if s in _VAGUE:
        return _VAGUE[s]
    total = 0
    for part in s.split():
        if part in _MULT:
            total = max(total, 1) * _MULT[part]
            continue
        value = 0
        for piece in part.split("-"):
            value += _UNITS.get(piece, 0) + _TENS.get(piece, 0)
        if value == 0:
            return None
        total += value
    return total or None


def extract_casualties(text: str) -> Casualties | None:
    """Killed/injured counts with their sentences; None when the story gives no figure."""
    found: dict[str, tuple[int, str]] = {}
    # the toll of the event is stated early; later figures are usually war-long totals
    for sentence in sentences(text[:SCAN_CHARS])[:SCAN_SENTENCES]:
        if not sentence:
            continue
        flat = " ".join(sentence.split())
        low = flat.lower()
        # cheap gates first: a casualty word, then a digit or a number word
        if not any(n in low for n in _ALL_NEEDLES):
            continue
        if not _DIGIT.search(flat) and not _HAS_NUMBER.search(flat):
            continue
        best: dict[str, tuple[int, int]] = {}  # kind -> (position, value): earliest figure wins
        for kind, pattern, needles in _PATTERNS:
            if kind in found or not any(n in low for n in needles):
                continue
            for hit in pattern.finditer(flat):
                raw, pos = hit.group("num"), hit.start("num")
                inner = list(_ANY_NUM.finditer(flat, pos, hit.end()))
                if len(inner) > 1:
                    raw, pos = inner[-1].group(), inner[-1].start()
                value = parse_number(raw)
                # a year or an age is not a toll
                if value is None or value > 1_000_000 or (
                        1900 <= value <= 2100 and raw.isdigit()):
                    continue
                if kind not in best or pos < best[kind][0]:
                    best[kind] = (pos, value)
                break
        for kind, (_pos, value) in best.items():
            found[kind] = (value, flat)
        if len(found) == 2:
            break
    if not found:
        return None
    killed = found.get("killed")
    injured = found.get("injured")
    return Casualties(
        killed=killed[0] if killed else None,
        injured=injured[0] if injured else None,
        killed_sentence=killed[1] if killed else None,
        injured_sentence=injured[1] if injured else None,
    )
