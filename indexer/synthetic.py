"""Synthetic-but-realistic enriched articles for tests and benchmarks.

Texts are real (read in place from ``../shared/data/conflict-dev``: BBC, InSight Crime,
India police events, MUC-4); titles, sources, dates, tags and story groups are drawn from a
seeded RNG so a run is reproducible. Nothing here is used by the services themselves.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newswire.keys import url_key
from newswire.records import Article, ConflictTag, EventTypeTag, Location

CONFLICTS = ("ukraine-russia", "israel-gaza", "sudan-civil-war", "us-iran-proxy",
             "colombia-armed-groups", "myanmar-civil-war", "sahel-insurgency")
EVENT_TYPES = ("airstrike", "shelling", "armed-clash", "protest", "kidnapping",
               "ceasefire", "displacement", "arrest")
COUNTRIES = ("UA", "RU", "IL", "PS", "SD", "SY", "IR", "IQ", "CO", "MM", "ML", "IN", "GB", "US")
SOURCES = ("www.bbc.co.uk", "www.reuters.com", "apnews.com", "www.aljazeera.com",
           "insightcrime.org", "timesofindia.indiatimes.com", "www.theguardian.com",
           "www.france24.com", "www.dw.com", "kyivindependent.com")
LANGUAGES = ("en", "en", "en", "en", "fr", "es")
ACTORS = ("Hamas", "Israel Defense Forces", "Rapid Support Forces", "Wagner Group", "FARC",
          "ELN", "Hezbollah", "Houthis", "Tatmadaw", "Police")
PLACES = (("Aleppo", "SY", 36.2, 37.15), ("Kharkiv", "UA", 49.99, 36.23),
          ("Khartoum", "SD", 15.5, 32.56), ("Gaza City", "PS", 31.5, 34.47),
          ("Cali", "CO", 3.45, -76.53), ("Mandalay", "MM", 21.97, 96.08),
          ("Lucknow", "IN", 26.85, 80.95), ("Bamako", "ML", 12.64, -8.0))

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def load_texts(conflict_dev: Path) -> list[str]:
    """Every document text of the conflict-dev data sets (read in place)."""
    texts: list[str] = []
    csv.field_size_limit(sys.maxsize)
    for tsv in sorted(conflict_dev.glob("*/*.tsv")):
        with tsv.open(encoding="utf-8", errors="replace", newline="") as fh:
            for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                if row and len(row[0]) > 80:
                    texts.append(row[0])
    for js in sorted(conflict_dev.glob("*/*.json")):
        data = json.loads(js.read_text(encoding="utf-8", errors="replace"))
        for value in data.values():
            if isinstance(value, dict) and len(value.get("doc", "")) > 80:
                texts.append(" ".join(value["doc"].split()).capitalize())
    return texts


def _title(text: str, rng: random.Random) -> str:
    first = _SENTENCE.split(text.strip(), maxsplit=1)[0]
    words = first.split()
    return " ".join(words[: rng.randint(6, 14)]).rstrip(".,;:")


def synthetic_articles(texts: list[str], n: int, seed: int = 7,
                       start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
                       days: int = 60) -> Iterator[Article]:
    """``n`` articles; about one in five is a copy of an earlier story from another outlet."""
    rng = random.Random(seed)
    stories: list[tuple[str, str, str]] = []  # (story_id, title, text)
    for i in range(n):
        if stories and rng.random() < 0.2:
            story_id, title, text = rng.choice(stories[-200:])
        else:
            text = rng.choice(texts)
            if rng.random() < 0.5:  # vary: append a few sentences of another document
                other = _SENTENCE.split(rng.choice(texts))
                text = text + " " + " ".join(other[: rng.randint(1, 4)])
            title = _title(text, rng)
            story_id = f"story-{seed}-{i}"
            stories.append((story_id, title, text))
        source = rng.choice(SOURCES)
        url = f"https://{source}/news/{seed}/{i}"
        tagged = rng.random() < 0.7
        conflicts = tuple(
            ConflictTag(id=c, name=c.replace("-", " ").title(), score=round(rng.random(), 3))
            for c in rng.sample(CONFLICTS, rng.randint(1, 2))) if tagged else ()
        events = tuple(EventTypeTag(id=e, event_type=e, score=round(rng.random(), 3))
                       for e in rng.sample(EVENT_TYPES, rng.randint(0, 2))) if tagged else ()
        places = rng.sample(PLACES, rng.randint(0, 2))
        countries = tuple(sorted({p[1] for p in places} | set(rng.sample(COUNTRIES, 1))))
        published = start + timedelta(seconds=rng.randint(0, days * 86_400))
        yield Article(
            id=url_key(url), url=url, title=title, text=text, source=source,
            feed=f"https://{source}/rss", language=rng.choice(LANGUAGES),
            published=published if rng.random() > 0.05 else None,
            ingested=published + timedelta(minutes=rng.randint(1, 600)),
            story_id=story_id, conflict_related=tagged,
            conflict_score=max((c.score for c in conflicts), default=0.0),
            conflicts=conflicts, event_types=events,
            actors=tuple(rng.sample(ACTORS, rng.randint(0, 2))),
            countries=countries,
            locations=tuple(Location(name=p[0], country=p[1], lat=p[2], lon=p[3])
                            for p in places),
        )
