"""Metadata accuracy on readability-pages (130 real pages with expected-metadata.json).

For each field the page's expectation states (title, byline, published date, language),
the share of pages where ``processors.clean.clean`` gets it right, next to trafilatura's
``bare_extraction(with_metadata=True)`` on the same bytes. Matching rules:
- title: equal after case-folding and collapsing whitespace and quotes;
- byline: the words of one are a subset of the other's, ignoring case, punctuation and
  "by" ("John C. Welch" = "John C Welch"; "By Jane Doe" = "Jane Doe");
- date: the same calendar day as ``publishedTime`` (UTC);
- language: the same ISO 639-1 code as the page's declared ``lang`` (ours is detected from
  the text; trafilatura's own language field is used for it).

Run: .venv/bin/python bench/metadata_bench.py
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "extraction-dev" / "readability-pages"
URL = "http://fakehost/test/page.html"  # the pages' own tests use this base URL


def fold(text: str | None) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = re.sub(r"[\"'\u2018\u2019\u201c\u201d]", "", text)
    return re.sub(r"\s+", " ", text).strip(" |-–—")


def same_title(got: str | None, want: str) -> bool:
    return bool(got) and fold(got) == fold(want)


_BY = {"by", "par", "von", "di", "de", "por", "and", "und", "et"}


def same_byline(got: str | None, want: str) -> bool:
    # Names as sets of words: "John C. Welch" = "John C Welch", "A; B" = "By A, B".
    a = set(re.findall(r"\w+", fold(got))) - _BY
    b = set(re.findall(r"\w+", fold(want))) - _BY
    return bool(a) and bool(b) and (a <= b or b <= a)


def day(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().isoformat()
    text = str(value).strip()
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text[:10]
    if parsed.tzinfo is None:
        return parsed.date().isoformat()
    return parsed.astimezone(UTC).date().isoformat()


def lang(code: str | None) -> str | None:
    return code.split("-")[0].split("_")[0].lower() if code else None


def ours(raw: bytes) -> dict[str, Any]:
    from processors.clean import CleanArticle, clean

    result = clean(raw, URL)
    if not isinstance(result, CleanArticle):
        return {}
    return {"title": result.title, "byline": result.author, "date": result.published,
            "lang": result.language}


def trafilatura_meta(raw: bytes) -> dict[str, Any]:
    import trafilatura

    doc = trafilatura.bare_extraction(raw, url=URL, with_metadata=True)
    if doc is None:
        return {}
    return {"title": doc.title, "byline": doc.author, "date": doc.date, "lang": doc.language}


def main() -> None:
    pages = []
    for folder in sorted(p for p in DATA.iterdir() if (p / "expected-metadata.json").exists()):
        expected = json.loads((folder / "expected-metadata.json").read_text())
        pages.append((folder.name, gzip.decompress((folder / "source.html.gz").read_bytes()),
                      expected))
    systems: dict[str, Callable[[bytes], dict[str, Any]]] = {
        "newswire clean (ours)": ours, "trafilatura with_metadata": trafilatura_meta}
    checks = {
        "title": ("title", same_title),
        "byline": ("byline", same_byline),
        "date": ("publishedTime", lambda got, want: day(got) == day(want)),
        "language": ("lang", lambda got, want: lang(got) == lang(want)),
    }
    print(f"readability-pages: {len(pages)} pages; accuracy over pages stating the field\n")
    print(f"{'system':28}" + "".join(f"{name:>18}" for name in checks))
    for name, fn in systems.items():
        results = [(fn(raw), expected) for _, raw, expected in pages]
        cells = []
        for field, (key, ok) in checks.items():
            stated = [(got, exp[key]) for got, exp in results if exp.get(key)]
            right = sum(1 for got, want in stated if ok(got.get(field if field != "language"
                                                                 else "lang"), want))
            cells.append(f"{right}/{len(stated)} {right / len(stated):6.1%}")
        print(f"{name:28}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
