"""The ``tag`` stage: which armed conflict a story is about, what happened, who, where, how many.

Pure: ``tag(title, text) -> Tags``. Everything the rules need (conflict taxonomy, actor aliases,
ACLED sub-type vocabulary, country names, ~34k cities with their names in Arabic, Hebrew,
Hindi and Cyrillic scripts) is compiled once into ONE Aho-Corasick automaton over normalised
text, plus a small case-sensitive one for acronyms that are also words ("US", "IS").
A story is scanned once; every hit carries what it is evidence for, and the scores follow
from weights, the position of the hit (title and lead count more), how many distinct
conflicts share a name (a name shared by four wars says less than one that names one war),
and whether a story names both sides of a conflict.

The tagger holds no open files or sockets, so it pickles by rebuilding from its taxonomy
path (each ProcessPoolExecutor worker compiles its own copy once).
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import ahocorasick_rs

from newswire.records import Casualties, ConflictTag, EventTypeTag, Location, Tags
from processors import gazetteer
from processors.casualties import extract_casualties
from processors.taxonomy import Taxonomy, load_places, load_taxonomy

log = logging.getLogger(__name__)

# --- payload kinds -----------------------------------------------------------------------------
K_ALIAS, K_TERM, K_ACTOR, K_COUNTRY, K_CITY, K_REGION, K_EVENT, K_GROUP, K_VOCAB, K_NEG = range(10)
_ENTITY_KINDS = frozenset({K_ALIAS, K_TERM, K_ACTOR, K_COUNTRY, K_CITY, K_REGION})
# each kind of word evidence is its own layer: "kidnapped" is both vocabulary and an event word
_LAYERS = (_ENTITY_KINDS, frozenset({K_EVENT}), frozenset({K_GROUP}), frozenset({K_VOCAB}),
           frozenset({K_NEG}))
PREFIX = 1  # a trailing "*": the match may run on into the word
CLITIC = 2  # Arabic/Hebrew: one-letter prefixes (و ال ב ה ...) may be glued on the left
ACRONYM = 4  # a case-sensitive acronym ("PDF", "RSF"): counts only with context (see _in_context)
UNSPACED = 8  # Burmese, Thai, Khmer, Lao: no spaces between words, so no boundary to require
# scripts written without spaces between words: their keys match anywhere, as dictionary
# segmenters for these languages do (keys are whole words or phrases, not single syllables)
_UNSPACED_SCRIPTS = frozenset({"MYANMAR", "THAI", "KHMER", "LAO"})

# --- weights (tuned on the dev sets and the hand-written eval set; see bench/conflict_eval.py) --
W_ALIAS = 4.0
W_TERM = 2.5
W_ACTOR = 2.5
W_COUNTRY = 1.6
TITLE_FACTOR = 2.5
DATELINE_FACTOR = 1.6  # "Mali : ...", "RDC : ...": the headline's lead-in names where it happened
LEAD_CHARS = 700  # position boost fades linearly over the first characters of the body
LEAD_BOOST = 1.0
REPEAT = 0.35  # each further mention adds this share of the first
REPEAT_CAP = 4
CONFLICT_MIN_RAW = 1.2
CONFLICT_KEEP_SHARE = 0.3
RELATED_SCALE = 5.0
RELATED_THRESHOLD = 0.5
SINGLE_CUE_FACTOR = 0.5
EVENT_MIN_RAW = 2.0
EVENT_KEEP_SHARE = 0.35
PROTEST_TYPES = {"protests", "riots"}
MAX_TITLE = 1_000
MAX_TEXT = 100_000

_ARABIC_CLITICS = set("وفبلكس") | {"ا", "ل"}  # و ف ب ل ك س and the article ال
_HEBREW_CLITICS = set("והבלמשכ")
_DELETE = (
    "\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0670\u0640"  # Arabic harakat, tatweel
    + "".join(chr(c) for c in range(0x0591, 0x05C8) if chr(c) not in "\u05be\u05c0\u05c3\u05c6")
    + "\u093c\u200c\u200d\u200e\u200f\u00ad"  # Devanagari nukta, joiners, marks, soft hyphen
)
_FOLD = {
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي", "ё": "е",
    "ך": "כ", "ם": "מ", "ן": "נ", "ף": "פ", "ץ": "צ",  # Hebrew final letters: a prefix match
    # of "תקף" must reach "תקפה"
    "ی": "ي", "ک": "ك", "ۀ": "ه", "ە": "ه", "ې": "ي",  # Persian letters: Arabic entries match Persian
    "۰": "٠", "۱": "١", "۲": "٢", "۳": "٣", "۴": "٤", "۵": "٥", "۶": "٦", "۷": "٧", "۸": "٨", "۹": "٩",
    # Latin accents: "Hezbolá" = "Hezbola", "tues" = "tués" (writers drop them in headlines)
    "à": "a", "á": "a", "â": "a", "ä": "a", "ã": "a", "å": "a", "ç": "c", "è": "e", "é": "e",
    "ê": "e", "ë": "e", "ì": "i", "í": "i", "î": "i", "ï": "i", "ò": "o", "ó": "o", "ô": "o",
    "ö": "o", "õ": "o", "ù": "u", "ú": "u", "û": "u", "ü": "u", "ý": "y", "ÿ": "y",
    "\u0958": "\u0915", "\u0959": "\u0916", "\u095a": "\u0917", "\u095b": "\u091c",
    "\u095c": "\u0921", "\u095d": "\u0922", "\u095e": "\u092b", "\u095f": "\u092f",
}  # fmt: skip
# punctuation and dashes become spaces, one for one, so "Iran-backed" = "Iran backed",
# "U.S." = "u s" and every lexicon key can be matched as whole words between spaces
_PUNCT = (
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c\xa0\xab\xbb\xb7\u060c\u061b\u061f\u0964\u0965"
    "\u05be\u05f3\u05f4\u066a\u066b\u066c\u06d4\u3000\u30fb\ufeff"
    "\u104a\u104b\u1361\u1362\u1363\u1364\u1365\u1366\u1367\u1368"  # Burmese, Ethiopic
    + "".join(chr(c) for c in range(0x2000, 0x2070) if chr(c) not in "\u200c\u200d\u200e\u200f")
)
_ONE_TO_ONE = str.maketrans({**_FOLD, **{c: " " for c in _PUNCT}})
# The same mapping in three cheaper steps (str.translate with a dict falls back to a slow
# per-character path at the first non-ASCII character, and news text has curly quotes and
# dashes early): ASCII text through an ASCII-only table (CPython's fast path), else the
# punctuation by one regex, then the few letters to fold (none at all in most text).
_ASCII_ONE_TO_ONE = str.maketrans({c: " " for c in _PUNCT if c.isascii()})
_PUNCT_RE = re.compile("[" + re.escape(_PUNCT) + "]")
_FOLD_RE = re.compile("[" + re.escape("".join(_FOLD)) + "]")
_SLOW = re.compile("[" + re.escape(_DELETE) + "]+|  +")


class _OffsetMap:
    """``map[i]`` = index in the original text of normalised character ``i``, kept as runs
    (a normalised text is a few hundred runs of the original, not one entry per character).
    Indexable and sized, so :func:`bisect.bisect_left` maps the other way."""

    __slots__ = ("_norm", "_orig", "_len")

    def __init__(self, norm_starts: list[int], orig_starts: list[int], length: int) -> None:
        self._norm, self._orig, self._len = norm_starts, orig_starts, length

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self._len:
            raise IndexError(i)
        k = bisect.bisect_right(self._norm, i) - 1
        return self._orig[k] + i - self._norm[k]


def normalize(text: str) -> tuple[str, _OffsetMap | None]:
    """Lower-cased, script-normalised text for matching, and a map back to the original.

    Punctuation and dashes become spaces, Arabic letter variants are folded, vowel marks
    dropped and runs of spaces collapsed. The map is None when every character kept its
    place; otherwise map[i] = index in the original text of normalised character i.
    """
    low = text.lower()
    if len(low) != len(text):  # a few characters lower-case to two (İ): keep one each
        low = "".join(c.lower()[0] for c in text)
    if low.isascii():
        low = low.translate(_ASCII_ONE_TO_ONE)
    else:
        low = _PUNCT_RE.sub(" ", low)
        if not low.isascii():
            low = _FOLD_RE.sub(lambda m: _FOLD[m.group()], low)
    first = _SLOW.search(low)
    if first is None:
        return low, None
    pieces: list[str] = []
    norm_starts: list[int] = []
    orig_starts: list[int] = []
    pos = length = 0
    for m in _SLOW.finditer(low, first.start()):
        a, b = m.span()
        if a > pos:
            pieces.append(low[pos:a])
            norm_starts.append(length)
            orig_starts.append(pos)
            length += a - pos
        if low[a] == " ":  # a run of spaces: one is kept, at the run's first place
            pieces.append(" ")
            norm_starts.append(length)
            orig_starts.append(a)
            length += 1
        pos = b
    if pos < len(low):
        pieces.append(low[pos:])
        norm_starts.append(length)
        orig_starts.append(pos)
        length += len(low) - pos
    return "".join(pieces), _OffsetMap(norm_starts, orig_starts, length)


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch)[0] == "M"


def _key(surface: str) -> tuple[str, int]:
    """Normalised automaton key and flags for one lexicon entry."""
    flags = 0
    s = surface.strip()
    if s.endswith("*"):
        s = s[:-1].rstrip()
        flags |= PREFIX
    key, _ = normalize(s)
    key = key.strip()
    script = gazetteer.script_of(key)
    if script in ("ARABIC", "HEBREW"):
        flags |= CLITIC
        if len(key) >= 5:  # suffixes (plural, possessive) glue on; short words stay exact
            flags |= PREFIX  # ("הודי" Indian must not match "הודיע" announced)
    elif script == "CYRILLIC" and len(key) >= 5 and " " not in key:
        flags |= PREFIX  # case endings: Херсон -> Херсона, Херсоне
    elif script == "DEVANAGARI" and len(key) >= 5 and " " not in key:
        flags |= PREFIX  # plural/oblique endings: मिसाइल -> मिसाइलें, मिसाइलों
    elif script in _UNSPACED_SCRIPTS:
        flags |= UNSPACED
    return key, flags


def _unspaced(key: str) -> bool:
    return gazetteer.script_of(key) in _UNSPACED_SCRIPTS


def _padded(key: str, flags: int) -> str:
    """The automaton key: spaces mark the word boundaries the entry needs."""
    if flags & UNSPACED:
        return key
    left = "" if flags & CLITIC else " "
    right = "" if flags & PREFIX else " "
    return f"{left}{key}{right}"


@dataclass(slots=True)
class _Hit:
    start: int
    end: int
    payloads: list[tuple[int, Any, float, int]]
    factor: float
    key: str


Payload = tuple[int, Any, float, int]


def _make_adder(entries: dict[str, list[Payload]], cs_entries: dict[str, list[Payload]]) -> Any:
    def add(surface: str, kind: int, ref: Any, weight: float, cs: bool = False) -> None:
        if not isinstance(surface, str) or not surface.strip():
            return
        if cs:
            s = surface.strip().rstrip("*")
            if s:
                cs_entries[s].append((kind, ref, weight, ACRONYM))
            return
        if "*" in surface.strip().rstrip("*"):
            # only a trailing "*" is a wildcard; an inner one would match the bare stem as a word
            log.warning("taxonomy entry %r skipped: '*' is supported only at the end", surface)
            return
        key, flags = _key(surface)
        if len(key) < 2:
            return
        bucket = entries[key]
        for i, (k2, r2, w2, f2) in enumerate(bucket):
            if k2 == kind and r2 == ref:  # the same word twice ("יורט*: 3", "יורט: 4")
                w = weight if abs(weight) > abs(w2) else w2
                bucket[i] = (kind, ref, w, f2 | flags)
                return
        bucket.append((kind, ref, weight, flags))

    return add


def _padded_payloads(entries: dict[str, list[Payload]]) -> dict[str, tuple[list[Payload], ...]]:
    """Automaton keys (padded with the word boundaries they need) and their payloads by layer."""
    padded: dict[str, list[Payload]] = defaultdict(list)
    for key, payloads in entries.items():
        for p in payloads:
            padded[_padded(key, p[3])].append(p)
    return {pkey: _by_layer(payloads) for pkey, payloads in padded.items()}


def _joined(a: tuple[list[Payload], ...], b: tuple[list[Payload], ...]) -> tuple[list[Payload], ...]:
    """Two hits' payloads by layer, as one hit's."""
    return tuple(x + y for x, y in zip(a, b, strict=True))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _find_all(matcher: Any, text: str) -> list[tuple[int, int, int]]:
    try:
        return matcher.find_matches_as_indexes(text, overlapping=True)
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800" in JSON): not UTF-8, so not
        # Rust's; U+FFFD in its place, one for one, keeps every offset
        return matcher.find_matches_as_indexes(_SURROGATE.sub("\ufffd", text), overlapping=True)


class _Automaton:
    """Every key of the gazetteer and the taxonomy in one Aho-Corasick automaton (Rust,
    ``ahocorasick_rs``): one call returns every overlapping match of a text, ~4x cheaper than
    iterating two pyahocorasick automata match by match. ``values[i]`` describes pattern i."""

    __slots__ = ("_matcher", "values")

    def __init__(self, *layers: dict[str, tuple[list[Payload], ...]]) -> None:
        merged: dict[str, tuple[list[Payload], ...]] = {}
        for padded in layers:
            for pkey, by_layer in padded.items():
                prev = merged.get(pkey)
                # the same words in both (a term "Gaza" and the city): evidence of each kind
                merged[pkey] = by_layer if prev is None else _joined(prev, by_layer)
        patterns = list(merged)
        # (key, right pad, payloads, check the left edge for glued clitics)
        self.values = [(p.strip(), len(p) - len(p.rstrip(" ")), merged[p],
                        p[:1] != " " and not _unspaced(p)) for p in patterns]
        self._matcher = ahocorasick_rs.AhoCorasick(patterns)

    def matches(self, padded_text: str) -> list[tuple[int, int, int]]:
        """(pattern index, start, end) of every match, overlapping ones included, in
        character offsets of ``padded_text``."""
        return _find_all(self._matcher, padded_text)


class _WholeWords:
    """Case-sensitive words and phrases found as whole words in the original text ("US",
    "IS fighters", "RSF"): not after a letter, digit or dot, not before a letter or digit;
    at each place the longest that fits, left to right. The same as a regex alternation of
    them, longest first, between ``(?<![\\w.])`` and ``(?![\\w])``, at a tenth of its cost
    (the regex tries every alternative at every character of a long page)."""

    __slots__ = ("_matcher", "_words")

    def __init__(self, words: Iterable[str]) -> None:
        self._words = list(words)
        self._matcher = ahocorasick_rs.AhoCorasick(self._words)

    def find(self, text: str) -> list[tuple[int, int, str]]:
        found = []
        n = len(text)
        for i, start, end in _find_all(self._matcher, text):
            if start > 0:
                ch = text[start - 1]
                if ch == "." or ch == "_" or ch.isalnum():
                    continue
            if end < n:
                ch = text[end]
                if ch == "_" or ch.isalnum():
                    continue
            found.append((start, end, self._words[i]))
        found.sort(key=lambda m: (m[0], m[0] - m[1]))
        out: list[tuple[int, int, str]] = []
        last_end = -1
        for m in found:
            if m[0] >= last_end:
                out.append(m)
                last_end = m[1]
        return out


@dataclass(frozen=True)
class _Static:
    padded: dict[str, tuple[list[Payload], ...]]
    country_keys: frozenset[str]
    cs_entries: dict[str, list[Payload]]
    n_keys: int


@lru_cache(maxsize=1)
def _static_lexicon() -> _Static:
    """Countries, regions and ~90k city names: the same for every taxonomy, so compiled into
    their own automaton once per process (an operator's taxonomy then compiles in a blink)."""
    places = load_places()
    entries: dict[str, list[Payload]] = defaultdict(list)
    cs_entries: dict[str, list[Payload]] = defaultdict(list)
    add = _make_adder(entries, cs_entries)
    alias_key = tuple(sorted((cc, tuple(v)) for cc, v in (places.get("country_aliases") or {}).items()))
    names = gazetteer.country_names(alias_key, tuple(places.get("not_countries") or ()))
    country_keys: set[str] = set()
    for cc, surfaces in names.items():
        for s in surfaces:
            country_keys.add(_key(s)[0])
            add(s, K_COUNTRY, cc, 1.0)
    for s, cc in (("US", "US"), ("UK", "GB"), ("UAE", "AE"), ("DRC", "CD"), ("RDC", "CD")):
        add(s, K_COUNTRY, cc, 1.0, cs=True)  # shorthands that are also words in lower case
    for name, place in gazetteer.regions(places).items():
        add(name, K_REGION, place, 1.0)
    for key, payload in _city_entries(frozenset(places.get("focus_countries") or ())):
        if key not in country_keys:  # a city never shadows a country
            entries[key].append(payload)
    return _Static(_padded_payloads(entries), frozenset(country_keys), dict(cs_entries), len(entries))


class Tagger:
    """Compiled taxonomy + gazetteer. Build once per process; ``tag`` is pure and thread-safe."""

    def __init__(self, taxonomy_path: Path | None = None) -> None:
        self.taxonomy_path = Path(taxonomy_path) if taxonomy_path is not None else None
        self.taxonomy: Taxonomy = load_taxonomy(self.taxonomy_path)
        self._build()

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle by path; the other side compiles it once per process, not once per message
        return (_shared_tagger, (self.taxonomy_path,))

    # --- compile --------------------------------------------------------------------------------
    def _build(self) -> None:
        tx = self.taxonomy
        static = _static_lexicon()
        entries: dict[str, list[Payload]] = defaultdict(list)
        cs_entries: dict[str, list[Payload]] = defaultdict(list)
        for k, v in static.cs_entries.items():
            cs_entries[k].extend(v)
        add = _make_adder(entries, cs_entries)

        # conflicts: how many conflicts share each actor / country, to discount shared names
        actor_share: dict[str, int] = defaultdict(int)
        country_share: dict[str, int] = defaultdict(int)
        self.conflicts: dict[str, dict[str, Any]] = {}
        self.conflict_sides: dict[str, list[tuple[set[str], set[str]]]] = {}
        self.conflict_where: dict[str, set[str]] = {}
        conflict_countries: set[str] = set()
        for c in tx.conflicts:
            sides = []
            ccs = set(c.get("countries") or [])
            for side in c.get("sides") or []:
                s_actors = set(side.get("actors") or [])
                s_countries = set(side.get("countries") or [])
                sides.append((s_actors, s_countries))
                ccs |= s_countries
                for a in s_actors:
                    actor_share[a] += 1
            self.conflict_where[c["id"]] = set(c.get("countries") or [])
            for cc in self.conflict_where[c["id"]]:
                country_share[cc] += 1
            conflict_countries |= ccs
            self.conflicts[c["id"]] = {"name": c["name"], "countries": ccs}
            self.conflict_sides[c["id"]] = sides
        self.actor_conflicts: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.country_conflicts: dict[str, list[str]] = defaultdict(list)
        for cid, sides in self.conflict_sides.items():
            for i, (s_actors, s_countries) in enumerate(sides):
                for a in s_actors:
                    self.actor_conflicts[a].append((cid, i))
            for cc in set(self.conflict_where[cid]):
                self.country_conflicts[cc].append(cid)
        self.country_side: dict[tuple[str, str], int] = {}
        # a party's country that is not where the war is fought ("US and British jets struck
        # Hodeidah"): it says which side, not where; used only to see both sides named
        self.side_abroad: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for cid, sides in self.conflict_sides.items():
            for i, (_, s_countries) in enumerate(sides):
                for cc in s_countries:
                    self.country_side[(cid, cc)] = i
                    if cc not in self.conflict_where[cid]:
                        self.side_abroad[cc].append((cid, i))
        self.actor_share = dict(actor_share)
        self.country_share = dict(country_share)

        places = tx.places
        country_keys = static.country_keys

        # conflicts
        for c in tx.conflicts:
            cid = c["id"]
            for s in c.get("aliases") or []:
                add(str(s), K_ALIAS, cid, W_ALIAS)
            shared_terms: dict[str, int] = {}
            for s in c.get("terms") or []:
                key, _ = _key(str(s))
                if key in country_keys:
                    continue  # a country name is country evidence already
                shared_terms[key] = 1
                add(str(s), K_TERM, cid, W_TERM)
            for s in c.get("cs_terms") or []:
                add(str(s), K_TERM, cid, W_TERM, cs=True)
        # actors
        self.actor_names: dict[str, str] = {}
        self._actor_ids = {a["name"]: aid for aid, a in tx.actors.items()}
        self._actor_group = {
            aid: {"armed_group": "rebels", "militia": "rebels", "armed_forces": "gov_forces"}.get(
                a.get("kind", ""), "") for aid, a in tx.actors.items()}
        # how much naming an actor says "armed conflict": an armed group more than an army
        self._actor_violence = {
            aid: {"armed_group": 2.0, "militia": 2.0, "armed_forces": 1.0}.get(a.get("kind"), 0.5)
            for aid, a in tx.actors.items()}
        for aid, a in tx.actors.items():
            self.actor_names[aid] = a["name"]
            for s in [a["name"], *(a.get("aliases") or [])]:
                add(str(s), K_ACTOR, aid, W_ACTOR)
            for s in a.get("cs_aliases") or []:
                add(str(s), K_ACTOR, aid, W_ACTOR, cs=True)
        # event sub-types, word groups, conflict vocabulary, non-conflict cues
        self.sub_types: dict[str, dict[str, Any]] = {}
        for sid, st in tx.sub_types.items():
            self.sub_types[sid] = {"event_type": st.get("event_type", "other"),
                                   "with": dict(st.get("with") or {}),
                                   "redirect": dict(st.get("redirect") or {}),
                                   "yields": dict(st.get("yields") or {})}
            for s, w in (st.get("terms") or {}).items():
                # negative weights mark phrases that look like the sub-type but are not
                # ("called for a ceasefire" is no agreement); the longest match wins
                if isinstance(w, (int, float)) and w != 0:
                    if str(s).isupper() and len(str(s)) <= 5:
                        add(str(s), K_EVENT, sid, float(w), cs=True)
                    else:
                        add(str(s), K_EVENT, sid, float(w))
        for gid, words in tx.groups.items():
            for s in words or []:
                add(str(s), K_GROUP, gid, 1.0)
        for s, w in tx.conflict_vocabulary.items():
            if isinstance(w, (int, float)) and w > 0:
                add(str(s), K_VOCAB, None, float(w))
        for s, w in tx.non_conflict.items():
            if isinstance(w, (int, float)) and w > 0:
                add(str(s), K_NEG, None, float(w), cs=str(s).isupper() and len(str(s)) <= 5)

        # places: regions, then cities (a city never shadows a country or a taxonomy name)
        self.ambiguous = {_key(str(n))[0] for n in places.get("ambiguous_names") or ()}
        self.person_titles = {n.lower() for n in places.get("person_titles") or ()}
        self.person_verbs = {n.lower() for n in places.get("person_verbs") or ()}
        self._automaton = _Automaton(static.padded, _padded_payloads(entries))
        self._cs_payloads = {k: _by_layer(v) for k, v in cs_entries.items()}
        self._acronyms = _WholeWords(cs_entries) if cs_entries else None
        log.info("tagger compiled taxonomy=%s keys=%d cs=%d gazetteer_keys=%d", tx.version,
                 len(entries), len(cs_entries), static.n_keys)

    # --- scan -----------------------------------------------------------------------------------
    def _scan(self, doc: str, body_start: int) -> tuple[list[_Hit], str, list[int] | None]:
        norm, index = normalize(doc)
        body_norm = body_start
        m = _DATELINE.match(doc, 0, body_start) if body_start else None
        dateline = m.end(1) if m else 0
        if index is not None:  # where the body starts in normalised coordinates
            body_norm = bisect.bisect_left(index, body_start)
            dateline = bisect.bisect_left(index, dateline)

        def factor(pos: int) -> float:
            if pos < dateline:
                return TITLE_FACTOR * DATELINE_FACTOR
            if pos < body_norm:
                return TITLE_FACTOR
            rel = pos - body_norm
            return 1.0 + LEAD_BOOST * max(0.0, 1.0 - rel / LEAD_CHARS)

        merged: dict[tuple[int, int], tuple[int, int, str, tuple[list[Payload], ...]]] = {}
        padded = f" {norm} "
        clitics = _ARABIC_CLITICS | _HEBREW_CLITICS

        def put(start: int, end: int, key: str, by_layer: tuple[list[Payload], ...]) -> None:
            prev = merged.get((start, end))
            if prev is not None:  # one key padded two ways, or an acronym on a name's place
                by_layer = _joined(prev[3], by_layer)
            merged[(start, end)] = (start, end, key, by_layer)

        values = self._automaton.values
        for index_, _start, end_idx in self._automaton.matches(padded):
            key, rpad, by_layer, clitic_edge = values[index_]
            # positions in `norm`: the padded text has one extra leading space
            end = end_idx - 1 - rpad  # exclusive end in norm coordinates
            start = end - len(key)
            if clitic_edge:  # Arabic/Hebrew: up to three glued one-letter prefixes, then a boundary
                j = start
                while j > 0 and start - j < 3 and norm[j - 1] in clitics:
                    j -= 1
                if j > 0 and _is_word_char(norm[j - 1]):
                    continue
            put(start, end, key, by_layer)
        # case-sensitive acronyms on the original text, unless the whole text is capitals
        if self._acronyms is not None and not _mostly_upper(doc):
            for s, e, surface in self._acronyms.find(doc):
                if index is not None:
                    s2 = bisect.bisect_left(index, s)
                    e2 = bisect.bisect_left(index, e)
                else:
                    s2, e2 = s, e
                put(s2, e2, surface, self._cs_payloads[surface])
        raw = list(merged.values())
        # longest match wins, a match inside a longer one is dropped; names (entities) and
        # event words are resolved apart, so "Russian drones" is both an actor and a drone
        hits: list[_Hit] = []
        for li in range(len(_LAYERS)):
            layered = [(start, end, key, by_layer[li]) for start, end, key, by_layer in raw
                       if by_layer[li]]
            layered.sort(key=lambda r: (r[0], -(r[1] - r[0])))
            last_end = -1
            for start, end, key, payloads in layered:
                if start < last_end:
                    continue
                hits.append(_Hit(start, end, payloads, factor(start), key))
                last_end = end
        return hits, norm, index

    # --- score ----------------------------------------------------------------------------------
    def tag(self, title: str | None, text: str) -> Tags:
        title = title if isinstance(title, str) else ""
        text = text if isinstance(text, str) else ""
        # a news story fits well within this; beyond it is a dump, not an article
        title = title.strip()[:MAX_TITLE]
        text = text[:MAX_TEXT]
        doc = f"{title}\n{text}" if title else text
        body_start = len(title) + 1 if title else 0
        hits, norm, index = self._scan(doc, body_start)

        def orig(i: int) -> int:
            return index[i] if index is not None and i < len(index) else i

        # 1) places first: they decide countries, which feed the conflict scores
        country_ev: dict[str, list[float]] = defaultdict(list)
        city_hits: list[tuple[_Hit, tuple[gazetteer.Place, ...]]] = []
        groups_present: set[str] = set()
        for h in hits:
            for kind, ref, _w, _f in h.payloads:
                if kind == K_COUNTRY:
                    country_ev[ref].append(h.factor)
                elif kind == K_CITY:
                    city_hits.append((h, ref))
                elif kind == K_GROUP:
                    groups_present.add(ref)
                elif kind == K_ACTOR:  # a named armed group is a "rebels" word, an army a "gov_forces" one
                    group = self._actor_group.get(ref)
                    if group:
                        groups_present.add(group)
        story_countries = set(country_ev)
        rejected: set[str] = set()
        accepted_cities: dict[str, tuple[gazetteer.Place, float, int]] = {}
        region_hits = [(h, ref) for h in hits for kind, ref, _w, _f in h.payloads if kind == K_REGION]
        for h, cands in city_hits:
            if h.key in rejected:
                continue
            if not self._looks_like_place(doc, norm, h, orig):
                rejected.add(h.key)
                continue
            in_story = [p for p in cands if p.country in story_countries]
            ambiguous = h.key in self.ambiguous
            if in_story:
                place = in_story[0]
            elif ambiguous:
                continue
            else:
                place = cands[0]
                if place.population < 50_000 and gazetteer.script_of(h.key) == "LATIN":
                    continue  # a small town abroad is more likely a word or a name
            prev = accepted_cities.get(h.key)
            accepted_cities[h.key] = (place, (prev[1] if prev else 0.0) + h.factor,
                                      prev[2] if prev else h.start)
        for key in rejected:
            accepted_cities.pop(key, None)
        for place, weight, _start in accepted_cities.values():
            country_ev[place.country].append(0.6 * weight)
        for _h, place in region_hits:
            country_ev[place.country].append(0.8)

        keep_acronym = self._acronym_context(hits, country_ev)

        # 2) conflicts, event types, vocabulary
        ev: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        ev_w: dict[tuple[str, str], float] = {}
        sides_hit: dict[str, set[int]] = defaultdict(set)
        strong: dict[str, bool] = defaultdict(bool)
        actors: dict[str, float] = defaultdict(float)
        events: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        event_w: dict[tuple[str, str], float] = {}
        armed: dict[str, list[float]] = defaultdict(list)
        vocab: dict[str, list[float]] = defaultdict(list)
        vocab_w: dict[str, float] = {}
        neg: dict[str, list[float]] = defaultdict(list)
        neg_w: dict[str, float] = {}
        cue_keys: set[str] = set()  # distinct words of violence (vocabulary or event)
        event_cues: list[tuple[str, str, float]] = []
        strong_cue = False
        for h in hits:
            surface = doc[orig(h.start):orig(h.end - 1) + 1] if h.end > h.start else h.key
            for kind, ref, w, f in h.payloads:
                if f & ACRONYM and kind in (K_ACTOR, K_TERM) and not keep_acronym(kind, ref):
                    continue
                if kind == K_ALIAS:
                    ev[ref][surface.lower()].append(h.factor)
                    ev_w[(ref, surface.lower())] = w
                    strong[ref] = True
                elif kind == K_TERM:
                    ev[ref][surface.lower()].append(h.factor)
                    ev_w[(ref, surface.lower())] = w
                    strong[ref] = True
                elif kind == K_ACTOR:
                    name = self.actor_names.get(ref, ref)
                    actors[name] += h.factor
                    armed[name].append(h.factor * self._actor_violence.get(ref, 0.5))
                    share = self.actor_share.get(ref, 1)
                    for cid, side in self.actor_conflicts.get(ref, ()):
                        ev[cid][name].append(h.factor)
                        ev_w[(cid, name)] = w / math.sqrt(share)
                        sides_hit[cid].add(side)
                elif kind == K_EVENT:
                    events[ref][h.key].append(h.factor)
                    event_w[(ref, h.key)] = w
                    if w > 0:
                        event_cues.append((ref, h.key, w))
                elif kind == K_VOCAB:
                    vocab[h.key].append(h.factor)
                    vocab_w[h.key] = w
                    cue_keys.add(h.key)
                    strong_cue = strong_cue or w >= 3
                elif kind == K_NEG:
                    neg[h.key].append(h.factor)
                    neg_w[h.key] = w
        for cc, factors in country_ev.items():
            share = self.country_share.get(cc, 0)
            if not share:
                continue
            for cid in self.country_conflicts.get(cc, ()):
                label = f"country:{cc}"
                ev[cid][label].extend(factors)
                # a country says more about a war fought only there than one spanning three
                n_where = max(1, len(self.conflict_where.get(cid, ())))
                ev_w[(cid, label)] = W_COUNTRY / math.sqrt(share) / math.sqrt(n_where)
                side = self.country_side.get((cid, cc))
                if side is not None:
                    sides_hit[cid].add(side)

        for cc in country_ev:
            for cid, side in self.side_abroad.get(cc, ()):
                if cid in ev:
                    sides_hit[cid].add(side)
        conflict_raw: dict[str, float] = {}
        home_only: set[str] = set()
        for cid, items in ev.items():
            # a conflict must be anchored: a name or place of its own, a country where it is
            # fought, or an actor that belongs to it alone; shared actors alone do not count
            anchored = strong[cid] or len(sides_hit.get(cid, ())) >= 2 or any(
                lbl.startswith("country:") or self._actor_own(cid, lbl) for lbl in items)
            if not anchored:
                if not any(self._actor_home(cid, lbl) for lbl in items):
                    continue
                home_only.add(cid)  # names the war, but does not by itself say "war story"
            total = sum(_accumulate(f) * ev_w[(cid, label)] for label, f in items.items())
            n_sides = len(self.conflict_sides.get(cid) or ())
            hit_sides = len(sides_hit.get(cid, ()))
            if n_sides >= 2 and hit_sides >= 2:
                total *= 1.25
            elif not strong[cid]:
                total *= 0.6  # one side only and nothing that names this war
            conflict_raw[cid] = total
        # when one war has both its sides in the story, a war that shares one of them but
        # has only that side here is the less likely reading ("Israeli jets struck Houthi
        # targets in Sanaa" is the Red Sea war, not Yemen's civil war)
        both = {cid for cid in conflict_raw if len(sides_hit.get(cid, ())) >= 2}
        if both:
            for cid in conflict_raw:
                if cid not in both and len(self.conflict_sides.get(cid) or ()) >= 2:
                    conflict_raw[cid] *= 0.65

        event_raw: dict[str, float] = {}
        for sid, items in events.items():
            total = sum(_accumulate(f) * event_w[(sid, k)] for k, f in items.items())
            for group, bonus in (self.sub_types.get(sid, {}).get("with") or {}).items():
                total = total + bonus if group in groups_present else total * 0.5
            event_raw[sid] = max(0.0, total)
        # ACLED codes an attack on soldiers, a base or a police post as a battle, not as
        # violence against civilians: `redirect` moves the score when the target says so
        for sid in list(event_raw):
            rd = self.sub_types.get(sid, {}).get("redirect") or {}
            to = rd.get("to")
            if (to and rd.get("with") in groups_present and rd.get("unless") not in groups_present
                    and event_raw[sid] > 0):
                event_raw[to] = max(event_raw.get(to, 0.0), event_raw[sid] * 2.0)
                event_raw[sid] *= 0.5
        # an interception story where people died is the strike's story (ACLED codes the
        # strike when it did harm): `yields` halves the sub-type then; with `unless` the
        # other way round (a barrage shot down, pupils abducted, where nobody died). After
        # every redirect, so the order the words came in does not matter
        for sid in list(event_raw):
            yd = self.sub_types.get(sid, {}).get("yields") or {}
            if yd.get("when") in groups_present and yd.get("unless") not in groups_present and any(
                    event_raw.get(o, 0.0) >= EVENT_MIN_RAW for o in yd.get("to") or ()):
                event_raw[sid] *= 0.5

        v = sum(_accumulate(f) * vocab_w[k] for k, f in vocab.items())
        v += sum(_accumulate(f) for f in armed.values())  # armed groups are conflict words too
        n = sum(_accumulate(f) * neg_w[k] for k, f in neg.items())
        top_conflict = max((r for cid, r in conflict_raw.items() if cid not in home_only), default=0.0)
        # violent sub-types say "conflict" in full; strategic ones (a ceasefire, an interception)
        # and protesters shot by the state at half weight; arrests, protests and riots not at
        # all (they happen in peacetime), except a riot, arson or dispersal where a war itself
        # is named (a mob in Manipur, settlers or tear gas in the West Bank): that is the
        # conflict's political violence
        war_named = any(strong[cid] for cid in conflict_raw)

        def _conflictness(sid: str) -> float:
            et = self.sub_types.get(sid, {}).get("event_type")
            if sid == "excessive_force_against_protesters":
                return 0.5  # protesters killed or shot by the state: political violence
            if et == "riots" or sid in ("looting_property_destruction",
                                        "protest_with_intervention"):
                return 0.5 if war_named else 0.0
            if et in PROTEST_TYPES or sid == "arrests":
                return 0.0
            return 0.5 if et == "strategic_developments" else 1.0
        top_event = max((r * _conflictness(sid) for sid, r in event_raw.items()), default=0.0)
        related_raw = v + 0.5 * min(top_conflict, 12.0) + 0.5 * min(top_event, 12.0) - 1.2 * n
        for sid, key, w in event_cues:
            if _conflictness(sid) > 0:  # "arrest" or "protest" is no word of violence
                cue_keys.add(key)
                strong_cue = strong_cue or w >= 3
        if len(cue_keys) <= 1 and not strong_cue and not armed and top_conflict < CONFLICT_MIN_RAW:
            # one weak word of violence ("war", "bombards", "stabbing") in a story that names
            # no war and no armed party is a metaphor, history or crime more often than not
            related_raw *= SINGLE_CUE_FACTOR
        conflict_score = 1.0 - math.exp(-max(0.0, related_raw) / RELATED_SCALE)
        related = conflict_score >= RELATED_THRESHOLD

        conflicts: list[ConflictTag] = []
        if related and conflict_raw:
            ranked = sorted(conflict_raw.items(), key=lambda kv: (-kv[1], kv[0]))
            best = ranked[0][1]
            for cid, r in ranked[:5]:
                if r < CONFLICT_MIN_RAW or r < CONFLICT_KEEP_SHARE * best:
                    break
                items = ev[cid]
                evidence = sorted(items, key=lambda lbl: -_accumulate(items[lbl]) * ev_w[(cid, lbl)])
                conflicts.append(ConflictTag(id=cid, name=self.conflicts[cid]["name"],
                                             score=round(r / (r + 4.0), 4),
                                             evidence=tuple(evidence[:8])))

        event_tags: list[EventTypeTag] = []
        ranked_events = sorted(event_raw.items(), key=lambda kv: (-kv[1], kv[0]))
        if ranked_events:
            best = ranked_events[0][1]
            for sid, r in ranked_events:
                et = self.sub_types.get(sid, {}).get("event_type", "other")
                if r < EVENT_MIN_RAW or r < EVENT_KEEP_SHARE * best or len(event_tags) >= 5:
                    continue
                if not related and et not in PROTEST_TYPES:
                    continue
                event_tags.append(EventTypeTag(id=sid, event_type=et, score=round(r / (r + 3.0), 4)))
        if related and not event_tags and "other" in self.sub_types:
            event_tags.append(EventTypeTag(id="other", event_type="strategic_developments",
                                           score=0.1))

        countries = sorted(country_ev, key=lambda cc: (-sum(country_ev[cc]), cc))
        locations = [Location(name=p.name, country=p.country, lat=round(p.lat, 5),
                              lon=round(p.lon, 5))
                     for p, _w, _s in sorted(accepted_cities.values(), key=lambda t: (-t[1], t[2]))]
        seen_regions = set()
        for _h, p in region_hits:
            if p.name not in seen_regions:
                seen_regions.add(p.name)
                locations.append(Location(name=p.name, country=p.country, lat=p.lat, lon=p.lon))
        casualties: Casualties | None = extract_casualties(doc) if related else None
        return Tags(
            conflict_related=related,
            conflict_score=round(conflict_score, 4),
            conflicts=tuple(conflicts),
            event_types=tuple(event_tags),
            actors=tuple(sorted(actors, key=lambda a: (-actors[a], a))),
            countries=tuple(countries),
            locations=tuple(locations[:20]),
            casualties=casualties,
        )

    def _acronym_context(self, hits: list[_Hit], country_ev: dict[str, list[float]]) -> Any:
        """A case-sensitive acronym ("PDF", "RSF", "KIA", "ADF") is a name of an armed group
        only in a story that is about its war: another name, term or place of that war, or
        strong words of violence. "Download the PDF" or "KIA unveils an SUV" have neither."""
        solid: set[str] = set(self._where_index(country_ev))
        violent = False
        for h in hits:
            for kind, ref, w, f in h.payloads:
                if f & ACRONYM:
                    continue
                if kind in (K_ALIAS, K_TERM):
                    solid.add(ref)
                elif kind == K_ACTOR:
                    solid.update(cid for cid, _side in self.actor_conflicts.get(ref, ()))
                elif kind == K_VOCAB and w >= 2 or kind == K_EVENT and w >= 3:
                    violent = True

        def keep(kind: int, ref: str) -> bool:
            if violent:
                return True
            if kind == K_TERM:
                return ref in solid
            return any(cid in solid for cid, _side in self.actor_conflicts.get(ref, ()))

        return keep

    def _where_index(self, country_ev: dict[str, list[float]]) -> set[str]:
        return {cid for cc in country_ev for cid in self.country_conflicts.get(cc, ())}

    def _actor_own(self, cid: str, label: str) -> bool:
        aid = self._actor_ids.get(label)
        return aid is not None and self.actor_share.get(aid, 0) == 1

    def _actor_home(self, cid: str, label: str) -> bool:
        """An armed group shared by several wars still has a main one, the first that lists it
        ("Hamas agrees to a truce" is the Gaza war); a state's forces fight many wars."""
        aid = self._actor_ids.get(label)
        if aid is None or self._actor_violence.get(aid, 0.0) < 2.0:
            return False
        home = self.actor_conflicts.get(aid)
        return bool(home) and home[0][0] == cid

    def _looks_like_place(self, doc: str, norm: str, h: _Hit, orig: Any) -> bool:
        """Reject person names ("Austin said", "Secretary Austin") and lower-case words."""
        o = orig(h.start)
        first = doc[o] if o < len(doc) else ""
        if first.isalpha() and first.islower() and gazetteer.script_of(first) in ("LATIN", "CYRILLIC"):
            return False  # "reading", "nice": places are written with a capital
        after = norm[h.end:h.end + 16].lstrip(" ,").split(" ", 1)[0].strip(".,;:'\"")
        if after in self.person_verbs:
            return False
        before = norm[max(0, h.start - 24):h.start].rstrip().split(" ")
        prev = before[-1].strip(".,;:'\"") if before else ""
        if prev in self.person_titles:
            return False
        # "Lloyd Austin": a capitalised word right before that is not a place word itself
        po = orig(max(0, h.start - 1))
        window = doc[max(0, po - 20):po].rstrip()
        m = re.search(r"(?<![.!?]\s)\b([A-Z][a-z]+)$", window)
        if m and m.group(1).lower() not in _PLACE_PREFIXES and window[: m.start()].rstrip()[-1:] not in (".", "!", "?", ""):
            return False
        return True


# a short lead-in before a colon: "Mali : ...", "RDC: ...", "Nord-Kivu : ...", "מלחמה בסודן: ..."
_DATELINE = re.compile(r"\s*([^\W\d][^:\n\d]{1,38}?)\s*:\s")

_PLACE_PREFIXES = {"north", "south", "east", "west", "northern", "southern", "eastern", "western",
                   "central", "upper", "lower", "greater", "old", "new", "in", "of", "near",
                   "the", "from", "to", "at", "and", "outside", "downtown", "inside", "port",
                   "lake", "mount", "fort", "saint", "san", "santa", "el", "al", "la", "le"}


def _by_layer(payloads: list[tuple[int, Any, float, int]]) -> tuple[list[tuple[int, Any, float, int]], ...]:
    """Payloads split by evidence layer once at compile time (the scan loop stays small)."""
    return tuple([p for p in payloads if p[0] in layer] for layer in _LAYERS)


@lru_cache(maxsize=2)
def _city_entries(focus: frozenset[str]) -> tuple[tuple[str, tuple[int, Any, float, int]], ...]:
    """Automaton keys and payloads of every city name (the same for every taxonomy, so
    compiled once per process)."""
    # names that normalise alike ("Tripoli", "Trípoli") share one payload with every candidate
    merged: dict[str, tuple[int, dict[gazetteer.Place, None]]] = {}
    for name, cands in gazetteer.cities(focus).items():
        key, flags = _key(name)
        if len(key) < 3:
            continue
        if gazetteer.script_of(key) != "CYRILLIC":
            flags &= ~PREFIX
        prev_flags, places = merged.get(key, (flags, {}))
        places.update(dict.fromkeys(cands))
        merged[key] = (prev_flags | flags, places)
    return tuple((key, (K_CITY, tuple(sorted(places, key=lambda p: -p.population)), 1.0, flags))
                 for key, (flags, places) in merged.items())


_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = b"abcdefghijklmnopqrstuvwxyz"


def _mostly_upper(text: str) -> bool:
    head = text[:2000].encode("ascii", "ignore")  # bytes.translate runs at C speed
    up = len(head) - len(head.translate(None, _UPPER))
    low = len(head) - len(head.translate(None, _LOWER))
    return up + low > 40 and up > 0.8 * (up + low)


def _accumulate(factors: list[float]) -> float:
    """The best mention counts in full, a few more add a share each (no runaway on repeats)."""
    if not factors:
        return 0.0
    ordered = sorted(factors, reverse=True)
    return ordered[0] + REPEAT * sum(ordered[1:1 + REPEAT_CAP])


_shared: dict[tuple[str | None, float], Tagger] = {}


def _shared_tagger(taxonomy_path: Path | None) -> Tagger:
    """One compiled Tagger per taxonomy file (and its modification time) per process."""
    path = Path(taxonomy_path) if taxonomy_path is not None else None
    try:
        mtime = path.stat().st_mtime if path is not None else 0.0
    except OSError:
        mtime = -1.0  # let Tagger() raise the clear TaxonomyError
    key = (str(path) if path is not None else None, mtime)
    tagger = _shared.get(key)
    if tagger is None:
        tagger = _shared[key] = Tagger(path)
    return tagger


# --- module-level default, one per process ------------------------------------------------------
_default: Tagger | None = None
_default_path: Path | None = None


def configure(taxonomy_path: Path | None) -> Tagger:
    """Make the operator's taxonomy (or the built-in one) the default; compile it now.

    Call it once at worker start with ``Settings.taxonomy_file``; for a process pool pass it
    as the initializer: ``ProcessPoolExecutor(initializer=configure, initargs=(path,))``.
    """
    global _default, _default_path
    _default_path = Path(taxonomy_path) if taxonomy_path is not None else None
    _default = Tagger(_default_path)
    return _default


def default_tagger() -> Tagger:
    global _default
    if _default is None:
        _default = Tagger(_default_path)
    return _default


def tag(title: str | None, text: str) -> Tags:
    """Tag one story with the default tagger (built once per process)."""
    return default_tagger().tag(title, text)


def tag_record(rec: dict[str, Any]) -> dict[str, Any]:
    """``newswire tag``: ``{"id","title","text"}`` -> tags as a JSON-ready dict, or ``{"id","error"}``."""
    rid = rec.get("id") if isinstance(rec, dict) else None
    if not isinstance(rec, dict):
        return {"id": None, "error": "a JSON object is expected"}
    text = rec.get("text")
    title = rec.get("title")
    if not isinstance(text, str) or (title is not None and not isinstance(title, str)):
        return {"id": rid, "error": "`text` must be a string and `title` a string or null"}
    if not text.strip() and not (title or "").strip():
        return {"id": rid, "error": "empty title and text"}
    tags = tag(title, text)
    out = tags.model_dump(mode="json", exclude={"schema_version"})
    return {"id": rid, **out}
